# -*- test-case-name: tests.test_responder -*-
"""
Packing and sending responses on one link: what probing, announcing,
answering and goodbyes share.

RFC 6762 §17: every packet fits the link's MTU (and 9000 bytes) less the
headers of the family that carries it (28 bytes for IPv4, 48 for IPv6:
L{limit_for}); L{twisted_mdns.message.pack} splits across datagrams.

A link runs one or both families; the transport multicasts on every family
port the link has unless told one.  Announcements, probes and goodbyes go
out on every family (a querier on the link may listen on either); an
answer to a query goes back over the family the query came over, and its
send time is remembered per family (L{twisted_mdns.link.MulticastTimes}),
for the §6 rate limit and §5.4 QU routing.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Iterable, Sequence

from twisted.internet.interfaces import IReactorTime

from twisted_mdns.constants import FLAG_AA, FLAG_QR
from twisted_mdns.link import Link
from twisted_mdns.message import Record, pack, packet_limit
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo6 import max_payload6

def limit_for(iface: NetworkInterface | None, family: int | None = None) -> int:
    """
    The largest message for C{iface} over C{family} (RFC 6762 §17): the
    MTU less 28 bytes over IPv4, less 48 over IPv6.  With C{family}
    C{None} (a packet sent over every family the link runs, or one kept
    to be replayed over either) the smaller of the families the link has
    addresses of.
    """
    mtu = iface.mtu if iface is not None else None
    limit = packet_limit(mtu)
    if family == socket.AF_INET:
        return limit
    if family == socket.AF_INET6 or (iface is not None and iface.publishable_ipv6):
        return min(limit, max(512, max_payload6(mtu or 1500)))
    return limit


class Sender:
    """
    Sends our responses through the transport, per link.
    """

    def __init__(self, transport: object, clock: IReactorTime, counters: Counter[str]) -> None:
        self.transport = transport
        self.clock = clock
        self.counters = counters

    def pack_response(
        self, answers: Sequence[Record], additionals: Sequence[Record], link: Link | None, family: int | None = None
    ) -> list[bytes]:
        return pack(
            flags=FLAG_QR | FLAG_AA,
            answers=list(answers),
            additionals=list(additionals),
            limit=limit_for(link.interface if link is not None else None, family),
        )

    def send(
        self,
        index: int,
        packets: Iterable[bytes],
        destination: tuple | None = None,
        source: str = "0.0.0.0",
        family: int | None = None,
    ) -> None:
        """
        Hand C{packets} to the transport: multicast on every family of the
        link (or C{family} only), or unicast to C{destination}.
        """
        send = self.transport.send  # type: ignore[attr-defined]
        for packet in packets:
            if not send(packet, index, destination, source, family=family):
                self.counters["errors.send"] += 1

    def multicast(
        self,
        link: Link,
        answers: Sequence[Record],
        additionals: Sequence[Record],
        family: int | None = None,
        remember: Iterable[Record] | None = None,
    ) -> None:
        """
        Multicast a response on C{link}, over C{family} only or (C{None})
        every family the link runs, remembering when each answer went
        (L{twisted_mdns.link.Link.multicast_times}), or only those of
        C{remember} (an announcement remembers its claims' own records as
        one time per claim, L{twisted_mdns.link.Link.announced}).
        """
        link.multicast_times.sent(
            (r.identity for r in (answers if remember is None else remember)), self.clock.seconds(), family
        )
        self.send(link.index, self.pack_response(answers, additionals, link, family), family=family)

    def goodbyes(self, link: Link | None, records: Iterable[Record]) -> None:
        """
        RFC 6762 §10.1: the records again with TTL 0.
        """
        unique = list(dict.fromkeys(records))
        if not unique or link is None:
            return
        self.send(link.index, self.pack_response([r.with_ttl(0) for r in unique], [], link))
        self.counters["goodbyes.sent"] += len(unique)
