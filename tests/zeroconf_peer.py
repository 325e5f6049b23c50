"""
python-zeroconf as an independent mDNS peer, driven from the command line.

The interop tests run this module as a separate process inside a network
namespace (see L{tests.peers}), so that python-zeroconf owns its own sockets
and threads and judges our responder and querier from the outside::

    ip netns exec NS python3 -m tests.zeroconf_peer resolve-service \\
        --interface 10.1.0.1 --type _http._tcp --instance "Peer Web"

Every command binds python-zeroconf to one IPv4 address only
(C{Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)}) and writes JSON
Lines to stdout, one object per line, each with an C{"event"} key and the
seconds C{"elapsed"} since the process started:

    - one-shot commands (C{resolve-service}, C{resolve-host}, C{browse})
      end with one C{{"event": "result", ...}} line and exit 0;
    - long-running commands (C{publish}, C{browse --follow}) report events as
      they happen and stop on SIGTERM/SIGINT, on stdin EOF (with
      C{--exit-on-eof}) or after C{--lifetime} seconds, whichever comes
      first, then tidy up (a publisher unregisters, which sends goodbyes) and
      print C{{"event": "stopped"}}.

Failures print C{{"event": "error", "error": NAME, "message": TEXT}} and exit
with status 3.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time
from typing import Any

_STARTED = time.monotonic()
_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """
    Write one JSON line to stdout and flush it at once (the harness reads
    the output while we run).
    """
    record = {"event": event, "elapsed": round(time.monotonic() - _STARTED, 3)}
    record.update(fields)
    with _print_lock:
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        sys.stdout.flush()


def service_type(text: str) -> str:
    """
    C{_http._tcp}, C{_http._tcp.local} or C{_http._tcp.local.} as the fully
    qualified C{_http._tcp.local.} that python-zeroconf wants.
    """
    text = text.rstrip(".")
    if not text.endswith(".local"):
        text += ".local"
    return text + "."


def host_name(text: str) -> str:
    """
    C{peerhost} or C{peerhost.local[.]} as C{peerhost.local.}.
    """
    return service_type(text)


def instance_of(full_name: str, type_: str) -> str:
    """
    The instance label of C{full_name} (C{Peer Web} of
    C{Peer Web._http._tcp.local.}).
    """
    if full_name.endswith("." + type_):
        return full_name[: -len(type_) - 1]
    return full_name


def _decode(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "backslashreplace")


def describe(info: Any, type_: str) -> dict[str, Any]:
    """
    A resolved C{ServiceInfo} as plain JSON data (C{addresses} holds the
    IPv4 ones, C{addresses_v6} the others).
    """
    from zeroconf import IPVersion

    return {
        "name": info.name,
        "instance": instance_of(info.name, type_),
        "type": type_,
        "server": info.server,
        "port": info.port,
        "priority": info.priority,
        "weight": info.weight,
        "addresses": sorted(info.parsed_addresses(IPVersion.V4Only)),
        "addresses_v6": sorted(info.parsed_addresses(IPVersion.V6Only)),
        "txt": {
            _decode(key): _decode(value)
            for key, value in (info.properties or {}).items()
        },
        "host_ttl": info.host_ttl,
        "other_ttl": info.other_ttl,
    }


def open_zeroconf(interface: str) -> Any:
    """
    A C{Zeroconf} bound to the single IPv4 address C{interface}.
    """
    from zeroconf import IPVersion, Zeroconf

    return Zeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)


class StopSignal:
    """
    Set by SIGTERM/SIGINT, by stdin EOF (if asked) or by the lifetime
    running out; C{reason} says which.
    """

    def __init__(self, lifetime: float, watch_stdin: bool) -> None:
        self.reason: str | None = None
        self._event = threading.Event()
        self._deadline = time.monotonic() + lifetime
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if watch_stdin:
            threading.Thread(target=self._watch_stdin, daemon=True).start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.set(signal.Signals(signum).name)

    def _watch_stdin(self) -> None:
        try:
            while sys.stdin.buffer.read1(4096):
                pass
        except (OSError, ValueError):
            pass
        self.set("stdin-eof")

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """
        Wait until stopped, or at most C{timeout} seconds; whether stopped.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while not self._event.is_set():
            now = time.monotonic()
            if now >= self._deadline:
                self.set("lifetime")
                break
            if end is not None and now >= end:
                break
            limit = self._deadline if end is None else min(self._deadline, end)
            # Short waits so that signal handlers run promptly.
            self._event.wait(min(limit - now, 0.2))
        return self._event.is_set()


def cmd_resolve_service(args: argparse.Namespace) -> int:
    type_ = service_type(args.type)
    name = f"{args.instance}.{type_}"
    zc = open_zeroconf(args.interface)
    try:
        info = zc.get_service_info(type_, name, timeout=int(args.timeout * 1000))
        if info is None:
            emit("result", found=False, name=name)
        else:
            emit("result", found=True, name=name, service=describe(info, type_))
    finally:
        zc.close()
    return 0


def cmd_resolve_host(args: argparse.Namespace) -> int:
    from zeroconf import AddressResolverIPv4

    name = host_name(args.hostname)
    zc = open_zeroconf(args.interface)
    try:
        resolver = AddressResolverIPv4(name)
        found = resolver.request(zc, int(args.timeout * 1000))
        emit(
            "result",
            found=bool(found),
            hostname=name,
            addresses=sorted(resolver.parsed_addresses()) if found else [],
        )
    finally:
        zc.close()
    return 0


def cmd_browse(args: argparse.Namespace) -> int:
    """
    Browse C{--type}; resolve each instance found.  One-shot: stop after
    C{--timeout} seconds, or as soon as C{--expect} instances are resolved.
    With C{--follow}: report C{added}/C{updated}/C{removed}/C{resolved}
    events until stopped.
    """
    from zeroconf import ServiceBrowser, ServiceStateChange

    type_ = service_type(args.type)
    stop = StopSignal(args.lifetime if args.follow else args.timeout, args.exit_on_eof)
    zc = open_zeroconf(args.interface)
    pending: "queue.Queue[str]" = queue.Queue()
    resolved: dict[str, dict[str, Any]] = {}
    present: set[str] = set()

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        # Runs on python-zeroconf's loop thread: never block here.
        kind = {
            ServiceStateChange.Added: "added",
            ServiceStateChange.Updated: "updated",
            ServiceStateChange.Removed: "removed",
        }[state_change]
        if args.follow:
            emit(kind, name=name, instance=instance_of(name, type_))
        if kind == "removed":
            present.discard(name)
        else:
            present.add(name)
            pending.put(name)

    browser = ServiceBrowser(zc, type_, handlers=[on_change])
    if args.follow:
        emit("browsing", type=type_, interface=args.interface)
    try:
        while not stop.is_set():
            try:
                name = pending.get(timeout=0.1)
            except queue.Empty:
                stop.wait(0)
                continue
            info = zc.get_service_info(type_, name, timeout=int(args.resolve_timeout * 1000))
            if info is not None:
                resolved[name] = describe(info, type_)
                if args.follow:
                    emit("resolved", service=resolved[name])
            if args.expect and not args.follow:
                if sum(1 for n in present if n in resolved) >= args.expect:
                    break
    finally:
        browser.cancel()
        zc.close()
    services = [resolved[n] for n in sorted(present) if n in resolved]
    unresolved = sorted(n for n in present if n not in resolved)
    if args.follow:
        emit("stopped", reason=stop.reason, services=services, unresolved=unresolved)
    else:
        emit("result", services=services, unresolved=unresolved)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from zeroconf import NonUniqueNameException, ServiceInfo

    type_ = service_type(args.type)
    requested = f"{args.instance}.{type_}"
    addresses = args.address or [args.interface]
    txt: dict[str, str | None] = {}
    for item in args.txt or []:
        key, sep, value = item.partition("=")
        txt[key] = value if sep else None
    info = ServiceInfo(
        type_,
        requested,
        port=args.port,
        properties=txt,
        server=host_name(args.hostname),
        parsed_addresses=addresses,
    )
    stop = StopSignal(args.lifetime, args.exit_on_eof)
    zc = open_zeroconf(args.interface)
    try:
        try:
            zc.register_service(info, allow_name_change=not args.no_rename)
        except NonUniqueNameException as e:
            emit("error", error="NonUniqueNameException", message=str(e), name=requested)
            return 3
        emit(
            "registered",
            name=info.name,
            instance=instance_of(info.name, type_),
            requested=requested,
            renamed=info.name != requested,
            server=info.server,
            port=info.port,
            addresses=sorted(info.parsed_addresses()),
        )
        stop.wait()
        zc.unregister_service(info)
        emit("unregistered", name=info.name)
    finally:
        zc.close()
    emit("stopped", reason=stop.reason)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.zeroconf_peer",
        description="python-zeroconf as a test peer (JSON Lines on stdout).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--interface", required=True, help="the IPv4 address to bind to")
        p.add_argument("--timeout", type=float, default=3.0, help="seconds")

    def lifetime(p: argparse.ArgumentParser) -> None:
        p.add_argument("--lifetime", type=float, default=300.0,
                       help="stop by itself after this many seconds")
        p.add_argument("--exit-on-eof", action="store_true",
                       help="stop when stdin reaches end of file")

    p = sub.add_parser("resolve-service", help="resolve one service instance")
    common(p)
    p.add_argument("--type", required=True)
    p.add_argument("--instance", required=True)
    p.set_defaults(func=cmd_resolve_service)

    p = sub.add_parser("resolve-host", help="resolve a host name to IPv4 addresses")
    common(p)
    p.add_argument("--hostname", required=True)
    p.set_defaults(func=cmd_resolve_host)

    p = sub.add_parser("browse", help="browse a service type and resolve what is found")
    common(p)
    lifetime(p)
    p.add_argument("--type", required=True)
    p.add_argument("--expect", type=int, default=0,
                   help="stop early once this many instances are resolved")
    p.add_argument("--resolve-timeout", type=float, default=2.0)
    p.add_argument("--follow", action="store_true",
                   help="keep browsing and report events until stopped")
    p.set_defaults(func=cmd_browse)

    p = sub.add_parser("publish", help="register one service until stopped")
    common(p)
    lifetime(p)
    p.add_argument("--type", required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--txt", action="append", help="KEY=VALUE, or KEY alone")
    p.add_argument("--hostname", default="zeroconf-peer.local.")
    p.add_argument("--address", action="append",
                   help="an address for the host name (default: --interface)")
    p.add_argument("--no-rename", action="store_true",
                   help="fail on a name conflict instead of renaming")
    p.set_defaults(func=cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # report, don't hide behind a traceback only
        emit("error", error=type(e).__name__, message=str(e))
        raise


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        sys.exit(3)
