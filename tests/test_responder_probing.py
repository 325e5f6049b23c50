"""
Probing (RFC 6762 §8.1) and the simultaneous-probe tie-break (§8.2).

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

import random
from typing import Any

from twisted_mdns.message import (
    FLAG_AA,
    TYPE_A,
    TYPE_ANY,
    TYPE_PTR,
    Question,
    a_record,
    name_from_text,
    pack_one,
    txt_record,
)
from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import Responder, compare_probe_records
from twisted_mdns.testing import RecordingTransport, make_interface

from tests.responder_case import LAB, ResponderCase


class ProbingTests(ResponderCase):
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


class CostlyTransport(RecordingTransport):
    """
    A recording transport whose sends take time on the test's clock (as
    building and sending a round of probes on hundreds of links takes
    tens of milliseconds): each datagram moves the clock C{cost} seconds
    on, without running what falls due meanwhile (as a busy reactor).
    """

    cost = 0.0

    def send(self, *args: Any, **kwargs: Any) -> bool:
        sent = super().send(*args, **kwargs)
        self.clock.rightNow += self.cost
        return sent


MANY = tuple(make_interface(f"eth{n}", 10 + n, f"10.0.{n}.5/24") for n in range(4))


class ProbeSpacingTests(ResponderCase):
    """
    RFC 6762 §8.1 on many links, when sending a round takes time: each
    link's probes 250 ms apart, the names ours 250 ms after each link's
    last probe, and the time a round takes to send not added to every
    interval (issue 13, start-up at 240 links).
    """

    interfaces = MANY

    def setUp(self) -> None:
        super().setUp()
        self.transport = CostlyTransport(self.interfaces, self.clock)
        self.responder = Responder(self.transport, self.clock, "lab", rng=random.Random(7))
        self.done: list = []
        self.responder.start().addCallback(self.done.append)

    def run_calls(self, until: float) -> None:
        """
        Run each timed call at the very time it was due (no step larger
        than the gap to the next call), until C{until}.
        """
        clock = self.clock
        while clock.calls and clock.calls[0].getTime() <= until:
            clock.advance(max(0.0, clock.calls[0].getTime() - clock.seconds()))

    def probe_times(self) -> dict[int, list[float]]:
        """
        Each link's probe times; the first announcement's time goes to
        C{self.announced_at}.
        """
        times: dict[int, list[float]] = {}
        self.announced_at = None
        for s in self.transport.take():
            if not s.message.is_response:
                times.setdefault(s.index, []).append(s.time)
            elif self.announced_at is None:
                self.announced_at = s.time
        return times

    def test_round_time_not_added_to_each_interval(self) -> None:
        """
        With 20 ms per datagram (80 ms per round of four links), the
        rounds begin 250 ms apart, every link's probes are exactly 250 ms
        apart, and the names are ours 250 ms after the last link's third
        probe: 0.75 s + one round (less its last datagram) after the first
        probe, where counting from each round's end made it 0.75 s +
        three rounds.
        """
        self.transport.cost = 0.02
        self.run_calls(5.0)
        times = self.probe_times()
        self.assertEqual(sorted(times), [link.index for link in MANY])
        first = min(t[0] for t in times.values())
        for index, at in times.items():
            self.assertEqual(len(at), 3, index)
            self.assertEqual([round(b - a, 6) for a, b in zip(at, at[1:])], [0.25, 0.25], index)
        last = max(t[-1] for t in times.values())
        self.assertEqual(round(last - first, 6), 0.5 + 3 * 0.02)
        self.assertEqual(self.done, ["lab"])
        self.assertEqual(round(self.announced_at - last, 6), 0.25)
        self.assertEqual(round(self.announced_at - first, 6), 0.75 + 3 * 0.02)

    def test_a_faster_round_waits_for_each_link(self) -> None:
        """
        When the first round is the slow one (it builds the records the
        later rounds reuse), the second round, due 250 ms after the first
        began, would reach the later links less than 250 ms after their
        first probe: each of them waits for its own 250 ms.
        """
        self.transport.cost = 0.03
        first_round_end = self.clock.calls[0].getTime() + 0.001
        self.run_calls(first_round_end)
        self.transport.cost = 0.0
        self.run_calls(5.0)
        times = self.probe_times()
        for index, at in times.items():
            self.assertEqual(len(at), 3, index)
            for a, b in zip(at, at[1:]):
                self.assertGreaterEqual(b - a, 0.25 - 1e-9, index)
        # The last link waited 90 ms past the round's start for its second
        # probe, and not more.
        by_first = sorted(times.values())
        self.assertEqual([round(at[1] - at[0], 6) for at in by_first], [0.25] * 4)
        self.assertEqual(self.done, ["lab"])
        self.assertEqual(round(self.announced_at - max(at[-1] for at in by_first), 6), 0.25)
