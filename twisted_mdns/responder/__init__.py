# -*- test-case-name: tests.test_responder -*-
"""
The mDNS responder (RFC 6762), one module per protocol phase.

Everything here is per link, because RFC 6762 §6.2 and §14 say what a host
says on an interface must be true of that interface: a query heard on eth0
is answered with eth0's addresses only, probes and announcements on each
link carry that link's records, and a service limited to some interfaces
is invisible on the others.  Timing is driven by the injected reactor only
(tests use C{twisted.internet.task.Clock}).

 - L{claims <twisted_mdns.responder.claims>}: what we claim and its records;
 - L{probing <twisted_mdns.responder.probing>}: §8.1-8.2;
 - L{announcing <twisted_mdns.responder.announcing>}: §8.3, §10.1;
 - L{answering <twisted_mdns.responder.answering>}: §6, §7.1, §7.4;
 - L{truncated <twisted_mdns.responder.truncated>}: §7.2;
 - L{legacy <twisted_mdns.responder.legacy>}: §6.7;
 - L{conflicts <twisted_mdns.responder.conflicts>}: §8.1, §9, §15;
 - L{host_renames <twisted_mdns.responder.host_renames>}: what follows a
   renamed host name (SRV targets, services named after the host);
 - L{engine <twisted_mdns.responder.engine>}: L{Responder}, the public API.
"""

from twisted_mdns.responder.claims import Claim, ClaimKind, ClaimState, Conflict
from twisted_mdns.responder.engine import RegistrationError, Responder
from twisted_mdns.responder.legacy import MAX_LEGACY_CACHE, LegacyReplies
from twisted_mdns.responder.probing import compare_probe_records
from twisted_mdns.responder.truncated import MAX_HELD_KNOWN_ANSWERS, MAX_HELD_TRUNCATED

__all__ = [
    "Claim",
    "ClaimKind",
    "ClaimState",
    "Conflict",
    "LegacyReplies",
    "MAX_HELD_KNOWN_ANSWERS",
    "MAX_HELD_TRUNCATED",
    "MAX_LEGACY_CACHE",
    "RegistrationError",
    "Responder",
    "compare_probe_records",
]
