"""
The querier: per-interface caches, continuous querying, browse and resolve.

RFC 6762 s14 makes every link its own namespace, so everything here is per
interface: one L{RecordCache} per interface, questions asked on each
interface with that interface's own known answers, and results reported
with the interface they came from.  A service seen on eth0 is a service on
eth0; the same instance name on wlan0 is another service, reported
separately.

The rules applied (quoted where they are applied below):

 - s5.2 continuous querying: the first query after a random 20-120 ms,
   then intervals of 1 s, 2 s, 4 s... capped at 60 minutes; refresh
   queries for watched records at 80/85/90/95% of their TTL (the cache
   says when).
 - s5.4 the first query of a series is QU (unicast response requested)
   when nothing is cached for it: the answer comes straight back, and
   responders still multicast records that others have not seen lately.
 - s7.1 known-answer lists (records with more than half their TTL left),
   split over several packets with TC by L{message.pack} when large.
 - s7.3 duplicate question suppression: another host's QM question with a
   known-answer list that holds nothing ours would not counts as our own
   next query.
 - s10 cache rules live in L{twisted_mdns.cache}.
 - s18.11 responses with a non-zero rcode are ignored.

The public edge speaks Deferreds (which C{await} works on); the result
types are L{ResolvedService} and plain dicts keyed by L{NetworkInterface}.
"""

from __future__ import annotations

import ipaddress
import random as _random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mdns.counters import Counters
from twisted_mdns.cache import DEFAULT_MAX_RECORDS, CacheChange, RecordCache
from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import (
    CLASS_IN,
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Message,
    MessageError,
    Name,
    Question,
    Record,
    join_name,
    name_from_text,
    name_key,
    name_to_text,
    pack,
    packet_limit,
    ptr_target,
    srv_target,
    txt_strings,
    type_name,
)
from twisted_mdns.netif import NetworkInterface, find_interface
from twisted_mdns.pktinfo import InterfaceContext
from twisted_mdns.policy import InterfaceValidationError
from twisted_mdns.records import decode_txt

log = Logger()

#: s5.2: "the interval between the first two queries MUST be at least one
#: second".
FIRST_INTERVAL = 1.0
#: s5.2: "When the interval between queries reaches or exceeds 60 minutes,
#: a querier MAY cap the interval to a maximum of 60 minutes".
MAX_INTERVAL = 3600.0
#: s5.2: the first query of a series is delayed by 20-120 ms.
FIRST_DELAY = (0.020, 0.120)
#: How long a multi-interface resolution waits for the other interfaces
#: once the first one has answered.
DEFAULT_SETTLE = 0.5

_EPSILON = 1e-6
_LOCAL = (b"local",)


# -- names ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceType:
    """
    A parsed service type to browse for.

    @ivar text: the normalised form, C{_http._tcp} (or
        C{_printer._sub._http._tcp} for a subtype).
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


def parse_service_type(text: str) -> ServiceType:
    """
    Parse C{_http._tcp}, C{_http._tcp.local} or C{_sub-type._sub._http._tcp}
    (RFC 6763 s7: C{_name._tcp} / C{_name._udp}, the name at most 15
    characters; s7.1 subtypes).

    @raise ValueError: with a message saying what the type must look like.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("service type must not be empty")
    labels = name_from_text(text.strip())
    if labels and name_key(labels[-1:]) == _LOCAL:
        labels = labels[:-1]
    sub: tuple[bytes, ...] = ()
    if len(labels) == 4 and labels[1].lower() == b"_sub":
        sub, labels = labels[:2], labels[2:]
        if not sub[0] or len(sub[0]) > 63:
            raise ValueError(f"subtype in {text!r} must be 1 to 63 bytes")
    if (
        len(labels) != 2
        or not labels[0].startswith(b"_")
        or len(labels[0]) < 2
        or labels[1].lower() not in (b"_tcp", b"_udp")
    ):
        raise ValueError(
            f"service type {text!r} must look like _name._tcp or _name._udp"
        )
    if len(labels[0]) > 16:
        raise ValueError(f"service name in {text!r} is longer than 15 characters")
    try:
        labels[0].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"service type {text!r} must be ASCII") from None
    base = join_name(labels, "local")
    shown = ".".join(x.decode("utf-8", "replace") for x in (*sub, *labels))
    return ServiceType(shown, join_name(sub, base), base)


def parse_host_name(name: str) -> Name:
    """
    C{radiod} or C{radiod.local} (a trailing dot allowed) as the labels of
    C{radiod.local}.

    @raise ValueError: empty name or labels, a label over 63 bytes, a name
        over 255 bytes.
    """
    if not isinstance(name, str) or not name.strip().rstrip("."):
        raise ValueError("host name must not be empty")
    labels = name_from_text(name.strip())
    if any(not label for label in labels):
        raise ValueError(f"host name {name!r} has an empty label")
    if any(len(label) > 63 for label in labels):
        raise ValueError(f"host name {name!r} has a label longer than 63 bytes")
    if name_key(labels[-1:]) != _LOCAL:
        labels = labels + _LOCAL
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise ValueError(f"host name {name!r} is longer than 255 bytes")
    return labels


_INSTANCE_RE = re.compile(r"^(?P<instance>.+)\.(?P<type>_[^.]+\._(?:tcp|udp))(?:\.local)?\.?$", re.I)


def parse_instance_name(instance: str, service_type: str | None = None) -> tuple[str, ServiceType]:
    """
    Split an instance name into its instance label and type.

    With C{service_type}, C{instance} is the instance label (it may hold
    dots: C{"Lab v1.2"}), or the full name ending in that type.  Without,
    C{instance} is the full name, C{My Web._http._tcp.local}.

    @raise ValueError: no type found, empty or too long instance label.
    """
    if not isinstance(instance, str) or not instance:
        raise ValueError("instance name must not be empty")
    if service_type is not None:
        stype = parse_service_type(service_type)
        for suffix in (f".{stype.base_text}.local.", f".{stype.base_text}.local", f".{stype.base_text}"):
            if instance.lower().endswith(suffix.lower()) and len(instance) > len(suffix):
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
        stype = parse_service_type(found.group("type"))
    if len(instance.encode("utf-8")) > 63:
        raise ValueError(f"instance name {instance!r} is longer than 63 bytes")
    return instance, stype


def _text(name: Name) -> str:
    """
    A host name for display: C{radiod.local}, no trailing dot.
    """
    return name_to_text(name).rstrip(".")


def _address_key(address: str) -> tuple[int, Any]:
    try:
        ip = ipaddress.ip_address(address)
        return (ip.version, ip)
    except ValueError:  # pragma: no cover - A rdata is always an address
        return (9, address)


def _a_addresses(records: Iterable[Record]) -> list[str]:
    return sorted({str(r.rdata) for r in records if r.rtype == TYPE_A}, key=_address_key)


# -- results -------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedService:
    """
    A service instance as resolved on one interface.

    @ivar instance: the instance label, C{"My Web"}.
    @ivar type: C{"_http._tcp"}.
    @ivar name: the full instance name as labels.
    @ivar host: the SRV target, C{"peerhost.local"}.
    @ivar port: the SRV port.
    @ivar txt: the TXT key/values (RFC 6763 s6.4: value L{None} for a
        boolean key without C{=}).
    @ivar addresses: the IPv4 addresses of C{host} heard on C{interface},
        sorted.
    @ivar interface: where this was resolved; the same instance on another
        interface is another L{ResolvedService}.
    """

    instance: str
    type: str
    name: Name
    host: str
    port: int
    txt: Mapping[str, bytes | None] = field(default_factory=dict, hash=False)
    addresses: tuple[str, ...] = ()
    interface: NetworkInterface | None = None
    priority: int = 0
    weight: int = 0

    @property
    def full_name(self) -> str:
        """
        C{My Web._http._tcp.local} for display.
        """
        return _text(self.name)

    def txt_text(self) -> dict[str, str | None]:
        """
        The TXT values as text (UTF-8, undecodable bytes replaced).
        """
        return {
            k: (None if v is None else v.decode("utf-8", "replace"))
            for k, v in self.txt.items()
        }

    def to_json(self) -> dict[str, Any]:
        """
        The fields the CLI prints with C{--json}.
        """
        return {
            "interface": self.interface.name if self.interface else None,
            "instance": self.instance,
            "type": self.type,
            "host": self.host,
            "port": self.port,
            "addresses": list(self.addresses),
            "txt": self.txt_text(),
        }


def service_from_cache(
    cache: RecordCache,
    name: Name,
    service_type: str,
    interface: NetworkInterface | None,
    partial: bool = False,
) -> tuple[ResolvedService | None, list[tuple[Name, int]], Name | None]:
    """
    What C{cache} knows about instance C{name}.

    @param partial: build the service from its SRV alone when TXT or
        addresses are missing (for a service already reported, whose TXT or
        addresses went away).
    @return: C{(service, missing, host)}: the service when SRV, TXT and at
        least one A record of the SRV target are cached (or, with
        C{partial}, when the SRV is), else L{None}; the C{(name, rrtype)}
        questions that would complete it; the SRV target.
    """
    srv = cache.newest(name, TYPE_SRV)
    txt = cache.newest(name, TYPE_TXT)
    missing: list[tuple[Name, int]] = []
    if srv is None:
        missing.append((name, TYPE_SRV))
    if txt is None:
        missing.append((name, TYPE_TXT))
    host = srv_target(srv) if srv is not None else None
    addresses: list[str] = []
    if host is not None:
        addresses = _a_addresses(cache.get(host, TYPE_A))
        if not addresses:
            missing.append((host, TYPE_A))
    if srv is None or (missing and not partial):
        return None, missing, host
    assert host is not None
    service = ResolvedService(
        instance=name[0].decode("utf-8", "replace"),
        type=service_type,
        name=name,
        host=_text(host),
        port=srv.rdata.port,
        txt=decode_txt(txt_strings(txt)) if txt is not None else {},
        addresses=tuple(addresses),
        interface=interface,
        priority=srv.rdata.priority,
        weight=srv.rdata.weight,
    )
    return service, missing, host


# -- listeners -----------------------------------------------------------------


@implementer(IServiceListener)
class ServiceListener:
    """
    An L{IServiceListener} made of callables, any of which may be left out:
    C{ServiceListener(added=print)}.  Each is called with
    C{(service, interface)}.
    """

    def __init__(
        self,
        added: Callable[[ResolvedService, NetworkInterface], Any] | None = None,
        removed: Callable[[ResolvedService, NetworkInterface], Any] | None = None,
        updated: Callable[[ResolvedService, NetworkInterface], Any] | None = None,
    ) -> None:
        self._added, self._removed, self._updated = added, removed, updated

    def service_added(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._added is not None:
            self._added(service, interface)

    def service_removed(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._removed is not None:
            self._removed(service, interface)

    def service_updated(self, service: ResolvedService, interface: NetworkInterface) -> None:
        if self._updated is not None:
            self._updated(service, interface)


@implementer(IServiceListener)
class _EventCallable:
    """
    A single callable C{f(event, service, interface)} as a listener, event
    being C{"added"}, C{"removed"} or C{"updated"}.
    """

    def __init__(self, function: Callable[[str, ResolvedService, NetworkInterface], Any]) -> None:
        self.function = function

    def service_added(self, service, interface) -> None:
        self.function("added", service, interface)

    def service_removed(self, service, interface) -> None:
        self.function("removed", service, interface)

    def service_updated(self, service, interface) -> None:
        self.function("updated", service, interface)


def _as_listener(listener: Any) -> Any:
    if all(hasattr(listener, m) for m in ("service_added", "service_removed", "service_updated")):
        return listener
    if callable(listener):
        return _EventCallable(listener)
    raise TypeError(
        "listener must have service_added/service_removed/service_updated "
        "methods or be a callable f(event, service, interface)"
    )


# -- continuous queries --------------------------------------------------------


class _Query:
    """
    One question asked continuously on one interface.

    @ivar interval: the gap after the next transmission.
    @ivar due: when the next one goes out.
    @ivar sent: how many went out (or counted as such, s7.3).
    @ivar refs: how many asked for it; it stops at zero.
    """

    __slots__ = ("name", "qtype", "refs", "interval", "due", "sent")

    def __init__(self, name: Name, qtype: int, due: float) -> None:
        self.name = name
        self.qtype = qtype
        self.refs = 0
        self.interval = FIRST_INTERVAL
        self.due = due
        self.sent = 0

    def advance(self, now: float) -> None:
        """
        Bookkeeping for "sent at C{now}": s5.2 "the intervals between
        successive queries MUST increase by at least a factor of two",
        capped at 60 minutes.
        """
        self.sent += 1
        self.due = now + self.interval
        self.interval = min(self.interval * 2, MAX_INTERVAL)


class _InterfaceQueries:
    """
    The continuous queries of one interface, on one timer.  Questions due
    together go out in one message.
    """

    def __init__(self, querier: "Querier", ifindex: int) -> None:
        self.querier = querier
        self.ifindex = ifindex
        self.queries: dict[tuple[Name, int], _Query] = {}
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0

    def ask(self, name: Name, qtype: int) -> None:
        key = (name_key(name), qtype)
        query = self.queries.get(key)
        if query is None:
            now = self.querier.reactor.seconds()
            # Questions started together share the first, delayed,
            # transmission: one message rather than several.
            waiting = [q.due for q in self.queries.values() if q.sent == 0 and q.due >= now]
            due = min(waiting) if waiting else now + self.querier._random.uniform(*FIRST_DELAY)
            query = self.queries[key] = _Query(name, qtype, due)
            self._arm()
        query.refs += 1

    def release(self, name: Name, qtype: int) -> None:
        key = (name_key(name), qtype)
        query = self.queries.get(key)
        if query is None:
            return
        query.refs -= 1
        if query.refs <= 0:
            del self.queries[key]
            self._arm()

    def suppressed(self, query: _Query) -> None:
        """
        s7.3: "this host SHOULD treat its own query as having been sent":
        the next transmission is skipped and the backoff goes on from now.
        """
        query.advance(self.querier.reactor.seconds())
        self.querier.counters["queries.suppressed"] += 1
        self._arm()

    def _arm(self) -> None:
        if not self.queries:
            self.close()
            return
        when = min(q.due for q in self.queries.values())
        timer = self._timer
        if timer is not None and timer.active():
            if abs(self._timer_at - when) < _EPSILON:
                return
            timer.cancel()
        self._timer_at = when
        reactor = self.querier.reactor
        self._timer = reactor.callLater(max(0.0, when - reactor.seconds()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.querier.reactor.seconds()
        due = [q for q in self.queries.values() if q.due <= now + _EPSILON]
        if due:
            cache = self.querier.caches.get(self.ifindex)
            questions = []
            for q in due:
                # s5.4: the first question of a series asks for a unicast
                # response when we have nothing for it; later ones are QM
                # so that every cache on the link hears the answers.
                unicast = (
                    self.querier.unicast_first
                    and q.sent == 0
                    and (cache is None or not cache.get(q.name, q.qtype))
                )
                questions.append(Question(q.name, q.qtype, unicast))
                q.advance(now)
            self.querier._send_query(self.ifindex, questions)
        self._arm()

    def close(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class _Interest:
    """
    What one operation asked and watched on one interface, so that it can
    be changed as the operation learns more and released at once.
    """

    def __init__(self, querier: "Querier", ifindex: int) -> None:
        self.querier = querier
        self.ifindex = ifindex
        self.asked: dict[tuple[Name, int], Name] = {}
        self.watched: dict[tuple[Name, int], Name] = {}

    def ask(self, wanted: Iterable[tuple[Name, int]]) -> None:
        """
        Ask exactly C{wanted} (continuous queries), releasing the rest.
        """
        new = {(name_key(n), t): n for n, t in wanted}
        queries = self.querier._queries.get(self.ifindex)
        for key, name in list(self.asked.items()):
            if key not in new:
                del self.asked[key]
                if queries is not None:
                    queries.release(name, key[1])
        for key, name in new.items():
            if key not in self.asked and queries is not None:
                self.asked[key] = name
                queries.ask(name, key[1])

    def watch(self, wanted: Iterable[tuple[Name, int]]) -> None:
        """
        Watch exactly C{wanted} for refreshes (s5.2), unwatching the rest.
        """
        new = {(name_key(n), t): n for n, t in wanted}
        cache = self.querier.caches.get(self.ifindex)
        for key, name in list(self.watched.items()):
            if key not in new:
                del self.watched[key]
                if cache is not None:
                    cache.unwatch(name, key[1])
        for key, name in new.items():
            if key not in self.watched and cache is not None:
                self.watched[key] = name
                cache.watch(name, key[1])

    def close(self) -> None:
        self.ask(())
        self.watch(())


# -- one-shot resolutions ------------------------------------------------------


class _Resolution:
    """
    A resolution over some interfaces with a timeout: the base of host and
    service resolution.  Fires its Deferred once every interface has an
    answer, or C{settle} seconds after the first answer, or at the
    timeout, whichever comes first.
    """

    def __init__(
        self,
        querier: "Querier",
        interfaces: Sequence[NetworkInterface],
        timeout: float,
        settle: float,
    ) -> None:
        self.querier = querier
        self.interfaces = {i.index: i for i in interfaces}
        self.timeout = timeout
        self.settle = settle
        self.results: dict[int, Any] = {}
        self.deferred: defer.Deferred = defer.Deferred(lambda d: self._cleanup())
        self._interests: dict[int, _Interest] = {}
        self._listeners: dict[int, Callable] = {}
        self._timeout_call: IDelayedCall | None = None
        self._settle_call: IDelayedCall | None = None
        self._done = False

    def start(self) -> defer.Deferred:
        self.querier._operations.add(self)
        for ifindex in self.interfaces:
            cache = self.querier.caches.get(ifindex)
            if cache is None:
                continue
            listener = self._listener_for(ifindex)
            self._listeners[ifindex] = listener
            cache.add_listener(listener)
            self._interests[ifindex] = _Interest(self.querier, ifindex)
            self._evaluate(ifindex)
        if not self._done:
            self._timeout_call = self.querier.reactor.callLater(self.timeout, self.finish)
            self._progress()
        return self.deferred

    def _listener_for(self, ifindex: int) -> Callable[[Sequence[CacheChange]], None]:
        def changed(changes: Sequence[CacheChange]) -> None:
            if not self._done and any(self._relevant(ifindex, c.record) for c in changes):
                self._evaluate(ifindex)
                self._progress()

        return changed

    def _relevant(self, ifindex: int, record: Record) -> bool:
        raise NotImplementedError

    def _evaluate(self, ifindex: int) -> None:
        """
        Look at the cache of C{ifindex}: record a result in C{results}, or
        ask what is missing.
        """
        raise NotImplementedError

    def _progress(self) -> None:
        if self._done:
            return
        if all(ix in self.results for ix in self.interfaces):
            self.finish()
        elif self.results and self._settle_call is None:
            self._settle_call = self.querier.reactor.callLater(self.settle, self.finish)

    def interface_gone(self, ifindex: int) -> None:
        interest = self._interests.pop(ifindex, None)
        if interest is not None:
            interest.close()
        listener = self._listeners.pop(ifindex, None)
        cache = self.querier.caches.get(ifindex)
        if listener is not None and cache is not None:
            cache.remove_listener(listener)
        self.interfaces.pop(ifindex, None)
        self.results.pop(ifindex, None)
        self._progress()

    def _outcome(self) -> Any:
        raise NotImplementedError

    def finish(self) -> None:
        """
        Fire with what we have now (also what L{Querier.stop} does).
        """
        if self._done:
            return
        self._cleanup()
        self.deferred.callback(self._outcome())

    def _cleanup(self) -> None:
        self._done = True
        self.querier._operations.discard(self)
        for call in (self._timeout_call, self._settle_call):
            if call is not None and call.active():
                call.cancel()
        for interest in self._interests.values():
            interest.close()
        self._interests.clear()
        for ifindex, listener in self._listeners.items():
            cache = self.querier.caches.get(ifindex)
            if cache is not None:
                cache.remove_listener(listener)
        self._listeners.clear()


class _HostResolution(_Resolution):
    def __init__(self, querier, name: Name, interfaces, timeout, settle) -> None:
        super().__init__(querier, interfaces, timeout, settle)
        self.name = name
        self.key = name_key(name)

    def _relevant(self, ifindex: int, record: Record) -> bool:
        return record.rtype == TYPE_A and record.key == self.key

    def _evaluate(self, ifindex: int) -> None:
        cache = self.querier.caches[ifindex]
        addresses = _a_addresses(e.record for e in cache.entries(self.name, TYPE_A) if not e.goodbye)
        interest = self._interests[ifindex]
        if addresses:
            self.results[ifindex] = addresses
            interest.ask(())
        else:
            self.results.pop(ifindex, None)
            interest.ask([(self.name, TYPE_A)])

    def _outcome(self) -> dict[NetworkInterface, list[str]]:
        return {
            self.interfaces[ix]: list(self.results[ix])
            for ix in sorted(self.results)
            if ix in self.interfaces
        }


class _ServiceResolution(_Resolution):
    def __init__(self, querier, name: Name, stype: ServiceType, interfaces, timeout, settle, single: bool) -> None:
        super().__init__(querier, interfaces, timeout, settle)
        self.name = name
        self.key = name_key(name)
        self.stype = stype
        self.single = single
        self.hosts: dict[int, Name] = {}

    def _relevant(self, ifindex: int, record: Record) -> bool:
        if record.key == self.key:
            return record.rtype in (TYPE_SRV, TYPE_TXT)
        host = self.hosts.get(ifindex)
        return host is not None and record.rtype == TYPE_A and record.key == name_key(host)

    def _evaluate(self, ifindex: int) -> None:
        cache = self.querier.caches[ifindex]
        service, missing, host = service_from_cache(
            cache, self.name, self.stype.base_text, self.interfaces[ifindex]
        )
        if host is not None:
            self.hosts[ifindex] = host
        if service is not None:
            self.results[ifindex] = service
        else:
            self.results.pop(ifindex, None)
        self._interests[ifindex].ask(missing)

    def _outcome(self) -> ResolvedService | None | list[ResolvedService]:
        found = [self.results[ix] for ix in sorted(self.results)]
        if self.single:
            return found[0] if found else None
        return found


# -- browsing ------------------------------------------------------------------


class _BrowseOn:
    """
    A browser's state on one interface.
    """

    def __init__(self, browser: "ServiceBrowser", iface: NetworkInterface) -> None:
        self.browser = browser
        self.iface = iface
        self.interest = _Interest(browser.querier, iface.index)
        self.instances: dict[Name, Name] = {}  # key -> name, from PTRs
        self.hosts: dict[Name, Name] = {}  # instance key -> SRV target
        self.reported: dict[Name, ResolvedService] = {}
        self.cache = browser.querier.caches[iface.index]
        self.cache.add_listener(self.changed)

    def relevant(self, record: Record) -> bool:
        if record.rtype == TYPE_PTR:
            return record.key == self.browser._ptr_key
        if record.rtype in (TYPE_SRV, TYPE_TXT):
            return record.key in self.instances or record.key in self.reported
        if record.rtype == TYPE_A:
            return any(name_key(h) == record.key for h in self.hosts.values())
        return False

    def changed(self, changes: Sequence[CacheChange]) -> None:
        if any(self.relevant(c.record) for c in changes):
            self.evaluate()

    def evaluate(self) -> None:
        browser = self.browser
        stype = browser.service_type
        found: dict[Name, Name] = {}
        for ptr in self.cache.get(stype.ptr_name, TYPE_PTR):
            target = ptr_target(ptr)
            # RFC 6763 s4.1: <Instance>.<Service>.<Domain>; a PTR pointing
            # anywhere else is not an instance of this type.
            if len(target) == len(stype.base) + 1 and name_key(target[1:]) == name_key(stype.base):
                found[name_key(target)] = target
        # The type's PTR question runs for as long as the browser does.
        ask: list[tuple[Name, int]] = [(stype.ptr_name, TYPE_PTR)]
        watch: list[tuple[Name, int]] = [(stype.ptr_name, TYPE_PTR)]
        for key in list(self.reported):
            if key not in found:
                self._report("removed", self.reported.pop(key))
        self.instances = found
        hosts: dict[Name, Name] = {}
        for key, name in found.items():
            old = self.reported.get(key)
            # Once reported, a service stays until its PTR or SRV goes; a
            # TXT or addresses that go away are an update (and asked again).
            service, missing, host = service_from_cache(
                self.cache, name, stype.base_text, self.iface, partial=old is not None
            )
            if host is not None:
                hosts[key] = host
            if service is not None:
                self.reported[key] = service
                if old is None:
                    self._report("added", service)
                elif old != service:
                    self._report("updated", service)
            elif old is not None:
                self._report("removed", self.reported.pop(key))
            ask.extend(missing)
            if key in self.reported:
                watch += [(name, TYPE_SRV), (name, TYPE_TXT)]
                if host is not None:
                    watch.append((host, TYPE_A))
        self.hosts = hosts
        self.interest.ask(ask)
        self.interest.watch(watch)

    def _report(self, event: str, service: ResolvedService) -> None:
        self.browser._report(event, service, self.iface)

    def close(self, report: bool) -> None:
        self.cache.remove_listener(self.changed)
        self.interest.close()
        if report:
            for service in list(self.reported.values()):
                self._report("removed", service)
        self.reported.clear()


class ServiceBrowser:
    """
    Browses one service type on some interfaces (RFC 6763 s4): asks for
    the type's PTR records continuously, resolves SRV, TXT and the target's
    A records for each instance on the interface its PTR was heard on, and
    tells the listener:

     - C{service_added} once an instance is resolved (SRV, TXT and at least
       one IPv4 address);
     - C{service_updated} when its TXT, SRV or addresses change;
     - C{service_removed} when its PTR is gone: one second after a goodbye
       (s10.1), at the end of its TTL without a refresh, or when the
       interface goes away.

    Made by L{Querier.browse}; L{stop} ends it.
    """

    def __init__(
        self,
        querier: "Querier",
        service_type: ServiceType,
        listener: Any,
        interface: Any = None,
    ) -> None:
        self.querier = querier
        self.service_type = service_type
        self.listener = listener
        self.interface_spec = interface
        self._ptr_key = name_key(service_type.ptr_name)
        self._on: dict[int, _BrowseOn] = {}
        self.running = False

    @property
    def services(self) -> list[ResolvedService]:
        """
        The services resolved now, by interface index then instance.
        """
        out = []
        for ifindex in sorted(self._on):
            state = self._on[ifindex]
            out += sorted(state.reported.values(), key=lambda s: name_key(s.name))
        return out

    def start(self) -> "ServiceBrowser":
        self.running = True
        self.querier._browsers.add(self)
        self.interfaces_changed()
        return self

    def interfaces_changed(self) -> None:
        """
        Follow the querier's interfaces: stop on vanished ones (reporting
        their services removed), start on new ones.
        """
        if not self.running:
            return
        wanted = {i.index: i for i in self.querier._targets(self.interface_spec)}
        for ifindex in list(self._on):
            if ifindex not in wanted:
                self._on.pop(ifindex).close(report=True)
        for ifindex, iface in sorted(wanted.items()):
            state = self._on.get(ifindex)
            if state is None:
                if ifindex not in self.querier.caches:
                    continue
                state = self._on[ifindex] = _BrowseOn(self, iface)
                log.debug(
                    "browsing {type} on {iface}", type=self.service_type.text, iface=iface.name
                )
            elif state.iface != iface:
                state.iface = iface
            state.evaluate()

    def _report(self, event: str, service: ResolvedService, iface: NetworkInterface) -> None:
        log.info(
            "{type} on {iface}: {event} {name}",
            type=self.service_type.text, iface=iface.name, event=event, name=service.full_name,
        )
        method = getattr(self.listener, f"service_{event}")
        try:
            method(service, iface)
        except Exception:
            log.failure("service listener failed on {event}", event=event)

    def stop(self) -> None:
        """
        Stop browsing: queries and refreshes for this browser end; nothing
        more is reported.  Safe to call twice.
        """
        if not self.running:
            return
        self.running = False
        self.querier._browsers.discard(self)
        for state in self._on.values():
            state.close(report=False)
        self._on.clear()


# -- the querier ---------------------------------------------------------------


class Querier:
    """
    The querying half of mDNS, as a handler for
    L{twisted_mdns.protocol.MDNSProtocol}.

    @ivar transport: an L{twisted_mdns.transport.InterfaceTransport} (or
        anything with C{interfaces} and C{send(data, ifindex)}).
    @ivar caches: interface index -> L{RecordCache}.
    @ivar counters: C{queries.sent} (datagrams), C{questions.sent},
        C{known-answers.sent}, C{queries.suppressed} (s7.3),
        C{refresh.sent}, C{responses.cached}, C{records.cached},
        C{responses.ignored-rcode} and the caches' own C{cache.*}.
    @ivar unicast_first: whether a first query asks for a unicast response
        (s5.4); turn off where another mDNS stack holds port 5353 on the
        same address and may take our unicast replies (s15).
    """

    def __init__(
        self,
        transport: Any,
        reactor: IReactorTime,
        counters: Counter | None = None,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        unicast_first: bool = True,
        random: _random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.reactor = reactor
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.max_records = max_records
        self.unicast_first = unicast_first
        self._random = random or _random.Random()
        self.caches: dict[int, RecordCache] = {}
        self._queries: dict[int, _InterfaceQueries] = {}
        self._browsers: set[ServiceBrowser] = set()
        self._operations: set[_Resolution] = set()
        self._stopped = False
        self._syncing = False
        self._sync_interfaces()

    # -- interfaces ----------------------------------------------------------

    @property
    def interfaces(self) -> list[NetworkInterface]:
        """
        The interfaces we query on (the transport's), by index.
        """
        return sorted(self.transport.interfaces.values(), key=lambda i: i.index)

    def _ensure_interfaces(self) -> None:
        """
        Follow the transport if its interfaces changed without anyone
        calling L{interfaces_changed} (the querier made before the
        transport's first C{apply}, say).
        """
        if (
            not self._stopped
            and not self._syncing
            and self.caches.keys() != self.transport.interfaces.keys()
        ):
            self.interfaces_changed()

    def _select(self, interface: Any, ensure: bool = True) -> list[NetworkInterface]:
        """
        The interfaces an API call means: all of ours for L{None}, else the
        one named by a L{NetworkInterface}, name, IPv4 address or index.

        @raise InterfaceValidationError: not one of ours.
        """
        if ensure:
            self._ensure_interfaces()
        ifaces = self.interfaces
        if interface is None:
            return ifaces
        spec = interface.index if isinstance(interface, NetworkInterface) else interface
        found = find_interface(ifaces, spec) if isinstance(spec, (str, int)) else None
        if found is None:
            raise InterfaceValidationError(
                str(interface.name if isinstance(interface, NetworkInterface) else interface),
                "not an interface mDNS runs on",
                [i.name for i in ifaces],
            )
        return [found]

    def _targets(self, spec: Any) -> list[NetworkInterface]:
        try:
            return self._select(spec, ensure=False)
        except InterfaceValidationError:
            return []

    def cache_for(self, interface: Any) -> RecordCache:
        """
        The cache of one interface (name, IPv4 address, index or value).
        """
        return self.caches[self._select(interface)[0].index]

    def _sync_interfaces(self) -> tuple[list[int], list[int]]:
        self._syncing = True
        try:
            return self._sync_interfaces_now()
        finally:
            self._syncing = False

    def _sync_interfaces_now(self) -> tuple[list[int], list[int]]:
        current = self.transport.interfaces
        gone = [ix for ix in self.caches if ix not in current]
        for ifindex in gone:
            for op in list(self._operations):
                op.interface_gone(ifindex)
        for browser in list(self._browsers):
            # Browsers drop vanished interfaces while the caches still exist.
            browser.interfaces_changed()
        for ifindex in gone:
            queries = self._queries.pop(ifindex, None)
            if queries is not None:
                queries.close()
            self.caches.pop(ifindex).close()
        added = []
        for ifindex, iface in current.items():
            cache = self.caches.get(ifindex)
            if cache is None:
                cache = RecordCache(
                    self.reactor, iface, self.max_records, self.counters, self._random
                )
                cache.on_refresh = self._refresher(ifindex)
                self.caches[ifindex] = cache
                self._queries[ifindex] = _InterfaceQueries(self, ifindex)
                added.append(ifindex)
            else:
                cache.interface = iface
        return gone, added

    def interfaces_changed(self) -> None:
        """
        The transport's interfaces changed: forget the caches of vanished
        interfaces (what was heard there says nothing about anywhere else),
        and start the running browsers on new ones.
        """
        if self._stopped:
            return
        gone, added = self._sync_interfaces()
        if gone or added:
            log.info(
                "querier: interfaces changed (gone {gone}, new {added})",
                gone=gone or "none", added=added or "none",
            )
        for browser in list(self._browsers):
            browser.interfaces_changed()

    # -- traffic in ----------------------------------------------------------

    def response_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        Cache every record of a response on the interface it came in on.
        (The protocol has already checked s11: the source is on that link.)
        """
        if self._stopped:
            return
        if message.rcode != 0:
            # s18.11: "Multicast DNS messages received with non-zero
            # Response Codes MUST be silently ignored."
            self.counters["responses.ignored-rcode"] += 1
            return
        cache = self.caches.get(context.index)
        if cache is None:
            self._ensure_interfaces()
            cache = self.caches.get(context.index)
        if cache is None:
            self.counters["responses.unknown-interface"] += 1
            return
        records = message.records()
        if not records:
            return
        self.counters["responses.cached"] += 1
        self.counters["records.cached"] += len(records)
        cache.add_all(records)

    def query_received(
        self, message: Message, source: tuple[str, int], context: InterfaceContext
    ) -> None:
        """
        s7.3 duplicate question suppression: "If a host is planning to
        transmit (or has just transmitted) a query, and it sees another
        host on the network send a query containing the same 'QM' question,
        and the Known-Answer Section of that query does not contain any
        records that this host would not also put in its own Known-Answer
        Section, then this host SHOULD treat its own query as having been
        sent."
        """
        if self._stopped or message.is_probe:
            return
        if message.truncated:
            # Its known answers go on in another packet: we cannot know
            # that they hold nothing we would not send.
            return
        iface = self.transport.interfaces.get(context.index)
        if iface is None or iface.has_address(source[0]):
            # Our own query, looped back (or another stack on this host).
            return
        queries = self._queries.get(context.index)
        cache = self.caches.get(context.index)
        if queries is None or cache is None:
            return
        for question in message.questions:
            if question.unicast or question.qclass != CLASS_IN:
                continue
            query = queries.queries.get((question.key, question.qtype))
            if query is None:
                continue
            theirs = {r.identity for r in message.answers if question.matches(r)}
            ours = {r.identity for r in cache.known_answers(Question(query.name, query.qtype))}
            if theirs <= ours:
                log.debug(
                    "{iface}: {source} asked {name}/{type}: counts as our query (s7.3)",
                    iface=context.name, source=source[0],
                    name=name_to_text(query.name), type=type_name(query.qtype),
                )
                queries.suppressed(query)

    # -- traffic out ---------------------------------------------------------

    def _send_query(self, ifindex: int, questions: Sequence[Question]) -> int:
        """
        Send C{questions} on one interface with their known answers (s7.1),
        split under the MTU (s17) with TC on all but the last packet
        (s7.2).

        @return: the number of datagrams sent.
        """
        iface = self.transport.interfaces.get(ifindex)
        cache = self.caches.get(ifindex)
        if iface is None or cache is None or not questions:
            return 0
        known: list[Record] = []
        seen: set[tuple] = set()
        for q in questions:
            for record in cache.known_answers(q):
                if record.identity not in seen:
                    seen.add(record.identity)
                    known.append(record)
        limit = packet_limit(iface.mtu)
        try:
            packets = pack(questions=questions, answers=known, limit=limit)
        except MessageError:
            if len(questions) == 1:
                log.warn("question too large to send: {q!r}", q=questions[0])
                return 0
            half = len(questions) // 2
            return self._send_query(ifindex, questions[:half]) + self._send_query(
                ifindex, questions[half:]
            )
        sent = 0
        for packet in packets:
            if self.transport.send(packet, ifindex):
                sent += 1
        self.counters["queries.sent"] += sent
        self.counters["questions.sent"] += len(questions)
        self.counters["known-answers.sent"] += len(known)
        log.debug(
            "{iface}: asked {questions} with {known} known answer(s) in {n} packet(s)",
            iface=iface.name,
            questions=", ".join(
                f"{name_to_text(q.name)}/{type_name(q.qtype)}{' QU' if q.unicast else ''}"
                for q in questions
            ),
            known=len(known), n=len(packets),
        )
        return sent

    def _refresher(self, ifindex: int) -> Callable[[Sequence[Record]], None]:
        def refresh(records: Sequence[Record]) -> None:
            """
            s5.2: ask again about watched records at 80-95% of their TTL.
            """
            if self._stopped:
                return
            questions: dict[tuple[Name, int], Question] = {}
            for r in records:
                questions.setdefault((r.key, r.rtype), Question(r.name, r.rtype))
            self.counters["refresh.sent"] += len(questions)
            self._send_query(ifindex, list(questions.values()))

        return refresh

    # -- API -----------------------------------------------------------------

    def _check_running(self) -> None:
        if self._stopped:
            raise RuntimeError("this Querier was stopped")

    @staticmethod
    def _check_timeout(timeout: float) -> float:
        timeout = float(timeout)
        if not timeout > 0 or timeout == float("inf"):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        return timeout

    def resolve_host(
        self,
        name: str,
        interface: Any = None,
        timeout: float = 3.0,
        *,
        settle: float = DEFAULT_SETTLE,
    ) -> "defer.Deferred[dict[NetworkInterface, list[str]]]":
        """
        Resolve a C{.local} host name to IPv4 addresses, per interface.

        Cached answers count at once; other interfaces are asked (QU
        first, s5.4; then 1 s, 2 s... s5.2) until every one answered,
        C{settle} seconds after the first answer, or C{timeout} seconds.

        @param name: C{"radiod"} or C{"radiod.local"}.
        @param interface: a name, IPv4 address, index or
            L{NetworkInterface} of ours; L{None} for all.
        @return: a Deferred firing with C{{interface: [address, ...]}} for
            the interfaces that answered, in index order (empty when none
            did).  Cancelling it stops the queries.
        @raise ValueError: a bad name or timeout, an interface we do not
            run on (L{InterfaceValidationError}).
        """
        self._check_running()
        labels = parse_host_name(name)
        timeout = self._check_timeout(timeout)
        ifaces = self._select(interface)
        return _HostResolution(self, labels, ifaces, timeout, settle).start()

    def resolve_service(
        self,
        instance_name: str,
        service_type: str | None = None,
        interface: Any = None,
        timeout: float = 3.0,
        *,
        settle: float = DEFAULT_SETTLE,
    ) -> defer.Deferred:
        """
        Resolve one service instance: SRV, TXT and the target's addresses,
        on the interface(s) asked.

        @param instance_name: C{"My Web"} with C{service_type}, or the full
            C{"My Web._http._tcp.local"}.
        @return: with an C{interface}: a Deferred firing with the
            L{ResolvedService} found there, or L{None}.  With C{interface}
            L{None}: a Deferred firing with a list of L{ResolvedService},
            one per interface where it resolved (index order; empty if
            nowhere): the same instance name on two links is two services.
        """
        self._check_running()
        instance, stype = parse_instance_name(instance_name, service_type)
        timeout = self._check_timeout(timeout)
        ifaces = self._select(interface)
        name = join_name(instance, stype.base)
        return _ServiceResolution(
            self, name, stype, ifaces, timeout, settle, single=interface is not None
        ).start()

    def browse(
        self,
        service_type: str,
        listener: Any = None,
        interface: Any = None,
        *,
        added: Callable | None = None,
        removed: Callable | None = None,
        updated: Callable | None = None,
    ) -> ServiceBrowser:
        """
        Browse C{service_type} (C{"_http._tcp"}; C{"_sub._sub._http._tcp"}
        for a subtype).

        @param listener: an L{IServiceListener} (any object with
            C{service_added/removed/updated(service, interface)}), or a
            callable C{f(event, service, interface)}; or leave it out and
            give C{added}/C{removed}/C{updated} callables.
        @param interface: as for L{resolve_host}; with L{None} the browser
            follows the querier's interfaces as they come and go.
        @return: the running L{ServiceBrowser}; call its C{stop()}.
        """
        self._check_running()
        stype = parse_service_type(service_type)
        if listener is None:
            listener = ServiceListener(added, removed, updated)
        else:
            listener = _as_listener(listener)
        if interface is not None:
            self._select(interface)
        return ServiceBrowser(self, stype, listener, interface).start()

    # -- ask (minimal; the querier-split branch holds the full version) -------

    def ask(self, name: Name, rtype: int, interface: Any) -> None:
        """
        Multicast one QM question for C{name}/C{rtype} on that one link
        now, with the known answers of that link's cache (RFC 6762 §7.1).

        For callers that decide themselves when a question is worth asking
        (the Discovery Proxy, which rate-limits what its clients cause).

        @raise InterfaceValidationError: C{interface} is not one of ours.
        """
        self._check_running()
        ifindex = self._select(interface)[0].index
        self._send_query(ifindex, [Question(name, rtype)])

    def stop(self) -> None:
        """
        Stop everything: browsers (silently), pending resolutions (they
        fire with what they found so far), queries and cache timers.
        Nothing is left scheduled on the reactor.
        """
        if self._stopped:
            return
        for op in list(self._operations):
            op.finish()
        for browser in list(self._browsers):
            browser.stop()
        self._stopped = True
        for queries in self._queries.values():
            queries.close()
        self._queries.clear()
        for cache in self.caches.values():
            cache.close()
        self.caches.clear()
