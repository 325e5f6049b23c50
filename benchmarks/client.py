"""
The closed-loop legacy unicast client.

Run in a client namespace, as its own process (so that it does not share
the responder's CPU or GIL)::

    ip netns exec NS python3 -m benchmarks.client --target 10.1.0.1 \\
        --name bench.local --expect 10.1.0.1

It keeps C{--inflight} legacy unicast A queries outstanding (one UDP socket
on an ephemeral port, unicast to the target's port 5353, every in-flight
query with its own id), sends a new one for every answer, and after a
warm-up measures for C{--duration} seconds.  Every answer is checked: the
id must be one we are waiting for, the question echoed, the answer section
must hold A records for the name and only the expected address.  A query
not answered within C{--timeout} counts as missing and is replaced.

Prints one JSON object: answered queries/s, latency percentiles, wrong,
missing and late answers, and the CPU time the client and (when given
C{--server-pid}) the server used during the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from benchmarks import wire


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


class Judge:
    """
    Checks an answer once per distinct body (everything after the id): the
    responders answer the same question with the same bytes, so after the
    first check a correct answer costs one set lookup.
    """

    def __init__(self, name: str, expect: str, question: bytes) -> None:
        self.key = name.rstrip(".").lower() + "."
        self.expect = expect
        self.question = question
        self.good: set[bytes] = set()
        self.bad: set[bytes] = set()
        self.notes: dict[str, int] = {}
        self.first_error: str | None = None

    def check(self, data: bytes) -> bool:
        body = data[2:]
        if body in self.good:
            return True
        if body in self.bad:
            return False
        ok, why = self._verify(data)
        (self.good if ok else self.bad).add(body)
        if not ok and self.first_error is None:
            self.first_error = why
        return ok

    def _verify(self, data: bytes) -> tuple[bool, str]:
        try:
            r = wire.parse(data)
        except wire.WireError as e:
            return False, f"malformed: {e}"
        if not r.flags & wire.FLAG_QR:
            return False, "not a response"
        if r.flags & 0x000F:
            return False, f"rcode {r.flags & 15}"
        if r.question_bytes.lower() != self.question.lower():
            return False, "question not echoed"
        addresses = [wire.a_address(rr) for rr in r.answers
                     if rr.rtype == wire.TYPE_A and rr.key == self.key]
        if not addresses:
            return False, "no A answer for the name"
        if addresses != [self.expect]:
            return False, f"addresses {addresses}, expected [{self.expect}]"
        # s6.7 legacy unicast: TTL at most 10 s, no cache-flush bit.  Not
        # counted as wrong (the address is right), but reported.
        for rr in r.answers + r.additionals:
            if rr.ttl > 10:
                self.notes["legacy-ttl-over-10"] = self.notes.get("legacy-ttl-over-10", 0) + 1
                break
        for rr in r.answers + r.additionals:
            if rr.cache_flush:
                self.notes["legacy-cache-flush-set"] = self.notes.get("legacy-cache-flush-set", 0) + 1
                break
        return True, ""


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return None


def context_switches(pid: int | None) -> int | None:
    """
    Voluntary context switches of C{pid}: how often it went to sleep
    waiting for work (a responder that drains its socket and blocks again
    for every few datagrams pays a wake-up each time).
    """
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run(args) -> dict:
    name = args.name
    question = wire.encode_name(name) + wire.QTAIL.pack(wire.TYPE_A, wire.CLASS_IN)
    body = wire.HEADER.pack(0, 0, 1, 0, 0, 0)[2:] + question
    ids = [i.to_bytes(2, "big") for i in range(65536)]
    judge = Judge(name, args.expect, question)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((args.bind, 0))
    target = (args.target, args.port)
    # Busy polling (the client has a CPU of its own): a reply never has to
    # wake the client, so the responder's send path does not pay for
    # waking it, whichever responder is measured.
    if args.busy_poll:
        sock.setblocking(False)
    else:
        sock.settimeout(0.02)
    idle = (BlockingIOError, socket.timeout)
    recvfrom = sock.recvfrom
    sendto = sock.sendto
    now = time.perf_counter

    inflight: dict[int, float] = {}
    next_id = 0

    def send_one() -> None:
        nonlocal next_id
        i = next_id
        while i in inflight:
            i = (i + 1) & 0xFFFF
        next_id = (i + 1) & 0xFFFF
        inflight[i] = now()
        sendto(ids[i] + body, target)

    stats = {"sent": 0}
    warm_until = now() + args.warmup
    end = warm_until + args.duration
    measuring = False
    latencies: list[float] = []
    answered = wrong = missing = late = foreign = 0
    for _ in range(args.inflight):
        send_one()
    sent = args.inflight
    last_scan = now()
    cpu0 = scpu0 = None
    t0 = None
    timeout = args.timeout
    while True:
        t = now()
        if not measuring and t >= warm_until:
            measuring = True
            t0 = t
            cpu0, scpu0 = cpu_seconds(None), cpu_seconds(args.server_pid)
            csw0 = context_switches(args.server_pid)
            answered = wrong = missing = late = foreign = 0
            latencies = []
            sent = 0
        if t >= end:
            break
        try:
            data, source = recvfrom(2048)
        except idle:
            data = None
        t = now()
        if data is not None:
            if source != target:
                foreign += 1
            elif len(data) < 12:
                wrong += 1
            else:
                ident = (data[0] << 8) | data[1]
                started = inflight.pop(ident, None)
                if started is None:
                    late += 1  # an answer to a query we gave up on, or a duplicate
                else:
                    if judge.check(data):
                        answered += 1
                        latencies.append(t - started)
                    else:
                        wrong += 1
                    send_one()
                    sent += 1
        if t - last_scan > 0.05:
            last_scan = t
            expired = [i for i, s in inflight.items() if t - s > timeout]
            for i in expired:
                del inflight[i]
                missing += 1
                send_one()
                sent += 1
    elapsed = now() - t0
    cpu1, scpu1 = cpu_seconds(None), cpu_seconds(args.server_pid)
    csw1 = context_switches(args.server_pid)
    # Whatever is still in flight gets its timeout to arrive.
    deadline = now() + timeout
    while inflight and now() < deadline:
        try:
            data, source = recvfrom(2048)
        except idle:
            continue
        if source == target and len(data) >= 12:
            ident = (data[0] << 8) | data[1]
            if inflight.pop(ident, None) is not None:
                if not judge.check(data):
                    wrong += 1
    missing += len(inflight)
    sock.close()
    latencies.sort()
    result = {
        "qps": answered / elapsed,
        "answered": answered,
        "sent": sent,
        "elapsed": elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "wrong": wrong,
        "missing": missing,
        "late": late,
        "foreign": foreign,
        "first_error": judge.first_error,
        "notes": judge.notes,
        "inflight": args.inflight,
        "client_cpu": (cpu1 - cpu0) / elapsed,
    }
    if scpu0 is not None and scpu1 is not None:
        result["server_cpu"] = (scpu1 - scpu0) / elapsed
        if answered:
            result["server_us_per_query"] = (scpu1 - scpu0) / answered * 1e6
    if csw0 is not None and csw1 is not None and answered:
        result["server_sleeps_per_1000"] = (csw1 - csw0) / answered * 1000
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, default=5353)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--name", default="bench.local")
    p.add_argument("--expect", required=True, help="the one address the answer must carry")
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--server-pid", type=int, default=None)
    p.add_argument("--busy-poll", action="store_true",
                   help="poll the socket without sleeping (give the client a CPU of its own)")
    args = p.parse_args(argv)
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
