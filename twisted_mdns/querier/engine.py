# -*- test-case-name: tests.test_querier_engine -*-
"""
The querier's public face: L{Querier}.

It follows the transport's links (one L{QuerierLink} per link, dropped
whole when the link goes), hands every response to the cache of the link
it arrived on and every query to that link's duplicate-question
suppression (RFC 6762 §7.3), and starts resolutions and browsers.  The
protocol rules themselves live in the modules beside it:

 - L{twisted_mdns.querier.continuous}: RFC 6762 §5.2, §5.4, §7.1-§7.3;
 - L{twisted_mdns.querier.resolving}: host and service resolution;
 - L{twisted_mdns.querier.browsing}: RFC 6763 §4 browsing;
 - L{twisted_mdns.cache}: RFC 6762 §10 cache rules.

The public edge speaks Deferreds (which C{await} works on).
"""

from __future__ import annotations

import random as _random
from collections import Counter
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_mdns.cache import DEFAULT_MAX_RECORDS, RecordCache
from twisted_mdns.counters import Counters
from twisted_mdns.message import Message, Name, join_name
from twisted_mdns import naming
from twisted_mdns.netif import NetworkInterface, find_interface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.policy import InterfaceValidationError
from twisted_mdns.querier.browsing import ServiceBrowser
from twisted_mdns.querier.links import QuerierLink, QuerierTransport
from twisted_mdns.querier.resolving import (
    DEFAULT_SETTLE,
    HostResolution,
    Resolution,
    ServiceResolution,
)
from twisted_mdns.querier.results import InterfaceSpec, ServiceListener, as_listener

log = Logger()


def _check_timeout(timeout: float) -> float:
    timeout = float(timeout)
    if not timeout > 0 or timeout == float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return timeout


class Querier:
    """
    The querying half of mDNS, as a handler for
    L{twisted_mdns.protocol.MDNSProtocol}.

    @ivar transport: an L{twisted_mdns.transport.InterfaceTransport} (or
        anything providing L{QuerierTransport}: C{interfaces} and
        C{send(data, ifindex)}, which multicasts on every family the link
        runs).  Traffic in comes through L{response_received} and
        L{query_received} with an L{InterfaceContext} of either family
        (L{twisted_mdns.pktinfo6.InterfaceContext6} for IPv6): both feed
        the same link, keyed by interface index.
    @ivar counters: C{queries.sent} (datagrams), C{questions.sent},
        C{known-answers.sent}, C{queries.suppressed} (RFC 6762 §7.3),
        C{queries.same-round} (another copy of a query already counted,
        such as a dual-stack host's over the other family),
        C{refresh.sent}, C{ask.sent}, C{ask.suppressed}, C{responses.cached},
        C{records.cached}, C{responses.ignored-rcode} and the caches' own
        C{cache.*}.
    @ivar unicast_first: whether a first query asks for a unicast response
        (RFC 6762 §5.4); turn off where another mDNS stack holds port 5353
        on the same address and may take our unicast replies (§15).
    """

    def __init__(
        self,
        transport: QuerierTransport,
        reactor: IReactorTime,
        counters: Counter | None = None,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        unicast_first: bool = True,
        random: _random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.reactor = reactor
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.max_records = max_records
        self._unicast_first = unicast_first
        self._random = random or _random.Random()
        self._links: dict[int, QuerierLink] = {}
        self._browsers: set[ServiceBrowser] = set()
        self._resolutions: set[Resolution] = set()
        self._stopped = False
        self._syncing = False
        self._sync_links()

    @property
    def unicast_first(self) -> bool:
        return self._unicast_first

    @unicast_first.setter
    def unicast_first(self, value: bool) -> None:
        self._unicast_first = value
        for link in self._links.values():
            link.queries.unicast_first = value

    # -- links ---------------------------------------------------------------

    @property
    def interfaces(self) -> list[NetworkInterface]:
        """
        The interfaces we query on (the transport's), by index.
        """
        return sorted(self.transport.interfaces.values(), key=lambda i: i.index)

    @property
    def caches(self) -> dict[int, RecordCache]:
        """
        Interface index -> that link's cache, as a new dict (a view for
        inspection; L{cache_for} is the way to one link's cache).
        """
        return {ix: link.cache for ix, link in self._links.items()}

    def _follow_transport(self) -> None:
        """
        Follow the transport if its interfaces changed without anyone
        calling L{interfaces_changed} (the querier made before the
        transport's first C{apply}, say).
        """
        if (
            not self._stopped
            and not self._syncing
            and self._links.keys() != self.transport.interfaces.keys()
        ):
            self.interfaces_changed()

    def _links_for(self, interface: InterfaceSpec, follow: bool = True) -> list[QuerierLink]:
        """
        The links an API call means: all of ours for C{None}, else the one
        named by a L{NetworkInterface}, name, IPv4 address or index.

        @raise InterfaceValidationError: not one of ours.
        """
        if follow:
            self._follow_transport()
        links = [self._links[i.index] for i in self.interfaces if i.index in self._links]
        if interface is None:
            return links
        spec = interface.index if isinstance(interface, NetworkInterface) else interface
        found = (
            find_interface([link.interface for link in links], spec)
            if isinstance(spec, (str, int))
            else None
        )
        if found is None:
            raise InterfaceValidationError(
                str(interface.name if isinstance(interface, NetworkInterface) else interface),
                "not an interface mDNS runs on",
                [link.interface.name for link in links],
            )
        return [self._links[found.index]]

    def _browser_links(self, interface: InterfaceSpec) -> Callable[[], list[QuerierLink]]:
        def links() -> list[QuerierLink]:
            try:
                return self._links_for(interface, follow=False)
            except InterfaceValidationError:
                return []

        return links

    def link_for(self, interface: InterfaceSpec) -> QuerierLink:
        """
        The querier's object for one link (name, IPv4 address, index or
        value): its cache and continuous queries, for code that asks and
        watches on one link through a L{twisted_mdns.querier.links.Interest}
        (service type enumeration, say).

        @raise InterfaceValidationError: not a link we run on.
        """
        return self._links_for(interface)[0]

    def cache_for(self, interface: InterfaceSpec) -> RecordCache:
        """
        The cache of one link (name, IPv4 address, index or value): what
        was heard there (the Discovery Proxy answers from it).

        @raise InterfaceValidationError: not a link we run on.
        """
        return self._links_for(interface)[0].cache

    def _sync_links(self) -> tuple[list[int], list[int]]:
        self._syncing = True
        try:
            current = self.transport.interfaces
            gone = [self._links.pop(ix) for ix in list(self._links) if ix not in current]
            for link in gone:
                for resolution in list(self._resolutions):
                    resolution.interface_gone(link.index)
            for browser in list(self._browsers):
                # Browsers report the vanished links' services removed.
                browser.interfaces_changed()
            for link in gone:
                link.close()
            added: list[int] = []
            for ifindex, iface in current.items():
                known = self._links.get(ifindex)
                if known is None:
                    self._links[ifindex] = self._new_link(iface)
                    added.append(ifindex)
                else:
                    known.interface = known.cache.interface = iface
            return [link.index for link in gone], added
        finally:
            self._syncing = False

    def _new_link(self, iface: NetworkInterface) -> QuerierLink:
        ifindex = iface.index

        def send(datagram: bytes) -> bool:
            return bool(self.transport.send(datagram, ifindex))

        return QuerierLink(
            iface, self.reactor, self._random, send, self.counters, self.max_records,
            self._unicast_first,
        )

    def interfaces_changed(self) -> None:
        """
        The transport's interfaces changed: forget the links that vanished
        (what was heard there says nothing about anywhere else), and start
        the running browsers on new ones.
        """
        if self._stopped:
            return
        gone, added = self._sync_links()
        if gone or added:
            log.info(
                "querier: interfaces changed (gone {gone}, new {added})",
                gone=gone or "none", added=added or "none",
            )
        for browser in list(self._browsers):
            browser.interfaces_changed()

    # -- traffic in ----------------------------------------------------------

    def _link_of(self, context: InterfaceContext) -> QuerierLink | None:
        link = self._links.get(context.index)
        if link is None:
            self._follow_transport()
            link = self._links.get(context.index)
        return link

    def response_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        Cache every record of a response on the link it came in on, over
        either family: the link's one cache holds what both carried, so a
        record heard over IPv4 and IPv6 is one entry.  (The protocol has
        already checked RFC 6762 §11: the source is on that link, by the
        context's L{InterfaceContext.on_link}: for IPv6 fe80::/10 always,
        else the link's prefixes.)
        """
        if self._stopped:
            return
        if message.rcode != 0:
            # RFC 6762 §18.11: "Multicast DNS messages received with
            # non-zero Response Codes MUST be silently ignored."
            self.counters["responses.ignored-rcode"] += 1
            return
        link = self._link_of(context)
        if link is None:
            self.counters["responses.unknown-interface"] += 1
            return
        link.response_heard(message, own=link.interface.has_address(source[0]))

    def query_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        Another host's query: its QM questions may count as ours on that
        link (RFC 6762 §7.3, in L{QuerierLink.query_heard}).
        """
        if self._stopped:
            return
        link = self._links.get(context.index)
        if link is not None:
            link.query_heard(message, source)

    # -- API -----------------------------------------------------------------

    def _check_running(self) -> None:
        if self._stopped:
            raise RuntimeError("this Querier was stopped")

    def ask(self, name: Name, rtype: int, interface: InterfaceSpec) -> None:
        """
        Multicast one QM question for C{(name, rtype)} on one link now,
        with that link's known answers (RFC 6762 §7.1).  Answers land in
        that link's cache (L{cache_for}); this is the one-shot question a
        Discovery Proxy (RFC 8766) asks on a cache miss.

        Like our continuous queries, it is not sent (and counted as
        C{ask.suppressed}) when the same QM question went out on that link
        less than a second ago: from another host whose known answers hold
        nothing ours would not (RFC 6762 §7.3), or from us (§5.2: at least
        one second between two of the same question).

        @param name: the name as labels, C{(b"radiod", b"local")}.
        @param rtype: the record type, e.g. L{twisted_mdns.message.TYPE_A}.
        @param interface: the one link to ask on (name, IPv4 address, index
            or L{NetworkInterface}).
        @raise InterfaceValidationError: not a link we run on (or C{None}).
        """
        self._check_running()
        if interface is None:
            raise InterfaceValidationError(
                "None", "ask() needs one interface", [i.name for i in self.interfaces]
            )
        self._links_for(interface)[0].ask(tuple(name), rtype)

    def resolve_host(
        self,
        name: str,
        interface: InterfaceSpec = None,
        timeout: float = 3.0,
        *,
        settle: float = DEFAULT_SETTLE,
    ) -> "defer.Deferred[dict[NetworkInterface, list[str]]]":
        """
        Resolve a C{.local} host name to its addresses, IPv4 and IPv6, per
        interface.

        Both A and AAAA are asked (QU first, RFC 6762 §5.4; then 1 s,
        2 s... §5.2; cached answers count at once) until every interface
        answered with both families (or with one and an NSEC record
        denying the other, RFC 6762 §6.2), C{settle} seconds after the
        first answer, or C{timeout} seconds.

        @param name: C{"radiod"} or C{"radiod.local"}.
        @param interface: a name, IPv4 address, index or
            L{NetworkInterface} of ours; C{None} for all.
        @return: a Deferred firing with C{{interface: [address, ...]}} for
            the interfaces that answered, in index order (empty when none
            did); each list IPv4 first, then IPv6, link-local IPv6
            addresses with their zone (C{"fe80::1%eth0"}, which
            C{ipaddress.ip_address} reads;
            L{twisted_mdns.querier.results.sockaddr} makes a socket address
            of one).  Cancelling it stops the queries.
        @raise ValueError: a bad name or timeout, an interface we do not
            run on (L{InterfaceValidationError}).
        """
        self._check_running()
        labels = naming.host_name(name)
        timeout = _check_timeout(timeout)
        links = self._links_for(interface)
        resolution = HostResolution(
            self.reactor, labels, links, timeout, settle, self._resolutions.discard
        )
        self._resolutions.add(resolution)
        return resolution.start()

    def resolve_service(
        self,
        instance_name: str,
        service_type: str | None = None,
        interface: InterfaceSpec = None,
        timeout: float = 3.0,
        *,
        settle: float = DEFAULT_SETTLE,
    ) -> "defer.Deferred[Any]":
        """
        Resolve one service instance: SRV, TXT and the target's addresses,
        on the interface(s) asked.

        @param instance_name: C{"My Web"} with C{service_type}, or the
            full C{"My Web._http._tcp.local"}.
        @return: with an C{interface}: a Deferred firing with the
            L{ResolvedService} found there, or C{None}.  With C{interface}
            C{None}: a Deferred firing with a list of L{ResolvedService},
            one per interface where it resolved (index order; empty if
            nowhere): the same instance name on two links is two services.
        """
        self._check_running()
        instance, stype = naming.instance_name(instance_name, service_type)
        timeout = _check_timeout(timeout)
        links = self._links_for(interface)
        resolution = ServiceResolution(
            self.reactor, join_name(instance, stype.base), stype, links, timeout, settle,
            single=interface is not None, on_done=self._resolutions.discard,
        )
        self._resolutions.add(resolution)
        return resolution.start()

    def browse(
        self,
        service_type: str,
        listener: Any = None,
        interface: InterfaceSpec = None,
        *,
        added: Callable[..., Any] | None = None,
        removed: Callable[..., Any] | None = None,
        updated: Callable[..., Any] | None = None,
    ) -> ServiceBrowser:
        """
        Browse a service type (C{"_http._tcp"}; C{"_sub._sub._http._tcp"}
        for a subtype), validated by L{twisted_mdns.naming.service_type}.

        @param listener: an L{IServiceListener} (any object with
            C{service_added/removed/updated(service, interface)}), or a
            callable C{f(event, service, interface)}; or leave it out and
            give C{added}/C{removed}/C{updated} callables.
        @param interface: as for L{resolve_host}; with C{None} the browser
            follows the querier's interfaces as they come and go.
        @return: the running L{ServiceBrowser}; call its C{stop()}.
        """
        self._check_running()
        stype = naming.service_type(service_type, strict=False)
        if listener is None:
            listener = ServiceListener(added, removed, updated)
        else:
            listener = as_listener(listener)
        if interface is not None:
            self._links_for(interface)
        else:
            self._follow_transport()
        browser = ServiceBrowser(
            stype, listener, self._browser_links(interface), interface, self._browsers.discard
        )
        self._browsers.add(browser)
        return browser.start()

    def stop(self) -> None:
        """
        Stop everything: browsers (silently), pending resolutions (they
        fire with what they found so far), queries and cache timers.
        Nothing is left scheduled on the reactor.
        """
        if self._stopped:
            return
        for resolution in list(self._resolutions):
            resolution.finish()
        for browser in list(self._browsers):
            browser.stop()
        self._stopped = True
        for link in self._links.values():
            link.close()
        self._links.clear()
