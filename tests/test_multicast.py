"""
Tests for L{twisted_mdns.multicast}: joining a group on one interface only,
and "discover, then join on the right interface" (a C{.local} name whose A
record is a multicast group, as for ka9q-radio's status streams).
"""

from __future__ import annotations

import ipaddress

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest
from zope.interface import implementer

from tests.netns import NamespaceTestMixin
from tests.support import sleep, wait_until
from tests.test_querier_netns import HostStack, RawResponder
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.message import a_record, name_from_text
from twisted_mdns.multicast import NotResolvedError, listenMulticastOn, resolve_and_listen
from twisted_mdns.netif import NetworkInterface, StaticInterfaceEnumerator
from twisted_mdns.policy import InterfaceValidationError

GROUP = "239.7.7.7"
PORT = 5006


@implementer(IPktInfoDatagramProtocol)
class Collector(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, str, str]] = []

    def datagramReceivedOn(self, datagram, address, context) -> None:
        self.got.append((datagram, address[0], context.name))


class ArgumentTests(unittest.TestCase):
    enumerator = StaticInterfaceEnumerator(
        [NetworkInterface("eth0", 2, ipv4=(ipaddress.IPv4Interface("192.168.1.10/24"),))]
    )

    def test_group_must_be_multicast(self) -> None:
        for bad in ("10.0.0.1", "nonsense", "fd00::1"):
            self.assertRaises(
                ValueError, listenMulticastOn, reactor, bad, PORT, Collector(), "eth0",
                self.enumerator,
            )

    def test_unknown_interface(self) -> None:
        error = self.assertRaises(
            InterfaceValidationError, listenMulticastOn, reactor, GROUP, PORT, Collector(),
            "wlan7", self.enumerator,
        )
        self.assertIn("wlan7", str(error))
        self.assertIn("eth0", str(error))


class MulticastNamespaceTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 20

    def setUp(self) -> None:
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]

    def listen(self, interface, protocol=None):
        protocol = protocol or Collector()
        port = listenMulticastOn(reactor, GROUP, PORT, protocol, interface)
        self.addCleanup(port.stopListening)
        return port, protocol

    def send_from(self, client: str, payload: bytes) -> None:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(payload, (GROUP, PORT))

    @defer.inlineCallbacks
    def test_each_port_hears_its_own_link(self):
        """
        Two ports on the same group and port, one joined on lana (by name),
        one on lanb (by address): each hears only its own link's datagram.
        """
        _, on_a = self.listen("lana")
        _, on_b = self.listen(self.b.host_ip)
        self.send_from("a", b"from-a")
        self.send_from("b", b"from-b")
        yield wait_until(lambda: on_a.got and on_b.got, timeout=3, what="both datagrams")
        yield sleep(0.2)
        self.assertEqual(on_a.got, [(b"from-a", self.a.client_ip, "lana")])
        self.assertEqual(on_b.got, [(b"from-b", self.b.client_ip, "lanb")])

    @defer.inlineCallbacks
    def test_resolve_then_listen_on_the_answering_interface(self):
        """
        hf-status.local is a group published on link B: we listen there and
        hear the stream from B, and not the same group and port from A,
        even with another program listening to it on lana.
        """
        stack = HostStack()
        self.addCleanup(stack.close)
        status = name_from_text("hf-status.local")
        responder = RawResponder(self.topology, "b", [a_record(status, GROUP, 120)])
        self.addCleanup(responder.close)
        _, elsewhere = self.listen("lana")  # the host now has the group on lana too
        stream = Collector()
        port, iface, group = yield resolve_and_listen(
            stack.querier, "hf-status", PORT, stream, timeout=3
        )
        self.addCleanup(port.stopListening)
        self.assertEqual((iface.name, group), ("lanb", GROUP))
        self.send_from("a", b"status-from-a")
        self.send_from("b", b"status-from-b")
        yield wait_until(lambda: stream.got and elsewhere.got, timeout=3, what="the stream")
        yield sleep(0.2)
        self.assertEqual(stream.got, [(b"status-from-b", self.b.client_ip, "lanb")])
        self.assertEqual(elsewhere.got, [(b"status-from-a", self.a.client_ip, "lana")])

    @defer.inlineCallbacks
    def test_not_a_group_or_no_answer(self):
        stack = HostStack()
        self.addCleanup(stack.close)
        host = name_from_text("plainhost.local")
        responder = RawResponder(self.topology, "b", [a_record(host, self.b.client_ip, 120)])
        self.addCleanup(responder.close)
        error = yield self.assertFailure(
            resolve_and_listen(stack.querier, "plainhost", PORT, Collector(), timeout=2),
            NotResolvedError,
        )
        self.assertIn("no multicast group", str(error))
        self.assertEqual([i.name for i in error.answers], ["lanb"])
        error = yield self.assertFailure(
            resolve_and_listen(stack.querier, "nobody", PORT, Collector(), timeout=0.5),
            NotResolvedError,
        )
        self.assertIn("no answer", str(error))
