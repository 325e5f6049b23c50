"""
The querier on dual-stack links, on a L{Clock}: traffic fed through IPv4
and IPv6 contexts (L{InterfaceContext6}) into one link's cache, the RFC
6762 §11 check for IPv6 sources, §7.3 across both families, and results
carrying IPv6 addresses with their scope.
"""

from __future__ import annotations

import ipaddress
import socket

from twisted.trial import unittest

from tests.querier_support import (
    HTTP,
    PEERHOST,
    FakeTransport,
    QuerierTestCase,
    Recorder,
    context,
    only_ipv4,
    service_records,
)
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_A,
    TYPE_AAAA,
    TYPE_PTR,
    Message,
    Question,
    a_record,
    aaaa_record,
    join_name,
    nsec_record,
    pack_one,
    parse,
    ptr_record,
)
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo6 import InterfaceContext6
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.querier import Querier, ResolvedService
from twisted_mdns.querier.continuous import SAME_QUERY_WINDOW, query_packet_limit
from twisted_mdns.querier.results import sockaddr

#: A dual-stack link: IPv4, a ULA prefix and a link-local address.
DUAL = NetworkInterface(
    "eth0", 2, mtu=1500,
    ipv4=(ipaddress.IPv4Interface("192.168.1.10/24"),),
    ipv6=(ipaddress.IPv6Interface("fd00:1::10/64"), ipaddress.IPv6Interface("fe80::10/64")),
)
#: Another dual-stack link with its own ULA prefix.
OTHER = NetworkInterface(
    "wlan0", 3, mtu=1500,
    ipv4=(ipaddress.IPv4Interface("10.0.0.5/24"),),
    ipv6=(ipaddress.IPv6Interface("fd00:2::5/64"), ipaddress.IPv6Interface("fe80::5/64")),
)
#: An IPv6-only link.
V6ONLY = NetworkInterface(
    "thread0", 4, mtu=1280, ipv6=(ipaddress.IPv6Interface("fe80::4/64"),)
)

PEER4 = ("192.168.1.50", 5353)
PEER6 = ("fe80::50%eth0", 5353, 0, DUAL.index)


def context6(iface: NetworkInterface, destination: str = "ff02::fb") -> InterfaceContext6:
    return InterfaceContext6(iface.index, iface.name, destination, iface)


def response(records) -> Message:
    return Message(flags=FLAG_QR | FLAG_AA, answers=list(records))


class DualStackTestCase(QuerierTestCase):
    interfaces = (DUAL, OTHER)

    def respond4(self, records, iface: NetworkInterface = DUAL, source=PEER4) -> None:
        self.querier.response_received(response(records), source, context(iface))

    def respond6(self, records, iface: NetworkInterface = DUAL, source=PEER6) -> None:
        self.querier.response_received(response(records), source, context6(iface))


class OneCachePerLinkTests(DualStackTestCase):
    """
    A link's IPv4 and IPv6 halves feed one cache: the same record heard
    over both is one entry.
    """

    def test_same_response_over_both_families_is_one_entry(self) -> None:
        records = service_records() + [aaaa_record(PEERHOST, "fd00:1::50", 120)]
        self.respond4(records)
        cache = self.querier.cache_for("eth0")
        self.assertEqual(len(cache), 5)
        self.assertEqual(self.counters["cache.added"], 5)
        self.clock.advance(0.01)
        self.respond6(records)
        self.assertEqual(len(cache), 5)
        self.assertEqual(self.counters["cache.added"], 5)
        self.assertEqual(sorted(cache.records(), key=repr), sorted(records, key=repr))
        # The other link heard nothing.
        self.assertEqual(len(self.querier.cache_for("wlan0")), 0)
        self.assertEqual(set(self.querier.caches), {DUAL.index, OTHER.index})

    def test_each_family_refreshes_the_one_entry(self) -> None:
        record = a_record(PEERHOST, "192.168.1.50", 120)
        self.respond4([record])
        self.clock.advance(100)
        self.respond6([record])  # heard again, over IPv6: TTL starts again
        self.clock.advance(100)
        self.assertEqual(self.querier.cache_for("eth0").get(PEERHOST, TYPE_A), [record])

    def test_ipv6_context_for_an_unknown_link_is_counted(self) -> None:
        stranger = NetworkInterface("eth9", 9, ipv6=(ipaddress.IPv6Interface("fe80::9/64"),))
        self.querier.response_received(response(service_records()), PEER6, context6(stranger))
        self.assertEqual(self.counters["responses.unknown-interface"], 1)


class SourceCheckTests(unittest.TestCase):
    """
    RFC 6762 §11 for IPv6 responses, through the protocol in front of the
    querier: fe80::/10 is always on-link, any other source only within one
    of the receiving link's prefixes.
    """

    def setUp(self) -> None:
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.querier = Querier(FakeTransport(DUAL, OTHER), self.clock)
        self.protocol = MDNSProtocol([self.querier])
        self.addCleanup(self.querier.stop)

    def hear(self, source: str, iface: NetworkInterface, address: str) -> None:
        packet = pack_one(flags=FLAG_QR | FLAG_AA, answers=[aaaa_record(PEERHOST, address, 120)])
        self.protocol.datagramReceivedOn(packet, (source, 5353, 0, iface.index), context6(iface))

    def cached(self, iface: NetworkInterface) -> list[str]:
        return sorted(str(r.rdata) for r in self.querier.cache_for(iface.name).get(PEERHOST, TYPE_AAAA))

    def test_link_local_source_always_on_link(self) -> None:
        self.hear("fe80::50", DUAL, "fd00:1::50")
        self.hear("fe80::99", OTHER, "fd00:2::99")
        self.assertEqual(self.cached(DUAL), ["fd00:1::50"])
        self.assertEqual(self.cached(OTHER), ["fd00:2::99"])
        self.assertEqual(self.protocol.counters["dropped.off-link"], 0)

    def test_source_in_the_links_prefix(self) -> None:
        self.hear("fd00:1::50", DUAL, "fd00:1::50")
        self.assertEqual(self.cached(DUAL), ["fd00:1::50"])

    def test_other_links_prefix_is_off_link(self) -> None:
        self.hear("fd00:2::50", DUAL, "fd00:2::50")
        self.hear("2001:db8::1", DUAL, "2001:db8::1")
        self.assertEqual(self.cached(DUAL), [])
        self.assertEqual(self.protocol.counters["dropped.off-link"], 2)

    def test_on_link_check_is_the_contexts(self) -> None:
        ctx = context6(DUAL)
        self.assertTrue(ctx.on_link("fe80::1234"))
        self.assertTrue(ctx.on_link("fd00:1::ffff"))
        self.assertFalse(ctx.on_link("fd00:2::1"))


class QueriesTests(DualStackTestCase):
    """
    Queries go out once per link, the transport putting them on every
    family the link runs; known answers and §7.3 span both families.
    """

    def start_browsing(self) -> list[float]:
        self.respond6(service_records())  # resolved: only the PTR is asked
        self.querier.browse("_http._tcp", Recorder(), interface="eth0")
        return self.send_times(0.5)

    def test_one_send_per_link(self) -> None:
        """
        The seam: C{send(datagram, ifindex)} with no destination, once per
        link and transmission (the transport multicasts it on each family).
        """
        self.querier.resolve_host("peer", timeout=3)
        self.send_times(0.2)
        self.assertEqual(sorted(i for _, i, _ in self.transport.sent), [DUAL.index, OTHER.index])
        self.assertEqual({d for _, _, d in self.transport.sent}, {None})

    def test_known_answers_heard_over_ipv6(self) -> None:
        times = self.start_browsing()
        self.assertEqual(len(times), 1)
        known = [r for m in self.transport.messages(DUAL.index) for r in m.answers]
        self.assertEqual(known, [r for r in service_records() if r.rtype == TYPE_PTR])

    def test_query_heard_over_ipv6_counts_as_ours(self) -> None:
        self.start_browsing()
        self.clock.advance(0.2)
        message = Message(questions=[Question(HTTP, TYPE_PTR)])
        self.querier.query_received(message, PEER6, context6(DUAL))
        self.assertEqual(self.counters["queries.suppressed"], 1)

    def test_dual_stack_copies_are_one_query(self) -> None:
        """
        A dual-stack peer's query arrives twice, over IPv4 and over IPv6:
        our next transmission is skipped once, not twice.
        """
        self.start_browsing()
        self.clock.advance(0.2)  # 0.7 s; our next would be ~1 s after the first
        message = Message(questions=[Question(HTTP, TYPE_PTR)], answers=[])
        self.querier.query_received(message, PEER4, context(DUAL))
        self.clock.advance(SAME_QUERY_WINDOW / 10)
        self.querier.query_received(message, PEER6, context6(DUAL))
        self.assertEqual(self.counters["queries.suppressed"], 1)
        self.assertEqual(self.counters["queries.same-round"], 1)
        times = self.send_times(4)
        # Counted as sent at 0.7 s: the next 2 s later (not 4 s later).
        self.assertEqual(len(times), 1)
        self.assertAlmostEqual(times[0], 0.7 + 2.0, places=1)

    def test_own_query_looped_back_over_ipv6(self) -> None:
        self.start_browsing()
        message = Message(questions=[Question(HTTP, TYPE_PTR)])
        self.querier.query_received(message, ("fe80::10", 5353, 0, DUAL.index), context6(DUAL))
        self.querier.query_received(message, ("fd00:1::10", 5353, 0, 0), context6(DUAL))
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_ask_suppressed_by_a_query_heard_over_ipv6(self) -> None:
        message = Message(questions=[Question(PEERHOST, TYPE_AAAA)])
        self.querier.query_received(message, PEER6, context6(DUAL))
        self.querier.ask(PEERHOST, TYPE_AAAA, "eth0")
        self.assertEqual(self.counters["ask.suppressed"], 1)
        self.assertEqual(self.transport.sent, [])

    def test_packets_fit_the_ipv6_payload(self) -> None:
        """
        RFC 6762 §17: the one datagram goes out over IPv6 too, so it fits
        the MTU less 48 bytes, not 28.
        """
        self.assertEqual(query_packet_limit(DUAL), 1500 - 48)
        self.assertEqual(query_packet_limit(V6ONLY), 1280 - 48)
        self.assertEqual(query_packet_limit(NetworkInterface("v4", 7, mtu=1500)), 1500 - 28)
        transport = FakeTransport(V6ONLY)
        querier = Querier(transport, self.clock)
        self.addCleanup(querier.stop)
        many = [ptr_record(HTTP, join_name(f"Instance {n:03d}", HTTP), 4500) for n in range(80)]
        querier.response_received(response(many), ("fe80::50", 5353, 0, 4), context6(V6ONLY))
        querier.ask(HTTP, TYPE_PTR, "thread0")
        sizes = [len(d) for d, _, _ in transport.sent]
        self.assertGreater(len(sizes), 1)
        self.assertLessEqual(max(sizes), 1280 - 48)
        self.assertEqual(sum(len(parse(d).answers) for d, _, _ in transport.sent), 80)


class AddressResultsTests(DualStackTestCase):
    """
    Results hold both families, link-local IPv6 addresses scoped to the
    link they were heard on.
    """

    def test_resolve_host_both_families(self) -> None:
        d = self.querier.resolve_host("peer", interface="eth0")
        self.send_times(0.2)
        self.assertEqual(
            [q for m in self.transport.questions() for q in m],
            [("peer.local", TYPE_A, True), ("peer.local", TYPE_AAAA, True)],
        )
        self.respond4([a_record(PEERHOST, "192.168.1.50", 120)])
        self.assertNoResult(d)  # AAAA neither heard nor denied yet
        self.respond6([
            aaaa_record(PEERHOST, "fe80::50", 120), aaaa_record(PEERHOST, "fd00:1::50", 120),
        ])
        self.assertEqual(
            self.successResultOf(d),
            {DUAL: ["192.168.1.50", "fd00:1::50", "fe80::50%eth0"]},
        )

    def test_interface_by_ipv6_address(self) -> None:
        for spec in ("fd00:2::5", "fe80::5"):
            d = self.querier.resolve_host("peer", interface=spec, timeout=0.5)
            self.clock.advance(1)
            self.assertEqual(self.successResultOf(d), {})
            self.assertEqual({i for _, i, _ in self.transport.sent}, {OTHER.index})
        self.assertIs(self.querier.cache_for("fd00:1::10"), self.querier.cache_for("eth0"))

    def test_one_family_reported_after_settle(self) -> None:
        """
        A responder with IPv4 only that sends no NSEC: its A is reported
        after C{settle}, not at the timeout, and AAAA was asked meanwhile.
        """
        d = self.querier.resolve_host("peer", interface="eth0", timeout=3, settle=0.5)
        self.send_times(0.2)
        self.respond4([a_record(PEERHOST, "192.168.1.50", 120)])
        self.transport.sent.clear()
        self.clock.advance(0.45)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), {DUAL: ["192.168.1.50"]})

    def test_nsec_completes_at_once(self) -> None:
        """
        RFC 6762 §6.2: the NSEC that comes with a host's only family says
        the other does not exist: nothing more to wait for.
        """
        d = self.querier.resolve_host("peer", interface="eth0")
        self.respond6([aaaa_record(PEERHOST, "fe80::50", 120), nsec_record(PEERHOST, [TYPE_AAAA], 120)])
        self.assertEqual(self.successResultOf(d), {DUAL: ["fe80::50%eth0"]})
        d = self.querier.resolve_host("peer", interface="wlan0")
        self.respond4([a_record(PEERHOST, "10.0.0.50", 120), only_ipv4()], OTHER, ("10.0.0.50", 5353))
        self.assertEqual(self.successResultOf(d), {OTHER: ["10.0.0.50"]})

    def test_same_link_local_on_two_links_is_two_answers(self) -> None:
        """
        fe80::50 on eth0 and fe80::50 on wlan0 are two hosts (RFC 4007):
        each answer carries its own zone.
        """
        d = self.querier.resolve_host("peer")
        for iface in (DUAL, OTHER):
            self.respond6(
                [aaaa_record(PEERHOST, "fe80::50", 120), nsec_record(PEERHOST, [TYPE_AAAA], 120)],
                iface, ("fe80::50", 5353, 0, iface.index),
            )
        self.assertEqual(
            self.successResultOf(d), {DUAL: ["fe80::50%eth0"], OTHER: ["fe80::50%wlan0"]}
        )

    def test_ipv6_only_service(self) -> None:
        """
        A service heard over IPv6 only, with AAAA only (a Matter/Thread
        device): browsed and resolved, with usable socket addresses.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        records = service_records()[:3] + [
            aaaa_record(PEERHOST, "fe80::50", 120),
            aaaa_record(PEERHOST, "fd00:1::50", 120),
            nsec_record(PEERHOST, [TYPE_AAAA], 120),
        ]
        self.respond6(records)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        service = recorder.calls[0][1]
        self.assertEqual(service.addresses, ("fd00:1::50", "fe80::50%eth0"))
        self.assertEqual(service.ipv4, ())
        self.assertEqual(service.ipv6, ("fd00:1::50", "fe80::50%eth0"))
        self.assertEqual(
            service.sockaddrs(), [("fd00:1::50", 8080, 0, 0), ("fe80::50", 8080, 0, DUAL.index)]
        )
        self.assertEqual(service.to_json()["addresses"], ["fd00:1::50", "fe80::50%eth0"])
        ip = service.ip_addresses[1]
        self.assertEqual((ip.scope_id, str(ip)), ("eth0", "fe80::50%eth0"))
        d = self.querier.resolve_service("Web", "_http._tcp", interface="eth0")
        self.assertEqual(self.successResultOf(d), service)

    def test_browse_updates_when_the_other_family_arrives(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        self.respond4(service_records())
        self.respond6([aaaa_record(PEERHOST, "fe80::50", 120)])
        self.assertEqual(
            recorder.events(), [("added", "Web", "eth0"), ("updated", "Web", "eth0")]
        )
        self.assertEqual(recorder.calls[-1][1].addresses, ("192.168.1.50", "fe80::50%eth0"))

    def test_resolve_service_waits_for_the_other_family(self) -> None:
        d = self.querier.resolve_service("Web", "_http._tcp", interface="eth0", settle=0.5)
        self.respond4(service_records())
        self.assertNoResult(d)
        self.transport.sent.clear()
        self.send_times(0.3)
        self.assertIn(("peer.local", TYPE_AAAA), {q[:2] for m in self.transport.questions() for q in m})
        self.respond6([aaaa_record(PEERHOST, "fd00:1::50", 120)])
        self.assertEqual(self.successResultOf(d).addresses, ("192.168.1.50", "fd00:1::50"))


class SockaddrTests(unittest.TestCase):
    def test_ipv4(self) -> None:
        self.assertEqual(sockaddr("10.0.0.1", 80), ("10.0.0.1", 80))

    def test_global_ipv6_has_no_scope(self) -> None:
        self.assertEqual(sockaddr("fd00::1", 80, DUAL), ("fd00::1", 80, 0, 0))

    def test_link_local_scope_from_interface_or_zone(self) -> None:
        self.assertEqual(sockaddr("fe80::1%eth0", 80, DUAL), ("fe80::1", 80, 0, 2))
        self.assertEqual(sockaddr("fe80::1%7", 80), ("fe80::1", 80, 0, 7))
        lo = socket.if_nametoindex("lo")
        self.assertEqual(sockaddr("fe80::1%lo", 80), ("fe80::1", 80, 0, lo))

    def test_link_local_without_link(self) -> None:
        self.assertRaises(ValueError, sockaddr, "fe80::1", 80)
        self.assertRaises(ValueError, sockaddr, "fe80::1%nosuchif0", 80)
        self.assertRaises(ValueError, sockaddr, "not an address", 80)

    def test_usable_with_socket(self) -> None:
        """
        The 4-tuple is what C{socket} takes: a datagram to our own
        link-local address on C{lo}'s scope needs none, but the scope must
        be accepted; use the loopback address instead of a real link.
        """
        service = ResolvedService("x", "_t._udp", (b"x",), "h.local", 9, addresses=("::1",))
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(("::1", 0))
        port = s.getsockname()[1]
        out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(out.close)
        out.sendto(b"hi", service.sockaddrs(port)[0])
        s.settimeout(2)
        self.assertEqual(s.recv(10), b"hi")
