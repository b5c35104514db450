"""Fixtures of the hwkit-tensorflow tests: one conversion cache for the whole run (every xdist
worker), and TensorFlow's thread pools sized once per worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for every worker of this run: conversions are slow, and keyed by content."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "hwkit-tensorflow-cache"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def tensorflow_threads() -> int:
    """TensorFlow's pools sized once for the worker, before any test starts them: the kit
    compiles with threads=1 and TensorFlow cannot resize them afterwards."""
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != 1:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as e:  # pragma: no cover - something started TensorFlow before the tests
            pytest.fail(f"TensorFlow started before the hwkit-tensorflow tests could size its pools: {e}")
    return 1


@pytest.fixture(autouse=True)
def _shared_cache(conversions: Path, tensorflow_threads: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(conversions))
    yield
