"""``bench`` across a Ray cluster: one Ray task per (node, backend, device), each running hwkit's
local bench on its node, gathered into one result with a machine per row (``hwkit.fleet.merge``).

- Scheduling: each task is pinned to its node (hard node affinity) and takes the node's whole
  ``hwkit.machine`` resource, so Ray's scheduler runs at most one measurement per machine at a
  time (``hwkit.fleet.resources``).
- Same model, same inputs: the model's bytes go into the object store once (``ray.put``); a node
  fetches them only when its cache has no file of that sha256 (``hwkit.fleet.task``). Every node
  draws the same seeded inputs.
- Failures cost rows, not the run: a node that dies (or leaves) makes its rows ``lost``; a task
  that raised makes its rows ``failed``; the others are kept.
- Agreement across machines: every row's outputs (first input set) are compared with one
  reference row (``--reference``, else onnxruntime wherever it ran, else the first measured row).

Ray is imported inside the functions: it is the optional extra ``hwkit[ray]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hwkit._files import finite
from hwkit.api import ModelSource, open_model, split_target
from hwkit.errors import ModelError, OptionError
from hwkit.fleet import nodes as fleet_nodes
from hwkit.fleet.agreement import attach_fleet_agreement
from hwkit.fleet.merge import HOST, MACHINES, merge_results
from hwkit.fleet.result import FleetResult
from hwkit.fleet.task import measure_on_node
from hwkit.measure.records import BenchResult
from hwkit.measure.settings import BenchSettings
from hwkit.model import Model
from hwkit.runner.launch import STOP_SIGNALS, Progress, Stopped
from hwkit.runner.plan import batch_dim, make_input_sets

LOCAL = fleet_nodes.LOCAL
RAY_HINT = "pip install 'hwkit[ray]'"


def require_ray() -> Any:
    """The ray module; an OptionError with the install command when it is missing."""
    try:
        import ray
    except ImportError as e:
        raise OptionError(f"--cluster needs Ray, which is not installed here: {RAY_HINT}") from e
    return ray


@dataclasses.dataclass(frozen=True)
class Task:
    """One (node, backend, device) to measure."""

    node: fleet_nodes.Node
    target: str  # "backend:device"


def cluster_bench(
    address: str,
    model: ModelSource,
    backends: Sequence[str] | None = None,
    settings: BenchSettings | None = None,
    progress: Progress | None = None,
    reference: str | None = None,
) -> FleetResult:
    """Measure ``model`` on every node of the Ray cluster at ``address`` ("local": a throwaway
    cluster of this machine) that offers the chosen backends (default: every backend each node
    runs by default), one task per (node, backend, device).

    A machine lost mid-run makes its rows ``lost`` and Ctrl-C (or a ``Stopped`` signal) makes the
    unfinished ones ``interrupted`` (``interrupted``/``interrupted_by`` set); the others are kept.

    Raises:
        OptionError: Ray is not installed, or no Ray cluster answers at ``address``.
        ModelError: the model keeps its weights in external data files (it cannot travel as bytes).
        BackendUnavailableError: no machine offers a chosen backend (before anything runs).
    """
    started = time.perf_counter()
    ray = require_ray()
    settings = settings or BenchSettings()
    opened = open_model(model)
    if opened.external_files:
        raise ModelError(f"model '{opened.name}' keeps its weights in external data files, which --cluster cannot send "
                         "to the machines; copy the model to each machine, bench it there with --json and merge the "
                         "results with hwkit merge (docs/cluster.md)")
    shapes = planned_shapes(opened, settings)  # bad --dim / --shape fail here, before any task
    with fleet_nodes.connected(ray, address, len(opened.serialized)):
        nodes = fleet_nodes.alive(ray)
        fleet_nodes.check_offered(nodes, backends, address)
        tasks = [Task(node, target) for node in nodes for target in fleet_nodes.targets(node, backends)]
        outcomes, stopped = _run(ray, tasks, opened, settings, progress)
    result = _gather(opened, settings, shapes, tasks, outcomes, stopped, reference)
    result.data["elapsed_s"] = time.perf_counter() - started
    return result


def precisions_of(settings: BenchSettings) -> list[str]:
    """The precisions each backend runs (a sweep, or the one of settings without a sweep)."""
    sweep = getattr(settings, "precisions", None)
    return [str(p) for p in sweep] if sweep else [str(getattr(settings, "precision", "fp32"))]


def planned_shapes(model: Model, settings: BenchSettings) -> dict[int, dict[str, tuple[int, ...]]]:
    """Each batch size's input shapes, as every node will resolve them (one set drawn here)."""
    planned = {}
    batches: list[int | None] = list(settings.batches or []) or [None]
    for batch in batches:
        sets = make_input_sets(model, shapes=settings.shapes, dims=settings.dims, seed=settings.seed, count=1,
                               batch=batch)
        first = model.inputs[0] if model.inputs else None
        key = batch if batch is not None else (
            sets.shapes[first.name][0] if first and batch_dim(model) and sets.shapes[first.name] else 1)
        planned[key] = sets.shapes
    return planned


def _run(ray: Any, tasks: list[Task], model: Model, settings: BenchSettings,
         progress: Progress | None) -> tuple[dict[int, Any], str]:
    """Submit every task and wait for each; returns task index -> its reply (a dict) or the
    (status, error) of its rows, and the stop signal's name ("" when it ran to the end)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from hwkit import __version__

    report = progress or (lambda *_: None)
    remote = ray.remote(num_cpus=0, max_retries=0)(measure_on_node)
    plugins = fleet_nodes.registered_plugins()
    pending: dict[Any, int] = {}
    outcomes: dict[int, Any] = {}
    received: list[str] = []
    try:
        with _noting_stops(received):
            model_ref = ray.put(model.serialized)  # once, whatever the number of tasks
            for i, task in enumerate(tasks):
                ref = remote.options(
                    resources={fleet_nodes.LOCK: 1},  # the machine's one lock: no two measurements share it
                    scheduling_strategy=NodeAffinitySchedulingStrategy(task.node.node_id, soft=False),
                ).remote([model_ref], model.sha256, model.name, model.default_dims, task.target, settings, plugins,
                         __version__)
                pending[ref] = i
                report(_label(task), "queued", 0.0)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # a second at most: Ctrl-C gets through
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        outcomes[i] = ray.get(ref)
                    except ray.exceptions.RayError as e:  # recorded per row: lost or failed, the others go on
                        outcomes[i] = fleet_nodes.why_no_rows(ray, e)
                    report(_label(tasks[i]), "done", 1.0)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: stop the tasks, keep what was measured
        for ref in pending:
            ray.cancel(ref, force=True)
        return outcomes, stop.name if isinstance(stop, Stopped) else (received[-1] if received else "SIGINT")
    return outcomes, ""


@contextlib.contextmanager
def _noting_stops(received: list[str]) -> Iterator[None]:
    """Note which stop signal arrived: Ray's wait turns the ``Stopped`` that hwkit's handler raises
    into a plain KeyboardInterrupt, which would read as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {int(signum): signal.getsignal(signum) for signum in STOP_SIGNALS}

    def note(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)

    for signum, handler in previous.items():
        if callable(handler):  # a signal nobody handles (or that is ignored) is left alone
            signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if callable(handler):
                signal.signal(signum, handler)


def _label(task: Task) -> str:
    return f"{task.target} on {task.node.name}"


def _gather(model: Model, settings: BenchSettings, shapes: dict[int, dict[str, tuple[int, ...]]], tasks: list[Task],
            outcomes: dict[int, Any], stopped: str, reference: str | None) -> FleetResult:
    """One merged result: the measured nodes' rows, then a row per batch for each task that
    gave none (lost, failed or interrupted), with cross-machine agreement and ranking."""
    skeleton = BenchResult(model, settings, shapes, []).to_dict()
    skeleton[MACHINES] = {}  # the driver measured nothing: it is no machine of the result
    named: list[tuple[str, dict[str, Any]]] = [("driver", skeleton)]
    outputs: list[Any] = []
    missing: list[tuple[Task, str, str]] = []
    for i, task in enumerate(tasks):
        reply = outcomes.get(i)
        if isinstance(reply, dict):
            data = reply["result"]
            data[MACHINES] = {task.node.name: {**(data.pop("system", None) or {}),
                                               "peaks_gflops": data.get("peaks_gflops") or {},
                                               "node_id": task.node.node_id}}
            for row in data["results"]:
                row[HOST] = task.node.name
                row["measured_between"] = reply["measured_between"]
            named.append((task.node.name, data))
            outputs += reply["outputs"]
        elif reply is None:
            missing.append((task, "interrupted", f"not measured: the run was stopped ({stopped or 'SIGINT'})"))
        else:
            missing.append((task, *reply))
    merged = merge_results(named, one_name_one_machine=True)
    machines = merged[MACHINES]
    for task, status, error in missing:
        machines.setdefault(task.node.name, {"node_id": task.node.node_id})
        backend, device = split_target(task.target)
        for batch in shapes:
            for precision in precisions_of(settings):
                merged["results"].append({"backend": backend, "device": device or "", "batch": batch, "status": status,
                                          "error": error, HOST: task.node.name, "precision": precision})
                outputs.append(None)
    merged["interrupted"] = bool(stopped)
    merged["interrupted_by"] = stopped or None
    attach_fleet_agreement(merged, outputs, reference)
    return FleetResult(finite(merged), interrupted=bool(stopped), interrupted_by=stopped)
