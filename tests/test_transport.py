"""
The per-interface IP_PKTINFO transport, on real sockets in real network
namespaces: a host with two veth links (lana, lanb) to two clients, plus a
tun0 and a docker0 bridge the default policy must refuse.
"""

from __future__ import annotations

import socket

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest
from zope.interface import implementer

from tests.netns import NamespaceTestMixin, drain, drain6
from tests.support import sleep, wait_until
from twisted_mdns.families import Family
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import SystemInterfaceEnumerator
from twisted_mdns.pktinfo import PktInfoMulticastPort
from twisted_mdns.pktinfo6 import PktInfo6MulticastPort
from twisted_mdns.policy import DefaultInterfacePolicy, ExplicitInterfacePolicy
from twisted_mdns.transport import InterfaceTransport


@implementer(IPktInfoDatagramProtocol)
class Recorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list = []

    def datagramReceivedOn(self, datagram, address, context) -> None:
        self.got.append((datagram, address, context))

    def payloads(self, index: int | None = None) -> list[bytes]:
        return [d for d, _, c in self.got if index is None or c.index == index]


class PlainRecorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list = []

    def datagramReceived(self, datagram, address) -> None:
        self.got.append((datagram, address))


class TransportTests(NamespaceTestMixin, unittest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.interfaces = SystemInterfaceEnumerator().interfaces()
        self.selection = DefaultInterfacePolicy().select(self.interfaces)
        self.recorder = Recorder()
        self.transport = InterfaceTransport(self.recorder, reactor)
        self.addCleanup(self.transport.close)
        self.transport.apply(self.selection.selected)

    @defer.inlineCallbacks
    def open_port(self, name: str, protocol):
        """
        A bare port on interface C{name}, joined to the mDNS group (no
        transport in between), closed at cleanup.
        """
        iface = next(i for i in self.interfaces if i.name == name)
        port = PktInfoMulticastPort(5353, protocol, reactor=reactor, network_interface=iface)
        port.startListening()
        self.addCleanup(port.stopListening)
        yield port.joinGroup("224.0.0.251")
        return iface

    def client_pair(self):
        """
        Sockets in client namespaces a and b, closed at cleanup.
        """
        ca = self.topology.client_socket("a")
        cb = self.topology.client_socket("b")
        self.addCleanup(ca.close)
        self.addCleanup(cb.close)
        return ca, cb

    def test_enumeration_sees_the_topology(self) -> None:
        names = {i.name for i in self.interfaces}
        self.assertEqual(names, {"lo", "lana", "lanb", "tun0", "docker0"})
        lana = next(i for i in self.interfaces if i.name == "lana")
        self.assertEqual(lana.index, self.a.host_index)
        self.assertEqual(lana.ipv4_addresses, ("10.1.0.1",))
        self.assertEqual(str(lana.ipv4[0].network), "10.1.0.0/24")
        self.assertTrue(lana.flags.multicast and lana.flags.up)

    def test_default_policy_selects_the_two_links(self) -> None:
        self.assertEqual(self.selection.names, ("lana", "lanb"))
        self.assertTrue(self.selection.reason("tun0").startswith("virtual: VPN"))
        self.assertTrue(self.selection.reason("docker0").startswith("virtual: container"))
        self.assertEqual(self.selection.reason("lo"), "loopback")
        self.assertEqual(sorted(self.transport.ports), [self.a.host_index, self.b.host_index])

    @defer.inlineCallbacks
    def test_multicast_tagged_with_arrival_interface(self):
        ca, cb = self.client_pair()
        ca.sendto(b"query-from-a", ("224.0.0.251", 5353))
        cb.sendto(b"query-from-b", ("224.0.0.251", 5353))
        yield wait_until(lambda: len(self.recorder.got) >= 2, what="two datagrams")
        yield sleep(0.2)  # anything delivered twice would have arrived by now
        got = {(d, c.index, c.name, c.destination, a[0]) for d, a, c in self.recorder.got}
        self.assertEqual(
            got,
            {
                (b"query-from-a", self.a.host_index, "lana", "224.0.0.251", self.a.client_ip),
                (b"query-from-b", self.b.host_index, "lanb", "224.0.0.251", self.b.client_ip),
            },
        )
        self.assertEqual(len(self.recorder.got), 2, "each datagram is delivered once")
        for _, _, ctx in self.recorder.got:
            self.assertTrue(ctx.multicast)

    @defer.inlineCallbacks
    def test_port_for_a_never_sees_b(self):
        """
        At the port level (no transport in between): link A's port hears
        only link A's multicast.
        """
        yield self.transport.close()
        rec = Recorder()
        lana = yield self.open_port("lana", rec)
        ca, cb = self.client_pair()
        for n in range(5):
            cb.sendto(b"from-b-%d" % n, ("224.0.0.251", 5353))
        ca.sendto(b"from-a", ("224.0.0.251", 5353))
        yield wait_until(lambda: rec.got, what="A's datagram")
        yield sleep(0.2)
        self.assertEqual(rec.payloads(), [b"from-a"])
        self.assertEqual(rec.got[0][2].index, lana.index)

    @defer.inlineCallbacks
    def test_each_port_hears_only_its_link_with_both_open(self):
        """
        Both links' ports open at once (the transport's situation): each
        socket reads only its own link's multicast.  With SO_REUSEPORT,
        Linux would hand every datagram to one socket of the group,
        whichever link it joined.
        """
        yield self.transport.close()
        recorders = {}
        for name in ("lana", "lanb"):
            rec = Recorder()
            iface = yield self.open_port(name, rec)
            recorders[iface.index] = rec
        ca, cb = self.client_pair()
        for n in range(10):
            ca.sendto(b"a%d" % n, ("224.0.0.251", 5353))
            cb.sendto(b"b%d" % n, ("224.0.0.251", 5353))
        yield wait_until(lambda: sum(len(r.got) for r in recorders.values()) >= 20, what="20 datagrams")
        yield sleep(0.2)
        self.assertEqual(recorders[self.a.host_index].payloads(), [b"a%d" % n for n in range(10)])
        self.assertEqual(recorders[self.b.host_index].payloads(), [b"b%d" % n for n in range(10)])

    @defer.inlineCallbacks
    def test_unicast_tagged_with_arrival_interface(self):
        ca, cb = self.client_pair()
        # Several each, so SO_REUSEPORT's spreading has the chance to hand
        # B's datagrams to A's socket: attribution must not care.
        for n in range(8):
            ca.sendto(b"uni-a-%d" % n, (self.a.host_ip, 5353))
            cb.sendto(b"uni-b-%d" % n, (self.b.host_ip, 5353))
        yield wait_until(lambda: len(self.recorder.got) >= 16, what="16 unicast datagrams")
        for data, address, ctx in self.recorder.got:
            if data.startswith(b"uni-a"):
                self.assertEqual((ctx.index, ctx.destination, address[0]),
                                 (self.a.host_index, self.a.host_ip, self.a.client_ip))
            else:
                self.assertEqual((ctx.index, ctx.destination, address[0]),
                                 (self.b.host_index, self.b.host_ip, self.b.client_ip))
            self.assertFalse(ctx.multicast)
            self.assertTrue(ctx.on_link(address[0]))

    @defer.inlineCallbacks
    def test_send_on_a_reaches_only_a(self):
        la = self.topology.client_listener("a")
        lb = self.topology.client_listener("b")
        self.addCleanup(la.close)
        self.addCleanup(lb.close)
        self.assertTrue(self.transport.send(b"announce-a", self.a.host_index))
        yield wait_until(lambda: [d for d, _ in drain(la) if d == b"announce-a"], what="A hears")
        yield sleep(0.2)
        self.assertEqual([d for d, _ in drain(lb)], [])

    @defer.inlineCallbacks
    def test_unicast_send_pinned_to_interface(self):
        cb = self.topology.client_socket("b")
        self.addCleanup(cb.close)
        port = cb.getsockname()[1]
        self.assertTrue(
            self.transport.send(b"reply-b", self.b.host_index, (self.b.client_ip, port))
        )
        got = yield wait_until(lambda: drain(cb), what="unicast reply")
        self.assertEqual(got, [(b"reply-b", (self.b.host_ip, 5353))])

    @defer.inlineCallbacks
    def test_shares_port_with_another_socket(self):
        """
        Another stack (here a plain socket, as avahi would be) already holds
        5353: our ports still open and receive.
        """
        yield self.transport.close()
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("0.0.0.0", 5353))
        other.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
            socket.inet_aton("224.0.0.251") + socket.inet_aton(self.a.host_ip),
        )
        self.addCleanup(other.close)
        transport = InterfaceTransport(self.recorder, reactor)
        self.addCleanup(transport.close)
        change = transport.apply(self.selection.selected)
        self.assertEqual([i.name for i in change.added], ["lana", "lanb"])
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        ca.sendto(b"shared", ("224.0.0.251", 5353))
        yield wait_until(lambda: self.recorder.payloads(self.a.host_index), what="our port hears")
        self.assertEqual(self.recorder.payloads(self.a.host_index), [b"shared"])

    @defer.inlineCallbacks
    def test_plain_protocol_still_works(self):
        yield self.transport.close()
        rec = PlainRecorder()
        yield self.open_port("lana", rec)
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        ca.sendto(b"plain", ("224.0.0.251", 5353))
        yield wait_until(lambda: rec.got, what="plain datagram")
        self.assertEqual(rec.got[0][0], b"plain")
        self.assertEqual(rec.got[0][1][0], self.a.client_ip)

    @defer.inlineCallbacks
    def test_any_group_and_port(self):
        yield self.transport.close()
        rec = Recorder()
        transport = InterfaceTransport(rec, reactor, group="239.1.2.3", port=5006)
        self.addCleanup(transport.close)
        transport.apply(self.selection.selected)
        cb = self.topology.client_socket("b")
        self.addCleanup(cb.close)
        cb.sendto(b"status", ("239.1.2.3", 5006))
        yield wait_until(lambda: rec.got, what="group datagram")
        self.assertEqual([(d, c.name) for d, _, c in rec.got], [(b"status", "lanb")])

    @defer.inlineCallbacks
    def test_apply_new_selection(self):
        """
        Narrowing the selection closes B's port; widening reopens it; a
        changed address is taken without reopening.
        """
        only_a = ExplicitInterfacePolicy(["lana"]).select(self.interfaces)
        change = self.transport.apply(only_a.selected)
        self.assertEqual([i.name for i in change.removed], ["lanb"])
        self.assertEqual(list(self.transport.ports), [self.a.host_index])
        yield change.closed
        cb = self.topology.client_socket("b")
        self.addCleanup(cb.close)
        cb.sendto(b"b-after-close", ("224.0.0.251", 5353))
        cb.sendto(b"b-unicast-after-close", (self.b.host_ip, 5353))
        yield sleep(0.3)
        self.assertEqual(self.recorder.payloads(), [])
        # The unicast one is read by lana's socket (the only one left on 5353)
        # and dropped: it came in on lanb, which we no longer run on.
        self.assertEqual(self.transport.counters["dropped.unselected-interface"], 1)

        self.topology_ip_add("10.1.0.9/24", "lana")
        readdressed = SystemInterfaceEnumerator().interfaces()
        change = self.transport.apply(DefaultInterfacePolicy().select(readdressed).selected)
        self.assertEqual([i.name for i in change.added], ["lanb"])
        self.assertEqual([n.name for _, n in change.readdressed], ["lana"])
        self.assertEqual(
            self.transport.interfaces[self.a.host_index].ipv4_addresses,
            ("10.1.0.1", "10.1.0.9"),
        )
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        ca.sendto(b"to-new-address", ("10.1.0.9", 5353))
        yield wait_until(lambda: self.recorder.got, what="datagram to new address")
        ctx = self.recorder.got[0][2]
        self.assertEqual(ctx.destination, "10.1.0.9")
        self.assertIn("10.1.0.9", [str(a.ip) for a in ctx.addresses])

    def topology_ip_add(self, cidr: str, dev: str) -> None:
        from tests.netns import ip

        ip("addr", "add", cidr, "dev", dev, ns=self.topology.host_ns)

    @defer.inlineCallbacks
    def test_oversized_datagram_dropped_and_counted(self):
        """
        RFC 6762 s17 caps mDNS at 9000 bytes: a larger datagram would be
        read cut short, and a prefix is not the message; it is dropped and
        counted, and the next datagram still arrives.
        """
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        ca.sendto(b"x" * 9500, (self.a.host_ip, 5353))
        ca.sendto(b"after", (self.a.host_ip, 5353))
        yield wait_until(lambda: self.recorder.got, what="the small datagram")
        self.assertEqual(self.recorder.payloads(), [b"after"])
        self.assertEqual(self.transport.counters["dropped.oversized"], 1)

    def test_send_to_vanished_interface_is_counted(self) -> None:
        self.assertFalse(self.transport.send(b"x", 9999))
        self.assertEqual(self.transport.counters["errors.send-no-port"], 1)

    @defer.inlineCallbacks
    def test_reply_store_answers_exact_repeats_in_the_reader(self):
        """
        With a reply store (the responder's legacy-unicast store, through
        L{InterfaceTransport.serve_replies}), a port's reader answers an
        exact repeat from a source judged on-link itself: id echoed, out of
        the link it came in on, counted by the store.  Anything else (a
        source not judged, another query) reaches the protocol.
        """
        from collections import Counter

        from twisted_mdns.responder.legacy import LegacyReplies

        counters: Counter[str] = Counter()
        store = LegacyReplies(counters)
        self.transport.serve_replies(store)
        query = b"\x00\x07" + b"QUERY-BYTES"
        store.replies[(self.a.host_index, query[2:])] = b"REPLY-BYTES"
        store.replies[(self.b.host_index, query[2:])] = b"REPLY-BYTES"
        store.sources[(self.a.host_index, self.a.client_ip)] = True
        ca, cb = self.client_pair()
        ca.sendto(b"\x12\x34" + query[2:], (self.a.host_ip, 5353))
        got = yield wait_until(lambda: drain(ca), what="a reply from the reader")
        self.assertEqual(got, [(b"\x12\x34REPLY-BYTES", (self.a.host_ip, 5353))])
        self.assertEqual(
            (counters["received"], counters["answered.legacy"], counters["transport.sent"]), (1, 1, 1)
        )
        self.assertEqual(self.recorder.got, [], "answered before the protocol")
        cb.sendto(query, (self.b.host_ip, 5353))
        yield wait_until(lambda: self.recorder.payloads(self.b.host_index), what="b's query reaches the protocol")
        self.assertEqual(drain(cb), [], "a source nobody judged is not answered from the store")
        self.transport.serve_replies(None)
        ca.sendto(query, (self.a.host_ip, 5353))
        yield wait_until(lambda: self.recorder.payloads(self.a.host_index), what="a's query reaches the protocol")
        self.assertEqual(drain(ca), [])


class DualStackTransportTests(NamespaceTestMixin, unittest.TestCase):
    """
    The transport on two dual-stack links (ULA and link-local addresses):
    an IPv6 port beside each IPv4 one, the send seam over both families.
    """

    def setUp(self) -> None:
        super().setUp()
        self.topology.add_ipv6()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.interfaces = SystemInterfaceEnumerator().interfaces()
        self.selection = DefaultInterfacePolicy().select(self.interfaces)
        self.recorder = Recorder()
        self.transport = InterfaceTransport(self.recorder, reactor)
        self.addCleanup(self.transport.close)
        self.transport.apply(self.selection.selected, self.selection.families_of)

    def listener6(self, client: str) -> socket.socket:
        s = self.topology.client_listener6(client)
        self.addCleanup(s.close)
        return s

    def test_a_port_per_link_and_family(self) -> None:
        both = [self.a.host_index, self.b.host_index]
        self.assertEqual(sorted(self.transport.ports), both)
        self.assertEqual(sorted(self.transport.ports6), both)
        for index in both:
            self.assertEqual(self.transport.families_of(index), Family.BOTH)
            self.assertIsInstance(self.transport.ports6[index], PktInfo6MulticastPort)

    @defer.inlineCallbacks
    def test_both_families_reach_the_receiver_with_their_context(self):
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        c6 = self.topology.client_socket6("b")
        self.addCleanup(c6.close)
        ca.sendto(b"four", ("224.0.0.251", 5353))
        c6.sendto(b"six", ("ff02::fb", 5353, 0, self.topology.client_index("b")))
        yield wait_until(lambda: len(self.recorder.got) >= 2, what="both datagrams")
        yield sleep(0.2)
        got = {d: (c.index, c.family, c.destination) for d, _, c in self.recorder.got}
        self.assertEqual(got, {
            b"four": (self.a.host_index, socket.AF_INET, "224.0.0.251"),
            b"six": (self.b.host_index, socket.AF_INET6, "ff02::fb"),
        })

    @defer.inlineCallbacks
    def test_multicast_goes_out_on_every_family_of_the_link_only(self):
        la4, la6 = self.topology.client_listener("a"), self.listener6("a")
        self.addCleanup(la4.close)
        lb6 = self.listener6("b")
        self.assertTrue(self.transport.send(b"both", self.a.host_index))
        yield wait_until(lambda: [d for d, *_ in drain6(la6) if d == b"both"], what="over IPv6")
        yield wait_until(lambda: [d for d, _ in drain(la4) if d == b"both"], what="over IPv4")
        self.assertTrue(self.transport.send(b"six-only", self.a.host_index, family=socket.AF_INET6))
        got = yield wait_until(lambda: [x for x in drain6(la6) if x[0] == b"six-only"], what="IPv6 only")
        self.assertEqual(got[0][2], 255, "hop limit 255")
        yield sleep(0.2)
        self.assertEqual([d for d, _ in drain(la4)], [])
        self.assertEqual([d for d, *_ in drain6(lb6) if d in (b"both", b"six-only")], [])

    @defer.inlineCallbacks
    def test_unicast_by_destination_family(self):
        c4 = self.topology.client_socket("b")
        self.addCleanup(c4.close)
        c6 = self.topology.client_socket6("b")
        self.addCleanup(c6.close)
        port6 = c6.getsockname()[1]
        client_ll = self.topology.link_local(self.b.client_ns, "eth0")
        self.assertTrue(self.transport.send(b"to-4", self.b.host_index, (self.b.client_ip, c4.getsockname()[1])))
        # A link-local destination with a zone naming nothing of ours: the
        # link's scope is used.
        self.assertTrue(self.transport.send(b"to-6", self.b.host_index, (f"{client_ll}%bogus", port6, 0, 0)))
        self.assertTrue(self.transport.send(b"to-ula", self.b.host_index, (self.b.client_ip6, port6), self.b.host_ip6))
        yield wait_until(lambda: drain(c4), what="IPv4 unicast")
        got: list = []

        def both() -> bool:
            got.extend(drain6(c6))
            return len(got) >= 2

        yield wait_until(both, what="IPv6 unicast")
        sources = {d: a[0] for d, a, _, _ in got}
        self.assertEqual(sources[b"to-ula"], self.b.host_ip6)
        self.assertTrue(sources[b"to-6"].startswith("fe80::"))
        self.assertEqual({hops for _, _, hops, _ in got}, {255})

    @defer.inlineCallbacks
    def test_ipv6_only_selection_and_family_changes(self):
        """
        IPv6 only closes the IPv4 ports (the links stay, readdressed);
        IPv4 only closes the IPv6 ones; a link with no family left is
        removed.
        """
        six = DefaultInterfacePolicy(families=Family.IPV6).select(self.interfaces)
        change = self.transport.apply(six.selected, six.families_of)
        yield change.closed
        self.assertEqual(self.transport.ports, {})
        self.assertEqual(len(self.transport.ports6), 2)
        self.assertEqual(sorted(n.index for _, n in change.readdressed), [self.a.host_index, self.b.host_index])
        ca = self.topology.client_socket("a")
        self.addCleanup(ca.close)
        ca.sendto(b"ignored", ("224.0.0.251", 5353))
        yield sleep(0.3)
        self.assertEqual(self.recorder.payloads(), [])
        self.assertFalse(self.transport.send(b"x", self.a.host_index, (self.a.client_ip, 9)))
        four = Family.IPV4
        change = self.transport.apply(self.selection.selected, lambda iface: four)
        yield change.closed
        self.assertEqual(self.transport.ports6, {})
        self.assertEqual(len(self.transport.ports), 2)
        change = self.transport.apply(self.selection.selected, lambda iface: Family.NONE)
        self.assertEqual(sorted(i.index for i in change.removed), [self.a.host_index, self.b.host_index])
        self.assertEqual(self.transport.interfaces, {})
