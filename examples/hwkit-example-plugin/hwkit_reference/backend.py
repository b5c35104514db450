"""ONNX's ReferenceEvaluator as a hwkit backend: pure numpy, slow, but the specification's own
semantics, which makes it a correctness oracle for the other backends.

The SDK's exceptions are mapped to hwkit errors in ``_sdk_errors`` (one place), chained with
``raise ... from`` so that the original stays available.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from hwkit import Backend, BackendOptions, Device, Executable, Model
from hwkit.backend import refuse_unknown_domains
from hwkit.errors import CompileError, ExecutionError, ModelError, UnsupportedOpError, first_line

# Domains the reference evaluator implements; a node of any other domain cannot run (unless the
# model defines it as a local function, which the evaluator inlines).
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "experimental"}


@dataclasses.dataclass(frozen=True)
class ReferenceOptions(BackendOptions):
    """Options of the reference backend.

    Attributes:
        threads: accepted for the bench's sake, but numpy's BLAS decides its own threads.
        verbose: the evaluator's trace level (0 silent, up to 4); traces go to stdout.
        check_shapes: check every intermediate result against the graph's shape annotations.
    """

    verbose: int = 0
    check_shapes: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.verbose, int) or not 0 <= self.verbose <= 4:
            from hwkit.errors import OptionError

            raise OptionError(f"option verbose must be a whole number from 0 to 4, got {self.verbose!r}")


class ReferenceBackend(Backend[ReferenceOptions]):
    """Runs the graph with ``onnx.reference.ReferenceEvaluator`` on the CPU."""

    name = "reference"
    Options = ReferenceOptions
    requires = ("onnx.reference",)  # hwkit says "unavailable" with the reason if it is missing
    install_hint = "pip install onnx"
    in_default_runs = False  # exact but slow: an oracle to name with -b, not to time by default

    def devices(self) -> list[Device]:
        return [Device("cpu", "cpu", "onnx reference evaluator")]

    def versions(self) -> dict[str, str]:
        import onnx

        return {"onnx": onnx.__version__}

    def compile(self, model: Model, device: Device, options: ReferenceOptions) -> Executable:
        # hwkit always passes this backend's own Options, parsed and checked.
        if device.name != "cpu":  # only one device: anything else is a caller's mistake
            raise CompileError(f"backend 'reference' runs on 'cpu' only, not '{device.name}'")
        return ReferenceExecutable(model, device, options)


class ReferenceExecutable(Executable):
    """One ReferenceEvaluator; it holds only the graph, so close just drops it."""

    def __init__(self, model: Model, device: Device, options: ReferenceOptions) -> None:
        from onnx.reference import ReferenceEvaluator

        super().__init__(model, device, options)
        # List every unsupported op at once, before the evaluator stops at the first one.
        refuse_unknown_domains(model, "reference", KNOWN_DOMAINS)
        with _sdk_errors(model, "compile"):
            self.evaluator: Any = ReferenceEvaluator(
                model.proto, verbose=options.verbose, check_shape_annotations=options.check_shapes)
        self.output_names = [s.name for s in model.outputs]

    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with _sdk_errors(self.model, "run"):
            results = self.evaluator.run(self.output_names, dict(inputs))
        # The evaluator may return numpy scalars for 0-d results: hwkit promises arrays.
        return {name: np.asarray(value) for name, value in zip(self.output_names, results)}

    def close(self) -> None:
        self.evaluator = None
        super().close()


@contextlib.contextmanager
def _sdk_errors(model: Model, stage: str) -> Iterator[None]:
    """The evaluator's exceptions -> hwkit's, in one place."""
    try:
        yield
    except NotImplementedError as e:
        # "Unable to find op_type='X' ..." / "... node type: 'X'": an op the evaluator lacks.
        match = re.search(r"op_type=['\"]?(\w+)|node type: '(\w+)'", str(e))
        if match and stage == "compile":
            op = match.group(1) or match.group(2)
            raise UnsupportedOpError("reference", model.nodes_by_op([op])) from e
        error = CompileError if stage == "compile" else ExecutionError
        raise error(f"reference evaluator cannot {stage} '{model.name}': {first_line(e)}") from e
    except (ValueError, TypeError) as e:
        if stage == "run" and "shape" in str(e).lower():
            raise ModelError(f"reference evaluator rejected the inputs: {first_line(e)}") from e
        error = CompileError if stage == "compile" else ExecutionError
        raise error(f"reference evaluator failed to {stage} '{model.name}': {first_line(e)}") from e
    except (RuntimeError, KeyError, IndexError, AttributeError) as e:  # what numpy kernels raise
        error = CompileError if stage == "compile" else ExecutionError
        raise error(f"reference evaluator failed to {stage} '{model.name}': "
                    f"{type(e).__name__}: {first_line(e)}") from e
