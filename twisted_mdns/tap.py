# -*- test-case-name: tests.test_tap,tests.test_twistd_logs -*-
"""
C{twistd mdns}: options and service maker.

Examples::

    twistd -n mdns --iface eth0 --hostname lab \\
        --service "Web|_http._tcp|8080|path=/"
    twistd -n mdns --exclude-iface wlan0 --services-dir /etc/mdns/services
    twistd -n mdns --browse _http._tcp --log-level debug

Bad values stop C{twistd} with a one-line error (C{twisted.python.usage.UsageError}); an
interface named with C{--iface} is checked here, before anything starts, so
"no such interface" names the interfaces that do exist.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_mdns.families import Family
from twisted_mdns.interfaces import IInterfacePolicy
from twisted_mdns.logfilter import LEVELS, LogLevelService
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
    InterfaceValidationError,
    validate_interface,
)
from twisted_mdns.proxy.options import ProxyOptions, add_proxy  # Discovery Proxy (RFC 8766)
from twisted_mdns.records import host_name
from twisted_mdns.service_files import (  # noqa: F401 (re-exported)
    SERVICES_DIR_HELP,
    LoadedServices,
    ServiceSpecError,
    load_service_file,
    load_services_dir,
    parse_service_spec,
)

if TYPE_CHECKING:
    from twisted_mdns.querier import ResolvedService
    from twisted_mdns.service import MDNSService

log = Logger()


class MDNSOptions(ProxyOptions, usage.Options):
    """
    The options, raising C{usage.UsageError} for bad values (for code that
    parses them itself); C{twistd} uses L{Options}.
    """

    synopsis = "[options]"
    longdesc = (
        "Multicast DNS responder and DNS-SD browser that is correct on "
        "multi-homed hosts: each interface answers with its own addresses."
    )

    def getUsage(self, width: int | None = None) -> str:
        # Twisted reflows longdesc into one paragraph; the service file
        # format is an example to copy, so it follows verbatim.
        return str(super().getUsage(width)) + "\n" + SERVICES_DIR_HELP

    optFlags = [
        ["all-ifaces", "a", "Run on every up, multicast interface with an address of the families in use, virtual ones included."],
        ["ipv4-only", "4", "Use IPv4 only (default: IPv4 and IPv6, each on the links that have addresses of it)."],
        ["ipv6-only", "6", "Use IPv6 only."],
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
        """Run on this interface: a name (eth0), IPv4 or IPv6 address, or index. Repeatable. Default: the safe default policy."""
        self["iface"].append(value)

    opt_i = opt_iface

    def opt_exclude_iface(self, value: str) -> None:
        """Never run on this interface (name, IPv4 or IPv6 address, or index). Repeatable."""
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
        try:
            self["families"] = Family.from_options(self["ipv4-only"], self["ipv6-only"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        if self["iface"] and self["all-ifaces"]:
            raise usage.UsageError("--iface and --all-ifaces cannot be combined")
        self["policy"] = self.policy()
        self.check_ifaces()
        self.proxy_post_options(self._proxy_links())  # Discovery Proxy (RFC 8766)
        self["services"] = list(self["service"])
        self["service-errors"] = []
        self["service-warnings"] = []
        if self["services-dir"]:
            directory = self["services-dir"]
            if not os.path.isdir(directory):
                raise usage.UsageError(f"--services-dir {directory!r}: not a directory")
            loaded = load_services_dir(directory, self["hostname"], self["families"])
            self["services"] += loaded.services
            self["service-errors"] = list(loaded.errors)
            self["service-warnings"] = list(loaded.warnings)

    def _proxy_links(self) -> list[NetworkInterface] | None:
        """
        The links mDNS will run on, for checking C{--proxy-domain}; C{None}
        (nothing to check) when no proxy is asked for, so that a plain
        start does not run the policy here as well as in the service.
        """
        if not self["proxy-listen"]:
            return None
        from twisted_mdns.netif import SystemInterfaceEnumerator

        selection = self["policy"].select(SystemInterfaceEnumerator().interfaces())
        return list(selection.selected)

    def check_ifaces(self) -> None:
        """
        Refuse an unusable C{--iface} now, with the interfaces that exist.

        Each spec is validated on its own rather than by running the policy:
        the policy's decisions are logged once, when the service starts, and
        this runs before twistd's logging is set up.
        """
        if not self["iface"]:
            return
        from twisted_mdns.netif import SystemInterfaceEnumerator

        interfaces = SystemInterfaceEnumerator().interfaces()
        for spec in self["iface"]:
            try:
                validate_interface(spec, interfaces)
            except InterfaceValidationError as e:
                raise usage.UsageError(f"--iface: {e}") from None

    def policy(self) -> IInterfacePolicy:
        """
        The policy the interface options ask for.
        """
        policy: IInterfacePolicy
        families = self.get("families", Family.BOTH)
        if self["iface"]:
            policy = ExplicitInterfacePolicy(self["iface"], families=families)
        elif self["all-ifaces"]:
            policy = AllInterfacesPolicy(families=families)
        else:
            policy = DefaultInterfacePolicy(families=families)
        if self["exclude-iface"]:
            policy = ExcludingPolicy(policy, self["exclude-iface"])
        return policy


class Options(MDNSOptions):
    """
    The options as C{twistd mdns} parses them: a bad value ends the process
    with one line on stderr (C{twistd mdns: error: ...}) and status 2,
    rather than twistd's whole usage text followed by the error.
    """

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            sys.stderr.write(f"twistd mdns: error: {e}\n")
            sys.stderr.flush()
            raise SystemExit(2) from None


class _BrowseLogger:
    """
    Logs what a C{--browse} sees.
    """

    def __init__(self, service_type: str) -> None:
        self.type = service_type

    def _log(self, what: str, svc: ResolvedService, interface: NetworkInterface) -> None:
        log.info(
            "browse {type}: {what} {name} on {iface}: {host}:{port} {addresses} {txt}",
            type=self.type, what=what, name=getattr(svc, "instance", svc),
            iface=getattr(interface, "name", interface), host=getattr(svc, "host", ""),
            port=getattr(svc, "port", ""), addresses=list(getattr(svc, "addresses", ())),
            txt=getattr(svc, "txt", {}),
        )

    def service_added(self, svc: ResolvedService, interface: NetworkInterface) -> None:
        self._log("added", svc, interface)

    def service_removed(self, svc: ResolvedService, interface: NetworkInterface) -> None:
        self._log("removed", svc, interface)

    def service_updated(self, svc: ResolvedService, interface: NetworkInterface) -> None:
        self._log("updated", svc, interface)


class _Browsing(service.Service):
    """
    The C{--browse} browsers, started and stopped with the service.
    """

    def __init__(self, mdns: MDNSService, types: Sequence[str]) -> None:
        self.mdns = mdns
        self.types = list(types)
        self.browsers: list[Any] = []

    def startService(self) -> None:
        super().startService()
        for t in self.types:
            self.browsers.append(self.mdns.browse(t, _BrowseLogger(t)))

    def stopService(self) -> defer.Deferred[None] | None:
        for b in self.browsers:
            b.stop()
        self.browsers = []
        return super().stopService()


class _InterfaceReport(service.Service):
    """
    Logs, once at start-up, why each interface left out was left out (the
    policy logs its choice in one line at info, the reasons at debug).
    """

    def __init__(self, mdns: MDNSService) -> None:
        self.mdns = mdns

    def startService(self) -> None:
        super().startService()
        selection = self.mdns.selection
        if selection is None:
            return
        for iface, why in selection.excluded:
            log.info("{name} excluded: {reason}", name=iface.name, reason=why)


def _registration_failed(failure: Failure, name: str) -> None:
    log.failure("registering {name} failed", failure, name=name)


def makeService(options: MDNSOptions) -> service.MultiService:
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
    mdns = MDNSService(
        policy=options["policy"], hostname=options["hostname"],
        families=options.get("families", Family.BOTH),
    )
    mdns.setServiceParent(top)
    _InterfaceReport(mdns).setServiceParent(top)
    for error in options["service-errors"]:
        log.error("service file skipped: {error}", error=error)
    for warning in options.get("service-warnings", ()):
        log.warn("service file: {warning}", warning=warning)
    for info in options["services"]:
        mdns.register(info).addErrback(_registration_failed, info.instance)
    if options["browse"]:
        _Browsing(mdns, options["browse"]).setServiceParent(top)
    add_proxy(options, mdns)  # Discovery Proxy (RFC 8766), if asked for
    return top
