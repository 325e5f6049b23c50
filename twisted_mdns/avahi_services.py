# -*- test-case-name: tests.test_avahi_services -*-
"""
avahi's static service files (C{/etc/avahi/services/*.service}, see
C{avahi.service(5)}), read as they are so that people moving from
avahi-daemon keep their configuration.

One file is a C{<service-group>}: one C{<name>} (C{%h} is the host name when
C{replace-wildcards="yes"}) shared by one or more C{<service>} elements,
each with a C{<type>}, C{<port>} and optionally C{<subtype>}s,
C{<host-name>}, C{<domain-name>} and C{<txt-record>}s.  Every C{<service>}
becomes one L{ServiceInfo} with the group's name.  A name with C{%h} keeps
it as the service's L{ServiceInfo.name_template}: when our host name is
renamed after a conflict (RFC 6762 §9, C{lab} to C{lab-2}), the responder
registers the service again as C{lab-2 web}, as avahi-daemon re-creates
its static services with C{%h} replaced anew.

What we do not do gets a warning naming the file and line, and that part is
left out: unknown elements and attributes, a domain other than C{local}, a
host name outside C{.local}.

C{protocol="ipv4"} or C{"ipv6"} asks avahi to publish a service over one
address family only.  Here a service's records are published on every
family mDNS runs (RFC 6762 §6.2 answers each family with the link's
addresses of both), so: mDNS running that family only, the service is
published as asked; not running it, the service is left out with a warning
(avahi would publish it nowhere); running both, it is published on both,
with a warning that the limit is not applied.  A
file that is not a well-formed service group is an error naming the file and
line; the caller skips it and loads the others.

The parser is expat with a hard size limit, and a document type declaration
is accepted only without an internal subset: avahi's own files name an
external DTD (never fetched), while entity declarations, the vehicle of
"billion laughs" memory bombs, are refused outright.
"""

from __future__ import annotations

import base64
import binascii
import os
import xml.parsers.expat
from dataclasses import dataclass, field
from typing import Callable

from twisted_mdns.constants import HOST_WILDCARD
from twisted_mdns.families import Family
from twisted_mdns.records import ServiceInfo, _split_type

#: Service files larger than this are refused unread (avahi's are < 2 KiB).
MAX_FILE_SIZE = 256 * 1024

#: Elements and their allowed attributes (avahi-service.dtd).
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "service-group": frozenset(),
    "name": frozenset({"replace-wildcards"}),
    "service": frozenset({"protocol"}),
    "type": frozenset(),
    "subtype": frozenset(),
    "domain-name": frozenset(),
    "host-name": frozenset(),
    "port": frozenset(),
    "txt-record": frozenset({"value-format"}),
}


class AvahiServiceFileError(ValueError):
    """
    A service file that cannot be used at all; the message is
    C{"PATH:LINE: what is wrong"}.
    """


@dataclass
class _Element:
    """
    One parsed element: what the code below needs, with its line.
    """

    tag: str
    attributes: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True)
class AvahiServiceFile:
    """
    What one file yields.

    @ivar services: one L{ServiceInfo} per supported C{<service>} element.
    @ivar warnings: C{"PATH:LINE: ..."} for each part left out.
    """

    path: str
    services: tuple[ServiceInfo, ...]
    warnings: tuple[str, ...]


def looks_like_avahi_file(path: str) -> bool:
    """
    Whether C{path} is XML (an avahi service file) rather than one of our
    INI service files: its first non-blank character is C{<}.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _parse(path: str, data: bytes) -> _Element:
    """
    Build the element tree with expat, refusing internal DTD subsets and
    entity declarations.

    @raise AvahiServiceFileError: not well-formed, or hostile.
    """
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Element] = []
    root: list[_Element] = []

    def refuse(what: str) -> None:
        raise AvahiServiceFileError(f"{path}:{parser.CurrentLineNumber}: {what}")

    def doctype(name: str, system_id: str | None, public_id: str | None, internal: int) -> None:
        if internal:
            refuse("a DOCTYPE with an internal subset is not accepted")

    def entity(*args: object) -> None:
        refuse("entity declarations are not accepted")

    def skipped(name: str, is_parameter_entity: int) -> None:
        refuse(f"entity reference &{name}; is not accepted")

    def start(tag: str, attributes: dict[str, str]) -> None:
        element = _Element(tag, dict(attributes), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    handlers: dict[str, Callable[..., None]] = {
        "StartDoctypeDeclHandler": doctype,
        "EntityDeclHandler": entity,
        "UnparsedEntityDeclHandler": entity,
        "SkippedEntityHandler": skipped,
        "StartElementHandler": start,
        "EndElementHandler": end,
        "CharacterDataHandler": text,
    }
    for event, handler in handlers.items():
        setattr(parser, event, handler)
    # External DTDs and parameter entities are never read.
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise AvahiServiceFileError(
            f"{path}:{e.lineno}: not well-formed XML: {xml.parsers.expat.ErrorString(e.code)}"
        ) from None
    return root[0]


class _Reader:
    """
    Turns one parsed file into services and warnings.
    """

    def __init__(self, path: str, hostname: str, families: Family = Family.BOTH) -> None:
        self.path = path
        self.hostname = hostname
        self.families = families
        self.warnings: list[str] = []

    def warn(self, element: _Element, what: str) -> None:
        self.warnings.append(f"{self.path}:{element.line}: {what}")

    def error(self, element: _Element, what: str) -> AvahiServiceFileError:
        return AvahiServiceFileError(f"{self.path}:{element.line}: {what}")

    def check_attributes(self, element: _Element) -> None:
        allowed = _ATTRIBUTES.get(element.tag, frozenset())
        for attribute in element.attributes:
            if attribute not in allowed:
                self.warn(element, f"<{element.tag} {attribute}=...> is not supported; ignored")

    def only(self, parent: _Element, tag: str, required: bool) -> _Element | None:
        found = [c for c in parent.children if c.tag == tag]
        if len(found) > 1:
            raise self.error(found[1], f"<{parent.tag}> has more than one <{tag}>")
        if not found:
            if required:
                raise self.error(parent, f"<{parent.tag}> needs a <{tag}>")
            return None
        self.check_attributes(found[0])
        return found[0]

    def group(self, root: _Element) -> list[ServiceInfo]:
        if root.tag != "service-group":
            raise self.error(root, f"the document element is <{root.tag}>, not <service-group>")
        self.check_attributes(root)
        for child in root.children:
            if child.tag not in ("name", "service"):
                self.warn(child, f"<{child.tag}> is not supported; ignored")
        name_element = self.only(root, "name", required=True)
        assert name_element is not None
        name, template = self.name(name_element)
        services = [c for c in root.children if c.tag == "service"]
        if not services:
            raise self.error(root, "<service-group> needs at least one <service>")
        out = []
        for element in services:
            info = self.service(element, name, template)
            if info is not None:
                out.append(info)
        return out

    def name(self, element: _Element) -> tuple[str, str | None]:
        """
        The group's name for our host name now, and its template (the
        name as written) when C{%h} is replaced in it, else C{None}.
        """
        name = element.text.strip()
        wildcards = element.attributes.get("replace-wildcards", "no")
        if wildcards not in ("yes", "no"):
            raise self.error(element, f"replace-wildcards={wildcards!r}: expected yes or no")
        template = None
        if wildcards == "yes" and HOST_WILDCARD in name:
            template = name
            name = name.replace(HOST_WILDCARD, self.hostname)
        if not name:
            raise self.error(element, "<name> is empty")
        return name, template

    def service(self, element: _Element, name: str, template: str | None = None) -> ServiceInfo | None:
        """
        One C{<service>}: a L{ServiceInfo}, or C{None} (with a warning) when
        it asks for something we do not do.
        """
        self.check_attributes(element)
        known = set(_ATTRIBUTES) - {"service-group", "name", "service"}
        for child in element.children:
            if child.tag not in known:
                self.warn(child, f"<{child.tag}> is not supported; ignored")
        protocol = element.attributes.get("protocol", "any")
        if protocol not in ("ipv4", "ipv6", "any"):
            raise self.error(element, f"protocol={protocol!r}: expected ipv4, ipv6 or any")
        type_element = self.only(element, "type", required=True)
        port_element = self.only(element, "port", required=True)
        assert type_element is not None and port_element is not None
        service_type = type_element.text.strip()
        try:
            _split_type(service_type)
        except ValueError as e:
            raise self.error(type_element, str(e)) from None
        port_text = port_element.text.strip()
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise self.error(port_element, f"port {port_text!r} is not a number 0-65535")
        if not self.family_allows(element, service_type, protocol):
            return None
        domain = self.only(element, "domain-name", required=False)
        if domain is not None and domain.text.strip().rstrip(".").lower() not in ("local", ""):
            self.warn(domain, f"{service_type}: domain {domain.text.strip()!r} is not supported "
                              "(only local); this service is not published")
            return None
        host = self.host(element, service_type)
        if host is False or host is True:
            return None
        subtypes = tuple(
            self.subtype(s, service_type) for s in element.children if s.tag == "subtype"
        )
        txt = [self.txt(t) for t in element.children if t.tag == "txt-record"]
        try:
            return ServiceInfo(
                name, service_type, int(port_text), tuple(txt),
                host=host or None, subtypes=subtypes, name_template=template,
            )
        except ValueError as e:
            raise self.error(element, str(e)) from None

    def family_allows(self, element: _Element, service_type: str, protocol: str) -> bool:
        """
        Whether a service limited by C{protocol} is published (see the
        module docstring), with a warning where what avahi would do differs.
        """
        if protocol == "any":
            return True
        wanted = Family.IPV4 if protocol == "ipv4" else Family.IPV6
        if wanted not in self.families:
            self.warn(element, f"{service_type}: protocol=\"{protocol}\" but mDNS runs "
                               f"{self.families.label} only; this service is not published")
            return False
        if self.families != wanted:
            self.warn(element, f"{service_type}: protocol=\"{protocol}\": published on IPv4 "
                               "and IPv6 (a service is not limited to one family here)")
        return True

    def host(self, element: _Element, service_type: str) -> str | None | bool:
        """
        The C{<host-name>} without C{.local}, C{None} for ours, or C{False}
        (after a warning) for a host we cannot point to.
        """
        found = self.only(element, "host-name", required=False)
        if found is None:
            return None
        host = found.text.strip().rstrip(".")
        labels = host.split(".")
        if len(labels) != 2 or labels[1].lower() != "local" or not labels[0]:
            self.warn(found, f"{service_type}: host-name {host!r} is not a name in .local "
                             "(not supported); this service is not published")
            return False
        return labels[0]

    def subtype(self, element: _Element, service_type: str) -> str:
        """
        avahi writes subtypes in full (C{_colour._sub._ipp._tcp}); a bare
        C{_colour} is accepted too.
        """
        self.check_attributes(element)
        text = element.text.strip()
        head, sep, tail = text.partition("._sub.")
        if sep and tail.rstrip(".").removesuffix(".local") != service_type:
            raise self.error(element, f"subtype {text!r} is not a subtype of {service_type}")
        if not head.startswith("_") or "." in head:
            raise self.error(element, f"subtype {text!r}: expected _name._sub.{service_type}")
        return head

    def txt(self, element: _Element) -> tuple[str, bytes | None]:
        self.check_attributes(element)
        text = element.text
        value_format = element.attributes.get("value-format", "text")
        key, sep, value = text.partition("=")
        if not sep:
            return key, None
        try:
            if value_format == "text":
                return key, value.encode("utf-8")
            if value_format == "binary-hex":
                return key, bytes.fromhex(value)
            if value_format == "binary-base64":
                return key, base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            raise self.error(element, f"txt-record {key!r}: not valid {value_format}") from None
        raise self.error(element, f"value-format={value_format!r}: expected text, "
                                  "binary-hex or binary-base64")


def load_avahi_service_file(
    path: str, hostname: str, families: Family = Family.BOTH
) -> AvahiServiceFile:
    """
    Read one avahi service file.

    @param hostname: what C{%h} stands for (our host name, without
        C{.local}) until the host is renamed (each such service keeps its
        L{ServiceInfo.name_template}).
    @param families: the families mDNS runs, for C{protocol=} (see the
        module docstring).
    @raise AvahiServiceFileError: C{"PATH:LINE: ..."} when the file cannot
        be used; parts it leaves out are in the result's C{warnings}.
    """
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_SIZE:
            raise AvahiServiceFileError(
                f"{path}:0: {size} bytes; a service file has at most {MAX_FILE_SIZE}"
            )
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise AvahiServiceFileError(f"{path}:0: cannot read: {e.strerror or e}") from None
    reader = _Reader(path, hostname, families)
    services = reader.group(_parse(path, data))
    return AvahiServiceFile(path, tuple(services), tuple(reader.warnings))
