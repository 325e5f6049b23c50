"""
Tests for L{twisted_mdns.monitor}: the pure diff, both monitors on a fake
clock with a static enumerator, and the netlink monitor against real links
and addresses changing in a network namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from typing import Callable

from twisted.internet import defer, reactor, task, utils
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from tests.netns import NamespaceTestMixin, ip
from twisted_mdns.interfaces import IInterfaceMonitor
from twisted_mdns.monitor import (
    InterfaceChanges,
    NetlinkInterfaceMonitor,
    PollingInterfaceMonitor,
    default_monitor,
    diff_interfaces,
    netlink_available,
)
from twisted_mdns.netif import InterfaceFlags, NetworkInterface, StaticInterfaceEnumerator


def iface(
    name: str, index: int, *addrs: str, up: bool = True, mtu: int = 1500
) -> NetworkInterface:
    return NetworkInterface(
        name=name,
        index=index,
        flags=InterfaceFlags(up=up, running=up),
        mtu=mtu,
        ipv4=tuple(ipaddress.IPv4Interface(a) for a in addrs),
    )


LO = NetworkInterface(
    "lo", 1, InterfaceFlags(loopback=True, multicast=False, broadcast=False),
    65536, (ipaddress.IPv4Interface("127.0.0.1/8"),),
)
ETH0 = iface("eth0", 2, "192.168.1.10/24")
WLAN0 = iface("wlan0", 3, "10.0.0.5/24")


class CountingEnumerator(StaticInterfaceEnumerator):
    """
    A static enumerator that counts how often it is asked.
    """

    def __init__(self, interfaces) -> None:
        super().__init__(interfaces)
        self.calls = 0

    def interfaces(self):
        self.calls += 1
        return super().interfaces()


class FakeNetlinkSocket:
    """
    Stands in for the netlink socket: C{recv_into} returns or raises what
    the test queued, then C{BlockingIOError} (nothing more to read).
    """

    def __init__(self) -> None:
        self.queue: list = []
        self.closed = False

    def fileno(self) -> int:
        return -1 if self.closed else 999

    def recv_into(self, buffer) -> int:
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "would block")
        item = self.queue.pop(0)
        if isinstance(item, BaseException):
            raise item
        buffer[: len(item)] = item
        return len(item)

    def close(self) -> None:
        self.closed = True


class DiffTests(unittest.TestCase):
    def test_nothing_changed(self) -> None:
        changes = diff_interfaces([LO, ETH0], [LO, ETH0])
        self.assertFalse(changes)
        self.assertEqual(changes.interfaces, (LO, ETH0))
        self.assertEqual(changes.describe(), [])

    def test_added(self) -> None:
        changes = diff_interfaces([LO, ETH0], [LO, ETH0, WLAN0])
        self.assertTrue(changes)
        self.assertEqual(changes.added, (WLAN0,))
        self.assertEqual((changes.removed, changes.changed), ((), ()))
        self.assertEqual(changes.interfaces, (LO, ETH0, WLAN0))

    def test_removed(self) -> None:
        changes = diff_interfaces([LO, ETH0, WLAN0], [LO, WLAN0])
        self.assertEqual(changes.removed, (ETH0,))
        self.assertEqual((changes.added, changes.changed), ((), ()))

    def test_readdressed(self) -> None:
        new = iface("eth0", 2, "192.168.1.10/24", "192.168.1.77/24")
        changes = diff_interfaces([ETH0], [new])
        self.assertEqual(changes.changed, ((ETH0, new),))
        self.assertEqual(changes.readdressed, ((ETH0, new),))
        self.assertEqual(
            InterfaceChanges.addresses_added(ETH0, new),
            {ipaddress.IPv4Interface("192.168.1.77/24")},
        )
        self.assertEqual(InterfaceChanges.addresses_removed(ETH0, new), set())
        self.assertEqual(
            InterfaceChanges.addresses_removed(new, ETH0),
            {ipaddress.IPv4Interface("192.168.1.77/24")},
        )
        self.assertIn("address 192.168.1.77/24 added on eth0", changes.describe())

    def test_new_dhcp_lease(self) -> None:
        """
        A new address in place of the old one is one changed pair with one
        address added and one removed.
        """
        new = iface("eth0", 2, "192.168.1.99/24")
        changes = diff_interfaces([ETH0], [new])
        (old, now), = changes.changed
        self.assertEqual(
            InterfaceChanges.addresses_added(old, now),
            {ipaddress.IPv4Interface("192.168.1.99/24")},
        )
        self.assertEqual(
            InterfaceChanges.addresses_removed(old, now),
            {ipaddress.IPv4Interface("192.168.1.10/24")},
        )

    def test_up_down(self) -> None:
        down = iface("eth0", 2, "192.168.1.10/24", up=False)
        changes = diff_interfaces([ETH0], [down])
        self.assertEqual(changes.changed, ((ETH0, down),))
        self.assertEqual(changes.readdressed, ())
        self.assertIn("interface eth0 down", changes.describe())
        self.assertIn("interface eth0 up", diff_interfaces([down], [ETH0]).describe())

    def test_mtu(self) -> None:
        jumbo = iface("eth0", 2, "192.168.1.10/24", mtu=9000)
        changes = diff_interfaces([ETH0], [jumbo])
        self.assertEqual(changes.changed, ((ETH0, jumbo),))
        self.assertEqual(changes.describe(), ["interface eth0 MTU 1500 -> 9000"])

    def test_ipv6(self) -> None:
        new = NetworkInterface(
            "eth0", 2, ETH0.flags, 1500, ETH0.ipv4,
            (ipaddress.IPv6Interface("fe80::1/64"),),
        )
        changes = diff_interfaces([ETH0], [new])
        self.assertEqual(changes.changed, ((ETH0, new),))
        # A new (flagless, so usable) IPv6 address is published: readdressed.
        self.assertEqual(changes.readdressed, ((ETH0, new),))
        self.assertEqual(
            InterfaceChanges.ipv6_addresses_added(ETH0, new),
            {ipaddress.IPv6Interface("fe80::1/64")},
        )

    def test_keyed_by_index(self) -> None:
        """
        A rename keeps the index, so it is a change, not a removal and an
        addition; the same name on a new index is the opposite.
        """
        renamed = iface("lan0", 2, "192.168.1.10/24")
        changes = diff_interfaces([ETH0], [renamed])
        self.assertEqual((changes.added, changes.removed), ((), ()))
        self.assertEqual(changes.changed, ((ETH0, renamed),))
        self.assertIn("interface eth0 renamed to lan0", changes.describe())

        recreated = iface("eth0", 7, "192.168.1.10/24")
        changes = diff_interfaces([ETH0], [recreated])
        self.assertEqual(changes.added, (recreated,))
        self.assertEqual(changes.removed, (ETH0,))
        self.assertEqual(changes.changed, ())

    def test_everything_at_once(self) -> None:
        down = iface("eth0", 2, "192.168.1.10/24", up=False)
        changes = diff_interfaces([LO, ETH0, WLAN0], [LO, down, iface("usb0", 9)])
        self.assertEqual([i.name for i in changes.added], ["usb0"])
        self.assertEqual([i.name for i in changes.removed], ["wlan0"])
        self.assertEqual(changes.changed, ((ETH0, down),))


class PollingMonitorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.enumerator = CountingEnumerator([LO, ETH0])
        self.monitor = PollingInterfaceMonitor(self.clock, self.enumerator, interval=2.0)
        self.reports: list[InterfaceChanges] = []
        self.addCleanup(self.monitor.stop)

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IInterfaceMonitor, self.monitor))

    def test_initial_list_taken_at_start(self) -> None:
        self.assertEqual(self.enumerator.calls, 0)
        self.monitor.start(self.reports.append)
        self.assertEqual(self.enumerator.calls, 1)
        self.assertEqual(self.monitor.interfaces, (LO, ETH0))
        self.assertEqual(self.reports, [])

    def test_nothing_changed(self) -> None:
        self.monitor.start(self.reports.append)
        self.clock.pump([2.0] * 5)
        self.assertEqual(self.enumerator.calls, 6)
        self.assertEqual(self.reports, [])

    def test_change_reported_once(self) -> None:
        self.monitor.start(self.reports.append)
        self.enumerator.set([LO, ETH0, WLAN0])
        self.clock.advance(1.9)
        self.assertEqual(self.reports, [])
        self.clock.advance(0.1)
        self.assertEqual(len(self.reports), 1)
        self.assertEqual(self.reports[0].added, (WLAN0,))
        self.assertEqual(self.monitor.interfaces, (LO, ETH0, WLAN0))
        self.clock.pump([2.0] * 3)
        self.assertEqual(len(self.reports), 1)

    def test_callback_failure_keeps_polling(self) -> None:
        def explode(changes):
            self.reports.append(changes)
            raise ValueError("boom")

        self.monitor.start(explode)
        self.enumerator.set([LO])
        self.clock.advance(2.0)
        self.enumerator.set([LO, WLAN0])
        self.clock.advance(2.0)
        self.assertEqual(len(self.reports), 2)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 2)

    def test_enumeration_failure_keeps_polling(self) -> None:
        self.monitor.start(self.reports.append)
        self.patch(self.enumerator, "interfaces", lambda: 1 / 0)
        self.clock.advance(2.0)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(self.monitor.interfaces, (LO, ETH0))
        self.patch(self.enumerator, "interfaces", lambda: [LO])
        self.clock.advance(2.0)
        self.assertEqual([r.removed for r in self.reports], [(ETH0,)])

    def test_stop(self) -> None:
        self.monitor.start(self.reports.append)
        self.monitor.stop()
        self.monitor.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.enumerator.set([LO])
        self.clock.advance(10)
        self.assertEqual(self.reports, [])

    def test_restart(self) -> None:
        self.monitor.start(self.reports.append)
        self.assertRaises(RuntimeError, self.monitor.start, self.reports.append)
        self.monitor.stop()
        self.monitor.start(self.reports.append)
        self.enumerator.set([LO])
        self.clock.advance(2.0)
        self.assertEqual(len(self.reports), 1)


class NetlinkMonitorUnitTests(unittest.TestCase):
    """
    The netlink monitor's scheduling, on a fake reactor and a fake socket.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.enumerator = CountingEnumerator([LO, ETH0])
        self.monitor = NetlinkInterfaceMonitor(self.reactor, self.enumerator, settle=0.1)
        self.socket = FakeNetlinkSocket()
        self.patch(self.monitor, "_open_socket", lambda: self.socket)
        self.reports: list[InterfaceChanges] = []
        self.addCleanup(self.monitor.stop)

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(IInterfaceMonitor, self.monitor))
        self.assertTrue(verifyObject(IReadDescriptor, self.monitor))

    def test_start(self) -> None:
        self.monitor.start(self.reports.append)
        self.assertIn(self.monitor, self.reactor.readers)
        self.assertEqual(self.monitor.fileno(), 999)
        self.assertEqual(self.enumerator.calls, 1)
        self.assertEqual(self.monitor.interfaces, (LO, ETH0))

    def test_triggers_coalesce(self) -> None:
        """
        Several triggers within the settle time cost one enumeration, done
        C{settle} after the last, and give one callback.
        """
        self.monitor.start(self.reports.append)
        self.enumerator.set([LO, ETH0, WLAN0])
        for _ in range(5):
            self.monitor._trigger()
            self.reactor.advance(0.05)
        self.assertEqual((self.enumerator.calls, self.reports), (1, []))
        self.reactor.advance(0.06)
        self.assertEqual(self.enumerator.calls, 2)
        self.assertEqual([r.added for r in self.reports], [(WLAN0,)])
        self.reactor.advance(5)
        self.assertEqual(self.enumerator.calls, 2)

    def test_no_change_no_callback(self) -> None:
        self.monitor.start(self.reports.append)
        self.monitor._trigger()
        self.reactor.advance(0.1)
        self.assertEqual(self.enumerator.calls, 2)
        self.assertEqual(self.reports, [])

    def test_endless_burst_is_cut_off(self) -> None:
        """
        A stream of messages that never pauses still gets enumerated, after
        at most C{max_delay}.
        """
        self.monitor.start(self.reports.append)
        self.enumerator.set([LO])
        for _ in range(15):
            self.monitor._trigger()
            self.reactor.advance(0.09)
        self.assertEqual(len(self.reports), 1)
        self.assertLessEqual(self.enumerator.calls, 3)

    def test_do_read_drains_and_triggers(self) -> None:
        self.monitor.start(self.reports.append)
        self.socket.queue = [b"x" * 40, b"y" * 60, b"z"]
        self.enumerator.set([LO])
        self.monitor.doRead()
        self.assertEqual(self.socket.queue, [])
        self.assertEqual(self.enumerator.calls, 1)
        self.reactor.advance(0.1)
        self.assertEqual([r.removed for r in self.reports], [(ETH0,)])

    def test_do_read_nothing(self) -> None:
        """
        A spurious wake-up (nothing to read) schedules nothing.
        """
        self.monitor.start(self.reports.append)
        self.monitor.doRead()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_enobufs_rescans(self) -> None:
        """
        An overrun means messages were lost; since they are only a trigger,
        re-enumerating recovers everything.
        """
        self.monitor.start(self.reports.append)
        self.socket.queue = [OSError(errno.ENOBUFS, "No buffer space available")]
        self.enumerator.set([LO, ETH0, WLAN0])
        self.monitor.doRead()
        self.reactor.advance(0.1)
        self.assertEqual([r.added for r in self.reports], [(WLAN0,)])

    def test_stop_twice(self) -> None:
        self.monitor.start(self.reports.append)
        self.monitor._trigger()
        self.monitor.stop()
        self.assertNotIn(self.monitor, self.reactor.readers)
        self.assertTrue(self.socket.closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.monitor.fileno(), -1)
        self.monitor.stop()
        self.monitor.doRead()
        self.monitor._trigger()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop_before_start(self) -> None:
        self.monitor.stop()

    def test_connection_lost(self) -> None:
        """
        At reactor shutdown the reactor drops its readers and tells them;
        the monitor then closes up, and a later stop() does no harm.
        """
        self.monitor.start(self.reports.append)
        self.monitor._trigger()
        self.reactor.removeReader(self.monitor)
        self.monitor.connectionLost(None)
        self.assertTrue(self.socket.closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.monitor.stop()

    def test_start_fails_cleanly(self) -> None:
        def refuse():
            raise PermissionError(errno.EPERM, "no netlink here")

        self.patch(self.monitor, "_open_socket", refuse)
        self.assertRaises(PermissionError, self.monitor.start, self.reports.append)
        self.assertFalse(self.monitor.running)
        self.assertEqual(self.reactor.readers, set())

    def test_default_monitor(self) -> None:
        monitor = default_monitor(self.reactor, self.enumerator)
        self.assertTrue(verifyObject(IInterfaceMonitor, monitor))
        expected = NetlinkInterfaceMonitor if netlink_available() else PollingInterfaceMonitor
        self.assertIsInstance(monitor, expected)


class Collector:
    """
    Records a monitor's callbacks and hands out Deferreds for the first
    report matching a predicate, which fail after a timeout so that a broken
    monitor fails the test rather than hanging it.
    """

    def __init__(self) -> None:
        self.reports: list[InterfaceChanges] = []
        self._waiting: list[tuple[Callable[[InterfaceChanges], bool], defer.Deferred]] = []

    def __call__(self, changes: InterfaceChanges) -> None:
        self.reports.append(changes)
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate(changes):
                self._waiting.remove(entry)
                d.callback(changes)

    def wait_for(
        self, predicate: Callable[[InterfaceChanges], bool], what: str,
        timeout: float = 5.0,
    ) -> defer.Deferred:
        """
        Fire with the first report from now on for which C{predicate} holds.
        """
        d: defer.Deferred = defer.Deferred()
        entry = (predicate, d)
        self._waiting.append(entry)

        def expire() -> None:
            if entry in self._waiting:
                self._waiting.remove(entry)
                d.errback(
                    unittest.FailTest(
                        f"no report of {what} within {timeout}s; got "
                        f"{[r.describe() for r in self.reports]}"
                    )
                )

        timer = reactor.callLater(timeout, expire)

        def cancel_timer(result):
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(cancel_timer)


def changed_named(changes: InterfaceChanges, name: str):
    """
    The C{(old, new)} pair for interface C{name} in C{changes}, or L{None}.
    """
    for old, new in changes.changed:
        if new.name == name:
            return old, new
    return None


def ips(addresses) -> set[str]:
    return {str(a.ip) for a in addresses}


class NetlinkNamespaceTests(NamespaceTestMixin, unittest.TestCase):
    """
    The netlink monitor in a real host namespace (lana, lanb, tun0,
    docker0), watching real links and addresses come and go.
    """

    clients = ("a", "b")

    def setUp(self) -> None:
        super().setUp()
        self.ns = self.topology.host_ns
        self.collector = Collector()
        # Created and started here, inside the host namespace, so the
        # netlink socket and every enumeration see the host's interfaces.
        self.monitor = NetlinkInterfaceMonitor(reactor, settle=0.1)
        self.monitor.start(self.collector)
        self.addCleanup(self.monitor.stop)

    def names(self) -> set[str]:
        return {i.name for i in self.monitor.interfaces}

    def test_initial_list(self) -> None:
        self.assertTrue({"lo", "lana", "lanb", "tun0", "docker0"} <= self.names())

    @defer.inlineCallbacks
    def test_link_added_and_removed(self):
        added = self.collector.wait_for(
            lambda c: any(i.name == "lanc" for i in c.added), "lanc added"
        )
        link = self.topology.add_link("c", "lanc", subnet_octet=3)
        changes = yield added
        (lanc,) = [i for i in changes.added if i.name == "lanc"]
        self.assertEqual(lanc.index, link.host_index)
        self.assertIn("lanc", {i.name for i in changes.interfaces})
        self.assertIn("lanc", self.names())

        removed = self.collector.wait_for(
            lambda c: any(i.name == "lanc" for i in c.removed), "lanc removed"
        )
        self.topology.remove_link("c")
        changes = yield removed
        self.assertNotIn("lanc", {i.name for i in changes.interfaces})
        self.assertNotIn("lanc", self.names())

    @defer.inlineCallbacks
    def test_address_added_and_removed(self):
        added = self.collector.wait_for(
            lambda c: "10.1.0.7" in ips(
                InterfaceChanges.addresses_added(*(changed_named(c, "lana") or (LO, LO)))
            ),
            "10.1.0.7 added on lana",
        )
        ip("addr", "add", "10.1.0.7/24", "dev", "lana", ns=self.ns)
        changes = yield added
        old, new = changed_named(changes, "lana")
        self.assertEqual(
            InterfaceChanges.addresses_added(old, new),
            {ipaddress.IPv4Interface("10.1.0.7/24")},
        )
        self.assertEqual(InterfaceChanges.addresses_removed(old, new), set())
        self.assertIn((old, new), changes.readdressed)

        removed = self.collector.wait_for(
            lambda c: "10.1.0.7" in ips(
                InterfaceChanges.addresses_removed(*(changed_named(c, "lana") or (LO, LO)))
            ),
            "10.1.0.7 removed from lana",
        )
        ip("addr", "del", "10.1.0.7/24", "dev", "lana", ns=self.ns)
        changes = yield removed
        old, new = changed_named(changes, "lana")
        self.assertEqual(ips(new.ipv4), {"10.1.0.1"})

    @defer.inlineCallbacks
    def test_link_down_and_up(self):
        down = self.collector.wait_for(
            lambda c: (p := changed_named(c, "lanb")) is not None and not p[1].flags.up,
            "lanb down",
        )
        ip("link", "set", "lanb", "down", ns=self.ns)
        yield down
        up = self.collector.wait_for(
            lambda c: (p := changed_named(c, "lanb")) is not None and p[1].flags.up,
            "lanb up",
        )
        ip("link", "set", "lanb", "up", ns=self.ns)
        yield up

    @defer.inlineCallbacks
    def test_burst_coalesced(self):
        """
        Five addresses added by a separate process in quick succession, while
        the reactor keeps reading netlink, are reported in one callback (two
        at most, should the burst straddle the settle time), not five.

        One C{ip -batch} process makes the five changes (five C{ip}
        processes would leave gaps as long as a loaded machine takes to
        start a process), and this monitor waits half a second of silence:
        the burst is over long before, however busy the machine.
        """
        monitor = NetlinkInterfaceMonitor(reactor, settle=0.5)
        collector = Collector()
        monitor.start(collector)
        self.addCleanup(monitor.stop)
        wanted = {f"10.2.0.{n}" for n in range(10, 15)}

        def all_there(_changes: InterfaceChanges) -> bool:
            lanb = [i for i in monitor.interfaces if i.name == "lanb"]
            return bool(lanb) and wanted <= ips(lanb[0].ipv4)

        done = collector.wait_for(all_there, "five addresses on lanb", timeout=30)
        batch = "".join(f"addr add {a}/24 dev lanb\\n" for a in sorted(wanted))
        script = f"printf '{batch}' | ip -n {self.ns} -batch -"
        code = yield utils.getProcessValue("/bin/sh", ["-c", script], env=os.environ)
        self.assertEqual(code, 0)
        yield done
        # Give a straggling report the chance to show up.
        yield task.deferLater(reactor, 3 * monitor.settle, lambda: None)
        self.assertIn(len(collector.reports), (1, 2), [
            r.describe() for r in collector.reports
        ])
        reported = set()
        for changes in collector.reports:
            pair = changed_named(changes, "lanb")
            if pair:
                reported |= ips(InterfaceChanges.addresses_added(*pair))
        self.assertEqual(reported, wanted)

    @defer.inlineCallbacks
    def test_other_namespace_ignored(self):
        """
        A change in a client namespace is not the host's business: the
        netlink socket belongs to the host namespace only.
        """
        client_ns = self.topology.links["a"].client_ns
        ip("addr", "add", "10.1.0.9/24", "dev", "eth0", ns=client_ns)
        ip("link", "set", "lo", "down", ns=client_ns)
        yield task.deferLater(reactor, 5 * self.monitor.settle, lambda: None)
        self.assertEqual(self.collector.reports, [])
