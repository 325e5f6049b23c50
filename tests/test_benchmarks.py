"""
C{python -m benchmarks.run} exits non-zero when a wrong or missing answer
or a failed scale check makes its figures untrustworthy.
"""

from __future__ import annotations

import copy
import io
import sys

from twisted.trial import unittest

from benchmarks import run

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
INTERFACES = {"links": 4, "interfaces_selected": 4, "selected_all_links": True, "ports": 4,
              "multicast_legacy": dict(LEGACY), "unicast_legacy": dict(LEGACY)}
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
