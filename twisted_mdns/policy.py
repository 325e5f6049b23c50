# -*- test-case-name: tests.test_policy -*-
"""
Interface policies: which interfaces mDNS runs on, and why.

The default is deliberately conservative: multicast DNS is link-local, and a
query that leaks into a VPN or a container bridge tells strangers what is on
the LAN (and answers from there name hosts that do not exist here).  So the
default takes real, up, multicast-capable links with an address of a
family we run (IPv4, or a usable IPv6 address: an IPv6-only link is a link)
and a sane MTU, and leaves out everything that looks virtual by name.  A
user who wants a virtual interface names it, and is warned once.

Families: every policy takes C{families=} (a L{Family}: IPv4 only, IPv6
only, or both, the default), and its L{Selection} says which families each
selected link gets (L{Selection.families_of}): a family is given to a link
that has an address of it to publish, so a link whose IPv6 addresses are
all still tentative runs IPv4 now and IPv6 once DAD ends (the monitor
reports that change).  The choice lives on the policy because the policy is
what decides, and logs, what runs where; the transport opens one port per
family the selection names.

Every policy logs each decision with its reason, so "why is mDNS not
running on wlan0?" is answered by the log.
"""

from __future__ import annotations

import ipaddress
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.interfaces import IInterfacePolicy
from twisted_mdns.families import Family, LinkFamilies, link_families, no_family_reason
from twisted_mdns.netif import NetworkInterface, find_interface

log = Logger()

#: The smallest MTU we accept: RFC 6762 section 17 lets a responder assume
#: 512-byte messages fit, so a link that cannot carry them is useless to us.
MIN_MTU = 512

#: Name prefixes of virtual interfaces, by kind, shared by Unix platforms.
_COMMON_VIRTUAL: dict[str, tuple[str, ...]] = {
    "VPN": ("tun", "tap", "ppp", "wg", "ipsec"),
    "tunnel": ("gre", "ipip", "sit", "ip6tnl", "gif", "stf"),
}

#: Per-platform additions.  Windows is judged by flags (point-to-point), not
#: by names, since its interface names are user-editable descriptions.
VIRTUAL_PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    "linux": {
        "VPN": _COMMON_VIRTUAL["VPN"] + ("utun", "tailscale", "zt", "nordlynx"),
        "container": (
            "docker", "veth", "br-", "virbr", "cni", "flannel", "cali",
            "vxlan", "lxcbr", "lxdbr", "podman",
        ),
        "tunnel": _COMMON_VIRTUAL["tunnel"] + ("gretap", "erspan", "vti"),
    },
    "darwin": {
        "VPN": _COMMON_VIRTUAL["VPN"] + ("utun",),
        "container": ("bridge", "vmenet", "vnic"),
        "tunnel": _COMMON_VIRTUAL["tunnel"] + ("awdl", "llw", "anpi"),
    },
    "bsd": {
        "VPN": _COMMON_VIRTUAL["VPN"] + ("utun", "ovpn"),
        "container": ("bridge", "epair", "vether"),
        "tunnel": _COMMON_VIRTUAL["tunnel"] + ("enc", "pflog", "pfsync"),
    },
    "windows": {},
}


def platform_key(platform: str | None = None) -> str:
    """
    Map C{sys.platform} to a key of L{VIRTUAL_PATTERNS}.
    """
    p = platform or sys.platform
    if p.startswith("linux"):
        return "linux"
    if p == "darwin":
        return "darwin"
    if p.startswith(("win", "cygwin")):
        return "windows"
    if "bsd" in p or p.startswith("dragonfly"):
        return "bsd"
    return "linux"


def virtual_kind(
    iface: NetworkInterface, platform: str | None = None
) -> str | None:
    """
    Why C{iface} looks virtual (C{"VPN (tun*)"}), or C{None} if it does not.
    """
    key = platform_key(platform)
    if key == "windows":
        if iface.flags.pointopoint:
            return "VPN (point-to-point)"
        return None
    name = iface.name.lower()
    for kind, prefixes in VIRTUAL_PATTERNS[key].items():
        for prefix in prefixes:
            if name.startswith(prefix):
                return f"{kind} ({prefix}*)"
    return None


def unusable_reason(
    iface: NetworkInterface,
    *,
    allow_loopback: bool = False,
    check_mtu: bool = True,
    families: Family = Family.BOTH,
) -> str | None:
    """
    The first reason C{iface} cannot carry mDNS on any of C{families}, or
    C{None} if it can.
    """
    if iface.flags.loopback and not allow_loopback:
        return "loopback"
    if not iface.flags.up:
        return "down"
    if not iface.flags.multicast and not (allow_loopback and iface.flags.loopback):
        return "no multicast flag"
    if not link_families(iface, families)[0]:
        return no_family_reason(iface, families)
    if check_mtu and iface.mtu < MIN_MTU:
        return f"MTU {iface.mtu} < {MIN_MTU}"
    return None


class InterfaceValidationError(ValueError):
    """
    An interface that was asked for cannot be used.

    One reason per error; the message names the interface, the reason and
    the interfaces that do exist, so the user can correct the request.
    """

    def __init__(
        self, interface: str, reason: str, available: Sequence[str] = ()
    ) -> None:
        self.interface = interface
        self.reason = reason
        self.available = tuple(available)
        text = f"interface {interface!r}: {reason}"
        if self.available:
            text += f" (interfaces present: {', '.join(self.available)})"
        super().__init__(text)


@dataclass(frozen=True)
class Selection:
    """
    The outcome of a policy decision.

    @ivar selected: the interfaces chosen, in index order.
    @ivar excluded: C{(interface, reason)} for every interface left out.
    @ivar errors: explicit requests that could not be met.
    @ivar families: for each selected interface, a L{LinkFamilies}: which
        address families it runs and why not the others.
    """

    selected: tuple[NetworkInterface, ...]
    excluded: tuple[tuple[NetworkInterface, str], ...]
    errors: tuple[InterfaceValidationError, ...] = ()
    families: tuple[LinkFamilies, ...] = ()

    def families_of(self, interface: NetworkInterface | int) -> Family:
        """
        The families the selected C{interface} (or index) runs:
        C{Family.NONE} when it is not selected.  A selection made without
        family decisions (by hand, in tests) runs every selected link on
        both families it has addresses for.
        """
        index = interface if isinstance(interface, int) else interface.index
        for decision in self.families:
            if decision.interface.index == index:
                return decision.families
        for iface in self.selected:
            if iface.index == index:
                return link_families(iface)[0]
        return Family.NONE

    def report(self, interfaces: Iterable[NetworkInterface]) -> list[dict[str, Any]]:
        """
        One JSON-ready object per interface (what C{python -m twisted_mdns
        interfaces --json} prints): the interface's own fields (both
        families' addresses, IPv6 flags and publication), whether it was
        selected and why not, and the families it runs.
        """
        out = []
        for iface in interfaces:
            selected = any(i.index == iface.index for i in self.selected)
            notes = next((d.notes for d in self.families if d.interface.index == iface.index), ())
            out.append({
                **iface.as_json(),
                "selected": selected,
                "reason": "selected" if selected else f"excluded: {self.reason(iface.name)}",
                "families": [
                    n for f, n in ((Family.IPV4, "ipv4"), (Family.IPV6, "ipv6"))
                    if f in self.families_of(iface)
                ],
                "family_notes": list(notes),
            })
        return out

    def lines(self, interfaces: Iterable[NetworkInterface]) -> list[str]:
        """
        The human form of L{report}: per interface a line with index, name,
        IPv4 addresses and the decision (C{"selected: IPv4+IPv6"}), then
        one indented line per IPv6 address (with its state when it is not
        published) and per family left out.
        """
        out = []
        for iface in interfaces:
            selected = any(i.index == iface.index for i in self.selected)
            if selected:
                decision = f"selected: {self.families_of(iface).label}"
            else:
                decision = f"excluded: {self.reason(iface.name)}"
            addrs = ", ".join(str(a) for a in iface.ipv4) or "-"
            out.append(f"{iface.index:>3} {iface.name:<16} {addrs:<32} {decision}")
            for state in iface.ipv6_details:
                out.append(f"{'':>3} {'':<16} {state.describe()}")
            for decision_ in self.families:
                if decision_.interface.index == iface.index:
                    for note in decision_.notes:
                        out.append(f"{'':>3} {'':<16} ({note})")
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.selected)

    def reason(self, name: str) -> str | None:
        """
        Why C{name} was left out; C{None} if it was selected or is unknown.
        """
        for iface, why in self.excluded:
            if iface.name == name:
                return why
        return None

    def raise_for_errors(self) -> None:
        """
        Raise the first error, for start-up where a bad request must stop us.
        """
        if self.errors:
            raise self.errors[0]


def validate_interface(
    spec: str | int,
    interfaces: Sequence[NetworkInterface],
    families: Family = Family.BOTH,
) -> NetworkInterface:
    """
    Find the interface a user named (name, IPv4 or IPv6 address, or index)
    and check that it can carry mDNS on one of C{families}.

    @raise InterfaceValidationError: unknown, down, no multicast, no
        address of the families, or MTU too small.
    """
    available = [i.name for i in interfaces]
    iface = find_interface(interfaces, spec)
    if iface is None:
        raise InterfaceValidationError(str(spec), "no such interface", available)
    why = unusable_reason(iface, allow_loopback=True, families=families)
    if why is not None:
        raise InterfaceValidationError(iface.name, why, available)
    return iface


def _partition(
    interfaces: Iterable[NetworkInterface],
    reason: Callable[[NetworkInterface], str | None],
) -> tuple[list[NetworkInterface], list[tuple[NetworkInterface, str]]]:
    """
    Split C{interfaces} by C{reason}: C{None} selects, a string excludes
    (and says why).
    """
    selected, excluded = [], []
    for iface in interfaces:
        why = reason(iface)
        if why is None:
            selected.append(iface)
        else:
            excluded.append((iface, why))
    return selected, excluded


#: The last outcome each policy logged at info (see L{_finish}).
_last_outcome: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()

def _finish(
    policy: str,
    selected: list[NetworkInterface],
    excluded: list[tuple[NetworkInterface, str]],
    errors: Iterable[InterfaceValidationError] = (),
    families: Family = Family.BOTH,
    owner: object | None = None,
) -> Selection:
    ordered = tuple(sorted(selected, key=lambda i: i.index))
    decisions = tuple(LinkFamilies(i, *link_families(i, families)) for i in ordered)
    selection = Selection(ordered, tuple(excluded), tuple(errors), decisions)
    for decision in decisions:
        log.debug(
            "{policy}: {interface} selected for {families}",
            policy=policy,
            interface=decision.interface.describe(),
            families=decision.families.label,
        )
        for note in decision.notes:
            log.debug(
                "{policy}: {name} runs {families} only: {note}",
                policy=policy,
                name=decision.interface.name,
                families=decision.families.label,
                note=note,
            )
    for iface, why in selection.excluded:
        log.debug(
            "{policy}: {interface} excluded: {reason}",
            policy=policy,
            interface=iface.name,
            reason=why,
        )
    for error in selection.errors:
        log.warn("{policy}: {error}", policy=policy, error=str(error))
    if selection.selected:
        names = ", ".join(f"{d.interface.name} ({d.families.label})" for d in decisions)
        # The same outcome again (a monitor report that changed nothing we
        # run on) is a detail; a new one is news: each decision once at info.
        emit = log.debug if owner is not None and _last_outcome.get(owner) == names else log.info
        if owner is not None:
            _last_outcome[owner] = names
        emit(
            "{policy}: selected {count} interface(s): {names}",
            policy=policy,
            count=len(selection.selected),
            names=names,
        )
    else:
        log.warn(
            "{policy}: no interface qualifies for mDNS ({reasons})",
            policy=policy,
            reasons="; ".join(f"{i.name}: {r}" for i, r in selection.excluded)
            or "no interfaces",
        )
    return selection


class _EachInterfacePolicy:
    """
    A policy that judges each interface on its own: L{unusable_reason}
    first, then the policy's own L{_veto}.

    @cvar _name: what the log calls this policy.
    @ivar families: the address families the selection is for.
    """

    _name = "policy"
    families: Family

    def select(self, interfaces: Sequence[NetworkInterface]) -> Selection:
        return _finish(
            self._name, *_partition(interfaces, self._reason), families=self.families, owner=self
        )

    def _reason(self, iface: NetworkInterface) -> str | None:
        why = unusable_reason(iface, families=self.families)
        return why if why is not None else self._veto(iface)

    def _veto(self, iface: NetworkInterface) -> str | None:
        """
        Why this policy leaves out C{iface}, a usable interface; C{None}
        selects it.
        """
        return None


@implementer(IInterfacePolicy)
class DefaultInterfacePolicy(_EachInterfacePolicy):
    """
    Up, multicast, not loopback, an address of a family of C{families}
    (an IPv4 address, or an IPv6 address to publish), MTU >= 512, and not
    virtual by name (VPN, container, tunnel; patterns per platform).
    """

    def __init__(self, platform: str | None = None, *, families: Family = Family.BOTH) -> None:
        self.platform = platform
        self.families = families

    _name = "default policy"

    def _veto(self, iface: NetworkInterface) -> str | None:
        kind = virtual_kind(iface, self.platform)
        return f"virtual: {kind}" if kind is not None else None


@implementer(IInterfacePolicy)
class ExplicitInterfacePolicy:
    """
    Exactly the interfaces the user named, by name (C{eth0}), IPv4 or IPv6
    address (C{192.168.1.100}, C{fd00::1}) or index (C{3}).

    A named virtual interface is used (the user asked), with a warning.  A
    named interface that is unknown or cannot carry mDNS on C{families} is
    an error.
    """

    def __init__(
        self,
        specs: Iterable[str | int],
        platform: str | None = None,
        *,
        families: Family = Family.BOTH,
    ) -> None:
        self.specs = tuple(specs)
        if not self.specs:
            raise ValueError("ExplicitInterfacePolicy needs at least one interface")
        self.platform = platform
        self.families = families

    def select(self, interfaces: Sequence[NetworkInterface]) -> Selection:
        chosen: dict[int, NetworkInterface] = {}
        errors = []
        for spec in self.specs:
            try:
                iface = validate_interface(spec, interfaces, self.families)
            except InterfaceValidationError as e:
                errors.append(e)
                continue
            kind = virtual_kind(iface, self.platform)
            if kind is not None:
                log.warn(
                    "using {name}, which looks virtual ({kind}), because it was "
                    "named explicitly",
                    name=iface.name,
                    kind=kind,
                )
            chosen[iface.index] = iface
        excluded = []
        for iface in interfaces:
            if iface.index not in chosen:
                failed = next((e for e in errors if e.interface == iface.name), None)
                excluded.append(
                    (iface, failed.reason if failed else "not named explicitly")
                )
        return _finish(
            "explicit policy", list(chosen.values()), excluded, errors, self.families, owner=self
        )


@implementer(IInterfacePolicy)
class FilterInterfacePolicy(_EachInterfacePolicy):
    """
    The interfaces that can carry mDNS and for which C{predicate} is true.

    C{predicate} takes a L{NetworkInterface} and returns a bool, or a string
    (a reason to exclude) / C{None} (include), for filters that want to say
    why.
    """

    def __init__(
        self,
        predicate: Callable[[NetworkInterface], bool | str | None],
        description: str = "",
        *,
        families: Family = Family.BOTH,
    ) -> None:
        self.predicate = predicate
        self.description = description or getattr(predicate, "__name__", "filter")
        self.families = families

    _name = "filter policy"

    def _veto(self, iface: NetworkInterface) -> str | None:
        verdict = self.predicate(iface)
        if verdict is False:
            return f"rejected by {self.description}"
        return verdict if isinstance(verdict, str) else None


@implementer(IInterfacePolicy)
class AllInterfacesPolicy(_EachInterfacePolicy):
    """
    Every interface that is up, multicast-capable and has an address of
    C{families}, virtual ones included; loopback only when asked for.
    """

    def __init__(self, include_loopback: bool = False, *, families: Family = Family.BOTH) -> None:
        self.include_loopback = include_loopback
        self.families = families

    _name = "all-interfaces policy"

    def _reason(self, iface: NetworkInterface) -> str | None:
        return unusable_reason(
            iface, allow_loopback=self.include_loopback, check_mtu=False, families=self.families
        )


@implementer(IInterfacePolicy)
class ExcludingPolicy:
    """
    Another policy's selection less the interfaces named here (by name, IPv4
    or IPv6 address, or index): what C{--exclude-iface} builds.
    """

    def __init__(self, base: IInterfacePolicy, specs: Iterable[str | int]) -> None:
        self.base = base
        self.specs = tuple(specs)

    def select(self, interfaces: Sequence[NetworkInterface]) -> Selection:
        inner = self.base.select(interfaces)
        dropped = {
            found.index
            for found in (find_interface(interfaces, s) for s in self.specs)
            if found is not None
        }
        selected = [i for i in inner.selected if i.index not in dropped]
        excluded = list(inner.excluded) + [
            (i, "excluded by name") for i in inner.selected if i.index in dropped
        ]
        return _finish(
            "excluding policy", selected, excluded, inner.errors, self.families, owner=self
        )

    @property
    def families(self) -> Family:
        """
        The base policy's family choice.
        """
        return getattr(self.base, "families", Family.BOTH)


def interface_for_destination(
    destination: str, interfaces: Sequence[NetworkInterface]
) -> NetworkInterface | None:
    """
    The interface whose subnet (IPv4 or IPv6) holds C{destination}: "which
    interface reaches radiod at 192.168.1.50?".  The longest prefix wins when subnets
    nest; C{None} when no directly connected subnet holds it.
    """
    try:
        ip = ipaddress.ip_address(destination)
    except ValueError:
        return None
    best: tuple[int, NetworkInterface] | None = None
    for iface in interfaces:
        for addr in iface.ipv4 if ip.version == 4 else iface.ipv6:
            if ip in addr.network and (best is None or addr.network.prefixlen > best[0]):
                best = (addr.network.prefixlen, iface)
    return best[1] if best else None
