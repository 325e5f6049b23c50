# -*- test-case-name: tests.test_protocol,tests.test_transport -*-
"""
Event counters: what was received, answered, suppressed and dropped, by
reason.
"""

from __future__ import annotations

from collections import Counter


class Counters(Counter):
    """
    A C{collections.Counter} whose item stores stay in C.

    C{Counter} defines C{__delitem__} in Python, and CPython then routes
    every C{counters[key] += 1} through the generic (Python-level) slot for
    item assignment: about a quarter of a microsecond per increment, paid
    several times per datagram on the legacy fast path.  Using dict's own
    C{__delitem__} restores the C slot; the only difference is that deleting
    a missing key raises C{KeyError}, as it does for a dict.
    """

    __delitem__ = dict.__delitem__
