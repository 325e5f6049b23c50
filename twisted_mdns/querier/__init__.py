# -*- test-case-name: tests.test_querier_engine -*-
"""
The querier: per-link caches, continuous querying, browse and resolve.

RFC 6762 §14 makes every link its own namespace, so everything here is per
link: one L{QuerierLink} per link holding that link's cache and continuous
queries, questions asked on each link with that link's own known answers,
and results reported with the interface they came from.  A service seen on
eth0 is a service on eth0; the same instance name on wlan0 is another
service, reported separately.

The package in parts, each one job:

 - L{engine}: L{Querier}, the public API;
 - L{links}: the per-link object (fed by both address families), what an
   operation asks on a link, and the send seam L{QuerierTransport};
 - L{continuous}: continuous querying (RFC 6762 §5.2, §5.4), known answers
   (§7.1, §7.2), duplicate question suppression (§7.3);
 - L{resolving}: host and service resolution;
 - L{browsing}: L{ServiceBrowser} (RFC 6763 §4);
 - L{results}: L{ResolvedService} (addresses of both families, IPv6
   link-local ones scoped: C{fe80::1%eth0}, L{ResolvedService.sockaddrs}),
   L{ServiceListener}, L{sockaddr};
 - names are checked by L{twisted_mdns.naming}, the cache rules (RFC 6762
   §10) live in L{twisted_mdns.cache}.

Every name importable from C{twisted_mdns.querier} before the split still
is.
"""

from twisted_mdns.naming import (
    ServiceType,
    parse_host_name,
    parse_instance_name,
    parse_service_type,
)
from twisted_mdns.querier.browsing import ServiceBrowser
from twisted_mdns.querier.continuous import FIRST_DELAY, FIRST_INTERVAL, MAX_INTERVAL
from twisted_mdns.querier.engine import Querier
from twisted_mdns.querier.links import QuerierLink, QuerierTransport
from twisted_mdns.querier.resolving import DEFAULT_SETTLE
from twisted_mdns.querier.results import (
    InterfaceSpec,
    ResolvedService,
    ServiceListener,
    service_from_cache,
    sockaddr,
)

__all__ = [
    "DEFAULT_SETTLE",
    "FIRST_DELAY",
    "FIRST_INTERVAL",
    "InterfaceSpec",
    "MAX_INTERVAL",
    "Querier",
    "QuerierLink",
    "QuerierTransport",
    "ResolvedService",
    "ServiceBrowser",
    "ServiceListener",
    "ServiceType",
    "parse_host_name",
    "parse_instance_name",
    "parse_service_type",
    "service_from_cache",
    "sockaddr",
]
