"""
The CLI's family flags as a user runs them: C{browse --ipv6-only} in a
client namespace finds our service over IPv6 alone (our L{MDNSService}
runs in the host namespace, on dual-stack links).
"""

from __future__ import annotations

import json
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.peers import REPO_ROOT, run
from tests.support import start_service
from tests.test_ipv6_responder_netns import WEB, DualStackMixin


class FamilyFlagCLITests(DualStackMixin, unittest.TestCase):
    timeout = 60
    virtual = False

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.mdns = yield start_service(self, "lab", [WEB])

    def cli(self, client: str, *args: str):
        argv = [sys.executable, "-m", "twisted_mdns", *args]
        ns = self.topology.links[client].client_ns
        return run(ns, argv, 20, cwd=str(REPO_ROOT), name="cli")

    @defer.inlineCallbacks
    def test_browse_ipv6_only_finds_our_service_on_its_link(self):
        for client in ("a", "b"):
            result = yield self.cli(client, "browse", "_http._tcp", "--ipv6-only", "--timeout", "3", "--json")
            self.assertEqual(result.returncode, 0, result.stderr)
            rows = [json.loads(line) for line in result.stdout.splitlines()]
            self.assertEqual([(r["instance"], r["interface"], r["port"]) for r in rows], [("Lab Web", "eth0", 8080)])
            found = {a.split("%")[0] for a in rows[0]["addresses"]}
            self.assertTrue(found)
            self.assertLessEqual(found, self.own_addresses(client), "only this link's addresses")

    @defer.inlineCallbacks
    def test_interfaces_ipv6_only_in_a_client(self):
        result = yield self.cli("a", "interfaces", "--ipv6-only")
        self.assertEqual(result.returncode, 0, result.stderr)
        [line] = [l for l in result.stdout.splitlines() if " eth0 " in l]
        self.assertTrue(line.endswith("selected: IPv6"), line)
        self.assertIn(self.topology.links["a"].client_ip6, result.stdout)
