"""
RFC 6762 rules checked from the wire, in namespaces, through the public
seams only (L{MDNSService} and what reaches a client's sockets).

Each test here fails if its rule is removed from the code:

 - §11: every packet we send leaves with IP TTL 255 (multicast answers,
   QU and legacy unicast replies, probes, announcements, goodbyes);
 - §6: a response whose source port is not 5353 is silently ignored:
   neither cached by the querier nor taken as a conflict by the responder;
 - §11: a response from a source that is not on the receiving link is
   ignored the same way;
 - §17: probes, announcements, multicast answers and goodbyes fit the
   interface MTU, split over several datagrams with nothing lost.

Each was checked by mutating the code (the IP_TTL option left out; the
protocol's port or on-link check dropped, for both handlers or for one;
the packing limit taken from a 1500-byte link): the test fails.  The
responder and querier are being reshaped, so nothing here reaches into
them: L{MDNSService}'s public methods and the wire only.
"""

from __future__ import annotations

import socket
import struct

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, inside, ip
from tests.support import start_service, wait_until
from twisted_mdns.constants import IP_TTL, IP_UDP_OVERHEAD, MDNS_GROUP, MDNS_PORT
from twisted_mdns.message import (
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Message,
    MessageError,
    Question,
    a_record,
    name_from_text,
    pack,
    pack_one,
    parse,
)
from twisted_mdns.records import ServiceInfo

LAB = name_from_text("lab.local")
WEB = ServiceInfo("Lab Web", "_http._tcp", 8080, {"path": "/"})
HTTP = name_from_text("_http._tcp.local")
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


class Received:
    """
    One datagram as a client socket got it: the message, who sent it, the
    IP TTL it arrived with and where it was sent to (a group or us).
    """

    def __init__(self, data: bytes, source: tuple[str, int], ttl: int | None, destination: str) -> None:
        self.data = data
        self.source = source
        self.ttl = ttl
        self.destination = destination
        try:
            self.message: Message | None = parse(data)
        except MessageError:
            self.message = None

    @property
    def multicast(self) -> bool:
        return self.destination == MDNS_GROUP

    def __repr__(self) -> str:
        return f"<{len(self.data)} bytes from {self.source} to {self.destination}, TTL {self.ttl}>"


class Capture:
    """
    A client socket that reports each datagram's IP TTL (C{IP_RECVTTL}) and
    destination (C{IP_PKTINFO}), keeping everything it has read.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.got: list[Received] = []
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)

    def read(self) -> list[Received]:
        new = []
        while True:
            try:
                data, ancdata, _flags, source = self.sock.recvmsg(9000, socket.CMSG_SPACE(64))
            except BlockingIOError:
                break
            ttl, destination = None, "?"
            for level, kind, payload in ancdata:
                if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                    ttl = struct.unpack("i", payload[:4])[0]
                elif level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    destination = socket.inet_ntoa(payload[8:12])
            new.append(Received(data, source, ttl, destination))
        self.got += new
        return self.got

    def matching(self, predicate) -> list[Received]:
        return [r for r in self.read() if r.message is not None and predicate(r)]

    def close(self) -> None:
        self.sock.close()


def multicast_listener(case, client: str) -> Capture:
    """
    A capture in C{client}'s namespace on port 5353, joined to the group on
    its eth0 (so it hears multicast, and unicast sent to 5353).
    """
    capture = Capture(case.topology.client_listener(client))
    case.addCleanup(capture.close)
    return capture


def unicast_socket(case, client: str) -> Capture:
    """
    A capture on an ephemeral port of C{client}'s address (a legacy querier).
    """
    capture = Capture(case.topology.client_socket(client))
    case.addCleanup(capture.close)
    return capture


def answers(r: Received) -> list:
    return r.message.answers if r.message is not None else []


class IPTTLTests(NamespaceTestMixin, unittest.TestCase):
    """
    RFC 6762 §11: "All Multicast DNS responses (including responses sent
    via unicast) SHOULD be sent with IP TTL set to 255", and so are our
    queries (probes).
    """

    clients = ("a",)
    virtual = False
    timeout = 60

    @defer.inlineCallbacks
    def test_every_kind_of_packet_leaves_with_ttl_255(self):
        link = self.topology.links["a"]
        listener = multicast_listener(self, "a")
        mdns = yield start_service(self, "lab", [WEB])
        kinds: dict[str, list[Received]] = {}

        def from_us(r: Received) -> bool:
            return r.source == (link.host_ip, MDNS_PORT)

        # Probes (queries with an authority section) went out before the
        # registration fired; announcements as it fired.
        kinds["probe"] = listener.matching(
            lambda r: from_us(r) and not r.message.is_response and r.message.authorities
        )
        kinds["announcement"] = yield wait_until(
            lambda: listener.matching(
                lambda r: from_us(r) and r.multicast and r.message.is_response
                and any(a.rtype == TYPE_PTR and a.ttl > 0 for a in answers(r))
            ),
            what="an announcement",
        )

        # QU: our records were just multicast, so the reply is unicast, to
        # the asker's port 5353 (RFC 6762 §5.4).
        listener.sock.sendto(pack(questions=[Question(LAB, TYPE_A, unicast=True)])[0], (MDNS_GROUP, MDNS_PORT))
        kinds["QU reply"] = yield wait_until(
            lambda: listener.matching(
                lambda r: from_us(r) and r.destination == link.client_ip
                and [a.name for a in answers(r)] == [LAB]
            ),
            what="a unicast reply to the QU question",
        )

        # Legacy unicast, twice: the repeat is answered from the port's
        # reply cache, which sends on its own path.
        legacy = unicast_socket(self, "a")
        for ident in (1, 2, 3):
            legacy.sock.sendto(
                pack_one(ident=ident, questions=[Question(WEB.type_name, TYPE_PTR)]), (link.host_ip, MDNS_PORT)
            )
            yield wait_until(
                lambda: [r for r in legacy.read() if r.message is not None and r.message.id == ident],
                what=f"legacy reply {ident}",
            )
        kinds["legacy reply"] = legacy.read()

        # A multicast answer: asked (QM) until one comes; the answer to a
        # TXT question is the TXT alone, unlike an announcement.
        def txt_answer(r: Received) -> bool:
            return from_us(r) and r.multicast and [(a.name, a.rtype) for a in answers(r)] == [(WEB.name, TYPE_TXT)]

        def ask_txt():
            found = listener.matching(txt_answer)
            if not found:
                listener.sock.sendto(pack(questions=[Question(WEB.name, TYPE_TXT)])[0], (MDNS_GROUP, MDNS_PORT))
            return found

        kinds["multicast answer"] = yield wait_until(ask_txt, timeout=10, interval=0.5, what="a multicast answer")

        yield mdns.stopService()
        kinds["goodbye"] = yield wait_until(
            lambda: listener.matching(
                lambda r: from_us(r) and r.message.is_response and answers(r)
                and all(a.ttl == 0 for a in answers(r))
            ),
            what="goodbyes",
        )
        self.assertTrue(all(kinds.values()), {k: len(v) for k, v in kinds.items()})
        ttls = {kind: sorted({r.ttl for r in got}) for kind, got in kinds.items()}
        self.assertEqual(ttls, {kind: [IP_TTL] for kind in kinds})


STRANGER = name_from_text("stranger.local")
#: Where a sender off link A speaks from: an address of client a's eth0
#: on a subnet the host does not have on lana.
OFF_LINK = "10.50.0.2"


class IgnoredResponseTests(NamespaceTestMixin, unittest.TestCase):
    """
    Responses we must not believe: from a source port other than 5353
    (RFC 6762 §6: "silently ignored") or from a source that is not on the
    receiving link (§11).  Believed, such a response would be cached (a
    name resolves from it at once) and, naming our host with another
    address, would be a late conflict that sends us probing again (§9).
    Each test then sends the same response from an acceptable source, to
    show it would have been seen.
    """

    clients = ("a",)
    virtual = False
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.link = self.topology.links["a"]
        ip("addr", "add", f"{OFF_LINK}/24", "dev", "eth0", ns=self.link.client_ns)
        self.listener = multicast_listener(self, "a")
        self.mdns = yield start_service(self, "lab", [WEB])

    def sender(self, address: str, port: int) -> socket.socket:
        """
        A socket in client a's namespace that multicasts on eth0 from
        C{address}:C{port}.
        """
        with inside(self.link.client_ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
            sock.bind((address, port))
        self.addCleanup(sock.close)
        return sock

    def respond(self, sock: socket.socket, *records) -> None:
        for packet in pack(flags=0x8400, answers=list(records)):
            sock.sendto(packet, (MDNS_GROUP, MDNS_PORT))

    def resolved(self, name: str) -> defer.Deferred:
        """
        What our querier makes of C{name} on lana within a second: from its
        cache at once, else nothing (nobody answers its queries).
        """
        d = self.mdns.resolve_host(name, interface=self.link.host_ip, timeout=1.0)
        return d.addCallback(lambda found: sorted(a for addresses in found.values() for a in addresses))

    def our_probes(self) -> list[Received]:
        return self.listener.matching(
            lambda r: r.source == (self.link.host_ip, MDNS_PORT) and not r.message.is_response
            and any(a.name == LAB for a in r.message.authorities)
        )

    @defer.inlineCallbacks
    def check_not_cached(self, address: str, port: int):
        """
        A response from C{address}:C{port} is not cached; the same from
        client a's on-link address and port 5353 is.
        """
        self.respond(self.sender(address, port), a_record(STRANGER, "10.1.0.77", 120))
        self.assertEqual((yield self.resolved("stranger")), [], "cached")
        self.respond(self.sender(self.link.client_ip, MDNS_PORT), a_record(STRANGER, "10.1.0.77", 120))
        self.assertEqual((yield self.resolved("stranger")), ["10.1.0.77"])

    @defer.inlineCallbacks
    def check_no_conflict(self, address: str, port: int):
        """
        A response from C{address}:C{port} giving our host name another
        address sends us no probe and leaves us our name; the same from
        client a's on-link address and port 5353 sends us probing (§9).
        """
        probes = len(self.our_probes())
        self.respond(self.sender(address, port), a_record(LAB, "10.1.0.66", 120))
        with self.assertRaises(AssertionError, msg="probed again after the response"):
            yield wait_until(lambda: len(self.our_probes()) > probes, timeout=1.5, what="probe")
        self.assertEqual(self.mdns.hostname, "lab")
        self.respond(self.sender(self.link.client_ip, MDNS_PORT), a_record(LAB, "10.1.0.66", 120))
        yield wait_until(lambda: len(self.our_probes()) > probes, timeout=10, what="probe after the conflict")

    def test_source_port_not_5353_not_cached(self):
        """
        RFC 6762 §6: responses from a port other than 5353 are ignored.
        """
        return self.check_not_cached(self.link.client_ip, 40000)

    def test_source_port_not_5353_no_conflict(self):
        return self.check_no_conflict(self.link.client_ip, 40000)

    def test_off_link_source_not_cached(self):
        """
        RFC 6762 §11: a response whose source is not on the receiving
        link's subnets is ignored (it arrives on lana from 10.50.0.2).
        """
        return self.check_not_cached(OFF_LINK, MDNS_PORT)

    def test_off_link_source_no_conflict(self):
        return self.check_no_conflict(OFF_LINK, MDNS_PORT)


def many_services(count: int) -> list[ServiceInfo]:
    """
    C{count} services with TXT records of about 100 bytes each: together
    far more than one datagram on a small-MTU link.
    """
    return [
        ServiceInfo(
            f"Box {n:02d} on the long test bench in room 4", "_http._tcp", 8000 + n,
            {"path": f"/box/{n}", "model": "x" * 40, "serial": f"{n:08d}" * 4},
        )
        for n in range(count)
    ]


class MTUTests(NamespaceTestMixin, unittest.TestCase):
    """
    RFC 6762 §17: a message must fit the interface MTU (IP and UDP headers
    included).  On a veth link with a small MTU, with thirty services whose
    records together need several datagrams, every datagram we multicast
    (probes, announcements, answers, goodbyes) fits, and every record gets
    through in one datagram or another.
    """

    clients = ("a",)
    virtual = False
    timeout = 90

    def test_mtu_576(self):
        return self.check_mtu(576)

    def test_mtu_1280(self):
        return self.check_mtu(1280)

    @defer.inlineCallbacks
    def check_mtu(self, mtu: int):
        link = self.topology.links["a"]
        ip("link", "set", link.host_if, "mtu", str(mtu), ns=self.topology.host_ns)
        ip("link", "set", link.client_if, "mtu", str(mtu), ns=link.client_ns)
        services = many_services(30)
        listener = multicast_listener(self, "a")
        mdns = yield start_service(self, "lab", services)

        def ours(r: Received) -> bool:
            return r.source == (link.host_ip, MDNS_PORT) and r.multicast

        def records(got, live: bool) -> set:
            return {
                (a.name, a.rtype) for r in got for a in answers(r) if (a.ttl > 0) == live
            }

        expected = {(LAB, TYPE_A)}
        for s in services:
            expected |= {(WEB.type_name, TYPE_PTR), (s.name, TYPE_SRV), (s.name, TYPE_TXT)}
        instances = {s.name for s in services}

        def announced():
            got = listener.matching(lambda r: ours(r) and r.message.is_response)
            return expected <= records(got, live=True)

        yield wait_until(announced, timeout=20, what="every record announced")
        announced_ptrs = {
            tuple(a.rdata.label.label)
            for r in listener.matching(lambda r: ours(r) and r.message.is_response)
            for a in answers(r) if a.rtype == TYPE_PTR and a.name == HTTP and a.ttl > 0
        }
        self.assertEqual(announced_ptrs, instances)

        # A multicast answer: every PTR of the type, in answers, over
        # however many datagrams (asked again while the 1 s rate limit of
        # the announcements holds them back).
        def answer_ptrs() -> set:
            return {
                tuple(a.rdata.label.label)
                for r in listener.matching(
                    lambda r: ours(r) and r.message.is_response and answers(r)
                    and all(a.rtype == TYPE_PTR and a.name == HTTP for a in answers(r))
                )
                for a in answers(r)
            }

        def ask():
            found = answer_ptrs()
            if found != instances:
                listener.sock.sendto(pack(questions=[Question(HTTP, TYPE_PTR)])[0], (MDNS_GROUP, MDNS_PORT))
            return found == instances

        yield wait_until(ask, timeout=15, interval=0.7, what="every PTR in answers")

        yield mdns.stopService()
        yield wait_until(
            lambda: expected <= records(listener.matching(ours), live=False),
            what="a goodbye for every record",
        )
        sent = listener.matching(lambda r: r.source == (link.host_ip, MDNS_PORT))
        phases = {
            "probes": [r for r in sent if not r.message.is_response],
            "announcements": [
                r for r in sent if r.message.is_response and answers(r)
                and all(a.ttl > 0 for a in answers(r)) and any(a.rtype != TYPE_PTR for a in answers(r))
            ],
            "answers": [
                r for r in sent if r.message.is_response and answers(r)
                and all(a.rtype == TYPE_PTR and a.name == HTTP for a in answers(r))
            ],
            "goodbyes": [r for r in sent if answers(r) and all(a.ttl == 0 for a in answers(r))],
        }
        for phase, got in phases.items():
            # Each phase means something only if it needed more than one
            # datagram; then each datagram must fit.
            self.assertGreater(len(got), 1, phase)
            self.assertGreater(sum(len(r.data) for r in got), mtu, phase)
            too_big = [r for r in got if len(r.data) + IP_UDP_OVERHEAD > mtu]
            self.assertEqual(too_big, [], f"{phase}: of {len(got)} datagrams")
        self.assertEqual(len(sent), sum(map(len, phases.values())), "every datagram checked")
