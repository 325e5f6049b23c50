"""
Tests for L{twisted_mdns.naming}: one validator per kind of name, the same
for what we publish and what we look for.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.querier_support import ETH0, HTTP, FakeTransport
from twisted_mdns import naming
from twisted_mdns.querier import Querier, parse_host_name, parse_instance_name, parse_service_type
from twisted_mdns.records import ServiceInfo


class NameTests(unittest.TestCase):
    def test_parse_service_type(self) -> None:
        self.assertEqual(parse_service_type("_http._tcp.local.").text, "_http._tcp")
        self.assertEqual(parse_service_type("_HTTP._TCP").ptr_name, (b"_http", b"_tcp", b"local"))

    def test_parse_host_name(self) -> None:
        self.assertEqual(parse_host_name("radiod"), (b"radiod", b"local"))
        self.assertEqual(parse_host_name("radiod.local."), (b"radiod", b"local"))
        self.assertRaises(ValueError, parse_host_name, "x" * 64)

    def test_parse_instance_name(self) -> None:
        self.assertEqual(parse_instance_name("Lab v1.2", "_http._tcp")[0], "Lab v1.2")
        self.assertEqual(parse_instance_name("Lab v1.2._http._tcp.local")[0], "Lab v1.2")
        self.assertEqual(parse_instance_name("Lab._http._tcp.local", "_http._tcp")[0], "Lab")
        self.assertRaises(ValueError, parse_instance_name, "Lab")


class ServiceTypeTests(unittest.TestCase):
    """
    RFC 6763 §7: C{_name._tcp} / C{_name._udp}, the name 1 to 15 letters,
    digits or hyphens, case-insensitive.
    """

    def test_forms_accepted(self) -> None:
        for text in ("_http._tcp", "_http._tcp.local", "_http._tcp.local.", " _http._tcp ",
                     "_HTTP._TCP", "_Http._Tcp.LOCAL"):
            stype = naming.service_type(text)
            self.assertEqual(
                (stype.text, stype.ptr_name, stype.base, stype.base_text),
                ("_http._tcp", HTTP, HTTP, "_http._tcp"), text,
            )
        self.assertEqual(naming.service_type("_sip._udp").text, "_sip._udp")

    def test_service_name_length(self) -> None:
        self.assertEqual(naming.service_type("_" + "a" * 15 + "._tcp").text, "_" + "a" * 15 + "._tcp")
        for bad in ("_" + "a" * 16 + "._tcp", "_._tcp"):
            self.assertRaises(ValueError, naming.service_type, bad)

    def test_service_name_characters(self) -> None:
        self.assertEqual(naming.service_type("_dns-sd._udp").text, "_dns-sd._udp")
        self.assertEqual(naming.service_type("_x2._tcp").text, "_x2._tcp")
        for bad in ("_my_web._tcp", "_web page._tcp", "_wéb._tcp", "_web!._tcp"):
            self.assertRaises(ValueError, naming.service_type, bad)

    def test_browsing_also_accepts_underscores(self) -> None:
        """
        Types seen on real networks hold underscores; browsing takes them,
        publishing (strict, RFC 6763 §7) does not, and nothing else differs.
        """
        self.assertEqual(naming.service_type("_nvstream_dbd._TCP", strict=False).text, "_nvstream_dbd._tcp")
        self.assertRaises(ValueError, naming.service_type, "_nvstream_dbd._tcp")
        for bad in ("_web page._tcp", "_wéb._tcp", "_web!._tcp", "_" + "a" * 16 + "._tcp", "_a_b._xyz"):
            self.assertRaises(ValueError, naming.service_type, bad, strict=False)

    def test_shape(self) -> None:
        for bad in ("", "   ", ".", "http", "_http", "http._tcp", "_http._xyz", "_http._tcp.com",
                    "_a._b._tcp", "_http._tcp.local.local", None, 7):
            self.assertRaises(ValueError, naming.service_type, bad)

    def test_subtype(self) -> None:
        stype = naming.service_type("_printer._SUB._HTTP._tcp.local")
        self.assertEqual(stype.text, "_printer._sub._http._tcp")
        self.assertEqual(stype.ptr_name, (b"_printer", b"_sub") + HTTP)
        self.assertEqual(stype.base, HTTP)
        self.assertRaises(ValueError, naming.service_type, "_printer._sub._http._tcp", False)
        self.assertRaises(ValueError, naming.service_type, "x" * 64 + "._sub._http._tcp")


class SubtypeTests(unittest.TestCase):
    """
    RFC 6763 §7.1: one label of 1 to 63 bytes.
    """

    def test_rules(self) -> None:
        self.assertEqual(naming.subtype_label("_printer"), b"_printer")
        self.assertEqual(naming.subtype_label("printer"), b"printer")
        self.assertEqual(naming.subtype_label("x" * 63), b"x" * 63)
        for bad in ("", "x" * 64, "a.b", "é" * 32):
            self.assertRaises(ValueError, naming.subtype_label, bad)


class InstanceNameTests(unittest.TestCase):
    """
    RFC 6763 §4.1.1: 1 to 63 bytes of UTF-8, anything but control
    characters.
    """

    def test_label(self) -> None:
        for good in ("My Web", "Lab v1.2", "é" * 31, "x" * 63, "Printer (2)", "a\\b"):
            self.assertEqual(naming.instance_label(good), good)
        for bad in ("", "x" * 64, "é" * 32, "tab\there", "nul\0", "del\x7f", None):
            self.assertRaises(ValueError, naming.instance_label, bad)

    def test_split(self) -> None:
        self.assertEqual(naming.instance_name("Lab v1.2", "_http._tcp")[0], "Lab v1.2")
        self.assertEqual(naming.instance_name("Lab v1.2._http._tcp.local")[0], "Lab v1.2")
        self.assertEqual(naming.instance_name("Lab._HTTP._TCP.local.")[1].text, "_http._tcp")
        self.assertEqual(naming.instance_name("Lab._HTTP._tcp.local", "_http._tcp")[0], "Lab")
        for bad in ("Lab", "", "._http._tcp", "x" * 64 + "._http._tcp.local"):
            self.assertRaises(ValueError, naming.instance_name, bad)
        self.assertRaises(ValueError, naming.instance_name, "Lab", "_http")


class HostNameTests(unittest.TestCase):
    """
    RFC 6762 §16 / RFC 1035 §2.3.4: labels of 1 to 63 bytes, the name at
    most 255 bytes, in C{.local}.
    """

    def test_forms(self) -> None:
        for text in ("radiod", "radiod.local", "radiod.local.", "RadioD.LOCAL", " radiod "):
            self.assertEqual(naming.host_name(text)[:1], (text.strip().split(".")[0].encode(),))
            self.assertEqual(naming.host_name(text)[1:], (b"LOCAL",) if "LOCAL" in text else (b"local",))
        self.assertEqual(naming.host_name("büro"), ("büro".encode(), b"local"))
        self.assertEqual(naming.host_name("a.b"), (b"a", b"b", b"local"))

    def test_label_length(self) -> None:
        self.assertEqual(naming.host_name("x" * 63), (b"x" * 63, b"local"))
        self.assertRaises(ValueError, naming.host_name, "x" * 64)
        self.assertRaises(ValueError, naming.host_name, "é" * 32)

    def test_name_length(self) -> None:
        # Wire length: each label + its length byte, + the root: 255 at most.
        fits = ".".join(["x" * 61] * 4)  # 4 * 62 + 6 (local) + 1 = 255
        self.assertEqual(len(naming.host_name(fits)), 5)
        self.assertRaises(ValueError, naming.host_name, fits + "x")

    def test_bad(self) -> None:
        for bad in ("", ".", "a..b", ".a", "tab\tname", None):
            self.assertRaises(ValueError, naming.host_name, bad)


class OneValidatorTests(unittest.TestCase):
    """
    What the responder publishes and what the querier looks for pass the
    same checks: a name accepted by one is accepted by the other.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.querier = Querier(FakeTransport(ETH0), self.clock)
        self.addCleanup(self.querier.stop)

    def browse_accepts(self, text: str) -> bool:
        try:
            self.querier.browse(text, lambda *a: None).stop()
        except ValueError:
            return False
        return True

    def publish_accepts(self, text: str) -> bool:
        try:
            ServiceInfo("Web", text, 80)
        except ValueError:
            return False
        return True

    def test_service_types(self) -> None:
        for text in ("_http._tcp", "_http._TCP", "_HTTP._tcp.local.", "_http._tcp.local",
                     "_" + "a" * 16 + "._tcp", "_http._xyz", "http._tcp", ""):
            self.assertEqual(self.browse_accepts(text), self.publish_accepts(text), text)
        self.assertTrue(self.publish_accepts("_http._TCP"))
        # The one difference, on purpose: underscores are browsed, not published.
        self.assertTrue(self.browse_accepts("_my_web._tcp"))
        self.assertFalse(self.publish_accepts("_my_web._tcp"))

    def test_published_type_normalised(self) -> None:
        info = ServiceInfo("Web", "_HTTP._TCP.local", 80)
        self.assertEqual(info.type, "_http._tcp")
        self.assertEqual(info.type_name, HTTP)
        self.assertEqual(info, ServiceInfo("Web", "_http._tcp", 80))

    def test_instance_names(self) -> None:
        for instance in ("Web", "x" * 63, "x" * 64, "tab\there"):
            try:
                ServiceInfo(instance, "_http._tcp", 80)
                published = True
            except ValueError:
                published = False
            try:
                self.querier.resolve_service(instance, "_http._tcp", timeout=0.1)
                resolved = True
            except ValueError:
                resolved = False
            self.assertEqual(published, resolved, instance)

    def test_host_names(self) -> None:
        for host in ("peer", "peer.local", "x" * 64, "a..b", ".".join(["x" * 61] * 4) + "x"):
            try:
                ServiceInfo("Web", "_http._tcp", 80, host=host)
                published = True
            except ValueError:
                published = False
            try:
                self.querier.resolve_host(host, timeout=0.1)
                resolved = True
            except ValueError:
                resolved = False
            self.assertEqual(published, resolved, host)
            self.assertEqual(published, host in ("peer", "peer.local"), host)

    def test_subtypes(self) -> None:
        for sub in ("_printer", "printer", "x" * 64, "a.b"):
            try:
                ServiceInfo("Web", "_http._tcp", 80, subtypes=(sub,))
                published = True
            except ValueError:
                published = False
            self.assertEqual(published, self.browse_accepts(f"{sub}._sub._http._tcp"), sub)
