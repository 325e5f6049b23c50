"""
C{twistd mdns}: options and service maker.

Examples::

    twistd -n mdns --iface eth0 --hostname lab \\
        --service "Web|_http._tcp|8080|path=/"
    twistd -n mdns --exclude-iface wlan0 --services-dir /etc/mdns/services
    twistd -n mdns --browse _http._tcp --log-level debug

Bad values stop C{twistd} with a one-line error (C{usage.UsageError}); an
interface named with C{--iface} is checked here, before anything starts, so
"no such interface" names the interfaces that do exist.
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from typing import Sequence

from twisted.application import service
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    globalLogPublisher,
)
from twisted.python import usage

from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
    InterfaceValidationError,
)
from twisted_mdns.records import ServiceInfo, host_name

log = Logger()

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}

SERVICES_DIR_HELP = """\
Service files (--services-dir): one file per service, named *.service, INI
format:

    [service]
    name = My Web            ; instance name (required)
    type = _http._tcp        ; service type (required)
    port = 8080              ; (required)
    host = printer           ; optional target host (default: ours)
    subtypes = _printer      ; optional, comma-separated
    interfaces = eth0, wlan0 ; optional: publish only there

    [txt]
    path = /
    flag                     ; a key without value is a boolean attribute

A file with an error is reported with its path and line, and skipped; the
other files still load.
"""


class ServiceSpecError(ValueError):
    """
    A service description that cannot be used; the message says where.
    """


def parse_service_spec(spec: str) -> ServiceInfo:
    """
    Parse C{"INSTANCE|TYPE|PORT|key=value|key=value"} (TXT entries after the
    port; a bare C{key} is a boolean attribute).
    """
    parts = spec.split("|")
    if len(parts) < 3:
        raise ServiceSpecError(
            f"--service {spec!r}: expected INSTANCE|TYPE|PORT[|key=value...]"
        )
    instance, stype, port_text = parts[0].strip(), parts[1].strip(), parts[2].strip()
    try:
        port = int(port_text)
    except ValueError:
        raise ServiceSpecError(f"--service {spec!r}: port {port_text!r} is not a number") from None
    txt = []
    for item in parts[3:]:
        if not item:
            continue
        key, sep, value = item.partition("=")
        txt.append((key, value if sep else None))
    try:
        return ServiceInfo(instance, stype, port, tuple(txt))
    except ValueError as e:
        raise ServiceSpecError(f"--service {spec!r}: {e}") from None


def _line_of(path: str, pattern: str) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if re.search(pattern, line.strip(), re.IGNORECASE):
                    return n
    except OSError:
        pass
    return 0


def load_service_file(path: str) -> ServiceInfo:
    """
    Load one service file (see L{SERVICES_DIR_HELP}).

    @raise ServiceSpecError: C{"PATH:LINE: what is wrong"}.
    """
    parser = configparser.ConfigParser(allow_no_value=True, inline_comment_prefixes=(";", "#"))
    parser.optionxform = str  # TXT keys keep their case
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except configparser.ParsingError as e:
        lineno = e.errors[0][0] if getattr(e, "errors", None) else 0
        raise ServiceSpecError(f"{path}:{lineno}: cannot parse: {e.errors[0][1].strip() if e.errors else e}") from None
    except configparser.Error as e:
        lineno = getattr(e, "lineno", 0)
        raise ServiceSpecError(f"{path}:{lineno}: {e.message}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ServiceSpecError(f"{path}:0: cannot read: {e}") from None
    if not parser.has_section("service"):
        raise ServiceSpecError(f"{path}:1: no [service] section")
    sec = parser["service"]
    section_line = _line_of(path, r"^\[service\]")
    for key in ("name", "type", "port"):
        if not sec.get(key):
            raise ServiceSpecError(f"{path}:{section_line}: [service] needs {key} =")
    try:
        port = int(sec["port"])
    except ValueError:
        port_line = _line_of(path, r"^port\s*=")
        raise ServiceSpecError(
            f"{path}:{port_line}: port {sec['port']!r} is not a number"
        ) from None
    txt = []
    if parser.has_section("txt"):
        txt = [(k, v) for k, v in parser["txt"].items()]
    subtypes = tuple(s.strip() for s in (sec.get("subtypes") or "").split(",") if s.strip())
    interfaces = tuple(s.strip() for s in (sec.get("interfaces") or "").split(",") if s.strip())
    try:
        return ServiceInfo(
            sec["name"], sec["type"], port, tuple(txt),
            host=sec.get("host") or None,
            subtypes=subtypes,
            interfaces=interfaces or None,
        )
    except ValueError as e:
        text = str(e)
        m = re.search(r"'([^']+)'", text)
        line = _line_of(path, re.escape(m.group(1))) if m else 0
        raise ServiceSpecError(f"{path}:{line}: {text}") from None


def load_services_dir(directory: str) -> tuple[list[ServiceInfo], list[str]]:
    """
    Load every C{*.service} file; return the services and one error line
    per bad file (the good files still load).
    """
    services, errors = [], []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".service"):
            continue
        path = os.path.join(directory, entry)
        try:
            services.append(load_service_file(path))
        except ServiceSpecError as e:
            errors.append(str(e))
    return services, errors


class MDNSOptions(usage.Options):
    """
    The options, raising L{usage.UsageError} for bad values (for code that
    parses them itself); C{twistd} uses L{Options}.
    """

    synopsis = "[options]"
    longdesc = (
        "Multicast DNS responder and DNS-SD browser that is correct on "
        "multi-homed hosts: each interface answers with its own addresses."
    )

    def getUsage(self, width=None) -> str:
        # Twisted reflows longdesc into one paragraph; the service file
        # format is an example to copy, so it follows verbatim.
        return super().getUsage(width) + "\n" + SERVICES_DIR_HELP
    optFlags = [
        ["all-ifaces", "a", "Run on every up, multicast, IPv4 interface, virtual ones included."],
    ]
    optParameters = [
        ["hostname", "H", None, "Host name to claim, without .local (default: this machine's short name)."],
        ["services-dir", "d", None, "Directory of *.service files to publish (format below)."],
        ["log-level", "l", "info", "Least severe log level shown: debug, info, warn, error."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["iface"] = []
        self["exclude-iface"] = []
        self["service"] = []
        self["browse"] = []

    def opt_iface(self, value: str) -> None:
        """Run on this interface: a name (eth0), IPv4 address or index. Repeatable. Default: the safe default policy."""
        self["iface"].append(value)

    opt_i = opt_iface

    def opt_exclude_iface(self, value: str) -> None:
        """Never run on this interface (name, IPv4 address or index). Repeatable."""
        self["exclude-iface"].append(value)

    opt_x = opt_exclude_iface

    def opt_service(self, value: str) -> None:
        """Publish "INSTANCE|TYPE|PORT|key=value|..." (TXT entries after the port). Repeatable. Example: "Web|_http._tcp|8080|path=/"."""
        try:
            self["service"].append(parse_service_spec(value))
        except ServiceSpecError as e:
            raise usage.UsageError(str(e)) from None

    opt_s = opt_service

    def opt_browse(self, value: str) -> None:
        """Browse for this service type (e.g. _http._tcp) and log what is seen, per interface. Repeatable."""
        from twisted_mdns.records import _split_type

        try:
            _split_type(value)
        except ValueError as e:
            raise usage.UsageError(f"--browse: {e}") from None
        self["browse"].append(value)

    def postOptions(self) -> None:
        level = (self["log-level"] or "").lower()
        if level not in LEVELS:
            raise usage.UsageError(
                f"--log-level {self['log-level']!r}: choose one of {', '.join(LEVELS)}"
            )
        self["log-level"] = level
        if self["hostname"] is not None:
            try:
                host_name(self["hostname"])
            except ValueError as e:
                raise usage.UsageError(f"--hostname: {e}") from None
            if "." in self["hostname"].removesuffix(".local") or len(self["hostname"].encode()) > 63:
                raise usage.UsageError(
                    f"--hostname {self['hostname']!r}: one label of at most 63 bytes, e.g. 'lab'"
                )
            self["hostname"] = self["hostname"].removesuffix(".local")
        if self["iface"] and self["all-ifaces"]:
            raise usage.UsageError("--iface and --all-ifaces cannot be combined")
        self["policy"] = self.policy()
        from twisted_mdns.netif import SystemInterfaceEnumerator

        selection = self["policy"].select(SystemInterfaceEnumerator().interfaces())
        try:
            selection.raise_for_errors()
        except InterfaceValidationError as e:
            raise usage.UsageError(f"--iface: {e}") from None
        self["services"] = list(self["service"])
        self["service-errors"] = []
        if self["services-dir"]:
            directory = self["services-dir"]
            if not os.path.isdir(directory):
                raise usage.UsageError(f"--services-dir {directory!r}: not a directory")
            loaded, errors = load_services_dir(directory)
            self["services"] += loaded
            self["service-errors"] = errors

    def policy(self):
        if self["iface"]:
            policy = ExplicitInterfacePolicy(self["iface"])
        elif self["all-ifaces"]:
            policy = AllInterfacesPolicy()
        else:
            policy = DefaultInterfacePolicy()
        if self["exclude-iface"]:
            policy = ExcludingPolicy(policy, self["exclude-iface"])
        return policy


class Options(MDNSOptions):
    """
    The options as C{twistd mdns} parses them: a bad value ends the process
    with one line on stderr (C{twistd mdns: error: ...}) and status 2,
    rather than twistd's whole usage text followed by the error.
    """

    def parseOptions(self, options=None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            sys.stderr.write(f"twistd mdns: error: {e}\n")
            sys.stderr.flush()
            raise SystemExit(2) from None


class LogLevelService(service.Service):
    """
    Show only events at or above a level, once twistd's log observers exist
    (they are installed after C{makeService} runs, before services start).
    """

    def __init__(self, level: LogLevel) -> None:
        self.level = level
        self._wrapped: list = []

    def privilegedStartService(self) -> None:
        predicate = LogLevelFilterPredicate(defaultLogLevel=self.level)
        observers = list(getattr(globalLogPublisher, "_observers", []))
        for observer in observers:
            filtered = FilteringLogObserver(observer, [predicate])
            globalLogPublisher.removeObserver(observer)
            globalLogPublisher.addObserver(filtered)
            self._wrapped.append((observer, filtered))
        super().privilegedStartService()

    def stopService(self):
        for observer, filtered in self._wrapped:
            globalLogPublisher.removeObserver(filtered)
            globalLogPublisher.addObserver(observer)
        self._wrapped = []
        return super().stopService()


class _BrowseLogger:
    """
    Logs what a C{--browse} sees.
    """

    def __init__(self, service_type: str) -> None:
        self.type = service_type

    def _log(self, what: str, svc, interface) -> None:
        log.info(
            "browse {type}: {what} {name} on {iface}: {host}:{port} {addresses} {txt}",
            type=self.type, what=what, name=getattr(svc, "instance", svc),
            iface=getattr(interface, "name", interface), host=getattr(svc, "host", ""),
            port=getattr(svc, "port", ""), addresses=list(getattr(svc, "addresses", ())),
            txt=getattr(svc, "txt", {}),
        )

    def service_added(self, svc, interface) -> None:
        self._log("added", svc, interface)

    def service_removed(self, svc, interface) -> None:
        self._log("removed", svc, interface)

    def service_updated(self, svc, interface) -> None:
        self._log("updated", svc, interface)


class _Browsing(service.Service):
    def __init__(self, mdns, types: Sequence[str]) -> None:
        self.mdns = mdns
        self.types = list(types)
        self.browsers: list = []

    def startService(self) -> None:
        super().startService()
        for t in self.types:
            self.browsers.append(self.mdns.browse(t, _BrowseLogger(t)))

    def stopService(self):
        for b in self.browsers:
            b.stop()
        self.browsers = []
        return super().stopService()


def makeService(options: Options) -> service.MultiService:
    """
    The C{twistd mdns} service tree.
    """
    from twisted_mdns.clock import MonotonicTimeService
    from twisted_mdns.service import MDNSService

    top = service.MultiService()
    LogLevelService(LEVELS[options["log-level"]]).setServiceParent(top)
    # twistd mdns owns its process: its reactor runs on monotonic time, so
    # wall-clock steps move no timer and no duration (twisted_mdns.clock).
    MonotonicTimeService().setServiceParent(top)
    mdns = MDNSService(policy=options["policy"], hostname=options["hostname"])
    mdns.setServiceParent(top)
    for error in options["service-errors"]:
        log.error("service file skipped: {error}", error=error)
    for info in options["services"]:
        mdns.register(info).addErrback(
            lambda f, name=info.instance: log.failure("registering {name} failed", f, name=name)
        )
    if options["browse"]:
        _Browsing(mdns, options["browse"]).setServiceParent(top)
    return top
