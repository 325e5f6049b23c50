"""
The querier on dual-stack links, on real sockets in network namespaces:
host links lana and lanb with ULA prefixes (fd00:1::/64, fd00:2::/64) and
link-local addresses; scripted peers and avahi-daemon with IPv4 off as
judges.

Until the transport opens an IPv6 port per link itself, L{DualStackHost}
stands in for it: the real IPv4 L{InterfaceTransport} plus one
L{PktInfo6MulticastPort} per link, providing the querier's send seam
(L{twisted_mdns.querier.links.QuerierTransport}): multicast on every family
the link runs.
"""

from __future__ import annotations

import socket
import sys

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain, drain6, ip
from tests.peers import REPO_ROOT, AvahiDaemon, AvahiService, PeerProcess, require_peers
from tests.querier_support import PEERHOST, Recorder, service_records
from tests.support import sleep, wait_until
from twisted_mdns.constants import MDNS_GROUP, MDNS_GROUP6, MDNS_PORT
from twisted_mdns.families import Family
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_AAAA,
    TYPE_PTR,
    aaaa_record,
    pack_one,
    parse,
)
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator
from twisted_mdns.policy import DefaultInterfacePolicy
from twisted_mdns.protocol import MDNSProtocol
from twisted_mdns.querier import Querier
from twisted_mdns.transport import InterfaceTransport


class DualStackHost:
    """
    Our querier on the real transport, both families of every selected
    link (one port per link and family).

    @ivar sent: what went out, C{(family, ifindex)} per datagram.
    """

    def __init__(self, families: Family = Family.BOTH) -> None:
        self.protocol = MDNSProtocol()
        interfaces = SystemInterfaceEnumerator().interfaces()
        selection = DefaultInterfacePolicy(families=families).select(interfaces)
        self.transport = InterfaceTransport(self.protocol, reactor, families=families)
        self.transport.apply(selection.selected, selection.families_of)
        self.links = dict(self.transport.interfaces)
        self.sent: list[tuple[str, int]] = []
        self.querier = Querier(self, reactor)
        self.protocol.handlers.append(self.querier)

    @property
    def interfaces(self) -> dict[int, NetworkInterface]:
        return self.transport.interfaces

    def send(self, datagram: bytes, interface, destination=None) -> bool:
        index = interface if isinstance(interface, int) else interface.index
        fams = self.transport.families_of(index)
        if destination is None:
            for f, label in ((Family.IPV4, "IPv4"), (Family.IPV6, "IPv6")):
                if f in fams:
                    self.sent.append((label, index))
        return self.transport.send(datagram, index, destination)

    def iface(self, name: str) -> NetworkInterface:
        return next(i for i in self.links.values() if i.name == name)

    @defer.inlineCallbacks
    def close(self):
        self.querier.stop()
        yield self.transport.close()


class Peer6:
    """
    A scripted peer in a client namespace on both families: sockets on
    port 5353 hearing 224.0.0.251 and ff02::fb, keeping every query heard
    (with its family), able to send responses over either family.
    """

    def __init__(self, topology, client: str) -> None:
        self.topology = topology
        self.client = client
        self.link = topology.links[client]
        self.index = topology.client_index(client)
        self.sock4 = topology.client_listener(client)
        self.sock4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        self.sock4.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.link.client_ip)
        )
        self.sock6 = topology.client_listener6(client)
        self.queries: list[tuple[str, object]] = []
        self.loop = task.LoopingCall(self.poll)
        self.loop.start(0.005)

    def poll(self) -> None:
        heard = [("IPv4", d, a) for d, a in drain(self.sock4)]
        heard += [("IPv6", d, a) for d, a, _, _ in drain6(self.sock6)]
        for family, data, _address in heard:
            try:
                message = parse(data)
            except Exception:
                continue
            if not message.is_response:
                self.queries.append((family, message))

    def families_asked(self, qtype: int) -> list[str]:
        return sorted(
            family for family, m in self.queries if any(q.qtype == qtype for q in m.questions)
        )

    def send(self, records, family: str, source: str | None = None) -> None:
        packet = pack_one(flags=FLAG_QR | FLAG_AA, answers=list(records))
        if family == "IPv4":
            self.sock4.sendto(packet, (MDNS_GROUP, MDNS_PORT))
        elif source is None:
            self.sock6.sendto(packet, (MDNS_GROUP6, MDNS_PORT, 0, self.index))
        else:
            sock = self.topology.client_socket6(self.client, MDNS_PORT, source)
            try:
                sock.sendto(packet, (MDNS_GROUP6, MDNS_PORT, 0, self.index))
            finally:
                sock.close()

    def close(self) -> None:
        if self.loop.running:
            self.loop.stop()
        self.sock4.close()
        self.sock6.close()


class DualStackQuerierTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 30

    def setUp(self) -> None:
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.host = DualStackHost()
        self.addCleanup(self.host.close)
        self.querier = self.host.querier

    def peer(self, client: str) -> Peer6:
        peer = Peer6(self.topology, client)
        self.addCleanup(peer.close)
        return peer

    @defer.inlineCallbacks
    def test_queries_go_out_on_both_families_of_the_link(self):
        """
        One question on lana reaches link A over IPv4 and over IPv6, and
        nothing reaches link B.
        """
        on_a, on_b = self.peer("a"), self.peer("b")
        self.querier.ask(PEERHOST, TYPE_AAAA, "lana")
        yield wait_until(lambda: len(on_a.families_asked(TYPE_AAAA)) == 2, timeout=3,
                         what="the query over both families")
        yield sleep(0.3)
        self.assertEqual(on_a.families_asked(TYPE_AAAA), ["IPv4", "IPv6"])
        self.assertEqual(on_b.queries, [])
        lana = self.host.iface("lana").index
        self.assertEqual(sorted(self.host.sent), [("IPv4", lana), ("IPv6", lana)])

    @defer.inlineCallbacks
    def test_own_queries_looped_back_over_both_families(self):
        """
        Our continuous queries come back to us over both families (multicast
        loopback): they are recognised as ours and never count as another
        host's (RFC 6762 §7.3), so the series goes on: first query, then
        one second later, on both families each time.
        """
        on_a = self.peer("a")
        browser = self.querier.browse("_http._tcp", Recorder(), interface="lana")
        self.addCleanup(browser.stop)
        yield wait_until(lambda: len(on_a.families_asked(TYPE_PTR)) >= 4, timeout=5,
                         what="two rounds over both families")
        self.assertEqual(on_a.families_asked(TYPE_PTR)[:4], ["IPv4", "IPv4", "IPv6", "IPv6"])
        self.assertGreaterEqual(self.host.protocol.counters["queries"], 4)
        self.assertEqual(self.querier.counters["queries.suppressed"], 0)
        self.assertEqual(self.querier.counters["queries.same-round"], 0)

    @defer.inlineCallbacks
    def test_same_record_over_both_families_is_one_entry(self):
        """
        A peer on link A sends the same response over IPv4 and IPv6: both
        arrive (two responses), one cache entry per record, on lana only.
        """
        peer = self.peer("a")
        records = service_records(address=self.a.client_ip) + [
            aaaa_record(PEERHOST, self.a.client_ip6, 120)
        ]
        peer.send(records, "IPv4")
        peer.send(records, "IPv6")
        yield wait_until(lambda: self.host.protocol.counters["responses"] >= 2, timeout=3,
                         what="both responses")
        cache = self.querier.cache_for("lana")
        self.assertEqual(sorted(cache.records(), key=repr), sorted(records, key=repr))
        self.assertEqual(self.querier.counters["cache.added"], len(records))
        self.assertEqual(len(self.querier.cache_for("lanb")), 0)

    @defer.inlineCallbacks
    def test_off_link_ipv6_source_ignored(self):
        """
        RFC 6762 §11: a response to ff02::fb on lana from an address of
        lanb's prefix is dropped; from the peer's link-local address or
        lana's prefix it is cached.
        """
        peer = self.peer("a")
        ip("-6", "addr", "add", "fd00:2::99/64", "dev", "eth0", "nodad", ns=self.a.client_ns)
        peer.send([aaaa_record(PEERHOST, "fd00:2::99", 120)], "IPv6", source="fd00:2::99")
        yield wait_until(lambda: self.host.protocol.counters["dropped.off-link"], timeout=3,
                         what="the off-link response")
        self.assertEqual(len(self.querier.cache_for("lana")), 0)
        link_local = self.topology.link_local(self.a.client_ns, "eth0")
        peer.send([aaaa_record(PEERHOST, "fd00:1::7", 120)], "IPv6", source=link_local)
        peer.send([aaaa_record(PEERHOST, "fd00:1::8", 120)], "IPv6", source=self.a.client_ip6)
        yield wait_until(lambda: len(self.querier.cache_for("lana")) == 2, timeout=3,
                         what="the on-link responses")
        self.assertEqual(self.host.protocol.counters["dropped.off-link"], 1)

    @defer.inlineCallbacks
    def test_resolve_host_over_ipv6_only_peer(self):
        """
        A scripted peer on link B that answers over IPv6 only, with a ULA
        and a link-local address: resolved on lanb only, scoped.
        """
        peer = self.peer("b")
        link_local = self.topology.link_local(self.b.client_ns, "eth0")

        def answer() -> None:
            if peer.families_asked(TYPE_AAAA):
                peer.send([
                    aaaa_record(PEERHOST, self.b.client_ip6, 120),
                    aaaa_record(PEERHOST, link_local, 120),
                ], "IPv6")

        loop = task.LoopingCall(answer)
        loop.start(0.05)
        self.addCleanup(lambda: loop.running and loop.stop())
        result = yield self.querier.resolve_host("peer", timeout=3)
        self.assertEqual(
            {i.name: v for i, v in result.items()},
            {"lanb": [self.b.client_ip6, f"{link_local}%lanb"]},
        )


class AvahiIPv6OnlyTests(NamespaceTestMixin, unittest.TestCase):
    """
    avahi-daemon with IPv4 off (C{use-ipv4=no}) publishes a service on link
    B: our querier finds and resolves it over IPv6, on lanb only, with the
    peer's ULA and link-local addresses (scoped).
    """

    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("avahi-daemon")
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.b = self.topology.links["b"]
        self.avahi = AvahiDaemon(
            self.b.client_ns, "peer6",
            services=[AvahiService("Avahi Six", "_http._tcp", 8086, txt={"v": "6"}, protocol="ipv6")],
            workdir=self.mktemp(),
            config={"server": {"use-ipv4": "no", "use-ipv6": "yes"}},
        )
        self.addCleanup(self.avahi.stop)

        def ready(_):
            self.host = DualStackHost()
            self.addCleanup(self.host.close)
            self.querier = self.host.querier

        return self.avahi.start().addCallback(ready)

    def addresses(self) -> set[str]:
        link_local = self.topology.link_local(self.b.client_ns, "eth0")
        return {self.b.client_ip6, f"{link_local}%lanb"}

    @defer.inlineCallbacks
    def test_browse_and_resolve(self):
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        self.addCleanup(browser.stop)
        yield wait_until(lambda: recorder.calls, timeout=8, what="the service")
        yield sleep(0.5)
        added = [(e, s.instance, i.name) for e, s, i in recorder.calls if e == "added"]
        self.assertEqual(added, [("added", "Avahi Six", "lanb")])
        service = recorder.calls[-1][1]
        self.assertEqual((service.host, service.port, dict(service.txt)),
                         ("peer6.local", 8086, {"v": b"6"}))
        self.assertEqual(service.ipv4, ())
        self.assertLessEqual(set(service.addresses), self.addresses())
        self.assertIn(self.b.client_ip6, service.addresses)
        for addr in service.sockaddrs():
            host, port, _flow, scope = addr
            self.assertEqual(port, 8086)
            self.assertEqual(scope, self.host.iface("lanb").index if host.startswith("fe80") else 0)
        resolved = yield self.querier.resolve_service("Avahi Six", "_http._tcp", timeout=3)
        self.assertEqual([(s.interface.name, s.port) for s in resolved], [("lanb", 8086)])
        hosts = yield self.querier.resolve_host("peer6", timeout=3)
        self.assertEqual([i.name for i in hosts], ["lanb"])
        self.assertIn(self.b.client_ip6, hosts[self.host.iface("lanb")])
        self.assertLessEqual(set(hosts[self.host.iface("lanb")]), self.addresses())


class ZeroconfIPv6OnlyTests(NamespaceTestMixin, unittest.TestCase):
    """
    python-zeroconf bound to link B's interface with
    C{ip_version=IPVersion.V6Only} publishes a service whose host has a
    ULA and a link-local address: our querier finds it on lanb only, the
    link-local address scoped to lanb in text and as a socket address.
    """

    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("zeroconf")
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.b = self.topology.links["b"]
        self.link_local = self.topology.link_local(self.b.client_ns, "eth0")
        self.publisher = PeerProcess(
            self.b.client_ns,
            [sys.executable, "-m", "tests.zeroconf_peer6", "--interface", "eth0",
             "--type", "_http._tcp", "--instance", "Zc Six", "--port", "8066",
             "--hostname", "zc6.local", "--txt", "v=6",
             "--address", self.b.client_ip6, "--address", self.link_local],
            name="zeroconf-peer6", workdir=self.mktemp(),
            env={"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
            cwd=REPO_ROOT, stdin=True,
        )
        self.publisher.start()
        self.addCleanup(self.publisher.stop)

        def ready(_):
            self.host = DualStackHost()
            self.addCleanup(self.host.close)
            self.querier = self.host.querier

        return self.publisher.wait_for_event(15, event="registered").addCallback(ready)

    @defer.inlineCallbacks
    def test_browse_and_resolve_scoped(self):
        lanb = self.host.iface("lanb")
        expected = (self.b.client_ip6, f"{self.link_local}%lanb")
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        self.addCleanup(browser.stop)
        yield wait_until(
            lambda: recorder.calls and recorder.calls[-1][1].addresses == expected, timeout=8,
            what="the service with both addresses",
        )
        yield sleep(0.5)
        self.assertEqual({(s.instance, i.name) for _, s, i in recorder.calls}, {("Zc Six", "lanb")})
        service = recorder.calls[-1][1]
        self.assertEqual((service.host, service.port, dict(service.txt)), ("zc6.local", 8066, {"v": b"6"}))
        self.assertEqual(
            service.sockaddrs(),
            [(self.b.client_ip6, 8066, 0, 0), (self.link_local, 8066, 0, lanb.index)],
        )
        self.assertEqual(service.to_json()["addresses"], list(expected))
        hosts = yield self.querier.resolve_host("zc6", timeout=3)
        self.assertEqual({i.name: v for i, v in hosts.items()}, {"lanb": list(expected)})
        # The scoped socket address reaches the peer over link B: a TCP
        # connect to the link-local address is refused by the peer's kernel
        # (nothing listens on 8066), which proves the route through lanb.
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(3)
        self.assertRaises(ConnectionRefusedError, sock.connect, service.sockaddrs()[1])
