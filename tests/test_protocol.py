"""
L{twisted_mdns.protocol}: what the protocol lets through to the responder
and the querier, and what it drops and counts: malformed datagrams, other
opcodes, off-link sources (RFC 6762 §11), responses not from port 5353
(§6), and handlers that raise.

Datagrams are real wire bytes (packed by L{twisted_mdns.message}); the
arrival context is the one the port would build (L{InterfaceContext}).
"""

from __future__ import annotations

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests import hostile_corpus
from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.dnsvalues import name_wire
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_A,
    Question,
    a_record,
    name_from_text,
    pack_one,
)
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.protocol import MDNSProtocol, source_on_link
from twisted_mdns.testing import make_interface

HOST = name_from_text("peer.local")
QUERY = pack_one(questions=[Question(HOST, TYPE_A)])
RESPONSE = pack_one(flags=FLAG_QR | FLAG_AA, answers=[a_record(HOST, "10.0.0.9", 120)])
ETH0 = make_interface("eth0", 2, "10.0.0.5/24")
CONTEXT = InterfaceContext(2, "eth0", "224.0.0.251", ETH0)
ON_LINK = ("10.0.0.9", 5353)


class Handler:
    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    def query_received(self, message, source, context) -> None:
        self.log.append((self.name, "query", message, source, context))

    def response_received(self, message, source, context) -> None:
        self.log.append((self.name, "response", message, source, context))


class Failing(Handler):
    def query_received(self, message, source, context) -> None:
        raise RuntimeError("handler bug")

    response_received = query_received


class InterningTests(unittest.TestCase):
    """
    Names of other hosts' datagrams are kept in the parser's shared tables;
    those of our own, looped back, are not (L{twisted_mdns.decoding.parse}).
    """

    def setUp(self) -> None:
        from twisted_mdns import decoding

        self.tables = (decoding._NAMES,)
        for table in self.tables:
            table.clear()
        self.log: list = []
        self.protocol = MDNSProtocol([Handler("h", self.log)], Counters())

    def test_own_datagram_not_interned(self) -> None:
        self.protocol.datagramReceivedOn(RESPONSE, ("10.0.0.5", 5353), CONTEXT)
        self.assertEqual([len(t) for t in self.tables], [0])
        [(_, kind, message, _, _)] = self.log
        self.assertEqual((kind, message.answers[0].name), ("response", HOST))

    def test_other_hosts_datagram_interned(self) -> None:
        self.protocol.datagramReceivedOn(RESPONSE, ON_LINK, CONTEXT)
        self.assertIn(name_wire(HOST), self.tables[0])
        self.assertEqual(len(self.log), 1)


class DispatchTests(unittest.TestCase):
    def setUp(self) -> None:
        self.log: list = []
        self.counters = Counters()
        self.protocol = MDNSProtocol([Handler("responder", self.log), Handler("querier", self.log)],
                                     counters=self.counters)

    def receive(self, data: bytes, source=ON_LINK, context: InterfaceContext = CONTEXT) -> None:
        self.protocol.datagramReceivedOn(data, source, context)

    def test_provides(self) -> None:
        self.assertTrue(verifyObject(IPktInfoDatagramProtocol, self.protocol))

    def test_query_to_every_handler_in_order(self) -> None:
        self.receive(QUERY)
        self.assertEqual([(h, kind) for h, kind, *_ in self.log], [("responder", "query"), ("querier", "query")])
        _, _, message, source, context = self.log[0]
        self.assertEqual(message.questions, [Question(HOST, TYPE_A)])
        self.assertEqual((source, context), (ON_LINK, CONTEXT))
        self.assertEqual((self.counters["received"], self.counters["queries"]), (1, 1))

    def test_response(self) -> None:
        self.receive(RESPONSE)
        self.assertEqual([(h, kind) for h, kind, *_ in self.log], [("responder", "response"), ("querier", "response")])
        self.assertEqual(self.log[0][2].answers, [a_record(HOST, "10.0.0.9", 120)])
        self.assertEqual(self.counters["responses"], 1)

    def test_query_from_any_port(self) -> None:
        # Legacy unicast queries (§6.7) come from ephemeral ports.
        self.receive(QUERY, ("10.0.0.9", 41000))
        self.assertEqual(len(self.log), 2)

    def test_response_not_from_5353_dropped(self) -> None:
        # RFC 6762 §6: a response must come from port 5353.
        self.receive(RESPONSE, ("10.0.0.9", 41000))
        self.assertEqual(self.log, [])
        self.assertEqual(self.counters["dropped.response-not-from-5353"], 1)

    def test_other_opcode_dropped(self) -> None:
        data = bytearray(QUERY)
        data[2] |= 2 << 3  # opcode 2 (STATUS)
        self.receive(bytes(data))
        self.assertEqual(self.log, [])
        self.assertEqual(self.counters["dropped.opcode"], 1)

    def test_malformed_dropped_and_counted(self) -> None:
        bad = hostile_corpus.malformed()
        for _, data in bad:
            self.receive(data)
        self.assertEqual(self.log, [])
        self.assertEqual(self.counters["dropped.malformed"], len(bad))
        self.assertEqual(self.counters["received"], len(bad))

    def test_anything_is_one_counted_outcome(self) -> None:
        outcomes = ("queries", "responses", "dropped.malformed", "dropped.opcode",
                    "dropped.off-link", "dropped.response-not-from-5353")
        datagrams = hostile_corpus.anything()
        for _, data in datagrams:
            self.receive(data)
        self.assertEqual(sum(self.counters[k] for k in outcomes), len(datagrams))

    def test_failing_handler_counted_and_others_still_called(self) -> None:
        self.protocol.handlers.insert(0, Failing("broken", self.log))
        self.receive(QUERY)
        self.assertEqual([h for h, *_ in self.log], ["responder", "querier"])
        self.assertEqual(self.counters["errors.handler"], 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class SourceOnLinkTests(unittest.TestCase):
    """
    RFC 6762 §11: a datagram whose source is not on the receiving link is
    neither answered nor cached.
    """

    def setUp(self) -> None:
        self.log: list = []
        self.counters = Counters()
        self.protocol = MDNSProtocol([Handler("h", self.log)], counters=self.counters)

    def test_rule(self) -> None:
        self.assertTrue(source_on_link("10.0.0.200", CONTEXT))
        self.assertFalse(source_on_link("10.0.1.200", CONTEXT))
        # 169.254/16 senders always are on-link, even where we have no
        # link-local address.
        self.assertTrue(source_on_link("169.254.10.20", CONTEXT))
        self.assertFalse(source_on_link("not an address", CONTEXT))

    def test_vanished_interface(self) -> None:
        gone = InterfaceContext(7, "?", "224.0.0.251")
        self.assertFalse(source_on_link("10.0.0.200", gone))
        self.assertTrue(source_on_link("169.254.1.1", gone))

    def test_second_address_of_the_link(self) -> None:
        two = make_interface("eth0", 2, "10.0.0.5/24", "192.168.7.1/24")
        ctx = InterfaceContext(2, "eth0", "224.0.0.251", two)
        self.assertTrue(source_on_link("192.168.7.9", ctx))

    def test_off_link_query_and_response_dropped(self) -> None:
        for data in (QUERY, RESPONSE):
            self.protocol.datagramReceivedOn(data, ("10.9.9.9", 5353), CONTEXT)
        self.assertEqual(self.log, [])
        self.assertEqual(self.counters["dropped.off-link"], 2)

    def test_off_link_unicast_query_dropped(self) -> None:
        # Stricter than the RFC's minimum (decided): unicast too.
        ctx = InterfaceContext(2, "eth0", "10.0.0.5", ETH0)
        self.protocol.datagramReceivedOn(QUERY, ("10.9.9.9", 41000), ctx)
        self.assertEqual(self.log, [])
        self.assertEqual(self.counters["dropped.off-link"], 1)

    def test_link_local_source_accepted(self) -> None:
        self.protocol.datagramReceivedOn(RESPONSE, ("169.254.3.4", 5353), CONTEXT)
        self.assertEqual([kind for _, kind, *_ in self.log], ["response"])
