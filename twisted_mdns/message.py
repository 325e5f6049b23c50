# -*- test-case-name: tests.test_message,tests.test_hostile -*-
"""
mDNS messages on top of dnslib.

dnslib parses and packs DNS well, but it knows nothing of mDNS: the top bit
of the class field is the unicast-response bit on questions and the
cache-flush bit on records (RFC 6762 s5.4, s10.2), names must survive
unchanged as UTF-8 label tuples (RFC 6763 s4.3, no IDNA), and it has no
size-aware packing.  This module keeps those rules in one place:

 - L{Question} and L{Record} are small values with the class bit split out;
   names are tuples of C{bytes} labels, compared case-insensitively (ASCII)
   through L{name_key}.
 - L{parse} turns bytes into a L{Message} or raises L{MessageError}, whatever
   the input (malformed packets are the network's problem, not ours).
 - L{pack} splits what must be sent into datagrams no larger than the limit
   (the interface MTU less IP/UDP headers, at most 9000 bytes; RFC 6762
   s17), setting TC on all but the last query packet when known answers
   spill over (s7.2).

The values live in L{twisted_mdns.dnsvalues} and the parser in
L{twisted_mdns.decoding}; every public name of both is re-exported here,
which is where the rest of the project imports them from.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable, Sequence

from dnslib import AAAA, NSEC, PTR, QTYPE, SRV, TXT, A, DNSBuffer, DNSLabel
from dnslib.label import DNSLabelError

from .constants import (  # noqa: F401  (re-exported: message.TYPE_A etc.)
    CLASS_IN,
    CLASS_MASK,
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    IP_UDP_OVERHEAD,
    MAX_PACKET,
    OPCODE_MASK,
    TOP_BIT,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_NSEC,
    TYPE_OPT,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
)
from .decoding import parse  # noqa: F401  (re-exported)
from .dnsvalues import *  # noqa: F401,F403  (re-exported: the values live there)
from .dnsvalues import MessageError, Name, Question, Record, _label, type_name

# -- building records --------------------------------------------------------


def a_record(name: Name, address: str, ttl: int, cache_flush: bool = True) -> Record:
    return Record(name, TYPE_A, A(address), ttl, cache_flush)


def aaaa_record(name: Name, address: str, ttl: int, cache_flush: bool = True) -> Record:
    return Record(name, TYPE_AAAA, AAAA(address), ttl, cache_flush)


def ptr_record(name: Name, target: Name, ttl: int, cache_flush: bool = False) -> Record:
    return Record(name, TYPE_PTR, PTR(_label(target)), ttl, cache_flush)


def srv_record(
    name: Name, target: Name, port: int, ttl: int, priority: int = 0, weight: int = 0
) -> Record:
    return Record(name, TYPE_SRV, SRV(priority, weight, port, _label(target)), ttl, True)


def txt_record(name: Name, strings: Sequence[bytes], ttl: int) -> Record:
    # dnslib packs TXT([]) as zero bytes; an empty TXT is one empty string.
    return Record(name, TYPE_TXT, TXT(list(strings) or [b""]), ttl, True)


def nsec_record(name: Name, types: Iterable[int], ttl: int) -> Record:
    """
    The s6.1 negative answer: "name exists, and has only these types".
    """
    names = [type_name(t) for t in sorted(set(types))]
    return Record(name, TYPE_NSEC, NSEC(_label(name), names), ttl, True)


def ptr_target(record: Record) -> Name:
    return tuple(record.rdata.label.label)


def srv_target(record: Record) -> Name:
    return tuple(record.rdata.target.label)


def txt_strings(record: Record) -> list[bytes]:
    return [bytes(s) for s in record.rdata.data]


def nsec_types(record: Record) -> set[int]:
    types = set()
    for t in getattr(record.rdata, "rrlist", []):
        try:
            types.add(int(getattr(QTYPE, t)) if isinstance(t, str) else int(t))
        except Exception:
            continue
    return types


# -- packing -----------------------------------------------------------------


def packet_limit(mtu: int | None) -> int:
    """
    The largest datagram for an interface MTU (s17).
    """
    if not mtu:
        return 1500 - IP_UDP_OVERHEAD
    return max(512, min(MAX_PACKET, mtu - IP_UDP_OVERHEAD))


_STRUCTS: dict[str, struct.Struct] = {}


class PackBuffer(DNSBuffer):
    """
    dnslib's C{DNSBuffer} with the same output, written faster: names are
    compressed from one dictionary look-up per suffix (dnslib builds a
    tuple per suffix twice and packs each length through C{struct}), and
    fixed fields are packed with compiled C{struct.Struct}s.  Every
    datagram we send goes through it; probing and announcing on 240 links
    pack 240 datagrams in one reactor turn, half of whose time was
    dnslib's C{encode_name} (issue 13, start-up).
    """

    def encode_name(self, name: Any) -> None:
        labels = name.label if isinstance(name, DNSLabel) else DNSLabel(name).label
        if len(b".".join(labels)) > 253:
            raise DNSLabelError(f"Domain label too long: {name!r}")
        names, data = self.names, self.data
        for i in range(len(labels)):
            suffix = labels[i:]
            pointer = names.get(suffix)
            if pointer is not None:
                data += (0xC000 | pointer).to_bytes(2, "big")
                self.offset += 2
                return
            if self.offset < 0x4000:  # what a 14-bit pointer can reach
                names[suffix] = self.offset
            label = labels[i]
            if len(label) > 63:
                raise DNSLabelError(f"Label component too long: {label!r}")
            data.append(len(label))
            data += label
            self.offset += 1 + len(label)
        data.append(0)
        self.offset += 1

    def pack(self, fmt: str, *args: Any) -> None:
        packer = _STRUCTS.get(fmt)
        if packer is None:
            packer = _STRUCTS[fmt] = struct.Struct(fmt)
        self.data += packer.pack(*args)
        self.offset += packer.size

    def append(self, s: bytes) -> None:
        self.data += s
        self.offset += len(s)


class _Packer:
    def __init__(self, ident: int, flags: int, limit: int) -> None:
        self.ident, self.flags, self.limit = ident, flags, limit
        self.reset()

    def reset(self) -> None:
        self.buf = PackBuffer()
        self.buf.pack("!HHHHHH", 0, 0, 0, 0, 0, 0)
        self.counts = [0, 0, 0, 0]

    @property
    def empty(self) -> bool:
        return not any(self.counts)

    def _try(self, section: int, write: Callable[[DNSBuffer], None]) -> bool:
        buf = self.buf
        mark = buf.offset
        # Writing a name only adds suffixes (in order): what did not fit
        # is undone by dropping the ones added, not by copying the table
        # before every record.
        known = len(buf.names)
        write(buf)
        if buf.offset > self.limit:
            buf.data = buf.data[:mark]
            buf.offset = mark
            names = buf.names
            for suffix in list(names)[known:]:
                del names[suffix]
            return False
        self.counts[section] += 1
        return True

    def add_question(self, q: Question) -> bool:
        def write(buf: DNSBuffer) -> None:
            buf.encode_name(_label(q.name))
            buf.pack("!HH", q.qtype, q.qclass | (TOP_BIT if q.unicast else 0))

        return self._try(0, write)

    def add_record(self, section: int, record: Record) -> bool:
        return self._try(section, record.pack_into)

    def finish(self, extra_flags: int = 0) -> bytes:
        self.buf.update(0, "!HHHHHH", self.ident, self.flags | extra_flags, *self.counts)
        return bytes(self.buf.data)


def pack(
    *,
    ident: int = 0,
    flags: int = 0,
    questions: Sequence[Question] = (),
    answers: Sequence[Record] = (),
    authorities: Sequence[Record] = (),
    additionals: Sequence[Record] = (),
    limit: int = 1500 - IP_UDP_OVERHEAD,
) -> list[bytes]:
    """
    Pack into as many datagrams of at most C{limit} bytes as it takes.

    Questions and authority records (a probe's proposed records) go in the
    first datagram.  Answers then fill datagrams in order; in a query, every
    datagram but the last gets TC (the known answers continue, s7.2); in a
    response, each datagram is complete by itself.  Additional records are
    added where they fit and dropped where they do not (s12: they are a
    courtesy).  A single record larger than C{limit} is sent alone in an
    oversized datagram rather than lost, capped by L{MAX_PACKET}.
    """
    limit = min(limit, MAX_PACKET)
    is_query = not flags & FLAG_QR
    packets: list[bytes] = []
    packer = _Packer(ident, flags, limit)
    for q in questions:
        if not packer.add_question(q):
            raise MessageError("questions do not fit in one datagram")
    for record in authorities:
        if not packer.add_record(2, record):
            raise MessageError("probe records do not fit in one datagram")
    for record in answers:
        if packer.add_record(1, record):
            continue
        if packer.empty:
            packer.limit = MAX_PACKET
            if not packer.add_record(1, record):
                raise MessageError(f"record too large to send: {record!r}")
            packer.limit = limit
            continue
        packets.append(packer.finish(FLAG_TC if is_query else 0))
        packer.reset()
        if is_query:
            # s7.2: the continuation packets of a query carry only answers.
            pass
        if not packer.add_record(1, record):
            packer.limit = MAX_PACKET
            packer.add_record(1, record)
            packer.limit = limit
    for record in additionals:
        packer.add_record(3, record)
    if not packer.empty or not packets:
        packets.append(packer.finish())
    return packets


def pack_one(**kwargs: Any) -> bytes:
    """
    Pack into exactly one datagram: for legacy unicast replies, which must
    be one datagram (RFC 6762 s6.7).  What does not fit is left out, and TC
    is set when answers were (s18.5: the reply is incomplete); additionals
    that do not fit are just dropped.
    """
    kwargs.setdefault("limit", MAX_PACKET)
    packets = pack(**kwargs)
    first = packets[0]
    if len(packets) > 1:
        flags = int.from_bytes(first[2:4], "big") | FLAG_TC
        first = first[:2] + flags.to_bytes(2, "big") + first[4:]
    return first
