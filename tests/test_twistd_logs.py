"""
What a plain C{twistd -n mdns} logs, read from the real process in a
namespace: info and above by default (C{--log-level debug} adds the
details), each interface decision once, and none of Twisted's per-port
lines.
"""

from __future__ import annotations

import re

import signal

from twisted.internet import defer

from tests.test_twistd import TwistdCase

#: Twisted's per-port lines, one set per interface without the filter.
PORT_NOISE = ("starting on 5353", "Starting protocol <", "Stopping protocol <",
              "(UDP Port 5353 Closed)")


class LogTests(TwistdCase):
    @defer.inlineCallbacks
    def run_and_stop(self, *options: str):
        yield self.start_twistd("--hostname", "h", "--service", "Web|_http._tcp|8080", *options)
        yield self.proc.wait_for("registered", timeout=10)
        self.proc.send_signal(signal.SIGINT)
        code = yield self.proc.wait(timeout=15)
        # twistd re-raises the signal once it has shut down cleanly.
        self.assertIn(code, (0, -signal.SIGINT), self.proc.describe_output())
        self.assertIn("Server Shut Down.", self.proc.stdout)
        return self.proc.lines()

    @defer.inlineCallbacks
    def test_default_is_info_without_port_noise(self):
        lines = yield self.run_and_stop()
        text = "\n".join(lines)
        self.assertEqual([line for line in lines if "#debug]" in line], [])
        for noise in PORT_NOISE:
            self.assertNotIn(noise, text)
        # Each decision once: the selection is logged when it is new (the
        # links' IPv6 link-local addresses may end DAD while it runs, which
        # is a new decision: IPv4 -> IPv4+IPv6), never the same one twice.
        selected = re.compile(r"selected 2 interface\(s\): (lana( \([^)]*\))?, lanb( \([^)]*\))?)$")
        outcomes = [m.group(1) for m in map(selected.search, lines) if m]
        self.assertGreaterEqual(len(outcomes), 1, text)
        self.assertEqual(len(outcomes), len(set(outcomes)), text)
        for decision in ("lo excluded: loopback", "tun0 excluded: virtual: VPN (tun*)",
                         "docker0 excluded: virtual: container (docker*)",
                         "listening on lana (index 2) for 224.0.0.251:5353",
                         "listening on lanb (index 3) for 224.0.0.251:5353"):
            self.assertEqual(sum(decision in line for line in lines), 1, (decision, text))
        # The IPv6 ports open once a link-local address ends DAD, which may
        # or may not happen while it runs: once at most.
        for decision in ("listening on lana (index 2) for [ff02::fb]:5353",
                         "listening on lanb (index 3) for [ff02::fb]:5353"):
            self.assertLessEqual(sum(decision in line for line in lines), 1, (decision, text))
        self.assertIn("host name h.local claimed", text)
        self.assertNotIn("Traceback", text + self.proc.stderr)

    @defer.inlineCallbacks
    def test_debug_shows_details(self):
        lines = yield self.run_and_stop("--log-level", "debug")
        debug = [line for line in lines if "#debug]" in line]
        self.assertTrue(any("lana" in line and "selected" in line for line in debug), debug)
        self.assertTrue(any("starting on 5353" in line for line in lines))

    @defer.inlineCallbacks
    def test_warn_hides_info(self):
        lines = yield self.run_and_stop_quietly()
        self.assertEqual([line for line in lines if "#info]" in line and "twisted_mdns" in line], [])

    @defer.inlineCallbacks
    def run_and_stop_quietly(self):
        from tests.peers import PeerProcess, REPO_ROOT
        from tests.test_twistd import twistd_argv

        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--hostname", "h", "--log-level", "warn"),
            name="twistd-warn", env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        yield proc.wait_for("reactor class", timeout=15)
        from tests.support import sleep

        yield sleep(2.0)  # past probing: "claimed" would be logged by now
        # It runs (it answers), it just says nothing below warn.
        got = yield self.answered("a")
        self.assertEqual(got, [self.topology.links["a"].host_ip])
        proc.send_signal(signal.SIGINT)
        code = yield proc.wait(timeout=15)
        self.assertIn(code, (0, -signal.SIGINT), proc.describe_output())
        return proc.lines()
