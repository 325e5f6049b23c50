# -*- test-case-name: tests.test_querier_results -*-
"""
What the querier hands back: resolved services and the listeners told
about them.

A L{ResolvedService} is a service instance as heard on one link (RFC 6762
§14: the same instance name on another link is another service), built
from one link's cache by L{service_from_cache}.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Union

from zope.interface import implementer

from twisted_mdns.cache import RecordCache
from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import (
    TYPE_A,
    TYPE_SRV,
    TYPE_TXT,
    Name,
    Record,
    name_to_text,
    srv_target,
    txt_strings,
)
from twisted_mdns.naming import ServiceType
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.records import decode_txt

#: Which interfaces an API call means, one name for it everywhere: C{None}
#: for every link the querier runs on, else one link named by a
#: L{NetworkInterface}, its name, one of its IPv4 addresses or its index.
InterfaceSpec = Union[NetworkInterface, str, int, None]

__all__ = [
    "InterfaceSpec",
    "ResolvedService",
    "ServiceListener",
    "ServiceType",
    "as_listener",
    "host_text",
    "service_from_cache",
]


def host_text(name: Name) -> str:
    """
    A host name for display: C{radiod.local}, no trailing dot.
    """
    return name_to_text(name).rstrip(".")


def _address_key(address: str) -> tuple[int, Any]:
    try:
        ip = ipaddress.ip_address(address)
        return (ip.version, ip)
    except ValueError:  # pragma: no cover - A rdata is always an address
        return (9, address)


def a_addresses(records: Iterable[Record]) -> list[str]:
    """
    The distinct IPv4 addresses of C{records}' A records, sorted.
    """
    return sorted({str(r.rdata) for r in records if r.rtype == TYPE_A}, key=_address_key)


@dataclass(frozen=True)
class ResolvedService:
    """
    A service instance as resolved on one interface.

    @ivar instance: the instance label, C{"My Web"}.
    @ivar type: C{"_http._tcp"}.
    @ivar name: the full instance name as labels.
    @ivar host: the SRV target, C{"peerhost.local"}.
    @ivar port: the SRV port.
    @ivar txt: the TXT key/values (RFC 6763 §6.4: value C{None} for a
        boolean key without C{=}).
    @ivar addresses: the IPv4 addresses of C{host} heard on C{interface},
        sorted.
    @ivar interface: where this was resolved; the same instance on another
        interface is another L{ResolvedService}.
    """

    instance: str
    type: str
    name: Name
    host: str
    port: int
    txt: Mapping[str, bytes | None] = field(default_factory=dict, hash=False)
    addresses: tuple[str, ...] = ()
    interface: NetworkInterface | None = None
    priority: int = 0
    weight: int = 0

    @property
    def full_name(self) -> str:
        """
        C{My Web._http._tcp.local} for display.
        """
        return host_text(self.name)

    def txt_text(self) -> dict[str, str | None]:
        """
        The TXT values as text (UTF-8, undecodable bytes replaced).
        """
        return {
            k: (None if v is None else v.decode("utf-8", "replace"))
            for k, v in self.txt.items()
        }

    def to_json(self) -> dict[str, Any]:
        """
        The fields the CLI prints with C{--json}.
        """
        return {
            "interface": self.interface.name if self.interface else None,
            "instance": self.instance,
            "type": self.type,
            "host": self.host,
            "port": self.port,
            "addresses": list(self.addresses),
            "txt": self.txt_text(),
        }


def service_from_cache(
    cache: RecordCache,
    name: Name,
    service_type: str,
    interface: NetworkInterface | None,
    partial: bool = False,
) -> tuple[ResolvedService | None, list[tuple[Name, int]], Name | None]:
    """
    What C{cache} knows about instance C{name}.

    @param partial: build the service from its SRV alone when TXT or
        addresses are missing (for a service already reported, whose TXT or
        addresses went away).
    @return: C{(service, missing, host)}: the service when SRV, TXT and at
        least one A record of the SRV target are cached (or, with
        C{partial}, when the SRV is), else C{None}; the C{(name, rrtype)}
        questions that would complete it; the SRV target.
    """
    srv = cache.newest(name, TYPE_SRV)
    txt = cache.newest(name, TYPE_TXT)
    missing: list[tuple[Name, int]] = []
    if srv is None:
        missing.append((name, TYPE_SRV))
    if txt is None:
        missing.append((name, TYPE_TXT))
    host = srv_target(srv) if srv is not None else None
    addresses: list[str] = []
    if host is not None:
        addresses = a_addresses(cache.get(host, TYPE_A))
        if not addresses:
            missing.append((host, TYPE_A))
    if srv is None or (missing and not partial):
        return None, missing, host
    assert host is not None
    rdata: Any = srv.rdata
    service = ResolvedService(
        instance=name[0].decode("utf-8", "replace"),
        type=service_type,
        name=name,
        host=host_text(host),
        port=rdata.port,
        txt=decode_txt(txt_strings(txt)) if txt is not None else {},
        addresses=tuple(addresses),
        interface=interface,
        priority=rdata.priority,
        weight=rdata.weight,
    )
    return service, missing, host


ServiceCallback = Callable[[ResolvedService, NetworkInterface], Any]


@implementer(IServiceListener)
class ServiceListener:
    """
    An L{IServiceListener} made of callables, any of which may be left out:
    C{ServiceListener(added=print)}.  Each is called with
    C{(service, interface)}.
    """

    def __init__(
        self,
        added: ServiceCallback | None = None,
        removed: ServiceCallback | None = None,
        updated: ServiceCallback | None = None,
    ) -> None:
        self._added, self._removed, self._updated = added, removed, updated

    def service_added(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._added is not None:
            self._added(service, interface)

    def service_removed(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._removed is not None:
            self._removed(service, interface)

    def service_updated(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._updated is not None:
            self._updated(service, interface)


@implementer(IServiceListener)
class _EventCallable:
    """
    A single callable C{f(event, service, interface)} as a listener, event
    being C{"added"}, C{"removed"} or C{"updated"}.
    """

    def __init__(self, function: Callable[[str, ResolvedService, NetworkInterface], Any]) -> None:
        self.function = function

    def service_added(self, service: ResolvedService, interface: NetworkInterface) -> None:
        self.function("added", service, interface)

    def service_removed(self, service: ResolvedService, interface: NetworkInterface) -> None:
        self.function("removed", service, interface)

    def service_updated(self, service: ResolvedService, interface: NetworkInterface) -> None:
        self.function("updated", service, interface)


def as_listener(listener: Any) -> Any:
    """
    C{listener} as an L{IServiceListener}: itself if it has the three
    methods, a callable C{f(event, service, interface)} wrapped.

    @raise TypeError: neither.
    """
    if all(hasattr(listener, m) for m in ("service_added", "service_removed", "service_updated")):
        return listener
    if callable(listener):
        return _EventCallable(listener)
    raise TypeError(
        "listener must have service_added/service_removed/service_updated "
        "methods or be a callable f(event, service, interface)"
    )
