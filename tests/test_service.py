"""
L{MDNSService} as an application composes it: lifecycle, descriptors, the
example application next to a web server.
"""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.support import wait_until
from tests.test_twistd import a_answers
from twisted_mdns import MDNSService, ServiceInfo
from twisted_mdns.message import TYPE_A, Question, name_from_text, pack_one


def open_fds() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the descriptor listdir itself used
    return out


class ServiceLifecycleTests(NamespaceTestMixin, unittest.TestCase):
    timeout = 60

    def ask(self, client: str, host: str) -> object:
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=9, questions=[Question(name_from_text(f"{host}.local"), TYPE_A)]),
                    ("224.0.0.251", 5353))
        return sock

    @defer.inlineCallbacks
    def test_start_stop_twice_and_no_leaked_descriptors(self):
        before = open_fds()
        sockets_before = sorted(v for v in before.values() if v.startswith("socket:"))
        mdns = MDNSService(hostname="twice")
        registered = mdns.register(ServiceInfo("Early", "_http._tcp", 80))
        for round_ in range(2):
            mdns.startService()
            mdns.startService()  # harmless
            self.assertEqual(len(mdns.transport.ports), 2)
            info = yield registered if round_ == 0 else mdns.responder.register(ServiceInfo("Late", "_http._tcp", 81))
            self.assertIn(info.instance, ("Early", "Late"))
            sock = self.ask("a", "twice")
            got = yield wait_until(lambda: a_answers(sock), what="answer")
            self.assertEqual(got, [self.topology.links["a"].host_ip])
            # Browsing works in every run, and finds our own service on each
            # link with that link's address (our queries loop back to us).
            seen = []
            browser = mdns.browse("_http._tcp", lambda event, svc, iface: seen.append((event, svc, iface)))
            yield wait_until(lambda: len({i.name for e, _, i in seen if e == "added"}) == 2, what="browse")
            browser.stop()
            for event, svc, iface in seen:
                self.assertEqual(list(svc.addresses), [str(iface.ipv4[0].ip)])
            yield mdns.stopService()
            yield mdns.stopService()  # harmless
            self.assertEqual(mdns.transport.ports, {})
            sock.close()
        # The reactor may open a waker pipe of its own on first use; what we
        # own are sockets: every port and the netlink socket must be closed.
        sockets_after = sorted(v for v in open_fds().values() if v.startswith("socket:"))
        self.assertEqual(sockets_after, sockets_before)
        self.assertGreaterEqual(len(before), len(open_fds()) - 2)

    @defer.inlineCallbacks
    def test_counters_readable(self):
        mdns = MDNSService(hostname="count", monitor=False)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        yield wait_until(lambda: mdns.responder._host.state == "announced", what="host claimed")
        sock = self.ask("b", "count")
        yield wait_until(lambda: a_answers(sock), what="answer")
        self.assertGreaterEqual(mdns.counters["answered"], 1)
        self.assertGreaterEqual(mdns.counters["received"], 1)

    @defer.inlineCallbacks
    def test_example_application(self):
        from examples.web_with_mdns import build

        top, mdns, web = build(hostname="example", http_port=18080, instance="Example Web")
        top.startService()
        stopped = []

        def stop():
            if not stopped:
                stopped.append(True)
                return top.stopService()

        self.addCleanup(stop)
        yield wait_until(lambda: mdns.responder._host.state == "announced", what="host claimed")
        for client in ("a", "b"):
            sock = self.ask(client, "example")
            got = yield wait_until(lambda: a_answers(sock), what=f"answer on {client}")
            self.assertEqual(got, [self.topology.links[client].host_ip])
        from twisted.web.client import Agent, readBody
        from twisted.internet import reactor

        response = yield Agent(reactor).request(b"GET", b"http://10.1.0.1:18080/")
        body = yield readBody(response)
        self.assertIn(b"mDNS", body)
        yield stop()
        self.assertEqual(mdns.transport.ports, {})
