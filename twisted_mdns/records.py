# -*- test-case-name: tests.test_records,tests.test_link,tests.test_naming -*-
"""
What we publish: host and service records, and their per-interface views.

RFC 6762 s6.2 and s14: a response sent on an interface carries all the
addresses valid on that interface and none of any other, reverse-mapping
PTRs likewise.  So records are not a global table: L{InterfaceRecords}
is built per interface from the interface's own addresses, and a service
limited to some interfaces appears only in theirs.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from twisted_mdns import naming
from twisted_mdns.constants import HOST_TTL, HOST_WILDCARD, MAX_LABEL, OTHER_TTL
from twisted_mdns.message import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Name,
    Record,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    name_key,
    name_to_text,
    nsec_record,
    ptr_record,
    srv_record,
    txt_record,
)
from twisted_mdns.dnsvalues import name_wire, wire_name
from twisted_mdns.netif import NetworkInterface, find_interface

#: RFC 6762 s10: host-name records (A, SRV, reverse PTR) 120 s, others 75 min.

DOMAIN = "local"
SERVICES_META = join_name("_services", "_dns-sd", "_udp", "local")

TxtValue = "bytes | str | bool | None"


def _txt_key_ok(key: str) -> str | None:
    if not key:
        return "TXT key must not be empty"
    if "=" in key:
        return f"TXT key {key!r} must not contain '='"
    if any(not (0x20 <= ord(c) <= 0x7E) for c in key):
        return f"TXT key {key!r} must be printable US-ASCII"
    return None


def encode_txt(txt: Mapping[str, object] | Sequence[tuple[str, object]]) -> tuple[bytes, ...]:
    """
    Encode TXT key/values by RFC 6763 s6: C{key=value} strings, C{key} alone
    for a boolean attribute (value C{True} or C{None}), C{key=} for an empty
    value; keys printable ASCII without C{=}, unique case-insensitively;
    each string at most 255 bytes.

    @raise ValueError: naming the offending key.
    """
    items = list(txt.items()) if isinstance(txt, Mapping) else list(txt)
    seen: set[str] = set()
    out = []
    for key, value in items:
        why = _txt_key_ok(key)
        if why:
            raise ValueError(why)
        if key.lower() in seen:
            raise ValueError(f"TXT key {key!r} appears twice (keys are case-insensitive)")
        seen.add(key.lower())
        if value is False:
            continue  # s6.4: an absent key means false
        if value is None or value is True:
            item = key.encode("ascii")
        else:
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            item = key.encode("ascii") + b"=" + raw
        if len(item) > 255:
            raise ValueError(f"TXT entry {key!r} is {len(item)} bytes; at most 255")
        out.append(item)
    return tuple(out)


def decode_txt(strings: Iterable[bytes]) -> dict[str, bytes | None]:
    """
    Decode TXT strings to a dict (s6.4: the first occurrence of a key wins;
    a string without C{=} is a boolean attribute, value C{None}).
    """
    out: dict[str, bytes | None] = {}
    for s in strings:
        if not s:
            continue
        key, sep, value = s.partition(b"=")
        if not key:
            continue
        k = key.decode("ascii", "replace")
        if k.lower() in {x.lower() for x in out}:
            continue
        out[k] = value if sep else None
    return out


def _split_type(service_type: str) -> Name:
    """
    The labels of a service type without C{.local}, checked and normalised
    by L{twisted_mdns.naming.service_type} (kept for L{twisted_mdns.tap}).
    """
    return naming.service_type(service_type, subtype_allowed=False).base[:-1]


def reverse_name(address: str) -> Name:
    """
    The reverse-mapping name of an address (the reverse PTR owner): under
    C{in-addr.arpa} for IPv4, C{ip6.arpa} (one label per nibble) for IPv6.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return name_from_text(ip.reverse_pointer)


def published_addresses(iface: NetworkInterface) -> list[str]:
    """
    The addresses the host publishes on C{iface} (RFC 6762 §6.2, §14):
    every IPv4 address (link-local included), then every publishable IPv6
    address (global, ULA, link-local; never tentative, DAD-failed,
    deprecated or temporary: L{NetworkInterface.publishable_ipv6}).
    """
    return list(iface.published)


def address_record(host: Name, address: str, ttl: int = HOST_TTL) -> Record:
    """
    The A or AAAA record of C{host} for C{address}.
    """
    if ":" in address:
        return aaaa_record(host, address, ttl)
    return a_record(host, address, ttl)


@functools.lru_cache(maxsize=1024)
def _type_text(service_type: str) -> str:
    """
    C{service_type} checked and normalised by
    L{twisted_mdns.naming.service_type}: one string per type, shared by
    every service of it (issue 13: memory per service).
    """
    return sys.intern(naming.service_type(service_type, subtype_allowed=False).text)


@functools.lru_cache(maxsize=1024)
def _type_names(service_type: str) -> tuple[Name, Name]:
    """
    A normalised service type's name (C{_http._tcp.local}) and its key,
    made once per type: every service of a type shares the same tuples
    and labels (at 10,000 services of one type, a copy per service was a
    few hundred bytes each; issue 13).
    """
    name = join_name(_split_type(service_type), DOMAIN)
    key = name_key(name)
    return name, (name if key == name else key)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """
    A DNS-SD service instance (RFC 6763).

    @ivar instance: the user-visible instance name (any UTF-8, dots and
        spaces included, at most 63 bytes): C{"My Web"}.
    @ivar type: C{"_http._tcp"} (C{.local} optional, any case), checked by
        L{twisted_mdns.naming.service_type} and kept normalised: lower case,
        without C{.local}.
    @ivar port: the port the service listens on.
    @ivar txt: key/value pairs (see L{encode_txt}).
    @ivar host: the target host name without C{.local}; C{None} means the
        responder's own host name.
    @ivar subtypes: e.g. C{("_printer",)} for C{_printer._sub._http._tcp};
        each one label of 1 to 63 bytes (L{twisted_mdns.naming.subtype_label}).
    @ivar interfaces: limit the service to these interfaces (names, IPv4
        addresses or indexes); C{None} for every interface we run on.
    @ivar name_template: C{None}, or the name with C{%h} for our host name
        (avahi's C{replace-wildcards}): the responder publishes L{for_host}
        of it, again whenever a conflict renames the host (RFC 6762 §9).
    """

    instance: str
    type: str
    port: int
    txt: Mapping[str, object] | tuple = field(default_factory=dict)
    host: str | None = None
    subtypes: tuple[str, ...] = ()
    interfaces: tuple[str | int, ...] | None = None
    priority: int = 0
    weight: int = 0
    name_template: str | None = None
    # The names, computed once per (immutable) value: the responder asks
    # for them per claim on every received response and probe.  Slots
    # rather than a per-instance dict (issue 13: memory per service).
    _name: Name | None = field(default=None, init=False, repr=False, compare=False)
    _key: Name | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        naming.instance_label(self.instance)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not 0-65535")
        # One validator per concept (twisted_mdns.naming): the querier's
        # browse() accepts and refuses the same types, hosts and subtypes.
        object.__setattr__(self, "type", _type_text(self.type))
        if self.host is not None:
            naming.host_name(self.host)
        encode_txt(self.txt)
        for sub in self.subtypes:
            naming.subtype_label(sub)
        if isinstance(self.txt, dict):
            object.__setattr__(self, "txt", tuple(self.txt.items()))
        if self.interfaces is not None:
            object.__setattr__(self, "interfaces", tuple(self.interfaces))
        if self.name_template is not None and HOST_WILDCARD not in self.name_template:
            raise ValueError(f"name template {self.name_template!r} has no {HOST_WILDCARD}")

    @property
    def type_name(self) -> Name:
        """
        C{_http._tcp.local}: the same tuple for every service of the type.
        """
        return _type_names(self.type)[0]

    @property
    def type_key(self) -> Name:
        """
        The case-folded L{type_name} (shared likewise).
        """
        return _type_names(self.type)[1]

    @property
    def name(self) -> Name:
        """
        The full instance name, e.g. C{My Web._http._tcp.local}.
        """
        name = self._name
        if name is None:
            name = join_name(self.instance, self.type_name)
            object.__setattr__(self, "_name", name)
        return name

    @property
    def key(self) -> Name:
        """
        The case-folded L{name}: the instance label folded, then the
        shared L{type_key}.
        """
        key = self._key
        if key is None:
            name = self.name
            key = (name[0].lower(),) + self.type_key
            object.__setattr__(self, "_key", key)
        return key

    @property
    def txt_strings(self) -> tuple[bytes, ...]:
        return encode_txt(self.txt)

    @property
    def txt_dict(self) -> dict[str, bytes | None]:
        return decode_txt(self.txt_strings)

    def subtype_names(self) -> list[Name]:
        return [join_name(sub, "_sub", self.type_name) for sub in self.subtypes]

    def renamed(self, instance: str) -> "ServiceInfo":
        """This service as C{instance}, L{name_template} kept (C{lab web (2)})."""
        return replace(self, instance=instance)

    def for_host(self, hostname: str) -> "ServiceInfo":
        """
        This service named from its L{name_template} for C{hostname} (or
        itself), cut to 63 bytes as L{next_service_name} cuts: a host
        rename must not make a service unpublishable.
        """
        if self.name_template is None:
            return self
        raw = self.name_template.replace(HOST_WILDCARD, hostname).encode("utf-8")
        instance = raw[:MAX_LABEL].decode("utf-8", "ignore")
        return self if instance == self.instance else replace(self, instance=instance)

    def with_txt(self, txt: Mapping[str, object] | tuple) -> "ServiceInfo":
        return replace(self, txt=txt)

    def on_interface(self, iface: NetworkInterface) -> bool:
        """
        Is this service offered on C{iface}?
        """
        if self.interfaces is None:
            return True
        return any(find_interface([iface], spec) is not None for spec in self.interfaces)

    def display(self) -> str:
        return name_to_text(self.name)


def next_service_name(instance: str) -> str:
    """
    RFC 6763 s9 style renaming: C{My Web} -> C{My Web (2)} -> C{My Web (3)}.
    """
    base, n = instance, 1
    if instance.endswith(")") and " (" in instance:
        head, _, tail = instance.rpartition(" (")
        if tail[:-1].isdigit():
            base, n = head, int(tail[:-1])
    suffix = f" ({n + 1})"
    raw = base.encode("utf-8")[: 63 - len(suffix)].decode("utf-8", "ignore")
    return raw + suffix


def next_host_name(host: str) -> str:
    """
    Host renaming as avahi does it: C{lab} -> C{lab-2} -> C{lab-3}.
    """
    base, n = host, 1
    head, sep, tail = host.rpartition("-")
    if sep and tail.isdigit() and head:
        base, n = head, int(tail)
    return f"{base}-{n + 1}"


def host_name(host: str) -> Name:
    """
    C{lab} or C{lab.local} -> the labels of C{lab.local}, checked by
    L{twisted_mdns.naming.host_name} (RFC 6762 §16, RFC 1035 §2.3.4).
    """
    return naming.host_name(host)


def host_records(host: Name, iface: NetworkInterface, ttl: int = HOST_TTL) -> list[Record]:
    """
    The host's unique records for one interface: an A record per IPv4
    address of that interface (link-local included), an AAAA record per
    publishable IPv6 address, and the reverse PTRs.
    """
    addresses = published_addresses(iface)
    out = [address_record(host, address, ttl) for address in addresses]
    for address in addresses:
        out.append(ptr_record(reverse_name(address), host, ttl, cache_flush=True))
    return out


def service_records(
    service: ServiceInfo, default_host: Name, ttl: int = OTHER_TTL, host_ttl: int = HOST_TTL
) -> tuple[list[Record], list[Record]]:
    """
    A service's records: (unique, shared).  Unique: SRV and TXT (cache-flush
    set).  Shared: the type PTR, subtype PTRs and the s9 enumeration PTR
    (never cache-flush).

    Built lean (issue 13: memory per registered service): the records share
    the service's name and key tuples and the type's (L{_type_names}), keep
    their rdata as canonical bytes only (L{Record.pack_into} packs PTR and
    SRV targets from them; the dnslib object is made on first read of
    C{rdata}), and every service of a type shares one enumeration PTR.
    """
    target = host_name(service.host) if service.host else default_host
    name, key = service.name, service.key
    srv_wire = struct.pack("!HHH", service.priority, service.weight, service.port) + name_wire(target)
    strings = service.txt_strings or (b"",)  # an empty TXT is one empty string
    txt_wire = b"".join(bytes((len(s),)) + s for s in strings)
    unique = [
        Record(name, TYPE_SRV, None, host_ttl, True, _wire=srv_wire, _key=key),
        Record(name, TYPE_TXT, None, ttl, True, _wire=txt_wire, _key=key),
    ]
    instance_wire = name_wire(name)
    shared = [Record(service.type_name, TYPE_PTR, None, ttl, False, _wire=instance_wire, _key=service.type_key)]
    shared += [ptr_record(sub, name, ttl) for sub in service.subtype_names()]
    shared.append(_enumeration_ptr(service.type, ttl))
    return unique, shared


@functools.lru_cache(maxsize=1024)
def _enumeration_ptr(service_type: str, ttl: int) -> Record:
    """
    The RFC 6763 s9 PTR from C{_services._dns-sd._udp.local} to a type: one
    (immutable) record for every service of the type.
    """
    type_name = _type_names(service_type)[0]
    return Record(SERVICES_META, TYPE_PTR, None, ttl, False, _wire=name_wire(type_name), _key=_SERVICES_META_KEY)


_SERVICES_META_KEY = name_key(SERVICES_META)


#: A bucket of a view: the records of one name.  A tuple while every
#: record in it is published once and there are few (most names: a
#: service instance's SRV and TXT, a host's A records), else a dict
#: record -> number of publishers (a type's PTRs, the enumeration PTRs).
Bucket = "tuple[Record, ...] | dict[Record, int]"

#: The most records a tuple bucket holds before it becomes a dict (adding
#: to a tuple copies it).
_TUPLE_BUCKET = 8


class InterfaceRecords:
    """
    Everything we would say on one link, indexed for answering, updated
    record by record (RFC 6762 §6.2, §14: each link's view holds that
    link's records only).

    Several claims may publish the same shared record (every service of a
    type publishes the C{_services._dns-sd._udp} PTR of that type), so each
    record is counted: L{add} and L{remove} are O(1) whatever the number
    of records, and a record leaves the view when its last publisher
    removes it.

    Memory per record matters here (issue 13: 10,000 services on a link):
    a name's records are kept in one bucket (see L{Bucket}) that holds the
    publisher counts too, and the records themselves are the claims'
    (shared with every other link's view).

    @ivar by_name: case-folded name -> its bucket, records in the order
        first added.  A name we own (§6.1: NSEC for absent types) is one
        whose bucket holds a unique (cache-flush) record; no set of them
        is kept (it was 50 bytes per service).
    """

    def __init__(self, iface: NetworkInterface) -> None:
        self.interface = iface
        self.by_name: dict[Name, Any] = {}
        self._size = 0
        self._nsec: dict[Name, Record | None] = {}

    def __len__(self) -> int:
        return self._size

    def __contains__(self, record: object) -> bool:
        if not isinstance(record, Record):
            return False
        bucket = self.by_name.get(record.key)
        return bucket is not None and record in bucket

    def add(self, record: Record) -> bool:
        """
        Publish C{record} once more.

        @return: whether it is new to the view.
        """
        key = record.key
        by_name = self.by_name
        bucket = by_name.get(key)
        if bucket is None:
            by_name[key] = (record,)
        elif type(bucket) is tuple:
            if record in bucket or len(bucket) >= _TUPLE_BUCKET:
                counted = dict.fromkeys(bucket, 1)
                count = counted.get(record, 0)
                counted[record] = count + 1
                by_name[key] = counted
                if count:
                    return False
            else:
                by_name[key] = bucket + (record,)
        else:
            count = bucket.get(record, 0)
            bucket[record] = count + 1
            if count:
                return False
        self._size += 1
        self._nsec.pop(key, None)
        return True

    def remove(self, record: Record) -> bool:
        """
        Withdraw one publication of C{record}.

        @return: whether it left the view (nobody else publishes it): only
            then is a goodbye due (RFC 6762 §10.1).
        """
        key = record.key
        bucket = self.by_name.get(key)
        if bucket is None:
            return False
        if type(bucket) is tuple:
            if record not in bucket:
                return False
            rest = tuple(r for r in bucket if r != record)
            if rest:
                self.by_name[key] = rest
            else:
                del self.by_name[key]
        else:
            count = bucket.get(record)
            if count is None:
                return False
            if count > 1:
                bucket[record] = count - 1
                return False
            del bucket[record]
            if not bucket:
                del self.by_name[key]
            rest = bucket
        self._size -= 1
        self._nsec.pop(key, None)
        return True

    def publishers(self, record: Record) -> int:
        """
        How many claims publish C{record} here (0 when it is not in the
        view): more than one for a record several claims share, such as
        the C{_services._dns-sd._udp} PTR of a type.
        """
        bucket = self.by_name.get(record.key)
        if bucket is None:
            return 0
        if type(bucket) is tuple:
            return 1 if record in bucket else 0
        return bucket.get(record, 0)

    def lookup(self, key: Name, qtype: int) -> list[Record]:
        records = self.by_name.get(key, ())
        if qtype == TYPE_ANY:
            return list(records)
        return [r for r in records if r.rtype == qtype]

    def nsec_for(self, key: Name) -> Record | None:
        """
        The NSEC record for a name we own, listing the types it has.
        """
        records = self.by_name.get(key)
        if not records:
            return None
        # Built once per name and view (every PTR answer of a browse asks
        # for the host's NSEC among its additionals), C{None} kept for a
        # name we do not own; add() and remove() forget the name's.
        if key in self._nsec:
            return self._nsec[key]
        if not any(r.cache_flush for r in records):
            self._nsec[key] = None
            return None
        types = {r.rtype for r in records if r.rtype != TYPE_NSEC}
        first = next(iter(records))
        ttl = HOST_TTL if types & {TYPE_A, TYPE_AAAA, TYPE_SRV} else OTHER_TTL
        nsec = self._nsec[key] = nsec_record(first.name, types, ttl)
        return nsec

    def all(self) -> list[Record]:
        return [r for bucket in self.by_name.values() for r in bucket]

    def additional_for(self, record: Record) -> list[Record]:
        """
        RFC 6763 §12 additional records: PTR -> SRV, TXT and the target's
        addresses; SRV -> addresses of the target host (A and AAAA).
        RFC 6762 §6.2: an A answer takes the name's AAAA records as
        additionals and the reverse, or, when the name has none of the
        other type, its NSEC record saying so.
        """
        out: list[Record] = []
        if record.rtype == TYPE_PTR:
            target = name_key(wire_name(record.data, 0))
            for r in self.by_name.get(target, ()):
                if r.rtype in (TYPE_SRV, TYPE_TXT):
                    out.append(r)
                    if r.rtype == TYPE_SRV:
                        out.extend(self._addresses(r))
        elif record.rtype == TYPE_SRV:
            out.extend(self._addresses(record))
        elif record.rtype in (TYPE_A, TYPE_AAAA):
            other = TYPE_AAAA if record.rtype == TYPE_A else TYPE_A
            key = record.key
            found = [r for r in self.by_name.get(key, ()) if r.rtype == other]
            if found:
                out.extend(found)
            else:
                nsec = self.nsec_for(key)
                if nsec is not None:
                    out.append(nsec)
        return out

    def _addresses(self, srv: Record) -> list[Record]:
        """
        The SRV target's addresses of both families, and its NSEC record
        (RFC 6762 §6.2: it says which address types the host has; a
        querier that got only A learns there is no AAAA to wait for).
        """
        host = name_key(wire_name(srv.data, 6))
        found = [r for r in self.by_name.get(host, ()) if r.rtype in (TYPE_A, TYPE_AAAA)]
        nsec = self.nsec_for(host) if found else None
        return found + ([nsec] if nsec is not None else [])
