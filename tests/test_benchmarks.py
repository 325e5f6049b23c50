"""
C{python -m benchmarks.run} exits non-zero when a wrong or missing answer
or a failed scale check makes its figures untrustworthy.
"""

from __future__ import annotations

import copy
import io
import sys

from twisted.trial import unittest

import dnslib

from benchmarks import run, scale_ipv6

THROUGHPUT = {
    "micro": {},
    "twisted_mdns": {"qps": 50000.0, "wrong": 0, "missing": 0, "qps_all": [49000.0, 50000.0, 51000.0],
                     "wrong_all": [0, 0, 0], "missing_all": [0, 0, 0]},
    "zeroconf": {"qps": 8000.0, "wrong": 0, "missing": 0, "qps_all": [8000.0, 8000.0, 8000.0],
                 "wrong_all": [0, 0, 0], "missing_all": [0, 0, 0]},
    "ratios": {},
}
BROWSE = {"ok": True, "instances_missing": 0, "wrong_addresses": [], "max_packet_bytes": 1464, "packet_limit": 1472}
SERVICES = {"count": 10000, "browse": BROWSE}
LEGACY = {"asked": 4, "correct": 4, "unanswered": [], "wrong": []}
IPV6 = {"ports": 4, "multicast_legacy": dict(LEGACY), "unicast_legacy": dict(LEGACY)}
INTERFACES = {"links": 4, "interfaces_selected": 4, "selected_all_links": True, "ports": 4,
              "udp_5353_sockets": 8, "multicast_legacy": dict(LEGACY), "unicast_legacy": dict(LEGACY),
              "ipv6": IPV6}
GOOD = {"throughput": THROUGHPUT, "services": SERVICES, "interfaces": INTERFACES}


def spoiled(path: tuple, value) -> dict:
    results = copy.deepcopy(GOOD)
    target = results
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return results


class FailuresTests(unittest.TestCase):
    def test_all_good(self):
        self.assertEqual(run.failures(GOOD), [])

    def test_each_failure_counted(self):
        cases = [
            (("throughput", "twisted_mdns", "wrong_all"), [0, 3, 0], "twisted_mdns round 2: 3 wrong"),
            (("throughput", "zeroconf", "missing_all"), [1, 0, 0], "zeroconf round 1: 0 wrong and 1 missing"),
            (("throughput", "twisted_mdns", "qps_all"), [0.0, 1.0, 2.0], "answered nothing"),
            (("services", "browse", "ok"), False, "PTR browse of 10000 instances failed"),
            (("interfaces", "selected_all_links"), False, "links selected"),
            (("interfaces", "ports"), 3, "3 ports for 4 links"),
            (("interfaces", "unicast_legacy", "correct"), 3, "unicast_legacy: 3/4 correct"),
            (("interfaces", "multicast_legacy", "unanswered"), ["lanc2"], "unanswered ['lanc2']"),
            (("interfaces", "ipv6", "ports"), 3, "3 IPv6 ports for 4 links"),
            (("interfaces", "udp_5353_sockets"), 4, "4 UDP sockets on 5353 for 4 dual-stack links"),
            (("interfaces", "ipv6", "multicast_legacy", "correct"), 3,
             "interfaces (IPv6): multicast_legacy AAAA: 3/4 correct"),
            (("interfaces", "ipv6", "unicast_legacy", "unanswered"), ["lanc1"],
             "interfaces (IPv6): unicast_legacy AAAA: 4/4 correct, unanswered ['lanc1']"),
            (("interfaces", "ipv6", "unicast_legacy", "wrong"), [{"link": "lanc0", "addresses": ["fd00:2::1"]}],
             "wrong [{'link': 'lanc0', 'addresses': ['fd00:2::1']}]"),
        ]
        for path, value, expected in cases:
            found = run.failures(spoiled(path, value))
            self.assertEqual(len(found), 1, (path, found))
            self.assertIn(expected, found[0])

    def test_baseline_not_counted(self):
        results = copy.deepcopy(GOOD)
        results["throughput"]["twisted_mdns@baseline"] = dict(
            THROUGHPUT["twisted_mdns"], wrong_all=[5, 0, 0]
        )
        self.assertEqual(run.failures(results), [])


class ExitStatusTests(unittest.TestCase):
    """
    L{run.main} with the benchmarks replaced by their results.
    """

    def main(self, results: dict) -> tuple[int, str]:
        self.patch(run, "netns_unavailable", lambda: None)
        for name in ("throughput", "services", "interfaces"):
            self.patch(run, name, lambda args, log, name=name: results[name])
        self.patch(run, "report", lambda results: "report")
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        self.patch(sys, "stdout", io.StringIO())
        return run.main([]), err.getvalue()

    def test_zero_when_all_checks_pass(self):
        self.assertEqual(self.main(GOOD), (0, "throughput...\nthroughput done in 0.0 s\nservices...\n"
                                              "services done in 0.0 s\ninterfaces...\ninterfaces done in 0.0 s\n"))

    def test_one_on_a_wrong_answer(self):
        code, err = self.main(spoiled(("throughput", "twisted_mdns", "wrong_all"), [0, 0, 1]))
        self.assertEqual(code, 1)
        self.assertIn("FAILED CHECKS", err)
        self.assertIn("twisted_mdns round 3: 1 wrong", err)

    def test_one_on_a_failed_scale_check(self):
        code, err = self.main(spoiled(("services", "browse", "ok"), False))
        self.assertEqual(code, 1)
        self.assertIn("PTR browse", err)


class LinkAnsweringTests(unittest.TestCase):
    """
    The many-link benchmark's timings (every link answering after start,
    links plugged in later): a link that never answered, or answered
    wrongly, is a failed check; a slow one is a missed target, reported.
    """

    def results(self, late_all: float | None = 1.2, six: dict | None = None, **late) -> dict:
        answering = {"links": 4, "answered": 4, "unanswered": [], "wrong": 0, "first_s": 1.0,
                     "median_s": 1.1, "all_s": 1.3, "interval_s": 0.05}
        results = copy.deepcopy(GOOD)
        for kind in ("multicast_legacy", "unicast_legacy"):
            results["interfaces"][kind]["all_answered_ms"] = 12.0
        late = {"links": 2, "answered": 2, "all_s": late_all, "ports_open_s": 0.2, "claimed_s": 1.1,
                "enumerations": 1, "ports": 6, **late}
        results["interfaces"].update(
            start_service_s=0.1, host_claimed_s=1.2, udp_5353_sockets=8, sockets_opened=9, rss_mb=40.0,
            stop_s=0.01, topology_build_s=1.0, enumerations=3, rcvbuf_errors={"ipv4": 0, "ipv6": 6},
            answering_after_start=answering,
            late=dict(answering, **late),
        )
        ipv6 = results["interfaces"]["ipv6"]
        for kind in ("multicast_legacy", "unicast_legacy"):
            ipv6[kind]["all_answered_ms"] = 3.0
        extra = {"partial": 0, "first_wrong": [], "own_all_s": 1.2}
        ipv6["answering_after_start"] = dict(answering, **extra)
        ipv6["late"] = {**answering, "links": 2, "answered": 2, "all_s": 1.7, "ports": 6, **extra,
                        "partial": 9, **(six or {})}
        return results

    def test_good(self) -> None:
        results = self.results()
        self.assertEqual(run.failures(results), [])
        text = run.report({"interfaces": results["interfaces"]})
        self.assertIn("every link answering", text)
        self.assertIn("all 1.30 s  (target <= 2.0 s)  ok", text)
        self.assertIn("2 links plugged in later", text)
        self.assertIn("IPv6 (ULA nodad + link-local, AAAA for bench.local): 4 IPv6 ports", text)
        self.assertIn("legacy AAAA query on each link (unicast): 4/4 correct", text)
        self.assertIn("2/2 answering with ULA and link-local, first 1.00 s, all 1.70 s  (target <= 2.0 s)  ok", text)
        self.assertIn("link-local still in DAD) after 1.20 s; 9 partial answer(s); 6 IPv6 ports now", text)
        self.assertIn("dropped for a full receive buffer in the whole run: 0 IPv4, 6 IPv6", text)

    def test_slow_is_reported_not_failed(self) -> None:
        results = self.results(late_all=2.5)
        self.assertEqual(run.failures(results), [])
        self.assertIn("all 2.50 s  (target <= 2.0 s)  ABOVE TARGET", run.report({"interfaces": results["interfaces"]}))

    def test_unanswered_or_wrong_fails(self) -> None:
        found = run.failures(self.results(late_all=None, unanswered=["late1"], answered=1))
        self.assertEqual(len(found), 1, found)
        self.assertIn("links plugged in later: 1/2 answered, unanswered ['late1']", found[0])
        found = run.failures(self.results(wrong=2))
        self.assertEqual(len(found), 1, found)
        self.assertIn("2 wrong answer(s)", found[0])

    def test_ipv6_unanswered_or_wrong_fails(self) -> None:
        found = run.failures(self.results(six={"unanswered": ["late0"], "answered": 1, "all_s": None}))
        self.assertEqual(len(found), 1, found)
        self.assertIn("interfaces (IPv6): links plugged in later: 1/2 answered, unanswered ['late0']", found[0])
        wrong = [{"link": "late1", "addresses": ["fd00:9::1"]}]
        found = run.failures(self.results(six={"wrong": 1, "first_wrong": wrong}))
        self.assertEqual(len(found), 1, found)
        self.assertIn("interfaces (IPv6): links plugged in later: 2/2 answered, unanswered none, "
                      "1 wrong answer(s), first wrong " + str(wrong), found[0])

    def test_partial_answers_are_not_failures(self) -> None:
        """
        An answer holding only the link's ULA (its link-local still in DAD)
        is counted, not wrong.
        """
        self.assertEqual(run.failures(self.results(six={"partial": 40})), [])

    def test_ipv4_only_results_have_no_ipv6_checks(self) -> None:
        results = self.results()
        del results["interfaces"]["ipv6"]
        results["interfaces"]["udp_5353_sockets"] = 4
        self.assertEqual(run.failures(results), [])
        self.assertNotIn("IPv6 (", run.report({"interfaces": results["interfaces"]}))


class JudgeIPv6Tests(unittest.TestCase):
    """
    L{scale_ipv6.judge}: an AAAA answer is correct when it holds exactly
    the link's ULA and link-local, from port 5353 of one of them, with the
    question's id; a subset of them is partial; anything else is wrong.
    """

    LINK = {"host_if": "lanc1", "host_ip": "10.1.0.1", "host_ip6": "fd00:1::1", "host_ll": "fe80::1:1"}

    def answer(self, ident: int, aaaa: list[str], a: list[str] = ()) -> bytes:
        record = dnslib.DNSRecord(dnslib.DNSHeader(id=ident, qr=1, aa=1, rd=0))
        for address in aaaa:
            record.add_answer(dnslib.RR("bench.local", dnslib.QTYPE.AAAA, rdata=dnslib.AAAA(address), ttl=10))
        for address in a:
            record.add_ar(dnslib.RR("bench.local", dnslib.QTYPE.A, rdata=dnslib.A(address), ttl=10))
        return record.pack()

    def verdict(self, data: bytes, source=("fd00:1::1", 5353, 0, 0), idents=frozenset({7})) -> str:
        return scale_ipv6.judge(data, source, self.LINK, set(idents))[0]

    def test_verdicts(self) -> None:
        both = ["fd00:1::1", "fe80::1:1"]
        self.assertEqual(self.verdict(self.answer(7, both, ["10.1.0.1"])), "ok")
        self.assertEqual(self.verdict(self.answer(7, both), source=("fe80::1:1%lanc1", 5353, 0, 5)), "ok")
        self.assertEqual(self.verdict(self.answer(7, ["fd00:1::1"])), "partial")
        self.assertEqual(self.verdict(self.answer(7, both + ["fd00:2::1"])), "wrong")
        self.assertEqual(self.verdict(self.answer(7, both, ["10.2.0.1"])), "wrong")
        self.assertEqual(self.verdict(self.answer(8, both)), "wrong")
        self.assertEqual(self.verdict(self.answer(7, both), source=("fd00:2::1", 5353, 0, 0)), "wrong")
        self.assertEqual(self.verdict(self.answer(7, both), source=("fd00:1::1", 40000, 0, 0)), "wrong")
        self.assertEqual(self.verdict(b"\0" * 5), "wrong")

    def test_eui64_link_local(self) -> None:
        # RFC 4291 appendix A: flip the universal/local bit, insert ff:fe.
        self.assertEqual(scale_ipv6.eui64_link_local("02:00:5e:10:00:01"), "fe80::5eff:fe10:1")
        self.assertEqual(scale_ipv6.eui64_link_local("3c:22:fb:01:02:03"), "fe80::3e22:fbff:fe01:203")
