# -*- test-case-name: tests.test_proxy -*-
"""
The Discovery Proxy (RFC 8766): ordinary unicast DNS, for one delegated
domain per link, answered from what mDNS finds on that link.

 - L{domains}: per-link domains and name translation to and from C{.local};
 - L{answers}: what is answered (TTLs, link-local suppression, additional
   records, SOA and NS);
 - L{link}: one link's state (rate limit, waiting queries, subscribers);
 - L{ratelimit}: the mDNS questions clients may cause, per link;
 - L{resolver}: L{ProxyResolver}, the C{IResolver};
 - L{server}: the network edge (screening, truncation) on C{twisted.names};
 - L{service}: L{DiscoveryProxy}, the composable service;
 - L{options}: the C{twistd mdns --proxy-*} options.
"""

from twisted_mdns.proxy.domains import DomainMap, DomainSpecError, LinkDomain
from twisted_mdns.proxy.resolver import DEFAULT_WAIT, OutOfZone, ProxyResolver
from twisted_mdns.proxy.service import DiscoveryProxy, default_allow

__all__ = [
    "DEFAULT_WAIT",
    "DiscoveryProxy",
    "DomainMap",
    "DomainSpecError",
    "LinkDomain",
    "OutOfZone",
    "ProxyResolver",
    "default_allow",
]
