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
interface" step: resolve a C{.local} name whose A record is a multicast
group on the interfaces mDNS runs on, and listen on the interface that
answered.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort
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

    def datagramReceivedOn(
        self, datagram: bytes, address: tuple[str, int], context: InterfaceContext
    ) -> None:
        if context.index != self.iface.index:
            self.dropped += 1
            return
        if self._pktinfo:
            self.protocol.datagramReceivedOn(datagram, address, context)
        else:
            self.protocol.datagramReceived(datagram, address)

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:  # pragma: no cover
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


def _check_group(group: str) -> str:
    try:
        ip = ipaddress.IPv4Address(group)
    except ValueError:
        raise ValueError(f"{group!r} is not an IPv4 address") from None
    if not ip.is_multicast:
        raise ValueError(f"{group} is not a multicast group (224.0.0.0/4)")
    return str(ip)


def listenMulticastOn(
    reactor: Any,
    group: str,
    port: int,
    protocol: Any,
    interface: NetworkInterface | str | int,
    enumerator: Any = None,
    maxPacketSize: int = 9000,
) -> PktInfoMulticastPort:
    """
    Listen on C{port} and join C{group} on one interface only.

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

    @param interface: a L{NetworkInterface}, or what a user types: a name
        (C{eth0}), an IPv4 address or an index.
    @param enumerator: lists the interfaces to find C{interface} among
        (default: the system's).
    @return: the listening L{OneInterfaceMulticastPort};
        C{stopListening()} leaves the group.
    @raise twisted_mdns.policy.InterfaceValidationError: unknown interface,
        or one that cannot carry multicast.
    @raise ValueError: C{group} is not an IPv4 multicast address.
    """
    group = _check_group(group)
    if isinstance(interface, NetworkInterface):
        iface = interface
    else:
        enumerator = enumerator or SystemInterfaceEnumerator()
        iface = validate_interface(interface, enumerator.interfaces())
    listener = OneInterfaceMulticastPort(
        port,
        _OnlyFrom(protocol, iface),
        interface="",
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
) -> "defer.Deferred[tuple[PktInfoMulticastPort, NetworkInterface, str]]":
    """
    Discover a multicast stream by name, then join it on the interface that
    answered.

    Resolves C{name} (C{"hf-status.local"}, whose A record is a group such
    as C{239.1.2.3}) with C{querier.resolve_host}, takes the first
    interface (lowest index) whose answer holds a multicast address, and
    calls L{listenMulticastOn} there.  Addresses that are not multicast are
    ignored: a unicast A record is a host, not a stream.

    @param querier: a L{twisted_mdns.querier.Querier}.
    @param interface: limit the resolution to one interface; C{None} for
        all of the querier's.
    @return: a Deferred firing with C{(port, interface, group)}; failing
        with L{NotResolvedError} when no interface answered with a group.
    """

    async def run() -> tuple[PktInfoMulticastPort, NetworkInterface, str]:
        answers = await querier.resolve_host(name, interface, timeout)
        choices = []
        for iface in sorted(answers, key=lambda i: i.index):
            groups = [a for a in answers[iface] if ipaddress.ip_address(a).is_multicast]
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
