# -*- test-case-name: tests.test_naming -*-
"""
The rules for the names we publish and look for, one validator per concept.

Both halves of the library take names from users: the responder publishes a
L{twisted_mdns.records.ServiceInfo} and its host name, the querier browses a
service type and resolves host and instance names.  Each kind of name is
checked here, once, so that what one half accepts the other accepts too:

 - service types (RFC 6763 §7): C{_name._tcp} or C{_name._udp}, the name 1 to
   15 letters, digits or hyphens; compared case-insensitively, so
   C{_HTTP._TCP} is accepted and normalised to C{_http._tcp} (as avahi and
   python-zeroconf users expect);
 - subtypes (RFC 6763 §7.1): one label of 1 to 63 bytes (an underscore is
   usual, not required);
 - instance names (RFC 6763 §4.1.1): 1 to 63 bytes of UTF-8, dots and
   spaces allowed, no ASCII control characters;
 - host names (RFC 6762 §16, RFC 1035 §2.3.4): labels of 1 to 63 bytes, the
   whole name, C{.local} included, at most 255 bytes on the wire.

Every validator raises C{ValueError} with a message saying what the name
must look like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twisted_mdns.constants import MAX_LABEL, MAX_NAME, MAX_SERVICE_NAME
from twisted_mdns.message import Name, join_name, name_from_text, name_key

#: The domain of multicast DNS (RFC 6762 §3).
LOCAL = (b"local",)

#: RFC 6763 §7 with RFC 6335 §5.1: letters, digits and hyphens.
_SERVICE_NAME = re.compile(rb"^[A-Za-z0-9-]+$")
#: What is seen on real networks besides (C{_nvstream_dbd._tcp}): browsing
#: accepts it, as python-zeroconf's non-strict check does.
_SEEN_SERVICE_NAME = re.compile(rb"^[A-Za-z0-9_-]+$")
_PROTOCOLS = (b"_tcp", b"_udp")
_SUB = b"_sub"


@dataclass(frozen=True)
class ServiceType:
    """
    A validated service type, normalised to lower case.

    @ivar text: C{_http._tcp}, or C{_printer._sub._http._tcp} for a subtype.
    @ivar ptr_name: the name whose PTR records list the instances.
    @ivar base: C{_http._tcp.local}: the name the instances live under.
    """

    text: str
    ptr_name: Name
    base: Name

    @property
    def base_text(self) -> str:
        """
        C{_http._tcp} (without the subtype).
        """
        return ".".join(label.decode("ascii") for label in self.base[:-1])


def _without_local(labels: Name) -> Name:
    if labels and name_key(labels[-1:]) == LOCAL:
        return labels[:-1]
    return labels


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def subtype_label(subtype: str | bytes) -> bytes:
    """
    Check a subtype (RFC 6763 §7.1: "_printer"), one label of 1 to 63 bytes.

    @return: the label as bytes, case kept (DNS compares it
        case-insensitively anyway).
    @raise ValueError: empty, over 63 bytes, or holding a dot (it would be
        two labels in text form).
    """
    raw = subtype if isinstance(subtype, bytes) else str(subtype).encode("utf-8")
    if not raw or len(raw) > MAX_LABEL or b"." in raw:
        raise ValueError(f"subtype {subtype!r} must be one label of 1 to 63 bytes")
    return raw


def service_type(text: str, subtype_allowed: bool = True, strict: bool = True) -> ServiceType:
    """
    Validate and normalise a service type: C{_http._tcp}, C{_http._tcp.local}
    (a trailing dot allowed) or C{_printer._sub._http._tcp} for a subtype.

    RFC 6763 §7: "the first label ... is an underscore character followed by
    the Service Name" of 1 to 15 letters, digits and hyphens (RFC 6335
    §5.1); the second is C{_tcp} or C{_udp}.  Both are case-insensitive
    and come back in lower case.

    @param subtype_allowed: whether C{_sub._sub._http._tcp} is accepted (to
        browse a subtype); a published service names its subtypes apart.
    @param strict: what we publish keeps to RFC 6763 §7 (C{True}); what we
        browse (C{False}) may also hold underscores, because devices
        announce such types (C{_nvstream_dbd._tcp}) and a user who saw one
        in C{browse --all-types} must be able to browse it.  Everything
        else (shape, length, protocol, case) is checked the same way.
    @raise ValueError: with a message saying what the type must look like.
    """
    if not isinstance(text, str) or not text.strip().rstrip("."):
        raise ValueError("service type must not be empty")
    labels = _without_local(name_from_text(text.strip()))
    sub: Name = ()
    if len(labels) == 4 and labels[1].lower() == _SUB:
        if not subtype_allowed:
            raise ValueError(f"service type {text!r} must not name a subtype here")
        sub = (subtype_label(labels[0]), _SUB)
        labels = labels[2:]
    if len(labels) != 2 or labels[1].lower() not in _PROTOCOLS or not labels[0].startswith(b"_"):
        raise ValueError(f"service type {text!r} must look like _name._tcp or _name._udp")
    service = labels[0][1:]
    if not 1 <= len(service) <= MAX_SERVICE_NAME:
        raise ValueError(f"service name in {text!r} must be 1 to 15 characters")
    if not (_SERVICE_NAME if strict else _SEEN_SERVICE_NAME).match(service):
        allowed = "letters, digits and hyphens" + ("" if strict else " (or underscores)")
        raise ValueError(f"service name in {text!r} must hold only {allowed}")
    base = (labels[0].lower(), labels[1].lower())
    shown = ".".join(x.decode("utf-8", "replace") for x in (*sub, *base))
    base_name = join_name(base, "local")
    return ServiceType(shown, join_name(sub, base_name), base_name)


def instance_label(instance: str) -> str:
    """
    Check an instance name (RFC 6763 §4.1.1): 1 to 63 bytes of UTF-8, any
    characters (dots and spaces too) but ASCII control characters.

    @raise ValueError: empty, too long, or with a control character.
    """
    if not isinstance(instance, str) or not instance:
        raise ValueError("instance name must not be empty")
    if len(instance.encode("utf-8")) > MAX_LABEL:
        raise ValueError(f"instance name {instance!r} must be 1 to 63 bytes of UTF-8")
    if _has_control(instance):
        raise ValueError(f"instance name {instance!r} must not hold control characters")
    return instance


_INSTANCE_RE = re.compile(
    r"^(?P<instance>.+)\.(?P<type>_[^.]+\._(?:tcp|udp))(?:\.local)?\.?$", re.I
)


def instance_name(instance: str, type_text: str | None = None) -> tuple[str, ServiceType]:
    """
    Split and check an instance name.

    With C{type_text}, C{instance} is the instance label (it may hold dots:
    C{"Lab v1.2"}), or the full name ending in that type.  Without,
    C{instance} is the full name, C{My Web._http._tcp.local}.

    @return: the instance label and its L{ServiceType}.
    @raise ValueError: no type found, a bad type, a bad instance label.
    """
    if not isinstance(instance, str) or not instance:
        raise ValueError("instance name must not be empty")
    if type_text is not None:
        stype = service_type(type_text)
        base = stype.base_text
        for suffix in (f".{base}.local.", f".{base}.local", f".{base}"):
            if instance.lower().endswith(suffix) and len(instance) > len(suffix):
                instance = instance[: -len(suffix)]
                break
    else:
        found = _INSTANCE_RE.match(instance)
        if found is None:
            raise ValueError(
                f"{instance!r} is not a service instance name like "
                "'My Web._http._tcp.local' (or give the service type)"
            )
        instance = found.group("instance")
        stype = service_type(found.group("type"))
    return instance_label(instance), stype


def host_name(name: str) -> Name:
    """
    Check a host name, C{radiod} or C{radiod.local} (a trailing dot
    allowed), and return the labels of C{radiod.local}.

    RFC 6762 §16 allows UTF-8 host names; RFC 1035 §2.3.4 bounds a label to
    63 bytes and a name to 255.

    @raise ValueError: empty name or label, a label over 63 bytes, a name
        over 255 bytes, a control character.
    """
    if not isinstance(name, str) or not name.strip().rstrip("."):
        raise ValueError("host name must not be empty")
    labels = name_from_text(name.strip())
    if any(not label for label in labels):
        raise ValueError(f"host name {name!r} has an empty label")
    if any(len(label) > MAX_LABEL for label in labels):
        raise ValueError(f"host name {name!r} has a label longer than 63 bytes")
    if _has_control(name):
        raise ValueError(f"host name {name!r} must not hold control characters")
    if name_key(labels[-1:]) != LOCAL:
        labels = labels + LOCAL
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise ValueError(f"host name {name!r} is longer than 255 bytes")
    return labels


#: The names the querier has always exported.
parse_service_type = service_type
parse_host_name = host_name
parse_instance_name = instance_name
