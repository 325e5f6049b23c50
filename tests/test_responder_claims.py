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


class OwnerAndRecordsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.claims = Claims("lab")

    def test_owner_of_each_record(self) -> None:
        """
        A service owns its SRV, TXT and type and subtype PTRs; the host its
        addresses; a reverse mapping its PTR; nobody the enumeration PTR
        every service of a type shares.
        """
        printer = ServiceInfo("Printer", "_ipp._tcp", 631, subtypes=("_color",))
        claim = self.claims.add_service(printer)
        reverse = self.claims.add_reverse("10.0.0.5")
        records = self.claims.records(claim, ETH0, shared=True)
        owners = {(r.rtype, r.key): self.claims.owner(r) for r in records}
        self.assertEqual(len(records), 5)  # SRV, TXT, type PTR, subtype PTR, enumeration PTR
        enumeration = [r for r in records if r.key == name_key(name_from_text("_services._dns-sd._udp.local"))]
        self.assertEqual([owners[(r.rtype, r.key)] for r in enumeration], [None])
        self.assertEqual(sum(1 for o in owners.values() if o is claim), 4)
        for r in self.claims.records(self.claims.host_claim, ETH0):
            self.assertIs(self.claims.owner(r), self.claims.host_claim)
        (ptr,) = self.claims.records(reverse, ETH0)
        self.assertIs(self.claims.owner(ptr), reverse)

    def test_records_follow_service_and_host(self) -> None:
        """
        A claim keeps its records alone; a new service value (TXT update)
        or host name builds them again.
        """
        claim = self.claims.add_service(WEB)
        first = self.claims.records(claim, ETH0, shared=True)
        self.assertIs(self.claims.records(claim, WLAN0, shared=True), first, "one tuple for every link")
        self.assertEqual([r.rtype for r in self.claims.records(claim, ETH0)], [TYPE_SRV, 16])
        claim.service = WEB.with_txt({"v": "2"})
        second = self.claims.records(claim, ETH0, shared=True)
        self.assertIsNot(second, first)
        self.claims.rename_host("lab-2")
        third = self.claims.records(claim, ETH0, shared=True)
        srv = [r for r in third if r.rtype == TYPE_SRV][0]
        self.assertEqual(srv.rdata.target.label, (b"lab-2", b"local"))
        self.assertIs(self.claims.owner(srv), claim)
