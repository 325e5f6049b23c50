"""
Tests for L{twisted_mdns.querier.continuous} on a L{Clock}: continuous
querying and its backoff (RFC 6762 §5.2), QU first (§5.4), known answers
(§7.1, §7.2), duplicate question suppression (§7.3) and refresh queries.
"""

from __future__ import annotations

from twisted_mdns.message import (
    FLAG_TC,
    TYPE_A,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    Message,
    Question,
    a_record,
    join_name,
    ptr_record,
)
from twisted_mdns.querier import MAX_INTERVAL, Querier
from twisted_mdns.querier.continuous import RECENT_BOUND, RecentQuestions

from tests.querier_support import (
    ETH0,
    HTTP,
    PEERHOST,
    WEB,
    WLAN0,
    FakeTransport,
    QuerierTestCase,
    Recorder,
    context,
    service_records,
)


class ContinuousQueryTests(QuerierTestCase):
    def test_backoff_doubles_from_one_second(self) -> None:
        """
        s5.2: first query after 20-120 ms, then 1 s, 2 s, 4 s, 8 s... apart.
        """
        self.querier.browse("_http._tcp", Recorder())
        times = self.send_times(70)
        self.assertGreaterEqual(times[0], 0.02)
        self.assertLessEqual(times[0], 0.13)
        gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
        self.assertEqual(gaps, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
        self.assertEqual(self.counters["queries.sent"], 7)

    def test_backoff_capped_at_sixty_minutes(self) -> None:
        self.querier.browse("_http._tcp", Recorder())
        times = []
        for _ in range(4 * 24 * 60):  # four days in one-minute steps
            before = len(self.transport.sent)
            self.clock.advance(60)
            if len(self.transport.sent) > before:
                times.append(self.clock.seconds())
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertEqual(max(gaps), MAX_INTERVAL)
        self.assertEqual(gaps[-5:], [MAX_INTERVAL] * 5)

    def test_first_query_qu_then_qm(self) -> None:
        """
        s5.4: the first query asks for a unicast response; the rest are QM.
        """
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(4)
        self.assertEqual(
            self.transport.questions(),
            [[("_http._tcp.local", TYPE_PTR, True)], [("_http._tcp.local", TYPE_PTR, False)],
             [("_http._tcp.local", TYPE_PTR, False)]],
        )

    def test_first_query_qm_when_cached(self) -> None:
        self.respond([ptr_record(HTTP, WEB, 4500)])
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(1)
        # The PTR is cached: QM.  The instance's SRV and TXT are not: QU.
        self.assertEqual(self.transport.questions()[0], [
            ("_http._tcp.local", TYPE_PTR, False),
            ("Web._http._tcp.local", TYPE_SRV, True),
            ("Web._http._tcp.local", TYPE_TXT, True),
        ])

    def test_unicast_first_can_be_turned_off(self) -> None:
        querier = Querier(self.transport, self.clock, unicast_first=False)
        querier.browse("_http._tcp", Recorder())
        self.send_times(1)
        querier.stop()
        self.assertEqual(self.transport.questions()[0], [("_http._tcp.local", TYPE_PTR, False)])

    def test_questions_started_together_share_a_message(self) -> None:
        self.querier.browse("_http._tcp", Recorder())
        self.querier.browse("_ipp._tcp", Recorder())
        self.send_times(0.5)
        self.assertEqual(len(self.transport.sent), 1)
        self.assertEqual(
            sorted(q[0] for q in self.transport.questions()[0]),
            ["_http._tcp.local", "_ipp._tcp.local"],
        )

    def test_query_sent_on_each_interface(self) -> None:
        transport = FakeTransport(ETH0, WLAN0)
        querier = Querier(transport, self.clock)
        querier.browse("_http._tcp", Recorder())
        self.send_times(0.5)
        querier.stop()
        self.assertEqual(sorted(i for _, i, _ in transport.sent), [ETH0.index, WLAN0.index])
        self.assertEqual({d for _, _, d in transport.sent}, {None})

    def test_same_question_asked_once(self) -> None:
        first = self.querier.browse("_http._tcp", Recorder())
        second = self.querier.browse("_http._tcp", Recorder())
        self.send_times(2)
        self.assertEqual(len(self.transport.sent), 2)
        first.stop()
        self.send_times(2.5)
        self.assertEqual(len(self.transport.sent), 3, "still asked for the second browser")
        second.stop()
        self.send_times(10)
        self.assertEqual(len(self.transport.sent), 3)


class KnownAnswerTests(QuerierTestCase):
    def test_known_answers_with_more_than_half_ttl(self) -> None:
        """
        s7.1: the known-answer list holds cached answers with more than
        half their TTL left, with their remaining TTL.
        """
        self.respond([ptr_record(HTTP, join_name("Old", HTTP), 100)])
        self.clock.advance(60)
        self.respond([ptr_record(HTTP, WEB, 4500)])
        self.clock.advance(10)
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(0.2)
        [message] = self.transport.messages()
        self.assertEqual(
            [(r.name, r.rdata.label.label, r.ttl) for r in message.answers],
            [(HTTP, WEB, 4489)],  # 4490 s left, less the 20-120 ms delay
        )

    def test_large_known_answer_list_split_with_tc(self) -> None:
        """
        s7.2: known answers that do not fit go on in more packets; every
        packet but the last has TC; each is within the interface MTU.
        """
        instances = ["Instance number %03d with a long name" % n for n in range(80)]
        names = [join_name(i, HTTP) for i in instances]
        for instance in instances:  # resolved: only the PTR question is asked
            self.respond(service_records(instance=instance))
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(0.2)
        messages = self.transport.messages()
        self.assertGreater(len(messages), 1)
        self.assertTrue(all(m.truncated for m in messages[:-1]))
        self.assertFalse(messages[-1].truncated)
        self.assertEqual(len(messages[0].questions), 1)
        self.assertTrue(all(len(d) <= 1500 - 28 for d, _, _ in self.transport.sent))
        known = [r.rdata.label.label for m in messages for r in m.answers]
        self.assertEqual(sorted(known), sorted(names))


class DuplicateSuppressionTests(QuerierTestCase):
    """
    s7.3: another host's QM question with a known-answer list holding
    nothing ours would not counts as our next query.
    """

    def start(self) -> list[float]:
        self.respond(service_records())  # resolved: only the PTR is asked
        self.querier.browse("_http._tcp", Recorder())
        return self.send_times(0.5)  # the first query: at ~0.02-0.12 s

    def test_same_question_same_known_answers_suppresses(self) -> None:
        self.start()
        self.clock.advance(0.2)  # our next is due ~1 s after the first
        self.other_host_asks([Question(HTTP, TYPE_PTR)], [ptr_record(HTTP, WEB, 4400)])
        self.assertEqual(self.counters["queries.suppressed"], 1)
        times = self.send_times(5)
        # Not sent at ~1.1 s: counted as sent at 0.7 s, the next is 2 s later.
        self.assertEqual(len(times), 1)
        self.assertAlmostEqual(times[0], 0.7 + 2.0, places=1)

    def test_fewer_known_answers_suppresses(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)])
        self.assertEqual(self.counters["queries.suppressed"], 1)

    def test_known_answer_we_lack_does_not_suppress(self) -> None:
        """
        Their list holds a record ours would not: responders would stay
        silent about it, so we must still ask.
        """
        self.start()
        other = ptr_record(HTTP, join_name("Other", HTTP), 4500)
        self.other_host_asks([Question(HTTP, TYPE_PTR)], [ptr_record(HTTP, WEB, 4400), other])
        self.assertEqual(self.counters["queries.suppressed"], 0)
        times = self.send_times(1.5)
        self.assertEqual(len(times), 1)

    def test_qu_question_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR, unicast=True)])
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_truncated_query_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)], flags=FLAG_TC)
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_own_query_looped_back_does_not_suppress(self) -> None:
        self.start()
        self.other_host_asks([Question(HTTP, TYPE_PTR)], source="192.168.1.10")
        self.assertEqual(self.counters["queries.suppressed"], 0)

    def test_other_interface_does_not_suppress(self) -> None:
        transport = FakeTransport(ETH0, WLAN0)
        querier = Querier(transport, self.clock, self.counters)
        querier.browse("_http._tcp", Recorder())
        message = Message(questions=[Question(HTTP, TYPE_PTR)])
        querier.query_received(message, ("10.0.0.50", 5353), context(WLAN0))
        self.send_times(0.5)
        querier.stop()
        self.assertEqual(self.counters["queries.suppressed"], 1)
        self.assertEqual([i for _, i, _ in transport.sent], [ETH0.index])


class RefreshTests(QuerierTestCase):
    def test_watched_records_refreshed(self) -> None:
        """
        s5.2: a browser's resolved records are asked about again at 80% of
        their TTL (+0-2%), with no known answer for the record refreshed.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.respond(service_records(host_ttl=100, ttl=4500))
        self.assertEqual(len(recorder.calls), 1)
        self.send_times(79)
        self.transport.sent.clear()
        times = self.send_times(3)
        self.assertTrue(times, "no refresh query")
        self.assertTrue(all(80 <= t <= 82.01 for t in times), times)
        asked = {(q[0], q[1]) for m in self.transport.questions() for q in m}
        self.assertEqual(asked, {("Web._http._tcp.local", TYPE_SRV), ("peer.local", TYPE_A)})
        for m in self.transport.messages():
            self.assertEqual([r for r in m.answers if r.rtype in (TYPE_SRV, TYPE_A)], [])
        self.assertGreaterEqual(self.counters["refresh.sent"], 2)

    def test_unwatched_records_not_refreshed(self) -> None:
        self.respond([a_record(PEERHOST, "192.168.1.50", 100)])
        self.send_times(100)
        self.assertEqual(self.transport.sent, [])

    def test_short_ttl_refresh_points_then_removal(self) -> None:
        """
        A service announced once with TTL 2 s and never refreshed (the
        Clock twin of the namespace test, with exact bounds): its records
        are asked about at 80, 85, 90 and 95 % of the TTL (each plus up to
        2 %, RFC 6762 §5.2), and at 2 s the service is removed.
        """
        recorder = Recorder()
        self.querier.browse("_http._tcp", recorder)
        self.send_times(0.2)
        self.transport.sent.clear()
        start = self.clock.seconds()
        self.respond(service_records(ttl=2, host_ttl=2))
        self.assertEqual(recorder.events(), [("added", "Web", "eth0")])
        srv_at = []
        removed_at = None
        for _ in range(2100):
            before = len(self.transport.sent)
            self.clock.advance(0.001)
            for message in self.transport.messages()[before:]:
                if any(q.qtype == TYPE_SRV for q in message.questions):
                    srv_at.append(self.clock.seconds() - start)
            if removed_at is None and len(recorder.calls) > 1:
                removed_at = self.clock.seconds() - start
        self.assertEqual(len(srv_at), 4, srv_at)
        for point, at in zip((0.80, 0.85, 0.90, 0.95), srv_at):
            self.assertTrue(2 * point - 0.0015 <= at <= 2 * (point + 0.02) + 0.0015, (point, at))
        self.assertEqual(recorder.events()[1:], [("removed", "Web", "eth0")])
        self.assertTrue(removed_at is not None and abs(removed_at - 2.0) <= 0.0015, removed_at)


class RecentQuestionsTests(QuerierTestCase):
    def test_bounded(self) -> None:
        """
        The questions a link remembers for RFC 6762 §7.3 stay bounded
        whatever other hosts ask.
        """
        recent = RecentQuestions(self.clock)
        for n in range(3 * RECENT_BOUND):
            recent.note(Question(join_name(f"host{n}", "local"), TYPE_A), None)
            self.assertLessEqual(len(recent), RECENT_BOUND)
        self.clock.advance(1)
        recent.note(Question(PEERHOST, TYPE_A), None)
        self.assertTrue(recent.answered_for(Question(PEERHOST, TYPE_A), []))
        self.assertFalse(recent.answered_for(Question(WEB, TYPE_A), []))


class UnicastFirstSwitchTests(QuerierTestCase):
    def test_turned_off_after_construction(self) -> None:
        """
        C{unicast_first} set on a running querier holds for its links.
        """
        self.querier.unicast_first = False
        self.querier.browse("_http._tcp", Recorder())
        self.send_times(0.2)
        self.assertEqual(self.transport.questions(), [[("_http._tcp.local", TYPE_PTR, False)]])
