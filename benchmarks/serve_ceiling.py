"""
The ceiling: a bare Python socket loop that answers every datagram with a
prebuilt legacy reply, patching only the id in.

No parsing, no checks, no event loop: what any Python responder answering
one datagram at a time with C{recvfrom} + C{sendto} cannot beat.  The reply
is the one twisted_mdns sends (question echoed, one A record, TTL 10, no
cache-flush bit), built here by hand.
"""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys

from benchmarks import wire

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_IN_PKTINFO = struct.Struct("I4s4s")


def prebuilt_reply(name: str, address: str) -> bytes:
    """
    Everything after the id: flags, counts, the question, the A answer
    (name compressed to the question's, offset 12).
    """
    question = wire.encode_name(name) + wire.QTAIL.pack(wire.TYPE_A, wire.CLASS_IN)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", wire.TYPE_A, wire.CLASS_IN, 10, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHH", 0x8400, 1, 1, 0, 0) + question + answer


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True, help="the address to answer with (and bind)")
    p.add_argument("--name", default="bench.local")
    p.add_argument("--pktinfo", action="store_true",
                   help="read with recvmsg + IP_PKTINFO and answer with sendmsg pinning the "
                        "interface: the syscalls a multi-homed responder needs")
    args = p.parse_args(argv)
    tail = prebuilt_reply(args.name, args.address)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 5353))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("READY {}", flush=True)
    recvfrom, sendto = sock.recvfrom, sock.sendto
    try:
        if args.pktinfo:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            recvmsg, sendmsg, space = sock.recvmsg, sock.sendmsg, socket.CMSG_SPACE(64)
            unpack, pack = _IN_PKTINFO.unpack_from, _IN_PKTINFO.pack
            while True:
                data, ancdata, _flags, source = recvmsg(9000, space)
                ifindex, _spec, dst = unpack(ancdata[0][2])
                sendmsg([data[:2] + tail], [(socket.IPPROTO_IP, IP_PKTINFO, pack(ifindex, dst, b"\0" * 4))], 0, source)
        while True:
            data, source = recvfrom(9000)
            sendto(data[:2] + tail, source)
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
