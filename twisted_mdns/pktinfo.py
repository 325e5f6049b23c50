# -*- test-case-name: tests.test_pktinfo,tests.test_transport -*-
"""
A Twisted multicast port that knows which interface each datagram came in on.

Why: on a multi-homed host, every socket bound to 0.0.0.0:5353 shares one
port, C{SO_REUSEPORT} spreads unicast datagrams over the sockets at random,
and other mDNS stacks (avahi, systemd-resolved) may hold the same port.  The
only trustworthy answer to "which link did this come from?" is the kernel's
C{IP_PKTINFO} control message, so this port reads with C{recvmsg} and hands
the protocol an L{InterfaceContext} built from it.

The port is general: any group, any port, any protocol.  A protocol that
provides L{IPktInfoDatagramProtocol} gets C{datagramReceivedOn}; any other
gets the plain C{datagramReceived}.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections import Counter
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Generic, Iterator, Optional, Protocol, TypeVar

from twisted.internet import defer, udp
from twisted.internet.error import MessageLengthError
from twisted.logger import Logger

from twisted_mdns.constants import IP_TTL, MAX_PACKET
from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator, find_by_index

log = Logger()

#: Linux values, used where the Python build does not export the names.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8 if sys.platform.startswith("linux") else None)
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IP_RECVIF = getattr(socket, "IP_RECVIF", None)
IP_RECVDSTADDR = getattr(socket, "IP_RECVDSTADDR", None)

#: BSD and macOS need SO_REUSEPORT to share a multicast port and then give
#: every socket a copy; Linux load-balances instead (see createInternetSocket).
REUSEPORT_SPREADS_MULTICAST = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

_IN_PKTINFO = struct.Struct("I4s4s")
#: A plain int: socket.MSG_TRUNC is an IntFlag, and "int & IntFlag" runs
#: enum code in Python (microseconds per datagram).
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0x20))
_ANCILLARY_SPACE = socket.CMSG_SPACE(64)
_READ_IGNORE = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_READ_REFUSE = (errno.ECONNREFUSED,)

InterfaceLookup = Callable[[int], Optional[NetworkInterface]]


@dataclass(frozen=True)
class InterfaceContext:
    """
    Where a datagram arrived.

    @ivar index: the receiving interface's OS index, from C{IP_PKTINFO}.
    @ivar name: its name (C{"?"} when it vanished before we could look).
    @ivar destination: the datagram's destination address: the group for
        multicast, one of our addresses for unicast.
    @ivar interface: the L{NetworkInterface} as last enumerated, if known.
    @ivar family: the address family (C{AF_INET} today).
    """

    index: int
    name: str
    destination: str
    interface: NetworkInterface | None = None
    family: int = socket.AF_INET

    @property
    def addresses(self) -> tuple[ipaddress.IPv4Interface, ...]:
        """
        The receiving interface's IPv4 addresses with prefixes.
        """
        return self.interface.ipv4 if self.interface is not None else ()

    @cached_property
    def multicast(self) -> bool:
        """
        Was the datagram sent to a multicast group (rather than to us)?
        Computed once per context (contexts are cached per interface and
        destination; parsing the address per datagram was a fifth of the
        legacy fast path).
        """
        try:
            return ipaddress.ip_address(self.destination).is_multicast
        except ValueError:
            return False

    @cached_property
    def _subnets(self) -> tuple[tuple[int, int], ...]:
        """
        The receiving interface's IPv4 subnets as (network, mask) integers.
        """
        return tuple(
            (int(a.network.network_address), int(a.network.netmask)) for a in self.addresses
        )

    @cached_property
    def _verdicts(self) -> dict[str, bool]:
        return {}

    def on_link(self, address: str) -> bool:
        """
        Is C{address} on a subnet of the receiving interface (RFC 6762 s11)?

        Asked for every received datagram, mostly about the same few
        senders: the verdict is kept per source (per context, so a new
        address set, which makes new contexts, starts afresh; at most
        L{_MAX_VERDICTS} of them), and an IPv4 source is checked as an
        integer against the subnets' integers, not through C{ipaddress}.
        """
        verdicts = self._verdicts
        verdict = verdicts.get(address)
        if verdict is None:
            if self.interface is None:
                return False
            try:
                ip = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
            except (OSError, ValueError, TypeError):
                verdict = self.interface.on_link(address)
            else:
                verdict = any(ip & mask == network for network, mask in self._subnets)
            if len(verdicts) >= _MAX_VERDICTS:
                verdicts.clear()
            verdicts[address] = verdict
        return verdict


#: Sources whose s11 verdict one context remembers.
_MAX_VERDICTS = 1024


class ReplyStore(Protocol):
    """
    The seam through which a port's reader answers exact repeats of a query
    itself: no context, no protocol, no parsing (the legacy-unicast
    throughput path, RFC 6762 §6.7).  The store belongs to its owner
    (L{twisted_mdns.responder.legacy.LegacyReplies}); the reader only reads
    it and reports what it served.

    A datagram from L{exclude_port}, from a source not judged on-link, or
    not in L{replies} goes the ordinary way.
    """

    #: Datagrams from this source port are never answered here (mDNS
    #: queriers on 5353 get multicast answers, RFC 6762 §6).
    exclude_port: int
    #: C{(ifindex, datagram[2:]) -> reply[2:]}: everything but the id,
    #: which the reader copies from each query.
    replies: dict[tuple[int, bytes], bytes]
    #: C{(ifindex, source ip) -> bool}: may that source be answered (the
    #: RFC 6762 §11 on-link check, made once per source by the owner)?
    sources: dict[tuple[int, str], bool]

    def served(self, sent: bool) -> None:
        """
        One datagram answered from L{replies} (C{sent}: the kernel took the
        reply); count it as the ordinary path would have.
        """


def ip_mreqn(group: str, ifindex: int, address: str = "0.0.0.0") -> bytes:
    """
    A Linux C{struct ip_mreqn}: join/leave or choose the sending interface by
    index, which stays unambiguous when two links share an address or one
    has none.
    """
    return struct.pack(
        "4s4si", socket.inet_aton(group), socket.inet_aton(address), ifindex
    )


class _SystemLookup:
    """
    Index-to-interface lookup from the OS, refreshed on a miss.
    """

    def __init__(self) -> None:
        self._enumerator = SystemInterfaceEnumerator()
        self._known: dict[int, NetworkInterface] = {}

    def forget(self) -> None:
        """
        Forget what was looked up: the next lookup asks the OS again.
        """
        self._known.clear()

    def __call__(self, index: int) -> NetworkInterface | None:
        found = self._known.get(index)
        if found is None:
            found = find_by_index(self._enumerator.interfaces(), index)
            if found is not None:
                self._known[index] = found
        return found


_Context = TypeVar("_Context", bound=InterfaceContext)


class PktInfoPortBase(udp.MulticastPort, Generic[_Context]):
    """
    What the IPv4 and IPv6 pktinfo ports share: the cache of arrival
    contexts by C{(interface index, destination)}, forgotten on L{refresh},
    and group membership by interface index answered as a Deferred.

    @ivar lookup: maps an interface index to a L{NetworkInterface}.
    @ivar network_interface: the one interface the port serves, if any.
    @cvar _context_type: the context class of the port's family.
    """

    _context_type: type[_Context]
    #: The family's wildcard address, bound when the caller names none.
    _any_address = ""

    def __init__(
        self,
        port: int,
        proto: Any,
        interface: str = "",
        maxPacketSize: int = MAX_PACKET,
        reactor: Any = None,
        listenMultiple: bool = True,
        *,
        network_interface: NetworkInterface | None = None,
        lookup: InterfaceLookup | None = None,
        ttl: int = IP_TTL,
        loopback: bool = True,
    ) -> None:
        """
        The arguments of C{udp.MulticastPort}, then the port's own.

        @param network_interface: the one link the port serves: groups are
            joined and multicast sent there only, by index.
        @param lookup: see L{lookup}; the default asks the OS.
        @param ttl: the multicast TTL (IPv4) or hop limit (IPv6); 255, as
            RFC 6762 §11 wants.
        @param loopback: whether our own multicast comes back to this host
            (other stacks here need it).
        """
        super().__init__(
            port, proto, interface or self._any_address, maxPacketSize, reactor, listenMultiple
        )
        self.network_interface = network_interface
        self.lookup: InterfaceLookup = lookup or _SystemLookup()
        self.multicast_ttl = ttl
        self.multicast_loopback = loopback
        #: Datagrams dropped here, by reason (the transport shares its own).
        self.counters: Counter[str] = Counters()
        self._contexts: dict[tuple[int, bytes], _Context] = {}
        self._ancillary: dict[tuple[int, str], Any] = {}
        self._pktinfo_protocol = IPktInfoDatagramProtocol.providedBy(proto)
        self._buffer = bytearray(maxPacketSize)
        self._view = memoryview(self._buffer)

    def _datagrams(self) -> Iterator[tuple[bytes, list[tuple[int, int, bytes]], Any]]:
        """
        Read what is waiting, up to C{maxThroughput} bytes, as C{(datagram,
        ancillary data, source address)}: what both families' C{doRead}
        share.  A truncated datagram is counted and skipped (a prefix of a
        message is not the message, RFC 6762 §17); a refused send reported
        on a connected port goes to the protocol.

        Each datagram is read into the port's one buffer and copied out at
        its size: C{recvmsg} would allocate C{maxPacketSize} bytes per
        datagram and shrink them, which on a busy LAN left the heap
        fragmented (about 130 bytes of RSS per cached record, measured;
        issue 13).
        """
        read = 0
        recvmsg_into = self.socket.recvmsg_into
        buffers = [self._buffer]
        view = self._view
        while read < self.maxThroughput:
            try:
                size, ancdata, flags, addr = recvmsg_into(buffers, _ANCILLARY_SPACE)
            except OSError as se:
                if se.errno in _READ_REFUSE and self._connectedAddr:
                    self.protocol.connectionRefused()
                elif se.errno not in _READ_IGNORE and se.errno not in _READ_REFUSE:
                    raise
                return
            read += size
            if flags & _MSG_TRUNC:
                # Larger than maxPacketSize (9000, RFC 6762 §17).
                self.counters["dropped.oversized"] += 1
                continue
            yield view[:size].tobytes(), ancdata, addr

    def refresh(self) -> None:
        """
        Forget cached interface contexts: addresses may have changed.
        """
        self._contexts.clear()
        forget = getattr(self.lookup, "forget", None)
        if forget is not None:
            forget()

    def _context(self, ifindex: int, dst: bytes) -> _Context:
        key = (ifindex, dst)
        ctx = self._contexts.get(key)
        if ctx is None:
            iface = self.lookup(ifindex) if ifindex else None
            ctx = self._context_type(
                index=ifindex,
                name=iface.name if iface is not None else "?",
                destination=self._destination_text(dst),
                interface=iface,
            )
            if iface is not None:
                self._contexts[key] = ctx
        return ctx

    @staticmethod
    def _destination_text(dst: bytes) -> str:
        """
        The destination address C{dst} (packed, from the ancillary data)
        as text; the family's unspecified address when there was none.
        """
        raise NotImplementedError

    def _index_for(self, interface: object) -> int | None:
        """
        The interface index a C{joinGroup}/C{leaveGroup} call names: an
        index as such, or this port's own interface for C{""}; C{None}
        for anything else (the family decides what that means).
        """
        if isinstance(interface, int):
            return interface
        if interface == "" and self.network_interface is not None:
            return self.network_interface.index
        return None

    def _set_membership(
        self, level: int, option: int, request: Callable[[], bytes]
    ) -> defer.Deferred:
        """
        Set the membership C{option} to C{request()}: a Deferred that
        fires with 1, or fails with the C{OSError} or C{ValueError} (a
        malformed group) as C{joinGroup} callers expect.
        """
        try:
            self.socket.setsockopt(level, option, request())
        except (OSError, ValueError) as e:
            return defer.fail(e)
        return defer.succeed(1)


class PktInfoMulticastPort(PktInfoPortBase[InterfaceContext]):
    """
    A C{twisted.internet.udp.MulticastPort} whose reader uses C{recvmsg} with C{IP_PKTINFO}.

    Construct it and call C{startListening()} (C{reactor.listenMulticast}
    cannot take a port class)::

        port = PktInfoMulticastPort(5353, proto, network_interface=eth0,
                                    reactor=reactor)
        port.startListening()
        port.joinGroup("224.0.0.251")

    With C{network_interface}, the port joins groups and sends multicast on
    that interface only (by index, C{ip_mreqn}), with TTL 255, and does not
    hear groups joined by other sockets (C{IP_MULTICAST_ALL} = 0).

    @ivar lookup: maps an interface index to a L{NetworkInterface}; the
        transport gives its own view, the default asks the OS.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reply_ancillary: dict[tuple[int, bytes], tuple] = {}
        #: Optional L{ReplyStore} consulted before the protocol.
        self.reply_cache: ReplyStore | None = None

    # -- socket set-up -----------------------------------------------------

    def createInternetSocket(self) -> socket.socket:
        skt = super().createInternetSocket()
        if self.listenMultiple and REUSEPORT_SPREADS_MULTICAST:
            # Twisted set SO_REUSEPORT too.  On Linux a SO_REUSEPORT group
            # gets each multicast datagram on ONE socket, chosen by the
            # group's hash and blind to which interface each socket joined
            # on (measured: two sockets joined on lana and lanb; every
            # datagram of both links went to one of them).  SO_REUSEADDR
            # alone still shares 5353 with avahi, python-zeroconf,
            # mDNSResponder and systemd-resolved (all set it), and every
            # socket gets its own copy of what arrives where it joined.
            skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        if IP_PKTINFO is not None:
            skt.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        else:  # pragma: no cover - BSD/macOS
            if IP_RECVIF is not None:
                skt.setsockopt(socket.IPPROTO_IP, IP_RECVIF, 1)
            if IP_RECVDSTADDR is not None:
                skt.setsockopt(socket.IPPROTO_IP, IP_RECVDSTADDR, 1)
        if sys.platform.startswith("linux"):
            # Without this, a socket hears every group any socket on the
            # host joined, on any interface.
            skt.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        return skt

    def startListening(self) -> None:
        super().startListening()
        skt = self.socket
        skt.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.multicast_ttl)
        # RFC 6762 §11: responses sent by unicast (QU and legacy replies)
        # also leave with TTL 255; the system default would be 64.
        skt.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, IP_TTL)
        skt.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(self.multicast_loopback)
        )
        if self.network_interface is not None:
            self.setOutgoingInterfaceIndex(self.network_interface.index)

    def setOutgoingInterfaceIndex(self, ifindex: int) -> None:
        """
        Send multicast on interface C{ifindex} (C{IP_MULTICAST_IF}, ip_mreqn).
        """
        self.socket.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, ip_mreqn("0.0.0.0", ifindex)
        )

    def joinGroup(self, addr: str, interface: str = "") -> defer.Deferred:
        """
        Join C{addr}.  With an interface index (an int, or our own
        C{network_interface} when C{interface} is empty) the join uses
        C{ip_mreqn}; an address string falls back to Twisted's C{ip_mreq}.
        """
        return self._membership(socket.IP_ADD_MEMBERSHIP, addr, interface)

    def leaveGroup(self, addr: str, interface: str = "") -> defer.Deferred:
        return self._membership(socket.IP_DROP_MEMBERSHIP, addr, interface)

    def _membership(self, option: int, addr: str, interface: str | int) -> defer.Deferred:
        index = self._index_for(interface)
        if index is None:
            assert isinstance(interface, str)  # an int is an index
            if option == socket.IP_ADD_MEMBERSHIP:
                return super().joinGroup(addr, interface)
            return super().leaveGroup(addr, interface)
        return self._set_membership(
            socket.IPPROTO_IP, option, lambda: ip_mreqn(addr, index)
        )

    # -- reading -----------------------------------------------------------

    _context_type = InterfaceContext

    @staticmethod
    def _destination_text(dst: bytes) -> str:
        return socket.inet_ntoa(dst) if len(dst) == 4 else "0.0.0.0"

    def _parse_ancillary(self, ancdata: list[tuple[int, int, bytes]]) -> tuple[int, bytes]:
        ifindex, dst = 0, b""
        for level, kind, data in ancdata:
            if level != socket.IPPROTO_IP:
                continue
            if kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
                ifindex, _spec_dst, dst = _IN_PKTINFO.unpack_from(data)
            elif IP_RECVDSTADDR is not None and kind == IP_RECVDSTADDR:
                dst = bytes(data[:4])  # pragma: no cover - BSD/macOS
            elif IP_RECVIF is not None and kind == IP_RECVIF and len(data) >= 4:
                # struct sockaddr_dl: len, family, then u_short sdl_index.
                ifindex = struct.unpack_from("H", data, 2)[0]  # pragma: no cover
        return ifindex, dst

    def doRead(self) -> None:
        # The per-datagram path of every query: look-ups hoisted out of the
        # loop, and the usual control message (exactly one IP_PKTINFO)
        # unpacked without the general loop.
        protocol = self.protocol
        pktinfo = self._pktinfo_protocol
        contexts = self._contexts
        unpack = _IN_PKTINFO.unpack_from
        level, kind = socket.IPPROTO_IP, IP_PKTINFO
        cache = self.reply_cache
        if cache is not None:
            replies, sources, served = cache.replies, cache.sources, cache.served
            exclude_port = cache.exclude_port
            sendmsg = self.socket.sendmsg
            ancillary = self._reply_ancillary
        for data, ancdata, addr in self._datagrams():
            try:
                if pktinfo:
                    if len(ancdata) == 1:
                        cmsg_level, cmsg_type, cmsg_data = ancdata[0]
                        if cmsg_type == kind and cmsg_level == level and len(cmsg_data) >= 12:
                            ifindex, _spec_dst, dst = unpack(cmsg_data)
                        else:
                            ifindex, dst = self._parse_ancillary(ancdata)
                    else:
                        ifindex, dst = self._parse_ancillary(ancdata)
                    if cache is not None and replies and addr[1] != exclude_port:
                        reply = replies.get((ifindex, data[2:]))
                        if reply is not None and sources.get((ifindex, addr[0])):
                            served(self._answer_cached(data[:2] + reply, addr, ifindex, dst, sendmsg, ancillary))
                            continue
                    ctx = contexts.get((ifindex, dst))
                    if ctx is None:
                        ctx = self._context(ifindex, dst)
                    protocol.datagramReceivedOn(data, addr[:2], ctx)
                else:
                    protocol.datagramReceived(data, addr[:2])
            except BaseException:
                log.failure("datagram handler failed; datagram dropped")

    def _answer_cached(self, reply: bytes, addr: tuple, ifindex: int, dst: bytes, sendmsg: Callable, ancillary: dict) -> bool:
        """
        Send a L{ReplyStore} reply out of the interface the query came in
        on, from the address it was sent to (or the interface's own, for a
        query sent to a group).

        @return: whether the kernel took it.
        """
        key = (ifindex, dst)
        anc = ancillary.get(key)
        if anc is None:
            source = b"\0\0\0\0" if 224 <= dst[0] <= 239 else dst
            anc = ((socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(ifindex, source, b"\0\0\0\0")),)
            if len(ancillary) < 1024:
                ancillary[key] = anc
        try:
            sendmsg((reply,), anc, 0, addr)
        except OSError:
            return False
        return True

    # -- writing -----------------------------------------------------------

    def writeOn(
        self, datagram: bytes, addr: tuple[str, int], ifindex: int, source: str = "0.0.0.0"
    ) -> None:
        """
        Send C{datagram} to C{addr} out of interface C{ifindex}, with
        C{source} as the source address when it is not C{0.0.0.0}.

        For unicast replies: an C{in_pktinfo} control message pins the
        outgoing interface, so the reply leaves by the link the query came in
        on even when routing would choose another (two links, one subnet).
        """
        if IP_PKTINFO is None:  # pragma: no cover - BSD/macOS
            return self.write(datagram, addr)
        ancillary = self._ancillary.get((ifindex, source))
        if ancillary is None:
            cmsg = _IN_PKTINFO.pack(ifindex, socket.inet_aton(source), b"\0\0\0\0")
            ancillary = ((socket.IPPROTO_IP, IP_PKTINFO, cmsg),)
            if len(self._ancillary) < 1024:  # a few (interface, source) pairs
                self._ancillary[(ifindex, source)] = ancillary
        try:
            self.socket.sendmsg((datagram,), ancillary, 0, addr)
        except OSError as se:
            if se.errno == errno.EINTR:
                return self.writeOn(datagram, addr, ifindex, source)
            if se.errno == errno.EMSGSIZE:
                raise MessageLengthError("message too long")
            if se.errno == errno.ECONNREFUSED:
                return None
            raise
        return None
