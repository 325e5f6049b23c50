"""
RFC 6762 s15, "Multiple Responders on the Same Machine": Debian's
avahi-daemon and our L{MDNSService} in the same host namespace, sharing
port 5353 on the same two links (lana 10.1.0.1/24 to client a, lanb
10.2.0.1/24 to client b).

Ours is host C{ours} with service C{Our Web}; avahi is host C{theirs} with
service C{Their Web}, restricted to lana and lanb.  Clients ask with legacy
unicast queries sent to the group (every socket joined to it hears them,
so the answer does not depend on which socket the kernel's SO_REUSEPORT
hashing would pick for a unicast datagram).  Each stack must answer for its
own names, with the asking link's address, and for nothing else; neither
may see the other as a conflict; our ports keep receiving.
"""

from __future__ import annotations

import re
import socket

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain
from tests.peers import AvahiDaemon, AvahiService, require_peers
from tests.support import sleep, wait_until
from twisted_mdns.message import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    MessageError,
    Question,
    name_from_text,
    pack_one,
    parse,
)
from twisted_mdns.records import reverse_name, ServiceInfo
from twisted_mdns.service import MDNSService

OURS = name_from_text("ours.local")
THEIRS = name_from_text("theirs.local")
HTTP = name_from_text("_http._tcp.local")
OUR_WEB = ServiceInfo("Our Web", "_http._tcp", 8080, {"path": "/ours"})
THEIR_WEB = AvahiService("Their Web", "_http._tcp", 8081, txt=("path=/theirs",))
THEIR_NAME = (b"Their Web",) + HTTP

#: How the two share the reverse-mapping names (RFC 6762 s15): both stacks
#: claim 1.0.1.10.in-addr.arpa for the address they share, each pointing it
#: at its own host name.  We claim ours as a separate entity and yield it,
#: never renaming for it, when avahi probes or announces it; avahi keeps its
#: host name (test_neither_renames, and test_we_gave_up_the_shared_reverse_names
#: when we start first).


def replies(sock: socket.socket, ident: int) -> list:
    out = []
    for data, source in drain(sock):
        try:
            message = parse(data)
        except MessageError:
            continue
        if message.is_response and message.id == ident:
            out.append((message, source))
    return out


class AvahiCoexistenceTests(NamespaceTestMixin, unittest.TestCase):
    clients = ("a", "b")
    virtual = False
    timeout = 45

    @defer.inlineCallbacks
    def setUp(self):
        require_peers("avahi-daemon")
        super().setUp()
        self.links = self.topology.links
        self.ident = 0x100
        yield self.start_avahi()
        yield self.start_ours()
        yield wait_until(
            lambda: all(self.mdns.responder.records_for(link.host_index) for link in self.links.values()),
            what="our host name claimed on both links",
        )

    @defer.inlineCallbacks
    def start_avahi(self):
        """
        avahi-daemon as C{theirs} on lana and lanb of the host namespace.
        """
        self.avahi = AvahiDaemon(
            self.topology.host_ns, "theirs", services=[THEIR_WEB],
            interfaces=("lana", "lanb"), workdir=self.mktemp(),
        )
        self.addCleanup(self.avahi.stop)
        name = yield self.avahi.start(timeout=15)
        self.assertEqual(name, "theirs.local")

    @defer.inlineCallbacks
    def start_ours(self):
        """
        Our service as C{ours}, with C{Our Web}, in the same namespace.
        """
        self.mdns = MDNSService(hostname="ours", monitor=False)
        self.mdns.startService()
        self.addCleanup(self.mdns.stopService)
        registered = yield self.mdns.register(OUR_WEB)
        self.assertEqual(registered.instance, "Our Web")

    @defer.inlineCallbacks
    def ask(self, client: str, name, qtype: int = TYPE_A):
        """
        A legacy unicast query to the group from C{client}; fires with every
        reply that came within half a second of the first (or none after
        3 s).
        """
        self.ident += 1
        ident = self.ident
        sock = self.topology.client_socket(client)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(ident=ident, questions=[Question(name, qtype)]), ("224.0.0.251", 5353))
        got = []
        try:
            got += yield wait_until(lambda: replies(sock, ident), timeout=3, what=f"a reply on {client}")
        except AssertionError:
            return []
        yield sleep(0.5)
        return got + replies(sock, ident)

    @defer.inlineCallbacks
    def test_ours_answered_by_us_on_both_links(self):
        """
        ours.local, asked on either link, gets exactly one answer: ours,
        with that link's address (avahi does not answer for it); a browse
        gets our reply with Our Web and its additionals only; our ports
        hear every query (the shared port works) and we never rename.
        """
        counters = self.mdns.counters
        for client, link in self.links.items():
            answered, queries, received = counters["answered.legacy"], counters["queries"], counters["received"]
            got = yield self.ask(client, OURS)
            self.assertEqual(len(got), 1, got)
            message, source = got[0]
            self.assertEqual(source, (link.host_ip, 5353))
            self.assertEqual([(r.name, str(r.rdata)) for r in message.answers], [(OURS, link.host_ip)])
            self.assertEqual(counters["answered.legacy"], answered + 1, "answered by us")
            got = yield self.ask(client, HTTP, TYPE_PTR)
            ours = [m for m, _ in got if any(r.name == OUR_WEB.name for r in m.additionals)]
            self.assertEqual(len(ours), 1, got)
            self.assertEqual([tuple(r.rdata.label.label) for r in ours[0].answers], [OUR_WEB.name])
            # The link's IPv6 link-local address too, once its DAD is over
            # (RFC 6762 §6.2: both families in the additionals).
            v6 = [(OURS, TYPE_AAAA)] * sum(
                r.rtype == TYPE_AAAA for r in self.mdns.responder.records_for(link.host_index)
            )
            self.assertEqual(
                sorted((r.name, r.rtype) for r in ours[0].additionals),
                sorted([(OUR_WEB.name, TYPE_SRV), (OUR_WEB.name, TYPE_TXT), (OURS, TYPE_A), (OURS, TYPE_NSEC)] + v6),
            )
            self.assertEqual([str(r.rdata) for r in ours[0].additionals if r.rtype == TYPE_A], [link.host_ip])
            self.assertEqual(counters["answered.legacy"], answered + 2)
            self.assertGreaterEqual(counters["queries"], queries + 2, "our ports heard the queries")
            self.assertGreater(counters["received"], received)
        self.assertEqual(self.mdns.responder.hostname, "ours")
        self.assertEqual([s.instance for s in self.mdns.responder.services], ["Our Web"])
        self.assertEqual(self.mdns.counters["conflicts"] + self.mdns.counters["conflicts.late"], 0)

    @defer.inlineCallbacks
    def test_theirs_answered_by_avahi_on_both_links(self):
        """
        theirs.local, asked on either link, gets exactly one answer, avahi's
        (we do not answer for it), with that link's address; a browse gets
        avahi's reply with Their Web.
        """
        counters = self.mdns.counters
        yield sleep(1.0)  # whatever our announcements set off in avahi, let it happen
        for client, link in self.links.items():
            answered, queries = counters["answered.legacy"], counters["queries"]
            got = yield self.ask(client, THEIRS)
            self.assertEqual(len(got), 1, f"{got}\n{self.avahi.log[-3000:]}")
            message, source = got[0]
            self.assertEqual(source, (link.host_ip, 5353))
            self.assertEqual([(r.name, str(r.rdata)) for r in message.answers], [(THEIRS, link.host_ip)])
            self.assertEqual(counters["answered.legacy"], answered, "we do not answer for theirs")
            self.assertGreater(counters["queries"], queries, "our ports heard the query")
            got = yield self.ask(client, HTTP, TYPE_PTR)
            theirs = [m for m, _ in got if any(r.name == THEIR_NAME for r in m.answers + m.additionals)
                      or any(tuple(r.rdata.label.label) == THEIR_NAME for r in m.answers if r.rtype == TYPE_PTR)]
            self.assertEqual(len(theirs), 1, got)


    @defer.inlineCallbacks
    def test_neither_renames(self):
        """
        After both stacks announced, re-announced and heard each other's
        records, nobody renamed: not us, and avahi logged no conflict.
        """
        yield sleep(2.0)
        self.assertEqual(self.mdns.hostname, "ours")
        self.assertEqual(self.mdns.counters["conflicts"] + self.mdns.counters["conflicts.late"], 0)
        self.assertTrue(self.avahi.running)
        conflicts = re.findall(r"^.*(?:conflict|withdraw|retrying).*$", self.avahi.log, re.M | re.I)
        self.assertEqual(conflicts, [], self.avahi.log[-3000:])
        # The name avahi holds now (read from its log, where a rename
        # shows), and what it answers on the wire: its own, on each link.
        self.assertEqual(self.avahi.host_name, "theirs.local")
        for client, link in self.links.items():
            got = yield self.ask(client, THEIRS)
            self.assertEqual(
                [(source, [str(r.rdata) for r in m.answers]) for m, source in got],
                [((link.host_ip, 5353), [link.host_ip])],
            )



class OursFirstCoexistenceTests(AvahiCoexistenceTests):
    """
    The same, with our service started before avahi-daemon: avahi then
    probes for the reverse names of the addresses we share, and we let it
    have them rather than make it rename.
    """

    @defer.inlineCallbacks
    def setUp(self):
        require_peers("avahi-daemon")
        NamespaceTestMixin.setUp(self)
        self.links = self.topology.links
        self.ident = 0x200
        yield self.start_ours()
        yield sleep(1.5)  # both announcements out
        yield self.start_avahi()

    @defer.inlineCallbacks
    def test_we_gave_up_the_shared_reverse_names(self):
        yield sleep(1.0)
        self.assertEqual(self.mdns.counters["reverse.yielded"], 2)
        for link in self.links.values():
            names = {r.name for r in self.mdns.responder.records_for(link.host_index)}
            self.assertNotIn(reverse_name(link.host_ip), names)
