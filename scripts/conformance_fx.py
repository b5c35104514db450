#!/usr/bin/env python
"""Run ONNX's backend node test suite through hwkit's ONNX -> torch.fx converter.

Usage::

    python scripts/conformance_fx.py [--filter REGEX] [--json PATH] [--jobs 2] [--timeout 60]

Each case is converted with :func:`hwkit_torch.fx.convert` (the hwkit-torch plugin), run with
torch on the CPU and compared with the suite's expected outputs exactly as
``onnx.backend.test.runner`` does (same shape, same dtype, ``assert_allclose`` with the case's
rtol/atol). Prints the pass count and the failures grouped by the op under test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwkit_torch.testing import category, load_cases, run_case  # noqa: E402


def _worker(q_in: Any, q_out: Any) -> None:
    warnings.simplefilter("ignore")
    load_cases()
    import torch  # noqa: F401  (warm up before the per-case clock starts)

    from hwkit_torch.fx import supported_ops

    supported_ops()  # imports the converter and every op handler
    q_out.put(("__ready__", "", ""))
    while True:
        name = q_in.get()
        if name is None:
            return
        try:
            q_out.put(run_case(name))
        except BaseException as e:  # noqa: BLE001
            q_out.put((name, "error", f"crash: {type(e).__name__}: {e}"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filter", default=None, help="regex on the case name")
    p.add_argument("--json", default=None, help="write per-case results to this file")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="per-case timeout, seconds")
    p.add_argument("-v", "--verbose", action="store_true", help="print every failure message")
    args = p.parse_args()
    names = sorted(load_cases())  # loaded before forking: workers inherit the cases
    total_suite = len(names)
    if args.filter:
        rx = re.compile(args.filter)
        names = [n for n in names if rx.search(n)]
    t0 = time.time()
    results: dict[str, tuple[str, str]] = {}
    ctx = mp.get_context("fork")
    pending = list(names)
    workers: list[dict[str, Any]] = []

    def spawn() -> dict[str, Any]:
        q_in, q_out = ctx.Queue(), ctx.Queue()
        proc = ctx.Process(target=_worker, args=(q_in, q_out), daemon=True)
        proc.start()
        q_out.get(timeout=300)  # the worker's ready message
        return {"p": proc, "in": q_in, "out": q_out, "case": None, "t": 0.0}

    workers = [spawn() for _ in range(max(1, args.jobs))]
    import queue

    while pending or any(w["case"] for w in workers):
        for i, w in enumerate(workers):
            if w["case"] is None and pending:
                w["case"] = pending.pop(0)
                w["t"] = time.time()
                w["in"].put(w["case"])
            if w["case"] is None:
                continue
            try:
                name, status, msg = w["out"].get(timeout=0.01)
                results[name] = (status, msg)
                w["case"] = None
            except queue.Empty:
                if time.time() - w["t"] > args.timeout or not w["p"].is_alive():
                    why = "timeout" if w["p"].is_alive() else "worker died"
                    results[w["case"]] = ("error", why)
                    w["p"].kill()
                    workers[i] = spawn()
    for w in workers:
        w["in"].put(None)
    elapsed = time.time() - t0
    passed = sum(1 for s, _ in results.values() if s == "pass")
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for n, (s, m) in sorted(results.items()):
        if s != "pass":
            groups[category(n)].append((n, s, m))
    for g, items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"{g}: {len(items)} failing")
        for n, s, m in items if args.verbose else items[:3]:
            print(f"    {n} [{s}] {m[:240]}")
    print(f"\npassed {passed}/{len(names)} (suite has {total_suite} cases) in {elapsed:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"passed": passed, "total": len(names), "seconds": round(elapsed, 1),
             "results": {n: {"status": s, "message": m} for n, (s, m) in sorted(results.items())}},
            indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
