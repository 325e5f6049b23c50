"""
The set of per-interface multicast ports, as one transport.

One L{PktInfoMulticastPort} per selected interface, each joined to the group
and sending on its own interface only.  Datagrams are attributed to the
interface C{IP_PKTINFO} names, never to the socket that read them: a unicast
datagram from link B may be read by link A's socket (C{SO_REUSEPORT} picks
one at random), and is still B's.  A datagram from an interface we do not
run on (a VPN, say) is dropped and counted.
"""

from __future__ import annotations

import errno
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IPktInfoDatagramProtocol
from twisted_mdns.constants import MDNS_GROUP, MDNS_PORT
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort, ReplyStore

log = Logger()


#: errno values that mean "the interface is gone or unusable right now":
#: counted and logged once per interface, never raised to the caller.
_GONE = {
    errno.ENODEV,
    errno.ENXIO,
    errno.EADDRNOTAVAIL,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTUNREACH,
    errno.EPERM,
}


@dataclass(frozen=True)
class TransportChange:
    """
    What L{InterfaceTransport.apply} did.
    """

    added: tuple[NetworkInterface, ...] = ()
    removed: tuple[NetworkInterface, ...] = ()
    readdressed: tuple[tuple[NetworkInterface, NetworkInterface], ...] = ()
    #: Fires once the ports of removed interfaces are closed (a port closes
    #: on the next reactor turn; until then its socket still takes its share
    #: of unicast datagrams).
    closed: defer.Deferred | None = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.readdressed)


@implementer(IPktInfoDatagramProtocol)
class _PortProtocol(DatagramProtocol):
    """
    Sits on one port and hands its datagrams to the transport, which decides
    the interface from the context, not from this port.
    """

    def __init__(self, transport_: "InterfaceTransport") -> None:
        self._owner = transport_

    def datagramReceivedOn(self, datagram: bytes, address: tuple[str, int], context: InterfaceContext) -> None:
        self._owner._received(datagram, address, context)

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:  # pragma: no cover
        self._owner.counters["dropped.no-pktinfo"] += 1


class InterfaceTransport:
    """
    Per-interface multicast ports for one group and port.

    @ivar receiver: an L{IPktInfoDatagramProtocol}; gets every datagram that
        arrived on a selected interface.
    @ivar interfaces: index -> the L{NetworkInterface} we run on.
    @ivar ports: index -> its port.
    @ivar counters: C{transport.sent}, drops and errors by reason (what it
        passes on, the protocol counts as C{received}).  Prefixed, because an
        L{MDNSService} shares one counter between the transport, protocol and
        responder: no event is counted twice under one name.
    """

    port_factory = PktInfoMulticastPort

    def __init__(
        self,
        receiver: Any,
        reactor: Any = None,
        group: str = MDNS_GROUP,
        port: int = MDNS_PORT,
        max_packet_size: int = 9000,
        loopback: bool = True,
        counters: Counter | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.receiver = receiver
        self.reactor = reactor
        self.group = group
        self.port_number = port
        self.max_packet_size = max_packet_size
        self.loopback = loopback
        self.interfaces: dict[int, NetworkInterface] = {}
        self.ports: dict[int, PktInfoMulticastPort] = {}
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self._failing: set[int] = set()
        #: Replies computed for exact repeated queries, consulted by every
        #: port's reader (see L{ReplyStore}); set by L{serve_replies}.
        self.reply_cache: ReplyStore | None = None

    def serve_replies(self, store: ReplyStore | None) -> None:
        """
        Have every port's reader (now and later) answer exact repeats from
        C{store}, or stop with C{None}.  The store stays its owner's (the
        responder's legacy-unicast phase).
        """
        self.reply_cache = store
        for port in self.ports.values():
            port.reply_cache = store

    # -- selection ---------------------------------------------------------

    def apply(self, selected: Iterable[NetworkInterface]) -> TransportChange:
        """
        Make the open ports match C{selected}: open ports for new
        interfaces, close those of interfaces no longer selected, and take
        the new addresses of interfaces that were readdressed.
        """
        wanted = {i.index: i for i in selected}
        removed = [self.interfaces[ix] for ix in list(self.interfaces) if ix not in wanted]
        closing = [self._close(iface.index) for iface in removed]
        added, readdressed = [], []
        for index, iface in sorted(wanted.items()):
            old = self.interfaces.get(index)
            if old is None:
                if self._open(iface):
                    added.append(iface)
            elif old != iface:
                self.interfaces[index] = iface
                readdressed.append((old, iface))
        if readdressed:
            # Any port may have read (and cached a context for) any index.
            for port in self.ports.values():
                port.refresh()
        change = TransportChange(
            tuple(added), tuple(removed), tuple(readdressed),
            closed=defer.gatherResults(closing, consumeErrors=True),
        )
        if change:
            log.info(
                "transport: {ports} port(s) open; added {added}, removed "
                "{removed}, readdressed {readdressed}",
                ports=len(self.ports),
                added=[i.name for i in added] or "none",
                removed=[i.name for i in removed] or "none",
                readdressed=[n.name for _, n in readdressed] or "none",
            )
        return change

    def _open(self, iface: NetworkInterface) -> bool:
        proto = _PortProtocol(self)
        port = self.port_factory(
            self.port_number,
            proto,
            interface="",
            maxPacketSize=self.max_packet_size,
            reactor=self.reactor,
            listenMultiple=True,
            network_interface=iface,
            lookup=self.interfaces.get,
            loopback=self.loopback,
        )
        port.counters = self.counters
        port.reply_cache = self.reply_cache
        try:
            port.startListening()
        except Exception as e:
            self.counters["errors.open"] += 1
            log.error(
                "cannot open a port on {name}: {error}", name=iface.name, error=e
            )
            return False
        self.interfaces[iface.index] = iface
        self.ports[iface.index] = port
        failures: list = []
        port.joinGroup(self.group).addErrback(failures.append)
        if failures:
            self.counters["errors.join"] += 1
            log.error(
                "cannot join {group} on {name}: {error}",
                group=self.group,
                name=iface.name,
                error=failures[0].getErrorMessage(),
            )
            self._close(iface.index)
            return False
        log.info(
            "listening on {name} (index {index}) for {group}:{port}",
            name=iface.name,
            index=iface.index,
            group=self.group,
            port=self.port_number,
        )
        return True

    def _close(self, index: int) -> defer.Deferred:
        self.interfaces.pop(index, None)
        self._failing.discard(index)
        port = self.ports.pop(index, None)
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def close(self) -> defer.Deferred:
        """
        Close every port.
        """
        return defer.gatherResults(
            [self._close(index) for index in list(self.ports)], consumeErrors=True
        )

    # -- traffic -----------------------------------------------------------

    def _received(self, datagram: bytes, address: tuple[str, int], context: InterfaceContext) -> None:
        if context.index not in self.interfaces:
            self.counters["dropped.unselected-interface"] += 1
            return
        self.receiver.datagramReceivedOn(datagram, address, context)

    def send(
        self,
        datagram: bytes,
        interface: NetworkInterface | int,
        destination: tuple[str, int] | None = None,
        source: str = "0.0.0.0",
    ) -> bool:
        """
        Send C{datagram} on C{interface}: to the group when C{destination}
        is C{None}, else unicast to C{destination}, pinned to that interface.

        @return: whether it was handed to the kernel.  An interface that
            vanished or went down is counted, logged once, and not raised.
        """
        index = interface if isinstance(interface, int) else interface.index
        port = self.ports.get(index)
        if port is None:
            self.counters["errors.send-no-port"] += 1
            return False
        try:
            if destination is None:
                port.write(datagram, (self.group, self.port_number))
            else:
                port.writeOn(datagram, destination, index, source)
        except OSError as e:
            self._send_failed(index, e)
            return False
        except Exception as e:  # MessageLengthError and friends
            self._send_failed(index, e)
            return False
        self.counters["transport.sent"] += 1
        if self._failing:
            self._failing.discard(index)
        return True

    def _send_failed(self, index: int, error: Exception) -> None:
        self.counters["transport.errors.send"] += 1
        code = getattr(error, "errno", None)
        if index not in self._failing:
            self._failing.add(index)
            iface = self.interfaces.get(index)
            log.warn(
                "send on {name} failed: {error}{gone}",
                name=iface.name if iface else index,
                error=error,
                gone=" (interface gone or down?)" if code in _GONE else "",
            )
