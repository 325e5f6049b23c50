"""
The C{twistd mdns} plugin.  No C{__init__.py} lives in this directory: it
extends Twisted's own C{twisted.plugins} package.
"""

from twisted.application.service import ServiceMaker

mdns = ServiceMaker(
    "twisted_mdns",
    "twisted_mdns.tap",
    "Multicast DNS responder and DNS-SD browser, correct on multi-homed hosts",
    "mdns",
)
