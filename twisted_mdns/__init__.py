# -*- test-case-name: tests.test_package -*-
"""
twisted_mdns: multicast DNS (RFC 6762) and DNS-SD (RFC 6763) for Twisted,
correct on multi-homed hosts.

The public API, re-exported here:

 - choosing interfaces: L{DefaultInterfacePolicy}, L{ExplicitInterfacePolicy},
   L{FilterInterfacePolicy}, L{AllInterfacesPolicy}, L{ExcludingPolicy},
   L{InterfaceValidationError}, L{interface_for_destination};
 - interfaces as values: L{NetworkInterface}, L{SystemInterfaceEnumerator};
 - the service an application composes: L{MDNSService}, L{ServiceInfo};
 - interface-aware multicast for other Twisted code:
   L{PktInfoMulticastPort}, L{InterfaceContext}, L{listenMulticastOn};
 - following interface changes: L{default_monitor}, L{InterfaceChanges};
 - address families: L{Family};
 - time that wall-clock steps do not move: L{MonotonicClock},
   L{use_monotonic_time}, L{step_proof};
 - asking: L{Querier}, L{ServiceBrowser}, L{ServiceTypeBrowser},
   L{ResolvedService}, and L{InterfaceSpec} (how a caller names an
   interface);
 - the DNS-SD discovery proxy (RFC 8766): L{DiscoveryProxy}.
"""

from twisted_mdns.interfaces import (
    IInterfaceEnumerator,
    IInterfaceMonitor,
    IInterfacePolicy,
    IPktInfoDatagramProtocol,
    IServiceListener,
    IServiceRegistry,
)
from twisted_mdns.monitor import (
    InterfaceChanges,
    NetlinkInterfaceMonitor,
    PollingInterfaceMonitor,
    default_monitor,
    diff_interfaces,
)
from twisted_mdns.netif import NetworkInterface, SystemInterfaceEnumerator, find_interface
from twisted_mdns.pktinfo import InterfaceContext, PktInfoMulticastPort
from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
    FilterInterfacePolicy,
    InterfaceValidationError,
    Selection,
    interface_for_destination,
    validate_interface,
)
from twisted_mdns.records import ServiceInfo
from twisted_mdns.service import MDNSService
from twisted_mdns.transport import InterfaceTransport

from twisted_mdns.cache import RecordCache
from twisted_mdns.multicast import NotResolvedError, listenMulticastOn, resolve_and_listen
from twisted_mdns.querier import (
    InterfaceSpec,
    Querier,
    ResolvedService,
    ServiceBrowser,
    ServiceListener,
)
from twisted_mdns.clock import MonotonicClock, step_proof, use_monotonic_time
from twisted_mdns.families import Family
from twisted_mdns.proxy.service import DiscoveryProxy
from twisted_mdns.type_browser import ServiceTypeBrowser

__all__ = [
    "AllInterfacesPolicy",
    "DefaultInterfacePolicy",
    "DiscoveryProxy",
    "ExcludingPolicy",
    "ExplicitInterfacePolicy",
    "Family",
    "FilterInterfacePolicy",
    "IInterfaceEnumerator",
    "IInterfaceMonitor",
    "IInterfacePolicy",
    "IPktInfoDatagramProtocol",
    "IServiceListener",
    "IServiceRegistry",
    "InterfaceChanges",
    "InterfaceContext",
    "InterfaceSpec",
    "InterfaceTransport",
    "InterfaceValidationError",
    "MDNSService",
    "MonotonicClock",
    "NetlinkInterfaceMonitor",
    "NetworkInterface",
    "NotResolvedError",
    "PktInfoMulticastPort",
    "PollingInterfaceMonitor",
    "Querier",
    "RecordCache",
    "ResolvedService",
    "Selection",
    "ServiceBrowser",
    "ServiceInfo",
    "ServiceListener",
    "ServiceTypeBrowser",
    "SystemInterfaceEnumerator",
    "default_monitor",
    "diff_interfaces",
    "find_interface",
    "interface_for_destination",
    "listenMulticastOn",
    "resolve_and_listen",
    "step_proof",
    "use_monotonic_time",
    "validate_interface",
]
