"""
Tests for L{twisted_mdns.querier.engine} on a L{Clock}: per-link caches,
following the transport's links, L{Querier.ask} and L{Querier.cache_for}.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.task import Clock
from twisted.trial import unittest

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
    ptr_record,
)
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.policy import InterfaceValidationError
from twisted_mdns.querier import Querier

from tests.querier_support import (
    ETH0,
    HTTP,
    PEERHOST,
    WEB,
    WLAN0,
    FakeTransport,
    QuerierTestCase,
    Recorder,
    context,
    service_records,
)


class CachingTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_response_cached_on_its_interface_only(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.assertEqual(len(self.querier.cache_for(ETH0.index)), 1)
        self.assertEqual(len(self.querier.cache_for(WLAN0.index)), 0)
        self.assertEqual(self.counters["responses.cached"], 1)
        for spec in (ETH0, 2, "192.168.1.10"):
            self.assertIs(self.querier.cache_for(spec), self.querier.cache_for("eth0"))

    def test_additionals_cached(self) -> None:
        message = Message(
            flags=FLAG_QR | FLAG_AA,
            answers=[ptr_record(HTTP, WEB, 4500)],
            additionals=[a_record(PEERHOST, "192.168.1.50", 120)],
        )
        self.querier.response_received(message, ("192.168.1.50", 5353), context(ETH0))
        self.assertEqual(len(self.querier.cache_for(ETH0.index)), 2)

    def test_error_rcode_ignored(self) -> None:
        """
        s18.11: non-zero rcode: silently ignored.
        """
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], flags=FLAG_QR | FLAG_AA | 3)
        self.assertEqual(len(self.querier.cache_for(ETH0.index)), 0)
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
        old = self.querier.cache_for(WLAN0.index)
        del self.transport.interfaces[WLAN0.index]
        self.querier.interfaces_changed()
        self.assertRaises(InterfaceValidationError, self.querier.cache_for, WLAN0)
        self.assertEqual(len(old), 0)
        self.assertEqual(recorder.events()[-1], ("removed", "Web", "wlan0"))
        eth1 = NetworkInterface("eth1", 7, ipv4=(ipaddress.IPv4Interface("172.16.0.1/24"),))
        self.transport.interfaces[eth1.index] = eth1
        self.querier.interfaces_changed()
        self.transport.sent.clear()
        self.send_times(0.5)
        self.assertIn(eth1.index, [i for _, i, _ in self.transport.sent])
        self.assertNotIn(WLAN0.index, [i for _, i, _ in self.transport.sent])


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
        self.assertEqual(len(querier.cache_for(ETH0.index)), 4)
        querier.stop()


class AskTests(QuerierTestCase):
    """
    L{Querier.ask}: one QM question now, on one link, with that link's
    known answers (RFC 6762 §7.1), under §7.3 duplicate suppression.
    """

    interfaces = (ETH0, WLAN0)

    def test_one_qm_question_now_on_that_link(self) -> None:
        self.querier.ask(PEERHOST, TYPE_A, "wlan0")
        self.assertEqual(len(self.transport.sent), 1)
        self.assertEqual([i for _, i, _ in self.transport.sent], [WLAN0.index])
        self.assertEqual(self.transport.questions(), [[("peer.local", TYPE_A, False)]])
        self.assertEqual(self.transport.sent[0][2], None)  # multicast
        self.clock.advance(10)
        self.assertEqual(len(self.transport.sent), 1, "ask() is one question, not a series")
        self.assertEqual(self.counters["ask.sent"], 1)

    def test_with_that_links_known_answers(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        self.respond([a_record(PEERHOST, "10.0.0.50", 120)], WLAN0)
        self.respond([a_record(PEERHOST, "10.0.0.51", 10)], WLAN0)
        self.clock.advance(6)  # 10.0.0.51 has less than half its TTL left
        self.querier.ask(PEERHOST, TYPE_A, WLAN0)
        [message] = self.transport.messages()
        self.assertEqual([(str(r.rdata), r.ttl) for r in message.answers], [("10.0.0.50", 114)])

    def test_answers_land_in_that_links_cache(self) -> None:
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)], ETH0)
        cache = self.querier.cache_for("eth0")
        self.assertEqual([str(r.rdata) for r in cache.get(PEERHOST, TYPE_A)], ["192.168.1.50"])
        self.assertEqual(len(self.querier.cache_for("wlan0")), 0)

    def test_not_our_link(self) -> None:
        for spec in ("eth9", 99, "172.16.0.1", None):
            error = self.assertRaises(
                InterfaceValidationError, self.querier.ask, PEERHOST, TYPE_A, spec
            )
            self.assertIn("eth0, wlan0", str(error))
        self.assertEqual(self.transport.sent, [])

    def test_stopped(self) -> None:
        self.querier.stop()
        self.assertRaises(RuntimeError, self.querier.ask, PEERHOST, TYPE_A, "eth0")

    def test_same_question_within_a_second_once(self) -> None:
        """
        RFC 6762 §5.2: the same question is not multicast twice within one
        second on a link; on another link it is its own question.
        """
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.clock.advance(0.9)
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.querier.ask(PEERHOST, TYPE_A, "wlan0")
        self.assertEqual([i for _, i, _ in self.transport.sent], [ETH0.index, WLAN0.index])
        self.assertEqual(self.counters["ask.suppressed"], 1)
        self.clock.advance(0.1)
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.assertEqual(len(self.transport.sent), 3)

    def test_other_hosts_question_counts(self) -> None:
        """
        RFC 6762 §7.3: another host's QM question whose known answers hold
        nothing ours would not counts as ours.
        """
        self.respond([a_record(PEERHOST, "192.168.1.50", 120)])
        self.other_host_asks([Question(PEERHOST, TYPE_A)], [a_record(PEERHOST, "192.168.1.50", 110)])
        self.clock.advance(0.5)
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.assertEqual(self.transport.sent, [])
        self.assertEqual(self.counters["ask.suppressed"], 1)
        self.clock.advance(0.5)
        self.querier.ask(PEERHOST, TYPE_A, "eth0")
        self.assertEqual(len(self.transport.sent), 1, "more than a second later: asked")

    def test_other_hosts_question_that_does_not_count(self) -> None:
        """
        Their known answers hold a record ours would not (responders would
        stay silent about it), their question was QU, truncated, or on
        another link: we ask.
        """
        other = a_record(PEERHOST, "192.168.1.99", 120)
        self.other_host_asks([Question(PEERHOST, TYPE_A)], [other])
        self.other_host_asks([Question(PEERHOST, TYPE_TXT, unicast=True)])
        self.other_host_asks([Question(PEERHOST, TYPE_SRV)], flags=FLAG_TC)
        self.other_host_asks([Question(WEB, TYPE_TXT)], iface=WLAN0)
        self.other_host_asks([Question(WEB, TYPE_SRV)], source="192.168.1.10")  # ours, looped
        for rtype in (TYPE_A, TYPE_TXT, TYPE_SRV):
            self.querier.ask(PEERHOST, rtype, "eth0")
        self.querier.ask(WEB, TYPE_TXT, "eth0")
        self.querier.ask(WEB, TYPE_SRV, "eth0")
        self.assertEqual(len(self.transport.sent), 5)
        self.assertEqual(self.counters["ask.suppressed"], 0)

    def test_continuous_query_just_sent_counts(self) -> None:
        """
        A browser's QM question that went out less than a second ago: the
        same question asked by ask() is not sent again.
        """
        self.respond([ptr_record(HTTP, WEB, 4500)] + service_records()[1:])
        self.querier.browse("_http._tcp", Recorder(), interface="eth0")
        self.send_times(0.2)
        self.assertEqual(self.transport.questions(), [[("_http._tcp.local", TYPE_PTR, False)]])
        self.querier.ask(HTTP, TYPE_PTR, "eth0")
        self.assertEqual(len(self.transport.sent), 1)
        self.assertEqual(self.counters["ask.suppressed"], 1)
