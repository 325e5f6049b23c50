"""
Tests for L{twisted_mdns.querier} on a fake clock and a fake transport that
records what would be sent: continuous querying and its backoff (s5.2),
QU first (s5.4), known answers (s7.1, s7.2), duplicate question
suppression (s7.3), refresh queries, per-interface caches, resolve and
browse.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Message,
    Question,
    a_record,
    join_name,
    name_from_text,
    parse,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.policy import InterfaceValidationError
from twisted_mdns.querier import (
    MAX_INTERVAL,
    Querier,
    ResolvedService,
    ServiceListener,
    parse_host_name,
    parse_instance_name,
    parse_service_type,
)

ETH0 = NetworkInterface("eth0", 2, mtu=1500, ipv4=(ipaddress.IPv4Interface("192.168.1.10/24"),))
WLAN0 = NetworkInterface("wlan0", 3, mtu=1500, ipv4=(ipaddress.IPv4Interface("10.0.0.5/24"),))
PEER = {ETH0.index: "192.168.1.50", WLAN0.index: "10.0.0.50"}

HTTP = name_from_text("_http._tcp.local")
WEB = join_name("Web", HTTP)
PEERHOST = name_from_text("peer.local")


class FakeTransport:
    """
    Stands in for L{twisted_mdns.transport.InterfaceTransport}: the
    interfaces we run on, and a list of what was sent.
    """

    def __init__(self, *interfaces: NetworkInterface) -> None:
        self.interfaces = {i.index: i for i in interfaces}
        self.sent: list[tuple[bytes, int, object]] = []

    def send(self, datagram: bytes, interface, destination=None) -> bool:
        index = interface if isinstance(interface, int) else interface.index
        self.sent.append((datagram, index, destination))
        return index in self.interfaces

    def messages(self, ifindex: int | None = None) -> list[Message]:
        return [parse(d) for d, i, _ in self.sent if ifindex is None or i == ifindex]

    def questions(self, ifindex: int | None = None) -> list[list[tuple[str, int, bool]]]:
        return [
            [(b".".join(q.name).decode(), q.qtype, q.unicast) for q in m.questions]
            for m in self.messages(ifindex)
        ]


def context(iface: NetworkInterface, destination: str = "224.0.0.251") -> InterfaceContext:
    return InterfaceContext(iface.index, iface.name, destination, iface)


def service_records(
    port: int = 8080, txt=(b"path=/",), address: str = "192.168.1.50", ttl: int = 4500,
    host_ttl: int = 120, instance: str = "Web",
):
    name = join_name(instance, HTTP)
    return [
        ptr_record(HTTP, name, ttl),
        srv_record(name, PEERHOST, port, host_ttl),
        txt_record(name, list(txt), ttl),
        a_record(PEERHOST, address, host_ttl),
    ]


class Recorder:
    """
    A service listener that records every call.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ResolvedService, NetworkInterface]] = []

    def service_added(self, service, interface) -> None:
        self.calls.append(("added", service, interface))

    def service_removed(self, service, interface) -> None:
        self.calls.append(("removed", service, interface))

    def service_updated(self, service, interface) -> None:
        self.calls.append(("updated", service, interface))

    def events(self) -> list[tuple[str, str, str]]:
        return [(e, s.instance, i.name) for e, s, i in self.calls]


class QuerierTestCase(unittest.TestCase):
    interfaces = (ETH0,)

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeTransport(*self.interfaces)
        self.counters: Counter = Counter()
        self.querier = Querier(
            self.transport, self.clock, self.counters, random=random.Random(3)
        )
        self.addCleanup(self.stop_and_check)

    def stop_and_check(self) -> None:
        self.querier.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [], "timers left after stop()")

    def respond(self, records, iface: NetworkInterface = ETH0, source: str | None = None,
                flags: int = FLAG_QR | FLAG_AA) -> None:
        message = Message(flags=flags, answers=list(records))
        self.querier.response_received(message, (source or PEER[iface.index], 5353), context(iface))

    def other_host_asks(self, questions, known=(), iface: NetworkInterface = ETH0,
                        source: str | None = None, flags: int = 0) -> None:
        message = Message(flags=flags, questions=list(questions), answers=list(known))
        self.querier.query_received(message, (source or PEER[iface.index], 5353), context(iface))

    def send_times(self, run_for: float, step: float = 0.01) -> list[float]:
        """
        Advance the clock in small steps; the times at which packets went
        out.
        """
        times = []
        for _ in range(int(run_for / step)):
            before = len(self.transport.sent)
            self.clock.advance(step)
            times += [self.clock.seconds()] * (len(self.transport.sent) - before)
        return times


class ContinuousQueryTests(QuerierTestCase):
    def test_backoff_doubles_from_one_second(self) -> None:
        """
        s5.2: first query after 20-120 ms, then 1 s, 2 s, 4 s, 8 s... apart.
        """
        self.querier.browse("_http._tcp", Recorder())
        times = self.send_times(70)
        self.assertGreaterEqual(times[0], 0.02)
        self.assertLessEqual(times[0], 0.13)
        gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
        self.assertEqual(gaps, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
        self.assertEqual(self.counters["queries.sent"], 7)

    def test_backoff_capped_at_sixty_minutes(self) -> None:
        self.querier.browse("_http._tcp", Recorder())
        times = []
        for _ in range(4 * 24 * 60):  # four days in one-minute steps
            before = len(self.transport.sent)
            self.clock.advance(60)
            if len(self.transport.sent) > before:
                times.append(self.clock.seconds())
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertEqual(max(gaps), MAX_INTERVAL)
        self.assertEqual(gaps[-5:], [MAX_INTERVAL] * 5)

    def test_first_query_qu_then_qm(self) -> None:
        """
        s5.4: the first query asks for a unicast response; the rest are QM.
        """
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(4)
        self.assertEqual(
            self.transport.questions(),
            [[("_http._tcp.local", TYPE_PTR, True)], [("_http._tcp.local", TYPE_PTR, False)],
             [("_http._tcp.local", TYPE_PTR, False)]],
        )

    def test_first_query_qm_when_cached(self) -> None:
        self.respond([ptr_record(HTTP, WEB, 4500)])
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(1)
        # The PTR is cached: QM.  The instance's SRV and TXT are not: QU.
        self.assertEqual(self.transport.questions()[0], [
            ("_http._tcp.local", TYPE_PTR, False),
            ("Web._http._tcp.local", TYPE_SRV, True),
            ("Web._http._tcp.local", TYPE_TXT, True),
        ])

    def test_unicast_first_can_be_turned_off(self) -> None:
        querier = Querier(self.transport, self.clock, unicast_first=False)
        querier.browse("_http._tcp", Recorder())
        self.send_times(1)
        querier.stop()
        self.assertEqual(self.transport.questions()[0], [("_http._tcp.local", TYPE_PTR, False)])

    def test_questions_started_together_share_a_message(self) -> None:
        self.querier.browse("_http._tcp", Recorder())
        self.querier.browse("_ipp._tcp", Recorder())
        self.send_times(0.5)
        self.assertEqual(len(self.transport.sent), 1)
        self.assertEqual(
            sorted(q[0] for q in self.transport.questions()[0]),
            ["_http._tcp.local", "_ipp._tcp.local"],
        )

    def test_query_sent_on_each_interface(self) -> None:
        transport = FakeTransport(ETH0, WLAN0)
        querier = Querier(transport, self.clock)
        querier.browse("_http._tcp", Recorder())
        self.send_times(0.5)
        querier.stop()
        self.assertEqual(sorted(i for _, i, _ in transport.sent), [ETH0.index, WLAN0.index])
        self.assertEqual({d for _, _, d in transport.sent}, {None})

    def test_same_question_asked_once(self) -> None:
        first = self.querier.browse("_http._tcp", Recorder())
        second = self.querier.browse("_http._tcp", Recorder())
        self.send_times(2)
        self.assertEqual(len(self.transport.sent), 2)
        first.stop()
        self.send_times(2.5)
        self.assertEqual(len(self.transport.sent), 3, "still asked for the second browser")
        second.stop()
        self.send_times(10)
        self.assertEqual(len(self.transport.sent), 3)


class KnownAnswerTests(QuerierTestCase):
    def test_known_answers_with_more_than_half_ttl(self) -> None:
        """
        s7.1: the known-answer list holds cached answers with more than
        half their TTL left, with their remaining TTL.
        """
        self.respond([ptr_record(HTTP, join_name("Old", HTTP), 100)])
        self.clock.advance(60)
        self.respond([ptr_record(HTTP, WEB, 4500)])
        self.clock.advance(10)
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(0.2)
        [message] = self.transport.messages()
        self.assertEqual(
            [(r.name, r.rdata.label.label, r.ttl) for r in message.answers],
            [(HTTP, WEB, 4489)],  # 4490 s left, less the 20-120 ms delay
        )

    def test_large_known_answer_list_split_with_tc(self) -> None:
        """
        s7.2: known answers that do not fit go on in more packets; every
        packet but the last has TC; each is within the interface MTU.
        """
        instances = ["Instance number %03d with a long name" % n for n in range(80)]
        names = [join_name(i, HTTP) for i in instances]
        for instance in instances:  # resolved: only the PTR question is asked
            self.respond(service_records(instance=instance))
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(0.2)
        messages = self.transport.messages()
        self.assertGreater(len(messages), 1)
        self.assertTrue(all(m.truncated for m in messages[:-1]))
        self.assertFalse(messages[-1].truncated)
        self.assertEqual(len(messages[0].questions), 1)
        self.assertTrue(all(len(d) <= 1500 - 28 for d, _, _ in self.transport.sent))
        known = [r.rdata.label.label for m in messages for r in m.answers]
        self.assertEqual(sorted(known), sorted(names))


class DuplicateSuppressionTests(QuerierTestCase):
    """
    s7.3: another host's QM question with a known-answer list holding
    nothing ours would not counts as our next query.
    """

    def start(self) -> list[float]:
        self.respond(service_records())  # resolved: only the PTR is asked
        self.querier.browse("_http._tcp", Recorder())
        return self.send_times(0.5)  # the first query: at ~0.02-0.12 s

    def test_same_question_same_known_answers_suppresses(self) -> None:
        self.start()
        self.clock.advance(0.2)  # our next is due ~1 s after the first
        self.other_host_asks([Question(HTTP, TYPE_PTR)], [ptr_record(HTTP, WEB, 4400)])
        self.assertEqual(self.counters["queries.suppressed"], 1)
        times = self.send_times(5)
        # Not sent at ~1.1 s: counted as sent at 0.7 s, the next is 2 s later.
        self.assertEqual(len(times), 1)
        self.assertAlmostEqual(times[0], 0.7 + 2.0, places=1)

    def test_fewer_known_answers_suppresses(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)])
        self.assertEqual(self.counters["queries.suppressed"], 1)

    def test_known_answer_we_lack_does_not_suppress(self) -> None:
        """
        Their list holds a record ours would not: responders would stay
        silent about it, so we must still ask.
        """
        self.start()
        other = ptr_record(HTTP, join_name("Other", HTTP), 4500)
        self.other_host_asks([Question(HTTP, TYPE_PTR)], [ptr_record(HTTP, WEB, 4400), other])
        self.assertEqual(self.counters["queries.suppressed"], 0)
        times = self.send_times(1.5)
        self.assertEqual(len(times), 1)

    def test_qu_question_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR, unicast=True)])
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_truncated_query_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)], flags=FLAG_TC)
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_own_query_looped_back_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)], source="192.168.1.10")
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_other_interface_does_not_suppress(self) -> None:
        transport = FakeTransport(ETH0, WLAN0)
        querier = Querier(transport, self.clock, self.counters)
        querier.browse("_http._tcp", Recorder())
        message = Message(questions=[Question(HTTP, TYPE_PTR)])
        querier.query_received(message, ("10.0.0.50", 5353), context(WLAN0))
        self.send_times(0.5)
        querier.stop()
        self.assertEqual(self.counters["queries.suppressed"], 1)
        self.assertEqual([i for _, i, _ in transport.sent], [ETH0.index])


class CachingTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_response_cached_on_its_interface_only(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.assertEqual(len(self.querier.caches[ETH0.index]), 1)
        self.assertEqual(len(self.querier.caches[WLAN0.index]), 0)
        self.assertEqual(self.counters["responses.cached"], 1)
        self.assertIs(self.querier.cache_for("eth0"), self.querier.caches[ETH0.index])

    def test_additionals_cached(self) -> None:
        message = Message(
            flags=FLAG_QR | FLAG_AA,
            answers=[ptr_record(HTTP, WEB, 4500)],
            additionals=[a_record(PEERHOST, "192.168.1.50", 120)],
        )
        self.querier.response_received(message, ("192.168.1.50", 5353), context(ETH0))
        self.assertEqual(len(self.querier.caches[ETH0.index]), 2)

    def test_error_rcode_ignored(self) -> None:
        """
        s18.11: non-zero rcode: silently ignored.
        """
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], flags=FLAG_QR | FLAG_AA | 3)
        self.assertEqual(len(self.querier.caches[ETH0.index]), 0)
        self.assertEqual(self.counters["responses.ignored-rcode"], 1)

    def test_interfaces_changed(self) -> None:
        """
        A vanished interface's cache is dropped; a running browser starts
        asking on a new interface.
        """
        self.respond([a_record(PEERHOST, "10.0.0.50", 120)], WLAN0)
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(address="10.0.0.50"), WLAN0)
        self.assertEqual(recorder.events(), [("added", "Web", "wlan0")])
        old = self.querier.caches[WLAN0.index]
        del self.transport.interfaces[WLAN0.index]
        self.querier.interfaces_changed()
        self.assertNotIn(WLAN0.index, self.querier.caches)
        self.assertEqual(len(old), 0)
        self.assertEqual(recorder.events()[-1], ("removed", "Web", "wlan0"))
        eth1 = NetworkInterface("eth1", 7, ipv4=(ipaddress.IPv4Interface("172.16.0.1/24"),))
        self.transport.interfaces[eth1.index] = eth1
        self.querier.interfaces_changed()
        self.transport.sent.clear()
        self.send_times(0.5)
        self.assertIn(eth1.index, [i for _, i, _ in self.transport.sent])
        self.assertNotIn(WLAN0.index, [i for _, i, _ in self.transport.sent])


class RefreshTests(QuerierTestCase):
    def test_watched_records_refreshed(self) -> None:
        """
        s5.2: a browser's resolved records are asked about again at 80% of
        their TTL (+0-2%), with no known answer for the record refreshed.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(host_ttl=100, ttl=4500))
        self.assertEqual(len(recorder.calls), 1)
        self.send_times(79)
        self.transport.sent.clear()
        times = self.send_times(3)
        self.assertTrue(times, "no refresh query")
        self.assertTrue(all(80 <= t <= 82.01 for t in times), times)
        asked = {(q[0], q[1]) for m in self.transport.questions() for q in m}
        self.assertEqual(asked, {("Web._http._tcp.local", TYPE_SRV), ("peer.local", TYPE_A)})
        for m in self.transport.messages():
            self.assertEqual([r for r in m.answers if r.rtype in (TYPE_SRV, TYPE_A)], [])
        self.assertGreaterEqual(self.counters["refresh.sent"], 2)

    def test_unwatched_records_not_refreshed(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 100)])
        self.send_times(100)
        self.assertEqual(self.transport.sent, [])


class ResolveHostTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_per_interface_answers(self) -> None:
        d = self.querier.resolve_host("peer", timeout=3)
        self.send_times(0.2)
        asked = [q for m in self.transport.questions() for q in m]
        self.assertEqual(asked, [("peer.local", TYPE_A, True)] * 2)
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.assertNoResult(d)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120), a_record(PEERHOST, "10.0.0.49", 120)], WLAN0)
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
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.assertNoResult(d)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120)], WLAN0)
        self.assertEqual(self.successResultOf(d), {WLAN0: ["10.0.0.50"]})

    def test_interface_by_address_or_index(self) -> None:
        for spec in ("10.0.0.5", 3, "3", WLAN0):
            d = self.querier.resolve_host("peer", interface=spec, timeout=0.5)
            self.clock.advance(1)
            self.assertEqual(self.successResultOf(d), {})
            self.assertEqual({i for _, i, _ in self.transport.sent}, {WLAN0.index})

    def test_cached_answer_at_once(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120)], WLAN0)
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
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
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
        self.assertEqual(self.transport.questions(), [[("peer.local", TYPE_A, True)]])
        self.respond(records[3:])
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
        self.respond(service_records(address="192.168.1.50"), ETH0)
        self.respond(service_records(address="10.0.0.50", port=9), WLAN0)
        found = self.successResultOf(d)
        self.assertEqual(
            [(s.interface.name, s.port, s.addresses) for s in found],
            [("eth0", 8080, ("192.168.1.50",)), ("wlan0", 9, ("10.0.0.50",))],
        )


class BrowseTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_whole_service_in_one_response(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        self.respond(service_records(txt=(b"path=/", b"flag")))
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        service = recorder.calls[0][1]
        self.assertEqual(service.to_json(), {
            "interface": "eth0", "instance": "Web", "type": "_http._tcp", "host": "peer.local",
            "port": 8080, "addresses": ["192.168.1.50"], "txt": {"path": "/", "flag": None},
        })
        self.assertEqual(service.full_name, "Web._http._tcp.local")

    def test_resolves_each_ptr_on_its_interface(self) -> None:
        """
        A PTR alone leads to SRV/TXT questions on that interface, the SRV to
        an A question; service_added only once all are there.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.send_times(0.2)
        self.transport.sent.clear()
        records = service_records()
        self.respond(records[:1], ETH0)
        self.send_times(0.2)
        self.assertEqual(
            sorted(q[:2] for m in self.transport.questions(ETH0.index) for q in m),
            [("Web._http._tcp.local", TYPE_TXT), ("Web._http._tcp.local", TYPE_SRV)],
        )
        self.assertEqual(self.transport.messages(WLAN0.index), [])
        self.respond(records[1:3], ETH0)
        self.transport.sent.clear()
        self.send_times(0.2)
        self.assertEqual(self.transport.questions(ETH0.index), [[("peer.local", TYPE_A, True)]])
        self.assertEqual(recorder.calls, [])
        self.respond(records[3:], ETH0)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        # Resolved: the SRV/TXT/A questions stop (only the PTR one goes on).
        self.transport.sent.clear()
        self.send_times(20)
        asked = {q[:2] for m in self.transport.questions() for q in m}
        self.assertEqual(asked, {("_http._tcp.local", TYPE_PTR)})

    def test_same_instance_on_two_interfaces(self) -> None:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(address="192.168.1.50"), ETH0)
        self.respond(service_records(address="10.0.0.50"), WLAN0)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0"), ("added", "Web", "wlan0")])
        self.assertEqual(
            [(s.interface.name, s.addresses) for s in browser.services],
            [("eth0", ("192.168.1.50",)), ("wlan0", ("10.0.0.50",))],
        )

    def test_other_interface_not_seen(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        self.respond(service_records(address="10.0.0.50"), WLAN0)
        self.assertEqual(recorder.calls, [])

    def test_records_split_across_interfaces_do_not_resolve(self) -> None:
        """
        A PTR on eth0 and the SRV/TXT/A on wlan0 are not one service.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        records = service_records()
        self.respond(records[:1], ETH0)
        self.respond(records[1:], WLAN0)
        self.assertEqual(recorder.calls, [])

    def test_txt_change_is_an_update(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(txt=(b"v=1",)))
        self.clock.advance(5)
        self.respond(service_records(txt=(b"v=2",))[2:3])
        self.assertEqual([e for e, _, _ in recorder.calls], ["added", "updated"])
        self.assertEqual(recorder.calls[-1][1].txt, {"v": b"2"})
        self.clock.advance(2)  # the old TXT leaves (s10.2): no more events
        self.assertEqual(len(recorder.calls), 2)

    def test_new_address_is_an_update(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records())
        self.respond([a_record(PEERHOST, "192.168.1.51", 120)])
        self.assertEqual(recorder.calls[-1][0], "updated")
        self.assertEqual(recorder.calls[-1][1].addresses, ("192.168.1.50", "192.168.1.51"))

    def test_goodbye_removes_one_second_later(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records())
        self.clock.advance(3)
        self.respond([r.with_ttl(0) for r in service_records()])
        self.clock.advance(0.9)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added"])
        self.clock.advance(0.2)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0"), ("removed", "Web", "eth0")])

    def test_expiry_without_refresh_removes(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(ttl=2, host_ttl=2))
        self.send_times(1.9)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added"])
        self.send_times(0.2)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added", "removed"])

    def test_stop_reports_nothing_more(self) -> None:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        browser.stop()
        browser.stop()
        self.respond(service_records())
        self.assertEqual(recorder.calls, [])
        self.send_times(5)
        self.assertEqual(self.transport.sent, [])

    def test_callable_listeners(self) -> None:
        events = []
        self.querier.browse("_http._tcp", lambda e, s, i: events.append((e, s.instance, i.name)))
        added = []
        self.querier.browse("_http._tcp", added=lambda s, i: added.append(s.port))
        self.respond(service_records())
        self.assertEqual(events, [("added", "Web", "eth0")])
        self.assertEqual(added, [8080])
        verifyObject(IServiceListener, ServiceListener())

    def test_failing_listener_logged(self) -> None:
        def broken(event, service, interface):
            raise RuntimeError("listener bug")

        self.querier.browse("_http._tcp", broken)
        self.respond(service_records())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_subtype(self) -> None:
        recorder = Recorder()
        self.querier.browse("_printer._sub._http._tcp", recorder)
        self.send_times(0.2)
        self.assertEqual(self.transport.questions()[0][0][0], "_printer._sub._http._tcp.local")
        sub = join_name("_printer", "_sub", HTTP)
        self.respond([ptr_record(sub, WEB, 4500)] + service_records()[1:])
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        self.assertEqual(recorder.calls[0][1].type, "_http._tcp")

    def test_bad_type_and_listener(self) -> None:
        for bad in ("http", "_http", "_http._xyz", "_a-very-long-service-name._tcp", ""):
            self.assertRaises(ValueError, self.querier.browse, bad, Recorder())
        self.assertRaises(TypeError, self.querier.browse, "_http._tcp", object())
        self.assertRaises(InterfaceValidationError, self.querier.browse, "_http._tcp",
                          Recorder(), interface="eth9")


class NameTests(unittest.TestCase):
    def test_parse_service_type(self) -> None:
        self.assertEqual(parse_service_type("_http._tcp.local.").text, "_http._tcp")
        self.assertEqual(parse_service_type("_HTTP._TCP").ptr_name, (b"_HTTP", b"_TCP", b"local"))

    def test_parse_host_name(self) -> None:
        self.assertEqual(parse_host_name("radiod"), (b"radiod", b"local"))
        self.assertEqual(parse_host_name("radiod.local."), (b"radiod", b"local"))
        self.assertRaises(ValueError, parse_host_name, "x" * 64)

    def test_parse_instance_name(self) -> None:
        self.assertEqual(parse_instance_name("Lab v1.2", "_http._tcp")[0], "Lab v1.2")
        self.assertEqual(parse_instance_name("Lab v1.2._http._tcp.local")[0], "Lab v1.2")
        self.assertEqual(parse_instance_name("Lab._http._tcp.local", "_http._tcp")[0], "Lab")
        self.assertRaises(ValueError, parse_instance_name, "Lab")


# -- real sockets in network namespaces ------------------------------------------

from twisted.internet import reactor, task  # noqa: E402

from tests.netns import NamespaceTestMixin, drain  # noqa: E402
from tests.support import sleep, wait_until  # noqa: E402
from twisted_mdns.message import pack_one  # noqa: E402
from twisted_mdns.netif import SystemInterfaceEnumerator  # noqa: E402
from twisted_mdns.policy import DefaultInterfacePolicy  # noqa: E402
from twisted_mdns.protocol import MDNSProtocol  # noqa: E402
from twisted_mdns.transport import InterfaceTransport  # noqa: E402


class HostStack:
    """
    Our querier on real ports in the current (host) namespace, wired as the
    CLI wires it.
    """

    def __init__(self, policy=None) -> None:
        self.protocol = MDNSProtocol()
        self.transport = InterfaceTransport(self.protocol, reactor)
        self.querier = Querier(self.transport, reactor)
        self.protocol.handlers.append(self.querier)
        interfaces = SystemInterfaceEnumerator().interfaces()
        self.transport.apply((policy or DefaultInterfacePolicy()).select(interfaces).selected)
        self.querier.interfaces_changed()

    def iface(self, name: str) -> NetworkInterface:
        return next(i for i in self.transport.interfaces.values() if i.name == name)

    def close(self) -> defer.Deferred:
        self.querier.stop()
        return self.transport.close()


class RawResponder:
    """
    A scripted mDNS responder on a plain socket in a client namespace: it
    answers questions about C{records} (multicast; unicast to the asker for
    QU), keeps every query it hears, and can send unsolicited responses.
    With C{answering=False} it only listens and announces.
    """

    def __init__(self, topology, client: str, records=(), answering: bool = True) -> None:
        import socket

        self.link = topology.links[client]
        self.sock = topology.client_listener(client)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        self.sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.link.client_ip)
        )
        self.records = list(records)
        self.answering = answering
        self.queries: list[tuple[float, Message, tuple]] = []
        self.loop = task.LoopingCall(self.poll)
        self.loop.start(0.005)

    def poll(self) -> None:
        for data, source in drain(self.sock):
            try:
                message = parse(data)
            except Exception:
                continue
            if message.is_response or source[0] == self.link.client_ip:
                continue
            self.queries.append((reactor.seconds(), message, source))
            if not self.answering:
                continue
            answers = [r for r in self.records if any(q.matches(r) for q in message.questions)]
            known = {r.identity for r in message.answers}
            answers = [r for r in answers if r.identity not in known]
            if answers:
                unicast = all(q.unicast for q in message.questions)
                self.send(answers, source if unicast else None)

    def send(self, records, destination=None) -> None:
        packet = pack_one(flags=FLAG_QR | FLAG_AA, answers=list(records))
        self.sock.sendto(packet, destination or ("224.0.0.251", 5353))

    def asked(self, qtype: int | None = None) -> list[tuple[float, Question]]:
        return [
            (t, q) for t, m, _ in self.queries for q in m.questions
            if qtype is None or q.qtype == qtype
        ]

    def close(self) -> None:
        if self.loop.running:
            self.loop.stop()
        self.sock.close()


class QuerierNamespaceTests(NamespaceTestMixin, unittest.TestCase):
    """
    The querier on real sockets, host with links lana (10.1.0.0/24, client
    a) and lanb (10.2.0.0/24, client b), against raw responders.
    """

    virtual = False
    timeout = 20

    def setUp(self) -> None:
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.stack = HostStack()
        self.addCleanup(self.stack.close)
        self.querier = self.stack.querier

    def responder(self, client: str, records=(), answering: bool = True) -> RawResponder:
        responder = RawResponder(self.topology, client, records, answering)
        self.addCleanup(responder.close)
        return responder

    @defer.inlineCallbacks
    def test_resolve_host_per_link(self):
        """
        Two hosts claim C{shared.local}, one per link: each link's address
        is reported under its own interface.
        """
        shared = name_from_text("shared.local")
        self.responder("a", [a_record(shared, self.a.client_ip, 120)])
        self.responder("b", [a_record(shared, self.b.client_ip, 120)])
        result = yield self.querier.resolve_host("shared", timeout=3)
        self.assertEqual(
            {i.name: v for i, v in result.items()},
            {"lana": [self.a.client_ip], "lanb": [self.b.client_ip]},
        )
        only_b = yield self.querier.resolve_host("shared.local", interface="lanb")
        self.assertEqual({i.name: v for i, v in only_b.items()}, {"lanb": [self.b.client_ip]})

    @defer.inlineCallbacks
    def test_queries_go_out_on_their_interface_only(self):
        """
        Browsing on lanb asks on lanb only: first QU (s5.4), then QM one
        second later (s5.2).
        """
        on_a = self.responder("a", answering=False)
        on_b = self.responder("b", answering=False)
        browser = self.querier.browse("_http._tcp", Recorder(), interface="lanb")
        self.addCleanup(browser.stop)
        yield wait_until(lambda: len(on_b.asked(TYPE_PTR)) >= 2, timeout=3, what="two queries")
        (t1, q1), (t2, q2) = on_b.asked(TYPE_PTR)[:2]
        self.assertEqual((q1.name, q1.unicast, q2.unicast), (HTTP, True, False))
        self.assertTrue(0.95 <= t2 - t1 <= 1.15, t2 - t1)
        self.assertEqual(on_a.queries, [])

    @defer.inlineCallbacks
    def test_ttl_runs_out_without_refresh(self):
        """
        A service announced once with TTL 2 s and never refreshed: the
        browser asks again at 80-95% (s5.2), nobody answers, and at 2 s
        the service is removed.
        """
        silent = self.responder("b", answering=False)
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder, interface="lanb")
        self.addCleanup(browser.stop)
        yield sleep(0.2)
        records = service_records(address=self.b.client_ip, ttl=2, host_ttl=2)
        silent.send(records)
        sent_at = reactor.seconds()
        yield wait_until(lambda: recorder.calls, timeout=2, what="service added")
        self.assertEqual(recorder.events(), [("added", "Web", "lanb")])
        self.assertEqual(recorder.calls[0][1].addresses, (self.b.client_ip,))
        yield wait_until(lambda: len(recorder.calls) > 1, timeout=4, what="service removed")
        gone_after = reactor.seconds() - sent_at
        self.assertEqual(recorder.events()[1], ("removed", "Web", "lanb"))
        self.assertGreaterEqual(gone_after, 1.9)
        self.assertLess(gone_after, 2.6)
        refreshed = [t - sent_at for t, q in silent.asked(TYPE_SRV)]
        self.assertTrue(refreshed, "no refresh query on the wire")
        self.assertTrue(all(1.55 <= t <= 2.0 for t in refreshed), refreshed)

    @defer.inlineCallbacks
    def test_answer_from_other_link_not_cached_there(self):
        """
        A response heard on lana lands in lana's cache only.
        """
        noisy = self.responder("a", answering=False)
        noisy.send([a_record(PEERHOST, self.a.client_ip, 120)])
        lana = self.stack.iface("lana").index
        lanb = self.stack.iface("lanb").index
        yield wait_until(lambda: len(self.querier.caches[lana]), timeout=2, what="cached")
        yield sleep(0.1)
        self.assertEqual(len(self.querier.caches[lanb]), 0)
        result = yield self.querier.resolve_host("peer", interface="lanb", timeout=0.5)
        self.assertEqual(result, {})


# -- real peers as judges: avahi-daemon and python-zeroconf ----------------------

from tests.peers import AvahiDaemon, AvahiService, ZeroconfPublisher, require_peers  # noqa: E402


def found(recorder: Recorder) -> dict[tuple[str, str], tuple]:
    """
    What a recorder's added/updated/removed calls leave: (interface,
    instance) -> (host, port, addresses, txt).
    """
    state: dict[tuple[str, str], tuple] = {}
    for event, service, iface in recorder.calls:
        key = (iface.name, service.instance)
        if event == "removed":
            state.pop(key, None)
        else:
            state[key] = (service.host, service.port, service.addresses, dict(service.txt))
    return state


class QuerierPeerTests(NamespaceTestMixin, unittest.TestCase):
    """
    avahi-daemon and python-zeroconf publish services on link B only (both
    in client b); our querier in the host browses for them.
    """

    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("avahi-daemon", "zeroconf")
        super().setUp()
        self.b = self.topology.links["b"]
        self.avahi = AvahiDaemon(
            self.b.client_ns, "peerhost",
            services=[AvahiService("Avahi Web", "_http._tcp", 8080, txt={"path": "/", "flag": None})],
            workdir=self.mktemp(),
        )
        self.addCleanup(self.avahi.stop)
        self.zeroconf = ZeroconfPublisher(
            self.b.client_ns, "Zc Web", "_http._tcp", 9090, txt={"a": "1"},
            hostname="zchost.local.",
        )
        self.addCleanup(self.zeroconf.stop)
        # The peers announce before we listen: we have to ask.
        d = defer.gatherResults([self.avahi.start(), self.zeroconf.start()], consumeErrors=True)

        def ready(_):
            self.stack = HostStack()
            self.addCleanup(self.stack.close)
            self.querier = self.stack.querier

        return d.addCallback(ready)

    def expected(self, iface: str = "lanb") -> dict:
        ip = (self.b.client_ip,)
        return {
            (iface, "Avahi Web"): ("peerhost.local", 8080, ip, {"path": b"/", "flag": None}),
            (iface, "Zc Web"): ("zchost.local", 9090, ip, {"a": b"1"}),
        }

    def browse(self, interface) -> Recorder:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder, interface=interface)
        self.addCleanup(browser.stop)
        return recorder

    @defer.inlineCallbacks
    def test_browse_per_interface(self):
        """
        Browsing on lanb finds both services with link-B addresses; on lana
        nothing; on all interfaces, both under lanb only.
        """
        on_b, on_a, on_all = self.browse("lanb"), self.browse("lana"), self.browse(None)
        yield wait_until(
            lambda: len(found(on_b)) == 2 and len(found(on_all)) == 2, timeout=6,
            what="both services on lanb",
        )
        yield sleep(0.5)  # anything from lana would have come by now
        self.assertEqual(found(on_b), self.expected())
        self.assertEqual(found(on_all), self.expected())
        self.assertEqual(on_a.calls, [])
        self.assertEqual({e for e, _, _ in on_b.calls}, {"added"})
        service = self.querier.resolve_service("Zc Web", "_http._tcp", interface="lana", timeout=0.5)
        self.assertIsNone((yield service))

    @defer.inlineCallbacks
    def test_goodbye_removes_service(self):
        """
        A service its publisher withdraws (goodbye, TTL 0) is removed one
        second after the goodbye (s10.1), and only that one.
        """
        recorder = self.browse("lanb")
        yield wait_until(lambda: len(found(recorder)) == 2, timeout=6, what="both services")
        started = reactor.seconds()
        yield self.zeroconf.stop()
        yield wait_until(lambda: ("lanb", "Zc Web") not in found(recorder), timeout=4,
                         what="Zc Web removed")
        took = reactor.seconds() - started
        self.assertTrue(0.95 <= took <= 2.5, f"removed {took:.2f} s after the stop")
        self.assertEqual(list(found(recorder)), [("lanb", "Avahi Web")])
        started = reactor.seconds()
        yield self.avahi.stop()
        yield wait_until(lambda: not found(recorder), timeout=4, what="Avahi Web removed")
        took = reactor.seconds() - started
        self.assertTrue(0.95 <= took <= 2.5, f"removed {took:.2f} s after the stop")
        self.assertEqual(
            [(e, s.instance) for e, s, _ in recorder.calls if e == "removed"],
            [("removed", "Zc Web"), ("removed", "Avahi Web")],
        )


class SharedNamePeerTests(NamespaceTestMixin, unittest.TestCase):
    """
    One host name and one service instance name on both links: avahi in
    client a and python-zeroconf in client b both claim C{shared.local} and
    C{Shared Web._http._tcp.local}, each with its own address (no conflict:
    the links are separate, RFC 6762 s14).
    """

    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("avahi-daemon", "zeroconf")
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        avahi = AvahiDaemon(
            self.a.client_ns, "shared",
            services=[AvahiService("Shared Web", "_http._tcp", 8081)], workdir=self.mktemp(),
        )
        self.addCleanup(avahi.stop)
        zeroconf = ZeroconfPublisher(
            self.b.client_ns, "Shared Web", "_http._tcp", 9091, hostname="shared.local.",
        )
        self.addCleanup(zeroconf.stop)
        d = defer.gatherResults([avahi.start(), zeroconf.start()], consumeErrors=True)

        def ready(_):
            # Started after the peers announced: the answers must be asked for.
            self.stack = HostStack()
            self.addCleanup(self.stack.close)
            self.querier = self.stack.querier

        return d.addCallback(ready)

    @defer.inlineCallbacks
    def test_resolve_host_per_interface(self):
        result = yield self.querier.resolve_host("shared", timeout=3)
        self.assertEqual(
            {i.name: v for i, v in result.items()},
            {"lana": [self.a.client_ip], "lanb": [self.b.client_ip]},
        )

    @defer.inlineCallbacks
    def test_resolve_service_per_interface(self):
        services = yield self.querier.resolve_service("Shared Web._http._tcp.local", timeout=3)
        self.assertEqual(
            [(s.interface.name, s.host, s.port, s.addresses) for s in services],
            [("lana", "shared.local", 8081, (self.a.client_ip,)),
             ("lanb", "shared.local", 9091, (self.b.client_ip,))],
        )


class LateTransportTests(unittest.TestCase):
    def test_querier_made_before_the_transport_opened(self) -> None:
        """
        A querier made before its transport's first C{apply} (as a service
        does) follows the transport's interfaces on first use, even if
        nobody called C{interfaces_changed}.
        """
        clock = Clock()
        transport = FakeTransport()
        querier = Querier(transport, clock)
        transport.interfaces[ETH0.index] = ETH0
        recorder = Recorder()
        querier.browse("_http._tcp", recorder)
        message = Message(flags=FLAG_QR | FLAG_AA, answers=service_records())
        querier.response_received(message, ("192.168.1.50", 5353), context(ETH0))
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        querier.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_response_before_any_call(self) -> None:
        clock = Clock()
        transport = FakeTransport()
        querier = Querier(transport, clock)
        transport.interfaces[ETH0.index] = ETH0
        message = Message(flags=FLAG_QR | FLAG_AA, answers=service_records())
        querier.response_received(message, ("192.168.1.50", 5353), context(ETH0))
        self.assertEqual(len(querier.caches[ETH0.index]), 4)
        querier.stop()
