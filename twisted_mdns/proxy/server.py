# -*- test-case-name: tests.test_proxy_server -*-
"""
The network edge of the Discovery Proxy: a C{twisted.names} server factory
and its UDP and TCP protocols, hardened for a service that faces the
network (RFC 8766 §9).

What reaches the resolver has passed, in this order:

 1. the access list: a source outside C{allow} gets REFUSED (counted);
 2. the shape: fewer than 12 bytes, or a response (QR set: answering
    responses is how reflection loops start), is dropped and counted; what
    does not parse, has not exactly one question, or has more than one OPT
    record gets FORMERR (RFC 1035 §4.1.1, RFC 6891 §6.1.1), counted;
 3. the client's UDP size: its EDNS payload size (RFC 6891 §6.2.5), 512
    without EDNS (RFC 1035 §4.2.1), at most 4096.

On the way out, a UDP answer larger than that size loses its additional
records, then, if still too large, its answers with TC set (RFC 2181 §9):
the proxy answers small questions with small answers and is no amplifier.
The client asks again over TCP, which carries the whole answer.

C{twisted.names.server.DNSServerFactory} sends a refused query back as it
came (its QR bit clear); L{ProxyServerFactory.screen} answers properly.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from typing import Any, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols import policies
from twisted.python.failure import Failure
from twisted.names import dns, server

from twisted_mdns.constants import (
    DNS_MAX_EDNS_SIZE,
    DNS_UDP_SIZE,
    FLAG_QR,
    OPCODE_MASK,
    RCODE_FORMERR,
    TYPE_OPT,
)
from twisted_mdns.clock import default_reactor
from twisted_mdns.counters import Counters
from twisted_mdns.message import HEADER
from twisted_mdns.proxy.names import LabelName, needs_labels, question_labels

log = Logger()

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 7766 §6.2.3: servers close idle TCP connections; seconds.
TCP_IDLE_TIMEOUT = 30.0
#: TCP connections served at once; more are closed at once, counted.
MAX_TCP_CONNECTIONS = 64

#: The UDP payload size we offer in our own OPT record (RFC 6891 §6.2.5;
#: 1232 avoids IPv6 fragmentation, the DNS Flag Day 2020 value).
EDNS_OFFERED = 1232


def source_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    The client address, an IPv4-mapped IPv6 address as IPv4 (a
    dual-stack socket reports IPv4 clients so).
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ProxyServerFactory(server.DNSServerFactory):
    """
    A C{DNSServerFactory} with the proxy's screening and counters.

    @ivar allow: the networks whose clients may ask.
    @ivar counters: C{proxy.accepted}, C{proxy.refused}, C{proxy.formerr},
        C{proxy.dropped-short}, C{proxy.dropped-response},
        C{proxy.truncated}, C{proxy.additional-dropped}.
    """

    def __init__(
        self, resolver: Any, allow: Sequence[Network], counters: Counter | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        super().__init__(authorities=[resolver])
        self.reactor: IReactorTime = default_reactor(reactor)
        self.allow = tuple(allow)
        self.counters: Counter[str] = counters if counters is not None else Counters()

    def buildProtocol(self, addr: Any) -> "ProxyStreamProtocol | None":
        if len(self.connections) >= MAX_TCP_CONNECTIONS:
            self.counters["proxy.tcp-rejected"] += 1
            return None
        p = ProxyStreamProtocol(self)
        p.factory = self
        p.callLater = self.reactor.callLater  # type: ignore[method-assign,assignment]
        return p

    # -- screening ---------------------------------------------------------------

    def allowed(self, host: str) -> bool:
        """
        May C{host} ask?
        """
        address = source_address(host)
        return address is not None and any(address in net for net in self.allow)

    def screen(self, data: bytes, proto: Any, host: str, address: Any) -> None:
        """
        Check one received message and pass it on, refuse it, answer
        FORMERR or drop it (see the module docstring).
        """
        if len(data) < HEADER.size:
            self.counters["proxy.dropped-short"] += 1
            return
        ident, flags = struct.unpack_from("!HH", data)
        if flags & FLAG_QR:
            self.counters["proxy.dropped-response"] += 1
            return
        if not self.allowed(host):
            self.counters["proxy.refused"] += 1
            log.debug("proxy: refused {host} (not in the allow list)", host=host)
            self._error(proto, address, ident, flags, dns.EREFUSED)
            return
        message = dns.Message()
        try:
            message.fromStr(data)
        except Exception:
            self._formerr(proto, address, ident, flags, "unparsable")
            return
        opts = [r for r in message.additional if r.type == TYPE_OPT]
        if len(message.queries) != 1 or len(opts) > 1:
            self._formerr(proto, address, ident, flags, f"{len(message.queries)} questions, {len(opts)} OPT")
            return
        labels = question_labels(data)
        if labels is not None and needs_labels(labels):
            # twisted.names read a dot inside a label as two labels.
            message.queries[0].name = LabelName(labels)
        message.additional = [r for r in message.additional if r.type != TYPE_OPT]
        message.edns = bool(opts)  # type: ignore[attr-defined]
        message.maxSize = (
            max(DNS_UDP_SIZE, min(DNS_MAX_EDNS_SIZE, opts[0].cls)) if opts else DNS_UDP_SIZE
        )
        self.counters["proxy.accepted"] += 1
        self.messageReceived(message, proto, address)

    def _formerr(self, proto: Any, address: Any, ident: int, flags: int, why: str) -> None:
        self.counters["proxy.formerr"] += 1
        log.debug("proxy: FORMERR ({why})", why=why)
        self._error(proto, address, ident, flags, RCODE_FORMERR)

    def _error(self, proto: Any, address: Any, ident: int, flags: int, rcode: int) -> None:
        """
        An empty response with C{rcode} (no question echoed: it may be the
        very thing that is wrong, and an error must not be larger than
        what caused it).
        """
        response = dns.Message(
            id=ident, answer=1, opCode=(flags & OPCODE_MASK) >> 11, rCode=rcode,
        )
        response.maxSize = DNS_UDP_SIZE
        response.timeReceived = self.reactor.seconds()
        self.sendReply(proto, response, address)

    # -- twisted.names hooks -----------------------------------------------------

    def allowQuery(self, message: Any, protocol: Any, address: Any) -> bool:
        # Screened already (the default refuses empty queries by echoing the
        # query, QR bit clear).
        return True

    def _responseFromMessage(self, message: Any, rCode: int = dns.OK, answers: Any = None,
                             authority: Any = None, additional: Any = None) -> Any:
        response = super()._responseFromMessage(
            message, rCode=rCode, answers=answers, authority=authority, additional=additional
        )
        # The proxy is the authority for its zones: a no-data answer (only
        # an SOA in the authority section) is authoritative too.
        response.auth = rCode in (dns.OK, dns.ENAME)
        response.edns = getattr(message, "edns", False)
        return response

    def gotResolverError(self, failure: Any, protocol: Any, message: Any, address: Any) -> None:
        from twisted_mdns.proxy.resolver import OutOfZone

        if failure.check(OutOfZone):
            # Not a name we serve: refuse rather than claim it does not exist.
            response = self._responseFromMessage(message=message, rCode=dns.EREFUSED)
            self.sendReply(protocol, response, address)
            return
        super().gotResolverError(failure, protocol, message, address)


def fit(message: dns.Message, limit: int, counters: Counter) -> bytes:
    """
    C{message} encoded in at most C{limit} bytes: additional records
    dropped first, then answers and authority with TC set (RFC 2181 §9).
    An OPT record is added when the client sent one (RFC 6891 §7).
    """
    message.maxSize = 0  # dns.Message would cut bytes mid-record
    if getattr(message, "edns", False):
        opt: Any = dns._OPTHeader(udpPayloadSize=EDNS_OFFERED)
        message.additional = list(message.additional) + [opt]
    data = message.toStr()
    if len(data) <= limit:
        return data
    message.additional = [r for r in message.additional if isinstance(r, dns._OPTHeader)]
    data = message.toStr()
    counters["proxy.additional-dropped"] += 1
    if len(data) <= limit:
        return data
    message.answers = []
    message.authority = []
    message.trunc = 1
    counters["proxy.truncated"] += 1
    return message.toStr()


class ProxyDatagramProtocol(dns.DNSDatagramProtocol):
    """
    DNS over UDP for the proxy: every datagram goes through
    L{ProxyServerFactory.screen}; every answer through L{fit}.
    """

    controller: ProxyServerFactory

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            self.controller.screen(data, self, addr[0], addr)
        except Exception:
            self.controller.counters["proxy.errors"] += 1
            log.failure("proxy: error handling a datagram from {addr}", addr=addr)

    def writeMessage(self, message: Any, address: Any) -> None:
        limit = message.maxSize or DNS_UDP_SIZE
        self.transport.write(fit(message, limit, self.controller.counters), address)


class ProxyStreamProtocol(dns.DNSProtocol, policies.TimeoutMixin):
    """
    DNS over TCP for the proxy: the same screening; answers whole (up to
    the 65,535 bytes a TCP message can hold); idle connections closed
    (RFC 7766 §6.2.3), so that idle clients cannot hold the server's
    connections.
    """

    controller: ProxyServerFactory

    def connectionMade(self) -> None:
        super().connectionMade()
        self.setTimeout(TCP_IDLE_TIMEOUT)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        self.controller.counters["proxy.tcp-idle-closed"] += 1
        super().timeoutConnection()

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        peer = self.transport.getPeer() if self.transport is not None else None
        try:
            self.controller.screen(data, self, getattr(peer, "host", ""), None)
        except Exception:
            self.controller.counters["proxy.errors"] += 1
            log.failure("proxy: error handling a TCP message from {peer}", peer=peer)

    def writeMessage(self, message: Any) -> None:
        self.sendString(fit(message, 0xFFFF, self.controller.counters))
