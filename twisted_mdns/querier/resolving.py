# -*- test-case-name: tests.test_querier_resolving -*-
"""
One-shot resolution of host names and service instances, per link.

A resolution watches the caches of the links it was asked on and asks,
through each link's continuous queries (RFC 6762 §5.2, QU first §5.4), for
what is missing there.  It fires once every link has a complete answer,
C{settle} seconds after the first answer, or at the timeout, whichever
comes first.  The same name on two links gives two answers (RFC 6762 §14).

Addresses are asked in both families (A and AAAA) and an answer is
complete when both are known: cached, or denied by the host's NSEC record
(RFC 6762 §6.2 asks responders to send one).  A host heard with one
family only is reported after C{settle} seconds, so that an IPv4-only
responder that sends no NSEC costs a short wait, not the timeout.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_mdns.cache import CacheChange
from twisted_mdns.message import TYPE_NSEC, TYPE_SRV, TYPE_TXT, Name, Record, name_key
from twisted_mdns.naming import ServiceType
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.querier.links import Interest, QuerierLink
from twisted_mdns.querier.results import (
    ADDRESS_TYPES,
    ResolvedService,
    host_addresses,
    missing_address_types,
    service_from_cache,
)

#: What can change what a host's addresses are known to be.
_HOST_TYPES = ADDRESS_TYPES + (TYPE_NSEC,)

#: How long a multi-link resolution waits for the other links once the
#: first one has answered.
DEFAULT_SETTLE = 0.5


class _On:
    """
    A resolution's state on one link: what it asks there and its cache
    listener.
    """

    def __init__(self, link: QuerierLink, listener: Callable[[Sequence[CacheChange]], None]) -> None:
        self.link = link
        self.interest = Interest(link)
        self.listener = listener
        link.cache.add_listener(listener)

    def close(self) -> None:
        self.interest.close()
        self.link.cache.remove_listener(self.listener)


class Resolution:
    """
    A resolution of one name over some links with a timeout: the base of
    host and service resolution.

    @ivar name: the name resolved (a host name, a service instance name).
    @ivar results: interface index -> what was found there.
    @ivar complete: the interface indexes whose result lacks nothing (a
        result not in it may still grow: an address family not heard yet).
    @ivar deferred: fires with L{outcome}; cancelling it stops the queries.
    """

    def __init__(
        self,
        clock: IReactorTime,
        name: Name,
        links: Sequence[QuerierLink],
        timeout: float,
        settle: float,
        on_done: Callable[["Resolution"], None] = lambda r: None,
    ) -> None:
        self.clock = clock
        self.name = name
        self.key = name_key(name)
        self.links = {link.index: link for link in links}
        self.interfaces = {link.index: link.interface for link in links}
        self.timeout = timeout
        self.settle = settle
        self.on_done = on_done
        self.results: dict[int, Any] = {}
        self.complete: set[int] = set()
        self.deferred: defer.Deferred[Any] = defer.Deferred(lambda d: self._cleanup())
        self._on: dict[int, _On] = {}
        self._timeout_call: IDelayedCall | None = None
        self._settle_call: IDelayedCall | None = None
        self._done = False

    def start(self) -> "defer.Deferred[Any]":
        for ifindex, link in self.links.items():
            self._on[ifindex] = _On(link, self._listener_for(ifindex))
            self.evaluate(ifindex, self._on[ifindex])
        if not self._done:
            self._timeout_call = self.clock.callLater(self.timeout, self.finish)
            self._progress()
        return self.deferred

    def _listener_for(self, ifindex: int) -> Callable[[Sequence[CacheChange]], None]:
        def changed(changes: Sequence[CacheChange]) -> None:
            on = self._on.get(ifindex)
            if not self._done and on is not None and any(
                self.relevant(ifindex, c.record) for c in changes
            ):
                self.evaluate(ifindex, on)
                self._progress()

        return changed

    def relevant(self, ifindex: int, record: Record) -> bool:
        """
        Could C{record}, heard on C{ifindex}, change the result there?
        """
        raise NotImplementedError

    def evaluate(self, ifindex: int, on: _On) -> None:
        """
        Look at the cache of C{ifindex}: record a result in C{results} (and
        in C{complete} when nothing is missing), and ask what is missing.
        """
        raise NotImplementedError

    def outcome(self) -> Any:
        """
        What the Deferred fires with.
        """
        raise NotImplementedError

    def _progress(self) -> None:
        if self._done:
            return
        if all(ix in self.complete for ix in self.interfaces):
            self.finish()
        elif self.results and self._settle_call is None:
            self._settle_call = self.clock.callLater(self.settle, self.finish)

    def interface_gone(self, ifindex: int) -> None:
        """
        The link went away: forget it, and finish if the others are done.
        """
        on = self._on.pop(ifindex, None)
        if on is not None:
            on.close()
        self.links.pop(ifindex, None)
        self.interfaces.pop(ifindex, None)
        self.results.pop(ifindex, None)
        self.complete.discard(ifindex)
        self._progress()

    def finish(self) -> None:
        """
        Fire with what we have now (also what L{Querier.stop} does).
        """
        if self._done:
            return
        self._cleanup()
        self.deferred.callback(self.outcome())

    def _cleanup(self) -> None:
        self._done = True
        self.on_done(self)
        for call in (self._timeout_call, self._settle_call):
            if call is not None and call.active():
                call.cancel()
        for on in self._on.values():
            on.close()
        self._on.clear()


def _record(results: dict[int, Any], complete: set[int], ifindex: int, found: Any, done: bool) -> None:
    if found:
        results[ifindex] = found
    else:
        results.pop(ifindex, None)
    if found and done:
        complete.add(ifindex)
    else:
        complete.discard(ifindex)


class HostResolution(Resolution):
    """
    A host name's addresses, IPv4 and IPv6, per link.
    """

    def relevant(self, ifindex: int, record: Record) -> bool:
        return record.rtype in _HOST_TYPES and record.key == self.key

    def evaluate(self, ifindex: int, on: _On) -> None:
        cache = on.link.cache
        records = [
            e.record for rtype in ADDRESS_TYPES for e in cache.entries(self.name, rtype)
            if not e.goodbye
        ]
        addresses = host_addresses(records, on.link.interface)
        missing = missing_address_types(cache, self.name)
        _record(self.results, self.complete, ifindex, addresses, not missing)
        on.interest.ask([(self.name, rtype) for rtype in missing])

    def outcome(self) -> dict[NetworkInterface, list[str]]:
        return {
            self.interfaces[ix]: list(self.results[ix])
            for ix in sorted(self.results)
            if ix in self.interfaces
        }


class ServiceResolution(Resolution):
    """
    One service instance (SRV, TXT, the target's addresses), per link.

    @ivar single: fire with one L{ResolvedService} (or C{None}) rather than
        a list.
    """

    def __init__(
        self,
        clock: IReactorTime,
        name: Name,
        stype: ServiceType,
        links: Sequence[QuerierLink],
        timeout: float,
        settle: float,
        single: bool,
        on_done: Callable[[Resolution], None] = lambda r: None,
    ) -> None:
        super().__init__(clock, name, links, timeout, settle, on_done)
        self.stype = stype
        self.single = single
        self.hosts: dict[int, Name] = {}

    def relevant(self, ifindex: int, record: Record) -> bool:
        if record.key == self.key:
            return record.rtype in (TYPE_SRV, TYPE_TXT)
        host = self.hosts.get(ifindex)
        return host is not None and record.rtype in _HOST_TYPES and record.key == name_key(host)

    def evaluate(self, ifindex: int, on: _On) -> None:
        cache = on.link.cache
        service, missing, host = service_from_cache(
            cache, self.name, self.stype.base_text, self.interfaces[ifindex]
        )
        if host is not None:
            self.hosts[ifindex] = host
        if service is not None and host is not None:
            # Complete once the other address family is known too.
            missing = [(host, rtype) for rtype in missing_address_types(cache, host)]
        _record(self.results, self.complete, ifindex, service, not missing)
        on.interest.ask(missing)

    def outcome(self) -> ResolvedService | None | list[ResolvedService]:
        found = [self.results[ix] for ix in sorted(self.results)]
        if self.single:
            return found[0] if found else None
        return found
