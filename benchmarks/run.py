"""
Run every benchmark, in namespaces it builds and tears down itself.

    sudo python3 -m benchmarks.run   # from the project root

Linux, root and iproute2 are required (the namespaces come from
L{tests.netns.Topology}).  Nothing leaves the namespaces: the responders
and clients talk over veth links between them.

 1. Throughput/latency: a closed-loop client process in a client namespace
    keeps 32 legacy unicast A queries in flight against, in turn, the bare
    socket ceiling, twisted_mdns (the real L{MDNSService}, its own process)
    and python-zeroconf, each in the host namespace; it reports answered
    queries/s, p50/p99 latency and wrong/missing answers.
 2. Scale: 10,000 services on one responder (registration time, RSS per
    service, a PTR browse that must return all of them) and 240 dual-stack
    interfaces (start-up, ports, one correct answer per link over IPv4 and
    IPv6, 8 links plugged in later).

Prints a report with the ratios measured in this run; C{--json FILE} also
writes every figure.  Exits 1 when any answer was wrong or missing, or a
scale check failed (L{failures}): such figures cannot be trusted.  See
C{benchmarks/README.rst}.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: python3 benchmarks/run.py
    sys.path.insert(0, ROOT)

from benchmarks.manylinks import (  # noqa: E402
    add_unplugged_link, host_link_locals, link_checks, millis as _ms, report_lines,
)
from tests.netns import Topology, ip, netns_unavailable  # noqa: E402

THROUGHPUT_TARGETS = {"vs_zeroconf": 1.5, "vs_ceiling": 0.8}


def _env(tree: str | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    env.pop("BENCH_TWISTED_MDNS_TREE", None)
    if tree:
        env["BENCH_TWISTED_MDNS_TREE"] = tree
    return env


def read_until(proc: subprocess.Popen, lines: list[str], found: Callable[[str], Any], timeout: float) -> Any:
    """
    Read C{proc}'s output a line at a time (each kept in C{lines}) until
    C{found(line)} is not C{None}, and return that; C{None} at the end of
    the output or after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    out = proc.stdout
    assert out is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = out.readline()
        if not line:
            break
        lines.append(line)
        result = found(line)
        if result is not None:
            return result
    return None


class Process:
    """
    A benchmark process under C{ip netns exec}: C{ip} execs the command, so
    its pid is the Python process's.
    """

    def __init__(self, ns: str, module: str, *args: str, tree: str | None = None,
                 cpu: int | None = None) -> None:
        argv = _pinned(cpu) + ["ip", "netns", "exec", ns, sys.executable, "-m", module, *args]
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(tree), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        found = read_until(
            self.proc, self.lines,
            lambda line: line[len(prefix):].strip() if line.startswith(prefix) else None, timeout,
        )
        if found is not None:
            return found
        self.stop()
        raise RuntimeError(
            f"{' '.join(self.argv[4:])}: no {prefix.strip()} line within {timeout}s\n"
            f"stdout: {''.join(self.lines)[-2000:]}\nstderr: {self.proc.stderr.read()[-4000:]}"
        )

    def stop(self, timeout: float = 10.0) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


def _pinned(cpu: int | None) -> list[str]:
    """
    C{taskset -c CPU}, when asked for and possible: the responder and the
    client each on their own CPU, the same two CPUs for every responder.
    """
    if cpu is None or not shutil.which("taskset") or cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


def run_module(ns: str, module: str, *args: str, timeout: float, tree: str | None = None,
               cpu: int | None = None) -> str:
    argv = _pinned(cpu) + ["ip", "netns", "exec", ns, sys.executable, "-m", module, *args]
    done = subprocess.run(argv, cwd=ROOT, env=_env(tree), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}): {done.stderr[-4000:]}")
    return done.stdout


# -- 1. throughput / latency ----------------------------------------------------


def throughput(args, log) -> dict:
    topo = Topology.build(clients=("a",), virtual=False)
    try:
        link = topo.links["a"]
        servers = {
            "ceiling": ("benchmarks.serve_ceiling", "--address", link.host_ip),
            "ceiling_pktinfo": ("benchmarks.serve_ceiling", "--address", link.host_ip, "--pktinfo"),
            "twisted_mdns": ("benchmarks.serve_twisted_mdns", "--hostname", "bench")
            + (("--profile", args.profile) if args.profile else ()),
            "zeroconf": ("benchmarks.serve_zeroconf", "--address", link.host_ip, "--hostname", "bench"),
        }
        micro_args = ("benchmarks.micro", "--host-ip", link.host_ip,
                      "--client-ns", link.client_ns, "--client-ip", link.client_ip)
        micro = _result(run_module(topo.host_ns, *micro_args, timeout=90))
        log(f"  server cost per legacy query, no client competing: twisted_mdns "
            f"{micro['twisted_mdns_us_best']:.1f} us, recvmsg/sendmsg ceiling {micro['ceiling_pktinfo_us_best']:.1f} us")
        trees = {k: None for k in servers}
        if args.baseline:
            micro["baseline"] = _result(run_module(topo.host_ns, *micro_args, timeout=90, tree=args.baseline))
            log(f"  the same for the baseline: twisted_mdns {micro['baseline']['twisted_mdns_us_best']:.1f} us, "
                f"ceiling {micro['baseline']['ceiling_pktinfo_us_best']:.1f} us")
            servers["twisted_mdns@baseline"] = servers["twisted_mdns"]
            trees["twisted_mdns@baseline"] = args.baseline
        runs: dict[str, list[dict]] = {k: [] for k in servers}
        # Responder on CPU 0, busy-polling client on CPU 1, when there are two.
        pinned = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
        for round_ in range(args.rounds):
            for kind, (module, *sargs) in servers.items():
                server = Process(topo.host_ns, module, *sargs, tree=trees[kind],
                                 cpu=0 if pinned else None)
                try:
                    ready = json.loads(server.wait_for_line("READY ", 20) or "{}")
                    out = run_module(
                        link.client_ns, "benchmarks.client",
                        "--target", link.host_ip, "--expect", link.host_ip,
                        "--name", "bench.local", "--inflight", str(args.inflight),
                        "--duration", str(args.duration), "--server-pid", str(server.pid),
                        *(("--busy-poll",) if pinned else ()),
                        timeout=args.duration + 30, cpu=1 if pinned else None,
                    )
                finally:
                    tail = server.stop()
                result = json.loads(out.strip().splitlines()[-1])
                result["ready"] = ready
                for line in tail.splitlines():
                    if line.startswith("COUNTERS "):
                        result["server_counters"] = json.loads(line[len("COUNTERS "):])
                runs[kind].append(result)
                log(f"  {kind:21s} round {round_ + 1}: {result['qps']:8.0f} q/s  "
                    f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
                    f"wrong {result['wrong']}  missing {result['missing']}  "
                    f"server cpu {result.get('server_cpu', float('nan')):.2f} "
                    f"({result.get('server_us_per_query', float('nan')):.1f} us/q, "
                    f"{result.get('server_sleeps_per_1000', float('nan')):.0f} sleeps/1000 q)  "
                    f"client cpu {result['client_cpu']:.2f}")
    finally:
        topo.destroy()
    summary = {"micro": micro}
    for kind, results in runs.items():
        best = sorted(results, key=lambda r: r["qps"])[len(results) // 2]  # the median run
        summary[kind] = dict(
            best, qps_all=[r["qps"] for r in results],
            wrong_all=[r["wrong"] for r in results], missing_all=[r["missing"] for r in results],
        )
    tm, zc, ceil = (summary[k]["qps"] for k in ("twisted_mdns", "zeroconf", "ceiling"))
    summary["ratios"] = {
        "twisted_mdns/zeroconf": tm / zc if zc else float("inf"),
        "twisted_mdns/ceiling": tm / ceil if ceil else float("nan"),
    }
    # The same ratios round by round (the responders of one round ran
    # within seconds of each other, so they saw the same machine).
    summary["ratios_by_round"] = {
        "twisted_mdns/zeroconf": [a["qps"] / b["qps"] for a, b in zip(runs["twisted_mdns"], runs["zeroconf"])],
        "twisted_mdns/ceiling": [a["qps"] / b["qps"] for a, b in zip(runs["twisted_mdns"], runs["ceiling"])],
    }
    if "twisted_mdns@baseline" in summary:
        base = summary["twisted_mdns@baseline"]["qps"]
        summary["ratios"]["baseline/zeroconf"] = base / zc if zc else float("inf")
        summary["ratios"]["baseline/ceiling"] = base / ceil if ceil else float("nan")
    return summary


# -- 2a. many services ----------------------------------------------------------


def services(args, log) -> dict:
    topo = Topology.build(clients=("a",), virtual=False)
    try:
        link = topo.links["a"]
        extra = ("--profile", args.profile + ".services") if args.profile else ()

        def one(count: int, tree: str | None = None, extra=()) -> dict:
            return _result(run_module(
                topo.host_ns, "benchmarks.scale", "services", "--count", str(count),
                "--client-ns", link.client_ns, "--client-ip", link.client_ip, "--host-ip", link.host_ip,
                *extra, timeout=300, tree=tree,
            ))

        result = one(args.services, extra=extra)
        if args.baseline:
            n = args.baseline_services
            log(f"  {n} services, this tree and the baseline")
            result["small"] = one(n)
            result["baseline"] = one(n, tree=args.baseline)
    finally:
        topo.destroy()
    return result


# -- 2b. many interfaces ---------------------------------------------------------


def interfaces(args, log) -> dict:
    t0 = time.perf_counter()
    clients = tuple(f"c{i}" for i in range(args.interfaces))
    topo = Topology.build(clients=clients, virtual=False)
    try:
        if args.ipv6:
            # ULA prefixes added nodad; the kernel's link-local addresses
            # pass DAD before the responder starts.
            topo.add_ipv6(dad=False, wait=True, timeout=60.0)
        links = [
            {"host_if": l.host_if, "host_ip": l.host_ip, "client_ns": l.client_ns, "client_ip": l.client_ip,
             "client_if": l.client_if, **({"host_ip6": l.host_ip6, "client_ip6": l.client_ip6} if args.ipv6 else {})}
            for l in topo.links.values()
        ]
        for n in range(args.late_interfaces):
            links.append(add_unplugged_link(topo, f"l{n}", f"late{n}", args.interfaces + 1 + n, args.ipv6))
        if args.ipv6:
            host_link_locals(topo, links)
        built = time.perf_counter() - t0
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(links, f)
        extra = ("--profile", args.profile + ".interfaces") if args.profile else ()

        def unplug() -> None:
            # The late links go down again, for the next responder to plug in.
            for l in links:
                if l.get("late"):
                    ip("link", "set", l["host_if"], "down", ns=topo.host_ns)
                    if l.get("host_ip6"):  # going down flushed it
                        ip("-6", "addr", "replace", f"{l['host_ip6']}/64", "dev", l["host_if"], "nodad",
                           ns=topo.host_ns)

        try:
            out = run_module(topo.host_ns, "benchmarks.scale", "interfaces", "--links", f.name,
                             "--ask-interval", str(args.ask_interval), *extra, timeout=180)
            baseline = avahi = None
            if args.baseline:
                unplug()
                log("  the baseline on the same links")
                baseline = _result(run_module(topo.host_ns, "benchmarks.scale", "interfaces",
                                              "--links", f.name, "--ask-interval", str(args.ask_interval),
                                              timeout=180, tree=args.baseline))
            if args.avahi and shutil.which("avahi-daemon"):
                unplug()
                log("  avahi-daemon on the same links")
                avahi = avahi_interfaces(topo, f.name, links, args)
        finally:
            os.unlink(f.name)
    finally:
        topo.destroy()
    result = _result(out)
    result["topology_build_s"] = built
    if baseline is not None:
        baseline["topology_build_s"] = built
        result["baseline"] = baseline
    if avahi is not None:
        result["avahi"] = avahi
    return result


def avahi_interfaces(topo: Topology, links_file: str, links: list[dict], args) -> dict:
    """
    Debian's avahi-daemon (host name C{bench}, every interface, IPv4) on
    the same links, timed the same way: every link asked from the moment
    the daemon is started until it answers, then the late links plugged
    in.  avahi joins the group on every link with one socket, so the
    namespace's C{net.ipv4.igmp_max_memberships} (20 by default: avahi
    would answer on 20 links only) is raised to 1,024 first.
    """
    from benchmarks.asking import Asking, answering_summary
    from benchmarks.scale import plug_in
    from tests.peers import AvahiDaemon

    subprocess.run(["ip", "netns", "exec", topo.host_ns, "sysctl", "-qw",
                    "net.ipv4.igmp_max_memberships=1024"], check=True)
    daemon = AvahiDaemon(topo.host_ns, "bench", interfaces=())
    daemon.write_files()
    popen = {"cwd": ROOT, "env": _env()}
    asking = Asking(links_file, args.ask_interval, late=False, **popen)
    asking.wait_asking()
    t0 = time.monotonic()
    with open(daemon.workdir / "avahi.stderr", "w") as err:
        proc = subprocess.Popen(["ip", "netns", "exec", topo.host_ns] + daemon.command(),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        result: dict = {"answering_after_start": answering_summary(asking.result(), t0)}
        late = [l for l in links if l.get("late")]
        if late:
            asking = Asking(links_file, args.ask_interval, late=True, **popen)
            asking.wait_asking()
            t_plug = time.monotonic()
            plug_in(late, topo.host_ns)
            result["late"] = answering_summary(asking.result(), t_plug)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    return result


def _result(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            value = json.loads(line[len("RESULT "):])
            if value and "error" in value:
                raise RuntimeError(f"{value['error']}\n{value.get('traceback', '')}")
            return value
    raise RuntimeError(f"no RESULT line in:\n{out[-3000:]}")


# -- checks ------------------------------------------------------------------------


def failures(results: dict) -> list[str]:
    """
    Every check of this run that failed, one line each: a wrong or missing
    answer in any throughput round of any responder (its figures would
    count what was not a correct answer), and each scale check (every
    instance browsed at the right addresses within the MTU; every link
    selected, with one port each and one correct answer per query).

    The figures of a C{--baseline} tree are reported but its failures are
    not counted: it is another tree, often one with known faults.
    """
    out: list[str] = []
    t = results.get("throughput")
    if t:
        for kind, r in t.items():
            if not isinstance(r, dict) or "qps_all" not in r or kind.endswith("@baseline"):
                continue
            for n, (wrong, missing) in enumerate(zip(r.get("wrong_all", [r["wrong"]]),
                                                      r.get("missing_all", [r["missing"]])), start=1):
                if wrong or missing:
                    out.append(f"throughput: {kind} round {n}: {wrong} wrong and {missing} missing answer(s)")
            if not all(r["qps_all"]):
                out.append(f"throughput: {kind} answered nothing in a round")
    s = results.get("services")
    if s:
        for label, part in (("services", s), ("services (small)", s.get("small"))):
            if not part:
                continue
            b = part["browse"]
            if not b["ok"]:
                out.append(
                    f"{label}: PTR browse of {part['count']} instances failed: missing "
                    f"{b['instances_missing']}, wrong addresses {b['wrong_addresses'] or 'none'}, "
                    f"largest packet {b['max_packet_bytes']} B (limit {b['packet_limit']} B)"
                )
    i = results.get("interfaces")
    if i:
        out.extend(link_checks(i))
    return out


# -- 3. a busy LAN -----------------------------------------------------------------


def busylan(args, log) -> dict:
    from benchmarks import busylan as bl

    p = argparse.ArgumentParser()
    bl.add_arguments(p)
    opts = p.parse_args([])
    opts.duration, opts.pin, opts.profile, opts.rounds = 10.0, args.pin, None, args.rounds
    opts.baseline = args.baseline
    return bl.measure(opts, log)


# -- report ------------------------------------------------------------------------


def report(results: dict) -> str:
    lines: list[str] = []
    t = results.get("throughput")
    if t:
        kinds = [k for k in ("twisted_mdns", "twisted_mdns@baseline", "zeroconf", "ceiling", "ceiling_pktinfo") if k in t]
        first = t["twisted_mdns"]
        lines.append("Throughput / latency: legacy unicast A queries, %d in flight, %.0f s, closed loop, "
                     "median of %d round(s)" % (first["inflight"], first["elapsed"], len(first["qps_all"])))
        lines.append(f"  {'responder':22s} {'answered q/s':>12s} {'p50 ms':>7s} {'p99 ms':>7s} "
                     f"{'wrong':>6s} {'missing':>7s} {'srv cpu':>7s} {'cli cpu':>7s}  all rounds q/s")
        for kind in kinds:
            r = t[kind]
            lines.append(f"  {kind:22s} {r['qps']:12.0f} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f} "
                         f"{r['wrong']:6d} {r['missing']:7d} {r.get('server_cpu', float('nan')):7.2f} "
                         f"{r['client_cpu']:7.2f}  {' '.join(f'{q:.0f}' for q in r['qps_all'])}")
        ratios = t["ratios"]
        for name, key, target in (("twisted_mdns / python-zeroconf", "twisted_mdns/zeroconf", "vs_zeroconf"),
                                  ("twisted_mdns / ceiling", "twisted_mdns/ceiling", "vs_ceiling")):
            value, goal = ratios[key], THROUGHPUT_TARGETS[target]
            rounds = t.get("ratios_by_round", {}).get(key, [])
            lines.append(f"  {name:30s} = {value:5.2f}  (target >= {goal})  {'ok' if value >= goal else 'BELOW TARGET'}"
                         + (f"   round by round: {' '.join(f'{r:.2f}' for r in rounds)}" if len(rounds) > 1 else ""))
        if "baseline/zeroconf" in ratios:
            lines.append(f"  {'baseline / python-zeroconf':30s} = {ratios['baseline/zeroconf']:5.2f}")
            lines.append(f"  {'baseline / ceiling':30s} = {ratios['baseline/ceiling']:5.2f}")
        m = t["micro"]
        lines.append(f"  server time per query, queue pre-filled, no client running (best of "
                     f"{len(m['twisted_mdns_us'])} x {m['queued']}):")
        lines.append(f"    twisted_mdns {m['twisted_mdns_us_best']:.1f} us, bare recvmsg/sendmsg loop "
                     f"{m['ceiling_pktinfo_us_best']:.1f} us: ratio {m['ceiling_pktinfo_us_best'] / m['twisted_mdns_us_best']:.2f}")
        if "baseline" in m:
            b = m["baseline"]
            lines.append(f"    baseline     {b['twisted_mdns_us_best']:.1f} us, bare recvmsg/sendmsg loop "
                         f"{b['ceiling_pktinfo_us_best']:.1f} us: ratio {b['ceiling_pktinfo_us_best'] / b['twisted_mdns_us_best']:.2f}")
        for kind in kinds:
            if t[kind].get("notes"):
                lines.append(f"  note: {kind}'s legacy answers break RFC 6762 s6.7: {t[kind]['notes']} (distinct answers)")
            if t[kind].get("first_error"):
                lines.append(f"  first wrong answer from {kind}: {t[kind]['first_error']}")
    s = results.get("services")
    if s:
        lines.append("")
        lines.extend(_services_lines(s, "Scale: %d services on one MDNSService" % s["count"]))
        if "baseline" in s:
            lines.extend(_services_lines(s["small"], "  this tree, %d services:" % s["small"]["count"], brief=True))
            lines.extend(_services_lines(s["baseline"], "  baseline, %d services:" % s["baseline"]["count"], brief=True))
    b = results.get("busylan")
    if b:
        from benchmarks.busylan import report as busylan_report

        lines.append("")
        lines.extend(busylan_report(b))
    i = results.get("interfaces")
    if i:
        lines.append("")
        lines.extend(report_lines(i))
    return "\n".join(lines)


def _services_lines(s: dict, title: str, brief: bool = False) -> list[str]:
    b = s["browse"]
    ind = "    " if brief else "  "
    out = [title]
    out.append(f"{ind}registration (register() to every Deferred fired): {s['registration_s']:.2f} s"
               f" (register() calls {s['register_calls_s']:.2f} s, renamed {s['renamed']})")
    out.append(f"{ind}RSS {s['rss_before_mb']:.1f} -> {s['rss_after_mb']:.1f} MB: "
               f"{s['rss_per_service_kb']:.2f} KiB per service")
    if "cache_during_registration" in s:
        c = s["cache_during_registration"]
        if "rss_settled_mb" in s:
            out.append(f"{ind}RSS once announced: {s['rss_settled_mb']:.1f} MB: "
                       f"{(s['rss_settled_mb'] - s['rss_before_mb']) * 1024 / s['count']:.2f} KiB per service")
        out.append(f"{ind}our own looped-back announcements, in the link's cache: "
                   f"{c.get('cache.added', 0)} added, {c.get('cache.updated', 0)} refreshed, "
                   f"{c.get('cache.evicted', 0)} evicted, {c.get('responses.own-skipped', 0)} records skipped")
    out.append(f"{ind}PTR browse: {b['instances_found']}/{s['count']} instances in {b['packets']} packets "
               f"(largest {b['max_packet_bytes']} B, limit {b['packet_limit']} B), first after "
               f"{_ms(b['first_packet_ms'])}, last after {_ms(b['last_packet_ms'])}; "
               f"missing {b['instances_missing']}, duplicates {b['duplicates']}, "
               f"wrong addresses {b['wrong_addresses'] or 'none'}: {'ok' if b['ok'] else 'FAILED'}")
    lb = s.get("legacy_browse")
    if lb and not brief:
        out.append(f"{ind}legacy unicast PTR query (ephemeral port): {lb['datagrams']} datagram(s), "
                   f"{lb['answers']} of {s['count']} PTR answers, {lb['bytes']} B, TC bit "
                   f"{'set' if lb['tc'] else 'not set'}")
    out.append(f"{ind}stop (goodbyes for everything): {s['stop_s']:.2f} s")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="twisted_mdns benchmarks")
    p.add_argument("--only", action="append", choices=("throughput", "services", "interfaces", "busylan"),
                   help="busylan (benchmarks.busylan, with its defaults) runs only when asked for")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the responder to CPU 0 and the client to CPU 1 (taskset)")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (the median of each is reported)")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--interfaces", type=int, default=240,
                   help="links of the many-interface benchmark (issue 13 asks for 240)")
    p.add_argument("--late-interfaces", type=int, default=8,
                   help="links of that benchmark plugged in after start")
    p.add_argument("--ask-interval", type=float, default=0.1,
                   help="seconds between two questions to a link that has not answered yet")
    p.add_argument("--no-ipv6", dest="ipv6", action="store_false",
                   help="many interfaces: no ULA prefixes and no IPv6 questions (the links keep "
                        "their link-local addresses, so the responder still opens IPv6 ports)")
    p.add_argument("--no-avahi", dest="avahi", action="store_false",
                   help="do not time avahi-daemon on the many-interface topology")
    p.add_argument("--profile", default=None,
                   help="write cProfile stats of the twisted_mdns processes to FILE[.services|.interfaces]")
    p.add_argument("--json", default=None, help="also write all figures to this file")
    p.add_argument("--baseline", default=None, metavar="DIR",
                   help="also measure the twisted_mdns in DIR (e.g. `git archive COMMIT | tar -x -C DIR`) "
                        "in the same run, for before/after figures")
    p.add_argument("--baseline-services", type=int, default=300,
                   help="services to register for the baseline comparison (an O(n^2) baseline "
                        "cannot do 10,000 in minutes); this tree is measured at the same count")
    args = p.parse_args(argv)
    why = netns_unavailable()
    if why:
        print(f"cannot run the benchmarks: {why}", file=sys.stderr)
        return 2
    if args.profile:
        args.profile = os.path.abspath(args.profile)
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        if not os.path.isdir(os.path.join(args.baseline, "twisted_mdns")):
            print(f"--baseline {args.baseline}: no twisted_mdns package there", file=sys.stderr)
            return 2
    wanted = args.only or ["throughput", "services", "interfaces"]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: dict = {}
    started = time.perf_counter()
    for name, fn in (("throughput", throughput), ("services", services), ("interfaces", interfaces),
                     ("busylan", busylan)):
        if name in wanted:
            t = time.perf_counter()
            log(f"{name}...")
            results[name] = fn(args, log)
            log(f"{name} done in {time.perf_counter() - t:.1f} s")
    results["total_s"] = time.perf_counter() - started
    results["failures"] = failed = failures(results)
    print(report(results))
    print(f"\n(all benchmarks: {results['total_s']:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    if failed:
        # The figures above count what was not a correct answer: say so
        # where scripts look, the exit status.
        print("\nFAILED CHECKS (these figures cannot be trusted):", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
