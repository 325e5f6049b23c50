# -*- test-case-name: tests.test_pktinfo6 -*-
"""
The IPv6 half of a link: a multicast port on C{[::]:5353} that knows which
interface each datagram came in on.

Why a module of its own beside L{twisted_mdns.pktinfo}: every socket option
and control message differs between the families (C{IPV6_JOIN_GROUP} with
an index instead of C{ip_mreqn}, C{in6_pktinfo} instead of C{in_pktinfo},
hop limits instead of TTLs, scope ids), while what the port promises its
protocol is the same: C{datagramReceivedOn(datagram, address, context)},
the arrival interface taken from the kernel's C{IPV6_PKTINFO} and never
from which socket read the datagram.

One thing only IPv6 needs: Linux hands a datagram for ff02::fb to every
IPv6 socket that joined ff02::fb, on I{whichever} interface it joined
(C{inet6_mc_check} compares the group, not the interface, and
C{IPV6_MULTICAST_ALL} does not change that).  With one port per link, each
multicast datagram would reach every link's port: measured with 240 links,
each datagram was read 240 times and the receive buffers overflowed, and a
unicast question (delivered to one socket of the port group only) was lost
behind them.  So a port with a link binds its socket to that device
(C{SO_BINDTODEVICE}): the kernel then hands it only what arrived there, and
unicast to C{[address]:5353} reaches the port of the link it came in on.
This is a filter, not the attribution: the arrival interface is still the
one C{IPV6_PKTINFO} names.  Where binding is refused (an unprivileged
process on a kernel before 5.7), the port drops multicast datagrams that
arrived on another interface, counted as C{dropped.other-interface}, as it
does anyway; unicast datagrams are never dropped for that: their context
names the interface they really arrived on, and the owner routes them by
it.

Set-up (RFC 6762 §3, §11, §15)::

    port = PktInfo6MulticastPort(5353, proto, network_interface=eth0,
                                 reactor=reactor)
    port.startListening()
    port.joinGroup("ff02::fb")
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any, Union

from twisted.internet import defer
from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.logger import Logger

from twisted_mdns.constants import IPV6_UDP_OVERHEAD, MAX_PACKET, MDNS_GROUP6, MDNS_PORT
from twisted_mdns.pktinfo import REUSEPORT_SPREADS_MULTICAST, InterfaceContext, PktInfoPortBase

log = Logger()

__all__ = [
    "InterfaceContext6",
    "PktInfo6MulticastPort",
    "ipv6_mreq",
    "max_payload6",
]

#: Linux values, used where the Python build does not export the names.
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)

#: struct in6_pktinfo: the address (16 bytes) and the interface index.
_IN6_PKTINFO = struct.Struct("16sI")
_ANY6 = b"\0" * 16

#: A destination as a caller gives it: C{(host, port)} with an optional
#: C{%zone} in the host, or the 4-tuple of C{socket} (host, port,
#: flowinfo, scope_id).
Address6 = Union[tuple[str, int], tuple[str, int, int, int]]


def ipv6_mreq(group: str, ifindex: int) -> bytes:
    """
    A C{struct ipv6_mreq}: the group and the interface I{index} to join or
    leave it on (IPv6 has no by-address form, so no ambiguity either).
    """
    return socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)


def max_payload6(mtu: int) -> int:
    """
    The largest mDNS message an IPv6 datagram carries on a link of C{mtu}
    (RFC 6762 §17): the MTU less 48 bytes of IPv6 and UDP headers, and
    never more than 9000.
    """
    return max(0, min(MAX_PACKET, mtu - IPV6_UDP_OVERHEAD))


@dataclass(frozen=True)
class InterfaceContext6(InterfaceContext):
    """
    Where an IPv6 datagram arrived: L{InterfaceContext}'s shape, with the
    link's IPv6 addresses and prefixes.

    L{InterfaceContext.on_link} (inherited) is the RFC 6762 §11 check: a source in
    fe80::/10 is always on-link (it cannot have come from anywhere else),
    any other only when it is in one of the link's prefixes.
    """

    family: int = socket.AF_INET6

    @property
    def addresses(self) -> tuple[ipaddress.IPv6Interface, ...]:  # type: ignore[override]
        """
        The receiving interface's IPv6 addresses with prefixes, whatever
        their state (a tentative address's prefix is on-link too).
        """
        return self.interface.ipv6 if self.interface is not None else ()

    @property
    def prefixes(self) -> tuple[ipaddress.IPv6Network, ...]:
        """
        The receiving interface's IPv6 prefixes.
        """
        return self.interface.ipv6_prefixes if self.interface is not None else ()

    @property
    def max_payload(self) -> int:
        """
        The largest message this link carries over IPv6 (RFC 6762 §17).
        """
        return max_payload6(self.interface.mtu if self.interface is not None else 1280)


class PktInfo6MulticastPort(PktInfoPortBase[InterfaceContext6]):
    """
    A C{twisted.internet.udp.MulticastPort} on C{[::]} whose reader uses C{recvmsg} with
    C{IPV6_PKTINFO}; the IPv6 sibling of
    L{twisted_mdns.pktinfo.PktInfoMulticastPort}.

    The socket is C{IPV6_V6ONLY} (the IPv4 port of the same link owns IPv4;
    a dual-stack socket would read IPv4 datagrams as mapped addresses), has
    C{SO_REUSEADDR} but not C{SO_REUSEPORT} (which on Linux hands each
    multicast datagram to one socket of the group only; see L{pktinfo}),
    and with C{network_interface} joins groups and sends multicast on that
    interface only, by index, with hop limit 255 for multicast and unicast
    alike (RFC 6762 §11).
    """

    _any_address = "::"

    def __init__(self, *args: Any, bind_to_device: bool = True, **kwargs: Any) -> None:
        """
        The arguments of L{PktInfoPortBase}, and:

        @param bind_to_device: with C{network_interface}, bind the socket to
            that device (C{SO_BINDTODEVICE}, see the module docstring); off,
            the port reads every link's ff02::fb datagrams and drops the
            others' after reading (the fallback, kept testable).
        @raise InvalidAddressError: the interface address is not IPv6.
        """
        super().__init__(*args, **kwargs)
        if self.addressFamily != socket.AF_INET6:
            raise InvalidAddressError(self.interface, "not an IPv6 address")
        self.bind_to_device = bind_to_device

    # -- socket set-up -----------------------------------------------------

    def createInternetSocket(self) -> socket.socket:
        skt = super().createInternetSocket()
        if self.listenMultiple and REUSEPORT_SPREADS_MULTICAST:
            skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        skt.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        if sys.platform.startswith("linux"):
            try:
                # Do not hear groups only other sockets joined (Linux 4.20+).
                skt.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            except OSError:  # pragma: no cover - older kernels
                pass
        self._bind_to_device(skt)
        return skt

    def _bind_to_device(self, skt: socket.socket) -> None:
        """
        Hear only this port's link (see the module docstring: without it,
        every link's port reads every link's ff02::fb datagrams).
        """
        option = getattr(socket, "SO_BINDTODEVICE", None)
        if self.network_interface is None or option is None or not self.bind_to_device:
            return
        try:
            skt.setsockopt(socket.SOL_SOCKET, option, self.network_interface.name.encode())
        except OSError as e:  # pragma: no cover - unprivileged, kernel < 5.7
            log.debug(
                "{name}: cannot bind the IPv6 port to its device ({error}); "
                "other links' copies are dropped after reading",
                name=self.network_interface.name, error=e,
            )

    def startListening(self) -> None:
        super().startListening()
        skt = self.socket
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.multicast_ttl)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, self.multicast_ttl)
        skt.setsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(self.multicast_loopback)
        )
        if self.network_interface is not None:
            self.setOutgoingInterfaceIndex(self.network_interface.index)

    def setOutgoingInterfaceIndex(self, ifindex: int) -> None:
        """
        Send multicast on interface C{ifindex} (C{IPV6_MULTICAST_IF}).
        """
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)

    def setTTL(self, ttl: int) -> None:
        """
        Set the multicast hop limit (Twisted's C{setTTL} is IPv4-only).
        """
        self.multicast_ttl = ttl
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)

    def getTTL(self) -> int:
        return int(self.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS))

    def setLoopbackMode(self, mode: int) -> None:
        self.multicast_loopback = bool(mode)
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(bool(mode)))

    def getLoopbackMode(self) -> bool:
        return bool(self.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP))

    def joinGroup(self, addr: str = MDNS_GROUP6, interface: Any = "") -> defer.Deferred:
        """
        Join the IPv6 group C{addr} on interface C{interface} (an index), or
        on our own C{network_interface} when it is empty.  Twisted's own
        C{joinGroup} speaks IPv4 only (C{inet_aton}).
        """
        return self._membership(socket.IPV6_JOIN_GROUP, addr, interface)

    def leaveGroup(self, addr: str = MDNS_GROUP6, interface: Any = "") -> defer.Deferred:
        return self._membership(socket.IPV6_LEAVE_GROUP, addr, interface)

    def _membership(self, option: int, addr: str, interface: Any) -> defer.Deferred:
        index = self._index_for(interface)
        if index is None and isinstance(interface, str) and interface:
            try:
                index = socket.if_nametoindex(interface)
            except OSError as e:
                return defer.fail(e)
        # No index: the kernel picks by route (only for ad-hoc ports).
        return self._set_membership(
            socket.IPPROTO_IPV6, option, lambda: ipv6_mreq(addr, index or 0)
        )

    # -- reading -----------------------------------------------------------

    _context_type = InterfaceContext6

    @staticmethod
    def _destination_text(dst: bytes) -> str:
        return socket.inet_ntop(socket.AF_INET6, dst) if len(dst) == 16 else "::"

    @staticmethod
    def _parse_ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, bytes]:
        for level, kind, data in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= _IN6_PKTINFO.size:
                dst, ifindex = _IN6_PKTINFO.unpack_from(data)
                return ifindex, dst
        return 0, b""

    def doRead(self) -> None:
        protocol = self.protocol
        pktinfo = self._pktinfo_protocol
        contexts = self._contexts
        own = self.network_interface.index if self.network_interface is not None else 0
        counters = self.counters
        for data, ancdata, addr in self._datagrams():
            try:
                if not pktinfo:
                    protocol.datagramReceived(data, addr)
                    continue
                ifindex, dst = self._parse_ancillary(ancdata)
                if own and ifindex != own and dst[:1] == b"\xff":
                    # Another link's copy of a group datagram (module doc).
                    counters["dropped.other-interface"] += 1
                    continue
                ctx = contexts.get((ifindex, dst))
                if ctx is None:
                    ctx = self._context(ifindex, dst)
                protocol.datagramReceivedOn(data, addr, ctx)
            except BaseException:
                log.failure("datagram handler failed; datagram dropped")

    # -- writing -----------------------------------------------------------

    def writeOn(
        self, datagram: bytes, addr: Address6, ifindex: int, source: str = "::"
    ) -> None:
        """
        Send C{datagram} to C{addr} out of interface C{ifindex}, from
        C{source} unless it is C{::} (then the kernel picks one of that
        interface's addresses).

        An C{IPV6_PKTINFO} control message pins the interface, so a unicast
        reply leaves by the link its query came in on whatever the routing
        table says.  A link-local or link-scoped multicast destination
        needs a scope: it is always C{ifindex}, whatever zone C{addr}
        carried (a reply goes back where its query came from).

        @raise InvalidAddressError: C{addr} is not an IPv6 address.
        @raise MessageLengthError: larger than the link can carry.
        """
        destination = self._destination(addr, ifindex)
        ancillary = self._ancillary.get((ifindex, source))
        if ancillary is None:
            try:
                packed = socket.inet_pton(socket.AF_INET6, source)
            except OSError:
                raise InvalidAddressError(source, "not an IPv6 source address")
            ancillary = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, _IN6_PKTINFO.pack(packed, ifindex))]
            if len(self._ancillary) < 1024:
                self._ancillary[(ifindex, source)] = ancillary
        while True:
            try:
                self.socket.sendmsg((datagram,), ancillary, 0, destination)
                return
            except OSError as se:
                if se.errno == errno.EINTR:
                    continue
                if se.errno == errno.EMSGSIZE:
                    raise MessageLengthError("message too long")
                if se.errno == errno.ECONNREFUSED:
                    return
                raise

    def writeMulticast(self, datagram: bytes, group: str = MDNS_GROUP6, port: int = MDNS_PORT) -> None:
        """
        Send C{datagram} to C{group} on this port's own link.
        """
        if self.network_interface is None:
            raise ValueError("writeMulticast needs a port made for one network_interface")
        self.writeOn(datagram, (group, port), self.network_interface.index)

    @staticmethod
    def _destination(addr: Address6, ifindex: int) -> tuple[str, int, int, int]:
        host, port = addr[0], addr[1]
        flowinfo = addr[2] if len(addr) > 2 else 0
        scope = addr[3] if len(addr) > 3 else 0
        host = host.split("%", 1)[0]
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidAddressError(host, "not an IPv6 address")
        if ip.is_link_local or (ip.is_multicast and (ip.packed[1] & 0x0F) <= 2):
            scope = ifindex
        return (str(ip), port, flowinfo, scope)
