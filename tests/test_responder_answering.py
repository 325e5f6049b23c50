"""
Answering (RFC 6762 §5.4, §6, §7.1, §7.4).

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Question,
    a_record,
    name_from_text,
    pack_one,
    ptr_record,
)
from twisted_mdns.records import SERVICES_META, ServiceInfo

from tests.responder_case import ETH0, LAB, PEER_A, PEER_B, WEB, ResponderCase, SettledCase


class AnsweringTests(SettledCase):
    def test_address_scoped_to_interface(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2, source=PEER_A)
        self.query(Question(LAB, TYPE_A), index=3, source=PEER_B)
        sent = self.transport.take()
        self.assertEqual(len(sent), 2)
        for s in sent:
            self.assertTrue(s.multicast)
            self.assertEqual(s.time, self.clock.seconds(), "unique answers go at once")
            addresses = [str(r.rdata) for r in s.message.answers + s.message.additionals if r.rtype == TYPE_A]
            self.assertEqual(addresses, [{2: "10.0.0.5", 3: "192.168.1.100"}[s.index]])

    def test_ptr_answer_delayed_with_additionals(self) -> None:
        self.query(Question(WEB.type_name, TYPE_PTR), index=3, source=PEER_B)
        self.assertEqual(self.transport.take(), [], "shared answers wait 20-120 ms")
        self.clock.advance(0.019)
        self.assertEqual(self.transport.take(), [])
        self.clock.advance(0.102)
        sent = self.transport.take()
        self.assertEqual(len(sent), 1)
        m = sent[0].message
        self.assertEqual([(r.rtype, r.cache_flush) for r in m.answers], [(TYPE_PTR, False)])
        extra = {r.rtype: r for r in m.additionals}
        self.assertEqual(set(extra), {TYPE_SRV, TYPE_TXT, TYPE_A, TYPE_NSEC})
        self.assertEqual(str(extra[TYPE_A].rdata), "192.168.1.100")
        self.assertEqual(extra[TYPE_SRV].rdata.port, 8080)

    def test_srv_additional_is_address(self) -> None:
        self.query(Question(WEB.name, TYPE_SRV), index=3, source=PEER_B)
        m = self.transport.take()[0].message
        self.assertEqual([r.rtype for r in m.answers], [TYPE_SRV])
        self.assertEqual([str(r.rdata) for r in m.additionals if r.rtype == TYPE_A], ["192.168.1.100"])

    def test_known_answer_suppression(self) -> None:
        known = a_record(LAB, "10.0.0.5", 120)
        self.query(Question(LAB, TYPE_A), known=[known.with_ttl(60)])
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.responder.counters["suppressed.known-answer"], 1)
        # Less than half the TTL left: answer anyway.
        self.query(Question(LAB, TYPE_A), known=[known.with_ttl(59)])
        self.assertEqual(len(self.transport.take()), 1)

    def test_rate_limit_one_second_per_interface(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2)
        self.assertEqual(len(self.transport.take()), 1)
        self.clock.advance(0.5)
        self.query(Question(LAB, TYPE_A), index=2)
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.responder.counters["suppressed.rate-limit"], 1)
        self.query(Question(LAB, TYPE_A), index=3, source=PEER_B)
        self.assertEqual(len(self.transport.take()), 1, "the limit is per interface")
        self.clock.advance(0.5)
        self.query(Question(LAB, TYPE_A), index=2)
        self.assertEqual(len(self.transport.take()), 1)

    def test_probe_defense_quarter_second(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2)
        self.transport.take()
        self.clock.advance(0.3)
        probe = pack_one(questions=[Question(LAB, TYPE_ANY, True)], authorities=[a_record(LAB, "10.0.0.9", 120)])
        self.receive(probe, PEER_A, 2)
        sent = self.transport.take()
        self.assertEqual(len(sent), 1, "a probe for our name is answered after 250 ms")
        self.assertTrue(sent[0].multicast)

    def test_qu_unicast_when_recently_multicast(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2)
        self.transport.take()
        self.clock.advance(2)
        self.query(Question(LAB, TYPE_A, unicast=True), index=2)
        sent = self.transport.take()
        self.assertEqual([(s.multicast, s.destination) for s in sent], [(False, PEER_A)])
        # s5.4: not multicast in the last quarter TTL (30 s): multicast it.
        self.clock.advance(31)
        self.query(Question(LAB, TYPE_A, unicast=True), index=2)
        self.assertEqual([s.multicast for s in self.transport.take()], [True])

    def test_off_link_query_ignored(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2, source=("192.168.1.9", 5353))
        self.query(Question(LAB, TYPE_A), index=2, source=("8.8.8.8", 40000))
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.protocol.counters["dropped.off-link"], 2)
        # IPv4 link-local senders are on every link.
        self.query(Question(LAB, TYPE_A), index=2, source=("169.254.3.4", 40000))
        self.assertEqual(len(self.transport.take()), 1)

    def test_nsec_for_missing_type(self) -> None:
        self.query(Question(LAB, TYPE_AAAA), index=2)
        m = self.transport.take()[0].message
        self.assertEqual([r.rtype for r in m.answers], [TYPE_NSEC])
        self.query(Question(name_from_text("nobody.local"), TYPE_AAAA), index=2)
        self.assertEqual(self.transport.take(), [], "no NSEC for names we do not own")

    def test_services_enumeration(self) -> None:
        self.query(Question(SERVICES_META, TYPE_PTR), index=2)
        self.clock.advance(0.2)
        m = self.transport.take()[0].message
        self.assertEqual([tuple(r.rdata.label.label) for r in m.answers], [WEB.type_name])

    def test_duplicate_answer_suppression(self) -> None:
        self.query(Question(WEB.type_name, TYPE_PTR), index=2)
        someone = pack_one(flags=FLAG_QR | FLAG_AA, answers=[ptr_record(WEB.type_name, WEB.name, 4500)])
        self.receive(someone, ("10.0.0.33", 5353), 2)
        self.clock.advance(0.2)
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.responder.counters["suppressed.duplicate-answer"], 1)

    def test_service_limited_to_interface(self) -> None:
        only_wlan = ServiceInfo("Printer", "_ipp._tcp", 631, interfaces=("wlan0",))
        self.responder.register(only_wlan)
        for _ in range(20):
            self.clock.advance(0.25)
        announced = self.transport.take()
        self.assertEqual({s.index for s in announced}, {3})
        self.clock.advance(2)
        self.query(Question(only_wlan.type_name, TYPE_PTR), index=2)
        self.query(Question(only_wlan.type_name, TYPE_PTR), index=3, source=PEER_B)
        self.clock.advance(0.2)
        self.assertEqual([s.index for s in self.transport.take()], [3])

    def test_known_answers_read_only_when_needed(self) -> None:
        """
        A query's known answers are decoded only when they matter (issue 13):
        malformed ones in a query for someone else's name are never looked
        at; in a query we answer they count as absent, once, and the answer
        goes out as to a query without them.
        """
        other = name_from_text("_ipp._tcp.local")
        bad = a_record(name_from_text("x.local"), "10.0.0.1", 120)

        def with_bad_label(question: Question) -> bytes:
            data = bytearray(pack_one(questions=[question], answers=[bad]))
            at = data.index(b"\x01x")
            data[at + 1] = 0xFF  # a label that is not UTF-8
            return bytes(data)

        self.receive(with_bad_label(Question(other, TYPE_PTR)), PEER_A, 2)
        self.clock.advance(0.2)
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.protocol.counters["known-answers.malformed"], 0)
        self.receive(with_bad_label(Question(LAB, TYPE_A)), PEER_A, 2)
        self.clock.advance(0.2)
        self.assertEqual(len(self.transport.take()), 1)
        self.assertEqual(self.protocol.counters["known-answers.malformed"], 1)
        self.assertEqual(self.protocol.counters["dropped.malformed"], 0)

    def test_malformed_packets_counted(self) -> None:
        for bad in (b"", b"\x00" * 5, b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"):
            self.receive(bad, PEER_A, 2)
        self.assertEqual(self.protocol.counters["dropped.malformed"], 3)
        self.query(Question(LAB, TYPE_A), index=2)
        self.assertEqual(len(self.transport.take()), 1, "still answers afterwards")


class ChooseAnswersTests(ResponderCase):
    """
    L{choose_answers} is a pure function of a query and a view.
    """

    def test_answers_additionals_and_suppression(self) -> None:
        from twisted_mdns.message import Message, Record
        from twisted_mdns.records import InterfaceRecords, service_records
        from twisted_mdns.responder.answering import choose_answers

        view = InterfaceRecords(ETH0)
        unique, shared = service_records(WEB, LAB)
        address = a_record(LAB, "10.0.0.5", 120)
        for record in [*unique, *shared, address]:
            view.add(record)
        ptr = Question(WEB.type_name, TYPE_PTR)
        query = Message(0, 0, [ptr], [], [], [])
        choice = choose_answers(query, view)
        self.assertEqual([(r.rtype, qu) for r, qu in choice.answers.items()], [(TYPE_PTR, False)])
        self.assertEqual({r.rtype for r in choice.additionals}, {TYPE_SRV, TYPE_TXT, TYPE_A, TYPE_NSEC})
        self.assertEqual(choice.suppressed, 0)
        known: list[Record] = [shared[0].with_ttl(4500)]
        choice = choose_answers(Message(0, 0, [ptr], known, [], []), view)
        self.assertEqual((choice.answers, choice.additionals, choice.suppressed), ({}, [], 1))
        self.assertEqual(len(view), len(unique) + len(shared) + 1, "the view is not changed by choosing")
