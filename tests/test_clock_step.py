"""
The real C{twistd mdns} process while its wall clock is stepped.

The process runs under libfaketime with its wall clock read from a file the
test rewrites (C{"+0"}, C{"-1h"}, C{"+1d"}...: offsets from the real time,
re-read on every clock read because of C{FAKETIME_NO_CACHE=1}); its
monotonic clock stays real (C{FAKETIME_DONT_FAKE_MONOTONIC=1}), as on a board
whose clock NTP steps at boot.  Clients in other namespaces ask and listen
with raw sockets.

C{python -m twisted_mdns browse} and a host application's reactor under a
L{MonotonicClock<twisted_mdns.clock.MonotonicClock>} are stepped too.

Each scenario also runs with C{TWISTED_MDNS_CLOCK=wall}, the process on the
wall clock as before L{twisted_mdns.clock}, and checks that the failure the
scenario guards against does happen there: these tests can fail.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import sys
import tempfile
import time
from datetime import datetime

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin, drain
from tests.peers import REPO_ROOT, PeerProcess, PeerTimeout
from tests.support import sleep, wait_until
from tests.test_twistd import a_answers, twistd_argv
from twisted_mdns.clock import CLOCK_ENV
from twisted_mdns.constants import FLAG_AA, FLAG_QR
from twisted_mdns.message import (
    TYPE_PTR,
    Question,
    a_record,
    join_name,
    name_from_text,
    pack_one,
    parse,
    ptr_record,
    srv_record,
    txt_record,
)

#: Debian's libfaketime (package C{libfaketime}), for this machine's arch.
FAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), "libfaketime.so.1")
HTTP = name_from_text("_http._tcp.local")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([+-]\d{4}) ", re.M)


def ptr_answered(sock: socket.socket) -> bool:
    """
    Whether a response with our PTR for C{_http._tcp.local} waits on C{sock}.
    """
    for data, _ in drain(sock):
        try:
            m = parse(data)
        except Exception:
            continue
        if m.is_response and any(r.rtype == TYPE_PTR and r.key == HTTP and r.ttl > 0 for r in m.answers):
            return True
    return False


def require_faketime() -> None:
    """
    Skip without libfaketime; fail instead where the namespace tests must
    run (C{TWISTED_MDNS_REQUIRE_NETNS=1}, as in CI, which installs it).
    """
    if os.path.exists(FAKETIME):
        return
    why = "libfaketime not installed (Debian package libfaketime)"
    if os.environ.get("TWISTED_MDNS_REQUIRE_NETNS"):
        raise AssertionError(why)
    raise unittest.SkipTest(why)


def write_offset(path: str, offset: str) -> None:
    """
    Set the faked wall clock to the real time plus C{offset} (libfaketime
    syntax: C{"-1h"}, C{"+1d"}), atomically.
    """
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(offset + "\n")
    os.replace(tmp, path)


def faketime_env(path: str) -> dict[str, str]:
    """
    The environment that runs a process under libfaketime with its wall
    clock read from C{path} at every clock read, and its monotonic clock
    left real.
    """
    return {
        "PYTHONPATH": str(REPO_ROOT),
        "LD_PRELOAD": FAKETIME,
        "FAKETIME_TIMESTAMP_FILE": path,
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


class ClockStepCase(NamespaceTestMixin, unittest.TestCase):
    timeout = 120
    virtual = False

    def setUp(self) -> None:
        require_faketime()
        super().setUp()
        fd, self.faketime_file = tempfile.mkstemp(prefix="faketime-", suffix=".rc")
        os.close(fd)
        self.addCleanup(os.unlink, self.faketime_file)
        self.step("+0")

    def step(self, offset: str) -> None:
        write_offset(self.faketime_file, offset)

    def start_twistd(self, *options: str, wall: bool = False) -> defer.Deferred:
        env = dict(faketime_env(self.faketime_file), **{CLOCK_ENV: "wall" if wall else ""})
        proc = PeerProcess(
            self.topology.host_ns, twistd_argv("--hostname", "h", *options),
            name="twistd-faketime", env=env, cwd=str(REPO_ROOT),
        )
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        self.proc = proc
        return proc.wait_for(r"host name \S+\.local claimed", timeout=20)

    @defer.inlineCallbacks
    def assert_stepped(self, mark: str, offset: float):
        """
        Check that the process's wall clock reads the real time plus
        C{offset} seconds: C{twistd} stamps the log line containing C{mark}
        (written after the step) with the faked clock.
        """
        yield wait_until(lambda: mark in self.proc.stdout, timeout=10, what=mark)
        line = next(l for l in self.proc.stdout.splitlines() if mark in l)
        day, zone = LOG_TIME.match(line).groups()
        stamped = datetime.fromisoformat(day + zone[:3] + ":" + zone[3:]).timestamp()
        self.assertLess(abs(stamped - (time.time() + offset)), 60,
                        f"the process's clock is not {offset:+.0f}s off: {line}")

    def browse_socket(self, client: str) -> tuple[socket.socket, socket.socket]:
        listener = self.topology.client_listener(client)
        asker = self.topology.client_socket(client, port=5353)
        self.addCleanup(listener.close)
        self.addCleanup(asker.close)
        return asker, listener

    @defer.inlineCallbacks
    def browses_answered(self, client: str, times: int = 3):
        """
        Ask C{times} multicast PTR questions for C{_http._tcp.local}, each
        1.3 s after the last answer (past the 1 s per-record multicast limit
        of RFC 6762 §6, which a correct responder applies), and count those
        answered within a second.
        """
        asker, listener = self.browse_socket(client)
        answered = 0
        for n in range(times):
            yield sleep(1.3)
            drain(listener)
            asker.sendto(pack_one(questions=[Question(HTTP, TYPE_PTR)]), ("224.0.0.251", 5353))
            try:
                yield wait_until(lambda: ptr_answered(listener), timeout=1.0, what="PTR answer")
                answered += 1
            except AssertionError:
                pass
        return answered

    def announce_peer(self, client: str, instance: str, ttl: int | None = None) -> None:
        """
        A peer on C{client}'s link announces C{instance._http._tcp.local}
        once (and never answers again: only our cache keeps it), with the
        usual TTLs (RFC 6762 §10) or all of them C{ttl}.
        """
        link = self.topology.links[client]
        name = join_name(instance, HTTP)
        host = name_from_text(f"peer-{client}.local")
        records = [
            ptr_record(HTTP, name, ttl or 4500),
            srv_record(name, host, 8080, ttl or 120),
            txt_record(name, [b"path=/"], ttl or 4500),
            a_record(host, link.client_ip, ttl or 120),
        ]
        sock = self.topology.client_socket(client, port=5353)
        self.addCleanup(sock.close)
        sock.sendto(pack_one(flags=FLAG_QR | FLAG_AA, answers=records), ("224.0.0.251", 5353))


class SharedAnswersAfterStepsTests(ClockStepCase):
    """
    Browsing answers (shared PTR records, rate-limited per record to one
    multicast a second, RFC 6762 §6) and new links' announcements (§8.3)
    keep coming after every step.
    """

    @defer.inlineCallbacks
    def test_steps_back_and_forth(self):
        yield self.start_twistd("--service", "Web|_http._tcp|8080|path=/")
        yield self.proc.wait_for("registered", timeout=10)
        yield sleep(1.0)  # past both announcements (and, below, their rate limit)
        self.assertEqual((yield self.browses_answered("a", times=1)), 1)
        steps = [("-1h", -3600), ("+0", 0), ("+1d", 86400), ("+0", 0)]
        for n, (offset, seconds) in enumerate(steps):
            self.step(offset)
            if n in (0, 2):
                # A link added after the step is probed and announced on time.
                client, octet = ("c", 3) if n == 0 else ("d", 4)
                link = self.topology.add_link(client, f"lan{client}", subnet_octet=octet)
                listener = self.topology.client_listener(client)
                self.addCleanup(listener.close)
                yield self.assert_stepped(f"added ['lan{client}']", seconds)
                announced = yield wait_until(lambda: a_answers(listener), timeout=4,
                                             what=f"announcement on lan{client} after {offset}")
                self.assertEqual(set(announced), {link.host_ip})
            else:
                yield sleep(0.2)
            answered = yield self.browses_answered("a")
            self.assertEqual(answered, 3, f"browse answers after the step to {offset}")
        self.assertNotIn("Traceback", self.proc.stdout + self.proc.stderr)

    @defer.inlineCallbacks
    def test_wall_clock_stops_answering(self):
        """
        The same process on the wall clock (as before L{twisted_mdns.clock}):
        after the backward step, "last multicast" lies an hour ahead and the
        shared answers stop.
        """
        yield self.start_twistd("--service", "Web|_http._tcp|8080|path=/", wall=True)
        yield self.proc.wait_for("registered", timeout=10)
        yield sleep(2.2)
        self.assertEqual((yield self.browses_answered("a", times=1)), 1)
        self.step("-1h")
        yield sleep(0.2)
        self.assertEqual((yield self.browses_answered("a")), 0)


class CacheAfterStepsTests(ClockStepCase):
    """
    What the querier heard keeps its TTL in real seconds: a day's forward
    step expires nothing (RFC 6762 §5.2 refresh, §10 TTLs), and browsing
    still finds what is announced after the step.
    """

    @defer.inlineCallbacks
    def check_forward_day(self, wall: bool):
        yield self.start_twistd("--browse", "_http._tcp", "--iface", "lana", wall=wall)
        self.announce_peer("a", "Before")
        yield wait_until(lambda: "added Before on lana" in self.proc.stdout, timeout=5,
                         what="browse added Before")
        yield sleep(0.3)  # a loaded machine: let the process finish that turn
        self.step("+1d")
        yield sleep(4.0)
        expired = "removed Before" in self.proc.stdout
        self.announce_peer("a", "After")
        yield wait_until(lambda: "added After on lana" in self.proc.stdout, timeout=5,
                         what="browse added After")
        yield self.assert_stepped("added After on lana", 86400)
        return expired

    @defer.inlineCallbacks
    def check_backward_hour(self, wall: bool):
        yield self.start_twistd("--browse", "_http._tcp", "--iface", "lana", wall=wall)
        self.announce_peer("a", "Short", ttl=3)
        yield wait_until(lambda: "added Short on lana" in self.proc.stdout, timeout=5,
                         what="browse added Short")
        yield sleep(0.3)  # a loaded machine: let the process finish that turn
        self.step("-1h")
        try:
            yield wait_until(lambda: "removed Short on lana" in self.proc.stdout, timeout=8,
                             what="browse removed Short")
        except AssertionError:
            return False
        return True

    @defer.inlineCallbacks
    def test_backward_hour_still_expires(self):
        """
        A record with a 3 s TTL that nobody refreshes leaves the cache about
        3 s after it was heard, though the clock stepped an hour back.
        """
        expired = yield self.check_backward_hour(wall=False)
        self.assertTrue(expired, "the TTL stopped counting after the step")

    @defer.inlineCallbacks
    def test_wall_clock_backward_hour_keeps_stale_records(self):
        expired = yield self.check_backward_hour(wall=True)
        self.assertFalse(expired)

    @defer.inlineCallbacks
    def test_forward_day_expires_nothing(self):
        expired = yield self.check_forward_day(wall=False)
        self.assertFalse(expired, "a record heard a second ago expired after the step")
        self.assertNotIn("Traceback", self.proc.stdout + self.proc.stderr)

    @defer.inlineCallbacks
    def test_wall_clock_expires_everything(self):
        """
        On the wall clock the same step expires the record at once: the
        check above can fail.
        """
        expired = yield self.check_forward_day(wall=True)
        self.assertTrue(expired)


WRAPPED = """
import time
from twisted.internet import reactor
from twisted_mdns.clock import MonotonicClock

clock = MonotonicClock(reactor)
start = time.monotonic()

def fired(what):
    print(what, round(time.monotonic() - start, 2), flush=True)

clock.callLater(3.0, fired, "wrapped")
reactor.callLater(3.0, fired, "reactor")
reactor.callLater(0, print, "ready", flush=True)
reactor.run()
"""


class HostReactorStepTests(unittest.TestCase):
    """
    A host application's reactor keeps wall time; a L{MonotonicClock} over it
    still fires on time when the process's wall clock steps.
    """

    timeout = 60

    def setUp(self) -> None:
        require_faketime()
        fd, self.faketime_file = tempfile.mkstemp(prefix="faketime-", suffix=".rc")
        os.close(fd)
        self.addCleanup(os.unlink, self.faketime_file)
        write_offset(self.faketime_file, "+0")

    @defer.inlineCallbacks
    def run_with_step(self, offset: str):
        env = faketime_env(self.faketime_file)
        proc = PeerProcess(None, [sys.executable, "-c", WRAPPED], name="wrapped", env=env)
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        yield proc.wait_for("ready", timeout=10)
        yield sleep(0.5)
        write_offset(self.faketime_file, offset)
        yield sleep(5.0)
        return dict((w, float(t)) for w, t in re.findall(r"^(wrapped|reactor) ([\d.]+)$", proc.stdout, re.M))

    @defer.inlineCallbacks
    def test_backward_hour(self):
        fired = yield self.run_with_step("-1h")
        self.assertIn("wrapped", fired, "the wrapped call stalled")
        # Due at 3 s; the watchdog looks once a second.
        self.assertLess(abs(fired["wrapped"] - 3.0), 1.5)
        self.assertNotIn("reactor", fired, "the host's own wall-time call did not stall: no step?")

    @defer.inlineCallbacks
    def test_forward_day(self):
        fired = yield self.run_with_step("+1d")
        self.assertLess(abs(fired["wrapped"] - 3.0), 0.5, "the wrapped call fired early or late")
        self.assertLess(fired["reactor"], 2.0, "the host's own wall-time call did not fire early: no step?")


class CommandLineStepTests(ClockStepCase):
    """
    C{python -m twisted_mdns browse --timeout 4} ends after four seconds of
    real time, whatever its wall clock does meanwhile.
    """

    clients = ("a",)

    @defer.inlineCallbacks
    def browse_with_step(self, wall: bool):
        env = dict(faketime_env(self.faketime_file), **{CLOCK_ENV: "wall" if wall else ""})
        argv = [sys.executable, "-m", "twisted_mdns", "browse", "_http._tcp", "--timeout", "4", "--verbose"]
        proc = PeerProcess(self.topology.host_ns, argv, name="cli-faketime", env=env, cwd=str(REPO_ROOT))
        proc.start()
        self.addCleanup(lambda: proc.stop(timeout=5) if proc.running else None)
        yield proc.wait_for("listening on lana", timeout=15, stream="stderr")
        # The timeout is set in the same reactor turn as that line; leave a
        # loaded machine time to get there before the clock steps.
        yield sleep(1.0)
        started = time.monotonic()
        self.step("-1h")
        try:
            yield proc.wait(timeout=8)
        except PeerTimeout:
            return None
        return time.monotonic() - started

    @defer.inlineCallbacks
    def test_timeout_in_real_seconds(self):
        took = yield self.browse_with_step(wall=False)
        self.assertIsNotNone(took, "the browse did not end: its timeout stalled")
        self.assertLess(took, 4.5)

    @defer.inlineCallbacks
    def test_wall_clock_timeout_stalls(self):
        took = yield self.browse_with_step(wall=True)
        self.assertIsNone(took, "on the wall clock the timeout should stall for the hour")
