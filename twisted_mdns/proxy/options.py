# -*- test-case-name: tests.test_proxy_twistd -*-
"""
The C{twistd mdns} options of the Discovery Proxy, parsed and checked here
so that C{tap.py} gains only a mixin and two calls::

    twistd -n mdns --iface eth1 --proxy-listen 10.0.0.1:53 \\
        --proxy-domain eth1=b.lab.example --proxy-allow 10.0.0.0/8

Bad values raise C{usage.UsageError} with one line naming the option.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Sequence

from twisted.application import service
from twisted.python import usage

from twisted_mdns.constants import PROXY_MAX_WAIT
from twisted_mdns.netif import NetworkInterface, find_interface
from twisted_mdns.proxy.domains import DomainMap, DomainSpecError
from twisted_mdns.proxy.resolver import DEFAULT_WAIT, check_wait
from twisted_mdns.proxy.server import Network


def parse_listen(text: str) -> tuple[str, int]:
    """
    C{ADDRESS:PORT} (C{[v6]:PORT} for IPv6) -> C{(address, port)}.

    @raise ValueError: what is wrong, in a sentence.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r}: expected ADDRESS:PORT, e.g. 10.0.0.1:53 or [::1]:53")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range")
    return host, port


def parse_allow(text: str) -> Network:
    """
    A CIDR (C{10.0.0.0/8}, C{2001:db8::/32}) or a single address.

    @raise ValueError: not a network, or host bits set.
    """
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None


class ProxyOptions(usage.Options):
    """
    A mixin for C{usage.Options}: the C{--proxy-*} options.
    """

    optParameters = [
        ["proxy-wait", None, str(DEFAULT_WAIT),
         f"Discovery Proxy: seconds a query waits for mDNS answers (0 < s <= {PROXY_MAX_WAIT:g})."],
        ["proxy-server", None, None,
         "Discovery Proxy: this host's DNS name, for the NS and SOA records (default: its FQDN)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["proxy-listen"] = []
        self["proxy-domain"] = []
        self["proxy-allow"] = []

    def opt_proxy_listen(self, value: str) -> None:
        """Discovery Proxy (RFC 8766): answer unicast DNS on ADDRESS:PORT, UDP and TCP. Repeatable."""
        try:
            self["proxy-listen"].append(parse_listen(value))
        except ValueError as e:
            raise usage.UsageError(f"--proxy-listen {e}") from None

    def opt_proxy_domain(self, value: str) -> None:
        """Discovery Proxy: IFACE=DOMAIN, the unicast domain of that link (e.g. eth1=b.lab.example). Repeatable."""
        self["proxy-domain"].append(value)

    def opt_proxy_allow(self, value: str) -> None:
        """Discovery Proxy: a CIDR whose clients may ask. Repeatable. Default: loopback and this host's subnets."""
        try:
            self["proxy-allow"].append(parse_allow(value))
        except ValueError as e:
            raise usage.UsageError(f"--proxy-allow {e}") from None

    def proxy_post_options(self, selected: Sequence[NetworkInterface] | None = None) -> None:
        """
        Check the options together; C{self["proxy"]} becomes the parsed
        settings, or C{None} when no proxy was asked for.

        @param selected: the interfaces mDNS will run on; a domain for any
            other link is an error (nothing would ever answer there).
        """
        try:
            domains = DomainMap.parse(self["proxy-domain"])
        except DomainSpecError as e:
            raise usage.UsageError(f"--proxy-domain {e}") from None
        try:
            wait = check_wait(self["proxy-wait"])
        except ValueError as e:
            raise usage.UsageError(f"--proxy-wait: {e}") from None
        if not self["proxy-listen"]:
            if len(domains) or self["proxy-allow"]:
                raise usage.UsageError("--proxy-domain/--proxy-allow need --proxy-listen ADDRESS:PORT")
            self["proxy"] = None
            return
        if not len(domains):
            raise usage.UsageError("--proxy-listen needs at least one --proxy-domain IFACE=DOMAIN")
        if selected is not None:
            for link in domains:
                if find_interface(selected, link.interface) is None:
                    raise usage.UsageError(
                        f"--proxy-domain {link.interface}={link.text}: mDNS does not run on "
                        f"{link.interface!r} (it runs on: {', '.join(i.name for i in selected) or 'nothing'})"
                    )
        self["proxy"] = {
            "domains": domains,
            "listen": list(self["proxy-listen"]),
            "allow": list(self["proxy-allow"]) or None,
            "wait": wait,
            "server": self["proxy-server"],
        }


def add_proxy(options: Any, mdns: Any) -> service.IService | None:
    """
    Give C{mdns} (an L{twisted_mdns.service.MDNSService}) the Discovery
    Proxy the options ask for, as a child service; C{None} if none.
    """
    settings = options.get("proxy") if hasattr(options, "get") else None
    if not settings:
        return None
    proxy: service.IService = mdns.add_discovery_proxy(**settings)
    return proxy
