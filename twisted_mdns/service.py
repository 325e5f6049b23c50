# -*- test-case-name: tests.test_service -*-
"""
L{MDNSService}: the responder, the querier, the per-interface ports and the
interface monitor, composed as one Twisted service.

An application adds it next to its other services::

    mdns = MDNSService(hostname="lab")
    mdns.setServiceParent(application)
    mdns.register(ServiceInfo("Web", "_http._tcp", 8080, {"path": "/"}))

Starting it enumerates the interfaces, applies the policy (refusing to start
on a bad explicit request), opens per selected interface one port for each
address family it runs (IPv4, IPv6: the policy's
L{twisted_mdns.policy.Selection.families_of}), claims the host name and the
registered services.  While it runs it follows the
interface monitor: new interfaces get ports, probes and announcements;
vanished ones lose their ports; readdressed ones announce new addresses and
say goodbye to old ones, of both families (an IPv6 address once its
Duplicate Address Detection ends), and gain or lose a family's port.  Stopping it sends goodbyes on every interface and
closes every port.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Sequence
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from twisted_mdns.clock import step_proof
from twisted_mdns.counters import Counters
from twisted_mdns.families import Family
from twisted_mdns.interfaces import IInterfaceEnumerator, IInterfaceMonitor, IInterfacePolicy
from twisted_mdns.netif import SystemInterfaceEnumerator
from twisted_mdns.policy import DefaultInterfacePolicy
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import RegistrationError, Responder
from twisted_mdns.transport import InterfaceTransport

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from twisted_mdns.monitor import InterfaceChanges, NetlinkInterfaceMonitor, PollingInterfaceMonitor
    from twisted_mdns.netif import NetworkInterface
    from twisted_mdns.policy import Selection
    from twisted_mdns.proxy import DiscoveryProxy, DomainMap
    from twisted_mdns.querier import Querier, ServiceBrowser

log = Logger()


def default_hostname() -> str:
    """
    The machine's short host name (what avahi uses by default).
    """
    return socket.gethostname().split(".", 1)[0] or "twisted-mdns"


def _nobody_waits(failure: Failure) -> None:
    """
    A registration nobody waits for (made again after a restart) failed
    (the responder stopped, or the service is gone): nothing to report it
    to.
    """


class MDNSService(service.MultiService):
    """
    mDNS / DNS-SD for an application.

    @param policy: an L{IInterfacePolicy}; the default policy when C{None}.
    @param hostname: the host name to claim, without C{.local}; the
        machine's short name when C{None}.
    @param monitor: an L{IInterfaceMonitor}, C{True} for the platform's
        default (netlink on Linux), or C{False} to not follow changes.
    @param enumerator: where interfaces come from (tests may pass a fixed
        list, applications rarely need to).
    @param publish_host: claim and answer for the host name (a pure
        browser may turn it off).
    @param reactor: the reactor (the global one when C{None}).  Its time is
        not used as it is if it is the wall clock: every timer and duration
        counts on C{clock}, a monotonic view of it, so that wall-clock steps
        (NTP at boot) move none of them, while the application's reactor
        keeps wall time (see L{twisted_mdns.clock}).
    @ivar clock: the C{IReactorTime} the responder, querier and monitor use:
        C{reactor} itself if already monotonic (or a test clock), else a
        L{twisted_mdns.clock.MonotonicClock} over it.
    @param families: the address families to run (a
        L{twisted_mdns.families.Family}: C{Family.IPV4}, C{Family.IPV6} or
        C{Family.BOTH}, the default): each selected link gets a port for
        each of them it has an address of.  It is given to the default
        policy; with a C{policy} of your own, the policy's own C{families}
        choose which links run what, and this one bounds them.
    @ivar counters: received, answered, dropped by reason, conflicts...
    """

    def __init__(
        self,
        policy: IInterfacePolicy | None = None,
        hostname: str | None = None,
        reactor: Any = None,
        enumerator: IInterfaceEnumerator | None = None,
        monitor: IInterfaceMonitor | bool = True,
        publish_host: bool = True,
        port: int = 5353,
        families: Family = Family.BOTH,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.clock = step_proof(reactor)
        self.families = families
        self.policy = policy or DefaultInterfacePolicy(families=families)
        #: The name asked for; every start claims it anew (a rename after a
        #: conflict lasts for that run, as with avahi).
        self.requested_hostname = hostname or default_hostname()
        #: The name claimed in this run (C{host-2} after a conflict, from
        #: the moment it is adopted and probed).
        self.hostname = self.requested_hostname
        self._host_observers: list[Callable[[str], object]] = []
        self.enumerator = enumerator or SystemInterfaceEnumerator()
        self._monitor_option = monitor
        self.monitor: IInterfaceMonitor | None = None
        self.publish_host = publish_host
        self.counters: Counter[str] = Counters()
        self.protocol = MDNSProtocol(counters=self.counters)
        self.transport = InterfaceTransport(
            self.protocol, reactor, port=port, counters=self.counters, families=families
        )
        self.responder = self._make_responder()
        self.querier = self._make_querier()
        self._wanted: list[ServiceInfo] = []
        self._registrations: dict[int, defer.Deferred] = {}
        self.selection: Selection | None = None
        self._stopping: defer.Deferred | None = None
        self._started_before = False

    def _make_responder(self) -> Responder:
        """
        A fresh responder: each start claims the names anew (a stop said
        goodbye to everything), so nothing of the last run's state is kept.
        """
        self.hostname = self.requested_hostname
        responder = Responder(self.transport, self.clock, self.hostname, self.counters)
        responder.add_host_observer(self._host_renamed)
        self.protocol.fast_path = responder.fast_path
        self._set_handlers(responder, getattr(self, "querier", None))
        return responder

    def _make_querier(self) -> Querier:
        from twisted_mdns.querier import Querier

        querier = Querier(self.transport, self.clock, counters=self.counters)
        self._set_handlers(self.responder, querier)
        return querier

    def _set_handlers(self, responder: Responder, querier: Querier | None) -> None:
        self.protocol.handlers = [responder] + ([querier] if querier is not None else [])

    # -- lifecycle -------------------------------------------------------------

    def startService(self) -> None:
        if self.running:
            return
        # Our own monitor starts first and its first enumeration is the one
        # everything starts from: one pass over the host's interfaces, not
        # one per component (each costs time in proportion to the links),
        # and no change can fall between what we started with and what the
        # monitor diffs against.  A monitor the application gave us starts
        # last, as it always did (it may report at once).
        own_monitor = self._monitor_option is True
        interfaces = self._start_monitor() if own_monitor else None
        if interfaces is None:
            interfaces = self.enumerator.interfaces()
        selection = self.selection = self.policy.select(interfaces)
        try:
            selection.raise_for_errors()
        except BaseException:
            self._stop_monitor()
            raise
        super().startService()
        if self._started_before:
            # Each start claims names and watches records anew: stop() said
            # goodbye to everything and ended every query.
            self.responder = self._make_responder()
            self.querier = self._make_querier()
        self._started_before = True
        self.transport.apply(selection.selected, selection.families_of)
        if self.querier is not None:
            self.querier.interfaces_changed()
        if self.publish_host:
            self.responder.start().addCallbacks(self._host_claimed, self._registration_failed)
        else:
            self.responder.start_without_host()
        for svc in self._wanted:
            self._start_registration(svc)
        if not own_monitor:
            self._start_monitor()

    def _host_claimed(self, name: str) -> str:
        self.hostname = name
        return name

    def add_host_observer(self, observer: Callable[[str], object]) -> None:
        """
        Call C{observer} with the new host name (without C{.local}) each
        time a conflict renames it (RFC 6762 §8.1, §9: C{lab} to
        C{lab-2}), in this run and later ones: the moment the responder
        adopts the name and probes it.  By then the services follow it:
        SRV records point to it, and a service named after the host (a
        L{ServiceInfo.name_template}, C{%h} in an avahi file) is being
        registered again under its new name.  Each start claims the
        requested name anew, and says nothing here.  A plain callback (an
        event stream, not one result); one that raises is logged.
        """
        self._host_observers.append(observer)

    def remove_host_observer(self, observer: Callable[[str], object]) -> None:
        """
        Stop calling an observer given to L{add_host_observer}.
        """
        self._host_observers.remove(observer)

    def _host_renamed(self, name: str) -> None:
        self.hostname = name
        for observer in list(self._host_observers):
            try:
                observer(name)
            except Exception:
                log.failure("host name observer {observer!r} failed", observer=observer)

    def _registration_failed(self, failure: Failure) -> None:
        failure.trap(RegistrationError)
        return None

    def _start_monitor(self) -> Sequence[NetworkInterface] | None:
        """
        Start following interface changes, if asked to.

        @return: the interfaces as the monitor first enumerated them, when
            it is the platform's default one (made here, with our
            enumerator); C{None} otherwise.
        """
        option = self._monitor_option
        if option is False or option is None:
            return None
        default: NetlinkInterfaceMonitor | PollingInterfaceMonitor | None = None
        monitor: IInterfaceMonitor
        if option is True:
            from twisted_mdns.monitor import default_monitor

            monitor = default = default_monitor(self.clock, self.enumerator)
        else:
            monitor = option
        try:
            monitor.start(self.interfaces_changed)
        except Exception as e:
            log.error("cannot follow interface changes: {error}", error=e)
            return None
        self.monitor = monitor
        return default.interfaces if default is not None else None

    def _stop_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None

    def stopService(self) -> defer.Deferred:
        if not self.running:
            return self._stopping or defer.succeed(None)
        super().stopService()
        self._stop_monitor()
        self.responder.stop()
        if self.querier is not None:
            self.querier.stop()
        self._stopping = self.transport.close()
        return self._stopping

    def interfaces_changed(self, changes: InterfaceChanges) -> None:
        """
        Apply the policy to a monitor report and follow it: ports, probes,
        announcements, goodbyes.
        """
        if not self.running:
            return
        selection = self.selection = self.policy.select(changes.interfaces)
        for error in selection.errors:
            log.warn("{error}", error=str(error))
        change = self.transport.apply(selection.selected, selection.families_of)
        if change:
            self.responder.interfaces_changed(change)
            if self.querier is not None:
                self.querier.interfaces_changed()

    # -- publishing --------------------------------------------------------------

    def register(self, info: ServiceInfo) -> defer.Deferred:
        """
        Publish C{info} (now, or when the service starts).

        @return: a Deferred firing with the L{ServiceInfo} published, whose
            instance name may have been changed by a conflict.
        """
        self._wanted.append(info)
        if self.running:
            # The responder's own Deferred: no second one chained to it
            # (at 10,000 services, a Deferred, two bound methods and a
            # callback entry per service, about 0.5 KB each; issue 13).
            return self.responder.register(info)
        d: defer.Deferred[ServiceInfo] = defer.Deferred()
        self._registrations[id(info)] = d
        return d

    def _start_registration(self, info: ServiceInfo) -> None:
        # A registration made before the service ran is fired once, by its
        # first start (a restart registers again, for nobody).
        registered = self.responder.register(info)
        waiting = self._registrations.pop(id(info), None)
        if waiting is not None and not waiting.called:
            registered.addCallbacks(waiting.callback, waiting.errback)
        else:
            registered.addErrback(_nobody_waits)

    def unregister(self, info: ServiceInfo) -> defer.Deferred:
        """
        Withdraw C{info} (goodbyes on every interface).
        """
        self._wanted = [s for s in self._wanted if s is not info and s.key != info.key]
        if not self.running:
            return defer.succeed(None)
        return self.responder.unregister(info)

    def update(self, info: ServiceInfo) -> defer.Deferred:
        """
        Announce a new TXT record for a registered service.
        """
        self._wanted = [info if s.key == info.key else s for s in self._wanted]
        return self.responder.update(info)

    # -- Discovery Proxy (RFC 8766) ---------------------------------------------------

    def add_discovery_proxy(self, domains: DomainMap, **kwargs: Any) -> DiscoveryProxy:
        """
        Serve unicast DNS for each link's domain from this service's mDNS:
        a L{twisted_mdns.proxy.DiscoveryProxy} child service, given this
        service's querier and responder (looked up at each query, as each
        start makes them anew) and counters.

        @param domains: a L{twisted_mdns.proxy.DomainMap}.
        @param kwargs: for L{twisted_mdns.proxy.DiscoveryProxy} (C{listen},
            C{allow}, C{wait}, C{server}).
        @return: the L{twisted_mdns.proxy.DiscoveryProxy}.
        """
        from twisted_mdns.proxy.service import DiscoveryProxy

        kwargs.setdefault("reactor", self.clock)
        kwargs.setdefault("counters", self.counters)
        kwargs.setdefault("enumerator", self.enumerator)
        proxy = DiscoveryProxy(self, domains, **kwargs)
        proxy.setServiceParent(self)
        return proxy

    # -- querying --------------------------------------------------------------------

    def browse(self, service_type: str, listener: Any, interface: Any = None) -> ServiceBrowser:
        """
        Browse for C{service_type}; see L{twisted_mdns.querier.Querier.browse}.
        """
        return self.querier.browse(service_type, listener, interface=interface)

    def resolve_host(self, name: str, interface: Any = None, timeout: float = 3.0) -> defer.Deferred:
        """
        Resolve a C{.local} host name per interface.
        """
        return self.querier.resolve_host(name, interface=interface, timeout=timeout)

    def resolve_service(self, instance_name: str, service_type: str | None = None,
                        interface: Any = None, timeout: float = 3.0) -> defer.Deferred:
        return self.querier.resolve_service(
            instance_name, service_type, interface=interface, timeout=timeout
        )
