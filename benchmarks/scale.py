"""
Scale benchmarks, each run by L{benchmarks.run} as its own process in the
host namespace (a fresh reactor, and an RSS that is ours alone).

``services``: one L{MDNSService} publishing N services.  Measures the time
from the first C{register} until every Deferred has fired, the RSS per
service, then browses for the type from a client namespace (a plain
multicast PTR query from port 5353, as a browser asks) and checks that all N
instances arrive, spread over datagrams no larger than the link MTU allows,
with only the link's own address in them.

``interfaces``: one L{MDNSService} on every link of a many-link host.
Measures start-up (ports open, host name claimed everywhere, and the time
until every link has answered a legacy A question correctly), counts the
ports and sockets, and asks a legacy A question on every link (multicast
and unicast): each answer must carry exactly that link's address.  Then
the links marked C{late} (present from the start, with their addresses,
but down) are plugged in at once (C{ip link set up}), and the time until
each answers correctly is measured the same way.  When the links have
IPv6 (a ULA prefix each; see L{benchmarks.scale_ipv6}), the same is done
over IPv6 at the same time: legacy AAAA questions to ff02::fb and to the
host's ULA, each answer holding exactly that link's ULA and link-local
address, the time until every link answers after start and after being
plugged in, and one IPv6 port per link.

Prints C{RESULT {json}}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import socket
import subprocess
import sys
import time

import psutil
from twisted.internet import defer, reactor, task, threads

from benchmarks import scale_ipv6, wire
from benchmarks.asking import ask_all_at_once
from benchmarks.asking import answering_summary, start_asking
from tests.netns import inside
from twisted_mdns.message import TYPE_A, name_key
from twisted_mdns.records import ServiceInfo, host_name
from twisted_mdns.service import MDNSService

GROUP = "224.0.0.251"


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.perf_counter() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        await sleep(interval)


def host_claimed(mdns: MDNSService, hostname: str):
    key = name_key(host_name(hostname))

    def check() -> bool:
        ifaces = mdns.transport.interfaces
        return bool(ifaces) and all(
            any(r.rtype == TYPE_A and r.key == key for r in mdns.responder.records_for(ix))
            for ix in ifaces
        )

    return check


def mdns_socket(ns: str, address: str, rcvbuf: int = 16 << 20) -> socket.socket:
    """
    A client's mDNS socket: port 5353 in namespace C{ns}, joined to the
    group on C{address}'s link, sending multicast there.
    """
    with inside(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind(("0.0.0.0", 5353))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(GROUP) + socket.inet_aton(address))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return s


def collect(sock: socket.socket, quiet: float, limit: float, first: float) -> list[tuple[float, bytes, tuple]]:
    """
    Read until nothing arrives for C{quiet} seconds once something has (at
    most C{first} seconds for the first datagram), or C{limit} passed.
    Blocking; run it in a thread.
    """
    got = []
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        sock.settimeout(quiet if got else first)
        try:
            data, source = sock.recvfrom(9000)
        except socket.timeout:
            break
        got.append((time.perf_counter(), data, source))
    return got


# -- services ------------------------------------------------------------------


async def services(args) -> dict:
    mdns = MDNSService(hostname="bench")
    rss_empty = rss()
    mdns.startService()
    await wait_for(host_claimed(mdns, "bench"), 10, "the host name")
    rss0 = rss()
    n = args.count
    infos = [ServiceInfo(f"Instance {i:05d}", "_bench._tcp", 1024 + i, {"n": str(i)}) for i in range(n)]
    counters0 = dict(mdns.counters)
    t0 = time.perf_counter()
    ds = [mdns.register(info) for info in infos]
    t_called = time.perf_counter()
    # Wait for every Deferred by looking, not with gatherResults: that
    # adds a DeferredList entry and callbacks to each Deferred (about
    # 0.5 KB per Deferred on the way, 0.4 KB kept until it returns), the
    # benchmark's own memory counted as the responder's.  Looked at every
    # 5 ms; the last one first (they fire in order).
    await wait_for(lambda: ds[-1].called and all(d.called for d in ds), 300, "the registrations", interval=0.005)
    t1 = time.perf_counter()
    rss1 = rss()
    published = [d.result for d in ds]
    failed = [p for p in published if not isinstance(p, ServiceInfo)]
    if failed:
        raise RuntimeError(f"{len(failed)} registrations failed: {failed[0]}")
    renamed = sum(1 for a, b in zip(infos, published) if a.instance != b.instance)
    result = {
        "count": n,
        "register_calls_s": t_called - t0,
        "registration_s": t1 - t0,
        "renamed": renamed,
        "rss_before_mb": rss0 / 2**20,
        "rss_after_mb": rss1 / 2**20,
        "rss_empty_mb": rss_empty / 2**20,
        "rss_per_service_kb": (rss1 - rss0) / n / 1024,
    }
    # The second announcement goes out 1 s after the first; a record is
    # multicast at most once a second, so ask after that.
    await sleep(2.2)
    # Our own probes and announcements come back to us (IP_MULTICAST_LOOP):
    # what they did to the link's cache (issue 13: they must not churn it).
    result["cache_during_registration"] = {
        k: v - counters0.get(k, 0) for k, v in mdns.counters.items()
        if k.startswith(("cache.", "responses.own")) and v != counters0.get(k, 0)
    }
    result["rss_settled_mb"] = rss() / 2**20
    sock = mdns_socket(args.client_ns, args.client_ip)
    before = dict(mdns.counters)
    query = wire.build_query("_bench._tcp.local", wire.TYPE_PTR)
    t_q = time.perf_counter()
    sock.sendto(query, (GROUP, 5353))
    got = await threads.deferToThread(collect, sock, 1.5, 30.0, 15.0)
    sock.close()
    result["browse"] = judge_browse(got, t_q, {i.instance for i in infos}, args)
    result["counters_during_browse"] = {
        k: v - before.get(k, 0) for k, v in mdns.counters.items() if v != before.get(k, 0)
    }
    # The same question from a legacy resolver (an ephemeral port): one
    # datagram comes back; say how much of the answer it holds.
    result["legacy_browse"] = await threads.deferToThread(legacy_browse, args)
    t_stop = time.perf_counter()
    await mdns.stopService()
    result["stop_s"] = time.perf_counter() - t_stop
    return result


def legacy_browse(args) -> dict:
    with inside(args.client_ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((args.client_ip, 0))
    s.sendto(wire.build_query("_bench._tcp.local", wire.TYPE_PTR, 0x5151), (args.host_ip, 5353))
    got = collect(s, 0.5, 10.0, 5.0)
    s.close()
    out = {"datagrams": len(got), "answers": 0, "tc": None, "bytes": 0}
    for _, data, _ in got:
        try:
            r = wire.parse(data)
        except wire.WireError:
            continue
        out["answers"] += sum(1 for rr in r.answers if rr.rtype == wire.TYPE_PTR)
        out["tc"] = bool(r.flags & 0x0200)
        out["bytes"] = max(out["bytes"], len(data))
    return out


def judge_browse(got, t_q: float, expected: set[str], args) -> dict:
    ptr_key = "_bench._tcp.local."
    instances: dict[str, int] = {}
    packets = max_size = malformed = foreign = 0
    wrong_addresses: set[str] = set()
    srv = txt = 0
    first = last = None
    for t, data, source in got:
        if source[0] != args.host_ip:
            foreign += 1
            continue
        try:
            r = wire.parse(data)
        except wire.WireError:
            malformed += 1
            continue
        if not r.flags & wire.FLAG_QR:
            continue
        packets += 1
        max_size = max(max_size, len(data))
        first = t if first is None else first
        last = t
        for rr in r.answers:
            if rr.rtype == wire.TYPE_PTR and rr.key == ptr_key:
                target = wire.ptr_target(data, rr)
                if target[1:] == (b"_bench", b"_tcp", b"local"):
                    inst = target[0].decode("utf-8", "replace")
                    instances[inst] = instances.get(inst, 0) + 1
        for rr in r.answers + r.additionals:
            if rr.rtype == wire.TYPE_A and wire.a_address(rr) != args.host_ip:
                wrong_addresses.add(wire.a_address(rr))
            srv += rr.rtype == wire.TYPE_SRV
            txt += rr.rtype == wire.TYPE_TXT
    found = set(instances)
    return {
        "packets": packets,
        "max_packet_bytes": max_size,
        "packet_limit": args.mtu - 28,
        "instances_found": len(found & expected),
        "instances_missing": len(expected - found),
        "instances_unexpected": len(found - expected),
        "duplicates": sum(c - 1 for c in instances.values()),
        "srv_additionals": srv,
        "txt_additionals": txt,
        "wrong_addresses": sorted(wrong_addresses),
        "malformed": malformed,
        "foreign": foreign,
        "first_packet_ms": (first - t_q) * 1000 if first else None,
        "last_packet_ms": (last - t_q) * 1000 if last else None,
        "ok": found == expected and not wrong_addresses and max_size <= args.mtu - 28,
    }


# -- interfaces -----------------------------------------------------------------


def open_sockets() -> dict:
    udp = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            udp += 1
    conns = psutil.Process().net_connections(kind="udp")
    return {"sockets": udp, "udp_5353": sum(1 for c in conns if c.laddr and c.laddr.port == 5353)}


def rcvbuf_errors() -> dict:
    """
    UDP datagrams this namespace's kernel dropped for a full socket
    receive buffer, per family, so far (C{/proc/net/snmp}, C{snmp6}).
    """
    with open("/proc/net/snmp") as f:
        udp = [line.split() for line in f if line.startswith("Udp:")]
    with open("/proc/net/snmp6") as f:
        udp6 = dict(line.split() for line in f if line.strip())
    return {"ipv4": int(dict(zip(udp[0], udp[1]))["RcvbufErrors"]), "ipv6": int(udp6["Udp6RcvbufErrors"])}


def _since(before: dict) -> dict:
    return {k: v - before[k] for k, v in rcvbuf_errors().items()}


def _correct(data: bytes, source: tuple, link: dict, idents: set[int]) -> bool:
    try:
        r = wire.parse(data)
    except wire.WireError:
        return False
    addrs = sorted(wire.a_address(rr) for rr in r.answers if rr.rtype == wire.TYPE_A)
    return r.id in idents and addrs == [link["host_ip"]] and tuple(source) == (link["host_ip"], 5353)


def until_every_link_answers(links: list[dict], timeout: float, interval: float) -> dict:
    """
    Ask every link a legacy A question (multicast from an ephemeral port)
    every C{interval} seconds until it has answered one correctly, for at
    most C{timeout} seconds; report when each did, as C{time.monotonic()}
    values (the system's clock, comparable between processes).  Run by
    L{ask} in a process of its own, so that the asking does not compete
    with the responder for its interpreter.
    """
    socks: dict[int, tuple[socket.socket, dict]] = {}
    for link in links:
        with inside(link["client_ns"]):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((link["client_ip"], 0))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link["client_ip"]))
            s.setblocking(False)
        socks[s.fileno()] = (s, link)
    sent: dict[int, set[int]] = {fd: set() for fd in socks}
    answered: dict[str, float] = {}
    wrong = 0
    ident = 0x4000
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
                    s.sendto(wire.build_query("bench.local", wire.TYPE_A, ident), (GROUP, 5353))
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
                if _correct(data, source, link, sent[fd]):
                    answered[link["host_if"]] = time.monotonic()
                else:
                    wrong += 1
    for s, _ in socks.values():
        s.close()
    return {"answered_at": answered, "wrong": wrong, "interval_s": interval,
            "links": [l["host_if"] for l in links]}


def ask(args) -> dict:
    with open(args.links) as f:
        links = [l for l in json.load(f) if bool(l.get("late")) == args.late]
    return until_every_link_answers(links, args.timeout, args.interval)


def ask_every_link(links: list[dict], multicast: bool, ident0: int) -> dict:
    """
    One legacy A query per link, all at once; wait for every answer.
    Blocking; run it in a thread.
    """
    socks = {}
    for n, link in enumerate(links):
        with inside(link["client_ns"]):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((link["client_ip"], 0))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link["client_ip"]))
            s.setblocking(False)
        socks[s.fileno()] = (s, link, ident0 + n)
    answers, latencies = ask_all_at_once(
        socks, lambda link: GROUP if multicast else link["host_ip"], wire.TYPE_A, len(links)
    )
    correct, wrong = 0, []
    for host_if, replies in answers.items():
        ok = len(replies) == 1
        for data, source, ident, link in replies:
            try:
                r = wire.parse(data)
            except wire.WireError:
                ok = False
                continue
            addrs = sorted(wire.a_address(rr) for rr in r.answers if rr.rtype == wire.TYPE_A)
            ok = ok and r.id == ident and addrs == [link["host_ip"]] and source == (link["host_ip"], 5353)
            if not ok:
                wrong.append({"link": host_if, "addresses": addrs, "source": list(source), "id": r.id})
        correct += ok
    return {
        "asked": len(links),
        "correct": correct,
        "unanswered": [l["host_if"] for l in links if l["host_if"] not in answers],
        "wrong": wrong[:5],
        "all_answered_ms": max(latencies) * 1000 if latencies else None,
    }


async def watch_links(mdns: MDNSService, names: set[str], t0: float, timeout: float) -> dict:
    """
    When a port was open on each of the links C{names}, and when the host
    name was claimed there, in seconds after C{t0} (polled every 10 ms).
    """
    key = name_key(host_name("bench"))
    opened: dict[str, float] = {}
    claimed: dict[str, float] = {}
    while len(claimed) < len(names) and time.perf_counter() - t0 < timeout:
        now = time.perf_counter() - t0
        for index, iface in list(mdns.transport.interfaces.items()):
            if iface.name not in names:
                continue
            opened.setdefault(iface.name, now)
            if iface.name not in claimed and any(
                r.rtype == TYPE_A and r.key == key for r in mdns.responder.records_for(index)
            ):
                claimed[iface.name] = now
        await sleep(0.01)
    return {
        "ports_open_s": max(opened.values()) if len(opened) == len(names) else None,
        "claimed_s": max(claimed.values()) if len(claimed) == len(names) else None,
    }


def plug_in(links: list[dict], ns: str | None = None) -> None:
    """
    C{ip link set up} on the host's end of every link, in one C{ip}
    process (as close to "at once" as the kernel allows), in namespace
    C{ns} or our own.
    """
    batch = "".join(f"link set {l['host_if']} up\n" for l in links)
    subprocess.run(["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"], input=batch, text=True, check=True)


async def interfaces(args) -> dict:
    with open(args.links) as f:
        everything = json.load(f)
    links = [l for l in everything if not l.get("late")]
    late = [l for l in everything if l.get("late")]
    base, drops = open_sockets(), rcvbuf_errors()
    # Every link asked until it answers, from the start: what a client on
    # each link sees.
    ipv6 = bool(everything) and all(l.get("host_ip6") for l in everything)
    asking, asking6 = await start_asking(args, False, ipv6)
    t0 = time.perf_counter()
    t0_mono = time.monotonic()
    mdns = MDNSService(hostname="bench")
    mdns.startService()
    t_started = time.perf_counter()
    await wait_for(host_claimed(mdns, "bench"), 20, "the host name on every interface")
    t_claimed = time.perf_counter()
    counters_at_claim = dict(mdns.counters)
    start_answers = answering_summary(await threads.deferToThread(asking.result), t0_mono)
    if asking6:
        start6 = answering_summary(await threads.deferToThread(asking6.result), t0_mono)
    sockets = open_sockets()
    names = sorted(i.name for i in mdns.transport.interfaces.values())
    wanted = sorted(l["host_if"] for l in links)
    result = {
        "links": len(links),
        "start_service_s": t_started - t0,
        "host_claimed_s": t_claimed - t0,
        "answering_after_start": start_answers,
        "counters_at_claim": counters_at_claim,
        "ports": len(mdns.transport.ports),
        "interfaces_selected": len(names),
        "selected_all_links": names == wanted,
        "sockets_opened": sockets["sockets"] - base["sockets"],
        "udp_5353_sockets": sockets["udp_5353"],
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }
    # A unique answer goes out at once; give the second announcement time
    # to pass so nothing but the answers is in flight.
    result["multicast_legacy"] = await threads.deferToThread(ask_every_link, links, True, 1000)
    result["unicast_legacy"] = await threads.deferToThread(ask_every_link, links, False, 2000)
    if asking6:
        before = rcvbuf_errors()
        result["ipv6"] = {"answering_after_start": start6, "ports": len(mdns.transport.ports6),
                          **await threads.deferToThread(scale_ipv6.legacy_rounds, links)}
        result["ipv6"]["rcvbuf_errors_legacy_rounds"] = _since(before)
    if late:
        before = getattr(mdns.monitor, "enumerations", None)
        asking, asking6 = await start_asking(args, True, ipv6)
        t_plug = time.perf_counter()
        t_plug_mono = time.monotonic()
        watching = defer.ensureDeferred(watch_links(mdns, {l["host_if"] for l in late}, t_plug, 20.0))
        if asking6:
            watching6 = defer.ensureDeferred(scale_ipv6.watch_link_locals(mdns, late, t_plug, sleep))
        await threads.deferToThread(plug_in, late)
        t_plugged = time.perf_counter()
        result["late"] = answering_summary(await threads.deferToThread(asking.result), t_plug_mono)
        result["late"].update(await watching)
        result["late"]["plug_in_s"] = t_plugged - t_plug
        after = getattr(mdns.monitor, "enumerations", None)
        if before is not None and after is not None:
            result["late"]["enumerations"] = after - before
        result["late"]["ports"] = len(mdns.transport.ports)
        if asking6:
            late6 = answering_summary(await threads.deferToThread(asking6.result), t_plug_mono)
            result["ipv6"]["late"] = dict(late6, ports=len(mdns.transport.ports6), **await watching6)
    result["enumerations"] = getattr(mdns.monitor, "enumerations", None)
    result["rcvbuf_errors"] = _since(drops)
    t_stop = time.perf_counter()
    await mdns.stopService()
    result["stop_s"] = time.perf_counter() - t_stop
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("services")
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--client-ns", required=True)
    s.add_argument("--client-ip", required=True)
    s.add_argument("--host-ip", required=True)
    s.add_argument("--mtu", type=int, default=1500)
    s.add_argument("--profile", default=None)
    i = sub.add_parser("interfaces")
    i.add_argument("--links", required=True,
                   help="a JSON file: [{host_if, host_ip, client_ns, client_ip, late}]")
    i.add_argument("--ask-interval", type=float, default=0.1,
                   help="seconds between two questions to a link not answering yet")
    i.add_argument("--profile", default=None)
    a = sub.add_parser("ask")
    a.add_argument("--links", required=True)
    a.add_argument("--late", action="store_true")
    a.add_argument("--interval", type=float, default=0.1)
    a.add_argument("--timeout", type=float, default=20.0)
    args = p.parse_args(argv)
    if args.what == "ask":
        print("RESULT " + json.dumps(ask(args)), flush=True)
        return 0
    fn = services if args.what == "services" else interfaces
    outcome: dict = {}

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

    async def go():
        try:
            outcome["result"] = await fn(args)
        except BaseException as e:  # report, don't hang
            import traceback

            outcome["result"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(go()))
    reactor.run()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print("RESULT " + json.dumps(outcome.get("result")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
