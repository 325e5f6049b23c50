"""
Conflicts while probing (RFC 6762 §8.1) and after (§9); reverse mappings yielded (§15).

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_ANY,
    TYPE_SRV,
    Question,
    a_record,
    name_from_text,
    pack_one,
    ptr_record,
    srv_record,
)

from tests.responder_case import LAB, PEER_B, WEB, ResponderCase


class ConflictTests(ResponderCase):
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
