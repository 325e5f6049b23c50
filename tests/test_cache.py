"""
Tests for L{twisted_mdns.cache.RecordCache} on a fake clock: TTL expiry,
the s10.2 cache-flush one-second rule, goodbyes (s10.1), s5.2 refresh
points, the size bound, lookups, known answers and listeners.
"""

from __future__ import annotations

import random
from collections import Counter

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mdns.cache import CacheChange, CacheEvent, RecordCache
from twisted_mdns.message import (
    TYPE_A,
    TYPE_ANY,
    TYPE_PTR,
    TYPE_SRV,
    Question,
    Record,
    a_record,
    name_from_text,
    ptr_record,
    srv_record,
)

HOST = name_from_text("lab.local")
OTHER = name_from_text("other.local")
SERVICES = name_from_text("_http._tcp.local")


def a(address: str, ttl: int = 120, flush: bool = True, name=HOST):
    return a_record(name, address, ttl, flush)


def ptr(instance: str, ttl: int = 4500):
    return ptr_record(SERVICES, (instance.encode(),) + SERVICES, ttl)


class Changes:
    """
    A listener that keeps every batch.
    """

    def __init__(self) -> None:
        self.batches: list = []

    def __call__(self, changes) -> None:
        self.batches.append(list(changes))

    def events(self) -> list[tuple[str, str]]:
        return [(c.event.value, str(c.record.rdata)) for b in self.batches for c in b]


class CacheTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.counters: Counter = Counter()
        self.cache = RecordCache(self.clock, counters=self.counters, random=random.Random(7))
        self.changes = Changes()
        self.cache.add_listener(self.changes)
        self.addCleanup(self.assertNoTimersAfterClose)

    def assertNoTimersAfterClose(self) -> None:
        self.cache.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def addresses(self, name=HOST) -> list[str]:
        return sorted(str(r.rdata) for r in self.cache.get(name, TYPE_A))


class ExpiryTests(CacheTestCase):
    def test_record_lives_for_its_ttl(self) -> None:
        self.cache.add(a("10.0.0.1", ttl=10))
        self.clock.advance(9.9)
        self.assertEqual(self.addresses(), ["10.0.0.1"])
        self.clock.advance(0.2)
        self.assertEqual(self.addresses(), [])
        self.assertEqual(len(self.cache), 0)
        self.assertEqual(self.changes.events(), [("added", "10.0.0.1"), ("expired", "10.0.0.1")])
        self.assertEqual(self.counters["cache.expired"], 1)

    def test_unreported_batch_still_reaches_listeners(self) -> None:
        """
        C{report=False} (the querier's way): nothing returned, the same
        cache, the listeners told as ever; with no listener, no change is
        made at all.
        """
        self.assertEqual(self.cache.add_all([a("10.0.0.1"), a("10.0.0.2")], report=False), [])
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])
        self.assertEqual(self.changes.events(), [("added", "10.0.0.1"), ("added", "10.0.0.2")])
        quiet = RecordCache(self.clock, counters=Counter(), random=random.Random(7))
        self.addCleanup(quiet.close)
        self.assertEqual(quiet.add_all([a("10.0.0.1", ttl=0), a("10.0.0.3")], report=False), [])
        self.assertEqual(len(quiet), 1)
        self.assertEqual(quiet.add_all([a("10.0.0.3")]), [CacheChange(CacheEvent.UPDATED, a("10.0.0.3"))])

    def test_received_again_renews_ttl(self) -> None:
        self.cache.add(a("10.0.0.1", ttl=10))
        self.clock.advance(8)
        self.cache.add(a("10.0.0.1", ttl=10))
        self.clock.advance(8)
        self.assertEqual(self.addresses(), ["10.0.0.1"])
        self.clock.advance(2.1)
        self.assertEqual(self.addresses(), [])
        self.assertEqual(
            [e for e, _ in self.changes.events()], ["added", "updated", "expired"]
        )

    def test_one_timer_for_many_records(self) -> None:
        """
        However many records, one delayed call: the next deadline.
        """
        for n in range(50):
            self.cache.add(a(f"10.0.1.{n}", ttl=100 + n, flush=False))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertAlmostEqual(self.clock.getDelayedCalls()[0].getTime(), 100)
        self.clock.advance(125)
        self.assertEqual(len(self.cache), 24)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_expiry_batches_records_due_together(self) -> None:
        self.cache.add_all([a("10.0.0.1", ttl=5, flush=False), a("10.0.0.2", ttl=5, flush=False)])
        self.clock.advance(5)
        self.assertEqual(len(self.changes.batches), 2)
        self.assertEqual(
            sorted(self.changes.events()[2:]), [("expired", "10.0.0.1"), ("expired", "10.0.0.2")]
        )

    def test_entries_past_expiry_not_returned(self) -> None:
        """
        A record whose time is up is not returned even before the timer
        ran (the clock moved without the reactor running it).
        """
        self.cache.add(a("10.0.0.1", ttl=10))
        self.clock.rightNow = 11.0  # time passed, timer not yet run
        self.assertEqual(self.cache.get(HOST, TYPE_A), [])


class CacheFlushTests(CacheTestCase):
    def test_flush_expires_old_records_one_second_later(self) -> None:
        """
        s10.2: a cache-flush record makes records of the same rrset received
        more than a second earlier expire one second from now.
        """
        self.cache.add(a("10.0.0.1"))
        self.clock.advance(5)
        self.cache.add(a("10.0.0.2"))
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])
        self.clock.advance(0.99)
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])
        self.clock.advance(0.02)
        self.assertEqual(self.addresses(), ["10.0.0.2"])
        self.assertEqual(self.changes.events()[-1], ("removed", "10.0.0.1"))
        self.assertEqual(self.counters["cache.flushed"], 1)

    def test_records_within_one_second_survive(self) -> None:
        """
        Records of one rrset spread over packets less than a second apart
        (a multi-packet answer) all stay.
        """
        self.cache.add(a("10.0.0.1"))
        self.clock.advance(0.5)
        self.cache.add(a("10.0.0.2"))
        self.clock.advance(10)
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])
        self.assertEqual(self.counters["cache.flushed"], 0)

    def test_same_packet_records_survive(self) -> None:
        """
        A re-announcement of both addresses in one message keeps both,
        whichever comes first in it.
        """
        self.cache.add_all([a("10.0.0.1"), a("10.0.0.2")])
        self.clock.advance(30)
        self.cache.add_all([a("10.0.0.2"), a("10.0.0.1")])
        self.clock.advance(5)
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])

    def test_without_flush_bit_records_accumulate(self) -> None:
        self.cache.add(a("10.0.0.1", flush=False))
        self.clock.advance(5)
        self.cache.add(a("10.0.0.2", flush=False))
        self.clock.advance(5)
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])

    def test_flush_only_touches_same_name_and_type(self) -> None:
        self.cache.add(a("10.0.0.1", name=OTHER))
        self.cache.add(srv_record(HOST, OTHER, 80, 120))
        self.clock.advance(5)
        self.cache.add(a("10.0.0.2"))
        self.clock.advance(2)
        self.assertEqual(self.addresses(OTHER), ["10.0.0.1"])
        self.assertEqual(len(self.cache.get(HOST, TYPE_SRV)), 1)

    def test_reannounced_record_is_rescued(self) -> None:
        """
        A record marked by a flush and received again within the second
        lives on.
        """
        self.cache.add(a("10.0.0.1"))
        self.clock.advance(5)
        self.cache.add(a("10.0.0.2"))
        self.clock.advance(0.5)
        self.cache.add(a("10.0.0.1"))
        self.clock.advance(2)
        self.assertEqual(self.addresses(), ["10.0.0.1", "10.0.0.2"])


class GoodbyeTests(CacheTestCase):
    def test_goodbye_removes_after_one_second(self) -> None:
        """
        s10.1: TTL 0 means "record a TTL of 1 and then delete the record
        one second later".
        """
        self.cache.add(ptr("Web"))
        self.clock.advance(10)
        self.cache.add(ptr("Web", ttl=0))
        self.assertEqual(len(self.cache.get(SERVICES, TYPE_PTR)), 1)
        self.clock.advance(0.99)
        self.assertEqual(len(self.cache.get(SERVICES, TYPE_PTR)), 1)
        self.clock.advance(0.02)
        self.assertEqual(self.cache.get(SERVICES, TYPE_PTR), [])
        self.assertEqual(
            [c.event for b in self.changes.batches for c in b],
            [CacheEvent.ADDED, CacheEvent.GOODBYE, CacheEvent.REMOVED],
        )
        self.assertTrue(self.changes.batches[-1][0].gone)

    def test_goodbye_for_unknown_record_is_not_cached(self) -> None:
        self.cache.add(ptr("Web", ttl=0))
        self.assertEqual(len(self.cache), 0)
        self.assertEqual(self.changes.batches, [])
        self.assertEqual(self.counters["cache.goodbye-unknown"], 1)

    def test_goodbye_entry_marked(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.cache.add(a("10.0.0.1", ttl=0))
        entry = self.cache.entries(HOST, TYPE_A)[0]
        self.assertTrue(entry.goodbye)
        self.assertEqual(entry.remaining(self.clock.seconds()), 1.0)


class RefreshTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.refreshed: list[tuple[float, list]] = []
        self.cache.on_refresh = lambda records: self.refreshed.append(
            (self.clock.seconds(), list(records))
        )

    def run_for(self, seconds: float, step: float = 0.1) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)

    def test_watched_record_refreshed_at_80_85_90_95(self) -> None:
        """
        s5.2: refresh queries at 80%, 85%, 90% and 95% of the TTL, each up
        to 2% of the TTL late; then the record expires at 100%.
        """
        self.cache.watch(HOST, TYPE_A)
        self.cache.add(a("10.0.0.1", ttl=100))
        self.run_for(101)
        times = [t for t, _ in self.refreshed]
        self.assertEqual(len(times), 4)
        for t, point in zip(times, (80, 85, 90, 95)):
            self.assertGreaterEqual(t, point)
            self.assertLessEqual(t, point + 2 + 0.1)
        self.assertEqual([str(r[0].rdata) for _, r in self.refreshed], ["10.0.0.1"] * 4)
        self.assertEqual(self.cache.get(HOST, TYPE_A), [])
        self.assertEqual(self.counters["cache.refreshes"], 4)

    def test_jitter_is_random(self) -> None:
        """
        The 2% are random: two caches with different random sources refresh
        at different moments (so two hosts do not ask in lockstep).
        """
        times = set()
        for seed in range(5):
            clock = Clock()
            cache = RecordCache(clock, random=random.Random(seed))
            seen: list[float] = []
            cache.on_refresh = lambda records, clock=clock, seen=seen: seen.append(clock.seconds())
            cache.watch(HOST, TYPE_A)
            cache.add(a("10.0.0.1", ttl=1000))
            for _ in range(840 * 4):
                clock.advance(0.25)
            cache.close()
            self.assertTrue(800 <= seen[0] <= 820.25, seen)
            times.add(seen[0])
        self.assertGreater(len(times), 1)

    def test_answer_resets_refresh(self) -> None:
        self.cache.watch(HOST, TYPE_A)
        self.cache.add(a("10.0.0.1", ttl=100))
        self.run_for(83)
        self.assertEqual(len(self.refreshed), 1)
        self.cache.add(a("10.0.0.1", ttl=100))  # the refresh was answered
        self.run_for(60)
        self.assertEqual(len(self.refreshed), 1)
        self.run_for(25)
        self.assertEqual(len(self.refreshed), 2)
        self.assertEqual(len(self.cache), 1)

    def test_unwatched_records_not_refreshed(self) -> None:
        self.cache.add(a("10.0.0.1", ttl=100))
        self.cache.add(a("10.0.0.2", ttl=100, name=OTHER))
        self.cache.watch(OTHER, TYPE_A)
        self.run_for(100)
        self.assertEqual(
            [str(r.rdata) for _, records in self.refreshed for r in records], ["10.0.0.2"] * 4
        )

    def test_watch_later_and_unwatch(self) -> None:
        self.cache.add(a("10.0.0.1", ttl=100))
        self.run_for(50)
        self.cache.watch(HOST, TYPE_A)
        self.run_for(33)
        self.assertEqual(len(self.refreshed), 1)
        self.cache.unwatch(HOST, TYPE_A)
        self.run_for(20)
        self.assertEqual(len(self.refreshed), 1)

    def test_watch_is_counted(self) -> None:
        self.cache.watch(HOST, TYPE_A)
        self.cache.watch(HOST, TYPE_A)
        self.cache.unwatch(HOST, TYPE_A)
        self.assertTrue(self.cache.watched(HOST, TYPE_A))
        self.cache.unwatch(HOST, TYPE_A)
        self.assertFalse(self.cache.watched(HOST, TYPE_A))

    def test_goodbye_cancels_refresh(self) -> None:
        self.cache.watch(HOST, TYPE_A)
        self.cache.add(a("10.0.0.1", ttl=100))
        self.run_for(10)
        self.cache.add(a("10.0.0.1", ttl=0))
        self.run_for(100)
        self.assertEqual(self.refreshed, [])


class BoundTests(CacheTestCase):
    def test_oldest_evicted_and_counted(self) -> None:
        cache = RecordCache(self.clock, max_records=3, counters=self.counters)
        changes = Changes()
        cache.add_listener(changes)
        for n in range(5):
            cache.add(a(f"10.0.0.{n}", flush=False))
            self.clock.advance(1)
        self.assertEqual(len(cache), 3)
        self.assertEqual(sorted(str(r.rdata) for r in cache.records()),
                         ["10.0.0.2", "10.0.0.3", "10.0.0.4"])
        self.assertEqual(self.counters["cache.evicted"], 2)
        self.assertIn(("evicted", "10.0.0.0"), changes.events())
        cache.close()

    def test_received_again_is_young_again(self) -> None:
        cache = RecordCache(self.clock, max_records=2, counters=self.counters)
        cache.add(a("10.0.0.1", flush=False))
        self.clock.advance(1)
        cache.add(a("10.0.0.2", flush=False))
        self.clock.advance(1)
        cache.add(a("10.0.0.1", flush=False))
        cache.add(a("10.0.0.3", flush=False))
        self.assertEqual(sorted(str(r.rdata) for r in cache.records()), ["10.0.0.1", "10.0.0.3"])
        cache.close()

    def test_bound_must_be_positive(self) -> None:
        self.assertRaises(ValueError, RecordCache, self.clock, max_records=0)


class LookupTests(CacheTestCase):
    def test_lookup_is_case_insensitive(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.assertEqual(len(self.cache.get(name_from_text("LAB.Local"), TYPE_A)), 1)
        self.assertEqual(self.cache.get(HOST, TYPE_SRV), [])

    def test_any_type(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.cache.add(srv_record(HOST, OTHER, 80, 120))
        self.assertEqual(sorted(r.rtype for r in self.cache.get(HOST, TYPE_ANY)), [TYPE_A, TYPE_SRV])

    def test_newest_prefers_live_over_flushed(self) -> None:
        self.cache.add(srv_record(HOST, OTHER, 80, 120))
        self.clock.advance(5)
        self.cache.add(srv_record(HOST, OTHER, 81, 120))
        self.assertEqual(self.cache.newest(HOST, TYPE_SRV).rdata.port, 81)

    def test_known_answers_more_than_half_ttl(self) -> None:
        """
        s7.1: only records with more than half their TTL left, with the TTL
        they have left.
        """
        self.cache.add(a("10.0.0.1", ttl=100, flush=False))
        self.clock.advance(30)
        self.cache.add(a("10.0.0.2", ttl=100, flush=False))
        self.clock.advance(25)
        known = self.cache.known_answers(Question(HOST, TYPE_A))
        self.assertEqual([(str(r.rdata), r.ttl) for r in known], [("10.0.0.2", 75)])
        self.clock.advance(30)
        self.assertEqual(self.cache.known_answers(Question(HOST, TYPE_A)), [])

    def test_known_answers_leave_out_goodbyes(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.cache.add(a("10.0.0.1", ttl=0))
        self.assertEqual(self.cache.known_answers(Question(HOST, TYPE_A)), [])

    def test_remove_and_contains(self) -> None:
        record = a("10.0.0.1")
        self.cache.add(record)
        self.assertIn(record, self.cache)
        self.assertTrue(self.cache.remove(record))
        self.assertNotIn(record, self.cache)
        self.assertFalse(self.cache.remove(record))
        self.assertEqual(self.changes.events()[-1], ("removed", "10.0.0.1"))

    def test_closed_cache_takes_nothing(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.cache.close()
        self.assertEqual(self.cache.add(a("10.0.0.2")), [])
        self.assertEqual(len(self.cache), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failing_listener_does_not_break_cache(self) -> None:
        def broken(changes):
            raise RuntimeError("listener bug")

        self.cache.add_listener(broken)
        self.cache.add(a("10.0.0.1"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.addresses(), ["10.0.0.1"])
        self.assertEqual(self.changes.events(), [("added", "10.0.0.1")])


class HeardAgainTests(CacheTestCase):
    """
    Most of a busy link is records the cache already holds, heard again:
    that must cost no reordering, no new timer entry and no second copy.
    """

    def test_heard_again_files_nothing(self) -> None:
        """
        A record heard again only moves its deadline later: its filing in
        the calendar stays (it will come early once and be filed again),
        and expiry still follows the last reception.
        """
        self.cache.add(a("10.0.0.1", ttl=10))
        filed = (self.cache._filed, len(self.cache._heap))
        for _ in range(50):
            self.clock.advance(0.1)
            self.cache.add(a("10.0.0.1", ttl=10))
        self.assertEqual((self.cache._filed, len(self.cache._heap)), filed)
        self.clock.advance(9.8)
        self.assertEqual(self.addresses(), ["10.0.0.1"])
        self.clock.advance(0.3)
        self.assertEqual(self.addresses(), [])
        self.assertEqual(("expired", "10.0.0.1"), self.changes.events()[-1])

    def test_heard_again_replaces_record(self) -> None:
        """
        The entry keeps the record as last received (its TTL and flush bit),
        in its place in the rrset and nowhere else.
        """
        self.cache.add(a("10.0.0.1", ttl=100))
        self.cache.add(a("10.0.0.2", ttl=100, flush=False))
        again = a("10.0.0.1", ttl=50, flush=False)
        self.cache.add(again)
        self.assertEqual(len(self.cache), 2)
        self.assertIs(self.cache.entry(a("10.0.0.1")).record, again)
        self.assertEqual(sorted(r.ttl for r in self.cache.get(HOST, TYPE_A)), [50, 100])
        self.assertIn(again, self.cache)
        self.assertNotIn(a("10.0.0.3"), self.cache)

    def test_refresh_points_only_for_watched(self) -> None:
        self.cache.add(a("10.0.0.1"))
        self.assertIsNone(self.cache.entry(a("10.0.0.1")).refresh)
        self.cache.watch(HOST, TYPE_A)
        self.assertEqual(len(self.cache.entry(a("10.0.0.1")).refresh), 4)

    def test_eviction_gives_heard_again_a_second_chance(self) -> None:
        """
        The oldest record heard again since it came in is passed over once
        (moved to the young end); the next oldest heard only once goes.
        """
        cache = RecordCache(self.clock, max_records=3, counters=self.counters)
        for n in range(3):
            cache.add(a(f"10.0.0.{n}", flush=False))
            self.clock.advance(1)
        cache.add(a("10.0.0.0", flush=False))
        cache.add(a("10.0.0.1", flush=False))
        cache.add(a("10.0.0.3", flush=False))
        self.assertEqual(sorted(str(r.rdata) for r in cache.records()), ["10.0.0.0", "10.0.0.1", "10.0.0.3"])
        cache.add(a("10.0.0.4", flush=False))
        self.assertEqual(sorted(str(r.rdata) for r in cache.records()), ["10.0.0.1", "10.0.0.3", "10.0.0.4"])
        self.assertEqual(self.counters["cache.evicted"], 2)
        cache.close()

    def test_rrset_of_several_and_other_classes(self) -> None:
        """
        An rrset of several records (a type's PTRs) finds each by its
        rdata; the same rdata in another class is another record.
        """
        for n in range(5):
            self.cache.add(ptr(f"Instance {n}"))
        other_class = Record(SERVICES, TYPE_PTR, ptr("Instance 0").rdata, 4500, rclass=3)
        self.cache.add(other_class)
        self.assertEqual(len(self.cache), 6)
        self.assertIn(ptr("Instance 3"), self.cache)
        self.assertIs(self.cache.entry(other_class).record, other_class)
        self.assertEqual(len(self.cache.get(SERVICES, TYPE_PTR)), 6)
        for n in range(5):
            self.assertTrue(self.cache.remove(ptr(f"Instance {n}")))
        self.assertEqual(self.cache.records(), [other_class])
        self.assertNotIn(ptr("Instance 0"), self.cache)


class CalendarTests(CacheTestCase):
    """
    The deadlines are filed by spans of a few seconds and only the span that has
    begun is ordered exactly (L{twisted_mdns.cachetime}): expiry must
    still come at each record's own deadline, in order, and what left
    the cache must not stay filed.
    """

    def expiry_times(self) -> list[tuple[float, str]]:
        times: list[tuple[float, str]] = []
        self.cache.add_listener(
            lambda changes: times.extend((self.clock.seconds(), str(c.record.rdata))
                                         for c in changes if c.event is CacheEvent.EXPIRED))
        return times

    def test_each_record_expires_at_its_own_deadline(self) -> None:
        """
        Records received at odd fractions of a second, whose deadlines
        share seconds and straddle them, expire in deadline order, each
        within a millisecond of received + TTL, never before.
        """
        times = self.expiry_times()
        rng = random.Random(3)
        expected = []
        for i in range(300):
            # About 4 s of arrivals, all before the first deadline, so that
            # the deadlines fall at every point of the calendar's spans.
            self.clock.advance(rng.uniform(0, 0.026))
            ttl = rng.choice((5, 6, 7, 9, 11, 13))
            address = f"10.0.{i // 250}.{i % 250}"
            self.cache.add(a(address, ttl=ttl, name=(f"h{i}".encode(), b"local")))
            expected.append((self.clock.seconds() + ttl, address))
        expected.sort()
        while self.clock.getDelayedCalls():
            self.clock.advance(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
        self.assertEqual([address for _, address in times], [address for _, address in expected])
        for (when, _), (deadline, _) in zip(times, expected):
            self.assertGreaterEqual(when, deadline - 1e-6)
            self.assertLess(when, deadline + 1e-3)

    def test_sparse_traffic_shares_lists(self) -> None:
        """
        A quiet link, one new record a second: the calendar keeps a list
        per span of 4 s, not one per record.
        """
        for i in range(400):
            self.cache.add(a(f"10.0.{i // 250}.{i % 250}", ttl=4500, name=(f"q{i}".encode(), b"local")))
            self.clock.advance(1.0)
        self.assertEqual(len(self.cache), 400)
        self.assertLessEqual(len(self.cache._slots), 400 // 4 + 1)

    def test_goodbye_comes_before_its_filed_span(self) -> None:
        """
        A record filed an hour ahead, then said goodbye to, leaves one
        second later (s10.1), not when its old span comes.
        """
        self.cache.add(a("10.0.0.1", ttl=3600))
        self.clock.advance(5.5)
        self.cache.add(a("10.0.0.1", ttl=0))
        self.clock.advance(0.9)
        self.assertEqual(self.addresses(), ["10.0.0.1"])
        self.clock.advance(0.2)
        self.assertEqual(self.addresses(), [])
        self.assertEqual(self.changes.events()[-1], ("removed", "10.0.0.1"))

    def test_gone_entries_do_not_stay_filed(self) -> None:
        """
        A bounded cache on a link with more records than the bound evicts
        steadily, and goodbyes remove records a second later; the entries
        gone (and their records) must not pile up in the calendar or the
        eviction order.
        """
        cache = RecordCache(self.clock, max_records=100)
        self.addCleanup(cache.close)
        for i in range(5000):
            record = a(f"10.{i // 62500}.{i // 250 % 250}.{i % 250}", ttl=4500,
                       name=(f"h{i % 700}".encode(), b"local"))
            cache.add(record)
            if i % 3 == 0:
                cache.add(record.with_ttl(0))
            if i % 50 == 0:
                self.clock.advance(0.3)
            self.assertLessEqual(cache._filed, 100 + (100 >> 3) + 64 + 1)
            self.assertLessEqual(len(cache._heap), 100 + (100 >> 3) + 64 + 1)
            self.assertLessEqual(len(cache._order), 100 + (100 >> 3) + 64 + 1)
        self.assertEqual(len(cache), 100)
        # Below the bound, nothing is evicted: the goodbyes alone.
        roomy = RecordCache(self.clock)
        self.addCleanup(roomy.close)
        records = [a(f"10.1.{i // 250}.{i % 250}", name=(f"r{i}".encode(), b"local")) for i in range(1000)]
        roomy.add_all(records)
        roomy.add_all(r.with_ttl(0) for r in records[100:])
        self.clock.advance(1.5)
        self.assertEqual(len(roomy), 100)
        self.assertLessEqual(len(roomy._order), 100 + (100 >> 3) + 64 + 1)
