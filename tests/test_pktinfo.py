"""
L{twisted_mdns.pktinfo}: the multicast port that reports each datagram's
arrival interface from C{IP_PKTINFO}, on real sockets in a namespace (a host
with links lana and lanb to clients a and b; see L{tests.netns}).

The port is tested bare here (no transport, no mDNS): its socket options,
joining by interface index (C{ip_mreqn}), the context it builds, and sending
pinned to an interface.  L{tests.test_transport} tests the set of ports the
transport keeps.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.netns import NamespaceTestMixin, drain, ip
from tests.support import sleep, wait_until
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import SystemInterfaceEnumerator, find_by_index
from twisted_mdns.pktinfo import (
    IP_MULTICAST_ALL,
    IP_PKTINFO,
    InterfaceContext,
    PktInfoMulticastPort,
    ip_mreqn,
)
from twisted_mdns.testing import make_interface

GROUP = "224.0.0.251"
PORT = 5353


@implementer(IPktInfoDatagramProtocol)
class Recorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int], InterfaceContext]] = []

    def datagramReceivedOn(self, datagram: bytes, address, context: InterfaceContext) -> None:
        self.got.append((datagram, address, context))

    def payloads(self) -> list[bytes]:
        return [d for d, _, _ in self.got]


class PlainRecorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list = []

    def datagramReceived(self, datagram: bytes, address) -> None:
        self.got.append((datagram, address))


class IpMreqnTests(unittest.TestCase):
    def test_layout(self) -> None:
        # struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }
        self.assertEqual(
            ip_mreqn(GROUP, 7),
            socket.inet_aton(GROUP) + b"\0\0\0\0" + struct.pack("i", 7),
        )
        self.assertEqual(ip_mreqn(GROUP, 2, "10.0.0.1")[4:8], socket.inet_aton("10.0.0.1"))


class ContextTests(unittest.TestCase):
    def test_multicast_and_on_link(self) -> None:
        eth0 = make_interface("eth0", 2, "10.0.0.5/24")
        group = InterfaceContext(2, "eth0", GROUP, eth0)
        unicast = InterfaceContext(2, "eth0", "10.0.0.5", eth0)
        self.assertTrue(group.multicast)
        self.assertFalse(unicast.multicast)
        self.assertEqual(group.addresses, (ipaddress.IPv4Interface("10.0.0.5/24"),))
        self.assertTrue(group.on_link("10.0.0.77"))
        self.assertFalse(group.on_link("10.9.0.77"))

    def test_unknown_interface(self) -> None:
        ctx = InterfaceContext(9, "?", "bogus")
        self.assertFalse(ctx.multicast)
        self.assertEqual(ctx.addresses, ())
        self.assertFalse(ctx.on_link("10.0.0.1"))


class PortTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False

    def setUp(self) -> None:
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        interfaces = SystemInterfaceEnumerator().interfaces()
        self.lana = find_by_index(interfaces, self.a.host_index)
        self.lanb = find_by_index(interfaces, self.b.host_index)

    def open(self, protocol, iface=None, join: bool = True, **kwargs) -> PktInfoMulticastPort:
        port = PktInfoMulticastPort(PORT, protocol, reactor=reactor, network_interface=iface, **kwargs)
        port.startListening()
        self.addCleanup(port.stopListening)
        if join and iface is not None:
            port.joinGroup(GROUP)
        return port

    def client(self, name: str) -> socket.socket:
        sock = self.topology.client_socket(name)
        self.addCleanup(sock.close)
        return sock

    def test_recorder_provides_the_interface(self) -> None:
        self.assertTrue(verifyObject(IPktInfoDatagramProtocol, Recorder()))

    def test_socket_options(self) -> None:
        port = self.open(Recorder(), self.lana)
        skt = port.getHandle()
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL), 0)
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IP, IP_PKTINFO), 1)
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL), 255)
        self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR), 1)
        # SO_REUSEPORT would hand each multicast datagram to one socket of
        # the group, whichever link it joined on.
        self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 0)

    @defer.inlineCallbacks
    def test_arrival_interface_from_pktinfo(self):
        rec = Recorder()
        self.open(rec, self.lana)
        self.client("a").sendto(b"from a", (GROUP, PORT))
        yield wait_until(lambda: rec.got, what="datagram from a")
        data, source, ctx = rec.got[0]
        self.assertEqual(data, b"from a")
        self.assertEqual(source[0], self.a.client_ip)
        self.assertEqual((ctx.index, ctx.name, ctx.destination), (self.a.host_index, "lana", GROUP))
        self.assertTrue(ctx.multicast)
        self.assertEqual(ctx.interface, self.lana)

    @defer.inlineCallbacks
    def test_joined_by_index_hears_only_its_link(self):
        """
        Two ports on one address and port, each joined on its own link by
        index (C{ip_mreqn}) with C{IP_MULTICAST_ALL} off: each hears its link
        only.
        """
        on_a, on_b = Recorder(), Recorder()
        self.open(on_a, self.lana)
        self.open(on_b, self.lanb)
        self.client("a").sendto(b"a", (GROUP, PORT))
        self.client("b").sendto(b"b", (GROUP, PORT))
        yield wait_until(lambda: on_a.got and on_b.got, what="both datagrams")
        yield sleep(0.2)
        self.assertEqual(on_a.payloads(), [b"a"])
        self.assertEqual(on_b.payloads(), [b"b"])
        self.assertEqual({c.index for _, _, c in on_b.got}, {self.b.host_index})

    @defer.inlineCallbacks
    def test_join_and_leave_by_index(self):
        rec = Recorder()
        port = self.open(rec)  # no network_interface: joins are explicit
        yield port.joinGroup(GROUP, self.b.host_index)
        self.client("b").sendto(b"joined", (GROUP, PORT))
        yield wait_until(lambda: rec.got, what="datagram on lanb")
        self.assertEqual(rec.got[0][2].name, "lanb")
        yield port.leaveGroup(GROUP, self.b.host_index)
        self.client("b").sendto(b"left", (GROUP, PORT))
        yield sleep(0.3)
        self.assertEqual(rec.payloads(), [b"joined"])

    def test_join_on_missing_index_fails(self):
        port = self.open(Recorder())
        return self.assertFailure(port.joinGroup(GROUP, 999), OSError)

    @defer.inlineCallbacks
    def test_unicast_destination(self):
        rec = Recorder()
        self.open(rec, self.lana)
        self.client("a").sendto(b"direct", (self.a.host_ip, PORT))
        yield wait_until(lambda: rec.got, what="unicast datagram")
        _, _, ctx = rec.got[0]
        self.assertEqual((ctx.index, ctx.destination), (self.a.host_index, self.a.host_ip))
        self.assertFalse(ctx.multicast)

    @defer.inlineCallbacks
    def test_lookup_refresh_and_vanished_interface(self):
        """
        The context's interface comes from the port's lookup, cached per
        interface and destination until L{PktInfoMulticastPort.refresh}; an
        index the lookup does not know is reported as C{"?"}.
        """
        known = {self.a.host_index: make_interface("lana", self.a.host_index, "10.1.0.1/24")}
        rec = Recorder()
        port = self.open(rec, self.lana, lookup=known.get)
        sock = self.client("a")
        sock.sendto(b"1", (GROUP, PORT))
        yield wait_until(lambda: len(rec.got) == 1, what="first")
        self.assertEqual(rec.got[0][2].addresses, (ipaddress.IPv4Interface("10.1.0.1/24"),))
        known[self.a.host_index] = make_interface("lana", self.a.host_index, "10.1.0.1/24", "10.7.0.1/24")
        sock.sendto(b"2", (GROUP, PORT))
        yield wait_until(lambda: len(rec.got) == 2, what="second")
        self.assertEqual(len(rec.got[1][2].addresses), 1, "cached until refresh")
        port.refresh()
        sock.sendto(b"3", (GROUP, PORT))
        yield wait_until(lambda: len(rec.got) == 3, what="third")
        self.assertEqual(len(rec.got[2][2].addresses), 2)
        del known[self.a.host_index]
        port.refresh()
        sock.sendto(b"4", (GROUP, PORT))
        yield wait_until(lambda: len(rec.got) == 4, what="fourth")
        ctx = rec.got[3][2]
        self.assertEqual((ctx.index, ctx.name, ctx.interface), (self.a.host_index, "?", None))

    @defer.inlineCallbacks
    def test_oversized_datagram_dropped_and_counted(self):
        rec = Recorder()
        port = self.open(rec, self.lana, maxPacketSize=100)
        sock = self.client("a")
        sock.sendto(b"x" * 200, (GROUP, PORT))
        sock.sendto(b"small", (GROUP, PORT))
        yield wait_until(lambda: rec.got, what="the small datagram")
        self.assertEqual(rec.payloads(), [b"small"])
        self.assertEqual(port.counters["dropped.oversized"], 1)

    @defer.inlineCallbacks
    def test_plain_protocol_gets_datagram_received(self):
        rec = PlainRecorder()
        self.open(rec, self.lana)
        self.client("a").sendto(b"plain", (GROUP, PORT))
        yield wait_until(lambda: rec.got, what="datagram")
        self.assertEqual(rec.got[0][0], b"plain")

    @defer.inlineCallbacks
    def test_multicast_sent_on_its_interface_only(self):
        port = self.open(Recorder(), self.lanb)
        listen_a = self.topology.client_listener("a")
        listen_b = self.topology.client_listener("b")
        self.addCleanup(listen_a.close)
        self.addCleanup(listen_b.close)
        port.write(b"hello b", (GROUP, PORT))
        got = yield wait_until(lambda: drain(listen_b), what="datagram on b")
        self.assertEqual(got[0][0], b"hello b")
        self.assertEqual(got[0][1][0], self.b.host_ip)
        yield sleep(0.2)
        self.assertEqual(drain(listen_a), [])

    @defer.inlineCallbacks
    def test_write_on_pins_interface_and_source(self):
        """
        Two links on one subnet: routing alone would send by one of them;
        C{writeOn} sends out of the interface given, from the source given.
        """
        ip("addr", "add", "10.1.0.50/24", "dev", "lanb", ns=self.topology.host_ns)
        ip("addr", "add", "10.1.0.60/24", "dev", "eth0", ns=self.b.client_ns)
        port = self.open(Recorder(), self.lanb)
        receiver = self.topology.client_socket("b", port=40000)  # bound to 0.0.0.0
        self.addCleanup(receiver.close)
        receiver_addr = ("10.1.0.60", 40000)
        port.writeOn(b"pinned", receiver_addr, self.b.host_index, "10.1.0.50")
        got = yield wait_until(lambda: drain(receiver), what="unicast on b")
        self.assertEqual(got[0], (b"pinned", ("10.1.0.50", PORT)))
