# -*- test-case-name: tests.test_querier_browsing -*-
"""
Browsing a service type (RFC 6763 §4), per link.

A L{ServiceBrowser} asks for the type's PTR records continuously on each of
its links (RFC 6762 §5.2), resolves SRV, TXT and the target's A records for
each instance on the link its PTR was heard on (RFC 6762 §14: never with
records from another link; A and AAAA alike, heard over either family), watches what it reported so that the cache
refreshes it (§5.2), and reports services added, updated and removed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from twisted.logger import Logger

from twisted_mdns.cache import CacheChange
from twisted_mdns.message import TYPE_PTR, TYPE_SRV, TYPE_TXT, Name, Record, name_key, ptr_target
from twisted_mdns.naming import ServiceType
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.querier.links import Interest, QuerierLink
from twisted_mdns.querier.results import (
    ADDRESS_TYPES,
    InterfaceSpec,
    ResolvedService,
    service_from_cache,
)

log = Logger()

#: The links a browser should run on now.
LinkSelector = Callable[[], Sequence[QuerierLink]]


class _BrowseOn:
    """
    A browser's state on one link.
    """

    def __init__(self, browser: "ServiceBrowser", link: QuerierLink) -> None:
        self.browser = browser
        self.link = link
        self.interest = Interest(link)
        self.instances: dict[Name, Name] = {}  # key -> name, from PTRs
        self.hosts: dict[Name, Name] = {}  # instance key -> SRV target
        self.reported: dict[Name, ResolvedService] = {}
        self.cache = link.cache
        self.cache.add_listener(self.changed)

    @property
    def iface(self) -> NetworkInterface:
        return self.link.interface

    def relevant(self, record: Record) -> bool:
        if record.rtype == TYPE_PTR:
            return record.key == self.browser.ptr_key
        if record.rtype in (TYPE_SRV, TYPE_TXT):
            return record.key in self.instances or record.key in self.reported
        if record.rtype in ADDRESS_TYPES:
            return any(name_key(h) == record.key for h in self.hosts.values())
        return False

    def changed(self, changes: Sequence[CacheChange]) -> None:
        if any(self.relevant(c.record) for c in changes):
            self.evaluate()

    def evaluate(self) -> None:
        stype = self.browser.service_type
        found: dict[Name, Name] = {}
        for ptr in self.cache.get(stype.ptr_name, TYPE_PTR):
            target = ptr_target(ptr)
            # RFC 6763 §4.1: <Instance>.<Service>.<Domain>; a PTR pointing
            # anywhere else is not an instance of this type.
            if len(target) == len(stype.base) + 1 and name_key(target[1:]) == name_key(stype.base):
                found[name_key(target)] = target
        # The type's PTR question runs for as long as the browser does.
        ask: list[tuple[Name, int]] = [(stype.ptr_name, TYPE_PTR)]
        watch: list[tuple[Name, int]] = [(stype.ptr_name, TYPE_PTR)]
        for key in list(self.reported):
            if key not in found:
                self._report("removed", self.reported.pop(key))
        self.instances = found
        hosts: dict[Name, Name] = {}
        for key, name in found.items():
            old = self.reported.get(key)
            # Once reported, a service stays until its PTR or SRV goes; a
            # TXT or addresses that go away are an update (and asked again).
            service, missing, host = service_from_cache(
                self.cache, name, stype.base_text, self.iface, partial=old is not None
            )
            if host is not None:
                hosts[key] = host
            if service is not None:
                self.reported[key] = service
                if old is None:
                    self._report("added", service)
                elif old != service:
                    self._report("updated", service)
            elif old is not None:
                self._report("removed", self.reported.pop(key))
            ask.extend(missing)
            if key in self.reported:
                watch += [(name, TYPE_SRV), (name, TYPE_TXT)]
                if host is not None:
                    watch += [(host, rtype) for rtype in ADDRESS_TYPES]
        self.hosts = hosts
        self.interest.ask(ask)
        self.interest.watch(watch)

    def _report(self, event: str, service: ResolvedService) -> None:
        self.browser.report(event, service, self.iface)

    def close(self, report: bool) -> None:
        self.cache.remove_listener(self.changed)
        self.interest.close()
        if report:
            for service in list(self.reported.values()):
                self._report("removed", service)
        self.reported.clear()


class ServiceBrowser:
    """
    Browses one service type on some links (RFC 6763 §4) and tells the
    listener:

     - C{service_added} once an instance is resolved (SRV, TXT and at least
       one address, IPv4 or IPv6);
     - C{service_updated} when its TXT, SRV or addresses change;
     - C{service_removed} when its PTR is gone: one second after a goodbye
       (RFC 6762 §10.1), at the end of its TTL without a refresh, or when
       the link goes away.

    Made by L{twisted_mdns.querier.Querier.browse}; L{stop} ends it.

    @ivar interface: which interfaces it browses on (C{None}: every link of
        the querier, as they come and go).
    """

    def __init__(
        self,
        service_type: ServiceType,
        listener: Any,
        links: LinkSelector,
        interface: InterfaceSpec = None,
        on_stop: Callable[["ServiceBrowser"], None] = lambda b: None,
    ) -> None:
        self.service_type = service_type
        self.listener = listener
        self.interface = interface
        self.ptr_key = name_key(service_type.ptr_name)
        self._links = links
        self._on_stop = on_stop
        self._on: dict[int, _BrowseOn] = {}
        self.running = False

    @property
    def services(self) -> list[ResolvedService]:
        """
        The services resolved now, by interface index then instance.
        """
        out = []
        for ifindex in sorted(self._on):
            state = self._on[ifindex]
            out += sorted(state.reported.values(), key=lambda s: name_key(s.name))
        return out

    def start(self) -> "ServiceBrowser":
        self.running = True
        self.interfaces_changed()
        return self

    def interfaces_changed(self) -> None:
        """
        Follow the links: stop on vanished ones (reporting their services
        removed), start on new ones.
        """
        if not self.running:
            return
        wanted = {link.index: link for link in self._links()}
        for ifindex, old in list(self._on.items()):
            if wanted.get(ifindex) is not old.link:
                del self._on[ifindex]
                old.close(report=True)
        for ifindex, link in sorted(wanted.items()):
            state = self._on.get(ifindex)
            if state is None:
                state = self._on[ifindex] = _BrowseOn(self, link)
                log.debug(
                    "browsing {type} on {iface}", type=self.service_type.text, iface=link.interface.name
                )
            state.evaluate()

    def report(self, event: str, service: ResolvedService, iface: NetworkInterface) -> None:
        """
        Tell the listener; a listener that fails is logged, never fatal.
        """
        log.info(
            "{type} on {iface}: {event} {name}",
            type=self.service_type.text, iface=iface.name, event=event, name=service.full_name,
        )
        method = getattr(self.listener, f"service_{event}")
        try:
            method(service, iface)
        except Exception:
            log.failure("service listener failed on {event}", event=event)

    def stop(self) -> None:
        """
        Stop browsing: queries and refreshes for this browser end; nothing
        more is reported.  Safe to call twice.
        """
        if not self.running:
            return
        self.running = False
        self._on_stop(self)
        for state in self._on.values():
            state.close(report=False)
        self._on.clear()
