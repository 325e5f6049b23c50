# -*- test-case-name: tests.test_tap,tests.test_avahi_services -*-
"""
Service descriptions from the command line and from files: C{--service
"INSTANCE|TYPE|PORT|k=v"}, our INI service files and avahi's XML ones
(L{twisted_mdns.avahi_services}), side by side in one directory.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass

from twisted_mdns.avahi_services import load_avahi_service_file, looks_like_avahi_file
from twisted_mdns.families import Family
from twisted_mdns.records import ServiceInfo


SERVICES_DIR_HELP = """\
Service files (--services-dir): files named *.service, each either an avahi
service file (XML, /etc/avahi/services/*.service as they are; %h is our host
name, followed when a conflict renames it) or one service in INI format:

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
other files still load.  What avahi files ask for that is not supported
(a family the service is limited to that mDNS does not run, other domains,
hosts outside .local, unknown elements) is left out with a warning naming
the file and line.
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
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # TXT keys keep their case
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


@dataclass(frozen=True)
class LoadedServices:
    """
    What a services directory yields.

    @ivar services: every service of every usable file, in file order.
    @ivar errors: C{"PATH:LINE: ..."}, one per file skipped.
    @ivar warnings: C{"PATH:LINE: ..."}, one per part of a file left out.
    """

    services: tuple[ServiceInfo, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def load_services_dir(
    directory: str, hostname: str | None = None, families: Family = Family.BOTH
) -> LoadedServices:
    """
    Load every C{*.service} file of C{directory}, avahi XML or INI (decided
    by the content, as the names are the same); a bad file is an error and
    the other files still load.

    @param hostname: what C{%h} in avahi files stands for at first; by
        default this machine's short name, as
        L{twisted_mdns.service.MDNSService} claims.  (Their services keep
        the name as written, L{ServiceInfo.name_template}, and follow the
        host name the responder claims.)
    @param families: the families mDNS runs, for avahi's C{protocol=}.
    """
    if hostname is None:
        from twisted_mdns.service import default_hostname

        hostname = default_hostname()
    services: list[ServiceInfo] = []
    errors: list[str] = []
    warnings: list[str] = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".service"):
            continue
        path = os.path.join(directory, entry)
        try:
            if looks_like_avahi_file(path):
                loaded = load_avahi_service_file(path, hostname, families)
                services += loaded.services
                warnings += loaded.warnings
            else:
                services.append(load_service_file(path))
        except ValueError as e:  # ServiceSpecError, AvahiServiceFileError
            errors.append(str(e))
    return LoadedServices(tuple(services), tuple(errors), tuple(warnings))
