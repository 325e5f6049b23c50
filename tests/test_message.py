"""
L{twisted_mdns.message}: parsing and packing mDNS messages, through the
public functions only (C{parse}, C{pack}, C{pack_one}, the record builders
and the attributes of L{Message}, L{Record} and L{Question}).

The hostile datagrams of L{tests.hostile_corpus} are checked here against
the parser alone; L{tests.test_hostile} checks what the responder does with
them.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from dnslib import DNSBuffer, DNSLabel
from dnslib.label import DNSLabelError

from tests import hostile_corpus
from twisted_mdns import message
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    MAX_PACKET,
    TYPE_A,
    TYPE_AAAA,
    TYPE_PTR,
    MessageError,
    Question,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    name_key,
    name_to_text,
    nsec_record,
    nsec_types,
    pack,
    pack_one,
    packet_limit,
    parse,
    ptr_record,
    ptr_target,
    srv_record,
    srv_target,
    txt_record,
    txt_strings,
)

HOST = name_from_text("lab.local")
HTTP = name_from_text("_http._tcp.local")
WEB = join_name("My Web (2)", HTTP)
HEADER = struct.Struct("!HHHHHH")


def roundtrip(**kwargs):
    packets = pack(**kwargs)
    return [parse(p) for p in packets]


class NameTests(unittest.TestCase):
    def test_instance_label_keeps_dots_spaces_and_utf8(self) -> None:
        name = join_name("Büro. Drucker (2)", HTTP)
        self.assertEqual(name[0], "Büro. Drucker (2)".encode())
        (msg,) = roundtrip(flags=FLAG_QR, answers=[ptr_record(HTTP, name, 4500)])
        self.assertEqual(ptr_target(msg.answers[0]), name)
        self.assertEqual(name_to_text(name), "Büro\\. Drucker (2)._http._tcp.local.")

    def test_names_compare_ignoring_ascii_case(self) -> None:
        self.assertEqual(name_key(name_from_text("LAB.Local")), name_key(HOST))
        self.assertEqual(a_record(name_from_text("LAB.local"), "10.0.0.1", 120), a_record(HOST, "10.0.0.1", 120))

    def test_root(self) -> None:
        self.assertEqual(name_from_text("."), ())
        self.assertEqual(name_to_text(()), ".")


class RoundTripTests(unittest.TestCase):
    def test_every_record_type(self) -> None:
        records = [
            a_record(HOST, "10.0.0.5", 120),
            aaaa_record(HOST, "fe80::1", 120),
            ptr_record(HTTP, WEB, 4500),
            srv_record(WEB, HOST, 8080, 120, priority=1, weight=2),
            txt_record(WEB, [b"path=/", b"flag"], 4500),
            nsec_record(HOST, [TYPE_A, TYPE_AAAA], 120),
        ]
        (msg,) = roundtrip(ident=0, flags=FLAG_QR | FLAG_AA, answers=records)
        self.assertTrue(msg.is_response)
        self.assertEqual(msg.answers, records)
        self.assertEqual([r.ttl for r in msg.answers], [120, 120, 4500, 120, 4500, 120])
        self.assertEqual(str(msg.answers[0].rdata), "10.0.0.5")
        self.assertEqual(srv_target(msg.answers[3]), HOST)
        self.assertEqual(msg.answers[3].rdata.port, 8080)
        self.assertEqual(txt_strings(msg.answers[4]), [b"path=/", b"flag"])
        self.assertEqual(nsec_types(msg.answers[5]), {TYPE_A, TYPE_AAAA})

    def test_empty_txt_is_one_empty_string(self) -> None:
        # RFC 6763 §6.1: an empty TXT record holds a single zero byte.
        record = txt_record(WEB, [], 4500)
        packet = pack_one(flags=FLAG_QR, answers=[record])
        self.assertTrue(packet.endswith(b"\x00\x01\x00"))
        self.assertEqual(txt_strings(parse(packet).answers[0]), [b""])

    def test_header_fields(self) -> None:
        packet = pack_one(ident=0x1234, flags=FLAG_QR | FLAG_AA, questions=[Question(HOST, TYPE_A)])
        msg = parse(packet)
        self.assertEqual(msg.id, 0x1234)
        self.assertEqual(msg.opcode, 0)
        self.assertEqual(msg.rcode, 0)
        self.assertFalse(msg.truncated)
        self.assertEqual(msg.questions, [Question(HOST, TYPE_A)])

    def test_a_probe_is_a_query_with_authorities(self) -> None:
        (msg,) = roundtrip(
            questions=[Question(HOST, 255, unicast=True)],
            authorities=[a_record(HOST, "10.0.0.5", 120)],
        )
        self.assertTrue(msg.is_probe)
        self.assertEqual(msg.records(), [a_record(HOST, "10.0.0.5", 120)])
        (answer,) = roundtrip(flags=FLAG_QR, authorities=[a_record(HOST, "10.0.0.5", 120)])
        self.assertFalse(answer.is_probe)

    def test_ttl_with_top_bit_reads_as_zero(self) -> None:
        # RFC 2181 §8.
        data = bytearray(pack_one(flags=FLAG_QR, answers=[a_record(HOST, "10.0.0.5", 120)]))
        ttl_at = len(data) - 4 - 2 - 4
        data[ttl_at : ttl_at + 4] = struct.pack("!I", 0x80000001)
        self.assertEqual(parse(bytes(data)).answers[0].ttl, 0)

    def test_record_identity_ignores_ttl_and_flush(self) -> None:
        one = a_record(HOST, "10.0.0.5", 120)
        self.assertEqual(one, one.with_ttl(0))
        self.assertEqual(one, one.with_flush(False))
        self.assertNotEqual(one, a_record(HOST, "10.0.0.6", 120))
        self.assertEqual(len({one, one.with_ttl(0)}), 1)


class ClassTopBitTests(unittest.TestCase):
    """
    The class field's top bit: QU on questions (RFC 6762 §5.4), cache-flush on
    records (§10.2); the class itself is the other 15 bits.
    """

    def test_qu_bit(self) -> None:
        packet = pack_one(questions=[Question(HOST, TYPE_A, unicast=True)])
        self.assertEqual(packet[-2:], b"\x80\x01")
        (q,) = parse(packet).questions
        self.assertTrue(q.unicast)
        self.assertEqual(q.qclass, 1)

    def test_cache_flush_bit(self) -> None:
        packet = pack_one(flags=FLAG_QR, answers=[a_record(HOST, "10.0.0.5", 120, cache_flush=True)])
        (record,) = parse(packet).answers
        self.assertTrue(record.cache_flush)
        self.assertEqual(record.rclass, 1)

    def test_shared_records_have_no_flush_bit(self) -> None:
        # §10.2: PTR records are shared.
        (record,) = parse(pack_one(flags=FLAG_QR, answers=[ptr_record(HTTP, WEB, 4500)])).answers
        self.assertFalse(record.cache_flush)

    def test_unknown_class_with_top_bit_parses(self) -> None:
        data = hostile_corpus.header(qd=1) + hostile_corpus.question(hostile_corpus.wire_name(b"x", b"local"), TYPE_A, 0x80FE)
        (q,) = parse(data).questions
        self.assertTrue(q.unicast)
        self.assertEqual(q.qclass, 0xFE)


class PackingTests(unittest.TestCase):
    """
    Packing under a size limit (RFC 6762 §17) and the TC bit on queries whose
    known answers continue in another packet (§7.2).
    """

    def known_answers(self, n: int) -> list:
        return [ptr_record(HTTP, join_name(f"Service number {i:03}", HTTP), 4500) for i in range(n)]

    def test_query_split_with_tc_on_all_but_last(self) -> None:
        answers = self.known_answers(60)
        packets = pack(questions=[Question(HTTP, TYPE_PTR)], answers=answers, limit=512)
        self.assertGreater(len(packets), 1)
        self.assertTrue(all(len(p) <= 512 for p in packets))
        messages = [parse(p) for p in packets]
        self.assertEqual([m.truncated for m in messages], [True] * (len(packets) - 1) + [False])
        # The question only in the first; every known answer exactly once.
        self.assertEqual([len(m.questions) for m in messages], [1] + [0] * (len(packets) - 1))
        self.assertEqual([r for m in messages for r in m.answers], answers)

    def test_response_split_without_tc(self) -> None:
        answers = self.known_answers(60)
        packets = pack(flags=FLAG_QR | FLAG_AA, answers=answers, limit=512)
        self.assertGreater(len(packets), 1)
        self.assertFalse(any(parse(p).truncated for p in packets))
        self.assertEqual([r for p in packets for r in parse(p).answers], answers)

    def test_additionals_dropped_where_they_do_not_fit(self) -> None:
        answers = self.known_answers(10)
        extra = [a_record(join_name(f"h{i}", "local"), "10.0.0.1", 120) for i in range(100)]
        (packet,) = pack(flags=FLAG_QR, answers=answers, additionals=extra, limit=512)
        msg = parse(packet)
        self.assertEqual(msg.answers, answers)
        self.assertLess(len(msg.additionals), 100)
        self.assertLessEqual(len(packet), 512)

    def test_pack_one_sets_tc_when_answers_are_left_out(self) -> None:
        # RFC 6762 §6.7 legacy replies are one datagram; §18.5 TC if incomplete.
        packet = pack_one(ident=7, flags=FLAG_QR, answers=self.known_answers(400), limit=512)
        msg = parse(packet)
        self.assertTrue(msg.truncated)
        self.assertLessEqual(len(packet), MAX_PACKET)

    def test_oversized_record_sent_alone(self) -> None:
        big = txt_record(WEB, [b"x" * 255] * 8, 4500)
        packets = pack(flags=FLAG_QR, answers=[a_record(HOST, "10.0.0.5", 120), big], limit=512)
        self.assertEqual(len(packets), 2)
        self.assertEqual(parse(packets[1]).answers, [big])

    def test_questions_that_do_not_fit_are_an_error(self) -> None:
        questions = [Question(join_name(f"q{i}" * 20, "local"), TYPE_A) for i in range(40)]
        self.assertRaises(MessageError, pack, questions=questions, limit=512)

    def test_packet_limit_follows_the_mtu(self) -> None:
        self.assertEqual(packet_limit(1500), 1472)
        self.assertEqual(packet_limit(None), 1472)
        self.assertEqual(packet_limit(65536), MAX_PACKET)
        self.assertEqual(packet_limit(100), 512)

    def test_names_compressed(self) -> None:
        answers = self.known_answers(5)
        (packet,) = pack(flags=FLAG_QR, answers=answers)
        # "_http._tcp.local" is written once, then pointed to.
        self.assertEqual(packet.count(b"\x05_http"), 1)


class PackBufferTests(unittest.TestCase):
    """
    L{message.PackBuffer} writes what dnslib's C{DNSBuffer} writes, byte
    for byte, only faster.
    """

    def both(self, **kwargs) -> tuple[list[bytes], list[bytes]]:
        ours = pack(**kwargs)
        self.patch(message, "PackBuffer", DNSBuffer)
        theirs = pack(**kwargs)
        self.patch(message, "PackBuffer", message.PackBuffer)
        return ours, theirs

    def test_same_bytes_as_dnslib(self) -> None:
        """
        Every record type, names sharing suffixes in every position (a
        question, owners, PTR and SRV targets), UTF-8 and dotted labels,
        across several datagrams.
        """
        other = join_name("Ünïcode.dots and spaces", HTTP)
        records = [
            a_record(HOST, "10.0.0.5", 120),
            aaaa_record(HOST, "fe80::1", 120, cache_flush=True),
            ptr_record(HTTP, WEB, 4500),
            ptr_record(HTTP, other, 4500),
            ptr_record(name_from_text("5.0.0.10.in-addr.arpa"), HOST, 120, cache_flush=True),
            srv_record(WEB, HOST, 8080, 120, priority=1, weight=2),
            srv_record(other, name_from_text("other.local"), 80, 120),
            txt_record(WEB, [b"path=/", b"flag"], 4500),
            nsec_record(HOST, [TYPE_A, TYPE_AAAA], 120),
        ] + PackingTests.known_answers(None, 40)  # type: ignore[arg-type]
        for kwargs in (
            dict(flags=FLAG_QR | FLAG_AA, answers=records, additionals=records[:3], limit=512),
            dict(questions=[Question(WEB, 255, True), Question(HOST, 255)], authorities=records[:6]),
            dict(ident=7, questions=[Question(HTTP, TYPE_PTR)], answers=records, limit=700),
        ):
            ours, theirs = self.both(**kwargs)
            self.assertEqual(ours, theirs)
            self.assertGreater(sum(len(p) for p in ours), 0)

    def test_too_long_names_refused_alike(self) -> None:
        long_label = Question((b"x" * 64, b"local"), TYPE_A)
        long_name = Question(tuple([b"y" * 50] * 5) + (b"local",), TYPE_A)
        for question in (long_label, long_name):
            self.assertRaises(Exception, pack, questions=[question])
            buffer = message.PackBuffer()
            self.assertRaises(DNSLabelError, buffer.encode_name, DNSLabel(list(question.name)))


class HostileTests(unittest.TestCase):
    """
    The parser refuses malformed datagrams with L{MessageError} only, and
    parses the valid edge cases (both from L{tests.hostile_corpus}).
    """

    def test_malformed_refused(self) -> None:
        for what, data in hostile_corpus.malformed():
            with self.subTest(what):
                self.assertRaises(MessageError, parse, data)

    def test_well_formed_parsed(self) -> None:
        for what, data in hostile_corpus.well_formed():
            with self.subTest(what):
                parse(data)

    def test_mutations_raise_nothing_else(self) -> None:
        for what, data in hostile_corpus.anything():
            try:
                parse(data)
            except MessageError:
                pass

    def test_short(self) -> None:
        self.assertRaises(MessageError, parse, b"\x00" * 11)

    def test_pointer_loop(self) -> None:
        # A question whose name is a pointer to itself.
        data = HEADER.pack(0, 0, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
        self.assertRaises(MessageError, parse, data)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=600))
    def test_random_bytes(self, data: bytes) -> None:
        try:
            msg = parse(data)
        except MessageError:
            return
        # Whatever parses can be packed again.
        pack(ident=msg.id, flags=msg.flags & ~FLAG_TC, questions=msg.questions[:1])
