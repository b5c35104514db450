"""Job functions for the launcher tests: one that crashes its process, one that hangs."""

from __future__ import annotations

import os
import time
from typing import Any


def crash(*_: Any, **__: Any) -> None:
    os.abort()


def hang(*_: Any, **__: Any) -> None:
    time.sleep(3600)
