# -*- test-case-name: tests.test_cache -*-
"""
The clock of a record cache: its entries, what it reports, and the one
timer that serves every entry's next deadline (RFC 6762 s5.2 refresh
points, s10 expiry, s10.1/s10.2 the last second of a goodbye or a flush).

L{twisted_mdns.cache.RecordCache} is built on L{CacheClock}; the names here
are re-exported from L{twisted_mdns.cache}.  A calendar of spans of a
few seconds holds the deadlines, with lazy invalidation: an entry is live
where its C{due} files it (under the span of C{due}, or, once that span is
opened, as the heap item of deadline C{due}); a record heard again only
moves its deadline later, which needs no new filing (the old one comes
early once and files the entry again).
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
#: The calendar's span, as a power of two: 2**2 = 4 seconds.  Wider spans
#: share a list among more entries where traffic is sparse (a list costs
#: about 90 bytes, a pointer in it 8); narrower ones keep fewer deadlines
#: in the exactly ordered heap of the span that has begun.
_SPAN_BITS = 2

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
    @ivar due: the deadline the entry is filed under in the cache's
        calendar (C{None}: none); a filing under another deadline is
        stale.
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
    calendar, the one timer, expiry and refresh points.

    The cache calls L{_init_clock} and provides C{reactor}, C{counters},
    C{on_refresh}, C{_closed}, C{_count}, C{_watched}, C{_random}, and the
    methods C{_drop} (an entry leaves) and C{_notify} (report a batch of
    changes).
    """

    reactor: IReactorTime
    counters: Counter[str]
    on_refresh: "Callable[[Sequence[Record]], None] | None"
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

    def _init_clock(self) -> None:
        """
        The deadline calendar, empty, and no timer.
        """
        # Span (C{int(deadline) >> _SPAN_BITS}) -> the entries filed under
        # it (unordered); a heap of those spans.  An entry is filed once per
        # deadline it was given and is live in the span of its C{due} only.
        self._slots: dict[int, list[CacheEntry]] = {}
        self._spans: list[int] = []
        self._filed = 0
        # The spans up to C{_current} are opened: their entries are in
        # C{_heap} as (deadline, entry), exactly ordered; an item is live
        # while the entry's C{due} is its deadline.
        self._heap: list[tuple[float, CacheEntry]] = []
        self._current = -(2**62)
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0
        # Filed anything since the timer was last set?  (A batch that only
        # refreshed records leaves the timer as it is, unlooked at.)
        self._filed_since_armed = False

    def _clear_clock(self) -> None:
        self._slots.clear()
        self._spans.clear()
        self._filed = 0
        self._heap.clear()
        self._current = -(2**62)

    def _schedule(self, entry: CacheEntry, earlier_only: bool = True) -> None:
        """
        Make sure the entry is looked at no later than its deadline.  A
        deadline already set that comes earlier is kept (when it comes, it
        finds the later deadline and files the entry again, once): a record
        heard again costs nothing here.

        Why a calendar of spans and not one heap of (deadline, entry)
        items: a heap item is a tuple per cached record, 64 bytes of the
        1 KiB a record may cost on a busy LAN (issue 13); a span's list
        costs a pointer per record, and only the span that has begun is
        ordered exactly, in a heap of its own.
        """
        deadline = self._deadline(entry)
        due = entry.due
        if due is not None and due <= deadline + _EPSILON and earlier_only:
            return
        entry.due = deadline
        self._filed_since_armed = True
        span = int(deadline) >> _SPAN_BITS
        if span <= self._current:
            heapq.heappush(self._heap, (deadline, entry))
            if len(self._heap) > self._count + (self._count >> 3) + 64:
                self._compact()
            return
        slot = self._slots.get(span)
        if slot is None:
            self._slots[span] = [entry]
            heapq.heappush(self._spans, span)
        else:
            slot.append(entry)
        self._filed += 1
        if self._filed > self._count + (self._count >> 3) + 64:
            # Gone entries (and their records) stay filed until reached:
            # kept to an eighth of the live ones.
            self._compact()

    def _compact(self) -> None:
        """
        Drop what is no longer live from the calendar: entries gone, or
        filed again under another deadline.
        """
        slots = {}
        for span, slot in self._slots.items():
            live = [e for e in slot if _filed_under(e, span)]
            if live:
                slots[span] = live
        self._slots = slots
        self._spans = list(slots)
        heapq.heapify(self._spans)
        self._filed = sum(map(len, slots.values()))
        self._heap = [item for item in self._heap if not _stale(item)]
        heapq.heapify(self._heap)

    def _next(self, now: float) -> tuple[float, CacheEntry | None] | None:
        """
        The earliest live (deadline, entry), opening the spans of the
        calendar that have begun by C{now}; or, when those hold nothing
        live, (start of the next filed span, C{None}): the time to come
        back and open it.  A span is opened no earlier than its start, so
        that the exact heap holds one span's deadlines at most.
        """
        heap = self._heap
        spans = self._spans
        while True:
            while heap and _stale(heap[0]):
                heapq.heappop(heap)
            if heap:
                return heap[0]
            if not spans:
                return None
            span = spans[0]
            start = float(span << _SPAN_BITS)
            if start > now + _EPSILON:  # a timer set for the start may come a hair early
                return (start, None)
            heapq.heappop(spans)
            slot = self._slots.pop(span)
            self._filed -= len(slot)
            self._current = span
            heap.extend([(e.due, e) for e in slot if _filed_under(e, span)])  # type: ignore[misc]
            heapq.heapify(heap)

    def _arm(self) -> None:
        """
        Keep exactly one timer, set for the earliest deadline.
        """
        self._filed_since_armed = False
        first = self._next(self.reactor.seconds())
        timer = self._timer
        if first is None or self._closed:
            if timer is not None and timer.active():
                timer.cancel()
            self._timer = None
            return
        when = first[0]
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
        while True:
            first = self._next(now)
            if first is None:
                break
            deadline, entry = first
            if entry is None or deadline > now + _EPSILON:
                break
            heapq.heappop(self._heap)
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


def _stale(item: tuple[float, CacheEntry]) -> bool:
    entry = item[1]
    return entry.due != item[0] or bool(entry._state & _GONE)


def _filed_under(entry: CacheEntry, span: int) -> bool:
    """
    Is C{entry} live in the calendar's C{span}?
    """
    due = entry.due
    return due is not None and int(due) >> _SPAN_BITS == span and not entry._state & _GONE


def _inner(record: Record) -> object:
    """
    A record's key in a bucket of several: its rdata bytes (class IN), or
    class and rdata (anything else).
    """
    return record.data if record.rclass == 1 else (record.rclass, record.data)


def _members(bucket: CacheEntry | dict | None) -> Sequence[CacheEntry]:
    if bucket is None:
        return ()
    if type(bucket) is CacheEntry:
        return (bucket,)
    return list(bucket.values())  # type: ignore[union-attr]
