"""
Tests for the RFC 6762 s11 source check as the receive path makes it:
L{InterfaceContext.on_link} (integer subnets, a verdict per source) and
L{twisted_mdns.protocol.source_on_link}; and L{NetworkInterface.has_address}.
"""

from __future__ import annotations

import ipaddress

from twisted.trial import unittest

from twisted_mdns import pktinfo
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.protocol import source_on_link
from twisted_mdns.testing import make_interface


def context(*cidrs: str) -> InterfaceContext:
    return InterfaceContext(2, "lana", "224.0.0.251", make_interface("lana", 2, *cidrs))


class OnLinkTests(unittest.TestCase):
    def test_subnets(self) -> None:
        ctx = context("10.1.0.1/24", "192.168.7.9/30")
        self.assertTrue(ctx.on_link("10.1.0.200"))
        self.assertTrue(ctx.on_link("10.1.0.1"))
        self.assertFalse(ctx.on_link("10.1.1.2"))
        self.assertTrue(ctx.on_link("192.168.7.10"))
        self.assertFalse(ctx.on_link("192.168.7.12"))

    def test_point_to_point_holds_only_itself(self) -> None:
        ctx = context("10.9.0.1/32")
        self.assertTrue(ctx.on_link("10.9.0.1"))
        self.assertFalse(ctx.on_link("10.9.0.2"))

    def test_same_as_network_interface(self) -> None:
        """
        The integer check agrees with L{NetworkInterface.on_link} (the
        C{ipaddress} one) on every address of a few subnets' edges.
        """
        ctx = context("10.1.0.1/23", "172.16.5.5/16", "192.168.1.1/31")
        for net in ("10.0.255.0/24", "10.1.0.0/22", "172.15.255.248/29", "172.16.255.248/29",
                    "192.168.1.0/29"):
            for ip in ipaddress.ip_network(net):
                self.assertEqual(ctx.on_link(str(ip)), ctx.interface.on_link(str(ip)), ip)

    def test_no_interface(self) -> None:
        self.assertFalse(InterfaceContext(2, "?", "224.0.0.251").on_link("10.0.0.1"))

    def test_ipv6_goes_to_the_interface(self) -> None:
        self.assertTrue(context("10.1.0.1/24").on_link("fe80::1"))
        self.assertFalse(context("10.1.0.1/24").on_link("2001:db8::1"))

    def test_verdicts_bounded(self) -> None:
        ctx = context("10.0.0.1/8")
        for n in range(pktinfo._MAX_VERDICTS + 10):
            self.assertTrue(ctx.on_link(f"10.0.{n // 256}.{n % 256}"))
        self.assertLessEqual(len(ctx._verdicts), pktinfo._MAX_VERDICTS)

    def test_link_local_always_on_link(self) -> None:
        ctx = context("10.1.0.1/24")
        self.assertTrue(source_on_link("169.254.7.7", ctx))
        self.assertFalse(source_on_link("169.255.7.7", ctx))
        self.assertFalse(source_on_link("not an address", ctx))


class HasAddressTests(unittest.TestCase):
    def test_ipv4_text(self) -> None:
        iface: NetworkInterface = make_interface("lana", 2, "10.1.0.1/24", "10.2.0.1/24")
        self.assertTrue(iface.has_address("10.2.0.1"))
        self.assertFalse(iface.has_address("10.2.0.2"))
        self.assertFalse(iface.has_address("010.2.0.1"))
        self.assertFalse(iface.has_address("fe80::1"))
