# -*- test-case-name: tests.test_responder_truncated -*-
"""
Truncated queries (RFC 6762 §7.2).

A query with the TC bit set has more known answers to come in the
following packets: hold it 400-500 ms, merge what follows from the same
source, then answer.  Only a query asking for something we hold is held:
for any other there is no answer to wait for.  The deadline is the first packet's (more TC packets
do not extend it), and what is held is bounded: a querier that keeps
sending TC packets cannot make us hold its records, or wait, for ever.
"""

from __future__ import annotations

from typing import Callable

from twisted_mdns.constants import FLAG_TC, MDNS_PORT, TRUNCATED_WAIT
from twisted_mdns.link import HeldQuery, Link
from twisted_mdns.message import Message
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.responder.shared import Phase, Shared

#: At most this many sources held per link...
MAX_HELD_TRUNCATED = 256
#: ...and this many known answers per held query.
MAX_HELD_KNOWN_ANSWERS = 2000

Answer = Callable[[Message, tuple[str, int], InterfaceContext, Link], None]


class TruncatedQueries(Phase):
    """
    Holds truncated queries on their link (L{Link.held}) until their known
    answers are complete, then hands them to C{answer}.
    """

    #: Class attributes, so a test may lower them on one instance.
    max_sources = MAX_HELD_TRUNCATED
    max_known_answers = MAX_HELD_KNOWN_ANSWERS

    def __init__(self, shared: Shared, answer: Answer) -> None:
        super().__init__(shared)
        self.answer = answer

    def received(self, message: Message, source: tuple[str, int], context: InterfaceContext, link: Link) -> Message | None:
        """
        Take a query: hold it when truncated; merge it into the query held
        for its source when it continues one.

        @return: the query to answer now, or C{None} while held.
        """
        key = (source[0], source[1])
        if message.truncated and source[1] == MDNS_PORT:
            if key not in link.held and not self._answerable(message, link):
                # Nothing of ours is asked: no answer to hold back, and its
                # known answers (this packet's and the next ones') need
                # never be read.  On a busy LAN most long browses are so.
                self.counters["truncated.not-ours"] += 1
                return None
            self._hold(message, key, context, link)
            return None
        earlier = link.held.pop(key, None)
        if earlier is None:
            return message
        # The continuation of a truncated query.
        link.timers.cancel(earlier.call)
        first = earlier.message
        return Message(
            first.id, first.flags & ~FLAG_TC, first.questions,
            first.answers + message.answers, first.authorities, first.additionals,
        )

    @staticmethod
    def _answerable(message: Message, link: Link) -> bool:
        """
        Does one of C{message}'s questions name something this link's view
        holds (a record, or an NSEC for a name we own)?  The known answers
        are not read for it.
        """
        view = link.view
        for q in message.questions:
            if view.lookup(q.key, q.qtype) or view.nsec_for(q.key) is not None:
                return True
        return False

    def _hold(self, message: Message, key: tuple[str, int], context: InterfaceContext, link: Link) -> None:
        earlier = link.held.get(key)
        if earlier is not None:
            first = earlier.message
            known = first.answers + message.answers
            if len(known) > self.max_known_answers:
                self.counters["dropped.known-answers-over-limit"] += 1
                known = known[: self.max_known_answers]
            earlier.message = Message(
                first.id, first.flags, first.questions or message.questions,
                known, first.authorities, first.additionals,
            )
            return
        if len(link.held) >= self.max_sources:
            self.counters["dropped.truncated-over-limit"] += 1
            return
        held = link.held[key] = HeldQuery(message, context, None)
        held.call = link.timers.later(self.random.uniform(*TRUNCATED_WAIT), self._expired, link, key)

    def _expired(self, link: Link, key: tuple[str, int]) -> None:
        held = link.held.pop(key, None)
        if held is not None and self.running():
            self.answer(held.message, key, held.context, link)

    def holding(self, link: Link) -> dict[tuple[str, int], Message]:
        """
        What is held on C{link}, by source (for tests and curious users).
        """
        return {key: held.message for key, held in link.held.items()}
