"""
A client on another subnet, routed to the host of a L{tests.netns.Topology}:
what a Discovery Proxy serves (RFC 8766), a DNS client that is on none of
the proxied links.

    host ns --lanr (10.50.0.1)--- (10.50.0.2) router ns (10.60.0.1) ---
        --- (10.60.0.2) client ns

The router forwards; the client's default route is the router; the host's
route to 10.60.0.0/24 goes by the router.  The host's C{lanr} link is not
one mDNS runs on (tests choose their interfaces explicitly), so the client
reaches the proxy only by unicast, as a client elsewhere in a site would.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from tests.netns import Topology, ip


@dataclass(frozen=True)
class RoutedClient:
    """
    The routed client's namespace and addresses.

    @ivar host_ip: the host's address on the routed side (where the proxy
        listens).
    @ivar subnet: the client's subnet, on none of the host's links.
    """

    ns: str
    router_ns: str
    ip: str
    host_ip: str
    subnet: str


def add_routed_client(topology: Topology, name: str = "c") -> RoutedClient:
    """
    Add a router and a client behind it to C{topology} (torn down with it).
    """
    base = topology.host_ns[:-1]
    router, client = f"{base}r{name}", f"{base}{name}"
    for ns in (router, client):
        ip("netns", "add", ns)
        topology.namespaces.append(ns)
        ip("link", "set", "lo", "up", ns=ns)
    ip("link", "add", "lanr", "netns", topology.host_ns, "type", "veth",
       "peer", "name", "eth0", "netns", router)
    ip("link", "add", "eth1", "netns", router, "type", "veth",
       "peer", "name", "eth0", "netns", client)
    ip("addr", "add", "10.50.0.1/24", "dev", "lanr", ns=topology.host_ns)
    ip("addr", "add", "10.50.0.2/24", "dev", "eth0", ns=router)
    ip("addr", "add", "10.60.0.1/24", "dev", "eth1", ns=router)
    ip("addr", "add", "10.60.0.2/24", "dev", "eth0", ns=client)
    for ns, dev in ((topology.host_ns, "lanr"), (router, "eth0"), (router, "eth1"), (client, "eth0")):
        ip("link", "set", dev, "up", ns=ns)
    ip("route", "add", "default", "via", "10.60.0.1", ns=client)
    ip("route", "add", "10.60.0.0/24", "via", "10.50.0.2", ns=topology.host_ns)
    _forwarding(router)
    for ns, dev in ((topology.host_ns, "lanr"), (router, "eth0"), (router, "eth1"), (client, "eth0")):
        _wait_up(ns, dev)
    return RoutedClient(client, router, "10.60.0.2", "10.50.0.1", "10.60.0.0/24")


def _forwarding(ns: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
        check=True, capture_output=True,
    )


def _wait_up(ns: str, dev: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while "state UP" not in ip("-o", "link", "show", "dev", dev, ns=ns):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dev} in {ns} did not come up")
        time.sleep(0.01)
