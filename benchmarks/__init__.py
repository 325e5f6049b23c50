"""
Throughput, latency and scale benchmarks for twisted_mdns.

Run everything with ``python3 -m benchmarks.run`` (as root, Linux); see
``benchmarks/README.rst``.

With C{BENCH_TWISTED_MDNS_TREE=DIR} in the environment, the benchmark
processes import C{twisted_mdns} from C{DIR} instead (another checkout,
e.g. the commit before a fix) while the benchmark code stays this one:
that is how C{run.py --baseline DIR} measures before and after in one run.
"""

import os as _os
import sys as _sys

_tree = _os.environ.get("BENCH_TWISTED_MDNS_TREE")
if _tree:
    _sys.path.insert(0, _os.path.abspath(_tree))
    try:
        import twisted_mdns  # noqa: F401  (binds the package, and so its submodules, to DIR)
    finally:
        _sys.path.remove(_os.path.abspath(_tree))
