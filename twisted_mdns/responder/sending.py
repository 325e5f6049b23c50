# -*- test-case-name: tests.test_responder -*-
"""
Packing and sending responses on one link: what probing, announcing,
answering and goodbyes share.

RFC 6762 §17: every packet fits the link's MTU (and 9000 bytes);
L{twisted_mdns.message.pack} splits across datagrams.  A multicast records
when each record went out on the link, for the §6 rate limit and §5.4 QU
routing.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Iterable, Sequence

from twisted.internet.interfaces import IReactorTime

from twisted_mdns.constants import FLAG_AA, FLAG_QR
from twisted_mdns.link import Link
from twisted_mdns.message import Record, pack, packet_limit


class Sender:
    """
    Sends our responses through the transport, per link.
    """

    def __init__(self, transport: object, clock: IReactorTime, counters: Counter[str]) -> None:
        self.transport = transport
        self.clock = clock
        self.counters = counters

    def pack_response(self, answers: Sequence[Record], additionals: Sequence[Record], link: Link | None) -> list[bytes]:
        return pack(
            flags=FLAG_QR | FLAG_AA,
            answers=list(answers),
            additionals=list(additionals),
            limit=packet_limit(link.interface.mtu if link is not None else None),
        )

    def send(self, index: int, packets: Iterable[bytes], destination: tuple[str, int] | None = None, source: str = "0.0.0.0") -> None:
        send = self.transport.send  # type: ignore[attr-defined]
        for packet in packets:
            if not send(packet, index, destination, source):
                self.counters["errors.send"] += 1

    def multicast(self, link: Link, answers: Sequence[Record], additionals: Sequence[Record], family: int = socket.AF_INET) -> None:
        """
        Multicast a response on C{link}, remembering when each answer went.
        """
        now = self.clock.seconds()
        last = link.family(family).last_multicast
        for record in answers:
            last[record.identity] = now
        self.send(link.index, self.pack_response(answers, additionals, link))

    def goodbyes(self, link: Link | None, records: Iterable[Record]) -> None:
        """
        RFC 6762 §10.1: the records again with TTL 0.
        """
        unique = list(dict.fromkeys(records))
        if not unique or link is None:
            return
        self.send(link.index, self.pack_response([r.with_ttl(0) for r in unique], [], link))
        self.counters["goodbyes.sent"] += len(unique)
