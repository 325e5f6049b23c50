# -*- test-case-name: tests.test_cli_query -*-
"""
C{python -m twisted_mdns resolve NAME}: a C{.local} host's addresses, per
interface (like C{avahi-resolve -n}).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from twisted_mdns.cli.common import Session, add_query_options, families_from_args, selected_interfaces
from twisted_mdns.netif import NetworkInterface


def cmd_resolve(args: argparse.Namespace) -> int:
    """
    Print the addresses heard per interface; 0 if any, 1 if none.
    """
    from twisted_mdns.message import name_to_text
    from twisted_mdns.querier import Querier, parse_host_name

    labels = parse_host_name(args.name)
    shown = name_to_text(labels).rstrip(".")
    interfaces = selected_interfaces(args)
    answers: dict[NetworkInterface, list[str]] = {}

    async def work(querier: Querier, reactor: Any) -> int:
        answers.update(await querier.resolve_host(shown, timeout=args.timeout))
        return 0

    status = Session(interfaces, work, args.verbose, families=families_from_args(args)).run()
    if status == 2:
        return 2
    for iface, addresses in answers.items():
        if args.json:
            print(json.dumps({"interface": iface.name, "name": shown, "addresses": addresses}),
                  flush=True)
        else:
            print(f"{iface.name:<10} {shown}\t{' '.join(addresses)}", flush=True)
    return 0 if answers else 1


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "resolve", help="resolve a .local host name, per interface (like avahi-resolve)"
    )
    p.add_argument("name", metavar="NAME", help="host name, e.g. radiod or radiod.local")
    add_query_options(p)
    p.set_defaults(func=cmd_resolve)
