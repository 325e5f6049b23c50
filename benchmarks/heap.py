"""
The Python heap per registered service, without the network: the real
L{twisted_mdns.responder.Responder} on a L{Clock} with a recording
transport and one link registers N services; C{tracemalloc} says what the
heap keeps per service once the announcements are over, its peak on the
way, and where the kept bytes were allocated (snapshot difference grouped
by line).  The C{ServiceInfo} values are made before the first snapshot
(the services benchmark counts them in its RSS figure).

    python3 -m benchmarks.heap [--count 10000] [--top 25]

Prints the lines, then C{RESULT {json}}.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tracemalloc

from twisted.internet.task import Clock

from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import Responder
from twisted_mdns.testing import RecordingTransport, make_interface


def measure(count: int, top: int) -> dict:
    clock = Clock()
    transport = RecordingTransport([make_interface("eth0", 2, "10.0.0.5/24")], clock)
    responder = Responder(transport, clock, "bench", rng=random.Random(7))
    responder.start()
    for _ in range(20):
        clock.advance(0.25)
    transport.sent.clear()
    infos = [ServiceInfo(f"Instance {i:05d}", "_bench._tcp", 1024 + i, {"n": str(i)}) for i in range(count)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    for info in infos:
        responder.register(info)
    for _ in range(40):  # probing, then both announcements
        clock.advance(0.25)
        transport.sent.clear()
    gc.collect()
    after = tracemalloc.take_snapshot()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(responder.services) == count
    diff = after.compare_to(before, "lineno")
    return {
        "count": count,
        "kept_per_service_b": (kept - base) / count,
        "peak_per_service_b": (peak - base) / count,
        "top": [
            f"{d.size_diff / count:8.1f} B {d.count_diff / count:5.2f} objects  {d.traceback}"
            for d in diff[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    result = measure(args.count, args.top)
    print(f"{args.count} services: heap kept {result['kept_per_service_b']:.0f} B per service, "
          f"peak {result['peak_per_service_b']:.0f} B per service; kept, by line (per service):")
    for line in result["top"]:
        print("  " + line)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
