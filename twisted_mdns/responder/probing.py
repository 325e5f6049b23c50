# -*- test-case-name: tests.test_responder_probing,tests.test_responder_batches -*-
"""
Probing (RFC 6762 §8.1) and the simultaneous-probe tie-break (§8.2).

§8.1: a random 0-250 ms wait, three probes 250 ms apart (the first asks for
a unicast reply), the proposed records in the authority section.  Claims
that start together probe together, in as few packets as fit (many
services registered at once cost three packets per link, not three each);
each datagram is filled and sent as the questions come (L{ProbePackets}),
so probing 10,000 claims holds one datagram's worth at a time (issue 13).
15 conflicts within 10 s slow probing to one attempt per 5 s.

§8.2: when another host probes for a name we are probing, the
lexicographically later record set wins (L{compare_probe_records}).

The prober decides nothing about names: it reports a batch that went
unchallenged through three probes to C{won}, and a claim that met a
conflict or lost a tie-break to C{failed} (L{twisted_mdns.responder.conflicts}
then decides between renaming, waiting and yielding).
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall

from twisted_mdns.constants import CONFLICT_BACKOFF, MAX_PACKET, PROBE_COUNT, PROBE_INTERVAL, TYPE_ANY, TYPE_PTR, TYPE_SRV
from twisted_mdns.dnsvalues import wire_name
from twisted_mdns.link import Link
from twisted_mdns.message import Name, Question, Record, pack
from twisted_mdns.responder.sending import limit_for
from twisted_mdns.responder.claims import Claim, ClaimState, Conflict, shared_links
from twisted_mdns.responder.shared import Phase, Shared

#: How early a link's next probe may go (float rounding of timer
#: deadlines, not a tolerance of the RFC's 250 ms).
_EARLY = 1e-6

#: A probe batch: each claim and the links it is probed on (a shared
#: frozen set, L{shared_links}: at 10,000 claims on the same links, one
#: set rather than one each).
Batch = dict[Claim, frozenset[int]]


def _sort_key(record: Record) -> tuple:
    return (record.rclass, record.rtype, record.data)


def compare_probe_records(ours: list[Record], theirs: list[Record]) -> int:
    """
    RFC 6762 §8.2 tie-break: compare two sorted record sets
    lexicographically by class, type, then raw rdata; the set that is
    greater when the first difference is found wins, and a set that runs
    out first loses.  Returns 1 when we win, -1 when we lose, 0 when equal
    (our own probe looped back to us).
    """
    a = sorted(ours, key=_sort_key)
    b = sorted(theirs, key=_sort_key)
    for x, y in zip(a, b):
        kx, ky = _sort_key(x), _sort_key(y)
        if kx != ky:
            return 1 if kx > ky else -1
    if len(a) != len(b):
        return 1 if len(a) > len(b) else -1
    return 0


def _name_cost(name: Name, known: tuple[set[Name], ...], fresh: set[Name]) -> int:
    """
    The bytes C{name} takes written after names whose suffixes are in
    C{known} (RFC 1035 §4.1.4 compression, as the packer writes it: its
    labels up to the longest suffix already written, then a 2-byte
    pointer, or the root byte).  The suffixes it writes go into C{fresh}
    (which should be one of C{known}).
    """
    cost = 0
    for i in range(len(name)):
        suffix = name[i:]
        for names in known:
            if suffix in names:
                return cost + 2
        fresh.add(suffix)
        cost += 1 + len(name[i])
    return cost + 1


class ProbePackets:
    """
    Probe datagrams filled as the questions come, each question with its
    proposed records (RFC 6762 §8.1: in the same datagram), as many as fit
    under C{limit} (§17), at least one; each datagram is sent as soon as
    it is full.  So probing n claims holds one datagram's questions at a
    time, not n (issue 13: 10,000 services registered at once), and packs
    each question once.

    What a question adds is estimated without packing: its name and its
    records' names compressed against the suffixes already written
    (L{_name_cost}), fixed fields, and rdata (PTR and SRV targets
    compressed too, other rdata at its canonical length).  The packer
    writes the questions first, so a name can only compress better than
    estimated: the estimate is an upper bound and the datagram fits.  A
    datagram found over the limit anyway (a record whose target the
    packer does not compress) is split in two and counted
    (C{probes.resplit}).

    @param send: called with each datagram.
    @param counters: where C{probes.resplit} is counted.
    """

    def __init__(self, limit: int, send: Callable[[bytes], None], counters: Counter[str]) -> None:
        self.limit = limit
        self._send = send
        self._counters = counters
        self.sent = 0
        self._reset()

    def _reset(self) -> None:
        self._groups: list[tuple[Question, list[Record]]] = []
        self._size = 12  # the header
        self._asked: set[Name] = set()  # suffixes written by the questions
        self._written: set[Name] = set()  # ... and by the records

    def _cost(self, question: Question, records: list[Record]) -> tuple[int, set[Name], set[Name]]:
        asked, written = self._asked, self._written
        fresh_q: set[Name] = set()
        size = _name_cost(question.name, (asked, fresh_q), fresh_q) + 4
        fresh_r: set[Name] = set()
        known = (asked, fresh_q, written, fresh_r)
        for r in records:
            size += _name_cost(r.name, known, fresh_r) + 10
            rtype = r.rtype
            if rtype == TYPE_SRV:
                size += _name_cost(wire_name(r.data, 6), known, fresh_r) + 6
            elif rtype == TYPE_PTR:
                size += _name_cost(wire_name(r.data, 0), known, fresh_r)
            else:
                size += len(r.data)
        return size, fresh_q, fresh_r

    def add(self, question: Question, records: list[Record]) -> None:
        """
        Add C{question} and its proposed C{records}, sending the datagram
        so far first if they would not fit in it.
        """
        size, fresh_q, fresh_r = self._cost(question, records)
        if self._groups and self._size + size > self.limit:
            self.flush()
            size, fresh_q, fresh_r = self._cost(question, records)
        self._groups.append((question, records))
        self._size += size
        self._asked |= fresh_q
        self._written |= fresh_r

    def flush(self) -> None:
        """
        Send what is waiting.
        """
        groups = self._groups
        self._reset()
        if groups:
            for packet in self._packed(groups):
                self._send(packet)
                self.sent += 1

    def _packed(self, groups: list[tuple[Question, list[Record]]]) -> list[bytes]:
        packet = pack(
            questions=[q for q, _ in groups], authorities=[r for _, records in groups for r in records],
            limit=MAX_PACKET,
        )[0]
        if len(packet) <= self.limit or len(groups) == 1:
            return [packet]
        self._counters["probes.resplit"] += 1
        half = len(groups) // 2
        return self._packed(groups[:half]) + self._packed(groups[half:])


class Prober(Phase):
    """
    Probes claims in batches on the links given.

    @param won: called with a batch (claim -> link indexes) whose three
        probes went unchallenged.
    @param failed: called with a claim (and its link indexes) whose probe
        met a conflict or lost a tie-break (its C{conflict} says which).
    @param backing_off: whether §8.1's 15-conflicts-in-10-s rule applies.
    """

    def __init__(
        self,
        shared: Shared,
        won: Callable[[Batch], None],
        failed: Callable[[Claim, frozenset[int]], None],
        backing_off: Callable[[], bool],
    ) -> None:
        super().__init__(shared)
        self.won = won
        self.failed = failed
        self.backing_off = backing_off
        self._batch: Batch = {}
        self._batch_call: IDelayedCall | None = None

    def enqueue(self, claim: Claim, interfaces: Iterable[int], keep_state: bool = False) -> None:
        """
        Probe C{claim} on C{interfaces} with the next batch.  With no link
        at all the name is ours at once (there is nobody to ask).
        """
        if claim.state is ClaimState.WITHDRAWN:
            # Withdrawn while it waited (the 1 s after a lost tie-break):
            # unregistered, or registered again under another name.
            return
        interfaces = shared_links(interfaces)
        if not interfaces:
            if not keep_state:
                self.won({claim: interfaces})
            return
        if not keep_state:
            claim.state = ClaimState.PROBING
        claim.conflict = None
        already = self._batch.get(claim)
        self._batch[claim] = interfaces if already is None else shared_links(already | interfaces)
        if self._batch_call is None or not self._batch_call.active():
            delay = self.random.uniform(0, PROBE_INTERVAL)
            if self.backing_off():
                delay = CONFLICT_BACKOFF
            self._batch_call = self.timers.later(delay, self._start_batch)

    def _start_batch(self) -> None:
        self._batch_call = None
        batch, self._batch = self._batch, {}
        self._round(batch, 0, {})

    def _round(self, batch: Batch, n: int, previous: dict[int, float]) -> None:
        """
        Probe round C{n} of C{batch} (three, the first asking for unicast
        replies), then the next; after the last, the claims still standing
        are won.  Claims withdrawn meanwhile leave the batch, those that met
        a conflict go to C{failed}, links that went away are dropped.

        @param previous: link index -> when the round before probed there.
        """
        if not self.running():
            return
        links = self.links
        gone: list[Claim] = []
        failed: list[tuple[Claim, frozenset[int]]] = []
        for claim, ifaces in batch.items():
            if claim.state is ClaimState.WITHDRAWN:
                gone.append(claim)
            elif claim.conflict is not None:
                gone.append(claim)
                failed.append((claim, ifaces))
            elif not all(ix in links for ix in ifaces):
                batch[claim] = shared_links(ix for ix in ifaces if ix in links)
        for claim in gone:
            del batch[claim]
        if failed:
            for claim, ifaces in failed:
                self.failed(claim, ifaces)
            # A failure may withdraw others of the batch: a host renamed
            # registers the services named after it again (new claims).
            for claim in [c for c in batch if c.state is ClaimState.WITHDRAWN]:
                del batch[claim]
        if not batch:
            return
        if n == PROBE_COUNT:
            self.won(batch)
            return
        # Link by link, claims in batch order (grouped once: not every
        # claim of the batch looked at for every link).
        todo: dict[int, list[Claim]] = {}
        for claim, ifaces in batch.items():
            for index in ifaces:
                todo.setdefault(index, []).append(claim)
        self._send_round(batch, n, list(todo.items()), 0, previous, {})

    def _send_round(
        self,
        batch: Batch,
        n: int,
        todo: list[tuple[int, list[Claim]]],
        position: int,
        previous: dict[int, float],
        sent: dict[int, float],
    ) -> None:
        """
        Send round C{n}'s probes on the links of C{todo} from C{position}
        on, then schedule the next round.

        RFC 6762 §8.1 wants a link's probes 250 ms apart, and the names
        ours 250 ms after the last one.  A round of hundreds of links takes
        tens of milliseconds to build and send; counting each interval from
        the end of the round before (as this did) added that time to every
        interval, on every link (issue 13: about 0.3 s of start-up at 240
        links).  So the next round is due 250 ms after this one I{began},
        and each link still waits for its own 250 ms: a round that runs
        ahead of the one before (the first builds records the later ones
        reuse) stops at the first link not due yet and goes on when it is.
        The last round is followed by 250 ms after its I{last} probe, so
        every link has the whole 250 ms for an answer.
        """
        if not self.running():
            return
        clock = self.clock
        for i in range(position, len(todo)):
            index, claims = todo[i]
            link = self.links.get(index)
            if link is None:
                continue
            now = clock.seconds()
            last = previous.get(index)
            if last is not None and now < last + PROBE_INTERVAL - _EARLY:
                self.timers.later(last + PROBE_INTERVAL - now, self._send_round, batch, n, todo, i, previous, sent)
                return
            if self._probe(link, claims, n):
                sent[index] = now
        if not sent:
            self.timers.later(PROBE_INTERVAL, self._round, batch, n + 1, sent)
            return
        due = (min if n + 1 < PROBE_COUNT else max)(sent.values()) + PROBE_INTERVAL
        self.timers.later(due - clock.seconds(), self._round, batch, n + 1, sent)

    def _probe(self, link: Link, claims: list[Claim], n: int) -> bool:
        """
        Send probe C{n} of C{claims} on C{link}, each datagram as soon as
        it is full (L{ProbePackets}).  Claims withdrawn or in conflict
        since the round began are left out.

        @return: whether anything was sent (a service limited to other
            links proposes nothing here).
        """
        iface = link.interface
        packets = ProbePackets(limit_for(iface), partial(self._send, link.index), self.counters)
        for claim in claims:
            if claim.state is ClaimState.WITHDRAWN or claim.conflict is not None:
                continue
            proposed = self.claims.probe_records(claim, iface)
            if proposed:
                packets.add(Question(self.claims.name(claim), TYPE_ANY, unicast=(n == 0)), proposed)
        packets.flush()
        if packets.sent:
            self.counters["probes.sent"] += 1
            return True
        return False

    def _send(self, index: int, packet: bytes) -> None:
        self.sender.send(index, (packet,))

    def check_simultaneous(self, claim: Claim, ours: list[Record], theirs: list[Record]) -> None:
        """
        RFC 6762 §8.2: another host probes for a name we are probing; mark
        the claim lost when its record set is the lexicographically later.
        """
        if claim.state is not ClaimState.PROBING:
            return
        if compare_probe_records(ours, theirs) < 0 and claim.conflict is None:
            self.counters["probes.lost-tiebreak"] += 1
            claim.conflict = Conflict.LOST
