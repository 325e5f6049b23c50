"""
C{python -m twisted_mdns interfaces}, run as a user would, in the test
host namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.peers import REPO_ROOT


class InterfacesCommandTests(NamespaceTestMixin, unittest.TestCase):
    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.topology.host_ns, sys.executable, "-m", "twisted_mdns", "interfaces", *args],
            capture_output=True, text=True, timeout=30, cwd=str(REPO_ROOT),
        )

    def test_json_default_policy(self) -> None:
        done = self.run_cli("--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}
        self.assertEqual(set(rows), {"lo", "lana", "lanb", "tun0", "docker0"})
        self.assertEqual({n for n, r in rows.items() if r["selected"]}, {"lana", "lanb"})
        self.assertEqual(rows["lana"]["ipv4"], ["10.1.0.1/24"])
        self.assertEqual(rows["lana"]["index"], self.topology.links["a"].host_index)
        self.assertEqual(rows["lana"]["reason"], "selected")
        self.assertEqual(rows["tun0"]["reason"], "excluded: virtual: VPN (tun*)")
        self.assertEqual(rows["docker0"]["reason"], "excluded: virtual: container (docker*)")
        self.assertEqual(rows["lo"]["reason"], "excluded: loopback")

    def test_text_and_explicit(self) -> None:
        done = self.run_cli("--iface", "10.2.0.1", "--iface", "tun0")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = {line.split()[1]: line for line in done.stdout.splitlines()}
        self.assertTrue(lines["lanb"].endswith("selected"))
        self.assertTrue(lines["tun0"].endswith("selected"), "a named virtual interface is used")
        self.assertTrue(lines["lana"].endswith("excluded: not named explicitly"))

    def test_all(self) -> None:
        done = self.run_cli("--all", "--json")
        rows = {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}
        self.assertEqual({n for n, r in rows.items() if r["selected"]}, {"lana", "lanb", "tun0", "docker0"})

    def test_unknown_interface_exit_2(self) -> None:
        done = self.run_cli("--iface", "eth9")
        self.assertEqual(done.returncode, 2)
        self.assertEqual(
            done.stderr.strip().splitlines()[-1],
            "error: interface 'eth9': no such interface (interfaces present: lo, lana, lanb, tun0, docker0)",
        )
        self.assertNotIn("Traceback", done.stderr)
