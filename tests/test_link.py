"""
L{twisted_mdns.link.Link}: one object per link, dropped whole; and the
per-link view of our records it holds (L{twisted_mdns.records.InterfaceRecords}).
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mdns.link import Link, MulticastTimes
from twisted_mdns.message import TYPE_A, TYPE_NSEC, TYPE_PTR, a_record, name_from_text, ptr_record
from twisted_mdns.records import SERVICES_META, InterfaceRecords, ServiceInfo, service_records
from twisted_mdns.testing import make_interface

ETH0 = make_interface("eth0", 2, "10.0.0.5/24")
LAB = name_from_text("lab.local")
WEB = ServiceInfo("My Web", "_http._tcp", 8080)
DOCS = ServiceInfo("Docs", "_http._tcp", 8081)


def records(service: ServiceInfo) -> tuple:
    unique, shared = service_records(service, LAB)
    return tuple(unique + shared)


class ViewTests(unittest.TestCase):
    def test_shared_record_counted(self) -> None:
        """
        A record two publishers put in the view leaves it with the second
        removal only (RFC 6762 §10.1: no goodbye while another still
        publishes it).
        """
        view = InterfaceRecords(ETH0)
        meta = ptr_record(SERVICES_META, WEB.type_name, 4500)
        self.assertTrue(view.add(meta))
        self.assertFalse(view.add(meta))
        self.assertFalse(view.remove(meta))
        self.assertEqual(view.lookup(meta.key, TYPE_PTR), [meta])
        self.assertTrue(view.remove(meta))
        self.assertEqual(view.lookup(meta.key, TYPE_PTR), [])
        self.assertEqual(view.all(), [])
        self.assertFalse(view.remove(meta), "removing what is not there is a no-op")

    def test_nsec_follows_the_records(self) -> None:
        view = InterfaceRecords(ETH0)
        a = a_record(LAB, "10.0.0.5", 120)
        view.add(a)
        nsec = view.nsec_for(a.key)
        self.assertEqual((nsec.rtype, [str(t) for t in nsec.rdata.rrlist]), (TYPE_NSEC, ["A"]))
        view.remove(a)
        self.assertIsNone(view.nsec_for(a.key), "no NSEC for a name we no longer own")


class LinkTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.link = Link(ETH0, self.clock)

    def test_publish_withdraw_returns_what_left(self) -> None:
        web, docs = object(), object()
        self.link.publish(web, records(WEB))
        self.link.publish(docs, records(DOCS))
        gone = self.link.withdraw(web)
        self.assertEqual({r.rtype for r in gone}, {33, 16, TYPE_PTR})
        self.assertNotIn(SERVICES_META, [r.name for r in gone], "Docs still publishes _http._tcp")
        self.assertEqual(len(self.link.view), len(records(DOCS)))
        self.assertEqual(self.link.withdraw(web), [], "withdrawing twice is harmless")

    def test_republish_replaces(self) -> None:
        web = object()
        self.link.publish(web, records(WEB))
        changed = WEB.with_txt({"v": "2"})
        gone = self.link.publish(web, records(changed))
        self.assertEqual([r.rtype for r in gone], [16], "only the old TXT left the view")
        self.assertEqual(len(self.link.view), len(records(changed)))

    def test_close_cancels_every_timer_of_the_link(self) -> None:
        fired = []
        self.link.timers.later(1, fired.append, 1)
        self.link.timers.later(2, fired.append, 2)
        self.link.multicast_times.sent([("x",)], 1.0)
        self.link.publish(object(), records(WEB))
        self.link.close()
        self.clock.advance(5)
        self.assertEqual(fired, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual((len(self.link.view), len(self.link.multicast_times)), (0, 0))

    def test_families_apart(self) -> None:
        """
        Each address family multicasts on its own (rate limits are per
        family), the view is the link's.
        """
        v4 = self.link.family(socket.AF_INET)
        v6 = self.link.family(socket.AF_INET6)
        self.assertIsNot(v4, v6)
        self.assertIs(self.link.family(socket.AF_INET6), v6)
        times = self.link.multicast_times
        times.sent([("x",)], 1.0, socket.AF_INET)
        self.assertEqual((times.get(("x",), socket.AF_INET), times.get(("x",), socket.AF_INET6)), (1.0, None))


class AnnouncedTests(unittest.TestCase):
    """
    L{Link.announced}: one time per claim for its own records, kept while
    it publishes the same records, and the later of that and the record's
    own entry is its last multicast.
    """

    def setUp(self) -> None:
        self.link = Link(ETH0, Clock())

    def test_kept_for_the_same_records_only(self) -> None:
        web = object()
        mine = records(WEB)
        self.link.publish(web, mine)
        self.link.announced[web] = 10.0
        self.link.publish(web, tuple(mine))
        self.assertEqual(self.link.announced.get(web), 10.0, "the same records: still announced then")
        self.link.publish(web, records(WEB.with_txt({"v": "2"})))
        self.assertIsNone(self.link.announced.get(web), "new records: never announced")
        self.link.announced[web] = 11.0
        self.link.withdraw(web)
        self.assertEqual(self.link.announced, {})

    def test_last_multicast_is_the_later(self) -> None:
        web = object()
        srv = records(WEB)[0]
        self.assertIsNone(self.link.last_multicast(srv, socket.AF_INET, web))
        self.link.announced[web] = 10.0
        self.assertEqual(self.link.last_multicast(srv, socket.AF_INET, web), 10.0)
        self.assertIsNone(self.link.last_multicast(srv, socket.AF_INET, None), "not its owner's time")
        self.link.multicast_times.sent([srv.identity], 12.0, socket.AF_INET6)
        self.assertEqual(self.link.last_multicast(srv, socket.AF_INET6, web), 12.0)
        self.assertEqual(self.link.last_multicast(srv, socket.AF_INET, web), 10.0)
        self.link.close()
        self.assertIsNone(self.link.last_multicast(srv, socket.AF_INET6, web))


class MulticastTimesTests(unittest.TestCase):
    """
    One table for both families: one time while they agree, a pair once
    they differ (RFC 6762 §6 rate limit and §5.4 per family).
    """

    V4, V6 = socket.AF_INET, socket.AF_INET6

    def both(self, times: MulticastTimes, identity: tuple) -> tuple:
        return (times.get(identity, self.V4), times.get(identity, self.V6))

    def test_every_family_then_one(self) -> None:
        times = MulticastTimes()
        times.sent([("a",), ("b",)], 5.0)
        self.assertEqual(self.both(times, ("a",)), (5.0, 5.0))
        self.assertEqual(times._times[("a",)], 5.0, "one float while the families agree")
        times.sent([("a",)], 6.5, self.V6)
        self.assertEqual(self.both(times, ("a",)), (5.0, 6.5))
        times.sent([("a",)], 7.0, self.V4)
        self.assertEqual(self.both(times, ("a",)), (7.0, 6.5))
        times.sent([("a",)], 7.0, self.V6)
        self.assertEqual(times._times[("a",)], 7.0, "agreeing again: one float")
        self.assertEqual(self.both(times, ("b",)), (5.0, 5.0))
        self.assertEqual(self.both(times, ("c",)), (None, None))
        times.sent([("c",)], 8.0, self.V4)
        self.assertEqual(self.both(times, ("c",)), (8.0, None))
        self.assertEqual(len(times), 3)
        times.clear()
        self.assertEqual((len(times), self.both(times, ("a",))), (0, (None, None)))
