"""
The real C{twistd mdns} process in a namespace: interface choice, following
interface changes at run time, and goodbyes on SIGTERM.

The process runs in the host namespace (links lana, lanb, plus tun0 and a
docker0 bridge); clients on each link ask with raw sockets.
"""

from __future__ import annotations

import signal
import socket
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain, inside, ip
from tests.peers import REPO_ROOT, PeerProcess
from tests.support import sleep, wait_until
from twisted_mdns.message import TYPE_A, Question, name_from_text, pack_one, parse

TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def twistd_argv(*options: str) -> list[str]:
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "mdns", *options]


def a_answers(sock: socket.socket, ident: int | None = None) -> list[str]:
    """
    The A addresses in responses waiting on C{sock} (for query C{ident}).
    """
    out = []
    for data, _ in drain(sock):
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response and (ident is None or m.id == ident):
            out += [str(r.rdata) for r in m.answers if r.rtype == TYPE_A and r.ttl > 0]
    return out


class TwistdCase(NamespaceTestMixin, unittest.TestCase):
    timeout = 90

    def start_twistd(self, *options: str) -> defer.Deferred:
        proc = PeerProcess(
            self.topology.host_ns,
            twistd_argv(*options),
            name="twistd",
            env={"PYTHONPATH": str(REPO_ROOT)},
            cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        self.proc = proc
        return proc.wait_for(r"host name \S+\.local claimed", timeout=15).addCallback(lambda _: proc)

    def ask(self, client: str, host: str = "h", ident: int = 0x77) -> socket.socket:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(
            pack_one(ident=ident, questions=[Question(name_from_text(f"{host}.local"), TYPE_A)]),
            ("224.0.0.251", 5353),
        )
        return sock

    @defer.inlineCallbacks
    def answered(self, client: str, host: str = "h", timeout: float = 3.0):
        sock = self.ask(client, host)
        try:
            got = yield wait_until(lambda: a_answers(sock), timeout=timeout, what=f"answer on {client}")
        except AssertionError:
            return []
        return sorted(got)


class InterfaceChoiceTests(TwistdCase):
    @defer.inlineCallbacks
    def test_iface_answers_on_a_only(self):
        yield self.start_twistd("--iface", "lana", "--hostname", "h")
        got = yield self.answered("a")
        self.assertEqual(got, [self.topology.links["a"].host_ip])
        got = yield self.answered("b", timeout=1.5)
        self.assertEqual(got, [])

    @defer.inlineCallbacks
    def test_default_answers_on_both_but_not_virtual(self):
        # A client behind docker0 (a veth enslaved to the bridge).
        topo = self.topology
        dock_ns = topo.host_ns[:-1] + "d"
        ip("netns", "add", dock_ns)
        topo.namespaces.append(dock_ns)
        ip("link", "add", "dk0", "netns", topo.host_ns, "type", "veth", "peer", "name", "eth0", "netns", dock_ns)
        ip("link", "set", "dk0", "master", "docker0", "up", ns=topo.host_ns)
        ip("addr", "add", "172.17.0.2/16", "dev", "eth0", ns=dock_ns)
        ip("link", "set", "eth0", "up", ns=dock_ns)
        ip("link", "set", "lo", "up", ns=dock_ns)
        ip("route", "add", "224.0.0.0/4", "dev", "eth0", ns=dock_ns)

        yield self.start_twistd("--hostname", "h")
        self.assertEqual((yield self.answered("a")), [topo.links["a"].host_ip])
        self.assertEqual((yield self.answered("b")), [topo.links["b"].host_ip])

        with inside(dock_ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("172.17.0.2"))
            sock.bind(("172.17.0.2", 0))
            sock.setblocking(False)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=5, questions=[Question(name_from_text("h.local"), TYPE_A)]), ("224.0.0.251", 5353))
        sock.sendto(pack_one(ident=6, questions=[Question(name_from_text("h.local"), TYPE_A)]), ("172.17.0.1", 5353))
        yield sleep(1.0)
        self.assertEqual(a_answers(sock), [], "nothing answered behind docker0")
        log = self.proc.stdout + self.proc.stderr
        self.assertIn("tun0 excluded: virtual: VPN (tun*)", log)
        self.assertIn("docker0 excluded: virtual: container (docker*)", log)
        self.assertNotIn("listening on tun0", log)
        self.assertNotIn("listening on docker0", log)

    @defer.inlineCallbacks
    def test_bad_iface_is_a_one_line_error(self):
        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--iface", "nope0"), name="twistd-bad",
            env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        code = yield proc.wait(timeout=20)
        self.assertNotEqual(code, 0)
        output = proc.stdout + proc.stderr
        self.assertEqual(
            output.strip().splitlines(),
            ["twistd mdns: error: --iface: interface 'nope0': no such interface "
             "(interfaces present: lo, lana, lanb, tun0, docker0)"],
        )


class FollowingChangesTests(TwistdCase):
    @defer.inlineCallbacks
    def test_link_added_then_removed(self):
        yield self.start_twistd("--hostname", "h")
        link = self.topology.add_link("c", "lanc", subnet_octet=3)
        listener = self.topology.client_listener("c")
        self.addCleanup(listener.close)
        # Announced on the new link within 2 s (probing takes ~1 s).
        announced = yield wait_until(lambda: a_answers(listener), timeout=2.5, what="announcement on lanc")
        self.assertEqual(set(announced), {link.host_ip})
        self.assertEqual((yield self.answered("c")), [link.host_ip])
        self.assertEqual((yield self.answered("a")), [self.topology.links["a"].host_ip])

        self.topology.remove_link("c")
        yield wait_until(lambda: "removed ['lanc']" in self.proc.stdout, timeout=3, what="port closed")
        yield sleep(1.0)
        log = self.proc.stdout
        noisy = [line for line in log.splitlines() if "lanc" in line and ("error" in line.lower() or "Traceback" in line)]
        self.assertLessEqual(len(noisy), 1, noisy)
        self.assertNotIn("Traceback", log)
        self.assertEqual((yield self.answered("b")), [self.topology.links["b"].host_ip])

    @defer.inlineCallbacks
    def test_address_added_and_removed(self):
        yield self.start_twistd("--hostname", "h")
        a, b = self.topology.links["a"], self.topology.links["b"]
        ip("addr", "add", "10.1.0.9/24", "dev", "lana", ns=self.topology.host_ns)
        yield wait_until(lambda: "readdressed ['lana']" in self.proc.stdout, timeout=3, what="readdressed")
        self.assertEqual((yield self.answered("a")), sorted([a.host_ip, "10.1.0.9"]))
        self.assertEqual((yield self.answered("b")), [b.host_ip])

        listener = self.topology.client_listener("a")
        self.addCleanup(listener.close)
        ip("addr", "del", "10.1.0.9/24", "dev", "lana", ns=self.topology.host_ns)

        def goodbye():
            for data, _ in drain(listener):
                m = parse(data)
                for r in m.answers:
                    if r.rtype == TYPE_A and r.ttl == 0 and str(r.rdata) == "10.1.0.9":
                        return True
            return False

        yield wait_until(goodbye, timeout=3, what="goodbye for 10.1.0.9")
        yield sleep(1.1)  # past the 1 s multicast rate limit of the last answer
        self.assertEqual((yield self.answered("a")), [a.host_ip])


class SignalTests(TwistdCase):
    def test_sigterm_sends_goodbyes(self):
        return self.check_goodbyes_on(signal.SIGTERM)

    def test_sigint_sends_goodbyes(self):
        return self.check_goodbyes_on(signal.SIGINT)

    @defer.inlineCallbacks
    def check_goodbyes_on(self, signum: int):
        yield self.start_twistd("--hostname", "h", "--service", "Web|_http._tcp|8080|path=/")
        yield self.proc.wait_for("registered", timeout=10)
        listeners = {c: self.topology.client_listener(c) for c in ("a", "b")}
        for s in listeners.values():
            self.addCleanup(s.close)
        yield sleep(1.5)
        for s in listeners.values():
            drain(s)
        self.proc.send_signal(signum)
        code = yield self.proc.wait(timeout=10)
        # twistd re-raises the signal that stopped it once it has shut down
        # cleanly, so the status is "killed by" it, after the goodbyes.
        self.assertIn(code, (0, -signum))
        self.assertIn("Server Shut Down", self.proc.stdout)
        for client, sock in listeners.items():
            records = [r for data, _ in drain(sock) for r in parse(data).answers]
            self.assertTrue(records, f"goodbyes on {client}")
            self.assertTrue(all(r.ttl == 0 for r in records))
            # A, PTR, TXT, SRV, and AAAA for the link-local address once
            # its DAD is over (RFC 6762 §10.1: every record we published).
            self.assertIn({r.rtype for r in records}, ({1, 12, 16, 33}, {1, 12, 16, 28, 33}))
            self.assertEqual([str(r.rdata) for r in records if r.rtype == TYPE_A],
                             [self.topology.links[client].host_ip])


class StartWithoutNetworkTests(TwistdCase):
    """
    A host that boots with no usable interface (a laptop before Wi-Fi):
    twistd starts, says so, and takes the first link that appears.
    """

    clients = ()
    virtual = False

    @defer.inlineCallbacks
    def test_first_link_after_start(self):
        yield self.start_twistd("--hostname", "h")
        self.assertIn("no interface qualifies", self.proc.stdout)
        link = self.topology.add_link("c", "lanc", subnet_octet=3)
        listener = self.topology.client_listener("c")
        self.addCleanup(listener.close)
        announced = yield wait_until(lambda: a_answers(listener), timeout=2.5, what="announcement on lanc")
        self.assertEqual(set(announced), {link.host_ip})
        self.assertEqual((yield self.answered("c")), [link.host_ip])
        self.assertNotIn("Traceback", self.proc.stdout + self.proc.stderr)
