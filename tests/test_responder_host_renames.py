"""
What follows the host name when a conflict renames it: services named
after the host (avahi's C{%h}, L{ServiceInfo.name_template}) are registered
again under the new name, with goodbyes for the old one (RFC 6762 §10.1);
other services keep their names, their SRV records the new target; the
host observers are told.

The real responder, protocol and message code; a L{Clock} for time and a
recording transport at the network edge (L{tests.responder_case}).
"""

from __future__ import annotations

from twisted.trial import unittest

from twisted_mdns.constants import TYPE_ANY
from twisted_mdns.message import (
    FLAG_AA,
    FLAG_QR,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Question,
    a_record,
    name_from_text,
    name_to_text,
    pack_one,
    ptr_target,
    srv_record,
    srv_target,
)
from twisted_mdns.records import ServiceInfo
from twisted_mdns.responder import ClaimState

from tests.responder_case import LAB, PEER_A, PEER_B, WEB, ResponderCase

#: As the avahi loader makes it from C{<name replace-wildcards="yes">%h
#: web</name>} for the host name C{lab}.
LAB_WEB = ServiceInfo("lab web", "_http._tcp", 8080, {"path": "/"}, name_template="%h web")
OTHER = ("10.0.0.77", 5353)


def conflicting_host() -> bytes:
    """
    Another host's answer for C{lab.local} (RFC 6762 §8.1, §9).
    """
    return pack_one(flags=FLAG_QR | FLAG_AA, answers=[a_record(LAB, "10.0.0.77", 120)])


def instance_of(record) -> str:
    """
    The instance label a PTR points to, or an SRV / TXT record names.
    """
    name = ptr_target(record) if record.rtype == TYPE_PTR else record.name
    return name[0].decode()


HTTP = name_from_text("_http._tcp.local")


class HostRenameCase(ResponderCase):
    def settle_with(self, *services: ServiceInfo) -> list:
        """
        Start, register C{services}, let probing and announcing end.

        @return: what the registrations' Deferreds fired with.
        """
        self.settle()
        got: list = []
        for service in services:
            self.responder.register(service).addCallback(got.append)
        self.run_for(5, step=0.25)
        self.transport.take()
        return got

    def rename_host_late(self) -> None:
        """
        §9 then §8.1: another host answers for C{lab.local} after we
        announced it (back to probing), and again while we probe (renamed
        C{lab-2}).
        """
        self.receive(conflicting_host(), OTHER, 2)
        self.clock.advance(0.25)
        self.receive(conflicting_host(), OTHER, 2)
        self.run_for(0.5, step=0.25)
        self.assertEqual(self.responder.hostname, "lab-2")

    def records(self, sent, ttl_zero: bool):
        """
        The C{_http._tcp} service records (type PTR, SRV, TXT) in the
        responses of C{sent}, goodbyes or live ones: (link, type,
        instance).
        """
        out = set()
        for s in sent:
            if not s.message.is_response:
                continue
            for r in s.message.answers:
                if (r.ttl == 0) == ttl_zero and r.name[-3:] == HTTP:
                    out.add((s.index, r.rtype, instance_of(r)))
        return sorted(out)

    def probed(self, sent) -> set[str]:
        """
        The names probed for in C{sent} (questions of queries with
        authority records).
        """
        return {
            name_to_text(q.name) for s in sent if not s.message.is_response and s.message.authorities
            for q in s.message.questions
        }


class FollowTests(HostRenameCase):
    def test_late_host_conflict_renames_the_service_with_goodbyes(self) -> None:
        """
        The brief's case: C{lab} is taken after C{lab web} was announced;
        C{lab} becomes C{lab-2}, C{lab web} gets goodbyes on both links
        (SRV, TXT and its PTR) and C{lab-2 web} is probed, then announced
        with its SRV on C{lab-2.local}; the registration fired once, with
        C{lab web}.
        """
        got = self.settle_with(LAB_WEB)
        self.assertEqual([s.instance for s in got], ["lab web"])
        self.rename_host_late()
        goodbyes = self.records(self.transport.sent, ttl_zero=True)
        self.assertEqual(
            goodbyes,
            [(index, rtype, "lab web") for index in (2, 3) for rtype in (TYPE_PTR, TYPE_TXT, TYPE_SRV)],
        )
        self.assertEqual(self.responder.counters["services.host-renamed"], 1)
        self.transport.take()
        self.run_for(4, step=0.05)
        sent = self.transport.take()
        self.assertIn("lab-2 web._http._tcp.local.", self.probed(sent))
        live = self.records(sent, ttl_zero=False)
        self.assertEqual(
            live, [(index, rtype, "lab-2 web") for index in (2, 3) for rtype in (TYPE_PTR, TYPE_TXT, TYPE_SRV)],
        )
        targets = {name_to_text(srv_target(r)) for s in sent for r in s.message.answers if r.rtype == TYPE_SRV}
        self.assertEqual(targets, {"lab-2.local."})
        self.assertEqual([s.instance for s in self.responder.services], ["lab-2 web"])
        self.assertEqual([s.instance for s in got], ["lab web"], "fired once")
        self.assertEqual({instance_of(r) for r in self.responder.records_for(2) if r.rtype == TYPE_SRV}, {"lab-2 web"})

    def test_old_name_is_never_announced_with_the_new_target(self) -> None:
        """
        No announcement of C{lab web} pointing at C{lab-2.local} between
        its goodbye and the new name (it is withdrawn, not republished).
        """
        self.settle_with(LAB_WEB)
        self.rename_host_late()
        self.run_for(4, step=0.05)
        live = [r for s in self.transport.take() if s.message.is_response for r in s.message.answers
                if r.ttl > 0 and r.rtype == TYPE_SRV and instance_of(r) == "lab web"]
        self.assertEqual(live, [])

    def test_answers_follow(self) -> None:
        """
        Asked after the rename, the link answers with C{lab-2 web} and
        no longer knows C{lab web}.
        """
        self.settle_with(LAB_WEB)
        self.rename_host_late()
        self.run_for(4, step=0.05)
        self.clock.advance(2)
        self.transport.take()
        self.query(Question(name_from_text("_http._tcp.local"), TYPE_PTR), index=2, source=PEER_A)
        self.run_for(0.5)
        answered = {instance_of(r) for s in self.transport.take() for r in s.message.answers if r.rtype == TYPE_PTR}
        self.assertEqual(answered, {"lab-2 web"})

    def test_fixed_name_keeps_its_name_new_target(self) -> None:
        """
        A service registered under a fixed name (no template) is not
        renamed: its SRV is announced again with the new target.
        """
        self.settle_with(WEB)
        self.rename_host_late()
        sent = self.transport.take()
        self.assertEqual(self.records(sent, ttl_zero=True), [])
        srv = [r for s in sent for r in s.message.answers if r.rtype == TYPE_SRV and r.ttl > 0]
        self.assertTrue(srv)
        self.assertEqual({instance_of(r) for r in srv}, {"My Web"})
        self.assertEqual({name_to_text(srv_target(r)) for r in srv}, {"lab-2.local."})
        self.assertEqual(self.responder.counters["services.host-renamed"], 0)

    def test_conflict_renamed_service_takes_the_template_name_again(self) -> None:
        """
        C{lab web} had lost its own name (C{lab web (2)}); on the host
        rename it is named from the template, C{lab-2 web}, as avahi does,
        with goodbyes for C{lab web (2)}.
        """
        self.settle()
        got = []
        self.responder.register(LAB_WEB).addCallback(got.append)
        self.clock.advance(0.25)
        theirs = srv_record(LAB_WEB.name, name_from_text("other.local"), 80, 120)
        self.receive(pack_one(flags=FLAG_QR | FLAG_AA, answers=[theirs]), PEER_B, 3)
        self.run_for(5, step=0.25)
        self.assertEqual([s.instance for s in got], ["lab web (2)"])
        self.transport.take()
        self.rename_host_late()
        goodbyes = {name for _, _, name in self.records(self.transport.take(), ttl_zero=True)}
        self.assertEqual(goodbyes, {"lab web (2)"})
        self.run_for(4, step=0.05)
        self.assertEqual([s.instance for s in self.responder.services], ["lab-2 web"])

    def test_new_name_held_by_our_own_service_is_renamed(self) -> None:
        """
        We publish a fixed C{lab-2 web} as well: the C{%h} service cannot
        take it from ourselves and becomes C{lab-2 web (2)}.
        """
        fixed = ServiceInfo("lab-2 web", "_http._tcp", 8081)
        self.settle_with(LAB_WEB, fixed)
        self.rename_host_late()
        self.run_for(4, step=0.05)
        self.assertEqual(sorted(s.instance for s in self.responder.services), ["lab-2 web", "lab-2 web (2)"])
        self.assertEqual({s.port for s in self.responder.services if s.instance == "lab-2 web"}, {8081})

    def test_unregister_by_the_original_info(self) -> None:
        """
        The application's own L{ServiceInfo} (C{lab web}) still withdraws
        the service it became (C{lab-2 web}), with goodbyes for that name.
        """
        self.settle_with(LAB_WEB)
        self.rename_host_late()
        self.run_for(4, step=0.05)
        self.transport.take()
        self.responder.unregister(LAB_WEB)
        goodbyes = {name for _, _, name in self.records(self.transport.take(), ttl_zero=True)}
        self.assertEqual(goodbyes, {"lab-2 web"})
        self.assertEqual(self.responder.services, [])

    def test_register_after_the_rename_uses_the_new_host_name(self) -> None:
        """
        A service named after the host registered once the host is
        C{lab-2} (an application that loaded its avahi files with C{lab})
        is published as C{lab-2 web}.
        """
        self.settle()
        self.rename_host_late()
        got = []
        self.responder.register(LAB_WEB).addCallback(got.append)
        self.run_for(5, step=0.25)
        self.assertEqual([s.instance for s in got], ["lab-2 web"])
        self.assertEqual(got[0].name_template, "%h web")
        self.assertFailure(self.responder.register(LAB_WEB), ValueError)


class StartTests(HostRenameCase):
    def test_conflict_at_start_no_goodbye_deferred_fires_with_new_name(self) -> None:
        """
        C{lab} is taken from the start: C{lab web}, still probing, is
        never announced (so no goodbye), and its registration fires with
        C{lab-2 web}.
        """
        got = []
        self.responder.start()
        self.responder.register(LAB_WEB).addCallback(got.append)
        self.clock.advance(0.25)
        self.receive(conflicting_host(), OTHER, 2)
        self.run_for(5, step=0.05)
        self.assertEqual(self.responder.hostname, "lab-2")
        self.assertEqual([s.instance for s in got], ["lab-2 web"])
        sent = self.transport.take()
        self.assertEqual(self.records(sent, ttl_zero=True), [])
        self.assertNotIn("lab web", {name for _, _, name in self.records(sent, ttl_zero=False)})

    def test_conflict_in_the_last_probe_round(self) -> None:
        """
        The host's conflict arrives after the third probe, as the service
        probing with it would be won: the round that fails the host must
        not announce the service it withdrew (it is registered again).
        """
        got = []
        self.responder.start()
        self.responder.register(LAB_WEB).addCallback(got.append)
        start = None
        while start is None:
            self.clock.advance(0.005)
            if any(not s.message.is_response for s in self.transport.sent):
                start = self.clock.seconds()
        self.run_for(0.52)  # the third probe went out
        probes = [s for s in self.transport.sent if not s.message.is_response]
        self.assertEqual(len({s.time for s in probes}), 3)
        self.receive(conflicting_host(), OTHER, 2)
        self.run_for(5, step=0.05)
        self.assertEqual(self.responder.hostname, "lab-2")
        self.assertEqual([s.instance for s in got], ["lab-2 web"])
        sent = self.transport.take()
        self.assertNotIn("lab web", {name for _, _, name in self.records(sent, ttl_zero=False)})
        self.assertEqual(self.records(sent, ttl_zero=True), [])

    def test_renamed_twice_follows_twice(self) -> None:
        """
        C{lab-2} is taken as well: the service, still probing, follows to
        C{lab-3 web} without a goodbye for C{lab-2 web}.
        """
        got = []
        self.responder.start()
        self.responder.register(LAB_WEB).addCallback(got.append)
        self.clock.advance(0.25)
        self.receive(conflicting_host(), OTHER, 2)
        self.run_for(0.3, step=0.05)
        self.assertEqual(self.responder.hostname, "lab-2")
        lab2 = pack_one(flags=FLAG_QR | FLAG_AA, answers=[a_record(name_from_text("lab-2.local"), "10.0.0.77", 120)])
        self.receive(lab2, OTHER, 2)
        self.run_for(5, step=0.05)
        self.assertEqual(self.responder.hostname, "lab-3")
        self.assertEqual([s.instance for s in got], ["lab-3 web"])
        self.assertEqual(self.records(self.transport.take(), ttl_zero=True), [])
        self.assertEqual(self.responder.counters["services.host-renamed"], 2)


class ObserverTests(HostRenameCase):
    def test_observers_told_new_name_after_services_follow(self) -> None:
        seen = []

        def observer(name: str) -> None:
            seen.append((name, [s.instance for s in self.responder.services]))

        self.responder.add_host_observer(observer)
        self.settle_with(LAB_WEB)
        self.rename_host_late()
        self.assertEqual(seen, [("lab-2", ["lab-2 web"])])

    def test_failing_observer_logged_others_called(self) -> None:
        seen = []

        def broken(name: str) -> None:
            raise RuntimeError("observer bug")

        self.responder.add_host_observer(broken)
        self.responder.add_host_observer(seen.append)
        self.settle_with(LAB_WEB)
        self.rename_host_late()
        self.assertEqual(seen, ["lab-2"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.run_for(4, step=0.05)
        self.assertEqual([s.instance for s in self.responder.services], ["lab-2 web"])

    def test_removed_observer_not_called(self) -> None:
        seen: list[str] = []
        self.responder.add_host_observer(seen.append)
        self.responder.remove_host_observer(seen.append)
        self.settle()
        self.rename_host_late()
        self.assertEqual(seen, [])


class TieBreakTests(ResponderCase):
    def test_unregistered_while_waiting_after_a_lost_tiebreak(self) -> None:
        """
        §8.2: a lost tie-break waits 1 s before probing again; a service
        unregistered meanwhile is not probed again (nor announced).
        """
        self.settle()
        failed = []
        self.responder.register(WEB).addErrback(failed.append)
        self.clock.advance(0.26)
        self.transport.take()
        theirs = srv_record(WEB.name, name_from_text("zzz.local"), 65535, 120)
        probe = pack_one(questions=[Question(WEB.name, TYPE_ANY, True)], authorities=[theirs])
        self.receive(probe, PEER_A, 2)
        self.run_for(0.3, step=0.05)
        self.assertEqual(self.responder.counters["probes.lost-tiebreak"], 1)
        self.responder.unregister(WEB)
        self.transport.take()
        self.run_for(3, step=0.05)
        sent = self.transport.take()
        self.assertEqual([s for s in sent if any(q.name == WEB.name for q in s.message.questions)], [])
        self.assertEqual([s for s in sent if any(r.name == WEB.name for r in s.message.answers)], [])
        self.assertEqual(self.responder.services, [])
        self.assertEqual(len(failed), 1)


class ServiceInfoTests(unittest.TestCase):
    def test_for_host(self) -> None:
        self.assertEqual(LAB_WEB.for_host("lab-2").instance, "lab-2 web")
        self.assertEqual(LAB_WEB.for_host("lab-2").name_template, "%h web")
        self.assertIs(LAB_WEB.for_host("lab"), LAB_WEB)
        self.assertIs(WEB.for_host("lab-2"), WEB)
        both = ServiceInfo("a-a", "_http._tcp", 1, name_template="%h-%h")
        self.assertEqual(both.for_host("b").instance, "b-b")

    def test_too_long_is_cut_not_refused(self) -> None:
        host = "h" * 60
        info = ServiceInfo(f"{host} w", "_http._tcp", 1, name_template="%h web")
        renamed = info.for_host(host + "-2")
        self.assertEqual(len(renamed.instance.encode()), 63)
        self.assertTrue(renamed.instance.startswith(host + "-2"))
        accented = ServiceInfo("é", "_http._tcp", 1, name_template="%hé")
        cut = accented.for_host("h" * 62)
        self.assertEqual(cut.instance, "h" * 62)

    def test_template_without_wildcard_refused(self) -> None:
        self.assertRaises(ValueError, ServiceInfo, "web", "_http._tcp", 1, name_template="web")

    def test_renamed_keeps_the_template(self) -> None:
        self.assertEqual(LAB_WEB.renamed("lab web (2)").name_template, "%h web")


class ClaimStateTests(HostRenameCase):
    def test_old_claim_withdrawn_new_claim_announced(self) -> None:
        self.settle_with(LAB_WEB)
        old = self.responder.claims.find(LAB_WEB)
        self.rename_host_late()
        self.run_for(4, step=0.05)
        new = self.responder.claims.find(LAB_WEB)
        self.assertIsNot(old, new)
        self.assertIs(old.state, ClaimState.WITHDRAWN)
        self.assertIs(new.state, ClaimState.ANNOUNCED)
        self.assertEqual(old.ready_on, frozenset())
