"""
Small helpers shared by the real-network tests.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer, reactor, task


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02,
    what: str = "condition",
) -> defer.Deferred:
    """
    Poll C{predicate} on the real reactor; fire with its (truthy) result, or
    fail with C{AssertionError} after C{timeout} seconds, so that a broken
    implementation fails the test instead of hanging it.
    """

    async def poll():
        waited = 0.0
        while True:
            result = predicate()
            if result:
                return result
            if waited >= timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await task.deferLater(reactor, interval, lambda: None)
            waited += interval

    return defer.ensureDeferred(poll())


def sleep(seconds: float) -> defer.Deferred:
    """
    A Deferred that fires after C{seconds} on the real reactor.
    """
    return task.deferLater(reactor, seconds, lambda: None)
