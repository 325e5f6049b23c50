# -*- test-case-name: tests.test_message,tests.test_hostile -*-
"""
Protocol constants of multicast DNS, in one place.

Every number here is fixed by a standard; the comment beside each names the
rule.  Modules import these names instead of repeating literals, so that a
reader meeting C{FLAG_TC} or C{RATE_LIMIT} finds its reason here.

Section references: "RFC 6762 §N" is Multicast DNS, "RFC 6763 §N" is DNS-Based
Service Discovery, "RFC 1035 §N" the DNS itself.
"""

from __future__ import annotations

#: RFC 6762 §3: the mDNS port, shared by every responder on the host (§15).
MDNS_PORT = 5353
#: RFC 6762 §3: the IPv4 link-local multicast group.
MDNS_GROUP = "224.0.0.251"
#: RFC 6762 §3: the IPv6 link-local multicast group.
MDNS_GROUP6 = "ff02::fb"

#: RFC 1035 §3.2.4: class IN.
CLASS_IN = 1
#: RFC 6762 §5.4 / §10.2: the top bit of the class field is the
#: unicast-response bit on questions and the cache-flush bit on records.
TOP_BIT = 0x8000
#: The class proper, with the top bit masked off.
CLASS_MASK = 0x7FFF

#: RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891, RFC 4034: record types.
TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_NSEC = 47
TYPE_ANY = 255

#: RFC 1035 §4.1.1: header flag bits.
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
OPCODE_MASK = 0x7800
RCODE_MASK = 0x000F

#: RFC 6762 §17: never more than 9000 bytes, whatever the MTU.
MAX_PACKET = 9000
#: IPv4 (20) + UDP (8) headers, subtracted from the MTU (RFC 6762 §17).
IP_UDP_OVERHEAD = 28
#: IPv6 (40) + UDP (8) headers.
IPV6_UDP_OVERHEAD = 48

#: RFC 6762 §10: TTL of records that carry a host name (A, AAAA, SRV...).
HOST_TTL = 120
#: RFC 6762 §10: TTL of every other record.
OTHER_TTL = 4500
#: RFC 6762 §6.7: at most 10 s in a reply to a legacy (non-5353) querier.
LEGACY_TTL = 10
#: RFC 6762 §11: IP TTL / hop limit of every packet we send.
IP_TTL = 255

#: RFC 1035 §2.3.4: a label is at most 63 bytes.
MAX_LABEL = 63
#: RFC 1035 §2.3.4 / RFC 6762 §16: a name is at most 255 bytes on the wire.
MAX_NAME = 255
#: RFC 6763 §7 (RFC 6335 §5.1): a service name is 1 to 15 characters.
MAX_SERVICE_NAME = 15
#: avahi.service(5): in a C{<name replace-wildcards="yes">}, our host name
#: (L{twisted_mdns.records.ServiceInfo.name_template}).
HOST_WILDCARD = "%h"
#: RFC 1035 §4.2.1: the UDP payload a client takes without EDNS (RFC 6891).
DNS_UDP_SIZE = 512
#: RFC 6891 §6.2.5: senders SHOULD NOT offer (so we never honour) more.
DNS_MAX_EDNS_SIZE = 4096
#: RFC 1035 §4.1.1: response codes.
RCODE_FORMERR = 1
#: RFC 8766 §5.5.1: a Discovery Proxy answering plain (non-Push) queries
#: "SHOULD ... [use] TTLs ... of ten seconds or less".
PROXY_TTL = 10
#: RFC 8766 §5.6: a Discovery Proxy waits at most six seconds for mDNS
#: answers before answering its client.
PROXY_MAX_WAIT = 6.0
#: RFC 6762 §5.2: the same question is not repeated on a link within one
#: second.
QUESTION_INTERVAL = 1.0

# -- responder timing (RFC 6762 §6, §7, §8, §9) ----------------------------

#: RFC 6762 §8.1: probes 250 ms apart, and a random 0-250 ms wait before the
#: first.
PROBE_INTERVAL = 0.250
#: RFC 6762 §8.1: three probes.
PROBE_COUNT = 3
#: RFC 6762 §8.2: the loser of a simultaneous-probe tie-break waits 1 s.
TIEBREAK_WAIT = 1.0
#: RFC 6762 §8.1: 15 conflicts within 10 s slow probing to one per 5 s.
CONFLICT_WINDOW = 10.0
CONFLICT_LIMIT = 15
CONFLICT_BACKOFF = 5.0
#: RFC 6762 §8.3: at least two announcements, one second apart.
ANNOUNCE_COUNT = 2
ANNOUNCE_INTERVAL = 1.0
#: RFC 6762 §6: a record is multicast at most once per second per link...
RATE_LIMIT = 1.0
#: ...or once per 250 ms when defending a name against a probe.
PROBE_DEFENSE_RATE_LIMIT = 0.250
#: RFC 6762 §6: answers with shared records wait 20-120 ms.
SHARED_DELAY = (0.020, 0.120)
#: RFC 6762 §7.2: a truncated query waits 400-500 ms for its known answers.
TRUNCATED_WAIT = (0.400, 0.500)
