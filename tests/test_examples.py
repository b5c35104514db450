"""The runnable examples stay runnable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_runs():
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "mlp"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "onnxruntime: available" in result.stdout
    assert "'logits': (1, 10)" in result.stdout
    assert "hwkit bench: mlp" in result.stdout


def test_saved_results_example_runs(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "saved_results.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "before.json").exists() and (tmp_path / "after.json").exists()
    assert "hwkit bench: model" in result.stdout
    assert "timed: REGRESSED" in result.stdout  # 2 ms -> 3 ms per run: beyond noise and threshold
