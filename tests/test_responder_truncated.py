"""
Truncated queries held for their known answers (RFC 6762 §7.2).

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted_mdns.message import (
    FLAG_TC,
    TYPE_PTR,
    Question,
    a_record,
    name_from_text,
    pack,
    pack_one,
    ptr_record,
)

from tests.responder_case import PEER_A, WEB, SettledCase


class TruncatedTests(SettledCase):
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

    def test_truncated_query_for_others_not_held(self) -> None:
        """
        A TC browse for a type we do not publish is not held (there is no
        answer to wait for), nor are its known answers read; one for ours
        from the same source still is.
        """
        theirs = name_from_text("_ipp._tcp.local")
        known = [ptr_record(theirs, name_from_text(f"P{n}._ipp._tcp.local"), 4500) for n in range(30)]
        first = pack(questions=[Question(theirs, TYPE_PTR)], answers=known, limit=512)[0]
        first = first[:2] + (FLAG_TC).to_bytes(2, "big") + first[4:]
        self.receive(first, PEER_A, 2)
        link = self.responder.link(2)
        self.assertEqual(self.responder.truncated.holding(link), {})
        self.assertEqual(self.responder.counters["truncated.not-ours"], 1)
        self.receive(pack_one(answers=known[:3]), PEER_A, 2)  # its continuation
        self.run_for(0.7)
        self.assertEqual(self.transport.take(), [])
        ours = pack(questions=[Question(WEB.type_name, TYPE_PTR)], limit=512)[0]
        self.receive(ours[:2] + (FLAG_TC).to_bytes(2, "big") + ours[4:], PEER_A, 2)
        self.assertEqual(list(self.responder.truncated.holding(link)), [PEER_A])

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
