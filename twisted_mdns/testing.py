# -*- test-case-name: tests.test_testing,tests.test_responder,tests.test_hostile -*-
"""
Test doubles for code built on twisted_mdns (public, so applications can
test their own mDNS logic too).

Only the edges are faked: the network (L{RecordingTransport} records what
would be sent instead of sending it) and time (use
C{twisted.internet.task.Clock}).  The responder, querier and protocol under
test are the real ones.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

from typing import Any, Iterable


from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock

from twisted_mdns.message import Message, parse
from twisted_mdns.netif import InterfaceFlags, NetworkInterface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.transport import MDNS_GROUP, MDNS_PORT


def make_interface(name: str, index: int, *cidrs: str, mtu: int = 1500) -> NetworkInterface:
    """
    A L{NetworkInterface} value for tests: C{make_interface("eth0", 2,
    "10.0.0.5/24", "fd00::5/64")} (IPv6 addresses usable, no flags).
    """
    return NetworkInterface(
        name=name,
        index=index,
        flags=InterfaceFlags(),
        mtu=mtu,
        ipv4=tuple(ipaddress.IPv4Interface(c) for c in cidrs if ":" not in c),
        ipv6=tuple(ipaddress.IPv6Interface(c) for c in cidrs if ":" in c),
    )


@dataclass
class Sent:
    """
    One datagram the code under test sent.
    """

    data: bytes
    index: int
    destination: tuple | None
    source: str | None
    time: float
    #: For multicast: the one family asked for (C{AF_INET} or C{AF_INET6}),
    #: or C{None} for every family the link runs.
    family: int | None = None

    @property
    def message(self) -> Message:
        return parse(self.data)

    @property
    def multicast(self) -> bool:
        return self.destination is None


class RecordingTransport:
    """
    Stands in for L{twisted_mdns.transport.InterfaceTransport}: the same
    C{interfaces} mapping and C{send} signature, recording datagrams.
    """

    group = MDNS_GROUP
    port_number = MDNS_PORT

    def __init__(self, interfaces: Iterable[NetworkInterface] = (), clock: Any = None) -> None:
        self.interfaces: dict[int, NetworkInterface] = {i.index: i for i in interfaces}
        self.clock = clock
        self.sent: list[Sent] = []
        self.counters: Counter[str] = Counter()
        self.fail_on: set[int] = set()

    def send(
        self,
        datagram: bytes,
        interface: NetworkInterface | int,
        destination: tuple | None = None,
        source: str | None = "0.0.0.0",
        family: int | None = None,
    ) -> bool:
        index = interface if isinstance(interface, int) else interface.index
        if index not in self.interfaces or index in self.fail_on:
            self.counters["errors.send"] += 1
            return False
        now = self.clock.seconds() if self.clock is not None else 0.0
        self.sent.append(Sent(datagram, index, destination, source, now, family))
        return True

    def take(self) -> list[Sent]:
        """
        Return and forget what was sent so far.
        """
        sent, self.sent = self.sent, []
        return sent

    def context(self, index: int, destination: str = MDNS_GROUP) -> InterfaceContext:
        """
        The L{InterfaceContext} a datagram arriving on C{index} would carry
        (an L{InterfaceContext6} for an IPv6 C{destination}, such as
        C{"ff02::fb"}).
        """
        iface = self.interfaces[index]
        if ":" in destination:
            from twisted_mdns.pktinfo6 import InterfaceContext6

            return InterfaceContext6(index, iface.name, destination, iface)
        return InterfaceContext(index, iface.name, destination, iface)


class MulticastMemoryReactor(MemoryReactorClock):
    """
    C{MemoryReactorClock} with the C{listenMulticast} that
    C{twisted.internet.testing.MemoryReactor} lacks, for testing code that
    opens plain multicast ports: records each call in L{multicast} and
    returns a port-like object that records what is written to it.

    @ivar multicast: C{(port, protocol, interface, maxPacketSize,
        listenMultiple)} per call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.multicast: list[tuple] = []

    def listenMulticast(self, port: int, protocol: Any, interface: str = "",
                        maxPacketSize: int = 8192, listenMultiple: bool = False) -> "FakeMulticastPort":
        self.multicast.append((port, protocol, interface, maxPacketSize, listenMultiple))
        fake = FakeMulticastPort(port)
        protocol.makeConnection(fake)
        return fake


class FakeMulticastPort:
    """
    What L{MulticastMemoryReactor.listenMulticast} returns: the groups
    joined, the datagrams written, whether it was stopped.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.groups: list[str] = []
        self.written: list[tuple[bytes, tuple[str, int] | None]] = []
        self.stopped = False

    def joinGroup(self, addr: str, interface: str = "") -> defer.Deferred[int]:
        self.groups.append(addr)
        return defer.succeed(1)

    def leaveGroup(self, addr: str, interface: str = "") -> defer.Deferred[int]:
        self.groups.remove(addr)
        return defer.succeed(1)

    def write(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        self.written.append((data, addr))

    def stopListening(self) -> None:
        self.stopped = True

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "0.0.0.0", self.port)
