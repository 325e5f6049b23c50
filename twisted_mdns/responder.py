"""
The mDNS responder: probing, announcing, answering, conflicts, goodbyes.

Everything here is per interface, because RFC 6762 s6.2 and s14 say what a
host says on an interface must be true of that interface: a query heard on
eth0 is answered with eth0's addresses only, probes and announcements on
each interface carry that interface's records, and a service limited to
some interfaces is invisible on the others.

Timing follows RFC 6762 and is driven by the injected reactor only (tests
use L{twisted.internet.task.Clock}):

 - s8.1 probing: a random 0-250 ms wait, three probes 250 ms apart (the
   first asks for a unicast reply), the proposed records in the authority
   section.  Registrations that start together probe together, in as few
   packets as fit (many services registered at once cost three packets per
   interface, not three each).
 - s8.2 simultaneous probes: the lexicographically later record set wins;
   the loser waits one second and probes again.
 - s8.3 announcing: two unsolicited responses one second apart.
 - s9 conflicts: a conflicting response during probing renames
   (C{My Web (2)}, C{host-2}); after announcing, the name is probed again
   and renamed only if the conflict persists; 15 conflicts within 10 s
   slow probing to one attempt per 5 s (s8.1).
 - s6 answering: unique answers at once, shared ones after 20-120 ms
   (aggregated), a TC query waits 400-500 ms for its remaining known
   answers (s7.2), known-answer suppression (s7.1), duplicate answer
   suppression (s7.4), at most one multicast of a record per second per
   interface (250 ms when defending against a probe), QU questions answered
   by unicast unless the record was not multicast on that interface in the
   last quarter of its TTL (s5.4), legacy unicast (s6.7).
 - s10.1 goodbyes (TTL 0) on unregister, on address removal and on stop.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IServiceRegistry
from twisted_mdns.message import (
    CLASS_IN,
    FLAG_AA,
    FLAG_QR,
    HEADER,
    TYPE_A,
    TYPE_ANY,
    TYPE_NSEC,
    Message,
    MessageError,
    Name,
    Question,
    Record,
    name_key,
    pack,
    pack_one,
    packet_limit,
    ptr_record,
)
from twisted_mdns.constants import MDNS_PORT
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.protocol import source_on_link
from twisted_mdns.records import (
    HOST_TTL,
    LEGACY_TTL,
    InterfaceRecords,
    ServiceInfo,
    host_name,
    host_records,
    next_host_name,
    next_service_name,
    reverse_name,
    service_records,
)

log = Logger()

PROBE_INTERVAL = 0.250
PROBE_COUNT = 3
ANNOUNCE_COUNT = 2
ANNOUNCE_INTERVAL = 1.0
TIEBREAK_WAIT = 1.0
RATE_LIMIT = 1.0
PROBE_DEFENSE_RATE_LIMIT = 0.250
CONFLICT_WINDOW = 10.0
CONFLICT_LIMIT = 15
CONFLICT_BACKOFF = 5.0
#: Bounds on what TC queries (s7.2) may make us hold while we wait.
MAX_HELD_TRUNCATED = 256
MAX_HELD_KNOWN_ANSWERS = 2000
#: Precomputed legacy replies kept at most (see Responder.fast_path).
MAX_LEGACY_CACHE = 4096

_QTAIL = struct.Struct("!HH")


class RegistrationError(Exception):
    """
    A registration could not be completed (the responder stopped, or the
    service was unregistered while probing).
    """


@dataclass(eq=False)
class _Entity:
    """
    One thing we claim a unique name for: the host, or a service instance.
    """

    kind: str  # "host" | "service" | "reverse"
    service: ServiceInfo | None = None
    state: str = "probing"  # probing | announced | withdrawn | yielded
    ready_on: set[int] = field(default_factory=set)
    conflict: str | None = None  # None | "conflict" | "lost"
    done: defer.Deferred | None = None
    #: The name first asked for, so the caller's own ServiceInfo still finds
    #: the registration after a conflict renamed it.
    requested: Name = ()
    #: (service, host name, unique, shared) as last computed: the records
    #: of a service change only when its value or the host name does.
    records: tuple | None = field(default=None, repr=False)

    #: For a reverse-mapping entity: the IPv4 address it maps.
    address: str | None = None

    def label(self) -> str:
        if self.address is not None:
            return f"reverse mapping of {self.address}"
        return self.service.display() if self.service else "host name"


def _sort_key(record: Record) -> tuple:
    return (record.rclass, record.rtype, record.data)


def compare_probe_records(ours: list[Record], theirs: list[Record]) -> int:
    """
    RFC 6762 s8.2 tie-break: compare two sorted record sets
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


@dataclass
class _Pending:
    """
    Multicast answers waiting for their delay on one interface.
    """

    answers: dict[Record, None] = field(default_factory=dict)
    additionals: dict[Record, None] = field(default_factory=dict)
    call: object = None


@implementer(IServiceRegistry)
class Responder:
    """
    Publishes the host name and services on every interface of a
    L{twisted_mdns.transport.InterfaceTransport}, with per-interface records.

    Register it as a handler of L{twisted_mdns.protocol.MDNSProtocol}; call
    L{start} once the transport's ports are open.
    """

    def __init__(
        self,
        transport,
        reactor,
        hostname: str,
        counters: Counter | None = None,
        rng: random.Random | None = None,
        publish_reverse: bool = True,
    ) -> None:
        self.transport = transport
        self.reactor = reactor
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.random = rng or random.Random()
        self.hostname = hostname
        self.host: Name = host_name(hostname)
        self._host = _Entity("host")
        self._services: dict[Name, _Entity] = {}
        #: Reverse mappings (C{5.0.0.10.in-addr.arpa PTR lab.local}), one
        #: entity per address, by address and by case-folded name.  They are
        #: probed like any unique record but never renamed for: a reverse
        #: name someone else holds (another responder on this very host,
        #: RFC 6762 s15) is given up instead.
        self.publish_reverse = publish_reverse
        self._reverse: dict[str, _Entity] = {}
        self._reverse_keys: dict[Name, _Entity] = {}
        self._views: dict[int, InterfaceRecords] = {}
        self._last_multicast: dict[tuple[int, tuple], float] = {}
        self._pending: dict[int, _Pending] = {}
        self._tc_waiting: dict[tuple[int, tuple], tuple[Message, object]] = {}
        self._batch: list[_Entity] = []
        self._batch_call = None
        self._batch_interfaces: dict[int, set[int]] = {}
        self._conflict_times: list[float] = []
        # Two kinds of key, cleared together (one dict, so whatever forgets
        # the precomputed replies forgets both):
        # (index, labels, qtype, qclass, end of question) -> (an, ar, reply
        # after the question), and (index, the query's bytes after the id
        # and flags) -> the whole reply after the id.
        self._legacy_cache: dict[tuple, tuple[int, int, bytes] | bytes] = {}
        self._chunk_memo: dict[int, tuple[tuple, list[int]]] = {}
        # The transport's reply cache (if it has one) answers exact repeats
        # of legacy questions in the port's reader; its source verdicts are
        # our on-link cache, so both are cleared together.
        self._reply_cache = getattr(transport, "reply_cache", None)
        self._onlink: dict[tuple[int, str], bool] = (
            self._reply_cache.sources if self._reply_cache is not None else {}
        )
        self._calls: set = set()
        self._running = False

    def _entities(self) -> list[_Entity]:
        return [self._host, *self._services.values(), *self._reverse.values()]

    # -- public API ----------------------------------------------------------

    def start(self) -> defer.Deferred:
        """
        Probe for the host name on every interface, then announce it.

        @return: a Deferred firing with the host name finally claimed.
        """
        self._running = True
        self._rebuild()
        self._host.state = "probing"
        # Kept here: with no interface at all the name is ours at once, and
        # the entity forgets its Deferred as it fires it.
        done = self._host.done = defer.Deferred()
        self._enqueue_probe(self._host, set(self.transport.interfaces))
        for entity in self._services.values():
            self._enqueue_probe(entity, set(self.transport.interfaces))
        self._sync_reverse()
        return done

    def register(self, service: ServiceInfo) -> defer.Deferred:
        """
        Probe for and announce C{service}.

        @return: a Deferred firing with the L{ServiceInfo} published (renamed
            if its name was taken).
        """
        if service.key in self._services:
            return defer.fail(ValueError(f"{service.display()} is already registered"))
        entity = _Entity("service", service, requested=service.key)
        done = entity.done = defer.Deferred()
        self._services[service.key] = entity
        if self._running:
            self._enqueue_probe(entity, set(self.transport.interfaces))
        return done

    def unregister(self, service: ServiceInfo) -> defer.Deferred:
        """
        Withdraw C{service} with goodbyes on every interface it was on.
        """
        entity = self._find(service)
        if entity is None:
            return defer.fail(KeyError(f"{service.display()} is not registered"))
        self._withdraw(entity)
        return defer.succeed(None)

    def update(self, service: ServiceInfo) -> defer.Deferred:
        """
        Replace an announced service's TXT record and announce the change
        (s8.4: a record update is an announcement, no probing).
        """
        entity = self._find(service)
        if entity is None:
            return defer.fail(KeyError(f"{service.display()} is not registered"))
        entity.service = entity.service.with_txt(service.txt) if entity.service else service
        self._rebuild()
        if entity.state == "announced":
            self._announce([entity], set(entity.ready_on))
        return defer.succeed(entity.service)

    def stop(self) -> defer.Deferred:
        """
        Send goodbyes for everything on every interface and cancel all
        timers.  Safe to call twice.
        """
        if self._running:
            entities = [e for e in self._entities() if e.state == "announced"]
            for index in list(self.transport.interfaces):
                records = []
                for entity in entities:
                    if index in entity.ready_on:
                        records.extend(self._entity_records(entity, index, shared=True))
                self._send_goodbyes(index, records)
        self._running = False
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()
        if self._batch_call is not None and self._batch_call.active():
            self._batch_call.cancel()
        self._batch_call = None
        for pending in self._pending.values():
            if pending.call is not None and pending.call.active():
                pending.call.cancel()
        self._pending.clear()
        for _, call in self._tc_waiting.values():
            if call.active():
                call.cancel()
        self._tc_waiting.clear()
        for entity in self._entities():
            if entity.state != "withdrawn":
                entity.state = "withdrawn"
            if entity.done is not None and not entity.done.called:
                done, entity.done = entity.done, None
                done.errback(RegistrationError("responder stopped"))
        self._services.clear()
        self._reverse.clear()
        self._reverse_keys.clear()
        self._views.clear()
        return defer.succeed(None)

    @property
    def services(self) -> list[ServiceInfo]:
        """
        The services registered (with their current, possibly renamed, names).
        """
        return [e.service for e in self._services.values() if e.service]

    def records_for(self, interface: NetworkInterface | int) -> list[Record]:
        """
        What we would answer on C{interface}: for tests, the CLI and curious
        users.
        """
        index = interface if isinstance(interface, int) else interface.index
        view = self._views.get(index)
        return view.all() if view else []

    # -- interface changes ---------------------------------------------------

    def interfaces_changed(self, change) -> None:
        """
        Follow a L{twisted_mdns.transport.TransportChange}: probe and
        announce on new interfaces, say goodbye to addresses that went away
        (on interfaces that still exist), announce new ones.
        """
        if not self._running:
            return
        for iface in change.removed:
            for entity in self._entities():
                entity.ready_on.discard(iface.index)
            self._views.pop(iface.index, None)
            pending = self._pending.pop(iface.index, None)
            if pending and pending.call is not None and pending.call.active():
                pending.call.cancel()
            self._last_multicast = {
                k: v for k, v in self._last_multicast.items() if k[0] != iface.index
            }
        for old, new in change.readdressed:
            gone = [a for a in old.ipv4 if a not in new.ipv4]
            if gone and self._host.state == "announced" and new.index in self._host.ready_on:
                old_records = self._address_records(old)
                new_records = set(self._address_records(new))
                self._send_goodbyes(new.index, [r for r in old_records if r not in new_records])
        self._sync_reverse()
        self._rebuild()
        for old, new in change.readdressed:
            if [a for a in new.ipv4 if a not in old.ipv4]:
                if self._host.state == "announced" and new.index in self._host.ready_on:
                    self._announce([self._host], {new.index})
        if change.added:
            added = {i.index for i in change.added}
            for entity in self._entities():
                if entity.state in ("withdrawn", "yielded"):
                    continue
                self._enqueue_probe(entity, added, keep_state=True)

    # -- records -------------------------------------------------------------

    def _iface(self, index: int) -> NetworkInterface | None:
        return self.transport.interfaces.get(index)

    def _entity_records(self, entity: _Entity, index: int, shared: bool = False) -> list[Record]:
        iface = self._iface(index)
        if iface is None:
            return []
        if entity.kind == "host":
            return self._address_records(iface)
        if entity.kind == "reverse":
            if not any(str(a.ip) == entity.address for a in iface.ipv4):
                return []
            return [ptr_record(reverse_name(entity.address), self.host, HOST_TTL, cache_flush=True)]
        assert entity.service is not None
        if not entity.service.on_interface(iface):
            return []
        cached = entity.records
        if cached is None or cached[0] is not entity.service or cached[1] != self.host:
            cached = entity.records = (entity.service, self.host, *service_records(entity.service, self.host))
        unique, shared_records = cached[2], cached[3]
        return unique + shared_records if shared else list(unique)

    def _address_records(self, iface: NetworkInterface) -> list[Record]:
        """
        The host's A records on C{iface} (its reverse mappings are entities
        of their own).
        """
        return [r for r in host_records(self.host, iface) if r.rtype == TYPE_A]

    def _sync_reverse(self) -> None:
        """
        One reverse-mapping entity per IPv4 address of the interfaces we run
        on: probe the new ones, withdraw (with goodbyes where the interface
        still exists) those whose address is gone.
        """
        if not self.publish_reverse or not self._running:
            return
        where: dict[str, set[int]] = {}
        for index, iface in self.transport.interfaces.items():
            for addr in iface.ipv4:
                where.setdefault(str(addr.ip), set()).add(index)
        for address in [a for a in self._reverse if a not in where]:
            entity = self._reverse.pop(address)
            self._reverse_keys.pop(self._entity_key(entity), None)
            if entity.state == "announced":
                self._withdraw(entity)
            entity.state = "withdrawn"
        for address, indexes in where.items():
            if address not in self._reverse:
                entity = _Entity("reverse", address=address)
                self._reverse[address] = entity
                self._reverse_keys[self._entity_key(entity)] = entity
                self._enqueue_probe(entity, indexes)

    def _yield(self, entity: _Entity, why: str) -> None:
        """
        Give up a reverse mapping someone else holds: no renaming (the name
        is the address's), a goodbye for what we had announced.
        """
        if entity.state == "announced":
            for index in list(entity.ready_on):
                self._send_goodbyes(index, self._entity_records(entity, index))
        entity.state = "yielded"
        entity.ready_on.clear()
        self.counters["reverse.yielded"] += 1
        log.info("{name} is held by another responder ({why}); not publishing it",
                 name=entity.label(), why=why)
        self._rebuild()

    def _probe_records(self, entity: _Entity, index: int) -> list[Record]:
        """
        The records proposed in a probe: those whose name is the one probed.
        """
        name = self._entity_key(entity)
        return [r for r in self._entity_records(entity, index) if r.key == name]

    def _entity_name(self, entity: _Entity) -> Name:
        if entity.kind == "host":
            return self.host
        if entity.kind == "reverse":
            return reverse_name(entity.address)
        return entity.service.name

    def _entity_key(self, entity: _Entity) -> Name:
        if entity.kind == "host":
            return name_key(self.host)
        if entity.kind == "reverse":
            return name_key(reverse_name(entity.address))
        return entity.service.key

    def _rebuild(self) -> None:
        """
        Recompute every interface's view from the announced entities.
        """
        views: dict[int, InterfaceRecords] = {}
        for index, iface in self.transport.interfaces.items():
            view = InterfaceRecords(iface)
            for entity in self._entities():
                if entity.state == "announced" and index in entity.ready_on:
                    for record in self._entity_records(entity, index, shared=True):
                        view.add(record)
            views[index] = view
        self._views = views
        self._legacy_cache.clear()
        self._onlink.clear()
        if self._reply_cache is not None:
            self._reply_cache.replies.clear()

    def _find(self, service: ServiceInfo) -> _Entity | None:
        entity = self._services.get(service.key)
        if entity is not None:
            return entity
        for e in self._services.values():
            if e.requested == service.key:
                return e
        return None

    # -- probing -------------------------------------------------------------

    def _later(self, delay: float, fn, *args) -> None:
        call = None

        def run() -> None:
            self._calls.discard(call)
            fn(*args)

        call = self.reactor.callLater(delay, run)
        self._calls.add(call)

    def _enqueue_probe(self, entity: _Entity, interfaces: set[int], keep_state: bool = False) -> None:
        if not interfaces:
            # Nowhere to probe: the name is ours by default (no one to ask).
            if not keep_state:
                self._established(entity, set())
            return
        if not keep_state:
            entity.state = "probing"
        entity.conflict = None
        # An entity is in _batch exactly when its id is in _batch_interfaces
        # (a list membership test made registering n services O(n^2)).
        if id(entity) not in self._batch_interfaces:
            self._batch.append(entity)
        self._batch_interfaces.setdefault(id(entity), set()).update(interfaces)
        if self._batch_call is None or not self._batch_call.active():
            delay = self.random.uniform(0, PROBE_INTERVAL)
            if self._recent_conflicts() >= CONFLICT_LIMIT:
                delay = CONFLICT_BACKOFF
            self._batch_call = self.reactor.callLater(delay, self._start_batch)

    def _recent_conflicts(self) -> int:
        now = self.reactor.seconds()
        self._conflict_times = [t for t in self._conflict_times if now - t < CONFLICT_WINDOW]
        return len(self._conflict_times)

    def _start_batch(self) -> None:
        self._batch_call = None
        batch = [(e, self._batch_interfaces.pop(id(e), set())) for e in self._batch]
        self._batch = []
        self._probe_round(batch, 0)

    def _probe_round(self, batch: list[tuple[_Entity, set[int]]], n: int) -> None:
        if not self._running:
            return
        alive = []
        for entity, ifaces in batch:
            if entity.state == "withdrawn":
                continue
            if entity.conflict is not None:
                self._probe_failed(entity, ifaces)
                continue
            alive.append((entity, ifaces & set(self.transport.interfaces)))
        if not alive:
            return
        if n == PROBE_COUNT:
            self._established_many(alive)
            return
        by_iface: dict[int, list[tuple[_Entity, list[Record]]]] = {}
        for entity, ifaces in alive:
            for index in ifaces:
                proposed = self._probe_records(entity, index)
                if proposed:  # a service limited elsewhere is not probed here
                    by_iface.setdefault(index, []).append((entity, proposed))
        for index, entities in by_iface.items():
            questions, authorities = [], []
            for entity, proposed in entities:
                name = self._entity_name(entity)
                questions.append(Question(name, TYPE_ANY, unicast=(n == 0)))
                authorities.extend(proposed)
            self._send_chunked(index, questions, authorities)
            self.counters["probes.sent"] += 1
        self._later(PROBE_INTERVAL, self._probe_round, alive, n + 1)

    def _send_chunked(self, index: int, questions: list[Question], authorities: list[Record]) -> None:
        """
        Send probe questions with their authority records, splitting across
        datagrams by question so each probe stays with its own records.
        """
        iface = self._iface(index)
        if iface is None:
            return
        limit = packet_limit(iface.mtu)
        by_key: dict[Name, list[Record]] = {}
        for r in authorities:
            by_key.setdefault(r.key, []).append(r)
        # The three probes of a batch differ only in the QU bit, which does
        # not change sizes: split once, reuse the split for the next two.
        signature = (limit, tuple((q.name, q.qtype, q.qclass) for q in questions), tuple(authorities))
        memo = self._chunk_memo.get(index)
        if memo is None or memo[0] != signature:
            memo = self._chunk_memo[index] = (signature, self._chunk_ends(limit, questions, by_key))
        start = 0
        for end in memo[1]:
            chunk_q = questions[start:end]
            chunk_a = [r for q in chunk_q for r in by_key.get(q.key, [])]
            self._send(index, pack(questions=chunk_q, authorities=chunk_a, limit=9000))
            start = end

    @staticmethod
    def _chunk_ends(limit: int, questions: list[Question], by_key: dict[Name, list[Record]]) -> list[int]:
        """
        Where each probe datagram ends: as many questions (with their
        records) as fit under C{limit}, at least one.
        """
        ends: list[int] = []
        chunk_q: list[Question] = []
        chunk_a: list[Record] = []
        size = 0  # at least the chunk's packed size
        for i, q in enumerate(questions):
            mine = by_key.get(q.key, [])
            # More names in a packet only help compression, so what q and its
            # records take packed alone bounds what they add to the chunk;
            # the chunk is packed again only when that bound is over the
            # limit (repacking it for every question made probing n
            # services O(n * chunk) encodings).  Same chunks as always.
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

    def _probe_failed(self, entity: _Entity, ifaces: set[int]) -> None:
        why, entity.conflict = entity.conflict, None
        if entity.kind == "reverse":
            self._yield(entity, "conflict while probing")
            return
        if why == "lost":
            log.info("lost a simultaneous probe for {name}; probing again in 1 s", name=entity.label())
            self._later(TIEBREAK_WAIT, self._enqueue_probe, entity, ifaces)
            return
        self.counters["conflicts"] += 1
        self._conflict_times.append(self.reactor.seconds())
        if entity.kind == "host":
            old = self.hostname
            self.hostname = next_host_name(self.hostname)
            self.host = host_name(self.hostname)
            log.warn("host name {old}.local is taken; trying {new}.local", old=old, new=self.hostname)
            # Every SRV target and reverse mapping follows the host name.
            self._rebuild()
            for other in [*self._services.values(), *self._reverse.values()]:
                if other.state == "announced":
                    self._announce([other], set(other.ready_on))
        else:
            old_service = entity.service
            new_service = old_service.renamed(next_service_name(old_service.instance))
            self._services.pop(old_service.key, None)
            entity.service = new_service
            self._services[new_service.key] = entity
            log.warn("service name {old} is taken; trying {new}",
                     old=old_service.display(), new=new_service.display())
        entity.state = "probing"
        entity.ready_on.clear()
        self._rebuild()
        self._enqueue_probe(entity, set(self.transport.interfaces))

    def _established(self, entity: _Entity, ifaces: set[int]) -> None:
        self._established_many([(entity, ifaces)])

    def _established_many(self, batch: list[tuple[_Entity, set[int]]]) -> None:
        """
        The names of a probe batch are ours: one rebuild and one
        announcement for the whole batch (per rebuild and announcement an
        entity, registering n services was O(n^2)), then each Deferred.
        """
        firsts = []
        for entity, ifaces in batch:
            firsts.append(entity.state != "announced")
            entity.state = "announced"
            entity.ready_on |= ifaces
        self._rebuild()
        # The host alone (its own announcement, as before), services that
        # went through probing together in as few packets as fit.
        # The host's own records (its addresses and their reverse mappings)
        # travel together, per interface.
        groups: dict[tuple, list[_Entity]] = {}
        for entity, ifaces in batch:
            kind = "service" if entity.kind == "service" else "host"
            for index in ifaces:
                groups.setdefault((kind, index), []).append(entity)
        for (_, index), entities in groups.items():
            self._announce(entities, {index})
        for (entity, _), first in zip(batch, firsts):
            if first and entity.done is not None:
                done, entity.done = entity.done, None
                if entity.kind == "host":
                    log.info("host name {name}.local claimed", name=self.hostname)
                    done.callback(self.hostname)
                else:
                    log.info("service {name} registered", name=entity.service.display())
                    done.callback(entity.service)

    # -- announcing and goodbyes ---------------------------------------------

    def _announce(self, entities: list[_Entity], ifaces: set[int], count: int = ANNOUNCE_COUNT) -> None:
        for index in ifaces:
            records: list[Record] = []
            extra: list[Record] = []
            for entity in entities:
                if index not in entity.ready_on:
                    continue
                records.extend(self._entity_records(entity, index, shared=True))
                if not extra and entity.kind == "service" and self._host.state == "announced":
                    extra.extend(r for r in host_records(self.host, self._iface(index)) if r.rtype == TYPE_A)
            if records:
                # Several services share the enumeration PTR and the host's
                # addresses: each once.
                records = list(dict.fromkeys(records))
                mine = set(records)
                self._multicast(index, records, [r for r in dict.fromkeys(extra) if r not in mine])
        if count > 1:
            self._later(ANNOUNCE_INTERVAL, self._reannounce, entities, ifaces, count - 1)
        self.counters["announcements"] += 1

    def _reannounce(self, entities, ifaces, count) -> None:
        live = [e for e in entities if e.state == "announced"]
        if live and self._running:
            self._announce(live, ifaces, count)

    def _withdraw(self, entity: _Entity) -> None:
        if entity.state == "announced":
            for index in list(entity.ready_on):
                records = self._entity_records(entity, index, shared=True)
                # A shared PTR another registration still publishes (the
                # _services._dns-sd._udp PTR of a type) must not be withdrawn.
                others = self._published_by_others(entity, index)
                self._send_goodbyes(index, [r for r in records if r not in others])
        entity.state = "withdrawn"
        entity.ready_on.clear()
        if entity.service is not None:
            self._services.pop(entity.service.key, None)
            # The enumeration PTR is shared by every service of the type.
        if entity.done is not None and not entity.done.called:
            done, entity.done = entity.done, None
            done.errback(RegistrationError("unregistered before probing finished"))
        self._rebuild()

    def _published_by_others(self, entity: _Entity, index: int) -> set[Record]:
        out: set[Record] = set()
        for other in self._entities():
            if other is not entity and other.state == "announced" and index in other.ready_on:
                out.update(self._entity_records(other, index, shared=True))
        return out

    def _send_goodbyes(self, index: int, records: Iterable[Record]) -> None:
        records = list(dict.fromkeys(records))
        if not records:
            return
        self._send(index, self._pack_response([r.with_ttl(0) for r in records], [], index))
        self.counters["goodbyes.sent"] += len(records)

    # -- sending -------------------------------------------------------------

    def _pack_response(self, answers, additionals, index: int) -> list[bytes]:
        iface = self._iface(index)
        return pack(
            flags=FLAG_QR | FLAG_AA,
            answers=answers,
            additionals=additionals,
            limit=packet_limit(iface.mtu if iface else None),
        )

    def _send(self, index: int, packets: list[bytes], destination=None, source="0.0.0.0") -> None:
        for packet in packets:
            if not self.transport.send(packet, index, destination, source):
                self.counters["errors.send"] += 1

    def _multicast(self, index: int, answers: list[Record], additionals: list[Record]) -> None:
        now = self.reactor.seconds()
        for record in answers:
            self._last_multicast[(index, record.identity)] = now
        self._send(index, self._pack_response(answers, additionals, index))

    # -- handling received messages -------------------------------------------

    def query_received(self, message: Message, source, context: InterfaceContext) -> None:
        if not self._running:
            return
        index = context.index
        if message.authorities:
            self._check_simultaneous_probe(message, context)
        view = self._views.get(index)
        if view is None:
            return
        if message.truncated and source[1] == MDNS_PORT:
            self._stash_truncated(message, source, context)
            return
        key = (index, tuple(source))
        earlier = self._tc_waiting.pop(key, None)
        if earlier is not None:
            # s7.2: the continuation of a truncated query.
            first, call = earlier
            if call.active():
                call.cancel()
            message = Message(
                first.id, first.flags & ~0x0200, first.questions,
                first.answers + message.answers, first.authorities, first.additionals,
            )
        self._answer(message, source, context, view)

    def _stash_truncated(self, message: Message, source, context) -> None:
        """
        s7.2: hold a TC query 400-500 ms for the rest of its known answers.
        The deadline is the first packet's (more TC packets do not extend
        it), and what is held is bounded: a querier that keeps sending TC
        packets cannot make us hold its records, or wait, for ever.
        """
        key = (context.index, tuple(source))
        earlier = self._tc_waiting.get(key)
        if earlier is not None:
            first, call = earlier
            known = first.answers + message.answers
            if len(known) > MAX_HELD_KNOWN_ANSWERS:
                self.counters["dropped.known-answers-over-limit"] += 1
                known = known[:MAX_HELD_KNOWN_ANSWERS]
            self._tc_waiting[key] = (
                Message(first.id, first.flags, first.questions or message.questions,
                        known, first.authorities, first.additionals),
                call,
            )
            return
        if len(self._tc_waiting) >= MAX_HELD_TRUNCATED:
            self.counters["dropped.truncated-over-limit"] += 1
            return
        delay = self.random.uniform(0.400, 0.500)
        call = self.reactor.callLater(delay, self._tc_expired, key, context)
        self._tc_waiting[key] = (message, call)

    def _tc_expired(self, key, context) -> None:
        entry = self._tc_waiting.pop(key, None)
        if entry is None:
            return
        message, _ = entry
        view = self._views.get(context.index)
        if view is not None and self._running:
            self._answer(message, key[1], context, view)

    def _answer(self, message: Message, source, context: InterfaceContext, view: InterfaceRecords) -> None:
        index = context.index
        legacy = source[1] != MDNS_PORT
        direct_unicast = not context.multicast
        is_probe = bool(message.authorities)
        answers: dict[Record, bool] = {}  # record -> asked with QU
        for q in message.questions:
            if q.qclass not in (CLASS_IN, TYPE_ANY):
                continue
            found = view.lookup(q.key, q.qtype)
            if not found and q.qtype != TYPE_NSEC:
                nsec = view.nsec_for(q.key)
                if nsec is not None:
                    found = [nsec]
            for record in found:
                answers[record] = answers.get(record, False) or q.unicast
        if not answers:
            return
        # s7.1 known-answer suppression: the querier already has it with at
        # least half our TTL left.
        known = {r.identity: r.ttl for r in message.answers}
        for record in list(answers):
            ttl = known.get(record.identity)
            if ttl is not None and ttl >= record.ttl / 2:
                del answers[record]
                self.counters["suppressed.known-answer"] += 1
        if not answers:
            return
        additionals: dict[Record, None] = {}
        for record in answers:
            for extra in view.additional_for(record):
                if extra not in answers:
                    additionals[extra] = None
        if legacy:
            self._legacy_reply(message, source, context, list(answers), list(additionals))
            return
        if direct_unicast:
            # s5.5: a query sent straight to us, from port 5353: unicast back.
            self._send(index, self._pack_response(list(answers), list(additionals), index), tuple(source), context.destination)
            self.counters["answered.unicast"] += 1
            self.counters["answered"] += 1
            return
        now = self.reactor.seconds()
        unicast, multicast = [], []
        for record, qu in answers.items():
            last = self._last_multicast.get((index, record.identity))
            recently = last is not None and now - last < record.ttl / 4
            if qu and recently and not is_probe:
                unicast.append(record)
            else:
                multicast.append(record)
        if unicast:
            extra = [r for r in additionals if r not in unicast]
            self._send(index, self._pack_response(unicast, extra, index), tuple(source))
            self.counters["answered.unicast"] += 1
        if multicast:
            limit = PROBE_DEFENSE_RATE_LIMIT if is_probe else RATE_LIMIT
            allowed = []
            for record in multicast:
                last = self._last_multicast.get((index, record.identity))
                if last is not None and now - last < limit:
                    self.counters["suppressed.rate-limit"] += 1
                    continue
                allowed.append(record)
            if allowed:
                self._queue_multicast(index, allowed, list(additionals), shared=any(not r.cache_flush for r in allowed))
        if unicast or (multicast and allowed):
            self.counters["answered"] += 1

    def _queue_multicast(self, index: int, answers: list[Record], additionals: list[Record], shared: bool) -> None:
        """
        s6: unique answers go at once; when any answer is shared, wait
        20-120 ms so other responders' answers can suppress ours (s7.4) and
        several queries' answers travel together.
        """
        if not shared:
            self._multicast(index, answers, [r for r in additionals if r not in answers])
            self.counters["answered.multicast"] += 1
            return
        pending = self._pending.get(index)
        if pending is None:
            pending = self._pending[index] = _Pending()
            pending.call = self.reactor.callLater(
                self.random.uniform(0.020, 0.120), self._flush_pending, index
            )
        for record in answers:
            pending.answers[record] = None
        for record in additionals:
            pending.additionals[record] = None

    def _flush_pending(self, index: int) -> None:
        pending = self._pending.pop(index, None)
        if pending is None or not pending.answers or not self._running:
            return
        answers = list(pending.answers)
        additionals = [r for r in pending.additionals if r not in pending.answers]
        self._multicast(index, answers, additionals)
        self.counters["answered.multicast"] += 1

    def _legacy_reply(self, message, source, context, answers, additionals) -> None:
        """
        s6.7: echo the id and the question, TTL at most 10 s, no cache-flush
        bit, unicast to the querier's own port; and remember the reply so
        the next identical question is answered without parsing.
        """
        if not self._on_link(source[0], context):
            self.counters["dropped.off-link"] += 1
            return
        def legacy(r: Record) -> Record:
            return r.with_ttl(min(r.ttl, LEGACY_TTL)).with_flush(False)

        try:
            packet = pack_one(
                ident=message.id,
                flags=FLAG_QR | FLAG_AA,
                questions=[Question(q.name, q.qtype, False, q.qclass) for q in message.questions],
                answers=[legacy(r) for r in answers],
                additionals=[legacy(r) for r in additionals],
                limit=packet_limit(context.interface.mtu if context.interface else None),
            )
        except MessageError:
            # s6.7 says echo the question section; one that cannot be echoed
            # in a datagram on this link is not answered.
            self.counters["dropped.legacy-too-large"] += 1
            return
        self._send(context.index, [packet], tuple(source), context.destination if not context.multicast else "0.0.0.0")
        self.counters["answered.legacy"] += 1
        self.counters["answered"] += 1
        if len(message.questions) == 1 and not message.answers:
            q = message.questions[0]
            qlen = 12 + sum(len(l) + 1 for l in q.name) + 1 + 4
            _, _, _, an, ns, ar = HEADER.unpack_from(packet)
            if ns == 0:
                if len(self._legacy_cache) >= MAX_LEGACY_CACHE:
                    # Bounded: every type asked of a name we own has a
                    # reply (an NSEC), so the keys are the askers' to choose.
                    self._legacy_cache.clear()
                    self.counters["legacy-cache.cleared"] += 1
                key = (context.index, q.key, q.qtype, q.qclass, qlen)
                self._legacy_cache[key] = (an, ar, packet[qlen:])

    def fast_path(self, data: bytes, source, context: InterfaceContext) -> bool:
        """
        Answer a repeated legacy unicast question from the precomputed reply,
        without parsing: the throughput path.  Anything unusual (several
        questions, known answers, compression in the question, a question
        not seen before) returns False and takes the full path.
        """
        if source[1] == MDNS_PORT or len(data) < 17:
            return False
        # The same question in the same bytes as before (the usual case: a
        # client repeating itself): one look-up instead of parsing labels.
        if not data[2] & 0xF8:  # QR and opcode clear
            reply = self._legacy_cache.get((context.index, data[4:]))
            if reply is not None:
                return self._send_legacy(data[:2] + reply, source, context)
        ident, flags, qd, an, ns, ar = HEADER.unpack_from(data)
        if flags & 0xF800 or qd != 1 or an or ns or ar > 1:
            return False
        offset = 12
        labels = []
        length = len(data)
        while True:
            if offset >= length:
                return False
            n = data[offset]
            if n == 0:
                offset += 1
                break
            if n > 63:
                return False
            labels.append(data[offset + 1 : offset + 1 + n].lower())
            offset += 1 + n
        if offset + 4 > length:
            return False
        qtype, qclass = _QTAIL.unpack_from(data, offset)
        qend = offset + 4
        if ar:
            # Exactly one complete OPT record (EDNS0, as dig sends) may
            # follow; anything else is for the parser to judge.
            if (
                length < qend + 11
                or data[qend] != 0
                or data[qend + 1 : qend + 3] != b"\x00\x29"
                or qend + 11 + int.from_bytes(data[qend + 9 : qend + 11], "big") != length
            ):
                return False
        key = (context.index, tuple(labels), qtype, qclass & 0x7FFF, qend)
        cached = self._legacy_cache.get(key)
        if cached is None:
            return False
        an_count, ar_count, tail = cached
        packet = HEADER.pack(ident, FLAG_QR | FLAG_AA, 1, an_count, 0, ar_count) + data[12:offset] + _QTAIL.pack(qtype, qclass & 0x7FFF) + tail
        if ar == 0 and qend == length and len(self._legacy_cache) < MAX_LEGACY_CACHE:
            self._legacy_cache[(context.index, data[4:])] = packet[2:]
            if self._reply_cache is not None:
                self._reply_cache.replies[(context.index, data[2:])] = packet[2:]
        return self._send_legacy(packet, source, context)

    def _send_legacy(self, packet: bytes, source, context: InterfaceContext) -> bool:
        if not self._on_link(source[0], context):
            self.counters["dropped.off-link"] += 1
            return True
        dest_source = context.destination if not context.multicast else "0.0.0.0"
        if not self.transport.send(packet, context.index, source, dest_source):
            self.counters["errors.send"] += 1
        self.counters["answered.legacy"] += 1
        self.counters["answered"] += 1
        return True

    def _on_link(self, address: str, context: InterfaceContext) -> bool:
        """
        s11 on-link check, cached per (interface, source): the legacy path
        answers thousands of queries a second from a few sources, and the
        transport's reply cache reads the same verdicts.
        """
        key = (context.index, address)
        hit = self._onlink.get(key)
        if hit is None:
            if len(self._onlink) > 4096:
                self._onlink.clear()
            hit = self._onlink[key] = source_on_link(address, context)
        return hit

    def _check_simultaneous_probe(self, message: Message, context: InterfaceContext) -> None:
        """
        s8.2: another host probes for a name we are probing: the
        lexicographically later record set wins.
        """
        index = context.index
        by_key: dict[Name, list[Record]] = {}
        for r in message.authorities:
            by_key.setdefault(r.key, []).append(r)
        for entity in self._entities_named(by_key):
            theirs = by_key[self._entity_key(entity)]
            ours = self._probe_records(entity, index)
            if entity.kind == "reverse":
                # Another responder (on this host, s15) wants this address's
                # reverse name: let it have it rather than make it rename.
                if entity.state in ("probing", "announced") and any(r not in ours for r in theirs):
                    if entity.state == "announced":
                        self._yield(entity, "probed for by another responder")
                    else:
                        entity.conflict = "conflict"
                continue
            if entity.state != "probing":
                continue
            verdict = compare_probe_records(ours, theirs)
            if verdict < 0 and entity.conflict is None:
                self.counters["probes.lost-tiebreak"] += 1
                entity.conflict = "lost"

    def _entities_named(self, keys) -> list[_Entity]:
        """
        The host and the services whose names are among C{keys} (case-folded
        names), host first: a look-up per name in a message rather than a
        scan of every entity per message, which made our own looped-back
        probes and announcements of n services cost O(n^2).
        """
        out = []
        if name_key(self.host) in keys:
            out.append(self._host)
        for key in keys:
            entity = self._services.get(key)
            if entity is not None and entity.service is not None and entity.service.key == key:
                out.append(entity)
            entity = self._reverse_keys.get(key)
            if entity is not None:
                out.append(entity)
        return out

    def response_received(self, message: Message, source, context: InterfaceContext) -> None:
        if not self._running:
            return
        index = context.index
        records = message.answers + message.additionals
        if not records:
            return
        # s7.4 duplicate answer suppression.
        pending = self._pending.get(index)
        if pending is not None:
            for record in message.answers:
                if record in pending.answers and record.ttl > 0:
                    ours = next(r for r in pending.answers if r == record)
                    if record.ttl >= ours.ttl / 2:
                        del pending.answers[ours]
                        self.counters["suppressed.duplicate-answer"] += 1
        from_us = any(iface.has_address(source[0]) for iface in self.transport.interfaces.values())
        by_key: dict[Name, list[Record]] = {}
        for r in records:
            if r.ttl > 0:
                by_key.setdefault(r.key, []).append(r)
        for entity in self._entities_named(by_key):
            if entity.state == "withdrawn":
                continue
            theirs = by_key[self._entity_key(entity)]
            if from_us:
                mine = set()
                for ix in self.transport.interfaces:
                    mine.update(self._entity_records(entity, ix))
            else:
                mine = set(self._entity_records(entity, index))
            if entity.state == "probing":
                # s8.1: any record with the name being probed, unless it is
                # what we ourselves propose (our own probe looped back).
                if any(r not in mine for r in theirs):
                    if entity.conflict is None:
                        entity.conflict = "conflict"
                        log.info("conflict while probing {name} on {iface}: {records}",
                                 name=entity.label(), iface=context.name, records=theirs)
            elif entity.state == "announced":
                # s9: same name, type and class with other data.
                my_types = {r.rtype for r in mine}
                clash = [r for r in theirs if r.rtype in my_types and r not in mine and r.cache_flush]
                if clash and index in entity.ready_on and entity.kind == "reverse":
                    self._yield(entity, "announced by another responder")
                elif clash and index in entity.ready_on:
                    self.counters["conflicts.late"] += 1
                    log.warn("late conflict for {name} on {iface}: {records}; probing again",
                             name=entity.label(), iface=context.name, records=clash)
                    entity.state = "probing"
                    entity.ready_on.clear()
                    self._rebuild()
                    self._enqueue_probe(entity, set(self.transport.interfaces))
