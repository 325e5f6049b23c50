"""
C{python -m twisted_mdns browse} and C{resolve}, run as real processes in
the host namespace, against python-zeroconf publishing on link B: JSON
output, exit statuses 0 (found), 1 (nothing found) and 2 (bad arguments,
one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import sys
import time

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.peers import REPO_ROOT, ZeroconfPublisher, require_peers, run


class CLITestCase(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 40

    def cli(self, *args: str, timeout: float = 15):
        """
        Run the CLI in the host namespace; fires with the ProcessResult.
        """
        argv = [sys.executable, "-m", "twisted_mdns", *args]
        return run(self.topology.host_ns, argv, timeout, cwd=str(REPO_ROOT), name="cli")

    def assertOneLineError(self, result, *fragments: str) -> None:
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertNotIn("Traceback", result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("error", lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])


class BadArgumentTests(CLITestCase):
    clients = ("a",)

    @defer.inlineCallbacks
    def test_bad_arguments_exit_2(self):
        cases = [
            (("browse", "http"), "_name._tcp"),
            (("browse", "_http._tcp", "--timeout", "0"), "timeout"),
            (("browse", "_http._tcp", "--timeout", "-1"), "timeout"),
            (("resolve", "host", "--timeout", "soon"), "timeout"),
            (("browse", "_http._tcp", "--iface", "wlan9"), "wlan9"),
            (("resolve", "host", "--iface", "10.9.9.9"), "10.9.9.9"),
            (("resolve", "a..b"), "empty label"),
            (("resolve",), "NAME"),
            (("browse",), "TYPE or --all-types"),
            (("browse", "_http._tcp", "--all-types"), "TYPE or --all-types"),
            (("browse", "--all-types", "--follow", "--timeout", "0"), "timeout"),
        ]
        results = yield defer.gatherResults([self.cli(*args) for args, _ in cases])
        for (args, fragment), result in zip(cases, results):
            self.assertOneLineError(result, fragment)


class QueryCLITests(CLITestCase):
    """
    python-zeroconf publishes C{Zc Web} (host C{zchost.local}) on link B.
    """

    def setUp(self):
        require_peers("zeroconf")
        super().setUp()
        self.b = self.topology.links["b"]
        publisher = ZeroconfPublisher(
            self.b.client_ns, "Zc Web", "_http._tcp", 9090,
            txt={"path": "/x", "flag": None}, hostname="zchost.local.",
        )
        self.addCleanup(publisher.stop)
        return publisher.start()

    @defer.inlineCallbacks
    def test_browse(self):
        result = yield self.cli("browse", "_http._tcp", "--timeout", "2.5", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [json.loads(line) for line in result.stdout.splitlines()],
            [{
                "interface": "lanb", "instance": "Zc Web", "type": "_http._tcp",
                "host": "zchost.local", "port": 9090, "addresses": [self.b.client_ip],
                "txt": {"path": "/x", "flag": None},
            }],
        )
        self.assertEqual(result.stderr, "")
        # On link A there is nothing: exit 1, no output.
        nothing = yield self.cli("browse", "_http._tcp", "--iface", "lana", "--timeout", "1.5",
                                 "--json")
        self.assertEqual((nothing.returncode, nothing.stdout), (1, ""), nothing.stderr)
        # Text output: one line naming the service, its interface and address.
        text = yield self.cli("browse", "_http._tcp.local", "--timeout", "2", "--iface", "lanb")
        self.assertEqual(text.returncode, 0, text.stderr)
        [line] = text.stdout.splitlines()
        for part in ("lanb", "Zc Web", "zchost.local:9090", self.b.client_ip, "path=/x"):
            self.assertIn(part, line)

    @defer.inlineCallbacks
    def test_resolve(self):
        # A timeout far beyond any start-up time on a loaded machine: a
        # resolve that ends before it ended because it was answered.
        started = time.monotonic()
        result = yield self.cli("resolve", "zchost", "--timeout", "30", "--json", timeout=60)
        took = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [json.loads(line) for line in result.stdout.splitlines()],
            [{"interface": "lanb", "name": "zchost.local", "addresses": [self.b.client_ip]}],
        )
        self.assertLess(took, 30, "resolve should end once answered, not at the timeout")
        nobody = yield self.cli("resolve", "nobody.local", "--timeout", "1", "--json")
        self.assertEqual((nobody.returncode, nobody.stdout), (1, ""), nobody.stderr)
        text = yield self.cli("resolve", "zchost.local", "--iface", "lanb")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(self.b.client_ip, text.stdout)
        self.assertIn("zchost.local", text.stdout)

    # Room for a resolve that wrongly waits out its 30 s timeout to fail
    # the assertion rather than the test's own timeout.
    test_resolve.timeout = 120  # type: ignore[attr-defined]
