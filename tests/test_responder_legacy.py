"""
Legacy unicast (RFC 6762 §6.7) and its reply store.

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted_mdns.message import (
    FLAG_TC,
    TYPE_A,
    TYPE_ANY,
    TYPE_PTR,
    TYPE_TXT,
    Question,
    name_from_text,
)
from twisted_mdns.records import ServiceInfo

from tests.responder_case import LAB, WEB, SettledCase


class LegacyTests(SettledCase):
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

    def test_legacy_cache_bounded(self) -> None:
        from twisted_mdns.responder import MAX_LEGACY_CACHE

        for qtype in range(1, MAX_LEGACY_CACHE + 50):
            if qtype in (TYPE_A, TYPE_PTR, 41, TYPE_ANY):
                continue
            self.query(Question(LAB, qtype), index=2, source=("10.0.0.9", 40000), ident=qtype)
        self.assertLessEqual(len(self.responder.legacy_replies.questions), MAX_LEGACY_CACHE)
        self.assertGreater(self.responder.counters["legacy-cache.cleared"], 0)

    def test_store_forgets_replies_when_records_change(self) -> None:
        """
        Stored replies are forgotten as soon as what we publish changes; an
        exact repeat is then answered from the new records.
        """
        store = self.responder.legacy_replies
        for ident in (1, 2):
            self.query(Question(WEB.type_name, TYPE_PTR), index=2, source=("10.0.0.9", 40000), ident=ident)
        self.assertTrue(store.replies and store.questions)
        self.transport.take()
        self.responder.update(WEB.with_txt({"path": "/v2"}))
        self.assertEqual((store.replies, store.questions), ({}, {}))
        self.transport.take()
        self.query(Question(WEB.type_name, TYPE_PTR), index=2, source=("10.0.0.9", 40000), ident=3)
        (sent,) = self.transport.take()
        txt = [r for r in sent.message.additionals if r.rtype == TYPE_TXT]
        self.assertEqual([bytes(r.rdata.data[0]) for r in txt], [b"path=/v2"])
