"""
Tests for the receive path of L{twisted_mdns.message}: L{parse} decodes
names itself and keeps rdata as canonical bytes, building dnslib objects
only when asked; the records it makes must be the same records (equal,
same hash, same rdata) as those built with the record helpers, and what it
refuses it refuses with L{MessageError}.
"""

from __future__ import annotations

import struct

from dnslib import A
from twisted.trial import unittest

from twisted_mdns.dnsvalues import name_wire
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Message,
    MessageError,
    Question,
    Record,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    nsec_record,
    nsec_types,
    pack,
    pack_one,
    parse,
    ptr_record,
    ptr_target,
    srv_record,
    srv_target,
    txt_record,
    txt_strings,
)

TYPE = name_from_text("_airplay._tcp.local")
INSTANCE = join_name("Living Room.TV (2)", TYPE)
HOST = name_from_text("Apple-TV.local")


def records() -> list[Record]:
    return [
        ptr_record(TYPE, INSTANCE, 4500),
        srv_record(INSTANCE, HOST, 7000, 120),
        txt_record(INSTANCE, [b"model=AppleTV6,2", b"", b"flags=0x44"], 4500),
        a_record(HOST, "10.1.2.3", 120),
        aaaa_record(HOST, "fe80::1:2", 120),
        nsec_record(HOST, [TYPE_A, 28], 120),
    ]


def one_packet() -> bytes:
    (data,) = pack(flags=FLAG_QR | FLAG_AA, answers=records())
    return data


WEB_TYPE = name_from_text("_http._tcp.local")


class ParseTests(unittest.TestCase):
    def test_same_records_as_built(self) -> None:
        """
        Parsed records equal the records they were packed from, hash alike,
        keep the cache-flush bit, the TTL and the names' case, and their
        rdata (built on demand) reads as the helpers' does.
        """
        built = records()
        parsed = parse(one_packet()).answers
        self.assertEqual(parsed, built)
        self.assertEqual([hash(r) for r in parsed], [hash(r) for r in built])
        for mine, theirs in zip(parsed, built):
            self.assertEqual(mine.name, theirs.name)
            self.assertEqual(mine.key, tuple(label.lower() for label in theirs.name))
            self.assertEqual((mine.ttl, mine.cache_flush, mine.rclass), (theirs.ttl, theirs.cache_flush, theirs.rclass))
            self.assertEqual(mine.data, theirs.data)
            self.assertEqual(repr(mine.rdata), repr(theirs.rdata))
        self.assertEqual(ptr_target(parsed[0]), INSTANCE)
        self.assertEqual(srv_target(parsed[1]), HOST)
        self.assertEqual(parsed[1].rdata.port, 7000)
        self.assertEqual(txt_strings(parsed[2]), [b"model=AppleTV6,2", b"", b"flags=0x44"])
        self.assertEqual(str(parsed[3].rdata), "10.1.2.3")
        self.assertEqual(nsec_types(parsed[5]), {TYPE_A, 28})

    def test_rdata_built_only_when_read(self) -> None:
        """
        A received record carries its rdata as bytes; the dnslib object is
        made the first time something reads C{rdata}, and kept.
        """
        record = parse(one_packet()).answers[3]
        self.assertIsNone(record._rdata)
        rdata = record.rdata
        self.assertIsInstance(rdata, A)
        self.assertIs(record.rdata, rdata)

    def test_names_interned(self) -> None:
        """
        The same name, received twice (in two datagrams, at different
        offsets), is one tuple: cached records share their names.
        """
        first = parse(one_packet()).answers
        second = parse(pack(flags=FLAG_QR, answers=records()[::-1])[0]).answers[::-1]
        self.assertIs(first[1].name, second[1].name)
        self.assertIs(first[1].key, second[2].key)
        self.assertIs(first[0].data, second[0].data)  # the PTR target's wire form

    def test_questions(self) -> None:
        """
        Questions keep the QU bit apart from the class and compare by value.
        """
        (data,) = pack(questions=[Question(INSTANCE, TYPE_SRV, True), Question(HOST, TYPE_A)])
        questions = parse(data).questions
        self.assertEqual(questions, [Question(INSTANCE, TYPE_SRV, True), Question(HOST, TYPE_A)])
        self.assertEqual(hash(questions[0]), hash(Question(INSTANCE, TYPE_SRV, True)))
        self.assertEqual(questions[0].key, tuple(label.lower() for label in INSTANCE))
        self.assertTrue(questions[0].matches(records()[1]))

    def test_ttl_with_top_bit_is_zero(self) -> None:
        """
        RFC 2181 s8: a TTL with its top bit set counts as zero.
        """
        data = bytearray(pack(flags=FLAG_QR, answers=[a_record(HOST, "10.0.0.1", 120)])[0])
        at = data.index(struct.pack("!I", 120))
        data[at : at + 4] = struct.pack("!I", 0x80000010)
        self.assertEqual(parse(bytes(data)).answers[0].ttl, 0)

    def test_with_ttl_keeps_identity(self) -> None:
        record = parse(one_packet()).answers[1]
        goodbye = record.with_ttl(0)
        self.assertEqual(goodbye, record)
        self.assertEqual(goodbye.ttl, 0)
        # The copy shares the values, not copies of them (a goodbye of a
        # cached record costs no bytes).
        self.assertIs(goodbye.data, record.data)
        self.assertIs(goodbye.key, record.key)
        self.assertEqual(goodbye.identity, record.identity)
        self.assertFalse(record.with_flush(False).cache_flush)


def _packet(rtype: int, rdata: bytes) -> bytes:
    owner = b"\x04host\x05local\x00"
    return (struct.pack("!HHHHHH", 0, FLAG_QR, 0, 1, 0, 0) + owner
            + struct.pack("!HHIH", rtype, 1, 120, len(rdata)) + rdata)


class InternTests(unittest.TestCase):
    def test_same_message_either_way(self) -> None:
        """
        C{intern=False} parses to the same message and leaves the shared
        tables as they were.
        """
        from twisted_mdns import decoding

        data = pack_one(flags=FLAG_QR, answers=[a_record(name_from_text("only-here.local"), "10.0.0.1", 120)])
        decoding._NAMES.clear()
        quiet = parse(data, intern=False)
        self.assertEqual(len(decoding._NAMES), 0)
        self.assertEqual(parse(data), quiet)
        self.assertIn(name_wire(name_from_text("only-here.local")), decoding._NAMES)


class LazyKnownAnswerTests(unittest.TestCase):
    """
    A query's known answers are decoded when first read (issue 13): the
    message equals the eagerly decoded one, shape errors still refuse the
    datagram at once, and what only decoding finds makes them absent,
    reported.
    """

    def query(self, *known: Record) -> bytes:
        return pack_one(questions=[Question(WEB_TYPE, TYPE_PTR)], answers=list(known))

    def test_same_as_eager(self) -> None:
        known = [ptr_record(WEB_TYPE, join_name(f"Web {n}", WEB_TYPE), 4500) for n in range(5)]
        lazy = parse(self.query(*known))
        self.assertNotIn("answers", vars(lazy))  # not decoded yet
        self.assertFalse(lazy.is_probe)
        self.assertEqual(lazy.authorities, [])
        eager = Message(lazy.id, lazy.flags, lazy.questions, known, [], [])
        self.assertEqual(lazy, eager)
        self.assertEqual(eager, lazy)
        self.assertEqual([ptr_target(r) for r in lazy.answers], [ptr_target(r) for r in known])

    def test_shape_errors_refused_at_once(self) -> None:
        data = self.query(ptr_record(WEB_TYPE, join_name("Web", WEB_TYPE), 4500))
        for cut in (1, 5, 11):
            self.assertRaises(MessageError, parse, data[:-cut])
        inflated = data[:6] + struct.pack("!H", 3) + data[8:]  # ANCOUNT 3, one record
        self.assertRaises(MessageError, parse, inflated)

    def test_bad_name_found_when_read(self) -> None:
        """
        A known answer whose PTR target is not UTF-8: the query parses, its
        questions are there; reading the known answers finds them absent
        and reports why.
        """
        data = bytearray(self.query(ptr_record(WEB_TYPE, join_name("Web", WEB_TYPE), 4500)))
        at = data.index(b"\x03Web")
        data[at + 1 : at + 4] = b"\xff\xfe\xfd"
        reported: list[str] = []
        message = parse(bytes(data), on_malformed=reported.append)
        self.assertEqual(message.questions[0].name, WEB_TYPE)
        self.assertEqual(reported, [])
        self.assertEqual((message.answers, message.additionals), ([], []))
        self.assertEqual(len(reported), 1)
        self.assertIn("UTF-8", reported[0])
        self.assertEqual(message.answers, [])  # reported once
        self.assertEqual(len(reported), 1)

    def test_responses_and_probes_decoded_at_once(self) -> None:
        record = ptr_record(WEB_TYPE, join_name("Web", WEB_TYPE), 4500)
        response = parse(pack_one(flags=FLAG_QR | FLAG_AA, answers=[record]))
        self.assertIn("answers", vars(response))
        probe = parse(pack_one(questions=[Question(WEB_TYPE, TYPE_PTR)],
                               authorities=[record], answers=[record]))
        self.assertIn("answers", vars(probe))
        self.assertTrue(probe.is_probe)


class RefusedTests(unittest.TestCase):
    """
    Record data that dnslib would not have parsed is refused, as before the
    receive path did without it.
    """

    def test_a_of_wrong_length(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_A, b"\x0a\x00\x00\x01\x02"))
        self.assertRaises(MessageError, parse, _packet(TYPE_A, b"\x0a\x00\x00"))

    def test_txt_strings_past_the_data(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_TXT, b"\x05abc"))

    def test_empty_ptr_and_srv(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_PTR, b""))
        self.assertRaises(MessageError, parse, _packet(TYPE_SRV, b""))

    def test_srv_target_not_ending_with_the_data(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_SRV, b"\x00\x00\x00\x00\x1f\x90\x01a\x00\x00"))

    def test_ptr_pointing_forward(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_PTR, b"\xc0\x30"))

    def test_label_not_utf8(self) -> None:
        self.assertRaises(MessageError, parse, _packet(TYPE_PTR, b"\x02\xff\xfe\x00"))

    def test_empty_a_kept_as_empty_rdata(self) -> None:
        """
        An empty rdata of a type without names parses, as it did.
        """
        record = parse(_packet(TYPE_A, b"")).answers[0]
        self.assertEqual(record.data, b"")
