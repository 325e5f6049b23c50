"""
The real C{twistd mdns} process in a namespace: interface choice, following
interface changes at run time, and goodbyes on SIGTERM.

The process runs in the host namespace (links lana, lanb, plus tun0 and a
docker0 bridge); clients on each link ask with raw sockets.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain, inside, ip
from tests.peers import REPO_ROOT, PeerProcess
from tests.support import sleep, wait_until
from twisted_mdns.message import TYPE_A, TYPE_PTR, Question, name_from_text, pack_one, parse

HTTP = name_from_text("_http._tcp.local")
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def twistd_argv(*options: str) -> list[str]:
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "mdns", *options]


def a_answers(sock: socket.socket, ident: int | None = None) -> list[str]:
    """
    The A addresses in responses waiting on C{sock} (for query C{ident}).
    """
    out = []
    for data, _ in drain(sock):
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response and (ident is None or m.id == ident):
            out += [str(r.rdata) for r in m.answers if r.rtype == TYPE_A and r.ttl > 0]
    return out


class TwistdCase(NamespaceTestMixin, unittest.TestCase):
    timeout = 90

    def start_twistd(self, *options: str) -> defer.Deferred:
        proc = PeerProcess(
            self.topology.host_ns,
            twistd_argv(*options),
            name="twistd",
            env={"PYTHONPATH": str(REPO_ROOT)},
            cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        self.proc = proc
        return proc.wait_for(r"host name \S+\.local claimed", timeout=15).addCallback(lambda _: proc)

    def ask(self, client: str, host: str = "h", ident: int = 0x77) -> socket.socket:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(
            pack_one(ident=ident, questions=[Question(name_from_text(f"{host}.local"), TYPE_A)]),
            ("224.0.0.251", 5353),
        )
        return sock

    @defer.inlineCallbacks
    def answered(self, client: str, host: str = "h", timeout: float = 3.0):
        sock = self.ask(client, host)
        try:
            got = yield wait_until(lambda: a_answers(sock), timeout=timeout, what=f"answer on {client}")
        except AssertionError:
            return []
        return sorted(got)

    @defer.inlineCallbacks
    def answered_with(self, client: str, expected: list[str], timeout: float = 15.0):
        """
        Ask again until the answer is C{expected} (an address change is
        probed and announced before it is answered for, RFC 6762 §8), and
        return the last answer.
        """
        deadline = reactor.seconds() + timeout
        got = yield self.answered(client, timeout=1.0)
        while got != sorted(expected) and reactor.seconds() < deadline:
            yield sleep(0.3)
            got = yield self.answered(client, timeout=1.0)
        return got


class InterfaceChoiceTests(TwistdCase):
    @defer.inlineCallbacks
    def test_iface_answers_on_a_only(self):
        yield self.start_twistd("--iface", "lana", "--hostname", "h")
        got = yield self.answered("a")
        self.assertEqual(got, [self.topology.links["a"].host_ip])
        got = yield self.answered("b", timeout=1.5)
        self.assertEqual(got, [])

    @defer.inlineCallbacks
    def test_default_answers_on_both_but_not_virtual(self):
        # A client behind docker0 (a veth enslaved to the bridge).
        topo = self.topology
        dock_ns = topo.host_ns[:-1] + "d"
        ip("netns", "add", dock_ns)
        topo.namespaces.append(dock_ns)
        ip("link", "add", "dk0", "netns", topo.host_ns, "type", "veth", "peer", "name", "eth0", "netns", dock_ns)
        ip("link", "set", "dk0", "master", "docker0", "up", ns=topo.host_ns)
        ip("addr", "add", "172.17.0.2/16", "dev", "eth0", ns=dock_ns)
        ip("link", "set", "eth0", "up", ns=dock_ns)
        ip("link", "set", "lo", "up", ns=dock_ns)
        ip("route", "add", "224.0.0.0/4", "dev", "eth0", ns=dock_ns)

        # The reasons for leaving an interface out are details (debug).
        yield self.start_twistd("--hostname", "h", "--log-level", "debug")
        self.assertEqual((yield self.answered("a")), [topo.links["a"].host_ip])
        self.assertEqual((yield self.answered("b")), [topo.links["b"].host_ip])

        with inside(dock_ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("172.17.0.2"))
            sock.bind(("172.17.0.2", 0))
            sock.setblocking(False)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=5, questions=[Question(name_from_text("h.local"), TYPE_A)]), ("224.0.0.251", 5353))
        sock.sendto(pack_one(ident=6, questions=[Question(name_from_text("h.local"), TYPE_A)]), ("172.17.0.1", 5353))
        yield sleep(1.0)
        self.assertEqual(a_answers(sock), [], "nothing answered behind docker0")
        log = self.proc.stdout + self.proc.stderr
        self.assertIn("tun0 excluded: virtual: VPN (tun*)", log)
        self.assertIn("docker0 excluded: virtual: container (docker*)", log)
        self.assertNotIn("listening on tun0", log)
        self.assertNotIn("listening on docker0", log)

    @defer.inlineCallbacks
    def test_bad_iface_is_a_one_line_error(self):
        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--iface", "nope0"), name="twistd-bad",
            env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        code = yield proc.wait(timeout=20)
        self.assertNotEqual(code, 0)
        output = proc.stdout + proc.stderr
        self.assertEqual(
            output.strip().splitlines(),
            ["twistd mdns: error: --iface: interface 'nope0': no such interface "
             "(interfaces present: lo, lana, lanb, tun0, docker0)"],
        )


class FollowingChangesTests(TwistdCase):
    @defer.inlineCallbacks
    def test_link_added_then_removed(self):
        yield self.start_twistd("--hostname", "h")
        link = self.topology.add_link("c", "lanc", subnet_octet=3)
        listener = self.topology.client_listener("c")
        self.addCleanup(listener.close)
        # Announced on the new link unasked (probing takes ~1 s; the
        # deadline allows for a loaded machine and another process).
        announced = yield wait_until(lambda: a_answers(listener), timeout=15, what="announcement on lanc")
        self.assertEqual(set(announced), {link.host_ip})
        self.assertEqual((yield self.answered("c")), [link.host_ip])
        self.assertEqual((yield self.answered("a")), [self.topology.links["a"].host_ip])

        self.topology.remove_link("c")
        yield wait_until(lambda: "removed ['lanc']" in self.proc.stdout, timeout=15, what="port closed")
        yield sleep(1.0)
        log = self.proc.stdout
        noisy = [line for line in log.splitlines() if "lanc" in line and ("error" in line.lower() or "Traceback" in line)]
        self.assertLessEqual(len(noisy), 1, noisy)
        self.assertNotIn("Traceback", log)
        self.assertEqual((yield self.answered("b")), [self.topology.links["b"].host_ip])

    @defer.inlineCallbacks
    def test_address_added_and_removed(self):
        yield self.start_twistd("--hostname", "h")
        a, b = self.topology.links["a"], self.topology.links["b"]
        ip("addr", "add", "10.1.0.9/24", "dev", "lana", ns=self.topology.host_ns)
        # Other changes of the moment (an IPv6 link-local address ending
        # DAD on lanb) may be reported in the same line.
        readdressed = re.compile(r"readdressed \[[^]]*'lana'")
        yield wait_until(lambda: readdressed.search(self.proc.stdout), timeout=15, what="readdressed")
        self.assertEqual((yield self.answered_with("a", [a.host_ip, "10.1.0.9"])), sorted([a.host_ip, "10.1.0.9"]))
        self.assertEqual((yield self.answered("b")), [b.host_ip])

        listener = self.topology.client_listener("a")
        self.addCleanup(listener.close)
        ip("addr", "del", "10.1.0.9/24", "dev", "lana", ns=self.topology.host_ns)

        def goodbye():
            for data, _ in drain(listener):
                m = parse(data)
                for r in m.answers:
                    if r.rtype == TYPE_A and r.ttl == 0 and str(r.rdata) == "10.1.0.9":
                        return True
            return False

        yield wait_until(goodbye, timeout=15, what="goodbye for 10.1.0.9")
        self.assertEqual((yield self.answered_with("a", [a.host_ip])), [a.host_ip])


class SignalTests(TwistdCase):
    def test_sigterm_sends_goodbyes(self):
        return self.check_goodbyes_on(signal.SIGTERM)

    def test_sigint_sends_goodbyes(self):
        return self.check_goodbyes_on(signal.SIGINT)

    @defer.inlineCallbacks
    def check_goodbyes_on(self, signum: int):
        listeners = {c: self.topology.client_listener(c) for c in ("a", "b")}
        for s in listeners.values():
            self.addCleanup(s.close)
        yield self.start_twistd("--hostname", "h", "--service", "Web|_http._tcp|8080|path=/")
        yield self.proc.wait_for("registered", timeout=10)
        # Both announcements of the host and the service out (RFC 6762
        # §8.3), seen on each link rather than assumed after a fixed time.
        heard = {c: [] for c in listeners}

        def announced_twice() -> bool:
            for client, sock in listeners.items():
                heard[client] += [parse(data) for data, _ in drain(sock)]
            return all(
                sum(any(r.rtype == rtype and r.ttl > 0 for r in m.answers) for m in got) >= 2
                for got in heard.values() for rtype in (TYPE_A, 33)
            )

        yield wait_until(announced_twice, timeout=15, what="two announcements on each link")
        self.proc.send_signal(signum)
        code = yield self.proc.wait(timeout=20)
        # twistd re-raises the signal that stopped it once it has shut down
        # cleanly, so the status is "killed by" it, after the goodbyes.
        self.assertIn(code, (0, -signum))
        self.assertIn("Server Shut Down", self.proc.stdout)
        for client, sock in listeners.items():
            heard_last = [r for data, _ in drain(sock) for r in parse(data).answers]
            # An announcement may still go out between the last look and the
            # signal (a link-local address out of DAD, the second of a
            # round); what was announced must then be said goodbye to.
            records = [r for r in heard_last if r.ttl == 0]
            self.assertTrue(records, f"goodbyes on {client}")
            last_goodbye = {r.identity: i for i, r in enumerate(heard_last) if r.ttl == 0}
            self.assertEqual([r for i, r in enumerate(heard_last)
                              if r.ttl > 0 and last_goodbye.get(r.identity, -1) < i], [])
            # A, PTR, TXT, SRV, and AAAA for the link-local address once
            # its DAD is over (RFC 6762 §10.1: every record we published).
            self.assertIn({r.rtype for r in records}, ({1, 12, 16, 33}, {1, 12, 16, 28, 33}))
            self.assertEqual([str(r.rdata) for r in records if r.rtype == TYPE_A],
                             [self.topology.links[client].host_ip])


class StartWithoutNetworkTests(TwistdCase):
    """
    A host that boots with no usable interface (a laptop before Wi-Fi):
    twistd starts, says so, and takes the first link that appears.
    """

    clients = ()
    virtual = False

    @defer.inlineCallbacks
    def test_first_link_after_start(self):
        yield self.start_twistd("--hostname", "h")
        self.assertIn("no interface qualifies", self.proc.stdout)
        link = self.topology.add_link("c", "lanc", subnet_octet=3)
        listener = self.topology.client_listener("c")
        self.addCleanup(listener.close)
        announced = yield wait_until(lambda: a_answers(listener), timeout=15, what="announcement on lanc")
        self.assertEqual(set(announced), {link.host_ip})
        self.assertEqual((yield self.answered("c")), [link.host_ip])
        self.assertNotIn("Traceback", self.proc.stdout + self.proc.stderr)


def ptr_instances(sock: socket.socket, ident: int) -> list[str]:
    """
    The instance names in PTR answers waiting on C{sock} for query C{ident}.
    """
    out = []
    for data, _ in drain(sock):
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response and m.id == ident:
            out += [r.rdata.label.label[0].decode() for r in m.answers if r.rtype == TYPE_PTR]
    return sorted(out)


class OptionTests(TwistdCase):
    """
    C{twistd mdns} options in a real process: C{--services-dir} with a bad
    file, C{--browse}, C{--log-level}, C{--exclude-iface}.
    """

    clients = ("a", "b")
    virtual = False

    @defer.inlineCallbacks
    def browse_ptr(self, client: str, ident: int) -> defer.Deferred:
        """
        The instances a legacy PTR query for C{_http._tcp} gets on C{client}'s link.
        """
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=ident, questions=[Question(HTTP, TYPE_PTR)]), ("224.0.0.251", 5353))
        got = yield wait_until(lambda: ptr_instances(sock, ident), timeout=5, what=f"PTR reply on {client}")
        return got

    @defer.inlineCallbacks
    def test_services_dir_bad_file_reported_others_loaded(self):
        """
        A bad service file is reported with its path and line and skipped;
        the good files before and after it are published.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        files = {
            "a.service": "[service]\nname = A Web\ntype = _http._tcp\nport = 8080\n",
            "b.service": "[service]\nname = B Web\ntype = _http._tcp\nport = eighty\n",
            "c.service": "[service]\nname = C Web\ntype = _http._tcp\nport = 8082\n\n[txt]\npath = /c\n",
        }
        for name, text in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        yield self.start_twistd("--hostname", "h", "--services-dir", os.path.abspath(directory))
        yield self.proc.wait_for("service C Web", timeout=10)
        bad = os.path.join(os.path.abspath(directory), "b.service")
        errors = [line for line in self.proc.stdout.splitlines() if "b.service" in line]
        self.assertEqual(len(errors), 1, self.proc.stdout)
        self.assertIn(f"{bad}:4: port 'eighty' is not a number", errors[0])
        self.assertIn("#error]", errors[0])
        self.assertEqual((yield self.browse_ptr("a", 0x31)), ["A Web", "C Web"])
        self.assertEqual((yield self.browse_ptr("b", 0x32)), ["A Web", "C Web"])

    @defer.inlineCallbacks
    def test_browse_logs_each_interface(self):
        """
        C{--browse} logs each service as seen on each link, with that
        link's addresses, and its removal; never a service on a link it
        is not on.
        """
        from tests.peers import ZeroconfPublisher, require_peers

        require_peers("zeroconf")
        a, b = self.topology.links["a"], self.topology.links["b"]
        publishers = {
            "a": ZeroconfPublisher(a.client_ns, "Zc A", "_http._tcp", 9001, {"on": "a"}, hostname="zca.local."),
            "b": ZeroconfPublisher(b.client_ns, "Zc B", "_http._tcp", 9002, {"on": "b"}, hostname="zcb.local."),
        }
        for p in publishers.values():
            self.addCleanup(p.stop)
        yield defer.gatherResults([p.start() for p in publishers.values()])
        yield self.start_twistd("--hostname", "h", "--browse", "_http._tcp")
        added_a = yield self.proc.wait_for(r"browse _http._tcp: added Zc A on (\S+): (.*)$", timeout=10)
        added_b = yield self.proc.wait_for(r"browse _http._tcp: added Zc B on (\S+): (.*)$", timeout=10)
        self.assertEqual(added_a.group(1), "lana")
        self.assertIn(f"zca.local:9001 ['{a.client_ip}']", added_a.group(2))
        self.assertEqual(added_b.group(1), "lanb")
        self.assertIn(f"zcb.local:9002 ['{b.client_ip}']", added_b.group(2))
        yield publishers["a"].stop()
        removed = yield self.proc.wait_for(r"browse _http._tcp: removed Zc A on (\S+):", timeout=10)
        self.assertEqual(removed.group(1), "lana")
        for wrong in ("Zc A on lanb", "Zc B on lana"):
            self.assertNotIn(wrong, self.proc.stdout)

    @defer.inlineCallbacks
    def test_exclude_iface(self):
        """
        C{--exclude-iface lanb}: answers on lana only.
        """
        yield self.start_twistd("--hostname", "h", "--exclude-iface", "lanb")
        self.assertEqual((yield self.answered("a")), [self.topology.links["a"].host_ip])
        self.assertEqual((yield self.answered("b", timeout=1.5)), [])
        self.assertNotIn("listening on lanb", self.proc.stdout)

    @defer.inlineCallbacks
    def test_exclude_iface_by_address(self):
        """
        C{--exclude-iface} also takes an interface's IPv4 address.
        """
        yield self.start_twistd("--hostname", "h", "--exclude-iface", self.topology.links["a"].host_ip)
        self.assertEqual((yield self.answered("b")), [self.topology.links["b"].host_ip])
        self.assertEqual((yield self.answered("a", timeout=1.5)), [])

    def twistd_lines(self, level: str) -> list[str]:
        """
        Our own (C{twisted_mdns.*}) log lines at C{level}.
        """
        return [line for line in self.proc.stdout.splitlines() if f"#{level}]" in line and "[twisted_mdns." in line]

    @defer.inlineCallbacks
    def test_log_level_warn(self):
        """
        C{--log-level warn}: the service runs (it answers) but logs none of
        its info lines once started.
        """
        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--hostname", "h", "--log-level", "warn"),
            name="twistd", env={"PYTHONPATH": str(REPO_ROOT)}, cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        self.proc = proc

        sock = self.ask("a", ident=0x56)

        def answers():
            got = a_answers(sock, 0x56)
            if not got:
                sock.sendto(
                    pack_one(ident=0x56, questions=[Question(name_from_text("h.local"), TYPE_A)]),
                    ("224.0.0.251", 5353),
                )
            return got

        got = yield wait_until(answers, timeout=20, interval=0.5, what="an answer from twistd")
        self.assertEqual(got, [self.topology.links["a"].host_ip])
        yield sleep(0.5)
        log = self.proc.stdout
        for quiet in ("host name h.local claimed", "listening on lana", "transport: 2 port(s) open"):
            self.assertNotIn(quiet, log)
        self.assertEqual(self.twistd_lines("debug") + self.twistd_lines("info"), [])

    @defer.inlineCallbacks
    def test_log_level_debug(self):
        """
        C{--log-level debug} shows the details logged while running (the
        browser's queries, per interface), which the default level hides.
        """
        yield self.start_twistd("--hostname", "h", "--browse", "_ipp._tcp")
        yield sleep(1.5)
        self.assertNotIn("asked _ipp._tcp", self.proc.stdout)
        yield self.proc.stop(timeout=5)
        yield self.start_twistd("--hostname", "h", "--browse", "_ipp._tcp", "--log-level", "debug")
        for iface in ("lana", "lanb"):
            line = yield self.proc.wait_for(rf"#debug\] {iface}: asked _ipp\._tcp\.local\.?/PTR", timeout=10)
            self.assertTrue(line)
