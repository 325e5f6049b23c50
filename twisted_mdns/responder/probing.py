# -*- test-case-name: tests.test_responder_probing -*-
"""
Probing (RFC 6762 §8.1) and the simultaneous-probe tie-break (§8.2).

§8.1: a random 0-250 ms wait, three probes 250 ms apart (the first asks for
a unicast reply), the proposed records in the authority section.  Claims
that start together probe together, in as few packets as fit (many
services registered at once cost three packets per link, not three each).
15 conflicts within 10 s slow probing to one attempt per 5 s.

§8.2: when another host probes for a name we are probing, the
lexicographically later record set wins (L{compare_probe_records}).

The prober decides nothing about names: it reports a batch that went
unchallenged through three probes to C{won}, and a claim that met a
conflict or lost a tie-break to C{failed} (L{twisted_mdns.responder.conflicts}
then decides between renaming, waiting and yielding).
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall

from twisted_mdns.constants import CONFLICT_BACKOFF, PROBE_COUNT, PROBE_INTERVAL, TYPE_ANY
from twisted_mdns.link import Link
from twisted_mdns.message import Name, Question, Record, pack
from twisted_mdns.responder.sending import limit_for
from twisted_mdns.responder.claims import Claim, ClaimState, Conflict
from twisted_mdns.responder.shared import Phase, Shared

Batch = list[tuple[Claim, set[int]]]


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


def chunk_ends(limit: int, questions: list[Question], by_key: dict[Name, list[Record]]) -> list[int]:
    """
    Where each probe datagram ends: as many questions (with their records)
    as fit under C{limit} (RFC 6762 §17), at least one.
    """
    ends: list[int] = []
    chunk_q: list[Question] = []
    chunk_a: list[Record] = []
    size = 0  # at least the chunk's packed size
    for i, q in enumerate(questions):
        mine = by_key.get(q.key, [])
        # More names in a packet only help compression, so what q and its
        # records take packed alone bounds what they add to the chunk; the
        # chunk is packed again only when that bound is over the limit
        # (repacking it for every question made probing n services
        # O(n * chunk) encodings).
        alone = len(pack(questions=[q], authorities=mine, limit=9000)[0]) - 12
        if chunk_q and size + alone > limit:
            trial = len(pack(questions=chunk_q + [q], authorities=chunk_a + mine, limit=9000)[0])
            if trial > limit:
                ends.append(i)
                chunk_q, chunk_a = [], []
                size = 12 + alone
            else:
                size = trial
        else:
            size = (size or 12) + alone
        chunk_q.append(q)
        chunk_a.extend(mine)
    if chunk_q:
        ends.append(len(questions))
    return ends


class Prober(Phase):
    """
    Probes claims in batches on the links given.

    @param won: called with a batch (claim, link indexes) whose three
        probes went unchallenged.
    @param failed: called with a claim (and its link indexes) whose probe
        met a conflict or lost a tie-break (its C{conflict} says which).
    @param backing_off: whether §8.1's 15-conflicts-in-10-s rule applies.
    """

    def __init__(
        self,
        shared: Shared,
        won: Callable[[Batch], None],
        failed: Callable[[Claim, set[int]], None],
        backing_off: Callable[[], bool],
    ) -> None:
        super().__init__(shared)
        self.won = won
        self.failed = failed
        self.backing_off = backing_off
        self._batch: dict[Claim, set[int]] = {}
        self._batch_call: IDelayedCall | None = None

    def enqueue(self, claim: Claim, interfaces: set[int], keep_state: bool = False) -> None:
        """
        Probe C{claim} on C{interfaces} with the next batch.  With no link
        at all the name is ours at once (there is nobody to ask).
        """
        if not interfaces:
            if not keep_state:
                self.won([(claim, set())])
            return
        if not keep_state:
            claim.state = ClaimState.PROBING
        claim.conflict = None
        self._batch.setdefault(claim, set()).update(interfaces)
        if self._batch_call is None or not self._batch_call.active():
            delay = self.random.uniform(0, PROBE_INTERVAL)
            if self.backing_off():
                delay = CONFLICT_BACKOFF
            self._batch_call = self.timers.later(delay, self._start_batch)

    def _start_batch(self) -> None:
        self._batch_call = None
        batch, self._batch = list(self._batch.items()), {}
        self._round(batch, 0)

    def _round(self, batch: Batch, n: int) -> None:
        if not self.running():
            return
        alive: Batch = []
        links = self.links
        for claim, ifaces in batch:
            if claim.state is ClaimState.WITHDRAWN:
                continue
            if claim.conflict is not None:
                self.failed(claim, ifaces)
                continue
            alive.append((claim, {ix for ix in ifaces if ix in links}))
        if not alive:
            return
        if n == PROBE_COUNT:
            self.won(alive)
            return
        by_link: dict[int, list[tuple[Claim, list[Record]]]] = {}
        for claim, ifaces in alive:
            for index in ifaces:
                proposed = self.claims.probe_records(claim, links[index].interface)
                if proposed:  # a service limited elsewhere is not probed here
                    by_link.setdefault(index, []).append((claim, proposed))
        for index, claims in by_link.items():
            questions, authorities = [], []
            for claim, proposed in claims:
                questions.append(Question(self.claims.name(claim), TYPE_ANY, unicast=(n == 0)))
                authorities.extend(proposed)
            self._send_chunked(links[index], questions, authorities)
            self.counters["probes.sent"] += 1
        self.timers.later(PROBE_INTERVAL, self._round, alive, n + 1)

    def _send_chunked(self, link: Link, questions: list[Question], authorities: list[Record]) -> None:
        """
        Send probe questions with their authority records, splitting across
        datagrams by question so each probe stays with its own records.
        """
        limit = limit_for(link.interface)  # probes go out on every family
        by_key: dict[Name, list[Record]] = {}
        for r in authorities:
            by_key.setdefault(r.key, []).append(r)
        # The three probes of a batch differ only in the QU bit, which does
        # not change sizes: split once, reuse the split for the next two.
        signature = (limit, tuple((q.name, q.qtype, q.qclass) for q in questions), tuple(authorities))
        memo = link.probe_memo
        if memo is None or memo[0] != signature:
            memo = link.probe_memo = (signature, chunk_ends(limit, questions, by_key))
        start = 0
        for end in memo[1]:
            chunk_q = questions[start:end]
            chunk_a = [r for q in chunk_q for r in by_key.get(q.key, [])]
            self.sender.send(link.index, pack(questions=chunk_q, authorities=chunk_a, limit=9000))
            start = end

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
