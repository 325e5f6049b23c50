"""
The Discovery Proxy's network edge over real loopback sockets: UDP and TCP
on one port, the allow list, FORMERR and drops for hostile input, TC above
the client's UDP size (RFC 8766 §9; RFC 1035 §4.2.1; RFC 6891).

The link's cache is a real L{RecordCache} on the real reactor; only the
querier's multicast C{ask} is a stand-in (no link here: the namespace tests
in L{tests.test_proxy_netns} have real ones).
"""

from __future__ import annotations

import ipaddress
import struct

from twisted.application.service import IService
from twisted.internet import defer, protocol, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.names import dns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from tests.peers import dig_query, require_peers
from tests.test_proxy import HTTP, Engines, FakeQuerier, FakeResponder, service_records
from twisted_mdns.message import (
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    parse,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.proxy import DiscoveryProxy, DomainMap, ProxyResolver
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.proxy import default_allow
from twisted_mdns.proxy.server import (
    MAX_TCP_CONNECTIONS,
    TCP_IDLE_TIMEOUT,
    ProxyDatagramProtocol,
    ProxyServerFactory,
    source_address,
)


class Collector(protocol.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagramReceived(self, data, addr) -> None:
        self.got.append(data)


def query_bytes(name: bytes, rtype: int, ident: int = 0x1234, edns: int | None = None) -> bytes:
    m = dns.Message(id=ident)
    m.addQuery(name, rtype)
    data = m.toStr()
    if edns is not None:
        header = bytearray(data[:12])
        struct.pack_into("!H", header, 10, 1)  # ARCOUNT
        data = bytes(header) + data[12:] + b"\x00" + struct.pack("!HHIH", 41, edns, 0, 0)
    return data


class ServerTests(TestCase):
    timeout = 30

    def setUp(self):
        self.querier = FakeQuerier(reactor)
        for cache in self.querier.caches.values():
            self.addCleanup(cache.close)
        self.b = self.querier.caches["lanb"]
        self.proxy = DiscoveryProxy(
            Engines(self.querier, FakeResponder()),
            DomainMap.parse(["lanb=b.lab.example"]),
            listen=[("127.0.0.1", 0)],
            allow=[ipaddress.ip_network("127.0.0.0/8")],
            wait=0.3, server="proxy.lab.example",
        )
        self.assertTrue(verifyObject(IService, self.proxy))
        self.proxy.startService()
        self.addCleanup(self.proxy.stopService)
        self.port = self.proxy.address()[1]
        self.client = Collector()
        self.client_port = reactor.listenUDP(0, self.client, interface="127.0.0.1")
        self.addCleanup(self.client_port.stopListening)

    async def exchange(self, data: bytes, wait: float = 0.5) -> list[bytes]:
        before = len(self.client.got)
        self.client.transport.write(data, ("127.0.0.1", self.port))
        waited = 0.0
        while len(self.client.got) == before and waited < wait:
            await deferLater(0.02)
            waited += 0.02
        if len(self.client.got) == before:
            await deferLater(0.05)
        return self.client.got[before:]

    def test_answers_over_udp(self):
        async def run():
            self.b.add_all(service_records())
            replies = await self.exchange(query_bytes(b"_http._tcp.b.lab.example", dns.PTR))
            self.assertEqual(len(replies), 1)
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.id, m.answer, m.auth, m.rCode, m.trunc), (0x1234, 1, 1, 0, 0))
            self.assertEqual([rr.payload.name.name for rr in m.answers],
                             [b"Peer Web._http._tcp.b.lab.example"])
            self.assertEqual(len(m.additional), 3)
        return defer.ensureDeferred(run())

    def test_no_data_is_authoritative_with_soa(self):
        async def run():
            replies = await self.exchange(query_bytes(b"nobody.b.lab.example", dns.A), wait=1.0)
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.rCode, m.auth, m.answers), (0, 1, []))
            self.assertEqual([rr.type for rr in m.authority], [dns.SOA])
        return defer.ensureDeferred(run())

    def test_out_of_zone_refused(self):
        async def run():
            replies = await self.exchange(query_bytes(b"www.example.com", dns.A))
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.answer, m.rCode), (1, dns.EREFUSED))
        return defer.ensureDeferred(run())

    def test_malformed(self):
        """
        Hostile input: short datagrams and responses are dropped, garbage
        after a header and two questions get FORMERR; all counted; the
        server still answers afterwards.
        """
        async def run():
            self.assertEqual(await self.exchange(b"\x12\x34\x00", wait=0.2), [])
            response = bytearray(query_bytes(b"x.b.lab.example", dns.A))
            response[2] |= 0x80
            self.assertEqual(await self.exchange(bytes(response), wait=0.2), [])
            garbage = struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0) + b"\xc0\x0c\xc0\x0c\x00"
            two = bytearray(query_bytes(b"x.b.lab.example", dns.A, ident=0x4343))
            two[5] = 2
            two += two[12:]
            replies = await self.exchange(garbage) + await self.exchange(bytes(two))
            for reply, ident in zip(replies, (0x4242, 0x4343)):
                m = dns.Message()
                m.fromStr(reply)
                self.assertEqual((m.id, m.answer, m.rCode), (ident, 1, dns.EFORMAT))
            self.assertEqual(len(replies), 2)
            counters = self.proxy.counters
            self.assertEqual(
                (counters["proxy.dropped-short"], counters["proxy.dropped-response"],
                 counters["proxy.formerr"]),
                (1, 1, 2),
            )
            replies = await self.exchange(query_bytes(b"b.lab.example", dns.SOA))
            self.assertEqual(len(replies), 1)
        return defer.ensureDeferred(run())

    def fill(self, count: int = 40) -> None:
        records = []
        for i in range(count):
            instance = join_name(f"Service number {i:03d}", HTTP)
            records += [ptr_record(HTTP, instance, 4500),
                        srv_record(instance, name_from_text("peer.local"), 8000 + i, 120)]
        records.append(a_record(name_from_text("peer.local"), "10.2.0.2", 120))
        self.b.add_all(records)

    def test_truncated_above_512(self):
        """
        Without EDNS a UDP answer is at most 512 bytes: TC and no answers;
        with EDNS 4096 the whole answer; never more than the client's size.
        """
        async def run():
            self.fill()
            replies = await self.exchange(query_bytes(b"_http._tcp.b.lab.example", dns.PTR))
            self.assertLessEqual(len(replies[0]), 512)
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.trunc, m.answers), (1, []))
            replies = await self.exchange(query_bytes(b"_http._tcp.b.lab.example", dns.PTR, edns=4096))
            self.assertGreater(len(replies[0]), 512)
            self.assertLessEqual(len(replies[0]), 4096)
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.trunc, len(m.answers)), (0, 40))
            replies = await self.exchange(query_bytes(b"_http._tcp.b.lab.example", dns.PTR, edns=1000))
            self.assertLessEqual(len(replies[0]), 1000)
            self.assertGreaterEqual(self.proxy.counters["proxy.truncated"], 2)
        return defer.ensureDeferred(run())

    def test_tcp_whole_answer(self):
        """
        dig over TCP (and over UDP, retrying over TCP after TC) gets every
        answer.
        """
        require_peers("dig")

        async def run():
            self.fill()
            answer = await dig_query(None, "127.0.0.1", "_http._tcp.b.lab.example", "PTR",
                                     port=self.port, extra=["+tcp"])
            self.assertEqual(answer.status, "NOERROR")
            self.assertEqual(len(answer.data("PTR")), 40)
            self.assertIn("aa", answer.flags)
            udp = await dig_query(None, "127.0.0.1", "_http._tcp.b.lab.example", "PTR", port=self.port)
            self.assertEqual(len(udp.data("PTR")), 40)  # dig retried over TCP
            notcp = await dig_query(None, "127.0.0.1", "_http._tcp.b.lab.example", "PTR",
                                    port=self.port, extra=["+ignore"])
            self.assertIn("tc", notcp.flags)
        return defer.ensureDeferred(run())

    def test_dot_inside_an_instance_label(self):
        """
        An instance called "Printer v2.1" (a dot is as legal as a space in
        an instance name, RFC 6763 §4.1.1) is one label end to end: dig
        browses it, then asks for its SRV and TXT by that label, escaped
        as RFC 1035 §5.1 writes it.
        """
        require_peers("dig")
        instance = join_name("Printer v2.1", HTTP)
        host = name_from_text("printer.local")

        async def run():
            self.b.add_all([
                ptr_record(HTTP, instance, 4500),
                srv_record(instance, host, 631, 120),
                txt_record(instance, [b"rp=ipp/print"], 4500),
                a_record(host, "10.2.0.9", 120),
            ])
            browse = await dig_query(None, "127.0.0.1", "_http._tcp.b.lab.example", "PTR", port=self.port)
            self.assertEqual(browse.data("PTR"), ["Printer\\032v2\\.1._http._tcp.b.lab.example."])
            # (the parsed owner names are unescaped; the PTR data above is not)
            self.assertIn(("Printer v2.1._http._tcp.b.lab.example.", "SRV"),
                          {(r.name, r.rtype) for r in browse.additional})
            for tcp in ([], ["+tcp"]):
                srv = await dig_query(None, "127.0.0.1", "Printer\\032v2\\.1._http._tcp.b.lab.example",
                                      "SRV", port=self.port, extra=tcp)
                self.assertEqual(srv.status, "NOERROR")
                self.assertEqual(srv.data("SRV"), ["0 0 631 printer.b.lab.example."])
                self.assertEqual(srv.data("A", "additional"), ["10.2.0.9"])
            txt = await dig_query(None, "127.0.0.1", "Printer\\032v2\\.1._http._tcp.b.lab.example",
                                  "TXT", port=self.port)
            self.assertEqual(txt.data("TXT"), ['"rp=ipp/print"'])
            # Two labels "Printer v2" and "1" are another name: nothing there.
            other = await dig_query(None, "127.0.0.1", "Printer\\032v2.1._http._tcp.b.lab.example",
                                    "SRV", port=self.port)
            self.assertEqual(other.answers, ())
            self.assertEqual(self.proxy.counters["proxy.formerr"], 0)
        return defer.ensureDeferred(run())

    def test_refused_outside_allow(self):
        """
        A client outside the allow list gets REFUSED (QR set), counted, and
        nothing is asked on the link.
        """
        async def run():
            await self.proxy.stopService()
            self.proxy.allow = [ipaddress.ip_network("10.0.0.0/8")]
            self.proxy.startService()
            self.port = self.proxy.address()[1]
            replies = await self.exchange(query_bytes(b"x.b.lab.example", dns.A))
            m = dns.Message()
            m.fromStr(replies[0])
            self.assertEqual((m.answer, m.rCode), (1, dns.EREFUSED))
            self.assertEqual(self.proxy.counters["proxy.refused"], 1)
            self.assertEqual(self.querier.asked, [])
        return defer.ensureDeferred(run())

    def test_ipv6_listen(self):
        """
        An IPv6 listening address serves UDP and TCP; the default allow
        list admits loopback (::1).
        """
        require_peers("dig")

        async def run():
            self.b.add_all(service_records() + [aaaa_record(name_from_text("peer.local"), "2001:db8::2", 120)])
            proxy6 = DiscoveryProxy(
                Engines(self.querier, FakeResponder()), DomainMap.parse(["lanb=b.lab.example"]),
                listen=[("::1", 0)], wait=0.3, server="proxy.lab.example",
            )
            proxy6.startService()
            self.addCleanup(proxy6.stopService)
            port = proxy6.address()[1]
            for extra in ([], ["+tcp"]):
                answer = await dig_query(None, "::1", "peer.b.lab.example", "AAAA", port=port, extra=extra)
                self.assertEqual(answer.data("AAAA"), ["2001:db8::2"])
        return defer.ensureDeferred(run())

    def test_source_address(self):
        self.assertEqual(str(source_address("::ffff:10.1.2.3")), "10.1.2.3")
        self.assertIsNone(source_address("nonsense"))


class EdgeUnitTests(TestCase):
    """
    The TCP limits and the default allow list, without sockets.
    """

    def factory(self) -> ProxyServerFactory:
        return ProxyServerFactory(object(), [ipaddress.ip_network("127.0.0.0/8")])

    def test_idle_tcp_closed(self):
        clock = Clock()
        factory = ProxyServerFactory(object(), [], reactor=clock)
        proto = factory.buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = proto
        proto.makeConnection(transport)
        clock.advance(TCP_IDLE_TIMEOUT - 1)
        self.assertTrue(transport.connected)
        clock.advance(1)
        self.assertFalse(transport.connected)
        self.assertEqual(factory.counters["proxy.tcp-idle-closed"], 1)
        self.assertEqual(factory.connections, [])

    def test_tcp_connection_limit(self):
        factory = self.factory()
        factory.connections = [object()] * MAX_TCP_CONNECTIONS
        self.assertIsNone(factory.buildProtocol(None))
        self.assertEqual(factory.counters["proxy.tcp-rejected"], 1)

    def test_default_allow(self):
        """
        Loopback and the subnets of every interface of the host.
        """
        enumerator = FixedEnumerator([
            NetworkInterface("eth0", 2, ipv4=(ipaddress.ip_interface("192.168.7.10/24"),)),
            NetworkInterface("eth1", 3, ipv4=(ipaddress.ip_interface("10.2.0.1/16"),),
                             ipv6=(ipaddress.ip_interface("2001:db8:1::5/64"),)),
        ])
        self.assertEqual(
            [str(n) for n in default_allow(enumerator)],
            ["127.0.0.0/8", "::1/128", "192.168.7.0/24", "10.2.0.0/16", "2001:db8:1::/64"],
        )
        factory = ProxyServerFactory(object(), default_allow(enumerator))
        self.assertTrue(factory.allowed("10.2.200.1"))
        self.assertTrue(factory.allowed("::ffff:192.168.7.99"))
        self.assertFalse(factory.allowed("10.3.0.1"))
        self.assertFalse(factory.allowed("not an address"))


def udp_edge():
    """
    The proxy's UDP edge on a Clock for link B (10.0.0.0/8 allowed), with
    what it sends collected: C{(clock, querier, resolver, factory,
    protocol, sent)}.
    """
    clock = Clock()
    querier = FakeQuerier(clock)
    resolver = ProxyResolver(DomainMap.parse(["lanb=b.lab.example"]),
                             Engines(querier, FakeResponder()), clock, server="proxy.lab.example")
    factory = ProxyServerFactory(resolver, [ipaddress.ip_network("10.0.0.0/8")], resolver.counters)
    proto = ProxyDatagramProtocol(factory)
    sent: list[bytes] = []

    class Transport:
        def write(self, data, address):
            sent.append(data)

    proto.transport = Transport()
    return clock, querier, resolver, factory, proto, sent


class HostileCorpusTests(TestCase):
    """
    The mDNS hostile corpus (L{tests.hostile_corpus}), every datagram fed to
    the proxy's UDP edge: nothing raises, each datagram has exactly one
    counted outcome, and no reply is larger than 512 bytes (none of them
    offers more).
    """

    def test_corpus(self):
        from tests import hostile_corpus

        clock, querier, resolver, factory, proto, sent = udp_edge()
        corpus = hostile_corpus.malformed() + hostile_corpus.anything() + hostile_corpus.valid()
        # Mutations of a proxy query too, from an allowed and a refused source.
        query = query_bytes(b"_http._tcp.b.lab.example", dns.PTR, edns=1232)
        corpus += hostile_corpus.bit_flips("proxy query", query)
        for _, datagram in corpus:
            proto.datagramReceived(datagram, ("10.1.2.3", 5353))
        proto.datagramReceived(query, ("192.0.2.1", 5353))
        clock.advance(resolver.wait + 0.1)
        counters = factory.counters
        outcomes = sum(counters[k] for k in (
            "proxy.dropped-short", "proxy.dropped-response", "proxy.refused",
            "proxy.formerr", "proxy.accepted",
        ))
        self.assertEqual(outcomes, len(corpus) + 1, dict(counters))
        self.assertEqual(counters["proxy.errors"], 0)
        self.assertEqual(counters["proxy.refused"], 1)
        self.assertGreater(counters["proxy.formerr"], 0)
        self.assertGreater(counters["proxy.accepted"], 0)
        self.assertTrue(sent)
        self.assertLessEqual(max(len(d) for d in sent), 512)
        self.assertLessEqual(len(querier.asked), 20)  # the burst, whatever came in


class AnyLabelTests(TestCase):
    """
    Instance labels holding any text (dots, backslashes, NULs, spaces: UTF-8,
    RFC 6763 §4.1.1) go in and out of the proxy intact: a published instance is answered under
    exactly the labels asked, nothing else is, and nothing raises.
    """

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.text(min_size=1, max_size=15).map(str.encode), min_size=1, max_size=4,
                    unique_by=bytes.lower),
           st.sampled_from([dns.SRV, dns.TXT, dns.ANY]))
    def test_labels_survive(self, instances, qtype):
        import dnslib

        clock, querier, resolver, factory, proto, sent = udp_edge()
        published, asked = instances[0], instances[-1]
        host = name_from_text("printer.local")
        querier.caches["lanb"].add_all([
            srv_record((published,) + HTTP, host, 631, 120),
            txt_record((published,) + HTTP, [b"k=v"], 4500),
        ])
        zone = (b"_http", b"_tcp", b"b", b"lab", b"example")
        query = dnslib.DNSRecord(dnslib.DNSHeader(id=77), q=dnslib.DNSQuestion(
            dnslib.DNSLabel((asked,) + zone), qtype)).pack()
        proto.datagramReceived(query, ("10.1.2.3", 5353))
        clock.advance(resolver.wait + 0.1)
        self.assertEqual(factory.counters["proxy.errors"], 0)
        self.assertEqual(len(sent), 1)
        reply = parse(sent[0])
        self.assertEqual((reply.id, reply.questions[0].name), (77, (asked,) + zone))
        owners = {r.name for r in reply.answers}
        if asked == published:
            self.assertEqual(owners, {(asked,) + zone})
        else:
            self.assertEqual(reply.answers, [])


class FixedEnumerator:
    def __init__(self, interfaces) -> None:
        self._interfaces = interfaces

    def interfaces(self):
        return list(self._interfaces)


def deferLater(seconds: float) -> defer.Deferred:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)
