"""
The responder on both address families, on real sockets in namespaces.

The host namespace runs an L{MDNSService} (host name C{lab}, a web
service) on links lana and lanb, each with IPv4 (10.N.0.1/24), a ULA
(fd00:N::1/64) and its link-local address; clients on each link ask over
IPv4 and IPv6, by legacy unicast and by multicast.  RFC 6762 §6.2 and §14:
each link hears its own addresses of both families and none of the other
link's; an A question over IPv6 and an AAAA question over IPv4 are
answered, with the other family in the additional section.
"""

from __future__ import annotations

import socket

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain, drain6, ip
from tests.support import sleep, start_service, wait_until
from twisted_mdns.constants import MDNS_GROUP6, TYPE_A, TYPE_AAAA, TYPE_NSEC, TYPE_PTR, TYPE_SRV, TYPE_TXT
from twisted_mdns.families import Family
from twisted_mdns.message import Message, Question, name_from_text, nsec_types, pack_one, parse
from twisted_mdns.records import ServiceInfo, reverse_name
from twisted_mdns.service import MDNSService

LAB = name_from_text("lab.local")
WEB = ServiceInfo("Lab Web", "_http._tcp", 8080, {"path": "/"})
WEB_TYPE = name_from_text("_http._tcp.local")


def parsed(items: list) -> list[tuple[Message, tuple, int | None]]:
    """
    The responses among C{drain6} or C{drain} items, with source and hop
    limit (C{None} over IPv4).
    """
    out = []
    for item in items:
        data, source = item[0], item[1]
        hops = item[2] if len(item) > 2 else None
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response:
            out.append((m, source, hops))
    return out


def addresses(records: list, rtype: int | None = None) -> set[str]:
    return {str(r.rdata) for r in records if r.rtype in ((rtype,) if rtype else (TYPE_A, TYPE_AAAA))}


class DualStackMixin(NamespaceTestMixin):
    """
    Two links with IPv4, ULA and link-local addresses (DAD over), and the
    host's link-local addresses known.
    """

    def setUp(self):
        super().setUp()
        self.topology.add_ipv6()
        self.a = self.topology.links["a"]
        self.b = self.topology.links["b"]
        host = self.topology.host_ns
        self.host_ll = {
            "a": self.topology.link_local(host, self.a.host_if),
            "b": self.topology.link_local(host, self.b.host_if),
        }

    def own_addresses(self, client: str) -> set[str]:
        link = self.topology.links[client]
        return {link.host_ip, link.host_ip6, self.host_ll[client]}

    def own6(self, client: str) -> set[str]:
        link = self.topology.links[client]
        return {link.host_ip6, self.host_ll[client]}

    def legacy6(self, client: str, name, qtype: int, ident: int = 0x6666, bind: str = "::") -> socket.socket:
        """
        A legacy (non-5353) query over IPv6 to ff02::fb from C{client}.
        """
        sock = self.topology.client_socket6(client, bind=bind)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=ident, questions=[Question(name, qtype)]), (MDNS_GROUP6, 5353, 0, self.topology.client_index(client)))
        return sock

    def legacy4(self, client: str, name, qtype: int, ident: int = 0x4444) -> socket.socket:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=ident, questions=[Question(name, qtype)]), ("224.0.0.251", 5353))
        return sock


class IPv6AnsweringTests(DualStackMixin, unittest.TestCase):
    timeout = 90

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.mdns = yield start_service(self, "lab", [WEB])

    def test_every_link_runs_both_families(self):
        transport = self.mdns.transport
        for link in (self.a, self.b):
            self.assertEqual(transport.families_of(link.host_index), Family.BOTH)
        self.assertEqual(sorted(transport.ports6), sorted([self.a.host_index, self.b.host_index]))

    def test_records_per_link(self):
        """
        Each link's view holds its own AAAA records (ULA and link-local)
        and ip6.arpa reverse mappings, and none of the other link's.
        """
        for client, other in (("a", "b"), ("b", "a")):
            link = self.topology.links[client]
            records = self.mdns.responder.records_for(link.host_index)
            self.assertEqual(addresses(records, TYPE_AAAA), self.own6(client))
            ptr_names = {r.name for r in records if r.rtype == TYPE_PTR}
            for address in self.own6(client):
                self.assertIn(reverse_name(address), ptr_names)
            for address in self.own6(other):
                self.assertNotIn(reverse_name(address), ptr_names)

    @defer.inlineCallbacks
    def test_legacy_aaaa_over_ipv6_gets_own_link_addresses(self):
        for client in ("a", "b"):
            sock = self.legacy6(client, LAB, TYPE_AAAA)
            got = yield wait_until(lambda: parsed(drain6(sock)), what=f"IPv6 reply on link {client}")
            self.assertEqual(len(got), 1)
            message, source, hops = got[0]
            self.assertEqual(hops, 255, "RFC 6762 §11: hop limit 255")
            self.assertEqual(message.id, 0x6666)
            self.assertEqual([(q.name, q.qtype) for q in message.questions], [(LAB, TYPE_AAAA)])
            self.assertEqual(addresses(message.answers), self.own6(client))
            # RFC 6762 §6.2: the other family in the additional section.
            self.assertEqual(addresses(message.additionals, TYPE_A), {self.topology.links[client].host_ip})
            for r in message.answers + message.additionals:
                self.assertLessEqual(r.ttl, 10)
                self.assertFalse(r.cache_flush)

    @defer.inlineCallbacks
    def test_a_question_over_ipv6_is_answered(self):
        """
        avahi 0.8 sends no A records over IPv6; RFC 6762 §6.2 asks for them.
        """
        for client in ("a", "b"):
            link = self.topology.links[client]
            sock = self.legacy6(client, LAB, TYPE_A, ident=7)
            got = yield wait_until(lambda: parsed(drain6(sock)), what="A over IPv6")
            message = got[0][0]
            self.assertEqual(addresses(message.answers), {link.host_ip})
            self.assertEqual(addresses(message.additionals, TYPE_AAAA), self.own6(client))

    @defer.inlineCallbacks
    def test_aaaa_question_over_ipv4_is_answered(self):
        """
        Before IPv6 the answer was an NSEC denying AAAA: false.
        """
        for client in ("a", "b"):
            link = self.topology.links[client]
            sock = self.legacy4(client, LAB, TYPE_AAAA)
            got = yield wait_until(lambda: parsed(drain(sock)), what="AAAA over IPv4")
            message, source, _ = got[0]
            self.assertEqual(source, (link.host_ip, 5353))
            self.assertEqual(addresses(message.answers), self.own6(client))
            self.assertNotIn(TYPE_NSEC, {r.rtype for r in message.answers})
            self.assertEqual(addresses(message.additionals, TYPE_A), {link.host_ip})

    @defer.inlineCallbacks
    def test_nsec_lists_both_types(self):
        """
        RFC 6762 §6.1: a type the host name lacks gets an NSEC listing what
        it has: A and AAAA.
        """
        for ask in (self.legacy4, self.legacy6):
            sock = ask("a", LAB, TYPE_TXT)
            reader = drain if ask == self.legacy4 else drain6
            got = yield wait_until(lambda: parsed(reader(sock)), what="NSEC")
            nsec = [r for r in got[0][0].answers if r.rtype == TYPE_NSEC]
            self.assertEqual(len(nsec), 1)
            self.assertEqual(nsec_types(nsec[0]), {TYPE_A, TYPE_AAAA})

    @defer.inlineCallbacks
    def test_srv_over_ipv6_carries_both_families_of_its_link(self):
        for client in ("a", "b"):
            sock = self.legacy6(client, WEB.name, TYPE_SRV, ident=9)
            got = yield wait_until(lambda: parsed(drain6(sock)), what="SRV over IPv6")
            message = got[0][0]
            self.assertEqual([r.rtype for r in message.answers], [TYPE_SRV])
            self.assertEqual(addresses(message.additionals), self.own_addresses(client))

    @defer.inlineCallbacks
    def test_reverse_ip6_arpa_answered(self):
        name = reverse_name(self.a.host_ip6)
        sock = self.legacy6("a", name, TYPE_PTR)
        got = yield wait_until(lambda: parsed(drain6(sock)), what="ip6.arpa PTR")
        self.assertEqual([r.rtype for r in got[0][0].answers], [TYPE_PTR])
        self.assertEqual(str(got[0][0].answers[0].rdata), "lab.local.")
        # Link b does not hear link a's reverse mapping.
        sock = self.legacy6("b", name, TYPE_PTR)
        yield sleep(0.5)
        self.assertEqual(parsed(drain6(sock)), [])

    @defer.inlineCallbacks
    def test_legacy_from_ula_source_answered_from_ula(self):
        """
        A legacy query from a ULA source, sent to our ULA address: the
        reply comes from the address asked, out of the arrival link.
        """
        sock = self.topology.client_socket6("a", bind=self.a.client_ip6)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=3, questions=[Question(LAB, TYPE_AAAA)]), (self.a.host_ip6, 5353))
        got = yield wait_until(lambda: parsed(drain6(sock)), what="unicast reply")
        message, source, hops = got[0]
        self.assertEqual(source[0], self.a.host_ip6)
        self.assertEqual(hops, 255)
        self.assertEqual(addresses(message.answers), self.own6("a"))

    @defer.inlineCallbacks
    def test_multicast_query_over_ipv6_answered_on_ff02(self):
        """
        A QM query from port 5353 over IPv6: the answer is multicast to
        ff02::fb on that link (and only that link), hop limit 255, A in
        the answers, the link's AAAA as additionals.
        """
        listeners = {c: self.topology.client_listener6(c) for c in ("a", "b")}
        for s in listeners.values():
            self.addCleanup(s.close)
        # Past the second announcement (1 s after the first, which the
        # registration waited for) and the one-second rate limit (§6).
        yield sleep(2.3)
        for s in listeners.values():
            drain6(s)
        query = pack_one(questions=[Question(LAB, TYPE_A)])
        listeners["a"].sendto(query, (MDNS_GROUP6, 5353, 0, self.topology.client_index("a")))

        def answered():
            return [
                (m, src, hops) for m, src, hops in parsed(drain6(listeners["a"]))
                if any(r.rtype == TYPE_A and r.name == LAB for r in m.answers)
            ]

        got = yield wait_until(answered, what="multicast answer over IPv6")
        message, source, hops = got[0]
        self.assertEqual(hops, 255)
        self.assertEqual(source[0].split("%")[0], self.host_ll["a"])
        self.assertEqual(addresses(message.answers), {self.a.host_ip})
        self.assertEqual(addresses(message.additionals, TYPE_AAAA), self.own6("a"))
        heard_b = [m for m, _, _ in parsed(drain6(listeners["b"])) if any(r.rtype == TYPE_A for r in m.answers)]
        self.assertEqual(heard_b, [])

    @defer.inlineCallbacks
    def test_off_link_ipv6_source_refused(self):
        """
        RFC 6762 §11: a query from a source outside the link's prefixes
        (and not fe80::/10) is not answered, multicast or unicast, and is
        counted.
        """
        ip("-6", "addr", "add", "fd00:99::2/64", "dev", "eth0", "nodad", ns=self.a.client_ns)
        before = self.mdns.counters["dropped.off-link"]
        sock = self.legacy6("a", LAB, TYPE_AAAA, bind="fd00:99::2")
        yield wait_until(lambda: self.mdns.counters["dropped.off-link"] > before, what="off-link drop")
        yield sleep(0.3)
        self.assertEqual(parsed(drain6(sock)), [])


class IPv6OnlyLinkTests(DualStackMixin, unittest.TestCase):
    """
    Link b has no IPv4 address at all: it is used, over IPv6 only.
    """

    timeout = 90

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        ip("-4", "addr", "flush", "dev", self.b.host_if, ns=self.topology.host_ns)
        self.mdns = yield start_service(self, "lab", [WEB])

    def test_ipv6_port_only(self):
        transport = self.mdns.transport
        self.assertEqual(transport.families_of(self.b.host_index), Family.IPV6)
        self.assertNotIn(self.b.host_index, transport.ports)
        self.assertIn(self.b.host_index, transport.ports6)
        self.assertEqual(transport.families_of(self.a.host_index), Family.BOTH)

    @defer.inlineCallbacks
    def test_answered_over_ipv6_with_nsec_for_a(self):
        sock = self.legacy6("b", LAB, TYPE_AAAA)
        got = yield wait_until(lambda: parsed(drain6(sock)), what="AAAA on the IPv6-only link")
        message = got[0][0]
        self.assertEqual(addresses(message.answers), self.own6("b"))
        # §6.2: no A here, and an NSEC says so.
        nsec = [r for r in message.additionals if r.rtype == TYPE_NSEC]
        self.assertEqual([nsec_types(r) for r in nsec], [{TYPE_AAAA}])
        sock = self.legacy6("b", LAB, TYPE_A, ident=2)
        got = yield wait_until(lambda: parsed(drain6(sock)), what="A on the IPv6-only link")
        self.assertEqual([(r.rtype, nsec_types(r)) for r in got[0][0].answers], [(TYPE_NSEC, {TYPE_AAAA})])

    @defer.inlineCallbacks
    def test_service_resolvable(self):
        sock = self.legacy6("b", WEB.name, TYPE_SRV)
        got = yield wait_until(lambda: parsed(drain6(sock)), what="SRV on the IPv6-only link")
        message = got[0][0]
        self.assertEqual(addresses(message.additionals), self.own6("b"))


class IPv6LifeTests(DualStackMixin, unittest.TestCase):
    """
    Probes, announcements and goodbyes on ff02::fb, and IPv6 addresses
    coming and going while we run.
    """

    timeout = 120

    def listen(self, client: str) -> socket.socket:
        s = self.topology.client_listener6(client)
        self.addCleanup(s.close)
        return s

    @defer.inlineCallbacks
    def test_probe_announce_goodbye_on_ff02(self):
        listener = self.listen("a")
        mdns = MDNSService(hostname="lab", monitor=False)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        heard: list = []

        def collect():
            for data, src, hops, _ in drain6(listener):
                try:
                    heard.append((parse(data), src, hops))
                except Exception:
                    pass
            return heard

        def probe_seen():
            return [m for m, _, _ in collect() if not m.is_response and any(
                r.rtype == TYPE_AAAA and r.name == LAB for r in m.authorities)]

        probes = yield wait_until(probe_seen, timeout=10, what="probe over IPv6")
        self.assertEqual(addresses(probes[0].authorities, TYPE_AAAA), self.own6("a"))

        def announcements():
            return [m for m, _, _ in collect() if m.is_response and any(
                r.rtype == TYPE_AAAA and r.ttl > 0 for r in m.answers)]

        got = yield wait_until(lambda: len(announcements()) >= 2, timeout=10, what="two announcements over IPv6")
        for m in announcements():
            self.assertEqual(addresses(m.answers), self.own_addresses("a"))
        self.assertTrue(all(h == 255 for _, _, h in heard))
        yield mdns.stopService()

        def goodbyes():
            return [m for m, _, _ in collect() if m.is_response and any(
                r.rtype == TYPE_AAAA and r.ttl == 0 for r in m.answers)]

        got = yield wait_until(goodbyes, timeout=5, what="goodbye over IPv6")
        self.assertEqual(addresses([r for r in got[0].answers if r.ttl == 0], TYPE_AAAA), self.own6("a"))

    @defer.inlineCallbacks
    def test_hot_plug_ipv6_addresses(self):
        """
        An address added (with DAD) is announced once DAD ends, on its link
        only; removed, it gets a goodbye.
        """
        listeners = {c: self.listen(c) for c in ("a", "b")}
        mdns = MDNSService(hostname="lab")  # follows changes (netlink)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        yield wait_until(lambda: mdns.responder.host_claimed, timeout=10, what="host claimed")
        yield sleep(1.5)
        for s in listeners.values():
            drain6(s)
        new = "fd00:7::1"
        ip("-6", "addr", "add", f"{new}/64", "dev", self.a.host_if, ns=self.topology.host_ns)
        # Tentative first: not published while DAD runs.
        self.assertNotIn(new, addresses(mdns.responder.records_for(self.a.host_index)))

        def announced():
            return [m for m, _, _ in parsed(drain6(listeners["a"])) if any(
                r.rtype == TYPE_AAAA and str(r.rdata) == new and r.ttl > 0 for r in m.answers)]

        got = yield wait_until(announced, timeout=15, what="new address announced")
        self.assertIn(self.a.host_ip6, addresses(got[0].answers))
        self.assertIn(new, addresses(mdns.responder.records_for(self.a.host_index)))
        self.assertNotIn(new, addresses(mdns.responder.records_for(self.b.host_index)))
        heard_b = [m for m, _, _ in parsed(drain6(listeners["b"])) if new in addresses(m.answers)]
        self.assertEqual(heard_b, [])
        # Its reverse mapping is claimed too.
        yield wait_until(
            lambda: reverse_name(new) in {r.name for r in mdns.responder.records_for(self.a.host_index)},
            timeout=10, what="ip6.arpa claimed",
        )

        ip("-6", "addr", "del", f"{new}/64", "dev", self.a.host_if, ns=self.topology.host_ns)

        def goodbye():
            return [m for m, _, _ in parsed(drain6(listeners["a"])) if any(
                r.rtype == TYPE_AAAA and str(r.rdata) == new and r.ttl == 0 for r in m.answers)]

        yield wait_until(goodbye, timeout=10, what="goodbye for the removed address")
        self.assertNotIn(new, addresses(mdns.responder.records_for(self.a.host_index)))

    @defer.inlineCallbacks
    def test_link_gains_ipv6_port_when_its_first_address_is_publishable(self):
        """
        A link with IPv4 only gets its IPv6 port once it has a publishable
        IPv6 address (here: IPv6 turned on for it while we run; its
        link-local and ULA addresses go through DAD first).
        """
        host = self.topology.host_ns
        sysctl = f"net.ipv6.conf.{self.b.host_if}.disable_ipv6"
        ip("netns", "exec", host, "sysctl", "-qw", f"{sysctl}=1")
        mdns = MDNSService(hostname="lab")
        mdns.startService()
        self.addCleanup(mdns.stopService)
        self.assertEqual(mdns.transport.families_of(self.b.host_index), Family.IPV4)
        ip("netns", "exec", host, "sysctl", "-qw", f"{sysctl}=0")
        ip("-6", "addr", "add", f"{self.b.host_ip6}/64", "dev", self.b.host_if, ns=host)
        yield wait_until(
            lambda: mdns.transport.families_of(self.b.host_index) == Family.BOTH,
            timeout=15, what="IPv6 port on lanb",
        )
        listener = self.listen("b")
        # The link-local address may end its DAD before the ULA (the port
        # opens with the first): ask again until the ULA is published too.
        deadline = reactor.seconds() + 15
        while True:
            sock = self.legacy6("b", LAB, TYPE_AAAA)
            got = yield wait_until(lambda: parsed(drain6(sock)), timeout=10, what="AAAA on lanb")
            found = addresses(got[0][0].answers)
            if self.b.host_ip6 in found or reactor.seconds() > deadline:
                break
            yield sleep(0.3)
        self.assertIn(self.b.host_ip6, found)
        self.assertTrue(all(a == self.b.host_ip6 or a.startswith("fe80:") for a in found), found)
        listener.close()


class TwistdFamilyTests(DualStackMixin, unittest.TestCase):
    """
    C{twistd mdns --ipv6-only} / C{--ipv4-only} as a user runs them: the
    process answers over the family chosen only, and logs each link's
    families.
    """

    timeout = 90

    @defer.inlineCallbacks
    def start_twistd(self, *options: str):
        from tests.peers import REPO_ROOT, PeerProcess
        from tests.test_twistd import twistd_argv

        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--hostname", "lab", *options), name="twistd",
            env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        yield proc.wait_for(r"host name \S+\.local claimed", timeout=15)
        return proc

    @defer.inlineCallbacks
    def answered(self, ask, reader, qtype: int) -> defer.Deferred:
        sock = ask("a", LAB, qtype)
        try:
            got = yield wait_until(lambda: parsed(reader(sock)), timeout=2, what="an answer")
        except AssertionError:
            return set()
        return addresses(got[0][0].answers)

    @defer.inlineCallbacks
    def test_ipv6_only(self):
        proc = yield self.start_twistd("--ipv6-only")
        self.assertIn("lana (IPv6)", proc.stdout + proc.stderr)
        got = yield self.answered(self.legacy6, drain6, TYPE_AAAA)
        self.assertEqual(got, self.own6("a"))
        # §6.2: the A record still travels, over IPv6.
        got = yield self.answered(self.legacy6, drain6, TYPE_A)
        self.assertEqual(got, {self.a.host_ip})
        got = yield self.answered(self.legacy4, drain, TYPE_A)
        self.assertEqual(got, set(), "no IPv4 port")

    @defer.inlineCallbacks
    def test_ipv4_only(self):
        proc = yield self.start_twistd("--ipv4-only")
        self.assertIn("lana (IPv4)", proc.stdout + proc.stderr)
        got = yield self.answered(self.legacy4, drain, TYPE_AAAA)
        self.assertEqual(got, self.own6("a"))
        got = yield self.answered(self.legacy6, drain6, TYPE_AAAA)
        self.assertEqual(got, set(), "no IPv6 port")
