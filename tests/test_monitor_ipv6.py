"""
The monitor and IPv6 address states: a tentative address that finishes
DAD, or one that is deprecated, changes what a link publishes and is
reported as readdressed.  Pure diffs first, then the netlink monitor on a
real namespace.
"""

from __future__ import annotations

import ipaddress

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, ip
from tests.support import wait_until
from twisted_mdns.monitor import InterfaceChanges, NetlinkInterfaceMonitor, diff_interfaces
from twisted_mdns.netif import IPv6AddressFlag, IPv6AddressState, NetworkInterface

F = IPv6AddressFlag
LL = ipaddress.IPv6Interface("fe80::1/64")
ULA = ipaddress.IPv6Interface("fd00:1::1/64")


def eth0(*states: tuple[ipaddress.IPv6Interface, IPv6AddressFlag]) -> NetworkInterface:
    return NetworkInterface(
        "eth0", 2,
        ipv4=(ipaddress.IPv4Interface("10.0.0.5/24"),),
        ipv6=tuple(a for a, _ in states),
        ipv6_states=tuple(IPv6AddressState(a, f) for a, f in states),
    )


class DiffTests(unittest.TestCase):
    def test_tentative_address_added(self) -> None:
        """
        A new address still in DAD changes the link but not what it
        publishes.
        """
        old = eth0((LL, F.PERMANENT))
        new = eth0((LL, F.PERMANENT), (ULA, F.TENTATIVE | F.PERMANENT))
        changes = diff_interfaces([old], [new])
        self.assertEqual(changes.changed, ((old, new),))
        self.assertEqual(changes.readdressed, ())
        self.assertEqual(InterfaceChanges.ipv6_addresses_added(old, new), {ULA})
        self.assertEqual(InterfaceChanges.published_ipv6_added(old, new), set())

    def test_dad_ends(self) -> None:
        old = eth0((LL, F.PERMANENT), (ULA, F.TENTATIVE | F.PERMANENT))
        new = eth0((LL, F.PERMANENT), (ULA, F.PERMANENT))
        changes = diff_interfaces([old], [new])
        self.assertEqual(changes.readdressed, ((old, new),))
        self.assertEqual(InterfaceChanges.published_ipv6_added(old, new), {ULA})
        self.assertEqual(InterfaceChanges.ipv6_addresses_added(old, new), set())
        self.assertEqual(
            changes.describe(), ["address fd00:1::1/64 on eth0: tentative -> published"]
        )

    def test_deprecated(self) -> None:
        old = eth0((LL, F.PERMANENT), (ULA, F.PERMANENT))
        new = eth0((LL, F.PERMANENT), (ULA, F.PERMANENT | F.DEPRECATED))
        changes = diff_interfaces([old], [new])
        self.assertEqual(changes.readdressed, ((old, new),))
        self.assertEqual(InterfaceChanges.published_ipv6_removed(old, new), {ULA})
        self.assertEqual(
            changes.describe(), ["address fd00:1::1/64 on eth0: published -> deprecated"]
        )

    def test_flag_change_that_publishes_nothing_new(self) -> None:
        old = eth0((LL, F.NONE))
        new = eth0((LL, F.PERMANENT))
        changes = diff_interfaces([old], [new])
        self.assertEqual(changes.changed, ((old, new),))
        self.assertEqual(changes.readdressed, ())
        self.assertEqual(
            changes.describe(), ["address fe80::1/64 on eth0: no flags -> permanent"]
        )

    def test_published_address_removed(self) -> None:
        old = eth0((LL, F.PERMANENT), (ULA, F.PERMANENT))
        new = eth0((LL, F.PERMANENT))
        changes = diff_interfaces([old], [new])
        self.assertEqual(changes.readdressed, ((old, new),))
        self.assertEqual(InterfaceChanges.published_ipv6_removed(old, new), {ULA})
        self.assertEqual(changes.describe(), ["address fd00:1::1/64 removed from eth0"])


class NetlinkIPv6Tests(NamespaceTestMixin, unittest.TestCase):
    """
    The kernel announces DAD's end with RTM_NEWADDR; the monitor turns it
    into a readdressed link.
    """

    clients = ("a",)
    virtual = False

    def setUp(self) -> None:
        super().setUp()
        self.topology.wait_dad()
        self.reports: list[InterfaceChanges] = []
        self.monitor = NetlinkInterfaceMonitor(reactor, settle=0.05)
        self.monitor.start(self.reports.append)
        self.addCleanup(self.monitor.stop)

    def lana_pairs(self, predicate) -> list:
        return [
            (old, new)
            for changes in self.reports
            for old, new in changes.changed
            if new.name == "lana" and predicate(changes, old, new)
        ]

    @defer.inlineCallbacks
    def test_dad_end_is_readdressed(self):
        address = ipaddress.IPv6Interface("fd00:9::1/64")
        ip("-6", "addr", "add", str(address), "dev", "lana", ns=self.topology.host_ns)
        published = yield wait_until(
            lambda: self.lana_pairs(
                lambda c, o, n: address in InterfaceChanges.published_ipv6_added(o, n)
                and (o, n) in c.readdressed
            ),
            timeout=8, what="fd00:9::1 published after DAD",
        )
        old, new = published[0]
        self.assertIn(address, old.ipv6)
        self.assertTrue(old.ipv6_state(address).tentative)
        self.assertFalse(new.ipv6_state(address).tentative)
        # It was seen first as an address that is not published yet.
        first = self.lana_pairs(lambda c, o, n: address in InterfaceChanges.ipv6_addresses_added(o, n))
        self.assertEqual(len(first), 1)
        self.assertNotIn(address, first[0][1].publishable_ipv6)

    @defer.inlineCallbacks
    def test_deprecation_is_readdressed(self):
        address = ipaddress.IPv6Interface("fd00:9::2/64")
        ip("-6", "addr", "add", str(address), "dev", "lana", "nodad", ns=self.topology.host_ns)
        yield wait_until(
            lambda: self.lana_pairs(lambda c, o, n: address in InterfaceChanges.published_ipv6_added(o, n)),
            what="fd00:9::2 published",
        )
        ip("-6", "addr", "change", str(address), "dev", "lana", "nodad", "preferred_lft", "0",
           ns=self.topology.host_ns)
        gone = yield wait_until(
            lambda: self.lana_pairs(
                lambda c, o, n: address in InterfaceChanges.published_ipv6_removed(o, n)
                and (o, n) in c.readdressed
            ),
            what="fd00:9::2 deprecated",
        )
        self.assertTrue(gone[0][1].ipv6_state(address).deprecated)
