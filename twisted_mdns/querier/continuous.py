# -*- test-case-name: tests.test_querier_continuous -*-
"""
Asking on one link: continuous queries, known answers and duplicate
question suppression.

Everything here belongs to one link and is given what it needs (a clock, a
random source, the link's cache, a function that sends a datagram on the
link), never the querier.  The rules applied:

 - RFC 6762 §5.2 continuous querying: the first query after a random
   20-120 ms, then intervals of 1 s, 2 s, 4 s... capped at 60 minutes
   (L{ContinuousQueries}); refresh queries for watched records at
   80/85/90/95 % of their TTL (the cache says when; L{send_questions}).
 - RFC 6762 §5.4: the first query of a series is QU when nothing is cached
   for it.
 - RFC 6762 §7.1 known-answer lists, RFC 6762 §7.2 split over several
   packets with TC, RFC 6762 §17 under the link's MTU (L{send_questions}).
 - RFC 6762 §7.3 duplicate question suppression: another host's QM question
   whose known answers hold nothing ours would not counts as our own
   (L{ContinuousQueries.heard}, L{RecentQuestions}).

Both address families of a link are one link here.  Questions go out
once per link; the transport multicasts the datagram on every family the
link runs (L{twisted_mdns.querier.links.QuerierTransport}), so packets are
sized for the smaller of the two payloads (IPv6 headers are 20 bytes
larger, RFC 6762 §17: L{query_packet_limit}).  A dual-stack host sends
its query over IPv4 and IPv6 alike: the two copies are one query, so a
query heard again within L{SAME_QUERY_WINDOW} of the last one counted does
not advance the backoff a second time.
"""

from __future__ import annotations

import random as _random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_mdns.cache import RecordCache
from twisted_mdns.constants import IP_UDP_OVERHEAD, IPV6_UDP_OVERHEAD
from twisted_mdns.message import (
    Message,
    MessageError,
    Name,
    Question,
    Record,
    name_key,
    name_to_text,
    pack,
    packet_limit,
    type_name,
)
from twisted_mdns.netif import NetworkInterface

log = Logger()

#: RFC 6762 §5.2: "the interval between the first two queries MUST be at
#: least one second".
FIRST_INTERVAL = 1.0
#: RFC 6762 §5.2: "When the interval between queries reaches or exceeds 60
#: minutes, a querier MAY cap the interval to a maximum of 60 minutes".
MAX_INTERVAL = 3600.0
#: RFC 6762 §5.2: the first query of a series is delayed by 20-120 ms.
FIRST_DELAY = (0.020, 0.120)
#: How many recently asked questions a link remembers for RFC 6762 §7.3.
RECENT_BOUND = 256
#: Two transmissions of one question on one link less than this apart are
#: one query (the IPv4 and IPv6 copies a dual-stack host sends, or another
#: host's query just after ours): far below the 1 s that RFC 6762 §5.2 puts
#: between two of a series, far above the spread of copies sent together.
SAME_QUERY_WINDOW = 0.25

_EPSILON = 1e-6

#: Sends one datagram on the link; true if it went out.
DatagramSender = Callable[[bytes], bool]
#: Sends questions on the link with their known answers; the datagram count.
QuestionSender = Callable[[Sequence[Question]], int]


def known_answers(cache: RecordCache, questions: Sequence[Question]) -> list[Record]:
    """
    The known-answer list for C{questions} (RFC 6762 §7.1: cached answers
    with more than half their TTL left, each once).
    """
    known: list[Record] = []
    seen: set[tuple] = set()
    for q in questions:
        for record in cache.known_answers(q):
            if record.identity not in seen:
                seen.add(record.identity)
                known.append(record)
    return known


def query_packet_limit(interface: NetworkInterface) -> int:
    """
    The largest query datagram for C{interface} (RFC 6762 §17): one packet
    goes out on both families of a dual-stack link, so a link with IPv6
    addresses gets the IPv6 payload (the MTU less 48 bytes, not 28).
    """
    limit = packet_limit(interface.mtu)
    if interface.ipv6:
        mtu = interface.mtu or limit + IP_UDP_OVERHEAD
        limit = min(limit, max(512, mtu - IPV6_UDP_OVERHEAD))
    return limit


def send_questions(
    interface: NetworkInterface,
    cache: RecordCache,
    send: DatagramSender,
    counters: Counter,
    questions: Sequence[Question],
) -> int:
    """
    Send C{questions} on one link with their known answers (RFC 6762
    §7.1), split under the MTU (§17) with TC on all but the last packet
    (§7.2).

    @return: the number of datagrams sent.
    """
    if not questions:
        return 0
    known = known_answers(cache, questions)
    try:
        packets = pack(questions=questions, answers=known, limit=query_packet_limit(interface))
    except MessageError:
        if len(questions) == 1:
            log.warn("question too large to send: {q!r}", q=questions[0])
            return 0
        half = len(questions) // 2
        return send_questions(interface, cache, send, counters, questions[:half]) + (
            send_questions(interface, cache, send, counters, questions[half:])
        )
    sent = sum(1 for packet in packets if send(packet))
    counters["queries.sent"] += sent
    counters["questions.sent"] += len(questions)
    counters["known-answers.sent"] += len(known)
    log.debug(
        "{iface}: asked {questions} with {known} known answer(s) in {n} packet(s)",
        iface=interface.name,
        questions=", ".join(
            f"{name_to_text(q.name)}/{type_name(q.qtype)}{' QU' if q.unicast else ''}"
            for q in questions
        ),
        known=len(known), n=len(packets),
    )
    return sent


def covers(theirs: Message, question: Question, ours: Sequence[Record]) -> bool:
    """
    RFC 6762 §7.3: does the known-answer section of C{theirs} hold nothing
    that our own list for C{question} (C{ours}) would not?
    """
    mine = {r.identity for r in ours}
    return all(r.identity in mine for r in theirs.answers if question.matches(r))


class Query:
    """
    One question asked continuously on one link.

    @ivar interval: the gap after the next transmission.
    @ivar due: when the next one goes out.
    @ivar sent: how many went out (or counted as such, RFC 6762 §7.3).
    @ivar last: when the last one went out (or was counted as such).
    @ivar refs: how many asked for it; it stops at zero.
    """

    __slots__ = ("name", "qtype", "refs", "interval", "due", "sent", "last")

    def __init__(self, name: Name, qtype: int, due: float) -> None:
        self.name = name
        self.qtype = qtype
        self.refs = 0
        self.interval = FIRST_INTERVAL
        self.due = due
        self.sent = 0
        self.last = float("-inf")

    def advance(self, now: float) -> None:
        """
        Bookkeeping for "sent at C{now}": RFC 6762 §5.2 "the intervals
        between successive queries MUST increase by at least a factor of
        two", capped at 60 minutes.
        """
        self.sent += 1
        self.last = now
        self.due = now + self.interval
        self.interval = min(self.interval * 2, MAX_INTERVAL)


@dataclass(eq=False)
class ContinuousQueries:
    """
    The continuous queries of one link, on one timer.  Questions due
    together go out in one message.

    @ivar cache: the link's cache, for the known answers (RFC 6762 §7.1).
    @ivar send: sends questions on the link.
    @ivar unicast_first: whether the first query of a series is QU (RFC
        6762 §5.4).
    """

    clock: IReactorTime
    random: _random.Random
    cache: RecordCache
    send: QuestionSender
    counters: Counter
    unicast_first: bool = True
    _queries: dict[tuple[Name, int], Query] = field(default_factory=dict, init=False, repr=False)
    _timer: IDelayedCall | None = field(default=None, init=False, repr=False)
    _timer_at: float = field(default=0.0, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._queries)

    def asking(self, name: Name, qtype: int) -> bool:
        """
        Is C{(name, qtype)} asked continuously now?
        """
        return (name_key(name), qtype) in self._queries

    def ask(self, name: Name, qtype: int) -> None:
        """
        Ask C{(name, qtype)} until as many L{release} calls as L{ask} calls
        came.
        """
        key = (name_key(name), qtype)
        query = self._queries.get(key)
        if query is None:
            now = self.clock.seconds()
            # Questions started together share the first, delayed,
            # transmission: one message rather than several.
            waiting = [q.due for q in self._queries.values() if q.sent == 0 and q.due >= now]
            due = min(waiting) if waiting else now + self.random.uniform(*FIRST_DELAY)
            query = self._queries[key] = Query(name, qtype, due)
            self._arm()
        query.refs += 1

    def release(self, name: Name, qtype: int) -> None:
        """
        Undo one L{ask}; the question stops with the last.
        """
        key = (name_key(name), qtype)
        query = self._queries.get(key)
        if query is None:
            return
        query.refs -= 1
        if query.refs <= 0:
            del self._queries[key]
            self._arm()

    def heard(self, message: Message, question: Question) -> bool:
        """
        Another host asked C{question} (QM, class IN) in C{message}.

        RFC 6762 §7.3: "If a host is planning to transmit (or has just
        transmitted) a query, and it sees another host on the network send
        a query containing the same 'QM' question, and the Known-Answer
        Section of that query does not contain any records that this host
        would not also put in its own Known-Answer Section, then this host
        SHOULD treat its own query as having been sent": the next
        transmission is skipped and the backoff goes on from now.  A query
        heard within L{SAME_QUERY_WINDOW} of our last (sent or counted) is
        the same round (a dual-stack host's second copy, over the other
        family): it counts, but advances nothing.

        @return: whether one of our queries counted it as its own.
        """
        query = self._queries.get((question.key, question.qtype))
        if query is None:
            return False
        ours = self.cache.known_answers(Question(query.name, query.qtype))
        if not covers(message, question, ours):
            return False
        now = self.clock.seconds()
        if now - query.last < SAME_QUERY_WINDOW:
            self.counters["queries.same-round"] += 1
            return True
        query.advance(now)
        self.counters["queries.suppressed"] += 1
        self._arm()
        return True

    def _arm(self) -> None:
        if not self._queries:
            self.close()
            return
        when = min(q.due for q in self._queries.values())
        timer = self._timer
        if timer is not None and timer.active():
            if abs(self._timer_at - when) < _EPSILON:
                return
            timer.cancel()
        self._timer_at = when
        self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        due = [q for q in self._queries.values() if q.due <= now + _EPSILON]
        if due:
            questions = []
            for q in due:
                # RFC 6762 §5.4: the first question of a series asks for a
                # unicast response when we have nothing for it; later ones
                # are QM so that every cache on the link hears the answers.
                unicast = self.unicast_first and q.sent == 0 and not self.cache.get(q.name, q.qtype)
                questions.append(Question(q.name, q.qtype, unicast))
                q.advance(now)
            self.send(questions)
        self._arm()

    def close(self) -> None:
        """
        Stop the timer (the link is going, or nothing is asked).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class RecentQuestions:
    """
    The QM questions put on one link in the last second, by us or by
    another host, for one-shot questions (L{twisted_mdns.querier.Querier.ask})
    to follow RFC 6762 §7.3 and §5.2 as continuous queries do.

    Bounded: past L{RECENT_BOUND} questions the stale ones are dropped, and
    if all are fresh, all are (forgetting only costs one more query).
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        # (folded name, type) -> (when, their message; None when ours)
        self._heard: dict[tuple[Name, int], tuple[float, Message | None]] = {}

    def __len__(self) -> int:
        return len(self._heard)

    def note(self, question: Question, message: Message | None) -> None:
        """
        C{question} went out now: in another host's C{message}, or ours
        (C{None}).
        """
        heard = self._heard
        if len(heard) >= RECENT_BOUND:
            horizon = self.clock.seconds() - FIRST_INTERVAL
            fresh = {k: v for k, v in heard.items() if v[0] > horizon}
            heard = self._heard = fresh if len(fresh) < RECENT_BOUND else {}
        heard[(question.key, question.qtype)] = (self.clock.seconds(), message)

    def asked_by_us(self, key: Name, qtype: int) -> bool:
        """
        Did we ourselves ask C{(key, qtype)} (a folded name) lately, within
        the bound of what is remembered?  (A one-shot L{QuerierLink.ask}
        waits for its answer in the cache.)
        """
        found = self._heard.get((key, qtype))
        return found is not None and found[1] is None

    def answered_for(self, question: Question, ours: Sequence[Record]) -> bool:
        """
        Should our own C{question} be treated as sent already?  Yes when
        the same QM question went out less than a second ago (RFC 6762
        §5.2: at least one second between two of the same), ours, or
        another host's whose known answers hold nothing that C{ours} does
        not (§7.3).
        """
        found = self._heard.get((question.key, question.qtype))
        if found is None or self.clock.seconds() - found[0] >= FIRST_INTERVAL:
            return False
        when, theirs = found
        return theirs is None or covers(theirs, question, ours)
