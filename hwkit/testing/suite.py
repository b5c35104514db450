"""The conformance kit as a test module, for any installed backend::

    pytest --pyargs hwkit.testing.suite --hwkit-backend NAME

The name does not start with ``test_``, so that hwkit's own test run never collects it by
accident; pytest collects it only when it is named on the command line.
"""

from __future__ import annotations

from hwkit.testing.conformance import BackendConformance


class TestBackend(BackendConformance):
    """``backend`` stays None: the kit takes it from ``--hwkit-backend``."""
