"""
python-zeroconf resolving one service over IPv6 (or both families), as a
test peer run in a network namespace: the judge of our responder's IPv6
answers (the resolving sibling of L{tests.zeroconf_peer})::

    ip netns exec NS python3 -m tests.zeroconf_resolve6 --interface eth0 \\
        --type _http._tcp --instance "Lab Web" [--all]

It binds python-zeroconf to the one interface by index, with
C{ip_version=IPVersion.V6Only} (or C{All} with C{--all}, then also the
interface's IPv4 address), and prints one JSON line: C{{"event":
"result", "found": ..., "service": {...}}} with the IPv4 and IPv6
addresses resolved (C{addresses}, C{addresses_v6}, scoped ones in
C{scoped_v6}).
"""

from __future__ import annotations

import argparse
import socket
import sys

from tests.zeroconf_peer import describe, emit, service_type


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.zeroconf_resolve6")
    parser.add_argument("--interface", required=True, help="interface name, e.g. eth0")
    parser.add_argument("--ipv4", help="the interface's IPv4 address (with --all)")
    parser.add_argument("--type", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--all", action="store_true", help="both families")
    args = parser.parse_args(argv)

    from zeroconf import IPVersion, Zeroconf

    type_ = service_type(args.type)
    name = f"{args.instance}.{type_}"
    index = socket.if_nametoindex(args.interface)
    if args.all:
        interfaces: list = [index] + ([args.ipv4] if args.ipv4 else [])
        zc = Zeroconf(interfaces=interfaces, ip_version=IPVersion.All)
    else:
        zc = Zeroconf(interfaces=[index], ip_version=IPVersion.V6Only)
    try:
        info = zc.get_service_info(type_, name, timeout=int(args.timeout * 1000))
        if info is None:
            emit("result", found=False, name=name)
        else:
            service = describe(info, type_)
            service["scoped_v6"] = sorted(info.parsed_scoped_addresses(IPVersion.V6Only))
            emit("result", found=True, name=name, service=service)
    finally:
        zc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
