"""
L{twisted_mdns.proxy.names}: labels holding dots or backslashes carried
through C{twisted.names} (RFC 1035 §5.1 presentation text, real labels on
the wire), checked by parsing what it encodes with dnslib.
"""

from __future__ import annotations

import struct

import dnslib
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.names import dns
from twisted.trial.unittest import TestCase

from twisted_mdns.proxy.names import (
    LabelName,
    dns_name,
    needs_labels,
    parse_presentation,
    presentation,
    question_labels,
)

DOTTED = (b"Printer v2.1", b"_ipp", b"_tcp", b"b", b"lab")
labels = st.lists(st.binary(min_size=1, max_size=20), min_size=0, max_size=6).map(tuple)


def encoded(*records: dns.RRHeader, question: dns.Name | None = None) -> dnslib.DNSRecord:
    message = dns.Message(id=7, answer=1)
    if question is not None:
        query = dns.Query(b"x", dns.PTR)
        query.name = question
        message.queries = [query]
    message.answers = list(records)
    return dnslib.DNSRecord.parse(message.toStr())


class PresentationTests(TestCase):
    def test_escapes(self):
        self.assertEqual(presentation((b"a.b", b"c\\d", b"e")), b"a\\.b.c\\\\d.e")
        self.assertEqual(parse_presentation(b"a\\.b.c\\\\d.e."), (b"a.b", b"c\\d", b"e"))

    def test_decimal_escape_and_root(self):
        self.assertEqual(parse_presentation(b"My\\032Web\\046x.local"), (b"My Web.x", b"local"))
        self.assertEqual(parse_presentation(b""), ())
        self.assertEqual(parse_presentation(b"."), ())
        self.assertEqual(parse_presentation(b"a.b"), (b"a", b"b"))

    @settings(max_examples=300, deadline=None)
    @given(labels)
    def test_round_trip(self, name):
        self.assertEqual(parse_presentation(presentation(name)), name)

    def test_plain_names_stay_plain(self):
        plain = dns_name((b"web", b"_http", b"_tcp"))
        self.assertIs(type(plain), dns.Name)
        self.assertEqual(plain.name, b"web._http._tcp")
        self.assertIsInstance(dns_name(DOTTED), LabelName)
        self.assertFalse(needs_labels((b"a b", b"c")))
        self.assertTrue(needs_labels((b"a\\b",)))


class EncodingTests(TestCase):
    def test_dotted_label_is_one_label(self):
        ptr = dns.Record_PTR(b"", 10)
        ptr.name = dns_name(DOTTED)
        srv = dns.RRHeader(b"", dns.SRV, dns.IN, 10, dns.Record_SRV(0, 0, 631, b"host.b.lab", 10))
        srv.name = dns_name(DOTTED)
        parsed = encoded(dns.RRHeader(b"_ipp._tcp.b.lab", dns.PTR, dns.IN, 10, ptr), srv,
                         question=LabelName(DOTTED))
        self.assertEqual(parsed.q.qname.label, DOTTED)
        self.assertEqual(parsed.rr[0].rdata.label.label, DOTTED)
        self.assertEqual(parsed.rr[1].rname.label, DOTTED)
        self.assertEqual(parsed.rr[1].rdata.target.label, (b"host", b"b", b"lab"))

    def test_compression_shared_with_plain_names(self):
        """
        The dotted name's suffix points at the plain owner name before it,
        and a later plain name points into the dotted one: one table.
        """
        ptr = dns.Record_PTR(b"", 10)
        ptr.name = LabelName(DOTTED)
        later = dns.RRHeader(b"Printer v2\\.1._ipp._tcp.b.lab", dns.A, dns.IN, 10, dns.Record_A("10.0.0.1"))
        later.name = LabelName(DOTTED)
        owner = dns.RRHeader(b"_ipp._tcp.b.lab", dns.PTR, dns.IN, 10, ptr)
        message = dns.Message(id=7, answer=1)
        message.answers = [owner, later]
        data = message.toStr()
        # The owner in full once; the PTR target is one new label and a
        # pointer; the A record's owner is a pointer only.
        self.assertEqual(data.count(b"_ipp"), 1)
        self.assertEqual(data.count(b"Printer v2.1"), 1)
        parsed = dnslib.DNSRecord.parse(data)
        self.assertEqual(parsed.rr[0].rdata.label.label, DOTTED)
        self.assertEqual(parsed.rr[1].rname.label, DOTTED)

    def test_not_for_decoding(self):
        self.assertRaises(NotImplementedError, LabelName(DOTTED).decode, None)


class QuestionLabelsTests(TestCase):
    def query(self, wire_name: bytes) -> bytes:
        return struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + wire_name + b"\x00\x0c\x00\x01"

    def test_reads_labels(self):
        self.assertEqual(question_labels(self.query(b"\x06My.Web\x05local\x00")), (b"My.Web", b"local"))
        self.assertEqual(question_labels(self.query(b"\x00")), ())

    def test_refuses_what_it_cannot_read(self):
        self.assertIsNone(question_labels(self.query(b"\xc0\x0c")))
        self.assertIsNone(question_labels(self.query(b"\x05ab")[:-4]))
        self.assertIsNone(question_labels(b"\x00" * 11))
        too_long = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"
        self.assertIsNone(question_labels(self.query(too_long)))
