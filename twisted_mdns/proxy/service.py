# -*- test-case-name: tests.test_proxy_server -*-
"""
L{DiscoveryProxy}: the RFC 8766 Discovery Proxy as a composable Twisted
service, UDP and TCP on each listening address.

Composed with an L{twisted_mdns.service.MDNSService}, whose querier asks the
links and whose responder's view of each link adds this host's own
services::

    mdns = MDNSService(policy=ExplicitInterfacePolicy(["eth1"]))
    proxy = mdns.add_discovery_proxy(
        DomainMap.parse(["eth1=b.lab.example"]), listen=[("10.0.0.1", 53)]
    )

Who may ask (RFC 8766 §9): by default loopback and the subnets of this
host's own interfaces (found when the service starts); C{allow} replaces
that list.  Ports are bound in C{privilegedStartService}, so that twistd
can bind port 53 before it drops privileges.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any, Sequence

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from twisted_mdns.clock import default_reactor
from twisted_mdns.counters import Counters
from twisted_mdns.interfaces import IInterfaceEnumerator
from twisted_mdns.proxy.domains import DomainMap
from twisted_mdns.proxy.resolver import DEFAULT_WAIT, MDNSEngines, ProxyResolver
from twisted_mdns.proxy.server import Network, ProxyDatagramProtocol, ProxyServerFactory

log = Logger()

#: Loopback: always allowed by default.
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def default_allow(enumerator: IInterfaceEnumerator | None = None) -> list[Network]:
    """
    Loopback and the subnets of this host's own interfaces: clients on
    links this host is on (RFC 8766 §9: a proxy answers its site, not the
    Internet).
    """
    if enumerator is None:
        from twisted_mdns.netif import SystemInterfaceEnumerator

        enumerator = SystemInterfaceEnumerator()
    networks: list[Network] = list(LOOPBACK)
    for iface in enumerator.interfaces():
        own: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = [*iface.ipv4, *iface.ipv6]
        for address in own:
            if address.network not in networks:
                networks.append(address.network)
    return networks


class DiscoveryProxy(service.Service):
    """
    Unicast DNS for each link's domain, answered from mDNS (RFC 8766).

    @ivar resolver: the L{ProxyResolver} (made at start).
    @ivar factory: the L{ProxyServerFactory} (made at start).
    @ivar ports: the listening ports, UDP and TCP per address.
    @ivar allow: the networks allowed to ask (the default's value once
        started).
    """

    def __init__(
        self,
        engines: MDNSEngines,
        domains: DomainMap,
        listen: Sequence[tuple[str, int]] = (("127.0.0.1", 53),),
        allow: Sequence[Network] | None = None,
        *,
        wait: float = DEFAULT_WAIT,
        server: str | None = None,
        reactor: Any = None,
        counters: Counter | None = None,
        enumerator: IInterfaceEnumerator | None = None,
    ) -> None:
        self.reactor = default_reactor(reactor)
        self.engines = engines
        self.domains = domains
        self.listen = list(listen)
        self.allow: list[Network] | None = list(allow) if allow is not None else None
        self.wait = wait
        self.server = server
        self.counters: Counter[str] = counters if counters is not None else Counters()
        self.enumerator = enumerator
        self.resolver: ProxyResolver | None = None
        self.factory: ProxyServerFactory | None = None
        self.ports: list[IListeningPort] = []

    def _build(self) -> ProxyServerFactory:
        if self.factory is None:
            if self.allow is None:
                self.allow = default_allow(self.enumerator)
            self.resolver = ProxyResolver(
                self.domains, self.engines, self.reactor,
                wait=self.wait, server=self.server, counters=self.counters,
            )
            self.factory = ProxyServerFactory(self.resolver, self.allow, self.counters, self.reactor)
        return self.factory

    def _bind(self) -> None:
        if self.ports:
            return
        factory = self._build()
        try:
            for host, port in self.listen:
                udp = self.reactor.listenUDP(port, ProxyDatagramProtocol(factory), interface=host)
                self.ports.append(udp)
                # Port 0 (tests): TCP on the port UDP got.
                tcp = self.reactor.listenTCP(udp.getHost().port, factory, interface=host)
                self.ports.append(tcp)
                log.info(
                    "discovery proxy on {host} port {port} (UDP, TCP): {domains}",
                    host=host, port=udp.getHost().port,
                    domains=", ".join(f"{d.interface}={d.text}" for d in self.domains),
                )
        except Exception:
            for p in self.ports:
                p.stopListening()
            self.ports = []
            raise

    def privilegedStartService(self) -> None:
        self._bind()
        super().privilegedStartService()

    def startService(self) -> None:
        self._bind()
        super().startService()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        if self.resolver is not None:
            self.resolver.close()
        ports, self.ports = self.ports, []
        self.factory = None
        self.resolver = None
        return defer.gatherResults(
            [defer.maybeDeferred(p.stopListening) for p in ports], consumeErrors=True
        ).addCallback(lambda _: None)

    def address(self, index: int = 0) -> tuple[str, int]:
        """
        The address and port a listening address got (for port 0).
        """
        host: Any = self.ports[2 * index].getHost()
        return host.host, host.port
