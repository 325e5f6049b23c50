# -*- test-case-name: tests.test_cache -*-
"""
The record cache of one interface (RFC 6762 s5.2, s10).

Why one cache per interface: RFC 6762 s14 makes every link its own
namespace.  An answer heard on eth0 says nothing about wlan0 (the same name
may be another host there, or nobody), so the querier keeps a dict
C{ifindex -> RecordCache} and never looks across.

What the cache does with time, all through an injected C{IReactorTime}:

 - s10: a record lives for its TTL from the moment it was received.
 - s10.1: "Queriers receiving a Multicast DNS response with a TTL of zero
   SHOULD NOT immediately delete the record from the cache, but instead
   record a TTL of 1 and then delete the record one second later."
 - s10.2: a record with the cache-flush bit set makes the other records of
   the same name, rrtype and rrclass that were received "more than one
   second ago" expire one second from now (records of the same rrset that
   arrive together, or within a second, survive: multi-packet answers).
 - s5.2: for records someone is watching, refresh queries are due "at 80%
   of the record lifetime, and then if no answer is received, at 85%, 90%,
   and 95%", each with "a random variation of 2% of the record TTL"; the
   cache announces them through L{RecordCache.on_refresh}, the querier
   sends them.
 - the cache is bounded: past C{max_records}, the record received longest
   ago is evicted and counted (a busy or hostile link must not grow it
   without end).  "Longest ago" is kept the way CLOCK page replacement
   keeps it: a record heard again is only marked, and moved to the young
   end when an eviction reaches it, so that a record heard again costs no
   reordering (it may then outlive one heard once, just after it).

One timer (C{callLater}) serves the next deadline of all records, expiry
and refresh alike; a calendar of spans of a few seconds, with lazy
invalidation, holds the deadlines (that half, and the entries and change
types, are in L{twisted_mdns.cachetime}, re-exported here).

Most of what a busy LAN sends is records this cache already holds, heard
again.  That path must stay cheap: a record received again only moves its
deadline later, which needs no new filing (the old one comes early, sees
the later deadline and files the entry again, once); refresh points are only
drawn for records someone watches; and an entry is a few slots, its record
sharing its (interned) names with every other record of the same name.
"""

from __future__ import annotations

import random as _random
from collections import Counter, deque
from typing import Callable, Iterable, Iterator, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_mdns.cachetime import (  # noqa: F401  (re-exported)
    _DOOMED,
    _EPSILON,
    _GONE,
    _GOODBYE,
    _TOUCHED,
    GONE,
    GRACE,
    REFRESH_JITTER,
    REFRESH_POINTS,
    CacheChange,
    CacheClock,
    CacheEntry,
    CacheEvent,
    _change,
    _inner,
    _members,
)
from twisted_mdns.counters import Counters
from twisted_mdns.message import TYPE_ANY, Name, Question, Record, name_key
from twisted_mdns.netif import NetworkInterface

log = Logger()


def _in_bucket(bucket: CacheEntry | dict | None, record: Record) -> CacheEntry | None:
    """
    The entry of C{bucket} (one entry, or a dict of them by rdata) holding
    C{record} (or the same record: name, type, class, rdata).
    """
    if bucket is None:
        return None
    if type(bucket) is CacheEntry:
        theirs = bucket.record
        if theirs.data == record.data and theirs.rclass == record.rclass:
            return bucket
        return None
    return bucket.get(_inner(record))  # type: ignore[union-attr]

#: What a look-up finds for a type nothing was cached of (read, never
#: written: tables are made by L{RecordCache._add} only).
_EMPTY: dict = {}

#: The default bound on the number of records per interface.
DEFAULT_MAX_RECORDS = 4096

CacheListener = Callable[[Sequence[CacheChange]], None]
RefreshCallback = Callable[[Sequence[Record]], None]


class RecordCache(CacheClock):
    """
    The records heard on one interface.

    @ivar interface: the interface this cache belongs to (informational).
    @ivar max_records: the size bound.
    @ivar counters: C{cache.added}, C{cache.updated}, C{cache.goodbyes},
        C{cache.flushed}, C{cache.removed}, C{cache.expired},
        C{cache.evicted}, C{cache.refreshes}; shared with the querier when
        it passes its own.
    @ivar on_refresh: called with the watched records whose refresh point
        came (s5.2), for the querier to ask about them again.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        interface: NetworkInterface | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        counters: Counter | None = None,
        random: _random.Random | None = None,
    ) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self.reactor = reactor
        self.interface = interface
        self.max_records = max_records
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.on_refresh: RefreshCallback | None = None
        self._random = random or _random.Random()
        # rrtype -> folded name -> the rrset's entry, or, when the rrset
        # holds several records (a PTR rrset of a service type), a dict of
        # them by rdata (L{_inner}).  Most rrsets of a LAN hold one record.
        # One table per rrtype, keyed by the folded name alone: the name is
        # the interned tuple every record of it shares, where a (name,
        # rrtype) key was a tuple per rrset (issue 13: 42 bytes per cached
        # record); a link's records are of a handful of types.
        self._buckets: dict[int, dict[Name, CacheEntry | dict]] = {}
        # Every entry in the order it took its place (eviction order, see
        # L{_evict}); entries that left stay until reached or compacted.
        self._order: deque[CacheEntry] = deque()
        self._count = 0
        self._watched: Counter[tuple[Name, int]] = Counter()
        self._listeners: list[CacheListener] = []
        self._init_clock()
        self._closed = False

    # -- inspection ----------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __contains__(self, record: object) -> bool:
        return isinstance(record, Record) and self._find(record) is not None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def records(self) -> list[Record]:
        """
        Every record in the cache, in eviction order: those that entered the
        cache (or were last moved by an eviction) longest ago first.
        """
        return [e.record for e in self._order if not e._state & _GONE]

    def entry(self, record: Record) -> CacheEntry | None:
        """
        The entry holding C{record} (same name, type, class and rdata).
        """
        return self._find(record)

    def _find(self, record: Record) -> CacheEntry | None:
        return _in_bucket(self._bucket(record.key, record.rtype), record)

    def _bucket(self, key: Name, rtype: int) -> CacheEntry | dict | None:
        """
        The bucket of the rrset C{(key, rtype)} (a folded name), if any.
        """
        return self._buckets.get(rtype, _EMPTY).get(key)

    def entries(self, name: Name, rtype: int) -> list[CacheEntry]:
        """
        The live entries for C{name} (any case) and C{rtype}
        (L{TYPE_ANY} for every type), oldest first.

        Records marked by a goodbye or a flush are still here during their
        last second, as s10.1 asks ("record a TTL of 1").
        """
        key = name_key(name)
        now = self.reactor.seconds()
        found: Sequence[CacheEntry]
        if rtype == TYPE_ANY:
            found = [e for table in self._buckets.values() for e in _members(table.get(key))]
        else:
            found = _members(self._bucket(key, rtype))
        live = [e for e in found if e.expires > now + _EPSILON]
        live.sort(key=lambda e: e.received)
        return live

    def get(self, name: Name, rtype: int) -> list[Record]:
        """
        The live records for C{name} and C{rtype}, oldest first.
        """
        return [e.record for e in self.entries(name, rtype)]

    def newest(self, name: Name, rtype: int) -> Record | None:
        """
        The most recently received live record of an rrset, preferring one
        not marked to go: what a unique rrset (SRV, TXT) holds now.
        """
        found = self.entries(name, rtype)
        if not found:
            return None
        fresh = [e for e in found if not e.doomed]
        return (fresh or found)[-1].record

    def known_answers(self, question: Question) -> list[Record]:
        """
        The known-answer list for C{question} (s7.1): the cached answers
        with more than half their TTL left, each with the TTL it has left
        ("the TTL ... SHOULD be the remaining TTL", rounded down).

        s7.1: "a Multicast DNS querier SHOULD NOT include records in the
        Known-Answer list whose remaining TTL is less than half of their
        original TTL"; records marked to go are left out too.
        """
        now = self.reactor.seconds()
        out = []
        for e in self.entries(question.name, question.qtype):
            if e.doomed or e.record.rclass != question.qclass:
                continue
            left = e.remaining(now)
            if left > e.ttl / 2:
                out.append(e.record.with_ttl(int(left)))
        return out

    # -- watching (refresh) --------------------------------------------------

    def watch(self, name: Name, rtype: int) -> None:
        """
        Someone cares about C{(name, rtype)}: its records get refresh
        points (s5.2).  Counted: every L{watch} needs an L{unwatch}.
        """
        key = (name_key(name), rtype)
        self._watched[key] += 1
        if self._watched[key] == 1:
            self._reschedule_bucket(key)

    def unwatch(self, name: Name, rtype: int) -> None:
        """
        Undo one L{watch}.
        """
        key = (name_key(name), rtype)
        if self._watched[key] <= 0:
            return
        self._watched[key] -= 1
        if self._watched[key] == 0:
            del self._watched[key]
            self._reschedule_bucket(key)

    def watched(self, name: Name, rtype: int) -> bool:
        return self._watched[(name_key(name), rtype)] > 0

    def _reschedule_bucket(self, key: tuple[Name, int]) -> None:
        watched = self._watched.get(key, 0) > 0
        for e in _members(self._bucket(*key)):
            if watched and e.refresh is None and not e.doomed:
                # Drawn now, from when it was received (points already past
                # are due at once, as they would have been).
                e.refresh = self._refresh_points(e.received, e.record.ttl)
            self._schedule(e, earlier_only=False)
        self._arm()

    # -- listeners -----------------------------------------------------------

    def add_listener(self, listener: CacheListener) -> None:
        """
        Call C{listener} with a list of L{CacheChange} after every batch of
        changes (one received message, one timer run).  Batches let a
        browser see PTR, SRV, TXT and A of one response together.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: CacheListener) -> None:
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def _notify(self, changes: list[CacheChange]) -> None:
        if not changes:
            return
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                log.failure("cache listener {listener!r} failed", listener=listener)

    # -- changes -------------------------------------------------------------

    def add(self, record: Record) -> list[CacheChange]:
        """
        Cache one record received now.
        """
        return self.add_all([record])

    def add_all(self, records: Iterable[Record], report: bool = True) -> list[CacheChange]:
        """
        Cache the records of one received message, as one batch.

        @param report: return the changes; without it, and with no
            listener, none are made (the querier caches every response of
            a busy LAN and reads no changes but its listeners').
        @return: the changes made (also reported to the listeners); empty
            when not C{report}.
        """
        if self._closed:
            return []
        now = self.reactor.seconds()
        listeners = self._listeners
        changes: list[CacheChange] | None = [] if report or listeners else None
        counts = {"cache.added": 0, "cache.updated": 0, "cache.goodbyes": 0, "cache.goodbye-unknown": 0}
        for record in records:
            self._add(record, now, changes, counts)
        counters = self.counters
        for name, count in counts.items():
            if count:
                counters[name] += count
        if self._filed_since_armed:
            # Entries that left meanwhile need no new timer: the one set
            # finds them gone when it fires.
            self._arm()
        if changes is None:
            return []
        if listeners:
            self._notify(changes)
        return changes if report else []

    def _add(self, record: Record, now: float, changes: list[CacheChange] | None, counts: dict) -> None:
        # One bucket look-up serves the find, the flush and the watch check
        # (this runs for every record heard on the link).
        name = record.key
        table = self._buckets.get(record.rtype)
        if table is None:
            table = self._buckets[record.rtype] = {}
        bucket = table.get(name)
        entry = _in_bucket(bucket, record)
        ttl = record.ttl
        if ttl == 0:
            # s10.1: a goodbye keeps the record for one more second.
            if entry is None:
                counts["cache.goodbye-unknown"] += 1
                return
            self._doom(entry, now, goodbye=True)
            counts["cache.goodbyes"] += 1
            if changes is not None:
                changes.append(_change(CacheChange, (CacheEvent.GOODBYE, entry.record)))
            return
        if record.cache_flush and bucket is not None and bucket is not entry:
            self._flush(record, bucket, entry, now)
        if entry is None:
            while self._count >= self.max_records:
                self._evict(changes)
            entry = CacheEntry(record, now)
            self._count += 1
            self._order.append(entry)
            # Again: eviction may have emptied or removed the bucket.
            bucket = table.get(name)
            if bucket is None:
                table[name] = entry
            elif type(bucket) is CacheEntry:
                table[name] = {_inner(bucket.record): bucket, _inner(record): entry}
            else:
                bucket[_inner(record)] = entry  # type: ignore[index]
            counts["cache.added"] += 1
            event = CacheEvent.ADDED
        else:
            old = entry.record
            if old.ttl != ttl or old.cache_flush != record.cache_flush or old.name != record.name:
                entry.record = record
            else:
                # Heard again as it was: the entry keeps the record it has,
                # and the new one dies young.  Swapping every refreshed
                # record for its twin scattered long-lived objects over
                # memory freed behind them (RSS per cached record on a busy
                # LAN, issue 13).
                record = old
            entry.received = now
            entry.expires = now + ttl
            # Young again: the eviction order is fixed up lazily (L{_evict}),
            # which spares a dict delete and insert per record heard again.
            entry._state = _TOUCHED
            counts["cache.updated"] += 1
            event = CacheEvent.UPDATED
        if self._watched and self._watched.get((name, record.rtype), 0) > 0:
            entry.refresh = self._refresh_points(now, ttl)
            self._schedule(entry)
        else:
            entry.refresh = None
            due = entry.due
            # The deadline is the expiry, and the entry is filed no later
            # than that: nothing to file (most records a busy link repeats).
            if due is None or due > entry.expires + _EPSILON:
                self._schedule(entry)
        if changes is not None:
            changes.append(_change(CacheChange, (event, record)))

    def _flush(self, record: Record, bucket: CacheEntry | dict, entry: CacheEntry | None, now: float) -> None:
        """
        s10.2: "Rather than immediately deleting the records, the host
        should ... set [them] to expire in one second ... for records
        [of the same name, rrtype and rrclass] that were received more
        than one second ago."
        """
        for other in list(_members(bucket)):
            if other is entry or other.record.rclass != record.rclass:
                continue
            if other.received < now - GRACE and other.expires > now + GRACE:
                self._doom(other, now, goodbye=False)
                self.counters["cache.flushed"] += 1

    def _doom(self, entry: CacheEntry, now: float, goodbye: bool) -> None:
        entry.expires = min(entry.expires, now + GRACE)
        entry._state |= _DOOMED | (_GOODBYE if goodbye else 0)
        entry.refresh = ()
        self._schedule(entry)

    def _evict(self, changes: list[CacheChange] | None) -> None:
        order = self._order
        while True:
            oldest = order.popleft()
            state = oldest._state
            if state & _GONE:
                continue
            if not state & _TOUCHED:
                break
            # Received again since it took its place: to the young end
            # (a "second chance"; each entry moves at most once per touch).
            oldest._state = state & ~_TOUCHED
            order.append(oldest)
        order.appendleft(oldest)  # _drop marks it; it leaves when reached
        self._drop(oldest)
        # Counted, not logged one by one: on a link with more records than
        # the bound, evictions are steady (the changes carry them).
        self.counters["cache.evicted"] += 1
        if changes is not None:
            changes.append(CacheChange(CacheEvent.EVICTED, oldest.record))

    def remove(self, record: Record) -> bool:
        """
        Remove C{record} now (reported as L{CacheEvent.REMOVED}).
        """
        entry = self._find(record)
        if entry is None:
            return False
        self._drop(entry)
        self.counters["cache.removed"] += 1
        self._arm()
        self._notify([CacheChange(CacheEvent.REMOVED, entry.record)])
        return True

    def clear(self) -> None:
        """
        Forget everything, silently (the interface is gone).
        """
        for entry in self._order:
            entry.due = None
            entry._state |= _GONE
        self._order.clear()
        self._count = 0
        self._buckets.clear()
        self._clear_clock()
        self._arm()

    def close(self) -> None:
        """
        Stop the timer and forget everything; the cache stays usable for
        reads (empty) but takes no more records.
        """
        self._closed = True
        self.clear()
        self._listeners.clear()
        self.on_refresh = None

    def _drop(self, entry: CacheEntry) -> None:
        record = entry.record
        if entry._state & _GONE:
            return
        entry._state |= _GONE
        self._count -= 1
        table = self._buckets.get(record.rtype, _EMPTY)
        name = record.key
        bucket = table.get(name)
        if bucket is entry:
            del table[name]
        elif type(bucket) is dict:
            bucket.pop(_inner(record), None)
            if len(bucket) == 1:
                table[name] = next(iter(bucket.values()))
        order = self._order
        if len(order) > self._count + (self._count >> 3) + 64:
            self._order = deque(e for e in order if not e._state & _GONE)
        entry.due = None  # its filing is stale now

    def _iface_name(self) -> str:
        return self.interface.name if self.interface is not None else "?"

    def __repr__(self) -> str:
        return f"<RecordCache {self._iface_name()}: {len(self)} records>"


