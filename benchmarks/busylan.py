"""
A busy LAN: CPU per packet, sustained rate, answer latency and memory per
cached record, for twisted_mdns, python-zeroconf and avahi-daemon in turn.

    python3 -m benchmarks.busylan [--devices 400] [--duration 10] [--baseline DIR]
    python3 -m benchmarks.run --only busylan

A host namespace and a client namespace joined by one veth link.  Each
stack runs alone in the host namespace, pinned to CPU 0, claiming
C{bench.local}.  The sender (C{send}, pinned to CPU 1, in the client
namespace) first announces every service of every device once (the
warm-up: the caches fill), then replays the stream of
L{benchmarks.busylan_traffic} for C{--duration} seconds, multicast from
port 5353, closed loop: after every C{--every} stream datagrams it asks a
legacy unicast A question for C{bench.local} (from an ephemeral port, to
the group, so it queues behind the stream), and sends no more while the
stack's port-5353 sockets hold more than C{--queue} bytes (their
C{rx_queue} in C{/proc/PID/net/udp}): the stack always has work and its
buffer never overflows, so the rate is the fastest it keeps up with.  It reports:

 - CPU per packet: the stack process's CPU time (utime + stime of every
   thread, from C{/proc/PID/stat}) over the measured part, divided by the
   datagrams sent in it (the questions for us included);
 - packets/s: datagrams sent per second in the measured part, with the
   kernel's drop count for the host's port-5353 sockets (C{/proc/PID/net/udp})
   over the same time, which must stay 0;
 - latency: send to answer of the legacy questions, p50 and p99;
 - memory per cached record: RSS after the run less RSS when the stack
   was ready, divided by the records in its cache (twisted_mdns and
   python-zeroconf report their caches on SIGUSR1; avahi dumps its cache
   to its log on SIGUSR1 and the cache lines are counted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the sender (client namespace) ---------------------------------------------


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _proc_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _udp_drops(pid: int, port: int = 5353) -> int:
    """Kernel drops of every UDP socket on C{port} in C{pid}'s namespace."""
    total = 0
    with open(f"/proc/{pid}/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port:
                total += int(cols[-1])
    return total


def _legacy_query(ident: int, name: bytes = b"\x05bench\x05local\x00") -> bytes:
    return struct.pack("!HHHHHH", ident, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)


class _Sender:
    def __init__(self, args) -> None:
        self.args = args
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.client_ip))
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self.out.bind((args.client_ip, 5353))
        # The questions for us go to the group too, so that they queue
        # behind the stream in the same socket (a stack may read unicast
        # from another one): legacy unicast, answered to this port (s6.7).
        self.probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        self.probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.client_ip))
        self.probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self.probe.bind((args.client_ip, 0))
        self.probe.setblocking(False)
        self.target = ("224.0.0.251", 5353)
        self.group = ("224.0.0.251", 5353)
        self.udp_fd = os.open(f"/proc/{args.server_pid}/net/udp", os.O_RDONLY)
        self.next_id = 1
        self.inflight: dict[int, float] = {}
        self.latencies: list[float] = []
        self.missing = 0
        self.wrong = 0

    def _ask(self) -> None:
        ident = self.next_id
        self.next_id = self.next_id % 65535 + 1
        self.inflight[ident] = time.perf_counter()
        self.probe.sendto(_legacy_query(ident), self.target)

    def _collect(self) -> None:
        """Take every answer waiting; unknown ids (late, or not ours) are wrong."""
        while True:
            try:
                data, _ = self.probe.recvfrom(9000)
            except BlockingIOError:
                return
            now = time.perf_counter()
            ident = struct.unpack_from("!H", data)[0] if len(data) >= 12 else -1
            sent = self.inflight.pop(ident, None)
            if sent is None or socket.inet_aton(self.args.host_ip) not in data:
                self.wrong += 1
                continue
            self.latencies.append(now - sent)

    def _queued(self) -> int:
        """Bytes waiting in the stack's port-5353 sockets (C{rx_queue})."""
        total = 0
        for line in os.pread(self.udp_fd, 1 << 16, 0).split(b"\n")[1:]:
            cols = line.split()
            if len(cols) > 4 and cols[1].endswith(b":14E9"):
                total += int(cols[4].split(b":")[1], 16)
        return total

    def run(self, packets: list[bytes], duration: float | None) -> tuple[int, float]:
        """
        Send C{packets} (cycling when C{duration} is set), closed loop: after
        every C{--every} datagrams, a question for us, and no more until the
        stack's socket queue is under C{--queue} bytes (so it always has
        work, and never more than its buffer holds).
        """
        every, limit = self.args.every, self.args.queue
        sent = 0
        start = time.perf_counter()
        end = start + duration if duration else None
        n = len(packets)
        i = 0
        sendto, group = self.out.sendto, self.group
        while True:
            if end is None and i >= n:
                break
            sendto(packets[i % n], group)
            i += 1
            sent += 1
            if sent % every == 0:
                self._ask()
                sent += 1
                self._collect()
                while self._queued() > limit:
                    self._collect()
                if end is not None and time.perf_counter() >= end:
                    break
        deadline = time.perf_counter() + 2.0
        while self.inflight and time.perf_counter() < deadline:
            self._collect()
        self.missing += len(self.inflight)
        self.inflight.clear()
        return sent, time.perf_counter() - start


def send(args) -> int:
    from benchmarks.busylan_traffic import _service_records, devices, distinct_records, pack, stream, RESPONSE, LIMIT, ptr_record, SERVICES_ENUM

    devs = devices(args.devices)
    warm: list[bytes] = []
    for d in devs:
        for s in d.services:
            answers, extra = _service_records(s, d)
            warm += pack(flags=RESPONSE, answers=answers + extra + [ptr_record(SERVICES_ENUM, s.type_, 4500)],
                         limit=LIMIT)
    mix = [p for _, p in stream(devs, args.packets)]
    sender = _Sender(args)
    pid = args.server_pid
    sender.run(warm, None)
    time.sleep(0.5)
    sender.latencies.clear()
    drops0, cpu0 = _udp_drops(pid), _proc_cpu(pid)
    sent, elapsed = sender.run(mix, args.duration)
    cpu1, drops1 = _proc_cpu(pid), _udp_drops(pid)
    lat = sorted(sender.latencies)

    def pct(p: float) -> float | None:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else None

    print("RESULT " + json.dumps({
        "devices": len(devs), "services": sum(len(d.services) for d in devs),
        "distinct_records": distinct_records(devs), "warmup_packets": len(warm),
        "packets": sent, "elapsed": elapsed, "pps": sent / elapsed,
        "cpu_s": cpu1 - cpu0, "cpu_us_per_packet": (cpu1 - cpu0) / sent * 1e6,
        "server_cpu": (cpu1 - cpu0) / elapsed, "kernel_drops": drops1 - drops0,
        "p50_ms": pct(0.5), "p99_ms": pct(0.99), "answers": len(lat),
        "missing": sender.missing, "wrong": sender.wrong,
        "mean_packet_bytes": sum(map(len, mix)) / len(mix),
    }), flush=True)
    return 0


# -- the stacks (host namespace) ------------------------------------------------


def _env(tree: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("BENCH_TWISTED_MDNS_TREE", None)
    if tree:
        env["BENCH_TWISTED_MDNS_TREE"] = tree
    return env


def _pin(cpu: int, pin: bool) -> list[str]:
    if not pin or (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu)]


class _Stack:
    """One stack's process; READY/STATS lines on stdout (avahi: its log)."""

    def __init__(self, kind: str, ns: str, host_ip: str, host_if: str, pin: bool,
                 tree: str | None = None, profile: str | None = None) -> None:
        self.kind = kind
        self.workdir = None
        if kind == "avahi":
            self.workdir = tempfile.mkdtemp(prefix="busylan-avahi-")
            conf = os.path.join(self.workdir, "avahi-daemon.conf")
            with open(conf, "w") as f:
                f.write("[server]\nhost-name=bench\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=no\n"
                        f"enable-dbus=no\nallow-interfaces={host_if}\n"
                        "[wide-area]\nenable-wide-area=no\n"
                        "[publish]\npublish-hinfo=no\npublish-workstation=no\n"
                        "[reflector]\nenable-reflector=no\n")
            os.mkdir(os.path.join(self.workdir, "services"))
            script = "; ".join([
                "set -e", "mkdir -p /run/avahi-daemon",
                "mount -t tmpfs -o size=1m,mode=0755 tmpfs /run/avahi-daemon",
                f"mount --bind {shlex.quote(self.workdir)}/services /etc/avahi/services",
                f"exec avahi-daemon -f {shlex.quote(conf)} --no-drop-root --no-chroot --no-rlimits "
                "--no-proc-title --debug",
            ])
            argv = ["sh", "-c", script]
            stderr = subprocess.STDOUT
        else:
            argv = [sys.executable, "-m", "benchmarks.busylan_serve", "--stack", kind.split("@")[0],
                    "--address", host_ip] + (["--profile", profile] if profile else [])
            stderr = subprocess.DEVNULL
        self.proc = subprocess.Popen(_pin(0, pin) + ["ip", "netns", "exec", ns] + argv, cwd=ROOT,
                                     env=_env(tree), stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.lines: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        from benchmarks.run import read_until

        m = read_until(self.proc, self.lines, lambda line: re.search(pattern, line), timeout)
        if m is not None:
            return m
        raise RuntimeError(f"{self.kind}: no {pattern!r} within {timeout} s:\n{''.join(self.lines)[-3000:]}")

    def ready(self) -> None:
        if self.kind == "avahi":
            self.wait_for(r"Server startup complete", 20)
        else:
            self.wait_for(r"^READY ", 30)

    def cached(self) -> int | None:
        os.kill(self.pid, signal.SIGUSR1)
        if self.kind != "avahi":
            return json.loads(self.wait_for(r"^STATS (.*)$", 20).group(1))["cached"]
        # avahi_server_dump: ";;; CACHE DUMP FOLLOWS ;;;" then one line per
        # record, per interface; it ends with the local entries.
        self.wait_for(r"Got SIGUSR1", 10)
        count, in_cache = 0, False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.3)
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            if "CACHE DUMP FOLLOWS" in line:
                in_cache = True
                continue
            if in_cache and line.startswith(";;;"):
                in_cache = "CACHE" in line
                continue
            if in_cache and "\tIN\t" in line or (in_cache and " IN " in line):
                count += 1
        return count or None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def measure(args, log=lambda s: print(s, file=sys.stderr, flush=True)) -> dict:
    from tests.netns import Topology

    kinds = ["twisted_mdns"]
    trees: dict[str, str | None] = {"twisted_mdns": None}
    if args.baseline:
        kinds.append("twisted_mdns@baseline")
        trees["twisted_mdns@baseline"] = args.baseline
    kinds.append("zeroconf")
    if shutil.which("avahi-daemon") or os.path.exists("/usr/sbin/avahi-daemon"):
        kinds.append("avahi")
    wanted = getattr(args, "stacks", None)
    if wanted:
        kinds = [k for k in kinds if k.split("@")[0] in wanted.split(",")]
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for round_, kind in ((r, k) for r in range(args.rounds) for k in kinds):
        topo = Topology.build(clients=("a",), virtual=False)
        try:
            link = topo.links["a"]
            stack = _Stack(kind, topo.host_ns, link.host_ip, link.host_if, args.pin, trees.get(kind),
                           args.profile if kind == "twisted_mdns" else None)
            try:
                stack.ready()
                time.sleep(1.5)  # past announcing
                rss0 = _proc_rss(stack.pid)
                argv = _pin(1, args.pin) + [
                    "ip", "netns", "exec", link.client_ns, sys.executable, "-m", "benchmarks.busylan", "send",
                    "--server-pid", str(stack.pid), "--host-ip", link.host_ip, "--client-ip", link.client_ip,
                    "--devices", str(args.devices), "--duration", str(args.duration),
                    "--packets", str(args.packets), "--every", str(args.every), "--queue", str(args.queue)]
                done = subprocess.run(argv, cwd=ROOT, env=_env(None), capture_output=True, text=True,
                                      timeout=args.duration + 120)
                if done.returncode != 0:
                    raise RuntimeError(f"sender failed: {done.stderr[-3000:]}")
                result = json.loads(done.stdout.split("RESULT ", 1)[1].splitlines()[0])
                rss1 = _proc_rss(stack.pid)
                cached = stack.cached()
                result.update(rss_ready_mb=rss0 / 2**20, rss_after_mb=rss1 / 2**20, cached=cached)
                per = cached or result["distinct_records"]
                result["cached_estimated"] = not cached
                result["bytes_per_record"] = (rss1 - rss0) / per
            finally:
                stack.stop()
        finally:
            topo.destroy()
        runs[kind].append(result)
        log(f"  round {round_ + 1} {kind:22s} {result['cpu_us_per_packet']:7.1f} us/packet  {result['pps']:7.0f} packets/s  "
            f"drops {result['kernel_drops']}  p50 {result['p50_ms']} ms  cached {result['cached']}  "
            f"{result['bytes_per_record']:.0f} B/record")
    # Per stack, the round with the median CPU per packet; the ratio to
    # python-zeroconf round by round too (the stacks of one round ran
    # within a minute of each other, on the same machine).
    results: dict = {}
    for kind, rounds in runs.items():
        ordered = sorted(rounds, key=lambda r: r["cpu_us_per_packet"])
        results[kind] = dict(ordered[len(ordered) // 2],
                             cpu_us_all=[r["cpu_us_per_packet"] for r in rounds])
    if "zeroconf" in runs:
        zc = results["zeroconf"]["cpu_us_per_packet"]
        for kind, r in results.items():
            r["cpu_vs_zeroconf"] = r["cpu_us_per_packet"] / zc
            r["cpu_vs_zeroconf_by_round"] = [a["cpu_us_per_packet"] / b["cpu_us_per_packet"]
                                             for a, b in zip(runs[kind], runs["zeroconf"])]
    return results


TARGETS = {"cpu_vs_zeroconf": 1.0, "bytes_per_record": 1024}


def report(results: dict) -> list[str]:
    first = next(iter(results.values()))
    lines = [f"Busy LAN ({len(first['cpu_us_all'])} rounds, median): {first['devices']} devices, {first['services']} services, {first['distinct_records']} "
             f"distinct records; {first['warmup_packets']} announcements, then the mix for "
             f"{first['elapsed']:.0f} s, closed loop, one core each",
             f"  {'stack':22s} {'us/packet':>9s} {'packets/s':>9s} {'drops':>5s} {'p50 ms':>7s} {'p99 ms':>7s} "
             f"{'lost':>4s} {'cached':>6s} {'RSS +MiB':>8s} {'B/record':>8s} {'cpu/zc':>6s}"]
    for kind, r in results.items():
        lines.append(
            f"  {kind:22s} {r['cpu_us_per_packet']:9.1f} {r['pps']:9.0f} {r['kernel_drops']:5d} "
            f"{r['p50_ms'] or float('nan'):7.2f} {r['p99_ms'] or float('nan'):7.2f} {r['missing'] + r['wrong']:4d} "
            f"{(r['cached'] or 0):6d}{'*' if r['cached_estimated'] else ' '} "
            f"{r['rss_after_mb'] - r['rss_ready_mb']:8.1f} {r['bytes_per_record']:8.0f} "
            f"{r.get('cpu_vs_zeroconf', float('nan')):6.2f}")
    tm = results.get("twisted_mdns")
    if tm and "cpu_vs_zeroconf" in tm:
        ok_cpu = tm["cpu_vs_zeroconf"] <= TARGETS["cpu_vs_zeroconf"]
        ok_mem = tm["bytes_per_record"] <= TARGETS["bytes_per_record"]
        rounds = " ".join(f"{x:.2f}" for x in tm.get("cpu_vs_zeroconf_by_round", []))
        lines.append("  CPU per packet, all rounds (us): " + "; ".join(
            f"{k} {' '.join(f'{x:.1f}' for x in r['cpu_us_all'])}" for k, r in results.items()))
        lines.append(f"  twisted_mdns CPU per packet / python-zeroconf = {tm['cpu_vs_zeroconf']:.2f} "
                     f"(round by round: {rounds}) "
                     f"(target <= 1.0) {'ok' if ok_cpu else 'BELOW TARGET'}; "
                     f"{tm['bytes_per_record']:.0f} B per cached record (target <= 1024) "
                     f"{'ok' if ok_mem else 'BELOW TARGET'}")
    if any(r["cached_estimated"] for r in results.values()):
        lines.append("  * cache size not reported: RSS growth divided by the distinct records sent")
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--devices", type=int, default=400)
    p.add_argument("--packets", type=int, default=30000, help="distinct datagrams in the mix (cycled)")
    p.add_argument("--every", type=int, default=16, help="a question for us after this many datagrams")
    p.add_argument("--queue", type=int, default=120000,
                   help="bytes the stack's port-5353 sockets may hold before the sender waits")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    if argv[:1] == ["send"]:
        add_arguments(p)
        p.add_argument("--duration", type=float, default=10.0)
        p.add_argument("--server-pid", type=int, required=True)
        p.add_argument("--host-ip", required=True)
        p.add_argument("--client-ip", required=True)
        return send(p.parse_args(argv[1:]))
    add_arguments(p)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--rounds", type=int, default=3, help="every stack once per round; the median is reported")
    p.add_argument("--stacks", default=None,
                   help="comma-separated subset of twisted_mdns,zeroconf,avahi (default: all there are)")
    p.add_argument("--baseline", default=None, metavar="DIR")
    p.add_argument("--profile", default=None, help="cProfile twisted_mdns's measured part to FILE")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
    if args.profile:
        args.profile = os.path.abspath(args.profile)
    results = measure(args)
    print("\n".join(report(results)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
