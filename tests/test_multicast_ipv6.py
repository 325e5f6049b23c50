"""
L{twisted_mdns.multicast} with IPv6 groups, on real sockets in network
namespaces: a host with links lana and lanb (ULA fd00:1::/64, fd00:2::/64
and link-local addresses), one client namespace on each.
"""

from __future__ import annotations

import ipaddress
import socket

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain6
from tests.support import sleep, wait_until
from tests.test_multicast import Collector
from tests.test_querier_netns import HostStack, RawResponder
from twisted_mdns.families import Family
from twisted_mdns.message import a_record, aaaa_record, name_from_text
from twisted_mdns.multicast import (
    NotResolvedError,
    OneInterfaceMulticastPort6,
    listenMulticastOn,
    resolve_and_listen,
)
from twisted_mdns.netif import NetworkInterface, StaticInterfaceEnumerator
from twisted_mdns.policy import InterfaceValidationError

GROUP6 = "ff15::7"  # transient, site-local scope: one LAN's stream
LINK_GROUP6 = "ff02::1:7"  # link scope: needs the interface as zone
PORT = 5007


class ArgumentTests(unittest.TestCase):
    enumerator = StaticInterfaceEnumerator([
        NetworkInterface("eth0", 2, ipv4=(ipaddress.IPv4Interface("192.168.1.10/24"),)),
        NetworkInterface("eth1", 3, ipv6=(ipaddress.IPv6Interface("fe80::3/64"),)),
    ])

    def test_ipv6_group_must_be_multicast(self) -> None:
        for bad in ("fd00::1", "fe80::1%eth1", "::1"):
            error = self.assertRaises(
                ValueError, listenMulticastOn, reactor, bad, PORT, Collector(), "eth1",
                self.enumerator,
            )
            self.assertIn("ff00::/8", str(error))

    def test_ipv6_group_needs_an_ipv6_interface(self) -> None:
        error = self.assertRaises(
            InterfaceValidationError, listenMulticastOn, reactor, GROUP6, PORT, Collector(),
            "eth0", self.enumerator,
        )
        self.assertIn("eth0", str(error))
        self.assertIn("IPv6", str(error))

    def test_ipv4_group_needs_an_ipv4_interface(self) -> None:
        self.assertRaises(
            InterfaceValidationError, listenMulticastOn, reactor, "239.1.1.1", PORT, Collector(),
            "eth1", self.enumerator,
        )


class MulticastIPv6NamespaceTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 25

    def setUp(self) -> None:
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]

    def listen(self, interface, group: str = GROUP6, protocol=None):
        protocol = protocol or Collector()
        port = listenMulticastOn(reactor, group, PORT, protocol, interface)
        self.addCleanup(port.stopListening)
        return port, protocol

    def client(self, name: str, group: str | None = None) -> socket.socket:
        if group is None:
            sock = self.topology.client_socket6(name)
        else:
            sock = self.topology.client_listener6(name, group, PORT)
        self.addCleanup(sock.close)
        return sock

    def send_from(self, client: str, payload: bytes, group: str = GROUP6) -> None:
        sock = self.client(client)
        sock.sendto(payload, (group, PORT, 0, self.topology.client_index(client)))

    def igmp6(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with open("/proc/thread-self/net/igmp6") as f:
            for line in f:
                _index, dev, group = line.split()[:3]
                found.setdefault(dev, set()).add(
                    socket.inet_ntop(socket.AF_INET6, bytes.fromhex(group))
                )
        return found

    @defer.inlineCallbacks
    def test_joins_by_index_on_one_interface(self):
        port, _ = self.listen("lanb")
        self.assertIsInstance(port, OneInterfaceMulticastPort6)
        joined = self.igmp6()
        self.assertIn(GROUP6, joined.get("lanb", set()))
        self.assertNotIn(GROUP6, joined.get("lana", set()))
        sock = port.getHandle()
        self.assertEqual(sock.family, socket.AF_INET6)
        self.assertEqual(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 1)
        self.assertEqual(
            sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF), self.b.host_index
        )
        yield port.stopListening()
        self.assertNotIn(GROUP6, self.igmp6().get("lanb", set()))

    @defer.inlineCallbacks
    def test_each_port_hears_its_own_link(self):
        """
        Two ports on the same IPv6 group and port, one joined on lana (by
        name), one on lanb (by its ULA address): each hears only its own
        link's datagram: each socket is bound to its device, so the kernel
        hands it no other link's copy to drop.
        """
        port_a, on_a = self.listen("lana")
        port_b, on_b = self.listen(self.b.host_ip6)
        self.send_from("a", b"from-a")
        self.send_from("b", b"from-b")
        yield wait_until(lambda: on_a.got and on_b.got, timeout=3, what="both datagrams")
        yield sleep(0.2)
        self.assertEqual(on_a.got, [(b"from-a", self.a.client_ip6, "lana")])
        self.assertEqual(on_b.got, [(b"from-b", self.b.client_ip6, "lanb")])
        self.assertEqual((port_a.dropped, port_b.dropped), (0, 0))

    @defer.inlineCallbacks
    def test_link_scoped_group_and_plain_protocol(self):
        """
        A link-scope group (ff02::) joined on lanb; a protocol without
        C{datagramReceivedOn} gets plain C{datagramReceived} with the
        source scoped to the link.
        """
        from twisted.internet.protocol import DatagramProtocol

        class Plain(DatagramProtocol):
            def __init__(self) -> None:
                self.got: list = []

            def datagramReceived(self, datagram, address) -> None:
                self.got.append((datagram, address))

        plain = Plain()
        self.listen("lanb", LINK_GROUP6, plain)
        self.send_from("a", b"from-a", LINK_GROUP6)
        self.send_from("b", b"from-b", LINK_GROUP6)
        yield wait_until(lambda: plain.got, timeout=3, what="the datagram")
        yield sleep(0.2)
        client_ll = self.topology.link_local(self.b.client_ns, "eth0")
        self.assertEqual(len(plain.got), 1)
        data, address = plain.got[0]
        self.assertEqual(data, b"from-b")
        self.assertEqual(address[0].split("%")[0], client_ll)
        self.assertEqual(address[3], self.b.host_index)

    @defer.inlineCallbacks
    def test_sends_on_its_link_only(self):
        """
        What the port writes to the group leaves by its interface only,
        with hop limit 255, for a site-scope and a link-scope group.
        """
        for group in (GROUP6, LINK_GROUP6):
            on_a, on_b = self.client("a", group), self.client("b", group)
            port, _ = self.listen("lanb", group)
            port.write(b"hello " + group.encode(), (group, PORT))
            got: list = []
            yield wait_until(lambda: got.extend(drain6(on_b)) or got, timeout=3, what="the send")
            yield sleep(0.2)
            self.assertEqual(drain6(on_a), [])
            [(data, _addr, hops, _ifindex)] = got
            self.assertEqual((data, hops), (b"hello " + group.encode(), 255))
            yield port.stopListening()

    @defer.inlineCallbacks
    def test_resolve_then_listen_on_an_ipv6_group(self):
        """
        hf-status.local's AAAA record is an IPv6 group, published on link
        B (over IPv4: the record's family is not the packet's): we join it
        on lanb and hear B's stream, not A's.
        """
        stack = HostStack()
        self.addCleanup(stack.close)
        status = name_from_text("hf-status.local")
        responder = RawResponder(self.topology, "b", [aaaa_record(status, GROUP6, 120)])
        self.addCleanup(responder.close)
        stream = Collector()
        port, iface, group = yield resolve_and_listen(
            stack.querier, "hf-status", PORT, stream, timeout=3
        )
        self.addCleanup(port.stopListening)
        self.assertEqual((iface.name, group), ("lanb", GROUP6))
        self.assertIsInstance(port, OneInterfaceMulticastPort6)
        self.send_from("a", b"status-from-a")
        self.send_from("b", b"status-from-b")
        yield wait_until(lambda: stream.got, timeout=3, what="the stream")
        yield sleep(0.2)
        self.assertEqual(stream.got, [(b"status-from-b", self.b.client_ip6, "lanb")])

    @defer.inlineCallbacks
    def test_resolve_and_listen_chooses_by_family(self):
        """
        A name with a group of each family: IPv4 by default, the IPv6 one
        with C{families=Family.IPV6}; a family with no group is no answer.
        """
        stack = HostStack()
        self.addCleanup(stack.close)
        status = name_from_text("both.local")
        responder = RawResponder(
            self.topology, "a", [a_record(status, "239.7.7.8", 120), aaaa_record(status, GROUP6, 120)]
        )
        self.addCleanup(responder.close)
        port, iface, group = yield resolve_and_listen(stack.querier, "both", PORT, Collector())
        self.assertEqual((iface.name, group), ("lana", "239.7.7.8"))
        yield port.stopListening()
        port, iface, group = yield resolve_and_listen(
            stack.querier, "both", PORT, Collector(), families=Family.IPV6
        )
        self.assertEqual((iface.name, group), ("lana", GROUP6))
        yield port.stopListening()
        only4 = name_from_text("only4.local")
        responder.records.append(a_record(only4, "239.7.7.9", 120))
        error = yield self.assertFailure(
            resolve_and_listen(stack.querier, "only4", PORT, Collector(), families=Family.IPV6),
            NotResolvedError,
        )
        self.assertIn("no multicast group", str(error))
