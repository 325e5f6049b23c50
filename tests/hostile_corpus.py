"""
A seed corpus of hostile datagrams, made by hand, for L{tests.test_hostile}.

Three kinds, each a list of C{(description, datagram)}:

 - L{malformed}: datagrams that are not DNS messages: every one must be
   refused by L{twisted_mdns.message.parse} (and so counted as
   C{dropped.malformed} by the protocol).  Truncations of valid messages,
   compression-pointer loops, forward and out-of-range pointers, counts
   larger than the packet, labels longer than 63 bytes, names longer than
   255 bytes, record data running past the end or disagreeing with its
   length, oversized junk.
 - L{well_formed}: edge cases that ARE valid and must parse (a 63-byte
   label, a name of exactly 255 bytes, a 9000-byte response, a bare
   header), so that the malformed ones above are refused for the reason
   they were made for and not because the parser refuses everything.
 - L{anything}: seeded random bytes and mutations (every single bit flip,
   byte stamps) of valid messages: any outcome is allowed, as long as it is
   one counted outcome and nothing raises.

Everything is deterministic (fixed seeds), so a failure reproduces.

Names in the valid seeds are a peer's (C{peer.local}, C{Peer Web}), never
the responder's under test, so that no mutation can turn into a
legitimate conflict and rename it: the tests check that hostile input
does not change the responder's state.
"""

from __future__ import annotations

import ipaddress
import random
import struct

from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_PTR,
    TYPE_SRV,
    Question,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    nsec_record,
    pack_one,
    ptr_record,
    srv_record,
    txt_record,
)

HEADER = struct.Struct("!HHHHHH")

#: The responder under test is C{lab} on 10.0.0.5/24 (eth0, index 2) and
#: 192.168.1.100/24 (wlan0, index 3) with service C{My Web._http._tcp}.
LAB = name_from_text("lab.local")
PEER = name_from_text("peer.local")
HTTP = name_from_text("_http._tcp.local")
PEER_WEB = join_name("Peer Web", HTTP)
MY_WEB = join_name("My Web", HTTP)


def header(qd=0, an=0, ns=0, ar=0, flags=0, ident=0) -> bytes:
    return HEADER.pack(ident, flags, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    """
    Uncompressed wire form of C{labels}, without any length checks (so
    that it can spell out illegal names).
    """
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def question(name: bytes, qtype: int = TYPE_A, qclass: int = 1) -> bytes:
    return name + struct.pack("!HH", qtype, qclass)


def rr(name: bytes, rtype: int, rdata: bytes, ttl: int = 120, rclass: int = 1,
       rdlength: int | None = None) -> bytes:
    """
    A resource record; C{rdlength} may lie about C{rdata}.
    """
    length = len(rdata) if rdlength is None else rdlength
    return name + struct.pack("!HHIH", rtype, rclass, ttl, length) + rdata


OPT = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)

# -- valid seeds ---------------------------------------------------------------


def peer_response() -> bytes:
    """
    A peer's announcement: address, service PTR/SRV/TXT and an NSEC.
    """
    return pack_one(
        flags=FLAG_QR | FLAG_AA,
        answers=[
            a_record(PEER, "10.0.0.9", 120),
            ptr_record(HTTP, PEER_WEB, 4500),
            srv_record(PEER_WEB, PEER, 80, 120),
            txt_record(PEER_WEB, [b"path=/", b"x"], 4500),
        ],
        additionals=[nsec_record(PEER, [TYPE_A], 120)],
    )


def peer_response6() -> bytes:
    """
    A dual-stack peer's announcement: A and AAAA (ULA and link-local),
    their ip6.arpa reverse mapping, and an NSEC listing both types.
    """
    return pack_one(
        flags=FLAG_QR | FLAG_AA,
        answers=[
            a_record(PEER, "10.0.0.9", 120),
            aaaa_record(PEER, "fd00:1::9", 120),
            aaaa_record(PEER, "fe80::9", 120),
            ptr_record(name_from_text(ipaddress.ip_address("fd00:1::9").reverse_pointer), PEER, 120, cache_flush=True),
        ],
        additionals=[nsec_record(PEER, [TYPE_A, TYPE_AAAA], 120)],
    )


def aaaa_query() -> bytes:
    """
    A query for our AAAA and A records, with a known AAAA answer (a
    peer's, as everywhere in the seeds).
    """
    return pack_one(
        questions=[Question(LAB, TYPE_AAAA), Question(LAB, TYPE_A, unicast=True)],
        answers=[aaaa_record(PEER, "fe80::9", 120)],
    )


def qm_query() -> bytes:
    """
    A multicast query for our names, with a known answer.
    """
    return pack_one(
        questions=[Question(LAB, TYPE_A), Question(MY_WEB, TYPE_SRV, unicast=True)],
        answers=[ptr_record(HTTP, PEER_WEB, 4500)],
    )


def legacy_query(ident: int = 0x1234, opt: bool = True) -> bytes:
    """
    What dig sends: one question, an id, and (by default) an EDNS OPT record.
    """
    body = wire_name(b"lab", b"local") + struct.pack("!HH", TYPE_A, 1)
    return header(qd=1, ar=1 if opt else 0, ident=ident) + body + (OPT if opt else b"")


def probe() -> bytes:
    """
    A peer probing for its name (QU, proposed record in authority).
    """
    return pack_one(
        questions=[Question(PEER, TYPE_ANY, unicast=True)],
        authorities=[a_record(PEER, "10.0.0.9", 120)],
    )


def truncated_query() -> bytes:
    """
    A browse query with the TC bit: more known answers follow (s7.2).
    """
    return pack_one(
        flags=FLAG_TC,
        questions=[Question(HTTP, TYPE_PTR)],
        answers=[ptr_record(HTTP, join_name(f"Known {n}", HTTP), 4500) for n in range(3)],
    )


def valid() -> list[tuple[str, bytes]]:
    return [
        ("peer response", peer_response()),
        ("QM query", qm_query()),
        ("legacy query with OPT", legacy_query()),
        ("probe", probe()),
        ("TC query", truncated_query()),
        ("dual-stack peer response", peer_response6()),
        ("AAAA query", aaaa_query()),
    ]


# -- malformed -------------------------------------------------------------------


def _pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def malformed() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    # Truncation: every strict prefix of every valid message (the empty
    # datagram included).
    for what, packet in valid():
        for n in range(len(packet)):
            out.append((f"{what} cut to {n} bytes", packet[:n]))

    # Compression pointers.  Names start at offset 12.
    q_tail = struct.pack("!HH", TYPE_A, 1)
    out.append(("self-pointer", header(qd=1) + _pointer(12) + q_tail))
    # Two pointers that lead to each other: at 12 a pointer to 13, whose
    # low byte (13) reads as a 13-byte label, then at 27 a pointer back to
    # 12.  Each pointer goes backwards, so a parser that only refuses
    # forward and self pointers recurses until the stack runs out.
    out.append((
        "two-pointer cycle",
        header(qd=1) + _pointer(13) + b"abcdefghijklm" + _pointer(12) + q_tail,
    ))
    # A longer cycle through labels: "a" then a pointer back to the "a".
    out.append(("label-pointer loop", header(qd=1) + b"\x01a" + _pointer(12) + q_tail))
    forward = header(qd=1) + _pointer(18) + q_tail + wire_name(b"a")
    out.append(("forward pointer", forward))
    out.append(("pointer out of range", header(qd=1) + _pointer(0x3FFF) + q_tail))
    out.append(("pointer past the end by one", header(qd=1) + _pointer(18) + q_tail))
    out.append(("pointer cut in half", header(qd=1) + b"\xc0"))
    own = wire_name(b"peer", b"local")
    rdata_loop = header(an=1, flags=FLAG_QR | FLAG_AA) + rr(own, TYPE_PTR, b"", rdlength=2)
    # The PTR rdata is a pointer to itself (its offset is the packet length).
    rdata_loop += _pointer(len(rdata_loop))
    out.append(("PTR rdata points to itself", rdata_loop))

    # Counts larger than the packet.
    one_q = question(wire_name(b"lab", b"local"))
    out.append(("qdcount 65535", header(qd=65535) + one_q))
    out.append(("qdcount 2, one question", header(qd=2) + one_q))
    a_rr = rr(own, TYPE_A, bytes([10, 0, 0, 9]))
    out.append(("ancount 65535", header(an=65535, flags=FLAG_QR) + a_rr))
    out.append(("nscount 65535", header(qd=1, ns=65535) + one_q + a_rr))
    out.append(("arcount 65535", header(ar=65535, flags=FLAG_QR) + a_rr))
    out.append(("every count 65535", header(65535, 65535, 65535, 65535) + one_q + a_rr))
    out.append(("counts 65535, 9000 bytes of zeros",
                header(65535, 65535, 65535, 65535) + bytes(8988)))

    # Labels longer than 63: the 0x40 and 0x80 length prefixes are the
    # reserved/extended label types, not lengths.
    for n in (64, 100, 127, 128, 191):
        out.append((f"{n}-byte label in a question",
                    header(qd=1) + question(wire_name(b"x" * n, b"local"))))
    long_label = wire_name(b"y" * 100, b"local")
    out.append(("100-byte label in an owner name",
                header(an=1, flags=FLAG_QR) + rr(long_label, TYPE_A, bytes(4))))
    out.append(("100-byte label in PTR rdata",
                header(an=1, flags=FLAG_QR) + rr(wire_name(b"_http", b"_tcp", b"local"), TYPE_PTR, long_label)))
    srv_rdata = struct.pack("!HHH", 0, 0, 80) + long_label
    out.append(("100-byte label in SRV target",
                header(an=1, flags=FLAG_QR) + rr(own, TYPE_SRV, srv_rdata)))
    # A legacy question for our own name beside one with a long label:
    # the echoed question section could not be packed again.
    out.append(("long label beside our name, legacy",
                header(qd=2, ident=7) + one_q + question(wire_name(b"z" * 100, b"local"))))

    # Names longer than 255 bytes: spelled out, and assembled by pointers.
    sixty_three = b"a" * 63
    out.append(("321-byte name",
                header(qd=1) + question(wire_name(*(sixty_three,) * 5))))
    out.append(("256-byte name",
                header(qd=1) + question(wire_name(sixty_three, sixty_three, sixty_three, b"b" * 62))))
    # Question 1: three 63-byte labels (193 bytes); question 2: two more
    # 63-byte labels, then a pointer to question 1: 321 bytes in all.
    q1 = question(wire_name(*(sixty_three,) * 3))
    q2 = b"".join(bytes([63]) + sixty_three for _ in range(2)) + _pointer(12) + q_tail
    out.append(("name over 255 bytes through a pointer", header(qd=2) + q1 + q2))

    # Record data.
    a_head = own + struct.pack("!HHIH", TYPE_A, 1, 120, 4)
    out.append(("rdlength past the end", header(an=1, flags=FLAG_QR) + a_head + b"\x0a\x00"))
    out.append(("rdlength 65535", header(an=1, flags=FLAG_QR) + rr(own, TYPE_A, bytes(4), rdlength=65535)))
    out.append(("A rdlength 5", header(an=1, flags=FLAG_QR) + rr(own, TYPE_A, bytes(5))))
    out.append(("A rdlength 3", header(an=1, flags=FLAG_QR) + rr(own, TYPE_A, bytes(3))))
    out.append(("AAAA rdlength 15", header(an=1, flags=FLAG_QR) + rr(own, TYPE_AAAA, bytes(15))))
    out.append(("AAAA rdlength 17", header(an=1, flags=FLAG_QR) + rr(own, TYPE_AAAA, bytes(17))))
    out.append(("AAAA rdlength 4", header(an=1, flags=FLAG_QR) + rr(own, TYPE_AAAA, bytes(4))))
    out.append(("AAAA rdata past the end",
                header(an=1, flags=FLAG_QR) + own + struct.pack("!HHIH", TYPE_AAAA, 1, 120, 16) + bytes(8)))
    out.append(("SRV without target", header(an=1, flags=FLAG_QR) + rr(own, TYPE_SRV, bytes(6))))
    srv_ok = struct.pack("!HHH", 0, 0, 80) + own
    out.append(("SRV target past rdlength",
                header(an=1, flags=FLAG_QR) + rr(own, TYPE_SRV, srv_ok[:8], rdlength=8) + srv_ok[8:]))
    out.append(("TXT string past rdlength", header(an=1, flags=FLAG_QR) + rr(own, 16, b"\x20abc")))
    out.append(("record header cut short", header(an=1, flags=FLAG_QR) + own + b"\x00\x01\x00"))
    out.append(("invalid UTF-8 label", header(qd=1) + question(wire_name(b"\xff\xfe", b"local"))))

    # Sizes.
    out.append(("one byte", b"\x00"))
    out.append(("eleven bytes", bytes(11)))
    out.append(("9000 bytes of 63-byte labels", header(qd=1) + b"\x3f" * 8988))
    out.append(("9000 bytes, one question, then pointers to itself",
                header(qd=1) + _pointer(12) * 4494))
    out.append(("65507 bytes, qdcount 65535", header(qd=65535) + bytes(65495)))
    return out


# -- well formed edge cases ------------------------------------------------------


def well_formed() -> list[tuple[str, bytes]]:
    out = [(what, packet) for what, packet in valid()]
    out.append(("bare header", header()))
    out.append(("63-byte label", header(qd=1) + question(wire_name(b"a" * 63, b"local"))))
    out.append(("255-byte name",
                header(qd=1) + question(wire_name(b"a" * 63, b"a" * 63, b"a" * 63, b"b" * 61))))
    out.append(("trailing bytes after the counted sections", legacy_query(opt=False) + b"\0" * 7))
    # Compression pointing at a pointer (legal: the chain still goes back).
    own = wire_name(b"peer", b"local")
    first = rr(own, TYPE_A, bytes([10, 0, 0, 9]))
    second = rr(_pointer(12), TYPE_A, bytes([10, 0, 0, 8]))
    third = rr(_pointer(12 + len(first)), TYPE_A, bytes([10, 0, 0, 7]))
    out.append(("pointer to a pointer", header(an=3, flags=FLAG_QR | FLAG_AA) + first + second + third))
    many = pack_one(
        flags=FLAG_QR | FLAG_AA,
        answers=[txt_record(join_name(f"Peer {n:03d}", HTTP), [b"k=" + b"v" * 200], 4500)
                 for n in range(40)],
    )
    assert 8000 < len(many) <= 9000, len(many)
    out.append(("9000-byte response", many))
    return out


# -- anything goes -----------------------------------------------------------------


def random_datagrams(seed: int = 6762, count: int = 300) -> list[tuple[str, bytes]]:
    """
    Random bytes; half with a plausible header (small counts), so that the
    parser gets past the count check and into the names.
    """
    rng = random.Random(seed)
    out = []
    for n in range(count):
        size = rng.choice((rng.randrange(0, 64), rng.randrange(0, 600), rng.randrange(0, 1500), 9000))
        body = rng.randbytes(size)
        if n % 2 and size >= 12:
            flags = rng.choice((0, FLAG_QR | FLAG_AA, FLAG_TC))
            body = header(rng.randrange(3), rng.randrange(3), rng.randrange(2), rng.randrange(2), flags) + body[12:]
        out.append((f"random #{n} ({size} bytes)", body))
    return out


def bit_flips(what: str, packet: bytes) -> list[tuple[str, bytes]]:
    """
    Every single-bit flip of C{packet}.
    """
    out = []
    for i in range(len(packet) * 8):
        mutated = bytearray(packet)
        mutated[i // 8] ^= 0x80 >> (i % 8)
        out.append((f"{what}, bit {i} flipped", bytes(mutated)))
    return out


def byte_stamps(what: str, packet: bytes) -> list[tuple[str, bytes]]:
    """
    Every byte of C{packet} replaced by 0x00, 0x3F, 0xC0 and 0xFF in turn:
    the values that turn lengths into terminators, maximal labels and
    pointers.
    """
    out = []
    for i in range(len(packet)):
        for value in (0x00, 0x3F, 0xC0, 0xFF):
            if packet[i] != value:
                out.append((f"{what}, byte {i} = {value:#04x}", packet[:i] + bytes([value]) + packet[i + 1:]))
    return out


def anything() -> list[tuple[str, bytes]]:
    out = random_datagrams()
    for what, packet in valid():
        out += bit_flips(what, packet)
        out += byte_stamps(what, packet)
    return out
