"""A first run without torch (``pip install hwkit hwkit-onnxruntime hwkit-openvino``): the
built-in models and ``hwkit bench`` work at once.

In the main suite torch is installed, so each check runs in fresh processes where ``import
torch`` fails: a ``torch`` package that raises ModuleNotFoundError comes first on PYTHONPATH, so
the backends' own processes cannot import it either. ``make test-no-torch`` runs this file again
in a virtual environment that really has no torch (the real install).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hwkit.model.zoo import BUILTIN_MODELS, ZOO_VERSION
from hwkit.testing import require_backend
from tests.helpers import FAST_BENCH

NO_TORCH = 'raise ModuleNotFoundError("No module named \'torch\'", name="torch")\n'


@pytest.fixture
def without_torch(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine without torch, with a fresh (empty) cache and only the
    runtimes of that install (hwkit-torch's backends would say 'torch is not installed')."""
    (tmp_path / "blocked" / "torch").mkdir(parents=True)
    (tmp_path / "blocked" / "torch" / "__init__.py").write_text(NO_TORCH)
    path = os.pathsep.join(filter(None, [str(tmp_path / "blocked"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "HWKIT_CACHE_DIR": str(tmp_path / "cache"),
            "HWKIT_LOAD_PLUGINS": "onnxruntime,openvino", "COLUMNS": "200"}


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_torch_is_really_blocked(without_torch):
    done = _python("import torch", without_torch)
    assert done.returncode == 1 and "No module named 'torch'" in done.stderr


def test_the_builtins_are_built_without_torch_and_are_the_same_bytes(without_torch):
    done = _python("""
        import hashlib, json, sys
        from hwkit import Model
        digests = {n: hashlib.sha256(Model.builtin(n).path.read_bytes()).hexdigest() for n in ("mlp", "cnn", "encoder")}
        print(json.dumps({"digests": digests, "torch": "torch" in sys.modules}))
    """, without_torch)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["torch"] is False
    with_torch_or_not = {n: hashlib.sha256(r.build(ZOO_VERSION).SerializeToString()).hexdigest()
                         for n, r in BUILTIN_MODELS.items()}
    assert result["digests"] == with_torch_or_not


def test_row_34_a_first_bench_without_torch_gives_a_table(without_torch):
    require_backend("onnxruntime")
    backends = "onnxruntime,openvino" if importlib.util.find_spec("openvino") else "onnxruntime"
    done = subprocess.run([sys.executable, "-m", "hwkit.cli", "bench", "mlp", "-b", backends, *FAST_BENCH],
                          capture_output=True, text=True, env=without_torch, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "hwkit: error" not in done.stderr and "torch" not in done.stderr
    assert "hwkit bench: mlp" in done.stdout
    for backend in backends.split(","):
        assert backend in done.stdout
    assert (Path(without_torch["HWKIT_CACHE_DIR"]) / "builtins" / f"mlp-zoo{ZOO_VERSION}.onnx").is_file()
