"""
The fixture the responder's test modules share: a real L{Responder},
protocol and message code, a L{Clock} for time and a recording transport at
the network edge.
"""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mdns.message import (
    Question,
    name_from_text,
    pack_one,
)
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import Responder
from twisted_mdns.testing import RecordingTransport, make_interface

ETH0 = make_interface("eth0", 2, "10.0.0.5/24")
WLAN0 = make_interface("wlan0", 3, "192.168.1.100/24")
LAB = name_from_text("lab.local")
WEB = ServiceInfo("My Web", "_http._tcp", 8080, {"path": "/"})
PEER_A = ("10.0.0.9", 5353)
PEER_B = ("192.168.1.9", 5353)


class ResponderCase(unittest.TestCase):
    interfaces = (ETH0, WLAN0)

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = RecordingTransport(self.interfaces, self.clock)
        self.responder = Responder(self.transport, self.clock, "lab", rng=random.Random(7))
        self.protocol = MDNSProtocol([self.responder], self.responder.counters)
        self.protocol.fast_path = self.responder.fast_path

    def receive(self, data: bytes, source, index: int, destination: str = "224.0.0.251") -> None:
        self.protocol.datagramReceivedOn(data, source, self.transport.context(index, destination))

    def query(self, *questions: Question, index=2, source=PEER_A, known=(), flags=0, ident=0, destination="224.0.0.251") -> None:
        data = pack_one(ident=ident, flags=flags, questions=list(questions), answers=list(known))
        self.receive(data, source, index, destination)

    def settle(self) -> None:
        """
        Start and let probing and both announcements finish.
        """
        self.results = []
        self.responder.start().addCallback(self.results.append)
        self.clock.advance(0.3)
        for _ in range(40):
            self.clock.advance(0.25)
        self.transport.take()

    def run_for(self, seconds: float, step: float = 0.005) -> None:
        """
        Advance in small steps: L{Clock.advance} runs a call scheduled during
        the advance relative to the advance's end, so one big step would
        stretch chained delays.
        """
        for _ in range(round(seconds / step)):
            self.clock.advance(step)

    def answers(self, sent):
        return [(r.name, r.rtype, r.rdata) for s in sent for r in s.message.answers]


class SettledCase(ResponderCase):
    """
    The host name and C{My Web} claimed and announced on both links, the
    announcements over and rate limits expired.
    """

    def setUp(self) -> None:
        super().setUp()
        self.settle()
        self.responder.register(WEB)
        for _ in range(20):
            self.clock.advance(0.25)
        self.transport.take()
        self.clock.advance(5)
