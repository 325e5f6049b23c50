# -*- test-case-name: tests.test_netif -*-
"""
Network interfaces as values, and how to enumerate them.

Everything above this module speaks of L{NetworkInterface} values: frozen,
hashable snapshots of one interface at one moment (name, index, flags, MTU,
addresses).  A change of address is a new value, which is what lets the
monitor diff two enumerations and the transport notice a readdressed link.

One enumeration is one pass over the host: the names and indexes from
C{socket.if_nameindex}, every address of every interface from
C{psutil.net_if_addrs} (one C{getifaddrs}), flags and MTU from
C{psutil.net_if_stats}: portable sources, with no hand-written ioctls.
Its cost grows with the number of interfaces, not with its square (as
C{netifaces}' C{getifaddrs} per interface did: 1.8 s at 240 links).

IPv6 addresses carry state that netifaces does not report: an address is
I{tentative} while Duplicate Address Detection runs (RFC 4862 §5.4), may
have I{failed} DAD, may be I{deprecated} (its preferred lifetime ran out,
RFC 4862 §5.5.4) or I{temporary} (a privacy address, RFC 8981).  On Linux
those flags are the kernel's C{IFA_F_*} bits, which C{/proc/net/if_inet6}
lists beside every address; there the IPv6 addresses are read from that
file alone (address, prefix and flags in one consistent snapshot), and
elsewhere from C{getifaddrs} without flags.  Which addresses are worth
publishing is decided here, in one place (L{IPv6AddressState.unpublished}).
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Sequence, TypeVar

from zope.interface import implementer

from twisted_mdns.interfaces import IInterfaceEnumerator


@dataclass(frozen=True)
class InterfaceFlags:
    """
    The flags of an interface that the policy and transport care about.
    """

    up: bool = True
    running: bool = True
    multicast: bool = True
    loopback: bool = False
    pointopoint: bool = False
    broadcast: bool = True

    @classmethod
    def from_text(cls, text: str, isup: bool) -> "InterfaceFlags":
        """
        Build from psutil's comma-separated flag string (C{"up,running,..."}).
        """
        names = {name.strip() for name in text.split(",") if name.strip()}
        return cls(
            up=isup or "up" in names,
            running="running" in names,
            multicast="multicast" in names,
            loopback="loopback" in names,
            pointopoint="pointopoint" in names,
            broadcast="broadcast" in names,
        )


class IPv6AddressFlag(enum.IntFlag):
    """
    The kernel's C{IFA_F_*} address flags (linux/if_addr.h), as
    C{/proc/net/if_inet6} and netlink C{RTM_NEWADDR} report them.
    """

    NONE = 0
    TEMPORARY = 0x01
    NODAD = 0x02
    OPTIMISTIC = 0x04
    DADFAILED = 0x08
    HOMEADDRESS = 0x10
    DEPRECATED = 0x20
    TENTATIVE = 0x40
    PERMANENT = 0x80

    def names(self) -> tuple[str, ...]:
        """
        The set flags as lower-case words (C{("tentative", "permanent")}),
        for logs, the CLI and JSON.
        """
        return tuple(
            (flag.name or "").lower()
            for flag in IPv6AddressFlag
            if flag and flag in self
        )


@dataclass(frozen=True)
class IPv6AddressState:
    """
    One IPv6 address of an interface with its kernel flags.

    @ivar interface: the address with its prefix length.
    @ivar flags: what the kernel says of it; C{NONE} where the platform
        does not tell (the address then counts as usable).
    """

    interface: ipaddress.IPv6Interface
    flags: IPv6AddressFlag = IPv6AddressFlag.NONE

    @property
    def tentative(self) -> bool:
        """
        Duplicate Address Detection is still running (RFC 4862 §5.4): the
        address is not ours yet, and an optimistic one (RFC 4429) may still
        turn out to be someone else's.
        """
        return IPv6AddressFlag.TENTATIVE in self.flags

    @property
    def dad_failed(self) -> bool:
        """
        DAD found another node using the address: it is not ours at all.
        """
        return IPv6AddressFlag.DADFAILED in self.flags

    @property
    def deprecated(self) -> bool:
        """
        Its preferred lifetime is over (RFC 4862 §5.5.4): still valid for
        existing conversations, not to be used for new ones.
        """
        return IPv6AddressFlag.DEPRECATED in self.flags

    @property
    def temporary(self) -> bool:
        """
        A privacy address (RFC 8981), meant to be used for outgoing
        connections and changed regularly.
        """
        return IPv6AddressFlag.TEMPORARY in self.flags

    def unpublished(self) -> str | None:
        """
        Why this address must not go into AAAA records (RFC 6762 §6.2),
        or C{None} when it should.

        The decisions, each with its reason:
          - tentative: not ours until DAD ends; publishing it could send a
            neighbour's traffic to us, and the kernel will not even use it
            as a source.  It is published when DAD ends (the monitor sees
            the flag change and reports the link readdressed).
          - DAD failed: it belongs to another node.
          - deprecated: RFC 4862 says deprecated addresses should not be
            used for new communications, and a peer that resolves our
            name is starting a new one.  (avahi still publishes one when
            the link has nothing better; a link always has its link-local
            address, which is never deprecated, so we need not.)
          - temporary: a privacy address exists so that outgoing
            connections cannot be tied to the host; publishing it under
            the host's stable name would undo that (RFC 8981 §3).
            Apple's stacks skip temporary addresses likewise.
        """
        if self.dad_failed:
            return "DAD failed"
        if self.tentative:
            return "tentative"
        if self.deprecated:
            return "deprecated"
        if self.temporary:
            return "temporary"
        return None

    @property
    def publishable(self) -> bool:
        """
        Whether the address goes into this link's AAAA records.
        """
        return self.unpublished() is None

    def describe(self) -> str:
        """
        C{"fe80::1/64"}, or C{"2001:db8::5/64 (deprecated, not published)"}.
        """
        why = self.unpublished()
        return str(self.interface) if why is None else f"{self.interface} ({why}, not published)"


@dataclass(frozen=True)
class NetworkInterface:
    """
    One network interface as it was when enumerated.

    @ivar name: the OS name (C{eth0}, C{en0}).
    @ivar index: the OS interface index, which is what C{IP_PKTINFO} reports.
    @ivar ipv4: IPv4 addresses with their prefix length, as
        C{ipaddress.IPv4Interface} values (address and subnet in one).
    @ivar ipv6: I{all} its IPv6 addresses likewise, whatever their state:
        their prefixes are on-link for the RFC 6762 §11 check.
    @ivar ipv6_states: the kernel flags of those addresses where the
        platform reports them (Linux); an address of L{ipv6} with no state
        here counts as usable.  Part of the value, so that a flag change
        (DAD ending, an address deprecated) is a change the monitor sees.
    """

    name: str
    index: int
    flags: InterfaceFlags = field(default_factory=InterfaceFlags)
    mtu: int = 1500
    ipv4: tuple[ipaddress.IPv4Interface, ...] = ()
    ipv6: tuple[ipaddress.IPv6Interface, ...] = ()
    ipv6_states: tuple[IPv6AddressState, ...] = ()

    @property
    def ipv4_addresses(self) -> tuple[str, ...]:
        """The IPv4 addresses as dotted-quad strings."""
        return tuple(str(a.ip) for a in self.ipv4)

    def ipv6_state(self, address: ipaddress.IPv6Interface) -> IPv6AddressState:
        """
        The state of one of L{ipv6}: as reported, or flagless (usable)
        where the platform did not say.
        """
        for state in self.ipv6_states:
            if state.interface == address:
                return state
        return IPv6AddressState(address)

    @property
    def ipv6_details(self) -> tuple[IPv6AddressState, ...]:
        """Every IPv6 address with its state, in L{ipv6} order."""
        return tuple(self.ipv6_state(a) for a in self.ipv6)

    @cached_property
    def publishable_ipv6(self) -> tuple[ipaddress.IPv6Interface, ...]:
        """
        The IPv6 addresses to publish on this link (RFC 6762 §6.2): global,
        ULA and link-local, never tentative, DAD-failed, deprecated or
        temporary ones (see L{IPv6AddressState.unpublished} for why).
        """
        return tuple(s.interface for s in self.ipv6_details if s.publishable)

    @cached_property
    def published(self) -> tuple[str, ...]:
        """
        L{twisted_mdns.records.published_addresses}, made once per value:
        probes and announcements ask per claim and link (issue 13).
        """
        return tuple([str(a.ip) for a in self.ipv4] + [str(a.ip) for a in self.publishable_ipv6])

    @property
    def ipv6_prefixes(self) -> tuple[ipaddress.IPv6Network, ...]:
        """
        The link's IPv6 prefixes, for the RFC 6762 §11 source check
        (fe80::/10 is on-link anyway; see L{on_link}).
        """
        seen: dict[ipaddress.IPv6Network, None] = {}
        for a in self.ipv6:
            seen.setdefault(a.network, None)
        return tuple(seen)

    @cached_property
    def _ipv4_texts(self) -> frozenset[str]:
        return frozenset(str(a.ip) for a in self.ipv4)

    def has_address(self, address: str) -> bool:
        """
        Is C{address} one of this interface's own addresses?

        Asked per received datagram (is it our own, looped back?): an IPv4
        address is looked up as text, since only the canonical dotted quad
        (what the socket reports) parses as an address at all.
        """
        if ":" not in address:
            return address in self._ipv4_texts
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(a.ip == ip for a in self.ipv4) or any(a.ip == ip for a in self.ipv6)

    @cached_property
    def _source_texts(self) -> frozenset[str]:
        return frozenset([str(a.ip) for a in self.ipv4] + [str(a.ip) for a in self.ipv6])

    def sent_from_here(self, source: str) -> bool:
        """
        Is C{source}, a datagram's source address as the socket reports it
        (canonical text, an IPv6 zone allowed), one of this interface's own
        addresses?  A set lookup: asked for every datagram received, where
        L{has_address} would parse IPv6 text.
        """
        texts = self._source_texts
        if source in texts:
            return True
        return "%" in source and source.split("%", 1)[0] in texts

    def on_link(self, address: str) -> bool:
        """
        Is C{address} on one of this interface's directly connected subnets?

        This is the RFC 6762 section 11 source-address check.  A
        point-to-point IPv4 address with a /32 prefix holds only itself.
        """
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 4:
            return any(ip in a.network for a in self.ipv4)
        if ip.is_link_local:
            return True
        return any(ip in a.network for a in self.ipv6)

    def describe(self) -> str:
        """
        A one-line human description, for logs and the CLI.
        """
        addrs = ", ".join(str(a) for a in self.ipv4) or "no IPv4"
        addrs6 = ", ".join(s.describe() for s in self.ipv6_details) or "no IPv6"
        return f"{self.name} (index {self.index}, mtu {self.mtu}, {addrs}; {addrs6})"

    def as_json(self) -> dict[str, Any]:
        """
        The interface as JSON-ready fields (what C{python -m twisted_mdns
        interfaces --json} prints): addresses of both families, and for
        each IPv6 address its flags and whether it is published.
        """
        return {
            "name": self.name,
            "index": self.index,
            "mtu": self.mtu,
            "flags": {k: v for k, v in vars(self.flags).items()},
            "ipv4": [str(a) for a in self.ipv4],
            "ipv6": [str(a) for a in self.ipv6],
            "ipv6_details": [
                {
                    "address": str(s.interface),
                    "flags": list(s.flags.names()),
                    "published": s.publishable,
                    **({"reason": s.unpublished()} if not s.publishable else {}),
                }
                for s in self.ipv6_details
            ],
        }


def _netmask_prefix(netmask: str) -> int:
    """
    The prefix length of a netmask as C{getifaddrs} reports it: dotted
    (C{255.255.255.0}), IPv6 (C{ffff:ffff::}) or already C{/N}.
    """
    if "/" in netmask:
        return int(netmask.rsplit("/", 1)[1])
    bits = int(ipaddress.ip_address(netmask))
    width = 32 if "." in netmask else 128
    prefix = bin(bits).count("1")
    if bits != ((1 << prefix) - 1) << (width - prefix):
        raise ValueError(f"{netmask} is not a contiguous netmask")
    return prefix


_Interface = TypeVar("_Interface", ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def _interfaces_of(
    entries: Iterable[tuple[str, str | None]], make: Callable[[str], _Interface], host: str
) -> tuple[_Interface, ...]:
    """
    C{make("address/prefix")} of each C{(address, netmask)} pair that has
    an address, with a scope suffix (C{%eth0}) dropped and C{host} as the
    netmask where there is none; a malformed entry is skipped.
    """
    out = []
    for addr, netmask in entries:
        addr = (addr or "").split("%", 1)[0]
        if not addr:
            continue
        try:
            out.append(make(f"{addr}/{_netmask_prefix(netmask or host)}"))
        except ValueError:
            continue
    return tuple(out)


def _ipv4_of(entries: Iterable[tuple[str, str | None]]) -> tuple[ipaddress.IPv4Interface, ...]:
    """
    IPv4 addresses from C{(address, netmask)} pairs; a missing netmask is
    a host route (/32), a malformed entry is skipped.
    """
    return _interfaces_of(entries, ipaddress.IPv4Interface, "255.255.255.255")


def _ipv6_of(entries: Iterable[tuple[str, str | None]]) -> tuple[ipaddress.IPv6Interface, ...]:
    """
    IPv6 addresses (scope suffix dropped) from C{(address, netmask)} pairs,
    for platforms without C{/proc/net/if_inet6}.
    """
    return _interfaces_of(entries, ipaddress.IPv6Interface, "/128")


#: Where Linux lists every IPv6 address with its flags.  The thread's own
#: view first: the network namespace is per thread (tests step threads
#: into namespaces), and C{/proc/net} follows the process's main thread.
IF_INET6_PATHS = ("/proc/thread-self/net/if_inet6", "/proc/net/if_inet6")


def parse_if_inet6(text: str) -> dict[int, tuple[IPv6AddressState, ...]]:
    """
    Parse C{/proc/net/if_inet6}: per interface index, its IPv6 addresses
    with prefix and C{IFA_F_*} flags, sorted by address.

    Each line is C{address(32 hex) ifindex prefixlen scope flags name}, all
    numbers in hex (the kernel prints the flags truncated to 8 bits, which
    holds every flag we read).  A malformed line is skipped, not fatal: the
    file is the kernel's, but a half-written line must not stop
    enumeration.
    """
    found: dict[int, list[IPv6AddressState]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        hexaddr, ifindex, prefix, _scope, flags = fields[:5]
        try:
            packed = bytes.fromhex(hexaddr)
            address = ipaddress.IPv6Address(packed)
            interface = ipaddress.IPv6Interface((address, int(prefix, 16)))
            state = IPv6AddressState(interface, IPv6AddressFlag(int(flags, 16) & 0xFF))
            index = int(ifindex, 16)
        except ValueError:
            continue
        found.setdefault(index, []).append(state)
    return {
        index: tuple(sorted(states, key=lambda s: s.interface))
        for index, states in found.items()
    }


def read_if_inet6(paths: Sequence[str] = IF_INET6_PATHS) -> dict[int, tuple[IPv6AddressState, ...]] | None:
    """
    L{parse_if_inet6} of the first readable file of C{paths}, or C{None}
    where there is none (not Linux, or IPv6 disabled in the kernel).
    """
    for path in paths:
        try:
            with open(path) as f:
                return parse_if_inet6(f.read())
        except OSError:
            continue
    return None


@implementer(IInterfaceEnumerator)
class SystemInterfaceEnumerator:
    """
    Enumerate the interfaces of the network namespace the calling thread is
    in: names and indexes from C{socket.if_nameindex}, addresses from
    C{psutil.net_if_addrs}, flags and MTU from C{psutil.net_if_stats}; on
    Linux, IPv6 addresses and their flags from C{/proc/net/if_inet6}.

    Each source is read once per enumeration (a few milliseconds for
    hundreds of interfaces), never once per interface: start-up and every
    interface change enumerate, so a per-interface scan would make both
    quadratic in the number of links.
    """

    def interfaces(self) -> Sequence[NetworkInterface]:
        import psutil

        try:
            names = socket.if_nameindex()
        except OSError:
            return []
        index_of = {name: index for index, name in names}
        addresses = psutil.net_if_addrs()
        stats = psutil.net_if_stats()
        inet6 = read_if_inet6()
        v4: dict[str, list[tuple[str, str | None]]] = {}
        v6: dict[str, list[tuple[str, str | None]]] = {}
        for label, entries in addresses.items():
            # An IPv4 address with a label (``ip addr add ... label
            # eth0:1``) is listed under the label; it is eth0's.
            name = label if label in index_of else label.split(":", 1)[0]
            if name not in index_of:
                # Gone between the two reads: it is not an interface now.
                continue
            for entry in entries:
                if entry.family == socket.AF_INET:
                    v4.setdefault(name, []).append((entry.address, entry.netmask))
                elif entry.family == socket.AF_INET6:
                    v6.setdefault(name, []).append((entry.address, entry.netmask))
        result = []
        for index, name in sorted(names):
            st = stats.get(name)
            if st is not None:
                flags = InterfaceFlags.from_text(getattr(st, "flags", ""), st.isup)
                mtu = st.mtu
            else:
                flags = InterfaceFlags(up=False, running=False, multicast=False)
                mtu = 0
            result.append(
                NetworkInterface(
                    name=name,
                    index=index,
                    flags=flags,
                    mtu=mtu,
                    ipv4=_ipv4_of(v4.get(name, ())),
                    **_ipv6_fields(inet6, index, v6.get(name, ())),
                )
            )
        return result


def _ipv6_fields(
    inet6: dict[int, tuple[IPv6AddressState, ...]] | None,
    index: int,
    entries: Iterable[tuple[str, str | None]],
) -> dict[str, Any]:
    """
    The C{ipv6} and C{ipv6_states} of interface C{index}: from the kernel's
    list where there is one (flags included), else from C{getifaddrs}.
    """
    if inet6 is None:
        return {"ipv6": tuple(sorted(_ipv6_of(entries)))}
    states = inet6.get(index, ())
    return {"ipv6": tuple(s.interface for s in states), "ipv6_states": states}


@implementer(IInterfaceEnumerator)
class StaticInterfaceEnumerator:
    """
    An enumerator that returns a fixed list: for tests of policy rules and for
    applications that already know their interfaces.
    """

    def __init__(self, interfaces: Iterable[NetworkInterface]) -> None:
        self._interfaces = list(interfaces)

    def set(self, interfaces: Iterable[NetworkInterface]) -> None:
        """
        Replace the list, as if the host's interfaces had changed.
        """
        self._interfaces = list(interfaces)

    def interfaces(self) -> Sequence[NetworkInterface]:
        return list(self._interfaces)


def _first(interfaces: Iterable[NetworkInterface],
           matches: Callable[[NetworkInterface], bool]) -> NetworkInterface | None:
    return next((iface for iface in interfaces if matches(iface)), None)


def find_by_name(interfaces: Iterable[NetworkInterface], name: str) -> NetworkInterface | None:
    """
    The interface called C{name}, or C{None}.
    """
    return _first(interfaces, lambda iface: iface.name == name)


def find_by_index(interfaces: Iterable[NetworkInterface], index: int) -> NetworkInterface | None:
    """
    The interface with OS index C{index}, or C{None}.
    """
    return _first(interfaces, lambda iface: iface.index == index)


def find_by_address(interfaces: Iterable[NetworkInterface], address: str) -> NetworkInterface | None:
    """
    The interface that owns the IP address C{address}, or C{None}.
    """
    return _first(interfaces, lambda iface: iface.has_address(address))


def find_interface(interfaces: Sequence[NetworkInterface], spec: str | int) -> NetworkInterface | None:
    """
    Find an interface as a user types it: a name (C{eth0}), an IPv4 or IPv6
    address (C{192.168.1.100}, C{fd00::5}) or an index (C{3} or C{"3"}).

    A name wins over an index when an interface is really called C{"3"}.
    """
    if isinstance(spec, int):
        return find_by_index(interfaces, spec)
    text = spec.strip()
    by_name = find_by_name(interfaces, text)
    if by_name is not None:
        return by_name
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return find_by_address(interfaces, text)
    if text.isdigit():
        return find_by_index(interfaces, int(text))
    return None
