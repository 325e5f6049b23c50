"""
Linux network namespaces and veth links that the tests build themselves.

A L{Topology} is a "host" namespace with one veth link to each of several
"client" namespaces (one subnet per link), plus optional virtual interfaces
(a C{tun0}, a C{docker0} bridge) in the host so that the default policy has
something to refuse.

The test process itself can step into a namespace (L{Topology.inside}):
sockets keep the namespace they were created in, so one trial process holds
the host's mDNS ports and the clients' sockets at once, all real, all on one
reactor.  Peers written by others (python-zeroconf, avahi, dig) run as
processes under C{ip netns exec}.

Namespace tests skip only where they cannot run (not Linux, not root, no
C{ip}); with C{TWISTED_MDNS_REQUIRE_NETNS=1} (set by C{.ci/run}) they fail
instead, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator

from twisted.trial.unittest import SkipTest

CLONE_NEWNET = 0x40000000
_counter = itertools.count(1)
_libc = None


def _setns(fd: int) -> None:
    global _libc
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def netns_unavailable() -> str | None:
    """
    Why namespace tests cannot run here, or L{None} if they can.
    """
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


def require_netns() -> None:
    """
    Skip the calling test where namespaces cannot be built, unless CI said
    they are required, in which case fail loudly.
    """
    why = netns_unavailable()
    if why is None:
        return
    if os.environ.get("TWISTED_MDNS_REQUIRE_NETNS") == "1":
        raise RuntimeError(f"namespace tests are required here but {why}")
    raise SkipTest(why)


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """
    Run C{ip ARGS} (in namespace C{ns}) and return its output.
    """
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """
    Run the block with the calling thread in namespace C{ns}.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(original)
        os.close(original)
        os.close(target)


@dataclass
class Link:
    """
    One veth link: C{host_if} in the host namespace, C{client_if} in the
    client's, on subnet 10.N.0.0/24 (host .1, client .2).
    """

    client_ns: str
    host_if: str
    client_if: str
    host_ip: str
    client_ip: str
    prefix: int = 24
    host_index: int = 0
    #: ULA addresses, once L{Topology.add_ipv6} gave them (fd00:N::1 and
    #: fd00:N::2, /64).
    host_ip6: str = ""
    client_ip6: str = ""

    @property
    def subnet(self) -> str:
        return ".".join(self.host_ip.split(".")[:3]) + f".0/{self.prefix}"


@dataclass
class Topology:
    """
    A host namespace and its client namespaces, torn down by L{destroy}.
    """

    host_ns: str
    links: dict[str, Link] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        clients: tuple[str, ...] = ("a", "b"),
        virtual: bool = True,
        host_names: tuple[str, ...] | None = None,
    ) -> "Topology":
        """
        Build host + one client per name.  Host-side link names are
        C{lan<name>} (not C{veth*}, which the default policy rightly
        refuses); each client sees its link as C{eth0}.
        """
        require_netns()
        tag = f"tm{os.getpid() % 100000}x{next(_counter)}"
        topo = cls(host_ns=f"{tag}h")
        try:
            ip("netns", "add", topo.host_ns)
            topo.namespaces.append(topo.host_ns)
            ip("link", "set", "lo", "up", ns=topo.host_ns)
            names = host_names or tuple(f"lan{c}" for c in clients)
            for n, (client, host_if) in enumerate(zip(clients, names), start=1):
                topo.add_link(client, host_if, subnet_octet=n)
            if virtual:
                ip("tuntap", "add", "dev", "tun0", "mode", "tun", ns=topo.host_ns)
                ip("addr", "add", "10.99.0.1/24", "dev", "tun0", ns=topo.host_ns)
                ip("link", "set", "tun0", "up", ns=topo.host_ns)
                ip("link", "add", "docker0", "type", "bridge", ns=topo.host_ns)
                ip("addr", "add", "172.17.0.1/16", "dev", "docker0", ns=topo.host_ns)
                ip("link", "set", "docker0", "up", ns=topo.host_ns)
        except BaseException:
            topo.destroy()
            raise
        return topo

    def add_link(self, client: str, host_if: str, subnet_octet: int) -> Link:
        """
        Add a client namespace joined to the host by a new veth link.
        """
        client_ns = f"{self.host_ns[:-1]}{client}"
        ip("netns", "add", client_ns)
        self.namespaces.append(client_ns)
        ip("link", "set", "lo", "up", ns=client_ns)
        ip(
            "link", "add", host_if, "netns", self.host_ns, "type", "veth",
            "peer", "name", "eth0", "netns", client_ns,
        )
        link = Link(
            client_ns=client_ns,
            host_if=host_if,
            client_if="eth0",
            host_ip=f"10.{subnet_octet}.0.1",
            client_ip=f"10.{subnet_octet}.0.2",
        )
        ip("addr", "add", f"{link.host_ip}/24", "dev", host_if, ns=self.host_ns)
        ip("addr", "add", f"{link.client_ip}/24", "dev", "eth0", ns=client_ns)
        ip("link", "set", host_if, "up", ns=self.host_ns)
        ip("link", "set", "eth0", "up", ns=client_ns)
        # Multicast from the client leaves by eth0 without a default route.
        ip("route", "add", "224.0.0.0/4", "dev", "eth0", ns=client_ns)
        link.host_index = self.host_index(host_if)
        self.links[client] = link
        self.wait_link_up(link)
        return link

    def wait_link_up(self, link: Link, timeout: float = 5.0) -> None:
        """
        Block until both ends of C{link} are operational.  A fresh veth
        drops what is sent through it until the kernel's link watcher has
        activated its queue (operstate UP), a moment after C{ip link set
        up}: tests that send at once would otherwise lose datagrams.
        """
        deadline = time.monotonic() + timeout
        ends = ((self.host_ns, link.host_if), (link.client_ns, link.client_if))
        while True:
            if all("state UP" in ip("-o", "link", "show", "dev", dev, ns=ns) for ns, dev in ends):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"link {link.host_if} did not come up in {timeout}s")
            time.sleep(0.01)

    def add_ipv6(self, dad: bool = True, wait: bool = True, timeout: float = 10.0) -> None:
        """
        Give every link ULA addresses: C{fd00:N::1/64} on the host's end,
        C{fd00:N::2/64} on the client's (N as in the link's 10.N.0.0/24).

        @param dad: run Duplicate Address Detection on them (the kernel's
            default: each is I{tentative} for a moment); C{False} adds them
            C{nodad}, usable at once.
        @param wait: block until no address of the topology is tentative
            any more (the link-local ones included), so that sockets can
            send from them.
        """
        for link in self.links.values():
            n = int(link.host_ip.split(".")[1])
            link.host_ip6, link.client_ip6 = f"fd00:{n}::1", f"fd00:{n}::2"
            extra = () if dad else ("nodad",)
            ip("-6", "addr", "add", f"{link.host_ip6}/64", "dev", link.host_if, *extra, ns=self.host_ns)
            ip("-6", "addr", "add", f"{link.client_ip6}/64", "dev", link.client_if, *extra, ns=link.client_ns)
        if wait:
            self.wait_dad(timeout)

    def wait_dad(self, timeout: float = 10.0) -> None:
        """
        Block until no IPv6 address in any namespace of the topology is
        tentative (Duplicate Address Detection has ended everywhere).
        """
        deadline = time.monotonic() + timeout
        while any("tentative" in ip("-6", "addr", "show", ns=ns) for ns in self.namespaces):
            if time.monotonic() > deadline:
                raise RuntimeError(f"IPv6 DAD did not finish in {timeout}s")
            time.sleep(0.05)

    def link_local(self, ns: str, dev: str) -> str:
        """
        The fe80:: address of C{dev} in namespace C{ns}, without scope.
        """
        for line in ip("-6", "-o", "addr", "show", "dev", dev, "scope", "link", ns=ns).splitlines():
            fields = line.split()
            return fields[fields.index("inet6") + 1].split("/")[0]
        raise RuntimeError(f"{dev} in {ns} has no link-local address")

    def remove_link(self, client: str) -> None:
        """
        Delete a client's link and namespace (the interface vanishes).
        """
        link = self.links.pop(client)
        ip("link", "del", link.host_if, ns=self.host_ns, check=False)
        ip("netns", "del", link.client_ns, check=False)
        if link.client_ns in self.namespaces:
            self.namespaces.remove(link.client_ns)

    def host_index(self, name: str) -> int:
        with inside(self.host_ns):
            return socket.if_nametoindex(name)

    def inside(self, ns: str | None = None):
        """
        Step into the host namespace (or C{ns}).
        """
        return inside(ns or self.host_ns)

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", ns] + argv

    def client_socket(self, client: str, port: int = 0, multicast: bool = True) -> socket.socket:
        """
        A non-blocking UDP socket in C{client}'s namespace, bound to C{port}
        on its address, sending multicast on its eth0 with TTL 255.
        """
        link = self.links[client]
        with inside(link.client_ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if multicast:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
                s.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                    socket.inet_aton(link.client_ip),
                )
            s.bind(("0.0.0.0" if port else link.client_ip, port))
            s.setblocking(False)
        return s

    def client_listener(self, client: str, group: str = "224.0.0.251", port: int = 5353) -> socket.socket:
        """
        A socket in C{client}'s namespace that hears C{group}:C{port}.
        """
        link = self.links[client]
        with inside(link.client_ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("0.0.0.0", port))
            s.setsockopt(
                socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(group) + socket.inet_aton(link.client_ip),
            )
            s.setblocking(False)
        return s

    def client_socket6(self, client: str, port: int = 0, bind: str = "::") -> socket.socket:
        """
        A non-blocking IPv6 UDP socket in C{client}'s namespace, bound to
        C{bind}:C{port}, sending multicast on its eth0 with hop limit 255,
        and reporting each datagram's hop limit and arrival interface (read
        them with L{drain6}).
        """
        link = self.links[client]
        with inside(link.client_ns):
            index = socket.if_nametoindex(link.client_if)
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.bind((bind, port, 0, index if bind.startswith("fe80") else 0))
            s.setblocking(False)
        return s

    def client_listener6(self, client: str, group: str = "ff02::fb", port: int = 5353) -> socket.socket:
        """
        A socket like L{client_socket6} in C{client}'s namespace that hears
        C{group}:C{port} on its eth0.
        """
        link = self.links[client]
        s = self.client_socket6(client, port)
        with inside(link.client_ns):
            index = socket.if_nametoindex(link.client_if)
        s.setsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
            socket.inet_pton(socket.AF_INET6, group) + index.to_bytes(4, sys.byteorder),
        )
        return s

    def client_index(self, client: str) -> int:
        """
        The index of C{client}'s eth0 in its own namespace.
        """
        link = self.links[client]
        with inside(link.client_ns):
            return socket.if_nametoindex(link.client_if)

    def destroy(self) -> None:
        """
        Delete every namespace (their veth ends vanish with them).
        """
        for ns in reversed(self.namespaces):
            pids = ip("netns", "pids", ns, check=False).split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (OSError, ValueError):
                    pass
            ip("netns", "del", ns, check=False)
        self.namespaces.clear()


def drain(sock: socket.socket) -> list[tuple[bytes, tuple[str, int]]]:
    """
    Everything waiting on a non-blocking socket.
    """
    got = []
    while True:
        try:
            got.append(sock.recvfrom(9000))
        except BlockingIOError:
            return got


def drain6(sock: socket.socket) -> list[tuple[bytes, tuple, int | None, int | None]]:
    """
    Everything waiting on a socket from L{Topology.client_socket6}:
    C{(data, address, hop limit, arrival ifindex)} per datagram.
    """
    got = []
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(9000, socket.CMSG_SPACE(64))
        except BlockingIOError:
            return got
        hops = ifindex = None
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                hops = int.from_bytes(value[:4], sys.byteorder)
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                ifindex = int.from_bytes(value[16:20], sys.byteorder)
        got.append((data, addr, hops, ifindex))


class NamespaceTestMixin:
    """
    For trial test cases: build a L{Topology} in C{setUp} and run the whole
    test with the test thread inside its host namespace, so that anything
    the code under test enumerates or opens later, from reactor callbacks,
    is the host's.  Cleanup leaves the namespace and destroys the topology.

    @cvar clients: the client namespaces to build.
    @cvar virtual: whether to add C{tun0} and C{docker0} to the host.
    """

    clients: tuple[str, ...] = ("a", "b")
    virtual: bool = True

    def setUp(self) -> None:
        self.topology = Topology.build(self.clients, self.virtual)
        self.addCleanup(self.topology.destroy)
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.topology.host_ns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)

        def leave() -> None:
            _setns(original)
            os.close(original)

        self.addCleanup(leave)
