"""
The IPv6 per-link port on real sockets in real namespaces: a host with two
veth links (lana, lanb), each with a ULA prefix (fd00:1::/64, fd00:2::/64)
and its link-local addresses, to two client namespaces.
"""

from __future__ import annotations

import socket

from twisted.internet import defer, reactor
from twisted.internet.error import InvalidAddressError
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.netns import NamespaceTestMixin, drain6
from tests.support import sleep, wait_until
from twisted_mdns.constants import MDNS_GROUP6
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort
from twisted_mdns.pktinfo6 import InterfaceContext6, PktInfo6MulticastPort, ipv6_mreq, max_payload6


@implementer(IPktInfoDatagramProtocol)
class Recorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list = []

    def datagramReceivedOn(self, datagram, address, context) -> None:
        self.got.append((datagram, address, context))

    def payloads(self) -> list[bytes]:
        return [d for d, _, _ in self.got]


class PlainRecorder(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list = []

    def datagramReceived(self, datagram, address) -> None:
        self.got.append((datagram, address))


class PortTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False

    def setUp(self) -> None:
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.interfaces = SystemInterfaceEnumerator().interfaces()

    def iface(self, name: str) -> NetworkInterface:
        return next(i for i in self.interfaces if i.name == name)

    @defer.inlineCallbacks
    def open_port(self, name: str, protocol=None, **kwargs):
        protocol = protocol if protocol is not None else Recorder()
        port = PktInfo6MulticastPort(
            5353, protocol, reactor=reactor, network_interface=self.iface(name), **kwargs
        )
        port.startListening()
        self.addCleanup(port.stopListening)
        yield port.joinGroup(MDNS_GROUP6)
        return port

    def client(self, name: str, port: int = 0, bind: str = "::") -> socket.socket:
        s = self.topology.client_socket6(name, port, bind)
        self.addCleanup(s.close)
        return s

    def group(self, client: str) -> tuple[str, int, int, int]:
        return (MDNS_GROUP6, 5353, 0, self.topology.client_index(client))

    def test_enumeration_sees_ipv6(self) -> None:
        lana = self.iface("lana")
        self.assertIn("fd00:1::1/64", [str(a) for a in lana.publishable_ipv6])
        self.assertTrue(any(a.ip.is_link_local for a in lana.publishable_ipv6))
        self.assertNotIn("fd00:2::1/64", [str(a) for a in lana.ipv6])

    @defer.inlineCallbacks
    def test_socket_options(self):
        port = yield self.open_port("lana")
        skt = port.socket
        self.assertEqual(skt.family, socket.AF_INET6)
        self.assertEqual(skt.getsockname()[:2], ("::", 5353))
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 1)
        self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR), 1)
        self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 0)
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS), 255)
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS), 255)
        self.assertEqual(skt.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF), self.a.host_index)
        self.assertEqual(port.getLoopbackMode(), 1)
        self.assertEqual(port.getTTL(), 255)

    def test_refuses_ipv4_interface(self) -> None:
        self.assertRaises(InvalidAddressError, PktInfo6MulticastPort, 5353, Recorder(), "0.0.0.0")

    def memberships(self) -> dict[str, set[str]]:
        """
        The IPv6 groups joined per interface, from the kernel's igmp6 table.
        """
        found: dict[str, set[str]] = {}
        with open("/proc/thread-self/net/igmp6") as f:
            for line in f:
                _index, dev, group = line.split()[:3]
                found.setdefault(dev, set()).add(str(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(group))))
        return found

    @defer.inlineCallbacks
    def test_joins_by_index(self):
        """
        The join names the interface by index: ff02::fb is joined on lana
        and on no other interface; leaving drops it again.
        """
        port = yield self.open_port("lana")
        joined = self.memberships()
        self.assertIn(MDNS_GROUP6, joined["lana"])
        self.assertNotIn(MDNS_GROUP6, joined.get("lanb", set()))
        yield port.leaveGroup(MDNS_GROUP6)
        self.assertNotIn(MDNS_GROUP6, self.memberships()["lana"])
        yield port.joinGroup(MDNS_GROUP6, self.b.host_index)
        self.assertIn(MDNS_GROUP6, self.memberships()["lanb"])

    def test_each_port_hears_only_its_link(self):
        """
        With both links open, each port is bound to its device: the kernel
        hands it only what arrived on its own link (nothing to drop), and
        the context still comes from the pktinfo index.
        """
        return self.check_each_port_hears_only_its_link(bind_to_device=True)

    def test_unbound_ports_drop_the_other_links_copies(self):
        """
        Without the device binding (refused to an unprivileged process on
        old kernels), Linux hands each group datagram to both sockets (they
        joined the same group): each port keeps only what arrived on its own
        link, by the pktinfo index, and counts the rest.
        """
        return self.check_each_port_hears_only_its_link(bind_to_device=False)

    @defer.inlineCallbacks
    def check_each_port_hears_only_its_link(self, bind_to_device: bool):
        ra, rb = Recorder(), Recorder()
        pa = yield self.open_port("lana", ra, bind_to_device=bind_to_device)
        pb = yield self.open_port("lanb", rb, bind_to_device=bind_to_device)
        for port, name in ((pa, "lana"), (pb, "lanb")):
            bound = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
            self.assertEqual(bound.rstrip(b"\0"), name.encode() if bind_to_device else b"")
        ca, cb = self.client("a"), self.client("b")
        ca.sendto(b"query-from-a", self.group("a"))
        cb.sendto(b"query-from-b", self.group("b"))
        yield wait_until(lambda: ra.got and rb.got, what="one datagram per link")
        yield sleep(0.2)  # anything misdelivered would have arrived by now
        self.assertEqual(ra.payloads(), [b"query-from-a"])
        self.assertEqual(rb.payloads(), [b"query-from-b"])
        for rec, link, name in ((ra, self.a, "lana"), (rb, self.b, "lanb")):
            (_, address, ctx), = rec.got
            self.assertIsInstance(ctx, InterfaceContext6)
            self.assertIsInstance(ctx, InterfaceContext)
            self.assertEqual((ctx.index, ctx.name, ctx.destination), (link.host_index, name, MDNS_GROUP6))
            self.assertEqual(ctx.family, socket.AF_INET6)
            self.assertTrue(ctx.multicast)
            # The sender's link-local source, with its scope.
            self.assertTrue(address[0].startswith("fe80::"), address)
            self.assertEqual(address[3], link.host_index)
            self.assertTrue(ctx.on_link(address[0]))
        copies = 0 if bind_to_device else 1
        self.assertEqual(pa.counters["dropped.other-interface"], copies)
        self.assertEqual(pb.counters["dropped.other-interface"], copies)

    @defer.inlineCallbacks
    def test_unicast_is_delivered_whichever_socket_reads_it(self):
        """
        A unicast datagram goes to one of the sockets on 5353: it is never
        dropped for arriving on the other port's link, and its context
        names the interface it really came in on.
        """
        ra, rb = Recorder(), Recorder()
        yield self.open_port("lana", ra)
        yield self.open_port("lanb", rb)
        cb = self.client("b")
        cb.sendto(b"unicast-from-b", (self.b.host_ip6, 5353))
        yield wait_until(lambda: ra.got or rb.got, what="the unicast datagram")
        yield sleep(0.2)
        (_, address, ctx), = ra.got + rb.got
        self.assertEqual((ctx.index, ctx.destination), (self.b.host_index, self.b.host_ip6))
        self.assertFalse(ctx.multicast)
        self.assertEqual(address[0], self.b.client_ip6)

    @defer.inlineCallbacks
    def test_unicast_reply_leaves_by_arrival_interface(self):
        """
        A reply to a query's link-local source goes out of the interface
        the query arrived on with hop limit 255 (RFC 6762 §11), even when
        the address carries another zone.
        """
        rec = Recorder()
        port = yield self.open_port("lana", rec)
        yield self.open_port("lanb", Recorder())
        ca, cb = self.client("a"), self.client("b")
        ca.sendto(b"query", self.group("a"))
        yield wait_until(lambda: rec.got, what="the query")
        _, address, ctx = rec.got[0]
        port.writeOn(b"reply", address, ctx.index)
        got = yield wait_until(lambda: drain6(ca), what="the reply")
        (data, source, hops, ifindex), = got
        self.assertEqual((data, hops, ifindex), (b"reply", 255, self.topology.client_index("a")))
        self.assertEqual(source[1], 5353)
        self.assertTrue(source[0].startswith("fe80::"))
        # The wrong zone in the address does not win over the interface.
        host = address[0].split("%")[0]
        port.writeOn(b"reply-2", (f"{host}%lanb", address[1]), self.a.host_index)
        port.writeOn(b"reply-3", (host, address[1], 0, self.b.host_index), self.a.host_index)
        replies: list = []

        def both() -> bool:
            replies.extend(drain6(ca))
            return len(replies) >= 2

        yield wait_until(both, what="two more replies")
        self.assertEqual([g[0] for g in replies], [b"reply-2", b"reply-3"])
        self.assertEqual(drain6(cb), [])

    @defer.inlineCallbacks
    def test_unicast_reply_from_the_queried_address(self):
        """
        A reply to a ULA source, from the address it was sent to, pinned
        to its interface.
        """
        rec = Recorder()
        port = yield self.open_port("lanb", rec)
        cb = self.client("b", bind=self.b.client_ip6)
        cb.sendto(b"query", (self.b.host_ip6, 5353))
        yield wait_until(lambda: rec.got, what="the query")
        _, address, ctx = rec.got[0]
        port.writeOn(b"reply", address, ctx.index, source=ctx.destination)
        got = yield wait_until(lambda: drain6(cb), what="the reply")
        (data, source, hops, _), = got
        self.assertEqual((data, source[0], hops), (b"reply", self.b.host_ip6, 255))

    @defer.inlineCallbacks
    def test_multicast_goes_out_of_its_link_only(self):
        port = yield self.open_port("lanb")
        la = self.topology.client_listener6("a")
        lb = self.topology.client_listener6("b")
        self.addCleanup(la.close)
        self.addCleanup(lb.close)
        port.writeMulticast(b"announcement")
        got = yield wait_until(lambda: drain6(lb), what="the announcement on b")
        (data, _, hops, _), = got
        self.assertEqual((data, hops), (b"announcement", 255))
        yield sleep(0.2)
        self.assertEqual(drain6(la), [])

    @defer.inlineCallbacks
    def test_v6only(self):
        """
        An IPv4 datagram to port 5353 never reaches the IPv6 port (it is the
        IPv4 port's business), not even as a mapped address.
        """
        rec = Recorder()
        yield self.open_port("lana", rec)
        ca4 = self.topology.client_socket("a")
        self.addCleanup(ca4.close)
        ca4.sendto(b"ipv4", (self.a.host_ip, 5353))
        self.client("a").sendto(b"ipv6", (self.a.host_ip6, 5353))
        yield wait_until(lambda: rec.got, what="the IPv6 datagram")
        yield sleep(0.2)
        self.assertEqual(rec.payloads(), [b"ipv6"])

    @defer.inlineCallbacks
    def test_beside_the_ipv4_port(self):
        """
        A link's two halves share port 5353: the IPv4 port hears IPv4, the
        IPv6 port IPv6, each once.
        """
        r4, r6 = Recorder(), Recorder()
        port4 = PktInfoMulticastPort(5353, r4, reactor=reactor, network_interface=self.iface("lana"))
        port4.startListening()
        self.addCleanup(port4.stopListening)
        yield port4.joinGroup("224.0.0.251")
        yield self.open_port("lana", r6)
        ca4 = self.topology.client_socket("a")
        self.addCleanup(ca4.close)
        ca4.sendto(b"over-ipv4", ("224.0.0.251", 5353))
        self.client("a").sendto(b"over-ipv6", self.group("a"))
        yield wait_until(lambda: r4.got and r6.got, what="one datagram per family")
        yield sleep(0.2)
        self.assertEqual((r4.payloads(), r6.payloads()), ([b"over-ipv4"], [b"over-ipv6"]))
        self.assertEqual(r4.got[0][2].family, socket.AF_INET)
        self.assertEqual(r6.got[0][2].family, socket.AF_INET6)

    @defer.inlineCallbacks
    def test_shares_5353_with_another_stack(self):
        """
        Another responder's IPv6 socket (SO_REUSEADDR, as avahi's) binds
        [::]:5353 beside ours, and both hear the group (RFC 6762 §15).
        """
        rec = Recorder()
        yield self.open_port("lana", rec)
        other = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        other.bind(("::", 5353))
        other.setsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, ipv6_mreq(MDNS_GROUP6, self.a.host_index)
        )
        other.setblocking(False)
        self.client("a").sendto(b"shared", self.group("a"))
        yield wait_until(lambda: rec.got, what="our copy")
        got = yield wait_until(lambda: drain6(other), what="the other stack's copy")
        self.assertEqual([g[0] for g in got], [b"shared"])
        self.assertEqual(rec.payloads(), [b"shared"])

    @defer.inlineCallbacks
    def test_oversized_is_dropped_and_counted(self):
        rec = Recorder()
        port = yield self.open_port("lana", rec)
        ca = self.client("a")
        ca.sendto(b"x" * 9100, self.group("a"))
        ca.sendto(b"small", self.group("a"))
        yield wait_until(lambda: rec.got, what="the small datagram")
        self.assertEqual(rec.payloads(), [b"small"])
        self.assertEqual(port.counters["dropped.oversized"], 1)

    @defer.inlineCallbacks
    def test_plain_protocol(self):
        """
        A protocol without L{IPktInfoDatagramProtocol} gets
        C{datagramReceived}, as from any Twisted port.
        """
        rec = PlainRecorder()
        yield self.open_port("lana", rec)
        self.client("a").sendto(b"plain", self.group("a"))
        yield wait_until(lambda: rec.got, what="the datagram")
        self.assertEqual(rec.got[0][0], b"plain")

    @defer.inlineCallbacks
    def test_handler_failure_is_contained(self):
        """
        A protocol that raises loses that datagram only.
        """

        @implementer(IPktInfoDatagramProtocol)
        class Fragile(Recorder):
            def datagramReceivedOn(self, datagram, address, context) -> None:
                if datagram == b"boom":
                    raise ValueError("boom")
                super().datagramReceivedOn(datagram, address, context)

        rec = Fragile()
        verifyObject(IPktInfoDatagramProtocol, rec)
        yield self.open_port("lana", rec)
        ca = self.client("a")
        ca.sendto(b"boom", self.group("a"))
        ca.sendto(b"fine", self.group("a"))
        yield wait_until(lambda: rec.got, what="the second datagram")
        self.assertEqual(rec.payloads(), [b"fine"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    @defer.inlineCallbacks
    def test_bad_destination(self):
        port = yield self.open_port("lana")
        self.assertRaises(InvalidAddressError, port.writeOn, b"x", ("10.1.0.2", 5353), self.a.host_index)
        self.assertRaises(InvalidAddressError, port.writeOn, b"x", ("fe80::1", 5353), self.a.host_index, "nonsense")


class ContextTests(unittest.TestCase):
    """
    The RFC 6762 §11 check and the size limit, on values.
    """

    def setUp(self) -> None:
        import ipaddress

        self.iface = NetworkInterface(
            "eth0", 2, mtu=1500,
            ipv6=(ipaddress.IPv6Interface("fe80::1/64"), ipaddress.IPv6Interface("2001:db8:1::5/64")),
        )
        self.ctx = InterfaceContext6(2, "eth0", "ff02::fb", self.iface)

    def test_on_link(self) -> None:
        self.assertTrue(self.ctx.on_link("fe80::99"))
        self.assertTrue(self.ctx.on_link("fe80::99%eth0"))
        self.assertTrue(self.ctx.on_link("2001:db8:1::77"))
        self.assertFalse(self.ctx.on_link("2001:db8:2::77"))
        self.assertFalse(self.ctx.on_link("10.0.0.1"))
        self.assertFalse(self.ctx.on_link("garbage"))

    def test_unknown_interface_is_never_on_link(self) -> None:
        ctx = InterfaceContext6(9, "?", "ff02::fb")
        self.assertFalse(ctx.on_link("2001:db8:1::77"))
        self.assertEqual((ctx.addresses, ctx.prefixes), ((), ()))

    def test_fields(self) -> None:
        self.assertEqual(self.ctx.family, socket.AF_INET6)
        self.assertTrue(self.ctx.multicast)
        self.assertEqual([str(p) for p in self.ctx.prefixes], ["fe80::/64", "2001:db8:1::/64"])
        self.assertEqual(self.ctx.addresses, self.iface.ipv6)

    def test_max_payload(self) -> None:
        self.assertEqual(self.ctx.max_payload, 1452)
        self.assertEqual(max_payload6(9216), 9000)
        self.assertEqual(max_payload6(1280), 1232)
