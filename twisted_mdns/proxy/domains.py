# -*- test-case-name: tests.test_proxy -*-
"""
Per-link domains of the Discovery Proxy and the translation of names between
a link's unicast domain and C{.local} (RFC 8766 §5.1, §5.5).

RFC 8766 §5.1: "Each physical link ... is assigned a unique DNS domain name",
say C{b.lab.example} for link B.  A unicast query for
C{_http._tcp.b.lab.example} becomes the mDNS question
C{_http._tcp.local} on link B, and what link B answers comes back with
C{.local} replaced by C{b.lab.example} -- in the owner names and in the
names inside RDATA (PTR targets, SRV targets, CNAME and NS targets), §5.5:
"the Discovery Proxy ... [rewrites] ... names ending in '.local' ...
to end in the delegated subdomain".

Why one L{LinkDomain} per link and the longest match wins: a client names the
link by the domain it asks under, and nothing it asks may reach another link
(a query under C{a.lab.example} is asked on link A only).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from dnslib import CNAME, NS, PTR, SRV, DNSLabel

from twisted_mdns.constants import TYPE_CNAME, TYPE_NS, TYPE_PTR, TYPE_SRV
from twisted_mdns.message import Name, Record, name_from_text, name_key, name_to_text

#: The multicast domain (RFC 6762 §3).
LOCAL: Name = (b"local",)


class DomainSpecError(ValueError):
    """
    A C{IFACE=DOMAIN} that cannot be used; the message says why.
    """


def _ends_with(name: Name, suffix: Name) -> bool:
    """
    Does C{name} end with C{suffix} (case-insensitively, whole labels)?
    """
    if len(suffix) > len(name):
        return False
    return name_key(name[len(name) - len(suffix):]) == name_key(suffix)


def check_domain(text: str) -> Name:
    """
    Parse and check a unicast domain given by a user.

    @raise DomainSpecError: empty, a label too long, C{.local} (that is the
        multicast domain, RFC 6762 §3), or an IP address.
    """
    name = name_from_text(text.strip())
    if not name or any(not label for label in name):
        raise DomainSpecError(f"{text!r} is not a domain name")
    if any(len(label) > 63 for label in name) or len(b".".join(name)) > 253:
        raise DomainSpecError(f"{text!r}: labels are at most 63 bytes, names 253")
    if _ends_with(name, LOCAL):
        raise DomainSpecError(f"{text!r}: .local is the multicast domain; name a unicast one")
    try:
        ipaddress.ip_address(text.strip().rstrip("."))
    except ValueError:
        pass
    else:
        raise DomainSpecError(f"{text!r} is an address, not a domain")
    return name


@dataclass(frozen=True)
class LinkDomain:
    """
    One link and the unicast domain that stands for its C{.local}.

    @ivar interface: the interface (name, IPv4 address or index, as the
        querier takes it) whose link this domain names.
    @ivar domain: the domain as labels, e.g. C{(b"b", b"lab", b"example")}.
    """

    interface: str
    domain: Name

    @property
    def text(self) -> str:
        """
        The domain for display, without the final dot.
        """
        return name_to_text(self.domain).rstrip(".")

    def contains(self, name: Name) -> bool:
        """
        Is C{name} this domain or under it?
        """
        return _ends_with(name, self.domain)

    def to_local(self, name: Name) -> Name | None:
        """
        C{x.b.lab.example} -> C{x.local}; C{None} outside this domain.
        """
        if not self.contains(name):
            return None
        return tuple(name[: len(name) - len(self.domain)]) + LOCAL

    def from_local(self, name: Name) -> Name | None:
        """
        C{x.local} -> C{x.b.lab.example}; C{None} for a name not under
        C{.local} (a reverse-mapping name, say), which has no place in this
        domain.
        """
        if not _ends_with(name, LOCAL):
            return None
        return tuple(name[:-1]) + self.domain

    def _rdata_target(self, target: Name) -> Name:
        """
        A name inside RDATA: translated when under C{.local}, kept otherwise
        (an SRV target in another unicast domain is still right).
        """
        translated = self.from_local(target)
        return target if translated is None else translated

    def translate(self, record: Record, ttl: int) -> Record | None:
        """
        The mDNS C{record} as the unicast zone shows it (RFC 8766 §5.5):
        owner name and RDATA names moved from C{.local} to this domain,
        the TTL given, no cache-flush bit.

        @return: C{None} for a record whose owner is not under C{.local}.
        """
        owner = self.from_local(record.name)
        if owner is None:
            return None
        rdata: Any = record.rdata  # a dnslib rdata object
        if record.rtype == TYPE_SRV:
            target = self._rdata_target(tuple(rdata.target.label))
            rdata = SRV(rdata.priority, rdata.weight, rdata.port, DNSLabel(list(target)))
        elif record.rtype in (TYPE_PTR, TYPE_CNAME, TYPE_NS):
            target = self._rdata_target(tuple(rdata.label.label))
            rdata = {TYPE_PTR: PTR, TYPE_CNAME: CNAME, TYPE_NS: NS}[record.rtype](
                DNSLabel(list(target))
            )
        return Record(owner, record.rtype, rdata, ttl, False, record.rclass)


class DomainMap:
    """
    The links a proxy serves, found by the domain a query names.

    @raise DomainSpecError: two links given the same domain, or one domain
        inside another (a name under both would be ambiguous).
    """

    def __init__(self, domains: Iterable[LinkDomain]) -> None:
        self.domains: tuple[LinkDomain, ...] = tuple(domains)
        for i, one in enumerate(self.domains):
            for other in self.domains[i + 1:]:
                if one.contains(other.domain) or other.contains(one.domain):
                    raise DomainSpecError(
                        f"{one.text} ({one.interface}) and {other.text} ({other.interface})"
                        " overlap: give each link its own domain"
                    )

    def __iter__(self) -> Iterator[LinkDomain]:
        return iter(self.domains)

    def __len__(self) -> int:
        return len(self.domains)

    def find(self, name: Name) -> LinkDomain | None:
        """
        The link whose domain holds C{name}, or C{None}: a query outside
        every domain reaches no link.
        """
        for link in self.domains:
            if link.contains(name):
                return link
        return None

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "DomainMap":
        """
        Build from C{IFACE=DOMAIN} strings (C{--proxy-domain}).

        @raise DomainSpecError: a malformed spec or overlapping domains.
        """
        links = []
        for spec in specs:
            iface, sep, domain = spec.partition("=")
            if not sep or not iface.strip() or not domain.strip():
                raise DomainSpecError(f"{spec!r}: expected IFACE=DOMAIN, e.g. eth1=b.lab.example")
            try:
                name = check_domain(domain)
            except DomainSpecError as e:
                raise DomainSpecError(f"{spec!r}: {e}") from None
            links.append(LinkDomain(iface.strip(), name))
        return cls(links)
