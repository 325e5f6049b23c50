# -*- test-case-name: tests.test_proxy -*-
"""
One proxied link: its domain, its question rate limit and the unicast
queries waiting for mDNS answers there (RFC 8766 §5.6).

Per-link state lives here, in the link's object, not in dicts keyed by
interface: the resolver holds one L{ProxyLink} per served domain.

Waiting (RFC 8766 §5.6): a query the link's cache cannot answer yet waits
for the first batch of cache changes that brings a positive answer or an
NSEC for its name, or for the wait bound, whichever comes first.  The link
listens to its cache only while something waits (or subscribes), so an idle
proxy costs the mDNS receive path nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_mdns.cache import CacheChange, RecordCache
from twisted_mdns.constants import TYPE_ANY, TYPE_NSEC
from twisted_mdns.message import Name, name_key
from twisted_mdns.proxy.domains import LinkDomain
from twisted_mdns.proxy.ratelimit import QuestionRateLimit

#: What a subscriber is told: the changes of one cache batch that concern it.
Subscriber = Callable[[Sequence[CacheChange]], None]

#: Unicast queries that may wait on one link at once; past it they are
#: answered at once from the cache (memory stays bounded under a flood).
DEFAULT_MAX_WAITING = 512


class _Waiter:
    """
    One unicast query waiting for C{(key, rtype)} on the link.
    """

    __slots__ = ("key", "rtype", "deferred", "timer")

    def __init__(self, key: Name, rtype: int, deferred: defer.Deferred) -> None:
        self.key = key
        self.rtype = rtype
        self.deferred = deferred
        self.timer: IDelayedCall | None = None

    def wants(self, change: CacheChange) -> bool:
        """
        Does C{change} bring what this query waits for: a record of its name
        and type (or any type for ANY), or an NSEC for its name?
        """
        record = change.record
        if change.gone or record.ttl == 0 or record.key != self.key:
            return False
        return self.rtype in (TYPE_ANY, record.rtype) or record.rtype == TYPE_NSEC


@dataclass(eq=False)
class ProxyLink:
    """
    The state of one link the proxy serves.

    @ivar domain: the link and its unicast domain.
    @ivar limit: the mDNS questions its clients may cause (RFC 8766 §9.3).
    @ivar max_waiting: how many unicast queries may wait for mDNS answers
        at once.
    """

    domain: LinkDomain
    limit: QuestionRateLimit
    reactor: IReactorTime
    counters: Counter
    max_waiting: int = DEFAULT_MAX_WAITING
    _waiters: list[_Waiter] = field(default_factory=list, init=False, repr=False)
    _subscribers: list[tuple[Name, int, Subscriber]] = field(
        default_factory=list, init=False, repr=False
    )
    _cache: RecordCache | None = field(default=None, init=False, repr=False)

    @property
    def waiting(self) -> int:
        """
        How many unicast queries wait for mDNS answers now.
        """
        return len(self._waiters)

    # -- the cache listener ----------------------------------------------------

    def _follow(self, cache: RecordCache | None) -> None:
        """
        Listen to C{cache} while anyone waits or subscribes, and to nothing
        otherwise (the querier may replace a link's cache when the interface
        comes back).
        """
        wanted = cache if (self._waiters or self._subscribers) else None
        if wanted is self._cache:
            return
        if self._cache is not None:
            self._cache.remove_listener(self._changed)
        self._cache = wanted
        if wanted is not None:
            wanted.add_listener(self._changed)

    def _changed(self, changes: Sequence[CacheChange]) -> None:
        ready = [w for w in self._waiters if any(w.wants(c) for c in changes)]
        for waiter in ready:
            self.counters["proxy.answered-after-wait"] += 1
            self._finish(waiter)
        for key, rtype, callback in list(self._subscribers):
            mine = [
                c for c in changes
                if c.record.key == key and rtype in (TYPE_ANY, c.record.rtype)
            ]
            if mine:
                callback(mine)

    # -- waiting -----------------------------------------------------------------

    def wait(self, cache: RecordCache, name: Name, rtype: int, bound: float) -> defer.Deferred:
        """
        A Deferred firing (with C{None}) on the first batch that answers
        C{name}/C{rtype} in C{cache}, or after C{bound} seconds, or at once
        when too many queries wait already.
        """
        if len(self._waiters) >= self.max_waiting:
            self.counters["proxy.waiting-full"] += 1
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        waiter = _Waiter(name_key(name), rtype, d)
        waiter.timer = self.reactor.callLater(bound, self._expired, waiter)
        self._waiters.append(waiter)
        self._follow(cache)
        return d

    def _expired(self, waiter: _Waiter) -> None:
        waiter.timer = None
        self.counters["proxy.wait-expired"] += 1
        self._finish(waiter)

    def _finish(self, waiter: _Waiter) -> None:
        if waiter not in self._waiters:
            return
        self._waiters.remove(waiter)
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        waiter.timer = None
        self._follow(self._cache)
        waiter.deferred.callback(None)

    # -- the DNS Push seam -------------------------------------------------------

    def subscribe(self, cache: RecordCache, name: Name, rtype: int, callback: Subscriber) -> Callable[[], None]:
        """
        Call C{callback} with every later change of C{name}/C{rtype} (any
        type for ANY) in the link's cache, until the returned function is
        called.  The seam for DNS Push (RFC 8765), which keeps clients
        informed of changes rather than answering once.
        """
        entry = (name_key(name), rtype, callback)
        self._subscribers.append(entry)
        self._follow(cache)

        def cancel() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
                self._follow(self._cache)

        return cancel

    def close(self) -> None:
        """
        Answer everything still waiting (with what the cache holds) and stop
        listening.
        """
        for waiter in list(self._waiters):
            self._finish(waiter)
        self._subscribers.clear()
        self._follow(None)

    def __repr__(self) -> str:
        return f"<ProxyLink {self.domain.interface}={self.domain.text} waiting={self.waiting}>"
