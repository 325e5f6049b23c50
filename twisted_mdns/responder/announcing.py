# -*- test-case-name: tests.test_responder_announcing -*-
"""
Announcements (RFC 6762 §8.3) and goodbyes (§10.1).

§8.3: once a name is ours, two unsolicited responses one second apart;
§8.4: a changed record is announced the same way, without probing.  The
host's own records (addresses and their reverse mappings) travel together
per link; services that went through probing together travel in as few
packets as fit, each with the host's addresses as additionals.

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


class Announcer(Phase):
    """
    Announces claims on links, and says goodbye for them.
    """

    def announce(self, claims: list[Claim], indexes: set[int], count: int = ANNOUNCE_COUNT) -> None:
        """
        Multicast the announced C{claims}' records on each of C{indexes},
        then again C{count - 1} times, C{ANNOUNCE_INTERVAL} apart.
        """
        host = self.claims.host_claim
        for index in indexes:
            link = self.links.get(index)
            if link is None:
                continue
            records: list[Record] = []
            extra: list[Record] = []
            for claim in claims:
                if index not in claim.ready_on:
                    continue
                records.extend(self.claims.records(claim, link.interface, shared=True))
                if not extra and claim.kind is ClaimKind.SERVICE and host.announced:
                    extra.extend(self.claims.address_records(link.interface))
            if records:
                # Several services share the enumeration PTR and the host's
                # addresses: each once.
                records = list(dict.fromkeys(records))
                mine = set(records)
                self.sender.multicast(link, records, [r for r in dict.fromkeys(extra) if r not in mine])
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
