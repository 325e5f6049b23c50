"""
Network interfaces as values, and how to enumerate them.

Everything above this module speaks of L{NetworkInterface} values: frozen,
hashable snapshots of one interface at one moment (name, index, flags, MTU,
addresses).  A change of address is a new value, which is what lets the
monitor diff two enumerations and the transport notice a readdressed link.

Addresses come from C{netifaces} (the maintained C{netifaces-plus} fork),
the index from C{socket.if_nametoindex}, flags and MTU from
C{psutil.net_if_stats}: the three portable sources, with no hand-written
ioctls.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

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


@dataclass(frozen=True)
class NetworkInterface:
    """
    One network interface as it was when enumerated.

    @ivar name: the OS name (C{eth0}, C{en0}).
    @ivar index: the OS interface index, which is what C{IP_PKTINFO} reports.
    @ivar ipv4: IPv4 addresses with their prefix length, as
        L{ipaddress.IPv4Interface} values (address and subnet in one).
    @ivar ipv6: IPv6 addresses likewise; carried so that IPv6 support is an
        addition rather than a rewrite.
    """

    name: str
    index: int
    flags: InterfaceFlags = field(default_factory=InterfaceFlags)
    mtu: int = 1500
    ipv4: tuple[ipaddress.IPv4Interface, ...] = ()
    ipv6: tuple[ipaddress.IPv6Interface, ...] = ()

    @property
    def ipv4_addresses(self) -> tuple[str, ...]:
        """
        The IPv4 addresses as dotted-quad strings.
        """
        return tuple(str(a.ip) for a in self.ipv4)

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
        return any(a.ip == ip for a in (*self.ipv4, *self.ipv6))

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
        return f"{self.name} (index {self.index}, mtu {self.mtu}, {addrs})"


def _netmask_prefix(netmask: str) -> int:
    if "/" in netmask:
        return int(netmask.rsplit("/", 1)[1])
    return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen


def _ipv4_of(entries: Iterable[dict]) -> tuple[ipaddress.IPv4Interface, ...]:
    out = []
    for entry in entries:
        addr = entry.get("addr")
        if not addr:
            continue
        try:
            prefix = _netmask_prefix(entry.get("netmask") or "255.255.255.255")
            out.append(ipaddress.IPv4Interface(f"{addr}/{prefix}"))
        except ValueError:
            continue
    return tuple(out)


def _ipv6_of(entries: Iterable[dict]) -> tuple[ipaddress.IPv6Interface, ...]:
    out = []
    for entry in entries:
        addr = (entry.get("addr") or "").split("%", 1)[0]
        if not addr:
            continue
        mask = entry.get("netmask") or "/128"
        try:
            prefix = int(mask.rsplit("/", 1)[1]) if "/" in mask else (
                ipaddress.IPv6Network(f"::/{mask}").prefixlen
            )
            out.append(ipaddress.IPv6Interface(f"{addr}/{prefix}"))
        except ValueError:
            continue
    return tuple(out)


@implementer(IInterfaceEnumerator)
class SystemInterfaceEnumerator:
    """
    Enumerate the interfaces of the network namespace the calling thread is
    in, from netifaces, C{if_nametoindex} and psutil.
    """

    def interfaces(self) -> Sequence[NetworkInterface]:
        import netifaces
        import psutil

        stats = psutil.net_if_stats()
        result = []
        for name in netifaces.interfaces():
            try:
                index = socket.if_nametoindex(name)
            except OSError:
                # Vanished between listing and lookup: not an interface now.
                continue
            try:
                addrs = netifaces.ifaddresses(name)
            except ValueError:
                continue
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
                    ipv4=_ipv4_of(addrs.get(netifaces.AF_INET, [])),
                    ipv6=_ipv6_of(addrs.get(netifaces.AF_INET6, [])),
                )
            )
        result.sort(key=lambda i: i.index)
        return result


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


def find_by_name(
    interfaces: Iterable[NetworkInterface], name: str
) -> NetworkInterface | None:
    """
    The interface called C{name}, or L{None}.
    """
    for iface in interfaces:
        if iface.name == name:
            return iface
    return None


def find_by_index(
    interfaces: Iterable[NetworkInterface], index: int
) -> NetworkInterface | None:
    """
    The interface with OS index C{index}, or L{None}.
    """
    for iface in interfaces:
        if iface.index == index:
            return iface
    return None


def find_by_address(
    interfaces: Iterable[NetworkInterface], address: str
) -> NetworkInterface | None:
    """
    The interface that owns the IP address C{address}, or L{None}.
    """
    for iface in interfaces:
        if iface.has_address(address):
            return iface
    return None


def find_interface(
    interfaces: Sequence[NetworkInterface], spec: str | int
) -> NetworkInterface | None:
    """
    Find an interface as a user types it: a name (C{eth0}), an IPv4 address
    (C{192.168.1.100}) or an index (C{3} or C{"3"}).

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
