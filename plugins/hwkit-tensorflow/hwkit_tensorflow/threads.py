"""TensorFlow's thread pools: sized once per process, before TensorFlow starts them.

``tf.config.threading`` can only be changed before TensorFlow's runtime initialises; after that
the setter raises. hwkit's ``threads`` therefore applies to the first executable of the process
(or any later one that asks for the same count), and a different count is refused with the
reason instead of being silently ignored. ``hwkit bench`` runs each backend in a child process
of its own, so each bench row gets the count it asked for.
"""

from __future__ import annotations

from typing import Any

from hwkit.errors import OptionError


def apply(tf: Any, threads: int | None) -> None:
    """Size TensorFlow's pools for ``threads`` (intra-op; inter-op 1, as onnxruntime's plugin),
    or refuse when they already run with another size. None leaves TensorFlow's choice."""
    if threads is None:
        return
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as e:
        now = f"{current} thread{'s' if current != 1 else ''}" if current else "TensorFlow's default thread count"
        raise OptionError(
            f"tensorflow cannot use threads={threads}: its thread pools already run with {now} in this "
            "process and TensorFlow cannot resize them; use one thread count per process "
            "(hwkit bench isolates each backend unless --no-isolation)") from e
