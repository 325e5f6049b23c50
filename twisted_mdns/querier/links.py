# -*- test-case-name: tests.test_querier_engine -*-
"""
The querier's state on one link, in one object.

RFC 6762 §14 makes every link its own namespace: what was heard on eth0
says nothing about wlan0.  So a L{QuerierLink} holds everything the querier
keeps for one link (its cache, its continuous queries, the questions
recently asked there) and goes away whole, timers included, with the link.
It is keyed by interface index, which names the link whatever the address
family: a link's IPv4 and IPv6 halves share one cache (a record heard over
both is one record).
L{Interest} is what one resolution or browser asks and watches on one
link, released at once.
"""

from __future__ import annotations

import random as _random
from collections import Counter
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_mdns.cache import RecordCache
from twisted_mdns.constants import CLASS_IN, TYPE_PTR, TYPE_SRV
from twisted_mdns.dnsvalues import wire_name
from twisted_mdns.message import Message, Name, Question, Record, name_key, name_to_text, type_name
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.querier.continuous import (
    ContinuousQueries,
    DatagramSender,
    RecentQuestions,
    send_questions,
)

log = Logger()


class QuerierTransport(Protocol):
    """
    What the querier needs of a transport: the seam between asking and
    sending.  L{twisted_mdns.transport.InterfaceTransport} provides it;
    tests give a fake.

    The querier only ever multicasts, and never says which family: a
    question is a question on the I{link} (RFC 6762 §14), whichever family
    carries it, and its answers land in the link's one cache whichever
    family carries them back.  Choosing the families is the transport's
    job, so a transport with IPv4 ports only keeps the querier exactly as
    it was.

    @ivar interfaces: the links the transport runs on, by interface index.
    """

    @property
    def interfaces(self) -> Mapping[int, NetworkInterface]:
        """
        The links the transport runs on, by interface index.
        """

    def send(
        self,
        datagram: bytes,
        interface: NetworkInterface | int,
        destination: tuple | None = None,
    ) -> bool:
        """
        Send C{datagram} on the link C{interface} (an index or the
        interface).

        @param destination: C{None}: multicast on every family the link
            runs, to 224.0.0.251:5353 on its IPv4 port and to ff02::fb:5353
            on its IPv6 port, each pinned to the link.  Otherwise a unicast
            destination, C{(host, port)} or an IPv6 C{(host, port, flowinfo,
            scope_id)}, sent on the port of its own family.
        @return: whether it left on at least one family; a link or family
            that cannot send is counted and logged by the transport, never
            raised.
        """


class QuerierLink:
    """
    One link as the querier sees it.

    @ivar interface: the link's interface (updated when it is readdressed).
    @ivar cache: what was heard on this link (RFC 6762 §10 rules live in
        L{twisted_mdns.cache}).
    @ivar queries: this link's continuous queries.
    """

    def __init__(
        self,
        interface: NetworkInterface,
        clock: IReactorTime,
        random: _random.Random,
        send: DatagramSender,
        counters: Counter,
        max_records: int,
        unicast_first: bool = True,
    ) -> None:
        self.interface = interface
        self.clock = clock
        self.counters = counters
        self._send = send
        self.cache = RecordCache(clock, interface, max_records, counters, random)
        self.cache.on_refresh = self.refresh
        self.queries = ContinuousQueries(
            clock, random, self.cache, self.send, counters, unicast_first
        )
        self.recent = RecentQuestions(clock)

    @property
    def index(self) -> int:
        return self.interface.index

    def send(self, questions: Sequence[Question]) -> int:
        """
        Send C{questions} on this link with its known answers (RFC 6762
        §7.1), remembering the QM ones for L{ask}.

        @return: the number of datagrams sent.
        """
        for q in questions:
            if not q.unicast:
                self.recent.note(q, None)
        return send_questions(self.interface, self.cache, self._send, self.counters, questions)

    def refresh(self, records: Sequence[Record]) -> None:
        """
        RFC 6762 §5.2: ask again about watched records at 80-95 % of their
        TTL (called by the cache).
        """
        questions: dict[tuple[Name, int], Question] = {}
        for r in records:
            questions.setdefault((r.key, r.rtype), Question(r.name, r.rtype))
        self.counters["refresh.sent"] += len(questions)
        self.send(list(questions.values()))

    def ask(self, name: Name, rtype: int) -> bool:
        """
        Multicast one QM question now unless RFC 6762 §7.3 (or §5.2's one
        second between two of the same question) says it went out already.

        @return: whether it was sent.
        """
        question = Question(name, rtype)
        if self.recent.answered_for(question, self.cache.known_answers(question)):
            self.counters["ask.suppressed"] += 1
            return False
        self.counters["ask.sent"] += 1
        return self.send([question]) > 0

    def response_heard(self, message: Message, own: bool = False) -> None:
        """
        Cache every record of a response heard on this link.

        @param own: the response came from one of this link's own addresses:
            our responder's multicast, looped back (IP_MULTICAST_LOOP stays
            on so that other stacks on this host hear us), or another stack
            on this host.  Only what someone here wants is cached from it
            (L{_wanted_from_us}): at 10,000 services, caching all of our own
            announcements would push every other host's records out of the
            bounded cache (issue 13).
        """
        records = message.records()
        if own:
            wanted = self._wanted_from_us(records)
            skipped = len(records) - len(wanted)
            if skipped:
                self.counters["responses.own-skipped"] += skipped
            records = wanted
        if not records:
            return
        self.counters["responses.cached"] += 1
        self.counters["records.cached"] += len(records)
        self.cache.add_all(records, report=False)

    def _wanted_from_us(self, records: list[Record]) -> list[Record]:
        """
        The records of one of our own (looped-back) responses worth
        caching: those whose rrset the cache already holds (refreshed or
        replaced, so it never goes stale), those asked or watched here (so
        a local browse or resolve finds our own services: RFC 6763 makes no
        exception for them), and the records a kept PTR or SRV points to
        in the same message (the SRV, TXT and addresses that come with a
        browse answer, RFC 6763 §12).  The rest is skipped, not inserted:
        nobody here asked for it.
        """
        cache, queries, recent = self.cache, self.queries, self.recent
        targets: set[Name] = set()
        out = []
        for record in records:
            name, rtype, key = record.name, record.rtype, record.key
            if not (
                key in targets
                or queries.asking(name, rtype)
                or cache.watched(name, rtype)
                or recent.asked_by_us(key, rtype)
                or cache.entries(name, rtype)
            ):
                continue
            out.append(record)
            try:
                if rtype == TYPE_PTR:
                    targets.add(name_key(wire_name(record.data, 0)))
                elif rtype == TYPE_SRV:
                    targets.add(name_key(wire_name(record.data, 6)))
            except IndexError:  # a goodbye's or a stranger's odd rdata
                pass
        return out

    def query_heard(self, message: Message, source: tuple[str, int]) -> None:
        """
        Another host's query on this link: its QM questions may count as
        ours (RFC 6762 §7.3).
        """
        if message.is_probe or message.truncated:
            # A truncated query's known answers go on in another packet: we
            # cannot know that they hold nothing we would not send.
            return
        if self.interface.has_address(source[0]):
            # Our own query, looped back (or another stack on this host).
            return
        for question in message.questions:
            if question.unicast or question.qclass != CLASS_IN:
                continue
            self.recent.note(question, message)
            if self.queries.heard(message, question):
                log.debug(
                    "{iface}: {source} asked {name}/{type}: counts as our query (RFC 6762 §7.3)",
                    iface=self.interface.name, source=source[0],
                    name=name_to_text(question.name), type=type_name(question.qtype),
                )

    def close(self) -> None:
        """
        The link went away (or the querier stopped): stop its timers and
        forget what was heard there.
        """
        self.queries.close()
        self.cache.close()


class Interest:
    """
    What one operation asked and watched on one link, so that it can be
    changed as the operation learns more and released at once.
    """

    def __init__(self, link: QuerierLink) -> None:
        self.link = link
        self.asked: dict[tuple[Name, int], Name] = {}
        self.watched: dict[tuple[Name, int], Name] = {}

    def ask(self, wanted: Iterable[tuple[Name, int]]) -> None:
        """
        Ask exactly C{wanted} (continuous queries), releasing the rest.
        """
        queries = self.link.queries
        _reconcile(self.asked, wanted, queries.ask, queries.release)

    def watch(self, wanted: Iterable[tuple[Name, int]]) -> None:
        """
        Watch exactly C{wanted} for refreshes (RFC 6762 §5.2), unwatching
        the rest.
        """
        cache = self.link.cache
        _reconcile(self.watched, wanted, cache.watch, cache.unwatch)

    def close(self) -> None:
        self.ask(())
        self.watch(())


def _reconcile(
    held: dict[tuple[Name, int], Name],
    wanted: Iterable[tuple[Name, int]],
    start: Callable[[Name, int], None],
    stop: Callable[[Name, int], None],
) -> None:
    """
    Make C{held} exactly C{wanted}: C{stop} what is no longer wanted,
    C{start} what is new (names compared case-insensitively).
    """
    new = {(name_key(n), t): n for n, t in wanted}
    for key, name in list(held.items()):
        if key not in new:
            del held[key]
            stop(name, key[1])
    for key, name in new.items():
        if key not in held:
            held[key] = name
            start(name, key[1])
