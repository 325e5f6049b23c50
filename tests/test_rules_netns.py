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
 - §17: multicast answers, announcements and goodbyes fit the interface
   MTU, split over several datagrams with nothing lost.
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
