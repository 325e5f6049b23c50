"""
Many claims at once (issue 13: 10,000 services registered together): probe
datagrams filled and sent as the questions come, announcements a slice of
claims at a time, and the RFC 6762 timing kept for every claim.

The real responder, protocol and message code; a L{Clock} for time and a
recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mdns.message import (
    TYPE_ANY,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Question,
    name_from_text,
    name_key,
    parse,
    srv_record,
)
from twisted_mdns.records import SERVICES_META, ServiceInfo, service_records
from twisted_mdns.responder import Responder
from twisted_mdns.responder.probing import ProbePackets, _name_cost
from twisted_mdns.testing import RecordingTransport, make_interface

from tests.responder_case import ResponderCase

#: Links with a small MTU, so that a few hundred services take many
#: datagrams of each kind.
SMALL0 = make_interface("eth0", 2, "10.0.0.5/24", mtu=600)
SMALL1 = make_interface("wlan0", 3, "192.168.1.100/24", mtu=700)
LIMITS = {2: 600 - 28, 3: 700 - 28}


class NameCostTests(unittest.TestCase):
    def test_cost_follows_compression(self) -> None:
        """
        A name costs its labels up to the longest suffix already written,
        then a 2-byte pointer; the suffixes it writes become known.
        """
        known: set = set()
        a = name_from_text("a._http._tcp.local")
        self.assertEqual(_name_cost(a, (known,), known), 2 + 6 + 5 + 6 + 1)
        self.assertEqual(_name_cost(a, (known,), known), 2, "all of it: one pointer")
        b = name_from_text("bb._http._tcp.local")
        self.assertEqual(_name_cost(b, (known,), known), 3 + 2)
        self.assertEqual(_name_cost((), (known,), known), 1, "the root")


class ProbePacketsTests(unittest.TestCase):
    def packets(self, limit: int, groups) -> tuple[list[bytes], Counter]:
        sent: list[bytes] = []
        counters: Counter = Counter()
        packets = ProbePackets(limit, sent.append, counters)
        for question, records in groups:
            packets.add(question, records)
        packets.flush()
        self.assertEqual(packets.sent, len(sent))
        return sent, counters

    def test_estimate_bounds_the_packed_size(self) -> None:
        """
        Our own records (PTR and SRV targets packed compressed): every
        datagram within the limit without a second try, and about as full
        as packing by trial made them.
        """
        responder_records = []
        for n in range(300):
            info = ServiceInfo(f"Service number {n}", "_http._tcp" if n % 2 else "_ipp._tcp", 80 + n,
                               {"k": "v" * (n % 40)}, subtypes=("_printer",) if n % 3 == 0 else ())
            unique, _ = service_records(info, name_from_text("lab.local"))
            responder_records.append((Question(info.name, TYPE_ANY, True), unique))
        limit = 1472
        sent, counters = self.packets(limit, responder_records)
        self.assertEqual(counters["probes.resplit"], 0)
        self.assertTrue(all(len(p) <= limit for p in sent), [len(p) for p in sent])
        total = sum(len(p) - 12 for p in sent)
        # Full enough: at most one datagram more than the bytes need.
        self.assertLessEqual(len(sent), total // (limit - 12) + 2)
        # Each question with its own records, every question once.
        names = []
        for p in sent:
            m = parse(p)
            asked = {q.key for q in m.questions}
            self.assertEqual({r.key for r in m.authorities}, asked)
            names.extend(q.name for q in m.questions)
        self.assertEqual(names, [q.name for q, _ in responder_records])

    def test_underestimate_is_split_again(self) -> None:
        """
        An SRV whose target the packer writes uncompressed (one made with
        a dnslib rdata object) is larger than estimated: the datagram is
        packed again in two, and counted.
        """
        target = name_from_text("a-rather-long-host-name-for-this-test.local")
        groups = []
        for n in range(40):
            name = name_from_text(f"s{n}._http._tcp.local")
            groups.append((Question(name, TYPE_ANY), [srv_record(name, target, 80, 120)]))
        limit = 600
        sent, counters = self.packets(limit, groups)
        self.assertGreater(counters["probes.resplit"], 0)
        self.assertTrue(all(len(p) <= limit for p in sent), [len(p) for p in sent])
        self.assertEqual(sum(p[5] for p in sent), 40, "every question sent once")

    def test_one_question_over_the_limit_goes_alone(self) -> None:
        name = name_from_text("big._http._tcp.local")
        record = srv_record(name, name_from_text("x" * 60 + ".local"), 80, 120)
        sent, _ = self.packets(60, [(Question(name, TYPE_ANY), [record])])
        self.assertEqual(len(sent), 1)


class ManyServicesTests(ResponderCase):
    """
    400 services registered at once on two links with small MTUs.
    """

    interfaces = (SMALL0, SMALL1)
    count = 400

    def setUp(self) -> None:
        super().setUp()
        self.settle()
        self.services = [ServiceInfo(f"Service {n:03d}", "_http._tcp", 8000 + n, {"n": str(n)})
                         for n in range(self.count)]
        self.done: list = []
        for s in self.services:
            self.responder.register(s).addCallback(self.done.append)

    def run_until(self, seconds: float) -> list:
        sent = []
        for _ in range(round(seconds / 0.05)):
            self.clock.advance(0.05)
            sent.extend(self.transport.take())
        return sent

    def test_every_claim_probed_three_times_then_announced_twice(self) -> None:
        """
        RFC 6762 §8.1: each service's name in three probes 250 ms apart on
        each link (the first asking for unicast replies), with its
        proposed records in the same datagram; §8.3: then two
        announcements one second apart holding each of its records once
        per link; §17: no datagram over the link's limit.
        """
        start = self.clock.seconds()
        sent = self.run_until(4)
        self.assertEqual(len(self.done), self.count)
        keys = {s.key: s for s in self.services}
        probes: dict = defaultdict(list)  # (index, key) -> [(time, QU)]
        announced: dict = defaultdict(list)  # (index, key, rtype) -> [time]
        enumeration: dict = defaultdict(list)  # index -> [time]
        for s in sent:
            self.assertLessEqual(len(s.data), LIMITS[s.index])
            m = s.message
            if not m.is_response:
                proposed = {r.key for r in m.authorities}
                for q in m.questions:
                    if q.key in keys:
                        self.assertIn(q.key, proposed, "a probe's records travel with it")
                        probes[(s.index, q.key)].append((s.time, q.unicast))
                continue
            for r in m.answers:
                if r.key in keys:
                    announced[(s.index, r.key, r.rtype)].append(s.time)
                elif r.rtype == TYPE_PTR and r.name == self.services[0].type_name:
                    target = name_key(tuple(r.rdata.label.label))
                    announced[(s.index, target, TYPE_PTR)].append(s.time)
                elif r.name == SERVICES_META:
                    enumeration[s.index].append(s.time)
        for index in (2, 3):
            for key in keys:
                times = probes[(index, key)]
                self.assertEqual([qu for _, qu in times], [True, False, False])
                first = times[0][0]
                self.assertLessEqual(first - start, 0.25 + 1e-9)
                self.assertEqual([round(t - first, 3) for t, _ in times], [0.0, 0.25, 0.5])
                for rtype in (TYPE_SRV, TYPE_TXT, TYPE_PTR):
                    at = announced[(index, key, rtype)]
                    self.assertEqual(len(at), 2, (index, key, rtype))
                    self.assertEqual(round(at[1] - at[0], 3), 1.0)
                    self.assertGreaterEqual(round(at[0] - times[-1][0], 3), 0.25)
            # The enumeration PTR every service shares: once per announcement.
            self.assertEqual(len(enumeration[index]), 2)
        # Slices: more than one slice's worth of services, so announcing
        # went slice by slice.
        self.assertGreater(self.count, self.responder.announcer.slice // 4)

    def test_small_slices_announce_the_same(self) -> None:
        """
        With slices of 7 claims, the announcements still hold every record
        of every service once per link and announcement, the shared
        enumeration PTR once, and the host's addresses as additionals.
        """
        self.responder.announcer.slice = 7
        sent = self.run_until(4)
        responses = [s for s in sent if s.message.is_response]
        for index in (2, 3):
            mine = [s for s in responses if s.index == index]
            records = Counter((r.key, r.rtype, r.data) for s in mine for r in s.message.answers)
            self.assertTrue(all(n == 2 for n in records.values()), "each record in each announcement once")
            srv = [k for k in records if k[1] == TYPE_SRV]
            self.assertEqual(len(srv), self.count)
            meta = [k for k in records if k[0] == name_key(SERVICES_META)]
            self.assertEqual(len(meta), 1)
            self.assertTrue(any(r.rtype == 1 for s in mine for r in s.message.additionals))
            self.assertTrue(all(len(s.data) <= LIMITS[index] for s in mine))

    def test_rate_limit_and_qu_after_announcement(self) -> None:
        """
        RFC 6762 §6: a record just announced is not multicast again within
        a second; §5.4: a QU question then gets a unicast reply.  The
        announcement is remembered once per claim (L{Link.announced}),
        not once per record.
        """
        self.run_until(2.2)  # probes, first announcement
        link = self.responder.link(2)
        self.assertEqual(len(link.announced), self.count + 2)  # the host, its reverse mapping
        self.assertLessEqual(len(link.multicast_times), 3, "only the shared records: per record")
        web = self.services[5]
        before = self.responder.counters["suppressed.rate-limit"]
        self.query(Question(web.name, TYPE_SRV), index=2)
        self.clock.advance(0.2)
        self.assertEqual([s for s in self.transport.take() if s.multicast], [])
        self.assertEqual(self.responder.counters["suppressed.rate-limit"], before + 1)
        self.query(Question(web.name, TYPE_SRV, unicast=True), index=2)
        (reply,) = self.transport.take()
        self.assertFalse(reply.multicast)
        self.clock.advance(1.5)  # past the second announcement, and 1 s more
        self.transport.take()
        self.clock.advance(1.0)
        self.query(Question(web.name, TYPE_SRV), index=2)
        self.clock.advance(0.2)
        (answer,) = self.transport.take()
        self.assertTrue(answer.multicast)
        self.assertEqual([r.rtype for r in answer.message.answers], [TYPE_SRV])


class RegistrationClockTests(unittest.TestCase):
    def test_thousands_register_in_one_probe_batch(self) -> None:
        """
        3,000 services registered together: one batch, every Deferred
        fired after three probe rounds and the first announcement.
        """
        clock = Clock()
        transport = RecordingTransport([make_interface("eth0", 2, "10.0.0.5/24")], clock)
        responder = Responder(transport, clock, "bench")
        responder.start()
        for _ in range(12):
            clock.advance(0.25)
        transport.take()
        done = []
        for n in range(3000):
            responder.register(ServiceInfo(f"I {n}", "_bench._tcp", 1024 + n)).addCallback(done.append)
        for _ in range(5):
            clock.advance(0.25)
        self.assertEqual(len(done), 3000)
        sent = transport.take()
        self.assertTrue(all(len(s.data) <= 1472 for s in sent))
        self.assertEqual(responder.counters["probes.resplit"], 0)
