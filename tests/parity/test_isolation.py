"""hwkit check runs each backend in a child process of its own (errors.md rows 40-42): a backend
that segfaults, hangs, raises, exits, or returns the wrong type is a failed row and exit 2, never
the end of the check, a hang, or a silent exit; and no backend sees another's writes to its inputs.

The plugins are real distributions (tests/helpers.py make_plugin_dist) run through a fresh
``python -m hwkit.cli``, so each child process imports them as a user's would.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.helpers import add_relu_model, make_plugin_dist, plugin_source, run_cli

# name -> (statement run first in execute, statement run first in compile)
BACKENDS = {
    "good": ("pass", "pass"),
    "good2": ("pass", "pass"),
    "segv": ("ctypes.string_at(0)", "pass"),
    "hang": ("time.sleep(120)", "pass"),
    "boom": ("raise RuntimeError('boom')", "pass"),
    "listy": ("return [inputs['x']]", "pass"),
    "quits": ("raise SystemExit(0)", "pass"),
    "ctrlc": ("raise KeyboardInterrupt", "pass"),
    "cquits": ("pass", "raise SystemExit(0)"),
    "mutate": ("inputs['x'][...] = 0", "pass"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("isolation")
    source = plugin_source(*((n, b, c) for n, (b, c) in BACKENDS.items()))
    make_plugin_dist(site, "hwkit-isolation-test", "isolation", "isolation_plugin", source)
    onnx.save(add_relu_model(), site / "relu.onnx")
    return site


def _errors(stderr: str) -> dict[str, str]:
    """backend -> its one 'hwkit: error:' line (which starts with its name or quotes it)."""
    found = {}
    for line in stderr.splitlines():
        for name in BACKENDS:
            if line.startswith(f"hwkit: error: {name}:") or (line.startswith("hwkit: error: ") and f"'{name}'" in line):
                assert name not in found, stderr  # one line per backend
                found[name] = line
    return found


def test_row_40_check_isolates_crashing_hanging_raising_and_wrong_type_backends(site: Path) -> None:
    report = site / "isolated.json"
    result = run_cli("check", str(site / "relu.onnx"), "-b", "good,segv,hang,boom,listy,good2",
                     "--reference", "good", "--seeds", "1", "--timeout", "4", "--json", str(report), site=site)
    assert result.returncode == 2, result.stderr  # failed, not 1 (mismatch), not -11, not a hang
    assert "Traceback" not in result.stderr
    rows = {r["backend"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["good2"]["status"] == "ok" and rows["good2"]["passed"]  # the healthy one still compared
    assert rows["segv"]["status"] == "crashed" and "SIGSEGV" in rows["segv"]["error"]
    assert rows["hang"]["status"] == "timeout" and "4 s (--timeout)" in rows["hang"]["error"]
    assert rows["boom"]["status"] == "failed" and "RuntimeError: boom" in rows["boom"]["error"]
    assert rows["listy"]["status"] == "failed" and "list" in rows["listy"]["error"]
    errors = _errors(result.stderr)
    assert set(errors) == {"segv", "hang", "boom", "listy"}, result.stderr
    assert "good2" in result.stdout and "segv" in result.stdout  # every backend is a row of the table


def test_row_40_a_crashing_reference_is_one_line_and_exit_2(site: Path) -> None:
    result = run_cli("check", str(site / "relu.onnx"), "-b", "segv,good", "--reference", "segv", "--seeds", "1",
                     site=site)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("hwkit: error: reference backend 'segv' failed: ") and "SIGSEGV" in lines[0]
    assert "--reference" in lines[0]


@pytest.mark.parametrize("isolation", [[], ["--no-isolation"]], ids=["isolated", "in-process"])
def test_row_41_a_plugin_exit_or_keyboardinterrupt_is_its_failure_not_hwkits_exit(site: Path, isolation: list[str]) -> None:
    result = run_cli("check", str(site / "relu.onnx"), "-b", "good,quits,ctrlc,cquits,good2", "--reference", "good",
                     "--seeds", "1", *isolation, site=site)
    assert result.returncode == 2, (result.returncode, result.stderr)  # never the plugin's silent 0
    errors = _errors(result.stderr)
    assert "sys.exit(0)" in errors["quits"] and "sys.exit(0)" in errors["cquits"], result.stderr
    assert "KeyboardInterrupt" in errors["ctrlc"]
    assert "good2" not in errors and "Traceback" not in result.stderr


@pytest.mark.parametrize("isolation", [[], ["--no-isolation"]], ids=["isolated", "in-process"])
def test_row_42_a_backend_writing_into_its_inputs_does_not_fail_the_others(site: Path, isolation: list[str]) -> None:
    report = site / f"mutate{len(isolation)}.json"
    result = run_cli("check", str(site / "relu.onnx"), "-b", "good,mutate,good2", "--reference", "good",
                     "--seeds", "2", "--json", str(report), *isolation, site=site)
    rows = {r["backend"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["good2"]["passed"], result.stderr  # it saw the inputs as generated, not mutate's zeros
    assert not rows["mutate"]["passed"]  # its own outputs come from the zeroed copy: its bug, reported
    assert result.returncode == 1


def test_row_40_in_process_check_with_the_library_default_is_isolated(fake_registry) -> None:
    """The library's default is the process launcher, and a backend registered in this process
    (hwkit.testing's fakes) is registered in the child too, so it is the same backend there."""
    import hwkit
    from hwkit.parity.check import CheckSettings

    assert CheckSettings().isolation and CheckSettings().timeout == 600
    report = hwkit.check(onnx.ModelProto.FromString(add_relu_model().SerializeToString()), ["fake", "timed"],
                         reference="fake", seeds=1)
    assert report.passed and report.results[0].peak_rss is not None  # measured in a child process


def test_row_40_bisect_rounds_in_child_processes_find_the_same_node(registry, chain) -> None:
    """``isolated_rounds=True`` runs each round's backend call in a child: same answer as in-process."""
    from hwkit.parity.bisect import bisect

    options = {"perturb": {"node": "n1"}}
    isolated = bisect(chain, "fake", "perturb", options=options, max_probes=3, isolated_rounds=True)
    inline = bisect(chain, "fake", "perturb", options=options, max_probes=3)
    assert isolated.node == inline.node == "n1" and isolated.rounds == inline.rounds


def test_row_40_a_hang_in_an_isolated_bisect_round_is_one_hwkit_error(registry, chain) -> None:
    from hwkit.errors import ExecutionError
    from hwkit.parity.bisect import bisect

    with pytest.raises(ExecutionError, match=r"^timed: no result after 1 s \(--timeout\); the backend was stopped$"):
        bisect(chain, "fake", "timed", options={"timed": {"delay": 60}}, timeout=1, isolated_rounds=True)
