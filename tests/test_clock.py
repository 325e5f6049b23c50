"""
L{twisted_mdns.clock}: timers and durations that wall-clock steps do not move.

The wall clock is faked here (a reactor's C{seconds}, or the host clock of a
L{MonotonicClock}); stepping it shows first what goes wrong on wall time (a
one-hour backward step stalls a timer for an hour) and then that the
switched reactor or the wrapper keeps every call due after its delay.  The
real process under libfaketime is in L{tests.test_clock_step}.
"""

from __future__ import annotations

import threading
import time

from twisted.application import service
from twisted.internet import error, task
from twisted.internet.interfaces import IDelayedCall, IReactorFDSet, IReactorTime
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from twisted_mdns import clock
from twisted_mdns.clock import (
    CLOCK_ENV,
    MonotonicClock,
    MonotonicTimeService,
    is_monotonic,
    step_proof,
    use_monotonic_time,
)

HOUR = 3600.0
DAY = 86400.0


class FakeWall:
    """
    A wall clock the test steps: C{now} starts at a plausible epoch time.
    """

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def fresh_reactor(case: unittest.TestCase) -> SelectReactor:
    """
    A reactor instance of our own (never run), so that switching it does not
    touch the reactor trial runs on.
    """
    reactor = SelectReactor()

    def close() -> None:
        reactor.removeReader(reactor.waker)
        reactor.waker.connectionLost(None)

    case.addCleanup(close)
    return reactor


class WallClockReactorTests(unittest.TestCase):
    """
    What goes wrong without this module, on a real reactor's own timer heap.
    """

    def test_backward_step_stalls_a_wall_clock_timer(self) -> None:
        reactor = fresh_reactor(self)
        wall = FakeWall()
        reactor.seconds = wall
        reactor.callLater(1.0, lambda: None)
        self.assertAlmostEqual(reactor.timeout(), 1.0)
        wall.now -= HOUR
        # The reactor would sleep an hour before the one-second timer.
        self.assertAlmostEqual(reactor.timeout(), HOUR + 1.0)

    def test_switched_reactor_ignores_the_step(self) -> None:
        reactor = fresh_reactor(self)
        wall = FakeWall()
        reactor.seconds = wall
        fired: list[str] = []
        reactor.callLater(30.0, fired.append, "late")
        self.assertTrue(use_monotonic_time(reactor))
        wall.now -= HOUR  # no longer read by anything
        self.assertLessEqual(reactor.timeout(), 30.0)
        self.assertGreater(reactor.timeout(), 29.0)
        self.assertEqual(fired, [])


class UseMonotonicTimeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = fresh_reactor(self)
        self.wall = FakeWall()
        self.reactor.seconds = self.wall

    def test_switches_and_reports(self) -> None:
        self.assertFalse(is_monotonic(self.reactor))
        self.assertTrue(use_monotonic_time(self.reactor))
        self.assertTrue(is_monotonic(self.reactor))
        self.assertIs(self.reactor.seconds, time.monotonic)
        # A second switch is a no-op.
        self.assertFalse(use_monotonic_time(self.reactor))

    def test_pending_calls_keep_their_delay_and_order(self) -> None:
        fired: list[str] = []
        self.reactor.callLater(0.15, fired.append, "c")
        self.reactor.callLater(0.05, fired.append, "a")
        self.reactor.timeout()  # moves the new calls into the reactor's heap
        self.reactor.callLater(0.10, fired.append, "b")  # still "new"
        self.wall.now += 0.02  # some wall time passes before the switch
        use_monotonic_time(self.reactor)
        now = time.monotonic()
        times = sorted(c.getTime() - now for c in self.reactor.getDelayedCalls())
        for got, want in zip(times, (0.03, 0.08, 0.13)):
            self.assertLess(abs(got - want), 0.02)
        deadline = time.monotonic() + 2.0
        while len(fired) < 3 and time.monotonic() < deadline:
            time.sleep(min(0.01, self.reactor.timeout() or 0.01))
            self.reactor.runUntilCurrent()
        self.assertEqual(fired, ["a", "b", "c"])

    def test_new_calls_are_on_monotonic_time(self) -> None:
        use_monotonic_time(self.reactor)
        call = self.reactor.callLater(5.0, lambda: None)
        self.assertLess(abs(call.getTime() - (time.monotonic() + 5.0)), 0.5)
        call.cancel()

    def test_wall_clock_forced_by_environment(self) -> None:
        self.patch(clock.os, "environ", {CLOCK_ENV: "wall"})
        self.assertFalse(use_monotonic_time(self.reactor))
        self.assertIs(self.reactor.seconds, self.wall)

    def test_not_a_reactor_base(self) -> None:
        fake = task.Clock()
        self.assertFalse(use_monotonic_time(fake))
        self.assertFalse(is_monotonic(fake))

    def test_service_switches_when_started(self) -> None:
        svc = MonotonicTimeService(self.reactor)
        top = service.MultiService()
        svc.setServiceParent(top)
        self.assertFalse(is_monotonic(self.reactor))
        top.privilegedStartService()
        self.assertTrue(is_monotonic(self.reactor))


class FakeHost(task.Clock):
    """
    A wall-time host reactor: a L{task.Clock} that can step backwards and
    records what threads hand it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rightNow = 1_800_000_000.0
        self.from_threads: list = []
        self.posted = threading.Event()

    def callFromThread(self, f, *args, **kw) -> None:
        self.from_threads.append((f, args, kw))
        self.posted.set()

    def run_from_threads(self) -> None:
        todo, self.from_threads = self.from_threads, []
        for f, args, kw in todo:
            f(*args, **kw)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class MonotonicClockTests(unittest.TestCase):
    def setUp(self) -> None:
        self.host = FakeHost()
        self.mono = FakeMonotonic()
        self.clock = MonotonicClock(self.host, monotonic=self.mono, wall=self.host.seconds)
        self.fired: list[str] = []

    def tearDown(self) -> None:
        for call in self.clock.getDelayedCalls():
            call.cancel()

    def advance(self, seconds: float) -> None:
        """
        Real time passes: both clocks move.
        """
        self.mono.now += seconds
        self.host.advance(seconds)

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(IReactorTime, self.clock))
        call = self.clock.callLater(1.0, lambda: None)
        self.assertTrue(verifyObject(IDelayedCall, call))

    def test_other_attributes_are_the_hosts(self) -> None:
        reactor = MemoryReactorClock()
        wrapped = MonotonicClock(reactor)
        self.assertTrue(IReactorFDSet.providedBy(wrapped))
        self.assertIs(wrapped.tcpServers, reactor.tcpServers)
        self.assertEqual(wrapped.getReaders(), [])
        self.assertIs(wrapped.reactor, reactor)

    def test_seconds_is_monotonic(self) -> None:
        self.assertEqual(self.clock.seconds(), 500.0)
        self.host.rightNow -= HOUR
        self.assertEqual(self.clock.seconds(), 500.0)
        self.assertTrue(is_monotonic(self.clock))

    def test_fires_after_its_delay(self) -> None:
        self.clock.callLater(2.0, self.fired.append, "x")
        self.advance(1.9)
        self.assertEqual(self.fired, [])
        self.advance(0.2)
        self.assertEqual(self.fired, ["x"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_backward_step_then_resync(self) -> None:
        call = self.clock.callLater(2.0, self.fired.append, "x")
        self.advance(0.5)
        self.host.rightNow -= HOUR  # the wall clock steps back an hour
        # What the watchdog does when it sees the step:
        self.clock.resync()
        self.advance(1.4)
        self.assertEqual(self.fired, [])
        self.advance(0.2)
        self.assertEqual(self.fired, ["x"])
        self.assertFalse(call.active())

    def test_backward_step_without_resync_stalls(self) -> None:
        """
        The host's wall-time call alone would wait out the step: the resync
        is what the watchdog is for.
        """
        self.clock.callLater(2.0, self.fired.append, "x")
        self.host.rightNow -= HOUR
        self.advance(5.0)
        self.assertEqual(self.fired, [])

    def test_forward_step_fires_nothing_early(self) -> None:
        self.clock.callLater(2.0, self.fired.append, "x")
        self.advance(0.5)
        self.host.advance(DAY)  # the wall clock steps a day forward
        self.assertEqual(self.fired, [])
        self.advance(1.4)
        self.assertEqual(self.fired, [])
        self.advance(0.2)
        self.assertEqual(self.fired, ["x"])

    def test_cancel_reset_delay(self) -> None:
        a = self.clock.callLater(1.0, self.fired.append, "a")
        b = self.clock.callLater(1.0, self.fired.append, "b")
        c = self.clock.callLater(1.0, self.fired.append, "c")
        a.cancel()
        self.assertRaises(error.AlreadyCancelled, a.cancel)
        self.assertRaises(error.AlreadyCancelled, a.reset, 1)
        b.reset(3.0)
        c.delay(1.0)
        self.assertEqual(b.getTime(), 503.0)
        self.assertEqual(c.getTime(), 502.0)
        self.advance(2.0)
        self.assertEqual(self.fired, ["c"])
        self.assertRaises(error.AlreadyCalled, c.cancel)
        self.advance(1.0)
        self.assertEqual(self.fired, ["c", "b"])
        self.assertEqual(self.host.getDelayedCalls(), [])

    def test_pending_calls_are_visible_on_the_host(self) -> None:
        self.clock.callLater(1.0, lambda: None)
        self.assertEqual(len(self.host.getDelayedCalls()), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_watchdog_sees_a_step_and_ends_when_idle(self) -> None:
        self.patch(clock, "WATCHDOG_INTERVAL", 0.02)
        call = self.clock.callLater(2.0, self.fired.append, "x")
        self.host.rightNow -= HOUR
        self.assertTrue(self.host.posted.wait(5.0), "the watchdog saw no step")
        self.host.run_from_threads()
        self.advance(2.0)
        self.assertEqual(self.fired, ["x"])
        self.assertFalse(call.active())
        names = lambda: [t.name for t in threading.enumerate()]  # noqa: E731
        deadline = time.monotonic() + 5.0
        while "twisted_mdns clock watchdog" in names() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertNotIn("twisted_mdns clock watchdog", names())

    def test_passes_through_to_a_switched_reactor(self) -> None:
        reactor = fresh_reactor(self)
        use_monotonic_time(reactor)
        wrapped = MonotonicClock(reactor)
        call = wrapped.callLater(10.0, lambda: None)
        self.assertIn(call, reactor.getDelayedCalls())
        call.cancel()


class StepProofTests(unittest.TestCase):
    def test_wraps_a_wall_time_reactor(self) -> None:
        reactor = fresh_reactor(self)
        got = step_proof(reactor)
        self.assertIsInstance(got, MonotonicClock)
        self.assertIs(got.reactor, reactor)

    def test_keeps_a_monotonic_reactor(self) -> None:
        reactor = fresh_reactor(self)
        use_monotonic_time(reactor)
        self.assertIs(step_proof(reactor), reactor)

    def test_keeps_a_test_clock(self) -> None:
        fake = task.Clock()
        self.assertIs(step_proof(fake), fake)
        memory = MemoryReactorClock()
        self.assertIs(step_proof(memory), memory)

    def test_wall_clock_forced_by_environment(self) -> None:
        self.patch(clock.os, "environ", {CLOCK_ENV: "wall"})
        reactor = fresh_reactor(self)
        self.assertIs(step_proof(reactor), reactor)

    def test_service_clock(self) -> None:
        from twisted_mdns.service import MDNSService
        from twisted_mdns.testing import make_interface

        class Fixed:
            def interfaces(self):
                return [make_interface("eth0", 2, "10.0.0.5/24")]

        fake = MemoryReactorClock()
        mdns = MDNSService(reactor=fake, enumerator=Fixed(), monitor=False)
        self.assertIs(mdns.clock, fake)
        reactor = fresh_reactor(self)
        mdns = MDNSService(reactor=reactor, enumerator=Fixed(), monitor=False)
        self.assertIsInstance(mdns.clock, MonotonicClock)
        self.assertIs(mdns.reactor, reactor)


class StandsInForTheReactorTests(unittest.TestCase):
    """
    L{MonotonicClock} over the running reactor: ports built on it (as the
    querier's C{listenMulticastOn} and the transport do) read and write
    through the host reactor.
    """

    def test_port_on_the_wrapper(self):
        import socket

        from twisted.internet import reactor, udp
        from twisted.internet.protocol import DatagramProtocol

        from tests.support import wait_until

        got: list[bytes] = []

        class Echo(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr) -> None:
                got.append(data)

        wrapped = MonotonicClock(reactor)
        port = udp.Port(0, Echo(), interface="127.0.0.1", reactor=wrapped)
        port.startListening()
        self.addCleanup(port.stopListening)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.sendto(b"ping", ("127.0.0.1", port.getHost().port))
        fired: list[float] = []
        wrapped.callLater(0.05, lambda: fired.append(wrapped.seconds()))
        return wait_until(lambda: got and fired, timeout=5, what="datagram and timer").addCallback(
            lambda _: self.assertEqual(got, [b"ping"])
        )
