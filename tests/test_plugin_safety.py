"""Plugins that misbehave while hwkit loads or probes them: sys.exit, Ctrl-C, hangs and crashes
at import, printing to stdout, wrong return types, squatted names, unselectable backend names,
and loading from several threads. Each fails alone; the other backends keep working."""

from __future__ import annotations

import json
import sys
import threading
import warnings
from pathlib import Path

import pytest

import hwkit
from hwkit.cli import main
from hwkit.plugins import PluginWarning, registry, reset_registry
from tests.helpers import FAST_BENCH, make_plugin_dist, run_cli

BACKEND = """
import hwkit
from hwkit import Backend, Device

class B(Backend):
    name = {name!r}
    def devices(self):
        return [Device("cpu", "cpu", "test")]
    def compile(self, model, device, options):
        raise hwkit.errors.CompileError("never compiled in these tests")
"""


def backend_source(name: str = "b", before: str = "", hook: str = "", init: str = "", **methods: str) -> str:
    """A plugin module with one backend; each argument is a statement run at that place."""
    body = BACKEND.format(name=name)
    if init:
        body += f"    def __init__(self):\n        {init}\n"
    for method, statement in methods.items():
        body += f"    def {method}(self):\n        {statement}\n"
    return (f"{before}\n{body}\n@hwkit.hookimpl\ndef hwkit_register_backends():\n"
            f"    {hook or 'pass'}\n    return [B]\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A site folder on sys.path for this test's plugin distributions; a fresh registry."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("HWKIT_PLUGIN_IMPORT_TIMEOUT", "0")  # the import check costs a process per plugin
    before = set(sys.modules)
    reset_registry()
    yield folder
    reset_registry()
    for name in set(sys.modules) - before:
        if name.startswith("hwkit_t_"):
            del sys.modules[name]


@pytest.fixture
def checked(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``site`` with the child-process import check on; a deadline a loaded machine meets."""
    monkeypatch.setenv("HWKIT_PLUGIN_IMPORT_TIMEOUT", "60")
    return site


def add(site: Path, entry: str, source: str, dist: str | None = None, module: str | None = None) -> None:
    module = module or f"hwkit_t_{entry}_{abs(hash(str(site))) % 10**8}"
    make_plugin_dist(site, dist or f"hwkit-t-{entry}", entry, module, source)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        code = main(list(args))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)  # stdout is valid JSON whatever the plugins printed


def plugins(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    return {p["name"]: p for p in cli_json(capsys, "plugins")}


def backends(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    return {b["name"]: b for b in cli_json(capsys, "backends", "--json")}


# -- row 45: sys.exit() / KeyboardInterrupt in plugin code ------------------------------------

EXITS = ["sys.exit(0)", "sys.exit(3)", "raise SystemExit('bye')", "raise KeyboardInterrupt"]


@pytest.mark.parametrize("statement", EXITS)
@pytest.mark.parametrize("where", ["before", "hook", "init"])
def test_row_45_plugin_exit_while_loading_fails_alone(checked, capsys, statement, where):
    site = checked
    add(site, "quitter", backend_source(**{where: f"import sys; {statement}"}))
    add(site, "fine", backend_source("fine"))
    listing = plugins(capsys)
    assert listing["quitter"]["status"] == "failed"
    assert ("SystemExit" in listing["quitter"]["reason"]) or ("KeyboardInterrupt" in listing["quitter"]["reason"])
    assert listing["fine"]["status"] == "loaded"
    assert listing["onnxruntime"]["status"] == "loaded"
    assert registry().get("fine").status == "available"


@pytest.mark.parametrize("statement", EXITS)
@pytest.mark.parametrize("method", ["devices", "unavailable_reason", "versions"])
def test_row_45_plugin_exit_while_probing_is_a_failed_status(site, capsys, statement, method):
    add(site, "quitter", backend_source("quitter", **{method: f"import sys; {statement}"}))
    listing = backends(capsys)
    assert listing["quitter"]["status"] == "failed"
    assert "SystemExit" in listing["quitter"]["reason"] or "KeyboardInterrupt" in listing["quitter"]["reason"]
    assert listing["onnxruntime"]["status"] == "available"


def test_row_45_exit_zero_at_import_never_ends_hwkit_silently(tmp_path):
    add(tmp_path, "quitter", "import sys\nsys.exit(0)\n")
    result = run_cli("backends", site=tmp_path)
    assert result.returncode == 0
    assert "onnxruntime" in result.stdout
    assert "hwkit plugin 'quitter'" in result.stderr and "sys.exit(0)" in result.stderr


# -- row 46: a plugin that hangs, crashes or prints at import ---------------------------------

IMPORT_KILLERS = {
    "hang": ("import time\ntime.sleep(600)\n", "did not finish within 2 s"),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", "crashed the interpreter (SIGSEGV)"),
    "abort": ("import os\nos.abort()\n", "crashed the interpreter (SIGABRT)"),
    "ctrl_c": ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("kind", sorted(IMPORT_KILLERS))
def test_row_46_plugin_that_hangs_or_crashes_at_import_fails_alone(checked, capsys, monkeypatch, kind):
    site = checked
    source, reason = IMPORT_KILLERS[kind]
    if kind == "hang":
        monkeypatch.setenv("HWKIT_PLUGIN_IMPORT_TIMEOUT", "2")
    add(site, "killer", source)
    assert registry().get("onnxruntime").status == "available"  # `-b onnxruntime` never imports it
    assert not any(name.startswith("hwkit_t_killer") for name in sys.modules)
    listing = plugins(capsys)
    assert listing["killer"]["status"] == "failed"
    assert reason in listing["killer"]["reason"]
    assert backends(capsys)["onnxruntime"]["status"] == "available"


def test_row_46_bench_of_another_backend_runs_past_a_hanging_plugin(tmp_path):
    add(tmp_path, "killer", IMPORT_KILLERS["hang"][0])
    result = run_cli("bench", "mlp", "-b", "onnxruntime", *FAST_BENCH, site=tmp_path,
                     env={"HWKIT_PLUGIN_IMPORT_TIMEOUT": "1"})
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout


PRINT = "import os, sys\nprint('noise'); os.write(1, b'native noise\\n'); sys.stdout.write('more')"


@pytest.mark.parametrize("where", ["before", "hook", "init", "devices", "unavailable_reason", "versions"])
def test_row_46_plugin_printing_never_corrupts_json(site, capfd, where):
    statement = PRINT.replace("\n", "; ")
    returns = {"devices": "; return [Device('cpu', 'cpu', 'x')]", "unavailable_reason": "; return None",
               "versions": "; return {'rt': '1'}"}.get(where, "")
    add(site, "chatty", backend_source("chatty", **{where: statement + returns}))
    errors = ""
    for args in (["plugins"], ["backends", "--json"]):
        reset_registry()
        assert main(args) == 0
        out, err = capfd.readouterr()
        assert "chatty" in {entry["name"] for entry in json.loads(out)}
        assert "noise" not in out
        errors += err
    assert "native noise" in errors and "more" in errors  # sent to stderr, not lost


@pytest.mark.parametrize("method, result, reason", [
    ("devices", "return 'cpu'", "devices() must return a list of hwkit.Device"),
    ("devices", "return [('cpu', 'cpu')]", "devices() must return a list of hwkit.Device"),
    ("devices", "return None", "devices() must return a list of hwkit.Device"),
    ("versions", "raise RuntimeError('no version')", "RuntimeError: no version"),
    ("versions", "return ['1.0']", "versions() must return a dict of str to str"),
    ("unavailable_reason", "return 42", "unavailable_reason() must return a str or None"),
])
def test_row_46_wrong_results_while_probing_are_a_status(site, capsys, method, result, reason):
    add(site, "odd", backend_source("odd", **{method: result}))
    listing = backends(capsys)
    assert listing["odd"]["status"] == "failed"
    assert reason in listing["odd"]["reason"]
    with pytest.raises(hwkit.errors.BackendUnavailableError, match="backend 'odd' is failed"):
        registry().get("odd")


# -- lazy loading -------------------------------------------------------------------------

def test_get_imports_only_the_plugin_of_that_name(site):
    add(site, "wanted", backend_source("wanted"), module="hwkit_t_wanted_lazy")
    add(site, "other", backend_source("other"), module="hwkit_t_other_lazy")
    assert registry().get("wanted").status == "available"
    assert "hwkit_t_wanted_lazy" in sys.modules and "hwkit_t_other_lazy" not in sys.modules
    registry().backends  # listing loads all
    assert "hwkit_t_other_lazy" in sys.modules


def test_a_backend_named_unlike_its_entry_point_is_still_found(site):
    add(site, "alias", backend_source("differently_named"))
    assert registry().get("differently_named").plugin == "alias"


# -- row 47: a second distribution squatting an entry-point name --------------------------

def test_row_47_two_distributions_with_one_plugin_name_are_both_refused(site, capsys):
    add(site, "onnxruntime", backend_source("onnxruntime"), dist="evil-squatter")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reset_registry()
        registry()
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, PluginWarning))
    assert "evil-squatter" in text and "hwkit-onnxruntime" in text
    with pytest.raises(hwkit.errors.BackendUnavailableError) as refused:
        registry().get("onnxruntime")
    message = str(refused.value)
    assert "evil-squatter and hwkit-onnxruntime" in message
    assert "HWKIT_DISABLE_PLUGINS=evil-squatter:onnxruntime or HWKIT_DISABLE_PLUGINS=hwkit-onnxruntime:onnxruntime" in message
    listing = cli_json(capsys, "plugins")
    squatted = [p for p in listing if p["name"] == "onnxruntime"]
    assert {p["distribution"] for p in squatted} == {"evil-squatter", "hwkit-onnxruntime"}
    assert all(p["status"] == "failed" for p in squatted)


@pytest.mark.parametrize("blocked", ["evil-squatter:onnxruntime", "Evil_Squatter:onnxruntime"])
def test_row_47_disable_one_distribution_by_dist_and_name(site, monkeypatch, blocked):
    add(site, "onnxruntime", backend_source("onnxruntime"), dist="evil-squatter")
    monkeypatch.setenv("HWKIT_DISABLE_PLUGINS", blocked)
    reset_registry()
    info = registry().get("onnxruntime")
    assert info.distribution == "hwkit-onnxruntime" and info.status == "available"
    statuses = {(p.distribution, p.status) for p in registry().plugins.values() if p.name == "onnxruntime"}
    assert statuses == {("hwkit-onnxruntime", "loaded"), ("evil-squatter", "blocked")}


# -- row 48: backend names that could never be chosen -------------------------------------

@pytest.mark.parametrize("name", ["a:b", "a,b", "a.b", "a b", "tab\tbed", " ", ""])
def test_row_48_unselectable_backend_name_is_refused_at_registration(site, capsys, name):
    add(site, "badname", backend_source(name))
    add(site, "fine", backend_source("fine"))
    listing = plugins(capsys)
    assert listing["badname"]["status"] == "failed"
    expected = "has no 'name'" if not name.strip() and not name else "could never be chosen with -b"
    assert expected in listing["badname"]["reason"]
    assert registry().get("fine").status == "available"


# -- thread safety ------------------------------------------------------------------------

def test_row_59_the_registry_loads_once_under_concurrent_use(site):
    add(site, "extra", backend_source("extra"))
    for _ in range(15):
        reset_registry()
        barrier = threading.Barrier(8)
        seen: list[object] = []

        def worker(i: int) -> None:
            barrier.wait()
            seen.append(registry().get("onnxruntime") if i % 2 else {b.name for b in hwkit.backends()})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 8
        names = [s for s in seen if isinstance(s, set)]
        assert all({"onnxruntime", "extra"} <= s for s in names) and len(names) == 4
        assert len({id(s) for s in seen if not isinstance(s, set)}) == 1  # one registry, one info


@pytest.mark.parametrize("value", ["ten", "nan", "inf"])
def test_row_46_a_bad_import_timeout_is_one_line_naming_the_fix(site, capsys, monkeypatch, value):
    add(site, "extra", backend_source("extra"))
    monkeypatch.setenv("HWKIT_PLUGIN_IMPORT_TIMEOUT", value)
    assert main(["backends"]) == 2
    err = capsys.readouterr().err
    assert f"HWKIT_PLUGIN_IMPORT_TIMEOUT='{value}' is not a number of seconds; set e.g. 10" in err
    assert "Traceback" not in err
