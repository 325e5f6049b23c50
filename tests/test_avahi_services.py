"""
avahi's service files, read as they are: the files avahi ships, every
element of C{avahi.service(5)}, warnings and errors with path and line,
hostile XML refused, and a twistd process publishing avahi's files that
python-zeroconf then finds on the link, under a new name when a rival on
the link takes our host name (C{%h}).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from tests.peers import AvahiService, ZeroconfBrowser, ZeroconfPublisher, require_peers, zeroconf_browse
from tests.test_twistd import TwistdCase
from twisted_mdns.avahi_services import (
    MAX_FILE_SIZE,
    AvahiServiceFileError,
    load_avahi_service_file,
    looks_like_avahi_file,
)
from twisted_mdns.families import Family
from twisted_mdns.service_files import load_services_dir

#: Where Debian's avahi-daemon package puts its example files; the daemon's
#: own directory is searched first, in case a system has them installed.
AVAHI_DIRS = ("/etc/avahi/services", "/usr/share/doc/avahi-daemon/examples")


def avahi_file(name: str) -> str:
    for directory in AVAHI_DIRS:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise unittest.SkipTest(f"avahi's {name} is not installed (apt-get install avahi-daemon)")


HEADER = (
    '<?xml version="1.0" standalone=\'no\'?>\n'
    '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
)


class Files(unittest.TestCase):
    def write(self, name: str, text: str) -> str:
        if not hasattr(self, "dir"):
            self.dir = self.mktemp()
            os.makedirs(self.dir)
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path


class ShippedFilesTests(Files):
    """
    The files avahi itself ships load unchanged.
    """

    def test_ssh(self) -> None:
        loaded = load_avahi_service_file(avahi_file("ssh.service"), "lab")
        self.assertEqual(loaded.warnings, ())
        [info] = loaded.services
        self.assertEqual((info.instance, info.type, info.port), ("lab", "_ssh._tcp", 22))
        self.assertIsNone(info.host)
        self.assertEqual(info.txt_strings, ())

    def test_sftp_ssh(self) -> None:
        [info] = load_avahi_service_file(avahi_file("sftp-ssh.service"), "lab").services
        self.assertEqual((info.instance, info.type, info.port), ("lab", "_sftp-ssh._tcp", 22))

    def test_example_several_services_subtype_and_ipv6_limit(self) -> None:
        """
        The third service is C{protocol="ipv6"}: published as asked where
        mDNS runs IPv6 only, left out (with a warning) where it runs IPv4
        only, published with a warning where it runs both.
        """
        path = avahi_file("example.service")
        lines = Path(path).read_text().splitlines()
        line = next(n for n, text in enumerate(lines, 1) if 'protocol="ipv6"' in text)
        first_two = [("Printer on lab", "_printer._tcp", 515, ()),
                     ("Printer on lab", "_ipp._tcp", 631, ("_colour",))]
        uber = [("Printer on lab", "_uberprinter._tcp", 4711, ())]
        prefix = f"{path}:{line}: _uberprinter._tcp: protocol=\"ipv6\""
        for families, services, warning in [
            (Family.IPV6, first_two + uber, None),
            (Family.IPV4, first_two, f"{prefix} but mDNS runs IPv4 only; this service is not published"),
            (Family.BOTH, first_two + uber, f"{prefix}: published on IPv4 and IPv6"),
        ]:
            loaded = load_avahi_service_file(path, "lab", families)
            self.assertEqual([(s.instance, s.type, s.port, s.subtypes) for s in loaded.services],
                             services, families)
            if warning is None:
                self.assertEqual(loaded.warnings, ())
            else:
                self.assertEqual(len(loaded.warnings), 1, loaded.warnings)
                self.assertTrue(loaded.warnings[0].startswith(warning), loaded.warnings[0])

    def test_is_recognised_as_xml(self) -> None:
        self.assertTrue(looks_like_avahi_file(avahi_file("ssh.service")))
        ini = self.write("web.service", "[service]\nname = W\ntype = _http._tcp\nport = 80\n")
        self.assertFalse(looks_like_avahi_file(ini))


class ElementsTests(Files):
    def test_every_element(self) -> None:
        path = self.write("all.service", HEADER + """<service-group>
  <name replace-wildcards="no">Files on %h</name>
  <service protocol="ipv4">
    <type>_smb._tcp</type>
    <subtype>_media._sub._smb._tcp</subtype>
    <subtype>_backup</subtype>
    <domain-name>local</domain-name>
    <host-name>nas.local</host-name>
    <port>445</port>
    <txt-record>path=/srv</txt-record>
    <txt-record value-format="binary-hex">hex=76616c7565</txt-record>
    <txt-record value-format="binary-base64">b64=dmFsdWU=</txt-record>
    <txt-record>flag</txt-record>
    <txt-record>empty=</txt-record>
  </service>
</service-group>
""")
        # protocol="ipv4" where mDNS runs IPv4 only: as asked, no warning.
        loaded = load_avahi_service_file(path, "lab", Family.IPV4)
        self.assertEqual(loaded.warnings, ())
        [info] = loaded.services
        self.assertEqual(info.instance, "Files on %h", "no wildcards unless asked")
        self.assertIsNone(info.name_template)
        self.assertEqual(info.subtypes, ("_media", "_backup"))
        self.assertEqual(info.host, "nas")
        self.assertEqual(info.port, 445)
        self.assertEqual(
            info.txt_strings,
            (b"path=/srv", b"hex=value", b"b64=value", b"flag", b"empty="),
        )

    def test_name_template_kept_for_every_service_of_the_group(self) -> None:
        """
        A name with C{%h} replaced keeps what was written, for each of the
        group's services, so that they follow a renamed host; a name
        without C{%h} (or with wildcards off) is fixed.
        """
        group = HEADER + """<service-group>
  <name replace-wildcards="%s">%s</name>
  <service><type>_http._tcp</type><port>80</port></service>
  <service><type>_ssh._tcp</type><port>22</port></service>
</service-group>
"""
        for wildcards, name, instance, template in [
            ("yes", "%h web", "lab web", "%h web"),
            ("yes", "Web of %h and %h", "Web of lab and lab", "Web of %h and %h"),
            ("yes", "Plain web", "Plain web", None),
            ("no", "%h web", "%h web", None),
        ]:
            path = self.write("t.service", group % (wildcards, name))
            services = load_avahi_service_file(path, "lab").services
            self.assertEqual([(s.instance, s.name_template) for s in services], [(instance, template)] * 2)
            if template is not None:
                self.assertEqual(services[0].for_host("lab-2").instance, instance.replace("lab", "lab-2"))

    def test_unsupported_parts_warn_with_line_and_rest_loads(self) -> None:
        path = self.write("w.service", HEADER + """<service-group>
  <name replace-wildcards="yes">%h web</name>
  <icon>web.png</icon>
  <service colour="blue">
    <type>_http._tcp</type>
    <port>80</port>
  </service>
  <service>
    <type>_https._tcp</type>
    <domain-name>example.com</domain-name>
    <port>443</port>
  </service>
  <service>
    <type>_ftp._tcp</type>
    <host-name>ftp.example.com</host-name>
    <port>21</port>
  </service>
</service-group>
""")
        loaded = load_avahi_service_file(path, "lab")
        self.assertEqual([(s.instance, s.type) for s in loaded.services], [("lab web", "_http._tcp")])
        self.assertEqual([w.split(": ", 1)[0] for w in loaded.warnings],
                         [f"{path}:5", f"{path}:6", f"{path}:12", f"{path}:17"])
        self.assertIn("<icon> is not supported", loaded.warnings[0])
        self.assertIn("colour=", loaded.warnings[1])
        self.assertIn("domain 'example.com'", loaded.warnings[2])
        self.assertIn("host-name 'ftp.example.com'", loaded.warnings[3])

    def test_errors_name_path_and_line(self) -> None:
        cases = [
            ("<service-group>\n<name>x</name>\n<service>\n<type>_http._tcp</type>\n"
             "<port>eighty</port>\n</service>\n</service-group>\n", 5, "port 'eighty'"),
            ("<service-group>\n<name>x</name>\n<service>\n<port>80</port>\n</service>\n"
             "</service-group>\n", 3, "<service> needs a <type>"),
            ("<service-group>\n<name>x</name>\n<service>\n<type>http</type>\n<port>1</port>\n"
             "</service>\n</service-group>\n", 4, "must look like _name._tcp"),
            ("<service-group>\n<name>x</name>\n</service-group>\n", 1, "at least one <service>"),
            ("<service-group>\n<service>\n<type>_http._tcp</type><port>1</port>\n</service>\n"
             "</service-group>\n", 1, "needs a <name>"),
            ("<services/>\n", 1, "not <service-group>"),
            ("<service-group>\n<name>x\n</service-group>\n", 3, "not well-formed"),
            ("<service-group>\n<name>x</name>\n<service>\n<type>_ipp._tcp</type>\n"
             "<subtype>_a._sub._http._tcp</subtype>\n<port>1</port>\n</service>\n</service-group>\n",
             5, "not a subtype of _ipp._tcp"),
            ("<service-group>\n<name>x</name>\n<service>\n<type>_ipp._tcp</type>\n<port>1</port>\n"
             "<txt-record value-format='binary-hex'>k=zz</txt-record>\n</service>\n</service-group>\n",
             6, "not valid binary-hex"),
            ("<service-group>\n<name>x</name>\n<service>\n<type>_ipp._tcp</type>\n<port>1</port>\n"
             "<txt-record>k=1</txt-record>\n<txt-record>K=2</txt-record>\n</service>\n"
             "</service-group>\n", 3, "appears twice"),
        ]
        for n, (text, line, fragment) in enumerate(cases):
            path = self.write(f"bad{n}.service", text)
            e = self.assertRaises(AvahiServiceFileError, load_avahi_service_file, path, "lab")
            self.assertTrue(str(e).startswith(f"{path}:{line}: "), (str(e), line))
            self.assertIn(fragment, str(e))
            self.assertNotIn("\n", str(e))


class HostileTests(Files):
    def test_billion_laughs_refused_at_once(self) -> None:
        entities = '<!ENTITY a0 "lol">\n' + "".join(
            f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">\n' for i in range(1, 10)
        )
        path = self.write("bomb.service", (
            f'<?xml version="1.0"?>\n<!DOCTYPE service-group [\n{entities}]>\n'
            "<service-group><name>&a9;</name><service><type>_http._tcp</type>"
            "<port>1</port></service></service-group>\n"
        ))
        started = time.monotonic()
        e = self.assertRaises(AvahiServiceFileError, load_avahi_service_file, path, "lab")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertIn("internal subset", str(e))
        self.assertTrue(str(e).startswith(f"{path}:2: "), str(e))

    def test_external_entity_not_fetched(self) -> None:
        secret = os.path.abspath(self.write("secret.txt", "SECRET"))
        declared = self.write("xxe.service", (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE service-group [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
            "<service-group><name>&xxe;</name><service><type>_http._tcp</type>"
            "<port>1</port></service></service-group>\n"
        ))
        e = self.assertRaises(AvahiServiceFileError, load_avahi_service_file, declared, "lab")
        self.assertIn("internal subset", str(e))
        self.assertNotIn("SECRET", str(e))
        # Behind avahi's own external DTD (never read), an entity reference
        # is refused rather than silently dropped.
        undeclared = self.write("ref.service", (
            '<?xml version="1.0"?>\n<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
            "<service-group><name>&xxe;</name><service><type>_http._tcp</type>"
            "<port>1</port></service></service-group>\n"
        ))
        e = self.assertRaises(AvahiServiceFileError, load_avahi_service_file, undeclared, "lab")
        self.assertIn("entity reference &xxe; is not accepted", str(e))
        self.assertTrue(str(e).startswith(f"{undeclared}:3: "), str(e))

    def test_huge_file_refused_unread(self) -> None:
        path = self.write("huge.service", "<service-group>" + " " * MAX_FILE_SIZE + "</service-group>")
        e = self.assertRaises(AvahiServiceFileError, load_avahi_service_file, path, "lab")
        self.assertIn("at most", str(e))


class DirectoryTests(Files):
    def test_xml_and_ini_side_by_side_bad_ones_skipped(self) -> None:
        shutil.copy(avahi_file("ssh.service"), self.write("a-ssh.service", ""))
        self.write("b-web.service", "[service]\nname = Web\ntype = _http._tcp\nport = 80\n")
        bad = self.write("c-bad.service", "<service-group>\n<name>x</name>\n")
        shutil.copy(avahi_file("example.service"), self.write("d-printer.service", ""))
        # IPv4 only: the example's protocol="ipv6" service is left out.
        loaded = load_services_dir(self.dir, "lab", Family.IPV4)
        self.assertEqual(
            [(s.instance, s.type) for s in loaded.services],
            [("lab", "_ssh._tcp"), ("Web", "_http._tcp"),
             ("Printer on lab", "_printer._tcp"), ("Printer on lab", "_ipp._tcp")],
        )
        self.assertEqual(len(loaded.errors), 1)
        self.assertTrue(loaded.errors[0].startswith(f"{bad}:3: not well-formed"), loaded.errors)
        self.assertEqual(len(loaded.warnings), 1)
        self.assertIn("d-printer.service:", loaded.warnings[0])
        self.assertIn("runs IPv4 only", loaded.warnings[0])


class PublishedTests(TwistdCase):
    """
    C{twistd mdns --services-dir} with avahi's own files: a python-zeroconf
    client on the link finds them, %h replaced by our host name, and
    replaced again when the host is renamed.
    """

    @defer.inlineCallbacks
    def test_zeroconf_finds_avahi_files_services(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        shutil.copy(avahi_file("ssh.service"), directory)
        shutil.copy(avahi_file("example.service"), directory)
        yield self.start_twistd("--hostname", "h", "--services-dir", directory)
        yield self.proc.wait_for(r"Printer on h.*_ipp", timeout=10)
        found = yield zeroconf_browse(self.topology.links["a"].client_ns, "_ssh._tcp", timeout=6, expect=1)
        self.assertEqual([(s.instance, s.port, s.server) for s in found], [("h", 22, "h.local.")])
        self.assertEqual(found[0].addresses, (self.topology.links["a"].host_ip,))
        found = yield zeroconf_browse(self.topology.links["a"].client_ns, "_ipp._tcp", timeout=6, expect=1)
        self.assertEqual([(s.instance, s.port) for s in found], [("Printer on h", 631)])
        self.assertIn("protocol=\"ipv6\": published on IPv4 and IPv6", self.proc.stdout)

    @defer.inlineCallbacks
    def test_wildcard_name_follows_a_host_rename(self):
        """
        C{<name replace-wildcards="yes">%h web</name>}, published as
        C{h web}; then python-zeroconf on link a publishes a service whose
        host is C{h.local} (its address records, not ours, RFC 6762 §9):
        our host becomes C{h-2}, and a python-zeroconf browser on link b
        sees C{h web} leave (our goodbyes, §10.1) and C{h-2 web} arrive,
        on C{h-2.local}.
        """
        require_peers("zeroconf")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        web = AvahiService("%h web", "_http._tcp", 8080, {"path": "/"}, protocol="any", replace_wildcards=True)
        with open(os.path.join(directory, "web.service"), "w") as f:
            f.write(web.to_xml())
        a, b = self.topology.links["a"], self.topology.links["b"]
        yield self.start_twistd("--hostname", "h", "--services-dir", directory)
        yield self.proc.wait_for(r"service h web\._http\._tcp\.local\. registered", timeout=10)
        browser = ZeroconfBrowser(b.client_ns, "_http._tcp")
        self.addCleanup(browser.stop)
        yield browser.start()
        found = yield browser.wait_for_added("h web", timeout=10)
        self.assertEqual((found.server, found.port), ("h.local.", 8080))
        # A real responder claiming our host name on link a.
        rival = ZeroconfPublisher(a.client_ns, "Rival", "_rival._tcp", 9001, hostname="h.local.")
        self.addCleanup(rival.stop)
        yield rival.start()
        yield self.proc.wait_for(r"host name h\.local is taken; trying h-2\.local", timeout=15)
        yield self.proc.wait_for(r"service h web\._http\._tcp\.local\. is named after the host: "
                                 r"registering it as h-2 web\._http\._tcp\.local\.", timeout=5)
        yield browser.wait_for_removed("h web", timeout=10)
        found = yield browser.wait_for_added("h-2 web", timeout=10)
        self.assertEqual((found.server, found.port, found.txt), ("h-2.local.", 8080, {"path": "/"}))
        self.assertEqual(found.addresses, (b.host_ip,))
        yield browser.stop()
        # A browser starting now finds the new name only.
        found = yield zeroconf_browse(b.client_ns, "_http._tcp", timeout=6, expect=1)
        self.assertEqual([s.instance for s in found], ["h-2 web"])
