"""
C{python -m twisted_mdns browse --all-types --follow}, run as a real
process in the host namespace: services of every type appear (C{+} /
C{"added"}), change (C{=} / C{"updated"}) and leave (C{-} / C{"removed"})
as real peers on the links publish, update and withdraw them; SIGINT ends
it with status 0.

Peers: python-zeroconf publishing C{Zc Web} (C{_http._tcp}) on link B, and
our own L{MDNSService} in link A's namespace publishing C{Printer}
(C{_ipp._tcp}), whose TXT the test changes.
"""

from __future__ import annotations

import signal
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, inside
from tests.peers import REPO_ROOT, PeerProcess, ZeroconfPublisher, require_peers
from twisted_mdns.records import ServiceInfo
from twisted_mdns.service import MDNSService


class FollowTests(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 60

    def setUp(self) -> None:
        require_peers("zeroconf")
        super().setUp()
        self.a, self.b = self.topology.links["a"], self.topology.links["b"]

    def browse(self, *args: str) -> PeerProcess:
        proc = PeerProcess(
            self.topology.host_ns, [sys.executable, "-m", "twisted_mdns", "browse", *args],
            name="browse", cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        return proc

    def printer_on_a(self) -> MDNSService:
        """
        Our responder in client A's namespace, publishing C{Printer}.
        """
        with inside(self.a.client_ns):
            mdns = MDNSService(hostname="printhost", monitor=False)
            mdns.startService()
        self.addCleanup(mdns.stopService)
        mdns.register(ServiceInfo("Printer", "_ipp._tcp", 631, {"q": "1"}))
        return mdns

    def zeroconf_on_b(self) -> defer.Deferred:
        publisher = ZeroconfPublisher(
            self.b.client_ns, "Zc Web", "_http._tcp", 9090, txt={"path": "/x"},
            hostname="zchost.local.",
        )
        self.addCleanup(lambda: publisher.stop() if publisher.process.running else None)
        self.publisher = publisher
        return publisher.start()

    @defer.inlineCallbacks
    def test_all_types_follow_json(self):
        proc = self.browse("--all-types", "--follow", "--json")
        yield self.zeroconf_on_b()
        mdns = self.printer_on_a()

        web = yield proc.wait_for_event(15, event="added", instance="Zc Web")
        self.assertEqual(
            web,
            {"event": "added", "interface": "lanb", "instance": "Zc Web", "type": "_http._tcp",
             "host": "zchost.local", "port": 9090, "addresses": [self.b.client_ip],
             "txt": {"path": "/x"}},
        )
        printer = yield proc.wait_for_event(15, event="added", instance="Printer")
        self.assertEqual((printer["interface"], printer["type"], printer["txt"]),
                         ("lana", "_ipp._tcp", {"q": "1"}))

        # A TXT change is an update (RFC 6762 §8.4 announcement).
        yield mdns.update(ServiceInfo("Printer", "_ipp._tcp", 631, {"q": "2"}))
        updated = yield proc.wait_for_event(10, event="updated", instance="Printer")
        self.assertEqual(updated["txt"], {"q": "2"})

        # python-zeroconf unregisters: goodbye (TTL 0), gone 1 s later.
        yield self.publisher.stop()
        removed = yield proc.wait_for_event(10, event="removed", instance="Zc Web")
        self.assertEqual(removed["interface"], "lanb")

        # Every line is one JSON object with an event; nothing on lana for
        # the web service, nothing on lanb for the printer.
        events = proc.events()
        self.assertEqual(len(events), len(proc.lines()))
        self.assertTrue(all(e["event"] in ("added", "updated", "removed") for e in events))
        self.assertEqual({(e["instance"], e["interface"]) for e in events},
                         {("Zc Web", "lanb"), ("Printer", "lana")})

        proc.send_signal(signal.SIGINT)
        code = yield proc.wait(timeout=10)
        self.assertEqual(code, 0, proc.describe_output())
        self.assertNotIn("Traceback", proc.stderr)

    @defer.inlineCallbacks
    def test_one_type_follow_text(self):
        proc = self.browse("_http._tcp", "--follow")
        yield self.zeroconf_on_b()
        added = yield proc.wait_for(r"^\+ ", timeout=15)
        line = added.string
        for part in ("lanb", "Zc Web", "_http._tcp", "zchost.local:9090", self.b.client_ip, "path=/x"):
            self.assertIn(part, line)
        yield self.publisher.stop()
        removed = yield proc.wait_for(r"^- ", timeout=10)
        self.assertEqual(removed.string.split(), ["-", "lanb", "Zc", "Web", "_http._tcp"])
        proc.send_signal(signal.SIGTERM)
        code = yield proc.wait(timeout=10)
        self.assertEqual(code, 0, proc.describe_output())

    @defer.inlineCallbacks
    def test_all_types_without_follow_lists_and_exits(self):
        yield self.zeroconf_on_b()
        self.printer_on_a()
        proc = self.browse("--all-types", "--timeout", "4", "--json")
        code = yield proc.wait(timeout=20)
        self.assertEqual(code, 0, proc.describe_output())
        self.assertEqual(
            [(e["interface"], e["instance"], e["type"]) for e in proc.events()],
            [("lana", "Printer", "_ipp._tcp"), ("lanb", "Zc Web", "_http._tcp")],
        )
