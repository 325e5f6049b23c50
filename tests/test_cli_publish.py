"""
C{python -m twisted_mdns publish}, a real process in the host namespace:
python-zeroconf clients on the links resolve what it publishes, and after
SIGINT (or SIGTERM) goodbyes (TTL 0) arrive on the links before it exits.
"""

from __future__ import annotations

import ipaddress
import signal
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain
from tests.peers import (
    REPO_ROOT,
    PeerProcess,
    AvahiDaemon,
    dig_query,
    require_peers,
    run,
    zeroconf_browse,
    zeroconf_resolve_host,
)
from tests.support import wait_until
from twisted_mdns.message import TYPE_A, TYPE_AAAA, TYPE_PTR, name_to_text, parse, ptr_target


def goodbyes(sock, rtype: int) -> list[str]:
    """
    What the TTL-0 records of type C{rtype} waiting on C{sock} point to
    (PTR targets, A and AAAA addresses).
    """
    out = []
    for data, _ in drain(sock):
        try:
            message = parse(data)
        except Exception:
            continue
        for r in message.answers:
            if r.rtype == rtype and r.ttl == 0:
                out.append(name_to_text(ptr_target(r)) if rtype == TYPE_PTR else str(r.rdata))
    return out


class PublishCase(NamespaceTestMixin, unittest.TestCase):
    virtual = False
    timeout = 60

    def setUp(self) -> None:
        require_peers("zeroconf", "dig")
        super().setUp()
        self.a = self.topology.links["a"]
        self.b = self.topology.links.get("b")

    def publish(self, *args: str) -> PeerProcess:
        proc = PeerProcess(
            self.topology.host_ns, [sys.executable, "-m", "twisted_mdns", "publish", *args],
            name="publish", cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        return proc

    def listener(self, client: str):
        sock = self.topology.client_listener(client)
        self.addCleanup(sock.close)
        return sock


class PublishServiceTests(PublishCase):
    @defer.inlineCallbacks
    def check_service(self, signum: int):
        proc = self.publish("Our Web", "_http._tcp", "8080", "path=/", "flag",
                            "--subtype", "_printer", "--hostname", "pubhost")
        yield proc.wait_for(r"^Established under name 'Our Web' on lana, lanb$", timeout=15)
        found = yield zeroconf_browse(self.a.client_ns, "_http._tcp", timeout=6, expect=1)
        self.assertEqual(
            [(s.instance, s.port, s.server, s.addresses, s.txt) for s in found],
            [("Our Web", 8080, "pubhost.local.", (self.a.host_ip,), {"path": "/", "flag": None})],
        )
        sub = yield zeroconf_browse(self.b.client_ns, "_printer._sub._http._tcp", timeout=6,
                                    interface="eth0", expect=1)
        self.assertEqual([s.name for s in sub], ["Our Web._http._tcp.local."])

        listeners = {c: self.listener(c) for c in ("a", "b")}
        proc.send_signal(signum)
        for client, sock in listeners.items():
            got = yield wait_until(lambda s=sock: goodbyes(s, TYPE_PTR), timeout=5,
                                   what=f"goodbye on {client}")
            self.assertIn("Our Web._http._tcp.local.", got)
        code = yield proc.wait(timeout=10)
        self.assertEqual(code, 0, proc.describe_output())
        self.assertNotIn("Traceback", proc.stderr)

    def test_service_sigint(self):
        return self.check_service(signal.SIGINT)

    def test_service_sigterm(self):
        return self.check_service(signal.SIGTERM)


class PublishAddressTests(PublishCase):
    @defer.inlineCallbacks
    def test_address_resolves_then_goodbye(self):
        proc = self.publish("--address", "camera", "10.1.0.50")
        yield proc.wait_for(r"^Established under name 'camera.local' -> 10.1.0.50 on lana, lanb$",
                            timeout=15)
        for link in (self.a, self.b):
            addresses = yield zeroconf_resolve_host(link.client_ns, "camera", timeout=5)
            self.assertEqual(addresses, ["10.1.0.50"])
        # A legacy (one-shot, not port 5353) query is answered too (§6.7).
        dig = yield dig_query(self.a.client_ns, self.a.host_ip, "camera.local", timeout=2)
        self.assertEqual(dig.data("A"), ["10.1.0.50"])
        self.assertLessEqual(dig.answers[0].ttl, 10)

        sock = self.listener("b")
        proc.send_signal(signal.SIGINT)
        got = yield wait_until(lambda: goodbyes(sock, TYPE_A), timeout=5, what="A goodbye")
        self.assertEqual(got, ["10.1.0.50"])
        code = yield proc.wait(timeout=10)
        self.assertEqual(code, 0, proc.describe_output())

    @defer.inlineCallbacks
    def test_ipv6_address_resolves_then_goodbye(self):
        """
        An IPv6 address gets an AAAA record (as C{avahi-publish -a} does),
        answered to dig and said goodbye to on SIGINT.
        """
        proc = self.publish("--address", "camera6", "fd00:99::50")
        yield proc.wait_for(r"^Established under name 'camera6.local' -> fd00:99::50 on lana, lanb$",
                            timeout=15)
        dig = yield dig_query(self.b.client_ns, self.b.host_ip, "camera6.local", "AAAA", timeout=2)
        self.assertEqual([ipaddress.ip_address(a) for a in dig.data("AAAA")],
                         [ipaddress.ip_address("fd00:99::50")])
        none = yield dig_query(self.b.client_ns, self.b.host_ip, "camera6.local", "A", timeout=2)
        self.assertEqual(none.data("A"), [])
        sock = self.listener("a")
        proc.send_signal(signal.SIGINT)
        got = yield wait_until(lambda: goodbyes(sock, TYPE_AAAA), timeout=5, what="AAAA goodbye")
        self.assertEqual([ipaddress.ip_address(a) for a in got], [ipaddress.ip_address("fd00:99::50")])
        code = yield proc.wait(timeout=10)
        self.assertEqual(code, 0, proc.describe_output())

    @defer.inlineCallbacks
    def test_address_conflict_fails(self):
        require_peers("avahi-daemon")
        peer = AvahiDaemon(self.b.client_ns, "taken")
        self.addCleanup(peer.stop)
        yield peer.start()
        proc = self.publish("--address", "taken", "10.2.0.77")
        code = yield proc.wait(timeout=15)
        self.assertEqual(code, 2, proc.describe_output())
        self.assertEqual(proc.stdout, "")
        [line] = proc.stderr.strip().splitlines()
        self.assertIn("taken.local is already in use on lanb", line)


class PublishArgumentTests(PublishCase):
    clients = ("a",)

    @defer.inlineCallbacks
    def test_bad_arguments_one_line_exit_2(self):
        cases = [
            ((), "NAME TYPE PORT"),
            (("Web", "_http._tcp"), "NAME TYPE PORT"),
            (("Web", "http", "80"), "_name._tcp"),
            (("Web", "_http._tcp", "eighty"), "port 'eighty'"),
            (("Web", "_http._tcp", "80", "=x"), "TXT key"),
            (("Web", "_http._tcp", "80", "--iface", "nope0"), "nope0"),
            (("--address", "cam"), "NAME ADDRESS"),
            (("--address", "cam", "10.0.0.300"), "not an IP address"),
            (("--address", "cam", "fe80::1%lana"), "without %zone"),
        ]
        argv = [sys.executable, "-m", "twisted_mdns", "publish"]
        results = yield defer.gatherResults([
            run(self.topology.host_ns, argv + list(args), 15, cwd=str(REPO_ROOT), name="publish")
            for args, _ in cases
        ])
        for (args, fragment), result in zip(cases, results):
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertEqual(result.stdout, "")
            lines = result.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, result.stderr))
            self.assertIn(fragment, lines[0], args)
