"""Real architectures exported with dynamic batch and sequence axes: one converted graph runs
every shape, and agrees with onnxruntime (fp32 profile) at each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hwkit
from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import tolerance
from hwkit.testing import require_backend

pytest.importorskip("torch")
pytest.importorskip("transformers", reason="transformers (a development dependency) is not installed")

import hf_models  # this folder's helpers: pytest puts the folder on sys.path  # noqa: E402

SHAPES = [(1, 5), (3, 5), (1, 13), (3, 13)]  # two batch sizes x two sequence lengths


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hf_dynamic")
    return {kind: hf_models.export_encoder(kind, folder / f"{kind}.onnx") for kind in hf_models.ARCHITECTURES}


def _inputs(batch: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), np.int64)
    mask[0, seq - 2:] = 0  # padding, so the attention mask takes part
    return {"input_ids": rng.integers(0, hf_models.VOCAB, (batch, seq)).astype(np.int64), "attention_mask": mask}


@pytest.mark.slow
@pytest.mark.parametrize("kind", hf_models.ARCHITECTURES)
def test_dynamic_axes_run_every_shape_and_agree(exported, kind):
    require_backend("cpu")
    require_backend("onnxruntime")
    model = hwkit.Model.load(exported[kind])
    assert any(isinstance(d, str) or d is None for d in model.inputs[0].shape), "export lost its dynamic axes"
    tol = tolerance("fp32")
    # One Executable (one conversion) serves all four shapes.
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", threads=1) as exe:
        for i, (batch, seq) in enumerate(SHAPES):
            inputs = _inputs(batch, seq, i)
            expected, actual = ref.run(inputs), exe.run(inputs)
            got = actual["hidden"]
            assert got.shape == (batch, seq, 32)
            agreement = compare_output("hidden", expected["hidden"], got, tol)
            assert agreement.passed, f"{kind} at batch {batch}, seq {seq}: {agreement.to_dict()}"
