# -*- test-case-name: tests.test_protocol -*-
"""
The mDNS datagram protocol: parse, check the source, dispatch.

Kept small on purpose (parsing lives in L{twisted_mdns.message}, answering in
L{twisted_mdns.responder}, caching in L{twisted_mdns.querier}).  What it
decides is what no later stage should have to: whether a datagram is mDNS
we may act on at all.

RFC 6762 s11: responses whose source is not on the receiving link are
ignored, and so are queries (the issue tracker asks us not to answer
off-link queries at all, multicast included: that is what keeps mDNS from
being a reflection amplifier).  s6: responses must come from port 5353.
Everything dropped is counted by reason; nothing raises.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any, Callable, Iterable, Protocol as TypingProtocol

from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.constants import FLAG_QR, MDNS_PORT, OPCODE_MASK
from twisted_mdns.message import Message, MessageError, parse
from twisted_mdns.pktinfo import InterfaceContext

log = Logger()

_LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")


class MessageHandler(TypingProtocol):
    """
    What the protocol dispatches to (the responder, the querier).
    """

    def query_received(self, message: Message, source: tuple[str, int], context: InterfaceContext) -> None: ...

    def response_received(self, message: Message, source: tuple[str, int], context: InterfaceContext) -> None: ...


def source_on_link(address: str, context: InterfaceContext) -> bool:
    """
    RFC 6762 §11: is the sender on the receiving link?  IPv4 link-local
    senders (169.254/16) always are: such a host has no routable address
    to be off-link from; IPv6 ones (fe80::/10, with their zone) likewise
    (L{InterfaceContext.on_link} of an IPv6 context); any other IPv6
    source only within one of the link's prefixes.
    """
    if context.on_link(address):
        return True
    if address.startswith("169.254."):  # the usual textual form: no parsing
        return True
    try:
        return ipaddress.ip_address(address) in _LINK_LOCAL
    except ValueError:
        return False


@implementer(IPktInfoDatagramProtocol)
class MDNSProtocol:
    """
    Receives every datagram from the L{InterfaceTransport}.

    @ivar handlers: objects with C{query_received} / C{response_received},
        called in order.
    @ivar fast_path: optional callable C{(data, source, context) -> bool}
        tried before parsing; returns whether it fully handled the datagram
        (the responder's precomputed legacy answers).
    @ivar counters: by reason.
    """

    def __init__(self, handlers: Iterable[MessageHandler] = (), counters: Counter | None = None) -> None:
        self.handlers = list(handlers)
        self.fast_path: Callable[[bytes, Any, InterfaceContext], bool] | None = None
        self.counters: Counter[str] = counters if counters is not None else Counters()

    def datagramReceivedOn(self, datagram: bytes, address: Any, context: InterfaceContext) -> None:
        counters = self.counters
        counters["received"] += 1
        fast = self.fast_path
        if fast is not None and fast(datagram, address, context):
            return
        # Our own datagrams, looped back, are parsed without interning
        # their names (see decoding.parse).
        iface = context.interface
        try:
            message = parse(datagram, iface is None or not iface.sent_from_here(address[0]),
                            self._malformed_known_answers)
        except MessageError as e:
            counters["dropped.malformed"] += 1
            log.debug(
                "malformed datagram from {source} on {iface}: {error}",
                source=address, iface=context.name, error=str(e),
            )
            return
        self.dispatch(message, address, context)

    def _malformed_known_answers(self, why: str) -> None:
        """
        A query's known answers, decoded when first read (see
        L{twisted_mdns.decoding.parse}), were malformed: they count as
        absent, and are counted here.
        """
        self.counters["known-answers.malformed"] += 1
        log.debug("malformed known answers in a query: {error}", error=why)

    def dispatch(self, message: Message, address: Any, context: InterfaceContext) -> None:
        counters = self.counters
        flags = message.flags  # the header's bits read here, not through properties: per datagram
        if flags & OPCODE_MASK:
            counters["dropped.opcode"] += 1
            return
        if not source_on_link(address[0], context):
            counters["dropped.off-link"] += 1
            return
        if flags & FLAG_QR:
            if address[1] != MDNS_PORT:
                counters["dropped.response-not-from-5353"] += 1
                return
            counters["responses"] += 1
            method = "response_received"
        else:
            counters["queries"] += 1
            method = "query_received"
        for handler in self.handlers:
            # One handler's failure is logged and counted; the others still
            # get the message (inline: this runs per datagram).
            try:
                getattr(handler, method)(message, address, context)
            except Exception:
                self._failed(address, context)

    def _failed(self, address: Any, context: InterfaceContext) -> None:
        self.counters["errors.handler"] += 1
        log.failure(
            "handling a message from {source} on {iface} failed",
            source=address, iface=context.name,
        )
