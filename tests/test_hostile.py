"""
Hostile input (RFC 6762 s11, s17; RFC 1035 s4.1.4): malformed and malicious
datagrams, off-link and spoofed sources, amplification, interfaces that
vanish under our feet.

Fuzzing (L{ParseFuzzTests}, L{ProtocolFuzzTests}) runs the real
L{MDNSProtocol} and L{Responder} with a L{RecordingTransport} and a
L{Clock}, on a hand-made seed corpus (L{tests.hostile_corpus}) and on
hypothesis-generated datagrams (derandomized: the same examples on every
run, so CI is reproducible; bounded to a few seconds).

What "every datagram is accounted for" means here (L{Rig.feed}): each
datagram handed to C{MDNSProtocol.datagramReceivedOn} adds one to
C{received} and has exactly one outcome:

 - the legacy fast path handled it: C{answered.legacy} or
   C{dropped.off-link} grew by one; or
 - exactly one of C{queries}, C{responses} or a C{dropped.<reason>}
   counter grew, by one.

So at any time C{received == fast-path answers + queries + responses +
sum(dropped.*)}; C{errors.handler} stays 0 (a handler that raised is a bug
even though the protocol catches it) and nothing is logged as a failure.
Whatever we send meanwhile parses, goes to an address on the link it
leaves by and carries only that link's addresses (s6.2, s11).

The namespace tests (L{OffLinkTests}, L{VanishingInterfaceTests}) run a
real L{MDNSService} in the host namespace of a L{tests.netns.Topology}
(lana 10.1.0.1/24 to client a, lanb 10.2.0.1/24 to client b).
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import time
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from tests import hostile_corpus as corpus
from tests.netns import NamespaceTestMixin, drain, inside, ip
from tests.support import sleep, start_service, wait_until
from twisted_mdns.message import (
    FLAG_QR,
    FLAG_TC,
    MAX_PACKET,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    MessageError,
    Question,
    name_from_text,
    pack,
    pack_one,
    parse,
)
from twisted_mdns.monitor import diff_interfaces
from twisted_mdns.netif import SystemInterfaceEnumerator
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.querier import Querier
from twisted_mdns.records import SERVICES_META, ServiceInfo, reverse_name
from twisted_mdns.responder import Responder
from twisted_mdns.testing import RecordingTransport, make_interface

#: Two dual-stack links: IPv4, a ULA and a link-local IPv6 address each.
ETH0 = make_interface("eth0", 2, "10.0.0.5/24", "fd00:1::5/64", "fe80::5/64")
WLAN0 = make_interface("wlan0", 3, "192.168.1.100/24", "fd00:2::100/64", "fe80::100/64")
ADDRESSES = {2: "10.0.0.5", 3: "192.168.1.100"}
ADDRESSES6 = {2: {"fd00:1::5", "fe80::5"}, 3: {"fd00:2::100", "fe80::100"}}
#: Sources off every link (datagrams from them are never answered).
OFF_LINK = {"203.0.113.7", "2001:db8::7"}
LAB = corpus.LAB
WEB = ServiceInfo("My Web", "_http._tcp", 8080, {"path": "/"})

#: Where hostile datagrams come from: (source, interface index,
#: destination).  On-link mDNS port, on-link legacy port, direct unicast,
#: off-link, IPv4 link-local (on-link by definition); then the same over
#: IPv6 (kernel 4-tuples, link-local ones with their zone), fe80::/10
#: being on-link by definition.
SOURCES = (
    (("10.0.0.9", 5353), 2, "224.0.0.251"),
    (("10.0.0.9", 40000), 2, "224.0.0.251"),
    (("192.168.1.9", 5353), 3, "192.168.1.100"),
    (("203.0.113.7", 5353), 2, "224.0.0.251"),
    (("169.254.3.4", 5353), 3, "224.0.0.251"),
    (("192.168.1.9", 33333), 3, "192.168.1.100"),
    (("fe80::9%eth0", 5353, 0, 2), 2, "ff02::fb"),
    (("fd00:2::9", 40000, 0, 0), 3, "ff02::fb"),
    (("2001:db8::7", 5353, 0, 0), 2, "ff02::fb"),
    (("fd00:1::9", 5353, 0, 0), 2, "fd00:1::5"),
    (("fe80::77%wlan0", 34567, 0, 3), 3, "ff02::fb"),
)

FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


class Rig:
    """
    A settled responder (host name C{lab} and C{My Web} claimed and
    announced on eth0 and wlan0) and, as in L{MDNSService}, a querier
    (browsing C{_http._tcp}, so that hostile responses reach its caches)
    behind the real protocol; and the bookkeeping that checks every
    datagram's outcome.
    """

    def __init__(self, test: unittest.TestCase) -> None:
        self.test = test
        self.clock = Clock()
        self.transport = RecordingTransport((ETH0, WLAN0), self.clock)
        self.responder = Responder(self.transport, self.clock, "lab", rng=random.Random(11))
        self.counters = self.responder.counters
        self.querier = Querier(self.transport, self.clock, counters=self.counters, random=random.Random(12))
        self.browsed: list[tuple] = []
        self.querier.browse("_http._tcp", lambda *event: self.browsed.append(event))
        self.protocol = MDNSProtocol([self.responder, self.querier], self.counters)
        self.fast_answers = 0
        self._fast_handled = False
        real_fast_path = self.responder.fast_path

        def fast_path(data, source, context) -> bool:
            handled = real_fast_path(data, source, context)
            self._fast_handled = handled
            return handled

        self.protocol.fast_path = fast_path
        claimed = []
        self.responder.start().addCallback(claimed.append)
        self.responder.register(WEB).addCallback(claimed.append)
        self.run_for(4.0, 0.25)
        test.assertEqual(claimed, ["lab", WEB])
        self.check_sent(self.transport.take())
        self.outcomes: Counter[str] = Counter()

    def run_for(self, seconds: float, step: float = 0.05) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)

    def feed(self, data: bytes, source=("10.0.0.9", 5353), index: int = 2,
             destination: str = "224.0.0.251") -> str:
        """
        Deliver one datagram; check it had exactly one outcome and return it.
        """
        before = Counter(self.counters)
        self._fast_handled = False
        self.protocol.datagramReceivedOn(data, tuple(source), self.transport.context(index, destination))
        delta = {k: v - before[k] for k, v in self.counters.items() if v != before[k]}
        what = f"{data[:64]!r}... from {source} on {index}: {delta}"
        self.test.assertEqual(delta.get("received"), 1, what)
        self.test.assertEqual(delta.get("errors.handler", 0), 0, what)
        outcomes = {k: v for k, v in delta.items() if k in ("queries", "responses") or k.startswith("dropped.")}
        if self._fast_handled:
            self.test.assertEqual(outcomes.keys() - {"dropped.off-link"}, set(), what)
            fast = delta.get("answered.legacy", 0) + delta.get("dropped.off-link", 0)
            self.test.assertEqual(fast, 1, what)
            if delta.get("answered.legacy"):
                self.fast_answers += 1
                outcome = "fast-path"
            else:
                outcome = "dropped.off-link"
        else:
            self.test.assertEqual(list(outcomes.values()), [1], what)
            (outcome,) = outcomes
        self.outcomes[outcome] += 1
        return outcome

    def check_accounting(self) -> None:
        """
        received == fast-path answers + queries + responses + sum(dropped.*)
        """
        c = self.counters
        dropped = sum(v for k, v in c.items() if k.startswith("dropped."))
        self.test.assertEqual(c["received"], self.fast_answers + c["queries"] + c["responses"] + dropped, dict(c))
        self.test.assertEqual(c["received"], sum(self.outcomes.values()))
        self.test.assertEqual(c["errors.handler"], 0)

    def check_sent(self, sent) -> None:
        """
        Everything we sent parses, and says only what is true of the
        interface it left by, to someone on that interface.
        """
        for s in sent:
            message = s.message
            self.test.assertTrue(message.is_response or message.questions, s)
            iface = self.transport.interfaces[s.index]
            for record in message.records() if message.is_response else message.authorities:
                if record.rtype == TYPE_A:
                    self.test.assertEqual(str(record.rdata), ADDRESSES[s.index], s)
                elif record.rtype == TYPE_AAAA:
                    self.test.assertIn(str(record.rdata), ADDRESSES6[s.index], s)
            if s.destination is not None:
                address = s.destination[0]
                self.test.assertTrue(
                    iface.on_link(address) or address.startswith("169.254."),
                    f"sent to off-link {address} on {iface.name}",
                )
            self.test.assertLessEqual(len(s.data), MAX_PACKET)

    def responses(self) -> list:
        """
        What the responder sent since last asked (the querier's queries
        are checked and left out).
        """
        sent = self.transport.take()
        self.check_sent(sent)
        return [s for s in sent if s.message.is_response]

    def assert_still_answers(self) -> None:
        """
        Hostile input changed nothing: after the dust settles, a multicast
        query and a legacy query are answered as they would have been.
        """
        self.run_for(2.0, 0.1)
        self.check_sent(self.transport.take())
        self.check_accounting()
        self.test.assertEqual(self.responder.hostname, "lab")
        self.test.assertEqual([s.instance for s in self.responder.services], ["My Web"])
        for index, peer in ((2, "10.0.0.42"), (3, "192.168.1.42")):
            self.feed(pack_one(questions=[Question(LAB, TYPE_A)]), (peer, 5353), index)
            sent = self.responses()
            self.test.assertEqual([(s.index, s.multicast) for s in sent], [(index, True)])
            self.test.assertEqual(
                [str(r.rdata) for r in sent[0].message.answers if r.rtype == TYPE_A], [ADDRESSES[index]]
            )
            self.feed(pack_one(ident=99, questions=[Question(WEB.name, TYPE_SRV)]), (peer, 41000), index)
            sent = self.responses()
            self.test.assertEqual([(s.index, s.destination) for s in sent], [(index, (peer, 41000))])
            reply = sent[0].message
            self.test.assertEqual(reply.id, 99)
            self.test.assertEqual([r.rdata.port for r in reply.answers], [8080])
            self.test.assertEqual(
                [str(r.rdata) for r in reply.additionals if r.rtype == TYPE_A], [ADDRESSES[index]]
            )
            # The same over IPv6: a multicast AAAA answer over IPv6 only.
            self.run_for(1.5, 0.1)
            self.feed(pack_one(questions=[Question(LAB, TYPE_AAAA)]), (f"fe80::42%x", 5353, 0, index), index, "ff02::fb")
            sent = self.responses()
            self.test.assertEqual([(s.index, s.multicast, s.family) for s in sent], [(index, True, socket.AF_INET6)])
            self.test.assertEqual(
                {str(r.rdata) for r in sent[0].message.answers if r.rtype == TYPE_AAAA}, ADDRESSES6[index]
            )
        self.check_accounting()


# -- hypothesis strategies ----------------------------------------------------------

_NAME_POOL = [
    corpus.wire_name(*labels)
    for labels in (
        LAB, WEB.name, WEB.type_name, SERVICES_META, corpus.PEER, corpus.PEER_WEB,
        reverse_name("10.0.0.5"), reverse_name("192.168.1.100"), reverse_name("fd00:1::5"),
        reverse_name("fe80::100"), (), (b"x" * 63,) * 3,
    )
]
_TYPES = [TYPE_A, TYPE_PTR, TYPE_SRV, TYPE_TXT, TYPE_NSEC, TYPE_ANY, 28, 41, 0, 65535]
_CLASSES = [1, 0x8001, 255, 0x80FF, 0, 3, 0xFFFF]


_labels = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
    # Around the 63-byte limit, with a two-byte character to straddle it.
    st.text("ab-_ .\u00e9", min_size=58, max_size=68),
).map(str.encode)


def _pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


@st.composite
def wire_names(draw) -> bytes:
    """
    Name-shaped bytes.  Mostly plausible (a name from the pool, or labels
    ending in a terminator or in a pointer to the first question's name)
    so that parsing gets deep; sometimes chaos: length bytes that lie
    (0x40-0xFF included), pointers anywhere, no terminator.
    """
    kind = draw(st.integers(0, 9))
    if kind < 4:
        return draw(st.sampled_from(_NAME_POOL))
    labels = draw(st.lists(_labels, max_size=5))
    name = b"".join(bytes([len(label)]) + label for label in labels)
    if kind < 7:
        return name + b"\0"
    if kind == 7:
        return name + _pointer(draw(st.sampled_from([12, 12, 13, 14, 20, 40])))
    chaos = draw(st.lists(
        st.one_of(
            st.tuples(st.integers(0, 255), st.binary(max_size=8)).map(lambda t: bytes([t[0]]) + t[1]),
            st.one_of(st.integers(0, 120), st.integers(0, 0x3FFF)).map(_pointer),
            st.just(b"\0"),
        ),
        min_size=1, max_size=3,
    ))
    return name + b"".join(chaos)


@st.composite
def rdatas(draw, rtype: int) -> bytes:
    if rtype == TYPE_A and draw(st.booleans()):
        return draw(st.binary(min_size=4, max_size=4))
    if rtype == TYPE_SRV and draw(st.booleans()):
        return struct.pack("!HHH", *draw(st.tuples(*[st.integers(0, 65535)] * 3))) + draw(wire_names())
    if rtype in (TYPE_PTR, TYPE_NSEC) and draw(st.booleans()):
        return draw(wire_names()) + draw(st.binary(max_size=10))
    if rtype == TYPE_TXT and draw(st.booleans()):
        strings = draw(st.lists(st.binary(max_size=20), max_size=4))
        return b"".join(bytes([len(s)]) + s for s in strings)
    return draw(st.binary(max_size=40))


@st.composite
def structured(draw) -> bytes:
    """
    A DNS-shaped datagram: a header with true, small or absurd counts, then
    questions and records built from name-shaped bytes.
    """
    flags = draw(st.one_of(
        st.sampled_from([0, FLAG_QR | 0x0400, FLAG_TC, FLAG_QR, 0x2800, 0x8000 | 0x000F]),
        st.integers(0, 0xFFFF),
    ))
    questions = draw(st.lists(
        st.tuples(wire_names(), st.sampled_from(_TYPES), st.sampled_from(_CLASSES)), max_size=4,
    ))
    records = []
    for _ in range(draw(st.integers(0, 5))):
        rtype = draw(st.one_of(st.sampled_from(_TYPES), st.integers(0, 65535)))
        rdata = draw(rdatas(rtype))
        length = len(rdata) if draw(st.integers(0, 4)) else draw(st.integers(0, 65535))
        ttl = draw(st.sampled_from([0, 1, 120, 4500, 0x7FFFFFFF, 0xFFFFFFFF]))
        records.append(draw(wire_names()) + struct.pack("!HHIH", rtype, draw(st.sampled_from(_CLASSES)), ttl, length) + rdata)
    split = sorted(draw(st.lists(st.integers(0, len(records)), min_size=2, max_size=2)))
    counts = [len(questions), split[0], split[1] - split[0], len(records) - split[1]]
    if draw(st.integers(0, 7)) == 0:
        counts = draw(st.lists(st.sampled_from([0, 1, 2, 5, 255, 65535]), min_size=4, max_size=4))
    body = b"".join(n + struct.pack("!HH", t, c) for n, t, c in questions) + b"".join(records)
    return corpus.header(*counts, flags=flags, ident=draw(st.integers(0, 0xFFFF))) + body


_SEEDS = [packet for _, packet in corpus.valid()]


@st.composite
def mutated(draw) -> bytes:
    """
    A valid message with a few bytes replaced, inserted or removed, maybe
    cut short.
    """
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["set", "flip", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x3F, 0x40, 0xC0, 0xFF, draw(st.integers(0, 255))]))
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at:at + draw(st.integers(1, 8))]
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


datagrams = st.one_of(st.binary(max_size=600), structured(), mutated())


# -- the tests -----------------------------------------------------------------------


class ParseFuzzTests(unittest.TestCase):
    """
    L{parse} turns anything into a L{Message} or a L{MessageError}, and
    what it accepts can be packed again.
    """

    def assertOnlyMessageError(self, data: bytes):
        try:
            message = parse(data)
        except MessageError:
            return None
        # Whatever was accepted is something we could send back: every
        # name a valid name, every record packable on its own (a legacy
        # reply echoes questions; a querier repeats known answers).
        for q in message.questions:
            self.assertTrue(all(len(label) <= 63 for label in q.name), q)
            self.assertLessEqual(sum(len(label) + 1 for label in q.name) + 1, 255)
            pack_one(questions=[q])
        for record in message.records():
            self.assertTrue(all(len(label) <= 63 for label in record.name), record)
            pack_one(flags=FLAG_QR, answers=[record])
        return message

    def test_malformed_corpus_refused(self):
        """
        Every hand-made malformed datagram raises L{MessageError}, nothing
        else.
        """
        seen = 0
        for what, data in corpus.malformed():
            try:
                message = parse(data)
            except MessageError:
                seen += 1
            else:
                self.fail(f"{what}: parsed as {message}")
        self.assertGreater(seen, 300)

    def test_well_formed_edges_accepted(self):
        """
        The edge cases that are valid parse: a 63-byte label, a 255-byte
        name, a 9000-byte response, a bare header, trailing bytes.
        """
        for what, data in corpus.well_formed():
            self.assertIsNotNone(self.assertOnlyMessageError(data), what)

    def test_mutation_corpus(self):
        """
        Random bytes, every single-bit flip and byte stamp of the valid
        seeds: only L{MessageError} escapes, and a fair share still parses
        (the mutations reach past the header).
        """
        parsed = refused = 0
        for what, data in corpus.anything():
            try:
                result = self.assertOnlyMessageError(data)
            except Exception as e:
                self.fail(f"{what}: {type(e).__name__}: {e}")
            if result is None:
                refused += 1
            else:
                parsed += 1
        self.assertGreater(parsed, 1000)
        self.assertGreater(refused, 1000)

    @FUZZ_SETTINGS
    @given(datagrams)
    def test_fuzz_parse(self, data):
        """
        Hypothesis: random, DNS-shaped and mutated datagrams.
        """
        self.assertOnlyMessageError(data)

    def test_pointer_cycle_is_cheap(self):
        """
        Two compression pointers leading to each other (each pointing
        backwards, so a parser that only refuses forward and self pointers
        follows them until its stack runs out) cost no more than parsing a
        real message: a 29-byte datagram must not buy an attacker
        milliseconds of our CPU.
        """
        cycle = dict(corpus.malformed())["two-pointer cycle"]
        valid = corpus.peer_response()

        def cost(data, rounds=50):
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(rounds):
                    try:
                        parse(data)
                    except MessageError:
                        pass
                best = min(best, time.perf_counter() - started)
            return best

        self.assertRaises(MessageError, parse, cycle)
        self.assertLess(cost(cycle), 5 * cost(valid))


class ProtocolFuzzTests(unittest.TestCase):
    """
    The real protocol and responder under hostile input: nothing escapes,
    every datagram is counted once, the responder keeps answering.
    """

    def setUp(self):
        self.rig = Rig(self)

    def test_malformed_corpus_dropped(self):
        """
        Every malformed datagram is counted as C{dropped.malformed}, from
        whichever source, and nothing is sent in reply.
        """
        rig = self.rig
        for n, (what, data) in enumerate(corpus.malformed()):
            source, index, destination = SOURCES[n % len(SOURCES)]
            if source[0] in OFF_LINK:
                # On-link here, so that a protocol that checked the source
                # before parsing (a fair design) still counts "malformed".
                source = ("10.0.0.77", 5353)
            self.assertEqual(rig.feed(data, source, index, destination), "dropped.malformed", what)
            self.assertEqual(rig.transport.take(), [], what)
        self.assertEqual(rig.counters["dropped.malformed"], len(corpus.malformed()))
        rig.assert_still_answers()

    def test_well_formed_corpus_dispatched(self):
        """
        The valid edge cases go through as queries or responses.
        """
        rig = self.rig
        for what, data in corpus.well_formed():
            outcome = rig.feed(data, ("10.0.0.9", 5353), 2)
            self.assertIn(outcome, ("queries", "responses"), what)
        rig.assert_still_answers()

    def test_mutation_corpus_accounted(self):
        """
        Random bytes and every bit flip and byte stamp of the valid seeds,
        from every kind of source: one outcome each, no handler error,
        nothing sent that says the wrong thing to the wrong place, and the
        responder still answers.
        """
        rig = self.rig
        for n, (what, data) in enumerate(corpus.anything()):
            source, index, destination = SOURCES[n % len(SOURCES)]
            rig.feed(data, source, index, destination)
            if n % 50 == 0:
                rig.clock.advance(0.5)
                rig.check_sent(rig.transport.take())
        outcomes = rig.outcomes
        self.assertGreater(outcomes["dropped.malformed"], 1000)
        self.assertGreater(outcomes["queries"] + outcomes["responses"], 500)
        self.assertGreater(outcomes["dropped.off-link"], 300)
        rig.assert_still_answers()

    @FUZZ_SETTINGS
    @given(st.lists(st.tuples(datagrams, st.sampled_from(SOURCES)), min_size=1, max_size=3))
    def test_fuzz_protocol(self, batch):
        """
        Hypothesis: a few datagrams from various sources into a fresh
        settled responder; the usual checks.
        """
        rig = Rig(self)
        for data, (source, index, destination) in batch:
            rig.feed(data, source, index, destination)
        rig.assert_still_answers()

    def test_off_link_sources_never_answered(self):
        """
        s11: a query we would answer (legacy, QU, QM, direct unicast) from a
        source that is not on the receiving link is dropped and counted,
        whichever way it comes; a legacy question already in the fast
        path's cache included.
        """
        rig = self.rig
        legacy = pack_one(ident=5, questions=[Question(LAB, TYPE_A)])
        rig.feed(legacy, ("10.0.0.9", 40000), 2)  # primes the fast path
        self.assertEqual(len(rig.transport.take()), 1)
        queries = [
            (legacy, 40000, "224.0.0.251"),
            (legacy, 40000, "10.0.0.5"),
            (pack_one(questions=[Question(LAB, TYPE_A, unicast=True)]), 5353, "224.0.0.251"),
            (pack_one(questions=[Question(WEB.type_name, TYPE_PTR)]), 5353, "224.0.0.251"),
            (pack_one(questions=[Question(LAB, TYPE_A)]), 5353, "10.0.0.5"),
        ]
        # Off-link: another subnet, the other interface's subnet (a spoofed
        # neighbour of wlan0 arriving on eth0), our own other address.
        for address in ("203.0.113.7", "192.168.1.9", "192.168.1.100", "10.0.1.1"):
            for data, port, destination in queries:
                self.assertEqual(rig.feed(data, (address, port), 2, destination), "dropped.off-link")
        rig.run_for(1.0)
        self.assertEqual(rig.responses(), [])
        self.assertEqual(rig.counters["dropped.off-link"], 20)
        rig.assert_still_answers()

    def test_legacy_answer_is_not_an_amplifier(self):
        """
        A legacy PTR query gets the PTR and its s12 additionals (SRV, TXT,
        this interface's addresses, the host's NSEC) and nothing else; a
        legacy A query gets one A and this link's AAAA records as
        additionals (RFC 6762 §6.2), no bigger than the query plus those.
        """
        rig = self.rig
        other = ServiceInfo("Printer", "_ipp._tcp", 631)
        rig.responder.register(other)
        rig.run_for(4.0, 0.25)
        rig.transport.take()
        for index, peer in ((2, "10.0.0.9"), (3, "192.168.1.9")):
            query = pack_one(ident=1, questions=[Question(WEB.type_name, TYPE_PTR)])
            rig.feed(query, (peer, 40000), index)
            (sent,) = rig.responses()
            reply = sent.message
            self.assertEqual([(r.name, r.rtype) for r in reply.answers], [(WEB.type_name, TYPE_PTR)])
            self.assertEqual(
                sorted((r.name, r.rtype) for r in reply.additionals),
                sorted([(WEB.name, TYPE_SRV), (WEB.name, TYPE_TXT), (LAB, TYPE_A), (LAB, TYPE_NSEC)]
                       + [(LAB, TYPE_AAAA)] * len(ADDRESSES6[index])),
            )
            self.assertEqual(
                [str(r.rdata) for r in reply.additionals if r.rtype == TYPE_A], [ADDRESSES[index]]
            )
            a_query = pack_one(ident=2, questions=[Question(LAB, TYPE_A)])
            rig.feed(a_query, (peer, 40000), index)
            (sent,) = rig.responses()
            reply = sent.message
            self.assertEqual([str(r.rdata) for r in reply.answers], [ADDRESSES[index]])
            self.assertEqual({str(r.rdata) for r in reply.additionals}, ADDRESSES6[index])
            # An A record (16 bytes, name compressed) and each AAAA (28).
            self.assertLessEqual(len(sent.data), len(a_query) + 16 + 28 * len(ADDRESSES6[index]))

    def test_many_questions_are_not_an_amplifier(self):
        """
        A legacy query repeating the same question many times, or asking
        ANY, is answered with each record once.
        """
        rig = self.rig
        questions = [Question(WEB.type_name, TYPE_PTR)] * 50 + [Question(LAB, TYPE_ANY)] * 50
        query = pack_one(ident=3, questions=questions)
        rig.feed(query, ("10.0.0.9", 40000), 2)
        (sent,) = rig.responses()
        reply = sent.message
        identities = [r.identity for r in reply.records()]
        self.assertEqual(len(identities), len(set(identities)))
        self.assertLessEqual(len(reply.records()), 8)
        self.assertLessEqual(len(sent.data), len(query) + 400)

    def test_oversized_legacy_question_section(self):
        """
        A legacy query whose question section cannot be echoed in one reply
        on this interface (RFC 6762 s6.7 says echo it): refused and counted,
        not an exception in the responder.
        """
        rig = self.rig
        questions = [Question(LAB, TYPE_A)] + [
            Question(name_from_text(f"q{n:04d}.local"), TYPE_A) for n in range(300)
        ]
        query = pack(ident=4, questions=questions, limit=MAX_PACKET)[0]
        self.assertGreater(len(query), 1500)
        before = Counter(rig.counters)
        rig.protocol.datagramReceivedOn(query, ("10.0.0.9", 40000), rig.transport.context(2))
        self.flushLoggedErrors(MessageError)
        self.assertEqual(rig.counters["errors.handler"] - before["errors.handler"], 0)
        self.assertEqual(rig.responses(), [])


    def test_fast_path_refuses_what_parse_refuses(self):
        """
        A legacy query cut short inside its OPT record is malformed:
        dropped as such even when the same question is in the fast path's
        cache.
        """
        rig = self.rig
        good = corpus.legacy_query(ident=9)
        self.assertEqual(rig.feed(good, ("10.0.0.9", 40000), 2), "queries")
        rig.transport.take()
        for cut in range(len(good) - 11, len(good)):
            outcome = rig.feed(good[:cut], ("10.0.0.9", 40000), 2)
            self.assertEqual(outcome, "dropped.malformed", f"cut to {cut} bytes")



# -- real sockets in namespaces ---------------------------------------------------------

LAB_WEB = ServiceInfo("Lab Web", "_http._tcp", 8080, {"path": "/"})
LAB_PRINTER = ServiceInfo("Lab Printer", "_ipp._tcp", 631)
#: Offered on link B only: link A must never hear of it.
B_ONLY = ServiceInfo("B Only", "_http._tcp", 8081, interfaces=("lanb",))


def replies(sock: socket.socket, ident: int | None = None) -> list:
    """
    The DNS responses waiting on C{sock} (with id C{ident}), with their size
    and source.
    """
    out = []
    for data, source in drain(sock):
        try:
            message = parse(data)
        except MessageError:
            continue
        if message.is_response and (ident is None or message.id == ident):
            out.append((message, len(data), source))
    return out


def udp_datagram(src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 255) -> bytes:
    """
    An IPv4 + UDP datagram with any source address, for an C{IPPROTO_RAW}
    socket (the kernel fills in the IP checksum and length; UDP checksum 0
    means none, which IPv4 allows).
    """
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip_header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, ttl, socket.IPPROTO_UDP, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    return ip_header + udp


class Capture:
    """
    Every IPv4/UDP frame seen on a client's C{eth0} (an C{AF_PACKET}
    socket): what the host really sent, whatever any socket would have
    accepted.
    """

    def __init__(self, ns: str) -> None:
        with inside(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.sock.bind(("eth0", 0))
            self.sock.setblocking(False)
        self.frames: list[tuple[str, str, int, int]] = []

    def udp(self) -> list[tuple[str, str, int, int]]:
        """
        (source, destination, source port, destination port) of every UDP
        frame so far.
        """
        while True:
            try:
                frame = self.sock.recv(65535)
            except BlockingIOError:
                break
            if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_UDP:
                continue
            ihl = (frame[14] & 0x0F) * 4
            sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
            self.frames.append((socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]), sport, dport))
        return list(self.frames)

    def close(self) -> None:
        self.sock.close()


class NamespaceCase(NamespaceTestMixin, unittest.TestCase):
    """
    An L{MDNSService} (host C{lab}, monitor off) in the host namespace.
    """

    timeout = 30
    virtual = False
    services: tuple[ServiceInfo, ...] = ()

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        # Dual-stack links from the start: the link-local addresses are
        # past DAD, so what is published (A and AAAA) does not change
        # under the test.
        self.topology.wait_dad()
        self.ll = {
            c: self.topology.link_local(self.topology.host_ns, link.host_if)
            for c, link in self.topology.links.items()
        }
        self.mdns = yield start_service(self, "lab", self.services)
        yield wait_until(
            lambda: self.mdns.responder.records_for(self.a.host_index)
            and self.mdns.responder.records_for(self.b.host_index),
            what="host name claimed on both links",
        )

    def client(self, name: str, port: int = 0) -> socket.socket:
        sock = self.topology.client_socket(name, port)
        self.addCleanup(sock.close)
        return sock

    def legacy(self, sock, name, qtype, ident, to="224.0.0.251") -> bytes:
        query = pack_one(ident=ident, questions=[Question(name, qtype)])
        sock.sendto(query, (to, 5353))
        return query


class OffLinkTests(NamespaceCase):
    """
    RFC 6762 s11 and s5.5 on real sockets: what does not come from the
    link it arrived on is never answered, however it got there; and what
    is answered is no bigger than it should be.
    """

    services = (LAB_WEB, LAB_PRINTER, B_ONLY)

    @defer.inlineCallbacks
    def test_query_from_another_subnet_routed_into_the_link(self):
        """
        Client A asks from 10.50.0.2 (not lana's subnet), unicast to the
        host's lana address and to the group, legacy and from 5353.  The
        host even has a route back, so an answer would arrive: none may be
        sent.  The same queries from A's own address are answered (the
        control that shows the path works).
        """
        ip("addr", "add", "10.50.0.2/24", "dev", "eth0", ns=self.a.client_ns)
        ip("route", "add", "10.50.0.0/24", "dev", "lana")
        sockets = {}
        for source in ("10.50.0.2", self.a.client_ip):
            for port in (0, 5353):
                with inside(self.a.client_ns):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
                    sock.bind((source, port))
                    sock.setblocking(False)
                self.addCleanup(sock.close)
                sockets[source, port] = sock
        counters = self.mdns.counters
        dropped, answered = counters["dropped.off-link"], counters["answered"]
        off = [sockets["10.50.0.2", 0], sockets["10.50.0.2", 5353]]
        for n, sock in enumerate(off):
            self.legacy(sock, LAB, TYPE_A, 100 + n, to=self.a.host_ip)
            self.legacy(sock, LAB, TYPE_A, 110 + n)
            sock.sendto(pack_one(ident=120 + n, questions=[Question(LAB, TYPE_A, unicast=True)]), (self.a.host_ip, 5353))
        yield wait_until(lambda: counters["dropped.off-link"] >= dropped + 6, what="six off-link drops")
        yield sleep(0.3)
        for sock in off:
            self.assertEqual(replies(sock), [])
        self.assertEqual(counters["answered"], answered)
        self.assertEqual(counters["dropped.off-link"], dropped + 6)
        # Control: from on-link addresses the very same queries are answered.
        on = sockets[self.a.client_ip, 0]
        self.legacy(on, LAB, TYPE_A, 130, to=self.a.host_ip)
        got = yield wait_until(lambda: replies(on), what="on-link control answered")
        self.assertEqual([str(r.rdata) for r in got[0][0].answers], [self.a.host_ip])

    @defer.inlineCallbacks
    def test_spoofed_sources_never_answered(self):
        """
        Raw datagrams from client A with forged sources: client B's address
        (on link B, but arriving on lana) and a TEST-NET address, unicast
        and multicast.  With the kernel set to accept them (rp_filter off)
        and the host able to reach both forged addresses (a route and a
        neighbour entry for each), they are counted as off-link and nothing
        at all is sent towards them, on either link.
        """
        host = self.topology.host_ns
        subprocess.run(
            ["ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
             "net.ipv4.conf.lana.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"],
            check=True, capture_output=True,
        )
        client_mac = ip("-o", "link", "show", "eth0", ns=self.a.client_ns).split("link/ether ")[1].split()[0]
        ip("route", "add", "198.51.100.0/24", "dev", "lana")
        for forged in ("198.51.100.7", self.b.client_ip):
            ip("neigh", "replace", forged, "lladdr", client_mac, "dev", "lana", "nud", "permanent")
        captures = {c: Capture(self.topology.links[c].client_ns) for c in ("a", "b")}
        for capture in captures.values():
            self.addCleanup(capture.close)
        with inside(self.a.client_ns):
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.addCleanup(raw.close)
        counters = self.mdns.counters
        dropped, answered = counters["dropped.off-link"], counters["answered"]
        sent = 0
        for forged in ("198.51.100.7", self.b.client_ip):
            for dst, sport, question in (
                (self.a.host_ip, 40001, Question(LAB, TYPE_A)),
                ("224.0.0.251", 40001, Question(LAB, TYPE_A)),
                ("224.0.0.251", 5353, Question(LAB_WEB.type_name, TYPE_PTR, unicast=True)),
                (self.a.host_ip, 5353, Question(LAB, TYPE_A)),
            ):
                query = pack_one(ident=200 + sent, questions=[question])
                raw.sendto(udp_datagram(forged, dst, sport, 5353, query), (dst, 0))
                sent += 1
        yield wait_until(lambda: counters["dropped.off-link"] >= dropped + sent, what="forged datagrams counted")
        # Control: a raw datagram from A's real address is answered, and
        # the capture sees the answer.
        raw.sendto(udp_datagram(self.a.client_ip, self.a.host_ip, 40002, 5353,
                                pack_one(ident=250, questions=[Question(LAB, TYPE_A)])), (self.a.host_ip, 0))
        yield wait_until(
            lambda: (self.a.host_ip, self.a.client_ip, 5353, 40002) in captures["a"].udp(),
            what="the control answer on the wire",
        )
        yield sleep(0.3)
        forged = {"198.51.100.7", self.b.client_ip}
        for name, capture in captures.items():
            leaked = [f for f in capture.udp() if f[2] == 5353 and f[1] in forged]
            self.assertEqual(leaked, [], f"answers to forged sources seen on link {name}")
        self.assertEqual(counters["dropped.off-link"], dropped + sent)
        self.assertEqual(counters["answered"], answered + 1)

    @defer.inlineCallbacks
    def test_legacy_answers_carry_only_what_was_asked(self):
        """
        s6.7 + s12 on real sockets, full path and fast path alike: a legacy
        PTR browse from A gets Lab Web's PTR, SRV, TXT, A's address and the
        host NSEC, not the printer, not the B-only service, not B's
        address; from B it gets both _http._tcp services and B's address.
        A legacy A query gets one A, the link's AAAA (RFC 6762 §6.2; here
        its link-local address) as additional, and is at most 16 + 28
        bytes (the records) bigger than the query.
        """
        expected = {
            "a": ({LAB_WEB.name}, self.a.host_ip),
            "b": ({LAB_WEB.name, B_ONLY.name}, self.b.host_ip),
        }
        link_local = {self.a.host_ip: self.ll["a"], self.b.host_ip: self.ll["b"]}
        for client, (instances, address) in expected.items():
            sock = self.client(client)
            for ident in (1, 2):  # the second comes from the fast path's cache
                self.legacy(sock, LAB_WEB.type_name, TYPE_PTR, ident)
                ((reply, size, source),) = yield wait_until(lambda: replies(sock, ident), what=f"PTR reply {ident} on {client}")
                self.assertEqual({r.name for r in reply.answers if r.rtype == TYPE_PTR}, {LAB_WEB.type_name})
                self.assertEqual({tuple(r.rdata.label.label) for r in reply.answers}, instances)
                self.assertEqual(len(reply.answers), len(instances))
                extra = Counter((r.name, r.rtype) for r in reply.additionals)
                wanted = Counter({(LAB, TYPE_A): 1, (LAB, TYPE_AAAA): 1, (LAB, TYPE_NSEC): 1})
                for instance in instances:
                    wanted[instance, TYPE_SRV] = wanted[instance, TYPE_TXT] = 1
                self.assertEqual(extra, wanted)
                self.assertEqual([str(r.rdata) for r in reply.additionals if r.rtype == TYPE_A], [address])
                self.assertTrue(all(r.ttl <= 10 and not r.cache_flush for r in reply.records()))
                query = self.legacy(sock, LAB, TYPE_A, 10 + ident)
                ((reply, size, source),) = yield wait_until(lambda: replies(sock, 10 + ident), what=f"A reply on {client}")
                self.assertEqual([str(r.rdata) for r in reply.answers], [address])
                self.assertEqual([str(r.rdata) for r in reply.additionals], [link_local[address]])
                self.assertLessEqual(size, len(query) + 16 + 28)


    @defer.inlineCallbacks
    def test_service_counts_each_datagram_once(self):
        """
        The service's counters account for every datagram once: for what
        arrives on a selected interface, C{received} grows by one per
        datagram and equals what was handled plus what was dropped.
        """
        counters = self.mdns.counters
        yield sleep(2.1)  # let the announcements (and their loop-back) pass
        before = Counter(counters)
        sock = self.client("a")
        # Four different questions: none is in the fast path's cache, so
        # each is a "query" in the counters.
        asked = [(LAB, TYPE_A), (LAB_WEB.name, TYPE_SRV), (LAB_WEB.name, TYPE_TXT), (LAB_WEB.type_name, TYPE_PTR)]
        for n, (name, qtype) in enumerate(asked):
            self.legacy(sock, name, qtype, 300 + n)
        sock.sendto(b"junk", ("224.0.0.251", 5353))
        yield wait_until(lambda: counters["dropped.malformed"] > before["dropped.malformed"], what="the junk")
        yield wait_until(lambda: counters["answered.legacy"] >= before["answered.legacy"] + 4, what="the answers")
        delta = {k: counters[k] - before[k] for k in counters if counters[k] != before[k]}
        outcomes = delta.get("queries", 0) + delta.get("responses", 0) + sum(
            v for k, v in delta.items() if k.startswith("dropped.")
        )
        self.assertEqual(outcomes, 5, delta)
        self.assertEqual(delta.get("received"), outcomes, delta)



class VanishingInterfaceTests(NamespaceCase):
    """
    lanb is deleted while we announce or answer on it: sends fail and are
    counted, nothing raises or is logged as a failure, and once told of the
    change the service closes lanb's port and lana carries on.
    """

    def interfaces_now_changed(self):
        before = list(self.mdns.transport.interfaces.values())
        changes = diff_interfaces(before, SystemInterfaceEnumerator().interfaces())
        self.assertEqual([i.name for i in changes.removed], ["lanb"])
        self.mdns.interfaces_changed(changes)

    @defer.inlineCallbacks
    def assertLanaAnswers(self):
        self.assertNotIn(self.b.host_index, self.mdns.transport.ports)
        self.assertNotIn(self.b.host_index, self.mdns.transport.interfaces)
        self.assertIn(self.a.host_index, self.mdns.transport.ports)
        sock = self.client("a")
        self.legacy(sock, LAB, TYPE_A, 77)
        ((reply, _, source),) = yield wait_until(lambda: replies(sock, 77), what="lana still answers")
        self.assertEqual(source, (self.a.host_ip, 5353))
        self.assertEqual([str(r.rdata) for r in reply.answers], [self.a.host_ip])
        self.legacy(sock, LAB_WEB.name, TYPE_SRV, 78)
        ((reply, _, _),) = yield wait_until(lambda: replies(sock, 78), what="lana answers for the service")
        self.assertEqual([r.rdata.port for r in reply.answers], [8080])
        self.assertEqual([str(r.rdata) for r in reply.additionals if r.rtype == TYPE_A], [self.a.host_ip])

    @defer.inlineCallbacks
    def test_link_deleted_while_announcing(self):
        """
        register() and, before its first probe, lanb vanishes: the probes
        and announcements on lanb fail (counted), the registration still
        completes and is announced on lana, and after the change lanb's
        port is closed and nothing more is sent to it.
        """
        listener = self.topology.client_listener("a")
        self.addCleanup(listener.close)
        counters = self.mdns.counters
        errors = counters["errors.send"]
        done = self.mdns.register(LAB_WEB)
        ip("link", "del", "lanb")  # synchronously: no timer has run yet
        yield wait_until(lambda: done.called, what="the registration to complete")
        registered = yield done
        self.assertEqual(registered.instance, "Lab Web")
        yield wait_until(lambda: counters["errors.send"] > errors, what="failed sends on lanb counted")
        announced = yield wait_until(
            lambda: [m for m, _, _ in replies(listener)
                     if any(r.name == LAB_WEB.name for r in m.answers)],
            what="the announcement on lana",
        )
        self.assertEqual([str(r.rdata) for r in announced[0].records() if r.rtype == TYPE_A], [self.a.host_ip])
        yield sleep(1.2)  # the second announcement, on both links
        self.assertEqual(self.flushLoggedErrors(), [])
        self.interfaces_now_changed()
        errors = counters["errors.send"]
        other = yield self.mdns.register(LAB_PRINTER)
        self.assertEqual(other.instance, "Lab Printer")
        yield self.assertLanaAnswers()
        self.assertEqual(counters["errors.send"], errors, "sent to the vanished interface")
        self.assertEqual(self.flushLoggedErrors(), [])

    @defer.inlineCallbacks
    def test_link_deleted_while_answering(self):
        """
        A browse from client B is received, its (shared, so delayed 20-120
        ms) answer is queued, and lanb vanishes right then: the answer's
        send fails and is counted, nothing raises, and after the change
        lana still answers.
        """
        registered = yield self.mdns.register(LAB_WEB)
        self.assertEqual(registered.instance, "Lab Web")
        # Registration fires at the first announcement, the second follows
        # 1 s later; a record is multicast at most once a second, so wait
        # for the browse to be answered rather than rate-limited.
        yield sleep(2.1)
        responder = self.mdns.responder
        real = responder.query_received
        seen = []

        def query_received(message, source, context):
            real(message, source, context)
            if context.index == self.b.host_index and not seen:
                seen.append(message)
                ip("link", "del", "lanb")

        responder.query_received = query_received
        counters = self.mdns.counters
        errors, answered = counters["errors.send"], counters["answered"]
        querier = self.client("b", 5353)
        querier.sendto(pack_one(questions=[Question(LAB_WEB.type_name, TYPE_PTR)]), ("224.0.0.251", 5353))
        yield wait_until(lambda: seen, what="the browse received on lanb")
        self.assertEqual(counters["answered"], answered + 1, "answer queued")
        yield wait_until(lambda: counters["errors.send"] > errors, what="the failed answer counted")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.interfaces_now_changed()
        yield self.assertLanaAnswers()
        self.assertEqual(self.flushLoggedErrors(), [])
