"""
Policy rules, checked against a fake enumerator (the edge we may fake).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv6Interface

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IInterfaceEnumerator, IInterfacePolicy
from twisted_mdns.netif import (
    IPv6AddressFlag,
    IPv6AddressState,
    InterfaceFlags,
    NetworkInterface,
    StaticInterfaceEnumerator,
    find_interface,
)
from twisted_mdns.policy import (
    Family,
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
    FilterInterfacePolicy,
    InterfaceValidationError,
    Selection,
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

    def test_no_address(self) -> None:
        sel = DefaultInterfacePolicy().select([iface("eth1", 4, ip=None)])
        self.assertEqual(sel.reason("eth1"), "no IPv4 or IPv6 address")
        sel = DefaultInterfacePolicy(families=Family.IPV4).select([iface("eth1", 4, ip=None)])
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

    def test_same_outcome_logged_once_at_info(self) -> None:
        """
        A policy asked again (every monitor report) says an unchanged
        outcome at debug only; a changed one at info again.
        """
        captured = CapturedLog(self)
        policy = DefaultInterfacePolicy()
        policy.select(HOST)
        policy.select(HOST + [iface("tun0", 9, "10.8.0.1/24")])
        selected = [t for t in captured.texts(LogLevel.info) if "selected" in t]
        self.assertEqual(len(selected), 1, selected)
        self.assertTrue(any("selected 2 interface(s)" in t for t in captured.texts(LogLevel.debug)))
        policy.select([h for h in HOST if h.name != "wlan0"])
        selected = [t for t in captured.texts(LogLevel.info) if "selected" in t]
        self.assertEqual(len(selected), 2, selected)
        self.assertIn("selected 1 interface(s): eth0 (IPv4)", selected[1])

    def test_every_decision_logged(self) -> None:
        captured = CapturedLog(self)
        DefaultInterfacePolicy().select(HOST + [iface("tun0", 9, "10.8.0.1/24")])
        texts = captured.texts()
        self.assertTrue(any("tun0 excluded: virtual: VPN (tun*)" in t for t in texts), texts)
        self.assertTrue(any("lo excluded: loopback" in t for t in texts), texts)
        self.assertTrue(any("eth0" in t and "selected" in t for t in texts), texts)
        info = captured.texts(LogLevel.info)
        self.assertTrue(
            any("selected 2 interface(s): eth0 (IPv4), wlan0 (IPv4)" in t for t in info), info
        )


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
            (iface("eth1", 4, ip=None), "no IPv4 or IPv6 address"),
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


def v6(*specs: str) -> dict:
    """
    C{ipv6} and C{ipv6_states} fields from C{"fd00::1/64 tentative"}
    style specs.
    """
    addresses, states = [], []
    for spec in specs:
        address, *flags = spec.split()
        interface = IPv6Interface(address)
        flag = IPv6AddressFlag.NONE
        for name in flags:
            flag |= IPv6AddressFlag[name.upper()]
        addresses.append(interface)
        states.append(IPv6AddressState(interface, flag))
    return {"ipv6": tuple(addresses), "ipv6_states": tuple(states)}


def dual(name: str, index: int, ip: str | None, *v6specs: str, **kw) -> NetworkInterface:
    return NetworkInterface(
        name, index, InterfaceFlags(**kw),
        ipv4=(IPv4Interface(ip),) if ip else (), **v6(*v6specs),
    )


V6ONLY = dual("thread0", 5, None, "fe80::5/64 permanent", "fd11:22::5/64 permanent")
DUAL = dual("eth0", 2, "10.0.0.5/24", "fe80::2/64 permanent", "2001:db8::2/64")
DAD = dual("eth1", 6, "10.6.0.1/24", "fe80::6/64 tentative permanent")
DAD_ONLY = dual("eth2", 7, None, "fe80::7/64 tentative", "2001:db8::7/64 dadfailed")


class FamilyTests(unittest.TestCase):
    """
    Which families each link runs (issue 12: IPv6-only links are links; a
    family choice, default both).
    """

    def test_options(self) -> None:
        self.assertEqual(Family.from_options(), Family.BOTH)
        self.assertEqual(Family.from_options(ipv4_only=True), Family.IPV4)
        self.assertEqual(Family.from_options(ipv6_only=True), Family.IPV6)
        self.assertRaises(ValueError, Family.from_options, True, True)
        self.assertEqual(
            [f.label for f in (Family.BOTH, Family.IPV4, Family.IPV6, Family.NONE)],
            ["IPv4+IPv6", "IPv4", "IPv6", "none"],
        )

    def test_ipv6_only_link_is_usable_by_default(self) -> None:
        sel = DefaultInterfacePolicy().select([LO, DUAL, V6ONLY])
        self.assertEqual(sel.names, ("eth0", "thread0"))
        self.assertEqual(sel.families_of(DUAL), Family.BOTH)
        self.assertEqual(sel.families_of(V6ONLY), Family.IPV6)
        self.assertEqual(sel.families_of(LO), Family.NONE)
        self.assertEqual(sel.families_of(V6ONLY.index), Family.IPV6)

    def test_ipv4_only(self) -> None:
        sel = DefaultInterfacePolicy(families=Family.IPV4).select([DUAL, V6ONLY])
        self.assertEqual(sel.names, ("eth0",))
        self.assertEqual(sel.families_of(DUAL), Family.IPV4)
        self.assertEqual(sel.reason("thread0"), "no IPv4 address")

    def test_ipv6_only(self) -> None:
        sel = DefaultInterfacePolicy(families=Family.IPV6).select([DUAL, V6ONLY, WLAN0])
        self.assertEqual(sel.names, ("eth0", "thread0"))
        self.assertEqual(sel.families_of(DUAL), Family.IPV6)
        self.assertEqual(sel.reason("wlan0"), "no IPv6 address")
        plain = ETH0.__class__("eth9", 9, ipv4=ETH0.ipv4)
        sel = DefaultInterfacePolicy(families=Family.IPV6).select([plain])
        self.assertEqual(sel.reason("eth9"), "no IPv6 address")

    def test_tentative_ipv6_waits_for_dad(self) -> None:
        """
        A link whose IPv6 addresses are all tentative runs IPv4 until DAD
        ends; one with nothing else is left out, with the addresses' states
        as the reason.
        """
        sel = DefaultInterfacePolicy().select([DAD, DAD_ONLY])
        self.assertEqual(sel.names, ("eth1",))
        self.assertEqual(sel.families_of(DAD), Family.IPV4)
        (decision,) = sel.families
        self.assertEqual(
            decision.notes, ("IPv6: no usable IPv6 address (fe80::6/64 tentative)",)
        )
        self.assertEqual(
            sel.reason("eth2"),
            "no IPv4 address and no usable IPv6 address "
            "(fe80::7/64 tentative, 2001:db8::7/64 DAD failed)",
        )
        done = dual("eth1", 6, "10.6.0.1/24", "fe80::6/64 permanent")
        self.assertEqual(DefaultInterfacePolicy().select([done]).families_of(done), Family.BOTH)

    def test_every_policy_takes_families(self) -> None:
        policies = [
            DefaultInterfacePolicy(families=Family.IPV6),
            ExplicitInterfacePolicy(["eth0", "thread0"], families=Family.IPV6),
            FilterInterfacePolicy(lambda i: True, families=Family.IPV6),
            AllInterfacesPolicy(families=Family.IPV6),
            ExcludingPolicy(DefaultInterfacePolicy(families=Family.IPV6), ["wlan0"]),
        ]
        for policy in policies:
            sel = policy.select([DUAL, V6ONLY, WLAN0])
            self.assertEqual(sel.names, ("eth0", "thread0"), policy)
            self.assertEqual(
                [sel.families_of(i) for i in sel.selected], [Family.IPV6, Family.IPV6], policy
            )

    def test_explicit_refuses_a_link_without_the_family(self) -> None:
        sel = ExplicitInterfacePolicy(["wlan0"], families=Family.IPV6).select(HOST)
        self.assertEqual(sel.errors[0].reason, "no IPv6 address")
        e = self.assertRaises(
            InterfaceValidationError, validate_interface, "thread0", [V6ONLY], Family.IPV4
        )
        self.assertEqual(e.reason, "no IPv4 address")

    def test_explicit_by_ipv6_address(self) -> None:
        for spec in ("fd11:22::5", "fe80::5%thread0"):
            self.assertEqual(validate_interface(spec, [DUAL, V6ONLY]), V6ONLY)

    def test_families_logged(self) -> None:
        captured = CapturedLog(self)
        DefaultInterfacePolicy().select([DUAL, V6ONLY, DAD])
        info = captured.texts(LogLevel.info)
        self.assertTrue(
            any(
                "selected 3 interface(s): eth0 (IPv4+IPv6), thread0 (IPv6), eth1 (IPv4)" in t
                for t in info
            ),
            info,
        )
        debug = captured.texts(LogLevel.debug)
        self.assertTrue(any("eth1 runs IPv4 only: IPv6: no usable" in t for t in debug), debug)

    def test_hand_made_selection(self) -> None:
        """
        A L{Selection} built without decisions runs each selected link on
        the families it has.
        """
        sel = Selection((DUAL, V6ONLY), ())
        self.assertEqual(sel.families_of(DUAL), Family.BOTH)
        self.assertEqual(sel.families_of(V6ONLY), Family.IPV6)

    def test_on_link_ipv6(self) -> None:
        self.assertTrue(DUAL.on_link("fe80::1234"))
        self.assertTrue(DUAL.on_link("2001:db8::99"))
        self.assertFalse(DUAL.on_link("2001:db8:1::99"))
        self.assertTrue(DAD.on_link("fe80::99"))
        self.assertEqual(interface_for_destination("2001:db8::9", [ETH0, DUAL]), DUAL)
        self.assertEqual(interface_for_destination("fd11:22::9", [DUAL, V6ONLY]), V6ONLY)


class ReportTests(unittest.TestCase):
    """
    What C{python -m twisted_mdns interfaces} prints: both families'
    addresses, their states, and the family decision.
    """

    def setUp(self) -> None:
        self.interfaces = [LO, DUAL, V6ONLY, DAD, dual("eth7", 8, None, up=False)]
        self.selection = DefaultInterfacePolicy().select(self.interfaces)

    def test_json(self) -> None:
        report = {r["name"]: r for r in self.selection.report(self.interfaces)}
        json.dumps(list(report.values()))  # all of it is JSON
        self.assertEqual(report["eth0"]["families"], ["ipv4", "ipv6"])
        self.assertEqual(report["thread0"]["families"], ["ipv6"])
        self.assertEqual(report["thread0"]["ipv4"], [])
        self.assertEqual(report["thread0"]["ipv6"], ["fe80::5/64", "fd11:22::5/64"])
        self.assertEqual(report["eth1"]["families"], ["ipv4"])
        self.assertEqual(
            report["eth1"]["family_notes"],
            ["IPv6: no usable IPv6 address (fe80::6/64 tentative)"],
        )
        self.assertEqual(
            report["eth1"]["ipv6_details"],
            [{"address": "fe80::6/64", "flags": ["tentative", "permanent"],
              "published": False, "reason": "tentative"}],
        )
        self.assertEqual(report["eth7"]["families"], [])
        self.assertEqual(report["eth7"]["reason"], "excluded: down")
        self.assertEqual(report["lo"]["selected"], False)
        self.assertEqual(report["eth0"]["reason"], "selected")

    def test_lines(self) -> None:
        text = "\n".join(self.selection.lines(self.interfaces))
        self.assertIn("selected: IPv4+IPv6", text)
        self.assertIn("thread0", text)
        self.assertIn("fd11:22::5/64", text)
        self.assertIn("fe80::6/64 (tentative, not published)", text)
        self.assertIn("(IPv6: no usable IPv6 address (fe80::6/64 tentative))", text)
        self.assertIn("excluded: down", text)
        first = self.selection.lines([V6ONLY])[0].split()
        self.assertEqual(first[:3], ["5", "thread0", "-"])
        self.assertEqual(first[-2:], ["selected:", "IPv6"])
