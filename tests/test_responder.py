"""
The responder engine: public API and following links.

The real responder, protocol and message code; a L{Clock} for time and
a recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IServiceRegistry
from twisted_mdns.message import TYPE_A, TYPE_PTR, TYPE_SRV, Record, name_from_text
from twisted_mdns.testing import make_interface
from twisted_mdns.records import InterfaceRecords, ServiceInfo

from tests.responder_case import ETH0, LAB, WEB, WLAN0, ResponderCase


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

    def test_new_interface_reverse_mapping_probed_with_it(self) -> None:
        """
        The reverse mapping of a new link's address is probed with the
        host name's first probe there and announced with it (it waited
        for the next interface change, if any came, before).
        """
        from twisted_mdns.transport import TransportChange

        self.settle()
        self.transport.interfaces[3] = WLAN0
        self.responder.interfaces_changed(TransportChange(added=(WLAN0,)))
        self.clock.advance(0.25)
        probes = self.transport.take()
        reverse = name_from_text("100.1.168.192.in-addr.arpa")
        self.assertEqual([{q.name for q in p.message.questions} for p in probes], [{LAB, reverse}])
        for _ in range(4):
            self.clock.advance(0.25)
        self.assertIn(
            (reverse, TYPE_PTR), {(r.name, r.rtype) for r in self.responder.records_for(3)},
        )
        self.assertIn("192.168.1.100", self.responder.claims.reverse)
        self.assertTrue(self.responder.claims.reverse["192.168.1.100"].announced)

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


class CostTests(ResponderCase):
    """
    Registering, updating or removing one service costs the same whatever
    else is published (issue 13): counted in view operations, which a
    rebuild of every view would multiply by the number of services.
    """

    def setUp(self) -> None:
        super().setUp()
        self.counts = {"add": 0, "remove": 0}
        real_add, real_remove = InterfaceRecords.add, InterfaceRecords.remove

        def add(view: InterfaceRecords, record: Record) -> bool:
            self.counts["add"] += 1
            return real_add(view, record)

        def remove(view: InterfaceRecords, record: Record) -> bool:
            self.counts["remove"] += 1
            return real_remove(view, record)

        self.patch(InterfaceRecords, "add", add)
        self.patch(InterfaceRecords, "remove", remove)

    def view_operations(self, others: int) -> dict[str, int]:
        """
        View operations to register, update and unregister C{WEB} with
        C{others} services published.
        """
        ResponderCase.setUp(self)  # a fresh responder; the counting stays
        self.settle()
        for n in range(others):
            self.responder.register(ServiceInfo(f"svc {n}", "_http._tcp", 1000 + n))
        for _ in range(12):
            self.clock.advance(0.25)
        self.assertEqual(len(self.responder.services), others)
        self.counts.update(add=0, remove=0)
        got = []
        self.responder.register(WEB).addCallback(got.append)
        for _ in range(12):
            self.clock.advance(0.25)
        self.assertEqual([s.instance for s in got], ["My Web"])
        self.responder.update(WEB.with_txt({"v": "2"}))
        self.responder.unregister(WEB)
        self.assertEqual(len(self.responder.services), others)
        return dict(self.counts)

    def test_register_update_unregister_independent_of_others(self) -> None:
        few = self.view_operations(3)
        many = self.view_operations(300)
        self.assertEqual(few, many)
        self.assertLess(few["add"], 20)


class LinkLifeTests(ResponderCase):
    def test_link_that_goes_away_takes_its_timers(self) -> None:
        """
        An aggregated answer and a held truncated query wait on eth0; eth0
        goes away: nothing of it stays scheduled, nothing is sent.
        """
        from twisted_mdns.message import FLAG_TC, TYPE_PTR, Question, pack
        from twisted_mdns.transport import TransportChange

        self.settle()
        self.responder.register(WEB)
        for _ in range(20):
            self.clock.advance(0.25)
        self.clock.advance(5)
        self.transport.take()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.query(Question(WEB.type_name, TYPE_PTR), index=2)
        held = pack(questions=[Question(WEB.type_name, TYPE_PTR)], limit=512)[0]
        self.receive(held[:2] + FLAG_TC.to_bytes(2, "big") + held[4:], ("10.0.0.10", 5353), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        del self.transport.interfaces[2]
        self.responder.interfaces_changed(TransportChange(removed=(ETH0,)))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIsNone(self.responder.link(2))
        self.assertEqual(self.responder.records_for(2), [])
        self.clock.advance(1)
        self.assertEqual(self.transport.take(), [])
        self.assertTrue(self.responder.records_for(3), "wlan0 is untouched")

    def test_start_without_host(self) -> None:
        """
        C{publish_host=False}: services are published, the host name is
        neither probed nor announced.
        """
        from twisted_mdns.message import TYPE_SRV

        self.responder.start_without_host()
        got = []
        self.responder.register(WEB).addCallback(got.append)
        for _ in range(12):
            self.clock.advance(0.25)
        self.assertEqual([s.instance for s in got], ["My Web"])
        self.assertFalse(self.responder.host_claimed)
        types = {r.rtype for r in self.responder.records_for(2)}
        self.assertIn(TYPE_SRV, types)
        self.assertNotIn(TYPE_A, types)
