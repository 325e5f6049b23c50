# -*- test-case-name: tests.test_clock,tests.test_clock_step -*-
"""
Time that survives wall-clock steps.

Twisted's reactors measure time with the wall clock:
C{ReactorBase.seconds} is
C{time.time}, a C{DelayedCall} stores the absolute wall time it is due at,
and the reactor sleeps until the earliest of them.  When NTP steps the clock
(small boards without a real-time clock do so by hours at boot), every timer
stalls or fires early, and every duration measured as a difference of two
C{seconds()} readings is wrong by the step.  Measured before this module: after
a one-hour backward step the host stopped answering service browses for an
hour, because the per-record "last multicast" time (RFC 6762 §6: at most
once per second) lay an hour in the future.

Every protocol duration in twisted_mdns (rate limits, TTLs and refresh
points, probe and conflict windows, held truncated queries, aggregation
delays) and every timer comes from one injected C{IReactorTime}.  This module
makes that clock monotonic, in one of two ways, chosen by who owns the
reactor:

  - L{use_monotonic_time} switches a reactor instance itself to
    C{time.monotonic} and reschedules the calls already pending.  That is
    right for a process that twisted_mdns owns: C{twistd mdns} (through
    L{MonotonicTimeService}) and C{python -m twisted_mdns}.  It is wrong for
    a host application: C{twisted.web} stamps its access log with
    C{reactor.seconds()}, and other code may expect wall time from it too.

  - L{MonotonicClock} wraps a host application's reactor: its own
    C{seconds()} is monotonic and its calls are kept due on monotonic time,
    while the host's reactor keeps wall time for everybody else.  Each call
    is mirrored by one call on the host reactor (so the host, and trial's
    dirty-reactor check, still see what is pending); a watchdog thread
    compares the wall and monotonic clocks once a second and, on a step,
    re-aims every mirrored call from the reactor thread.  A call fired early
    by a forward step re-arms itself for what is left.  Other attributes are
    the host reactor's, so the wrapper stands in for the reactor wherever
    twisted_mdns takes one (ports and the interface monitor included).

L{MDNSService<twisted_mdns.service.MDNSService>} applies L{step_proof} to its
reactor: it uses a reactor already on monotonic time (or a test clock such as
C{twisted.internet.task.Clock}) as it is, and wraps a wall-time
reactor in a L{MonotonicClock}.  Composing the service into a web
application therefore changes nothing about the application's own time.

Setting the environment variable C{TWISTED_MDNS_CLOCK=wall} turns both off
(the wall clock is used as before): a debugging aid, and how the tests show
that the clock-step tests fail without this module.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.application import service
from twisted.internet import error
from twisted.internet.base import DelayedCall, ReactorBase
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import directlyProvides, implementer, providedBy

log = Logger()

#: The environment variable that, set to C{"wall"}, keeps the wall clock.
CLOCK_ENV = "TWISTED_MDNS_CLOCK"

#: How often the watchdog of a L{MonotonicClock} compares the two clocks.
WATCHDOG_INTERVAL = 1.0

#: A change of the wall-minus-monotonic offset larger than this, between two
#: watchdog looks, is a step.  NTP slewing (at most 500 ppm) never comes near.
STEP_THRESHOLD = 0.5


def wall_clock_forced() -> bool:
    """
    Whether C{TWISTED_MDNS_CLOCK=wall} asks to keep the wall clock.
    """
    return os.environ.get(CLOCK_ENV, "").strip().lower() == "wall"


def is_monotonic(clock: object) -> bool:
    """
    Whether C{clock}'s C{seconds()} is already monotonic: a reactor switched
    by L{use_monotonic_time}, or a L{MonotonicClock}.
    """
    return isinstance(clock, MonotonicClock) or getattr(clock, "seconds", None) is time.monotonic


def use_monotonic_time(reactor: Any) -> bool:
    """
    Switch C{reactor} (an instance of a C{ReactorBase} subclass keeping its
    timed calls in the base class, as every reactor C{twistd} installs by
    default) to C{time.monotonic}, keeping every pending call due after the
    delay it had left.

    Only for a process whose reactor is ours alone: code that reads
    C{reactor.seconds()} as a date (C{twisted.web}'s log) would then read
    seconds since boot.  See L{MonotonicClock} otherwise.

    @return: C{True} if the reactor was switched now; C{False} if it already
        was, if C{TWISTED_MDNS_CLOCK=wall} asks for the wall clock, or if
        the reactor schedules its calls in a way we do not know (then use a
        L{MonotonicClock}).
    """
    if wall_clock_forced() or is_monotonic(reactor):
        return False
    if not isinstance(reactor, ReactorBase) or type(reactor).callLater is not ReactorBase.callLater:
        return False
    wall_now = reactor.seconds()
    reactor.seconds = time.monotonic
    pending: list[Any] = list(reactor.getDelayedCalls())
    for call in pending:
        if not isinstance(call, DelayedCall):
            continue
        left = max(0.0, call.getTime() - wall_now)
        # DelayedCall.reset reads the clock it was given at creation; give it
        # the new one first, so the call is re-aimed on monotonic time (and,
        # when that moves it earlier, re-sifted in the reactor's heap).
        call.seconds = time.monotonic
        call.reset(left)
    log.info("timers run on the monotonic clock (wall-clock steps do not move them)")
    return True


def default_reactor(reactor: Any = None) -> Any:
    """
    C{reactor}, or the global reactor when it is C{None}: the default of
    every constructor here that takes an optional reactor.  The global one
    is imported only then, so that passing a reactor (a test clock, a
    reactor not yet installed) never installs the default one.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return reactor


def step_proof(reactor: Any) -> Any:
    """
    A clock for twisted_mdns's timers that wall-clock steps do not move.

    @return: C{reactor} itself if its time is already monotonic, if it is not
        a real reactor (a test clock such as
        C{twisted.internet.task.Clock} or C{MemoryReactorClock}: its
        time moves only when the test says so), or if
        C{TWISTED_MDNS_CLOCK=wall}; otherwise a L{MonotonicClock} over it.
    """
    if wall_clock_forced() or is_monotonic(reactor) or not isinstance(reactor, ReactorBase):
        return reactor
    return MonotonicClock(reactor)


class MonotonicTimeService(service.Service):
    """
    Switches the reactor to monotonic time when the application starts
    (under C{twistd}, before the reactor runs); see L{use_monotonic_time}.

    Put it first in the service tree of a process that owns its reactor.
    """

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor

    def privilegedStartService(self) -> None:
        use_monotonic_time(default_reactor(self._reactor))
        super().privilegedStartService()


@implementer(IDelayedCall)
@dataclass(eq=False, repr=False, slots=True)
class _MonotonicCall:
    """
    A call due at a monotonic time, carried out by one call on the host
    reactor that L{MonotonicClock} re-aims when the wall clock steps.

    @ivar time: the monotonic time it is due at.
    """

    _clock: MonotonicClock
    time: float
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kw: dict[str, Any]
    called: bool = field(default=False, init=False)
    cancelled: bool = field(default=False, init=False)
    _host: Any = field(default=None, init=False)  # the host reactor's DelayedCall

    def getTime(self) -> float:
        """
        The monotonic time this call is due at.
        """
        return self.time

    def active(self) -> bool:
        return not (self.called or self.cancelled)

    def _check(self) -> None:
        if self.cancelled:
            raise error.AlreadyCancelled()
        if self.called:
            raise error.AlreadyCalled()

    def cancel(self) -> None:
        self._check()
        self.cancelled = True
        self._clock._forget(self)
        if self._host_active():
            self._host.cancel()

    def reset(self, secondsFromNow: float) -> None:
        self._check()
        self.time = self._clock.seconds() + secondsFromNow
        self._arm()

    def delay(self, secondsLater: float) -> None:
        self._check()
        self.time += secondsLater
        self._arm()

    def _host_active(self) -> bool:
        return self._host is not None and self._host.active()

    def _arm(self) -> None:
        """
        Aim the host call at what is left on the monotonic clock.
        """
        left = max(0.0, self.time - self._clock.seconds())
        if self._host_active():
            self._host.reset(left)
        else:
            self._host = self._clock._reactor.callLater(left, self._fire)

    def _fire(self) -> None:
        if self._clock.seconds() < self.time:
            # The wall clock stepped forward (or ran faster): not due yet.
            self._host = None
            self._arm()
            return
        self.called = True
        self._clock._forget(self)
        self.func(*self.args, **self.kw)

    def __repr__(self) -> str:
        return f"<_MonotonicCall at {self.time:.3f}: {self.func!r}>"


@implementer(IReactorTime)
class MonotonicClock:
    """
    An C{IReactorTime} on monotonic time over a reactor that keeps wall time
    (see the module docstring for why and how); other attributes are the
    reactor's.

    @ivar reactor: the host reactor.
    """

    def __init__(
        self,
        reactor: Any,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """
        @param reactor: the host reactor (C{IReactorTime} and
            C{IReactorThreads}).
        @param monotonic: the monotonic clock (tests give a fake one).
        @param wall: the wall clock the host reactor uses, watched for steps.
        """
        self._reactor = reactor
        self.reactor = reactor
        self._monotonic = monotonic
        self._wall = wall
        self._calls: set[_MonotonicCall] = set()
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        directlyProvides(self, *providedBy(reactor))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_reactor", "reactor"):
            raise AttributeError(name)
        return getattr(self._reactor, name)

    # -- IReactorTime ------------------------------------------------------------

    def seconds(self) -> float:
        return self._monotonic()

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> _MonotonicCall | DelayedCall:
        if self._monotonic is time.monotonic and is_monotonic(self._reactor):
            # The host was switched to monotonic time: nothing to guard.
            call: DelayedCall = self._reactor.callLater(delay, callable, *args, **kw)
            return call
        mcall = _MonotonicCall(self, self.seconds() + delay, callable, args, kw)
        self._calls.add(mcall)
        mcall._arm()
        self._ensure_watchdog()
        return mcall

    def getDelayedCalls(self) -> list[_MonotonicCall]:
        return [c for c in self._calls if c.active()]

    # -- step watching ---------------------------------------------------------------

    def _forget(self, call: _MonotonicCall) -> None:
        self._calls.discard(call)

    def offset(self) -> float:
        """
        Wall time minus monotonic time: constant but for steps (and slewing).
        """
        return self._wall() - self._monotonic()

    def resync(self) -> None:
        """
        Re-aim every pending call at what is left of its delay on the
        monotonic clock (after a wall-clock step).  Runs in the reactor
        thread; the watchdog calls it through C{callFromThread}.
        """
        for call in list(self._calls):
            if call._host_active():
                call._arm()
            else:
                # Its host call was cancelled behind our back (trial cleans
                # up a dirty reactor so): nothing will carry it out.
                self._calls.discard(call)

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch,
                    args=(self.offset(),),
                    name="twisted_mdns clock watchdog",
                    daemon=True,
                )
                self._watchdog.start()

    def _watch(self, last: float) -> None:
        """
        The watchdog thread: look once a second; on a step, resync from the
        reactor thread; end when no call is pending (the next call starts a
        new watchdog).
        """
        idle = threading.Event()
        while True:
            idle.wait(WATCHDOG_INTERVAL)  # threading waits on monotonic time
            with self._lock:
                if not any(c._host_active() for c in list(self._calls)):
                    self._watchdog = None
                    return
            now = self.offset()
            if abs(now - last) > STEP_THRESHOLD:
                last = now
                self._reactor.callFromThread(self.resync)
