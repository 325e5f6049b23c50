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


class _Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one line on stderr (exit 2), with
    no usage block: the message says what is wrong, C{--help} says the rest.
    """

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


def _timeout(text: str) -> float:
    """
    argparse type for C{--timeout}: a positive, finite number of seconds.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: must be more than 0 seconds")
    return value


def _add_query_options(parser: argparse.ArgumentParser) -> None:
    _add_iface_options(parser)
    parser.add_argument(
        "--timeout", type=_timeout, default=3.0, metavar="SECONDS",
        help="how long to listen (default: 3)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens to stderr",
    )


def _selected_interfaces(args: argparse.Namespace):
    """
    The interfaces the options select, or exit 2 with the reason.
    """
    from twisted_mdns.netif import SystemInterfaceEnumerator

    policy = policy_from_args(args.iface, args.all_ifaces, args.exclude_iface)
    selection = policy.select(SystemInterfaceEnumerator().interfaces())
    selection.raise_for_errors()
    if not selection.selected:
        reasons = "; ".join(f"{i.name}: {why}" for i, why in selection.excluded)
        raise UsageError(
            "no interface to run mDNS on"
            + (f" ({reasons})" if reasons else "")
            + "; see 'python -m twisted_mdns interfaces'"
        )
    return selection.selected


class _Session:
    """
    One run of the reactor for C{browse} or C{resolve}: open the transport
    on the selected interfaces, run C{work(querier)} (a coroutine function
    that returns the exit status), close everything, stop the reactor.

    Whatever C{work} collected is printed by the caller after the reactor
    stopped, so an interrupted run (Ctrl-C) still prints what it found.
    """

    def __init__(self, interfaces, work, verbose: bool) -> None:
        self.interfaces = interfaces
        self.work = work
        self.verbose = verbose
        self.status: int | None = None
        self.error: str | None = None

    def run(self) -> int:
        from twisted.internet import reactor
        from twisted.logger import globalLogBeginner, textFileLogObserver

        if self.verbose:
            globalLogBeginner.beginLoggingTo(
                [textFileLogObserver(sys.stderr)], redirectStandardIO=False
            )
        from twisted_mdns.clock import use_monotonic_time

        # Our own process: wall-clock steps must not stall the timeouts.
        use_monotonic_time(reactor)
        reactor.callWhenRunning(self._start, reactor)
        reactor.run()
        if self.error is not None:
            print(f"error: {self.error}", file=sys.stderr)
            return 2
        return 1 if self.status is None else self.status

    def _start(self, reactor) -> None:
        from twisted.internet import defer

        from twisted_mdns.protocol import MDNSProtocol
        from twisted_mdns.querier import Querier
        from twisted_mdns.transport import InterfaceTransport

        protocol = MDNSProtocol()
        transport = InterfaceTransport(protocol, reactor)
        querier = Querier(transport, reactor)
        protocol.handlers.append(querier)

        async def session() -> None:
            try:
                transport.apply(self.interfaces)
                querier.interfaces_changed()
                if not transport.interfaces:
                    self.error = (
                        "cannot open port 5353 on "
                        + ", ".join(i.name for i in self.interfaces)
                        + " (use --verbose for the reason)"
                    )
                    return
                self.status = await self.work(querier, reactor)
            except Exception as e:  # never a traceback for the user
                self.error = f"{type(e).__name__}: {e}"
            finally:
                querier.stop()
                await transport.close()

        def stop(_: object) -> None:
            if reactor.running:
                reactor.stop()

        defer.ensureDeferred(session()).addBoth(stop)


def _sleep(reactor, seconds: float):
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


def cmd_browse(args: argparse.Namespace) -> int:
    from twisted_mdns.querier import ServiceListener, parse_service_type

    service_type = parse_service_type(args.type)
    interfaces = _selected_interfaces(args)
    found: dict = {}

    def keep(service, interface) -> None:
        found[(interface.index, service.name)] = service

    def drop(service, interface) -> None:
        found.pop((interface.index, service.name), None)

    async def work(querier, reactor) -> int:
        browser = querier.browse(
            service_type.text, ServiceListener(added=keep, removed=drop, updated=keep)
        )
        try:
            await _sleep(reactor, args.timeout)
        finally:
            browser.stop()
        return 0

    status = _Session(interfaces, work, args.verbose).run()
    if status == 2:
        return 2
    services = sorted(found.values(), key=lambda s: (s.interface.index, s.instance.lower()))
    for service in services:
        if args.json:
            print(json.dumps(service.to_json()), flush=True)
        else:
            txt = " ".join(
                k if v is None else f"{k}={v}" for k, v in service.txt_text().items()
            )
            print(
                f"{service.interface.name:<10} {service.instance:<24} {service.type:<14} "
                f"{service.host}:{service.port:<6} {','.join(service.addresses):<16} {txt}",
                flush=True,
            )
    return 0 if services else 1


def cmd_resolve(args: argparse.Namespace) -> int:
    from twisted_mdns.message import name_to_text
    from twisted_mdns.querier import parse_host_name

    labels = parse_host_name(args.name)
    shown = name_to_text(labels).rstrip(".")
    interfaces = _selected_interfaces(args)
    answers: dict = {}

    async def work(querier, reactor) -> int:
        answers.update(await querier.resolve_host(shown, timeout=args.timeout))
        return 0

    status = _Session(interfaces, work, args.verbose).run()
    if status == 2:
        return 2
    for iface, addresses in answers.items():
        if args.json:
            print(json.dumps({"interface": iface.name, "name": shown, "addresses": addresses}),
                  flush=True)
        else:
            print(f"{iface.name:<10} {shown}\t{' '.join(addresses)}", flush=True)
    return 0 if answers else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m twisted_mdns",
        description="Multicast DNS / DNS-SD for multi-homed hosts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("interfaces", help="show which interfaces mDNS would use and why")
    _add_iface_options(p)
    p.set_defaults(func=cmd_interfaces)
    p = sub.add_parser(
        "browse", help="list the services of a type, per interface (like avahi-browse)"
    )
    p.add_argument("type", metavar="TYPE", help="service type, e.g. _http._tcp")
    _add_query_options(p)
    p.set_defaults(func=cmd_browse)
    p = sub.add_parser(
        "resolve", help="resolve a .local host name, per interface (like avahi-resolve)"
    )
    p.add_argument("name", metavar="NAME", help="host name, e.g. radiod or radiod.local")
    _add_query_options(p)
    p.set_defaults(func=cmd_resolve)
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
