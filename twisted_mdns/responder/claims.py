# -*- test-case-name: tests.test_responder_claims -*-
"""
What we claim: the host name, each service instance, each reverse mapping,
and the records each claim puts on a link.

A claim is one unique name we probe for and defend (RFC 6762 §8, §9): the
host name (its A records on each link, RFC 6762 §6.2 and §14), a service
instance (SRV and TXT unique, PTRs shared, RFC 6763 §4), or the reverse
mapping of one of our addresses (C{in-addr.arpa} for IPv4, C{ip6.arpa} for
IPv6).  Reverse mappings are claimed like
any unique record but never renamed for: another responder on this host
(RFC 6762 §15) may hold one, and then it is given up.
"""

from __future__ import annotations

import enum
from typing import Any, Collection, Iterable, Iterator, Sequence

from twisted.internet import defer

from twisted_mdns.constants import HOST_TTL, TYPE_PTR
from twisted_mdns.dnsvalues import wire_name
from twisted_mdns.message import Name, Record, name_key, ptr_record
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.records import (
    ServiceInfo,
    address_record,
    host_name,
    published_addresses,
    reverse_name,
    service_records,
)


class ClaimKind(enum.Enum):
    """
    What a claim is for.
    """

    HOST = "host"
    SERVICE = "service"
    REVERSE = "reverse"


class ClaimState(str, enum.Enum):
    """
    Where a claim is in its life.  (A C{str} enum: code written against the
    old string states, C{state == "announced"}, keeps working.)
    """

    PROBING = "probing"
    ANNOUNCED = "announced"
    WITHDRAWN = "withdrawn"
    YIELDED = "yielded"


class Conflict(enum.Enum):
    """
    Why a probe round must stop (RFC 6762 §8.1, §8.2).
    """

    #: Someone answered with the name: rename (or yield a reverse mapping).
    CONFLICT = "conflict"
    #: We lost a simultaneous-probe tie-break: wait 1 s and probe again.
    LOST = "lost"


#: Every distinct set of link indexes a claim is ready on, made once: at
#: 10,000 services on the same links, one set shared rather than one each.
_LINK_SETS: dict[frozenset[int], frozenset[int]] = {}


def shared_links(members: Iterable[int]) -> frozenset[int]:
    """
    The one frozen set of C{members} (see L{_LINK_SETS}): what a claim's
    L{Claim.ready_on} and a probe batch hold, so that 10,000 claims on
    the same links hold one set (a C{set} per claim was 216 bytes, the
    largest single object per registered service; issue 13).
    """
    key = frozenset(members)
    found = _LINK_SETS.get(key)
    if found is None:
        if len(_LINK_SETS) > 4096:  # a host's link subsets are few; bounded anyway
            _LINK_SETS.clear()
        found = _LINK_SETS[key] = key
    return found


#: No link at all.
NO_LINKS = shared_links(())


class Claim:
    """
    One thing we claim a unique name for.

    @ivar ready_on: indexes of the links where the claim is announced; the
        claim's records are in exactly those links' views.  A shared
        frozen set (L{shared_links}), replaced, never changed in place.
    @ivar requested: the name first asked for, so the caller's own
        L{ServiceInfo} still finds the registration after a rename (for a
        reverse mapping, its name: never renamed).
    @cvar address: for a reverse mapping (L{ReverseClaim}), the address it
        maps (IPv4 or IPv6, as C{str(ipaddress.ip_address(...))} writes
        it); C{None} for every other claim.
    """

    # Eight slots (96 bytes): a reverse mapping's address is in its own
    # class (L{ReverseClaim}), a ninth slot for every service was 16 bytes
    # more per service once rounded (issue 13).
    __slots__ = ("kind", "_service", "state", "ready_on", "conflict", "done", "requested", "_records")

    address: str | None = None

    def __init__(
        self,
        kind: ClaimKind,
        service: ServiceInfo | None = None,
        requested: Name = (),
    ) -> None:
        self.kind = kind
        #: A service's records (unique ones first) or a reverse mapping's
        #: PTR, as last built: they change only when the service value or
        #: the host name does, and both forget them (L{service},
        #: L{forget_records}).  The records alone, not a tuple saying what
        #: they were built from: that tuple was 72 bytes per service.
        self._records: Any = None
        self._service = service
        self.state = ClaimState.PROBING
        self.ready_on: frozenset[int] = NO_LINKS
        self.conflict: Conflict | None = None
        self.done: defer.Deferred | None = None
        self.requested = requested

    def __repr__(self) -> str:
        return f"<Claim {self.label()} {self.state.value}>"

    @property
    def service(self) -> ServiceInfo | None:
        """
        The service claimed (renamed, or with a new TXT, by replacing it).
        """
        return self._service

    @service.setter
    def service(self, service: ServiceInfo | None) -> None:
        self._service = service
        self._records = None

    def forget_records(self) -> None:
        """
        The host name changed: the records are built again on next use
        (a service's SRV and a reverse mapping's PTR point to it).
        """
        self._records = None

    def label(self) -> str:
        if self.address is not None:
            return f"reverse mapping of {self.address}"
        return self.service.display() if self.service else "host name"

    @property
    def announced(self) -> bool:
        return self.state is ClaimState.ANNOUNCED

    def finish(self, result: object) -> None:
        """
        Fire the registration's Deferred once (a L{RegistrationError}
        failure or the claimed value).
        """
        done, self.done = self.done, None
        if done is None or done.called:
            return
        if isinstance(result, Exception):
            done.errback(result)
        else:
            done.callback(result)


class ReverseClaim(Claim):
    """
    The claim of the reverse mapping of one of our addresses.
    """

    __slots__ = ("address",)

    def __init__(self, address: str) -> None:
        super().__init__(ClaimKind.REVERSE, requested=reverse_name(address))
        self.address = address


class Claims:
    """
    Every claim of one responder, indexed by name, with the records each
    puts on a link.

    @ivar hostname: the host name claimed (C{lab}), renamed on conflict.
    @ivar host: its labels (C{lab.local}).
    """

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.host: Name = host_name(hostname)
        self._host_key = name_key(self.host)
        self.host_claim = Claim(ClaimKind.HOST)
        self.services: dict[Name, Claim] = {}
        #: The reverse mappings by address and by case-folded name.
        self.reverse: dict[str, Claim] = {}
        self.reverse_keys: dict[Name, Claim] = {}
        #: Requested name -> claim, for claims renamed since.
        self._requested: dict[Name, Claim] = {}
        #: Link index -> (interface, host name, its A records there).
        self._addresses: dict[int, tuple[NetworkInterface, Name, list[Record]]] = {}

    def __iter__(self) -> Iterator[Claim]:
        yield self.host_claim
        yield from self.services.values()
        yield from self.reverse.values()

    def clear(self) -> None:
        """
        Forget every service and reverse mapping (the responder stopped).
        """
        self.services.clear()
        self.reverse.clear()
        self.reverse_keys.clear()
        self._requested.clear()
        self._addresses.clear()

    def rename_host(self, hostname: str) -> None:
        self.hostname = hostname
        self.host = host_name(hostname)
        self._host_key = name_key(self.host)
        for claim in self:
            claim.forget_records()

    # -- services ------------------------------------------------------------

    def add_service(self, service: ServiceInfo, requested: Name | None = None) -> Claim:
        """
        A new claim for C{service}, found by its name and by C{requested}
        (the caller's name for it, by default the service's own).
        """
        claim = Claim(ClaimKind.SERVICE, service, requested=service.key if requested is None else requested)
        self.services[service.key] = claim
        if service.key != claim.requested:
            self._requested[claim.requested] = claim
        return claim

    def replace_service(self, claim: Claim, service: ServiceInfo) -> Claim:
        """
        A new claim for C{service} in place of C{claim} (which is
        forgotten), found by the same requested name: a service
        registered again under a new name, probed from the start.
        """
        self.remove_service(claim)
        return self.add_service(service, claim.requested)

    def rename_service(self, claim: Claim, service: ServiceInfo) -> None:
        assert claim.service is not None
        self.services.pop(claim.service.key, None)
        claim.service = service
        self.services[service.key] = claim
        if service.key != claim.requested:
            self._requested[claim.requested] = claim

    def remove_service(self, claim: Claim) -> None:
        if claim.service is not None:
            self.services.pop(claim.service.key, None)
        self._requested.pop(claim.requested, None)

    def find(self, service: ServiceInfo) -> Claim | None:
        """
        The claim registered for C{service}, by its current name or the
        name first requested.
        """
        return self.services.get(service.key) or self._requested.get(service.key)

    # -- reverse mappings ----------------------------------------------------

    def add_reverse(self, address: str) -> Claim:
        claim = ReverseClaim(address)
        self.reverse[address] = claim
        self.reverse_keys[self.key(claim)] = claim
        return claim

    def remove_reverse(self, address: str) -> Claim:
        claim = self.reverse.pop(address)
        self.reverse_keys.pop(self.key(claim), None)
        return claim

    # -- names ---------------------------------------------------------------

    def name(self, claim: Claim) -> Name:
        if claim.kind is ClaimKind.HOST:
            return self.host
        if claim.kind is ClaimKind.REVERSE:
            return claim.requested  # the address's, fixed
        assert claim.service is not None
        return claim.service.name

    def key(self, claim: Claim) -> Name:
        if claim.kind is ClaimKind.SERVICE:
            assert claim.service is not None
            return claim.service.key
        return name_key(self.name(claim))

    def owner(self, record: Record) -> Claim | None:
        """
        The claim C{record} is one of the own records of: a service's SRV
        and TXT (by name) and its type and subtype PTRs (by target), the
        host's addresses, a reverse mapping's PTR.  C{None} for a record
        no single claim owns (the C{_services._dns-sd._udp} PTR of a type,
        which every service of the type publishes) or none of ours.
        """
        key = record.key
        claim = self.services.get(key) or self.reverse_keys.get(key)
        if claim is not None:
            return claim
        if key == self._host_key:
            return self.host_claim
        if record.rtype == TYPE_PTR:
            return self.services.get(name_key(wire_name(record.data, 0)))
        return None

    def is_claimed(self, key: Name) -> bool:
        """
        Is C{key} (a case-folded name) the name of one of our claims?  One
        look-up per record of every response heard (L{named} then sorts
        out which).
        """
        return key in self.services or key in self.reverse_keys or key == self._host_key

    def named(self, keys: Collection[Name]) -> list[Claim]:
        """
        The claims whose names are among C{keys} (case-folded names), host
        first: a look-up per name in a message rather than a scan of every
        claim per message (which made our own looped-back probes and
        announcements of n services cost O(n^2)).
        """
        out = []
        if self._host_key in keys:
            out.append(self.host_claim)
        for key in keys:
            claim = self.services.get(key)
            if claim is not None:
                out.append(claim)
            claim = self.reverse_keys.get(key)
            if claim is not None:
                out.append(claim)
        return out

    # -- records -------------------------------------------------------------

    def address_records(self, iface: NetworkInterface) -> list[Record]:
        """
        The host's address records on C{iface} (its reverse mappings are
        claims of their own): an A record for every IPv4 address of that
        link, link-local included, an AAAA record for every publishable
        IPv6 address (global, ULA, link-local: see
        L{NetworkInterface.publishable_ipv6}), and none of another link
        (RFC 6762 §6.2, §14).

        Kept per link until the link's addresses or the host name change:
        probes, announcements and every received response on every link ask
        for them.
        """
        cached = self._addresses.get(iface.index)
        if cached is None or cached[0] is not iface or cached[1] != self.host:
            records = [address_record(self.host, a, HOST_TTL) for a in published_addresses(iface)]
            cached = self._addresses[iface.index] = (iface, self.host, records)
        return list(cached[2])

    def records(self, claim: Claim, iface: NetworkInterface | None, shared: bool = False) -> Sequence[Record]:
        """
        What C{claim} says on C{iface}: its unique records, and its shared
        ones too with C{shared}.  Nothing where a service is not offered or
        a reverse mapping's address is not (RFC 6762 §6.2, §14).

        A service's records are the same on every link it is on: they are
        built once, kept on the claim as one tuple, and that very tuple is
        what C{shared} returns (so every link's L{twisted_mdns.link.Link}
        references it rather than a copy: issue 13, memory per service).
        """
        if iface is None:
            return []
        if claim.kind is ClaimKind.HOST:
            return self.address_records(iface)
        if claim.kind is ClaimKind.REVERSE:
            if claim.address not in iface.published:
                return []
            ptr = claim._records
            if ptr is None:
                ptr = claim._records = ptr_record(claim.requested, self.host, HOST_TTL, cache_flush=True)
            return [ptr]
        service = claim.service
        assert service is not None
        if not service.on_interface(iface):
            return []
        records = claim._records
        if records is None:
            unique, shared_records = service_records(service, self.host)
            records = claim._records = (*unique, *shared_records)
        # The unique records (SRV, TXT) are those with the cache-flush bit.
        return records if shared else [r for r in records if r.cache_flush]

    def probe_records(self, claim: Claim, iface: NetworkInterface | None) -> list[Record]:
        """
        The records proposed in a probe (RFC 6762 §8.1): those whose name
        is the one probed.
        """
        name = self.key(claim)
        return [r for r in self.records(claim, iface) if r.key == name]
