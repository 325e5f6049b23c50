# -*- test-case-name: tests.test_responder_conflicts -*-
"""
Conflicts: while probing (RFC 6762 §8.1, §8.2) and after (§9).

 - §8.1: while we probe a name, any record with that name in a response,
   other than what we ourselves propose (our own probe looped back), is a
   conflict: the claim is renamed (C{My Web (2)}, C{host-2}) and probed
   again.  15 conflicts within 10 s slow probing to one attempt per 5 s.
 - §8.2: another host's probe for a name we are probing is judged by
   L{twisted_mdns.responder.probing.compare_probe_records}; the loser
   waits one second and probes again, under the same name.
 - §9: after announcing, a response with the same name, type and class
   and other data (cache-flush set) sends the claim back to probing; it is
   renamed only if the conflict persists.
 - §15: reverse mappings are yielded, never renamed for: another
   responder on this very host may hold one.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from twisted_mdns.constants import CONFLICT_LIMIT, CONFLICT_WINDOW, TIEBREAK_WAIT
from twisted_mdns.message import Message, Name, Record
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.records import next_host_name, next_service_name
from twisted_mdns.responder.claims import Claim, ClaimKind, ClaimState, Conflict
from twisted_mdns.responder.probing import Prober
from twisted_mdns.responder.shared import Phase, Shared

log = Logger()


def _by_key(records: list[Record]) -> dict[Name, list[Record]]:
    out: dict[Name, list[Record]] = {}
    for r in records:
        out.setdefault(r.key, []).append(r)
    return out


class Conflicts(Phase):
    """
    Detects conflicts in received messages and resolves them.

    @param withdraw: take a claim's records out of every link's view,
        with goodbyes when C{goodbye} is true (engine operation).
    @param host_renamed: the host name changed: republish what follows it.
    @param own_address: is an address one of ours (on any link)?
    """

    def __init__(
        self,
        shared: Shared,
        prober: Prober,
        withdraw: Callable[[Claim, bool], None],
        host_renamed: Callable[[], None],
        own_address: Callable[[str], bool],
    ) -> None:
        super().__init__(shared)
        self.prober = prober
        self.withdraw = withdraw
        self.host_renamed = host_renamed
        self.own_address = own_address
        self._times: list[float] = []

    def backing_off(self) -> bool:
        """
        §8.1: have 15 conflicts happened in the last 10 s?
        """
        now = self.clock.seconds()
        self._times = [t for t in self._times if now - t < CONFLICT_WINDOW]
        return len(self._times) >= CONFLICT_LIMIT

    # -- what we hear ----------------------------------------------------------

    def probe_received(self, message: Message, context: InterfaceContext) -> None:
        """
        §8.2: another host probes (a query with authority records) for a
        name we probe; §15: or for a reverse mapping we hold.
        """
        link = self.links.get(context.index)
        iface = link.interface if link is not None else None
        by_key = _by_key(message.authorities)
        for claim in self.claims.named(by_key):
            theirs = by_key[self.claims.key(claim)]
            ours = self.claims.probe_records(claim, iface)
            if claim.kind is ClaimKind.REVERSE:
                # Another responder (on this host, §15) wants this address's
                # reverse name: let it have it rather than make it rename.
                if claim.state in (ClaimState.PROBING, ClaimState.ANNOUNCED) and any(r not in ours for r in theirs):
                    if claim.announced:
                        self.give_up(claim, "probed for by another responder")
                    else:
                        claim.conflict = Conflict.CONFLICT
                continue
            self.prober.check_simultaneous(claim, ours, theirs)

    def response_received(self, message: Message, source: tuple[str, int], context: InterfaceContext) -> None:
        """
        §8.1 conflicts while probing, §9 conflicts after announcing.
        """
        index = context.index
        by_key: dict[Name, list[Record]] = {}
        claimed = self.claims.is_claimed
        # Almost every response on a busy LAN names nothing of ours: one
        # look-up per record, and nothing built for the others.
        for section in (message.answers, message.additionals):
            for r in section:
                key = r.key
                if r.ttl > 0 and claimed(key):
                    by_key.setdefault(key, []).append(r)
        if not by_key:
            return
        claims = self.claims.named(by_key)
        if not claims:
            return
        links = self.links
        from_us = self.own_address(source[0])
        link = links.get(index)
        for claim in claims:
            if claim.state is ClaimState.WITHDRAWN:
                continue
            theirs = by_key[self.claims.key(claim)]
            mine = set(self.claims.records(claim, link.interface if link is not None else None))
            if from_us and any(r not in mine for r in theirs):
                # Our own packet from another of our links (two links on
                # one segment): what we say on any link is no conflict.
                # Only then every link's records: our announcements on n
                # links looping back would otherwise cost O(n^2).
                for other in links.values():
                    mine.update(self.claims.records(claim, other.interface))
            if claim.state is ClaimState.PROBING:
                # §8.1: any record with the name being probed, unless it is
                # what we ourselves propose (our own probe looped back).
                if any(r not in mine for r in theirs) and claim.conflict is None:
                    claim.conflict = Conflict.CONFLICT
                    log.info("conflict while probing {name} on {iface}: {records}",
                             name=claim.label(), iface=context.name, records=theirs)
            elif claim.announced:
                # §9: same name, type and class with other data.
                my_types = {r.rtype for r in mine}
                clash = [r for r in theirs if r.rtype in my_types and r not in mine and r.cache_flush]
                if not clash or index not in claim.ready_on:
                    continue
                if claim.kind is ClaimKind.REVERSE:
                    self.give_up(claim, "announced by another responder")
                    continue
                self.counters["conflicts.late"] += 1
                log.warn("late conflict for {name} on {iface}: {records}; probing again",
                         name=claim.label(), iface=context.name, records=clash)
                self.withdraw(claim, False)
                claim.state = ClaimState.PROBING
                self.prober.enqueue(claim, set(links))

    # -- what we do about it ---------------------------------------------------

    def give_up(self, claim: Claim, why: str) -> None:
        """
        §15: give up a reverse mapping someone else holds: no renaming (the
        name is the address's), a goodbye for what we had announced.
        """
        self.withdraw(claim, claim.announced)
        claim.state = ClaimState.YIELDED
        self.counters["reverse.yielded"] += 1
        log.info("{name} is held by another responder ({why}); not publishing it",
                 name=claim.label(), why=why)

    def probe_failed(self, claim: Claim, ifaces: frozenset[int]) -> None:
        """
        The prober's C{failed}: wait after a lost tie-break (§8.2), yield a
        reverse mapping (§15), else rename and probe again (§8.1, §9).
        """
        why, claim.conflict = claim.conflict, None
        if claim.kind is ClaimKind.REVERSE:
            self.give_up(claim, "conflict while probing")
            return
        if why is Conflict.LOST:
            log.info("lost a simultaneous probe for {name}; probing again in 1 s", name=claim.label())
            self.timers.later(TIEBREAK_WAIT, self.prober.enqueue, claim, ifaces)
            return
        self.counters["conflicts"] += 1
        self._times.append(self.clock.seconds())
        claims = self.claims
        if claim.kind is ClaimKind.HOST:
            old = claims.hostname
            claims.rename_host(next_host_name(old))
            log.warn("host name {old}.local is taken; trying {new}.local", old=old, new=claims.hostname)
            self.host_renamed()
        else:
            old_service = claim.service
            assert old_service is not None
            new_service = old_service.renamed(next_service_name(old_service.instance))
            claims.rename_service(claim, new_service)
            log.warn("service name {old} is taken; trying {new}",
                     old=old_service.display(), new=new_service.display())
        self.withdraw(claim, False)
        claim.state = ClaimState.PROBING
        self.prober.enqueue(claim, set(self.links))
