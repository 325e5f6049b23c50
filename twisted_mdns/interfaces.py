# -*- test-case-name: tests.test_policy,tests.test_service -*-
"""
The contracts between the parts of twisted_mdns, as zope interfaces.

Each docstring is the contract; implementations live in the module named for
what they do (L{twisted_mdns.policy}, L{twisted_mdns.pktinfo}, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from twisted_mdns.monitor import InterfaceChanges
    from twisted_mdns.netif import NetworkInterface
    from twisted_mdns.pktinfo import InterfaceContext
    from twisted_mdns.policy import Selection
    from twisted_mdns.querier import ResolvedService
    from twisted_mdns.records import ServiceInfo


class IInterfaceEnumerator(Interface):
    """
    Something that lists the host's network interfaces.

    The system one reads the OS; tests and embedding applications may give a
    fixed list instead (L{twisted_mdns.netif.StaticInterfaceEnumerator}).
    """

    def interfaces() -> Sequence[NetworkInterface]:
        """
        @return: the interfaces present now, as a sequence of
            L{twisted_mdns.netif.NetworkInterface}, ordered by index.
        """


class IInterfacePolicy(Interface):
    """
    Decides which interfaces mDNS runs on.

    A policy is a pure function of the enumerated interfaces: it never opens
    sockets, and it never raises for the state of the host (an interface that
    is down today may be up tomorrow).  What a user asked for but cannot have
    is reported in L{Selection.errors}, so that start-up can refuse a bad
    configuration (L{Selection.raise_for_errors}) while a running service
    follows changes and merely logs.
    """

    def select(interfaces: Sequence[NetworkInterface]) -> Selection:
        """
        Choose among C{interfaces}.

        @param interfaces: a sequence of L{twisted_mdns.netif.NetworkInterface}.
        @return: a L{twisted_mdns.policy.Selection}: the chosen interfaces, a
            reason for each one left out, and errors for explicit requests
            that could not be met.  Every decision is logged.
        """


class IInterfaceMonitor(Interface):
    """
    Reports changes of the host's interfaces: added, removed, up/down,
    addresses added or removed.

    Implementations coalesce bursts (one DHCP renewal is many netlink
    messages) into one report.
    """

    def start(callback: Callable[[InterfaceChanges], object]) -> None:
        """
        Begin watching.

        @param callback: called with a L{twisted_mdns.monitor.InterfaceChanges}
            after each (coalesced) change, with the new full list in it.
        """

    def stop() -> None:
        """
        Stop watching and release the OS resources.  Safe to call twice.
        """


class IPktInfoDatagramProtocol(Interface):
    """
    A datagram protocol that wants to know which interface each datagram
    arrived on, as decided by C{IP_PKTINFO} (never by which socket read it).

    A L{twisted_mdns.pktinfo.PktInfoMulticastPort} calls
    L{datagramReceivedOn} on protocols that provide this, and plain
    C{datagramReceived(datagram, address)} on ordinary protocols.
    """

    def datagramReceivedOn(
        datagram: bytes, address: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        A datagram arrived.

        @param datagram: the bytes.
        @param address: C{(host, port)} of the sender.
        @param context: a L{twisted_mdns.pktinfo.InterfaceContext}: the
            receiving interface's index, name, addresses, and the datagram's
            destination address.
        """


class IServiceListener(Interface):
    """
    Told about services as a browser sees them come and go, per interface.
    """

    def service_added(service: ResolvedService, interface: NetworkInterface) -> None:
        """
        C{service} (a L{twisted_mdns.querier.ResolvedService}: instance,
        type, host, port, TXT and the addresses heard on that interface)
        appeared on C{interface} (a L{twisted_mdns.netif.NetworkInterface}).
        """

    def service_removed(service: ResolvedService, interface: NetworkInterface) -> None:
        """
        C{service} said goodbye, or its records expired, on C{interface}.
        """

    def service_updated(service: ResolvedService, interface: NetworkInterface) -> None:
        """
        C{service}'s SRV, TXT or addresses changed on C{interface}.
        """


class IServiceRegistry(Interface):
    """
    Publishes services: probes, announces, defends and withdraws them.
    """

    hostname = Attribute("The host name we publish, without C{.local}.")

    def register(service: ServiceInfo) -> Deferred[ServiceInfo]:
        """
        Probe for and then announce C{service}.

        @return: a Deferred firing with the L{twisted_mdns.records.ServiceInfo}
            finally published, whose name may differ from the one asked for
            after a conflict (C{My Web (2)}).
        """

    def unregister(service: ServiceInfo) -> Deferred[Any]:
        """
        Withdraw C{service}: goodbye packets (TTL 0) on every interface.

        @return: a Deferred firing once the goodbyes were sent.
        """

    def update(service: ServiceInfo) -> Deferred[Any]:
        """
        Replace the TXT record of an already registered service and announce
        the change.

        @return: a Deferred firing once the announcement was sent.
        """
