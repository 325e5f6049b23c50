# -*- test-case-name: tests.test_cli_query,tests.test_cli_interfaces,tests.test_cli_publish,tests.test_cli_follow -*-
"""
C{python -m twisted_mdns}: the commands live in L{twisted_mdns.cli}, one
module per command.
"""

from __future__ import annotations

import sys

from twisted_mdns.cli import build_parser, main, policy_from_args

__all__ = ["build_parser", "main", "policy_from_args"]

if __name__ == "__main__":
    sys.exit(main())
