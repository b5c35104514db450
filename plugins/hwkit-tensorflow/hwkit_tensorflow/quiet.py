"""TensorFlow's and LiteRT's C++ notices kept off hwkit's stderr.

Importing TensorFlow writes absl/oneDNN notices ("oneDNN custom operations are on", "This
TensorFlow binary is optimized to use available CPU instructions") and LiteRT's interpreter
writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to file descriptor 2,
where no logging setting reaches them in time; they would land in the middle of hwkit's tables.
While these calls run, descriptor 2 goes to a temporary file, shown only if the call fails (it
may say why).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def stderr_kept() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as kept:
        os.dup2(kept.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            kept.seek(0)
            sys.stderr.write(kept.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> Any:
    if "tensorflow" not in sys.modules:
        with stderr_kept():
            import tensorflow  # noqa: F401 - imported for sys.modules
    return sys.modules["tensorflow"]
