"""
Announcements (RFC 6762 §8.3, §8.4) and goodbyes (§10.1).

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted_mdns.message import (
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Question,
)
from twisted_mdns.records import SERVICES_META, ServiceInfo

from tests.responder_case import WEB, SettledCase


class AnnouncingTests(SettledCase):
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
