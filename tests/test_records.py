"""
L{twisted_mdns.records}: what we publish, through its public seams: TXT
encoding (RFC 6763 §6), service values and names, renaming, reverse names,
the host and service record sets (RFC 6762 §6.2, §10) and the per-interface
view that answers and builds NSEC records (§6.1, §12).
"""

from __future__ import annotations

from twisted.trial import unittest

from twisted_mdns.constants import HOST_TTL, OTHER_TTL
from twisted_mdns.message import (
    TYPE_A,
    TYPE_NSEC,
    TYPE_PTR,
    TYPE_SRV,
    TYPE_TXT,
    a_record,
    join_name,
    name_from_text,
    name_key,
    nsec_types,
    ptr_target,
    srv_target,
    txt_strings,
)
from twisted_mdns.records import (
    SERVICES_META,
    InterfaceRecords,
    ServiceInfo,
    decode_txt,
    encode_txt,
    host_name,
    host_records,
    next_host_name,
    next_service_name,
    reverse_name,
    service_records,
)
from twisted_mdns.testing import make_interface

HOST = name_from_text("lab.local")
HTTP = name_from_text("_http._tcp.local")


class EncodeTxtTests(unittest.TestCase):
    """
    RFC 6763 §6: key=value strings, keys printable US-ASCII without '=',
    unique case-insensitively, each string at most 255 bytes.
    """

    def test_values(self) -> None:
        self.assertEqual(
            encode_txt({"path": "/", "flag": True, "none": None, "empty": "", "raw": b"\x00\xff", "n": 3}),
            (b"path=/", b"flag", b"none", b"empty=", b"raw=\x00\xff", b"n=3"),
        )

    def test_false_is_absent(self) -> None:
        # §6.4: an absent attribute is false.
        self.assertEqual(encode_txt([("a", False), ("b", "1")]), (b"b=1",))

    def test_order_kept(self) -> None:
        self.assertEqual(encode_txt([("z", "1"), ("a", "2")]), (b"z=1", b"a=2"))

    def test_utf8_value(self) -> None:
        self.assertEqual(encode_txt({"room": "Büro"}), ("room=Büro".encode(),))

    def test_bad_keys(self) -> None:
        for key, why in (("", "empty"), ("a=b", "'='"), ("kéy", "US-ASCII"), ("tab\t", "US-ASCII")):
            with self.subTest(key):
                e = self.assertRaises(ValueError, encode_txt, {key: "1"})
                self.assertIn(why, str(e))

    def test_duplicate_keys_case_insensitive(self) -> None:
        e = self.assertRaises(ValueError, encode_txt, [("Path", "/"), ("path", "/x")])
        self.assertIn("twice", str(e))

    def test_entry_length(self) -> None:
        encode_txt({"k": "v" * 253})  # 255 bytes: fine
        e = self.assertRaises(ValueError, encode_txt, {"k": "v" * 254})
        self.assertIn("256 bytes", str(e))


class DecodeTxtTests(unittest.TestCase):
    def test_decode(self) -> None:
        self.assertEqual(
            decode_txt([b"path=/", b"flag", b"empty=", b"eq=a=b"]),
            {"path": b"/", "flag": None, "empty": b"", "eq": b"a=b"},
        )

    def test_first_occurrence_wins(self) -> None:
        # §6.4, case-insensitively.
        self.assertEqual(decode_txt([b"a=1", b"A=2", b"a=3"]), {"a": b"1"})

    def test_empty_strings_and_keys_skipped(self) -> None:
        self.assertEqual(decode_txt([b"", b"=value", b"k=v"]), {"k": b"v"})

    def test_roundtrip(self) -> None:
        txt = [("path", "/"), ("flag", None), ("n", "")]
        self.assertEqual(decode_txt(encode_txt(txt)), {"path": b"/", "flag": None, "n": b""})


class ServiceInfoTests(unittest.TestCase):
    def test_names(self) -> None:
        svc = ServiceInfo("My Web. (2)", "_http._tcp", 8080, {"path": "/"}, subtypes=("_printer",))
        self.assertEqual(svc.type_name, HTTP)
        self.assertEqual(svc.name, join_name("My Web. (2)", HTTP))
        self.assertEqual(svc.key, name_key(svc.name))
        self.assertEqual(svc.subtype_names(), [join_name("_printer", "_sub", HTTP)])
        self.assertEqual(svc.txt_dict, {"path": b"/"})
        self.assertEqual(svc.display(), "My Web\\. (2)._http._tcp.local.")

    def test_type_with_local(self) -> None:
        self.assertEqual(ServiceInfo("A", "_http._tcp.local", 80).type_name, HTTP)

    def test_refused(self) -> None:
        """
        A value that could not be published is refused when made (the name
        rules themselves are L{twisted_mdns.naming}'s, tested there).
        """
        for kwargs, why in (
            (dict(instance="", type="_http._tcp", port=1), "instance name"),
            (dict(instance="x" * 64, type="_http._tcp", port=1), "63 bytes"),
            (dict(instance="A", type="_http._tcp", port=70000), "0-65535"),
            (dict(instance="A", type="http._tcp", port=1), "_name._tcp"),
            (dict(instance="A", type="_http._sctp", port=1), "_name._tcp"),
            (dict(instance="A", type="_http._tcp", port=1, txt={"a=b": "1"}), "'='"),
            (dict(instance="A", type="_http._tcp", port=1, subtypes=("",)), "subtype"),
        ):
            with self.subTest(why):
                e = self.assertRaises(ValueError, ServiceInfo, **kwargs)
                self.assertIn(why, str(e))

    def test_limited_to_interfaces(self) -> None:
        eth0 = make_interface("eth0", 2, "10.0.0.5/24")
        wlan0 = make_interface("wlan0", 3, "192.168.1.5/24")
        svc = ServiceInfo("A", "_http._tcp", 80, interfaces=["eth0"])
        self.assertEqual(svc.interfaces, ("eth0",))
        self.assertTrue(svc.on_interface(eth0))
        self.assertFalse(svc.on_interface(wlan0))
        self.assertTrue(ServiceInfo("A", "_http._tcp", 80, interfaces=("192.168.1.5",)).on_interface(wlan0))
        self.assertTrue(ServiceInfo("A", "_http._tcp", 80).on_interface(wlan0))

    def test_value_changes(self) -> None:
        svc = ServiceInfo("A", "_http._tcp", 80, {"v": "1"})
        self.assertEqual(svc.renamed("B").name, join_name("B", HTTP))
        self.assertEqual(svc.with_txt({"v": "2"}).txt_strings, (b"v=2",))
        self.assertEqual(svc.txt_strings, (b"v=1",))


class RenamingTests(unittest.TestCase):
    def test_service_names(self) -> None:
        self.assertEqual(next_service_name("My Web"), "My Web (2)")
        self.assertEqual(next_service_name("My Web (2)"), "My Web (3)")
        self.assertEqual(next_service_name("Test (beta)"), "Test (beta) (2)")

    def test_service_name_stays_63_bytes(self) -> None:
        renamed = next_service_name("ü" * 31 + "x")  # 63 bytes
        self.assertLessEqual(len(renamed.encode("utf-8")), 63)
        self.assertTrue(renamed.endswith(" (2)"))
        renamed.encode("utf-8").decode("utf-8")  # no cut character

    def test_host_names(self) -> None:
        self.assertEqual(next_host_name("lab"), "lab-2")
        self.assertEqual(next_host_name("lab-2"), "lab-3")
        self.assertEqual(next_host_name("my-lab"), "my-lab-2")
        self.assertEqual(next_host_name("-5"), "-5-2")


class HostNameTests(unittest.TestCase):
    def test_local_added_once(self) -> None:
        self.assertEqual(host_name("lab"), HOST)
        self.assertEqual(host_name("lab.local"), HOST)
        self.assertEqual(host_name("lab.LOCAL"), (b"lab", b"LOCAL"))
        self.assertRaises(ValueError, host_name, "")

    def test_reverse_name(self) -> None:
        self.assertEqual(reverse_name("10.1.2.3"), name_from_text("3.2.1.10.in-addr.arpa"))
        self.assertRaises(ValueError, reverse_name, "10.1.2")


class RecordSetTests(unittest.TestCase):
    def test_host_records_are_the_interfaces_own(self) -> None:
        # RFC 6762 §6.2: every address of that interface, link-local too.
        eth0 = make_interface("eth0", 2, "10.0.0.5/24", "169.254.7.1/16")
        records = host_records(HOST, eth0)
        a = [r for r in records if r.rtype == TYPE_A]
        ptr = [r for r in records if r.rtype == TYPE_PTR]
        self.assertEqual(sorted(str(r.rdata) for r in a), ["10.0.0.5", "169.254.7.1"])
        self.assertEqual({r.name for r in ptr}, {reverse_name("10.0.0.5"), reverse_name("169.254.7.1")})
        self.assertEqual({ptr_target(r) for r in ptr}, {HOST})
        # §10: host-name records 120 s; unique, so cache-flush set.
        self.assertEqual({r.ttl for r in records}, {HOST_TTL})
        self.assertTrue(all(r.cache_flush for r in records))

    def test_service_records(self) -> None:
        svc = ServiceInfo("Web", "_http._tcp", 8080, {"path": "/"}, subtypes=("_printer",))
        unique, shared = service_records(svc, HOST)
        self.assertEqual([r.rtype for r in unique], [TYPE_SRV, TYPE_TXT])
        self.assertTrue(all(r.cache_flush for r in unique))
        srv, txt = unique
        self.assertEqual(srv_target(srv), HOST)
        self.assertEqual(srv.rdata.port, 8080)
        self.assertEqual(srv.ttl, HOST_TTL)
        self.assertEqual(txt_strings(txt), [b"path=/"])
        self.assertEqual(txt.ttl, OTHER_TTL)
        # Shared PTRs never carry cache-flush (§10.2).
        self.assertFalse(any(r.cache_flush for r in shared))
        self.assertEqual(
            [(r.name, ptr_target(r)) for r in shared],
            [(HTTP, svc.name), (join_name("_printer", "_sub", HTTP), svc.name), (SERVICES_META, HTTP)],
        )

    def test_service_on_another_host(self) -> None:
        unique, _ = service_records(ServiceInfo("Web", "_http._tcp", 80, host="printer"), HOST)
        self.assertEqual(srv_target(unique[0]), name_from_text("printer.local"))

    def test_empty_txt(self) -> None:
        unique, _ = service_records(ServiceInfo("Web", "_http._tcp", 80), HOST)
        self.assertEqual(txt_strings(unique[1]), [b""])


class InterfaceRecordsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.eth0 = make_interface("eth0", 2, "10.0.0.5/24")
        self.view = InterfaceRecords(self.eth0)
        self.svc = ServiceInfo("Web", "_http._tcp", 8080)
        for r in host_records(HOST, self.eth0):
            self.view.add(r)
        unique, shared = service_records(self.svc, HOST)
        for r in unique + shared:
            self.view.add(r)

    def test_lookup_by_type_and_any(self) -> None:
        key = name_key(name_from_text("LAB.local"))
        self.assertEqual([str(r.rdata) for r in self.view.lookup(key, TYPE_A)], ["10.0.0.5"])
        self.assertEqual(self.view.lookup(key, TYPE_TXT), [])
        self.assertEqual({r.rtype for r in self.view.lookup(self.svc.key, 255)}, {TYPE_SRV, TYPE_TXT})
        self.assertEqual(self.view.lookup(name_from_text("other.local"), TYPE_A), [])

    def test_added_once(self) -> None:
        before = len(self.view.all())
        self.view.add(a_record(HOST, "10.0.0.5", 10))  # the same record, another TTL
        self.assertEqual(len(self.view.all()), before)

    def test_nsec_for_names_we_own(self) -> None:
        # RFC 6762 §6.1: our names' NSEC lists the types they have.
        nsec = self.view.nsec_for(name_key(HOST))
        self.assertEqual(nsec.rtype, TYPE_NSEC)
        self.assertEqual(nsec_types(nsec), {TYPE_A})
        self.assertEqual(nsec.ttl, HOST_TTL)
        self.assertEqual(nsec_types(self.view.nsec_for(self.svc.key)), {TYPE_SRV, TYPE_TXT})
        # Shared names (the type PTR) are not ours alone: no NSEC.
        self.assertIsNone(self.view.nsec_for(name_key(HTTP)))
        self.assertIsNone(self.view.nsec_for(name_from_text("other.local")))

    def test_nsec_follows_additions(self) -> None:
        self.view.nsec_for(name_key(HOST))
        self.view.add(a_record(HOST, "10.0.0.6", 120))
        self.view.add(
            [r for r in host_records(HOST, make_interface("x", 9, "10.0.0.7/24")) if r.rtype == TYPE_PTR][0]
        )
        self.assertEqual(nsec_types(self.view.nsec_for(name_key(HOST))), {TYPE_A})
        self.assertEqual(len(self.view.lookup(name_key(HOST), TYPE_A)), 2)

    def test_additionals(self) -> None:
        # §12: PTR -> SRV, TXT, the target's addresses (and its NSEC).
        ptr = self.view.lookup(name_key(HTTP), TYPE_PTR)[0]
        extra = self.view.additional_for(ptr)
        self.assertEqual([r.rtype for r in extra], [TYPE_SRV, TYPE_A, TYPE_NSEC, TYPE_TXT])
        srv = self.view.lookup(self.svc.key, TYPE_SRV)[0]
        self.assertEqual([r.rtype for r in self.view.additional_for(srv)], [TYPE_A, TYPE_NSEC])
        # An A answer from a host with no IPv6 address on the link: the NSEC
        # saying so (RFC 6762 §6.1, §6.2), so nobody waits for an AAAA.
        a = self.view.lookup(name_key(HOST), TYPE_A)[0]
        extra = self.view.additional_for(a)
        self.assertEqual([r.rtype for r in extra], [TYPE_NSEC])
        self.assertEqual(nsec_types(extra[0]), {TYPE_A})

    def test_views_of_two_interfaces_do_not_mix(self) -> None:
        wlan0 = make_interface("wlan0", 3, "192.168.1.5/24")
        other = InterfaceRecords(wlan0)
        for r in host_records(HOST, wlan0):
            other.add(r)
        self.assertEqual([str(r.rdata) for r in other.lookup(name_key(HOST), TYPE_A)], ["192.168.1.5"])
        self.assertEqual([str(r.rdata) for r in self.view.lookup(name_key(HOST), TYPE_A)], ["10.0.0.5"])
