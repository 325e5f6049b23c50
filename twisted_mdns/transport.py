# -*- test-case-name: tests.test_transport,tests.test_ipv6_transport -*-
"""
The set of per-link multicast ports, as one transport.

Per selected link, one port per address family the link runs (RFC 6762
§14: a link, not a socket, is the unit; L{twisted_mdns.policy.Selection.families_of}
says which families): an IPv4 L{PktInfoMulticastPort} joined to
224.0.0.251, an IPv6 L{PktInfo6MulticastPort} joined to ff02::fb, each
sending on its own link only.  Datagrams of both families reach the same
receiver, and are attributed to the interface C{IP_PKTINFO} /
C{IPV6_PKTINFO} names, never to the socket that read them: a unicast
datagram from link B may be read by link A's socket, and is still B's.  A
datagram from an interface we do not run on (a VPN, say) is dropped and
counted.  The context says the family (C{context.family}).

Sending (L{InterfaceTransport.send}) is by link: multicast goes out on
every family port the link runs unless one family is asked for; a unicast
destination picks the port of its own family (an IPv6 link-local one with
the scope of the link, whatever zone it carried).
"""

from __future__ import annotations

import errno
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Union

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.constants import MDNS_GROUP, MDNS_GROUP6, MDNS_PORT
from twisted_mdns.counters import Counters
from twisted_mdns.families import Family, link_families
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort, ReplyStore
from twisted_mdns.pktinfo6 import PktInfo6MulticastPort

log = Logger()

__all__ = ["InterfaceTransport", "LinkPorts", "TransportChange"]


#: errno values that mean "the interface is gone or unusable right now":
#: counted and logged once per interface, never raised to the caller.
_GONE = {
    errno.ENODEV,
    errno.ENXIO,
    errno.EADDRNOTAVAIL,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTUNREACH,
    errno.EPERM,
}

#: What the caller gives as a destination: C{(host, port)}, or for IPv6
#: also the socket module's C{(host, port, flowinfo, scope_id)}.
Destination = Union[tuple[str, int], tuple[str, int, int, int]]

#: Which families a selected link runs (C{Selection.families_of}).
FamiliesOf = Callable[[NetworkInterface], Family]

_FAMILY_OF: dict[int, Family] = {socket.AF_INET: Family.IPV4, socket.AF_INET6: Family.IPV6}


@dataclass(frozen=True)
class TransportChange:
    """
    What L{InterfaceTransport.apply} did.

    A link that gained or lost a family port (its IPv6 addresses became
    publishable, or the last one went) is C{readdressed}: its addresses
    changed, which is what made the family come or go.
    """

    added: tuple[NetworkInterface, ...] = ()
    removed: tuple[NetworkInterface, ...] = ()
    readdressed: tuple[tuple[NetworkInterface, NetworkInterface], ...] = ()
    #: Fires once the ports of removed interfaces are closed (a port closes
    #: on the next reactor turn; until then its socket still takes its share
    #: of unicast datagrams).
    closed: defer.Deferred | None = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.readdressed)


class LinkPorts:
    """
    The ports of one link: its IPv4 port and its IPv6 port, either of
    which may be absent (an IPv6-only link, a family turned off).

    @ivar interface: the link as last applied.
    @ivar ipv4: its L{PktInfoMulticastPort}, if it runs IPv4.
    @ivar ipv6: its L{PktInfo6MulticastPort}, if it runs IPv6.
    @ivar failing: the families whose last send failed (a failure is logged
        once, until a send succeeds again).
    """

    __slots__ = ("interface", "ipv4", "ipv6", "failing")

    def __init__(self, interface: NetworkInterface) -> None:
        self.interface = interface
        self.ipv4: PktInfoMulticastPort | None = None
        self.ipv6: PktInfo6MulticastPort | None = None
        self.failing: set[int] = set()

    def __repr__(self) -> str:
        return f"<LinkPorts {self.interface.name} {self.families.label}>"

    @property
    def families(self) -> Family:
        """
        The families this link has a port for.
        """
        got = Family.NONE
        if self.ipv4 is not None:
            got |= Family.IPV4
        if self.ipv6 is not None:
            got |= Family.IPV6
        return got

    def port(self, family: int) -> Any:
        """
        The port of C{family} (C{AF_INET} or C{AF_INET6}), or C{None}.
        """
        return self.ipv6 if family == socket.AF_INET6 else self.ipv4

    def all_ports(self) -> list[Any]:
        return [p for p in (self.ipv4, self.ipv6) if p is not None]


@implementer(IPktInfoDatagramProtocol)
class _PortProtocol(DatagramProtocol):
    """
    Sits on one port and hands its datagrams to the transport, which decides
    the interface from the context, not from this port.
    """

    def __init__(self, transport_: "InterfaceTransport") -> None:
        self._owner = transport_

    def datagramReceivedOn(self, datagram: bytes, address: tuple, context: InterfaceContext) -> None:
        self._owner._received(datagram, address, context)

    def datagramReceived(self, datagram: bytes, address: tuple) -> None:  # pragma: no cover
        self._owner.counters["dropped.no-pktinfo"] += 1


def _is_ipv6(host: str) -> bool:
    return ":" in host


class InterfaceTransport:
    """
    Per-link multicast ports for one port number, IPv4 and IPv6.

    @ivar receiver: an L{IPktInfoDatagramProtocol}; gets every datagram that
        arrived on a selected interface, of either family.
    @ivar families: the families wanted where L{apply} is not told per link.
    @ivar interfaces: index -> the L{NetworkInterface} we run on.
    @ivar links: index -> its L{LinkPorts}.
    @ivar counters: C{transport.sent}, drops and errors by reason (what it
        passes on, the protocol counts as C{received}).  Prefixed, because an
        L{MDNSService} shares one counter between the transport, protocol and
        responder: no event is counted twice under one name.
    """

    port_factory = PktInfoMulticastPort
    port6_factory = PktInfo6MulticastPort

    def __init__(
        self,
        receiver: Any,
        reactor: Any = None,
        group: str = MDNS_GROUP,
        port: int = MDNS_PORT,
        max_packet_size: int = 9000,
        loopback: bool = True,
        counters: Counter | None = None,
        group6: str = MDNS_GROUP6,
        families: Family = Family.BOTH,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.receiver = receiver
        self.reactor = reactor
        self.group = group
        self.group6 = group6
        self.port_number = port
        self.max_packet_size = max_packet_size
        self.loopback = loopback
        self.families = families
        self.interfaces: dict[int, NetworkInterface] = {}
        self.links: dict[int, LinkPorts] = {}
        self.counters: Counter[str] = counters if counters is not None else Counters()
        #: Replies computed for exact repeated queries, consulted by every
        #: IPv4 port's reader (see L{ReplyStore}); set by L{serve_replies}.
        #: IPv6 queries take the protocol's path (the responder's own fast
        #: path still answers repeats there before parsing).
        self.reply_cache: ReplyStore | None = None

    @property
    def ports(self) -> dict[int, PktInfoMulticastPort]:
        """
        Index -> the link's IPv4 port, for the links that run IPv4.
        """
        return {ix: lp.ipv4 for ix, lp in self.links.items() if lp.ipv4 is not None}

    @property
    def ports6(self) -> dict[int, PktInfo6MulticastPort]:
        """
        Index -> the link's IPv6 port, for the links that run IPv6.
        """
        return {ix: lp.ipv6 for ix, lp in self.links.items() if lp.ipv6 is not None}

    def families_of(self, interface: NetworkInterface | int) -> Family:
        """
        The families C{interface} (or index) has a port for now.
        """
        index = interface if isinstance(interface, int) else interface.index
        link = self.links.get(index)
        return link.families if link is not None else Family.NONE

    def serve_replies(self, store: ReplyStore | None) -> None:
        """
        Have every IPv4 port's reader (now and later) answer exact repeats
        from C{store}, or stop with C{None}.  The store stays its owner's
        (the responder's legacy-unicast phase).
        """
        self.reply_cache = store
        for port in self.ports.values():
            port.reply_cache = store

    # -- selection ---------------------------------------------------------

    def apply(self, selected: Iterable[NetworkInterface], families: FamiliesOf | None = None) -> TransportChange:
        """
        Make the open ports match C{selected}: open ports for new
        interfaces, close those of interfaces no longer selected, take the
        new addresses of interfaces that were readdressed, and give each
        link a port for each family it runs now.

        @param families: which families each link runs (the policy's
            C{Selection.families_of}); by default those of L{families} the
            link has addresses for (L{twisted_mdns.families.link_families}).
        """
        decide: FamiliesOf = families or (lambda iface: link_families(iface, self.families)[0])
        wanted: dict[int, tuple[NetworkInterface, Family]] = {}
        for iface in selected:
            fams = decide(iface) & self.families
            if fams:
                wanted[iface.index] = (iface, fams)
        removed = [self.interfaces[ix] for ix in list(self.interfaces) if ix not in wanted]
        closing = [self._close(iface.index) for iface in removed]
        added, readdressed = [], []
        for index, (iface, fams) in sorted(wanted.items()):
            link = self.links.get(index)
            if link is None:
                link = LinkPorts(iface)
                self.interfaces[index] = iface
                self.links[index] = link
                self._open_families(link, fams)
                if link.families:
                    added.append(iface)
                else:
                    self.interfaces.pop(index, None)
                    self.links.pop(index, None)
                continue
            old = link.interface
            before = link.families
            link.interface = iface
            self.interfaces[index] = iface
            closing.extend(self._close_families(link, before & ~fams))
            self._open_families(link, fams & ~before)
            if not link.families:
                closing.append(self._close(index))
                removed.append(old)
            elif old != iface or link.families != before:
                readdressed.append((old, iface))
        if readdressed:
            # Any port may have read (and cached a context for) any index.
            for link in self.links.values():
                for port in link.all_ports():
                    port.refresh()
        change = TransportChange(
            tuple(added), tuple(removed), tuple(readdressed),
            closed=defer.gatherResults(closing, consumeErrors=True),
        )
        if change:
            log.info(
                "transport: {ports} link(s) open; added {added}, removed "
                "{removed}, readdressed {readdressed}; families: {families}",
                ports=len(self.links),
                added=[i.name for i in added] or "none",
                removed=[i.name for i in removed] or "none",
                readdressed=[n.name for _, n in readdressed] or "none",
                families=", ".join(f"{lp.interface.name} {lp.families.label}" for lp in self.links.values())
                or "none",
            )
        return change

    def _open_families(self, link: LinkPorts, fams: Family) -> None:
        iface = link.interface
        groups = []
        if Family.IPV4 in fams:
            link.ipv4 = self._open4(iface)
            if link.ipv4 is not None:
                groups.append(f"{self.group}:{self.port_number}")
        if Family.IPV6 in fams:
            link.ipv6 = self._open6(iface)
            if link.ipv6 is not None:
                groups.append(f"[{self.group6}]:{self.port_number}")
        if groups:
            log.info(
                "listening on {name} (index {index}) for {groups}",
                name=iface.name, index=iface.index, groups=" and ".join(groups),
            )

    def _close_families(self, link: LinkPorts, fams: Family) -> list[defer.Deferred]:
        out = []
        if Family.IPV4 in fams and link.ipv4 is not None:
            out.append(defer.maybeDeferred(link.ipv4.stopListening))
            link.ipv4 = None
        if Family.IPV6 in fams and link.ipv6 is not None:
            out.append(defer.maybeDeferred(link.ipv6.stopListening))
            link.ipv6 = None
        return out

    def _start(self, port: Any, iface: NetworkInterface, group: str, label: str) -> bool:
        """
        Start C{port} and join C{group} on C{iface}; on failure count it,
        log it and close the port.
        """
        port.counters = self.counters
        try:
            port.startListening()
        except Exception as e:
            self.counters["errors.open"] += 1
            log.error("cannot open an {family} port on {name}: {error}", family=label, name=iface.name, error=e)
            return False
        failures: list = []
        port.joinGroup(group).addErrback(failures.append)
        if failures:
            self.counters["errors.join"] += 1
            log.error(
                "cannot join {group} on {name}: {error}",
                group=group, name=iface.name, error=failures[0].getErrorMessage(),
            )
            port.stopListening()
            return False
        log.debug(
            "{family} port open on {name} (index {index}) for {group}:{port}",
            family=label, name=iface.name, index=iface.index, group=group, port=self.port_number,
        )
        return True

    def _open4(self, iface: NetworkInterface) -> PktInfoMulticastPort | None:
        port = self._open(self.port_factory, iface, "")
        port.reply_cache = self.reply_cache
        return port if self._start(port, iface, self.group, "IPv4") else None

    def _open6(self, iface: NetworkInterface) -> PktInfo6MulticastPort | None:
        port = self._open(self.port6_factory, iface, "::")
        return port if self._start(port, iface, self.group6, "IPv6") else None

    def _open(self, factory: Any, iface: NetworkInterface, any_address: str) -> Any:
        """
        A port of C{factory} (one family's) for C{iface}, not yet listening:
        bound to the family's any-address, told its link and how to look up
        the others (arrival contexts come from pktinfo, RFC 6762 §15).
        """
        return factory(
            self.port_number,
            _PortProtocol(self),
            interface=any_address,
            maxPacketSize=self.max_packet_size,
            reactor=self.reactor,
            listenMultiple=True,
            network_interface=iface,
            lookup=self.interfaces.get,
            loopback=self.loopback,
        )

    def _close(self, index: int) -> defer.Deferred:
        self.interfaces.pop(index, None)
        link = self.links.pop(index, None)
        if link is None:
            return defer.succeed(None)
        return defer.gatherResults(self._close_families(link, Family.BOTH), consumeErrors=True)

    def close(self) -> defer.Deferred:
        """
        Close every port.
        """
        return defer.gatherResults(
            [self._close(index) for index in list(self.links)], consumeErrors=True
        )

    # -- traffic -----------------------------------------------------------

    def _received(self, datagram: bytes, address: tuple, context: InterfaceContext) -> None:
        if context.index not in self.interfaces:
            self.counters["dropped.unselected-interface"] += 1
            return
        self.receiver.datagramReceivedOn(datagram, address, context)

    def send(
        self,
        datagram: bytes,
        interface: NetworkInterface | int,
        destination: Destination | None = None,
        source: str | None = None,
        family: int | None = None,
    ) -> bool:
        """
        Send C{datagram} on the link C{interface} (an index or the
        interface).

        @param destination: C{None}: multicast, to 224.0.0.251 on the
            link's IPv4 port and to ff02::fb on its IPv6 port (each pinned
            to the link).  Otherwise a unicast destination, C{(host, port)}
            or an IPv6 C{(host, port, flowinfo, scope_id)}, sent on the port
            of its family, out of this link (a link-local destination gets
            the link's scope).
        @param source: for unicast, the source address to send from (one of
            the link's, such as the address a query was sent to); C{None},
            C{0.0.0.0} or C{::} let the kernel pick one of the link's.
        @param family: for multicast, only this family (C{AF_INET} or
            C{AF_INET6}): an answer to a query goes back over the family
            the query came over.
        @return: whether it left on at least one family.  An interface
            that vanished or went down is counted, logged once, and not
            raised.
        """
        index = interface if isinstance(interface, int) else interface.index
        link = self.links.get(index)
        if link is None:
            self.counters["errors.send-no-port"] += 1
            return False
        if destination is None:
            sent = tried = False
            for fam in (socket.AF_INET, socket.AF_INET6):
                if family is not None and fam != family:
                    continue
                port = link.port(fam)
                if port is None:
                    continue
                tried = True
                sent = self._write(link, fam, port, datagram, None, None) or sent
            if not tried:
                self.counters["errors.send-no-port"] += 1
            return sent
        fam = socket.AF_INET6 if _is_ipv6(destination[0]) else socket.AF_INET
        port = link.port(fam)
        if port is None:
            self.counters["errors.send-no-port"] += 1
            return False
        return self._write(link, fam, port, datagram, destination, source)

    def _write(self, link: LinkPorts, fam: int, port: Any, datagram: bytes,
               destination: Destination | None, source: str | None) -> bool:
        index = link.interface.index
        try:
            if fam == socket.AF_INET6:
                if destination is None:
                    port.writeOn(datagram, (self.group6, self.port_number), index)
                else:
                    src = source if source and _is_ipv6(source) else "::"
                    port.writeOn(datagram, destination, index, src)
            elif destination is None:
                port.write(datagram, (self.group, self.port_number))
            else:
                src = source if source and not _is_ipv6(source) else "0.0.0.0"
                port.writeOn(datagram, destination, index, src)
        except Exception as e:  # OSError, MessageLengthError and friends
            self._send_failed(link, fam, e)
            return False
        self.counters["transport.sent"] += 1
        if link.failing:
            link.failing.discard(fam)
        return True

    def _send_failed(self, link: LinkPorts, fam: int, error: Exception) -> None:
        self.counters["transport.errors.send"] += 1
        code = getattr(error, "errno", None)
        if fam not in link.failing:
            link.failing.add(fam)
            log.warn(
                "send on {name} ({family}) failed: {error}{gone}",
                name=link.interface.name,
                family=_FAMILY_OF[fam].label,
                error=error,
                gone=" (interface gone or down?)" if code in _GONE else "",
            )
