# -*- test-case-name: tests.test_responder -*-
"""
What the responder's phases share, handed to each of them explicitly.

Every phase module (probing, announcing, answering, truncated queries,
conflicts) works on the same few things: the reactor's time and one timer
registry, a random source, the links we run on, our claims, a sender and
the counters, and whether the responder runs.  The engine builds one
L{Shared} and gives it to each L{Phase}; a phase never reaches into the
engine itself.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping

from twisted.internet.interfaces import IReactorTime

from twisted_mdns.link import Link
from twisted_mdns.responder.claims import Claims
from twisted_mdns.responder.sending import Sender
from twisted_mdns.timers import Timers


@dataclass(frozen=True)
class Shared:
    """
    @ivar clock: the reactor's time (only ever this, RFC timing in tests
        runs on a C{twisted.internet.task.Clock}).
    @ivar timers: the engine's timers: those spanning links (probe rounds,
        announcements); a link's own timers are in L{Link.timers}.
    @ivar links: link index -> L{Link}, the links we run on (live).
    @ivar running: whether the responder runs (timers that fire after
        L{twisted_mdns.responder.Responder.stop} do nothing).
    """

    clock: IReactorTime
    timers: Timers
    rng: random.Random
    links: Mapping[int, Link]
    claims: Claims
    sender: Sender
    counters: Counter[str]
    running: Callable[[], bool]


class Phase:
    """
    A protocol phase: holds what L{Shared} holds, under the same names.
    """

    def __init__(self, shared: Shared) -> None:
        self.clock = shared.clock
        self.timers = shared.timers
        self.random = shared.rng
        self.links = shared.links
        self.claims = shared.claims
        self.sender = shared.sender
        self.counters = shared.counters
        self.running = shared.running
