"""
Policy rules, checked against a fake enumerator (the edge we may fake).
"""

from __future__ import annotations

from ipaddress import IPv4Interface

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IInterfaceEnumerator, IInterfacePolicy
from twisted_mdns.netif import (
    InterfaceFlags,
    NetworkInterface,
    StaticInterfaceEnumerator,
    find_interface,
)
from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
    FilterInterfacePolicy,
    InterfaceValidationError,
    interface_for_destination,
    validate_interface,
    virtual_kind,
)


def iface(
    name: str,
    index: int,
    ip: str | None = "192.168.1.10/24",
    mtu: int = 1500,
    **flags,
) -> NetworkInterface:
    return NetworkInterface(
        name=name,
        index=index,
        flags=InterfaceFlags(**flags),
        mtu=mtu,
        ipv4=(IPv4Interface(ip),) if ip else (),
    )


LO = iface("lo", 1, "127.0.0.1/8", 65536, multicast=False, loopback=True)
ETH0 = iface("eth0", 2, "10.0.0.5/24")
WLAN0 = iface("wlan0", 3, "192.168.1.100/24")
HOST = [LO, ETH0, WLAN0]


class CapturedLog:
    def __init__(self, case: unittest.TestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self, level: LogLevel | None = None) -> list[str]:
        from twisted.logger import formatEvent

        return [
            formatEvent(e)
            for e in self.events
            if level is None or e.get("log_level") == level
        ]


class DefaultPolicyTests(unittest.TestCase):
    def test_provides(self) -> None:
        verifyObject(IInterfacePolicy, DefaultInterfacePolicy())
        verifyObject(IInterfaceEnumerator, StaticInterfaceEnumerator(HOST))

    def test_real_links_selected(self) -> None:
        sel = DefaultInterfacePolicy().select(HOST)
        self.assertEqual(sel.names, ("eth0", "wlan0"))
        self.assertEqual(sel.reason("lo"), "loopback")

    def test_virtual_names_refused(self) -> None:
        names = [
            "tun0", "tap1", "utun3", "ppp0", "wg0", "ipsec0", "docker0",
            "veth12ab", "br-5f3e", "virbr0", "cni0", "flannel.1", "cali123",
            "gre1", "ipip0", "sit0", "ip6tnl0",
        ]
        ifaces = [iface(n, i + 10, f"10.{i}.0.1/24") for i, n in enumerate(names)]
        sel = DefaultInterfacePolicy(platform="linux").select([ETH0] + ifaces)
        self.assertEqual(sel.names, ("eth0",))
        for n in names:
            self.assertTrue(sel.reason(n).startswith("virtual: "), n)
        self.assertIn("VPN", sel.reason("wg0"))
        self.assertIn("container", sel.reason("docker0"))
        self.assertIn("tunnel", sel.reason("sit0"))

    def test_platform_patterns(self) -> None:
        self.assertIsNotNone(virtual_kind(iface("utun0", 5), "darwin"))
        self.assertIsNotNone(virtual_kind(iface("awdl0", 5), "darwin"))
        self.assertIsNone(virtual_kind(iface("en0", 5), "darwin"))
        self.assertIsNotNone(virtual_kind(iface("epair0a", 5), "freebsd13"))
        # Windows: by flags, not by names.
        self.assertIsNone(virtual_kind(iface("tun0", 5), "win32"))
        self.assertIsNotNone(virtual_kind(iface("Ethernet 2", 5, pointopoint=True), "win32"))

    def test_down(self) -> None:
        sel = DefaultInterfacePolicy().select([iface("eth1", 4, up=False)])
        self.assertEqual(sel.reason("eth1"), "down")

    def test_no_multicast(self) -> None:
        sel = DefaultInterfacePolicy().select([iface("eth1", 4, multicast=False)])
        self.assertEqual(sel.reason("eth1"), "no multicast flag")

    def test_no_ipv4(self) -> None:
        sel = DefaultInterfacePolicy().select([iface("eth1", 4, ip=None)])
        self.assertEqual(sel.reason("eth1"), "no IPv4 address")

    def test_mtu_boundary(self) -> None:
        sel = DefaultInterfacePolicy().select(
            [iface("eth1", 4, mtu=511), iface("eth2", 5, "10.9.0.1/24", mtu=512)]
        )
        self.assertEqual(sel.names, ("eth2",))
        self.assertEqual(sel.reason("eth1"), "MTU 511 < 512")

    def test_nothing_qualifies_warns(self) -> None:
        captured = CapturedLog(self)
        sel = DefaultInterfacePolicy().select([LO])
        self.assertEqual(sel.selected, ())
        warnings = captured.texts(LogLevel.warn)
        self.assertTrue(any("no interface qualifies" in w and "lo: loopback" in w for w in warnings), warnings)

    def test_every_decision_logged(self) -> None:
        captured = CapturedLog(self)
        DefaultInterfacePolicy().select(HOST + [iface("tun0", 9, "10.8.0.1/24")])
        texts = captured.texts()
        self.assertTrue(any("tun0 excluded: virtual: VPN (tun*)" in t for t in texts), texts)
        self.assertTrue(any("lo excluded: loopback" in t for t in texts), texts)
        self.assertTrue(any("eth0" in t and "selected" in t for t in texts), texts)
        info = captured.texts(LogLevel.info)
        self.assertTrue(any("selected 2 interface(s): eth0, wlan0" in t for t in info), info)


class ExplicitPolicyTests(unittest.TestCase):
    def test_by_name_ip_and_index(self) -> None:
        for spec in ("wlan0", "192.168.1.100", "3", 3):
            sel = ExplicitInterfacePolicy([spec]).select(HOST)
            self.assertEqual(sel.names, ("wlan0",), spec)
            self.assertEqual(sel.errors, ())
            self.assertEqual(sel.reason("eth0"), "not named explicitly")

    def test_several(self) -> None:
        sel = ExplicitInterfacePolicy(["wlan0", "10.0.0.5"]).select(HOST)
        self.assertEqual(sel.names, ("eth0", "wlan0"))

    def test_virtual_used_with_warning(self) -> None:
        captured = CapturedLog(self)
        tun = iface("tun0", 7, "10.8.0.1/24")
        sel = ExplicitInterfacePolicy(["tun0"]).select(HOST + [tun])
        self.assertEqual(sel.names, ("tun0",))
        warnings = captured.texts(LogLevel.warn)
        self.assertTrue(any("tun0" in w and "virtual" in w for w in warnings), warnings)

    def test_unknown_name_error_text(self) -> None:
        sel = ExplicitInterfacePolicy(["eth9"]).select(HOST)
        self.assertEqual(sel.selected, ())
        self.assertEqual(len(sel.errors), 1)
        error = sel.errors[0]
        self.assertIsInstance(error, InterfaceValidationError)
        self.assertEqual(
            str(error),
            "interface 'eth9': no such interface (interfaces present: lo, eth0, wlan0)",
        )
        self.assertRaises(InterfaceValidationError, sel.raise_for_errors)

    def test_unknown_ip_and_index(self) -> None:
        for spec in ("10.200.0.1", "42"):
            e = self.assertRaises(InterfaceValidationError, validate_interface, spec, HOST)
            self.assertEqual(e.reason, "no such interface")
            self.assertIn(spec, str(e))

    def test_named_but_unusable(self) -> None:
        cases = [
            (iface("eth1", 4, up=False), "down"),
            (iface("eth1", 4, multicast=False), "no multicast flag"),
            (iface("eth1", 4, ip=None), "no IPv4 address"),
            (iface("eth1", 4, mtu=511), "MTU 511 < 512"),
        ]
        for bad, reason in cases:
            e = self.assertRaises(InterfaceValidationError, validate_interface, "eth1", HOST + [bad])
            self.assertEqual(e.reason, reason)
            self.assertIn("'eth1'", str(e))
            self.assertIn("interfaces present: lo, eth0, wlan0, eth1", str(e))
            sel = ExplicitInterfacePolicy(["eth1"]).select(HOST + [bad])
            self.assertEqual(sel.reason("eth1"), reason)

    def test_needs_a_spec(self) -> None:
        self.assertRaises(ValueError, ExplicitInterfacePolicy, [])


class OtherPolicyTests(unittest.TestCase):
    def test_filter(self) -> None:
        sel = FilterInterfacePolicy(lambda i: i.name.startswith("w")).select(HOST)
        self.assertEqual(sel.names, ("wlan0",))
        self.assertEqual(sel.reason("eth0"), "rejected by <lambda>")
        self.assertEqual(sel.reason("lo"), "loopback")

    def test_filter_reason_string(self) -> None:
        def office(i: NetworkInterface) -> str | None:
            return None if i.name == "eth0" else "not the office LAN"

        sel = FilterInterfacePolicy(office).select(HOST)
        self.assertEqual(sel.names, ("eth0",))
        self.assertEqual(sel.reason("wlan0"), "not the office LAN")

    def test_all_includes_virtual(self) -> None:
        tun = iface("tun0", 7, "10.8.0.1/24", pointopoint=True)
        down = iface("eth1", 8, up=False)
        sel = AllInterfacesPolicy().select(HOST + [tun, down])
        self.assertEqual(sel.names, ("eth0", "wlan0", "tun0"))
        self.assertEqual(sel.reason("lo"), "loopback")
        self.assertEqual(sel.reason("eth1"), "down")
        sel = AllInterfacesPolicy(include_loopback=True).select(HOST)
        self.assertEqual(sel.names, ("lo", "eth0", "wlan0"))

    def test_excluding(self) -> None:
        sel = ExcludingPolicy(DefaultInterfacePolicy(), ["wlan0"]).select(HOST)
        self.assertEqual(sel.names, ("eth0",))
        self.assertEqual(sel.reason("wlan0"), "excluded by name")

    def test_interface_for_destination(self) -> None:
        self.assertEqual(interface_for_destination("192.168.1.50", HOST), WLAN0)
        self.assertEqual(interface_for_destination("10.0.0.200", HOST), ETH0)
        self.assertIsNone(interface_for_destination("8.8.8.8", HOST))
        self.assertIsNone(interface_for_destination("not an ip", HOST))
        # Longest prefix wins when subnets nest.
        wide = iface("eth1", 4, "10.0.0.1/8")
        self.assertEqual(interface_for_destination("10.0.0.9", [wide, ETH0]), ETH0)
        self.assertEqual(interface_for_destination("10.1.2.3", [wide, ETH0]), wide)

    def test_find_interface_name_beats_index(self) -> None:
        odd = iface("3", 9, "10.7.0.1/24")
        self.assertEqual(find_interface(HOST + [odd], "3"), odd)
        self.assertEqual(find_interface(HOST, "3"), WLAN0)

    def test_on_link(self) -> None:
        self.assertTrue(ETH0.on_link("10.0.0.77"))
        self.assertFalse(ETH0.on_link("10.0.1.77"))
        self.assertFalse(ETH0.on_link("garbage"))
