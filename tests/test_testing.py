"""
L{twisted_mdns.testing}: the public test doubles behave as the real parts
they stand in for, at the edges they fake.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from twisted_mdns.testing import MulticastMemoryReactor, make_interface


class Announcer(DatagramProtocol):
    """
    Code under test of the kind the fake reactor serves: joins a group when
    started and multicasts a status line.
    """

    def startProtocol(self) -> None:
        self.transport.joinGroup("239.255.0.1")
        self.transport.write(b"status ok", ("239.255.0.1", 5000))


class MulticastMemoryReactorTests(TestCase):
    def test_records_listen_join_write_stop(self):
        reactor = MulticastMemoryReactor()
        self.assertTrue(verifyObject(IReactorTime, reactor))
        protocol = Announcer()
        port = reactor.listenMulticast(5000, protocol, listenMultiple=True)
        self.assertEqual(reactor.multicast, [(5000, protocol, "", 8192, True)])
        self.assertIs(protocol.transport, port)
        self.assertEqual(port.groups, ["239.255.0.1"])
        self.assertEqual(port.written, [(b"status ok", ("239.255.0.1", 5000))])
        self.assertEqual(port.getHost().port, 5000)
        port.leaveGroup("239.255.0.1")
        port.stopListening()
        self.assertEqual((port.groups, port.stopped), ([], True))

    def test_time_is_the_clock(self):
        reactor = MulticastMemoryReactor()
        calls = []
        reactor.callLater(2, calls.append, "fired")
        reactor.advance(1.9)
        self.assertEqual(calls, [])
        reactor.advance(0.1)
        self.assertEqual(calls, ["fired"])


class MakeInterfaceTests(TestCase):
    def test_families(self):
        iface = make_interface("eth0", 2, "10.0.0.5/24", "fd00::5/64")
        self.assertEqual((iface.name, iface.index), ("eth0", 2))
        self.assertEqual([str(a.ip) for a in iface.ipv4], ["10.0.0.5"])
        self.assertEqual([str(a.ip) for a in iface.ipv6], ["fd00::5"])
