"""Fuzz ``hwkit.Model.load`` and every available backend's compile with broken ONNX bytes.

Seeds are the built-in models' bytes and small hand-built graphs (control flow, custom ops,
external data, functions, sparse initializers ...). Each case applies 1-3 mutations: bit
flips, byte deletions / insertions / overwrites, truncation, splicing bytes of another seed,
or field-level edits of the parsed proto. Half the cases are loaded from bytes, half from an
.onnx file (the path code differs: external data, the C++ checker reading the file).

The contract checked: only hwkit errors (``HwkitError`` subclasses) escape ``Model.load`` and
``hwkit.compile``. Cases run in worker processes, so a native crash or a hang is counted as a
finding and the fuzzer goes on; this process never runs the code under test.

    python benchmarks/fuzz_model_load.py --count 10000 --seed 0 [--workers 2] [--json out.json]
    python benchmarks/fuzz_model_load.py --case 1234 --seed 0     # replay one case here
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Seed name -> relative weight (the big built-ins are slow to parse and compile: fewer cases).
BUILTIN_WEIGHTS = {"mlp": 3.0, "encoder": 0.4, "cnn": 0.2}
HAND_BUILT_WEIGHT = 1.0
EXTERNAL_FILE = "weights.bin"  # the data file the external-data seed refers to
EXTERNAL_BYTES = bytes(range(64)) * 4  # 256 bytes: 64 float32s
CASE_TIMEOUT_S = 120.0  # per case (load + every compile); beyond it the case is a "hang"
# Address-space cap of each worker: a mutated dimension of 2**40 must fail as an allocation
# error inside the worker, not push the shared machine into swapping or the OOM killer.
WORKER_MEMORY_MB = 6144


# -- seeds ------------------------------------------------------------------------------------

def hand_built_seeds() -> dict[str, bytes]:
    """Small valid (or deliberately hostile) graphs touching many parts of the format."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: Sequence[Any] = (),
              opsets: Sequence[tuple[str, int]] = (("", 17),), **kw: Any) -> bytes:
        graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), **kw)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        proto.ir_version = 8
        return proto.SerializeToString()

    f32 = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    seeds: dict[str, bytes] = {}
    seeds["add_relu"] = model(
        [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
        [vi("x", f32, ["batch", 4])], [vi("y", f32, ["batch", 4])],
        [helper.make_tensor("b", f32, [4], [0.5, -0.5, 1.0, -1.0])])
    seeds["gather"] = model(
        [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
        [vi("ids", TensorProto.INT64, [1, 8])], [vi("y", f32, [1, 8, 4])],
        [numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "table")])
    seeds["conv"] = model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("GlobalAveragePool", ["c"], ["y"])],
        [vi("x", f32, [1, 2, 8, 8])], [vi("y", f32, [1, 3, 1, 1])],
        [numpy_helper.from_array(np.ones((3, 2, 3, 3), np.float32), "w")])
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["t"])], "then", [], [vi("t", f32, [2])])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [], [vi("e", f32, [2])])
    seeds["if"] = model(
        [helper.make_node("ReduceSum", ["x"], ["r"], keepdims=0),
         helper.make_node("Greater", ["r", "zero"], ["cond"]),
         helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        [vi("x", f32, [2])], [vi("y", f32, [2])], [helper.make_tensor("zero", f32, [], [0.0])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "x"], ["acc_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", f32, [2])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", f32, [2])])
    seeds["loop"] = model(
        [helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)],
        [vi("x", f32, [2])], [vi("y", f32, [2])], [helper.make_tensor("n", TensorProto.INT64, [], [3])])
    seeds["custom_op"] = model(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        [vi("x", f32, [2])], [vi("y", f32, [2])], opsets=(("", 17), ("com.example", 1)))
    seeds["cast_types"] = model(
        [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
         helper.make_node("Cast", ["h"], ["y"], to=TensorProto.BFLOAT16)],
        [vi("x", f32, [3])], [vi("y", TensorProto.BFLOAT16, [3])])
    seeds["sparse_init"] = model(
        [helper.make_node("Add", ["x", "s"], ["y"])], [vi("x", f32, [4])], [vi("y", f32, [4])],
        sparse_initializer=[helper.make_sparse_tensor(
            helper.make_tensor("s", f32, [2], [1.0, 2.0]), helper.make_tensor("si", TensorProto.INT64, [2], [0, 3]), [4])])
    function = helper.make_function("local", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                                    [helper.make_opsetid("", 17)])
    graph = helper.make_graph([helper.make_node("Double", ["x"], ["y"], domain="local")], "g",
                              [vi("x", f32, [2])], [vi("y", f32, [2])])
    proto = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    proto.ir_version = 8
    seeds["function"] = proto.SerializeToString()
    seeds["seq_input"] = model(
        [helper.make_node("ConcatFromSequence", ["xs"], ["y"], axis=0)],
        [helper.make_tensor_sequence_value_info("xs", f32, [2])], [vi("y", f32, [None])])
    for name, location in (("external", EXTERNAL_FILE), ("external_escape", "../../../../etc/passwd"),
                           ("external_abs", "/dev/zero")):
        tensor = numpy_helper.from_array(np.zeros(64, np.float32), "w")
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "256")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        seeds[name] = model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", f32, [64])],
                            [vi("y", f32, [64])], [tensor])
    onnx.checker.check_model(onnx.load_model_from_string(seeds["add_relu"]))
    return seeds


def load_seeds(builtins: Sequence[str]) -> list[tuple[str, bytes, float]]:
    """(name, bytes, weight) of every seed: the chosen built-in models, then the hand-built ones."""
    import hwkit

    seeds = []
    for name in builtins:
        model = hwkit.Model.builtin(name)
        data = model.path.read_bytes() if model.path else model.serialized
        seeds.append((name, data, BUILTIN_WEIGHTS.get(name, 1.0)))
    seeds += [(name, data, HAND_BUILT_WEIGHT) for name, data in hand_built_seeds().items()]
    return seeds


# -- mutations --------------------------------------------------------------------------------

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff\x0f", b"\xff" * 10, b"\x01", b"\x08"]


def _position(rng: random.Random, size: int) -> int:
    """Biased towards the head and tail, where ONNX puts nodes, signature and opsets."""
    if size <= 1:
        return 0
    roll = rng.random()
    if roll < 0.35:
        return rng.randrange(min(size, 4096))
    if roll < 0.7:
        return size - 1 - rng.randrange(min(size, 4096))
    return rng.randrange(size)


def mutate_bytes(data: bytearray, rng: random.Random, donors: Sequence[bytes]) -> tuple[bytearray, str]:
    kind = rng.choice(["flip", "flip", "delete", "insert", "truncate", "interesting", "splice", "duplicate"])
    size = len(data)
    at = _position(rng, size)
    if kind == "flip" and size:
        for _ in range(rng.randint(1, 8)):
            pos = _position(rng, size) if rng.random() < 0.5 else min(size - 1, at + rng.randrange(16))
            data[pos] ^= 1 << rng.randrange(8)
    elif kind == "delete" and size:
        del data[at:at + rng.randint(1, 16)]
    elif kind == "insert":
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "truncate":
        del data[rng.randrange(size + 1):]
    elif kind == "interesting":
        value = rng.choice(INTERESTING)
        data[at:at + len(value)] = value
    elif kind == "splice":
        donor = rng.choice(donors)
        start = _position(rng, len(donor))
        data[at:at + rng.randint(0, 64)] = donor[start:start + rng.randint(1, 256)]
    elif kind == "duplicate" and size:
        data[at:at] = data[at:at + rng.randint(1, 128)]
    return data, kind


def mutate_fields(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Edit a parsed proto: the structurally valid but semantically hostile cases."""
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
    except Exception:  # a previous byte mutation broke it: keep the bytes as they are
        return data, "fields-skipped"
    graph = proto.graph
    edits: list[Callable[[], None]] = []
    if graph.node:
        node = lambda: rng.choice(graph.node)  # noqa: E731
        edits += [
            lambda: setattr(node(), "op_type", rng.choice(["Add", "Conv", "Loop", "If", "Gather", "Reshape", "", "Nope", "MatMul", "Split", "Scan"])),
            lambda: setattr(node(), "domain", rng.choice(["", "ai.onnx.ml", "com.microsoft", "x" * 300, "local"])),
            lambda: node().input.append(rng.choice(["", "x", "y", "missing", "w"])),
            lambda: node().output.append(rng.choice(["", "y", "x", "dup"])),
            lambda: node().ClearField("input"),
            lambda: node().attribute.add().CopyFrom(onnx.helper.make_attribute(rng.choice(["axis", "to", "pads", "body", "keepdims"]), rng.choice([-(2**62), -1, 0, 1, 7, 2**40, [1, -1, 0], 3.5, "s"]))),
            lambda: graph.node.reverse(),
        ]
    for values in (graph.input, graph.output):
        if values:
            info = lambda v=values: rng.choice(v)  # noqa: E731
            edits += [
                lambda info=info: setattr(info().type.tensor_type, "elem_type", rng.choice([0, 8, 15, 17, 23, 25, 26, 99, 2**20])),
                lambda info=info: info().type.tensor_type.shape.dim.add().__setattr__("dim_value", rng.choice([-1, 0, 2**40, 7])),
                lambda info=info: info().type.tensor_type.shape.dim.add().__setattr__("dim_param", rng.choice(["", "n", "batch", "\x00"])),
                lambda info=info: info().type.ClearField("tensor_type"),
                lambda info=info: setattr(info(), "name", rng.choice(["", "x", "y", "b", "\u00e9"])),
            ]
    if graph.initializer:
        init = lambda: rng.choice(graph.initializer)  # noqa: E731
        edits += [
            lambda: init().dims.append(rng.choice([-1, 0, 3, 2**31, 2**62])),
            lambda: setattr(init(), "data_type", rng.choice([0, 1, 7, 8, 16, 99])),
            lambda: init().ClearField("dims"),
            lambda: setattr(init(), "data_location", 1),
            lambda: init().external_data.add().__setattr__("key", rng.choice(["location", "offset", "length"])),
        ]
    edits += [
        lambda: setattr(proto, "ir_version", rng.choice([0, 1, 3, 10, 11, 99, -1])),
        lambda: setattr(rng.choice(proto.opset_import) if proto.opset_import else proto.opset_import.add(), "version", rng.choice([0, 1, 6, 13, 21, 23, 999, -5])),
        lambda: proto.ClearField("opset_import"),
        lambda: graph.ClearField("output"),
        # Copies: extending a repeated field with itself crashes protobuf's upb backend.
        lambda: graph.input.extend([_copy(v) for v in graph.output]),
        lambda: graph.initializer.extend([_copy(t) for t in graph.initializer]),
    ]
    rng.choice(edits)()
    try:
        return proto.SerializeToString(), "fields"
    except Exception:  # e.g. an invalid UTF-8 string field: fall back to the bytes as they were
        return data, "fields-unserializable"


def _copy(message: Any) -> Any:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def make_case(case: int, seed: int, seeds: Sequence[tuple[str, bytes, float]]) -> tuple[str, bytes, str, str]:
    """Case number -> (seed name, mutated bytes, mutation kinds, mode 'bytes' | 'path'): deterministic."""
    rng = random.Random(seed * 1_000_003 + case)
    name, data, _ = rng.choices(seeds, weights=[w for *_, w in seeds])[0]
    donors = [d for _, d, _ in seeds if len(d) < 1_000_000] or [data]
    buffer, kinds = bytearray(data), []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if rng.random() < 0.3:
            mutated, kind = mutate_fields(bytes(buffer), rng)
            buffer = bytearray(mutated)
        else:
            buffer, kind = mutate_bytes(buffer, rng, donors)
        kinds.append(kind)
    return name, bytes(buffer), "+".join(kinds), rng.choice(["bytes", "path"])


# -- the code under test (runs in workers only) ---------------------------------------------

def classify(error: BaseException) -> str:
    from hwkit.errors import HwkitError

    if isinstance(error, HwkitError):
        return type(error).__name__
    return f"NON-HWKIT {type(error).__name__}"


def run_case(data: bytes, mode: str, folder: Path, backends: Sequence[str],
             stage: Callable[[str], None]) -> dict[str, Any]:
    """Load then compile on every backend; the outcome of each step as a string."""
    import hwkit

    outcome: dict[str, Any] = {}
    stage("load")
    try:
        if mode == "path":
            path = folder / "case.onnx"
            path.write_bytes(data)
            model = hwkit.Model.load(path)
        else:
            model = hwkit.Model.load(data)
        _ = model.sha256  # the fingerprint is part of loading for bench
    except Exception as e:
        outcome["load"] = classify(e)
        if outcome["load"].startswith("NON-HWKIT"):
            outcome["sample"] = "".join(traceback.format_exception(e)[-6:])[-2000:]
        return outcome
    outcome["load"] = "ok"
    for name in backends:
        stage(f"compile:{name}")
        try:
            with hwkit.compile(model, name, threads=1):
                pass
            outcome[name] = "ok"
        except Exception as e:
            outcome[name] = classify(e)
            if outcome[name].startswith("NON-HWKIT"):
                outcome["sample"] = "".join(traceback.format_exception(e)[-6:])[-2000:]
    return outcome


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (POSIX only; elsewhere the cap is skipped)."""
    try:
        import resource
    except ImportError:
        return
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def worker(conn: multiprocessing.connection.Connection, seed: int, builtins: list[str], backends: list[str],
           memory_mb: int = WORKER_MEMORY_MB) -> None:
    """Receive case numbers, send ("stage", name) before each step and ("done", outcome) after."""
    import warnings

    limit_memory(memory_mb)

    warnings.simplefilter("ignore")  # plugin and onnx warnings would flood the terminal
    seeds = load_seeds(builtins)
    with tempfile.TemporaryDirectory(prefix="hwkit-fuzz-") as tmp:
        folder = Path(tmp)
        (folder / EXTERNAL_FILE).write_bytes(EXTERNAL_BYTES)
        conn.send(("ready", None))
        while True:
            case = conn.recv()
            if case is None:
                return
            name, data, kinds, mode = make_case(case, seed, seeds)
            conn.send(("case", (name, kinds, mode)))  # so a crash can still be described
            outcome = run_case(data, mode, folder, backends, lambda s: conn.send(("stage", s)))
            conn.send(("done", outcome))


# -- the parent: schedules cases, survives crashes and hangs ---------------------------------

@dataclasses.dataclass
class Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    case: int | None = None
    meta: tuple[str, str, str] = ("?", "?", "?")  # seed model, mutations, mode
    stage: str = ""
    started: float = 0.0


@dataclasses.dataclass
class Tally:
    cases: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, case: int, meta: tuple[str, str, str], outcome: dict[str, Any]) -> None:
        self.cases += 1
        for step, result in outcome.items():
            if step != "sample":
                self.outcomes[f"{step}: {result}"] += 1
        bad = [f"{k}: {v}" for k, v in outcome.items() if k != "sample" and (v.startswith("NON-HWKIT") or v in ("CRASH", "HANG") or v.startswith("CRASH"))]
        if bad:
            self.findings.append({"case": case, "seed_model": meta[0], "mutations": meta[1], "mode": meta[2],
                                  "what": bad, "sample": outcome.get("sample", "")})


def fuzz(count: int, seed: int = 0, workers: int = 2, builtins: Sequence[str] = ("mlp", "encoder", "cnn"),
         timeout: float = CASE_TIMEOUT_S, progress: bool = False,
         memory_mb: int = WORKER_MEMORY_MB, backends: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``count`` cases on ``workers`` processes; returns the summary as a dict.
    ``backends``: the ones whose compile each loaded case goes through (default: every available).

    This process only schedules: it never parses, mutates, loads or compiles a case.
    """
    backends = list(backends) if backends else available_backends()
    ctx = multiprocessing.get_context("spawn")
    tally = Tally()
    crashes = hangs = 0
    begin = time.perf_counter()

    def start() -> Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker, args=(child, seed, list(builtins), backends, memory_mb), daemon=True)
        process.start()
        child.close()
        kind, _ = parent.recv()  # "ready": seeds built
        assert kind == "ready"
        return Worker(process, parent)

    pool = [start() for _ in range(max(1, workers))]
    pending = iter(range(count))
    live = reported = 0

    def dispatch(w: Worker) -> None:
        nonlocal live
        case = next(pending, None)
        w.case, w.meta, w.stage, w.started = case, ("?", "?", "?"), "", time.perf_counter()
        if case is not None:
            w.conn.send(case)
            live += 1

    for w in pool:
        dispatch(w)
    while live:
        ready = multiprocessing.connection.wait([w.conn for w in pool if w.case is not None] +
                                                [w.process.sentinel for w in pool if w.case is not None], timeout=1.0)
        now = time.perf_counter()
        for i, w in enumerate(pool):
            if w.case is None:
                continue
            died = w.process.sentinel in ready and not w.conn.poll()
            late = now - w.started > timeout
            if w.conn in ready or w.conn.poll():
                try:
                    kind, value = w.conn.recv()
                except EOFError:
                    died = True
                else:
                    if kind == "case":
                        w.meta = value
                        continue
                    if kind == "stage":
                        w.stage = value
                        continue
                    tally.add(w.case, w.meta, value)
                    live -= 1
                    dispatch(w)
                    continue
            if died or late:
                if died:
                    w.process.join(timeout=5)  # reap it, so its exit status is known
                code = w.process.exitcode
                how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
                verdict = "HANG" if late and not died else f"CRASH ({how})"
                crashes += verdict.startswith("CRASH")
                hangs += verdict == "HANG"
                tally.add(w.case, w.meta, {w.stage.replace("compile:", "") or "load": verdict})
                w.process.kill()
                w.process.join()
                live -= 1
                pool[i] = start()
                dispatch(pool[i])
        if progress and tally.cases and tally.cases % 500 == 0 and tally.cases != reported:
            reported = tally.cases
            print(f"  {tally.cases}/{count} cases, {time.perf_counter() - begin:.0f} s", file=sys.stderr, flush=True)
    for w in pool:
        w.conn.send(None)
        w.process.join(timeout=10)
        if w.process.is_alive():
            w.process.kill()
    elapsed = time.perf_counter() - begin
    load = collections.Counter({k.split(": ", 1)[1]: v for k, v in tally.outcomes.items() if k.startswith("load: ")})
    compiled = {b: dict(collections.Counter({k.split(": ", 1)[1]: v for k, v in tally.outcomes.items()
                                             if k.startswith(f"{b}: ")})) for b in backends}
    non_hwkit = sum(v for k, v in tally.outcomes.items() if "NON-HWKIT" in k)
    return {
        "count": count, "seed": seed, "workers": workers, "seconds": round(elapsed, 1),
        "backends": backends,
        "loaded": load.get("ok", 0),
        "rejected_by_load": {k: v for k, v in sorted(load.items()) if k != "ok"},
        "compile": compiled,
        "non_hwkit_exceptions": non_hwkit, "crashes": crashes, "hangs": hangs,
        "findings": tally.findings[:50],
        "mutations": "bit flips, byte deletions/insertions/overwrites, truncation, splicing, field edits",
    }


def available_backends() -> list[str]:
    import hwkit

    return [b.name for b in hwkit.backends() if b.status == "available"]


def replay(case: int, seed: int, builtins: Sequence[str], backends: Sequence[str] | None = None) -> int:
    """Run one case in this process (for debugging a finding), with the traceback shown."""
    seeds = load_seeds(builtins)
    name, data, kinds, mode = make_case(case, seed, seeds)
    print(f"case {case}: seed model {name}, mutations {kinds}, mode {mode}, {len(data)} bytes")
    backends = list(backends) if backends else available_backends()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / EXTERNAL_FILE).write_bytes(EXTERNAL_BYTES)
        outcome = run_case(data, mode, Path(tmp), backends, lambda s: print(f"  {s}"))
    print(json.dumps(outcome, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000, help="cases to run (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutations (%(default)s)")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--builtins", default="mlp,encoder,cnn", help="built-in models used as seeds")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT_S, help="seconds per case before it is a hang")
    parser.add_argument("--backends", help="comma list of backends to compile with (default: every available one)")
    parser.add_argument("--case", type=int, help="replay this one case in-process and show its outcome")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    args = parser.parse_args(argv)
    builtins = [b for b in args.builtins.split(",") if b]
    backends = [b for b in (args.backends or "").split(",") if b] or None
    if args.case is not None:
        return replay(args.case, args.seed, builtins, backends)
    summary = fuzz(args.count, args.seed, args.workers, builtins, args.timeout, progress=True, backends=backends)
    text = json.dumps(summary, indent=2)
    if args.json:
        from hwkit._files import atomic_write

        atomic_write(args.json, text + "\n")
    print(text)
    return 1 if summary["non_hwkit_exceptions"] or summary["crashes"] or summary["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
