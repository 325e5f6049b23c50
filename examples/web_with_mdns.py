"""
A web server that announces itself over mDNS, as any Twisted application
would compose it: the MDNSService is one more child service.

Run it::

    twistd -ny examples/web_with_mdns.py

It serves on port 8080 and publishes ``Example Web._http._tcp.local``
with this host's name, on the interfaces the default policy selects, each
with its own address.
"""

from __future__ import annotations

from twisted.application import internet, service
from twisted.web import resource, server

from twisted_mdns import MDNSService, ServiceInfo


class Hello(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"hello from a host you found by mDNS\n"


def build(
    hostname: str | None = None,
    http_port: int = 8080,
    policy=None,
    instance: str = "Example Web",
) -> tuple[service.MultiService, MDNSService, internet.TCPServer]:
    """
    The application's service tree: a web server and its mDNS publisher.
    """
    top = service.MultiService()
    web = internet.TCPServer(http_port, server.Site(Hello()))
    web.setServiceParent(top)
    mdns = MDNSService(policy=policy, hostname=hostname)
    mdns.setServiceParent(top)
    mdns.register(ServiceInfo(instance, "_http._tcp", http_port, {"path": "/"}))
    return top, mdns, web


application = service.Application("web-with-mdns")
_top, _mdns, _web = build()
_top.setServiceParent(application)
