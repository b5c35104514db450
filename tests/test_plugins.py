"""Plugin loading through real entry points: each plugin in its own guard."""

from __future__ import annotations

import json

import pytest

from tests.helpers import FAST_BENCH, make_plugin_dist, run_cli

GOOD = """
import numpy as np
import hwkit
from hwkit import Backend, Device, Executable

class Doubler(Executable):
    def execute(self, inputs):
        return {self.model.outputs[0].name: np.maximum(inputs["x"] + np.array([0.5, -0.5, 1.0, -1.0], np.float32), 0)}

class GoodBackend(Backend):
    name = "{name}"
    def devices(self):
        return [Device("cpu", "cpu", "test device")]
    def compile(self, model, device, options):
        return Doubler(model, device, options)

@hwkit.hookimpl
def hwkit_register_backends():
    return [GoodBackend]
"""


def plugins_json(site, **env):
    result = run_cli("plugins", site=site, env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_builtin_plugins_are_listed_with_their_distribution(tmp_path):
    plugins = plugins_json(tmp_path)
    for name in ("onnxruntime", "openvino"):
        assert plugins[name]["status"] == "loaded"
        assert plugins[name]["distribution"] == f"hwkit-{name}"
        assert plugins[name]["hooks"] == ["hwkit_register_backends"]
        assert plugins[name]["backends"] == [name]


def test_plugin_that_raises_at_import_fails_alone(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-broken", "broken", "hwkit_broken", "raise RuntimeError('boom at import')\n")
    plugins = plugins_json(tmp_path)
    assert plugins["broken"]["status"] == "failed"
    assert "RuntimeError: boom at import" in plugins["broken"]["reason"]
    assert plugins["broken"]["distribution"] == "hwkit-broken"
    assert plugins["onnxruntime"]["status"] == "loaded"
    bench = run_cli("bench", "mlp", "-b", "onnxruntime", *FAST_BENCH, site=tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert "onnxruntime" in bench.stdout
    assert "broken" not in bench.stderr  # -b onnxruntime imports only the plugin of that name
    listing = run_cli("backends", site=tmp_path)
    assert listing.returncode == 0 and "onnxruntime" in listing.stdout
    assert "hwkit plugin 'broken' (hwkit-broken 0.1.0) failed" in listing.stderr


def test_plugin_with_missing_dependency_is_unavailable(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-needs", "needs", "hwkit_needs", "import a_module_nobody_has\n")
    plugins = plugins_json(tmp_path)
    assert plugins["needs"]["status"] == "unavailable"
    assert "a_module_nobody_has" in plugins["needs"]["reason"]


def test_hook_that_raises_fails_alone(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-hookfail", "hookfail", "hwkit_hookfail", """
        import hwkit
        @hwkit.hookimpl
        def hwkit_register_backends():
            raise ValueError("no backends today")
    """)
    plugins = plugins_json(tmp_path)
    assert plugins["hookfail"]["status"] == "failed"
    assert "hwkit_register_backends raised ValueError: no backends today" in plugins["hookfail"]["reason"]


def test_misspelt_hook_is_an_error_not_silence(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-typo", "typo", "hwkit_typo", """
        import hwkit
        @hwkit.hookimpl
        def hwkit_register_backend():
            return []
    """)
    plugins = plugins_json(tmp_path)
    assert plugins["typo"]["status"] == "failed"
    assert "hwkit_register_backend" in plugins["typo"]["reason"]


def test_two_plugins_claiming_one_name_are_both_refused(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-one", "one", "hwkit_one", GOOD.replace("{name}", "twin"))
    make_plugin_dist(tmp_path, "hwkit-two", "two", "hwkit_two", GOOD.replace("{name}", "twin"))
    plugins = plugins_json(tmp_path)
    for name in ("one", "two"):
        assert plugins[name]["status"] == "failed"
        assert "backend name 'twin' is registered by 'one' (hwkit-one) and 'two' (hwkit-two)" in plugins[name]["reason"]
    listing = json.loads(run_cli("backends", "--json", site=tmp_path).stdout)
    twin = next(b for b in listing if b["name"] == "twin")
    assert twin["status"] == "failed"
    run = run_cli("run", "mlp", "-b", "twin", site=tmp_path)
    assert run.returncode == 2 and "registered by" in run.stderr


def test_registering_a_non_backend_fails(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-junk", "junk", "hwkit_junk", """
        import hwkit
        class NotABackend: pass
        @hwkit.hookimpl
        def hwkit_register_backends():
            return [NotABackend]
    """)
    plugins = plugins_json(tmp_path)
    assert plugins["junk"]["status"] == "failed"
    assert "not a subclass of hwkit.Backend" in plugins["junk"]["reason"]


def test_third_party_backend_runs_in_bench(tmp_path):
    make_plugin_dist(tmp_path, "hwkit-good", "good", "hwkit_good", GOOD.replace("{name}", "good"))
    model = tmp_path / "m.onnx"
    import onnx

    from tests.helpers import add_relu_model

    onnx.save(add_relu_model(), model)
    report = tmp_path / "r.json"
    result = run_cli("bench", str(model), "-b", "onnxruntime,good", "--json", str(report), *FAST_BENCH, site=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "good" in result.stdout
    good = json.loads(report.read_text())["results"][1]
    assert good["backend"] == "good" and good["status"] == "ok"
    assert good["agreement"][0]["max_abs"] == 0.0  # agrees exactly with onnxruntime on relu(x + b)


@pytest.mark.parametrize(
    "env, loaded, blocked",
    [
        ({"HWKIT_DISABLE_PLUGINS": "openvino"}, {"onnxruntime"}, {"openvino"}),
        ({"HWKIT_LOAD_PLUGINS": "openvino"}, {"openvino"}, {"onnxruntime"}),
        ({"HWKIT_LOAD_PLUGINS": ""}, set(), {"onnxruntime", "openvino"}),
    ],
)
def test_allow_and_block_lists(tmp_path, env, loaded, blocked):
    plugins = plugins_json(tmp_path, **env)
    for name in loaded:
        assert plugins[name]["status"] == "loaded"
    for name in blocked:
        assert plugins[name]["status"] == "blocked"
        assert "HWKIT_" in plugins[name]["reason"]
