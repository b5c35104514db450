"""int8: one statically quantised QDQ graph, made by hwkit from the fp32 graph, that every
backend compiles (ONNX Runtime and OpenVINO run it with int8 kernels; the torch backends
through the converter).

The quantiser is ONNX Runtime's (``onnxruntime.quantization.quantize_static``): QDQ format,
per-channel symmetric int8 weights, asymmetric uint8 activations with MinMax ranges, on the ops
that carry the arithmetic (``QUANTIZED_OPS``) but the ones nearest the outputs, which stay fp32
(``_final_layers``). Why this quantiser and not NNCF: docs/precision.md.
It is imported only when int8 is asked for; hwkit's core does not depend on onnxruntime.

The graph is cached in hwkit's cache folder, keyed by the model's content hash and every setting
that changes it (quantiser version, calibration source: seed, samples and shapes, or the file's
sha256), so a second run reads it instead of quantising again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hwkit._files import cache_dir, read_cached, write_cached
from hwkit.errors import ModelError, OptionError, first_line
from hwkit.model.calibration import calibration_sets, calibration_source
from hwkit.model.external import PARSE_ERRORS, has_external
from hwkit.model.model import Model

QUANTIZER_VERSION = 3  # part of the cache key: bump when hwkit's settings change the graph it makes
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # the ops int8 kernels speed up
PER_CHANNEL_OPSET = 13  # DequantizeLinear's axis (per-channel scales) is opset 13's
INSTALL = "pip install onnxruntime (or hwkit-onnxruntime, which brings it)"


@dataclasses.dataclass(frozen=True)
class Quantized:
    """The int8 graph and how it was made.

    Attributes:
        model: the QDQ graph, loaded from hwkit's content-addressed cache; same inputs and
            outputs (names, dtypes, shapes) as the fp32 model, same name and default dims.
        settings: the quantiser and its version, per_channel, weight/activation types, the ops
            quantised and the calibration source (seeded N samples, or a file and its sha256);
            a result records it verbatim.
    """

    model: Model
    settings: dict[str, Any]


def quantize_int8(model: Model, *, seed: int = 0, shapes: Mapping[str, Sequence[int]] | None = None,
                  dims: Mapping[str, int] | None = None, calibration: str | os.PathLike[str] | None = None,
                  samples: int | None = None) -> Quantized:
    """The int8 QDQ graph of ``model`` (cached), calibrated on seeded inputs of the given
    ``shapes``/``dims`` (``samples`` of them, default ``calibration.DEFAULT_SAMPLES``) or on
    the ``calibration`` ``.npz`` file (all its samples, or the first ``samples``).

    Raises:
        ModelError: a graph with no op to quantise, a calibration file that does not fit the
            model (naming what it expects), or a graph the quantiser cannot handle.
        OptionError: onnxruntime (the quantiser) is not installed, or ``samples`` < 1.
    """
    counts = {op: len(nodes) for op, nodes in model.nodes_by_op(QUANTIZED_OPS).items() if nodes}
    if not counts:
        raise ModelError(f"model '{model.name}' has nothing to quantise to int8: no {', '.join(QUANTIZED_OPS)} node "
                         "(int8 kernels speed up matrix multiplies and convolutions only); run it at fp32, bf16 or fp16")
    kept = _final_layers(model)
    for node in model.proto.graph.node:
        if node.name in kept:
            counts[node.op_type] -= 1
    version = _quantizer_version()
    source = calibration_source(model, seed=seed, shapes=shapes, dims=dims, calibration=calibration, samples=samples)
    settings: dict[str, Any] = {
        "quantizer": f"onnxruntime.quantization {version}", "hwkit_quantizer": QUANTIZER_VERSION,
        "format": "QDQ", "per_channel": True, "weight_type": "int8 symmetric", "activation_type": "uint8 asymmetric",
        "calibration_method": "MinMax", "ops": list(QUANTIZED_OPS), "quantised_nodes": {op: n for op, n in counts.items() if n},
        "kept_fp32": kept, "calibration": source,
    }
    if model.opset < PER_CHANNEL_OPSET:
        settings["opset_converted"] = f"{model.opset} -> {PER_CHANNEL_OPSET}"
    key = hashlib.sha256(json.dumps({"model": model.sha256, **settings}, sort_keys=True).encode()).hexdigest()
    entry = cache_dir("quantized") / f"{key[:32]}.onnx"
    if read_cached(entry, _not_onnx) is None:
        sets = calibration_sets(model, source, shapes=shapes, dims=dims)
        entry = write_cached(entry, _quantize(model, sets, kept))
    quantized = Model.load(entry)
    quantized.name = model.name
    quantized.default_dims = dict(model.default_dims)
    if source["source"] == "file" and source["samples"] is None:  # record how many the file held
        settings["calibration"] = {**source, "samples": "all"}
    return Quantized(quantized, settings)


def _quantizer_version() -> str:
    if importlib.util.find_spec("onnxruntime") is None:
        raise OptionError(f"int8 needs hwkit's quantiser, which is ONNX Runtime's: {INSTALL}")
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return "unknown"


def _final_layers(model: Model) -> list[str]:
    """The quantisable nodes with no quantisable node after them (a classifier's head, a
    pooler), kept in fp32: quantised, a head turns near-ties of its logits into flips (the
    built-in cnn: top-1 agreement with fp32 85% with it, 96.5% without, at the same speed, one
    layer of many being small). Only named nodes (the quantiser excludes by name), and only when
    other nodes are left to quantise. ONNX lists nodes in topological order, so one backward
    pass finds them."""
    graph = model.proto.graph

    def quantisable(node: onnx.NodeProto) -> bool:
        return node.op_type in QUANTIZED_OPS and node.domain in ("", "ai.onnx")

    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    feeds_one = [False] * len(graph.node)  # a quantisable node lies after this node
    for index in reversed(range(len(graph.node))):
        after = [c for out in graph.node[index].output for c in consumers.get(out, ()) if c > index]
        feeds_one[index] = any(quantisable(graph.node[c]) or feeds_one[c] for c in after)
    final = [node.name for index, node in enumerate(graph.node) if quantisable(node) and not feeds_one[index]]
    total = sum(1 for node in graph.node if quantisable(node))
    return [name for name in final if name] if len(final) < total else []


def _quantize(model: Model, sets: list[dict[str, np.ndarray]], kept: list[str]) -> bytes:
    """The QDQ graph's bytes. ORT's quantiser works on files (given a ModelProto it rewrites
    that proto's tensors to external data), so it reads a copy in a temporary folder, or the
    model's own file when its weights stay in external data files."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.sets: Iterator[dict[str, np.ndarray]] = iter(sets)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.sets, None)

    external = bool(model.external_files) and has_external(model.proto)
    with tempfile.TemporaryDirectory(prefix="hwkit-quantize-") as folder, _quiet() as said:
        source = Path(folder) / "fp32.onnx"
        if model.opset < PER_CHANNEL_OPSET:
            source.write_bytes(_upgraded(model))
        elif external and model.path is not None:
            source = model.path
        else:
            source.write_bytes(model.serialized)
        target = Path(folder) / "int8.onnx"
        try:
            quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=kept,
                            calibrate_method=CalibrationMethod.MinMax,
                            use_external_data_format=external)
            proto = onnx.load(str(target))  # external data, if any, read back in
            onnx.checker.check_model(proto, full_check=False)  # never cache a graph no runtime would load
        except Exception as e:  # the quantiser's own errors, from any of its layers
            tail = said.getvalue().strip().splitlines()[-1:]
            raise ModelError(f"onnxruntime could not quantise '{model.name}' to int8 ({type(e).__name__}: "
                             f"{first_line(e)}{'; it said: ' + tail[0] if tail else ''}); run it at fp32, bf16 or fp16"
                             ) from e
    try:
        return bytes(proto.SerializeToString())
    except ValueError as e:  # protobuf refuses messages over 2 GB
        raise ModelError(f"the int8 graph of '{model.name}' is over 2 GB, more than hwkit caches as one file; "
                         "quantise it with onnxruntime.quantization yourself and pass the result") from e


def _upgraded(model: Model) -> bytes:
    """The graph converted to opset 13, the first whose DequantizeLinear takes per-channel scales
    (ORT's quantiser would write them into an older opset, making an invalid graph)."""
    if model.external_files and has_external(model.proto):
        raise ModelError(f"model '{model.name}' is at opset {model.opset}; int8 needs opset {PER_CHANNEL_OPSET} or "
                         "newer for per-channel weights: re-export it at a newer opset")
    from onnx import version_converter

    try:
        return bytes(version_converter.convert_version(model.proto, PER_CHANNEL_OPSET).SerializeToString())
    except Exception as e:  # the converter's errors, from its C++ core
        raise ModelError(f"model '{model.name}' is at opset {model.opset} and onnx cannot convert it to opset "
                         f"{PER_CHANNEL_OPSET}, which int8's per-channel weights need ({type(e).__name__}: "
                         f"{first_line(e)}); re-export it at opset {PER_CHANNEL_OPSET} or newer") from e


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep the quantiser's progress prints and logging warnings off the terminal (they are
    about its internals, such as per-channel axes it skips); what it said goes into an error."""
    said = io.StringIO()
    handler = logging.StreamHandler(said)
    root = logging.getLogger()
    previous = root.handlers[:], root.level
    root.handlers, root.level = [handler], logging.WARNING
    try:
        with contextlib.redirect_stdout(said):
            yield said
    finally:
        root.handlers, root.level = previous


def _not_onnx(data: bytes) -> str | None:
    try:
        onnx.load_from_string(data)
    except PARSE_ERRORS as e:
        return f"not an ONNX graph: {type(e).__name__}"
    return None
