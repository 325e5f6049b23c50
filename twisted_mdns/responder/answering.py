# -*- test-case-name: tests.test_responder_answering -*-
"""
Answering queries: first a pure choice of answers and additionals, then
routing (multicast, unicast, legacy) and aggregation.

The choice (L{choose_answers}), RFC 6762:
 - §6: the records of the receiving link's view that answer a question;
   §6.1: an NSEC for a name we own that lacks the type asked;
 - §7.1: known-answer suppression (the querier has it with at least half
   our TTL left);
 - RFC 6763 §12: additionals (PTR -> SRV, TXT and addresses; SRV ->
   addresses).

The routing (L{Answerer}):
 - §6.7: a query from a port other than 5353 is legacy unicast
   (L{twisted_mdns.responder.legacy});
 - §5.5: a query sent straight to us from 5353 is answered by unicast;
 - §5.4: a QU question is answered by unicast unless the record was not
   multicast on that link in the last quarter of its TTL;
 - §6: a record is multicast at most once a second per link and family
   (250 ms when defending against a probe); unique answers go at once,
   answers with shared records after 20-120 ms, aggregated per link and
   family.  A multicast answer goes back over the family its query came
   over (a dual-stack querier asks over both and hears both; an
   IPv6-only one hears the IPv6 copy), always with the records of both
   families (§6.2);
 - §7.4: a pending answer someone else multicast meanwhile (with at least
   half our TTL) is dropped.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

from twisted_mdns.constants import (
    CLASS_IN,
    MDNS_PORT,
    PROBE_DEFENSE_RATE_LIMIT,
    RATE_LIMIT,
    SHARED_DELAY,
    TYPE_ANY,
    TYPE_NSEC,
)
from twisted_mdns.link import Link, Pending
from twisted_mdns.message import Message, Record
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.records import InterfaceRecords
from twisted_mdns.responder.legacy import LegacyResponder
from twisted_mdns.responder.shared import Phase, Shared


class Choice(NamedTuple):
    """
    What a query asks of a view: answers (each with whether any question
    asking for it had the QU bit), additionals, and how many answers the
    querier's known answers suppressed.
    """

    answers: dict[Record, bool]
    additionals: list[Record]
    suppressed: int


def choose_answers(message: Message, view: InterfaceRecords) -> Choice:
    """
    The answers and additionals to C{message} from C{view}: a pure
    function of the two (RFC 6762 §6, §6.1, §7.1; RFC 6763 §12).
    """
    answers: dict[Record, bool] = {}  # record -> asked with QU
    for q in message.questions:
        if q.qclass not in (CLASS_IN, TYPE_ANY):
            continue
        found = view.lookup(q.key, q.qtype)
        if not found and q.qtype != TYPE_NSEC:
            nsec = view.nsec_for(q.key)
            if nsec is not None:
                found = [nsec]
        for record in found:
            answers[record] = answers.get(record, False) or q.unicast
    suppressed = 0
    if answers and message.answers:
        known = {r.identity: r.ttl for r in message.answers}
        for record in list(answers):
            ttl = known.get(record.identity)
            if ttl is not None and ttl >= record.ttl / 2:
                del answers[record]
                suppressed += 1
    additionals: dict[Record, None] = {}
    for record in answers:
        for extra in view.additional_for(record):
            if extra not in answers:
                additionals[extra] = None
    return Choice(answers, list(additionals), suppressed)


class Answerer(Phase):
    """
    Routes chosen answers and aggregates delayed multicast ones per link.
    """

    def __init__(self, shared: Shared, legacy: LegacyResponder) -> None:
        super().__init__(shared)
        self.legacy = legacy

    def answer(self, message: Message, source: tuple[str, int], context: InterfaceContext, link: Link) -> None:
        choice = choose_answers(message, link.view)
        if choice.suppressed:
            self.counters["suppressed.known-answer"] += choice.suppressed
        answers, additionals = choice.answers, choice.additionals
        if not answers:
            return
        if source[1] != MDNS_PORT:
            self.legacy.reply(message, source, context, list(answers), additionals)
            return
        counters = self.counters
        if not context.multicast:
            # §5.5: a query sent straight to us, from port 5353: unicast back.
            packets = self.sender.pack_response(list(answers), additionals, link, context.family)
            self.sender.send(link.index, packets, tuple(source), context.destination)
            counters["answered.unicast"] += 1
            counters["answered"] += 1
            return
        is_probe = bool(message.authorities)
        family = context.family
        owner = self.claims.owner
        now = self.clock.seconds()
        unicast, multicast = [], []
        for record, qu in answers.items():
            last = link.last_multicast(record, family, owner(record))
            recently = last is not None and now - last < record.ttl / 4
            if qu and recently and not is_probe:
                unicast.append(record)
            else:
                multicast.append(record)
        if unicast:
            extra = [r for r in additionals if r not in unicast]
            packets = self.sender.pack_response(unicast, extra, link, context.family)
            self.sender.send(link.index, packets, tuple(source), self._any(context))
            counters["answered.unicast"] += 1
        allowed = []
        if multicast:
            limit = PROBE_DEFENSE_RATE_LIMIT if is_probe else RATE_LIMIT
            for record in multicast:
                last = link.last_multicast(record, family, owner(record))
                if last is not None and now - last < limit:
                    counters["suppressed.rate-limit"] += 1
                    continue
                allowed.append(record)
            if allowed:
                shared = any(not r.cache_flush for r in allowed)
                self._queue_multicast(link, context.family, allowed, additionals, shared)
        if unicast or allowed:
            counters["answered"] += 1

    @staticmethod
    def _any(context: InterfaceContext) -> str:
        """
        "Any of the link's addresses" in the family of C{context}.
        """
        return "::" if context.family == socket.AF_INET6 else "0.0.0.0"

    def _queue_multicast(self, link: Link, family: int, answers: list[Record], additionals: list[Record], shared: bool) -> None:
        """
        §6: unique answers go at once; when any answer is shared, wait
        20-120 ms so other responders' answers can suppress ours (§7.4)
        and several queries' answers travel together.
        """
        if not shared:
            self.sender.multicast(link, answers, [r for r in additionals if r not in answers], family)
            self.counters["answered.multicast"] += 1
            return
        half = link.family(family)
        pending = half.pending
        if pending is None:
            pending = half.pending = Pending()
            pending.call = link.timers.later(self.random.uniform(*SHARED_DELAY), self._flush, link, family)
        for record in answers:
            pending.answers[record] = None
        for record in additionals:
            pending.additionals[record] = None

    def _flush(self, link: Link, family: int) -> None:
        half = link.family(family)
        pending, half.pending = half.pending, None
        if pending is None or not pending.answers or not self.running():
            return
        answers = list(pending.answers)
        additionals = [r for r in pending.additionals if r not in pending.answers]
        self.sender.multicast(link, answers, additionals, family)
        self.counters["answered.multicast"] += 1

    def suppress_duplicates(self, message: Message, link: Link, family: int = socket.AF_INET) -> None:
        """
        §7.4 duplicate answer suppression: someone multicast an answer we
        were about to send, with at least half our TTL.
        """
        half = link.families.get(family)
        pending = half.pending if half is not None else None
        if pending is None:
            return
        answers = pending.answers
        for record in message.answers:
            if record.ttl > 0 and record in answers:
                ours = next(r for r in answers if r == record)
                if record.ttl >= ours.ttl / 2:
                    del answers[ours]
                    self.counters["suppressed.duplicate-answer"] += 1
