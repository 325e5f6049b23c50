"""
The Discovery Proxy end to end (RFC 8766): an L{MDNSService} on links A
and B with a L{DiscoveryProxy}; avahi-daemon and python-zeroconf publish on
link B; a DNS client on another subnet, routed to the proxy host, browses
with C{dig} over UDP and TCP.

    client 10.60.0.2 -- router -- 10.50.0.1 host (proxy) lana 10.1.0.1 -- link A
                                                        lanb 10.2.0.1 -- link B:
                                                            avahi "Avahi Web",
                                                              "Printer v2.1"
                                                            zeroconf "Zc Web"
"""

from __future__ import annotations

import ipaddress
import time

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.netns import NamespaceTestMixin
from tests.peers import AvahiDaemon, AvahiService, ZeroconfPublisher, dig_query, require_peers
from tests.proxy_support import add_routed_client
from tests.support import sleep
from twisted_mdns.message import TYPE_A, name_from_text
from twisted_mdns.policy import ExplicitInterfacePolicy
from twisted_mdns.proxy import DomainMap
from twisted_mdns.service import MDNSService

AVAHI_WEB = AvahiService("Avahi Web", "_http._tcp", 8080, txt=("path=/avahi",))
#: A dot inside an instance label (RFC 6763 §4.1.1 allows any text).
AVAHI_PRINTER = AvahiService("Printer v2.1", "_ipp._tcp", 631, txt=("rp=ipp/print",))
WAIT = 0.8


class ProxyEndToEndTests(NamespaceTestMixin, TestCase):
    clients = ("a", "b")
    virtual = False
    timeout = 90

    def setUp(self):
        require_peers("avahi-daemon", "zeroconf", "dig")
        super().setUp()
        self.client = add_routed_client(self.topology)
        self.link_b = self.topology.links["b"]
        return defer.ensureDeferred(self._start())

    async def _start(self):
        self.avahi = AvahiDaemon(
            self.link_b.client_ns, "avahipeer", [AVAHI_WEB, AVAHI_PRINTER], workdir=self.mktemp(),
            static_hosts={"linklocal.local": "169.254.5.5"},
        )
        self.addCleanup(self.avahi.stop)
        self.zeroconf = ZeroconfPublisher(
            self.link_b.client_ns, "Zc Web", "_http._tcp", 8081, {"path": "/zc"},
            hostname="zcpeer.local.", workdir=self.mktemp(),
        )
        self.addCleanup(self.zeroconf.stop)
        await defer.gatherResults([self.avahi.start(), self.zeroconf.start()])
        self.mdns = MDNSService(
            policy=ExplicitInterfacePolicy(["lana", "lanb"]), hostname="proxyhost", monitor=False,
        )
        self.proxy = self.mdns.add_discovery_proxy(
            DomainMap.parse(["lana=a.lab.example", "lanb=b.lab.example"]),
            listen=[(self.client.host_ip, 0)],
            allow=[ipaddress.ip_network(self.client.subnet)],
            wait=WAIT, server="proxy.lab.example",
        )
        self.mdns.startService()
        self.addCleanup(self.mdns.stopService)
        self.addCleanup(self.proxy.stopService)
        self.port = self.proxy.address()[1]

    def dig(self, name: str, rtype: str, tcp: bool = False, ns: str | None = None, **kw):
        extra = ["+tcp"] if tcp else []
        return dig_query(ns or self.client.ns, self.client.host_ip, name, rtype,
                         port=self.port, timeout=3, extra=extra, **kw)

    async def browse(self, tcp: bool, want: set[str], deadline: float = 15.0):
        """
        Browse until every instance in C{want} is listed (the first answer
        holds whoever answered first; later ones, the cache's whole set).
        """
        start = time.monotonic()
        while True:
            answer = await self.dig("_http._tcp.b.lab.example", "PTR", tcp=tcp)
            got = {r.name for r in answer.answers}
            found = {
                r.data.split("._http")[0].replace("\\032", " ") for r in answer.answers
            }
            if want <= found:
                return answer
            if time.monotonic() - start > deadline:
                self.fail(f"browsing found {found} ({got}), not {want}:\n{answer.text}")
            await sleep(0.5)

    def test_browse_udp_and_tcp(self):
        """
        Both peers' services, translated to b.lab.example, over UDP and TCP;
        TTLs at most 10 s; additional records as unicast DNS-SD expects.
        """
        async def run():
            want = {"Avahi Web", "Zc Web"}
            for tcp in (False, True):
                answer = await self.browse(tcp, want)
                self.assertEqual(answer.status, "NOERROR")
                self.assertIn("aa", answer.flags)
                self.assertEqual({r.name for r in answer.answers}, {"_http._tcp.b.lab.example."})
                self.assertTrue(all(r.ttl <= 10 for r in answer.answers + answer.additional))
                additional = {(r.name, r.rtype) for r in answer.additional}
                self.assertIn(("Avahi Web._http._tcp.b.lab.example.", "SRV"), additional)
                self.assertIn(("Avahi Web._http._tcp.b.lab.example.", "TXT"), additional)
            srv = await self.dig("Avahi\\032Web._http._tcp.b.lab.example", "SRV")
            self.assertEqual(srv.data("SRV"), ["0 0 8080 avahipeer.b.lab.example."])
            self.assertEqual(srv.data("A", "additional"), [self.link_b.client_ip])
            zc = await self.dig("Zc\\032Web._http._tcp.b.lab.example", "SRV", tcp=True)
            self.assertEqual(zc.data("SRV"), ["0 0 8081 zcpeer.b.lab.example."])
            txt = await self.dig("Zc\\032Web._http._tcp.b.lab.example", "TXT")
            self.assertEqual(txt.data("TXT"), ['"path=/zc"'])
            a = await self.dig("avahipeer.b.lab.example", "A")
            self.assertEqual(a.data("A"), [self.link_b.client_ip])
            self.assertLessEqual(a.answers[0].ttl, 10)
        return defer.ensureDeferred(run())

    def test_other_link_domain_gets_nothing_of_b(self):
        """
        Link B's services are not under link A's domain: the question is
        asked on link A only, where nobody publishes.
        """
        async def run():
            await self.browse(False, {"Avahi Web"})
            answer = await self.dig("_http._tcp.a.lab.example", "PTR")
            self.assertEqual((answer.status, answer.answers), ("NOERROR", ()))
            self.assertEqual([r.rtype for r in answer.authority], ["SOA"])
            host = await self.dig("avahipeer.a.lab.example", "A", tcp=True)
            self.assertEqual(host.answers, ())
            outside = await self.dig("www.example.com", "A")
            self.assertEqual(outside.status, "REFUSED")
        return defer.ensureDeferred(run())

    def test_apex_and_wait_bound(self):
        """
        SOA and NS at the apex at once; a name nobody answers gets no data
        after the wait bound, not before and not much later.
        """
        async def run():
            soa = await self.dig("b.lab.example", "SOA")
            self.assertEqual(soa.data("SOA")[0].split()[:3],
                             ["proxy.lab.example.", "hostmaster.b.lab.example.", "0"])
            ns = await self.dig("b.lab.example", "NS", tcp=True)
            self.assertEqual(ns.data("NS"), ["proxy.lab.example."])
            asked = self.proxy.counters["proxy.asked"]
            started = time.monotonic()
            nobody = await self.dig("nobody.b.lab.example", "A")
            elapsed = time.monotonic() - started
            self.assertEqual((nobody.status, nobody.answers), ("NOERROR", ()))
            self.assertGreaterEqual(elapsed, WAIT - 0.05)
            self.assertLess(elapsed, WAIT + 2.5)
            self.assertEqual(self.proxy.counters["proxy.asked"], asked + 1)
        return defer.ensureDeferred(run())

    def test_link_local_withheld(self):
        """
        RFC 8766 §5.5.2: the 169.254/16 address avahi publishes for
        linklocal.local on link B is not handed to the routed client.
        """
        async def run():
            # Asked until the proxy has seen the record (avahi may hold its
            # answer back while it announces, RFC 6762 §6): never handed out.
            for _ in range(20):
                answer = await self.dig("linklocal.b.lab.example", "A")
                self.assertEqual((answer.status, answer.answers), ("NOERROR", ()))
                if self.proxy.counters["proxy.link-local-suppressed"]:
                    break
                await sleep(0.5)
            self.assertGreaterEqual(self.proxy.counters["proxy.link-local-suppressed"], 1)
            self.assertTrue(self.mdns.querier.cache_for("lanb").get(
                name_from_text("linklocal.local"), TYPE_A))
            routable = await self.dig("avahipeer.b.lab.example", "A")
            self.assertEqual(routable.data("A"), [self.link_b.client_ip])
        return defer.ensureDeferred(run())

    def test_dot_inside_an_instance_label(self):
        """
        avahi's "Printer v2.1" reaches the routed dig as one label: browsed
        (escaped C{\\.} in the PTR data), then its SRV and TXT asked by
        that label over UDP and TCP.
        """
        escaped = "Printer\\032v2\\.1._ipp._tcp.b.lab.example"

        async def run():
            for _ in range(30):
                browse = await self.dig("_ipp._tcp.b.lab.example", "PTR")
                if browse.answers:
                    break
                await sleep(0.5)
            self.assertEqual(browse.data("PTR"), [escaped + "."])
            for tcp in (False, True):
                srv = await self.dig(escaped, "SRV", tcp=tcp)
                self.assertEqual(srv.data("SRV"), ["0 0 631 avahipeer.b.lab.example."])
            txt = await self.dig(escaped, "TXT")
            self.assertEqual(txt.data("TXT"), ['"rp=ipp/print"'])
        return defer.ensureDeferred(run())

    def test_refused_outside_allow(self):
        """
        A client outside the allow list (the host itself, from link B's
        address) is refused, and counted.
        """
        async def run():
            answer = await self.dig("_http._tcp.b.lab.example", "PTR", ns=self.topology.host_ns,
                                    source=self.link_b.host_ip)
            self.assertEqual(answer.status, "REFUSED")
            self.assertEqual(self.proxy.counters["proxy.refused"], 1)
        return defer.ensureDeferred(run())
