"""
python-zeroconf under load, answering for the same name.

Registers C{Bench._bench._tcp.local.} with C{server="bench.local."} and the
link address, on that one address (C{Zeroconf(interfaces=[address])}), and
prints C{READY {json}} once registration (probing and announcing) is done.
python-zeroconf answers legacy unicast A queries for a service's server
name (it echoes the id and the question); it runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--hostname", default="bench")
    args = p.parse_args(argv)

    import zeroconf
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    zc = Zeroconf(interfaces=[args.address], ip_version=IPVersion.V4Only)
    info = ServiceInfo(
        "_bench._tcp.local.",
        "Bench._bench._tcp.local.",
        addresses=[socket.inet_aton(args.address)],
        port=8080,
        properties={"bench": "1"},
        server=f"{args.hostname}.local.",
    )
    zc.register_service(info)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    print("READY " + json.dumps({"zeroconf": zeroconf.__version__}), flush=True)
    done.wait()
    zc.unregister_all_services()
    zc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
