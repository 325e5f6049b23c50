"""
Independent peers judge our responder over IPv6, in namespaces: two links
(lana, lanb) with IPv4, ULA and link-local addresses; the host runs our
L{MDNSService} (host C{lab}, service C{Lab Web}).

 - python-zeroconf bound to a client's eth0 with IPv6 only (or both
   families) resolves our service to that link's IPv6 addresses only;
 - avahi-browse, against an avahi-daemon with IPv6 on in the client's
   namespace (with its own private D-Bus), resolves our service over IPv6
   to that link's addresses only.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import NamespaceTestMixin
from tests.peers import AVAHI_RUNTIME_DIR, REPO_ROOT, PeerError, require_peers, run
from tests.support import start_service
from twisted_mdns.records import ServiceInfo

WEB = ServiceInfo("Lab Web", "_http._tcp", 8080, {"path": "/"})

_ENV = {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


class DualStackPeers(NamespaceTestMixin):
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.topology.add_ipv6()
        self.host_ll = {
            c: self.topology.link_local(self.topology.host_ns, link.host_if)
            for c, link in self.topology.links.items()
        }
        self.mdns = yield start_service(self, "lab", [WEB])

    def own6(self, client: str) -> set[str]:
        return {self.topology.links[client].host_ip6, self.host_ll[client]}


class ZeroconfIPv6Tests(DualStackPeers, unittest.TestCase):
    @defer.inlineCallbacks
    def resolve(self, client: str, *extra: str) -> defer.Deferred:
        require_peers("zeroconf")
        argv = [
            sys.executable, "-m", "tests.zeroconf_resolve6", "--interface", "eth0",
            "--type", "_http._tcp", "--instance", "Lab Web", "--timeout", "6", *extra,
        ]
        result = yield run(self.topology.links[client].client_ns, argv, 20, env=_ENV, cwd=REPO_ROOT, name="zeroconf6")
        result.check()
        events = [e for e in result.json_lines() if e.get("event") == "result"]
        if not events:
            raise PeerError(f"no result: {result.stdout}\n{result.stderr}")
        return events[-1]

    @defer.inlineCallbacks
    def test_v6only_resolves_to_own_link(self):
        for client in ("a", "b"):
            event = yield self.resolve(client)
            self.assertTrue(event["found"], event)
            service = event["service"]
            self.assertEqual(service["server"], "lab.local.")
            self.assertEqual(service["port"], 8080)
            self.assertEqual(set(service["addresses_v6"]), self.own6(client))
            # A records came over IPv6 too (RFC 6762 §6.2): this link's.
            self.assertLessEqual(set(service["addresses"]), {self.topology.links[client].host_ip})

    @defer.inlineCallbacks
    def test_both_families_resolve_to_own_link(self):
        for client in ("a", "b"):
            link = self.topology.links[client]
            event = yield self.resolve(client, "--all", "--ipv4", link.client_ip)
            self.assertTrue(event["found"], event)
            service = event["service"]
            self.assertEqual(service["addresses"], [link.host_ip])
            self.assertEqual(set(service["addresses_v6"]), self.own6(client))


#: A D-Bus system bus of our own, for avahi-browse to reach the avahi-daemon
#: of the same namespace (the system bus is not ours to use).
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""

_AVAHI_CONFIG = """[server]
host-name=peer{client}
domain-name=local
use-ipv4={ipv4}
use-ipv6=yes
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
"""


class AvahiBrowseIPv6Tests(DualStackPeers, unittest.TestCase):
    """
    avahi-browse -rpt in a client namespace, through an avahi-daemon with
    IPv6 on: the IPv6 rows resolve our service to that link's addresses.
    """

    def browse_script(self, client: str, workdir: Path, ipv4: bool) -> str:
        ula = self.topology.links[client].host_ip6
        (workdir / "bus.conf").write_text(_BUS_CONFIG.format(socket=workdir / "bus"))
        (workdir / "avahi.conf").write_text(_AVAHI_CONFIG.format(client=client, ipv4="yes" if ipv4 else "no"))
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        return "\n".join([
            "set -e",
            f"mkdir -p {AVAHI_RUNTIME_DIR}",
            f"mount -t tmpfs -o size=1m,mode=0755 tmpfs {AVAHI_RUNTIME_DIR}",
            f"dbus-daemon --config-file={q(workdir / 'bus.conf')} --fork --nopidfile",
            f"export DBUS_SYSTEM_BUS_ADDRESS=unix:path={q(workdir / 'bus')}",
            f"for i in $(seq 50); do [ -S {q(workdir / 'bus')} ] && break; sleep 0.1; done",
            f"avahi-daemon -f {q(workdir / 'avahi.conf')} --no-drop-root --no-chroot --no-rlimits"
            f" --no-proc-title >{q(workdir / 'avahi.log')} 2>&1 &",
            "sleep 3",
            "avahi-browse -rptk _http._tcp",
            # An AAAA lookup and an ip6.arpa reverse lookup, over avahi.
            "avahi-resolve -6 -n lab.local || true",
            f"avahi-resolve -a {ula} || true",
            "kill %1 || true",
            # The forked dbus-daemon dies with the namespace (Topology.destroy).
        ])

    @defer.inlineCallbacks
    def browse(self, client: str, ipv4: bool = True) -> defer.Deferred:
        require_peers("avahi-daemon", "avahi-browse", "dbus-daemon")
        workdir = Path(tempfile.mkdtemp(prefix="avahi6-"))
        self.addCleanup(shutil.rmtree, workdir, True)
        script = self.browse_script(client, workdir, ipv4)
        result = yield run(self.topology.links[client].client_ns, ["sh", "-c", script], 40, name="avahi-browse")
        log = workdir / "avahi.log"
        self.assertEqual(
            result.returncode, 0,
            f"{result.stdout}\n{result.stderr}\n{log.read_text() if log.exists() else ''}",
        )
        rows = [line.split(";") for line in result.stdout.splitlines() if line.startswith("=")]
        resolved = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
        return rows, resolved

    @defer.inlineCallbacks
    def test_resolves_over_ipv6_to_own_link(self):
        for client in ("a", "b"):
            rows, resolved = yield self.browse(client)
            ours = [r for r in rows if r[3] == "Lab\\032Web"]
            v6 = [r for r in ours if r[2] == "IPv6"]
            self.assertTrue(v6, f"no IPv6 row: {rows}")
            for row in v6:
                self.assertEqual(row[1], "eth0")
                self.assertEqual(row[4], "_http._tcp")
                self.assertEqual(row[6], "lab.local")
                self.assertEqual(row[8], "8080")
            link = self.topology.links[client]
            mine = self.own6(client) | {link.host_ip}
            for row in ours:
                # avahi takes the first address record of either family.
                self.assertIn(row[7], mine, f"another link's address: {row}")
            # avahi-resolve -6 -n: an AAAA of this link; -a: the ip6.arpa PTR.
            forward = [r[1] for r in resolved if r[0] == "lab.local"]
            self.assertEqual(len(forward), 1, resolved)
            self.assertIn(forward[0], self.own6(client))
            self.assertIn([link.host_ip6, "lab.local"], resolved)

    @defer.inlineCallbacks
    def test_ipv6_only_avahi_resolves_us(self):
        """
        avahi with use-ipv4=no hears and resolves us over IPv6 only.
        """
        rows, resolved = yield self.browse("b", ipv4=False)
        ours = [r for r in rows if r[3] == "Lab\\032Web"]
        self.assertTrue(ours, rows)
        self.assertEqual({r[2] for r in ours}, {"IPv6"})
        for row in ours:
            self.assertIn(row[7], self.own6("b") | {self.topology.links["b"].host_ip})
        forward = [r[1] for r in resolved if r[0] == "lab.local"]
        self.assertEqual(len(forward), 1, resolved)
        self.assertIn(forward[0], self.own6("b"))
