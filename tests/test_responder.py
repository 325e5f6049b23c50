"""
The responder engine: public API and following links.

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IServiceRegistry
from twisted_mdns.message import TYPE_A, TYPE_SRV
from twisted_mdns.testing import make_interface

from tests.responder_case import ETH0, WEB, WLAN0, ResponderCase


class EngineTests(ResponderCase):
    def test_provides(self) -> None:
        verifyObject(IServiceRegistry, self.responder)

    def test_services_registered_before_start(self) -> None:
        got = []
        self.responder.register(WEB).addCallback(got.append)
        self.settle()
        self.assertEqual([s.instance for s in got], ["My Web"])


class InterfaceChangeTests(ResponderCase):
    interfaces = (ETH0,)

    def test_no_interface_at_start_then_one_appears(self) -> None:
        """
        A laptop that boots without a network: the names are ours (there is
        nobody to ask), and the first interface to appear gets probes and
        announcements.
        """
        from twisted_mdns.transport import TransportChange

        self.transport.interfaces.clear()
        host, service = [], []
        self.responder.start().addCallback(host.append)
        self.responder.register(WEB).addCallback(service.append)
        self.assertEqual(host, ["lab"])
        self.assertEqual([s.instance for s in service], ["My Web"])
        self.assertEqual(self.transport.take(), [])
        self.transport.interfaces[2] = ETH0
        self.responder.interfaces_changed(TransportChange(added=(ETH0,)))
        self.clock.advance(0.25)
        self.assertTrue(self.transport.take(), "probes on the new interface")
        for _ in range(4):
            self.clock.advance(0.25)
        records = {(r.rtype, str(r.rdata)) for r in self.responder.records_for(2)}
        self.assertIn((TYPE_A, "10.0.0.5"), records)
        self.assertIn((TYPE_SRV, "0 0 8080 lab.local."), records)

    def test_new_interface_probed_and_announced(self) -> None:
        from twisted_mdns.transport import TransportChange

        self.settle()
        self.transport.interfaces[3] = WLAN0
        self.responder.interfaces_changed(TransportChange(added=(WLAN0,)))
        self.clock.advance(0.25)
        probes = self.transport.take()
        self.assertEqual([p.index for p in probes], [3])
        self.assertFalse(probes[0].message.is_response)
        for _ in range(4):
            self.clock.advance(0.25)
        sent = self.transport.take()
        self.assertEqual({s.index for s in sent}, {3})
        self.assertIn("192.168.1.100", [str(r.rdata) for s in sent for r in s.message.answers if r.rtype == TYPE_A])

    def test_readdressed(self) -> None:
        from twisted_mdns.transport import TransportChange

        self.settle()
        moved = make_interface("eth0", 2, "10.0.0.6/24")
        self.transport.interfaces[2] = moved
        self.responder.interfaces_changed(TransportChange(readdressed=((ETH0, moved),)))
        sent = self.transport.take()
        goodbye = [r for r in sent[0].message.answers]
        self.assertEqual({(str(r.rdata), r.ttl) for r in goodbye if r.rtype == TYPE_A}, {("10.0.0.5", 0)})
        announced = [r for s in sent[1:] for r in s.message.answers if r.rtype == TYPE_A]
        self.assertEqual({(str(r.rdata), r.ttl) for r in announced}, {("10.0.0.6", 120)})
        self.assertEqual(
            [str(r.rdata) for r in self.responder.records_for(2) if r.rtype == TYPE_A], ["10.0.0.6"]
        )
