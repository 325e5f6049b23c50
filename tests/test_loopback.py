"""
Our own looped-back responses and the querier's cache (issue 13).

Every datagram we multicast comes back to us (IP_MULTICAST_LOOP stays on
so that other stacks on this host hear us).  The querier caches from such
a response only what someone here wants (asked, watched, already cached,
or pointed to by a kept PTR/SRV), so that 10,000 services announced do
not push every other host's records out of the bounded cache, while a
local browse or resolve still finds our own services.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.querier_support import ETH0, HTTP, WEB, QuerierTestCase, Recorder, service_records
from tests.support import sleep, wait_until
from twisted_mdns.message import TYPE_A, TYPE_TXT, a_record, name_from_text, txt_record
from twisted_mdns.records import ServiceInfo
from twisted_mdns.service import MDNSService

US = str(ETH0.ipv4[0].ip)


class OwnResponseTests(QuerierTestCase):
    """
    The querier on a L{Clock}, fed responses from our own address.
    """

    def test_unwanted_own_records_skipped_and_counted(self) -> None:
        records = service_records(address=US)
        self.respond(records, source=US)
        self.assertEqual(len(self.querier.cache_for(ETH0)), 0)
        self.assertEqual(self.counters["responses.own-skipped"], len(records))
        self.assertEqual(self.counters["cache.added"], 0)

    def test_other_hosts_records_cached(self) -> None:
        records = service_records()
        self.respond(records)
        self.assertEqual(len(self.querier.cache_for(ETH0)), len(records))
        self.assertEqual(self.counters["responses.own-skipped"], 0)

    def test_local_browse_finds_own_service(self) -> None:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder, interface=ETH0)
        self.addCleanup(browser.stop)
        self.respond(service_records(address=US), source=US)
        self.clock.advance(1)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        service = recorder.calls[0][1]
        self.assertEqual((service.port, list(service.addresses)), (8080, [US]))
        # The browse answer's SRV, TXT and address came with the PTR.
        self.assertEqual(self.counters["responses.own-skipped"], 0)

    def test_cached_rrset_follows_our_update(self) -> None:
        cache = self.querier.cache_for(ETH0)
        cache.add(txt_record(WEB, [b"v=1"], 4500))
        self.clock.advance(2)  # RFC 6762 s10.2 flushes what is over a second old
        self.respond([txt_record(WEB, [b"v=2"], 4500)], source=US)
        self.assertEqual(cache.newest(WEB, TYPE_TXT).data, b"\x03v=2")
        self.clock.advance(1.5)
        self.assertEqual([r.data for r in cache.get(WEB, TYPE_TXT)], [b"\x03v=2"])

    def test_own_goodbye_removes_cached_record(self) -> None:
        cache = self.querier.cache_for(ETH0)
        (ptr,) = [r for r in service_records(address=US) if r.name == HTTP]
        cache.add(ptr)
        self.respond([ptr.with_ttl(0)], source=US)
        self.clock.advance(1.5)
        self.assertEqual(cache.get(HTTP, ptr.rtype), [])

    def test_one_shot_ask_gets_own_answer(self) -> None:
        lab = name_from_text("lab.local")
        self.querier.ask(lab, TYPE_A, ETH0)
        self.respond([a_record(lab, US, 120)], source=US)
        self.assertEqual([r.data for r in self.querier.cache_for(ETH0).get(lab, TYPE_A)], [bytes([192, 168, 1, 10])])


class LoopbackNetnsTests(NamespaceTestMixin, unittest.TestCase):
    """
    A real L{MDNSService} on two links: its own announcements come back to
    it over the real sockets and leave the caches alone, and browsing and
    resolving its own services still work.
    """

    timeout = 60
    virtual = False

    @defer.inlineCallbacks
    def test_own_announcements_do_not_fill_cache_and_browse_finds_them(self):
        mdns = MDNSService(hostname="loop", monitor=False)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        infos = [ServiceInfo(f"Svc {n}", "_bench._tcp", 7000 + n, {"n": str(n)}) for n in range(20)]
        yield defer.gatherResults([mdns.register(i) for i in infos])
        yield sleep(2.5)  # both announcements sent and looped back
        links = sorted(mdns.transport.interfaces.values(), key=lambda i: i.index)
        self.assertEqual(len(links), 2)
        self.assertGreater(mdns.counters["responses.own-skipped"], 20 * 4)
        for iface in links:
            self.assertEqual(len(mdns.querier.cache_for(iface.index)), 0, iface.name)
        seen = []
        browser = mdns.browse("_bench._tcp", lambda event, svc, iface: seen.append((event, svc, iface)))
        yield wait_until(lambda: len([e for e in seen if e[0] == "added"]) == 2 * len(infos), timeout=10,
                         what="every own service on both links")
        browser.stop()
        for event, svc, iface in seen:
            # That link's own addresses only (RFC 6762 §6.2), its IPv4 one
            # among them (an IPv6 link-local one too once DAD is over).
            own = {str(a.ip) for a in iface.ipv4} | {str(a.ip) for a in iface.ipv6}
            self.assertIn(str(iface.ipv4[0].ip), svc.addresses)
            self.assertEqual({a.split("%")[0] for a in svc.addresses} - own, set())
            self.assertEqual(svc.port, 7000 + int(svc.instance.split()[1]))
        found = yield mdns.resolve_service("Svc 3", "_bench._tcp", interface=links[0].index)
        self.assertEqual((found.port, found.txt), (7003, {"n": b"3"}))
