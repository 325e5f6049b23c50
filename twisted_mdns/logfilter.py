# -*- test-case-name: tests.test_twistd_logs -*-
"""
What C{twistd mdns} shows in its log: events at or above C{--log-level},
without Twisted's per-port chatter.

Every port Twisted opens logs C{"<Protocol> starting on 5353"} and C{"(UDP
Port 5353 Closed)"} unconditionally, and a noisy protocol logs C{"Starting
protocol <...>"} / C{"Stopping protocol <...>"}; with one port per
interface that is four lines per link which say nothing the transport's
own C{"listening on eth0"} does not.  They are shown at C{debug} only.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.application import service
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    formatEvent,
    globalLogPublisher,
)
from zope.interface import implementer

#: C{--log-level} values.
LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}

#: Twisted's per-port lines (legacy C{log.msg} calls in
#: C{twisted.internet.udp} and C{twisted.internet.protocol}).
PORT_NOISE = re.compile(
    r"^(?:\S+ starting on \d+"
    r"|\((?:UDP|TCP) Port \d+ Closed\)"
    r"|(?:Starting|Stopping) protocol <.*>)$",
    re.DOTALL,
)


@implementer(ILogFilterPredicate)
class PortNoisePredicate:
    """
    Says C{no} to Twisted's per-port lines unless C{level} is C{debug}.
    """

    def __init__(self, level: LogLevel) -> None:
        self.level = level

    def __call__(self, event: LogEvent) -> PredicateResult:
        if self.level <= LogLevel.debug or "log_text" not in event and "message" not in event:
            return PredicateResult.maybe
        try:
            text = formatEvent(event)
        except Exception:  # a broken format is not ours to judge
            return PredicateResult.maybe
        return PredicateResult.no if PORT_NOISE.match(text) else PredicateResult.maybe


class LogLevelService(service.Service):
    """
    Show only events at or above a level, and no per-port chatter, once
    twistd's log observers exist (they are installed after C{makeService}
    runs, before services start).  The filter stays until the process ends,
    so that ports closing after the services stopped stay quiet too.
    """

    def __init__(self, level: LogLevel) -> None:
        self.level = level
        self._wrapped: list[tuple[ILogObserver, FilteringLogObserver]] = []

    def privilegedStartService(self) -> None:
        if not self._wrapped:
            predicates = [
                LogLevelFilterPredicate(defaultLogLevel=self.level),
                PortNoisePredicate(self.level),
            ]
            observers: list[Any] = list(getattr(globalLogPublisher, "_observers", []))
            for observer in observers:
                filtered = FilteringLogObserver(observer, predicates)
                globalLogPublisher.removeObserver(observer)
                globalLogPublisher.addObserver(filtered)
                self._wrapped.append((observer, filtered))
        super().privilegedStartService()

    def restore(self) -> None:
        """
        Put the original observers back (for code that runs the service in
        a process that goes on).
        """
        for observer, filtered in self._wrapped:
            globalLogPublisher.removeObserver(filtered)
            globalLogPublisher.addObserver(observer)
        self._wrapped = []
