"""
Tests for L{twisted_mdns.naming}: one validator per kind of name, the same
for what we publish and what we look for.
"""

from __future__ import annotations

from twisted.trial import unittest

from twisted_mdns.querier import parse_host_name, parse_instance_name, parse_service_type


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
