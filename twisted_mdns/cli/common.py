# -*- test-case-name: tests.test_cli_query,tests.test_cli_follow -*-
"""
What every C{python -m twisted_mdns} command shares: one-line argument
errors, the interface options and the policy they select, and L{Session},
one run of the reactor with a querier on the selected interfaces.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, NoReturn, Sequence

from twisted.internet import defer
from twisted.internet.error import ReactorNotRunning

from twisted_mdns.families import Family
from twisted_mdns.interfaces import IInterfacePolicy
from twisted_mdns.netif import NetworkInterface
from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
    ExplicitInterfacePolicy,
)

if TYPE_CHECKING:
    from twisted_mdns.querier import Querier


class UsageError(Exception):
    """
    Bad arguments: exit 2 with the message.
    """


class Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one line on stderr (exit 2), with
    no usage block: the message says what is wrong, C{--help} says the rest.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def policy_from_args(
    ifaces: Sequence[str] = (),
    all_ifaces: bool = False,
    exclude: Sequence[str] = (),
    families: Family = Family.BOTH,
) -> IInterfacePolicy:
    """
    The policy the common options ask for: C{--iface} (repeatable) wins,
    then C{--all}, else the default; C{--exclude-iface} narrows any of them;
    C{families} (C{--ipv4-only} / C{--ipv6-only}) says which address
    families each link may run.
    """
    if ifaces and all_ifaces:
        raise UsageError("--iface and --all cannot be combined")
    policy: IInterfacePolicy
    if ifaces:
        policy = ExplicitInterfacePolicy(ifaces, families=families)
    elif all_ifaces:
        policy = AllInterfacesPolicy(families=families)
    else:
        policy = DefaultInterfacePolicy(families=families)
    if exclude:
        policy = ExcludingPolicy(policy, exclude)
    return policy


def families_from_args(args: argparse.Namespace) -> Family:
    """
    The address families C{--ipv4-only} / C{--ipv6-only} ask for (neither:
    both).
    """
    return Family.from_options(getattr(args, "ipv4_only", False), getattr(args, "ipv6_only", False))


def policy_for(args: argparse.Namespace) -> IInterfacePolicy:
    """
    L{policy_from_args} for parsed options.
    """
    return policy_from_args(args.iface, args.all_ifaces, args.exclude_iface, families_from_args(args))


def add_iface_options(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    """
    C{--iface}, C{--all}, C{--exclude-iface}, C{--ipv4-only} /
    C{--ipv6-only} (and C{--json}).
    """
    parser.add_argument(
        "--iface", action="append", default=[], metavar="NAME|ADDRESS|INDEX",
        help="run on this interface (repeatable); default: the safe default policy",
    )
    parser.add_argument(
        "--all", dest="all_ifaces", action="store_true",
        help="every up, multicast interface with an address of the families in use, virtual ones included",
    )
    parser.add_argument(
        "--exclude-iface", action="append", default=[], metavar="NAME|ADDRESS|INDEX",
        help="never run on this interface (repeatable)",
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "--ipv4-only", action="store_true",
        help="use IPv4 only (default: IPv4 and IPv6, each where a link has addresses)",
    )
    family.add_argument("--ipv6-only", action="store_true", help="use IPv6 only")
    if json_option:
        parser.add_argument("--json", action="store_true", help="one JSON object per line")


def positive_seconds(text: str) -> float:
    """
    argparse type for C{--timeout}: a positive, finite number of seconds.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: must be more than 0 seconds")
    return value


def add_query_options(parser: argparse.ArgumentParser) -> None:
    """
    The interface options plus C{--timeout} and C{--verbose}.
    """
    add_iface_options(parser)
    parser.add_argument(
        "--timeout", type=positive_seconds, default=3.0, metavar="SECONDS",
        help="how long to listen (default: 3)",
    )
    add_verbose_option(parser)


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens to stderr",
    )


def selected_interfaces(args: argparse.Namespace) -> list[NetworkInterface]:
    """
    The interfaces the options select, or exit 2 with the reason.
    """
    from twisted_mdns.netif import SystemInterfaceEnumerator

    selection = policy_for(args).select(SystemInterfaceEnumerator().interfaces())
    selection.raise_for_errors()
    if not selection.selected:
        reasons = "; ".join(f"{i.name}: {why}" for i, why in selection.excluded)
        raise UsageError(
            "no interface to run mDNS on"
            + (f" ({reasons})" if reasons else "")
            + "; see 'python -m twisted_mdns interfaces'"
        )
    return list(selection.selected)


def log_to_stderr(verbose: bool) -> None:
    """
    With C{--verbose}, send every log event to stderr.
    """
    if verbose:
        from twisted.logger import globalLogBeginner, textFileLogObserver

        globalLogBeginner.beginLoggingTo(
            [textFileLogObserver(sys.stderr)], redirectStandardIO=False
        )


def stop_reactor(reactor: Any) -> None:
    """
    Stop the reactor unless it is already stopping.
    """
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


#: What a L{Session} runs: C{work(querier, reactor)}, returning the status.
Work = Callable[["Querier", Any], Awaitable[int]]


class Session:
    """
    One run of the reactor for C{browse} or C{resolve}: open the transport
    on the selected interfaces, run C{work(querier, reactor)} (a coroutine
    function that returns the exit status), close everything, stop the
    reactor.

    SIGINT and SIGTERM cancel C{work} and still close everything before the
    reactor stops; the status is then C{interrupted_status}.  Whatever
    C{work} collected is printed by the caller after the reactor stopped,
    so an interrupted run still prints what it found.
    """

    def __init__(
        self,
        interfaces: Sequence[NetworkInterface],
        work: Work,
        verbose: bool,
        interrupted_status: int = 1,
        families: Family = Family.BOTH,
    ) -> None:
        self.interfaces = list(interfaces)
        self.families = families
        self.work = work
        self.verbose = verbose
        self.interrupted_status = interrupted_status
        self.status: int | None = None
        self.error: str | None = None
        self._running: defer.Deferred[None] | None = None

    def run(self) -> int:
        from twisted.internet import reactor

        from twisted_mdns.clock import use_monotonic_time

        log_to_stderr(self.verbose)
        # Our own process: wall-clock steps must not stall the timeouts.
        use_monotonic_time(reactor)
        reactor.callWhenRunning(self._start, reactor)
        reactor.addSystemEventTrigger("before", "shutdown", self._interrupted)
        reactor.run()
        if self.error is not None:
            print(f"error: {self.error}", file=sys.stderr)
            return 2
        return 1 if self.status is None else self.status

    def _interrupted(self) -> defer.Deferred[None] | None:
        """
        Before the reactor stops (a signal, or the work's end): cancel the
        work if it still runs, and let shutdown wait for the clean-up.
        """
        running = self._running
        if running is None or running.called:
            return None
        finished: defer.Deferred[None] = defer.Deferred()
        running.addBoth(lambda _: finished.callback(None))
        running.cancel()
        return finished

    def _start(self, reactor: Any) -> None:
        from twisted_mdns.protocol import MDNSProtocol
        from twisted_mdns.querier import Querier
        from twisted_mdns.transport import InterfaceTransport

        protocol = MDNSProtocol()
        transport = InterfaceTransport(protocol, reactor, families=self.families)
        querier = Querier(transport, reactor)
        protocol.handlers.append(querier)

        async def session() -> None:
            try:
                transport.apply(self.interfaces)
                querier.interfaces_changed()
                if not transport.interfaces:
                    self.error = (
                        "cannot open port 5353 on "
                        + ", ".join(i.name for i in self.interfaces)
                        + " (use --verbose for the reason)"
                    )
                    return
                self.status = await self.work(querier, reactor)
            except defer.CancelledError:
                self.status = self.interrupted_status
            except Exception as e:  # never a traceback for the user
                self.error = f"{type(e).__name__}: {e}"
            finally:
                querier.stop()
                await transport.close()

        self._running = defer.ensureDeferred(session())
        self._running.addBoth(lambda _: stop_reactor(reactor))


def sleep(reactor: Any, seconds: float) -> defer.Deferred[None]:
    """
    A Deferred firing after C{seconds} (cancellable).
    """
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


def forever() -> defer.Deferred[None]:
    """
    A Deferred that fires only when cancelled (C{--follow} until a signal).
    """
    return defer.Deferred()
