# -*- test-case-name: tests.test_cli_publish -*-
"""
C{python -m twisted_mdns publish}: publish a service (like
C{avahi-publish -s}) or an address record (like C{avahi-publish -a}) until
interrupted; SIGINT or SIGTERM sends goodbyes (RFC 6762 §10.1, TTL 0) on
every interface before the process exits::

    python -m twisted_mdns publish "My Web" _http._tcp 8080 path=/ --subtype _printer
    python -m twisted_mdns publish --address printer 10.0.0.7
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from twisted_mdns.cli.common import (
    UsageError,
    add_iface_options,
    add_verbose_option,
    log_to_stderr,
    families_from_args,
    policy_for,
    selected_interfaces,
    stop_reactor,
)
from twisted_mdns.records import ServiceInfo, host_name


def service_from_args(args: argparse.Namespace) -> ServiceInfo:
    """
    C{NAME TYPE PORT [k=v ...]} plus C{--subtype} and C{--host}.

    @raise UsageError: naming the bad argument.
    """
    if len(args.args) < 3:
        raise UsageError("publish needs NAME TYPE PORT [key=value ...] (or --address NAME ADDRESS)")
    name, service_type, port_text, *txt_args = args.args
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"port {port_text!r} is not a number") from None
    txt = []
    for item in txt_args:
        key, sep, value = item.partition("=")
        txt.append((key, value if sep else None))
    subtypes = tuple(s.split("._sub.", 1)[0] for s in args.subtype)
    host = None
    if args.host is not None:
        host = args.host.rstrip(".").removesuffix(".local")
        if not host or "." in host:
            raise UsageError(f"--host {args.host!r}: a host name in .local, e.g. printer.local")
    try:
        return ServiceInfo(name, service_type, port, tuple(txt), host=host, subtypes=subtypes)
    except ValueError as e:
        raise UsageError(str(e)) from None


def address_from_args(args: argparse.Namespace) -> tuple[str, str]:
    """
    C{--address NAME ADDRESS}: the host name (without C{.local}) and an
    IPv4 or IPv6 address (an A or an AAAA record, as C{avahi-publish -a}).
    """
    if len(args.args) != 2:
        raise UsageError("publish --address needs NAME ADDRESS")
    name, address = args.args
    try:
        host_name(name)
    except ValueError as e:
        raise UsageError(f"name {name!r}: {e}") from None
    name = name.rstrip(".").removesuffix(".local")
    if not name or "." in name:
        raise UsageError(f"name {name!r}: one label in .local, e.g. printer")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"address {address!r} is not an IP address") from None
    if getattr(parsed, "scope_id", None):
        raise UsageError(f"address {address!r}: give it without %zone "
                         "(it is published on every selected link)")
    return name, str(parsed)


class _Publishing:
    """
    One publishing run: start the service, register, print what was
    established, and on shutdown say goodbye before the reactor stops.
    """

    def __init__(self, args: argparse.Namespace, reactor: Any) -> None:
        self.args = args
        self.reactor = reactor
        self.status = 0
        self.mdns: Any = None
        self.address: Any = None

    def start(self) -> None:
        from twisted_mdns.service import MDNSService

        args = self.args
        policy = policy_for(args)
        # An address record is published on its own, as avahi-publish -a
        # asks the daemon for that record only.
        self.mdns = MDNSService(
            policy=policy, hostname=args.hostname, reactor=self.reactor,
            publish_host=not args.address, families=families_from_args(args),
        )
        try:
            self.mdns.startService()
        except Exception as e:
            self.fail(f"{e}")
            return
        if args.address:
            from twisted_mdns.address_publisher import AddressPublisher

            name, address = address_from_args(args)
            self.address = AddressPublisher(self.mdns.transport, self.reactor, name, address)
            self.mdns.protocol.handlers.append(self.address)
            d = self.address.start()
            d.addCallback(lambda _: self.established(f"{name}.local", f"-> {address}"))
        else:
            d = self.mdns.register(service_from_args(args))
            d.addCallback(lambda info: self.established(info.instance, ""))
        d.addErrback(lambda f: self.fail(f.getErrorMessage()))

    def established(self, name: str, detail: str) -> None:
        where = ", ".join(i.name for i in self.mdns.transport.interfaces.values())
        detail = f" {detail}" if detail else ""
        print(f"Established under name '{name}'{detail} on {where}", flush=True)

    def fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.status = 2 if self.status == 0 else self.status
        stop_reactor(self.reactor)

    def stop(self) -> Any:
        if self.address is not None:
            self.address.stop()
        if self.mdns is not None and self.mdns.running:
            return self.mdns.stopService()
        return None


def cmd_publish(args: argparse.Namespace) -> int:
    """
    Publish until interrupted; 0 after a clean interrupt, 2 on bad
    arguments or when the publication failed.
    """
    # Check everything before the reactor runs: a bad argument is one line.
    if args.address:
        address_from_args(args)
        if args.subtype or args.host:
            raise UsageError("--subtype and --host go with a service, not --address")
    else:
        service_from_args(args)
    if args.hostname is not None:
        try:
            host_name(args.hostname)
        except ValueError as e:
            raise UsageError(f"--hostname: {e}") from None
    selected_interfaces(args)
    from twisted.internet import reactor

    from twisted_mdns.clock import use_monotonic_time

    log_to_stderr(args.verbose)
    # Our own process: wall-clock steps must move no timer (twisted_mdns.clock).
    use_monotonic_time(reactor)
    run = _Publishing(args, reactor)
    reactor.callWhenRunning(run.start)
    reactor.addSystemEventTrigger("before", "shutdown", run.stop)
    reactor.run()
    return run.status


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "publish",
        help="publish a service or an address until interrupted (like avahi-publish)",
        description="publish NAME TYPE PORT [key=value ...] | publish --address NAME ADDRESS",
    )
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="NAME TYPE PORT [key=value ...], or with --address: NAME ADDRESS")
    p.add_argument("-a", "--address", action="store_true",
                   help="publish an address record NAME.local -> ADDRESS (like avahi-publish -a)")
    p.add_argument("--subtype", action="append", default=[], metavar="SUBTYPE",
                   help="also publish under this subtype (_printer or _printer._sub._http._tcp); "
                        "repeatable")
    p.add_argument("--host", metavar="HOST",
                   help="the service runs on this host (HOST.local) rather than this machine")
    p.add_argument("--hostname", metavar="NAME",
                   help="the host name this machine claims (default: its short name)")
    add_iface_options(p, json_option=False)
    add_verbose_option(p)
    p.set_defaults(func=cmd_publish)
