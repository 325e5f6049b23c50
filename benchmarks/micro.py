"""
Server cost per legacy query, without a client competing for the CPU.

In its own process (run by L{benchmarks.run} under C{ip netns exec HOST}):
start the real L{MDNSService}, let it claim C{bench.local}, then, inside one
reactor callback, queue N legacy unicast A queries in the socket of the
port that will read them (a large receive buffer, the reactor blocked so
nothing is read early) and time the port's C{doRead} until the queue is
empty: recvmsg, IP_PKTINFO, the protocol, the fast path, sendmsg, per
datagram.  The same queue is then timed through a bare recvmsg/sendmsg
loop (the pktinfo ceiling) on a plain socket.

Prints C{RESULT {json}} with microseconds per query for both (attempts
interleaved; the best of each is the figure least disturbed by whatever
else the machine is doing).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

from benchmarks import wire
from benchmarks.serve_ceiling import prebuilt_reply
from tests.netns import inside

SO_RCVBUFFORCE = 33
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def fill(sock_send: socket.socket, target, count: int) -> None:
    body = wire.build_query("bench.local", wire.TYPE_A)[2:]
    for i in range(count):
        sock_send.sendto((i & 0xFFFF).to_bytes(2, "big") + body, target)


def measure_ceiling(args, client: socket.socket) -> float:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind((args.host_ip, 5354))
    fill(client, (args.host_ip, 5354), args.count)
    time.sleep(0.2)
    tail = prebuilt_reply("bench.local", args.host_ip)
    pk = struct.Struct("I4s4s")
    recvmsg, sendmsg, space = s.recvmsg, s.sendmsg, socket.CMSG_SPACE(64)
    s.setblocking(False)
    n = 0
    t0 = time.perf_counter()
    try:
        while True:
            data, anc, _f, source = recvmsg(9000, space)
            ifindex, _spec, dst = pk.unpack_from(anc[0][2])
            sendmsg([data[:2] + tail], [(socket.IPPROTO_IP, IP_PKTINFO, pk.pack(ifindex, dst, b"\0" * 4))], 0, source)
            n += 1
    except BlockingIOError:
        pass
    elapsed = time.perf_counter() - t0
    s.close()
    return elapsed / max(n, 1) * 1e6, n


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host-ip", required=True)
    p.add_argument("--client-ns", required=True)
    p.add_argument("--client-ip", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--attempts", type=int, default=7)
    p.add_argument("--profile", default=None)
    args = p.parse_args(argv)

    from twisted.internet import reactor, task

    from twisted_mdns.message import TYPE_A, name_key
    from twisted_mdns.records import host_name
    from twisted_mdns.service import MDNSService

    mdns = MDNSService(hostname="bench", monitor=False)
    mdns.startService()
    key = name_key(host_name("bench"))
    with inside(args.client_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 16)
        client.bind((args.client_ip, 0))
    result: dict = {}

    def run() -> None:
        ports = list(mdns.transport.ports.values())
        for port in ports:
            port.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        target = (args.host_ip, 5353)
        # Warm the legacy cache (the first question takes the full path).
        fill(client, target, 10)
        time.sleep(0.1)
        for port in ports:
            port.doRead()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        for attempt in range(args.attempts):
            before = mdns.counters["answered.legacy"]
            fill(client, target, args.count)
            time.sleep(0.2)
            if profiler is not None:
                profiler.enable()
            t0 = time.perf_counter()
            while True:
                answered = mdns.counters["answered.legacy"]
                for port in ports:
                    port.doRead()
                if mdns.counters["answered.legacy"] == answered:
                    break
            elapsed = time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
            n = mdns.counters["answered.legacy"] - before
            us = elapsed / max(n, 1) * 1e6
            result.setdefault("twisted_mdns_us", []).append(us)
            result["answered"] = n
            # Interleaved, so both see the same machine.
            u, _ = measure_ceiling(args, client)
            result.setdefault("ceiling_pktinfo_us", []).append(u)
        if profiler is not None:
            profiler.dump_stats(args.profile)
        result["queued"] = args.count
        reactor.stop()

    def poll() -> None:
        ifaces = mdns.transport.interfaces
        if ifaces and all(
            any(r.rtype == TYPE_A and r.key == key for r in mdns.responder.records_for(ix)) for ix in ifaces
        ):
            ready.stop()
            reactor.callLater(0, run)

    ready = task.LoopingCall(poll)
    ready.start(0.02)
    reactor.run()
    result["twisted_mdns_us_best"] = min(result.get("twisted_mdns_us", [float("nan")]))
    result["ceiling_pktinfo_us_best"] = min(result.get("ceiling_pktinfo_us", [float("nan")]))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
