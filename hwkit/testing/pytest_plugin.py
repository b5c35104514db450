"""pytest plugin of hwkit (entry point ``pytest11``): the options of the conformance kit.

::

    pytest --pyargs hwkit.testing.suite --hwkit-backend NAME [--hwkit-device DEVICE]

runs ``hwkit.testing.BackendConformance`` against any installed backend. The options also fill
in ``backend``/``device`` of kit subclasses that leave them None.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hwkit", "hwkit backend conformance kit")
    group.addoption("--hwkit-backend", dest="hwkit_backend", metavar="NAME", default=None,
                    help="backend for the conformance kit (pytest --pyargs hwkit.testing.suite --hwkit-backend NAME)")
    group.addoption("--hwkit-device", dest="hwkit_device", metavar="DEVICE", default=None,
                    help="device of that backend to test (default: its first device)")
