# -*- test-case-name: tests.test_proxy -*-
"""
How many mDNS questions a link's unicast clients may cause (RFC 8766 §9.3).

RFC 8766 §9.3 (Denial of Service): "A remote attacker could use a rapid
series of unique Unicast DNS queries to induce a Discovery Proxy to generate
a rapid series of corresponding Multicast DNS queries on one or more of its
local links.  Multicast traffic is generally more expensive than unicast
traffic ... Discovery Proxies SHOULD rate-limit the multicast queries they
generate."

Two limits, kept per link in the link's L{QuestionRateLimit}:

 - the same question is not multicast again within one second (RFC 6762
   §5.2): a thousand clients asking the same name cause one question;
 - a token bucket bounds distinct questions: C{burst} at once, then
   C{rate} per second.  A client asking a stream of unique names empties
   the bucket; the questions it would cause are dropped and counted, and
   its queries are answered from what the link's cache already holds.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from twisted.internet.interfaces import IReactorTime

from twisted_mdns.constants import QUESTION_INTERVAL
from twisted_mdns.message import Name, name_key

#: Distinct mDNS questions a link may get at once from its proxy clients.
DEFAULT_BURST = 20
#: ... and then per second, sustained.
DEFAULT_RATE = 10.0
#: How many recent questions are remembered for the one-second rule.
_MAX_REMEMBERED = 1024


class QuestionRateLimit:
    """
    The mDNS questions of one link, limited.

    @ivar counters: C{proxy.mdns-questions} (allowed),
        C{proxy.question-repeat} (same question within a second, not
        sent), C{proxy.rate-limited} (bucket empty, not sent).
    """

    def __init__(
        self,
        reactor: IReactorTime,
        counters: Counter,
        burst: int = DEFAULT_BURST,
        rate: float = DEFAULT_RATE,
    ) -> None:
        if burst < 1 or not rate > 0:
            raise ValueError("burst must be at least 1 and rate positive")
        self.reactor = reactor
        self.counters = counters
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._filled_at = reactor.seconds()
        self._recent: OrderedDict[tuple[Name, int], float] = OrderedDict()

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now

    def allow(self, name: Name, rtype: int) -> bool:
        """
        May the question C{name}/C{rtype} be multicast now?  A C{True}
        takes a token and starts the question's one-second quiet time.
        """
        now = self.reactor.seconds()
        key = (name_key(name), rtype)
        last = self._recent.get(key)
        if last is not None and now - last < QUESTION_INTERVAL:
            self.counters["proxy.question-repeat"] += 1
            return False
        self._refill(now)
        if self._tokens < 1.0:
            self.counters["proxy.rate-limited"] += 1
            return False
        self._tokens -= 1.0
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > _MAX_REMEMBERED:
            self._recent.popitem(last=False)
        self.counters["proxy.mdns-questions"] += 1
        return True
