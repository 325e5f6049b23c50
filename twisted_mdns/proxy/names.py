# -*- test-case-name: tests.test_proxy_names -*-
"""
Names with any bytes in their labels, carried through C{twisted.names}.

Why: DNS-SD instance names are free text (RFC 6763 §4.1.1), and a dot is
as legal in one as a space: C{"Printer v2.1"} is one label.
C{twisted.names} keeps a name as its dotted text (C{dns.Name.name}), splits
it at every dot when it encodes, and joins labels with dots when it
decodes, so such a label becomes two on the wire and a question for it
names something else.  Here a name keeps its labels: L{LabelName} is a
C{dns.Name} whose text is the RFC 1035 §5.1 presentation form (a dot or
backslash inside a label escaped with a backslash), which is what the
resolver receives and parses back with L{parse_presentation}, and whose
C{encode} writes the real labels.

The proxy's server swaps a question name that C{twisted.names} misread
(L{question_labels} reads it from the datagram) for a L{LabelName}; the
resolver builds every owner name and target with L{dns_name}.
"""

from __future__ import annotations

import struct
from typing import IO, Any, Optional

from twisted.names import dns

from twisted_mdns.message import HEADER, Name

_BACKSLASH, _DOT = 0x5C, 0x2E


def _escape(label: bytes) -> bytes:
    return label.replace(b"\\", b"\\\\").replace(b".", b"\\.")


def presentation(labels: Name) -> bytes:
    """
    C{labels} as RFC 1035 §5.1 text: dots between labels, a dot or a
    backslash inside one escaped with a backslash.
    """
    return b".".join(_escape(label) for label in labels)


def parse_presentation(text: bytes) -> Name:
    """
    The labels of RFC 1035 §5.1 text: an unescaped dot ends a label,
    C{\\X} is X itself, C{\\DDD} the byte of that decimal value.  A final
    dot (a fully qualified name) adds no label; the empty name and C{"."}
    are the root, no labels.
    """
    if b"\\" not in text:
        stripped = text.rstrip(b".")
        return tuple(stripped.split(b".")) if stripped else ()
    labels: list[bytes] = []
    label = bytearray()
    i, end = 0, len(text)
    while i < end:
        byte = text[i]
        if byte == _BACKSLASH and i + 1 < end:
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit() and int(digits) < 256:
                label.append(int(digits))
                i += 4
            else:
                label.append(text[i + 1])
                i += 2
        elif byte == _DOT:
            labels.append(bytes(label))
            label = bytearray()
            i += 1
        else:
            label.append(byte)
            i += 1
    if label:
        labels.append(bytes(label))
    return tuple(labels)


class LabelName(dns.Name):
    """
    A C{dns.Name} that keeps its labels: C{name} is the presentation text
    (what resolvers and logs see), C{encode} writes C{labels} as they are.

    Compression shares suffixes with plain C{dns.Name}s of the same message:
    both key the message's compression table by a suffix's text, and a
    suffix without special bytes has the same text either way.

    @ivar labels: the labels, as on the wire.
    """

    def __init__(self, labels: Name) -> None:
        super().__init__(presentation(labels))
        self.labels = tuple(labels)

    def encode(self, strio: IO[bytes], compDict: Optional[dict[bytes, int]] = None) -> None:
        labels = self.labels
        for i, label in enumerate(labels):
            if compDict is not None:
                suffix = presentation(labels[i:])
                if suffix in compDict:
                    strio.write(struct.pack("!H", 0xC000 | compDict[suffix]))
                    return
                compDict[suffix] = strio.tell() + dns.Message.headerSize
            strio.write(bytes((len(label),)))
            strio.write(label)
        strio.write(b"\0")

    def decode(self, strio: Any, length: Any = None) -> None:
        # Never on the wire's way in (questions arrive as plain names and
        # are swapped by the server); decoding would lose the labels again.
        raise NotImplementedError("LabelName is for encoding only")


def needs_labels(labels: Name) -> bool:
    """
    Would C{twisted.names} get C{labels} wrong as dotted text?
    """
    return any(b"." in label or b"\\" in label for label in labels)


def dns_name(labels: Name) -> dns.Name:
    """
    C{labels} as a C{twisted.names} name: a plain C{dns.Name} where the
    dotted text says it all, a L{LabelName} where a label holds a dot or a
    backslash.
    """
    if needs_labels(labels):
        return LabelName(labels)
    return dns.Name(b".".join(labels))


def question_labels(data: bytes) -> Name | None:
    """
    The labels of the first question's name in the DNS message C{data}, as
    sent; C{None} when it is not there or uses a compression pointer (the
    first name of a message has nothing earlier to point to).
    """
    offset = HEADER.size
    labels: list[bytes] = []
    total = 0
    while offset < len(data):
        length = data[offset]
        if length == 0:
            return tuple(labels)
        if length & 0xC0:
            return None
        label = data[offset + 1 : offset + 1 + length]
        total += length + 1
        if len(label) != length or total > 255:
            return None
        labels.append(label)
        offset += 1 + length
    return None
