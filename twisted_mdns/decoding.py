# -*- test-case-name: tests.test_message_parse -*-
"""
Parsing received datagrams: L{parse}, re-exported by
L{twisted_mdns.message}.

Most datagrams on a real LAN are not for us, and every one is parsed: this
is the cheapest path in the program that can be.  Names are decoded here
(not by dnslib, whose decoder recurses through pointer loops), once per
name start per message, and interned with their folded key and wire form;
records keep their rdata as canonical bytes, the dnslib objects being
built only when something reads L{Record.rdata}.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from dnslib import QTYPE, RD, DNSError
from dnslib.dns import RDMAP

from twisted_mdns.constants import (
    CLASS_MASK,
    FLAG_QR,
    TOP_BIT,
    TYPE_A,
    TYPE_AAAA,
    TYPE_OPT,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
)
from twisted_mdns.dnsvalues import (
    HEADER,
    Message,
    MessageError,
    Name,
    Question,
    Record,
    _MAX_POINTER_HOPS,
    _NameSafeBuffer,
    _new_record,
    _RR_FIXED,
    rdata_bytes,
    type_name,
)

#: Interned names: uncompressed wire form -> (name, folded key, wire form).
#: Every record of a service repeats its instance, type and host names,
#: packet after packet; one shared tuple per name keeps the cache small and
#: spares the splitting and folding, and the wire form is what a PTR or SRV
#: target is compared by.  Keyed by the wire form, which the parser builds
#: anyway (a received name is its run of labels plus the wire form of the
#: name its pointer leads to), so that nothing else is kept per name: no
#: table of runs, no tuple of a run's labels (issue 13: the name tables
#: were a third of the memory per cached record).  Each name's suffixes
#: are interned too, so C{_tcp} and C{local} are one object each and a
#: name's folding only folds its first label.  Bounded: cleared when full
#: (interning only saves memory and time; two equal names compare equal
#: either way).
_NAMES: dict[bytes, tuple[Name, Name, bytes]] = {}
_MAX_INTERNED = 8192


def _intern_wire(wire: bytes, names: dict[bytes, tuple[Name, Name, bytes]]) -> tuple[Name, Name, bytes]:
    """
    The interned (name, folded key, wire form) of a name's uncompressed
    wire form, whose label lengths the caller checked.

    @raise MessageError: a label is not UTF-8 (RFC 6763 s4.3 names are).
    """
    found = names.get(wire)
    if found is not None:
        return found
    n = wire[0]
    if n == 0:
        found = ((), (), wire)
    else:
        label = wire[1 : 1 + n]
        if not label.isascii():
            try:
                label.decode()
            except UnicodeDecodeError:
                raise MessageError(f"label {label!r} is not UTF-8") from None
        rest = _intern_wire(wire[1 + n :], names)
        name = (label,) + rest[0]
        lowered = label.lower()
        if lowered == label:
            # bytes.lower always makes a new object: share the label.
            key = name if rest[1] is rest[0] else (label,) + rest[1]
        else:
            key = (lowered,) + rest[1]
        found = (name, key, wire)
    if len(names) >= _MAX_INTERNED:
        names.clear()
    names[wire] = found
    return found


def _read_name(
    data: bytes, offset: int, memo: dict, hops: int = 0,
    names: dict[bytes, tuple[Name, Name, bytes]] = _NAMES,
) -> tuple[Name, int, int, Name, bytes]:
    """
    The name at C{offset}: (labels, offset after it, wire length, folded
    key, uncompressed wire form), interned (L{_intern_wire}).

    The same rules as L{_NameSafeBuffer.decode_name}: every compression
    pointer points before the part of the name that holds it, at most
    L{_MAX_POINTER_HOPS} of them, labels of at most 63 bytes (the length
    bytes 0x40-0xBF are refused), names of at most 255, UTF-8 labels.
    Each name start is decoded once per message (C{memo}).  C{names} is
    the table it interns into (see L{parse}'s C{intern}).
    """
    found = memo.get(offset)
    if found is not None:
        return found
    start = offset
    size = len(data)
    if data[offset] >= 0xC0 and offset + 1 < size:
        # A bare pointer to a name this message decoded (an SRV target, a
        # PTR's): that name, ending here.
        target = ((data[offset] & 0x3F) << 8) | data[offset + 1]
        found = memo.get(target) if target < offset else None
        if found is not None:
            found = (found[0], offset + 2, found[2], found[3], found[4])
            memo[offset] = found
            return found
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
    if n == 0:
        end = offset + 1
        wire = data[start:end]
    else:
        if offset + 1 >= size:
            raise MessageError("compression pointer cut short")
        target = ((n & 0x3F) << 8) | data[offset + 1]
        if target >= start or hops >= _MAX_POINTER_HOPS:
            raise MessageError(f"compression pointer at {offset} to {target} does not point backwards")
        found = memo.get(target)
        if found is None:
            found = _read_name(data, target, memo, hops + 1, names)
        wire = data[start:offset] + found[4] if offset > start else found[4]
        end = offset + 2
    length = len(wire)
    if length > 255:
        raise MessageError("name longer than 255 bytes")
    interned = names.get(wire)
    if interned is None:
        interned = _intern_wire(wire, names)
    found = (interned[0], end, length, interned[1], interned[2])
    memo[start] = found
    return found


_HEADER_UNPACK = HEADER.unpack_from
_QUESTION_UNPACK = struct.Struct("!HH").unpack_from
_RR_UNPACK = _RR_FIXED.unpack_from
_SRV_FIXED = struct.Struct("!HHH")


def _flat_rdata(data: bytes, rtype: int, offset: int, end: int, memo: dict, read_name: Any) -> bytes:
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
        found = memo.get(offset) or read_name(data, offset, memo)
        if found[1] != end:
            raise MessageError(f"{type_name(rtype)} record data length mismatch")
        return found[4]
    if rtype == TYPE_SRV:
        if end - offset < 7:
            raise MessageError("SRV record data length mismatch")
        found = memo.get(offset + 6) or read_name(data, offset + 6, memo)
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


def _name_reader(intern: bool) -> Any:
    """
    L{_read_name} over the shared table, or over a table of this message
    only (see L{parse}'s C{intern}).
    """
    if intern:
        return _read_name
    names: dict[bytes, tuple[Name, Name, bytes]] = {}

    def read_name(data: bytes, offset: int, memo: dict) -> tuple[Name, int, int, Name, bytes]:
        return _read_name(data, offset, memo, 0, names)

    return read_name


def parse(data: bytes, intern: bool = True, on_malformed: Callable[[str], None] | None = None) -> Message:
    """
    Parse a datagram.

    Received records keep their rdata as canonical bytes; the dnslib
    objects are made only when read (L{Record.rdata}).  Names are decoded
    once per message and interned.

    A query's known answers (RFC 6762 §7.1) are decoded when first read:
    on a busy LAN most queries are other hosts' browses carrying dozens of
    them, and most of those queries ask nothing this host answers or asks
    itself, so nothing ever reads them (measured: decoding them was a
    third of the CPU a busy LAN cost; issue 13).  Their records are
    checked for shape here (every record inside the datagram, counts
    honest); what only decoding finds (a bad name, bad rdata) makes them
    count as absent when read, reported to C{on_malformed}.  Responses and
    probes are decoded whole, at once.

    @param intern: keep this message's names in the shared tables, for the
        messages to come to share.  Off for our own datagrams looped back
        to us (the protocol knows them by their source): their names are
        ours already, and 10,000 services' announcements would otherwise
        fill the tables with copies of them and push out the names of the
        hosts whose traffic the tables are for.
    @param on_malformed: told why, when a query's known answers turn out
        malformed as they are read.

    @raise MessageError: for anything malformed (short, truncated names,
        compression loops, counts larger than the packet, bad rdata) in the
        header, the questions and, but for a query's known answers, the
        records.
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
    read_name = _name_reader(intern)
    try:
        for _ in range(qd):
            name, offset, _, key, _ = read_name(data, offset, memo)
            qtype, qclass = _QUESTION_UNPACK(data, offset)
            offset += 4
            questions.append(Question(name, qtype, qclass >= TOP_BIT, qclass & CLASS_MASK, key))
        if not flags & FLAG_QR and not ns and (an or ar):
            _skim(data, offset, an + ar, size)
            return _LazyQuery(ident, flags, questions, (data, offset, an, ar, memo, read_name, on_malformed))
        answers, authorities, additionals = _records(data, offset, (an, ns, ar), memo, read_name)
    except MessageError:
        raise
    except Exception as e:  # struct.error, IndexError, whatever dnslib raises
        raise MessageError(f"malformed message: {e}") from None
    return Message(ident, flags, questions, answers, authorities, additionals)


def _skim(data: bytes, offset: int, count: int, size: int) -> None:
    """
    Check that C{count} records from C{offset} lie inside the datagram,
    without decoding them: each name's labels or pointer, the fixed
    fields, the rdata length.

    @raise MessageError: a record runs past the end, or a name has a
        label length byte of 0x40-0xBF.
    """
    for _ in range(count):
        while True:
            n = data[offset]  # IndexError past the end: MessageError
            if n == 0:
                offset += 1
                break
            if n >= 0xC0:
                offset += 2
                break
            if n > 63:
                raise MessageError(f"label length byte {n:#04x} at {offset}")
            offset += n + 1
        if offset + 10 > size:
            raise MessageError("record runs past the end of the packet")
        offset += 10 + ((data[offset + 8] << 8) | data[offset + 9])
        if offset > size:
            raise MessageError("record data runs past the end of the packet")


def _records(
    data: bytes, offset: int, counts: tuple[int, int, int], memo: dict, read_name: Any
) -> tuple[list[Record], list[Record], list[Record]]:
    """
    Decode the records of the answer, authority and additional sections
    (C{counts} of each) from C{offset}.

    @raise MessageError: anything malformed (other exceptions too, for
        the caller to turn into one).
    """
    size = len(data)
    ttls = _TTLS
    sections: list[list[Record]] = [[], [], []]
    new = _new_record
    fast = _FAST_TYPES
    for index in (0, 1, 2):
        section = sections[index]
        for _ in range(counts[index]):
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
                wire = _flat_rdata(data, rtype, offset, end, memo, read_name)
            elif rtype in QTYPE.forward:
                rdata = _slow_rdata(data, rtype, offset, end)
                wire = rdata_bytes(rtype, rdata)
            else:
                wire = data[offset:end]
            offset = end
            record = new(Record)
            record.name = found[0]
            record.key = found[3]
            record.rtype = rtype
            record.rclass = rclass & CLASS_MASK
            record.data = wire
            # RFC 2181 s8: treat a TTL with the top bit set as zero.
            if ttl & 0x80000000:
                ttl = 0
            elif ttl > 256:
                # One int object per TTL value (a cached record keeps it).
                ttl = ttls.get(ttl) or _intern_ttl(ttl)
            record.ttl = ttl
            record.cache_flush = rclass >= TOP_BIT
            record._rdata = rdata
            section.append(record)
    return sections[0], sections[1], sections[2]


class _LazyQuery(Message):
    """
    A query whose answer and additional sections (its known answers) are
    decoded on first read (see L{parse}); equal to the L{Message} of the
    same content.
    """

    def __init__(self, ident: int, flags: int, questions: list[Question], pending: tuple) -> None:
        self.id = ident
        self.flags = flags
        self.questions = questions
        self.authorities = []
        self._pending = pending

    def __getattr__(self, name: str) -> Any:
        # Only for what the instance does not hold yet: the two sections.
        if name not in ("answers", "additionals") or "_pending" not in self.__dict__:
            raise AttributeError(name)
        data, offset, an, ar, memo, read_name, on_malformed = self.__dict__.pop("_pending")
        try:
            answers, _, additionals = _records(data, offset, (an, 0, ar), memo, read_name)
        except Exception as e:  # MessageError, IndexError, whatever dnslib raises
            answers, additionals = [], []
            if on_malformed is not None:
                on_malformed(str(e) if isinstance(e, MessageError) else f"malformed message: {e}")
        self.answers = answers
        self.additionals = additionals
        return answers if name == "answers" else additionals

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.id, self.flags, self.questions, self.answers, self.authorities, self.additionals) == (
            other.id, other.flags, other.questions, other.answers, other.authorities, other.additionals)

    __hash__ = None  # type: ignore[assignment]
