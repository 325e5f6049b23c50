# -*- test-case-name: tests.test_cli_follow -*-
"""
Service type enumeration (RFC 6763 §9): which service types are on a link,
from the PTR records of C{_services._dns-sd._udp.local}, as
C{avahi-browse -a} uses them.

A L{ServiceTypeBrowser} asks that name continuously on each of the
querier's interfaces (RFC 6762 §5.2) and reports types as they appear and
leave, per interface: a type seen on C{eth0} says nothing about C{wlan0}.
"""

from __future__ import annotations

from typing import Callable, Sequence

from twisted_mdns.cache import CacheChange, RecordCache
from twisted_mdns.message import TYPE_PTR, Name, name_key, name_to_text, ptr_target
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.querier import Querier
from twisted_mdns.querier.links import Interest
from twisted_mdns.records import SERVICES_META

#: Called with C{(service type, interface)}: C{"_http._tcp"}.
TypeCallback = Callable[[str, NetworkInterface], object]


def _type_of(target: Name) -> str | None:
    """
    C{_http._tcp.local} -> C{"_http._tcp"}; C{None} for a PTR pointing at
    anything that is not a service type in C{.local} (RFC 6763 §7).
    """
    if len(target) != 3 or name_key(target[2:]) != (b"local",):
        return None
    service, proto = target[0], target[1].lower()
    if not service.startswith(b"_") or proto not in (b"_tcp", b"_udp"):
        return None
    try:
        return name_to_text(target[:2]).rstrip(".")
    except Exception:  # undecodable labels: not a type we can browse
        return None


class _TypesOn:
    """
    The browser's state on one interface: its question and the types seen.
    """

    def __init__(self, browser: ServiceTypeBrowser, iface: NetworkInterface) -> None:
        self.browser = browser
        self.iface = iface
        link = browser.querier.link_for(iface)
        self.cache: RecordCache = link.cache
        self.types: set[str] = set()
        self.interest = Interest(link)
        self.interest.ask([(SERVICES_META, TYPE_PTR)])
        self.interest.watch([(SERVICES_META, TYPE_PTR)])
        self.cache.add_listener(self.changed)
        self.evaluate()

    def changed(self, changes: Sequence[CacheChange]) -> None:
        if any(c.record.rtype == TYPE_PTR and c.record.key == self.browser.key for c in changes):
            self.evaluate()

    def evaluate(self) -> None:
        found = set()
        for record in self.cache.get(SERVICES_META, TYPE_PTR):
            service_type = _type_of(ptr_target(record))
            if service_type is not None:
                found.add(service_type)
        for gone in sorted(self.types - found):
            self.browser.removed(gone, self.iface)
        for new in sorted(found - self.types):
            self.browser.added(new, self.iface)
        self.types = found

    def close(self) -> None:
        self.cache.remove_listener(self.changed)
        self.interest.close()


class ServiceTypeBrowser:
    """
    Reports the service types announced on each of a querier's interfaces.

    @param added: called with C{(type, interface)} when a type appears on
        an interface.
    @param removed: called likewise when its last PTR there expires or says
        goodbye.
    """

    def __init__(self, querier: Querier, added: TypeCallback, removed: TypeCallback) -> None:
        self.querier = querier
        self.added = added
        self.removed = removed
        self.key = name_key(SERVICES_META)
        self._on: dict[int, _TypesOn] = {}

    def start(self) -> ServiceTypeBrowser:
        """
        Start asking on every interface the querier runs on now.
        """
        for iface in self.querier.interfaces:
            if iface.index not in self._on and iface.index in self.querier.caches:
                self._on[iface.index] = _TypesOn(self, iface)
        return self

    def types(self) -> dict[str, list[NetworkInterface]]:
        """
        Every type seen, with the interfaces it was seen on.
        """
        out: dict[str, list[NetworkInterface]] = {}
        for state in self._on.values():
            for service_type in state.types:
                out.setdefault(service_type, []).append(state.iface)
        return out

    def stop(self) -> None:
        """
        Stop asking; nothing more is reported.
        """
        for state in self._on.values():
            state.close()
        self._on.clear()
