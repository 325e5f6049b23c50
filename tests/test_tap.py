"""
C{twistd mdns} options: every option parsed, every bad value refused with a
one-line error naming what is wrong.
"""

from __future__ import annotations

import os
import sys

from twisted.python import usage
from twisted.python.filepath import FilePath
from twisted.trial import unittest

from twisted_mdns.families import Family
from twisted_mdns.policy import (
    AllInterfacesPolicy,
    DefaultInterfacePolicy,
    ExcludingPolicy,
)
from twisted_mdns.tap import MDNSOptions, Options, load_service_file, load_services_dir, makeService, parse_service_spec


def parse(*argv: str) -> MDNSOptions:
    options = MDNSOptions()
    options.parseOptions(list(argv))
    return options


class ServiceSpecTests(unittest.TestCase):
    def test_full_spec(self) -> None:
        info = parse_service_spec("Web|_http._tcp|8080|path=/|secure")
        self.assertEqual((info.instance, info.type, info.port), ("Web", "_http._tcp", 8080))
        self.assertEqual(info.txt_strings, (b"path=/", b"secure"))

    def test_bad_specs(self) -> None:
        for spec, fragment in [
            ("Web|_http._tcp", "expected INSTANCE|TYPE|PORT"),
            ("Web|_http._tcp|eighty", "port 'eighty' is not a number"),
            ("Web|http|80", "must look like _name._tcp"),
            ("Web|_http._tcp|70000", "port 70000"),
            ("Web|_http._tcp|80|=x", "TXT key must not be empty"),
            ("|_http._tcp|80", "instance name"),
        ]:
            e = self.assertRaises(ValueError, parse_service_spec, spec)
            self.assertIn(fragment, str(e), spec)
            self.assertNotIn("\n", str(e))


class OptionsTests(unittest.TestCase):
    def test_defaults(self) -> None:
        options = parse()
        self.assertIsInstance(options["policy"], DefaultInterfacePolicy)
        self.assertEqual(options["log-level"], "info")
        self.assertEqual(options["services"], [])

    def test_all_and_exclude(self) -> None:
        options = parse("--all-ifaces", "--exclude-iface", "lo")
        self.assertIsInstance(options["policy"], ExcludingPolicy)
        self.assertIsInstance(options["policy"].base, AllInterfacesPolicy)
        self.assertEqual(options["policy"].specs, ("lo",))

    def test_iface_unknown(self) -> None:
        e = self.assertRaises(usage.UsageError, parse, "--iface", "nope0")
        self.assertIn("interface 'nope0': no such interface (interfaces present:", str(e))

    def test_iface_and_all_conflict(self) -> None:
        e = self.assertRaises(usage.UsageError, parse, "--iface", "eth0", "--all-ifaces")
        self.assertIn("cannot be combined", str(e))

    def test_services_and_browse(self) -> None:
        options = parse("--service", "A|_http._tcp|80", "--service", "B|_ipp._tcp|631|rp=q", "--browse", "_http._tcp")
        self.assertEqual([s.instance for s in options["services"]], ["A", "B"])
        self.assertEqual(options["browse"], ["_http._tcp"])

    def test_bad_values(self) -> None:
        for argv, fragment in [
            (("--service", "A|_http._tcp|x"), "not a number"),
            (("--browse", "http"), "--browse"),
            (("--log-level", "loud"), "--log-level 'loud'"),
            (("--hostname", "a.b"), "--hostname"),
            (("--services-dir", "/nonexistent/dir"), "not a directory"),
        ]:
            e = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(fragment, str(e))

    def test_hostname_local_suffix_stripped(self) -> None:
        self.assertEqual(parse("--hostname", "lab.local")["hostname"], "lab")

    def test_help_documents_every_option(self) -> None:
        text = str(Options())
        for option in ("--iface", "--exclude-iface", "--all-ifaces", "--hostname", "--service",
                       "--services-dir", "--browse", "--log-level"):
            self.assertIn(option, text)
        self.assertIn("[service]", text, "the services-dir format is documented")

    def test_twistd_options_exit_with_one_line(self) -> None:
        import io

        err = io.StringIO()
        self.patch(sys, "stderr", err)
        e = self.assertRaises(SystemExit, Options().parseOptions, ["--log-level", "loud"])
        self.assertEqual(e.code, 2)
        self.assertEqual(
            err.getvalue(),
            "twistd mdns: error: --log-level 'loud': choose one of debug, info, warn, error\n",
        )

    def test_family_flags(self) -> None:
        """
        --ipv4-only / --ipv6-only (-4 / -6) choose the families of the
        policy and of the service; both together are an error.
        """
        self.assertEqual(parse()["families"], Family.BOTH)
        self.assertEqual(parse()["policy"].families, Family.BOTH)
        for argv, family in ((("--ipv4-only",), Family.IPV4), (("-6",), Family.IPV6)):
            options = parse(*argv)
            self.assertEqual(options["families"], family)
            self.assertEqual(options["policy"].families, family)
            mdns = next(s for s in makeService(options) if type(s).__name__ == "MDNSService")
            self.assertEqual(mdns.families, family)
            self.assertEqual(mdns.transport.families, family)
        options = parse("--all-ifaces", "--exclude-iface", "lo", "--ipv6-only")
        self.assertEqual(options["policy"].base.families, Family.IPV6)
        e = self.assertRaises(usage.UsageError, parse, "--ipv4-only", "--ipv6-only")
        self.assertIn("exclude each other", str(e))
        self.assertIn("--ipv6-only", str(Options()))

    def test_make_service(self) -> None:
        options = parse("--service", "A|_http._tcp|80", "--browse", "_http._tcp")
        top = makeService(options)
        names = [type(s).__name__ for s in top]
        self.assertIn("MDNSService", names)
        self.assertIn("_Browsing", names)


class ServicesDirTests(unittest.TestCase):
    def write(self, name: str, text: str) -> str:
        directory = FilePath(self.mktemp())
        directory.makedirs(ignoreExistingDirectory=True)
        self.dir = directory.path
        path = directory.child(name)
        path.setContent(text.encode())
        return path.path

    def test_good_file(self) -> None:
        path = self.write("web.service", (
            "[service]\nname = My Web (2)\ntype = _http._tcp\nport = 8080\n"
            "subtypes = _printer\ninterfaces = eth0, 10.0.0.5\n\n[txt]\npath = /\nflag\n"
        ))
        info = load_service_file(path)
        self.assertEqual(info.instance, "My Web (2)")
        self.assertEqual(info.subtypes, ("_printer",))
        self.assertEqual(info.interfaces, ("eth0", "10.0.0.5"))
        self.assertEqual(info.txt_strings, (b"path=/", b"flag"))

    def test_bad_file_reported_with_path_and_line_others_load(self) -> None:
        self.write("a-good.service", "[service]\nname = Good\ntype = _http._tcp\nport = 80\n")
        bad = os.path.join(self.dir, "b-bad.service")
        with open(bad, "w") as f:
            f.write("[service]\nname = Bad\ntype = _http._tcp\nport = eighty\n")
        garbled = os.path.join(self.dir, "c-garbled.service")
        with open(garbled, "w") as f:
            f.write("[service]\nname = X\n[service]\n")
        loaded = load_services_dir(self.dir)
        services, errors = loaded.services, loaded.errors
        self.assertEqual([s.instance for s in services], ["Good"])
        self.assertEqual(len(errors), 2)
        self.assertTrue(errors[0].startswith(f"{bad}:4: port 'eighty'"), errors[0])
        self.assertTrue(errors[1].startswith(f"{garbled}:3:"), errors[1])

    def test_missing_key(self) -> None:
        path = self.write("x.service", "[service]\nname = X\nport = 1\n")
        e = self.assertRaises(ValueError, load_service_file, path)
        self.assertEqual(str(e), f"{path}:1: [service] needs type =")

    def test_options_load_dir(self) -> None:
        self.write("a.service", "[service]\nname = A\ntype = _http._tcp\nport = 80\n")
        with open(os.path.join(self.dir, "b.service"), "w") as f:
            f.write("[service]\nname = B\ntype = bad\nport = 80\n")
        options = parse("--services-dir", self.dir)
        self.assertEqual([s.instance for s in options["services"]], ["A"])
        self.assertEqual(len(options["service-errors"]), 1)
        self.assertIn("b.service:3:", options["service-errors"][0])
