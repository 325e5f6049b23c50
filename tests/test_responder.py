"""
Responder rules and timing, with a L{Clock} for time and a recording
transport at the network edge; the responder, protocol and message code are
the real ones.
"""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IServiceRegistry
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
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
    pack,
    pack_one,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.records import SERVICES_META, ServiceInfo
from twisted_mdns.responder import Responder, compare_probe_records
from twisted_mdns.testing import RecordingTransport, make_interface

ETH0 = make_interface("eth0", 2, "10.0.0.5/24")
WLAN0 = make_interface("wlan0", 3, "192.168.1.100/24")
LAB = name_from_text("lab.local")
WEB = ServiceInfo("My Web", "_http._tcp", 8080, {"path": "/"})
PEER_A = ("10.0.0.9", 5353)
PEER_B = ("192.168.1.9", 5353)


class ResponderCase(unittest.TestCase):
    interfaces = (ETH0, WLAN0)

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = RecordingTransport(self.interfaces, self.clock)
        self.responder = Responder(self.transport, self.clock, "lab", rng=random.Random(7))
        self.protocol = MDNSProtocol([self.responder], self.responder.counters)
        self.protocol.fast_path = self.responder.fast_path

    def receive(self, data: bytes, source, index: int, destination: str = "224.0.0.251") -> None:
        self.protocol.datagramReceivedOn(data, source, self.transport.context(index, destination))

    def query(self, *questions: Question, index=2, source=PEER_A, known=(), flags=0, ident=0, destination="224.0.0.251") -> None:
        data = pack_one(ident=ident, flags=flags, questions=list(questions), answers=list(known))
        self.receive(data, source, index, destination)

    def settle(self) -> None:
        """
        Start and let probing and both announcements finish.
        """
        self.results = []
        self.responder.start().addCallback(self.results.append)
        self.clock.advance(0.3)
        for _ in range(40):
            self.clock.advance(0.25)
        self.transport.take()

    def run_for(self, seconds: float, step: float = 0.005) -> None:
        """
        Advance in small steps: L{Clock.advance} runs a call scheduled during
        the advance relative to the advance's end, so one big step would
        stretch chained delays.
        """
        for _ in range(round(seconds / step)):
            self.clock.advance(step)

    def answers(self, sent):
        return [(r.name, r.rtype, r.rdata) for s in sent for r in s.message.answers]


class ProbingTests(ResponderCase):
    def test_provides(self) -> None:
        verifyObject(IServiceRegistry, self.responder)

    def test_probe_sequence_and_announcements(self) -> None:
        done = []
        self.responder.start().addCallback(done.append)
        self.assertEqual(self.transport.sent, [], "s8.1: random 0-250 ms wait first")
        self.clock.advance(0.25)
        probes = self.transport.take()
        self.assertEqual(sorted(p.index for p in probes), [2, 3])
        for p in probes:
            m = p.message
            self.assertFalse(m.is_response)
            self.assertEqual(m.questions[0].qtype, TYPE_ANY)
            self.assertTrue(m.questions[0].unicast, "first probe asks for unicast")
            own = {2: "10.0.0.5", 3: "192.168.1.100"}[p.index]
            self.assertEqual([str(r.rdata) for r in m.authorities if r.rtype == TYPE_A], [own])
            # The reverse mapping of this interface's address is probed too.
            reverse = {2: "5.0.0.10.in-addr.arpa", 3: "100.1.168.192.in-addr.arpa"}[p.index]
            self.assertEqual(
                [q.name for q in m.questions], [LAB, name_from_text(reverse)]
            )
            self.assertEqual(
                [(r.name, str(r.rdata)) for r in m.authorities if r.rtype == TYPE_PTR],
                [(name_from_text(reverse), "lab.local.")],
            )
        first = probes[0].time
        times = [first]
        for _ in range(2):
            self.clock.advance(0.25)
            more = self.transport.take()
            self.assertEqual(len(more), 2)
            self.assertFalse(more[0].message.questions[0].unicast)
            times.append(more[0].time)
        self.assertEqual([round(b - a, 3) for a, b in zip(times, times[1:])], [0.25, 0.25])
        self.assertEqual(done, [])
        self.clock.advance(0.25)
        self.assertEqual(done, ["lab"])
        announced = self.transport.take()
        self.assertEqual(len(announced), 2)
        for s in announced:
            m = s.message
            self.assertTrue(m.is_response and m.flags & FLAG_AA)
            a = [r for r in m.answers if r.rtype == TYPE_A]
            self.assertEqual([str(r.rdata) for r in a], [{2: "10.0.0.5", 3: "192.168.1.100"}[s.index]])
            self.assertTrue(all(r.cache_flush for r in a))
            ptrs = [r for r in m.answers if r.rtype == TYPE_PTR]
            self.assertEqual(len(ptrs), 1, "reverse PTR of this interface only")
        self.clock.advance(0.99)
        self.assertEqual(self.transport.take(), [])
        self.clock.advance(0.01)
        self.assertEqual(len(self.transport.take()), 2, "second announcement 1 s later")
        self.clock.advance(10)
        self.assertEqual(self.transport.take(), [], "only two announcements")

    def test_probe_conflict_renames_host(self) -> None:
        done = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        self.transport.take()
        other = pack_one(flags=FLAG_QR | FLAG_AA, answers=[a_record(LAB, "10.0.0.77", 120)])
        self.receive(other, ("10.0.0.77", 5353), 2)
        self.clock.advance(0.25)
        self.assertEqual(self.responder.hostname, "lab-2")
        self.assertEqual(self.responder.counters["conflicts"], 1)
        for _ in range(20):
            self.clock.advance(0.25)
        self.assertEqual(done, ["lab-2"])

    def test_own_probe_looped_back_is_not_a_conflict(self) -> None:
        done = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        for probe in self.transport.take():
            self.receive(probe.data, ({2: "10.0.0.5", 3: "192.168.1.100"}[probe.index], 5353), probe.index)
        for _ in range(5):
            self.clock.advance(0.25)
        self.assertEqual(done, ["lab"])
        # Our own announcement looped back is no conflict either.
        for sent in self.transport.take():
            self.receive(sent.data, ({2: "10.0.0.5", 3: "192.168.1.100"}[sent.index], 5353), sent.index)
        self.assertEqual(self.responder.counters["conflicts.late"], 0)

    def test_service_conflict_renames_service(self) -> None:
        self.settle()
        got = []
        self.responder.register(WEB).addCallback(got.append)
        self.clock.advance(0.25)
        self.transport.take()
        theirs = srv_record(WEB.name, name_from_text("other.local"), 80, 120)
        self.receive(pack_one(flags=FLAG_QR | FLAG_AA, answers=[theirs]), PEER_B, 3)
        for _ in range(20):
            self.clock.advance(0.25)
        self.assertEqual([s.instance for s in got], ["My Web (2)"])

    def test_simultaneous_probe_tiebreak(self) -> None:
        """
        s8.2: the later record set wins; the loser probes again after 1 s
        (without renaming).
        """
        done = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        self.transport.take()
        # Theirs is lexicographically later (10.0.0.200 > 10.0.0.5): we lose.
        probe = pack_one(questions=[Question(LAB, TYPE_ANY, True)], authorities=[a_record(LAB, "10.0.0.200", 120)])
        self.receive(probe, ("10.0.0.200", 5353), 2)
        self.clock.advance(0.25)
        host_probes = lambda sent: [p for p in sent if any(q.name == LAB for q in p.message.questions)]
        self.assertEqual(host_probes(self.transport.take()), [], "loser stops probing")
        self.assertEqual(self.responder.counters["probes.lost-tiebreak"], 1)
        self.run_for(0.99)
        self.assertEqual(host_probes(self.transport.take()), [])
        self.run_for(0.3)  # 1 s wait, then the 0-250 ms start delay
        again = host_probes(self.transport.take())
        self.assertTrue(again and not again[0].message.is_response)
        for _ in range(5):
            self.clock.advance(0.25)
        self.assertEqual(done, ["lab"], "same name: a lost tie-break is not a conflict")

    def test_simultaneous_probe_we_win(self) -> None:
        done = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        probe = pack_one(questions=[Question(LAB, TYPE_ANY, True)], authorities=[a_record(LAB, "10.0.0.1", 120)])
        self.receive(probe, ("10.0.0.1", 5353), 2)
        for _ in range(4):
            self.clock.advance(0.25)
        self.assertEqual(done, ["lab"])
        self.assertEqual(self.responder.counters["probes.lost-tiebreak"], 0)

    def test_reverse_mapping_held_elsewhere_is_given_up_not_renamed(self) -> None:
        """
        Another responder (on this very host, s15) holds the reverse name of
        our address: we publish our host name without it, and do not rename.
        """
        done = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        reverse = name_from_text("5.0.0.10.in-addr.arpa")
        theirs = ptr_record(reverse, name_from_text("theirs.local"), 120, cache_flush=True)
        self.receive(pack_one(flags=FLAG_QR | FLAG_AA, answers=[theirs]), ("10.0.0.5", 5353), 2)
        for _ in range(20):
            self.clock.advance(0.25)
        self.assertEqual(done, ["lab"])
        self.assertEqual(self.responder.counters["reverse.yielded"], 1)
        self.assertEqual(self.responder.counters["conflicts"], 0)
        names = {r.name for r in self.responder.records_for(2)}
        self.assertNotIn(reverse, names)
        self.assertIn(name_from_text("100.1.168.192.in-addr.arpa"), {r.name for r in self.responder.records_for(3)})

    def test_announced_reverse_mapping_yields_to_a_probe(self) -> None:
        self.settle()
        reverse = name_from_text("5.0.0.10.in-addr.arpa")
        probe = pack_one(
            questions=[Question(reverse, TYPE_ANY, True)],
            authorities=[ptr_record(reverse, name_from_text("theirs.local"), 120, cache_flush=True)],
        )
        self.receive(probe, ("10.0.0.5", 5353), 2)
        sent = self.transport.take()
        goodbyes = [r for p in sent for r in p.message.answers if r.ttl == 0]
        self.assertEqual([(r.name, str(r.rdata)) for r in goodbyes], [(reverse, "lab.local.")])
        self.assertNotIn(reverse, {r.name for r in self.responder.records_for(2)})
        self.assertEqual(self.responder.hostname, "lab")

    def test_compare_probe_records(self) -> None:
        a = [a_record(LAB, "10.0.0.5", 120)]
        b = [a_record(LAB, "10.0.0.6", 120)]
        self.assertEqual(compare_probe_records(a, b), -1)
        self.assertEqual(compare_probe_records(b, a), 1)
        self.assertEqual(compare_probe_records(a, list(a)), 0)
        self.assertEqual(compare_probe_records(a + b, a), 1, "the longer set wins a tie")
        # Class, then type, then data: a TXT (16) beats an A (1).
        txt = [txt_record(LAB, [b"x"], 120)]
        self.assertEqual(compare_probe_records(txt, b), 1)

    def test_fifteen_conflicts_slow_probing(self) -> None:
        self.responder.start()
        for n in range(15):
            self.clock.advance(0.25)
            name = self.responder.host
            self.receive(pack_one(flags=FLAG_QR, answers=[a_record(name, "10.0.0.77", 120)]), ("10.0.0.77", 5353), 2)
            self.clock.advance(0.25)
        self.assertEqual(self.responder.counters["conflicts"], 15)
        self.transport.take()
        self.clock.advance(4.9)
        self.assertEqual([s for s in self.transport.take() if not s.message.is_response], [])
        self.clock.advance(0.2)
        self.assertTrue(self.transport.take(), "probing resumes after 5 s")

    def test_late_conflict_reprobes_then_renames(self) -> None:
        self.settle()
        self.assertEqual(self.results, ["lab"])
        other = pack_one(flags=FLAG_QR | FLAG_AA, answers=[a_record(LAB, "10.0.0.77", 120)])
        self.receive(other, ("10.0.0.77", 5353), 2)
        self.assertEqual(self.responder.counters["conflicts.late"], 1)
        self.clock.advance(0.25)
        probes = self.transport.take()
        self.assertTrue(probes and not probes[0].message.is_response, "s9: back to probing")
        # The other host defends: now we rename.
        self.receive(other, ("10.0.0.77", 5353), 2)
        for _ in range(20):
            self.clock.advance(0.25)
        self.assertEqual(self.responder.hostname, "lab-2")

    def test_services_registered_before_start(self) -> None:
        got = []
        self.responder.register(WEB).addCallback(got.append)
        self.settle()
        self.assertEqual([s.instance for s in got], ["My Web"])

    def test_unregister_renamed_service_by_its_original_info(self) -> None:
        self.settle()
        got = []
        self.responder.register(WEB).addCallback(got.append)
        self.clock.advance(0.25)
        theirs = srv_record(WEB.name, name_from_text("other.local"), 80, 120)
        self.receive(pack_one(flags=FLAG_QR | FLAG_AA, answers=[theirs]), PEER_B, 3)
        for _ in range(20):
            self.clock.advance(0.25)
        self.assertEqual(got[0].instance, "My Web (2)")
        self.transport.take()
        self.responder.unregister(WEB)
        names = {r.name for s in self.transport.take() for r in s.message.answers if r.rtype == TYPE_SRV}
        self.assertEqual(names, {got[0].name})
        self.assertEqual(self.responder.services, [])

    def test_batched_probes(self) -> None:
        self.settle()
        services = [ServiceInfo(f"svc {n}", "_http._tcp", 8000 + n) for n in range(50)]
        for s in services:
            self.responder.register(s)
        self.clock.advance(0.25)
        probes = [s for s in self.transport.take() if s.index == 2]
        questions = sum(len(p.message.questions) for p in probes)
        self.assertEqual(questions, 50)
        self.assertLess(len(probes), 10, "50 registrations share probe packets")
        for p in probes:
            self.assertLessEqual(len(p.data), 1472)


class AnsweringTests(ResponderCase):
    def setUp(self) -> None:
        super().setUp()
        self.settle()
        self.responder.register(WEB)
        for _ in range(20):
            self.clock.advance(0.25)
        self.transport.take()
        self.clock.advance(5)

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

    def test_legacy_unicast(self) -> None:
        for attempt in range(2):  # the second one takes the precomputed path
            self.query(Question(LAB, TYPE_A), index=3, source=("192.168.1.9", 40000), ident=0x1234)
            sent = self.transport.take()
            self.assertEqual(len(sent), 1)
            s = sent[0]
            self.assertEqual(s.destination, ("192.168.1.9", 40000))
            m = s.message
            self.assertEqual(m.id, 0x1234)
            self.assertEqual([(q.name, q.qtype) for q in m.questions], [(LAB, TYPE_A)])
            self.assertEqual([str(r.rdata) for r in m.answers], ["192.168.1.100"])
            for r in m.answers + m.additionals:
                self.assertLessEqual(r.ttl, 10)
                self.assertFalse(r.cache_flush)
        self.assertEqual(self.responder.counters["answered.legacy"], 2)

    def test_legacy_reply_that_does_not_fit_sets_tc(self) -> None:
        many = [ServiceInfo(f"Printer {n:03d}", "_ipp._tcp", 631) for n in range(80)]
        for info in many:
            self.responder.register(info)
        for _ in range(20):
            self.clock.advance(0.25)
        self.transport.take()
        self.query(Question(many[0].type_name, TYPE_PTR), index=2, source=("10.0.0.9", 40000), ident=5)
        (sent,) = self.transport.take()
        self.assertLessEqual(len(sent.data), 1472)
        m = sent.message
        self.assertTrue(m.flags & FLAG_TC, "an incomplete legacy reply says so")
        self.assertLess(len(m.answers), 80)
        # A small answer is complete and has no TC.
        self.query(Question(LAB, TYPE_A), index=2, source=("10.0.0.9", 40000), ident=6)
        self.assertFalse(self.transport.take()[0].message.flags & FLAG_TC)

    def test_legacy_fast_path_is_per_interface_and_keeps_case(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2, source=("10.0.0.9", 40000), ident=1)
        self.query(Question(LAB, TYPE_A), index=3, source=("192.168.1.9", 40000), ident=2)
        self.query(Question(name_from_text("LAB.local"), TYPE_A), index=2, source=("10.0.0.9", 40000), ident=3)
        self.query(Question(LAB, TYPE_A), index=3, source=("192.168.1.9", 40000), ident=4)
        sent = self.transport.take()
        got = [(s.message.id, str(s.message.answers[0].rdata), s.message.questions[0].name) for s in sent]
        self.assertEqual(got, [
            (1, "10.0.0.5", LAB), (2, "192.168.1.100", LAB),
            (3, "10.0.0.5", name_from_text("LAB.local")), (4, "192.168.1.100", LAB),
        ])

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

    def test_truncated_query_waits_for_known_answers(self) -> None:
        ptr = ptr_record(WEB.type_name, WEB.name, 4500)
        first = pack(questions=[Question(WEB.type_name, TYPE_PTR)], flags=0, limit=512)[0]
        first = first[:2] + (FLAG_TC).to_bytes(2, "big") + first[4:]
        self.receive(first, PEER_A, 2)
        self.clock.advance(0.3)
        self.assertEqual(self.transport.take(), [], "s7.2: wait 400-500 ms for the rest")
        rest = pack_one(answers=[ptr])
        self.receive(rest, PEER_A, 2)
        self.clock.advance(1)
        self.assertEqual(self.transport.take(), [], "the continuation's known answer suppresses ours")
        self.assertEqual(self.responder.counters["suppressed.known-answer"], 1)

    def test_truncated_query_alone_answered_after_wait(self) -> None:
        first = pack(questions=[Question(WEB.type_name, TYPE_PTR)], limit=512)[0]
        first = first[:2] + (FLAG_TC).to_bytes(2, "big") + first[4:]
        self.receive(first, PEER_A, 2)
        self.run_for(0.39)
        self.assertEqual(self.transport.take(), [])
        self.run_for(0.25)  # at most 500 ms, then the 20-120 ms shared delay
        self.assertEqual(len(self.transport.take()), 1)

    def test_truncated_queries_cannot_hold_us_for_ever(self) -> None:
        """
        More TC packets do not extend the 400-500 ms wait, and the known
        answers held are bounded.
        """
        from twisted_mdns.responder import MAX_HELD_KNOWN_ANSWERS

        first = pack(questions=[Question(WEB.type_name, TYPE_PTR)], limit=512)[0]
        first = first[:2] + (FLAG_TC).to_bytes(2, "big") + first[4:]
        self.receive(first, PEER_A, 2)
        junk = [a_record(name_from_text(f"j{n}.local"), "10.0.0.77", 120) for n in range(100)]
        more = pack(answers=junk, limit=9000)[0]
        more = more[:2] + (FLAG_TC).to_bytes(2, "big") + more[4:]
        for _ in range(35):  # 0.28 s of TC packets, 3500 known answers
            self.receive(more, PEER_A, 2)
            self.clock.advance(0.008)
        held = self.responder.truncated.holding(self.responder.link(2))[PEER_A]
        self.assertLessEqual(len(held.answers), MAX_HELD_KNOWN_ANSWERS)
        self.assertGreater(self.responder.counters["dropped.known-answers-over-limit"], 0)
        self.run_for(0.22 + 0.12)  # past 500 ms from the first, then the shared delay
        self.assertEqual(len(self.transport.take()), 1, "answered by the first packet's deadline")
        self.assertEqual(self.responder.truncated.holding(self.responder.link(2)), {})

    def test_truncated_sources_bounded(self) -> None:
        self.responder.truncated.max_sources = 100
        first = pack(questions=[Question(WEB.type_name, TYPE_PTR)], limit=512)[0]
        first = first[:2] + (FLAG_TC).to_bytes(2, "big") + first[4:]
        for n in range(110):
            self.receive(first, (f"10.0.0.{n + 10}", 5353), 2)
        self.assertEqual(len(self.responder.truncated.holding(self.responder.link(2))), 100)
        self.assertEqual(self.responder.counters["dropped.truncated-over-limit"], 10)
        self.responder.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [], "stop cancels the waits")

    def test_legacy_cache_bounded(self) -> None:
        from twisted_mdns.responder import MAX_LEGACY_CACHE

        for qtype in range(1, MAX_LEGACY_CACHE + 50):
            if qtype in (TYPE_A, TYPE_PTR, 41, TYPE_ANY):
                continue
            self.query(Question(LAB, qtype), index=2, source=("10.0.0.9", 40000), ident=qtype)
        self.assertLessEqual(len(self.responder.legacy_replies.questions), MAX_LEGACY_CACHE)
        self.assertGreater(self.responder.counters["legacy-cache.cleared"], 0)

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

    def test_update_announces_new_txt(self) -> None:
        self.responder.update(WEB.with_txt({"path": "/v2"}))
        sent = self.transport.take()
        self.assertEqual(len(sent), 2)
        txt = [r for s in sent for r in s.message.answers if r.rtype == TYPE_TXT]
        self.assertEqual({bytes(r.rdata.data[0]) for r in txt}, {b"path=/v2"})

    def test_unregister_sends_goodbyes(self) -> None:
        self.responder.unregister(WEB)
        sent = self.transport.take()
        self.assertEqual(sorted(s.index for s in sent), [2, 3])
        for s in sent:
            records = s.message.answers
            self.assertEqual({r.rtype for r in records}, {TYPE_PTR, TYPE_SRV, TYPE_TXT})
            self.assertTrue(all(r.ttl == 0 for r in records))
        self.query(Question(WEB.type_name, TYPE_PTR), index=2)
        self.clock.advance(0.2)
        self.assertEqual(self.transport.take(), [])

    def test_unregister_keeps_shared_enumeration_ptr_of_other_services(self) -> None:
        other = ServiceInfo("Other Web", "_http._tcp", 8081)
        self.responder.register(other)
        for _ in range(20):
            self.clock.advance(0.25)
        self.transport.take()
        self.responder.unregister(WEB)
        records = [r for s in self.transport.take() if s.index == 2 for r in s.message.answers]
        self.assertTrue(records)
        self.assertNotIn(SERVICES_META, [r.name for r in records], "_http._tcp is still offered")
        type_ptrs = [tuple(r.rdata.label.label) for r in records if r.name == WEB.type_name]
        self.assertEqual(type_ptrs, [WEB.name])
        self.clock.advance(2)
        self.query(Question(SERVICES_META, TYPE_PTR), index=2)
        self.clock.advance(0.2)
        self.assertEqual(len(self.transport.take()), 1)

    def test_stop_sends_goodbyes_for_everything(self) -> None:
        self.responder.stop()
        sent = self.transport.take()
        self.assertEqual(sorted(s.index for s in sent), [2, 3])
        for s in sent:
            records = s.message.answers
            self.assertTrue(records and all(r.ttl == 0 for r in records))
            self.assertEqual({r.rtype for r in records}, {TYPE_A, TYPE_PTR, TYPE_SRV, TYPE_TXT})
            a = [str(r.rdata) for r in records if r.rtype == TYPE_A]
            self.assertEqual(a, [{2: "10.0.0.5", 3: "192.168.1.100"}[s.index]])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.responder.stop()
        self.assertEqual(self.transport.take(), [], "stopping twice is harmless")

    def test_malformed_packets_counted(self) -> None:
        for bad in (b"", b"\x00" * 5, b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"):
            self.receive(bad, PEER_A, 2)
        self.assertEqual(self.protocol.counters["dropped.malformed"], 3)
        self.query(Question(LAB, TYPE_A), index=2)
        self.assertEqual(len(self.transport.take()), 1, "still answers afterwards")


class InterfaceChangeTests(ResponderCase):
    interfaces = (ETH0,)

    def test_no_interface_at_start_then_one_appears(self) -> None:
        """
        A laptop that boots without a network: the names are ours (there is
        nobody to ask), and the first interface to appear gets probes and
        announcements.
        """
        from twisted_mdns.transport import TransportChange

        self.transport.interfaces.clear()
        host, service = [], []
        self.responder.start().addCallback(host.append)
        self.responder.register(WEB).addCallback(service.append)
        self.assertEqual(host, ["lab"])
        self.assertEqual([s.instance for s in service], ["My Web"])
        self.assertEqual(self.transport.take(), [])
        self.transport.interfaces[2] = ETH0
        self.responder.interfaces_changed(TransportChange(added=(ETH0,)))
        self.clock.advance(0.25)
        self.assertTrue(self.transport.take(), "probes on the new interface")
        for _ in range(4):
            self.clock.advance(0.25)
        records = {(r.rtype, str(r.rdata)) for r in self.responder.records_for(2)}
        self.assertIn((TYPE_A, "10.0.0.5"), records)
        self.assertIn((TYPE_SRV, "0 0 8080 lab.local."), records)

    def test_new_interface_probed_and_announced(self) -> None:
        from twisted_mdns.transport import TransportChange

        self.settle()
        self.transport.interfaces[3] = WLAN0
        self.responder.interfaces_changed(TransportChange(added=(WLAN0,)))
        self.clock.advance(0.25)
        probes = self.transport.take()
        self.assertEqual([p.index for p in probes], [3])
        self.assertFalse(probes[0].message.is_response)
        for _ in range(4):
            self.clock.advance(0.25)
        sent = self.transport.take()
        self.assertEqual({s.index for s in sent}, {3})
        self.assertIn("192.168.1.100", [str(r.rdata) for s in sent for r in s.message.answers if r.rtype == TYPE_A])

    def test_readdressed(self) -> None:
        from twisted_mdns.transport import TransportChange

        self.settle()
        moved = make_interface("eth0", 2, "10.0.0.6/24")
        self.transport.interfaces[2] = moved
        self.responder.interfaces_changed(TransportChange(readdressed=((ETH0, moved),)))
        sent = self.transport.take()
        goodbye = [r for r in sent[0].message.answers]
        self.assertEqual({(str(r.rdata), r.ttl) for r in goodbye if r.rtype == TYPE_A}, {("10.0.0.5", 0)})
        announced = [r for s in sent[1:] for r in s.message.answers if r.rtype == TYPE_A]
        self.assertEqual({(str(r.rdata), r.ttl) for r in announced}, {("10.0.0.6", 120)})
        self.assertEqual(
            [str(r.rdata) for r in self.responder.records_for(2) if r.rtype == TYPE_A], ["10.0.0.6"]
        )
