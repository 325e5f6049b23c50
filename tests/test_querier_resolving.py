"""
Tests for L{twisted_mdns.querier.resolving} on a L{Clock}: host and service
resolution, per link.
"""

from __future__ import annotations

from twisted.internet import defer

from twisted_mdns.message import TYPE_A, TYPE_AAAA, TYPE_SRV, TYPE_TXT, a_record
from twisted_mdns.policy import InterfaceValidationError

from tests.querier_support import (
    ETH0,
    PEERHOST,
    WLAN0,
    QuerierTestCase,
    only_ipv4,
    service_records,
)


class ResolveHostTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_per_interface_answers(self) -> None:
        d = self.querier.resolve_host("peer", timeout=3)
        self.send_times(0.2)
        asked = [q for m in self.transport.questions() for q in m]
        self.assertEqual(asked, [("peer.local", TYPE_A, True), ("peer.local", TYPE_AAAA, True)] * 2)
        self.respond([a_record(PEERHOST, "192.168.1.50", 120), only_ipv4()], ETH0)
        self.assertNoResult(d)
        self.respond(
            [a_record(PEERHOST, "10.0.0.50", 120), a_record(PEERHOST, "10.0.0.49", 120), only_ipv4()],
            WLAN0,
        )
        result = self.successResultOf(d)
        self.assertEqual(result, {ETH0: ["192.168.1.50"], WLAN0: ["10.0.0.49", "10.0.0.50"]})
        self.assertEqual(list(result), [ETH0, WLAN0])

    def test_settles_after_first_answer(self) -> None:
        d = self.querier.resolve_host("peer.local", timeout=3)
        self.send_times(0.2)
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.clock.advance(0.49)
        self.assertNoResult(d)
        self.clock.advance(0.02)
        self.assertEqual(self.successResultOf(d), {ETH0: ["192.168.1.50"]})

    def test_timeout_gives_empty_dict(self) -> None:
        d = self.querier.resolve_host("nobody", timeout=3)
        times = self.send_times(2.9)
        self.assertNoResult(d)
        self.assertEqual(len(times), 4)  # first and 1 s later, on each interface
        self.clock.advance(0.2)
        self.assertEqual(self.successResultOf(d), {})

    def test_one_interface(self) -> None:
        d = self.querier.resolve_host("peer", interface="wlan0")
        self.send_times(0.2)
        self.assertEqual([i for _, i, _ in self.transport.sent], [WLAN0.index])
        self.respond([a_record(PEERHOST, "192.168.1.50", 120), only_ipv4()], ETH0)
        self.assertNoResult(d)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120), only_ipv4()], WLAN0)
        self.assertEqual(self.successResultOf(d), {WLAN0: ["10.0.0.50"]})

    def test_interface_by_address_or_index(self) -> None:
        for spec in ("10.0.0.5", 3, "3", WLAN0):
            d = self.querier.resolve_host("peer", interface=spec, timeout=0.5)
            self.clock.advance(1)
            self.assertEqual(self.successResultOf(d), {})
            self.assertEqual({i for _, i, _ in self.transport.sent}, {WLAN0.index})

    def test_cached_answer_at_once(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 120), only_ipv4()], ETH0)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120), only_ipv4()], WLAN0)
        d = self.querier.resolve_host("PEER.local")
        self.assertEqual(self.successResultOf(d), {ETH0: ["192.168.1.50"], WLAN0: ["10.0.0.50"]})
        self.clock.advance(5)
        self.assertEqual(self.transport.sent, [])

    def test_unknown_interface(self) -> None:
        error = self.assertRaises(
            InterfaceValidationError, self.querier.resolve_host, "peer", interface="eth9"
        )
        self.assertIn("eth9", str(error))
        self.assertIn("eth0, wlan0", str(error))

    def test_bad_arguments(self) -> None:
        self.assertRaises(ValueError, self.querier.resolve_host, "")
        self.assertRaises(ValueError, self.querier.resolve_host, "a..b")
        self.assertRaises(ValueError, self.querier.resolve_host, "peer", timeout=0)
        self.assertRaises(ValueError, self.querier.resolve_host, "peer", timeout=-1)

    def test_cancel_stops_queries(self) -> None:
        d = self.querier.resolve_host("peer", timeout=30)
        self.send_times(0.2)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        count = len(self.transport.sent)
        self.send_times(10)
        self.assertEqual(len(self.transport.sent), count)

    def test_stop_fires_pending(self) -> None:
        d = self.querier.resolve_host("peer", timeout=30)
        self.querier.stop()
        self.assertEqual(self.successResultOf(d), {})
        self.assertRaises(RuntimeError, self.querier.resolve_host, "peer")

    def test_awaitable(self) -> None:
        async def use() -> dict:
            return await self.querier.resolve_host("peer", interface="eth0")

        d = defer.ensureDeferred(use())
        self.send_times(0.2)
        self.respond([a_record(PEERHOST, "192.168.1.50", 120), only_ipv4()], ETH0)
        self.assertEqual(self.successResultOf(d), {ETH0: ["192.168.1.50"]})


class ResolveServiceTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_resolve_on_one_interface(self) -> None:
        d = self.querier.resolve_service("Web", "_http._tcp", interface="eth0")
        self.send_times(0.2)
        self.assertEqual(
            sorted(q[:2] for m in self.transport.questions() for q in m),
            [("Web._http._tcp.local", TYPE_TXT), ("Web._http._tcp.local", TYPE_SRV)],
        )
        records = service_records()
        self.respond(records[1:3])  # SRV and TXT: now the host's address
        self.transport.sent.clear()
        self.send_times(0.2)
        self.assertEqual(
            self.transport.questions(), [[("peer.local", TYPE_A, True), ("peer.local", TYPE_AAAA, True)]]
        )
        self.respond(records[3:] + [only_ipv4()])
        service = self.successResultOf(d)
        self.assertEqual(
            (service.instance, service.type, service.host, service.port, service.addresses,
             dict(service.txt), service.interface),
            ("Web", "_http._tcp", "peer.local", 8080, ("192.168.1.50",), {"path": b"/"}, ETH0),
        )

    def test_full_name_and_none(self) -> None:
        d = self.querier.resolve_service("Web._http._tcp.local", interface="eth0", timeout=1)
        self.clock.advance(1.1)
        self.assertIsNone(self.successResultOf(d))

    def test_all_interfaces_gives_a_list(self) -> None:
        d = self.querier.resolve_service("Web", "_http._tcp")
        self.respond(service_records(address="192.168.1.50") + [only_ipv4()], ETH0)
        self.respond(service_records(address="10.0.0.50", port=9) + [only_ipv4()], WLAN0)
        found = self.successResultOf(d)
        self.assertEqual(
            [(s.interface.name, s.port, s.addresses) for s in found],
            [("eth0", 8080, ("192.168.1.50",)), ("wlan0", 9, ("10.0.0.50",))],
        )
