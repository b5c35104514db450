"""The conversion itself, run in a child process by ``hwkit_tensorflow.convert``.

A child, because onnx2tf prints a great deal, calls ``sys.exit`` on failure, starts
TensorFlow's thread pools (which the tensorflow backend must still be able to size) and keeps
global state; the parent reads the child's output and exit status and maps them in one place
(``hwkit_tensorflow.failures``).

    python -m hwkit_tensorflow.convert_worker saved_model MODEL.onnx OUT_DIR SPEC.json [VARIANT,...]
    python -m hwkit_tensorflow.convert_worker tflite SAVED_MODEL_DIR float32|float16 OUT.tflite

``saved_model`` writes OUT_DIR/saved_model (signature ``serving_default``: inputs ``input_<i>``
and outputs ``output_<i>`` in the ONNX graph's order, layouts and dtypes) and OUT_DIR/meta.json,
then, in the same process (TensorFlow is imported once), OUT_DIR/<VARIANT>.tflite for each
variant asked for; a variant that fails leaves OUT_DIR/<VARIANT>.tflite.failed, its one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hwkit.errors import CompileError

from hwkit_tensorflow import layout

FAILURE = "HWKIT-FAILURE: "  # the line the parent looks for: the child's own one-line diagnosis
SIGNATURE = "serving_default"


def onnx2tf_settings(spec: dict[str, Any]) -> dict[str, Any]:
    """onnx2tf's arguments besides the paths: part of the cache key (``convert.cache_key``).

    onnxsim is off (it is not a dependency, and onnx2tf would spawn it three times to fail);
    ``disable_model_save`` returns the Keras model without onnx2tf's own exports: its TFLite
    export serialises the Keras model's config, weights included, as JSON (the built-in cnn:
    100.5 s by default, 1.3 s for the Keras model alone); hwkit exports SavedModel and .tflite itself.
    """
    settings = {
        "non_verbose": True,
        "not_use_onnxsim": True,
        "disable_model_save": True,
        "keep_ncw_or_nchw_or_ncdhw_input_names": layout.inputs_to_keep(_Specs(spec["inputs"])) or None,
    }
    if spec.get("pseudo"):  # onnx2tf's names, e.g. "erf": see convert.pseudo_operators
        settings["replace_to_pseudo_operators"] = sorted(spec["pseudo"])
    return settings


class _Spec:
    def __init__(self, entry: dict[str, Any]) -> None:
        self.name: str = entry["name"]
        self.dtype: str = entry["dtype"]
        self.shape: list[Any] | None = entry["shape"]


class _Specs(list[_Spec]):
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        super().__init__(_Spec(e) for e in entries)


def to_saved_model(onnx_path: str, out_dir: str, spec_path: str, variants: str = "") -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    inputs, outputs = _Specs(spec["inputs"]), _Specs(spec["outputs"])
    started = time.perf_counter()
    import onnx2tf
    import tensorflow as tf

    settings = onnx2tf_settings(spec)
    seconds = {"import": time.perf_counter() - started}
    with _tensor_records() as records:
        keras = onnx2tf.convert(input_onnx_file_path=onnx_path, output_folder_path=os.path.join(out_dir, "scratch"),
                                **settings)
    seconds["onnx2tf"] = time.perf_counter() - started - sum(seconds.values())
    if len(keras.inputs) != len(inputs) or len(keras.outputs) != len(outputs):
        _fail(f"onnx2tf made a model with {len(keras.inputs)} inputs and {len(keras.outputs)} outputs, "
              f"the graph has {len(inputs)} and {len(outputs)}")
    for spec_in, tensor in zip(inputs, keras.inputs):
        if layout.mismatch(spec_in.shape, list(tensor.shape)):
            _fail(f"onnx2tf changed input '{spec_in.name}' from {spec_in.shape} to {list(tensor.shape)}")
    ranks = [len(t.shape) for t in keras.outputs]
    outputs_recorded = {s.name: {**records.get(s.name, {}), "tf_shape": list(t.shape), "onnx_shape": s.shape}
                        for s, t in zip(outputs, keras.outputs) if s.name in records}
    perms = layout.output_permutations([s.name for s in outputs], ranks, outputs_recorded)
    for spec_out, tensor, perm in zip(outputs, keras.outputs, perms):
        back = layout.permuted(list(tensor.shape), perm)
        if layout.mismatch(spec_out.shape, back):
            _fail(f"output '{spec_out.name}' is {back} in the graph's layout after onnx2tf, the graph says {spec_out.shape}")

    signature = [tf.TensorSpec([d if isinstance(d, int) else None for d in s.shape] if s.shape is not None else None,
                               tf.as_dtype(s.dtype), name=f"input_{i}") for i, s in enumerate(inputs)]
    keras_dtypes = [t.dtype for t in keras.inputs]
    out_dtypes = [tf.as_dtype(s.dtype) for s in outputs]

    @tf.function(input_signature=signature)
    def serve(*xs: Any) -> dict[str, Any]:
        feeds = [x if x.dtype == d else tf.cast(x, d) for x, d in zip(xs, keras_dtypes)]
        results = keras(feeds)
        results = list(results) if isinstance(results, (list, tuple)) else [results]
        named = {}
        for i, (value, perm, dtype) in enumerate(zip(results, perms, out_dtypes)):
            if perm != sorted(perm):
                value = tf.transpose(value, perm)
            named[f"output_{i}"] = value if value.dtype == dtype else tf.cast(value, dtype)
        return named

    # The Keras model is closed over, not an attribute: tracked, it would be saved with its
    # Keras metadata, whose JSON config holds every weight as a Python list (32 of the 35 s the
    # built-in cnn took). Its variables (Keras layers onnx2tf uses keep their weights in some)
    # are tracked as a plain list instead.
    exported = tf.Module()
    exported.serve = serve
    exported.keras_variables = list(keras.variables)
    tf.saved_model.save(exported, os.path.join(out_dir, "saved_model"), signatures={SIGNATURE: serve})
    seconds["saved_model"] = time.perf_counter() - started - sum(seconds.values())
    for variant in filter(None, variants.split(",")):
        try:
            to_tflite(os.path.join(out_dir, "saved_model"), variant, os.path.join(out_dir, f"{variant}.tflite"))
        except Exception as e:  # noqa: BLE001 - kept for the litert backend to report; the SavedModel is fine
            Path(out_dir, f"{variant}.tflite.failed").write_text(f"{FAILURE}{type(e).__name__}: {e}", encoding="utf-8")
        seconds[variant] = time.perf_counter() - started - sum(seconds.values())
    kept = set(settings["keep_ncw_or_nchw_or_ncdhw_input_names"] or [])
    meta = {
        # Every input is fed as the graph declares it: 3-5-D ones because onnx2tf was told to keep
        # them, the others because onnx2tf transposes no other rank.
        "inputs": [{"name": s.name, "signature": f"input_{i}", "kept_by_option": s.name in kept}
                   for i, s in enumerate(inputs)],
        "outputs": [{"name": s.name, "signature": f"output_{i}", "channel_last": perm != sorted(perm),
                     "permutation": perm} for i, (s, perm) in enumerate(zip(outputs, perms))],
        "seconds": {stage: round(value, 3) for stage, value in seconds.items()},
    }
    Path(out_dir, "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


@contextlib.contextmanager
def _tensor_records() -> Iterator[dict[str, dict[str, Any]]]:
    """onnx2tf's per-tensor records (its ``tf_layers_dict``, local to ``convert``), caught where
    ``convert`` hands it to ``get_tf_model_outputs``: the layout flags of the outputs (see
    ``layout``) are kept, the TensorFlow objects are not."""
    module = sys.modules["onnx2tf.onnx2tf"]
    original = getattr(module, "get_tf_model_outputs")  # onnx2tf has no type information
    records: dict[str, dict[str, Any]] = {}

    def catch(*args: Any, **kwargs: Any) -> Any:
        for name, entry in kwargs["tf_layers_dict"].items():
            records[name] = {key: entry[key] for key in ("before_op_output_shape_trans", "nhwc") if key in entry}
        return original(*args, **kwargs)

    setattr(module, "get_tf_model_outputs", catch)
    try:
        yield records
    finally:
        setattr(module, "get_tf_model_outputs", original)
    if not records:
        _fail("onnx2tf gave hwkit no per-tensor records (its internals changed), so the outputs' layouts are "
              "unknown; use onnx2tf 1.29.24 (hwkit install tensorflow)")


def to_tflite(saved_model: str, variant: str, out_path: str) -> None:
    """LiteRT flatbuffer of the SavedModel: float32, or float16 (weights stored in fp16, as
    onnx2tf's own *_float16.tflite). LiteRT builtin ops only: the Flex (TF ops) delegate is not
    part of ai-edge-litert, so a model needing it fails here, with the ops named."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    Path(out_path).write_bytes(converter.convert())


def _fail(message: str) -> None:
    print(FAILURE + message, file=sys.stderr, flush=True)
    raise SystemExit(3)


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the parent keeps the output only to diagnose
    mode, *args = argv
    try:
        if mode == "saved_model":
            to_saved_model(*args)
        elif mode == "tflite":
            to_tflite(*args)
        else:
            _fail(f"unknown mode {mode!r}")
    except SystemExit:
        raise
    except CompileError as e:  # hwkit's own verdict (layout): already one line, no type name needed
        _fail(str(e))
    except BaseException as e:  # noqa: BLE001 - the child's job is to report any failure in one line
        text = " ".join(str(e).split())
        print(f"{FAILURE}{type(e).__name__}: {text}", file=sys.stderr, flush=True)
        raise SystemExit(3) from e
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
