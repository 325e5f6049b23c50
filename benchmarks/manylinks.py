# -*- test-case-name: tests.test_benchmarks -*-
"""
The many-link benchmark's parts that L{benchmarks.run} drives it with:
the links added beside C{tests.netns.Topology}'s (late ones, plugged in
after start; the host ends' link-local addresses), its checks and its
report lines.  The responder's side is L{benchmarks.scale}'s
C{interfaces} (over IPv6 with L{benchmarks.scale_ipv6}).
"""

from __future__ import annotations

from tests.netns import Topology, ip


#: What issue 13 asks of a 240-link host: every link answering within 2 s
#: of start, and 8 links plugged in later answering within 2 s.
LINK_TARGETS = {"start_s": 2.0, "late_s": 2.0}


def add_unplugged_link(topo: Topology, client: str, host_if: str, octet: int, ipv6: bool = True) -> dict:
    """
    A link like C{Topology.add_link}'s (10.N.0.1 on the host, 10.N.0.2 in
    the client's namespace, which is up), but with the host's end left
    down: present with its address from the start, not selected until it
    is plugged in (C{ip link set up}).  With C{ipv6}, also as
    C{Topology.add_ipv6}'s (C{fd00:N::1} and C{::2}, C{nodad}: a link
    without carrier would hold a tentative address until plugged in).
    """
    client_ns = f"{topo.host_ns[:-1]}{client}"
    ip("netns", "add", client_ns)
    topo.namespaces.append(client_ns)
    ip("link", "set", "lo", "up", ns=client_ns)
    ip("link", "add", host_if, "netns", topo.host_ns, "type", "veth",
       "peer", "name", "eth0", "netns", client_ns)
    host_ip, client_ip = f"10.{octet}.0.1", f"10.{octet}.0.2"
    host_ip6, client_ip6 = f"fd00:{octet}::1", f"fd00:{octet}::2"
    ip("addr", "add", f"{host_ip}/24", "dev", host_if, ns=topo.host_ns)
    ip("addr", "add", f"{client_ip}/24", "dev", "eth0", ns=client_ns)
    if ipv6:
        ip("-6", "addr", "add", f"{host_ip6}/64", "dev", host_if, "nodad", ns=topo.host_ns)
        ip("-6", "addr", "add", f"{client_ip6}/64", "dev", "eth0", "nodad", ns=client_ns)
    ip("link", "set", "eth0", "up", ns=client_ns)
    ip("route", "add", "224.0.0.0/4", "dev", "eth0", ns=client_ns)
    return {"host_if": host_if, "host_ip": host_ip, "client_ns": client_ns, "client_ip": client_ip,
            "late": True, **({"host_ip6": host_ip6, "client_ip6": client_ip6} if ipv6 else {})}


def host_link_locals(topo: Topology, links: list[dict]) -> None:
    """
    Set each link's C{host_ll}: the host end's fe80:: address now, or (a
    late link, down, without one yet) the one the kernel will derive from
    its MAC, checked against the links that have theirs.
    """
    from benchmarks.scale_ipv6 import eui64_link_local

    have: dict[str, str] = {}
    for line in ip("-6", "-o", "addr", "show", "scope", "link", ns=topo.host_ns).splitlines():
        fields = line.split()
        have[fields[1]] = fields[fields.index("inet6") + 1].split("/")[0]
    macs = {}
    for line in ip("-o", "link", "show", ns=topo.host_ns).splitlines():
        fields = line.split()
        macs[fields[1].rstrip(":").split("@")[0]] = fields[fields.index("link/ether") + 1] if "link/ether" in fields else ""
    for l in links:
        l["host_ll"] = have.get(l["host_if"]) or eui64_link_local(macs[l["host_if"]])
        if l["host_if"] in have and eui64_link_local(macs[l["host_if"]]) != have[l["host_if"]]:
            raise RuntimeError(f"{l['host_if']}'s link-local {have[l['host_if']]} is not its EUI-64 one")


def link_checks(i: dict) -> list[str]:
    """
    The many-link benchmark's failed checks (L{benchmarks.run.failures}):
    every link selected with one port each, one correct answer per
    legacy query, every link answering after start and after being
    plugged in; over IPv6 too when the links had it (one IPv6 port per
    link, two sockets on 5353 per link, AAAA answers).
    """
    out: list[str] = []
    if not i["selected_all_links"] or i["interfaces_selected"] != i["links"]:
        out.append(f"interfaces: {i['interfaces_selected']} of {i['links']} links selected")
    if i["ports"] != i["links"]:
        out.append(f"interfaces: {i['ports']} ports for {i['links']} links")
    out.extend(_link_failures(i, "interfaces"))
    six = i.get("ipv6")
    if six:
        if six["ports"] != i["links"]:
            out.append(f"interfaces: {six['ports']} IPv6 ports for {i['links']} links")
        if i["udp_5353_sockets"] != 2 * i["links"]:
            out.append(f"interfaces: {i['udp_5353_sockets']} UDP sockets on 5353 for {i['links']} "
                       f"dual-stack links (one IPv4 and one IPv6 port each)")
        out.extend(_link_failures(six, "interfaces (IPv6)", " AAAA"))
    return out


def _link_failures(i: dict, label: str, question: str = "") -> list[str]:
    """
    The many-link checks of one family: every legacy question (multicast
    and unicast) answered correctly, every link answering after start and
    after being plugged in.
    """
    out = []
    for kind in ("multicast_legacy", "unicast_legacy"):
        q = i[kind]
        if q["correct"] != q["asked"] or q["unanswered"] or q["wrong"]:
            out.append(
                f"{label}: {kind}{question}: {q['correct']}/{q['asked']} correct, unanswered "
                f"{q['unanswered'] or 'none'}, wrong {q['wrong'] or 'none'}"
            )
    for kind, what in (("answering_after_start", "after start"), ("late", "plugged in later")):
        a = i.get(kind)
        if a and (a["unanswered"] or a["wrong"]):
            out.append(
                f"{label}: links {what}: {a['answered']}/{a['links']} answered, unanswered "
                f"{a['unanswered'] or 'none'}, {a['wrong']} wrong answer(s)"
                + (f", first wrong {a['first_wrong']}" if a.get("first_wrong") else "")
            )
    return out


def report_lines(i: dict) -> list[str]:
    """
    The many-link benchmark's part of L{benchmarks.run.report}.
    """
    lines: list[str] = []
    lines.extend(_interfaces_lines(i, f"Scale: {i['links']} interfaces (topology built in {i['topology_build_s']:.1f} s)"))
    if "baseline" in i:
        lines.extend(_interfaces_lines(i["baseline"], "  baseline:", brief=True))
    if "avahi" in i:
        lines.append("  avahi-daemon (igmp_max_memberships raised to 1024), timed the same way:")
        a, late = i["avahi"]["answering_after_start"], i["avahi"].get("late")
        lines.append(f"    every link answering from start: {a['answered']}/{a['links']}, first {seconds(a['first_s'])}, "
                     f"median {seconds(a['median_s'])}, all {seconds(a['all_s'])}")
        if late:
            lines.append(f"    {late['links']} links plugged in later: {late['answered']}/{late['links']} answering, "
                         f"first {seconds(late['first_s'])}, all {seconds(late['all_s'])}")
    return lines


def _interfaces_lines(i: dict, title: str, brief: bool = False) -> list[str]:
    ind = "    " if brief else "  "
    out = [title]
    out.append(f"{ind}startService {i['start_service_s'] * 1000:.0f} ms; host name claimed on every "
               f"interface after {i['host_claimed_s']:.2f} s")
    a = i.get("answering_after_start")
    if a:
        out.append(f"{ind}every link answering (legacy A, each asked every {a['interval_s']:.2f} s from start): {a['answered']}/{a['links']}, "
                   f"first {seconds(a['first_s'])}, median {seconds(a['median_s'])}, all {seconds(a['all_s'])}"
                   + target_note(a["all_s"], LINK_TARGETS["start_s"]))
    out.append(f"{ind}{i['interfaces_selected']} interfaces selected (all links: {i['selected_all_links']}), "
               f"{i['ports']} ports, {i['udp_5353_sockets']} UDP sockets on 5353, "
               f"{i['sockets_opened']} sockets opened in all; RSS {i['rss_mb']:.1f} MB")
    for kind in ("multicast_legacy", "unicast_legacy"):
        q = i[kind]
        out.append(f"{ind}legacy A query on each link ({kind.split('_')[0]}): {q['correct']}/{q['asked']} "
                   f"correct, all answered within {millis(q['all_answered_ms'])}"
                   + (f"; unanswered {q['unanswered']}" if q["unanswered"] else "")
                   + (f"; wrong {q['wrong']}" if q["wrong"] else ""))
    late = i.get("late")
    if late:
        out.append(f"{ind}{late['links']} links plugged in later (ip link set up, one batch): "
                   f"{late['answered']}/{late['links']} answering, first {seconds(late['first_s'])}, "
                   f"all {seconds(late['all_s'])}" + target_note(late["all_s"], LINK_TARGETS["late_s"]))
        out.append(f"{ind}  ports open after {seconds(late.get('ports_open_s'))}, host name claimed after "
                   f"{seconds(late.get('claimed_s'))}; {late.get('enumerations', '?')} enumeration(s), "
                   f"{late['ports']} ports now")
    if i.get("ipv6"):
        out.extend(_ipv6_lines(i["ipv6"], ind))
    if i.get("rcvbuf_errors") is not None:
        out.append(f"{ind}UDP datagrams the kernel dropped for a full receive buffer in the whole run: "
                   f"{i['rcvbuf_errors']['ipv4']} IPv4, {i['rcvbuf_errors']['ipv6']} IPv6")
    if i.get("enumerations") is not None:
        out.append(f"{ind}interface enumerations by the monitor in the whole run: {i['enumerations']}")
    out.append(f"{ind}stop: {i['stop_s']:.2f} s")
    return out


def _ipv6_lines(six: dict, ind: str) -> list[str]:
    """
    The same links over IPv6: legacy AAAA questions to ff02::fb and to the
    host's ULA, each answer holding exactly the link's ULA and link-local.
    """
    out = [f"{ind}IPv6 (ULA nodad + link-local, AAAA for bench.local): {six['ports']} IPv6 ports"]
    a = six.get("answering_after_start")
    if a:
        out.append(f"{ind}  every link answering (legacy AAAA to ff02::fb, from start): {a['answered']}/{a['links']}, "
                   f"first {seconds(a['first_s'])}, median {seconds(a['median_s'])}, all {seconds(a['all_s'])}"
                   + target_note(a["all_s"], LINK_TARGETS["start_s"]))
    for kind in ("multicast_legacy", "unicast_legacy"):
        q = six[kind]
        out.append(f"{ind}  legacy AAAA query on each link ({kind.split('_')[0]}): {q['correct']}/{q['asked']} "
                   f"correct, all answered within {millis(q['all_answered_ms'])}"
                   + (f"; unanswered {q['unanswered']}" if q["unanswered"] else "")
                   + (f"; wrong {q['wrong']}" if q["wrong"] else ""))
    if six.get("rcvbuf_errors_legacy_rounds") is not None:
        out.append(f"{ind}    (IPv6 datagrams dropped for a full receive buffer in these two rounds: "
                   f"{six['rcvbuf_errors_legacy_rounds']['ipv6']})")
    late = six.get("late")
    if late:
        out.append(f"{ind}  {late['links']} links plugged in later: {late['answered']}/{late['links']} answering "
                   f"with ULA and link-local, first {seconds(late['first_s'])}, all {seconds(late['all_s'])}"
                   + target_note(late["all_s"], LINK_TARGETS["late_s"]))
        out.append(f"{ind}    all answering with some own address (ULA; link-local still in DAD) after "
                   f"{seconds(late.get('own_all_s'))}; {late.get('partial', 0)} partial answer(s); "
                   f"{late['ports']} IPv6 ports now")
        out.append(f"{ind}    host link-locals out of DAD (kernel) after {seconds(late.get('ll_dad_done_s'))}, "
                   f"published by the responder after {seconds(late.get('ll_published_s'))}")
    return out


def seconds(v) -> str:
    return "-" if v is None else f"{v:.2f} s"


def target_note(value, goal: float) -> str:
    if value is None:
        return f"  (target <= {goal} s)  NOT ALL ANSWERED"
    return f"  (target <= {goal} s)  {'ok' if value <= goal else 'ABOVE TARGET'}"


def millis(v) -> str:
    return "-" if v is None else f"{v:.0f} ms"
