"""
What the querier's Clock tests share: a fake transport that records what
would be sent, a listener that records what it is told, and a test case
with a L{Clock}-driven L{Querier} and helpers to feed it traffic.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    Message,
    TYPE_A,
    a_record,
    join_name,
    name_from_text,
    nsec_record,
    parse,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.querier import Querier, ResolvedService

ETH0 = NetworkInterface("eth0", 2, mtu=1500, ipv4=(ipaddress.IPv4Interface("192.168.1.10/24"),))
WLAN0 = NetworkInterface("wlan0", 3, mtu=1500, ipv4=(ipaddress.IPv4Interface("10.0.0.5/24"),))
PEER = {ETH0.index: "192.168.1.50", WLAN0.index: "10.0.0.50"}

HTTP = name_from_text("_http._tcp.local")
WEB = join_name("Web", HTTP)
PEERHOST = name_from_text("peer.local")


class FakeTransport:
    """
    Stands in for L{twisted_mdns.transport.InterfaceTransport}: the
    interfaces we run on, and a list of what was sent.
    """

    def __init__(self, *interfaces: NetworkInterface) -> None:
        self.interfaces = {i.index: i for i in interfaces}
        self.sent: list[tuple[bytes, int, object]] = []

    def send(self, datagram: bytes, interface, destination=None) -> bool:
        index = interface if isinstance(interface, int) else interface.index
        self.sent.append((datagram, index, destination))
        return index in self.interfaces

    def messages(self, ifindex: int | None = None) -> list[Message]:
        return [parse(d) for d, i, _ in self.sent if ifindex is None or i == ifindex]

    def questions(self, ifindex: int | None = None) -> list[list[tuple[str, int, bool]]]:
        return [
            [(b".".join(q.name).decode(), q.qtype, q.unicast) for q in m.questions]
            for m in self.messages(ifindex)
        ]


def context(iface: NetworkInterface, destination: str = "224.0.0.251") -> InterfaceContext:
    return InterfaceContext(iface.index, iface.name, destination, iface)


def service_records(
    port: int = 8080, txt=(b"path=/",), address: str = "192.168.1.50", ttl: int = 4500,
    host_ttl: int = 120, instance: str = "Web",
):
    name = join_name(instance, HTTP)
    return [
        ptr_record(HTTP, name, ttl),
        srv_record(name, PEERHOST, port, host_ttl),
        txt_record(name, list(txt), ttl),
        a_record(PEERHOST, address, host_ttl),
    ]


def only_ipv4(host=PEERHOST, ttl: int = 120):
    """
    The NSEC record an RFC 6762 §6.2 responder with IPv4 addresses only
    adds to its A records: "I have no AAAA".
    """
    return nsec_record(host, [TYPE_A], ttl)


class Recorder:
    """
    A service listener that records every call.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ResolvedService, NetworkInterface]] = []

    def service_added(self, service, interface) -> None:
        self.calls.append(("added", service, interface))

    def service_removed(self, service, interface) -> None:
        self.calls.append(("removed", service, interface))

    def service_updated(self, service, interface) -> None:
        self.calls.append(("updated", service, interface))

    def events(self) -> list[tuple[str, str, str]]:
        return [(e, s.instance, i.name) for e, s, i in self.calls]


class QuerierTestCase(unittest.TestCase):
    interfaces = (ETH0,)

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeTransport(*self.interfaces)
        self.counters: Counter = Counter()
        self.querier = Querier(
            self.transport, self.clock, self.counters, random=random.Random(3)
        )
        self.addCleanup(self.stop_and_check)

    def stop_and_check(self) -> None:
        self.querier.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [], "timers left after stop()")

    def respond(self, records, iface: NetworkInterface = ETH0, source: str | None = None,
                flags: int = FLAG_QR | FLAG_AA) -> None:
        message = Message(flags=flags, answers=list(records))
        self.querier.response_received(message, (source or PEER[iface.index], 5353), context(iface))

    def other_host_asks(self, questions, known=(), iface: NetworkInterface = ETH0,
                        source: str | None = None, flags: int = 0) -> None:
        message = Message(flags=flags, questions=list(questions), answers=list(known))
        self.querier.query_received(message, (source or PEER[iface.index], 5353), context(iface))

    def send_times(self, run_for: float, step: float = 0.01) -> list[float]:
        """
        Advance the clock in small steps; the times at which packets went
        out.
        """
        times = []
        for _ in range(int(run_for / step)):
            before = len(self.transport.sent)
            self.clock.advance(step)
            times += [self.clock.seconds()] * (len(self.transport.sent) - before)
        return times
