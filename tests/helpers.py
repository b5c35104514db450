"""Test helpers: tiny ONNX graphs, fake plugin distributions, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
from onnx import TensorProto, helper

if TYPE_CHECKING:
    import pytest


def add_relu_model(dynamic: bool = False, opset: int = 17) -> onnx.ModelProto:
    """y = relu(x + b): a graph every backend runs, with one initializer."""
    dims: list[int | str] = ["batch", 4] if dynamic else [2, 4]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"], name="relu")],
        "add_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
        [helper.make_tensor("b", TensorProto.FLOAT, [4], [0.5, -0.5, 1.0, -1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def unknown_ops_model() -> onnx.ModelProto:
    """A valid graph using two ops of a custom domain that no backend implements."""
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["t"], domain="com.example", name="frob"),
         helper.make_node("Twiddle", ["t"], ["y"], domain="com.example", name="twid")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    return model


def make_plugin_dist(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    """Install a plugin distribution into ``site`` the way pip would, minus pip: a module and a
    .dist-info folder whose entry_points.txt puts it in the ``hwkit`` group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[hwkit]\n{entry} = {module}\n")


def cli(capsys: "pytest.CaptureFixture[str]", *args: str) -> tuple[int, str, list[str]]:
    """The CLI in-process: (exit code, stdout, non-empty stderr lines); a usage error's exit is its code."""
    from hwkit.cli import main

    try:
        code = main(list(args))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def run_cli(*args: str, site: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hwkit.cli`` in a fresh process, as a user's shell would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "hwkit.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


FAST_BENCH = ["--min-time", "0.05", "--min-iters", "3", "--warmup", "1", "--warmup-time", "0", "--target-ci", "0"]


def signal_when_marked(child: subprocess.Popen[str], marker: Path, signum: int, settle: float = 0.0,
                       deadline_s: float = 90) -> tuple[str, str]:
    """Wait until ``marker`` exists (a slow test backend writes it when it starts), send
    ``signum`` to ``child`` and return its (stdout, stderr); the child never outlives this."""
    import time

    try:
        deadline = time.monotonic() + deadline_s
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.05)
        time.sleep(settle)
        child.send_signal(signum)
        return child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


_PLUGIN_HEAD = """
import os
import time
import ctypes
import numpy as np
import hwkit
from hwkit import Backend, Device, Executable
"""

_PLUGIN_BACKEND = """
class Exe_{name}(Executable):
    def execute(self, inputs):
        {body}
        return {{self.model.outputs[0].name: np.maximum(inputs["x"] + np.array([0.5, -0.5, 1.0, -1.0], np.float32), 0)}}

class B_{name}(Backend):
    name = "{name}"
    def devices(self):
        return [Device("cpu", "cpu", "test device")]
    def compile(self, model, device, options):
        {compile_body}
        return Exe_{name}(model, device, options)
"""


def plugin_source(*backends: tuple[str, ...]) -> str:
    """A plugin module registering one backend per (name, statement run first in execute[,
    statement run first in compile]); each computes add_relu_model's y = relu(x + b)."""
    classes = ", ".join(f"B_{spec[0]}" for spec in backends)
    body = "".join(_PLUGIN_BACKEND.format(name=spec[0], body=spec[1], compile_body=spec[2] if len(spec) > 2 else "pass")
                   for spec in backends)
    return _PLUGIN_HEAD + body + f"\n@hwkit.hookimpl\ndef hwkit_register_backends():\n    return [{classes}]\n"
