# -*- test-case-name: tests.test_cli_interfaces -*-
"""
C{python -m twisted_mdns interfaces}: which interfaces mDNS would use, and
why the others are left out.
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted_mdns.cli.common import add_iface_options, policy_from_args


def cmd_interfaces(args: argparse.Namespace) -> int:
    """
    One line (or JSON object) per interface: selected, or excluded and why.
    """
    from twisted_mdns.netif import SystemInterfaceEnumerator

    interfaces = SystemInterfaceEnumerator().interfaces()
    policy = policy_from_args(args.iface, args.all_ifaces, args.exclude_iface)
    selection = policy.select(interfaces)
    chosen = {i.index for i in selection.selected}
    for iface in interfaces:
        selected = iface.index in chosen
        reason = "selected" if selected else f"excluded: {selection.reason(iface.name)}"
        if args.json:
            print(json.dumps({
                "name": iface.name,
                "index": iface.index,
                "selected": selected,
                "reason": reason,
                "ipv4": [str(a) for a in iface.ipv4],
                "ipv6": [str(a) for a in iface.ipv6],
                "mtu": iface.mtu,
                "flags": {k: v for k, v in vars(iface.flags).items()},
            }), flush=True)
        else:
            addrs = ", ".join(str(a) for a in iface.ipv4) or "-"
            print(f"{iface.index:>3} {iface.name:<16} {addrs:<32} {reason}")
    for error in selection.errors:
        print(f"error: {error}", file=sys.stderr)
    if selection.errors:
        return 2
    return 0 if selection.selected else 1


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("interfaces", help="show which interfaces mDNS would use and why")
    add_iface_options(p)
    p.set_defaults(func=cmd_interfaces)
