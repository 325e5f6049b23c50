# -*- test-case-name: tests.test_responder_announcing,tests.test_responder_batches -*-
"""
Announcements (RFC 6762 §8.3) and goodbyes (§10.1).

§8.3: once a name is ours, two unsolicited responses one second apart;
§8.4: a changed record is announced the same way, without probing.  The
host's own records (addresses and their reverse mappings) travel together
per link; services that went through probing together travel together, a
slice of them at a time (L{ANNOUNCE_SLICE}: 10,000 services registered at
once must not build 10,000 services' lists and packets at once), each slice
in as few packets as fit, with the host's addresses as additionals.

§10.1: withdrawn records are sent again with TTL 0, on every link they were
on; a shared PTR another claim still publishes is not withdrawn (the views
count publishers, see L{twisted_mdns.link.Link.withdraw}).
"""

from __future__ import annotations

from twisted_mdns.constants import ANNOUNCE_COUNT, ANNOUNCE_INTERVAL
from twisted_mdns.link import Link
from twisted_mdns.message import Record
from twisted_mdns.responder.claims import Claim, ClaimKind
from twisted_mdns.responder.shared import Phase


#: Claims whose records are packed together in one go of an announcement
#: (issue 13): announcing 10,000 services builds lists and packets for this
#: many at a time, not for all of them, so the memory it takes on the way
#: does not grow with the number of services.
ANNOUNCE_SLICE = 1024


class Announcer(Phase):
    """
    Announces claims on links, and says goodbye for them.

    @ivar slice: claims packed together (L{ANNOUNCE_SLICE}).
    """

    slice = ANNOUNCE_SLICE

    def announce(self, claims: list[Claim], indexes: set[int], count: int = ANNOUNCE_COUNT) -> None:
        """
        Multicast the announced C{claims}' records on each of C{indexes},
        then again C{count - 1} times, C{ANNOUNCE_INTERVAL} apart.

        The claims go out L{slice} at a time, each slice's records in as
        few datagrams as fit, all in this one call (so every claim is
        announced at the same moment, §8.3).  A record several claims
        publish (the enumeration PTR of a type) goes once per
        announcement, in the first slice that has it; the host's
        addresses go with every slice of services, as additionals.
        """
        host = self.claims.host_claim
        owner = self.claims.owner
        step = self.slice
        for index in indexes:
            link = self.links.get(index)
            if link is None:
                continue
            iface = link.interface
            view = link.view
            extra: list[Record] | None = None
            shared: set[Record] = set()  # records of several claims, sent already
            now = self.clock.seconds()
            for start in range(0, len(claims), step):
                records: dict[Record, None] = {}
                others: list[Record] = []  # records no claim of the slice owns
                services = False
                for claim in claims[start:start + step]:
                    if index not in claim.ready_on:
                        continue
                    services = services or claim.kind is ClaimKind.SERVICE
                    for record in self.claims.records(claim, iface, shared=True):
                        if record in records:
                            continue
                        if view.publishers(record) > 1:
                            if record in shared:
                                continue
                            shared.add(record)
                        records[record] = None
                        if owner(record) is not claim:
                            others.append(record)
                    # §6, §5.4: when the claim's own records went, one
                    # entry for all of them.
                    link.announced[claim] = now
                if not records:
                    continue
                if services and host.announced:
                    if extra is None:
                        extra = self.claims.address_records(iface)
                    additionals = [r for r in extra if r not in records]
                else:
                    additionals = []
                self.sender.multicast(link, list(records), additionals, remember=others)
        if count > 1:
            self.timers.later(ANNOUNCE_INTERVAL, self._again, claims, indexes, count - 1)
        self.counters["announcements"] += 1

    def _again(self, claims: list[Claim], indexes: set[int], count: int) -> None:
        live = [c for c in claims if c.announced]
        if live and self.running():
            self.announce(live, indexes, count)

    def goodbyes(self, link: Link | None, records: list[Record]) -> None:
        """
        RFC 6762 §10.1: say goodbye to C{records} on C{link}.
        """
        self.sender.goodbyes(link, records)
