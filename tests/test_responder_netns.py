"""
The responder on real sockets in real namespaces: interface-scoped answers
as clients on two links see them.

The host namespace runs an L{MDNSService} in this process (host name
C{lab}, a web service); clients on link A (lana, 10.1.0.0/24) and link B
(lanb, 10.2.0.0/24) ask with raw sockets and with dig.
"""

from __future__ import annotations

import socket
import subprocess

from twisted.internet import defer, threads
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain, inside, ip
from tests.support import sleep, start_service, wait_until
from twisted_mdns.message import (
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    Question,
    name_from_text,
    pack_one,
    parse,
)
from twisted_mdns.records import ServiceInfo
from twisted_mdns.service import MDNSService

LAB = name_from_text("lab.local")
WEB = ServiceInfo("Lab Web", "_http._tcp", 8080, {"path": "/"})


def responses(sock: socket.socket) -> list:
    out = []
    for data, source in drain(sock):
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response:
            out.append((m, source))
    return out


class ResponderNetnsTests(NamespaceTestMixin, unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.mdns = yield start_service(self, "lab", [WEB])

    def legacy_query(self, client: str, name, qtype: int, ident: int = 0x4242) -> socket.socket:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=ident, questions=[Question(name, qtype)]), ("224.0.0.251", 5353))
        return sock

    @defer.inlineCallbacks
    def test_legacy_unicast_gets_own_link_address(self):
        for client, link in (("a", self.a), ("b", self.b)):
            sock = self.legacy_query(client, LAB, TYPE_A)
            got = yield wait_until(lambda: responses(sock), what=f"reply on link {client}")
            self.assertEqual(len(got), 1)
            message, source = got[0]
            self.assertEqual(source, (link.host_ip, 5353))
            self.assertEqual(message.id, 0x4242)
            self.assertEqual([(q.name, q.qtype) for q in message.questions], [(LAB, TYPE_A)])
            self.assertEqual([str(r.rdata) for r in message.answers], [link.host_ip])
            for r in message.answers + message.additionals:
                self.assertLessEqual(r.ttl, 10)
                self.assertFalse(r.cache_flush)

    @defer.inlineCallbacks
    def test_repeated_legacy_questions_answered_from_the_reply_cache(self):
        """
        Exact repeats of a legacy question are answered by the port's reader
        from the reply cache: still per interface, id echoed, and forgotten
        as soon as what we publish changes.
        """
        cache = self.mdns.transport.reply_cache
        for client, link in (("a", self.a), ("b", self.b)):
            sock = self.topology.client_socket(client)
            self.addCleanup(sock.close)
            for ident in range(1, 6):
                sock.sendto(pack_one(ident=ident, questions=[Question(WEB.type_name, TYPE_PTR)]), (link.host_ip, 5353))
                got = yield wait_until(lambda: responses(sock), what=f"reply {ident} on {client}")
                (message, source), = got
                self.assertEqual(message.id, ident)
                self.assertEqual(source, (link.host_ip, 5353))
                self.assertEqual([str(r.rdata) for r in message.additionals if r.rtype == TYPE_A], [link.host_ip])
        self.assertEqual({index for index, _ in cache.replies}, {self.a.host_index, self.b.host_index})
        answered = self.mdns.counters["answered.legacy"]
        yield self.mdns.unregister(WEB)
        self.assertEqual(cache.replies, {})
        sock = self.topology.client_socket("a")
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=9, questions=[Question(WEB.type_name, TYPE_PTR)]), (self.a.host_ip, 5353))
        yield sleep(0.5)
        self.assertEqual(responses(sock), [], "nothing stale answered after the change")
        self.assertEqual(self.mdns.counters["answered.legacy"], answered)

    @defer.inlineCallbacks
    def test_dig_gets_own_link_address(self):
        for client, link in (("a", self.a), ("b", self.b)):
            out = yield threads.deferToThread(
                subprocess.run,
                ["ip", "netns", "exec", link.client_ns, "dig", f"@{link.host_ip}", "-p", "5353",
                 "lab.local", "A", "+short", "+time=2", "+tries=2"],
                capture_output=True, text=True, timeout=20,
            )
            self.assertEqual(out.stdout.split(), [link.host_ip], out.stderr)

    @defer.inlineCallbacks
    def test_qm_srv_query_answers_with_link_b_addresses_only(self):
        # Past both announcements (and the 1 s multicast rate limit), so the
        # response that arrives is the answer to this query.
        yield sleep(2.2)
        listener = self.topology.client_listener("b")
        self.addCleanup(listener.close)
        querier = self.topology.client_socket("b", port=5353)
        self.addCleanup(querier.close)
        querier.sendto(pack_one(questions=[Question(WEB.name, TYPE_SRV)]), ("224.0.0.251", 5353))
        got = yield wait_until(lambda: [m for m, _ in responses(listener) if m.answers and m.answers[0].rtype == TYPE_SRV],
                               what="SRV response on link B")
        message = got[0]
        addresses = [str(r.rdata) for r in message.answers + message.additionals if r.rtype == TYPE_A]
        self.assertEqual(addresses, [self.b.host_ip])
        self.assertEqual(message.answers[0].rdata.port, 8080)

    @defer.inlineCallbacks
    def test_ptr_browse_on_each_link(self):
        # Registration fires at the first announcement; the second follows
        # 1 s later.  Ask more than 1 s after that, so what arrives is the
        # answer (a record is multicast at most once a second per interface).
        yield sleep(2.2)
        for client, link in (("a", self.a), ("b", self.b)):
            listener = self.topology.client_listener(client)
            self.addCleanup(listener.close)
            q = self.topology.client_socket(client, port=5353)
            self.addCleanup(q.close)
            q.sendto(pack_one(questions=[Question(WEB.type_name, TYPE_PTR)]), ("224.0.0.251", 5353))
            got = yield wait_until(
                lambda: [m for m, _ in responses(listener)
                         if any(r.rtype == TYPE_PTR and r.name == WEB.type_name for r in m.answers)],
                what=f"PTR response on {client}")
            records = got[0].answers + got[0].additionals
            self.assertEqual([str(r.rdata) for r in records if r.rtype == TYPE_A], [link.host_ip])
            self.assertIn(TYPE_SRV, {r.rtype for r in records})

    @defer.inlineCallbacks
    def test_off_link_source_gets_no_answer(self):
        """
        RFC 6762 s11: a query whose source is not on the receiving link
        gets no answer, multicast or unicast, although an answer could
        reach it (the host routes the off-link subnet over lana, and a
        datagram sent that way arrives).
        """
        # Client A gains an address on another subnet and asks from it: the
        # datagram arrives on lana with a source that is not on lana's subnet.
        ip("addr", "add", "10.50.0.2/24", "dev", "eth0", ns=self.a.client_ns)
        ip("route", "add", "10.50.0.0/24", "dev", self.a.host_if, ns=self.topology.host_ns)
        with inside(self.a.client_ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("10.50.0.2", 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.50.0.2"))
            sock.setblocking(False)
        self.addCleanup(sock.close)
        # The way back works: from the host namespace, by that route.
        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(back.close)
        back.sendto(b"reachable", ("10.50.0.2", sock.getsockname()[1]))
        yield wait_until(lambda: [d for d, _ in drain(sock) if d == b"reachable"], what="the way back")

        before = self.mdns.counters["dropped.off-link"]
        sock.sendto(pack_one(ident=7, questions=[Question(LAB, TYPE_A)]), ("224.0.0.251", 5353))
        yield wait_until(lambda: self.mdns.counters["dropped.off-link"] > before, what="multicast drop counted")
        # A unicast query from the off-link address, straight to lana's.
        before = self.mdns.counters["dropped.off-link"]
        sock.sendto(pack_one(ident=8, questions=[Question(LAB, TYPE_A)]), (self.a.host_ip, 5353))
        yield wait_until(lambda: self.mdns.counters["dropped.off-link"] > before, what="unicast drop counted")
        yield sleep(0.5)
        self.assertEqual(responses(sock), [])

    @defer.inlineCallbacks
    def test_stop_sends_goodbyes_on_every_interface(self):
        listeners = {}
        for client in ("a", "b"):
            listeners[client] = self.topology.client_listener(client)
            self.addCleanup(listeners[client].close)
        yield self.mdns.stopService()
        for client, link in (("a", self.a), ("b", self.b)):
            got = yield wait_until(lambda: responses(listeners[client]), what="goodbyes")
            records = [r for m, _ in got for r in m.answers]
            self.assertTrue(records)
            self.assertTrue(all(r.ttl == 0 for r in records), records)
            types = {r.rtype for r in records}
            self.assertEqual(types, {TYPE_A, TYPE_PTR, TYPE_SRV, 16})
            self.assertEqual([str(r.rdata) for r in records if r.rtype == TYPE_A], [link.host_ip])


class PeerInteropTests(NamespaceTestMixin, unittest.TestCase):
    """
    Peers written by others judge us: python-zeroconf resolves our service
    on each link, avahi-daemon defends a host name we then must give up.
    """

    timeout = 90

    def setUp(self):
        from tests.peers import require_peers

        super().setUp()
        require_peers("avahi-daemon", "zeroconf")
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]

    def start_mdns(self, hostname: str = "lab") -> MDNSService:
        mdns = MDNSService(hostname=hostname, monitor=False)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        return mdns

    @defer.inlineCallbacks
    def test_zeroconf_resolves_with_its_own_link_address(self):
        from tests.peers import zeroconf_resolve_host, zeroconf_resolve_service

        mdns = self.start_mdns()
        yield mdns.register(WEB)
        for link in (self.a, self.b):
            found = yield zeroconf_resolve_service(link.client_ns, "_http._tcp", "Lab Web", timeout=5)
            self.assertIsNotNone(found, f"zeroconf in {link.client_ns} resolved nothing")
            self.assertEqual(list(found.addresses), [link.host_ip])
            self.assertEqual(found.port, 8080)
            self.assertEqual(found.server.rstrip("."), "lab.local")
            self.assertEqual(found.txt, {"path": "/"})
            addresses = yield zeroconf_resolve_host(link.client_ns, "lab.local.", timeout=5)
            self.assertEqual(addresses, [link.host_ip])

    @defer.inlineCallbacks
    def test_host_name_claimed_by_avahi_makes_us_rename(self):
        from tests.peers import AvahiDaemon, dig_query

        avahi = AvahiDaemon(self.a.client_ns, "lab")
        self.addCleanup(avahi.stop)
        claimed = yield avahi.start(timeout=15)
        self.assertEqual(claimed, "lab.local")
        mdns = self.start_mdns("lab")
        # MDNSService.hostname changes once the (new) name is claimed.
        yield wait_until(lambda: mdns.hostname != "lab", timeout=15, what="host claimed")
        self.assertEqual(mdns.hostname, "lab-2")
        self.assertGreaterEqual(mdns.counters["conflicts"], 1)
        yield sleep(1.0)
        self.assertNotIn("conflict", avahi.log.lower(), "avahi keeps its name")
        self.assertTrue(avahi.running)
        # Each answers for its own name on link A; on link B only we exist,
        # and our new name is claimed there too.
        theirs = yield dig_query(self.a.client_ns, self.a.client_ip, "lab.local", "A", timeout=2)
        self.assertEqual(theirs.data("A"), [self.a.client_ip])
        ours = yield dig_query(self.a.client_ns, self.a.host_ip, "lab-2.local", "A", timeout=2)
        self.assertEqual(ours.data("A"), [self.a.host_ip])
        ours_b = yield dig_query(self.b.client_ns, self.b.host_ip, "lab-2.local", "A", timeout=2)
        self.assertEqual(ours_b.data("A"), [self.b.host_ip])


FILES = ServiceInfo("Lab Files", "_http._tcp", 8081, {"share": "docs"}, interfaces=("lanb",))


class ThirdPartyBrowserTests(NamespaceTestMixin, unittest.TestCase):
    """
    Browsers written by others find our services on each link, without
    being told their names (RFC 6763 PTR browse, then resolve), each link
    with its own address: python-zeroconf's C{ServiceBrowser}, and
    C{avahi-browse -rpt} through an avahi-daemon in the client namespace.
    C{Lab Web} is published on both links, C{Lab Files} on lanb only.
    """

    timeout = 90

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        self.mdns = yield start_service(self, "lab", [WEB, FILES])

    @defer.inlineCallbacks
    def test_zeroconf_service_browser(self):
        from tests.peers import require_peers, zeroconf_browse

        require_peers("zeroconf")
        # Link B: both services (the browse ends once both resolved).
        found = yield zeroconf_browse(self.b.client_ns, "_http._tcp", 15, expect=2)
        self.assertEqual(
            [(s.instance, s.server, s.port, s.addresses, s.txt) for s in found],
            [("Lab Files", "lab.local.", 8081, (self.b.host_ip,), {"share": "docs"}),
             ("Lab Web", "lab.local.", 8080, (self.b.host_ip,), {"path": "/"})],
        )
        # Link A: Lab Web alone, with link A's address (browsed for a
        # while: Lab Files must not turn up).
        found = yield zeroconf_browse(self.a.client_ns, "_http._tcp", 4)
        self.assertEqual(
            [(s.instance, s.server, s.port, s.addresses, s.txt) for s in found],
            [("Lab Web", "lab.local.", 8080, (self.a.host_ip,), {"path": "/"})],
        )

    @defer.inlineCallbacks
    def test_avahi_browse(self):
        from tests.peers import AvahiDaemon, require_peers

        require_peers("avahi-daemon", "avahi-browse")
        expected = {
            "a": [("eth0", "IPv4", "Lab Web", "_http._tcp", "local", "lab.local", self.a.host_ip, 8080, ("path=/",))],
            "b": [("eth0", "IPv4", "Lab Files", "_http._tcp", "local", "lab.local", self.b.host_ip, 8081, ("share=docs",)),
                  ("eth0", "IPv4", "Lab Web", "_http._tcp", "local", "lab.local", self.b.host_ip, 8080, ("path=/",))],
        }
        for client, link in (("a", self.a), ("b", self.b)):
            avahi = AvahiDaemon(link.client_ns, f"client{client}", dbus=True, workdir=self.mktemp())
            self.addCleanup(avahi.stop)
            yield avahi.start(timeout=15)
            found = yield avahi.browse("_http._tcp", timeout=20)
            self.assertEqual(
                [(e.interface, e.protocol, e.name, e.type, e.domain, e.host, e.address, e.port, e.txt)
                 for e in found],
                expected[client], avahi.log[-2000:],
            )
