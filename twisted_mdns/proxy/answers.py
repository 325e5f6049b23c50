# -*- test-case-name: tests.test_proxy -*-
"""
What the Discovery Proxy answers, as a pure choice from what a link holds:
answers, additional records and their unicast form (RFC 8766 §5.5, §6).

Kept apart from the resolver's flow (cache hit, mDNS question, wait) so that
each rule can be read, and tested, where it is applied:

 - RFC 8766 §5.5.1: TTLs of at most ten seconds to plain queries, and never
   more than the record has left in the cache.
 - RFC 8766 §5.5.2: "the Discovery Proxy MUST NOT return IPv4 link-local
   addresses [169.254/16] ... [nor] IPv6 link-local addresses [fe80::/10]"
   to clients off the link: they are useless (or wrong) there.
 - RFC 6763 §12: the additional records a unicast DNS-SD client expects:
   a PTR answer brings the instance's SRV and TXT and the SRV target's
   addresses; an SRV answer brings the target's addresses.
 - RFC 8766 §6.1, §6.2: the SOA (serial 0, minimum 10) and NS records of
   each link's zone apex, answered without asking the link.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from twisted.names import dns

from twisted_mdns.cache import RecordCache
from twisted_mdns.constants import (
    CLASS_IN,
    PROXY_TTL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_CNAME,
    TYPE_NS,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
)
from twisted_mdns.message import (
    Name,
    Question,
    Record,
    name_key,
    nsec_types,
    ptr_target,
    srv_target,
    txt_strings,
)
from twisted_mdns.proxy.domains import LinkDomain
from twisted_mdns.proxy.names import dns_name

_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")

#: RFC 8766 §6.1: SOA timers (refresh, retry, expire); the serial is 0 and
#: the minimum (the negative-caching TTL, RFC 2308) is the proxy TTL.
SOA_REFRESH = 7200
SOA_RETRY = 3600
SOA_EXPIRE = 86400


@dataclass
class LinkRecords:
    """
    What one link holds for the proxy now: the fresh records of its cache
    and this host's own records there (the Responder's view of the link).
    """

    cache: RecordCache | None
    own: Sequence[Record] = ()
    now: float = 0.0

    def lookup(self, name: Name, rtype: int) -> list[tuple[Record, float]]:
        """
        The records for C{name}/C{rtype} (L{TYPE_ANY}: every type), each with
        the seconds it has left; records marked to go (goodbye, flushed) are
        left out.
        """
        found: dict[tuple, tuple[Record, float]] = {}
        if self.cache is not None:
            for entry in self.cache.entries(name, rtype):
                if not entry.doomed:
                    found[entry.record.identity] = (entry.record, entry.remaining(self.now))
        question = Question(name, rtype)
        for record in self.own:
            if record.ttl > 0 and question.matches(record):
                found.setdefault(record.identity, (record, float(record.ttl)))
        return list(found.values())

    def negative(self, name: Name, rtype: int) -> bool:
        """
        Does an NSEC say C{name} has no C{rtype} (RFC 6762 §6.1)?
        """
        for record, _ in self.lookup(name, TYPE_NSEC):
            if rtype != TYPE_ANY and rtype not in nsec_types(record):
                return True
        return False


def link_local(record: Record) -> bool:
    """
    Is C{record} an address record of a link-local address (RFC 8766 §5.5.2)?
    """
    try:
        if record.rtype == TYPE_A:
            return ipaddress.ip_address(str(record.rdata)) in _LINK_LOCAL_V4
        if record.rtype == TYPE_AAAA:
            return ipaddress.ip_address(str(record.rdata)) in _LINK_LOCAL_V6
    except ValueError:
        return True  # not an address we can vouch for: never handed out
    return False


@dataclass
class Answer:
    """
    One answer, still in mDNS terms (C{.local} names, cache TTLs).
    """

    answers: list[tuple[Record, float]] = field(default_factory=list)
    additional: list[tuple[Record, float]] = field(default_factory=list)


def choose(held: LinkRecords, name: Name, rtype: int, counters: Counter) -> Answer:
    """
    The answers to C{name}/C{rtype} and their additional records (RFC 6763
    §12), link-local addresses left out (RFC 8766 §5.5.2).
    """
    out = Answer()
    seen: set[tuple] = set()

    def keep(found: Iterable[tuple[Record, float]], into: list[tuple[Record, float]]) -> None:
        for record, left in found:
            if record.identity in seen or record.rtype == TYPE_NSEC:
                continue
            if link_local(record):
                counters["proxy.link-local-suppressed"] += 1
                continue
            seen.add(record.identity)
            into.append((record, left))

    keep(held.lookup(name, rtype), out.answers)
    hosts: list[Name] = []
    for record, _ in list(out.answers):
        if record.rtype == TYPE_PTR:
            instance = ptr_target(record)
            srvs = held.lookup(instance, TYPE_SRV)
            keep(srvs, out.additional)
            keep(held.lookup(instance, TYPE_TXT), out.additional)
            hosts += [srv_target(r) for r, _ in srvs]
        elif record.rtype == TYPE_SRV:
            hosts.append(srv_target(record))
    done: set[Name] = set()
    for host in hosts:
        if name_key(host) in done:
            continue
        done.add(name_key(host))
        keep(held.lookup(host, TYPE_A), out.additional)
        keep(held.lookup(host, TYPE_AAAA), out.additional)
    return out


def _payload(record: Record, ttl: int) -> Any:
    rdata: Any = record.rdata  # a dnslib rdata object
    rtype = record.rtype
    if rtype == TYPE_A:
        return dns.Record_A(str(rdata), ttl)
    if rtype == TYPE_AAAA:
        return dns.Record_AAAA(str(rdata), ttl)
    if rtype in (TYPE_PTR, TYPE_CNAME, TYPE_NS):
        kind = {TYPE_PTR: dns.Record_PTR, TYPE_CNAME: dns.Record_CNAME, TYPE_NS: dns.Record_NS}[rtype]
        payload: Any = kind(b"", ttl)
        payload.name = dns_name(tuple(rdata.label.label))
        return payload
    if rtype == TYPE_SRV:
        srv = dns.Record_SRV(rdata.priority, rdata.weight, rdata.port, b"", ttl)
        srv.target = dns_name(srv_target(record))
        return srv
    if rtype == TYPE_TXT:
        return dns.Record_TXT(*txt_strings(record), ttl=ttl)
    return dns.UnknownRecord(record.data, ttl)


def to_unicast(
    link: LinkDomain, found: Sequence[tuple[Record, float]], counters: Counter
) -> list[dns.RRHeader]:
    """
    The records as the link's unicast zone shows them: names translated
    (RFC 8766 §5.5), TTL at most ten seconds and at most what is left
    (§5.5.1), the authoritative bit set.
    """
    out = []
    for record, left in found:
        ttl = max(1, min(PROXY_TTL, int(left)))
        translated = link.translate(record, ttl)
        if translated is None:
            continue
        header = dns.RRHeader(b"", record.rtype, CLASS_IN, ttl, _payload(translated, ttl), auth=True)
        # A dot inside a label (an instance "Printer v2.1") stays one label.
        header.name = dns_name(translated.name)
        out.append(header)
    return out


def soa(link: LinkDomain, server: Name) -> dns.RRHeader:
    """
    The zone's SOA (RFC 8766 §6.1): MNAME the proxy host, serial 0 (the
    zone is not transferred, so no serial is meaningful), minimum 10 s, the
    negative-caching TTL (RFC 2308) for names mDNS did not answer.
    """
    apex = b".".join(link.domain)
    return dns.RRHeader(
        apex, dns.SOA, dns.IN, PROXY_TTL,
        dns.Record_SOA(
            mname=b".".join(server), rname=b"hostmaster." + apex, serial=0,
            refresh=SOA_REFRESH, retry=SOA_RETRY, expire=SOA_EXPIRE,
            minimum=PROXY_TTL, ttl=PROXY_TTL,
        ),
        auth=True,
    )


def ns(link: LinkDomain, server: Name) -> dns.RRHeader:
    """
    The zone's NS (RFC 8766 §6.2): the proxy host itself.
    """
    return dns.RRHeader(
        b".".join(link.domain), dns.NS, dns.IN, PROXY_TTL,
        dns.Record_NS(b".".join(server), PROXY_TTL), auth=True,
    )
