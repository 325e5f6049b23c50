# -*- test-case-name: tests.test_cli_publish -*-
"""
One extra address record, C{NAME.local A ADDRESS} (C{AAAA} for an IPv6
address), published on every interface of a transport: what
C{avahi-publish -a} does, for a device that cannot speak mDNS itself (a
printer, a camera).

The record is unique (RFC 6762 §2), so it is probed before use (§8.1: a
random 0-250 ms delay, three probes 250 ms apart, the first asking for a
unicast reply), with the simultaneous-probe tie-break of §8.2 (the loser
waits one second and probes again); then announced twice, one second apart
(§8.3); then answered (§6: at once, being unique; QU questions from port
5353 unicast (§5.4), legacy questions (§6.7) unicast with the query id and
question echoed, TTL at most 10 s and no cache-flush bit; known answers with
at least half the TTL left suppress the answer (§7.1); at most one
multicast per second per interface (§6.2)).  A response claiming the name
with other data while probing is a conflict: the registration fails, as
avahi-publish's does (it does not rename an address).  After announcing, a
conflicting response makes us probe again (§9).  Stopping multicasts a
goodbye (TTL 0) on every interface (§10.1).
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from twisted_mdns.constants import (
    FLAG_AA,
    FLAG_QR,
    HOST_TTL,
    LEGACY_TTL,
    MDNS_PORT,
    TYPE_ANY,
)
from twisted_mdns.message import Message, Question, Record, a_record, aaaa_record, pack, pack_one
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.records import host_name
from twisted_mdns.responder import compare_probe_records

log = Logger()

#: RFC 6762 §8.1 timings, seconds.
PROBE_WAIT = 0.25
PROBE_COUNT = 3
#: §8.2: the loser of a simultaneous probe waits this long.
TIE_BREAK_WAIT = 1.0
#: §8.3: announcements, one second apart.
ANNOUNCE_COUNT = 2
ANNOUNCE_WAIT = 1.0
#: §6.2: a record is multicast at most once per second per interface.
MULTICAST_INTERVAL = 1.0


class AddressConflictError(Exception):
    """
    Another host already holds the name with other data.
    """


class AddressPublisher:
    """
    Publishes C{NAME.local A ADDRESS} (or C{AAAA}) on every interface of
    C{transport}.

    Add it to the protocol's handlers (it has C{query_received} and
    C{response_received}); L{start} probes and announces; L{stop} says
    goodbye.

    @ivar record: the A or AAAA record published.
    """

    def __init__(
        self, transport: Any, reactor: Any, name: str, address: str,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.reactor = reactor
        self.name = host_name(name)
        make = aaaa_record if ":" in address else a_record
        self.record = make(self.name, address, HOST_TTL, cache_flush=True)
        self.random = rng or random.Random()
        self.state = "idle"  # idle | probing | announced | failed | stopped
        self._probes_sent = 0
        self._calls: list[IDelayedCall] = []
        self._last_multicast: dict[int, float] = {}
        self._done: defer.Deferred[Record] | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> defer.Deferred[Record]:
        """
        Probe, then announce.

        @return: fires with the record once it is ours, or fails with
            L{AddressConflictError}.
        """
        self._done = defer.Deferred()
        self._probe_after(self.random.uniform(0, PROBE_WAIT))
        return self._done

    def stop(self) -> None:
        """
        Multicast a goodbye on every interface if the record was announced.
        """
        self._cancel_calls()
        if self.state == "announced":
            self._multicast(self.record.with_ttl(0), force=True)
        self.state = "stopped"

    # -- probing and announcing --------------------------------------------------

    def _later(self, delay: float, f: Any, *args: Any) -> None:
        self._calls = [c for c in self._calls if c.active()]
        self._calls.append(self.reactor.callLater(delay, f, *args))

    def _cancel_calls(self) -> None:
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []

    def _probe_after(self, delay: float) -> None:
        self.state = "probing"
        self._probes_sent = 0
        self._cancel_calls()
        self._later(delay, self._probe)

    def _probe(self) -> None:
        if self.state != "probing":
            return
        if self._probes_sent == PROBE_COUNT:
            self._announce(ANNOUNCE_COUNT)
            return
        question = Question(self.name, TYPE_ANY, unicast=self._probes_sent == 0)
        for index in list(self.transport.interfaces):
            # The proposed record, without the cache-flush bit (it is not
            # an answer: RFC 6762 §10.2 sets it in responses only).
            proposed = self.record.with_flush(False)
            for packet in pack(questions=[question], authorities=[proposed]):
                self.transport.send(packet, index)
        self._probes_sent += 1
        self._later(PROBE_WAIT, self._probe)

    def _announce(self, remaining: int) -> None:
        if self.state not in ("probing", "announced"):
            return
        first = self.state == "probing"
        self.state = "announced"
        self._multicast(self.record, force=True)
        if first:
            log.info("address {name} -> {address} published",
                     name=self._text(), address=str(self.record.rdata))
            done, self._done = self._done, None
            if done is not None:
                done.callback(self.record)
        if remaining > 1:
            self._later(ANNOUNCE_WAIT, self._announce, remaining - 1)

    def _fail(self, why: str) -> None:
        self._cancel_calls()
        self.state = "failed"
        done, self._done = self._done, None
        if done is not None:
            done.errback(AddressConflictError(why))

    def _text(self) -> str:
        return ".".join(label.decode("utf-8", "replace") for label in self.name)

    # -- sending -------------------------------------------------------------------

    def _multicast(self, record: Record, force: bool = False, only: int | None = None) -> None:
        now = self.reactor.seconds()
        targets = list(self.transport.interfaces) if only is None else [only]
        for index in targets:
            last = self._last_multicast.get(index)
            if not force and last is not None and now - last < MULTICAST_INTERVAL:
                continue
            self._last_multicast[index] = now
            for packet in pack(flags=FLAG_QR | FLAG_AA, answers=[record]):
                self.transport.send(packet, index)

    # -- traffic in ----------------------------------------------------------------

    def _ours(self, record: Record) -> bool:
        return record.key == self.record.key

    def query_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        Answer questions for the name (once announced), and run the §8.2
        tie-break against another host probing for it.
        """
        if self.state == "probing" and message.is_probe:
            theirs = [r for r in message.authorities if self._ours(r)]
            if theirs and compare_probe_records([self.record], theirs) < 0:
                log.info("{name}: lost a simultaneous probe; probing again in 1 s",
                         name=self._text())
                self._probe_after(TIE_BREAK_WAIT)
            return
        if self.state != "announced":
            return
        asked = [q for q in message.questions if q.matches(self.record)]
        if not asked:
            return
        legacy = source[1] != MDNS_PORT
        if legacy:
            # §6.7: one datagram, id and question echoed, short TTL, no
            # cache-flush bit.
            reply = self.record.with_ttl(min(self.record.ttl, LEGACY_TTL)).with_flush(False)
            packet = pack_one(ident=message.id, flags=FLAG_QR | FLAG_AA,
                              questions=asked, answers=[reply])
            self.transport.send(packet, context.index, source)
            return
        for known in message.answers:
            if known == self.record and known.ttl >= self.record.ttl / 2:
                return  # §7.1 known-answer suppression
        if all(q.unicast for q in asked):
            for packet in pack(flags=FLAG_QR | FLAG_AA, answers=[self.record]):
                self.transport.send(packet, context.index, source)
            return
        self._multicast(self.record, only=context.index)

    def response_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        Someone else answering for the name with other data: a conflict
        (§8.1 while probing, §9 afterwards).
        """
        if self.state not in ("probing", "announced"):
            return
        for record in message.answers + message.additionals:
            if not self._ours(record) or record.ttl == 0:
                continue
            if record == self.record:
                continue  # the same data: not a conflict (§9)
            if self.state == "probing":
                self._fail(f"{self._text()} is already in use on {context.name} "
                           f"(from {source[0]})")
            else:
                log.warn("{name}: conflicting answer from {source} on {iface}; probing again",
                         name=self._text(), source=source[0], iface=context.name)
                self._probe_after(self.random.uniform(0, PROBE_WAIT))
            return
