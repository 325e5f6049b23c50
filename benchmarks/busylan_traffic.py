"""
The traffic of a busy LAN, as datagrams (for L{benchmarks.busylan}).

A seeded model of a few hundred devices of the kinds a large home or office
network holds (phones, Macs, Apple TVs, speakers, Chromecasts, printers,
NAS boxes, smart-home bridges and accessories), each with the DNS-SD
services such a device publishes and TXT records of the sizes they really
carry (an AirPlay or IPP TXT is several hundred bytes, an SSH one empty).
From it, a stream of what such a network multicasts, all from port 5353:

 - announcements (one service: PTR, SRV, TXT, the host's A and AAAA, the
   s9 enumeration PTR; cache-flush set on the unique records);
 - responses to browses (PTR answers, SRV/TXT/A/AAAA additionals) and to
   resolves (SRV, TXT, A, AAAA);
 - goodbyes (TTL 0) of one service;
 - browse queries (QM PTR) carrying known-answer lists of up to the whole
   type's instances, split with TC under the MTU (RFC 6762 s7.2);
 - resolve queries (SRV + TXT, then A + AAAA);
 - now and then a question for the stack under test's own names
   (C{bench.local}, C{_bench._tcp.local}).

Nothing here is for the stack under test except those few questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_A,
    TYPE_AAAA,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Question,
    a_record,
    aaaa_record,
    join_name,
    name_from_text,
    pack,
    ptr_record,
    srv_record,
    txt_record,
)

LOCAL = (b"local",)
SERVICES_ENUM = name_from_text("_services._dns-sd._udp.local")
LIMIT = 1472

#: service type -> (port, TXT keys and typical value sizes)
SERVICE_TYPES: dict[str, tuple[int, list[tuple[str, int]]]] = {
    "_airplay._tcp": (7000, [("acl", 1), ("deviceid", 17), ("features", 22), ("flags", 5), ("gid", 36),
                             ("igl", 1), ("gcgl", 1), ("model", 12), ("protovers", 3), ("pi", 36),
                             ("psi", 36), ("pk", 64), ("srcvers", 9), ("osvers", 6), ("vv", 1)]),
    "_raop._tcp": (7000, [("cn", 7), ("da", 4), ("et", 7), ("ft", 22), ("md", 5), ("am", 12), ("pk", 64),
                          ("sf", 5), ("tp", 3), ("vn", 5), ("vs", 9), ("ov", 6)]),
    "_googlecast._tcp": (8009, [("id", 32), ("cd", 32), ("rm", 0), ("ve", 2), ("md", 16), ("ic", 16),
                                ("fn", 16), ("ca", 6), ("st", 1), ("bs", 12), ("nf", 1), ("rs", 0)]),
    "_spotify-connect._tcp": (41485, [("CPath", 11), ("VERSION", 3), ("Stack", 2)]),
    "_hap._tcp": (51826, [("c#", 2), ("ff", 1), ("id", 17), ("md", 14), ("pv", 3), ("s#", 1), ("sf", 1),
                          ("ci", 1), ("sh", 8)]),
    "_matter._tcp": (5540, [("SII", 4), ("SAI", 3), ("T", 1)]),
    "_companion-link._tcp": (49152, [("rpMac", 1), ("rpHN", 12), ("rpFl", 7), ("rpHA", 12),
                                     ("rpVr", 5), ("rpAD", 12), ("rpHI", 12), ("rpBA", 17)]),
    "_sleep-proxy._udp": (60379, []),
    "_device-info._tcp": (0, [("model", 14), ("osxvers", 2), ("ecolor", 11)]),
    "_printer._tcp": (515, [("txtvers", 1), ("qtotal", 1), ("rp", 16), ("ty", 32), ("adminurl", 40),
                            ("note", 12), ("priority", 2), ("product", 24), ("pdl", 80), ("UUID", 36),
                            ("Color", 1), ("Duplex", 1), ("usb_MFG", 8), ("usb_MDL", 16)]),
    "_ipp._tcp": (631, [("txtvers", 1), ("qtotal", 1), ("rp", 8), ("ty", 32), ("adminurl", 40),
                        ("note", 12), ("priority", 2), ("product", 24), ("pdl", 120), ("UUID", 36),
                        ("URF", 40), ("Color", 1), ("Duplex", 1), ("kind", 8), ("PaperMax", 10),
                        ("mopria-certified", 3), ("TLS", 3), ("usb_MFG", 8), ("usb_MDL", 16)]),
    "_ipps._tcp": (631, [("txtvers", 1), ("rp", 8), ("ty", 32), ("pdl", 120), ("UUID", 36), ("URF", 40),
                         ("TLS", 3)]),
    "_uscan._tcp": (80, [("txtvers", 1), ("vers", 3), ("rs", 4), ("ty", 32), ("UUID", 36), ("pdl", 40),
                         ("cs", 20), ("is", 12), ("duplex", 1)]),
    "_http._tcp": (80, [("path", 1)]),
    "_ssh._tcp": (22, []),
    "_sftp-ssh._tcp": (22, []),
    "_smb._tcp": (445, []),
    "_afpovertcp._tcp": (548, []),
    "_adisk._tcp": (9, [("sys", 24), ("dk0", 60)]),
    "_homekit._tcp": (51827, [("si", 36)]),
    "_workstation._tcp": (9, []),
    "_airport._tcp": (5009, [("waMA", 17), ("raMA", 17), ("raM2", 17), ("raNm", 12), ("raCh", 2),
                             ("rCh2", 3), ("raSt", 1), ("raNA", 1), ("syFl", 6), ("syAP", 3),
                             ("syVs", 6), ("srcv", 8), ("bjSd", 2)]),
    "_touch-able._tcp": (3689, [("DvNm", 12), ("RemV", 5), ("DvTy", 8), ("RemN", 6), ("txtvers", 1),
                                ("Ver", 6), ("DbId", 16)]),
    "_amzn-wplay._tcp": (55442, [("s", 1), ("at", 12), ("c", 6), ("n", 16), ("u", 36), ("ad", 12), ("v", 1)]),
}

#: device kind -> (share of devices, host name stem, service types)
DEVICE_KINDS: dict[str, tuple[float, str, tuple[str, ...]]] = {
    "phone": (0.30, "iPhone", ("_companion-link._tcp", "_device-info._tcp")),
    "mac": (0.12, "MacBook-Pro", ("_companion-link._tcp", "_device-info._tcp", "_ssh._tcp",
                                  "_sftp-ssh._tcp", "_smb._tcp", "_afpovertcp._tcp", "_workstation._tcp")),
    "appletv": (0.06, "Apple-TV", ("_airplay._tcp", "_raop._tcp", "_companion-link._tcp",
                                   "_sleep-proxy._udp", "_device-info._tcp", "_hap._tcp", "_touch-able._tcp")),
    "speaker": (0.10, "Speaker", ("_airplay._tcp", "_raop._tcp", "_spotify-connect._tcp")),
    "cast": (0.10, "Chromecast", ("_googlecast._tcp", "_spotify-connect._tcp")),
    "printer": (0.06, "Printer", ("_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_http._tcp", "_uscan._tcp")),
    "nas": (0.03, "NAS", ("_smb._tcp", "_afpovertcp._tcp", "_adisk._tcp", "_http._tcp", "_ssh._tcp")),
    "bridge": (0.05, "Bridge", ("_hap._tcp", "_matter._tcp", "_homekit._tcp", "_http._tcp")),
    "accessory": (0.15, "Accessory", ("_hap._tcp", "_matter._tcp")),
    "router": (0.01, "AirPort", ("_airport._tcp", "_sleep-proxy._udp")),
    "echo": (0.02, "Echo", ("_amzn-wplay._tcp", "_spotify-connect._tcp")),
}

ROOMS = ("Living Room", "Kitchen", "Office", "Bedroom", "Studio", "Hall", "Lab", "Meeting Room",
         "Reception", "Lounge", "Floor 2", "Floor 3", "Annex", "Garage", "Den")


@dataclass
class Service:
    type_: tuple
    instance: tuple
    port: int
    txt: list[bytes]


@dataclass
class Device:
    host: tuple
    ipv4: str
    ipv6: str
    services: list[Service] = field(default_factory=list)


def _txt(rng: random.Random, keys: list[tuple[str, int]]) -> list[bytes]:
    alphabet = "0123456789ABCDEFabcdef-_.,"
    return [f"{k}={''.join(rng.choice(alphabet) for _ in range(n))}".encode() for k, n in keys]


def devices(count: int, seed: int = 6762) -> list[Device]:
    rng = random.Random(seed)
    kinds = list(DEVICE_KINDS)
    weights = [DEVICE_KINDS[k][0] for k in kinds]
    out = []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        _, stem, types = DEVICE_KINDS[kind]
        room = rng.choice(ROOMS)
        host = join_name(f"{stem}-{n:03d}", *LOCAL)
        dev = Device(host, f"10.1.{1 + n // 250}.{1 + n % 250}",
                     f"fe80::{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}:{n:x}")
        for t in types:
            port, keys = SERVICE_TYPES[t]
            label = f"{room} {stem} {n:03d}" if kind != "printer" else f"{stem} {room} {n:03d} (IPP)"
            type_name = name_from_text(t + ".local")
            dev.services.append(Service(type_name, join_name(label, type_name), port or 9, _txt(rng, keys)))
        out.append(dev)
    return out


def _host_records(dev: Device, ttl: int = 120) -> list:
    return [a_record(dev.host, dev.ipv4, ttl), aaaa_record(dev.host, dev.ipv6, ttl)]


def _service_records(s: Service, dev: Device, ttl: int = 4500) -> tuple[list, list]:
    """(answers, additionals) of an announcement or a browse answer."""
    answers = [ptr_record(s.type_, s.instance, ttl)]
    extra = [srv_record(s.instance, dev.host, s.port, 120), txt_record(s.instance, s.txt, ttl)]
    return answers, extra + _host_records(dev)


RESPONSE = FLAG_QR | FLAG_AA


def stream(devs: list[Device], count: int, seed: int = 5353,
           own=(name_from_text("bench.local"), name_from_text("_bench._tcp.local"))) -> list[tuple[str, bytes]]:
    """
    C{count} datagrams of the mix, each as (kind, bytes).
    """
    rng = random.Random(seed)
    by_type: dict[tuple, list[tuple[Device, Service]]] = {}
    for d in devs:
        for s in d.services:
            by_type.setdefault(s.type_, []).append((d, s))
    types = list(by_type)
    kinds = ("announce", "browse-answer", "resolve-answer", "goodbye", "browse", "resolve", "own")
    weights = (20, 22, 10, 3, 25, 19, 1)
    out: list[tuple[str, bytes]] = []
    while len(out) < count:
        kind = rng.choices(kinds, weights)[0]
        dev = rng.choice(devs)
        svc = rng.choice(dev.services)
        if kind == "announce":
            answers, extra = _service_records(svc, dev)
            answers = answers + extra + [ptr_record(SERVICES_ENUM, svc.type_, 4500)]
            packets = pack(flags=RESPONSE, answers=answers, limit=LIMIT)
        elif kind == "browse-answer":
            answers, extra = _service_records(svc, dev)
            packets = pack(flags=RESPONSE, answers=answers, additionals=extra, limit=LIMIT)
        elif kind == "resolve-answer":
            _, extra = _service_records(svc, dev)
            packets = pack(flags=RESPONSE, answers=extra, limit=LIMIT)
        elif kind == "goodbye":
            answers, extra = _service_records(svc, dev, ttl=0)
            packets = pack(flags=RESPONSE, answers=answers + extra[:2], limit=LIMIT)
        elif kind == "browse":
            t = rng.choice(types)
            peers = by_type[t]
            known = [ptr_record(t, s.instance, rng.randint(2300, 4500))
                     for _, s in rng.sample(peers, min(len(peers), rng.randint(0, 40)))]
            packets = pack(questions=[Question(t, TYPE_PTR)], answers=known, limit=LIMIT)
        elif kind == "resolve":
            if rng.random() < 0.6:
                qs = [Question(svc.instance, TYPE_SRV), Question(svc.instance, TYPE_TXT)]
            else:
                qs = [Question(dev.host, TYPE_A), Question(dev.host, TYPE_AAAA)]
            packets = pack(questions=qs, limit=LIMIT)
        else:
            name = rng.choice(own)
            packets = pack(questions=[Question(name, TYPE_A if name == own[0] else TYPE_PTR)], limit=LIMIT)
        out.extend((kind, p) for p in packets)
    return out[:count]


def distinct_records(devs: list[Device]) -> int:
    """
    How many records the whole network holds (what a cache that heard
    everything would keep).
    """
    types = {s.type_ for d in devs for s in d.services}
    return len(types) + sum(2 + 3 * len(d.services) for d in devs)
