"""
C{python -m twisted_mdns browse --json} and C{resolve --json} list both
address families: python-zeroconf on link B publishes a host with an IPv4,
a ULA and a link-local address (the AAAA records travel over IPv4 here;
the record's family is not the packet's), and the CLI prints all three,
the link-local one scoped to the link it was heard on.
"""

from __future__ import annotations

import json

from twisted.internet import defer

from tests.peers import ZeroconfPublisher, require_peers
from tests.test_cli_query import CLITestCase


class DualStackCLITests(CLITestCase):
    def setUp(self):
        require_peers("zeroconf")
        super().setUp()
        self.topology.add_ipv6(dad=False)
        self.b = self.topology.links["b"]
        self.link_local = self.topology.link_local(self.b.client_ns, "eth0")
        publisher = ZeroconfPublisher(
            self.b.client_ns, "Zc Dual", "_http._tcp", 9092, hostname="zcdual.local.",
            addresses=[self.b.client_ip, self.b.client_ip6, self.link_local],
        )
        self.addCleanup(publisher.stop)
        return publisher.start()

    def expected_addresses(self) -> list[str]:
        return [self.b.client_ip, self.b.client_ip6, f"{self.link_local}%lanb"]

    @defer.inlineCallbacks
    def test_browse_json_lists_both_families(self):
        result = yield self.cli("browse", "_http._tcp", "--timeout", "3", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual({(s["interface"], s["instance"]) for s in lines}, {("lanb", "Zc Dual")})
        self.assertEqual(lines[-1]["addresses"], self.expected_addresses())
        text = yield self.cli("browse", "_http._tcp", "--timeout", "3", "--iface", "lanb")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(f"{self.link_local}%lanb", text.stdout)

    @defer.inlineCallbacks
    def test_resolve_json_lists_both_families(self):
        result = yield self.cli("resolve", "zcdual", "--timeout", "4", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [json.loads(line) for line in result.stdout.splitlines()],
            [{"interface": "lanb", "name": "zcdual.local", "addresses": self.expected_addresses()}],
        )
