# -*- test-case-name: tests.test_responder -*-
"""
The responder's engine: the public API, and following links as they come
and go.

Each protocol phase lives in its own module (claims, probing, announcing,
answering, truncated, legacy, conflicts); the engine wires them together,
keeps one L{twisted_mdns.link.Link} per link we run on, and keeps every
claim's records in the views of exactly the links it is announced on
(RFC 6762 §6.2, §14), updated claim by claim: registering, updating or
removing one service costs the same whatever else is published, and a
link coming or going costs what that link costs.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable, Iterable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IServiceRegistry
from twisted_mdns.link import Link, Links
from twisted_mdns.message import Message, Name, Record
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.records import ServiceInfo, published_addresses
from twisted_mdns.responder.announcing import Announcer
from twisted_mdns.responder.answering import Answerer
from twisted_mdns.responder.claims import NO_LINKS, Claim, ClaimKind, ClaimState, Claims, shared_links
from twisted_mdns.responder.conflicts import Conflicts
from twisted_mdns.responder.host_renames import HostRenames
from twisted_mdns.responder.legacy import LegacyReplies, LegacyResponder
from twisted_mdns.responder.probing import Batch, Prober
from twisted_mdns.responder.sending import Sender
from twisted_mdns.responder.shared import Shared
from twisted_mdns.responder.truncated import TruncatedQueries
from twisted_mdns.timers import Timers

log = Logger()


class RegistrationError(Exception):
    """
    A registration could not be completed (the responder stopped, or the
    service was unregistered while probing).
    """


@implementer(IServiceRegistry)
class Responder:
    """
    Publishes the host name and services on every interface of a
    L{twisted_mdns.transport.InterfaceTransport}, with per-link records.

    Register it as a handler of L{twisted_mdns.protocol.MDNSProtocol} (and
    its L{fast_path} as the protocol's); call L{start} once the transport's
    ports are open.

    @ivar links: link index -> its L{Link}, for the links we run on.
    @ivar legacy_replies: the legacy reply store (see
        L{twisted_mdns.responder.legacy}); a transport with a
        C{serve_replies} method is given it, for its ports' readers.
    """

    def __init__(
        self,
        transport: Any,
        reactor: IReactorTime,
        hostname: str,
        counters: Counter | None = None,
        rng: random.Random | None = None,
        publish_reverse: bool = True,
    ) -> None:
        self.transport = transport
        self.reactor = reactor
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.random = rng or random.Random()
        #: Reverse mappings (C{5.0.0.10.in-addr.arpa PTR lab.local}), one
        #: claim per address of the links we run on.
        self.publish_reverse = publish_reverse
        self.claims = Claims(hostname)
        self.links = Links(reactor)
        self.timers = Timers(reactor)
        self._running = False
        self.sender = Sender(transport, reactor, self.counters)
        self.legacy = LegacyResponder(transport, self.counters)
        self.legacy_replies: LegacyReplies = self.legacy.store
        serve = getattr(transport, "serve_replies", None)
        if serve is not None:
            serve(self.legacy_replies)
        shared = Shared(reactor, self.timers, self.random, self.links, self.claims, self.sender, self.counters, self.is_running)
        self.announcer = Announcer(shared)
        self.prober = Prober(shared, won=self._probes_won, failed=self._probe_failed, backing_off=self._backing_off)
        self.host_renames = HostRenames(
            shared, self.prober, self.announcer, publish=self._publish, withdraw=self._unpublish,
        )
        self.conflicts = Conflicts(
            shared, self.prober, withdraw=self._unpublish, host_renamed=self.host_renames.renamed,
            own_address=self.links.is_ours,
        )
        self.answerer = Answerer(shared, self.legacy)
        self.truncated = TruncatedQueries(shared, self.answerer.answer)
        #: The legacy fast path, for L{twisted_mdns.protocol.MDNSProtocol}.
        self.fast_path = self.legacy.fast_path

    # -- state -----------------------------------------------------------------

    @property
    def hostname(self) -> str:
        """
        The host name claimed (renamed C{lab-2} and so on after conflicts).
        """
        return self.claims.hostname

    @property
    def host(self) -> Name:
        return self.claims.host

    @property
    def host_claimed(self) -> bool:
        """
        Is the host name announced (probing over)?
        """
        return self.claims.host_claim.announced

    def is_running(self) -> bool:
        return self._running

    def start_without_host(self) -> None:
        """
        Run (register services, answer, follow links) without claiming the
        host name: for an application whose host name is published by
        another responder (L{twisted_mdns.service.MDNSService} with
        C{publish_host=False}).
        """
        self._running = True
        self._sync_links()

    # -- public API ------------------------------------------------------------

    def start(self) -> defer.Deferred:
        """
        Probe for the host name on every interface, then announce it.

        @return: a Deferred firing with the host name finally claimed.
        """
        self._running = True
        self._sync_links()
        host = self.claims.host_claim
        host.state = ClaimState.PROBING
        # Kept here: with no interface at all the name is ours at once, and
        # the claim forgets its Deferred as it fires it.
        done = host.done = defer.Deferred()
        everywhere = set(self.links)
        self.prober.enqueue(host, everywhere)
        for claim in self.claims.services.values():
            self.prober.enqueue(claim, set(everywhere))
        self._sync_reverse()
        return done

    def register(self, service: ServiceInfo) -> defer.Deferred:
        """
        Probe for and announce C{service} (one named after the host,
        L{ServiceInfo.name_template}, under the host name now and after).

        @return: a Deferred firing with the L{ServiceInfo} published (renamed
            if its name was taken).
        """
        requested, service = service.key, service.for_host(self.hostname)
        if service.key in self.claims.services or requested in self.claims.services:
            return defer.fail(ValueError(f"{service.display()} is already registered"))
        claim = self.claims.add_service(service, requested)
        done = claim.done = defer.Deferred()
        if self._running:
            self.prober.enqueue(claim, set(self.links))
        return done

    def unregister(self, service: ServiceInfo) -> defer.Deferred:
        """
        Withdraw C{service} with goodbyes on every interface it was on.
        """
        claim = self.claims.find(service)
        if claim is None:
            return defer.fail(KeyError(f"{service.display()} is not registered"))
        self._unpublish(claim, claim.announced)
        claim.state = ClaimState.WITHDRAWN
        self.claims.remove_service(claim)
        claim.finish(RegistrationError("unregistered before probing finished"))
        return defer.succeed(None)

    def update(self, service: ServiceInfo) -> defer.Deferred:
        """
        Replace an announced service's TXT record and announce the change
        (RFC 6762 §8.4: a record update is an announcement, no probing).
        """
        claim = self.claims.find(service)
        if claim is None:
            return defer.fail(KeyError(f"{service.display()} is not registered"))
        claim.service = claim.service.with_txt(service.txt) if claim.service else service
        if claim.announced:
            self._publish(claim, claim.ready_on)
            self.announcer.announce([claim], set(claim.ready_on))
        return defer.succeed(claim.service)

    def stop(self) -> defer.Deferred:
        """
        Send goodbyes for everything on every interface and cancel all
        timers.  Safe to call twice.
        """
        if self._running:
            for link in self.links.values():
                # The view holds exactly the announced claims' records.
                self.sender.goodbyes(link, link.view.all())
        self._running = False
        self.timers.cancel_all()
        for index in list(self.links):
            self._drop_link(index)
        self.links.take_touched()
        for claim in self.claims:
            claim.state = ClaimState.WITHDRAWN
            claim.ready_on = NO_LINKS
            claim.finish(RegistrationError("responder stopped"))
        self.claims.clear()
        self.legacy_replies.forget()
        return defer.succeed(None)

    @property
    def services(self) -> list[ServiceInfo]:
        """
        The services registered (with their current, possibly renamed, names).
        """
        return [c.service for c in self.claims.services.values() if c.service]

    def records_for(self, interface: NetworkInterface | int) -> list[Record]:
        """
        What we would answer on C{interface}: for tests, the CLI and curious
        users.
        """
        index = interface if isinstance(interface, int) else interface.index
        link = self.links.get(index)
        return link.view.all() if link is not None else []

    def link(self, interface: NetworkInterface | int) -> Link | None:
        """
        Our L{Link} for C{interface}, if we run on it.
        """
        return self.links.get(interface if isinstance(interface, int) else interface.index)

    # -- links -----------------------------------------------------------------

    def _sync_links(self) -> None:
        """
        A L{Link} for each interface of the transport (and none for others).
        """
        interfaces = self.transport.interfaces
        for index in [ix for ix in self.links if ix not in interfaces]:
            self._drop_link(index)
        for index, iface in interfaces.items():
            link = self.links.get(index)
            if link is None:
                self.links.add(iface)
            elif link.interface != iface:
                self._readdress_link(link, iface)

    def _readdress_link(self, link: Link, iface: NetworkInterface) -> None:
        self.links.readdress(link, iface)
        self.legacy_replies.forget()

    def _drop_link(self, index: int) -> None:
        for claim in self.links[index].published:
            claim.ready_on = shared_links(claim.ready_on - {index})
        self.links.drop(index)
        self.legacy_replies.forget()

    def interfaces_changed(self, change: Any) -> None:
        """
        Follow a L{twisted_mdns.transport.TransportChange}: probe and
        announce on new interfaces, say goodbye to addresses that went away
        (on interfaces that still exist), announce new ones, of both
        families (an IPv6 address is new when it becomes publishable: when
        its Duplicate Address Detection ends).
        """
        if not self._running:
            return
        for iface in change.removed:
            if iface.index in self.links:
                self._drop_link(iface.index)
        # New links first: their addresses' reverse mappings are claimed
        # below with the rest (L{_sync_reverse}), and probed with the host
        # name there, rather than at the next change, if one ever comes.
        for iface in change.added:
            if iface.index not in self.links:
                self.links.add(iface)
        host = self.claims.host_claim
        for old, new in change.readdressed:
            link = self.links.get(new.index)
            if link is None:
                continue
            self._readdress_link(link, new)
            gone = [a for a in published_addresses(old) if a not in published_addresses(new)]
            if gone and host.announced and new.index in host.ready_on:
                new_records = set(self.claims.address_records(new))
                self.sender.goodbyes(link, [r for r in self.claims.address_records(old) if r not in new_records])
        self._sync_reverse()
        for old, new in change.readdressed:
            link = self.links.get(new.index)
            if link is None:
                continue
            # What a claim says on a link may follow its addresses (the
            # host's A records, a service limited to an address).
            for claim in list(link.published):
                self._publish(claim, {new.index})
            # An IPv6 address whose DAD ended is new here too (RFC 6762 §8.3:
            # announced once it is ours).
            if [a for a in published_addresses(new) if a not in published_addresses(old)]:
                if host.announced and new.index in host.ready_on:
                    self.announcer.announce([host], {new.index})
        if change.added:
            added = {i.index for i in change.added}
            for claim in self.claims:
                if claim.state in (ClaimState.WITHDRAWN, ClaimState.YIELDED):
                    continue
                self.prober.enqueue(claim, added, keep_state=True)

    def _sync_reverse(self) -> None:
        """
        One reverse-mapping claim per published address (IPv4, and IPv6
        under C{ip6.arpa}) of the links we run on:
        probe the new ones, withdraw (with goodbyes where the link still
        exists) those whose address is gone.  Only addresses of links that
        changed are looked at: a link coming or going costs its addresses.
        """
        touched = self.links.take_touched()
        if not self.publish_reverse or not self._running:
            return
        reverse = self.claims.reverse
        for address in touched:
            where = self.links.address_links.get(address)
            if where is None and address in reverse:
                claim = self.claims.remove_reverse(address)
                self._unpublish(claim, claim.announced)
                claim.state = ClaimState.WITHDRAWN
            elif where is not None and address not in reverse:
                self.prober.enqueue(self.claims.add_reverse(address), set(where))

    # -- views -------------------------------------------------------------------

    def _publish(self, claim: Claim, indexes: Iterable[int]) -> None:
        """
        Put C{claim}'s records in the views of C{indexes} (replacing what it
        had there).
        """
        changed = False
        for index in indexes:
            link = self.links.get(index)
            if link is not None:
                link.publish(claim, tuple(self.claims.records(claim, link.interface, shared=True)))
                changed = True
        if changed:
            self.legacy_replies.forget_replies()

    def _unpublish(self, claim: Claim, goodbye: bool) -> None:
        """
        Take C{claim}'s records out of every view it is in (RFC 6762 §10.1
        goodbyes, with C{goodbye}, for those nobody else publishes).
        """
        for index in list(claim.ready_on):
            link = self.links.get(index)
            if link is None:
                continue
            gone = link.withdraw(claim)
            if goodbye:
                self.sender.goodbyes(link, gone)
        if claim.ready_on:
            self.legacy_replies.forget_replies()
        claim.ready_on = NO_LINKS

    def add_host_observer(self, observer: Callable[[str], object]) -> None:
        """
        Call C{observer} with the new host name (C{lab-2}) each time a
        conflict renames it (RFC 6762 §8.1, §9), as it is adopted and
        probed (see L{twisted_mdns.responder.host_renames}).
        """
        self.host_renames.observers.append(observer)

    def remove_host_observer(self, observer: Callable[[str], object]) -> None:
        """Stop calling an observer given to L{add_host_observer}."""
        self.host_renames.observers.remove(observer)

    # -- phase callbacks -------------------------------------------------------

    def _backing_off(self) -> bool:
        return self.conflicts.backing_off()

    def _probe_failed(self, claim: Claim, ifaces: frozenset[int]) -> None:
        self.conflicts.probe_failed(claim, ifaces)

    def _probes_won(self, batch: Batch) -> None:
        """
        The names of a probe batch are ours: publish, one announcement per
        link for the whole batch, then each Deferred.
        """
        firsts = []
        for claim, ifaces in batch.items():
            firsts.append(not claim.announced)
            claim.state = ClaimState.ANNOUNCED
            fresh = ifaces - claim.ready_on
            claim.ready_on = shared_links(claim.ready_on | ifaces)
            self._publish(claim, fresh)
        # The host's own records (its addresses and their reverse mappings)
        # travel together per link; services that probed together too.
        groups: dict[tuple[bool, int], list[Claim]] = {}
        for claim, ifaces in batch.items():
            service = claim.kind is ClaimKind.SERVICE
            for index in ifaces:
                groups.setdefault((service, index), []).append(claim)
        for (_, index), claims in groups.items():
            self.announcer.announce(claims, {index})
        for claim, first in zip(batch, firsts):
            if first and claim.done is not None:
                if claim.kind is ClaimKind.HOST:
                    log.info("host name {name}.local claimed", name=self.hostname)
                    claim.finish(self.hostname)
                else:
                    assert claim.service is not None
                    log.info("service {name} registered", name=claim.service.display())
                    claim.finish(claim.service)

    # -- received messages -----------------------------------------------------

    def query_received(self, message: Message, source: tuple[str, int], context: InterfaceContext) -> None:
        if not self._running:
            return
        if message.authorities:
            self.conflicts.probe_received(message, context)
        link = self.links.get(context.index)
        if link is None:
            return
        held = self.truncated.received(message, source, context, link)
        if held is not None:
            self.answerer.answer(held, source, context, link)

    def response_received(self, message: Message, source: tuple[str, int], context: InterfaceContext) -> None:
        if not self._running:
            return
        if not message.answers and not message.additionals:
            return
        link = self.links.get(context.index)
        if link is not None:
            self.answerer.suppress_duplicates(message, link, context.family)
        self.conflicts.response_received(message, source, context)
