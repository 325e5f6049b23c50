# -*- test-case-name: tests.test_message_parse -*-
"""
The values of mDNS messages: L{Question}, L{Record}, L{Message}, names.

Kept apart from L{twisted_mdns.message} (which re-exports every name here,
and packs) and L{twisted_mdns.decoding} (which parses), so that each stays
readable in one sitting.  Names are tuples of C{bytes} labels, compared
case-insensitively (ASCII) through L{name_key}; the class field's top bit
is split out (the QU bit on questions, the cache-flush bit on records:
RFC 6762 s5.4, s10.2).
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RD, DNSBuffer, DNSLabel
from dnslib.buffer import BufferError as _BufferError
from dnslib.dns import RDMAP

from twisted_mdns.constants import (
    CLASS_IN,
    FLAG_QR,
    FLAG_TC,
    OPCODE_MASK,
    TOP_BIT,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
)

__all__ = [
    "HEADER", "Message", "MessageError", "Name", "Question", "Record",
    "join_name", "name_from_text", "name_key", "name_to_text", "rdata_bytes",
    "type_name",
]

Name = tuple  # tuple[bytes, ...]


#: The DNS header: id, flags and the four section counts.
HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")


class MessageError(ValueError):
    """
    A datagram that is not a usable DNS message.
    """


def name_from_text(text: str) -> Name:
    """
    Split a dotted name into labels.  Only for names without dots inside
    labels (host names, service types); instance names are built from their
    parts with L{join_name}.
    """
    text = text.rstrip(".")
    if not text:
        return ()
    return tuple(label.encode("utf-8") for label in text.split("."))


def join_name(*parts: str | bytes | Name) -> Name:
    """
    Build a name from parts: a C{str}/C{bytes} part is ONE label (so that
    C{"My Web. (2)"} keeps its dot and spaces), a tuple is already labels.
    """
    labels: list[bytes] = []
    for part in parts:
        if isinstance(part, tuple):
            labels.extend(part)
        elif isinstance(part, bytes):
            labels.append(part)
        else:
            labels.append(part.encode("utf-8"))
    return tuple(labels)


def name_key(name: Name) -> Name:
    """
    The case-insensitive form of C{name} (DNS folds ASCII case only).

    A label already in lower case is the name's own object, not a copy
    (most labels are: C{_http}, C{_tcp}, C{local}), so keys share their
    labels with the names they come from (issue 13: memory per service).
    """
    out = []
    for label in name:
        low = label.lower()
        out.append(label if low == label else low)
    return tuple(out)


def name_to_text(name: Name) -> str:
    """
    A display form: labels joined by dots, dots and backslashes inside
    labels escaped as in RFC 6763 s4.3 presentation.
    """
    out = []
    for label in name:
        text = label.decode("utf-8", "replace")
        out.append(text.replace("\\", "\\\\").replace(".", "\\."))
    return ".".join(out) + "." if out else "."


def _label(name: Name) -> DNSLabel:
    return DNSLabel(list(name))


def type_name(rtype: int) -> str:
    try:
        return str(QTYPE[rtype])
    except Exception:
        return f"TYPE{rtype}"


class Question:
    """
    One question; C{unicast} is the QU bit (RFC 6762 s5.4).

    A value (compared and hashed by its fields); C{__slots__} because every
    received query makes some.
    """

    __slots__ = ("name", "qtype", "unicast", "qclass", "_key")

    def __init__(self, name: Name, qtype: int, unicast: bool = False, qclass: int = CLASS_IN,
                 _key: Name | None = None) -> None:
        self.name = name
        self.qtype = qtype
        self.unicast = unicast
        self.qclass = qclass
        self._key = _key

    @property
    def key(self) -> Name:
        key = self._key
        if key is None:
            key = self._key = name_key(self.name)
        return key

    def _fields(self) -> tuple:
        return (self.name, self.qtype, self.unicast, self.qclass)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Question):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"Question(name={self.name!r}, qtype={self.qtype!r}, "
                f"unicast={self.unicast!r}, qclass={self.qclass!r})")

    def matches(self, record: "Record") -> bool:
        """
        Does C{record} answer this question (name, class and type or ANY)?
        """
        return (
            (self.qtype == TYPE_ANY or self.qtype == record.rtype)
            and (self.qclass == record.rclass or self.qclass == TYPE_ANY)
            and self.key == record.key
        )


#: Types whose rdata holds no name: their canonical rdata is the received
#: bytes, and they pack by copying them.
_FLAT_TYPES = frozenset({TYPE_A, TYPE_AAAA, TYPE_TXT})


def rdata_bytes(rtype: int, rdata: Any) -> bytes:
    """
    The rdata in canonical wire form: names uncompressed and in their
    original case.  Used to compare records (known answers, conflicts, the
    s8.2 tie-break), never sent as is.
    """
    buf = DNSBuffer()
    if rtype in (TYPE_PTR, 5, 2):  # PTR, CNAME, NS
        buf.encode_name_nocompress(rdata.label)
    elif rtype == TYPE_SRV:
        buf.pack("!HHH", rdata.priority, rdata.weight, rdata.port)
        buf.encode_name_nocompress(rdata.target)
    else:
        rdata.pack(buf)
    return bytes(buf.data)


#: Types whose rdata L{Record.pack_into} can pack from canonical bytes.
_NAME_TYPES = frozenset({TYPE_PTR, TYPE_SRV})


def name_wire(name: Name) -> bytes:
    """
    C{name} in uncompressed wire form (the canonical rdata of a PTR).
    """
    return b"".join(bytes((len(label),)) + label for label in name) + b"\0"


def wire_name(wire: bytes, offset: int) -> Name:
    """
    The name at C{offset} of canonical (uncompressed) rdata bytes, as made
    by L{name_wire} or L{rdata_bytes}: the target of a PTR (offset 0) or
    an SRV (offset 6).
    """
    labels = []
    n = wire[offset]
    while n:
        offset += 1
        labels.append(wire[offset : offset + n])
        offset += n
        n = wire[offset]
    return tuple(labels)


def _rdata_from_wire(rtype: int, wire: bytes) -> object:
    """
    The dnslib rdata object for canonical rdata bytes (names uncompressed,
    so they decode without the rest of the message).
    """
    if not wire:
        return RD(b"")
    rd_class = RDMAP.get(QTYPE.get(rtype), RD) if rtype in QTYPE.forward else RD
    return rd_class.parse(_NameSafeBuffer(wire), len(wire))


class Record:
    """
    A resource record with the cache-flush bit split out of its class.

    Two records are the same record when name (case-insensitively), type,
    class and rdata are equal; TTL and the cache-flush bit do not take part.
    A value: never changed once made (L{with_ttl} and L{with_flush} make
    new ones).

    Received records keep their rdata as canonical bytes (L{data}); the
    dnslib object (L{rdata}) is only built when something asks for it
    (most received records are compared and cached, never read).

    @ivar rdata: a dnslib rdata object (C{A}, C{PTR}, C{SRV}, C{TXT},
        C{NSEC}, ...).
    """

    # Eight slots and no identity tuple: a record is kept in a cache for
    # each one heard, so every byte here is paid thousands of times (an
    # identity tuple beside six slots cost 72 bytes more than two more
    # slots; issue 13).  C{key}, C{rclass} and C{data} are plain slots:
    # the cache reads them for every record heard.
    __slots__ = ("name", "key", "rtype", "rclass", "data", "ttl", "cache_flush", "_rdata")

    #: Case-folded name.
    key: Name
    #: The class, without the cache-flush bit.
    rclass: int
    #: Canonical rdata bytes.
    data: bytes

    def __init__(self, name: Name, rtype: int, rdata: Any, ttl: int, cache_flush: bool = False,
                 rclass: int = CLASS_IN, _wire: bytes = b"", _key: Name = ()) -> None:
        self.name = name
        self.key = _key or name_key(name)
        self.rtype = rtype
        self.rclass = rclass
        self.data = _wire if _wire or rdata is None else rdata_bytes(rtype, rdata)
        self.ttl = ttl
        self.cache_flush = cache_flush
        self._rdata = rdata

    @property
    def rdata(self) -> Any:
        """
        The dnslib rdata object, built from L{data} on first read.
        """
        if self._rdata is None:
            self._rdata = _rdata_from_wire(self.rtype, self.data)
        return self._rdata

    @property
    def _wire(self) -> bytes:
        return self.data

    @property
    def _key(self) -> Name:
        return self.key

    @property
    def identity(self) -> tuple:
        """
        What makes two records the same record (s6: name, rrtype, rrclass
        and rdata; not the TTL or the cache-flush bit), as a tuple for
        tables of records (made on each read: kept by no record).
        """
        return (self.key, self.rtype, self.rclass, self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self is other or (
            self.data == other.data and self.rtype == other.rtype
            and self.key == other.key and self.rclass == other.rclass
        )

    def __hash__(self) -> int:
        return hash(self.identity)

    def _copy(self, ttl: int, cache_flush: bool) -> "Record":
        new = _new_record(Record)
        new.name, new.key, new.rtype, new.rclass, new.data = self.name, self.key, self.rtype, self.rclass, self.data
        new.ttl, new.cache_flush, new._rdata = ttl, cache_flush, self._rdata
        return new

    def with_ttl(self, ttl: int) -> "Record":
        """
        The same record with another TTL (0 for a goodbye).
        """
        return self._copy(ttl, self.cache_flush)

    def with_flush(self, cache_flush: bool) -> "Record":
        return self._copy(self.ttl, cache_flush)

    def pack_into(self, buf: DNSBuffer) -> None:
        buf.encode_name(_label(self.name))
        rclass = self.rclass | (TOP_BIT if self.cache_flush else 0)
        if self.rtype in _FLAT_TYPES or self.rtype not in QTYPE.forward:
            buf.pack("!HHIH", self.rtype, rclass, self.ttl, len(self._wire))
            buf.append(self._wire)
            return
        buf.pack("!HHI", self.rtype, rclass, self.ttl)
        length_at = buf.offset
        buf.pack("!H", 0)
        start = buf.offset
        rdata = self._rdata
        if rdata is None and self.rtype in _NAME_TYPES:
            # Our own PTR and SRV records keep only their canonical bytes
            # (issue 13: a dnslib object per record was most of the memory
            # per registered service); pack the target from them, so it
            # is still compressed (RFC 6762 s18.14).
            wire = self.data
            if self.rtype == TYPE_SRV:
                buf.append(wire[:6])
                buf.encode_name(DNSLabel(wire_name(wire, 6)))
            else:
                buf.encode_name(DNSLabel(wire_name(wire, 0)))
        else:
            self.rdata.pack(buf)
        buf.update(length_at, "!H", buf.offset - start)

    def __repr__(self) -> str:
        flush = " flush" if self.cache_flush else ""
        return (
            f"<Record {name_to_text(self.name)} {type_name(self.rtype)} "
            f"ttl={self.ttl}{flush} {self.rdata!r}>"
        )


_new_record = object.__new__


def bit_property(field: str, mask: int, doc: str) -> property:
    """
    A read-only property telling whether C{mask} is set in the integer
    attribute C{field}.

    Why: hot objects keep their flags packed in one int (a message's header
    flags, a cache entry's state) and offer each bit as a boolean; one
    definition serves them all.
    """
    get = operator.attrgetter(field)
    return property(lambda self: bool(get(self) & mask), doc=doc)


@dataclass
class Message:
    """
    A parsed (or to-be-packed) DNS message.
    """

    id: int = 0
    flags: int = 0
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)

    is_response = bit_property("flags", FLAG_QR, "Is the QR bit set (a response)?")
    truncated = bit_property("flags", FLAG_TC, "Is the TC bit set (RFC 6762 §7.2: more known answers follow)?")

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def is_probe(self) -> bool:
        """
        A query with records in the authority section: a probe (s8.1).
        """
        return not self.is_response and bool(self.authorities)

    def records(self) -> list[Record]:
        return [*self.answers, *self.authorities, *self.additionals]


#: Each hop must go further back, and a name has at most 127 labels; a
#: longer chain of pointers (to pointers) can only be an attack.
_MAX_POINTER_HOPS = 128


class _NameSafeBuffer(DNSBuffer):
    """
    A C{dnslib.DNSBuffer} whose C{decode_name} (used for owner names and, through
    dnslib's rdata parsers, for PTR/SRV/NSEC targets) cannot be made to
    loop or recurse: every compression pointer must point before the
    previous one (before the name itself, for the first), hops are
    bounded, labels are at most 63 bytes and names at most 255.

    dnslib's own decoder only refuses a pointer to itself and recurses
    once per pointer, so two pointers leading to each other cost a
    thousand stack frames and a C{RecursionError} per 29-byte datagram
    (about 5 ms of CPU each: a cheap way to keep a responder busy).
    """

    #: Where the next read starts (set by C{DNSBuffer}; declared for mypy).
    offset: int

    def decode_name(self, last: int = -1) -> DNSLabel:
        data = self.data
        size = len(data)
        offset = floor = self.offset
        resume = None
        labels: list[bytes] = []
        wire_length = 1
        hops = 0
        while True:
            if offset >= size:
                raise _BufferError("name runs past the end of the packet")
            n = data[offset]
            if n >= 0xC0:
                if offset + 1 >= size:
                    raise _BufferError("compression pointer cut short")
                target = ((n & 0x3F) << 8) | data[offset + 1]
                if resume is None:
                    resume = offset + 2
                hops += 1
                if target >= floor or hops > _MAX_POINTER_HOPS:
                    raise _BufferError(
                        f"compression pointer at {offset} to {target} does not point backwards"
                    )
                offset = floor = target
                continue
            if n == 0:
                offset += 1
                break
            if n > 63:
                raise _BufferError(f"label length byte {n:#04x} at {offset}")
            label = bytes(data[offset + 1 : offset + 1 + n])
            if len(label) != n:
                raise _BufferError("label runs past the end of the packet")
            try:
                label.decode()
            except UnicodeDecodeError:
                raise _BufferError(f"label {label!r} is not UTF-8") from None
            wire_length += n + 1
            if wire_length > 255:
                raise _BufferError("name longer than 255 bytes")
            labels.append(label)
            offset += n + 1
        self.offset = resume if resume is not None else offset
        return DNSLabel(labels)


def _parse_name(buf: DNSBuffer) -> Name:
    label = buf.decode_name()
    name = tuple(label.label)
    # dnslib reads length bytes 0x40-0xBF (the reserved and extended label
    # types of RFC 1035 s4.1.4 / RFC 6891) as label lengths 64-191; such a
    # name could not be packed again (an echoed legacy question would raise).
    if any(len(part) > 63 for part in name):
        raise MessageError("label longer than 63 bytes")
    if sum(len(part) + 1 for part in name) + 1 > 255:
        raise MessageError("name longer than 255 bytes")
    return name


