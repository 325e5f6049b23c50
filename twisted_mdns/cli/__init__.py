# -*- test-case-name: tests.test_cli_query,tests.test_cli_interfaces,tests.test_cli_publish,tests.test_cli_follow -*-
"""
C{python -m twisted_mdns}: look at interfaces, browse, resolve, publish;
one module per command.

Exit status: 0 when something was found (or the command succeeded), 1 when
nothing was found, 2 on bad arguments or configuration, with a one-line
message on stderr.
"""

from __future__ import annotations

import sys
from typing import Sequence

from twisted_mdns.cli import browse, interfaces, publish, resolve
from twisted_mdns.cli.common import Parser, UsageError, policy_from_args

__all__ = ["build_parser", "main", "policy_from_args", "UsageError"]


def build_parser() -> Parser:
    """
    The parser of every command.
    """
    parser = Parser(
        prog="python -m twisted_mdns",
        description="Multicast DNS / DNS-SD for multi-homed hosts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (interfaces, browse, resolve, publish):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run one command; return the exit status.
    """
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
