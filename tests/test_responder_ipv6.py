"""
The responder on dual-stack links, on a L{Clock} with a recording
transport: what it says over IPv6 and IPv4 (RFC 6762 §6.2, §14, §17), how
answers pick their family, and IPv6 addresses coming and going.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace

from twisted_mdns.constants import TYPE_A, TYPE_AAAA, TYPE_NSEC, TYPE_PTR, TYPE_SRV, TYPE_TXT
from twisted_mdns.message import Question, nsec_types
from twisted_mdns.netif import IPv6AddressFlag, IPv6AddressState
from twisted_mdns.records import InterfaceRecords, host_records, published_addresses, reverse_name
from twisted_mdns.responder.answering import choose_answers
from twisted_mdns.responder.sending import limit_for
from twisted_mdns.testing import make_interface
from twisted_mdns.transport import TransportChange

from tests.responder_case import LAB, WEB, ResponderCase

ETH0 = make_interface("eth0", 2, "10.0.0.5/24", "fd00:1::5/64", "fe80::5/64")
#: IPv6 only.
THREAD0 = make_interface("thread0", 3, "fd00:3::7/64", "fe80::7/64", mtu=1280)
V6_ETH0 = {"fd00:1::5", "fe80::5"}
V6_THREAD0 = {"fd00:3::7", "fe80::7"}
PEER6 = ("fe80::9%eth0", 5353, 0, 2)


def addresses(records, rtype=None) -> set[str]:
    return {str(r.rdata) for r in records if r.rtype in ((rtype,) if rtype else (TYPE_A, TYPE_AAAA))}


class RecordTests(ResponderCase):
    interfaces = (ETH0, THREAD0)

    def test_published_addresses_skip_unusable_ipv6_states(self) -> None:
        states = tuple(
            IPv6AddressState(ipaddress.IPv6Interface(a), f)
            for a, f in (
                ("fd00:1::5/64", IPv6AddressFlag.NONE),
                ("fe80::5/64", IPv6AddressFlag.NONE),
                ("fd00:1::6/64", IPv6AddressFlag.TENTATIVE),
                ("fd00:1::7/64", IPv6AddressFlag.DEPRECATED),
                ("fd00:1::8/64", IPv6AddressFlag.TEMPORARY),
                ("fd00:1::9/64", IPv6AddressFlag.DADFAILED),
            )
        )
        iface = replace(ETH0, ipv6=tuple(s.interface for s in states), ipv6_states=states)
        self.assertEqual(published_addresses(iface), ["10.0.0.5", "fd00:1::5", "fe80::5"])
        records = host_records(LAB, iface)
        self.assertEqual(addresses(records, TYPE_AAAA), V6_ETH0)
        self.assertEqual(
            {r.name for r in records if r.rtype == TYPE_PTR},
            {reverse_name(a) for a in ("10.0.0.5", "fd00:1::5", "fe80::5")},
        )
        self.assertEqual(reverse_name("fd00:1::5")[-2:], (b"ip6", b"arpa"))

    def view(self, iface) -> InterfaceRecords:
        view = InterfaceRecords(iface)
        for r in host_records(LAB, iface):
            view.add(r)
        return view

    def test_other_family_in_additionals_and_nsec(self) -> None:
        """
        RFC 6762 §6.2: A answered with the AAAA records as additionals and
        the reverse; the NSEC lists both types.
        """
        view = self.view(ETH0)
        choice = choose_answers(self.message(Question(LAB, TYPE_A)), view)
        self.assertEqual(addresses(choice.answers), {"10.0.0.5"})
        self.assertEqual(addresses(choice.additionals), V6_ETH0)
        choice = choose_answers(self.message(Question(LAB, TYPE_AAAA)), view)
        self.assertEqual(addresses(choice.answers), V6_ETH0)
        self.assertEqual(addresses(choice.additionals), {"10.0.0.5"})
        choice = choose_answers(self.message(Question(LAB, TYPE_TXT)), view)
        (nsec,) = choice.answers
        self.assertEqual(nsec_types(nsec), {TYPE_A, TYPE_AAAA})

    def test_single_family_link_says_so_with_nsec(self) -> None:
        view = self.view(THREAD0)
        choice = choose_answers(self.message(Question(LAB, TYPE_AAAA)), view)
        self.assertEqual(addresses(choice.answers), V6_THREAD0)
        self.assertEqual([(r.rtype, nsec_types(r)) for r in choice.additionals], [(TYPE_NSEC, {TYPE_AAAA})])
        choice = choose_answers(self.message(Question(LAB, TYPE_A)), view)
        self.assertEqual([(r.rtype, nsec_types(r)) for r in choice.answers], [(TYPE_NSEC, {TYPE_AAAA})])
        v4 = self.view(make_interface("eth1", 4, "10.9.0.1/24"))
        choice = choose_answers(self.message(Question(LAB, TYPE_AAAA)), v4)
        self.assertEqual([(r.rtype, nsec_types(r)) for r in choice.answers], [(TYPE_NSEC, {TYPE_A})])

    def message(self, *questions):
        from twisted_mdns.message import pack_one, parse

        return parse(pack_one(questions=list(questions)))

    def test_limits(self) -> None:
        """
        RFC 6762 §17: MTU less 28 over IPv4, less 48 over IPv6; a packet
        for every family takes the smaller.
        """
        self.assertEqual(limit_for(ETH0, socket.AF_INET), 1472)
        self.assertEqual(limit_for(ETH0, socket.AF_INET6), 1452)
        self.assertEqual(limit_for(ETH0), 1452)
        self.assertEqual(limit_for(make_interface("eth1", 4, "10.9.0.1/24")), 1472)
        self.assertEqual(limit_for(THREAD0), 1232)


class DualStackResponderTests(ResponderCase):
    interfaces = (ETH0, THREAD0)

    def setUp(self) -> None:
        super().setUp()
        self.settle()
        self.responder.register(WEB)
        self.run_for(5.0, 0.25)
        self.transport.take()
        self.clock.advance(5)

    def test_views_per_link(self) -> None:
        eth0 = self.responder.records_for(2)
        self.assertEqual(addresses(eth0), {"10.0.0.5"} | V6_ETH0)
        thread0 = self.responder.records_for(3)
        self.assertEqual(addresses(thread0), V6_THREAD0)
        self.assertIn(reverse_name("fd00:3::7"), {r.name for r in thread0})
        self.assertNotIn(reverse_name("fd00:3::7"), {r.name for r in eth0})

    def test_announcements_and_probes_go_on_every_family(self) -> None:
        self.responder.register(WEB.renamed("Other"))
        self.run_for(3.0, 0.05)
        sent = self.transport.take()
        probes = [s for s in sent if not s.message.is_response]
        announcements = [s for s in sent if s.message.is_response]
        self.assertTrue(probes and announcements)
        self.assertEqual({(s.destination, s.family) for s in sent}, {(None, None)})

    def test_answer_goes_back_over_the_query_family(self) -> None:
        self.query(Question(LAB, TYPE_A), index=2, source=PEER6, destination="ff02::fb")
        (sent,) = self.transport.take()
        self.assertEqual((sent.multicast, sent.family), (True, socket.AF_INET6))
        self.assertEqual(addresses(sent.message.answers), {"10.0.0.5"})
        self.assertEqual(addresses(sent.message.additionals), V6_ETH0)
        # The IPv4 half of the link has its own §6 rate limit.
        self.query(Question(LAB, TYPE_A), index=2, source=("10.0.0.9", 5353))
        (sent,) = self.transport.take()
        self.assertEqual(sent.family, socket.AF_INET)
        self.query(Question(LAB, TYPE_A), index=2, source=PEER6, destination="ff02::fb")
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.responder.counters["suppressed.rate-limit"], 1)

    def test_legacy_over_ipv6_replies_to_the_source(self) -> None:
        source = ("fe80::9%eth0", 41000, 0, 2)
        self.query(Question(LAB, TYPE_AAAA), index=2, source=source, destination="ff02::fb", ident=77)
        (sent,) = self.transport.take()
        self.assertEqual((sent.destination, sent.source), (source, "::"))
        reply = sent.message
        self.assertEqual(reply.id, 77)
        self.assertEqual(addresses(reply.answers), V6_ETH0)
        self.assertTrue(all(r.ttl <= 10 and not r.cache_flush for r in reply.records()))
        # Repeated: from the fast path, the same answer.
        self.query(Question(LAB, TYPE_AAAA), index=2, source=source, destination="ff02::fb", ident=78)
        (again,) = self.transport.take()
        self.assertEqual(again.message.id, 78)
        self.assertEqual(addresses(again.message.answers), V6_ETH0)

    def test_direct_unicast_over_ipv6_answered_from_the_address_asked(self) -> None:
        source = ("fd00:1::9", 5353, 0, 0)
        self.query(Question(WEB.name, TYPE_SRV), index=2, source=source, destination="fd00:1::5")
        (sent,) = self.transport.take()
        self.assertEqual((sent.destination, sent.source), (source, "fd00:1::5"))
        self.assertEqual(addresses(sent.message.additionals), {"10.0.0.5"} | V6_ETH0)

    def test_off_link_ipv6_source_refused(self) -> None:
        for source in (("2001:db8::1", 5353, 0, 0), ("fd00:3::9", 41000, 0, 0)):
            self.query(Question(LAB, TYPE_AAAA), index=2, source=source, destination="ff02::fb")
        self.assertEqual(self.transport.take(), [])
        self.assertEqual(self.responder.counters["dropped.off-link"], 2)

    def test_ipv6_address_added_and_removed(self) -> None:
        """
        A new publishable address is announced (with its reverse mapping
        probed and announced); a removed one gets goodbyes.
        """
        new = make_interface("eth0", 2, "10.0.0.5/24", "fd00:1::5/64", "fe80::5/64", "fd00:7::1/64")
        self.transport.interfaces[2] = new
        self.responder.interfaces_changed(TransportChange(readdressed=((ETH0, new),)))
        self.run_for(3.0, 0.05)
        sent = self.transport.take()
        announced = [s for s in sent if s.message.is_response and "fd00:7::1" in addresses(s.message.answers)]
        self.assertTrue(announced)
        self.assertEqual({s.index for s in announced}, {2})
        self.assertIn(reverse_name("fd00:7::1"), {r.name for r in self.responder.records_for(2)})
        self.transport.interfaces[2] = ETH0
        self.responder.interfaces_changed(TransportChange(readdressed=((new, ETH0),)))
        self.run_for(0.5, 0.05)
        sent = self.transport.take()
        goodbyes = [r for s in sent for r in s.message.answers if r.ttl == 0]
        self.assertIn("fd00:7::1", addresses(goodbyes))
        self.assertIn(reverse_name("fd00:7::1"), {r.name for r in goodbyes})
        self.assertNotIn("fd00:7::1", addresses(self.responder.records_for(2)))

    def test_tentative_address_published_once_dad_ends(self) -> None:
        state = IPv6AddressState(ipaddress.IPv6Interface("fd00:8::1/64"), IPv6AddressFlag.TENTATIVE)
        base = list(ETH0.ipv6_details)
        tentative = replace(ETH0, ipv6=ETH0.ipv6 + (state.interface,), ipv6_states=tuple(base) + (state,))
        self.transport.interfaces[2] = tentative
        self.responder.interfaces_changed(TransportChange(readdressed=((ETH0, tentative),)))
        self.run_for(2.0, 0.05)
        self.assertNotIn("fd00:8::1", addresses(self.responder.records_for(2)))
        self.assertNotIn("fd00:8::1", {str(r.rdata) for s in self.transport.take() for r in s.message.records()})
        done = replace(tentative, ipv6_states=tuple(base) + (replace(state, flags=IPv6AddressFlag.NONE),))
        self.transport.interfaces[2] = done
        self.responder.interfaces_changed(TransportChange(readdressed=((tentative, done),)))
        self.run_for(0.1, 0.05)
        self.assertIn("fd00:8::1", addresses(self.responder.records_for(2)))
        sent = self.transport.take()
        self.assertTrue([s for s in sent if "fd00:8::1" in addresses(s.message.answers)])


class IPv6ConflictTests(ResponderCase):
    """
    RFC 6762 §8.1, §9, §15 over IPv6: a conflict heard on either family is
    a conflict on that link.
    """

    interfaces = (ETH0, THREAD0)

    def respond(self, records, index: int = 2, source=PEER6) -> None:
        from twisted_mdns.constants import FLAG_AA, FLAG_QR
        from twisted_mdns.message import pack_one

        self.receive(pack_one(flags=FLAG_QR | FLAG_AA, answers=list(records)), source, index, "ff02::fb")

    def test_conflict_while_probing_heard_over_ipv6_renames(self) -> None:
        from twisted_mdns.message import aaaa_record

        done: list = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        self.respond([aaaa_record(LAB, "fe80::99", 120)], 3, ("fe80::99%thread0", 5353, 0, 3))
        self.run_for(3.0, 0.25)
        self.assertEqual(done, ["lab-2"])

    def test_late_aaaa_conflict_over_ipv6_reprobes(self) -> None:
        from twisted_mdns.message import aaaa_record

        self.settle()
        self.assertEqual(self.results, ["lab"])
        other = [aaaa_record(LAB, "fd00:1::77", 120)]
        self.respond(other, 2, ("fd00:1::77", 5353, 0, 0))
        self.assertEqual(self.responder.counters["conflicts.late"], 1)
        self.clock.advance(0.25)
        probes = self.transport.take()
        self.assertTrue(probes and not probes[0].message.is_response, "§9: back to probing")

    def test_own_announcements_looped_back_over_ipv6_are_no_conflict(self) -> None:
        """
        Our packets come back over IPv6 from our link-local address (with
        its zone): not a conflict, whatever link's records they carry.
        """
        self.settle()
        self.respond(host_records(LAB, THREAD0), 2, ("fe80::7%eth0", 5353, 0, 2))
        self.assertEqual(self.responder.counters["conflicts.late"], 0)
        self.assertEqual(self.responder.hostname, "lab")

    def test_ip6_arpa_reverse_mapping_yielded(self) -> None:
        """
        §15: another responder on this host holds the ip6.arpa name of our
        address: we give it up, without renaming.
        """
        from twisted_mdns.message import name_from_text, ptr_record

        done: list = []
        self.responder.start().addCallback(done.append)
        self.clock.advance(0.25)
        reverse = reverse_name("fd00:1::5")
        theirs = ptr_record(reverse, name_from_text("theirs.local"), 120, cache_flush=True)
        self.respond([theirs], 2, ("fd00:1::5", 5353, 0, 0))
        self.run_for(5.0, 0.25)
        self.assertEqual(done, ["lab"])
        self.assertEqual(self.responder.counters["reverse.yielded"], 1)
        names = {r.name for r in self.responder.records_for(2)}
        self.assertNotIn(reverse, names)
        self.assertIn(reverse_name("fe80::5"), names)
