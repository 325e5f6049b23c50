"""
C{python -m twisted_mdns interfaces}, run as a user would, in the test
host namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, ip
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
        lines = self.main_lines(done.stdout)
        # lanb's link-local IPv6 address may still be tentative (DAD).
        self.assertRegex(lines["lanb"], r"selected: IPv4(\+IPv6)?$")
        self.assertTrue(lines["tun0"].endswith("selected: IPv4"), "a named virtual interface is used")
        self.assertTrue(lines["lana"].endswith("excluded: not named explicitly"))

    @staticmethod
    def main_lines(stdout: str) -> dict[str, str]:
        """
        Interface name -> its line (the indented lines under it are its
        IPv6 addresses and family notes).
        """
        return {line.split()[1]: line for line in stdout.splitlines() if line[:3].strip()}

    def test_ipv6_addresses_and_family_choice(self) -> None:
        """
        Each link's IPv6 addresses are listed under it, and the family
        decision follows --ipv4-only / --ipv6-only; an IPv6-only link is
        selected.
        """
        self.topology.add_ipv6()
        b = self.topology.links["b"]
        ip("-4", "addr", "flush", "dev", b.host_if, ns=self.topology.host_ns)
        done = self.run_cli()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("fd00:1::1/64", done.stdout)
        lines = self.main_lines(done.stdout)
        self.assertTrue(lines["lana"].endswith("selected: IPv4+IPv6"), lines["lana"])
        self.assertTrue(lines["lanb"].endswith("selected: IPv6"), lines["lanb"])
        done = self.run_cli("--ipv4-only")
        lines = self.main_lines(done.stdout)
        self.assertTrue(lines["lana"].endswith("selected: IPv4"), lines["lana"])
        self.assertTrue(lines["lanb"].endswith("excluded: no IPv4 address"), lines["lanb"])
        rows = {r["name"]: r for r in map(json.loads, self.run_cli("--ipv6-only", "--json").stdout.splitlines())}
        self.assertEqual(rows["lana"]["families"], ["ipv6"])
        self.assertEqual(rows["lanb"]["families"], ["ipv6"])
        self.assertIn("fd00:2::1/64", rows["lanb"]["ipv6"])
        self.assertEqual(rows["tun0"]["selected"], False)
        done = self.run_cli("--ipv4-only", "--ipv6-only")
        self.assertEqual(done.returncode, 2)
        self.assertNotIn("Traceback", done.stderr)

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
