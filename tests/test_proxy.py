"""
The Discovery Proxy's resolver, domains and rate limit (RFC 8766), driven
with a Clock: the link's cache is a real L{RecordCache}; only the querier's
C{ask} (the multicast edge) and the responder's view are stand-ins.
"""

from __future__ import annotations

import socket
from collections import Counter

from twisted.internet.interfaces import IResolver
from twisted.internet.task import Clock
from twisted.names import dns
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from twisted_mdns.cache import RecordCache
from twisted_mdns.constants import PROXY_TTL, TYPE_A, TYPE_NSEC, TYPE_PTR
from twisted_mdns.message import (
    Record,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    nsec_record,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.proxy import DomainMap, DomainSpecError, LinkDomain, OutOfZone, ProxyResolver
from twisted_mdns.proxy.ratelimit import QuestionRateLimit
from twisted_mdns.proxy.resolver import check_wait

from dnslib import CNAME, DNSLabel

HTTP = name_from_text("_http._tcp.local")
WEB = join_name("Peer Web", HTTP)
PEER = name_from_text("peer.local")


class FakeQuerier:
    """
    The querier's public surface the proxy uses: C{cache_for} (real caches)
    and C{ask}, recorded.
    """

    def __init__(self, clock: Clock, names=("lana", "lanb")) -> None:
        self.caches = {
            n: RecordCache(clock, NetworkInterface(n, i)) for i, n in enumerate(names, start=2)
        }
        self.asked: list[tuple] = []

    def cache_for(self, interface):
        return self.caches[interface]

    def ask(self, name, rtype, interface) -> None:
        self.asked.append((name, rtype, interface))


class FakeResponder:
    def __init__(self) -> None:
        self.views: dict[int, list[Record]] = {}

    def records_for(self, interface):
        return self.views.get(interface.index, [])


class Engines:
    def __init__(self, querier, responder=None) -> None:
        self.querier = querier
        self.responder = responder


def service_records(ttl_ptr=4500, ttl_host=120, address="10.2.0.2"):
    return [
        ptr_record(HTTP, WEB, ttl_ptr),
        srv_record(WEB, PEER, 8080, ttl_host),
        txt_record(WEB, [b"path=/"], ttl_ptr),
        a_record(PEER, address, ttl_host),
    ]


def names(rrs) -> list[tuple[bytes, int]]:
    return [(rr.name.name, rr.type) for rr in rrs]


class DomainTests(TestCase):
    """
    RFC 8766 §5.1, §5.5: per-link domains, names translated both ways.
    """

    link = LinkDomain("lanb", name_from_text("b.lab.example"))

    def test_to_and_from_local(self):
        self.assertEqual(
            self.link.to_local(name_from_text("_http._tcp.B.Lab.Example")),
            name_from_text("_http._tcp.local"),
        )
        self.assertEqual(
            self.link.from_local(WEB),
            (b"Peer Web", b"_http", b"_tcp", b"b", b"lab", b"example"),
        )
        self.assertIsNone(self.link.to_local(name_from_text("x.a.lab.example")))
        self.assertIsNone(self.link.to_local(name_from_text("lab.example")))
        self.assertIsNone(self.link.from_local(name_from_text("1.0.2.10.in-addr.arpa")))

    def test_rdata_translated(self):
        """
        PTR, SRV and CNAME targets under .local move to the link's domain;
        a target elsewhere stays as it is.
        """
        b = name_from_text("b.lab.example")
        ptr = self.link.translate(ptr_record(HTTP, WEB, 4500), 10)
        self.assertEqual(tuple(ptr.rdata.label.label), (b"Peer Web", b"_http", b"_tcp") + b)
        self.assertEqual(ptr.ttl, 10)
        self.assertFalse(ptr.cache_flush)
        srv = self.link.translate(srv_record(WEB, PEER, 8080, 120), 10)
        self.assertEqual(tuple(srv.rdata.target.label), (b"peer",) + b)
        self.assertEqual(srv.rdata.port, 8080)
        cname = Record(name_from_text("www.local"), 5, CNAME(DNSLabel([b"peer", b"local"])), 120)
        self.assertEqual(tuple(self.link.translate(cname, 10).rdata.label.label), (b"peer",) + b)
        outside = srv_record(WEB, name_from_text("host.example.com"), 80, 120)
        self.assertEqual(
            tuple(self.link.translate(outside, 10).rdata.target.label),
            name_from_text("host.example.com"),
        )

    def test_parse(self):
        domains = DomainMap.parse(["lana=a.lab.example", "lanb=b.lab.example."])
        self.assertEqual([d.interface for d in domains], ["lana", "lanb"])
        self.assertEqual(domains.find(name_from_text("x.B.lab.example")).interface, "lanb")
        self.assertIsNone(domains.find(name_from_text("lab.example")))
        for bad in (["lanb"], ["=b.lab.example"], ["lanb=foo.local"], ["lanb=10.0.0.1"],
                    ["lana=lab.example", "lanb=b.lab.example"], ["lana=x.example", "lanb=X.example"],
                    ["lanb=" + "a" * 64 + ".example"]):
            self.assertRaises(DomainSpecError, DomainMap.parse, bad)


class ResolverTests(TestCase):
    """
    The resolver's flow on a Clock (RFC 8766 §5.5, §5.6, §6).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.querier = FakeQuerier(self.clock)
        self.responder = FakeResponder()
        self.resolver = ProxyResolver(
            DomainMap.parse(["lana=a.lab.example", "lanb=b.lab.example"]),
            Engines(self.querier, self.responder), self.clock,
            wait=0.8, server="proxy.lab.example", burst=5, rate=2.0,
        )
        self.b = self.querier.caches["lanb"]
        self.a = self.querier.caches["lana"]

    def query(self, name: str, rtype: int):
        results = []
        failures = []
        self.resolver.query(dns.Query(name.encode(), rtype)).addCallbacks(
            results.append, failures.append
        )
        return results, failures

    def test_provides_iresolver(self):
        self.assertTrue(verifyObject(IResolver, self.resolver))

    def test_cache_hit_at_once_ttl_clamped(self):
        """
        Fresh records in the cache are answered at once, without a question
        on the link; TTLs at most 10 s (§5.5.1) and at most what is left.
        """
        self.b.add_all(service_records())
        results, _ = self.query("_http._tcp.b.lab.example", dns.PTR)
        self.assertEqual(self.querier.asked, [])
        (answers, authority, additional), = results
        self.assertEqual(names(answers), [(b"_http._tcp.b.lab.example", dns.PTR)])
        self.assertEqual(answers[0].payload.name.name, b"Peer Web._http._tcp.b.lab.example")
        self.assertTrue(all(rr.ttl <= PROXY_TTL for rr in answers + additional))
        self.assertEqual(answers[0].ttl, PROXY_TTL)
        # 115 s later the A record (TTL 120) has 5 s left: TTL 5.
        self.clock.advance(115)
        results, _ = self.query("peer.b.lab.example", dns.A)
        (answers, _, _), = results
        self.assertEqual([rr.ttl for rr in answers], [5])
        self.assertEqual(answers[0].payload.dottedQuad(), "10.2.0.2")

    def test_additional_records(self):
        """
        RFC 6763 §12: PTR brings SRV, TXT and the target's addresses; SRV
        brings the addresses.  All names under the link's domain.
        """
        self.b.add_all(service_records() + [aaaa_record(PEER, "2001:db8::2", 120)])
        results, _ = self.query("_http._tcp.b.lab.example", dns.PTR)
        (_, _, additional), = results
        self.assertEqual(
            sorted(names(additional)),
            sorted([
                (b"Peer Web._http._tcp.b.lab.example", dns.SRV),
                (b"Peer Web._http._tcp.b.lab.example", dns.TXT),
                (b"peer.b.lab.example", dns.A),
                (b"peer.b.lab.example", dns.AAAA),
            ]),
        )
        srv = [rr for rr in additional if rr.type == dns.SRV][0]
        self.assertEqual(srv.payload.target.name, b"peer.b.lab.example")
        results, _ = self.query("Peer Web._http._tcp.b.lab.example", dns.SRV)
        (answers, _, additional), = results
        self.assertEqual(names(answers), [(b"Peer Web._http._tcp.b.lab.example", dns.SRV)])
        self.assertEqual(sorted(rr.type for rr in additional), [dns.A, dns.AAAA])

    def test_link_local_suppressed(self):
        """
        RFC 8766 §5.5.2: 169.254/16 and fe80::/10 are never handed out;
        the routable addresses are.
        """
        self.b.add_all([
            a_record(PEER, "169.254.7.7", 120), a_record(PEER, "10.2.0.2", 120),
            aaaa_record(PEER, "fe80::1", 120), aaaa_record(PEER, "2001:db8::2", 120),
        ])
        results, _ = self.query("peer.b.lab.example", dns.A)
        self.assertEqual([rr.payload.dottedQuad() for rr in results[0][0]], ["10.2.0.2"])
        results, _ = self.query("peer.b.lab.example", dns.AAAA)
        self.assertEqual(
            [socket.inet_ntop(socket.AF_INET6, rr.payload.address) for rr in results[0][0]],
            ["2001:db8::2"],
        )
        self.assertEqual(self.resolver.counters["proxy.link-local-suppressed"], 2)
        # Only link-local: no data, not the address.
        self.a.add_all([a_record(PEER, "169.254.9.9", 120)])
        results, _ = self.query("peer.a.lab.example", dns.A)
        self.clock.advance(1)
        self.assertEqual(results[0][0], [])

    def test_miss_asks_and_answers_on_first_answer(self):
        """
        §5.6: a miss asks the link once and answers as soon as the answer
        arrives, before the wait bound.
        """
        results, _ = self.query("_http._tcp.b.lab.example", dns.PTR)
        self.assertEqual(self.querier.asked, [(HTTP, TYPE_PTR, "lanb")])
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.b.add_all(service_records())
        self.assertEqual(len(results), 1)
        self.assertEqual(names(results[0][0]), [(b"_http._tcp.b.lab.example", dns.PTR)])
        self.assertEqual(self.resolver.links[1].waiting, 0)
        self.assertEqual(self.resolver.counters["proxy.answered-after-wait"], 1)

    def test_wait_bound(self):
        """
        §5.6: with no answer, no data (SOA in authority) after exactly the
        configured wait; unrelated records do not end the wait.
        """
        results, _ = self.query("nobody.b.lab.example", dns.A)
        self.b.add_all([a_record(PEER, "10.2.0.2", 120)])
        self.clock.advance(0.79)
        self.assertEqual(results, [])
        self.clock.advance(0.02)
        (answers, authority, additional), = results
        self.assertEqual((answers, additional), ([], []))
        self.assertEqual(names(authority), [(b"b.lab.example", dns.SOA)])
        self.assertEqual(self.resolver.counters["proxy.wait-expired"], 1)

    def test_nsec_ends_wait(self):
        """
        An NSEC saying the name has no such type answers at once (no data),
        then and from the cache afterwards.
        """
        host = name_from_text("host.local")
        results, _ = self.query("host.b.lab.example", dns.AAAA)
        self.b.add_all([nsec_record(host, [TYPE_A], 120)])
        (answers, authority, _), = results
        self.assertEqual(answers, [])
        self.assertEqual(names(authority), [(b"b.lab.example", dns.SOA)])
        asked = len(self.querier.asked)
        results, _ = self.query("host.b.lab.example", dns.AAAA)
        self.assertEqual(len(results), 1)
        self.assertEqual(len(self.querier.asked), asked)

    def test_apex_soa_ns(self):
        """
        §6.1, §6.2: SOA (serial 0, minimum 10) and NS at the apex, at once,
        with no mDNS; other types there: no data.
        """
        results, _ = self.query("b.lab.example", dns.SOA)
        (answers, _, _), = results
        soa = answers[0].payload
        self.assertEqual((soa.serial, soa.minimum, soa.mname.name), (0, 10, b"proxy.lab.example"))
        results, _ = self.query("B.Lab.Example", dns.NS)
        self.assertEqual(results[0][0][0].payload.name.name, b"proxy.lab.example")
        results, _ = self.query("b.lab.example", dns.A)
        self.assertEqual(results[0][0], [])
        results, _ = self.query("_dns-push-tls._tcp.b.lab.example", dns.SRV)
        self.assertEqual(results[0][0], [])
        for meta in (dns.AXFR, dns.IXFR, dns.MAILB, TYPE_NSEC):
            results, _ = self.query("x.b.lab.example", meta)
            self.assertEqual(results[0][0], [])
        self.assertEqual(self.querier.asked, [])

    def test_out_of_zone_and_other_link(self):
        """
        A name under no served domain is refused; a query under link A's
        domain is asked on link A only and never answered from link B.
        """
        _, failures = self.query("www.example.com", dns.A)
        failures[0].trap(OutOfZone)
        self.b.add_all(service_records())
        results, _ = self.query("_http._tcp.a.lab.example", dns.PTR)
        self.assertEqual(self.querier.asked, [(HTTP, TYPE_PTR, "lana")])
        self.clock.advance(1)
        self.assertEqual(results[0][0], [])

    def test_own_services_included(self):
        """
        This host's own records on the link (the Responder's view of it)
        answer too, translated.
        """
        self.responder.views[3] = [
            ptr_record(HTTP, join_name("Own", HTTP), 4500),
            srv_record(join_name("Own", HTTP), name_from_text("proxy.local"), 80, 120),
        ]
        self.b.add_all(service_records())
        results, _ = self.query("_http._tcp.b.lab.example", dns.PTR)
        targets = sorted(rr.payload.name.name for rr in results[0][0])
        self.assertEqual(targets, [b"Own._http._tcp.b.lab.example", b"Peer Web._http._tcp.b.lab.example"])
        # Link A's view is not link B's.
        results, _ = self.query("_http._tcp.a.lab.example", dns.PTR)
        self.clock.advance(1)
        self.assertEqual(results[0][0], [])

    def test_goodbye_not_answered(self):
        """
        A record that said goodbye (TTL 0) is not handed out in its last
        second.
        """
        self.b.add_all(service_records())
        self.b.add_all([a_record(PEER, "10.2.0.2", 0)])
        results, _ = self.query("peer.b.lab.example", dns.A)
        self.clock.advance(1)
        self.assertEqual(results[0][0], [])

    def test_rate_limit(self):
        """
        §9.3: a flood of distinct client queries causes at most the burst
        of mDNS questions, then the sustained rate; each query is still
        answered within the wait bound.
        """
        pending = [self.query(f"n{i}.b.lab.example", dns.A)[0] for i in range(100)]
        self.assertEqual(len(self.querier.asked), 5)
        self.assertEqual(self.resolver.counters["proxy.rate-limited"], 95)
        self.clock.advance(1.0)
        self.assertTrue(all(len(r) == 1 for r in pending))
        for i in range(100, 110):
            self.query(f"n{i}.b.lab.example", dns.A)
        self.assertEqual(len(self.querier.asked), 7)  # 2 per second refilled
        # The other link has its own bucket.
        self.query("x.a.lab.example", dns.A)
        self.assertEqual(self.querier.asked[-1][2], "lana")

    def test_same_question_once_a_second(self):
        for _ in range(10):
            self.query("same.b.lab.example", dns.A)
        self.assertEqual(len(self.querier.asked), 1)
        self.clock.advance(1.0)
        self.query("same.b.lab.example", dns.A)
        self.assertEqual(len(self.querier.asked), 2)

    def test_subscribe_seam(self):
        """
        The DNS Push seam: a subscriber hears the changes of its name/type.
        """
        seen = []
        cancel = self.resolver.subscribe(b"_http._tcp.b.lab.example", TYPE_PTR, seen.append)
        self.b.add_all(service_records())
        self.assertEqual([c.record.rtype for batch in seen for c in batch], [TYPE_PTR])
        cancel()
        self.b.add_all([ptr_record(HTTP, join_name("Other", HTTP), 4500)])
        self.assertEqual(len(seen), 1)
        self.assertRaises(OutOfZone, self.resolver.subscribe, b"x.example", TYPE_PTR, seen.append)

    def test_close_answers_waiting(self):
        results, _ = self.query("late.b.lab.example", dns.A)
        self.resolver.close()
        self.assertEqual(len(results), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_check_wait(self):
        self.assertEqual(check_wait("0.5"), 0.5)
        for bad in (0, -1, 6.5, float("nan")):
            self.assertRaises(ValueError, check_wait, bad)


class RateLimitTests(TestCase):
    def test_refill(self):
        clock = Clock()
        limit = QuestionRateLimit(clock, Counter(), burst=2, rate=1.0)
        self.assertTrue(limit.allow(("a",), 1))
        self.assertTrue(limit.allow(("b",), 1))
        self.assertFalse(limit.allow(("c",), 1))
        clock.advance(1.0)
        self.assertTrue(limit.allow(("c",), 1))
        self.assertFalse(limit.allow(("d",), 1))
        self.assertRaises(ValueError, QuestionRateLimit, clock, Counter(), 0, 1.0)
