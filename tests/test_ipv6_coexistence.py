"""
RFC 6762 §15 on both families: avahi-daemon (IPv4 and IPv6 on) and our
L{MDNSService} in the same host namespace share port 5353 over IPv4 and
over IPv6 on two dual-stack links (ULA and link-local addresses).

Each stack answers for its own names over either family, with the asking
link's addresses; neither renames; the reverse mappings of the addresses
both stacks publish (the host's, in-addr.arpa and ip6.arpa) are left to
whoever held them first.
"""

from __future__ import annotations

import re
import socket

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain6
from tests.peers import AvahiDaemon, require_peers
from tests.support import sleep, wait_until
from tests import test_coexistence as ipv4
from twisted_mdns.constants import MDNS_GROUP6, TYPE_AAAA
from twisted_mdns.message import MessageError, Question, pack_one, parse


def replies6(sock: socket.socket, ident: int) -> list:
    out = []
    for data, source, _hops, _index in drain6(sock):
        try:
            message = parse(data)
        except MessageError:
            continue
        if message.is_response and message.id == ident:
            out.append((message, source))
    return out


class AvahiCoexistenceIPv6Tests(ipv4.AvahiCoexistenceTests):
    """
    The IPv4 coexistence tests again with IPv6 on every link and in avahi,
    plus the same questions asked over IPv6.
    """

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        require_peers("avahi-daemon")
        NamespaceTestMixin.setUp(self)
        self.topology.add_ipv6()
        self.links = self.topology.links
        self.host_ll = {
            c: self.topology.link_local(self.topology.host_ns, link.host_if) for c, link in self.links.items()
        }
        self.ident = 0x600
        yield self.start_avahi()
        yield self.start_ours()
        yield wait_until(
            lambda: all(
                any(r.rtype == TYPE_AAAA for r in self.mdns.responder.records_for(link.host_index))
                for link in self.links.values()
            ),
            what="our host name claimed on both links, with AAAA",
        )

    @defer.inlineCallbacks
    def start_avahi(self):
        self.avahi = AvahiDaemon(
            self.topology.host_ns, "theirs", services=[ipv4.THEIR_WEB],
            interfaces=("lana", "lanb"), workdir=self.mktemp(),
            config={"server": {"use-ipv6": "yes"}},
        )
        self.addCleanup(self.avahi.stop)
        name = yield self.avahi.start(timeout=15)
        self.assertEqual(name, "theirs.local")

    @defer.inlineCallbacks
    def ask6(self, client: str, name, qtype: int = TYPE_AAAA):
        """
        A legacy query over IPv6 to ff02::fb from C{client}: every reply
        within half a second of the first (none after 3 s).
        """
        self.ident += 1
        ident = self.ident
        sock = self.topology.client_socket6(client)
        self.addCleanup(sock.close)
        index = self.topology.client_index(client)
        sock.sendto(pack_one(ident=ident, questions=[Question(name, qtype)]), (MDNS_GROUP6, 5353, 0, index))
        got = []
        try:
            got += yield wait_until(lambda: replies6(sock, ident), timeout=3, what=f"a reply on {client}")
        except AssertionError:
            return []
        yield sleep(0.5)
        return got + replies6(sock, ident)

    def own6(self, client: str) -> set[str]:
        return {self.links[client].host_ip6, self.host_ll[client]}

    @defer.inlineCallbacks
    def test_ours_answered_by_us_over_ipv6(self):
        counters = self.mdns.counters
        for client in self.links:
            answered = counters["answered.legacy"]
            got = yield self.ask6(client, ipv4.OURS)
            self.assertEqual(len(got), 1, got)
            message, _ = got[0]
            self.assertEqual({str(r.rdata) for r in message.answers if r.rtype == TYPE_AAAA}, self.own6(client))
            self.assertEqual(counters["answered.legacy"], answered + 1, "answered by us")

    @defer.inlineCallbacks
    def test_theirs_answered_by_avahi_over_ipv6(self):
        yield sleep(1.0)
        counters = self.mdns.counters
        for client in self.links:
            answered = counters["answered.legacy"]
            got = yield self.ask6(client, ipv4.THEIRS)
            self.assertEqual(len(got), 1, f"{got}\n{self.avahi.log[-3000:]}")
            addresses = {str(r.rdata) for r in got[0][0].answers if r.rtype == TYPE_AAAA}
            self.assertTrue(addresses)
            self.assertLessEqual(addresses, self.own6(client))
            self.assertEqual(counters["answered.legacy"], answered, "we do not answer for theirs")

    @defer.inlineCallbacks
    def test_neither_renames_on_either_family(self):
        yield sleep(2.5)
        self.assertEqual(self.mdns.responder.hostname, "ours")
        self.assertEqual(self.mdns.counters["conflicts"] + self.mdns.counters["conflicts.late"], 0)
        self.assertTrue(self.avahi.running)
        conflicts = re.findall(r"^.*(?:conflict|withdraw|retrying).*$", self.avahi.log, re.M | re.I)
        self.assertEqual(conflicts, [], self.avahi.log[-3000:])
        self.assertEqual(self.avahi.host_name, "theirs.local")
        self.assertIn("New relevant interface lana.IPv6 for mDNS.", self.avahi.log)
