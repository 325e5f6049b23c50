"""
Interfaces as values: IPv6 address flags (tentative, DAD-failed,
deprecated, temporary) from the kernel, and which addresses a link
publishes.  Parsing is checked on sample C{/proc/net/if_inet6} text; the
flags themselves on real addresses in a namespace.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, ip
from tests.support import wait_until
from twisted_mdns.netif import (
    IPv6AddressFlag,
    IPv6AddressState,
    NetworkInterface,
    SystemInterfaceEnumerator,
    _ipv4_of,
    _ipv6_of,
    _netmask_prefix,
    parse_if_inet6,
    read_if_inet6,
)

#: As the kernel prints it: address, ifindex, prefix length, scope, flags
#: (all hex), name.
SAMPLE = """\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000a8c1abfffe2e3a11 04 40 20 80     eth0
fd000000000000010000000000000001 04 40 00 80     eth0
20010db8000000003d5c8f12a1b2c3d4 04 40 00 01     eth0
20010db8000000000000000000000005 04 40 00 a0     eth0
20010db8000000000000000000000006 04 40 00 c0     eth0
20010db8000000000000000000000007 04 40 00 c8     eth0
fe80000000000000000000000000abcd 1a 40 20 42   wlan0
this line is not an address
zz80000000000000000000000000abcd 1a 40 20 80   wlan0
fe80000000000000000000000000abce 1a 40 20
"""


def v6(text: str) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface(text)


class ParseTests(unittest.TestCase):
    def setUp(self) -> None:
        self.parsed = parse_if_inet6(SAMPLE)

    def state(self, index: int, address: str) -> IPv6AddressState:
        return next(s for s in self.parsed[index] if str(s.interface) == address)

    def test_indexes_and_prefixes(self) -> None:
        self.assertEqual(sorted(self.parsed), [1, 4, 0x1A])
        # Sorted, so that two enumerations of one state compare equal.
        self.assertEqual(
            [str(s.interface) for s in self.parsed[4]],
            ["2001:db8::5/64", "2001:db8::6/64", "2001:db8::7/64",
             "2001:db8::3d5c:8f12:a1b2:c3d4/64", "fd00:0:0:1::1/64",
             "fe80::a8c1:abff:fe2e:3a11/64"],
        )
        self.assertEqual(str(self.state(1, "::1/128").interface.network), "::1/128")
        self.assertEqual(self.state(4, "fd00:0:0:1::1/64").flags, IPv6AddressFlag.PERMANENT)

    def test_malformed_lines_are_skipped(self) -> None:
        self.assertEqual([str(s.interface) for s in self.parsed[0x1A]], ["fe80::abcd/64"])
        self.assertEqual(parse_if_inet6(""), {})

    def test_flags(self) -> None:
        temporary = self.state(4, "2001:db8::3d5c:8f12:a1b2:c3d4/64")
        self.assertTrue(temporary.temporary)
        self.assertEqual(temporary.unpublished(), "temporary")
        deprecated = self.state(4, "2001:db8::5/64")
        self.assertEqual(deprecated.flags, IPv6AddressFlag.DEPRECATED | IPv6AddressFlag.PERMANENT)
        self.assertEqual(deprecated.unpublished(), "deprecated")
        tentative = self.state(4, "2001:db8::6/64")
        self.assertTrue(tentative.tentative)
        self.assertEqual(tentative.unpublished(), "tentative")
        failed = self.state(4, "2001:db8::7/64")
        self.assertTrue(failed.dad_failed and failed.tentative)
        self.assertEqual(failed.unpublished(), "DAD failed")
        optimistic = self.state(0x1A, "fe80::abcd/64")
        self.assertEqual(optimistic.flags, IPv6AddressFlag.TENTATIVE | IPv6AddressFlag.NODAD)
        self.assertFalse(optimistic.publishable)
        self.assertEqual(optimistic.flags.names(), ("nodad", "tentative"))
        self.assertTrue(self.state(4, "fe80::a8c1:abff:fe2e:3a11/64").publishable)

    def test_missing_file(self) -> None:
        self.assertIsNone(read_if_inet6(("/nonexistent/if_inet6",)))


class InterfaceTests(unittest.TestCase):
    def setUp(self) -> None:
        states = parse_if_inet6(SAMPLE)[4]
        self.eth0 = NetworkInterface(
            "eth0", 4, ipv6=tuple(s.interface for s in states), ipv6_states=states,
        )

    def test_publishable(self) -> None:
        """
        Global, ULA and link-local are published; temporary, deprecated,
        tentative and DAD-failed are not.
        """
        self.assertEqual(
            sorted(str(a) for a in self.eth0.publishable_ipv6),
            ["fd00:0:0:1::1/64", "fe80::a8c1:abff:fe2e:3a11/64"],
        )

    def test_unknown_state_is_usable(self) -> None:
        """
        Where the platform reports no flags, an address counts as usable.
        """
        plain = NetworkInterface("en0", 5, ipv6=(v6("2001:db8::9/64"),))
        self.assertEqual(plain.publishable_ipv6, (v6("2001:db8::9/64"),))
        self.assertEqual(plain.ipv6_state(v6("2001:db8::9/64")).flags, IPv6AddressFlag.NONE)

    def test_prefixes_include_unpublished_addresses(self) -> None:
        self.assertEqual(
            [str(p) for p in self.eth0.ipv6_prefixes],
            ["2001:db8::/64", "fd00:0:0:1::/64", "fe80::/64"],
        )
        self.assertTrue(self.eth0.on_link("2001:db8::77"))

    def test_flag_change_is_a_change(self) -> None:
        states = tuple(
            IPv6AddressState(s.interface, s.flags & ~IPv6AddressFlag.TENTATIVE)
            for s in self.eth0.ipv6_states
        )
        done = NetworkInterface("eth0", 4, ipv6=self.eth0.ipv6, ipv6_states=states)
        self.assertNotEqual(done, self.eth0)
        self.assertIn(v6("2001:db8::6/64"), done.publishable_ipv6)
        # The texts published are made once per value: the new value has
        # its own.
        self.assertNotIn("2001:db8::6", self.eth0.published)
        self.assertIn("2001:db8::6", done.published)

    def test_published_made_once(self) -> None:
        """
        The published addresses' texts (IPv4 first, then the publishable
        IPv6 ones) are made once per value: probing and announcing ask for
        them per claim and link.
        """
        both = NetworkInterface(
            "eth0", 4, ipv4=(ipaddress.IPv4Interface("10.0.0.5/24"),),
            ipv6=self.eth0.ipv6, ipv6_states=self.eth0.ipv6_states,
        )
        self.assertEqual(both.published, ("10.0.0.5", "fd00:0:0:1::1", "fe80::a8c1:abff:fe2e:3a11"))
        self.assertIs(both.published, both.published)
        self.assertEqual(both, replace(both), "the cache is no part of the value")

    def test_sent_from_here(self) -> None:
        """
        A source as the socket reports it: canonical text, an IPv6 zone
        allowed; every address of the interface counts, published or not.
        """
        both = NetworkInterface("eth1", 5, ipv4=(ipaddress.ip_interface("10.0.0.5/24"),),
                                ipv6=(v6("fd00::5/64"), v6("fe80::1/64")))
        self.assertTrue(both.sent_from_here("10.0.0.5"))
        self.assertTrue(both.sent_from_here("fd00::5"))
        self.assertTrue(both.sent_from_here("fe80::1%eth1"))
        self.assertFalse(both.sent_from_here("10.0.0.6"))
        self.assertFalse(both.sent_from_here("fe80::2%eth1"))
        self.assertTrue(self.eth0.sent_from_here("2001:db8::6"))  # tentative, still ours
        for source in ("10.0.0.5", "fd00::5", "fe80::1%eth1", "10.0.0.6", "fe80::2"):
            self.assertEqual(both.sent_from_here(source), both.has_address(source), source)

    def test_describe_and_json(self) -> None:
        text = self.eth0.describe()
        self.assertIn("2001:db8::6/64 (tentative, not published)", text)
        self.assertIn("fd00:0:0:1::1/64", text)
        fields = self.eth0.as_json()
        detail = {d["address"]: d for d in fields["ipv6_details"]}
        self.assertEqual(detail["2001:db8::5/64"]["reason"], "deprecated")
        self.assertEqual(detail["2001:db8::5/64"]["flags"], ["deprecated", "permanent"])
        self.assertTrue(detail["fd00:0:0:1::1/64"]["published"])
        self.assertNotIn("reason", detail["fd00:0:0:1::1/64"])


class KernelFlagTests(NamespaceTestMixin, unittest.TestCase):
    """
    The flags as the kernel sets them on real addresses.
    """

    clients = ("a",)
    virtual = False

    def lana(self) -> NetworkInterface:
        return next(i for i in SystemInterfaceEnumerator().interfaces() if i.name == "lana")

    def state(self, address: str) -> IPv6AddressState | None:
        iface = self.lana()
        for s in iface.ipv6_details:
            if str(s.interface) == address:
                return s
        return None

    @defer.inlineCallbacks
    def test_tentative_until_dad_ends(self):
        ip("-6", "addr", "add", "fd00:9::1/64", "dev", "lana", ns=self.topology.host_ns)
        first = self.state("fd00:9::1/64")
        self.assertTrue(first.tentative, first)
        self.assertNotIn(v6("fd00:9::1/64"), self.lana().publishable_ipv6)
        self.assertIn(v6("fd00:9::1/64"), self.lana().ipv6)
        yield wait_until(lambda: self.state("fd00:9::1/64").publishable, timeout=8, what="DAD to end")
        self.assertIn(v6("fd00:9::1/64"), self.lana().publishable_ipv6)

    def test_nodad_is_usable_at_once(self) -> None:
        ip("-6", "addr", "add", "fd00:9::2/64", "dev", "lana", "nodad", ns=self.topology.host_ns)
        self.assertTrue(self.state("fd00:9::2/64").publishable)

    def test_deprecated(self) -> None:
        ip("-6", "addr", "add", "fd00:9::3/64", "dev", "lana", "nodad", "preferred_lft", "0",
           ns=self.topology.host_ns)
        state = self.state("fd00:9::3/64")
        self.assertTrue(state.deprecated)
        self.assertEqual(state.unpublished(), "deprecated")

    @defer.inlineCallbacks
    def test_dad_failure(self):
        """
        The client holds fd00:9::5 already: the host's DAD for the same
        address fails, and the address is never published.
        """
        link = self.topology.links["a"]
        ip("-6", "addr", "add", "fd00:9::5/64", "dev", "eth0", "nodad", ns=link.client_ns)
        ip("-6", "addr", "add", "fd00:9::5/64", "dev", "lana", ns=self.topology.host_ns)
        state = yield wait_until(
            lambda: (s := self.state("fd00:9::5/64")) is not None and s.dad_failed and s,
            timeout=8, what="DAD to fail",
        )
        self.assertEqual(state.unpublished(), "DAD failed")
        self.assertNotIn(v6("fd00:9::5/64"), self.lana().publishable_ipv6)


class NetmaskTests(unittest.TestCase):
    """
    Netmasks as C{getifaddrs} (psutil) reports them, for both families.
    """

    def test_forms(self) -> None:
        self.assertEqual(_netmask_prefix("255.255.255.0"), 24)
        self.assertEqual(_netmask_prefix("255.255.255.255"), 32)
        self.assertEqual(_netmask_prefix("0.0.0.0"), 0)
        self.assertEqual(_netmask_prefix("ffff:ffff:ffff:ffff::"), 64)
        self.assertEqual(_netmask_prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 128)
        self.assertEqual(_netmask_prefix("ffff:ffff::/32"), 32)

    def test_non_contiguous_is_refused(self) -> None:
        self.assertRaises(ValueError, _netmask_prefix, "255.0.255.0")
        self.assertRaises(ValueError, _netmask_prefix, "ffff::ffff")

    def test_addresses(self) -> None:
        self.assertEqual(
            _ipv4_of([("10.1.0.1", "255.255.255.0"), ("10.2.0.1", None), ("", None),
                      ("10.3.0.1", "255.0.255.0"), ("bogus", "255.0.0.0")]),
            (ipaddress.IPv4Interface("10.1.0.1/24"), ipaddress.IPv4Interface("10.2.0.1/32")),
        )
        self.assertEqual(
            _ipv6_of([("fe80::1%eth0", "ffff:ffff:ffff:ffff::"), ("fd00::1", None),
                      ("nonsense", "ffff::")]),
            (v6("fe80::1/64"), v6("fd00::1/128")),
        )


class EnumerationTests(NamespaceTestMixin, unittest.TestCase):
    """
    L{SystemInterfaceEnumerator} on real interfaces: one pass over the
    host per enumeration, whatever the number of links.
    """

    clients = ("a", "b", "c")
    virtual = False

    def test_one_pass(self) -> None:
        """
        Each source is asked once per enumeration, not once per interface
        (which made start-up quadratic in links), and every link is there
        with its address.
        """
        import psutil

        calls = {"net_if_addrs": 0, "net_if_stats": 0}
        for name in calls:
            real = getattr(psutil, name)

            def counting(real=real, name=name):  # type: ignore[no-untyped-def]
                calls[name] += 1
                return real()

            self.patch(psutil, name, counting)
        found = {i.name: i for i in SystemInterfaceEnumerator().interfaces()}
        self.assertEqual(calls, {"net_if_addrs": 1, "net_if_stats": 1})
        for client, link in self.topology.links.items():
            iface = found[link.host_if]
            self.assertEqual(iface.index, link.host_index)
            self.assertEqual(iface.ipv4, (ipaddress.IPv4Interface(f"{link.host_ip}/24"),))
            self.assertTrue(iface.flags.up and iface.flags.multicast)
            self.assertEqual(iface.mtu, 1500)
        indexes = [i.index for i in found.values()]
        self.assertEqual(indexes, sorted(indexes))

    def test_labelled_address_belongs_to_its_interface(self) -> None:
        """
        An address added with a label (C{lana:7}) is listed by
        C{getifaddrs} under the label: it is lana's address, and the label
        is not an interface of its own (it has no index of its own).
        """
        ip("addr", "add", "10.77.0.1/16", "dev", "lana", "label", "lana:7", ns=self.topology.host_ns)
        interfaces = SystemInterfaceEnumerator().interfaces()
        names = [i.name for i in interfaces]
        self.assertNotIn("lana:7", names)
        lana = next(i for i in interfaces if i.name == "lana")
        self.assertIn(ipaddress.IPv4Interface("10.77.0.1/16"), lana.ipv4)
