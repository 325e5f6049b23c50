# -*- test-case-name: tests.test_link -*-
"""
One object per link: everything the responder keeps about one network link.

RFC 6762 §14 and §6.2 make a link, not the host, the unit of mDNS: what we
say on a link is what is true there, rate limits and duplicate suppression
count per link, and a link that goes away takes its state with it.  So,
as avahi-core keeps one object per interface, the responder keeps one
L{Link} per interface index, holding:

 - the L{twisted_mdns.records.InterfaceRecords} view of our records on the
   link, and which claim published which of them (so a claim's records are
   added and withdrawn one by one, never by rebuilding every view);
 - when each record was last multicast, per family (L{MulticastTimes}:
   §6 rate limit, §5.4 QU routing), in one table for both families;
 - per address family (L{LinkFamily}): the shared answers waiting for
   their 20-120 ms delay (§6, §7.4).  A link's IPv4 and IPv6 halves share
   the link (one name, one view, one set of claims: RFC 6762 §6.2 asks
   for both families' addresses on either) but multicast separately, so
   their send times and pending answers are kept per family;
 - the truncated queries held for their remaining known answers (§7.2);
 - one L{twisted_mdns.timers.Timers} registry: dropping the link is one
   L{Link.close}, which cancels every timer of the link.

The legacy-unicast reply store (RFC 6762 §6.7) is
L{twisted_mdns.responder.legacy.LegacyReplies}, keyed by link index, and
forgets a link's entries when the link is closed.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_mdns.message import Message, Record
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.records import InterfaceRecords, published_addresses
from twisted_mdns.timers import Timers

if TYPE_CHECKING:
    from twisted_mdns.pktinfo import InterfaceContext
    from twisted_mdns.responder.claims import Claim


class Pending:
    """
    Multicast answers waiting for their delay on one link and family
    (RFC 6762 §6: shared answers are delayed 20-120 ms and aggregated).
    """

    __slots__ = ("answers", "additionals", "call")

    def __init__(self) -> None:
        self.answers: dict[Record, None] = {}
        self.additionals: dict[Record, None] = {}
        self.call: IDelayedCall | None = None


class MulticastTimes:
    """
    When each record was last multicast on one link, per address family
    (RFC 6762 §6: a record is multicast at most once a second on a link;
    §5.4: a QU question is answered by unicast only when the record was
    multicast within a quarter of its TTL).

    The two families are kept apart (a response sent over IPv6 only has
    not reached a querier listening over IPv4), but in one table: most
    records are multicast over every family at once (probes,
    announcements, goodbyes, and answers go back over the family asked),
    so an entry is one time for both families, and a pair
    C{(IPv4 time, IPv6 time)} (C{None} for never) only once the two
    differ.  At 10,000 services a table per family cost about 260 bytes
    per service; this one half of it (issue 13).
    """

    __slots__ = ("_times",)

    def __init__(self) -> None:
        #: Record identity -> reactor time of its last multicast over
        #: both families, or (IPv4 time, IPv6 time).
        self._times: dict[tuple, Any] = {}

    def __len__(self) -> int:
        return len(self._times)

    def get(self, identity: tuple, family: int) -> float | None:
        """
        When the record of C{identity} was last multicast over C{family}
        (C{None}: never, or forgotten with the link).
        """
        when = self._times.get(identity)
        if type(when) is tuple:
            return when[1] if family == socket.AF_INET6 else when[0]
        return when

    def sent(self, identities: Iterable[tuple], now: float, family: int | None = None) -> None:
        """
        The records of C{identities} were multicast at C{now}, over
        C{family} only or (C{None}) every family.
        """
        times = self._times
        if family is None:
            for identity in identities:
                times[identity] = now
            return
        v6 = family == socket.AF_INET6
        for identity in identities:
            old = times.get(identity)
            if type(old) is tuple:
                other = old[0] if v6 else old[1]
            else:
                other = old
            if other == now:
                times[identity] = now
            else:
                times[identity] = (other, now) if v6 else (now, other)

    def clear(self) -> None:
        self._times.clear()


class LinkFamily:
    """
    The per-address-family half of a L{Link}: the shared answers waiting
    for their delay.
    """

    __slots__ = ("family", "pending")

    def __init__(self, family: int) -> None:
        self.family = family
        self.pending: Pending | None = None


class HeldQuery:
    """
    A truncated query held for the rest of its known answers (RFC 6762
    §7.2), with the timer that answers it at the deadline.
    """

    __slots__ = ("message", "context", "call")

    def __init__(self, message: Message, context: "InterfaceContext", call: IDelayedCall | None) -> None:
        self.message = message
        self.context = context
        self.call = call


class Link:
    """
    One network link as the responder sees it (see the module docstring).

    @ivar interface: the link's L{NetworkInterface} as last enumerated; it
        carries both families' addresses.
    @ivar index: the OS interface index, the link's key.
    @ivar view: our records on this link.
    @ivar published: claim -> the records it published into L{view}.
    @ivar announced: claim -> when its own records (those it owns, see
        L{twisted_mdns.responder.claims.Claims.owner}) were last announced
        here, over every family: one entry per claim rather than one per
        record in L{multicast_times} (issue 13).  Kept while the claim
        publishes the same records, forgotten when they change.
    @ivar multicast_times: when each other record (answers, records
        shared by several claims) was last multicast here, per family
        (L{MulticastTimes}).
    @ivar held: source address -> a L{HeldQuery} (RFC 6762 §7.2).
    @ivar timers: every pending call that belongs to this link.
    """

    __slots__ = ("interface", "index", "view", "published", "announced", "families", "multicast_times", "held", "timers")

    def __init__(self, interface: NetworkInterface, clock: IReactorTime) -> None:
        self.interface = interface
        self.index = interface.index
        self.view = InterfaceRecords(interface)
        self.published: dict["Claim", tuple[Record, ...]] = {}
        self.announced: dict["Claim", float] = {}
        self.families: dict[int, LinkFamily] = {socket.AF_INET: LinkFamily(socket.AF_INET)}
        self.multicast_times = MulticastTimes()
        self.held: dict[tuple[str, int], HeldQuery] = {}
        self.timers = Timers(clock)

    def __repr__(self) -> str:
        return f"<Link {self.interface.name} index={self.index} records={len(self.view)}>"

    def family(self, family: int = socket.AF_INET) -> LinkFamily:
        """
        The per-family state, created on first use (an IPv6 port on this
        link will add its own).
        """
        found = self.families.get(family)
        if found is None:
            found = self.families[family] = LinkFamily(family)
        return found

    # -- our records on this link --------------------------------------------

    def publish(self, claim: "Claim", records: tuple[Record, ...]) -> list[Record]:
        """
        Make C{records} the records C{claim} publishes on this link,
        replacing what it published before.  Costs what the claim's records
        cost, whatever else is published.

        @return: records that left the view (published by nobody now).
        """
        announced = self.announced.get(claim)
        before = self.published.get(claim)
        gone = self.withdraw(claim)
        view = self.view
        for record in records:
            view.add(record)
        self.published[claim] = records
        if announced is not None and (before is records or before == records):
            self.announced[claim] = announced  # the very records announced then
        return [r for r in gone if r not in view]

    def withdraw(self, claim: "Claim") -> list[Record]:
        """
        Withdraw what C{claim} published here.

        @return: the records that left the view (RFC 6762 §10.1: only those
            get goodbyes; a shared PTR another claim still publishes
            stays).
        """
        self.announced.pop(claim, None)
        records = self.published.pop(claim, None)
        if not records:
            return []
        view = self.view
        return [r for r in records if view.remove(r)]

    def last_multicast(self, record: Record, family: int, owner: "Claim | None") -> float | None:
        """
        When C{record} was last multicast here over C{family} (RFC 6762
        §6 rate limit, §5.4 QU routing): the later of its own entry in
        L{multicast_times} and the last announcement of C{owner}, the
        claim it belongs to (if any, and if announced here).
        """
        last = self.multicast_times.get(record.identity, family)
        if owner is not None:
            announced = self.announced.get(owner)
            if announced is not None and (last is None or announced > last):
                return announced
        return last

    def readdressed(self, interface: NetworkInterface) -> None:
        """
        The link's addresses changed: keep the new L{NetworkInterface}.
        The claims republish their records (the engine does that, it knows
        what they are).
        """
        self.interface = interface
        self.view.interface = interface

    # -- going away ------------------------------------------------------------

    def close(self) -> None:
        """
        The link went away or the responder stopped: cancel every timer
        of the link and forget its state.
        """
        self.timers.cancel_all()
        for fam in self.families.values():
            fam.pending = None
        self.multicast_times.clear()
        self.held.clear()
        self.published.clear()
        self.announced.clear()
        self.view = InterfaceRecords(self.interface)


def _addresses(iface: NetworkInterface) -> list[str]:
    return [str(a.ip) for a in iface.ipv4] + [str(a.ip) for a in iface.ipv6]


def _own_address(address: str) -> str:
    """
    An address as L{Links.is_ours} keys it: an IPv6 source carries its
    zone (C{fe80::2%lana}), which is not part of the address.
    """
    return address.split("%", 1)[0] if "%" in address else address


class Links(dict[int, Link]):
    """
    The links we run on, by interface index, with two indexes kept up to
    date link by link (so a link coming, going or readdressed costs what
    that link costs, not a pass over every link):

     - our own addresses on any link (L{is_ours}): is a packet from us?
     - published address (IPv4, and IPv6 when publishable) -> the links
       that have it (L{address_links}), and the addresses whose links
       changed since L{take_touched} (reverse mappings follow those,
       RFC 6762 §6.2).
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__()
        self.clock = clock
        self._own: Counter[str] = Counter()
        self.address_links: dict[str, set[int]] = {}
        self._touched: dict[str, None] = {}

    def add(self, iface: NetworkInterface) -> Link:
        link = self[iface.index] = Link(iface, self.clock)
        self._learn(iface)
        return link

    def readdress(self, link: Link, iface: NetworkInterface) -> None:
        self._forget(link.interface)
        self._learn(iface)
        link.readdressed(iface)

    def drop(self, index: int) -> Link:
        """
        Forget the link and close it (every timer of it cancelled).
        """
        link = self.pop(index)
        self._forget(link.interface)
        link.close()
        return link

    @property
    def ipv4_links(self) -> dict[str, set[int]]:
        """
        The IPv4 part of L{address_links} (kept for older callers).
        """
        return {a: ix for a, ix in self.address_links.items() if ":" not in a}

    def is_ours(self, address: str) -> bool:
        return _own_address(address) in self._own

    def take_touched(self) -> list[str]:
        """
        The published addresses whose links changed since the last call.
        """
        touched, self._touched = self._touched, {}
        return list(touched)

    def _learn(self, iface: NetworkInterface) -> None:
        self._own.update(_addresses(iface))
        for address in published_addresses(iface):
            self.address_links.setdefault(address, set()).add(iface.index)
            self._touched[address] = None

    def _forget(self, iface: NetworkInterface) -> None:
        own = self._own
        for address in _addresses(iface):
            own[address] -= 1
            if own[address] <= 0:
                del own[address]
        for address in published_addresses(iface):
            where = self.address_links.get(address)
            if where is not None:
                where.discard(iface.index)
                if not where:
                    del self.address_links[address]
            self._touched[address] = None
