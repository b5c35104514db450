"""ONNX -> TensorFlow SavedModel (and LiteRT flatbuffers) with onnx2tf, cached by content.

One conversion serves both backends: the ``tensorflow`` backend loads the SavedModel, the
``litert`` backend the .tflite made from it (float32 or float16, each made once, when first
asked for). The cache key is the model's sha256, the conversion settings and the versions of
onnx2tf, TensorFlow and tf-keras; an entry is written to a temporary folder and renamed into
place (``hwkit_tensorflow.cache``). The work runs in a child process (``convert_worker``) whose
output is kept and read only to diagnose a failure (``failures``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hwkit import Model
from hwkit.backend import refuse_unknown_domains
from hwkit.errors import CompileError, UnsupportedOpError

from hwkit_tensorflow import cache
from hwkit_tensorflow.common import library_versions
from hwkit_tensorflow.convert_worker import onnx2tf_settings
from hwkit_tensorflow.failures import conversion_failed

FORMAT = 3  # bump when what the worker writes changes: old entries are then not reused
KNOWN_DOMAINS = {"", "ai.onnx"}  # onnx2tf converts standard ONNX ops only
TFLITE_VARIANTS = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class Conversion:
    """A converted model in the cache.

    Attributes:
        folder: the cache entry (saved_model/, meta.json, <variant>.tflite).
        meta: meta.json: each input's and output's signature name and layout, conversion time.
        reused: whether the entry was already there (no conversion ran in this call).
    """

    folder: Path
    meta: dict[str, Any]
    reused: bool

    @property
    def saved_model(self) -> Path:
        return self.folder / "saved_model"


def spec_of(model: Model, for_litert: bool = False) -> dict[str, Any]:
    """What the worker needs to know: the graph's inputs and outputs, and the ops to replace."""
    def entry(spec: Any) -> dict[str, Any]:
        shape = None if spec.shape is None else [d if isinstance(d, int) else None for d in spec.shape]
        return {"name": spec.name, "dtype": spec.dtype, "shape": shape}
    return {"inputs": [entry(s) for s in model.inputs], "outputs": [entry(s) for s in model.outputs],
            "pseudo": pseudo_operators(model) if for_litert else []}


def pseudo_operators(model: Model) -> list[str]:
    """The ops LiteRT has no builtin kernel for, which onnx2tf then writes with builtin ones.

    Erf: TFLite has none (only the Flex delegate, which ai-edge-litert lacks, runs tf.Erf);
    onnx2tf's pseudo Erf is Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7, about one fp32 ulp of
    erf's range. Used for the litert conversion only; tensorflow keeps tf.math.erf, so a graph
    with Erf is converted twice, others once for both.
    """
    return ["erf"] if "Erf" in _op_types(model.proto.graph) else []


def cache_key(model: Model, for_litert: bool = False) -> str:
    settings = onnx2tf_settings(spec_of(model, for_litert))
    record = {"format": FORMAT, "model": model.sha256, "settings": settings, "versions": library_versions()}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


def convert(model: Model, backend: str, for_litert: bool = False, variants: tuple[str, ...] = ()) -> Conversion:
    """The model's cached conversion, converting it first if needed. Raises UnsupportedOpError
    (every op onnx2tf lacks, listed at once) or CompileError, one line naming the fix.

    ``variants``: the .tflite files to make in the same child when it converts; ``tflite``
    makes them later for an entry converted without them. float32 is always made when the entry
    can serve litert: importing TensorFlow and onnx2tf takes a child 3-5 s, converting a small
    graph to .tflite 0.2-1 s (the built-in cnn: 1.1 s), so the tensorflow backend pays that once
    to spare a later litert compile a second child.
    """
    refuse(model, backend)
    entry = cache.root() / cache_key(model, for_litert)
    found = _complete(entry)
    if found is None:
        with cache.exclusive(entry):
            found = _complete(entry)  # another process may have built it while we waited
            if found is None:
                serves_litert = for_litert or not pseudo_operators(model)
                made = sorted({*variants, *(["float32"] if serves_litert else [])})
                _build(model, backend, for_litert, tuple(made), entry)
                return Conversion(entry, _meta(entry), reused=False)
    return found


def _complete(entry: Path) -> Conversion | None:
    if (entry / "meta.json").is_file() and (entry / "saved_model" / "saved_model.pb").is_file():
        return Conversion(entry, _meta(entry), reused=True)
    return None


def _build(model: Model, backend: str, for_litert: bool, variants: tuple[str, ...], entry: Path) -> None:
    if entry.exists():  # incomplete (a file removed by hand): build it again
        shutil.rmtree(entry, ignore_errors=True)
    building = cache.scratch_folder(entry.parent)
    try:
        (building / "model.onnx").write_bytes(model.serialized)  # onnx2tf rewrites its input file
        (building / "spec.json").write_text(json.dumps(spec_of(model, for_litert)), encoding="utf-8")
        _run_child(model, backend, "onnx2tf", ["saved_model", str(building / "model.onnx"), str(building),
                                                str(building / "spec.json"), ",".join(variants)])
        for leftover in ("scratch", "model.onnx"):  # onnx2tf's scratch, our copy: not needed to run
            path = building / leftover
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        cache.publish_folder(building, entry)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone already when published


def tflite(conversion: Conversion, variant: str, model: Model, backend: str) -> Path:
    """The conversion's .tflite of ``variant`` (float32 | float16), made once."""
    if variant not in TFLITE_VARIANTS:
        raise CompileError(f"unknown LiteRT variant {variant!r}; use one of {', '.join(TFLITE_VARIANTS)}")
    path = conversion.folder / f"{variant}.tflite"
    failed = path.with_name(path.name + ".failed")
    if failed.is_file():  # the conversion child tried already: the same inputs fail the same way
        raise conversion_failed(model, backend, "tflite", 3, failed.read_text(encoding="utf-8"))
    if path.is_file():
        return path
    with cache.exclusive(path):
        if path.is_file():  # made by another process while we waited
            return path
        building = cache.scratch_folder(conversion.folder)
        try:
            _run_child(model, backend, "tflite", ["tflite", str(conversion.saved_model), variant,
                                                   str(building / path.name)])
            cache.publish_file(building / path.name, path)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return path


def refuse(model: Model, backend: str) -> None:
    """What onnx2tf cannot convert, refused before converting: ops of other domains, ops it has
    no converter for (all listed at once), sequences and optionals."""
    refuse_unknown_domains(model, backend, KNOWN_DOMAINS)
    lacking = sorted({op for op in _op_types(model.proto.graph) if not _has_converter(op)})
    if lacking:
        raise UnsupportedOpError(backend, model.nodes_by_op(lacking))
    others = [str(spec) for spec in [*model.inputs, *model.outputs] if spec.kind != "tensor"]
    if others:
        raise CompileError(f"{backend} takes tensors only, not {', '.join(others)}; use onnxruntime or cpu")


def _op_types(graph: Any) -> set[str]:
    found = set()
    for node in graph.node:
        found.add(node.op_type)
        for attribute in node.attribute:  # If / Loop / Scan bodies
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                found |= _op_types(sub)
    return found


def _has_converter(op_type: str) -> bool:
    return op_type in _converters()


@functools.cache
def _converters() -> frozenset[str]:
    """The ops onnx2tf has a converter module for (onnx2tf/ops/<Op>.py), listed once, without
    importing onnx2tf (which imports TensorFlow)."""
    spec = importlib.util.find_spec("onnx2tf")
    folders = [Path(folder) / "ops" for folder in (spec.submodule_search_locations or [])] if spec else []
    return frozenset(path.stem for folder in folders if folder.is_dir() for path in folder.glob("[!_]*.py"))


def _run_child(model: Model, backend: str, stage: str, args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "hwkit_tensorflow.convert_worker", *args],
                          capture_output=True, text=True, errors="replace", check=False)
    if done.returncode != 0:
        raise conversion_failed(model, backend, stage, done.returncode, done.stdout + "\n" + done.stderr)


def _meta(entry: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    return loaded
