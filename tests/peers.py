"""
Real mDNS peers written by others, run inside network namespaces as judges
of our responder and querier: Debian's C{avahi-daemon}, python-zeroconf
(through L{tests.zeroconf_peer}) and C{dig} for legacy unicast queries.

Every peer is a separate process started with C{ip netns exec NS ...}, so
it does not matter which namespace the calling thread is in (the test may
have stepped into the host namespace with L{tests.netns.NamespaceTestMixin};
reactor thread-pool threads may be anywhere).

Two flavours of every call:

    - Deferred-returning (the plain names: L{run}, L{dig_query},
      L{zeroconf_browse}, L{AvahiDaemon.start}...) for trial tests that
      return Deferreds and run the real reactor.  Use these whenever our own
      code runs on the same reactor: while a blocking call waits, the reactor
      cannot answer the peer's queries.
    - Blocking (the C{*_blocking} names) for code that is not on the reactor
      thread: C{deferToThread(dig_query_blocking, ...)}, scripts, setUp of
      tests that run no reactor code.

Nothing here can hang a test run: every wait has a timeout, a timed-out
one-shot is killed, long-running peers are stopped with SIGTERM (so they say
goodbye) and then SIGKILL, and any peer still alive when the interpreter
exits is killed.  Output goes to files in a work directory so that it can be
read while the peer runs and inspected after a failure.

Waiting is done by polling the process and its output files every
L{POLL_INTERVAL} seconds with C{reactor.callLater} (or C{time.sleep} in the
blocking variants); no C{spawnProcess}, no SIGCHLD handling, no threads.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar
from xml.sax.saxutils import escape, quoteattr

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SkipTest

T = TypeVar("T")

#: The directory holding the C{tests} package (run peers with it as cwd).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: How often waits look at a process and its output, in seconds.
POLL_INTERVAL = 0.025

#: Where avahi-daemon reads static services and hosts from (compiled in).
AVAHI_SERVICES_DIR = "/etc/avahi/services"
AVAHI_HOSTS_FILE = "/etc/avahi/hosts"
AVAHI_RUNTIME_DIR = "/run/avahi-daemon"


class PeerError(Exception):
    """
    A peer failed: it exited early, reported an error or could not start.
    The message carries the tail of its output.
    """


class PeerTimeout(PeerError):
    """
    A peer did not do what was awaited in time.
    """


# ---------------------------------------------------------------------------
# Availability


def peer_unavailable(tool: str) -> str | None:
    """
    Why peer C{tool} (C{"avahi-daemon"}, C{"dig"}, C{"zeroconf"}) cannot run
    here, or L{None} if it can.
    """
    if tool == "zeroconf":
        if importlib.util.find_spec("zeroconf") is None:
            return "python-zeroconf is not installed (pip install zeroconf)"
        return None
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    return None


def require_peers(*tools: str) -> None:
    """
    Skip the calling test unless every peer in C{tools} is available; fail
    instead where C{TWISTED_MDNS_REQUIRE_PEERS=1} or
    C{TWISTED_MDNS_REQUIRE_NETNS=1} says CI must run them.
    """
    missing = [why for why in map(peer_unavailable, tools) if why]
    if not missing:
        return
    why = "; ".join(missing)
    if "1" in (
        os.environ.get("TWISTED_MDNS_REQUIRE_PEERS"),
        os.environ.get("TWISTED_MDNS_REQUIRE_NETNS"),
    ):
        raise RuntimeError(f"interop peers are required here but {why}")
    raise SkipTest(why)


# ---------------------------------------------------------------------------
# Small helpers


def netns_argv(ns: str | None, argv: Sequence[str]) -> list[str]:
    """
    C{argv} run in namespace C{ns} (as is where C{ns} is L{None}, i.e. in
    the namespace of whoever starts it).
    """
    return (["ip", "netns", "exec", ns] if ns else []) + list(argv)


def interface_address(ns: str | None, interface: str) -> str:
    """
    The first IPv4 address of C{interface} in C{ns}; an IPv4 address is
    returned unchanged, so callers can pass either.
    """
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", interface):
        return interface
    argv = ["ip"] + (["-n", ns] if ns else []) + ["-4", "-o", "addr", "show", "dev", interface]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", done.stdout)
    if done.returncode != 0 or not found:
        raise PeerError(f"no IPv4 address on {interface} in {ns}: {done.stderr.strip()}")
    return found.group(1)


def _reactor(reactor: Any) -> Any:
    if reactor is None:
        from twisted.internet import reactor as default

        return default
    return reactor


def poll_until(
    check: Callable[[], T | None],
    timeout: float,
    describe: str | Callable[[], str] = "condition",
    reactor: Any = None,
    interval: float = POLL_INTERVAL,
) -> "Deferred[T]":
    """
    Call C{check} now and every C{interval} seconds until it returns
    something other than L{None}; the Deferred fires with that.  It fails
    with whatever C{check} raises, or L{PeerTimeout} after C{timeout}
    seconds.  Cancelling it stops the polling.
    """
    reactor = _reactor(reactor)
    deadline = time.monotonic() + timeout
    pending: list[Any] = []

    def cancel(d: Deferred) -> None:
        if pending and pending[0].active():
            pending[0].cancel()

    d: Deferred = Deferred(cancel)

    def step() -> None:
        pending.clear()
        try:
            value = check()
        except BaseException as e:
            d.errback(e)
            return
        if value is not None:
            d.callback(value)
        elif time.monotonic() >= deadline:
            text = describe() if callable(describe) else describe
            d.errback(PeerTimeout(f"timed out after {timeout:g} s waiting for {text}"))
        else:
            pending.append(reactor.callLater(interval, step))

    step()
    return d


def poll_until_blocking(
    check: Callable[[], T | None],
    timeout: float,
    describe: str | Callable[[], str] = "condition",
    interval: float = POLL_INTERVAL,
) -> T:
    """
    L{poll_until}, blocking the calling thread.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            text = describe() if callable(describe) else describe
            raise PeerTimeout(f"timed out after {timeout:g} s waiting for {text}")
        time.sleep(interval)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# Processes

_live: "set[PeerProcess]" = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        process.kill()


@dataclass(frozen=True)
class ProcessResult:
    """
    What a one-shot process did.

    @ivar returncode: its exit status (negative: killed by that signal).
    @ivar timed_out: whether it was killed for running out of time.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    def json_lines(self) -> list[dict[str, Any]]:
        """
        Every stdout line that is a JSON object.
        """
        return _json_lines(self.stdout.splitlines())

    def check(self) -> "ProcessResult":
        """
        Self, or L{PeerError} (L{PeerTimeout}) if it failed (timed out).
        """
        if self.timed_out:
            raise PeerTimeout(f"{shlex.join(self.argv)} timed out\n{_tail(self.stderr)}")
        if self.returncode != 0:
            raise PeerError(
                f"{shlex.join(self.argv)} exited with {self.returncode}\n"
                f"{_tail(self.stdout)}\n{_tail(self.stderr)}"
            )
        return self


def _json_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


class PeerProcess:
    """
    One process in a network namespace, its stdout and stderr written to
    files in C{workdir} and readable while it runs.

    @ivar name: a label for messages and file names.
    @ivar argv: the full command line (with C{ip netns exec}).
    @ivar workdir: where C{NAME.stdout} and C{NAME.stderr} are written.
    """

    def __init__(
        self,
        ns: str | None,
        argv: Sequence[str],
        *,
        name: str = "peer",
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
        reactor: Any = None,
    ) -> None:
        """
        @param stdin: give the process a pipe on stdin, closed by L{stop}
            (otherwise stdin is C{/dev/null}).
        @param env: variables added to (not replacing) our environment.
        """
        self.ns = ns
        self.name = name
        self.argv = netns_argv(ns, argv)
        self._owned_workdir = workdir is None
        self.workdir = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix=f"peer-{name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._env = dict(os.environ, **(env or {}))
        self._cwd = cwd
        self._stdin = stdin
        self._reactor = reactor
        self._popen: subprocess.Popen[bytes] | None = None
        self._paths = {s: self.workdir / f"{name}.{s}" for s in ("stdout", "stderr")}
        self._read: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def __repr__(self) -> str:
        return f"<PeerProcess {self.name} pid={self.pid} returncode={self.returncode}>"

    # -- running -----------------------------------------------------------

    def start(self) -> "PeerProcess":
        """
        Start the process (in its own session, so that signals reach any
        children too) and return self at once.
        """
        if self._popen is not None:
            raise PeerError(f"{self.name} was already started")
        with open(self._paths["stdout"], "wb") as out, open(self._paths["stderr"], "wb") as err:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if self._stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """
        The exit status once it has exited (reaping it), else L{None}.
        """
        if self._popen is None:
            return None
        code = self._popen.poll()
        if code is not None:
            _live.discard(self)
        return code

    @property
    def running(self) -> bool:
        return self._popen is not None and self.returncode is None

    def send_signal(self, signum: int) -> None:
        """
        Send C{signum} to the process group (no-op once it has exited).
        """
        if not self.running:
            return
        assert self._popen is not None
        try:
            os.killpg(self._popen.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            self._popen.send_signal(signum)

    def close_stdin(self) -> None:
        if self._popen is not None and self._popen.stdin and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except OSError:
                pass

    def kill(self) -> None:
        """
        SIGKILL it now and reap it; never blocks for long.
        """
        self.close_stdin()
        self.send_signal(signal.SIGKILL)
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._finish()

    def wait(self, timeout: float) -> "Deferred[int]":
        """
        A Deferred firing with the exit status; L{PeerTimeout} if it is still
        running after C{timeout} seconds (it is left running).
        """
        return poll_until(
            lambda: self.returncode,
            timeout,
            lambda: f"{self.name} to exit",
            self._reactor,
        )

    def wait_blocking(self, timeout: float) -> int:
        return poll_until_blocking(lambda: self.returncode, timeout, f"{self.name} to exit")

    def stop(self, timeout: float = 5.0, signum: int = signal.SIGTERM) -> "Deferred[int]":
        """
        Close stdin, send C{signum} (SIGTERM: a peer says goodbye), wait up
        to C{timeout} seconds, then SIGKILL.  Fires with the exit status (a
        negative one when it had to be killed); never fails.  Safe to call
        more than once and on a process that never started.
        """
        if self._popen is None:
            return succeed(0)
        if not self.running:
            self._finish()
            return succeed(self.returncode)
        self.close_stdin()
        self.send_signal(signum)
        d = self.wait(timeout)

        def killed(failure: Any) -> int:
            failure.trap(PeerTimeout)
            self.kill()
            return self.returncode if self.returncode is not None else -signal.SIGKILL

        def done(code: int) -> int:
            self._finish()
            return code

        return d.addErrback(killed).addCallback(done)

    def stop_blocking(self, timeout: float = 5.0, signum: int = signal.SIGTERM) -> int:
        """
        L{stop}, blocking the calling thread.
        """
        if self._popen is None:
            return 0
        if self.running:
            self.close_stdin()
            self.send_signal(signum)
            try:
                self.wait_blocking(timeout)
            except PeerTimeout:
                self.kill()
        self._finish()
        code = self.returncode
        return code if code is not None else -signal.SIGKILL

    def _finish(self) -> None:
        """
        Keep the output in memory and remove a work directory we made.
        """
        self._refresh()
        _live.discard(self)
        if self._owned_workdir and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- output ------------------------------------------------------------

    def _refresh(self) -> None:
        for stream, path in self._paths.items():
            try:
                with open(path, "rb") as f:
                    f.seek(len(self._read[stream]))
                    self._read[stream] += f.read()
            except FileNotFoundError:
                pass

    def output(self, stream: str = "stdout") -> str:
        """
        Everything C{stream} (C{"stdout"} or C{"stderr"}) has written so far.
        """
        self._refresh()
        return self._read[stream].decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        return self.output("stdout")

    @property
    def stderr(self) -> str:
        return self.output("stderr")

    def lines(self, stream: str = "stdout") -> list[str]:
        """
        The complete lines of C{stream} so far (the last, unfinished line
        too once the process has exited).
        """
        text = self.output(stream)
        lines = text.split("\n")
        last = lines.pop()
        if last and not self.running:
            lines.append(last)
        return lines

    def events(self) -> list[dict[str, Any]]:
        """
        The JSON objects printed on stdout so far, one per line.
        """
        return _json_lines(self.lines("stdout"))

    def _matcher(
        self,
        match: str | re.Pattern[str] | Callable[[str], Any],
        stream: str,
        after: int,
    ) -> Callable[[], Any]:
        if callable(match) and not isinstance(match, re.Pattern):
            test = match
        else:
            pattern = re.compile(match) if isinstance(match, str) else match
            test = pattern.search

        def check() -> Any:
            running = self.running  # before reading: no output lost at exit
            for line in self.lines(stream)[after:]:
                found = test(line)
                if found:
                    return found
            if not running:
                raise PeerError(
                    f"{self.name} exited with {self.returncode} before printing "
                    f"{match!r}\n{self.describe_output()}"
                )
            return None

        return check

    def wait_for(
        self,
        match: str | re.Pattern[str] | Callable[[str], Any],
        timeout: float,
        stream: str = "stdout",
        after: int = 0,
    ) -> "Deferred[Any]":
        """
        Wait for a line of C{stream} (from line index C{after} on) that
        matches C{match}: a regular expression (searched; fires with the
        C{re.Match}) or a predicate (fires with its truthy result).  Fails
        with L{PeerError} if the process exits first, L{PeerTimeout} after
        C{timeout} seconds (the process is left running).
        """
        return poll_until(
            self._matcher(match, stream, after),
            timeout,
            lambda: f"{match!r} from {self.name}\n{self.describe_output()}",
            self._reactor,
        )

    def wait_for_blocking(
        self,
        match: str | re.Pattern[str] | Callable[[str], Any],
        timeout: float,
        stream: str = "stdout",
        after: int = 0,
    ) -> Any:
        """
        L{wait_for}, blocking the calling thread.
        """
        return poll_until_blocking(
            self._matcher(match, stream, after),
            timeout,
            lambda: f"{match!r} from {self.name}\n{self.describe_output()}",
        )

    def wait_for_event(self, timeout: float, after: int = 0, **fields: Any) -> "Deferred[dict[str, Any]]":
        """
        Wait for a JSON line on stdout whose keys include C{fields} (e.g.
        C{event="registered"}); fires with the whole object.  An
        C{{"event": "error"}} line fails it with L{PeerError}.
        """
        return self.wait_for(_event_matcher(self.name, fields), timeout, "stdout", after)

    def describe_output(self) -> str:
        return (
            f"--- {self.name} stdout (tail) ---\n{_tail(self.stdout)}\n"
            f"--- {self.name} stderr (tail) ---\n{_tail(self.stderr)}"
        )


def _event_matcher(name: str, fields: Mapping[str, Any]) -> Callable[[str], Any]:
    def test(line: str) -> dict[str, Any] | None:
        for event in _json_lines([line]):
            if event.get("event") == "error" and fields.get("event") != "error":
                raise PeerError(f"{name} reported {event.get('error')}: {event.get('message')}")
            if all(event.get(k) == v for k, v in fields.items()):
                return event
        return None

    return test


def run(
    ns: str | None,
    argv: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    name: str = "run",
    reactor: Any = None,
) -> "Deferred[ProcessResult]":
    """
    Run a one-shot command in C{ns}; a Deferred firing with its
    L{ProcessResult} (never failing for a non-zero status: call
    L{ProcessResult.check}).  After C{timeout} seconds it is killed and the
    result says C{timed_out=True}.
    """
    try:
        process = PeerProcess(ns, argv, name=name, env=env, cwd=cwd, reactor=reactor).start()
    except Exception:
        return fail()

    def result(code: int, timed_out: bool = False) -> ProcessResult:
        return ProcessResult(
            tuple(process.argv), code, process.stdout, process.stderr, timed_out
        )

    def finished(code: int) -> ProcessResult:
        outcome = result(code)
        process.stop(0)
        return outcome

    def expired(failure: Any) -> ProcessResult:
        failure.trap(PeerTimeout)
        process.kill()
        outcome = result(process.returncode if process.returncode is not None else -9, True)
        process.stop(0)
        return outcome

    return process.wait(timeout).addCallbacks(finished, expired)


def run_blocking(
    ns: str | None,
    argv: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
) -> ProcessResult:
    """
    L{run}, blocking the calling thread (C{subprocess.run}; killed after
    C{timeout} seconds).
    """
    full = netns_argv(ns, argv)
    try:
        done = subprocess.run(
            full,
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            env=dict(os.environ, **(env or {})),
            cwd=cwd,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        def text(value: Any) -> str:
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return value or ""

        return ProcessResult(tuple(full), -signal.SIGKILL, text(e.stdout), text(e.stderr), True)
    return ProcessResult(tuple(full), done.returncode, done.stdout, done.stderr)


# ---------------------------------------------------------------------------
# dig (legacy unicast queries, RFC 6762 §6.7)


@dataclass(frozen=True)
class DigRecord:
    """
    One resource record as dig printed it.

    @ivar name: the owner name, dig's escapes undone (C{Peer Web._http...}).
    @ivar data: the RDATA text exactly as dig printed it (PTR targets keep
        their C{\\032} escapes; see L{dig_unescape}).
    """

    name: str
    ttl: int
    rclass: str
    rtype: str
    data: str


@dataclass(frozen=True)
class DigAnswer:
    """
    A parsed dig reply.

    @ivar answered: whether any reply came back before dig gave up.
    @ivar flags: header flags (C{"qr"}, C{"aa"}, C{"tc"}, C{"rd"}...).
    """

    answered: bool
    status: str | None
    id: int | None
    flags: frozenset[str]
    answers: tuple[DigRecord, ...]
    authority: tuple[DigRecord, ...]
    additional: tuple[DigRecord, ...]
    text: str

    def data(self, rtype: str | None = None, section: str = "answers") -> list[str]:
        """
        The RDATA of the records in C{section} (of type C{rtype}).
        """
        return [r.data for r in getattr(self, section) if rtype is None or r.rtype == rtype.upper()]


def dig_unescape(text: str) -> str:
    """
    Undo dig's presentation escapes: C{\\DDD} (decimal) and C{\\X}.
    """
    raw = re.sub(
        rb"\\(\d{3}|.)",
        lambda m: bytes([int(m.group(1))]) if m.group(1).isdigit() else m.group(1),
        text.encode("utf-8"),
    )
    return raw.decode("utf-8", "replace")


_SECTIONS = {
    "ANSWER": "answers",
    "AUTHORITY": "authority",
    "ADDITIONAL": "additional",
}


def parse_dig(text: str) -> DigAnswer:
    """
    Parse dig's default output (header comments and sections).
    """
    status = None
    ident = None
    flags: frozenset[str] = frozenset()
    sections: dict[str, list[DigRecord]] = {v: [] for v in _SECTIONS.values()}
    current: str | None = None
    answered = False
    for line in text.splitlines():
        header = re.search(r"->>HEADER<<-.*status: (\w+), id: (\d+)", line)
        if header:
            answered = True
            status, ident = header.group(1), int(header.group(2))
            continue
        flagline = re.match(r";; flags:([^;]*);", line)
        if flagline:
            flags = frozenset(flagline.group(1).split())
            continue
        section = re.match(r";; (\w+) SECTION:", line)
        if section:
            current = _SECTIONS.get(section.group(1))
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                current = None
            continue
        if current is None:
            continue
        parts = line.split(None, 4)
        if len(parts) < 4 or not parts[1].isdigit():
            continue
        name, ttl, rclass, rtype = parts[:4]
        sections[current].append(
            DigRecord(dig_unescape(name), int(ttl), rclass, rtype, parts[4] if len(parts) > 4 else "")
        )
    return DigAnswer(
        answered=answered,
        status=status,
        id=ident,
        flags=flags,
        answers=tuple(sections["answers"]),
        authority=tuple(sections["authority"]),
        additional=tuple(sections["additional"]),
        text=text,
    )


def dig_argv(
    server_ip: str,
    name: str,
    rrtype: str = "A",
    port: int = 5353,
    timeout: float = 1.0,
    edns: bool = False,
    source: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """
    The dig command line for one non-recursive query, one try.
    """
    argv = [
        "dig", f"@{server_ip}", "-p", str(port), name, rrtype,
        "+norecurse", f"+time={max(1, math.ceil(timeout))}", "+tries=1",
        "+nostats", "+nocookie",
    ]
    if not edns:
        argv.append("+noedns")
    if source:
        argv += ["-b", source]
    return argv + list(extra)


def dig_query(
    ns: str | None,
    server_ip: str,
    name: str,
    rrtype: str = "A",
    port: int = 5353,
    timeout: float = 1.0,
    *,
    edns: bool = False,
    source: str | None = None,
    extra: Sequence[str] = (),
    reactor: Any = None,
) -> "Deferred[DigAnswer]":
    """
    Ask C{server_ip}:C{port} for C{name}/C{rrtype} with dig run in C{ns} (a
    legacy unicast query when C{port} is 5353: dig's source port is not
    5353).  Fires with a L{DigAnswer}; C{answered=False} where nothing came
    back within C{timeout} (whole seconds, at least 1).  Fails with
    L{PeerError} only if dig itself fails.

    @param edns: send an OPT record (dig's default); off by default, the
        plainest legacy query.
    @param source: the source address (C{dig -b}).
    """
    argv = dig_argv(server_ip, name, rrtype, port, timeout, edns, source, extra)
    d = run(ns, argv, timeout + 5, name="dig", reactor=reactor)
    return d.addCallback(_dig_result)


def dig_query_blocking(
    ns: str | None,
    server_ip: str,
    name: str,
    rrtype: str = "A",
    port: int = 5353,
    timeout: float = 1.0,
    *,
    edns: bool = False,
    source: str | None = None,
    extra: Sequence[str] = (),
) -> DigAnswer:
    """
    L{dig_query}, blocking the calling thread.
    """
    argv = dig_argv(server_ip, name, rrtype, port, timeout, edns, source, extra)
    return _dig_result(run_blocking(ns, argv, timeout + 5))


def _dig_result(result: ProcessResult) -> DigAnswer:
    # dig exits 9 when no reply came back: that is an answer for us.
    if result.timed_out or result.returncode not in (0, 9):
        result.check()
        raise PeerError(f"dig failed: {result.stdout}{result.stderr}")
    return parse_dig(result.stdout)


# ---------------------------------------------------------------------------
# python-zeroconf


@dataclass(frozen=True)
class ZeroconfService:
    """
    A service instance as python-zeroconf resolved it.

    @ivar name: the full name, C{Peer Web._http._tcp.local.}.
    @ivar instance: its instance label, C{Peer Web}.
    @ivar type: C{_http._tcp.local.}.
    @ivar server: the target host, C{peerhost.local.}.
    @ivar addresses: IPv4 addresses of C{server}, sorted.
    @ivar txt: TXT keys to values (L{None} for a key without C{=}).
    """

    name: str
    instance: str
    type: str
    server: str | None
    port: int | None
    addresses: tuple[str, ...]
    addresses_v6: tuple[str, ...] = ()
    txt: dict[str, str | None] = field(default_factory=dict)
    priority: int = 0
    weight: int = 0
    host_ttl: int | None = None
    other_ttl: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ZeroconfService":
        return cls(
            name=data["name"],
            instance=data["instance"],
            type=data["type"],
            server=data.get("server"),
            port=data.get("port"),
            addresses=tuple(data.get("addresses", ())),
            addresses_v6=tuple(data.get("addresses_v6", ())),
            txt=dict(data.get("txt") or {}),
            priority=data.get("priority", 0),
            weight=data.get("weight", 0),
            host_ttl=data.get("host_ttl"),
            other_ttl=data.get("other_ttl"),
        )


_ZEROCONF_ENV = {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def zeroconf_argv(command: str, *args: str) -> list[str]:
    """
    The command line of L{tests.zeroconf_peer} C{command}.
    """
    return [sys.executable, "-m", "tests.zeroconf_peer", command, *args]


def _result_event(result: ProcessResult) -> dict[str, Any]:
    result.check()
    for event in reversed(result.json_lines()):
        if event.get("event") == "result":
            return event
    raise PeerError(f"no result from {shlex.join(result.argv)}\n{_tail(result.stdout)}\n{_tail(result.stderr)}")


def _zeroconf_oneshot(ns: str | None, argv: list[str], timeout: float, reactor: Any) -> "Deferred[dict[str, Any]]":
    # Margin: interpreter start-up, zeroconf's own start and close.
    d = run(ns, argv, timeout + 10, env=_ZEROCONF_ENV, cwd=REPO_ROOT, name="zeroconf", reactor=reactor)
    return d.addCallback(_result_event)


def _zeroconf_oneshot_blocking(ns: str | None, argv: list[str], timeout: float) -> dict[str, Any]:
    return _result_event(run_blocking(ns, argv, timeout + 10, env=_ZEROCONF_ENV, cwd=REPO_ROOT))


def _resolve_service_argv(ns: str | None, type_: str, instance: str, timeout: float, interface: str) -> list[str]:
    return zeroconf_argv(
        "resolve-service", "--interface", interface_address(ns, interface),
        "--type", type_, "--instance", instance, "--timeout", str(timeout),
    )


def _service_or_none(event: Mapping[str, Any]) -> ZeroconfService | None:
    return ZeroconfService.from_json(event["service"]) if event.get("found") else None


def zeroconf_resolve_service(
    ns: str | None,
    type_: str,
    instance: str,
    timeout: float = 3.0,
    *,
    interface: str = "eth0",
    reactor: Any = None,
) -> "Deferred[ZeroconfService | None]":
    """
    Resolve C{instance} of C{type_} (C{_http._tcp} or C{_http._tcp.local.})
    with python-zeroconf in C{ns}, bound to C{interface} (a name, e.g.
    C{lana} in the host namespace, or an IPv4 address) only.  Fires with a
    L{ZeroconfService}, or L{None} if it did not resolve in C{timeout}
    seconds.
    """
    argv = _resolve_service_argv(ns, type_, instance, timeout, interface)
    return _zeroconf_oneshot(ns, argv, timeout, reactor).addCallback(_service_or_none)


def zeroconf_resolve_service_blocking(
    ns: str | None, type_: str, instance: str, timeout: float = 3.0, *, interface: str = "eth0"
) -> ZeroconfService | None:
    """
    L{zeroconf_resolve_service}, blocking the calling thread.
    """
    argv = _resolve_service_argv(ns, type_, instance, timeout, interface)
    return _service_or_none(_zeroconf_oneshot_blocking(ns, argv, timeout))


def _browse_argv(ns: str | None, type_: str, timeout: float, interface: str, expect: int) -> list[str]:
    return zeroconf_argv(
        "browse", "--interface", interface_address(ns, interface), "--type", type_,
        "--timeout", str(timeout), "--expect", str(expect),
    )


def _services(event: Mapping[str, Any]) -> list[ZeroconfService]:
    return [ZeroconfService.from_json(s) for s in event["services"]]


def zeroconf_browse(
    ns: str | None,
    type_: str,
    timeout: float = 3.0,
    *,
    interface: str = "eth0",
    expect: int = 0,
    reactor: Any = None,
) -> "Deferred[list[ZeroconfService]]":
    """
    Browse C{type_} with python-zeroconf in C{ns} on C{interface} for
    C{timeout} seconds (or until C{expect} instances have resolved, if
    given) and fire with the resolved instances, sorted by name.
    """
    argv = _browse_argv(ns, type_, timeout, interface, expect)
    return _zeroconf_oneshot(ns, argv, timeout, reactor).addCallback(_services)


def zeroconf_browse_blocking(
    ns: str | None, type_: str, timeout: float = 3.0, *, interface: str = "eth0", expect: int = 0
) -> list[ZeroconfService]:
    """
    L{zeroconf_browse}, blocking the calling thread.
    """
    return _services(_zeroconf_oneshot_blocking(ns, _browse_argv(ns, type_, timeout, interface, expect), timeout))


def _resolve_host_argv(ns: str | None, hostname: str, timeout: float, interface: str) -> list[str]:
    return zeroconf_argv(
        "resolve-host", "--interface", interface_address(ns, interface),
        "--hostname", hostname, "--timeout", str(timeout),
    )


def zeroconf_resolve_host(
    ns: str | None,
    hostname: str,
    timeout: float = 3.0,
    *,
    interface: str = "eth0",
    reactor: Any = None,
) -> "Deferred[list[str]]":
    """
    Resolve C{hostname} (C{peerhost} or C{peerhost.local.}) to IPv4
    addresses with python-zeroconf in C{ns} on C{interface}; fires with the
    sorted addresses, empty if none came in C{timeout} seconds.
    """
    argv = _resolve_host_argv(ns, hostname, timeout, interface)
    return _zeroconf_oneshot(ns, argv, timeout, reactor).addCallback(lambda e: list(e["addresses"]))


def zeroconf_resolve_host_blocking(
    ns: str | None, hostname: str, timeout: float = 3.0, *, interface: str = "eth0"
) -> list[str]:
    """
    L{zeroconf_resolve_host}, blocking the calling thread.
    """
    return list(_zeroconf_oneshot_blocking(ns, _resolve_host_argv(ns, hostname, timeout, interface), timeout)["addresses"])


class ZeroconfPublisher:
    """
    python-zeroconf registering one service in C{ns} until stopped.

    After L{start}: C{registered_name} is the instance name it ended up
    with (C{"Zc Web-2"} if it had to rename: python-zeroconf appends
    C{-N}), C{renamed} says whether it did.  L{stop} unregisters the
    service, which multicasts goodbyes (TTL 0).
    """

    def __init__(
        self,
        ns: str | None,
        instance: str,
        type_: str,
        port: int,
        txt: Mapping[str, str | None] | None = None,
        hostname: str = "zeroconf-peer.local.",
        addresses: Sequence[str] | None = None,
        *,
        interface: str = "eth0",
        rename: bool = True,
        lifetime: float = 300.0,
        workdir: str | os.PathLike[str] | None = None,
        reactor: Any = None,
    ) -> None:
        """
        @param addresses: the addresses published for C{hostname}; by
            default the address of C{interface}.
        @param rename: rename on a conflict (else C{start} fails with
            L{PeerError} on C{NonUniqueNameException}).
        @param lifetime: seconds after which it stops by itself.
        """
        self.ns = ns
        self.instance = instance
        self.type = type_
        self.registered_name: str | None = None
        self.renamed: bool | None = None
        address = interface_address(ns, interface)
        args = [
            "--interface", address, "--type", type_, "--instance", instance,
            "--port", str(port), "--hostname", hostname,
            "--lifetime", str(lifetime), "--exit-on-eof",
        ]
        for key, value in (txt or {}).items():
            args += ["--txt", key if value is None else f"{key}={value}"]
        for a in addresses or ():
            args += ["--address", a]
        if not rename:
            args.append("--no-rename")
        self.process = PeerProcess(
            ns, zeroconf_argv("publish", *args), name="zeroconf-publish",
            workdir=workdir, env=_ZEROCONF_ENV, cwd=REPO_ROOT, stdin=True, reactor=reactor,
        )

    def start(self, timeout: float = 10.0) -> "Deferred[str]":
        """
        Start it; fires with the registered instance name once python-
        zeroconf has probed and announced (about 2 s).
        """
        self.process.start()
        d = self.process.wait_for_event(timeout, event="registered")
        return d.addCallback(self._registered)

    def start_blocking(self, timeout: float = 10.0) -> str:
        """
        L{start}, blocking the calling thread.
        """
        self.process.start()
        event = self.process.wait_for_blocking(
            _event_matcher(self.process.name, {"event": "registered"}), timeout
        )
        return self._registered(event)

    def _registered(self, event: dict[str, Any]) -> str:
        self.registered_name = event["instance"]
        self.renamed = event["renamed"]
        return event["instance"]

    def stop(self, timeout: float = 5.0) -> "Deferred[int]":
        """
        Unregister (goodbyes) and exit; SIGKILL after C{timeout} seconds.
        Fires with the exit status.
        """
        return self.process.stop(timeout)

    def stop_blocking(self, timeout: float = 5.0) -> int:
        return self.process.stop_blocking(timeout)

    @property
    def said_goodbye(self) -> bool:
        """
        Whether it reported unregistering the service.
        """
        return any(e.get("event") == "unregistered" for e in self.process.events())


class ZeroconfBrowser:
    """
    A python-zeroconf C{ServiceBrowser} in C{ns}, running until stopped and
    reporting what it sees: L{wait_for_added} and L{wait_for_removed} (the
    latter is how a test sees goodbyes arrive).
    """

    def __init__(
        self,
        ns: str | None,
        type_: str,
        *,
        interface: str = "eth0",
        lifetime: float = 300.0,
        workdir: str | os.PathLike[str] | None = None,
        reactor: Any = None,
    ) -> None:
        self.ns = ns
        self.type = type_
        args = [
            "--interface", interface_address(ns, interface), "--type", type_, "--follow",
            "--lifetime", str(lifetime), "--exit-on-eof",
        ]
        self.process = PeerProcess(
            ns, zeroconf_argv("browse", *args), name="zeroconf-browse",
            workdir=workdir, env=_ZEROCONF_ENV, cwd=REPO_ROOT, stdin=True, reactor=reactor,
        )

    def start(self, timeout: float = 10.0) -> "Deferred[None]":
        """
        Start it; fires once the browser is running (it has sent its first
        query or is about to).
        """
        self.process.start()
        return self.process.wait_for_event(timeout, event="browsing").addCallback(lambda _: None)

    def start_blocking(self, timeout: float = 10.0) -> None:
        """
        L{start}, blocking the calling thread.
        """
        self.process.start()
        self.process.wait_for_blocking(_event_matcher(self.process.name, {"event": "browsing"}), timeout)

    def wait_for_added(self, instance: str, timeout: float = 5.0) -> "Deferred[ZeroconfService]":
        """
        Fires with the service once C{instance} has been found and resolved.
        """
        d = self.process.wait_for(_resolved_matcher(self.process.name, instance), timeout)
        return d.addCallback(lambda e: ZeroconfService.from_json(e["service"]))

    def wait_for_removed(self, instance: str, timeout: float = 5.0) -> "Deferred[float]":
        """
        Fires with the browser's clock (seconds since it started) when it
        reported C{instance} removed.
        """
        d = self.process.wait_for_event(timeout, event="removed", instance=instance)
        return d.addCallback(lambda e: e["elapsed"])

    def events(self) -> list[dict[str, Any]]:
        return self.process.events()

    def stop(self, timeout: float = 5.0) -> "Deferred[int]":
        return self.process.stop(timeout)

    def stop_blocking(self, timeout: float = 5.0) -> int:
        return self.process.stop_blocking(timeout)


def _resolved_matcher(name: str, instance: str) -> Callable[[str], Any]:
    base = _event_matcher(name, {"event": "resolved"})

    def test(line: str) -> Any:
        event = base(line)
        if event and event["service"]["instance"] == instance:
            return event
        return None

    return test


# ---------------------------------------------------------------------------
# avahi-daemon


@dataclass(frozen=True)
class AvahiService:
    """
    One static avahi service (a C{<service-group>} file).

    @ivar name: the instance name; with C{replace_wildcards}, C{%h} becomes
        the host name.
    @ivar type: C{_http._tcp} (no domain).
    @ivar txt: TXT strings (C{"path=/"}) or a mapping (value L{None}: a
        key without C{=}).
    @ivar host_name: publish the SRV pointing at this host (a fully
        qualified C{other.local}) instead of the daemon's own; avahi does
        not publish an address for it unless it is in C{static_hosts}.
    @ivar protocol: C{"ipv4"}, C{"ipv6"} or C{"any"}.
    """

    name: str
    type: str
    port: int
    txt: Sequence[str] | Mapping[str, str | None] = ()
    host_name: str | None = None
    subtypes: Sequence[str] = ()
    domain: str | None = None
    protocol: str = "ipv4"
    replace_wildcards: bool = False

    def txt_strings(self) -> list[str]:
        if isinstance(self.txt, Mapping):
            return [k if v is None else f"{k}={v}" for k, v in self.txt.items()]
        return list(self.txt)

    def to_xml(self) -> str:
        """
        The service file's text.
        """
        wildcards = ' replace-wildcards="yes"' if self.replace_wildcards else ""
        lines = [
            '<?xml version="1.0" standalone="no"?>',
            '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">',
            "<service-group>",
            f"  <name{wildcards}>{escape(self.name)}</name>",
            f"  <service protocol={quoteattr(self.protocol)}>",
            f"    <type>{escape(self.type)}</type>",
        ]
        lines += [f"    <subtype>{escape(s)}</subtype>" for s in self.subtypes]
        if self.domain:
            lines.append(f"    <domain-name>{escape(self.domain)}</domain-name>")
        if self.host_name:
            lines.append(f"    <host-name>{escape(self.host_name)}</host-name>")
        lines.append(f"    <port>{self.port}</port>")
        lines += [f"    <txt-record>{escape(t)}</txt-record>" for t in self.txt_strings()]
        lines += ["  </service>", "</service-group>", ""]
        return "\n".join(lines)


class AvahiDaemon:
    """
    Debian's avahi-daemon in namespace C{ns}: our peer as a responder (its
    host name and static services) and as a prober that must defend or
    yield names against ours.

    Everything lives in C{workdir}: C{avahi-daemon.conf}, C{services/}
    (bind-mounted over C{/etc/avahi/services}), C{hosts} (over
    C{/etc/avahi/hosts}) and C{avahi.stderr}, the C{--debug} log.  The
    daemon gets a private tmpfs on C{/run/avahi-daemon} (PID file and
    socket), so several daemons run at once, one per namespace, beside any
    system one.  Mounts are made in the private mount namespace that C{ip
    netns exec} creates; they vanish with the daemon.  D-Bus is off unless
    asked for (C{dbus=True}): then a private D-Bus daemon serves it from
    C{workdir}, and L{browse} runs C{avahi-browse} against it.

    After L{start}: C{host_name} is the name it holds now, read from its
    log each time (C{peerhost-2.local} after a conflict, even one long
    after start-up), C{service_names} maps each
    L{AvahiService} index to the name it established (C{"Peer Web #2"}
    after a conflict) and L{log} holds everything it logged.
    """

    def __init__(
        self,
        ns: str,
        hostname: str,
        services: Sequence[AvahiService] = (),
        interfaces: Sequence[str] = ("eth0",),
        workdir: str | os.PathLike[str] | None = None,
        *,
        static_hosts: Mapping[str, str] | None = None,
        config: Mapping[str, Mapping[str, str]] | None = None,
        dbus: bool = False,
        reactor: Any = None,
    ) -> None:
        """
        @param hostname: the host name without domain (C{peerhost}).
        @param dbus: give it a private system bus, so that the avahi
            clients (C{avahi-browse}) work; see L{browse}.
        @param interfaces: C{allow-interfaces}; empty for all of them.
        @param static_hosts: extra host names to publish, name to address
            (C{{"printer.local": "10.1.0.9"}}), via C{/etc/avahi/hosts}.
        @param config: overrides, section to key to value, merged over
            L{default_config}.
        @param workdir: by default a temporary directory, removed by L{stop}.
        """
        self.ns = ns
        self.hostname = hostname
        self.services = tuple(services)
        self.interfaces = tuple(interfaces)
        self.static_hosts = dict(static_hosts or {})
        self.dbus = dbus
        #: The bus socket's directory: short, as a socket path must be.
        self._bus_dir = Path(tempfile.mkdtemp(prefix="avbus-")) if dbus else None
        self.config = self.default_config()
        for section, values in (config or {}).items():
            self.config.setdefault(section, {}).update(values)
        self._owned_workdir = workdir is None
        self.workdir = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix="avahi-"))
        self._reactor = reactor
        self.service_names: dict[int, str] = {}
        self.process: PeerProcess | None = None

    def default_config(self) -> dict[str, dict[str, str]]:
        """
        The configuration: IPv4 only, only C{interfaces}, no D-Bus, no
        wide-area, no reflector, no HINFO/workstation/AAAA-over-IPv4 extras,
        so that what avahi sends is just the host name and our services.
        """
        server = {
            "host-name": self.hostname,
            "domain-name": "local",
            "use-ipv4": "yes",
            "use-ipv6": "no",
            "enable-dbus": "yes" if self.dbus else "no",
            "disallow-other-stacks": "no",
            "allow-point-to-point": "no",
        }
        if self.interfaces:
            server["allow-interfaces"] = ",".join(self.interfaces)
        return {
            "server": server,
            "wide-area": {"enable-wide-area": "no"},
            "publish": {
                "disable-publishing": "no",
                "publish-addresses": "yes",
                "publish-hinfo": "no",
                "publish-workstation": "no",
                "publish-domain": "no",
                "publish-aaaa-on-ipv4": "no",
                "publish-a-on-ipv6": "no",
                "publish-resolv-conf-dns-servers": "no",
            },
            "reflector": {"enable-reflector": "no"},
        }

    def config_text(self) -> str:
        lines = []
        for section, values in self.config.items():
            lines.append(f"[{section}]")
            lines += [f"{k}={v}" for k, v in values.items()]
            lines.append("")
        return "\n".join(lines)

    def _service_file(self, index: int) -> str:
        return f"peer{index}.service"

    def write_files(self) -> None:
        """
        Write the configuration, service files and hosts file to C{workdir}.
        """
        (self.workdir / "services").mkdir(parents=True, exist_ok=True)
        (self.workdir / "avahi-daemon.conf").write_text(self.config_text())
        for index, service in enumerate(self.services):
            (self.workdir / "services" / self._service_file(index)).write_text(service.to_xml())
        if self.dbus:
            (self.workdir / "bus.conf").write_text(_BUS_CONFIG % escape(str(self._bus_dir / "bus")))
        (self.workdir / "hosts").write_text(
            "".join(f"{address} {name}\n" for name, address in self.static_hosts.items())
        )

    def command(self) -> list[str]:
        """
        The C{sh -c} that mounts the private directories and execs avahi.
        """
        q = shlex.quote
        steps = [
            "set -e",
            f"mkdir -p {AVAHI_RUNTIME_DIR}",
            f"mount -t tmpfs -o size=1m,mode=0755 tmpfs {AVAHI_RUNTIME_DIR}",
            f"mount --bind {q(str(self.workdir / 'services'))} {AVAHI_SERVICES_DIR}",
        ]
        if os.path.exists(AVAHI_HOSTS_FILE):
            steps.append(f"mount --bind {q(str(self.workdir / 'hosts'))} {AVAHI_HOSTS_FILE}")
        if self.dbus:
            bus = q(str(self._bus_dir / "bus"))
            steps += [
                f"dbus-daemon --config-file={q(str(self.workdir / 'bus.conf'))} --nofork --nopidfile"
                f" & echo $! > {q(str(self.workdir / 'dbus.pid'))}",
                f"for i in $(seq 100); do [ -S {bus} ] && break; sleep 0.05; done",
                f"export DBUS_SYSTEM_BUS_ADDRESS={q(self.bus_address)}",
            ]
        steps.append(
            "exec avahi-daemon -f " + q(str(self.workdir / "avahi-daemon.conf"))
            + " --no-drop-root --no-chroot --no-rlimits --no-proc-title --debug"
        )
        return ["sh", "-c", "; ".join(steps)]

    def start(self, timeout: float = 10.0, wait_services: bool = True) -> "Deferred[str]":
        """
        Start avahi; fires with the host name it established (C{peerhost.local})
        once it logged "Server startup complete" and, with C{wait_services},
        every service (and static host) reported established.  Fails with
        L{PeerError} (log attached) if avahi exits or cannot add a service,
        L{PeerTimeout} after C{timeout} seconds.
        """
        self._launch()
        return poll_until(
            self._check_started(wait_services), timeout,
            lambda: f"avahi to start\n{_tail(self.log)}", self._reactor,
        )

    def start_blocking(self, timeout: float = 10.0, wait_services: bool = True) -> str:
        """
        L{start}, blocking the calling thread (only where nothing on this
        reactor has to answer avahi's probes).
        """
        self._launch()
        return poll_until_blocking(
            self._check_started(wait_services), timeout, lambda: f"avahi to start\n{_tail(self.log)}"
        )

    def _launch(self) -> None:
        require_peers("avahi-daemon")
        if self.process is not None:
            raise PeerError("this AvahiDaemon was already started")
        if not os.path.isdir(AVAHI_SERVICES_DIR):
            raise PeerError(f"{AVAHI_SERVICES_DIR} is missing: is avahi-daemon installed?")
        self.write_files()
        self.process = PeerProcess(
            self.ns, self.command(), name="avahi", workdir=self.workdir, reactor=self._reactor
        )
        self.process.start()

    def _check_started(self, wait_services: bool) -> Callable[[], str | None]:
        def check() -> str | None:
            assert self.process is not None
            running = self.process.running
            log = self.log
            failed = re.search(r"^(Failed to (add|establish|create|open) .*)$", log, re.M)
            if failed and "Failed to open /etc/resolv.conf" not in failed.group(1):
                raise PeerError(f"avahi: {failed.group(1)}\n{_tail(log)}")
            started = re.search(r"Server startup complete\. Host name is (\S+)\.", log)
            if started:
                for index in range(len(self.services)):
                    found = re.findall(
                        r'Service "(.*)" \(%s\) successfully established\.'
                        % re.escape(f"{AVAHI_SERVICES_DIR}/{self._service_file(index)}"),
                        log,
                    )
                    if found:
                        self.service_names[index] = found[-1]
                hosts_done = all(
                    f'Static host name "{name}" successfully established' in log
                    for name in self.static_hosts
                )
                if not wait_services or (len(self.service_names) == len(self.services) and hosts_done):
                    return started.group(1)
            if not running:
                raise PeerError(f"avahi exited with {self.process.returncode}\n{_tail(log)}")
            return None

        return check

    @property
    def host_name(self) -> str | None:
        """
        The host name avahi holds now (C{peerhost.local}), from the last
        of its "Host name is" and "retrying with" log lines; L{None} before
        it established one.
        """
        held = None
        for match in re.finditer(
            r"Server startup complete\. Host name is (\S+)\.|Host name conflict, retrying with (\S+)",
            self.log,
        ):
            started, retrying = match.groups()
            held = started if started else None if retrying else held
        return held

    @property
    def log(self) -> str:
        """
        Everything avahi logged so far (its stderr, with C{--debug}).
        """
        return self.process.stderr if self.process else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def wait_for_log(self, pattern: str, timeout: float = 5.0, after: int = 0) -> "Deferred[Any]":
        """
        Wait for a log line matching regular expression C{pattern} (from
        line index C{after}); fires with the C{re.Match}.
        """
        assert self.process is not None
        return self.process.wait_for(pattern, timeout, "stderr", after)

    def stop(self, timeout: float = 5.0) -> "Deferred[int]":
        """
        SIGTERM (avahi withdraws its records: goodbyes), wait up to
        C{timeout} seconds, then SIGKILL; fires with the exit status.  The
        log stays readable; a temporary C{workdir} is removed.
        """
        if self.process is None:
            return succeed(0)
        return self.process.stop(timeout).addCallback(self._cleanup)

    def stop_blocking(self, timeout: float = 5.0) -> int:
        if self.process is None:
            return 0
        return self._cleanup(self.process.stop_blocking(timeout))

    @property
    def bus_address(self) -> str:
        """
        The private system bus of a C{dbus=True} daemon.
        """
        return f"unix:path={self._bus_dir / 'bus'}"

    def browse(self, type_: str, timeout: float = 15.0) -> "Deferred[list[AvahiBrowsed]]":
        """
        C{avahi-browse -rptk TYPE} against this daemon (C{dbus=True}): what
        avahi finds and resolves on its interfaces, then exits.  Fires with
        the resolved entries (C{=} lines).
        """
        if not self.dbus:
            return fail(PeerError("avahi-browse needs AvahiDaemon(dbus=True)"))
        d = run(self.ns, ["avahi-browse", "-rptk", type_], timeout,
                env={"DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}, name="avahi-browse",
                reactor=self._reactor)
        return d.addCallback(lambda result: parse_avahi_browse(result.check().stdout))

    def _cleanup(self, code: int) -> int:
        pidfile = self.workdir / "dbus.pid"
        if self.dbus and pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        if self._bus_dir is not None:
            shutil.rmtree(self._bus_dir, ignore_errors=True)
        if self._owned_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code


#: A system bus for one avahi-daemon and its clients, open to everyone in
#: the namespace (the test runs as root anyway).
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@dataclass(frozen=True)
class AvahiBrowsed:
    """
    One resolved entry of C{avahi-browse -rp}: where avahi saw it and what
    it resolved to.
    """

    interface: str
    protocol: str
    name: str
    type: str
    domain: str
    host: str
    address: str
    port: int
    txt: tuple[str, ...]


def _avahi_unescape(text: str) -> str:
    """
    avahi's parsable output escapes bytes as C{\\DDD} (decimal).
    """
    raw = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1))), text)
    return raw.encode("latin-1").decode("utf-8", "replace")


def parse_avahi_browse(text: str) -> list[AvahiBrowsed]:
    """
    The resolved (C{=}) lines of C{avahi-browse -rp} output, sorted.
    """
    out = []
    for line in text.splitlines():
        fields = line.split(";")
        if fields[0] != "=" or len(fields) < 10:
            continue
        txt = tuple(t[1:-1] for t in re.findall(r'"(?:[^"\\]|\\.)*"', ";".join(fields[9:])))
        out.append(AvahiBrowsed(
            fields[1], fields[2], _avahi_unescape(fields[3]), fields[4], fields[5],
            fields[6], fields[7], int(fields[8]), txt,
        ))
    return sorted(out, key=lambda e: (e.interface, e.name, e.address))
