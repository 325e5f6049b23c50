# -*- test-case-name: tests.test_benchmarks -*-
"""
The many-link benchmark over IPv6 (L{benchmarks.scale}'s C{interfaces}
part asks through these as it asks over IPv4).

Every link has a ULA prefix (C{fd00:N::1} on the host, C{fd00:N::2} on the
client, added C{nodad}) and the host end's kernel link-local address.  A
client on each link asks a legacy AAAA question for C{bench.local} (from an
ephemeral port on its ULA, to C{ff02::fb} or to the host's ULA); a correct
answer comes from port 5353 with the question's id, and its answer section
holds exactly that link's two addresses (the ULA and the link-local; RFC
6762 §6.2), and no record in it is an address of any other link.

An answer holding only some of the link's own addresses (the link-local
one is left out while it is tentative, just after a late link is plugged
in: RFC 6762 §6.2 and the kernel's DAD) is I{partial}: counted, not
wrong, and the link is not answering yet.

Run as C{python -m benchmarks.scale_ipv6 ask --links FILE [--late]} by
L{benchmarks.asking.Asking}; prints C{RESULT {json}}.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import socket
import sys
import time

from benchmarks import wire
from benchmarks.asking import ask_all_at_once
from tests.netns import inside

GROUP6 = "ff02::fb"
TYPE_AAAA = 28


def eui64_link_local(mac: str) -> str:
    """
    The link-local address the kernel gives an interface with MAC C{mac}
    (modified EUI-64, RFC 4291 appendix A): what a late link's host end will
    have once it is plugged in.
    """
    b = bytearray(int(x, 16) for x in mac.split(":"))
    b[0] ^= 0x02
    iid = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + iid))


def _norm(address: str) -> str:
    return str(ipaddress.IPv6Address(address.split("%")[0]))


def expected(link: dict) -> list[str]:
    return sorted(_norm(a) for a in (link["host_ip6"], link["host_ll"]))


def aaaa(rr: wire.RR) -> str:
    return str(ipaddress.IPv6Address(bytes(rr.rdata))) if len(rr.rdata) == 16 else "?"


def judge(data: bytes, source: tuple, link: dict, idents: set[int]) -> tuple[str, dict]:
    """
    C{"ok"}, C{"partial"} or C{"wrong"}, and what the answer held.
    """
    try:
        r = wire.parse(data)
    except wire.WireError as e:
        return "wrong", {"malformed": str(e)}
    answers = sorted(aaaa(rr) for rr in r.answers if rr.rtype == TYPE_AAAA)
    others6 = {aaaa(rr) for rr in r.additionals if rr.rtype == TYPE_AAAA}
    others4 = {wire.a_address(rr) for rr in r.answers + r.additionals if rr.rtype == wire.TYPE_A}
    mine = set(expected(link))
    what = {"link": link["host_if"], "addresses": answers, "source": list(source[:2]), "id": r.id}
    if (r.id not in idents or source[1] != 5353 or _norm(source[0]) not in mine
            or not set(answers) <= mine or not others6 <= mine or not others4 <= {link["host_ip"]}):
        return "wrong", what
    return ("ok" if answers == sorted(mine) else "partial"), what


def client_socket(link: dict) -> socket.socket:
    """
    A non-blocking UDP socket on an ephemeral port of the client's ULA,
    sending multicast out of its end of the link.
    """
    with inside(link["client_ns"]):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((link["client_ip6"], 0))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                     socket.if_nametoindex(link.get("client_if", "eth0")))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setblocking(False)
    return s


def until_every_link_answers(links: list[dict], timeout: float, interval: float) -> dict:
    """
    L{benchmarks.scale.until_every_link_answers} over IPv6: a legacy AAAA
    question to ff02::fb on every link every C{interval} seconds until the
    link has answered one correctly; when each did (C{time.monotonic()}).
    """
    socks: dict[int, tuple[socket.socket, dict]] = {}
    for link in links:
        s = client_socket(link)
        socks[s.fileno()] = (s, link)
    sent: dict[int, set[int]] = {fd: set() for fd in socks}
    answered: dict[str, float] = {}
    own: dict[str, float] = {}  # first answer with some of the link's own addresses
    wrong = partial = 0
    first_wrong: list[dict] = []
    ident = 0x6000
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    print("ASKING", flush=True)
    started = next_round = time.monotonic()
    while len(answered) < len(links) and time.monotonic() - started < timeout:
        now = time.monotonic()
        if now >= next_round:
            for fd, (s, link) in socks.items():
                if link["host_if"] in answered:
                    continue
                ident = (ident + 1) & 0xFFFF
                sent[fd].add(ident)
                try:
                    s.sendto(wire.build_query("bench.local", TYPE_AAAA, ident), (GROUP6, 5353))
                except OSError:
                    pass  # no carrier yet
            next_round = now + interval
        for fd, _ in poller.poll(max(1, int((next_round - time.monotonic()) * 1000))):
            s, link = socks[fd]
            while True:
                try:
                    data, source = s.recvfrom(9000)
                except BlockingIOError:
                    break
                if link["host_if"] in answered:
                    continue
                verdict, what = judge(data, source, link, sent[fd])
                if verdict != "wrong":
                    own.setdefault(link["host_if"], time.monotonic())
                if verdict == "ok":
                    answered[link["host_if"]] = time.monotonic()
                elif verdict == "partial":
                    partial += 1
                else:
                    wrong += 1
                    if len(first_wrong) < 5:
                        first_wrong.append(what)
    for s, _ in socks.values():
        s.close()
    return {"answered_at": answered, "own_at": own, "wrong": wrong, "partial": partial, "first_wrong": first_wrong,
            "interval_s": interval, "links": [l["host_if"] for l in links]}


def ask_every_link(links: list[dict], multicast: bool, ident0: int) -> dict:
    """
    One legacy AAAA query per link, all at once (to ff02::fb, or to the
    host's ULA); wait up to 3 s for every answer.  Blocking.
    """
    socks = {}
    for n, link in enumerate(links):
        s = client_socket(link)
        socks[s.fileno()] = (s, link, ident0 + n)
    answers, latencies = ask_all_at_once(
        socks, lambda link: GROUP6 if multicast else link["host_ip6"], TYPE_AAAA, len(links)
    )
    correct, wrong = 0, []
    for host_if, replies in answers.items():
        ok = len(replies) == 1
        for data, source, ident, link in replies:
            verdict, what = judge(data, source, link, {ident})
            ok = ok and verdict == "ok"
            if verdict != "ok":
                wrong.append(what)
        correct += ok
    return {
        "asked": len(links),
        "correct": correct,
        "unanswered": [l["host_if"] for l in links if l["host_if"] not in answers],
        "wrong": wrong[:5],
        "all_answered_ms": max(latencies) * 1000 if latencies else None,
    }


def link_locals_ready() -> set[str]:
    """
    The interfaces of this namespace whose fe80:: address has passed DAD
    (in C{/proc/net/if_inet6}, without C{IFA_F_TENTATIVE}, 0x40).
    """
    ready = set()
    with open("/proc/net/if_inet6") as f:
        for line in f:
            address, _, _, _, flags, name = line.split()
            if address.startswith("fe80") and not int(flags, 16) & 0x40:
                ready.add(name)
    return ready


async def watch_link_locals(mdns, links: list[dict], t0: float, sleep, timeout: float = 20.0) -> dict:
    """
    When every link of C{links} (the late ones) had its host end's
    link-local address out of DAD (the kernel), and when the responder
    held an AAAA record for it on that link (us), in seconds after
    C{t0}; polled every 10 ms.  The time until the links answer with
    both addresses is the sum of the two waits.
    """
    want = {l["host_if"]: _norm(l["host_ll"]) for l in links}
    ready: dict[str, float] = {}
    published: dict[str, float] = {}
    while len(published) < len(want) and time.perf_counter() - t0 < timeout:
        now = time.perf_counter() - t0
        for name in link_locals_ready() & set(want):
            ready.setdefault(name, now)
        for index, iface in list(mdns.transport.interfaces.items()):
            if iface.name in want and iface.name not in published and any(
                r.rtype == TYPE_AAAA and _norm(str(r.rdata)) == want[iface.name]
                for r in mdns.responder.records_for(index)
            ):
                published[iface.name] = now
        await sleep(0.01)
    return {
        "ll_dad_done_s": max(ready.values()) if len(ready) == len(want) else None,
        "ll_published_s": max(published.values()) if len(published) == len(want) else None,
    }


def legacy_rounds(links: list[dict]) -> dict:
    """
    L{ask_every_link} by multicast, then by unicast to the host's ULA.
    """
    return {"multicast_legacy": ask_every_link(links, True, 3000),
            "unicast_legacy": ask_every_link(links, False, 4000)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("ask")
    a.add_argument("--links", required=True)
    a.add_argument("--late", action="store_true")
    a.add_argument("--interval", type=float, default=0.1)
    a.add_argument("--timeout", type=float, default=20.0)
    args = p.parse_args(argv)
    with open(args.links) as f:
        links = [l for l in json.load(f) if bool(l.get("late")) == args.late]
    print("RESULT " + json.dumps(until_every_link_answers(links, args.timeout, args.interval)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
