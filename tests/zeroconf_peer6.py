"""
python-zeroconf publishing one service over IPv6 only, as a test peer run
in a network namespace (the IPv6 sibling of L{tests.zeroconf_peer}'s
C{publish})::

    ip netns exec NS python3 -m tests.zeroconf_peer6 --interface eth0 \\
        --type _http._tcp --instance "Zc Six" --port 8066 \\
        --hostname zc6.local --address fd00:2::2 --address fe80::1

It binds python-zeroconf to the one interface, by index, with
C{ip_version=IPVersion.V6Only}, so every packet it sends or hears is IPv6.
It prints JSON Lines like L{tests.zeroconf_peer} (C{registered}, then
C{unregistered} and C{stopped} on stdin EOF, SIGTERM or C{--lifetime}).
"""

from __future__ import annotations

import argparse
import socket
import sys

from tests.zeroconf_peer import StopSignal, emit, host_name, instance_of, service_type


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.zeroconf_peer6")
    parser.add_argument("--interface", required=True, help="interface name, e.g. eth0")
    parser.add_argument("--type", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--txt", action="append")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args(argv)

    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    type_ = service_type(args.type)
    txt: dict[str, str | None] = {}
    for item in args.txt or []:
        key, sep, value = item.partition("=")
        txt[key] = value if sep else None
    info = ServiceInfo(
        type_, f"{args.instance}.{type_}", port=args.port, properties=txt,
        server=host_name(args.hostname), parsed_addresses=args.address,
    )
    stop = StopSignal(args.lifetime, True)
    index = socket.if_nametoindex(args.interface)
    zc = Zeroconf(interfaces=[index], ip_version=IPVersion.V6Only)
    try:
        zc.register_service(info)
        emit(
            "registered", name=info.name, instance=instance_of(info.name, type_),
            server=info.server, port=info.port, addresses=sorted(info.parsed_addresses()),
        )
        stop.wait()
        zc.unregister_service(info)
        emit("unregistered", name=info.name)
    finally:
        zc.close()
    emit("stopped", reason=stop.reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
