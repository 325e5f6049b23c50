"""
One mDNS stack under the busy-LAN stream (L{benchmarks.busylan}).

    ip netns exec HOST python3 -m benchmarks.busylan_serve --stack twisted_mdns --address 10.1.0.1

Both stacks claim C{bench.local} (with C{Bench._bench._tcp}, the same as the
throughput benchmark) and print C{READY {json}} once they answer for it.
On SIGUSR1 they print C{STATS {json}} with the number of records in their
cache (for twisted_mdns: every per-link L{RecordCache} of the querier; for
python-zeroconf: its C{DNSCache}); they serve until SIGTERM.  With
C{--profile FILE} (twisted_mdns only) the time between READY and the
first SIGUSR1 is profiled (CPU time) and written to FILE.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time


def twisted_mdns(args) -> int:
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)

    from twisted.internet import reactor, task

    from twisted_mdns.message import TYPE_A, name_key
    from twisted_mdns.records import ServiceInfo, host_name
    from twisted_mdns.service import MDNSService

    mdns = MDNSService(hostname=args.hostname)
    mdns.startService()
    reactor.addSystemEventTrigger("before", "shutdown", mdns.stopService)
    mdns.register(ServiceInfo("Bench", "_bench._tcp", 8080, {"bench": "1"}))
    key = name_key(host_name(args.hostname))

    def cached() -> int:
        return sum(len(c) for c in mdns.querier.caches.values())

    def stats(*_a) -> None:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        out = {"cached": cached(), "counters": {k: v for k, v in mdns.counters.items()
                                                if k.startswith(("cache.", "dropped", "received"))}}
        print("STATS " + json.dumps(out), flush=True)

    signal.signal(signal.SIGUSR1, lambda *a: reactor.callFromThread(stats))

    def poll() -> None:
        ifaces = mdns.transport.interfaces
        if ifaces and all(any(r.rtype == TYPE_A and r.key == key for r in mdns.responder.records_for(ix))
                          for ix in ifaces):
            ready.stop()
            print("READY " + json.dumps({"cached": cached()}), flush=True)
            if profiler is not None:
                profiler.enable()

    ready = task.LoopingCall(poll)
    ready.start(0.02)
    reactor.run()
    return 0


def zeroconf(args) -> int:
    import zeroconf as zc_module
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    zc = Zeroconf(interfaces=[args.address], ip_version=IPVersion.V4Only)
    zc.register_service(ServiceInfo(
        "_bench._tcp.local.", "Bench._bench._tcp.local.",
        addresses=[socket.inet_aton(args.address)], port=8080,
        properties={"bench": "1"}, server=f"{args.hostname}.local.",
    ))

    def cached() -> int:
        return sum(len(v) for v in list(zc.cache.cache.values()))

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    signal.signal(signal.SIGUSR1, lambda *a: print("STATS " + json.dumps({"cached": cached()}), flush=True))
    print("READY " + json.dumps({"zeroconf": zc_module.__version__, "cached": cached()}), flush=True)
    while not done.wait(0.2):
        pass
    zc.close()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--stack", choices=("twisted_mdns", "zeroconf"), required=True)
    p.add_argument("--address", required=True)
    p.add_argument("--hostname", default="bench")
    p.add_argument("--profile", default=None)
    args = p.parse_args(argv)
    return twisted_mdns(args) if args.stack == "twisted_mdns" else zeroconf(args)


if __name__ == "__main__":
    sys.exit(main())
