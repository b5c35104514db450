#!/usr/bin/env python
"""Run ONNX's official node test suite (``onnx.backend.test``, 1884 cases with onnx 1.23) through
hwkit's ONNX-backend adapter, for every available backend, and print a table of pass counts.

Usage::

    python scripts/conformance.py                          # every available backend
    python scripts/conformance.py --backend openvino --raw # plus the runtime used directly
    python scripts/conformance.py --filter 'conv|gemm' --jobs 2 --timeout 60 --json out.json
    python scripts/conformance.py --write-docs             # refresh the table in docs/conformance.md
    python scripts/conformance.py --backend litert --every 10 --write-docs  # one backend's rows, a sample

Each case is prepared with ``make_onnx_backend(NAME)`` (that is ``hwkit.compile``: hwkit's model
loading and checks, then the plugin), run on every data set of the case, and compared as
``onnx.backend.test.runner.Runner`` does (same shape and dtype, ``assert_allclose`` with the
case's rtol/atol). Cases whose graph takes or returns maps or sparse tensors are "n/a": hwkit
handles tensors, sequences and optionals. ``--raw`` also runs the same cases on onnxruntime / openvino directly,
and lists every case the runtime passes but hwkit loses (the adapter must lose none).

Workers are forked from a parent that loaded the cases but no runtime (forking after a runtime
started its threads is unsafe); a case over ``--timeout`` seconds kills its worker.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import re
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs" / "conformance.md"
BEGIN, END = "<!-- backends-table -->", "<!-- /backends-table -->"
STATUSES = ["pass", "mismatch", "unsupported", "error", "timeout", "n/a"]

from hwkit.testing.node_suite import CASES, load_cases  # noqa: E402 - after the path set-up

RAW_RUNTIMES = ("onnxruntime", "openvino")

_BACKENDS: dict[str, Any] = {}  # per worker: target -> a callable(case) -> outputs per data set
_CASES = CASES  # filled in the parent before forking; workers inherit it


def is_supported_value_kinds(case: Any) -> bool:
    """Whether every graph input and output is a tensor, a sequence of tensors or an optional
    of those (what hwkit runs); maps and sparse tensors are not."""
    from hwkit.errors import ModelError
    from hwkit.model.specs import TensorSpec

    try:
        for value in [*case.model.graph.input, *case.model.graph.output]:
            TensorSpec.from_value_info(value)
    except ModelError:
        return False
    return True


# -- running one case (in a worker) ---------------------------------------------------------

def _arrays(values: Any) -> list[Any]:
    import numpy as np
    import onnx

    out = []
    for v in values:
        if isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        out.append(np.asarray(v) if isinstance(v, np.generic) else v)
    return out


def _hwkit_runner(name: str, threads: int) -> Any:
    from hwkit.testing.onnx_backend import make_onnx_backend

    backend = make_onnx_backend(name)

    def run(case: Any) -> list[list[Any]]:
        rep = backend.prepare(case.model, "CPU", threads=threads)
        with rep.executable:  # closed after the case, as a user's `with hwkit.compile(...)` would
            return [rep.run(_arrays(inputs)) for inputs, _ in case.data_sets]

    return run


def _raw_onnxruntime(threads: int) -> Any:
    """ONNX Runtime's own ONNX backend (onnxruntime.backend), the reference way to run the suite."""
    import onnxruntime as ort
    import onnxruntime.backend as ort_backend

    ort.set_default_logger_severity(3)  # failures are reported per case, not logged

    def run(case: Any) -> list[list[Any]]:
        rep = ort_backend.prepare(case.model, "CPU", intra_op_num_threads=threads)
        return [list(rep.run(_arrays(inputs))) for inputs, _ in case.data_sets]

    return run


def _raw_openvino(threads: int) -> Any:
    import numpy as np
    import openvino as ov

    core = ov.Core()

    def run(case: Any) -> list[list[Any]]:
        # f32 precision: the CPU plugin's default may be bf16, which no case's tolerance allows.
        compiled = core.compile_model(core.read_model(case.model.SerializeToString()), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
        kept = {n for port in compiled.inputs for n in port.get_names()}
        graph_inputs = [v.name for v in case.model.graph.input]
        results = []
        for inputs, _ in case.data_sets:
            feeds = {n: v for n, v in zip(graph_inputs, _arrays(inputs)) if n in kept}
            out = compiled(feeds)
            results.append([np.array(out[port]) for port in compiled.outputs])
        return results

    return run


def run_case(target: str, name: str, threads: int = 1) -> tuple[str, str]:
    """(status, message) of one case on one target ("hwkit:NAME" or "raw:NAME")."""
    import numpy as np
    from onnx.backend.test.runner import Runner

    from hwkit.errors import UnsupportedOpError

    case = load_cases()[name]
    kind, _, backend = target.partition(":")
    if kind == "hwkit" and not is_supported_value_kinds(case):
        return "n/a", "map or sparse inputs/outputs"
    if target not in _BACKENDS:
        if kind == "hwkit":
            _BACKENDS[target] = _hwkit_runner(backend, threads)
        else:
            _BACKENDS[target] = {"onnxruntime": _raw_onnxruntime, "openvino": _raw_openvino}[backend](threads)
    try:
        results = _BACKENDS[target](case)
    except UnsupportedOpError as e:
        return "unsupported", _short(e)
    except Exception as e:  # noqa: BLE001 - every failure of a case is reported, not raised
        return "error", f"{type(e).__name__}: {_short(e)}"
    for outputs, (_, expected) in zip(results, case.data_sets):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                Runner.assert_similar_outputs(_arrays(expected), list(outputs), rtol=case.rtol, atol=case.atol)
        except Exception as e:  # noqa: BLE001 - AssertionError, or TypeError for wrong kinds
            return "mismatch", _short(e)
    return "pass", ""


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _worker(conn: Any, threads: int) -> None:
    warnings.simplefilter("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    while True:
        task = conn.recv()
        if task is None:
            return
        target, name = task
        conn.send((target, name, *run_case(target, name, threads)))


# -- scheduling (in the parent) -------------------------------------------------------------

class _Slot:
    """One worker process and the case it is running."""

    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, threads), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[str, str] | None = None
        self.started = 0.0

    def send(self, task: tuple[str, str]) -> None:
        self.task, self.started = task, time.monotonic()
        self.conn.send(task)

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def run_all(tasks: list[tuple[str, str]], jobs: int, timeout: float, threads: int,
            progress: bool = True) -> dict[str, dict[str, tuple[str, str]]]:
    """target -> case -> (status, message), running ``tasks`` on ``jobs`` forked workers."""
    ctx = mp.get_context("fork")
    results: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    pending = list(reversed(tasks))
    slots = [_Slot(ctx, threads) for _ in range(min(jobs, len(tasks)))]
    done, total, start = 0, len(tasks), time.monotonic()
    for slot in slots:
        if pending:
            slot.send(pending.pop())
    while any(slot.task for slot in slots):
        busy = [s for s in slots if s.task]
        wait = max(0.0, min(s.started + timeout for s in busy) - time.monotonic())
        ready = mp.connection.wait([s.conn for s in busy], timeout=wait)
        for i, slot in enumerate(slots):
            if not slot.task:
                continue
            finished = None
            if slot.conn in ready:
                try:
                    target, name, status, message = slot.conn.recv()
                    finished = (target, name, status, message)
                except EOFError:  # the runtime crashed the process (a segfault, an abort)
                    finished = (*slot.task, "error", f"worker crashed (exit code {slot.process.exitcode})")
            elif time.monotonic() - slot.started > timeout:
                finished = (*slot.task, "timeout", f"over {timeout:g} s")
            if finished is None:
                continue
            results[finished[0]][finished[1]] = (finished[2], finished[3])
            done += 1
            if finished[2] == "timeout" or not slot.process.is_alive():
                slot.kill()
                slot = slots[i] = _Slot(ctx, threads)
            slot.task = None
            if pending:
                slot.send(pending.pop())
        if progress and sys.stderr.isatty():
            print(f"\r{done}/{total} cases, {time.monotonic() - start:.0f} s", end="", file=sys.stderr)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    for slot in slots:
        slot.conn.send(None)
        slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.kill()
    return results


def available_backends() -> list[str]:
    """Available backends with a CPU device, asked in a child process so that the parent
    imports no runtime before forking its workers."""
    out = subprocess.run([sys.executable, "-m", "hwkit.cli", "backends", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return [b["name"] for b in json.loads(out)
            if b["status"] == "available" and any(d["kind"] == "cpu" for d in b["devices"])]


# -- reporting ------------------------------------------------------------------------------

def summary_rows(results: dict[str, dict[str, tuple[str, str]]], backends: list[str],
                 seconds: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for name in backends:
        for kind in ("hwkit", "raw"):
            target = f"{kind}:{name}"
            if target not in results:
                continue
            counts = Counter(status for status, _ in results[target].values())
            rows.append({"backend": name, "through": "hwkit" if kind == "hwkit" else "runtime directly",
                         "cases": len(results[target]), **{s: counts.get(s, 0) for s in STATUSES},
                         "seconds": round(seconds.get(target, 0.0), 1)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table: readable in a terminal and in docs/conformance.md."""
    head = ["backend", "through", "pass", "mismatch", "unsupported", "error", "timeout", "n/a", "cases"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row[h]) for h in head) + " |")
    return "\n".join(lines)


def lost_cases(results: dict[str, dict[str, tuple[str, str]]], name: str) -> dict[str, tuple[str, str]]:
    """Cases the runtime passes directly but fails through hwkit (n/a ones excluded)."""
    raw, ours = results.get(f"raw:{name}", {}), results.get(f"hwkit:{name}", {})
    return {case: ours[case] for case, (status, _) in raw.items()
            if status == "pass" and case in ours and ours[case][0] not in ("pass", "n/a")}


def merged_block(rows: list[dict[str, Any]], how: str, path: Path = DOCS) -> str:
    """The docs' block with only ``rows``' backends re-measured: the other rows, the header and
    the other backends' notes are kept; each re-measured backend gets the note "`NAME`: HOW"."""
    old = path.read_text().partition(BEGIN)[2].partition(END)[0].strip("\n") if path.exists() else ""
    lines = old.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("|")), len(lines))
    table_lines = [ln for ln in lines[first:] if ln.startswith("| ")]
    head = [c.strip() for c in table_lines[0].strip("|").split("|")] if table_lines else []
    previous = [dict(zip(head, (c.strip() for c in ln.strip("|").split("|")))) for ln in table_lines[1:]]
    measured = {r["backend"] for r in rows}
    kept = [r for r in previous if r.get("backend") not in measured]
    ordered = sorted(kept + rows, key=lambda r: (r["backend"], r["through"] != "hwkit"))
    notes = [ln for ln in lines[first:] if ln.startswith("- `") and ln[3:].partition("`")[0] not in measured]
    notes += [f"- `{name}`: {how}" for name in sorted(measured)]
    return "\n".join(lines[:first]).rstrip("\n") + "\n\n" + table(ordered) + "\n\n" + "\n".join(sorted(notes))


def write_docs(markdown: str, path: Path = DOCS) -> None:
    """Replace only the block between the markers; create the file if there is none."""
    block = f"{BEGIN}\n{markdown}\n{END}"
    if not path.exists():
        path.write_text(f"# Conformance\n\n{block}\n")
        return
    text = path.read_text()
    if BEGIN in text and END in text:
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(text)


def docs_block(rows: list[dict[str, Any]], total: int) -> str:
    import platform

    import onnx

    stamp = time.strftime("%Y-%m-%d")
    return (f"ONNX {onnx.__version__} node test suite ({total} cases), CPU, measured {stamp} on "
            f"{platform.machine()} with `python scripts/conformance.py --raw --write-docs`.\n"
            "\"through hwkit\" is `hwkit.testing.onnx_backend.make_onnx_backend(NAME)`; \"runtime "
            "directly\" is the runtime's own Python API on the same cases; n/a: map or sparse "
            "inputs/outputs, which hwkit does not handle.\n\n" + table(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", action="append", default=[], help="a backend (repeatable; default: every available one)")
    parser.add_argument("--raw", action="store_true", help="also run onnxruntime/openvino directly and list lost cases")
    parser.add_argument("--filter", help="only cases whose name matches this regex")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="only every N-th case in the suite's order: a fixed sample for slow backends")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (%(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per worker (%(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (%(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write every case's status and message")
    parser.add_argument("--write-docs", action="store_true", help=f"refresh the table in {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)

    backends = [b for value in args.backend for b in value.split(",") if b] or available_backends()
    if not backends:
        parser.error("no available backend with a CPU device; install one (hwkit install onnxruntime)")
    cases = load_cases()
    if args.every < 1:
        parser.error(f"--every {args.every}: give a whole number of 1 or more (1: every case)")
    names = [n for n in cases if not args.filter or re.search(args.filter, n)][::args.every]
    targets = [f"hwkit:{b}" for b in backends]
    if args.raw:
        targets += [f"raw:{b}" for b in backends if b in RAW_RUNTIMES]
    results: dict[str, dict[str, tuple[str, str]]] = {}
    seconds: dict[str, float] = {}
    for target in targets:  # one target at a time, so that each one's time is its own
        start = time.monotonic()
        results.update(run_all([(target, n) for n in names], args.jobs, args.timeout, args.threads))
        seconds[target] = time.monotonic() - start
        print(f"{target}: {Counter(s for s, _ in results[target].values()).get('pass', 0)}/{len(names)} "
              f"passed in {seconds[target]:.0f} s", file=sys.stderr)

    rows = summary_rows(results, backends, seconds)
    print(table(rows))
    for name in backends:
        if f"raw:{name}" in results:
            lost = lost_cases(results, name)
            raw, ours = results[f"raw:{name}"], results.get(f"hwkit:{name}", {})
            na = sum(1 for c, (st, _) in raw.items() if st == "pass" and ours.get(c, ("",))[0] == "n/a")
            print(f"\n{name}: {len(lost)} case(s) the runtime passes but hwkit does not "
                  f"(and {na} it passes that are n/a through hwkit: map or sparse types)")
            for case, (status, message) in sorted(lost.items()):
                print(f"  {case}: {status}: {message[:200]}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "cases": {t: {c: list(r) for c, r in sorted(v.items())} for t, v in results.items()}},
            indent=1))
    if args.write_docs:
        if args.filter:
            parser.error("--write-docs needs the whole suite; drop --filter")
        if args.backend or args.every > 1:  # these backends' rows only; the others stay as they were
            sample = f", every {args.every}-th case of the suite ({len(names)} of {len(cases)})" if args.every > 1 else ""
            write_docs(merged_block(rows, f"measured {time.strftime('%Y-%m-%d')} with `python scripts/conformance.py "
                                          f"{' '.join(sys.argv[1:] if argv is None else argv)}`{sample}."))
        else:
            write_docs(docs_block(rows, len(names)))
        print(f"updated {DOCS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
