# -*- test-case-name: tests.test_timers -*-
"""
Tests for L{twisted_mdns.timers}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_mdns.timers import Timers


class TimersTests(SynchronousTestCase):
    def test_fires_and_leaves(self) -> None:
        clock = Clock()
        timers = Timers(clock)
        seen: list[int] = []
        timers.later(1.0, seen.append, 1)
        self.assertEqual(len(timers), 1)
        clock.advance(0.999)
        self.assertEqual(seen, [])
        clock.advance(0.001)
        self.assertEqual(seen, [1])
        self.assertEqual(len(timers), 0)

    def test_cancel_all(self) -> None:
        clock = Clock()
        timers = Timers(clock)
        seen: list[int] = []
        for n in range(5):
            timers.later(n, seen.append, n)
        clock.advance(0)
        self.assertEqual(seen, [0])
        timers.cancel_all()
        self.assertEqual(len(timers), 0)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        self.assertEqual(seen, [0])

    def test_cancel_one_and_fired(self) -> None:
        clock = Clock()
        timers = Timers(clock)
        seen: list[str] = []
        a = timers.later(1, seen.append, "a")
        b = timers.later(2, seen.append, "b")
        timers.cancel(a)
        timers.cancel(a)
        timers.cancel(None)
        clock.advance(3)
        self.assertEqual(seen, ["b"])
        timers.cancel(b)  # already fired: a no-op
        self.assertEqual(len(timers), 0)

    def test_negative_delay_runs_now(self) -> None:
        clock = Clock()
        timers = Timers(clock)
        seen: list[int] = []
        timers.later(-1, seen.append, 1)
        clock.advance(0)
        self.assertEqual(seen, [1])
