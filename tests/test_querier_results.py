"""
Tests for L{twisted_mdns.querier.results}: what a link's cache yields as a
L{ResolvedService}, and the listener adapters.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.querier_support import ETH0, PEERHOST, WEB, service_records
from twisted_mdns.cache import RecordCache
from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import TYPE_A, TYPE_AAAA, TYPE_SRV, TYPE_TXT, a_record
from twisted_mdns.querier.results import ServiceListener, as_listener, service_from_cache


class ServiceFromCacheTests(unittest.TestCase):
    def setUp(self) -> None:
        self.cache = RecordCache(Clock(), ETH0)
        self.addCleanup(self.cache.close)

    def test_missing_asks_what_would_complete_it(self) -> None:
        self.assertEqual(
            service_from_cache(self.cache, WEB, "_http._tcp", ETH0),
            (None, [(WEB, TYPE_SRV), (WEB, TYPE_TXT)], None),
        )
        self.cache.add_all(service_records()[1:2])  # the SRV alone
        service, missing, host = service_from_cache(self.cache, WEB, "_http._tcp", ETH0)
        self.assertIsNone(service)
        self.assertEqual(
            (missing, host), ([(WEB, TYPE_TXT), (PEERHOST, TYPE_A), (PEERHOST, TYPE_AAAA)], PEERHOST)
        )
        partial, _, _ = service_from_cache(self.cache, WEB, "_http._tcp", ETH0, partial=True)
        self.assertEqual((partial.port, partial.txt, partial.addresses), (8080, {}, ()))

    def test_complete(self) -> None:
        self.cache.add_all(service_records(txt=(b"path=/", b"flag", b"bad=\xff")))
        self.cache.add(a_record(PEERHOST, "192.168.1.9", 120))
        service, missing, host = service_from_cache(self.cache, WEB, "_http._tcp", ETH0)
        self.assertEqual(missing, [])
        self.assertEqual(service.addresses, ("192.168.1.9", "192.168.1.50"))
        self.assertEqual(service.txt_text(), {"path": "/", "flag": None, "bad": "\ufffd"})
        self.assertEqual(service.to_json()["interface"], "eth0")
        self.assertEqual((service.instance, service.host, service.full_name),
                         ("Web", "peer.local", "Web._http._tcp.local"))


class ListenerTests(unittest.TestCase):
    def test_service_listener(self) -> None:
        seen = []
        listener = ServiceListener(removed=lambda s, i: seen.append((s, i)))
        verifyObject(IServiceListener, listener)
        listener.service_added("s", ETH0)
        listener.service_updated("s", ETH0)
        listener.service_removed("s", ETH0)
        self.assertEqual(seen, [("s", ETH0)])

    def test_as_listener(self) -> None:
        listener = ServiceListener()
        self.assertIs(as_listener(listener), listener)
        events = []
        wrapped = as_listener(lambda *event: events.append(event))
        verifyObject(IServiceListener, wrapped)
        wrapped.service_updated("s", ETH0)
        self.assertEqual(events, [("updated", "s", ETH0)])
        self.assertRaises(TypeError, as_listener, object())
