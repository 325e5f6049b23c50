# -*- test-case-name: tests.test_responder_legacy -*-
"""
Legacy unicast (RFC 6762 §6.7), and the reply store that makes it fast.

§6.7: a query from a port other than 5353 comes from a plain DNS resolver
(dig, a libc stub): answer by unicast to its port, echo its id and
question, TTLs at most 10 s, no cache-flush bit.  §11 (and this project,
stricter): never answer a source that is not on the receiving link.

Such clients repeat themselves, so each reply is remembered in
L{LegacyReplies}, the one store of legacy replies, owned here:

 - by exact query bytes (everything after the id), which the port's
   reader itself consults (L{twisted_mdns.pktinfo.ReplyStore} is the
   seam): an exact repeat from a source already judged on-link is
   answered there, before any context, protocol or parsing;
 - by parsed question (link, case-folded name, type, class, question
   length), which L{LegacyResponder.fast_path} consults before the full
   parse for the same question in other bytes (another id is the usual
   difference, or other letter case).

The store forgets every reply whenever what we publish changes, and its
on-link verdicts whenever a link changes.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from twisted_mdns.constants import (
    CLASS_MASK,
    FLAG_AA,
    FLAG_QR,
    LEGACY_TTL,
    MDNS_PORT,
    OPCODE_MASK,
    TYPE_OPT,
)
from twisted_mdns.message import HEADER, Message, MessageError, Question, Record, pack_one
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.protocol import source_on_link
from twisted_mdns.responder.sending import limit_for

#: Replies (of each kind) and on-link verdicts kept at most: every type
#: asked of a name we own has a reply (an NSEC), so the keys are the
#: askers' to choose.
MAX_LEGACY_CACHE = 4096

_QTAIL = struct.Struct("!HH")
#: QR and opcode: a query has both clear (RFC 1035 §4.1.1).
_QR_OPCODE = FLAG_QR | OPCODE_MASK


class LegacyReplies:
    """
    The legacy reply store: see the module docstring.  Provides
    L{twisted_mdns.pktinfo.ReplyStore} for the port's reader.

    @ivar replies: C{(link index, query[2:]) -> reply[2:]}: exact repeats.
    @ivar sources: C{(link index, source ip) -> bool}: the §11 on-link
        verdict, judged once per source.
    @ivar questions: C{(link index, name key, qtype, qclass, end of
        question) -> (answer count, additional count, reply after the
        question)}.
    """

    exclude_port = MDNS_PORT

    def __init__(self, counters: Counter[str]) -> None:
        self.counters = counters
        self.replies: dict[tuple[int, bytes], bytes] = {}
        self.sources: dict[tuple[int, str], bool] = {}
        self.questions: dict[tuple, tuple[int, int, bytes]] = {}

    def __len__(self) -> int:
        return len(self.replies) + len(self.questions)

    def served(self, sent: bool) -> None:
        """
        The port's reader answered a query from L{replies}: count it as the
        full path would have.
        """
        counters = self.counters
        counters["received"] += 1
        if not sent:
            counters["transport.errors.send"] += 1
            return
        counters["transport.sent"] += 1
        counters["answered.legacy"] += 1
        counters["answered"] += 1

    def forget_replies(self) -> None:
        """
        What we publish changed: no stored reply is true any more.
        """
        if self.replies or self.questions:
            self.replies.clear()
            self.questions.clear()

    def forget(self) -> None:
        """
        A link changed: forget replies and on-link verdicts.
        """
        self.forget_replies()
        self.sources.clear()

    def on_link(self, address: str, context: InterfaceContext) -> bool:
        """
        §11 on-link check, cached per (link, source): the legacy path
        answers thousands of queries a second from a few sources, and the
        port's reader reads the same verdicts.
        """
        key = (context.index, address)
        hit = self.sources.get(key)
        if hit is None:
            if len(self.sources) > MAX_LEGACY_CACHE:
                self.sources.clear()
            hit = self.sources[key] = source_on_link(address, context)
        return hit

    def remember(self, key: tuple, answers: int, additionals: int, tail: bytes) -> None:
        if len(self.questions) >= MAX_LEGACY_CACHE:
            self.questions.clear()
            self.counters["legacy-cache.cleared"] += 1
        self.questions[key] = (answers, additionals, tail)

    def remember_exact(self, index: int, query: bytes, reply: bytes) -> None:
        if len(self.replies) < MAX_LEGACY_CACHE:
            self.replies[(index, query[2:])] = reply[2:]


def _legacy(record: Record) -> Record:
    return record.with_ttl(min(record.ttl, LEGACY_TTL)).with_flush(False)


class LegacyResponder:
    """
    Answers legacy unicast queries, from the store when it can.
    """

    def __init__(self, transport: object, counters: Counter[str]) -> None:
        self.transport = transport
        self.counters = counters
        self.store = LegacyReplies(counters)

    def reply(self, message: Message, source: tuple[str, int], context: InterfaceContext, answers: list[Record], additionals: list[Record]) -> None:
        """
        §6.7: echo the id and the question, TTL at most 10 s, no
        cache-flush bit, unicast to the querier's own port; and remember
        the reply so the next identical question is answered without
        parsing.
        """
        store = self.store
        if not store.on_link(source[0], context):
            self.counters["dropped.off-link"] += 1
            return
        try:
            packet = pack_one(
                ident=message.id,
                flags=FLAG_QR | FLAG_AA,
                questions=[Question(q.name, q.qtype, False, q.qclass) for q in message.questions],
                answers=[_legacy(r) for r in answers],
                additionals=[_legacy(r) for r in additionals],
                # The smaller of the link's families: the reply is stored
                # and may be replayed to the same question over the other.
                limit=limit_for(context.interface),
            )
        except MessageError:
            # §6.7 says echo the question section; one that cannot be echoed
            # in a datagram on this link is not answered.
            self.counters["dropped.legacy-too-large"] += 1
            return
        self._send(packet, source, context)
        if len(message.questions) == 1 and not message.answers:
            q = message.questions[0]
            qlen = HEADER.size + sum(len(label) + 1 for label in q.name) + 1 + _QTAIL.size
            _, _, _, an, ns, ar = HEADER.unpack_from(packet)
            if ns == 0:
                store.remember((context.index, q.key, q.qtype, q.qclass, qlen), an, ar, packet[qlen:])

    def fast_path(self, data: bytes, source: tuple[str, int], context: InterfaceContext) -> bool:
        """
        Answer a repeated legacy unicast question from the store, without
        parsing: the throughput path.  Anything unusual (several questions,
        known answers, compression in the question, a question not seen
        before) returns False and takes the full path.
        """
        if source[1] == MDNS_PORT or len(data) < 17:
            return False
        store = self.store
        # The same bytes as before (the usual case: a client repeating
        # itself, from a source the port's reader has not judged yet).
        reply = store.replies.get((context.index, data[2:]))
        if reply is not None:
            return self._send(data[:2] + reply, source, context)
        ident, flags, qd, an, ns, ar = HEADER.unpack_from(data)
        if flags & _QR_OPCODE or qd != 1 or an or ns or ar > 1:
            return False
        offset = HEADER.size
        labels = []
        length = len(data)
        while True:
            if offset >= length:
                return False
            n = data[offset]
            if n == 0:
                offset += 1
                break
            if n > 63:
                return False
            labels.append(data[offset + 1 : offset + 1 + n].lower())
            offset += 1 + n
        if offset + _QTAIL.size > length:
            return False
        qtype, qclass = _QTAIL.unpack_from(data, offset)
        qend = offset + _QTAIL.size
        if ar:
            # Exactly one complete OPT record (EDNS0, as dig sends) may
            # follow; anything else is for the parser to judge.
            if (
                length < qend + 11
                or data[qend] != 0
                or int.from_bytes(data[qend + 1 : qend + 3], "big") != TYPE_OPT
                or qend + 11 + int.from_bytes(data[qend + 9 : qend + 11], "big") != length
            ):
                return False
        qclass &= CLASS_MASK
        cached = store.questions.get((context.index, tuple(labels), qtype, qclass, qend))
        if cached is None:
            return False
        an_count, ar_count, tail = cached
        packet = HEADER.pack(ident, FLAG_QR | FLAG_AA, 1, an_count, 0, ar_count) + data[HEADER.size:offset] + _QTAIL.pack(qtype, qclass) + tail
        if ar == 0 and qend == length:
            store.remember_exact(context.index, data, packet)
        return self._send(packet, source, context)

    def _send(self, packet: bytes, source: tuple[str, int], context: InterfaceContext) -> bool:
        if not self.store.on_link(source[0], context):
            self.counters["dropped.off-link"] += 1
            return True
        if not context.multicast:
            dest_source = context.destination
        else:
            dest_source = "::" if context.family == socket.AF_INET6 else "0.0.0.0"
        if not self.transport.send(packet, context.index, source, dest_source):  # type: ignore[attr-defined]
            self.counters["errors.send"] += 1
        self.counters["answered.legacy"] += 1
        self.counters["answered"] += 1
        return True
