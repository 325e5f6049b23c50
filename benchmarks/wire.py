"""
A small, independent DNS wire reader and query builder for the benchmark
clients.

Deliberately not built on L{twisted_mdns.message}: the judge of a responder
should not share its parser.  It reads what a response says (header,
questions, every record with its name decompressed) and nothing more.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
QTAIL = struct.Struct("!HH")

TYPE_A = 1
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_SRV = 33
TYPE_NSEC = 47
CLASS_IN = 1
FLAG_QR = 0x8000


class WireError(ValueError):
    pass


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("utf-8")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name: str, qtype: int, ident: int = 0, unicast: bool = False) -> bytes:
    """
    One question, no records; C{unicast} sets the QU bit.
    """
    qclass = CLASS_IN | (0x8000 if unicast else 0)
    return HEADER.pack(ident, 0, 1, 0, 0, 0) + encode_name(name) + QTAIL.pack(qtype, qclass)


def read_name(data: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    """
    The labels at C{offset} (compression followed) and the offset just past
    the name in place.
    """
    labels: list[bytes] = []
    end = None
    jumps = 0
    length = len(data)
    while True:
        if offset >= length:
            raise WireError("name runs past the end")
        n = data[offset]
        if n & 0xC0 == 0xC0:
            if offset + 1 >= length:
                raise WireError("truncated pointer")
            if end is None:
                end = offset + 2
            offset = ((n & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            if jumps > 64:
                raise WireError("compression loop")
            continue
        if n & 0xC0:
            raise WireError("bad label type")
        if n == 0:
            offset += 1
            break
        labels.append(data[offset + 1 : offset + 1 + n])
        offset += 1 + n
    return tuple(labels), (end if end is not None else offset)


def name_text(labels: tuple[bytes, ...]) -> str:
    return ".".join(l.decode("utf-8", "replace") for l in labels) + "."


@dataclass
class RR:
    name: tuple[bytes, ...]
    rtype: int
    rclass: int  # with the cache-flush bit masked off
    cache_flush: bool
    ttl: int
    rdata: bytes
    rdata_offset: int

    @property
    def key(self) -> str:
        return name_text(self.name).lower()


@dataclass
class Response:
    id: int
    flags: int
    questions: list[tuple[tuple[bytes, ...], int, int]]
    answers: list[RR]
    authorities: list[RR]
    additionals: list[RR]
    question_bytes: bytes


def parse(data: bytes) -> Response:
    if len(data) < 12:
        raise WireError("short")
    ident, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    offset = 12
    questions = []
    for _ in range(qd):
        name, offset = read_name(data, offset)
        qtype, qclass = QTAIL.unpack_from(data, offset)
        offset += 4
        questions.append((name, qtype, qclass))
    qbytes = data[12:offset]
    sections: list[list[RR]] = [[], [], []]
    for count, section in zip((an, ns, ar), sections):
        for _ in range(count):
            name, offset = read_name(data, offset)
            if offset + 10 > len(data):
                raise WireError("truncated record")
            rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(data, offset)
            offset += 10
            if offset + rdlength > len(data):
                raise WireError("rdata runs past the end")
            section.append(RR(name, rtype, rclass & 0x7FFF, bool(rclass & 0x8000), ttl,
                              data[offset : offset + rdlength], offset))
            offset += rdlength
    return Response(ident, flags, questions, sections[0], sections[1], sections[2], qbytes)


def a_address(rr: RR) -> str:
    return socket.inet_ntoa(rr.rdata) if len(rr.rdata) == 4 else "?"


def ptr_target(data: bytes, rr: RR) -> tuple[bytes, ...]:
    return read_name(data, rr.rdata_offset)[0]
