"""
C{twistd mdns --proxy-*}: the Discovery Proxy's options parsed and refused
with one line, and the real C{twistd} process serving a routed client.
"""

from __future__ import annotations

import io
import ipaddress
import sys

from twisted.internet import defer
from twisted.python import usage
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.peers import REPO_ROOT, PeerProcess, dig_query, require_peers
from tests.proxy_support import add_routed_client
from tests.support import sleep
from tests.test_twistd import twistd_argv
from twisted_mdns.proxy import DiscoveryProxy
from twisted_mdns.proxy.options import parse_allow, parse_listen
from twisted_mdns.service import MDNSService
from twisted_mdns.tap import MDNSOptions, Options, makeService

GOOD = ("--iface", "lanb", "--proxy-listen", "10.2.0.1:5300",
        "--proxy-domain", "lanb=b.lab.example")


def parse(*argv: str) -> MDNSOptions:
    options = MDNSOptions()
    options.parseOptions(list(argv))
    return options


class ProxyOptionTests(NamespaceTestMixin, unittest.TestCase):
    """
    Parsed in a namespace with links lana and lanb (the domain's interface
    must be one mDNS runs on).
    """

    virtual = False

    def test_good(self) -> None:
        options = parse(*GOOD, "--proxy-allow", "10.60.0.0/24", "--proxy-allow", "2001:db8::/32",
                        "--proxy-wait", "0.5", "--proxy-listen", "[::1]:5301")
        proxy = options["proxy"]
        self.assertEqual([(d.interface, d.text) for d in proxy["domains"]], [("lanb", "b.lab.example")])
        self.assertEqual(proxy["listen"], [("10.2.0.1", 5300), ("::1", 5301)])
        self.assertEqual(proxy["allow"], [ipaddress.ip_network("10.60.0.0/24"),
                                          ipaddress.ip_network("2001:db8::/32")])
        self.assertEqual(proxy["wait"], 0.5)
        self.assertIsNone(parse("--iface", "lanb")["proxy"])

    def test_bad_values(self) -> None:
        for argv, fragment in [
            (("--proxy-listen", "nonsense"), "--proxy-listen 'nonsense': expected ADDRESS:PORT"),
            (("--proxy-listen", "10.2.0.1:99999"), "out of range"),
            (("--proxy-listen", "proxy.example:53"), "is not an IP address"),
            (("--proxy-listen", "10.2.0.1:dns"), "is not a number"),
            (GOOD + ("--proxy-domain", "lanb"), "expected IFACE=DOMAIN"),
            (("--iface", "lanb", "--proxy-listen", "10.2.0.1:53", "--proxy-domain", "lanb=x.local"),
             "multicast domain"),
            (GOOD + ("--proxy-domain", "lana=lab.example"), "overlap"),
            (("--iface", "lanb", "--proxy-listen", "10.2.0.1:53", "--proxy-domain", "lana=a.example"),
             "mDNS does not run on 'lana'"),
            (GOOD + ("--proxy-allow", "10.0.0.1/8"), "--proxy-allow '10.0.0.1/8'"),
            (GOOD + ("--proxy-allow", "everyone"), "--proxy-allow 'everyone'"),
            (GOOD + ("--proxy-wait", "9"), "--proxy-wait"),
            (GOOD + ("--proxy-wait", "soon"), "--proxy-wait"),
            (("--iface", "lanb", "--proxy-domain", "lanb=b.example"), "need --proxy-listen"),
            (("--iface", "lanb", "--proxy-listen", "10.2.0.1:53"), "needs at least one --proxy-domain"),
        ]:
            e = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(fragment, str(e), argv)
            self.assertNotIn("\n", str(e))

    def test_twistd_exit_one_line(self) -> None:
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        e = self.assertRaises(SystemExit, Options().parseOptions, list(GOOD + ("--proxy-allow", "x")))
        self.assertEqual(e.code, 2)
        self.assertEqual(err.getvalue().count("\n"), 1)
        self.assertTrue(err.getvalue().startswith("twistd mdns: error: --proxy-allow 'x'"))

    def test_make_service(self) -> None:
        options = Options()
        options.parseOptions(list(GOOD))
        top = makeService(options)
        mdns = [s for s in top if isinstance(s, MDNSService)][0]
        proxies = [s for s in mdns if isinstance(s, DiscoveryProxy)]
        self.assertEqual(len(proxies), 1)
        self.assertIs(proxies[0].engines, mdns)
        self.assertEqual(proxies[0].listen, [("10.2.0.1", 5300)])
        self.assertIsNone(proxies[0].allow)  # the default, computed at start
        self.assertEqual(str(options).count("--proxy-"), 5)

    def test_parsers(self) -> None:
        self.assertEqual(parse_listen("[fe80::1]:53"), ("fe80::1", 53))
        self.assertRaises(ValueError, parse_listen, ":53")
        self.assertEqual(parse_allow("10.1.2.3"), ipaddress.ip_network("10.1.2.3/32"))


class ProxyTwistdTests(NamespaceTestMixin, unittest.TestCase):
    """
    The real process: a routed client browses this host's own service on
    link B through the proxy; the host itself (outside --proxy-allow) is
    refused.
    """

    virtual = False
    timeout = 60

    def test_twistd_serves_routed_client(self):
        require_peers("dig")
        client = add_routed_client(self.topology)
        proc = PeerProcess(
            self.topology.host_ns,
            twistd_argv(
                "--iface", "lana", "--iface", "lanb", "--hostname", "h",
                "--service", "Own Web|_http._tcp|8090|path=/own",
                "--proxy-listen", f"{client.host_ip}:5300",
                "--proxy-domain", "lanb=b.lab.example", "--proxy-domain", "lana=a.lab.example",
                "--proxy-allow", client.subnet, "--proxy-wait", "0.5",
                "--proxy-server", "proxy.lab.example",
            ),
            name="twistd", env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)

        async def run():
            await proc.wait_for(r"host name \S+\.local claimed", timeout=15)
            await proc.wait_for(r"discovery proxy on 10\.50\.0\.1 port 5300", timeout=5)
            # The service is ours once probed and announced.
            answer = None
            for _ in range(40):
                answer = await dig_query(client.ns, client.host_ip, "_http._tcp.b.lab.example",
                                         "PTR", port=5300, timeout=2)
                if answer.answers:
                    break
                await sleep(0.25)
            self.assertEqual(answer.data("PTR"), ["Own\\032Web._http._tcp.b.lab.example."])
            self.assertIn(("Own Web._http._tcp.b.lab.example.", "SRV"),
                          {(r.name, r.rtype) for r in answer.additional})
            self.assertIn(self.topology.links["b"].host_ip, answer.data("A", "additional"))
            tcp = await dig_query(client.ns, client.host_ip, "h.b.lab.example", "A",
                                  port=5300, timeout=2, extra=["+tcp"])
            self.assertEqual(tcp.data("A"), [self.topology.links["b"].host_ip])
            other = await dig_query(client.ns, client.host_ip, "h.a.lab.example", "A",
                                    port=5300, timeout=2)
            self.assertEqual(other.data("A"), [self.topology.links["a"].host_ip])
            refused = await dig_query(self.topology.host_ns, client.host_ip, "h.b.lab.example",
                                      "A", port=5300, timeout=2, source=self.topology.links["b"].host_ip)
            self.assertEqual(refused.status, "REFUSED")
        return defer.ensureDeferred(run())
