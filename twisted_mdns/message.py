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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from dnslib import (
    A,
    AAAA,
    NSEC,
    PTR,
    QTYPE,
    RD,
    SRV,
    TXT,
    DNSBuffer,
    DNSError,
    DNSLabel,
)
from dnslib.buffer import BufferError as _BufferError
from dnslib.dns import RDMAP

Name = tuple  # tuple[bytes, ...]

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
    """
    return tuple(label.lower() for label in name)


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


def rdata_bytes(rtype: int, rdata) -> bytes:
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

    # Six slots: the key, class and rdata bytes live in the identity tuple,
    # which every cached record needs anyway (a record is kept in a cache
    # for each one heard: every slot is paid thousands of times).
    __slots__ = ("name", "rtype", "ttl", "cache_flush", "_rdata", "_identity")

    def __init__(self, name: Name, rtype: int, rdata: object, ttl: int, cache_flush: bool = False,
                 rclass: int = CLASS_IN, _wire: bytes = b"", _key: Name = ()) -> None:
        self.name = name
        self.rtype = rtype
        self.ttl = ttl
        self.cache_flush = cache_flush
        self._rdata = rdata
        wire = _wire if _wire or rdata is None else rdata_bytes(rtype, rdata)
        self._identity = (_key or name_key(name), rtype, rclass, wire)

    @property
    def rdata(self) -> object:
        rdata = self._rdata
        if rdata is None:
            rdata = self._rdata = _rdata_from_wire(self.rtype, self._identity[3])
        return rdata

    @property
    def rclass(self) -> int:
        """
        The class, without the cache-flush bit.
        """
        return self._identity[2]

    @property
    def key(self) -> Name:
        """
        Case-folded name.
        """
        return self._identity[0]

    @property
    def data(self) -> bytes:
        """
        Canonical rdata bytes.
        """
        return self._identity[3]

    @property
    def _wire(self) -> bytes:
        return self._identity[3]

    @property
    def _key(self) -> Name:
        return self._identity[0]

    @property
    def identity(self) -> tuple:
        """
        What makes two records the same record (s6: name, rrtype, rrclass
        and rdata; not the TTL or the cache-flush bit).
        """
        return self._identity

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self is other or self._identity == other._identity

    def __hash__(self) -> int:
        return hash(self._identity)

    def _copy(self, ttl: int, cache_flush: bool) -> "Record":
        new = _new_record(Record)
        new.name, new.rtype, new.ttl, new.cache_flush = self.name, self.rtype, ttl, cache_flush
        new._rdata, new._identity = self._rdata, self._identity
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
        self.rdata.pack(buf)
        buf.update(length_at, "!H", buf.offset - start)

    def __repr__(self) -> str:
        flush = " flush" if self.cache_flush else ""
        return (
            f"<Record {name_to_text(self.name)} {type_name(self.rtype)} "
            f"ttl={self.ttl}{flush} {self.rdata!r}>"
        )


_new_record = object.__new__


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

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)

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
    A L{DNSBuffer} whose C{decode_name} (used for owner names and, through
    dnslib's rdata parsers, for PTR/SRV/NSEC targets) cannot be made to
    loop or recurse: every compression pointer must point before the
    previous one (before the name itself, for the first), hops are
    bounded, labels are at most 63 bytes and names at most 255.

    dnslib's own decoder only refuses a pointer to itself and recurses
    once per pointer, so two pointers leading to each other cost a
    thousand stack frames and a C{RecursionError} per 29-byte datagram
    (about 5 ms of CPU each: a cheap way to keep a responder busy).
    """

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


#: Interned names: received name -> (name, folded key, uncompressed wire
#: form).  Every record of a service repeats its instance, type and host
#: names, packet after packet; one shared tuple per name keeps the cache
#: small and spares the folding, and the wire form is what a PTR or SRV
#: target is compared by.  Bounded: cleared when full (interning only
#: saves memory and time; two equal names compare equal either way).
_NAMES: dict[Name, tuple[Name, Name, bytes]] = {}
_MAX_INTERNED = 8192
_LENGTH_BYTE = [bytes((n,)) for n in range(64)]


def _intern(name: Name) -> tuple[Name, Name, bytes]:
    found = _NAMES.get(name)
    if found is None:
        # The folded labels, sharing every label folding leaves alone
        # (bytes.lower always makes a new object).
        key = tuple([label if lowered == label else lowered
                     for label, lowered in zip(name, map(bytes.lower, name))])
        if key == name:
            key = name
        length = _LENGTH_BYTE
        wire = b"".join([length[len(label)] + label for label in name]) + b"\0"
        found = (name, key, wire)
        if len(_NAMES) >= _MAX_INTERNED:
            _NAMES.clear()
        _NAMES[name] = found
    return found


#: Label runs (the bytes of a name up to its end or its pointer) already
#: split and checked -> their labels.  Bounded like L{_NAMES}.
_RUNS: dict[bytes, Name] = {}


def _split_run(run: bytes) -> Name:
    labels = []
    offset = 0
    while offset < len(run):
        n = run[offset]
        label = run[offset + 1 : offset + 1 + n]
        if not label.isascii():
            try:
                label.decode()
            except UnicodeDecodeError:
                raise MessageError(f"label {label!r} is not UTF-8") from None
        labels.append(label)
        offset += n + 1
    return tuple(labels)


def _read_name(data: bytes, offset: int, memo: dict, hops: int = 0) -> tuple[Name, int, int, Name, bytes]:
    """
    The name at C{offset}: (labels, offset after it, wire length, folded
    key, uncompressed wire form), interned (L{_intern}).

    The same rules as L{_NameSafeBuffer.decode_name}: every compression
    pointer points before the part of the name that holds it, at most
    L{_MAX_POINTER_HOPS} of them, labels of at most 63 bytes (the length
    bytes 0x40-0xBF are refused), names of at most 255, UTF-8 labels.
    Each name start is decoded once per message (C{memo}), so the suffixes
    that compression shares are shared tuples too.
    """
    found = memo.get(offset)
    if found is not None:
        return found
    start = offset
    size = len(data)
    # The run of labels up to the terminator or a pointer.
    while True:
        n = data[offset]  # IndexError past the end: MessageError in parse
        if n == 0 or n >= 0xC0:
            break
        if n > 63:
            raise MessageError(f"label length byte {n:#04x} at {offset}")
        offset += n + 1
        if offset >= size:
            raise MessageError("name runs past the end of the packet")
    run = data[start:offset]
    labels = _RUNS.get(run)
    if labels is None:
        labels = _split_run(run)
        if len(_RUNS) >= _MAX_INTERNED:
            _RUNS.clear()
        _RUNS[run] = labels
    length = offset - start + 1
    if n == 0:
        end = offset + 1
        name: Name = labels
    else:
        if offset + 1 >= size:
            raise MessageError("compression pointer cut short")
        target = ((n & 0x3F) << 8) | data[offset + 1]
        if target >= start or hops >= _MAX_POINTER_HOPS:
            raise MessageError(f"compression pointer at {offset} to {target} does not point backwards")
        found = memo.get(target)
        if found is None:
            found = _read_name(data, target, memo, hops + 1)
        length += found[2] - 1
        name = labels + found[0] if labels else found[0]
        end = offset + 2
    if length > 255:
        raise MessageError("name longer than 255 bytes")
    interned = _NAMES.get(name)
    if interned is None:
        interned = _intern(name)
    found = (interned[0], end, length, interned[1], interned[2])
    memo[start] = found
    return found


_HEADER_UNPACK = HEADER.unpack_from
_QUESTION_UNPACK = struct.Struct("!HH").unpack_from
_RR_UNPACK = _RR_FIXED.unpack_from
_SRV_FIXED = struct.Struct("!HHH")


def _flat_rdata(data: bytes, rtype: int, offset: int, end: int, memo: dict) -> bytes:
    """
    The canonical rdata of a record, checked as dnslib would have parsed it.
    """
    if rtype == TYPE_A:
        if end - offset != 4:
            raise MessageError("A record data length mismatch")
        return data[offset:end]
    if rtype == TYPE_AAAA:
        if end - offset != 16:
            raise MessageError("AAAA record data length mismatch")
        return data[offset:end]
    if rtype == TYPE_TXT:
        p = offset
        while p < end:
            p += data[p] + 1
        if p != end:
            raise MessageError("TXT record data length mismatch")
        return data[offset:end]
    if rtype == TYPE_PTR or rtype == 5 or rtype == 2:  # PTR, CNAME, NS
        found = memo.get(offset) or _read_name(data, offset, memo)
        if found[1] != end:
            raise MessageError(f"{type_name(rtype)} record data length mismatch")
        return found[4]
    if rtype == TYPE_SRV:
        if end - offset < 7:
            raise MessageError("SRV record data length mismatch")
        found = memo.get(offset + 6) or _read_name(data, offset + 6, memo)
        if found[1] != end:
            raise MessageError("SRV record data length mismatch")
        return data[offset : offset + 6] + found[4]
    return b""  # not reached: the caller handles the other types


def _slow_rdata(data: bytes, rtype: int, offset: int, end: int) -> object:
    """
    Other types dnslib knows (MX, SOA, HINFO, ...): parsed by dnslib over
    the safe name decoder, as before.
    """
    buf = _NameSafeBuffer(data)
    buf.offset = offset
    rd_class = RDMAP.get(QTYPE.get(rtype), RD)
    try:
        rdata = rd_class.parse(buf, end - offset)
    except MessageError:
        raise
    except (DNSError, Exception) as e:  # dnslib raises more than DNSError
        raise MessageError(f"malformed {type_name(rtype)} record: {e}") from None
    if buf.offset != end:
        raise MessageError(f"{type_name(rtype)} record data length mismatch")
    return rdata


_TTLS: dict[int, int] = {}


def _intern_ttl(ttl: int) -> int:
    if len(_TTLS) >= _MAX_INTERNED:
        _TTLS.clear()
    _TTLS[ttl] = ttl
    return ttl


_NAME_TYPES = frozenset({TYPE_PTR, 5, 2, TYPE_SRV})
#: NSEC (rare: negative answers) goes through dnslib, whose type bitmap
#: parsing decides what is acceptable.
_FAST_TYPES = frozenset({TYPE_A, TYPE_AAAA, TYPE_TXT, TYPE_PTR, 5, 2, TYPE_SRV})


def parse(data: bytes) -> Message:
    """
    Parse a datagram.

    Received records keep their rdata as canonical bytes; the dnslib
    objects are made only when read (L{Record.rdata}).  Names are decoded
    once per message and interned.

    @raise MessageError: for anything malformed (short, truncated names,
        compression loops, counts larger than the packet, bad rdata).
    """
    size = len(data)
    if size < 12:
        raise MessageError(f"datagram of {size} bytes is shorter than a header")
    ident, flags, qd, an, ns, ar = _HEADER_UNPACK(data)
    # Every question takes at least 5 bytes and every record at least 11:
    # refuse impossible counts before allocating anything for them.
    if qd * 5 + (an + ns + ar) * 11 > size - 12:
        raise MessageError("section counts larger than the packet")
    data = bytes(data)
    memo: dict = {}
    offset = 12
    questions = []
    read_name = _read_name
    ttls = _TTLS
    try:
        for _ in range(qd):
            name, offset, _, key, _ = read_name(data, offset, memo)
            qtype, qclass = _QUESTION_UNPACK(data, offset)
            offset += 4
            questions.append(Question(name, qtype, qclass >= TOP_BIT, qclass & CLASS_MASK, key))
        sections: list[list[Record]] = [[], [], []]
        new = _new_record
        fast = _FAST_TYPES
        for index, count in ((0, an), (1, ns), (2, ar)):
            section = sections[index]
            for _ in range(count):
                first = data[offset]
                found = None
                if first >= 0xC0 and offset + 1 < size:
                    # The usual owner name: one compression pointer to a
                    # name this message already decoded.
                    target = ((first & 0x3F) << 8) | data[offset + 1]
                    if target < offset:
                        found = memo.get(target)
                if found is not None:
                    offset += 2
                else:
                    found = read_name(data, offset, memo)
                    offset = found[1]
                rtype, rclass, ttl, rdlength = _RR_UNPACK(data, offset)
                offset += 10
                end = offset + rdlength
                if end > size:
                    raise MessageError("record data runs past the end of the packet")
                if rtype == TYPE_OPT:
                    offset = end
                    continue
                rdata = None
                if rdlength == 0:
                    if rtype in _NAME_TYPES:
                        raise MessageError(f"empty {type_name(rtype)} record data")
                    wire = b""
                elif rtype == TYPE_A and rdlength == 4:
                    wire = data[offset:end]
                elif rtype in fast:
                    wire = _flat_rdata(data, rtype, offset, end, memo)
                elif rtype in QTYPE.forward:
                    rdata = _slow_rdata(data, rtype, offset, end)
                    wire = rdata_bytes(rtype, rdata)
                else:
                    wire = data[offset:end]
                offset = end
                record = new(Record)
                record.name = found[0]
                record.rtype = rtype
                # RFC 2181 s8: treat a TTL with the top bit set as zero.
                if ttl & 0x80000000:
                    ttl = 0
                elif ttl > 256:
                    # One int object per TTL value (a cached record keeps it).
                    ttl = ttls.get(ttl) or _intern_ttl(ttl)
                record.ttl = ttl
                record.cache_flush = rclass >= TOP_BIT
                record._rdata = rdata
                record._identity = (found[3], rtype, rclass & CLASS_MASK, wire)
                section.append(record)
    except MessageError:
        raise
    except Exception as e:  # struct.error, IndexError, whatever dnslib raises
        raise MessageError(f"malformed message: {e}") from None
    return Message(ident, flags, questions, sections[0], sections[1], sections[2])


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


class _Packer:
    def __init__(self, ident: int, flags: int, limit: int) -> None:
        self.ident, self.flags, self.limit = ident, flags, limit
        self.reset()

    def reset(self) -> None:
        self.buf = DNSBuffer()
        self.buf.pack("!HHHHHH", 0, 0, 0, 0, 0, 0)
        self.counts = [0, 0, 0, 0]

    @property
    def empty(self) -> bool:
        return not any(self.counts)

    def _try(self, section: int, write) -> bool:
        buf = self.buf
        mark = buf.offset
        names = dict(buf.names)
        write(buf)
        if buf.offset > self.limit:
            buf.data = buf.data[:mark]
            buf.offset = mark
            buf.names = names
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


def pack_one(**kwargs) -> bytes:
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
