# -*- test-case-name: tests.test_cli_interfaces -*-
"""
C{python -m twisted_mdns interfaces}: which interfaces mDNS would use, and
why the others are left out.
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted_mdns.cli.common import add_iface_options, policy_for


def cmd_interfaces(args: argparse.Namespace) -> int:
    """
    Per interface: selected with the families it runs (C{selected:
    IPv4+IPv6}), or excluded and why; then its IPv6 addresses (with their
    state when not published) and the families it does not run and why.
    With C{--json}, one object per interface
    (L{twisted_mdns.policy.Selection.report}).
    """
    from twisted_mdns.netif import SystemInterfaceEnumerator

    interfaces = SystemInterfaceEnumerator().interfaces()
    selection = policy_for(args).select(interfaces)
    if args.json:
        for row in selection.report(interfaces):
            print(json.dumps(row), flush=True)
    else:
        for line in selection.lines(interfaces):
            print(line, flush=True)
    for error in selection.errors:
        print(f"error: {error}", file=sys.stderr)
    if selection.errors:
        return 2
    return 0 if selection.selected else 1


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("interfaces", help="show which interfaces mDNS would use and why")
    add_iface_options(p)
    p.set_defaults(func=cmd_interfaces)
