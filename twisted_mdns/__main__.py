"""
C{python -m twisted_mdns}: look at interfaces, browse, resolve, publish.

Exit status: 0 when something was found (or the command succeeded), 1 when
nothing was found, 2 on bad arguments or configuration, with a one-line
message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
)


class UsageError(Exception):
    """
    Bad arguments: exit 2 with the message.
    """


def policy_from_args(
    ifaces: Sequence[str] = (), all_ifaces: bool = False, exclude: Sequence[str] = ()
):
    """
    The policy the common options ask for: C{--iface} (repeatable) wins,
    then C{--all}, else the default; C{--exclude-iface} narrows any of them.
    """
    if ifaces and all_ifaces:
        raise UsageError("--iface and --all cannot be combined")
    if ifaces:
        policy = ExplicitInterfacePolicy(ifaces)
    elif all_ifaces:
        policy = AllInterfacesPolicy()
    else:
        policy = DefaultInterfacePolicy()
    if exclude:
        policy = ExcludingPolicy(policy, exclude)
    return policy


def _add_iface_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--iface", action="append", default=[], metavar="NAME|IPV4|INDEX",
        help="run on this interface (repeatable); default: the safe default policy",
    )
    parser.add_argument(
        "--all", dest="all_ifaces", action="store_true",
        help="every up, multicast, IPv4 interface, virtual ones included",
    )
    parser.add_argument(
        "--exclude-iface", action="append", default=[], metavar="NAME|IPV4|INDEX",
        help="never run on this interface (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def cmd_interfaces(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twisted_mdns",
        description="Multicast DNS / DNS-SD for multi-homed hosts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("interfaces", help="show which interfaces mDNS would use and why")
    _add_iface_options(p)
    p.set_defaults(func=cmd_interfaces)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse prints its own one-line message
        return int(e.code or 0) and 2
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # InterfaceValidationError and friends
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
