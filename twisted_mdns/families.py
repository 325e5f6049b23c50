# -*- test-case-name: tests.test_policy -*-
"""
Address families: which of IPv4 and IPv6 mDNS runs, on which link.

A link is one object for both families (RFC 6762 §14 speaks of interfaces,
not of sockets), but each family has its own port and its own addresses.
A family runs on a link when the user wants it (L{Family}, default both)
and the link has an address of it to publish: an IPv4 address, or an IPv6
address that is not tentative, DAD-failed, deprecated or temporary
(L{twisted_mdns.netif.IPv6AddressState.unpublished}).  The policies
(L{twisted_mdns.policy}) apply this to every link they select and record it
in their L{twisted_mdns.policy.Selection}.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from twisted_mdns.netif import NetworkInterface

__all__ = ["Family", "LinkFamilies", "link_families", "no_family_reason"]


class Family(enum.Flag):
    """
    The address families mDNS runs on: C{Family.IPV4}, C{Family.IPV6}, or
    C{Family.BOTH} (the default; RFC 6762 §6.2 asks a responder to serve
    every address of a link on each family it hears).  C{Family.NONE} is
    what an unselected link gets.
    """

    NONE = 0
    IPV4 = 1
    IPV6 = 2
    BOTH = IPV4 | IPV6

    @classmethod
    def from_options(cls, ipv4_only: bool = False, ipv6_only: bool = False) -> "Family":
        """
        The choice of C{--ipv4-only} / C{--ipv6-only} (neither: both).

        @raise ValueError: both were given.
        """
        if ipv4_only and ipv6_only:
            raise ValueError("--ipv4-only and --ipv6-only exclude each other")
        if ipv4_only:
            return cls.IPV4
        if ipv6_only:
            return cls.IPV6
        return cls.BOTH

    @property
    def label(self) -> str:
        """
        C{"IPv4"}, C{"IPv6"}, C{"IPv4+IPv6"} or C{"none"}: for logs and the
        CLI.
        """
        names = [n for f, n in ((Family.IPV4, "IPv4"), (Family.IPV6, "IPv6")) if f in self]
        return "+".join(names) or "none"


def _ipv6_unusable(iface: NetworkInterface) -> str:
    """
    Why C{iface} has no IPv6 address to publish: none at all, or each one's
    state (C{"fe80::1/64 tentative"}).
    """
    if not iface.ipv6:
        return "no IPv6 address"
    states = ", ".join(f"{s.interface} {s.unpublished()}" for s in iface.ipv6_details)
    return f"no usable IPv6 address ({states})"


def link_families(
    iface: NetworkInterface, wanted: Family = Family.BOTH
) -> tuple[Family, tuple[str, ...]]:
    """
    The families of C{wanted} that C{iface} can run, and a note for each
    wanted family it cannot (C{"IPv6: no usable IPv6 address (...)"}).

    IPv4 needs an IPv4 address; IPv6 needs an address to publish (see
    L{twisted_mdns.netif.IPv6AddressState.unpublished}): a port whose
    only addresses are tentative could not even send from them.
    """
    got = Family.NONE
    notes = []
    if Family.IPV4 in wanted:
        if iface.ipv4:
            got |= Family.IPV4
        else:
            notes.append("IPv4: no IPv4 address")
    if Family.IPV6 in wanted:
        if iface.publishable_ipv6:
            got |= Family.IPV6
        else:
            notes.append(f"IPv6: {_ipv6_unusable(iface)}")
    return got, tuple(notes)


def no_family_reason(iface: NetworkInterface, wanted: Family) -> str:
    """
    Why C{iface} runs none of C{wanted}: the policies' exclusion reason.
    """
    if wanted == Family.IPV4:
        return "no IPv4 address"
    if wanted == Family.IPV6:
        return _ipv6_unusable(iface)
    if iface.ipv6:
        return f"no IPv4 address and {_ipv6_unusable(iface)}"
    return "no IPv4 or IPv6 address"


@dataclass(frozen=True)
class LinkFamilies:
    """
    The families one selected link runs, and why not the others.

    @ivar interface: the link.
    @ivar families: what it runs.
    @ivar notes: one line per wanted family it does not run
        (C{"IPv6: no usable IPv6 address (fe80::1/64 tentative)"}).
    """

    interface: NetworkInterface
    families: Family
    notes: tuple[str, ...] = ()
