"""
The interop harness (L{tests.peers}) works: real peers written by others
find each other across our namespaces, without any of our code involved.
If these fail, an interop test failing says nothing about twisted_mdns.
"""

from __future__ import annotations

import time

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from tests.netns import NamespaceTestMixin
from tests.peers import (
    AvahiDaemon,
    AvahiService,
    PeerError,
    PeerProcess,
    PeerTimeout,
    ZeroconfBrowser,
    ZeroconfPublisher,
    dig_query,
    dig_query_blocking,
    parse_dig,
    require_peers,
    run,
    run_blocking,
    zeroconf_browse,
    zeroconf_resolve_host,
    zeroconf_resolve_host_blocking,
    zeroconf_resolve_service,
)

WEB = AvahiService("Peer Web", "_http._tcp", 8080, txt=("path=/",))


class ProcessTests(NamespaceTestMixin, TestCase):
    """
    One-shot and long-running processes end when told to, in time.
    """

    clients = ("a",)
    virtual = False
    timeout = 30

    @defer.inlineCallbacks
    def test_run_in_namespace(self):
        """
        L{run} runs the command in the given namespace.
        """
        link = self.topology.links["a"]
        result = yield run(link.client_ns, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], 5)
        self.assertEqual(result.check().returncode, 0)
        self.assertIn(link.client_ip, result.stdout)
        self.assertEqual(
            run_blocking(self.topology.host_ns, ["ip", "-o", "link", "show", "lana"], 5).returncode, 0
        )

    @defer.inlineCallbacks
    def test_run_timeout_kills(self):
        """
        A one-shot that outlives its timeout is killed and reported so.
        """
        started = time.monotonic()
        result = yield run(self.topology.host_ns, ["sleep", "30"], 0.3)
        self.assertTrue(result.timed_out)
        self.assertLess(time.monotonic() - started, 5)
        self.assertRaises(PeerTimeout, result.check)
        blocking = run_blocking(self.topology.host_ns, ["sleep", "30"], 0.3)
        self.assertTrue(blocking.timed_out)

    @defer.inlineCallbacks
    def test_wait_for_and_stop(self):
        """
        L{PeerProcess.wait_for} sees output as it comes, times out without
        hanging, and L{PeerProcess.stop} ends a process that ignores
        SIGTERM by killing it.
        """
        process = PeerProcess(
            self.topology.host_ns,
            ["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"],
            name="stubborn",
        ).start()
        self.addCleanup(process.kill)
        match = yield process.wait_for(r"^(ready)$", 5)
        self.assertEqual(match.group(1), "ready")
        yield self.assertFailure(process.wait_for("never", 0.2), PeerTimeout)
        code = yield process.stop(timeout=0.5)
        self.assertEqual(code, -9)
        self.assertFalse(process.running)
        self.assertEqual(process.stdout, "ready\n")

    @defer.inlineCallbacks
    def test_wait_for_process_exit(self):
        """
        Waiting for output a process exits without printing fails at once.
        """
        process = PeerProcess(self.topology.host_ns, ["sh", "-c", "echo bye >&2; exit 4"]).start()
        self.addCleanup(process.kill)
        started = time.monotonic()
        failure = yield self.assertFailure(process.wait_for("never", 10), PeerError)
        self.assertNotIsInstance(failure, PeerTimeout)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("bye", str(failure))

    def test_parse_dig(self):
        """
        dig's default output is parsed: header, flags, sections, escapes.
        """
        text = (
            ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 11930\n"
            ";; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n\n"
            ";; QUESTION SECTION:\n;_http._tcp.local.\t\tIN\tPTR\n\n"
            ";; ANSWER SECTION:\n"
            "_http._tcp.local.\t10\tIN\tPTR\tPeer\\032Web._http._tcp.local.\n\n"
            ";; ADDITIONAL SECTION:\n"
            "Peer\\032Web._http._tcp.local. 10 IN\tSRV\t0 0 8080 peerhost.local.\n"
        )
        answer = parse_dig(text)
        self.assertTrue(answer.answered)
        self.assertEqual((answer.status, answer.id), ("NOERROR", 11930))
        self.assertEqual(answer.flags, {"qr", "aa"})
        self.assertEqual(answer.data("PTR"), ["Peer\\032Web._http._tcp.local."])
        self.assertEqual(answer.additional[0].name, "Peer Web._http._tcp.local.")
        self.assertEqual(answer.additional[0].data, "0 0 8080 peerhost.local.")
        self.assertFalse(parse_dig(";; connection timed out; no servers could be reached\n").answered)


class AvahiPeerTests(NamespaceTestMixin, TestCase):
    """
    avahi-daemon in client A answers python-zeroconf and dig in the host.
    """

    clients = ("a", "b")
    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("avahi-daemon", "zeroconf", "dig")
        super().setUp()
        self.link = self.topology.links["a"]
        self.avahi = AvahiDaemon(
            self.link.client_ns, "peerhost", services=[WEB], workdir=self.mktemp()
        )
        self.addCleanup(self.avahi.stop)
        return self.avahi.start()

    @defer.inlineCallbacks
    def test_started(self):
        """
        avahi established its host name and the service under the names
        asked for, on eth0 only.
        """
        self.assertEqual(self.avahi.host_name, "peerhost.local")
        self.assertEqual(self.avahi.service_names, {0: "Peer Web"})
        self.assertIn("New relevant interface eth0.IPv4 for mDNS.", self.avahi.log)
        code = yield self.avahi.stop()
        self.assertEqual(code, 0)
        self.assertIn("Got SIGTERM, quitting.", self.avahi.log)

    @defer.inlineCallbacks
    def test_zeroconf_browses_and_resolves(self):
        """
        python-zeroconf in the host, bound to lana only, browses and
        resolves avahi's service and host name: address 10.1.0.2.
        """
        host = self.topology.host_ns
        found = yield zeroconf_browse(host, "_http._tcp", 5, interface="lana", expect=1)
        self.assertEqual([s.instance for s in found], ["Peer Web"])
        service = yield zeroconf_resolve_service(host, "_http._tcp", "Peer Web", interface="lana")
        for s in (found[0], service):
            self.assertEqual(s.name, "Peer Web._http._tcp.local.")
            self.assertEqual(s.server, "peerhost.local.")
            self.assertEqual(s.port, 8080)
            self.assertEqual(s.addresses, (self.link.client_ip,))
            self.assertEqual(s.addresses_v6, ())
            self.assertEqual(s.txt, {"path": "/"})
        addresses = yield zeroconf_resolve_host(host, "peerhost", interface=self.link.host_ip)
        self.assertEqual(addresses, [self.link.client_ip])
        # The other link has no avahi: zeroconf bound to lanb finds nothing.
        missing = yield zeroconf_resolve_service(host, "_http._tcp", "Peer Web", 1, interface="lanb")
        self.assertIsNone(missing)

    @defer.inlineCallbacks
    def test_dig_legacy_unicast(self):
        """
        avahi answers dig's legacy unicast queries (RFC 6762 §6.7): the
        query id echoed, AA set, TTL at most 10 s, no answer for names it
        does not own.
        """
        host = self.topology.host_ns
        answer = yield dig_query(host, self.link.client_ip, "peerhost.local", "A")
        self.assertTrue(answer.answered)
        self.assertEqual(answer.status, "NOERROR")
        self.assertIn("aa", answer.flags)
        self.assertEqual(answer.data("A"), [self.link.client_ip])
        self.assertLessEqual(answer.answers[0].ttl, 10)
        ptr = yield dig_query(host, self.link.client_ip, "_http._tcp.local", "PTR")
        self.assertEqual(ptr.data("PTR"), ["Peer\\032Web._http._tcp.local."])
        srv = yield threads.deferToThread(
            dig_query_blocking, host, self.link.client_ip, "Peer\\032Web._http._tcp.local", "SRV"
        )
        self.assertEqual(srv.data("SRV"), ["0 0 8080 peerhost.local."])
        nobody = yield dig_query(host, self.link.client_ip, "nobody.local", "A", timeout=1)
        self.assertFalse(nobody.answered)


class ZeroconfPeerTests(NamespaceTestMixin, TestCase):
    """
    A python-zeroconf publisher in client B is seen by python-zeroconf in
    the host, and says goodbye when stopped.
    """

    clients = ("a", "b")
    virtual = False
    timeout = 40

    def setUp(self):
        require_peers("zeroconf", "dig")
        super().setUp()
        self.link = self.topology.links["b"]
        self.publisher = ZeroconfPublisher(
            self.link.client_ns, "Zc Web", "_http._tcp", 9090,
            txt={"a": "1", "flag": None}, hostname="zchost.local.",
        )
        self.addCleanup(self.publisher.stop)

    @defer.inlineCallbacks
    def test_publish_and_resolve(self):
        """
        The publisher registers under the name asked for; the host resolves
        the service, the host name (also from a thread, blocking) and dig
        gets the address by legacy unicast.
        """
        name = yield self.publisher.start()
        self.assertEqual((name, self.publisher.renamed), ("Zc Web", False))
        host = self.topology.host_ns
        service = yield zeroconf_resolve_service(host, "_http._tcp", "Zc Web", interface="lanb")
        self.assertEqual(service.addresses, (self.link.client_ip,))
        self.assertEqual(service.server, "zchost.local.")
        self.assertEqual(service.port, 9090)
        self.assertEqual(service.txt, {"a": "1", "flag": None})
        addresses = yield threads.deferToThread(
            zeroconf_resolve_host_blocking, host, "zchost.local", interface="lanb"
        )
        self.assertEqual(addresses, [self.link.client_ip])
        answer = yield dig_query(host, self.link.client_ip, "zchost.local", "A")
        self.assertEqual(answer.data("A"), [self.link.client_ip])

    @defer.inlineCallbacks
    def test_goodbye_on_stop(self):
        """
        A browser in the host sees the service arrive, and sees it removed
        (goodbye, TTL 0) within a second or two of the publisher stopping.
        """
        browser = ZeroconfBrowser(self.topology.host_ns, "_http._tcp", interface="lanb")
        self.addCleanup(browser.stop)
        yield browser.start()
        yield self.publisher.start()
        added = yield browser.wait_for_added("Zc Web", timeout=5)
        self.assertEqual(added.addresses, (self.link.client_ip,))
        code = yield self.publisher.stop()
        self.assertEqual(code, 0)
        self.assertTrue(self.publisher.said_goodbye)
        yield browser.wait_for_removed("Zc Web", timeout=5)

    @defer.inlineCallbacks
    def test_rename_reported(self):
        """
        A second publisher of the same instance name on the same link (in
        the host, on lanb) has to rename, and says so.
        """
        yield self.publisher.start()
        second = ZeroconfPublisher(
            self.topology.host_ns, "Zc Web", "_http._tcp", 9091,
            hostname="other.local.", interface="lanb",
        )
        self.addCleanup(second.stop)
        name = yield second.start()
        self.assertEqual((name, second.renamed), ("Zc Web-2", True))
        # One 5353 listener per namespace: with two, a unicast reply to a
        # QU probe reaches only one of them (SO_REUSEPORT), at random.
        yield second.stop()
        strict = ZeroconfPublisher(
            self.topology.host_ns, "Zc Web", "_http._tcp", 9092,
            hostname="strict.local.", interface="lanb", rename=False,
        )
        self.addCleanup(strict.stop)
        failure = yield self.assertFailure(strict.start(), PeerError)
        self.assertIn("NonUniqueNameException", str(failure))


class AvahiConflictTests(NamespaceTestMixin, TestCase):
    """
    avahi probes its host name and renames on a conflict, and says so.
    """

    clients = ("a",)
    virtual = False
    timeout = 40

    @defer.inlineCallbacks
    def test_host_name_conflict(self):
        """
        A second avahi, in the host on lana, asked for the host name that
        avahi in client A already holds, becomes C{peerhost-2}; both run at
        once (each has its own runtime directory) and the first keeps its
        name.
        """
        require_peers("avahi-daemon")
        first = AvahiDaemon(self.topology.links["a"].client_ns, "peerhost", [WEB])
        self.addCleanup(first.stop)
        yield first.start()
        second = AvahiDaemon(self.topology.host_ns, "peerhost", [WEB], interfaces=("lana",))
        self.addCleanup(second.stop)
        name = yield second.start()
        self.assertEqual(name, "peerhost-2.local")
        self.assertIn("Host name conflict, retrying with peerhost-2", second.log)
        self.assertEqual(second.service_names, {0: "Peer Web #2"})
        self.assertTrue(first.running)
        self.assertEqual(first.host_name, "peerhost.local")
        self.assertNotIn("conflict", first.log)


class AvahiHostNameTests(TestCase):
    """
    L{AvahiDaemon.host_name} is the name avahi holds now, from its log: an
    assertion on it fails when avahi renamed, however late.
    """

    def daemon_with_log(self, log: str) -> AvahiDaemon:
        from types import SimpleNamespace

        avahi = AvahiDaemon("nowhere", "theirs", workdir=self.mktemp())
        avahi.process = SimpleNamespace(stderr=log)  # type: ignore[assignment]
        return avahi

    def test_before_start(self):
        self.assertIsNone(AvahiDaemon("nowhere", "theirs", workdir=self.mktemp()).host_name)

    def test_established(self):
        log = "Server startup complete. Host name is theirs.local. Local service cookie is 1.\n"
        self.assertEqual(self.daemon_with_log(log).host_name, "theirs.local")

    def test_renamed_later(self):
        log = (
            "Server startup complete. Host name is theirs.local. Local service cookie is 1.\n"
            "Received conflicting record [1.0.1.10.in-addr.arpa\tIN\tPTR ours.local ; ttl=120]. Resetting our record.\n"
            "Host name conflict, retrying with theirs-2\n"
        )
        self.assertIsNone(self.daemon_with_log(log).host_name, "no name while probing the next")
        log += "Server startup complete. Host name is theirs-2.local. Local service cookie is 1.\n"
        self.assertEqual(self.daemon_with_log(log).host_name, "theirs-2.local")
