# -*- test-case-name: tests.test_cli_query,tests.test_cli_follow -*-
"""
C{python -m twisted_mdns browse}: the services of one type, or of every
type on the link (C{--all-types}, from C{_services._dns-sd._udp.local},
RFC 6763 §9), per interface, like C{avahi-browse}.

Without C{--follow} it listens for C{--timeout} seconds and prints what is
there at the end (like C{avahi-browse -t}).  With C{--follow} it prints
every change as it happens until interrupted: C{+} a service appeared
(resolved), C{=} it changed (TXT, port, host or addresses), C{-} it left
(goodbye or expiry); with C{--json} one object per line with an C{"event"}
field (C{added}, C{updated}, C{removed}).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from twisted_mdns.cli.common import (
    Session,
    UsageError,
    add_iface_options,
    add_verbose_option,
    families_from_args,
    forever,
    positive_seconds,
    selected_interfaces,
    sleep,
)
from twisted_mdns.netif import NetworkInterface

#: The line prefix of each event (avahi-browse's).
MARKS = {"added": "+", "updated": "=", "removed": "-"}

#: How long C{browse} listens without C{--follow} unless told.
DEFAULT_TIMEOUT = 3.0


def service_line(service: Any) -> str:
    """
    One service on one line: interface, instance, type, host:port,
    addresses, TXT.
    """
    txt = " ".join(k if v is None else f"{k}={v}" for k, v in service.txt_text().items())
    return (
        f"{service.interface.name:<10} {service.instance:<24} {service.type:<14} "
        f"{service.host}:{service.port:<6} {','.join(service.addresses):<16} {txt}"
    ).rstrip()


def event_line(event: str, service: Any, as_json: bool) -> str:
    """
    One C{--follow} event, as text or JSON.
    """
    if as_json:
        return json.dumps({"event": event, **service.to_json()})
    if event == "removed":
        return (f"- {service.interface.name:<10} {service.instance:<24} {service.type}").rstrip()
    return f"{MARKS[event]} {service_line(service)}"


class _Browsing:
    """
    The browsers of one run: one type, or every type the type browser
    finds (one browser per type and interface, started when the type is
    first seen there).
    """

    def __init__(
        self, querier: Any, report: Callable[[str, Any, NetworkInterface], None]
    ) -> None:
        self.querier = querier
        self.report = report
        self.browsers: dict[tuple[str, int | None], Any] = {}
        self.type_browser: Any = None

    def listener(self) -> Any:
        from twisted_mdns.querier import ServiceListener

        def on(event: str) -> Callable[[Any, NetworkInterface], None]:
            return lambda service, iface: self.report(event, service, iface)

        return ServiceListener(added=on("added"), removed=on("removed"), updated=on("updated"))

    def browse(self, service_type: str, interface: NetworkInterface | None = None) -> None:
        key = (service_type, None if interface is None else interface.index)
        if key not in self.browsers:
            self.browsers[key] = self.querier.browse(
                service_type, self.listener(),
                interface=None if interface is None else interface.index,
            )

    def browse_all_types(self) -> None:
        from twisted_mdns.type_browser import ServiceTypeBrowser

        self.type_browser = ServiceTypeBrowser(
            self.querier, added=self.browse, removed=lambda t, i: None
        ).start()

    def stop(self) -> None:
        if self.type_browser is not None:
            self.type_browser.stop()
        for browser in self.browsers.values():
            browser.stop()
        self.browsers.clear()


def cmd_browse(args: argparse.Namespace) -> int:
    """
    Browse; exit 0 when something was found (or C{--follow} was
    interrupted), 1 when nothing was.
    """
    from twisted_mdns.querier import parse_service_type

    if args.all_types == (args.type is not None):
        raise UsageError("give a service TYPE or --all-types (not both)")
    service_type = parse_service_type(args.type, strict=False).text if args.type is not None else None
    interfaces = selected_interfaces(args)
    found: dict[tuple[int, str, tuple[bytes, ...]], Any] = {}

    def report(event: str, service: Any, interface: NetworkInterface) -> None:
        key = (interface.index, service.type, tuple(bytes(label).lower() for label in service.name))
        if event == "removed":
            found.pop(key, None)
        else:
            found[key] = service
        if args.follow:
            print(event_line(event, service, args.json), flush=True)

    async def work(querier: Any, reactor: Any) -> int:
        browsing = _Browsing(querier, report)
        try:
            if service_type is not None:
                browsing.browse(service_type)
            else:
                browsing.browse_all_types()
            timeout = args.timeout
            if args.follow:
                await (sleep(reactor, timeout) if timeout is not None else forever())
            else:
                await sleep(reactor, DEFAULT_TIMEOUT if timeout is None else timeout)
        finally:
            browsing.stop()
        return 0

    status = Session(interfaces, work, args.verbose, interrupted_status=0, families=families_from_args(args)).run()
    if status == 2:
        return 2
    if args.follow:
        return 0
    services = sorted(
        found.values(), key=lambda s: (s.interface.index, s.type, s.instance.lower())
    )
    for service in services:
        if args.json:
            print(json.dumps(service.to_json()), flush=True)
        else:
            print(service_line(service), flush=True)
    return 0 if services else 1


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "browse",
        help="list the services of a type, or of every type, per interface (like avahi-browse)",
    )
    p.add_argument("type", metavar="TYPE", nargs="?", help="service type, e.g. _http._tcp")
    p.add_argument(
        "-a", "--all-types", action="store_true",
        help="browse every type announced on the link (_services._dns-sd._udp)",
    )
    p.add_argument(
        "-f", "--follow", action="store_true",
        help="keep running and print services as they appear (+), change (=) and leave (-)",
    )
    add_iface_options(p)
    p.add_argument(
        "--timeout", type=positive_seconds, default=None, metavar="SECONDS",
        help=f"how long to listen (default: {DEFAULT_TIMEOUT:g}; with --follow, until interrupted)",
    )
    add_verbose_option(p)
    p.set_defaults(func=cmd_browse)
