"""
What we claim and the records each claim says on a link
(L{twisted_mdns.responder.claims}).
"""

from __future__ import annotations

from twisted.trial import unittest

from twisted_mdns.message import TYPE_A, TYPE_PTR, TYPE_SRV, name_from_text, name_key
from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import ClaimKind, ClaimState
from twisted_mdns.responder.claims import Claims
from twisted_mdns.testing import make_interface

ETH0 = make_interface("eth0", 2, "10.0.0.5/24", "169.254.7.7/16")
WLAN0 = make_interface("wlan0", 3, "192.168.1.100/24")
WEB = ServiceInfo("My Web", "_http._tcp", 8080)


class ClaimsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.claims = Claims("lab")

    def test_states_are_enums(self) -> None:
        claim = self.claims.add_service(WEB)
        self.assertIs(claim.kind, ClaimKind.SERVICE)
        self.assertIs(claim.state, ClaimState.PROBING)
        self.assertFalse(claim.announced)
        claim.state = ClaimState.ANNOUNCED
        self.assertTrue(claim.announced)

    def test_host_records_are_the_links_own(self) -> None:
        """
        RFC 6762 §6.2: every IPv4 address of the link, link-local included,
        and none of another link.
        """
        host = self.claims.host_claim
        on_eth0 = [str(r.rdata) for r in self.claims.records(host, ETH0)]
        self.assertEqual(on_eth0, ["10.0.0.5", "169.254.7.7"])
        self.assertEqual([str(r.rdata) for r in self.claims.records(host, WLAN0)], ["192.168.1.100"])
        moved = make_interface("eth0", 2, "10.0.0.6/24")
        self.assertEqual([str(r.rdata) for r in self.claims.records(host, moved)], ["10.0.0.6"])
        self.claims.rename_host("lab-2")
        self.assertEqual(
            {r.name for r in self.claims.records(host, moved)}, {name_from_text("lab-2.local")},
            "the records follow the host name",
        )

    def test_reverse_mapping_only_where_its_address_is(self) -> None:
        claim = self.claims.add_reverse("10.0.0.5")
        self.assertEqual(self.claims.name(claim), name_from_text("5.0.0.10.in-addr.arpa"))
        (ptr,) = self.claims.records(claim, ETH0)
        self.assertEqual((ptr.rtype, str(ptr.rdata)), (TYPE_PTR, "lab.local."))
        self.assertEqual(self.claims.records(claim, WLAN0), [])
        self.claims.rename_host("lab-2")
        self.assertEqual(str(self.claims.records(claim, ETH0)[0].rdata), "lab-2.local.")
        self.assertEqual(self.claims.named([name_key(ptr.name)]), [claim])
        self.assertIs(self.claims.remove_reverse("10.0.0.5"), claim)
        self.assertEqual(self.claims.named([name_key(ptr.name)]), [])

    def test_service_limited_to_a_link(self) -> None:
        printer = ServiceInfo("Printer", "_ipp._tcp", 631, interfaces=("wlan0",))
        claim = self.claims.add_service(printer)
        self.assertEqual(self.claims.records(claim, ETH0), [])
        self.assertEqual({r.rtype for r in self.claims.probe_records(claim, WLAN0)}, {TYPE_SRV, 16})
        self.assertEqual(len(self.claims.records(claim, WLAN0, shared=True)), 4)

    def test_found_by_requested_name_after_rename(self) -> None:
        claim = self.claims.add_service(WEB)
        self.claims.rename_service(claim, WEB.renamed("My Web (2)"))
        self.assertIs(self.claims.find(WEB), claim)
        self.assertIs(self.claims.find(WEB.renamed("My Web (2)")), claim)
        self.claims.remove_service(claim)
        self.assertIsNone(self.claims.find(WEB))
        self.assertEqual(list(self.claims), [self.claims.host_claim])

    def test_named_host_first_then_message_order(self) -> None:
        docs = self.claims.add_service(ServiceInfo("Docs", "_http._tcp", 81))
        web = self.claims.add_service(WEB)
        keys = {WEB.key: None, docs.service.key: None, name_key(self.claims.host): None}
        self.assertEqual(self.claims.named(keys), [self.claims.host_claim, web, docs])
        self.assertEqual(self.claims.host_claim.kind, ClaimKind.HOST)
        self.assertEqual([r.rtype for r in self.claims.records(self.claims.host_claim, ETH0)], [TYPE_A, TYPE_A])
