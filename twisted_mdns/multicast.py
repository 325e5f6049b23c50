# -*- test-case-name: tests.test_multicast -*-
"""
Interface-aware multicast for other Twisted code.

C{reactor.listenMulticast} joins groups with C{ip_mreq}, by address: on a
multi-homed host the kernel then picks the interface from the routing table
(or the first one with that address), and the socket hears the group on
every interface some other socket joined it on.  For streams such as
ka9q-radio's status and data groups, which exist on one LAN only, that is
wrong twice: the join may land on the wrong link, and datagrams from the
other links leak in.

L{listenMulticastOn} joins on exactly one interface, by index
(C{ip_mreqn}), with C{IP_MULTICAST_ALL} off, and sends on that interface
too.  L{resolve_and_listen} is the whole "discover, then join on the right
interface" step: resolve a C{.local} name whose A or AAAA record is a
multicast group on the interfaces mDNS runs on, and listen on the
interface that answered.

Both take IPv6 groups too (C{ff02::/16} link-scope, C{ff05::/16}
site-scope, C{ff15::...} transient...): the port is then a
L{twisted_mdns.pktinfo6.PktInfo6MulticastPort} bound to C{[::]} with
C{IPV6_V6ONLY}, joining with C{IPV6_JOIN_GROUP} by interface index (IPv6
has no by-address join), sending with C{IPV6_MULTICAST_IF} on the same
index, and learning each datagram's arrival interface from
C{IPV6_PKTINFO}.  Linux hands an IPv6 group datagram to every socket that
joined the group on I{any} interface; that port drops the copies that
arrived elsewhere, counted.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Union

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.families import Family
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort
from twisted_mdns.pktinfo6 import PktInfo6MulticastPort
from twisted_mdns.policy import validate_interface

log = Logger()


@implementer(IPktInfoDatagramProtocol)
class _OnlyFrom:
    """
    Stands between the port and the user's protocol and lets through only
    datagrams that arrived on our interface (by C{IP_PKTINFO}).

    The user's protocol is connected to the port itself (its C{transport}
    is the port), and gets C{datagramReceivedOn} if it provides
    L{IPktInfoDatagramProtocol}, else the plain C{datagramReceived}.
    """

    def __init__(self, protocol: Any, iface: NetworkInterface) -> None:
        self.protocol = protocol
        self.iface = iface
        self.dropped = 0
        self._pktinfo = IPktInfoDatagramProtocol.providedBy(protocol)

    def makeConnection(self, transport: Any) -> None:
        self.protocol.makeConnection(transport)

    def doStop(self) -> None:
        self.protocol.doStop()

    def connectionRefused(self) -> None:
        self.protocol.connectionRefused()

    def datagramReceivedOn(self, datagram: bytes, address: Any, context: InterfaceContext) -> None:
        if context.index != self.iface.index:
            self.dropped += 1
            return
        if self._pktinfo:
            self.protocol.datagramReceivedOn(datagram, address, context)
        else:
            self.protocol.datagramReceived(datagram, address)

    def datagramReceived(self, datagram: bytes, address: Any) -> None:  # pragma: no cover
        self.dropped += 1


class OneInterfaceMulticastPort(PktInfoMulticastPort):
    """
    A L{PktInfoMulticastPort} for one interface that passes on only the
    datagrams that arrived on that interface (by C{IP_PKTINFO}), counting
    the others: a second line of defence behind the per-interface join and
    C{IP_MULTICAST_ALL} = 0 (and behind the base port's refusal of
    C{SO_REUSEPORT} on Linux, which load-balances multicast over sockets
    whatever interface they joined on).
    """

    @property
    def dropped(self) -> int:
        """
        Datagrams that arrived on another interface and were dropped.
        """
        return self.protocol.dropped


class OneInterfaceMulticastPort6(PktInfo6MulticastPort):
    """
    The IPv6 L{OneInterfaceMulticastPort}: a
    L{twisted_mdns.pktinfo6.PktInfo6MulticastPort} for one interface that
    passes on only the datagrams that arrived there (by C{IPV6_PKTINFO}).
    The port itself drops other links' copies of group datagrams (counted
    in its C{counters} as C{dropped.other-interface}); the filter in front
    of the protocol drops unicast from elsewhere.
    """

    @property
    def dropped(self) -> int:
        """
        Datagrams that arrived on another interface and were dropped.
        """
        return int(self.protocol.dropped + self.counters["dropped.other-interface"])

    def write(self, datagram: bytes, addr: Any = None) -> None:
        """
        Send C{datagram} to C{addr} out of this port's interface (a
        link-scoped group or link-local address gets its index as scope).
        """
        assert self.network_interface is not None
        self.writeOn(datagram, addr, self.network_interface.index)


#: What L{listenMulticastOn} returns.
MulticastOnPort = Union[OneInterfaceMulticastPort, OneInterfaceMulticastPort6]


class NotResolvedError(LookupError):
    """
    A name did not resolve (to a multicast group) on any interface.

    @ivar name: the name asked for.
    @ivar answers: what did answer, C{{interface: [address, ...]}}.
    """

    def __init__(self, name: str, reason: str, answers: dict | None = None) -> None:
        self.name = name
        self.answers = dict(answers or {})
        super().__init__(f"{name}: {reason}")


def _check_group(group: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """
    C{group} as an address, checked to be a multicast group of either
    family (an IPv6 zone, C{ff02::1%eth0}, is dropped: the interface
    argument says where to join).
    """
    try:
        ip = ipaddress.ip_address(str(group).split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{group!r} is not an IP address") from None
    if not ip.is_multicast:
        raise ValueError(f"{group} is not a multicast group (224.0.0.0/4 or ff00::/8)")
    return ip


def listenMulticastOn(
    reactor: Any,
    group: str,
    port: int,
    protocol: Any,
    interface: NetworkInterface | str | int,
    enumerator: Any = None,
    maxPacketSize: int = 9000,
) -> MulticastOnPort:
    """
    Listen on C{port} and join C{group} (IPv4 or IPv6) on one interface
    only.

    Like C{reactor.listenMulticast(port, protocol, listenMultiple=True)}
    followed by C{joinGroup(group)}, except that the join is by interface
    index (C{ip_mreqn}), the socket does not hear groups joined elsewhere
    (C{IP_MULTICAST_ALL} = 0), multicast it sends leaves by that interface,
    and a protocol providing
    L{twisted_mdns.interfaces.IPktInfoDatagramProtocol} learns the arrival
    interface of every datagram.  Datagrams that arrived on any other
    interface (unicast to the port, say) are dropped.  C{SO_REUSEADDR} is
    set so that other listeners of the same group and port (on other
    interfaces, or other programs) can coexist; C{SO_REUSEPORT} is not (see
    L{OneInterfaceMulticastPort}).

    An IPv6 group (C{ff02::1:3}, C{ff05::1234}, C{ff15::...}) gets an IPv6
    port (L{OneInterfaceMulticastPort6}): C{[::]:port}, C{IPV6_V6ONLY},
    joined with C{IPV6_JOIN_GROUP} by index, hop limit 255, the arrival
    interface from C{IPV6_PKTINFO}.  Its C{write(data, (group, port))}
    leaves by the interface, a link-scoped destination scoped to it.

    @param group: the group, C{"239.1.2.3"} or C{"ff15::7"}.
    @param interface: a L{NetworkInterface}, or what a user types: a name
        (C{eth0}), an IPv4 or IPv6 address or an index.
    @param enumerator: lists the interfaces to find C{interface} among
        (default: the system's).
    @return: the listening L{OneInterfaceMulticastPort} (IPv4) or
        L{OneInterfaceMulticastPort6} (IPv6); C{stopListening()} leaves the
        group.
    @raise twisted_mdns.policy.InterfaceValidationError: unknown interface,
        or one that cannot carry multicast (of the group's family).
    @raise ValueError: C{group} is not a multicast address.
    """
    ip = _check_group(group)
    group = str(ip)
    family = Family.IPV6 if ip.version == 6 else Family.IPV4
    if isinstance(interface, NetworkInterface):
        iface = interface
    else:
        enumerator = enumerator or SystemInterfaceEnumerator()
        iface = validate_interface(interface, enumerator.interfaces(), family)
    port_class, any_address = (
        (OneInterfaceMulticastPort6, "::") if ip.version == 6 else (OneInterfaceMulticastPort, "")
    )
    listener: MulticastOnPort = port_class(
        port,
        _OnlyFrom(protocol, iface),
        interface=any_address,
        maxPacketSize=maxPacketSize,
        reactor=reactor,
        listenMultiple=True,
        network_interface=iface,
    )
    listener.startListening()
    failures: list = []
    listener.joinGroup(group).addErrback(failures.append)
    if failures:
        listener.stopListening()
        failures[0].raiseException()
    log.info(
        "listening for {group}:{port} on {iface} (index {index})",
        group=group, port=listener.getHost().port, iface=iface.name, index=iface.index,
    )
    return listener


def resolve_and_listen(
    querier: Any,
    name: str,
    port: int,
    protocol: Any,
    interface: Any = None,
    timeout: float = 3.0,
    families: Family = Family.BOTH,
) -> "defer.Deferred[tuple[MulticastOnPort, NetworkInterface, str]]":
    """
    Discover a multicast stream by name, then join it on the interface that
    answered.

    Resolves C{name} (C{"hf-status.local"}, whose A record is a group such
    as C{239.1.2.3}, or whose AAAA record is one such as C{ff15::7}) with
    C{querier.resolve_host}, takes the first interface (lowest index)
    whose answer holds a multicast address of C{families}, and calls
    L{listenMulticastOn} there.  Addresses that are not multicast are
    ignored: a unicast address record is a host, not a stream.  When a
    name has a group of each family, the IPv4 one is joined (the first in
    the answer) unless C{families} says otherwise.

    @param querier: a L{twisted_mdns.querier.Querier}.
    @param interface: limit the resolution to one interface; C{None} for
        all of the querier's.
    @param families: which groups to take: L{Family.IPV4}, L{Family.IPV6}
        or both.
    @return: a Deferred firing with C{(port, interface, group)} (an IPv6
        group without zone); failing with L{NotResolvedError} when no
        interface answered with a group.
    """

    def wanted(address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        family = Family.IPV6 if ip.version == 6 else Family.IPV4
        return ip.is_multicast and family in families

    async def run() -> tuple[MulticastOnPort, NetworkInterface, str]:
        answers = await querier.resolve_host(name, interface, timeout)
        choices = []
        for iface in sorted(answers, key=lambda i: i.index):
            groups = [a.split("%", 1)[0] for a in answers[iface] if wanted(a)]
            if groups:
                choices.append((iface, groups[0]))
        if not choices:
            if answers:
                raise NotResolvedError(name, "answered, but with no multicast group", answers)
            raise NotResolvedError(name, f"no answer within {timeout:g} s")
        iface, group = choices[0]
        if len(choices) > 1:
            log.warn(
                "{name} resolved on several interfaces ({all}); listening on {iface}",
                name=name, all=", ".join(f"{i.name}: {g}" for i, g in choices), iface=iface.name,
            )
        listener = listenMulticastOn(querier.reactor, group, port, protocol, iface)
        return listener, iface, group

    return defer.ensureDeferred(run())
