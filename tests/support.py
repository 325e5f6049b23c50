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


async def _started(case, hostname: str, services):
    from twisted_mdns.service import MDNSService

    mdns = MDNSService(hostname=hostname, monitor=False)
    mdns.startService()
    case.addCleanup(mdns.stopService)
    registered = await defer.gatherResults([mdns.register(s) for s in services])
    case.assertEqual([s.instance for s in registered], [s.instance for s in services])
    return mdns


def start_service(case, hostname: str = "lab", services=()) -> defer.Deferred:
    """
    Start an L{MDNSService} (no interface monitor) in the namespace the test
    runs in, stopped at cleanup; fire with it once C{services} are
    registered under the names asked for.
    """
    return defer.ensureDeferred(_started(case, hostname, tuple(services)))
