# -*- test-case-name: tests.test_querier_results -*-
"""
What the querier hands back: resolved services and the listeners told
about them.

A L{ResolvedService} is a service instance as heard on one link (RFC 6762
§14: the same instance name on another link is another service), built
from one link's cache by L{service_from_cache}.

Addresses come in both families: a host's A and AAAA records heard on the
link, whichever family carried them (one cache per link).  An IPv6
link-local address (fe80::/10) means nothing without its link, so in text
it carries its zone, the interface name (C{fe80::1%eth0}, RFC 4007 §11),
and as a socket address the interface index as C{scope_id}
(L{ResolvedService.sockaddrs}, L{sockaddr}).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from functools import partialmethod
from typing import Any, Callable, Iterable, Mapping, Union

from zope.interface import implementer

from twisted_mdns.cache import RecordCache
from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_NSEC,
    TYPE_SRV,
    TYPE_TXT,
    Name,
    Record,
    name_to_text,
    nsec_types,
    srv_target,
    txt_strings,
)
from twisted_mdns.naming import ServiceType
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.records import decode_txt

#: Which interfaces an API call means, one name for it everywhere: C{None}
#: for every link the querier runs on, else one link named by a
#: L{NetworkInterface}, its name, one of its IPv4 or IPv6 addresses or its
#: index.
InterfaceSpec = Union[NetworkInterface, str, int, None]

__all__ = [
    "InterfaceSpec",
    "ResolvedService",
    "ServiceListener",
    "ServiceType",
    "ADDRESS_TYPES",
    "address_text",
    "as_listener",
    "host_addresses",
    "host_text",
    "missing_address_types",
    "service_from_cache",
    "sockaddr",
]

#: The address record types of a host, IPv4 then IPv6 (RFC 6762 §6.2: a
#: host's addresses of both families belong together).
ADDRESS_TYPES = (TYPE_A, TYPE_AAAA)

#: A socket address as C{socket} takes it: C{(host, port)} for IPv4,
#: C{(host, port, flowinfo, scope_id)} for IPv6.
SockAddr = Union[tuple[str, int], tuple[str, int, int, int]]


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


def address_text(address: str, interface: NetworkInterface | None) -> str:
    """
    An address as the user sees it: an IPv6 link-local address with its
    zone (C{fe80::1%eth0}) when the interface it was heard on is known,
    every other address as it is (a global or ULA address names the same
    host from any link; IPv4 has no zones).
    """
    if interface is None or ":" not in address or "%" in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:  # pragma: no cover - AAAA rdata is always an address
        return address
    return f"{ip}%{interface.name}" if ip.is_link_local else address


def host_addresses(records: Iterable[Record], interface: NetworkInterface | None) -> list[str]:
    """
    The distinct addresses of C{records}' A and AAAA records: IPv4 first,
    then IPv6, each sorted; link-local IPv6 ones scoped to C{interface}
    (L{address_text}).
    """
    found = {(r.rtype, str(r.rdata)) for r in records if r.rtype in ADDRESS_TYPES}
    ordered = sorted((a for _, a in found), key=_address_key)
    return [address_text(a, interface) for a in ordered]


def missing_address_types(cache: RecordCache, host: Name) -> list[int]:
    """
    The address types of C{host} that C{cache} can say nothing about: no
    record of that type, and no NSEC record of the host's saying it has
    none (RFC 6762 §6.2: "In the event that a device has only IPv4
    addresses but no IPv6 addresses, or vice versa, then the appropriate
    NSEC record SHOULD be placed into the additional section, so that
    queriers can know with certainty that the device has no addresses of
    that kind").
    """
    denied: set[int] | None = None
    missing = []
    for rtype in ADDRESS_TYPES:
        if any(not e.goodbye for e in cache.entries(host, rtype)):
            continue
        if denied is None:
            denied = set()
            for nsec in cache.get(host, TYPE_NSEC):
                present = nsec_types(nsec)
                denied |= {t for t in ADDRESS_TYPES if t not in present}
        if rtype not in denied:
            missing.append(rtype)
    return missing


def sockaddr(address: str, port: int, interface: NetworkInterface | None = None) -> SockAddr:
    """
    A socket address for C{connect}/C{sendto}: C{(host, port)} for an IPv4
    address; C{(host, port, 0, scope_id)} for an IPv6 one, where
    C{scope_id} is the interface index for a link-local address (taken
    from C{interface}, else from the C{%zone} of C{address}) and 0 for any
    other::

        sockaddr("fe80::1%eth0", 80, eth0)   # ('fe80::1', 80, 0, 2)
        sockaddr("fd00::1", 80)              # ('fd00::1', 80, 0, 0)
        sockaddr("10.0.0.1", 80)             # ('10.0.0.1', 80)

    @raise ValueError: not an address, or a link-local address whose zone
        names no interface.
    """
    host, _, zone = address.partition("%")
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        return (str(ip), port)
    scope = 0
    if ip.is_link_local or (ip.is_multicast and (ip.packed[1] & 0x0F) <= 2):
        if interface is not None:
            scope = interface.index
        elif zone.isdigit():
            scope = int(zone)
        elif zone:
            try:
                scope = socket.if_nametoindex(zone)
            except OSError:
                raise ValueError(f"{address}: no interface named {zone!r}") from None
        else:
            raise ValueError(f"{address}: a link-local address needs its interface")
    return (str(ip), port, 0, scope)


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
    @ivar addresses: the addresses of C{host} heard on C{interface} (A and
        AAAA records, over either family): IPv4 first, then IPv6, each
        sorted; IPv6 link-local ones with their zone, C{fe80::1%eth0}.
        L{sockaddrs} gives them as socket addresses, L{ip_addresses} as
        C{ipaddress} objects.
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

    @property
    def ip_addresses(self) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
        """
        L{addresses} as C{ipaddress} objects; a link-local IPv6 one carries
        the interface name as its C{scope_id}.
        """
        return tuple(ipaddress.ip_address(a) for a in self.addresses)

    @property
    def ipv4(self) -> tuple[str, ...]:
        """
        The IPv4 addresses alone.
        """
        return tuple(a for a in self.addresses if ":" not in a)

    @property
    def ipv6(self) -> tuple[str, ...]:
        """
        The IPv6 addresses alone (link-local ones scoped, C{fe80::1%eth0}).
        """
        return tuple(a for a in self.addresses if ":" in a)

    def sockaddrs(self, port: int | None = None) -> list[SockAddr]:
        """
        Every address as a socket address, in L{addresses} order: IPv4
        C{(host, port)}, IPv6 C{(host, port, 0, scope_id)} with the
        interface index as C{scope_id} for a link-local address (what
        C{socket.connect} needs to know which link fe80::1 is on) and 0
        for any other::

            for addr in service.sockaddrs():
                family = socket.AF_INET6 if len(addr) == 4 else socket.AF_INET
                ...

        @param port: the port to put in; the SRV port by default.
        """
        port = self.port if port is None else port
        return [sockaddr(a, port, self.interface) for a in self.addresses]

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
        least one address record (A or AAAA) of the SRV target are cached
        (or, with C{partial}, when the SRV is), else C{None}; the C{(name,
        rrtype)} questions that would complete it (both address types while
        the target has no address at all); the SRV target.
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
        addresses = host_addresses(
            [r for rtype in ADDRESS_TYPES for r in cache.get(host, rtype)], interface
        )
        if not addresses:
            missing += [(host, rtype) for rtype in ADDRESS_TYPES]
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

    def _event(self, event: str, service: ResolvedService, interface: NetworkInterface) -> None:
        self.function(event, service, interface)

    # IServiceListener: each event is the one call with its name.
    service_added = partialmethod(_event, "added")
    service_removed = partialmethod(_event, "removed")
    service_updated = partialmethod(_event, "updated")


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
