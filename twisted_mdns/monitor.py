# -*- test-case-name: tests.test_monitor,tests.test_monitor_ipv6 -*-
"""
Interface change events: which interfaces came, went, or changed.

mDNS must follow the host's links while it runs: a Wi-Fi that reassociates
gets a new address (which the responder must announce, RFC 6762 section
6.2/14), a USB Ethernet appears (a new port to open), a VPN goes down.  This
module watches for such changes and reports each coalesced batch as one
L{InterfaceChanges} value.

How changes are detected is deliberately dumb.  On Linux a raw
C{AF_NETLINK}/C{NETLINK_ROUTE} socket subscribed to the link and address
groups serves only as a I{trigger}: its messages are drained unread, and
once the burst has settled (one DHCP renewal or one C{ip link add} is a
dozen messages) the interfaces are enumerated again through the same
L{IInterfaceEnumerator} everything else uses, and diffed against the
previous enumeration.  So there is no netlink parser to get wrong, an
overrun (C{ENOBUFS}) loses nothing, and what the monitor reports is exactly
what the policy and transport will see.  Elsewhere the same enumeration and
diff runs on a timer (L{PollingInterfaceMonitor}).

IPv6 addresses also change state in place (tentative until DAD ends, then
perhaps deprecated): the kernel sends C{RTM_NEWADDR} for each, and the
enumeration carries the flags, so such a change is reported like any other
(in L{InterfaceChanges.readdressed} when it changes what a link publishes).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar, cast

from twisted.internet.interfaces import IDelayedCall, IReactorFDSet, IReactorTime, IReadDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_mdns.interfaces import IInterfaceEnumerator, IInterfaceMonitor
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator

__all__ = [
    "InterfaceChanges", "diff_interfaces", "NetlinkInterfaceMonitor",
    "PollingInterfaceMonitor", "default_monitor", "netlink_available",
    "RTMGRP_LINK", "RTMGRP_IPV4_IFADDR", "RTMGRP_IPV6_IFADDR",
]

log = Logger()

#: Netlink multicast groups (linux/rtnetlink.h): link state and IPv4/IPv6
#: address changes are all that can change a L{NetworkInterface}.
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

#: Read at most this many datagrams per C{doRead}, so that a flood of
#: netlink messages cannot starve the rest of the reactor; the reactor calls
#: C{doRead} again while more are waiting.
_MAX_READS = 256


Callback = Callable[["InterfaceChanges"], object]

_Address = TypeVar("_Address", ipaddress.IPv4Interface, ipaddress.IPv6Interface)
_Difference = Callable[[NetworkInterface, NetworkInterface], "frozenset[_Address]"]


def _gained(addresses: Callable[[NetworkInterface], Iterable[_Address]]) -> _Difference[_Address]:
    """
    C{f(old, new)}: the addresses (as C{addresses} reads them off an
    interface) that C{new} has and C{old} had not.
    """
    return lambda old, new: frozenset(addresses(new)) - frozenset(addresses(old))


def _lost(addresses: Callable[[NetworkInterface], Iterable[_Address]]) -> _Difference[_Address]:
    """
    C{f(old, new)}: the addresses that C{old} had and C{new} has not.
    """
    gained = _gained(addresses)
    return lambda old, new: gained(new, old)


@dataclass(frozen=True)
class InterfaceChanges:
    """
    What changed between two enumerations of the host's interfaces.

    Interfaces are matched by OS index, not name: the index is what
    C{IP_PKTINFO} reports and what multicast memberships are keyed on, and
    a rename keeps it (so a rename is a change, not a removal and an add).

    @ivar interfaces: the new full list, as the enumerator returned it.
    @ivar added: interfaces whose index was not there before.
    @ivar removed: interfaces (as they last were) whose index is gone.
    @ivar changed: C{(old, new)} pairs with the same index whose name,
        flags, MTU or addresses differ.
    """

    interfaces: tuple[NetworkInterface, ...]
    added: tuple[NetworkInterface, ...] = ()
    removed: tuple[NetworkInterface, ...] = ()
    changed: tuple[tuple[NetworkInterface, NetworkInterface], ...] = ()

    def __bool__(self) -> bool:
        """
        True when anything changed, so that C{if changes:} reads naturally.
        """
        return bool(self.added or self.removed or self.changed)

    # What a link gained or lost, per kind of address: the responder
    # announces what was gained and says goodbye for what was lost.

    addresses_added = staticmethod(_gained(lambda i: i.ipv4))
    """
    C{(old, new)} -> IPv4 addresses (with prefix) that C{new} has and
    C{old} had not: what the responder must now announce on that link.
    """

    addresses_removed = staticmethod(_lost(lambda i: i.ipv4))
    """
    C{(old, new)} -> IPv4 addresses (with prefix) that C{old} had and
    C{new} has not: what the responder must say goodbye for.
    """

    ipv6_addresses_added = staticmethod(_gained(lambda i: i.ipv6))
    """
    C{(old, new)} -> IPv6 addresses that C{new} has and C{old} had not.
    """

    ipv6_addresses_removed = staticmethod(_lost(lambda i: i.ipv6))
    """
    C{(old, new)} -> IPv6 addresses that C{old} had and C{new} has not.
    """

    published_ipv6_added = staticmethod(_gained(lambda i: i.publishable_ipv6))
    """
    C{(old, new)} -> IPv6 addresses C{new} publishes and C{old} did not:
    new ones, and tentative ones whose DAD ended (RFC 6762 §6.2: announce
    them).
    """

    published_ipv6_removed = staticmethod(_lost(lambda i: i.publishable_ipv6))
    """
    C{(old, new)} -> IPv6 addresses C{old} published and C{new} does not
    (gone, deprecated, failed): what needs goodbyes.
    """

    @property
    def readdressed(self) -> tuple[tuple[NetworkInterface, NetworkInterface], ...]:
        """
        The C{changed} pairs whose published addresses differ, in either
        family: where records must be re-announced or withdrawn (not, say,
        a carrier flap, or an address that is still tentative).
        """
        return tuple(
            (old, new) for old, new in self.changed
            if frozenset(old.ipv4) != frozenset(new.ipv4)
            or frozenset(old.publishable_ipv6) != frozenset(new.publishable_ipv6)
        )

    def describe(self) -> list[str]:
        """
        One human-readable line per individual change, in the words the
        monitor logs them with.
        """
        lines = [f"interface {i.name} (index {i.index}) added" for i in self.added]
        lines += [f"interface {i.name} (index {i.index}) removed" for i in self.removed]
        for old, new in self.changed:
            lines += _describe_change(old, new)
        return lines


def diff_interfaces(
    old: Iterable[NetworkInterface], new: Iterable[NetworkInterface]
) -> InterfaceChanges:
    """
    Compare two enumerations, keyed by interface index.

    A pure function, so that all of the monitors' judgement can be tested
    without a network.

    @return: an L{InterfaceChanges}; false when nothing differs.
    """
    new_list = tuple(new)
    before = {i.index: i for i in old}
    after = {i.index: i for i in new_list}
    added = tuple(after[k] for k in sorted(after.keys() - before.keys()))
    removed = tuple(before[k] for k in sorted(before.keys() - after.keys()))
    changed = tuple(
        (before[k], after[k])
        for k in sorted(before.keys() & after.keys())
        if before[k] != after[k]
    )
    return InterfaceChanges(
        interfaces=new_list, added=added, removed=removed, changed=changed
    )


def _describe_change(old: NetworkInterface, new: NetworkInterface) -> list[str]:
    lines = []
    if old.name != new.name:
        lines.append(f"interface {old.name} renamed to {new.name}")
    name = new.name
    if old.flags.up != new.flags.up:
        lines.append(f"interface {name} {'up' if new.flags.up else 'down'}")
    if old.flags.running != new.flags.running:
        lines.append(
            f"interface {name} {'has carrier' if new.flags.running else 'lost carrier'}"
        )
    if old.flags.multicast != new.flags.multicast:
        lines.append(
            f"interface {name} multicast {'on' if new.flags.multicast else 'off'}"
        )
    if old.mtu != new.mtu:
        lines.append(f"interface {name} MTU {old.mtu} -> {new.mtu}")
    for a in sorted(InterfaceChanges.addresses_added(old, new)):
        lines.append(f"address {a} added on {name}")
    for a in sorted(InterfaceChanges.addresses_removed(old, new)):
        lines.append(f"address {a} removed from {name}")
    for a6 in sorted(InterfaceChanges.ipv6_addresses_added(old, new)):
        lines.append(f"address {a6} added on {name}")
    for a6 in sorted(InterfaceChanges.ipv6_addresses_removed(old, new)):
        lines.append(f"address {a6} removed from {name}")
    lines += _describe_ipv6_states(old, new)
    if not lines:
        # Some other flag (point-to-point, broadcast, loopback) changed.
        lines.append(f"interface {name} flags changed: {old.flags} -> {new.flags}")
    return lines


def _describe_ipv6_states(old: NetworkInterface, new: NetworkInterface) -> list[str]:
    """
    A line per kept IPv6 address whose flags changed ("tentative -> published").
    """
    lines = []
    kept = sorted(frozenset(old.ipv6) & frozenset(new.ipv6))
    for a6 in kept:
        before, after = old.ipv6_state(a6), new.ipv6_state(a6)
        if before.flags == after.flags:
            continue
        was, now = before.unpublished() or "published", after.unpublished() or "published"
        if was == now:
            was = "|".join(before.flags.names()) or "no flags"
            now = "|".join(after.flags.names()) or "no flags"
        lines.append(f"address {a6} on {new.name}: {was} -> {now}")
    return lines


def _log_changes(changes: InterfaceChanges) -> None:
    """
    Log every individual change at info level, with structured fields, so
    that "why did mDNS stop on wlan0?" is answered by the log.
    """
    for iface in changes.added:
        log.info(
            "interface {name} added: {description}",
            name=iface.name, index=iface.index, description=iface.describe(),
        )
    for iface in changes.removed:
        log.info("interface {name} removed", name=iface.name, index=iface.index)
    for old, new in changes.changed:
        for line in _describe_change(old, new):
            log.info("{change}", change=line, name=new.name, index=new.index)


class _EnumeratingMonitor:
    """
    What both monitors share: hold the last enumeration, enumerate again on
    demand, diff, log, and report real changes to the callback.
    """

    def __init__(
        self, reactor: IReactorTime, enumerator: IInterfaceEnumerator | None
    ) -> None:
        self._reactor = reactor
        self._enumerator: IInterfaceEnumerator = (
            enumerator if enumerator is not None else SystemInterfaceEnumerator()
        )
        self._callback: Callback | None = None
        self._interfaces: tuple[NetworkInterface, ...] = ()
        #: How many times the enumerator was asked; tests use it to check
        #: that a burst costs one enumeration.
        self.enumerations = 0

    @property
    def interfaces(self) -> tuple[NetworkInterface, ...]:
        """
        The interfaces as last enumerated (at C{start} or at the last
        reported change).
        """
        return self._interfaces

    @property
    def running(self) -> bool:
        """
        Whether C{start} was called and C{stop} was not since.
        """
        return self._callback is not None

    def _begin(self, callback: Callback) -> None:
        if self._callback is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._callback = callback
        self._interfaces = tuple(self._enumerate())

    def _enumerate(self) -> Sequence[NetworkInterface]:
        self.enumerations += 1
        return self._enumerator.interfaces()

    def _rescan(self) -> None:
        """
        Enumerate, diff with the previous enumeration, and report a change.

        Never raises: an enumeration failure (an interface vanishing half-way
        through, say) is logged and the old list kept, so that the next
        trigger compares against what was last reported.
        """
        if self._callback is None:
            return
        try:
            current = tuple(self._enumerate())
        except Exception:
            log.failure("enumerating interfaces failed; keeping the previous list")
            return
        changes = diff_interfaces(self._interfaces, current)
        self._interfaces = current
        if not changes:
            return
        _log_changes(changes)
        try:
            self._callback(changes)
        except Exception:
            log.failure("interface change callback failed")


@implementer(IInterfaceMonitor, IReadDescriptor)
class NetlinkInterfaceMonitor(_EnumeratingMonitor):
    """
    Watch interfaces on Linux with a C{NETLINK_ROUTE} socket as a trigger.

    The socket is opened in L{start}, so it belongs to the network namespace
    of the thread that starts the monitor.  It is opened I{before} the first
    enumeration, so that no change can fall between the two.

    Each readable event drains the socket without parsing it and
    (re)schedules a single re-enumeration C{settle} seconds later: a burst of
    messages costs one enumeration and produces at most one callback.  So
    that a never-ending stream of messages cannot postpone the report
    forever, a burst is cut off after C{max_delay} seconds.

    @ivar settle: seconds of netlink silence to wait before enumerating.
    @ivar max_delay: the longest a change waits to be enumerated, however
        busy netlink is.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        enumerator: IInterfaceEnumerator | None = None,
        settle: float = 0.1,
        max_delay: float | None = None,
    ) -> None:
        """
        @param reactor: provides C{IReactorTime} and C{IReactorFDSet}.
        @param enumerator: what to enumerate with; the system's by default.
        @param settle: see L{settle}.
        @param max_delay: see L{max_delay}; five times C{settle} (at least
            half a second) by default.  An enumeration costs about 30 ms
            at 240 links, so a burst need not be held long: a link plugged
            in while netlink never goes quiet (other links flapping, DAD
            ending on many addresses) waits at most this long before its
            probing (RFC 6762 §8.1, about a second) can start.
        """
        super().__init__(reactor, enumerator)
        self.settle = settle
        self.max_delay = max_delay if max_delay is not None else max(0.5, 5 * settle)
        self._socket: socket.socket | None = None
        self._pending: IDelayedCall | None = None  # the scheduled rescan
        self._burst_started = 0.0
        self._buffer = bytearray(65536)

    # IInterfaceMonitor

    def start(self, callback: Callback) -> None:
        """
        Open the netlink socket, take the initial list, and start reading.

        @raise OSError: if the netlink socket cannot be opened (not Linux, or
            a sandbox that forbids it); L{default_monitor} falls back to
            polling then.
        """
        if self._callback is not None:
            raise RuntimeError("NetlinkInterfaceMonitor is already started")
        self._socket = self._open_socket()
        try:
            self._begin(callback)
        except BaseException:
            self._close()
            raise
        cast(IReactorFDSet, self._reactor).addReader(self)
        log.debug(
            "watching {count} interfaces via netlink", count=len(self._interfaces)
        )

    def stop(self) -> None:
        """
        Stop reading, forget any scheduled enumeration, close the socket.
        Safe to call twice, and after the reactor already dropped us.
        """
        if self._socket is not None:
            cast(IReactorFDSet, self._reactor).removeReader(self)
        self._close()

    # IReadDescriptor

    def fileno(self) -> int:
        """
        The netlink socket's descriptor, or -1 once closed (which the
        reactor understands as "gone").
        """
        return self._socket.fileno() if self._socket is not None else -1

    def doRead(self) -> None:
        """
        Drain the socket and schedule a re-enumeration.

        The contents do not matter: any link or address message means
        "look again".  C{ENOBUFS} means the kernel dropped messages because
        we were slow; since we re-enumerate anyway, nothing is lost.
        """
        sock = self._socket
        if sock is None:
            return
        got_any = False
        for _ in range(_MAX_READS):
            try:
                sock.recv_into(self._buffer)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    log.debug("netlink overrun (ENOBUFS); re-enumerating")
                    got_any = True
                    continue
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                log.failure("reading the netlink socket failed", Failure())
                break
            else:
                got_any = True
        if got_any:
            self._trigger()

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped us (at shutdown): release everything, without
        touching the reactor again.
        """
        self._close()

    def logPrefix(self) -> str:
        return "NetlinkInterfaceMonitor"

    # Internals

    @staticmethod
    def _open_socket() -> socket.socket:
        """
        A non-blocking C{NETLINK_ROUTE} socket in the link and address
        groups.  A static method so that tests can substitute a fake.
        """
        return _open_netlink_socket()

    def _trigger(self) -> None:
        """
        Something changed: enumerate once the burst has settled.

        Each trigger pushes the pending enumeration back to C{settle} from
        now (a burst costs one enumeration), unless the burst has already
        lasted C{max_delay}.
        """
        if self._callback is None:
            return
        now = self._reactor.seconds()
        if self._pending is not None and self._pending.active():
            if now + self.settle - self._burst_started <= self.max_delay:
                self._pending.reset(self.settle)
            return
        self._burst_started = now
        self._pending = self._reactor.callLater(self.settle, self._settled)

    def _settled(self) -> None:
        self._pending = None
        self._rescan()

    def _close(self) -> None:
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._callback = None


@implementer(IInterfaceMonitor)
class PollingInterfaceMonitor(_EnumeratingMonitor):
    """
    Watch interfaces by enumerating every C{interval} seconds: for platforms
    without netlink, and as the fallback where netlink is forbidden.

    Costs one enumeration per interval and notices a change up to
    C{interval} late; it reports only real differences, so an idle host
    produces no callbacks.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        enumerator: IInterfaceEnumerator | None = None,
        interval: float = 2.0,
    ) -> None:
        super().__init__(reactor, enumerator)
        self.interval = interval
        self._loop: LoopingCall | None = None

    def start(self, callback: Callback) -> None:
        """
        Take the initial list and poll every C{interval} seconds from now.
        """
        self._begin(callback)
        loop = LoopingCall(self._rescan)
        loop.clock = self._reactor
        self._loop = loop
        # _rescan never raises, so the loop never stops by itself; keep the
        # Deferred's errback anyway so a bug is logged rather than lost.
        loop.start(self.interval, now=False).addErrback(
            lambda f: log.failure("interface polling stopped", f)
        )
        log.debug(
            "polling {count} interfaces every {interval}s",
            count=len(self._interfaces), interval=self.interval,
        )

    def stop(self) -> None:
        """
        Stop polling.  Safe to call twice.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._callback = None


def _open_netlink_socket() -> socket.socket:
    if not hasattr(socket, "AF_NETLINK"):
        raise OSError(errno.EAFNOSUPPORT, "netlink sockets need Linux")
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, _GROUPS))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def netlink_available() -> bool:
    """
    Can a C{NETLINK_ROUTE} socket be opened here (Linux, not forbidden by a
    seccomp profile or similar)?
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        _open_netlink_socket().close()
    except OSError:
        return False
    return True


def default_monitor(
    reactor: IReactorTime, enumerator: IInterfaceEnumerator | None = None
) -> NetlinkInterfaceMonitor | PollingInterfaceMonitor:
    """
    The best monitor for this platform: netlink on Linux where the socket
    can be opened (immediate and free when idle), otherwise polling.
    """
    if netlink_available():
        return NetlinkInterfaceMonitor(reactor, enumerator)
    log.info("netlink unavailable; polling for interface changes")
    return PollingInterfaceMonitor(reactor, enumerator)
