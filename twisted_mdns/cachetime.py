# -*- test-case-name: tests.test_cache -*-
"""
The clock of a record cache: its entries, what it reports, and the one
timer that serves every entry's next deadline (RFC 6762 s5.2 refresh
points, s10 expiry, s10.1/s10.2 the last second of a goodbye or a flush).

L{twisted_mdns.cache.RecordCache} is built on L{CacheClock}; the names here
are re-exported from L{twisted_mdns.cache}.  A heap with lazy invalidation
holds the deadlines: an entry's live heap item is the one whose deadline is
the entry's C{due}; a record heard again only moves its deadline later,
which needs no new item (the old one fires early once and goes back).
"""

from __future__ import annotations

import enum
import heapq
import random as _random
from collections import Counter
from typing import Callable, NamedTuple, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_mdns.dnsvalues import bit_property
from twisted_mdns.message import Name, Record

log = Logger()

#: s5.2 refresh points, as fractions of the TTL.
REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
#: s5.2: "a random variation of 2% of the record TTL".
REFRESH_JITTER = 0.02
#: s10.1 (goodbye) and s10.2 (cache flush): one second.
GRACE = 1.0
#: Float slack when comparing deadlines with the clock.
_EPSILON = 1e-6


class CacheEvent(str, enum.Enum):
    """
    What happened to a record.
    """

    #: A record not in the cache before.
    ADDED = "added"
    #: A record already in the cache was received again (TTL renewed).
    UPDATED = "updated"
    #: A goodbye (TTL 0) arrived; the record is removed one second later.
    GOODBYE = "goodbye"
    #: Removed after a goodbye or a cache flush (s10.1, s10.2).
    REMOVED = "removed"
    #: Its TTL ran out without a refresh.
    EXPIRED = "expired"
    #: Pushed out by the size bound.
    EVICTED = "evicted"


#: The events after which a record is no longer in the cache.
GONE = frozenset({CacheEvent.REMOVED, CacheEvent.EXPIRED, CacheEvent.EVICTED})


class CacheChange(NamedTuple):
    """
    One change, as reported to listeners.
    """

    event: CacheEvent
    record: Record

    @property
    def gone(self) -> bool:
        """
        Has the record left the cache?
        """
        return self.event in GONE


#: The bits of L{CacheEntry}'s state.
_DOOMED, _GOODBYE, _TOUCHED, _GONE = 1, 2, 4, 8


class CacheEntry:
    """
    A cached record and its clock.

    @ivar record: the record as last received (with the TTL it came with).
    @ivar received: when it was last received.
    @ivar expires: when it leaves the cache: C{received + ttl}, or one
        second after a goodbye or a cache flush.
    @ivar refresh: the s5.2 refresh points still ahead; C{None} until
        someone watches the record (drawn then).
    @ivar due: the deadline of this entry's live heap item (C{None}: none);
        a heap item whose deadline is not this one is stale.
    """

    __slots__ = ("record", "received", "expires", "refresh", "_state", "due")

    def __init__(self, record: Record, received: float) -> None:
        self.record = record
        self.received = received
        self.expires = received + record.ttl
        self.refresh: tuple[float, ...] | None = None
        # Bits: DOOMED (a flush), GOODBYE (with DOOMED), TOUCHED (received
        # again since it took its place in the eviction order).  One slot
        # for three flags: there is an entry per cached record.
        self._state = 0
        self.due: float | None = None

    doomed = bit_property("_state", _DOOMED, "Marked to go by a goodbye or a cache flush?")
    goodbye = bit_property("_state", _GOODBYE, "Marked by a goodbye (TTL 0) in particular?")

    def __lt__(self, other: "CacheEntry") -> bool:
        # Heap items are (deadline, entry): equal deadlines compare entries.
        return id(self) < id(other)

    @property
    def ttl(self) -> int:
        """
        The TTL the record was received with.
        """
        return self.record.ttl

    def remaining(self, now: float) -> float:
        """
        Seconds left before the record leaves the cache.
        """
        return max(0.0, self.expires - now)

    def __repr__(self) -> str:
        state = " goodbye" if self.goodbye else (" doomed" if self.doomed else "")
        return f"<CacheEntry {self.record!r} received={self.received} expires={self.expires}{state}>"


class CacheClock:
    """
    The time half of a L{twisted_mdns.cache.RecordCache}: the deadline
    heap, the one timer, expiry and refresh points.

    The cache provides C{reactor}, C{counters}, C{on_refresh}, C{_heap},
    C{_timer}, C{_timer_at}, C{_closed}, C{_count}, C{_watched},
    C{_random}, and the methods C{_drop} (an entry leaves) and C{_notify}
    (report a batch of changes).
    """

    reactor: IReactorTime
    counters: Counter[str]
    on_refresh: "Callable[[Sequence[Record]], None] | None"
    _heap: list[tuple[float, CacheEntry]]
    _timer: IDelayedCall | None
    _timer_at: float
    _closed: bool
    _count: int
    _watched: Counter[tuple[Name, int]]
    _random: _random.Random

    def _drop(self, entry: CacheEntry) -> None:
        raise NotImplementedError()

    def _notify(self, changes: list[CacheChange]) -> None:
        raise NotImplementedError()

    def _refresh_points(self, received: float, ttl: int) -> tuple[float, ...]:
        """
        s5.2: 80%, 85%, 90% and 95% of the TTL, each plus up to 2%.
        """
        return tuple(
            sorted(
                received + ttl * (point + self._random.uniform(0, REFRESH_JITTER))
                for point in REFRESH_POINTS
            )
        )

    def _deadline(self, entry: CacheEntry) -> float:
        deadline = entry.expires
        refresh = entry.refresh
        if refresh and self._watched.get((entry.record.key, entry.record.rtype), 0) > 0:
            deadline = min(deadline, refresh[0])
        return deadline

    def _schedule(self, entry: CacheEntry, earlier_only: bool = True) -> None:
        """
        Make sure a heap item fires no later than C{entry}'s deadline.  A
        live item that fires earlier is kept (when it fires it finds the
        later deadline and puts the entry back once): a record heard again
        costs no heap push.
        """
        deadline = self._deadline(entry)
        due = entry.due
        if due is not None and due <= deadline + _EPSILON and earlier_only:
            return
        entry.due = deadline
        heapq.heappush(self._heap, (deadline, entry))
        if len(self._heap) > self._count + (self._count >> 2) + 64:
            self._compact()

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if not self._stale(item)]
        heapq.heapify(self._heap)

    def _stale(self, item: tuple[float, CacheEntry]) -> bool:
        entry = item[1]
        return entry.due != item[0] or bool(entry._state & _GONE)

    def _arm(self) -> None:
        """
        Keep exactly one timer, set for the earliest deadline.
        """
        heap = self._heap
        while heap and self._stale(heap[0]):
            heapq.heappop(heap)
        timer = self._timer
        if not heap or self._closed:
            if timer is not None and timer.active():
                timer.cancel()
            self._timer = None
            return
        when = heap[0][0]
        if timer is not None and timer.active():
            if abs(self._timer_at - when) < _EPSILON:
                return
            timer.cancel()
        self._timer_at = when
        self._timer = self.reactor.callLater(
            max(0.0, when - self.reactor.seconds()), self._fire
        )

    def _fire(self) -> None:
        self._timer = None
        now = self.reactor.seconds()
        changes: list[CacheChange] = []
        refresh: list[Record] = []
        heap = self._heap
        while heap and heap[0][0] <= now + _EPSILON:
            item = heapq.heappop(heap)
            if self._stale(item):
                continue
            entry = item[1]
            entry.due = None
            if entry.expires <= now + _EPSILON:
                self._drop(entry)
                if entry.doomed:
                    self.counters["cache.removed"] += 1
                    changes.append(CacheChange(CacheEvent.REMOVED, entry.record))
                else:
                    self.counters["cache.expired"] += 1
                    changes.append(CacheChange(CacheEvent.EXPIRED, entry.record))
                continue
            if entry.refresh:
                due = [p for p in entry.refresh if p <= now + _EPSILON]
                if due:
                    entry.refresh = tuple(p for p in entry.refresh if p > now + _EPSILON)
                    if self._watched.get((entry.record.key, entry.record.rtype), 0) > 0:
                        refresh.append(entry.record)
            self._schedule(entry)
        self._arm()
        self._notify(changes)
        if refresh:
            self.counters["cache.refreshes"] += len(refresh)
            callback = self.on_refresh
            if callback is not None:
                try:
                    callback(refresh)
                except Exception:
                    log.failure("refresh callback failed")


_change = tuple.__new__


def _inner(identity: tuple) -> object:
    """
    A record's key in a bucket of several: its rdata bytes (class IN), or
    class and rdata (anything else).
    """
    return identity[3] if identity[2] == 1 else (identity[2], identity[3])


def _members(bucket: CacheEntry | dict | None) -> Sequence[CacheEntry]:
    if bucket is None:
        return ()
    if type(bucket) is CacheEntry:
        return (bucket,)
    return list(bucket.values())  # type: ignore[union-attr]
