"""
The clients of the many-link benchmark that ask every link, from the moment
the responder starts (or the late links are plugged in), until it answers:
each a process of its own (C{benchmarks.scale ask} over IPv4,
C{benchmarks.scale_ipv6 ask} over IPv6), so that the asking does not compete
with the responder for its interpreter.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from typing import Any

from twisted.internet import threads

from benchmarks import wire


def answering_summary(raw: dict, t0: float) -> dict:
    """
    An asking process's report (L{benchmarks.scale.until_every_link_answers}
    or L{benchmarks.scale_ipv6.until_every_link_answers}), in seconds after
    C{t0}.  Over IPv6 also the I{partial} answers (some of the link's own
    addresses only), the first wrong ones, and C{own_all_s}: when every
    link had answered with at least some of its own addresses.
    """
    times = sorted(t - t0 for t in raw["answered_at"].values())
    links = raw["links"]
    return {
        "links": len(links),
        "answered": len(times),
        "unanswered": [l for l in links if l not in raw["answered_at"]],
        "wrong": raw["wrong"],
        "first_s": times[0] if times else None,
        "median_s": times[len(times) // 2] if times else None,
        "all_s": times[-1] if times and len(times) == len(links) else None,
        "interval_s": raw["interval_s"],
        **({} if "own_at" not in raw else {
            "partial": raw["partial"], "first_wrong": raw["first_wrong"],
            "own_all_s": max(raw["own_at"].values()) - t0 if len(raw["own_at"]) == len(links) else None,
        }),
    }


class Asking:
    """
    C{until_every_link_answers} in a process of its own, over IPv4 or (if
    C{ipv6}) IPv6, for the late links of C{links_file} or the others.
    """

    def __init__(self, links_file: str, interval: float, late: bool, ipv6: bool = False, **popen) -> None:
        module = "benchmarks.scale_ipv6" if ipv6 else "benchmarks.scale"
        argv = [sys.executable, "-m", module, "ask", "--links", links_file,
                "--interval", str(interval)] + (["--late"] if late else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **popen)

    def wait_asking(self) -> None:
        """
        Block until the process has opened its sockets and starts asking.
        """
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line or line.startswith("ASKING"):
                return

    def result(self) -> dict:
        """
        Block until it is done; its raw report.
        """
        out, _ = self.proc.communicate()
        for line in out.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        raise RuntimeError(f"the asking process printed no result: {out[-2000:]}")


async def start_asking(args, late: bool, ipv6: bool) -> tuple[Asking, Asking | None]:
    """
    An L{Asking} over IPv4 and, if C{ipv6}, one over IPv6; both asking.
    """
    four = Asking(args.links, args.ask_interval, late=late)
    six = Asking(args.links, args.ask_interval, late=late, ipv6=True) if ipv6 else None
    for a in (four, six):
        if a is not None:
            await threads.deferToThread(a.wait_asking)
    return four, six


def ask_all_at_once(
    socks: dict, destination: Any, qtype: int, expected: int, timeout: float = 3.0
) -> tuple[dict[str, list], list[float]]:
    """
    Send one legacy C{bench.local} query of C{qtype} from each client socket
    (C{socks}: fd -> (socket, link, ident)) to C{destination(link)} on port
    5353, all at once; collect the replies per host link until C{expected}
    links answered or C{timeout}; close the sockets.  Shared by the IPv4
    and IPv6 rounds.

    @return: host interface -> [(data, source, ident, link)], and each
        reply's latency in seconds.
    """
    t0 = time.perf_counter()
    for s, link, ident in socks.values():
        s.sendto(wire.build_query("bench.local", qtype, ident), (destination(link), 5353))
    answers: dict[str, list] = {}
    latencies = []
    deadline = t0 + timeout
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    while len(answers) < expected and time.perf_counter() < deadline:
        for fd, _ in poller.poll(100):
            s, link, ident = socks[fd]
            try:
                data, source = s.recvfrom(9000)
            except BlockingIOError:
                continue
            latencies.append(time.perf_counter() - t0)
            answers.setdefault(link["host_if"], []).append((data, source, ident, link))
    for s, _, _ in socks.values():
        s.close()
    return answers, latencies
