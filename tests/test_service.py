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
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator
from twisted_mdns.policy import ExplicitInterfacePolicy
from twisted_mdns.message import TYPE_A, Question, name_from_text, pack_one


def open_fds() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the descriptor listdir itself used
    return out


class CountingEnumerator(SystemInterfaceEnumerator):
    """
    The system's enumerator, counting how often it is asked.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.last: list[NetworkInterface] = []

    def interfaces(self) -> list[NetworkInterface]:
        self.calls += 1
        self.last = list(super().interfaces())
        return self.last


def netlink_sockets() -> int:
    count = 0
    with open("/proc/self/net/netlink") as f:
        inodes = {line.split()[-1] for line in f.readlines()[1:]}
    for target in open_fds().values():
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


class StartupEnumerationTests(NamespaceTestMixin, unittest.TestCase):
    """
    Start-up enumerates the host's interfaces once: the monitor's first
    enumeration is what the policy, the transport and the responder start
    from (each enumeration costs time in proportion to the links).
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_one_enumeration_at_start(self):
        enumerator = CountingEnumerator()
        mdns = MDNSService(hostname="once", enumerator=enumerator)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        self.assertEqual(enumerator.calls, 1)
        self.assertEqual(list(mdns.monitor.interfaces), enumerator.last)
        self.assertEqual(sorted(i.name for i in mdns.transport.interfaces.values()), ["lana", "lanb"])
        # Later changes are the monitor's to enumerate, once per burst.
        from tests.netns import ip

        ip("addr", "add", "10.1.0.9/24", "dev", "lana", ns=self.topology.host_ns)
        yield wait_until(
            lambda: "10.1.0.9" in mdns.transport.interfaces[self.topology.links["a"].host_index].ipv4_addresses,
            what="the new address followed",
        )
        self.assertEqual(enumerator.calls, mdns.monitor.enumerations)

    def test_refused_start_leaves_no_monitor(self) -> None:
        """
        A bad explicit request stops the start after the monitor has
        started: it is stopped again, its netlink socket closed.
        """
        before = netlink_sockets()
        mdns = MDNSService(hostname="bad", policy=ExplicitInterfacePolicy(["nosuch0"]))
        self.assertRaises(Exception, mdns.startService)
        self.assertFalse(mdns.running)
        self.assertIsNone(mdns.monitor)
        self.assertEqual(netlink_sockets(), before)
        self.assertEqual(mdns.transport.ports, {})


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
                self.assertEqual(list(svc.ipv4), [str(iface.ipv4[0].ip)])
                # IPv6 (the link-local address, once its DAD is over): that
                # link's own, scoped to it.
                for address in svc.ipv6:
                    self.assertTrue(iface.has_address(address), (address, iface))
                    self.assertTrue(address.endswith(f"%{iface.name}"), address)
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
        yield wait_until(lambda: mdns.responder.host_claimed, what="host claimed")
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
        yield wait_until(lambda: mdns.responder.host_claimed, what="host claimed")
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


class HostObserverTests(NamespaceTestMixin, unittest.TestCase):
    """
    L{MDNSService.add_host_observer}: told when a real rival on a link
    takes our host name, in every run, with C{hostname} and the services
    named after the host (C{%h}) following it.
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_rival_renames_host_observer_told_services_follow(self):
        from tests.peers import ZeroconfPublisher, require_peers

        require_peers("zeroconf")
        mdns = MDNSService(hostname="obs", monitor=False)
        seen: list[tuple[str, str]] = []
        mdns.add_host_observer(lambda name: seen.append((name, mdns.hostname)))
        fixed = ServiceInfo("Fixed", "_http._tcp", 81)
        named = ServiceInfo("obs web", "_http._tcp", 80, name_template="%h web")
        first = mdns.register(named)
        mdns.register(fixed)
        mdns.startService()
        self.addCleanup(mdns.stopService)
        yield wait_until(lambda: mdns.responder.host_claimed, what="host claimed")
        self.assertEqual((yield first).instance, "obs web")
        # python-zeroconf on link a: a service on host obs.local, its
        # address records announced (RFC 6762 §9).
        rival = ZeroconfPublisher(self.topology.links["a"].client_ns, "Rival", "_rival._tcp", 9001,
                                  hostname="obs.local.")
        self.addCleanup(rival.stop)
        yield rival.start()
        yield wait_until(lambda: seen, timeout=15, what="host rename observed")
        self.assertEqual(seen, [("obs-2", "obs-2")])
        yield wait_until(lambda: mdns.responder.host_claimed, timeout=10, what="obs-2 claimed")
        yield wait_until(lambda: all(c.announced for c in mdns.responder.claims.services.values()),
                         timeout=10, what="services announced")
        self.assertEqual(sorted(s.instance for s in mdns.responder.services), ["Fixed", "obs-2 web"])
        # A restart claims the requested name again, and the service its
        # name for it (python-zeroconf does not defend obs.local against
        # our probes: it only announces it when it registers).
        yield mdns.stopService()
        self.assertEqual(mdns.hostname, "obs-2")
        yield rival.stop()
        mdns.startService()
        self.assertEqual(mdns.hostname, "obs")
        yield wait_until(lambda: mdns.responder.host_claimed, what="obs claimed again")
        self.assertIn("obs web", [s.instance for s in mdns.responder.services])
        # The observer follows the new run's responder.
        rival = ZeroconfPublisher(self.topology.links["b"].client_ns, "Rival", "_rival._tcp", 9001,
                                  hostname="obs.local.")
        self.addCleanup(rival.stop)
        yield rival.start()
        yield wait_until(lambda: len(seen) == 2, timeout=15, what="second rename observed")
        self.assertEqual(seen[1], ("obs-2", "obs-2"))
        yield wait_until(lambda: "obs-2 web" in [s.instance for s in mdns.responder.services],
                         timeout=5, what="service followed again")
