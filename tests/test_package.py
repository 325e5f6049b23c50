# -*- test-case-name: tests.test_package -*-
"""
Tests for L{twisted_mdns}'s public names: what the package re-exports.
"""

from twisted.trial import unittest

import twisted_mdns


class PackageTests(unittest.TestCase):
    def test_all_names_importable(self) -> None:
        """
        Every name in C{__all__} is an attribute of the package, and
        C{__all__} names nothing twice.
        """
        for name in twisted_mdns.__all__:
            self.assertTrue(hasattr(twisted_mdns, name), name)
        self.assertEqual(len(set(twisted_mdns.__all__)), len(twisted_mdns.__all__))

    def test_reexports_are_the_originals(self) -> None:
        """
        The names users need for families, step-proof time, the discovery
        proxy, naming interfaces and browsing service types are the objects
        their modules define, not copies.
        """
        from twisted_mdns.clock import MonotonicClock, step_proof, use_monotonic_time
        from twisted_mdns.families import Family
        from twisted_mdns.proxy.service import DiscoveryProxy
        from twisted_mdns.querier.results import InterfaceSpec
        from twisted_mdns.type_browser import ServiceTypeBrowser

        for name, value in [
            ("Family", Family),
            ("MonotonicClock", MonotonicClock),
            ("use_monotonic_time", use_monotonic_time),
            ("step_proof", step_proof),
            ("DiscoveryProxy", DiscoveryProxy),
            ("InterfaceSpec", InterfaceSpec),
            ("ServiceTypeBrowser", ServiceTypeBrowser),
        ]:
            self.assertIn(name, twisted_mdns.__all__)
            self.assertIs(getattr(twisted_mdns, name), value)
