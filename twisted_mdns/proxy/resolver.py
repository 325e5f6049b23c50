# -*- test-case-name: tests.test_proxy -*-
"""
L{ProxyResolver}: an C{IResolver} answering for each link's unicast domain
from what mDNS knows on that link (RFC 8766 §5).

The flow of one query (RFC 8766 §5.6):

 1. the name picks the link (L{DomainMap.find}); a name under no served
    domain is refused, and a query never reaches a link it did not name;
 2. the zone's own records are answered at once, without mDNS (§6): SOA and
    NS at the apex, nothing for the DNS Update/LLQ/Push service names;
 3. the link's cache and this host's own records there answer a query they
    hold fresh records for, at once;
 4. otherwise the link is asked by mDNS (one QM question, rate-limited per
    link, RFC 8766 §9.3) and the query waits for the first batch that
    brings a positive answer or an NSEC, or for the wait bound; what the
    link holds then is the answer, possibly none (NOERROR, no data, SOA in
    the authority section).

Chained in a C{twisted.names} server like any resolver::

    factory = server.DNSServerFactory(authorities=[ProxyResolver(...)])

Names reach L{ProxyResolver} as C{twisted.names} gives them, dotted text;
a dot or backslash inside a label (an instance called C{"My.Web"}) comes
escaped, as RFC 1035 §5.1 writes it (L{twisted_mdns.proxy.names}).
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any, Callable, Protocol, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.names import common, dns

from twisted_mdns.clock import default_reactor
from twisted_mdns.cache import CacheChange
from twisted_mdns.constants import (
    CLASS_IN,
    PROXY_MAX_WAIT,
    TYPE_ANY,
    TYPE_NS,
    TYPE_NSEC,
    TYPE_OPT,
    TYPE_SOA,
)
from twisted_mdns.counters import Counters
from twisted_mdns.message import Name, name_from_text, name_key
from twisted_mdns.proxy import answers as _answers
from twisted_mdns.proxy.domains import DomainMap, LinkDomain
from twisted_mdns.proxy.link import DEFAULT_MAX_WAITING, ProxyLink
from twisted_mdns.proxy.names import parse_presentation
from twisted_mdns.proxy.ratelimit import DEFAULT_BURST, DEFAULT_RATE, QuestionRateLimit

log = Logger()

#: How long a query waits for mDNS answers by default: about what the
#: anchors use (0.5-0.8 s), well under RFC 8766 §5.6's six seconds.  A
#: responder answers a QM question within 20-120 ms (RFC 6762 §6), so
#: this leaves room for a lost packet's worth of delay, not for a retry.
DEFAULT_WAIT = 0.8

#: RFC 8766 §6.4: the service names a client looks up at the zone apex to
#: find DNS Update, LLQ and DNS Push servers for the zone; answered at once,
#: with no data (none is offered yet), never asked on the link.
_ADMIN_SERVICES = frozenset(
    name_key(name_from_text(text))
    for text in (
        "_dns-update._udp", "_dns-update-tls._tcp", "_dns-llq._udp",
        "_dns-llq-tls._tcp", "_dns-push-tls._tcp", "_dns-query-tls._udp",
    )
)


#: Meta and transfer types (RFC 6895 §3.1: OPT, TKEY, TSIG, IXFR, AXFR,
#: MAILB, MAILA) and type 0: nothing mDNS could answer, so never asked on a
#: link; a zone transfer of a proxied zone means nothing (its contents are
#: whatever the link says at the moment).
_NEVER_ASKED = frozenset({0, TYPE_OPT, 249, 250, 251, 252, 253, 254})


class OutOfZone(dns.DomainError):
    """
    A name under none of the proxy's domains: the server refuses it
    rather than claim it does not exist.
    """


class MDNSEngines(Protocol):
    """
    Where the proxy finds mDNS: an L{twisted_mdns.service.MDNSService}
    (whose querier and responder are made anew on each start, so they are
    looked up at each query), or any object with these attributes.
    """

    querier: Any
    responder: Any


def check_wait(wait: float) -> float:
    """
    @raise ValueError: not in (0, 6] seconds (RFC 8766 §5.6).
    """
    wait = float(wait)
    if not 0 < wait <= PROXY_MAX_WAIT:
        raise ValueError(f"the wait must be more than 0 and at most {PROXY_MAX_WAIT:g} s (RFC 8766 §5.6), not {wait!r}")
    return wait


class ProxyResolver(common.ResolverBase):
    """
    Answers unicast DNS for each served link's domain from mDNS.

    @ivar links: one L{ProxyLink} per served domain (the per-link state).
    @ivar wait: seconds a query waits for mDNS answers (RFC 8766 §5.6).
    @ivar server: the proxy host's name, in the NS and SOA records.
    @ivar counters: C{proxy.queries}, C{proxy.refused-zone},
        C{proxy.cache-answers}, C{proxy.asked}, C{proxy.answered-after-wait},
        C{proxy.wait-expired}, C{proxy.link-local-suppressed},
        C{proxy.link-unavailable}, and the rate limit's counters.
    """

    def __init__(
        self,
        domains: DomainMap,
        engines: MDNSEngines,
        reactor: IReactorTime | None = None,
        *,
        wait: float = DEFAULT_WAIT,
        server: str | None = None,
        counters: Counter | None = None,
        burst: int = DEFAULT_BURST,
        rate: float = DEFAULT_RATE,
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        super().__init__()
        self.reactor: IReactorTime = default_reactor(reactor)
        self.domains = domains
        self.engines = engines
        self.wait = check_wait(wait)
        self.server: Name = name_from_text(server or socket.getfqdn())
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.links = [
            ProxyLink(
                d, QuestionRateLimit(self.reactor, self.counters, burst, rate),
                self.reactor, self.counters, max_waiting,
            )
            for d in domains
        ]

    def _link_for(self, name: Name) -> ProxyLink | None:
        found = self.domains.find(name)
        for link in self.links:
            if link.domain is found:
                return link
        return None

    # -- IResolver -------------------------------------------------------------

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred:
        """
        Answer one question (C{ResolverBase} dispatches every type here).
        """
        self.counters["proxy.queries"] += 1
        labels = parse_presentation(name)
        link = self._link_for(labels)
        if link is None:
            self.counters["proxy.refused-zone"] += 1
            return defer.fail(OutOfZone(name))
        if cls not in (CLASS_IN, TYPE_ANY):
            return defer.succeed(self._nodata(link.domain))
        relative = labels[: len(labels) - len(link.domain.domain)]
        if not relative:
            return defer.succeed(self._apex(link.domain, type))
        if name_key(relative[-2:]) in _ADMIN_SERVICES or type == TYPE_NSEC or type in _NEVER_ASKED:
            # RFC 8766 §6.4 (no Update/LLQ/Push server offered yet) and
            # §5.5.3 (NSEC is mDNS-internal), meta types: answered here,
            # no mDNS.
            return defer.succeed(self._nodata(link.domain))
        return defer.ensureDeferred(self._from_link(link, link.domain.to_local(labels) or (), type))

    async def _from_link(self, link: ProxyLink, local: Name, rtype: int) -> tuple:
        held = self._held(link)
        if held is None:
            self.counters["proxy.link-unavailable"] += 1
            return self._nodata(link.domain)
        if held.lookup(local, rtype) or held.negative(local, rtype):
            self.counters["proxy.cache-answers"] += 1
            return self._result(link, held, local, rtype)
        assert held.cache is not None
        if link.limit.allow(local, rtype):
            self.counters["proxy.asked"] += 1
            try:
                self.engines.querier.ask(local, rtype, link.domain.interface)
            except Exception as e:
                log.warn("proxy: cannot ask {iface}: {error}", iface=link.domain.interface, error=e)
        await link.wait(held.cache, local, rtype, self.wait)
        held = self._held(link)
        if held is None:
            return self._nodata(link.domain)
        return self._result(link, held, local, rtype)

    def _held(self, link: ProxyLink) -> _answers.LinkRecords | None:
        """
        What the link holds now, or C{None} when mDNS does not run there
        (the interface is gone, or the service is stopped).
        """
        querier = getattr(self.engines, "querier", None)
        if querier is None:
            return None
        try:
            cache = querier.cache_for(link.domain.interface)
        except Exception:
            return None
        own: Sequence = ()
        responder = getattr(self.engines, "responder", None)
        if responder is not None and cache.interface is not None:
            own = responder.records_for(cache.interface)
        return _answers.LinkRecords(cache, own, self.reactor.seconds())

    def _result(self, link: ProxyLink, held: _answers.LinkRecords, local: Name, rtype: int) -> tuple:
        chosen = _answers.choose(held, local, rtype, self.counters)
        answers = _answers.to_unicast(link.domain, chosen.answers, self.counters)
        if not answers:
            return self._nodata(link.domain)
        additional = _answers.to_unicast(link.domain, chosen.additional, self.counters)
        return answers, [], additional

    def _apex(self, domain: LinkDomain, rtype: int) -> tuple:
        """
        RFC 8766 §6.1, §6.2: SOA and NS at the apex, answered at once.
        """
        found = []
        if rtype in (TYPE_SOA, TYPE_ANY):
            found.append(_answers.soa(domain, self.server))
        if rtype in (TYPE_NS, TYPE_ANY):
            found.append(_answers.ns(domain, self.server))
        if not found:
            return self._nodata(domain)
        return found, [], []

    def _nodata(self, domain: LinkDomain) -> tuple:
        """
        No data: the SOA in the authority section, so that the client may
        cache the negative answer for its minimum (RFC 2308 §3).
        """
        return [], [_answers.soa(domain, self.server)], []

    # -- the DNS Push seam -------------------------------------------------------

    def subscribe(
        self, name: bytes, rtype: int, callback: Callable[[Sequence[CacheChange]], None]
    ) -> Callable[[], None]:
        """
        Follow C{name}/C{rtype}: C{callback} gets every later change of the
        link's cache for it (mDNS terms: C{.local} names, real TTLs; the
        caller translates with the link's L{LinkDomain.translate}).  Returns
        the function that ends the subscription.

        This is the seam DNS Push (RFC 8765) plugs into: a Push server keeps
        a subscription per client SUBSCRIBE and sends translated
        ADD/REMOVE updates, with the rate limit of the link applied to the
        questions it asks.

        @raise OutOfZone: C{name} is under none of the proxy's domains.
        @raise LookupError: mDNS does not run on that link now.
        """
        labels = parse_presentation(name)
        link = self._link_for(labels)
        if link is None:
            raise OutOfZone(name)
        held = self._held(link)
        if held is None or held.cache is None:
            raise LookupError(f"mDNS does not run on {link.domain.interface} now")
        return link.subscribe(held.cache, link.domain.to_local(labels) or (), rtype, callback)

    def close(self) -> None:
        """
        Answer every waiting query now and stop listening to the caches.
        """
        for link in self.links:
            link.close()
