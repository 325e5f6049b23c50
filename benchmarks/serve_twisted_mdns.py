"""
twisted_mdns under load: the real L{MDNSService} in its own process.

Run in the host namespace::

    ip netns exec HOST python3 -m benchmarks.serve_twisted_mdns --hostname bench

It claims C{bench.local}, registers one service (C{Bench._bench._tcp}, the
same thing the python-zeroconf server publishes), prints C{READY {json}}
once the host name's A record is published on every interface it runs on,
and serves until SIGTERM/SIGINT (then goodbyes, as a real stop).  With
C{--profile FILE} the whole run is under cProfile and the stats are written
to FILE at exit (read them with C{python3 -m pstats FILE}).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--hostname", default="bench")
    p.add_argument("--profile", default=None)
    args = p.parse_args(argv)

    profiler = None
    if args.profile:
        import cProfile

        # CPU time, not wall time: a syscall that waits for the scheduler
        # should not look expensive.
        profiler = cProfile.Profile(time.process_time)

    from twisted.internet import reactor, task

    from twisted_mdns.message import TYPE_A, name_key
    from twisted_mdns.records import ServiceInfo, host_name
    from twisted_mdns.service import MDNSService

    started = time.perf_counter()
    mdns = MDNSService(hostname=args.hostname)
    mdns.startService()
    reactor.addSystemEventTrigger("before", "shutdown", mdns.stopService)
    mdns.register(ServiceInfo("Bench", "_bench._tcp", 8080, {"bench": "1"}))
    key = name_key(host_name(args.hostname))

    def published() -> bool:
        ifaces = mdns.transport.interfaces
        return bool(ifaces) and all(
            any(r.rtype == TYPE_A and r.key == key for r in mdns.responder.records_for(ix))
            for ix in ifaces
        )

    def poll() -> None:
        if published():
            ready.stop()
            info = {
                "interfaces": [i.name for i in mdns.transport.interfaces.values()],
                "ports": len(mdns.transport.ports),
                "startup_s": time.perf_counter() - started,
            }
            print("READY " + json.dumps(info), flush=True)
            if profiler is not None:
                profiler.enable()

    ready = task.LoopingCall(poll)
    ready.start(0.02)
    reactor.run()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print("COUNTERS " + json.dumps(dict(mdns.counters)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
