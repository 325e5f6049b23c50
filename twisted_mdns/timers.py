# -*- test-case-name: tests.test_timers -*-
"""
One registry of pending timers per owner.

Protocol phases schedule many short timers (probe rounds, announcements,
aggregation delays, held truncated queries).  Each owner (a link, an engine)
keeps them in one L{Timers} so that stopping it, or a link going away, cancels
them all in one call instead of one cancel loop per kind of timer.

Time comes only from the injected C{IReactorTime}; give it a clock that does
not jump with the wall clock (C{twisted_mdns.clock}, planned) and every timer here
survives clock steps.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Timers:
    """
    The pending calls of one owner, cancelled together by L{cancel_all}.

    A call that fires or is cancelled through L{cancel} leaves the registry
    by itself, so the registry holds only what is still pending.
    """

    __slots__ = ("clock", "_pending")

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._pending: set[IDelayedCall] = set()

    def __len__(self) -> int:
        return len(self._pending)

    def later(self, delay: float, fn: Callable[..., Any], *args: Any) -> IDelayedCall:
        """
        Call C{fn(*args)} after C{delay} seconds, unless cancelled first.
        """
        holder: list[IDelayedCall] = []

        def fire() -> None:
            self._pending.discard(holder[0])
            fn(*args)

        call = self.clock.callLater(max(0.0, delay), fire)
        holder.append(call)
        self._pending.add(call)
        return call

    def cancel(self, call: IDelayedCall | None) -> None:
        """
        Cancel one call of ours if it is still pending; anything else is a
        no-op, so callers need not track whether it already fired.
        """
        if call is not None and call in self._pending:
            self._pending.discard(call)
            if call.active():
                call.cancel()

    def cancel_all(self) -> None:
        """
        Cancel every pending call (stop, or the link went away).
        """
        pending, self._pending = self._pending, set()
        for call in pending:
            if call.active():
                call.cancel()
