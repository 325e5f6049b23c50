# -*- test-case-name: tests.test_responder_host_renames -*-
"""
What follows the host name when a conflict renames it (RFC 6762 §8.1, §9:
C{lab} to C{lab-2}).

 - Every announced SRV record and reverse-mapping PTR points to the host
   name: republished and announced with the new target (§8.4).
 - A service named after the host (L{ServiceInfo.name_template}, avahi's
   C{<name replace-wildcards="yes">%h web</name>}) is registered again
   under the name the template gives for the new host name, as
   avahi-daemon re-creates a static service with C{%h} replaced anew:
   goodbyes for the old name where it was announced (§10.1), then a new
   claim probed and announced from the start (§8.1, §8.3).  The name comes
   from the template whatever the old one was: a service that had been
   renamed for a conflict of its own (C{lab web (2)}) becomes C{lab-2 web},
   and is renamed again only if that name is taken too.  A service the
   application registered under a fixed name (no template) keeps it.
 - Then the observers (L{twisted_mdns.responder.Responder.add_host_observer})
   are told the new name.

The new host name is adopted at once and probed.  The services named
after it are probed alongside (avahi waits for the host name to be won
before it re-creates them): the old name leaves the network at once, and
if the new host name is taken too (C{lab-3}), they follow it again while
still probing, with nothing announced under the name given up.
"""

from __future__ import annotations

from typing import Callable, Iterable

from twisted.logger import Logger

from twisted_mdns.records import ServiceInfo, next_service_name
from twisted_mdns.responder.announcing import Announcer
from twisted_mdns.responder.claims import Claim, ClaimKind, ClaimState
from twisted_mdns.responder.probing import Prober
from twisted_mdns.responder.shared import Phase, Shared

log = Logger()


class HostRenames(Phase):
    """
    Makes what depends on the host name follow it.

    @param publish: put a claim's records in the views of the links given
        (engine operation).
    @param withdraw: take a claim's records out of every link's view, with
        goodbyes when the flag is true (engine operation).
    @ivar observers: called with the new host name after each rename.
    """

    def __init__(
        self,
        shared: Shared,
        prober: Prober,
        announcer: Announcer,
        publish: Callable[[Claim, Iterable[int]], None],
        withdraw: Callable[[Claim, bool], None],
    ) -> None:
        super().__init__(shared)
        self.observers: list[Callable[[str], object]] = []
        self.prober = prober
        self.announcer = announcer
        self.publish = publish
        self.withdraw = withdraw

    def renamed(self) -> None:
        """
        The host name changed (L{twisted_mdns.responder.claims.Claims}
        holds the new one): services named after it are registered again,
        every other announced claim is republished and announced with the
        new SRV target or PTR, then the observers are told.
        """
        claims = self.claims
        hostname = claims.hostname
        for claim in list(claims.services.values()):
            service = claim.service
            if service is None or service.name_template is None or claim.state is ClaimState.WITHDRAWN:
                continue
            renamed = service.for_host(hostname)
            if renamed.instance != service.instance:
                self.follow(claim, renamed)
        for claim in claims:
            if claim.kind is not ClaimKind.HOST and claim.announced:
                self.publish(claim, claim.ready_on)
                self.announcer.announce([claim], set(claim.ready_on))
        for observer in list(self.observers):
            try:
                observer(hostname)
            except Exception:
                log.failure("host name observer {observer!r} failed", observer=observer)

    def follow(self, claim: Claim, service: ServiceInfo) -> None:
        """
        Register C{claim}'s service again as C{service}: goodbyes for the
        old name where it was announced (§10.1), and a new claim, probed
        from the start, that keeps the registration's Deferred (fired once
        the new name is ours, if it had not fired yet) and the name the
        application registered it under (so that its L{ServiceInfo} still
        unregisters it).
        """
        taken = self.claims.services
        while service.key in taken and taken[service.key] is not claim:
            # Another of our own services holds the name: a conflict like
            # any other (RFC 6763 §9).
            service = service.renamed(next_service_name(service.instance))
        assert claim.service is not None
        log.info("service {old} is named after the host: registering it as {new}",
                 old=claim.service.display(), new=service.display())
        self.withdraw(claim, claim.announced)
        claim.state = ClaimState.WITHDRAWN
        fresh = self.claims.replace_service(claim, service)
        fresh.done, claim.done = claim.done, None
        self.counters["services.host-renamed"] += 1
        if self.running():
            self.prober.enqueue(fresh, set(self.links))
