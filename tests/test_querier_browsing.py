"""
Tests for L{twisted_mdns.querier.browsing} on a L{Clock}: browsing a
service type per link (RFC 6763 §4).
"""

from __future__ import annotations

from zope.interface.verify import verifyObject

from twisted_mdns.interfaces import IServiceListener
from twisted_mdns.message import TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT, a_record, join_name, ptr_record
from twisted_mdns.policy import InterfaceValidationError
from twisted_mdns.querier import ServiceListener

from tests.querier_support import (
    ETH0,
    HTTP,
    PEERHOST,
    WEB,
    WLAN0,
    QuerierTestCase,
    Recorder,
    service_records,
)


class BrowseTests(QuerierTestCase):
    interfaces = (ETH0, WLAN0)

    def test_whole_service_in_one_response(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        self.respond(service_records(txt=(b"path=/", b"flag")))
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        service = recorder.calls[0][1]
        self.assertEqual(service.to_json(), {
            "interface": "eth0", "instance": "Web", "type": "_http._tcp", "host": "peer.local",
            "port": 8080, "addresses": ["192.168.1.50"], "txt": {"path": "/", "flag": None},
        })
        self.assertEqual(service.full_name, "Web._http._tcp.local")

    def test_resolves_each_ptr_on_its_interface(self) -> None:
        """
        A PTR alone leads to SRV/TXT questions on that interface, the SRV to
        an A question; service_added only once all are there.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.send_times(0.2)
        self.transport.sent.clear()
        records = service_records()
        self.respond(records[:1], ETH0)
        self.send_times(0.2)
        self.assertEqual(
            sorted(q[:2] for m in self.transport.questions(ETH0.index) for q in m),
            [("Web._http._tcp.local", TYPE_TXT), ("Web._http._tcp.local", TYPE_SRV)],
        )
        self.assertEqual(self.transport.messages(WLAN0.index), [])
        self.respond(records[1:3], ETH0)
        self.transport.sent.clear()
        self.send_times(0.2)
        self.assertEqual(
            self.transport.questions(ETH0.index),
            [[("peer.local", TYPE_A, True), ("peer.local", TYPE_AAAA, True)]],
        )
        self.assertEqual(recorder.calls, [])
        self.respond(records[3:], ETH0)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        # Resolved: the SRV/TXT/A questions stop (only the PTR one goes on).
        self.transport.sent.clear()
        self.send_times(20)
        asked = {q[:2] for m in self.transport.questions() for q in m}
        self.assertEqual(asked, {("_http._tcp.local", TYPE_PTR)})

    def test_same_instance_on_two_interfaces(self) -> None:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(address="192.168.1.50"), ETH0)
        self.respond(service_records(address="10.0.0.50"), WLAN0)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0"), ("added", "Web", "wlan0")])
        self.assertEqual(
            [(s.interface.name, s.addresses) for s in browser.services],
            [("eth0", ("192.168.1.50",)), ("wlan0", ("10.0.0.50",))],
        )

    def test_other_interface_not_seen(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder, interface="eth0")
        self.respond(service_records(address="10.0.0.50"), WLAN0)
        self.assertEqual(recorder.calls, [])

    def test_records_split_across_interfaces_do_not_resolve(self) -> None:
        """
        A PTR on eth0 and the SRV/TXT/A on wlan0 are not one service.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        records = service_records()
        self.respond(records[:1], ETH0)
        self.respond(records[1:], WLAN0)
        self.assertEqual(recorder.calls, [])

    def test_txt_change_is_an_update(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(txt=(b"v=1",)))
        self.clock.advance(5)
        self.respond(service_records(txt=(b"v=2",))[2:3])
        self.assertEqual([e for e, _, _ in recorder.calls], ["added", "updated"])
        self.assertEqual(recorder.calls[-1][1].txt, {"v": b"2"})
        self.clock.advance(2)  # the old TXT leaves (s10.2): no more events
        self.assertEqual(len(recorder.calls), 2)

    def test_new_address_is_an_update(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records())
        self.respond([a_record(PEERHOST, "192.168.1.51", 120)])
        self.assertEqual(recorder.calls[-1][0], "updated")
        self.assertEqual(recorder.calls[-1][1].addresses, ("192.168.1.50", "192.168.1.51"))

    def test_goodbye_removes_one_second_later(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records())
        self.clock.advance(3)
        self.respond([r.with_ttl(0) for r in service_records()])
        self.clock.advance(0.9)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added"])
        self.clock.advance(0.2)
        self.assertEqual(recorder.events(), [("added", "Web", "eth0"), ("removed", "Web", "eth0")])

    def test_expiry_without_refresh_removes(self) -> None:
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(ttl=2, host_ttl=2))
        self.send_times(1.9)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added"])
        self.send_times(0.2)
        self.assertEqual([e for e, _, _ in recorder.calls], ["added", "removed"])

    def test_stop_reports_nothing_more(self) -> None:
        recorder = Recorder()
        browser = self.querier.browse("_http._tcp", recorder)
        browser.stop()
        browser.stop()
        self.respond(service_records())
        self.assertEqual(recorder.calls, [])
        self.send_times(5)
        self.assertEqual(self.transport.sent, [])

    def test_callable_listeners(self) -> None:
        events = []
        self.querier.browse("_http._tcp", lambda e, s, i: events.append((e, s.instance, i.name)))
        added = []
        self.querier.browse("_http._tcp", added=lambda s, i: added.append(s.port))
        self.respond(service_records())
        self.assertEqual(events, [("added", "Web", "eth0")])
        self.assertEqual(added, [8080])
        verifyObject(IServiceListener, ServiceListener())

    def test_failing_listener_logged(self) -> None:
        def broken(event, service, interface):
            raise RuntimeError("listener bug")

        self.querier.browse("_http._tcp", broken)
        self.respond(service_records())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_subtype(self) -> None:
        recorder = Recorder()
        self.querier.browse("_printer._sub._http._tcp", recorder)
        self.send_times(0.2)
        self.assertEqual(self.transport.questions()[0][0][0], "_printer._sub._http._tcp.local")
        sub = join_name("_printer", "_sub", HTTP)
        self.respond([ptr_record(sub, WEB, 4500)] + service_records()[1:])
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        self.assertEqual(recorder.calls[0][1].type, "_http._tcp")

    def test_bad_type_and_listener(self) -> None:
        for bad in ("http", "_http", "_http._xyz", "_a-very-long-service-name._tcp", ""):
            self.assertRaises(ValueError, self.querier.browse, bad, Recorder())
        self.assertRaises(TypeError, self.querier.browse, "_http._tcp", object())
        self.assertRaises(InterfaceValidationError, self.querier.browse, "_http._tcp",
                          Recorder(), interface="eth9")
