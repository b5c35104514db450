"""What runs on a node of the cluster: one backend and device measured by hwkit's local bench
(each backend in its own process, as on one machine), on the model the driver put in Ray's
object store, cached on the node by its sha256.

The driver calls ``measure_on_node`` as a Ray task; Ray is imported only to fetch the model.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Sequence
from typing import Any

from hwkit._files import cache_dir, read_cached, write_cached
from hwkit.errors import BackendUnavailableError, ModelError
from hwkit.measure.bench import bench
from hwkit.measure.settings import BenchSettings
from hwkit.model import Model
from hwkit.plugins import registry, reset_registry


def measure_on_node(
    model_ref: list[Any],  # [ObjectRef of the model's bytes]: in a list, so Ray fetches it only when not cached
    sha256: str,
    name: str,
    default_dims: dict[str, int],
    target: str,
    settings: BenchSettings,
    plugins: Sequence[tuple[str, str]],
    version: str,
) -> dict[str, Any]:
    """Bench ``target`` on this node; returns ``{"result": bench dict, "outputs": [per row],
    "measured_between": [start, end]}`` (Unix seconds by this node's clock).

    ``plugins`` are (plugin name, module) pairs registered in the driver's process rather than
    installed: the node registers them too (each backend's child process then inherits them, as
    ``ProcessLauncher`` passes them on). The target is its own reference here: agreement across
    machines is computed by the driver from the returned outputs.
    """
    from hwkit import __version__

    if version != __version__:
        raise BackendUnavailableError(f"this node runs hwkit {__version__}, the driver {version}; install the same "
                                "hwkit version on every machine")
    reset_registry()
    for plugin, module in plugins:
        registry().register(importlib.import_module(module), plugin)
    model = Model.load(_model_path(model_ref, sha256))
    model.name, model.default_dims = name, dict(default_dims)
    started = time.time()
    result = bench(model, [target], settings, reference=target)
    return {"result": result.to_dict(), "outputs": [record.outputs for record in result.results],
            "measured_between": [started, time.time()]}


def _model_path(model_ref: list[Any], sha256: str) -> str:
    """The model's file in this node's cache, fetched from the object store when missing."""
    path = cache_dir("fleet") / f"{sha256}.onnx"

    def matches(data: bytes) -> str | None:
        return None if hashlib.sha256(data).hexdigest() == sha256 else "its sha256 is not its name"

    if read_cached(path, matches) is None:
        import ray

        data = ray.get(model_ref[0])
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ModelError(f"the model received from the object store does not have the sha256 {sha256[:12]}")
        path = write_cached(path, data)
    return str(path)
