"""hwkit.check and ``hwkit check``: agreement is measured, mismatches and NaN are caught."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import hwkit
import hwkit.runner.plan
from hwkit.parity.check import CheckSettings, check
from hwkit.errors import BackendNotFoundError, CompileError, OptionError
from hwkit.parity.agreement import OutputAgreement, compare_output, compare_outputs
from hwkit.parity.tolerance import TOLERANCES, tolerance
from tests import perturb_backend
from tests.helpers import make_plugin_dist, run_cli
from tests.perturb_backend import chain_model



def _perturbed(node: str, delta: float = 1.0) -> dict[str, dict[str, object]]:
    return {"perturb": {"node": node, "delta": delta}}


# -- the metrics --------------------------------------------------------------------------


def test_identical_outputs_agree_exactly():
    ref = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    a = compare_output("y", ref, ref.copy(), tolerance("fp32"))
    assert (a.max_abs, a.max_rel, a.mean_abs, a.nan, a.inf) == (0.0, 0.0, 0.0, 0, 0)
    assert a.cosine == pytest.approx(1.0) and a.top1 == a.top5 == 1.0
    assert a.violations == 0 and a.passed


def test_allclose_criterion_scales_with_the_reference():
    ref = np.array([[1000.0, 1.0]], dtype=np.float32)
    got = ref + np.array([[0.5, 0.5]], dtype=np.float32)  # 0.5 is within 1e-4 + 1e-3 * 1000 only
    a = compare_output("y", ref, got, tolerance("fp32"))
    assert a.violations == 1 and not a.passed
    assert compare_output("y", ref, got, tolerance("fp32", atol=0.6)).passed


def test_topk_counts_rows_whose_classes_match():
    ref = np.tile(np.arange(10, dtype=np.float32), (4, 1))  # every row: class 9 first, then 8, ...
    got = ref.copy()
    got[0, [9, 8]] = got[0, [8, 9]]  # row 0: top-1 differs, top-5 set the same
    got[1, [5, 4]] = got[1, [4, 5]]  # row 1: class 4 enters the top 5, class 5 leaves
    a = compare_output("scores", ref, got)
    assert a.top1 == 0.75 and a.top5 == 0.75
    assert compare_output("pair", ref[:, :3], got[:, :3]).top5 is None  # <= 5 classes: no top-5
    assert compare_output("ids", ref.astype(np.int64), got.astype(np.int64)).top1 is None  # not scores


def test_nan_and_inf_always_fail_even_with_huge_tolerance():
    ref = np.ones((2, 3), dtype=np.float32)
    got = ref.copy()
    got[0, 0], got[1, 2] = np.nan, np.inf
    a = compare_output("y", ref, got, tolerance("int8", atol=1e9, rtol=1e9))
    assert (a.nan, a.inf, a.violations, a.passed) == (1, 1, 2, False)
    assert a.max_abs == float("inf") and np.isnan(a.cosine)
    # NaN where the reference has NaN agrees (equal_nan), as does the same infinity.
    assert compare_output("y", got, got.copy(), tolerance()).passed


def test_shape_mismatch_and_missing_output_fail():
    ref = {"y": np.zeros((2, 3), np.float32)}
    assert not compare_outputs(ref, {"y": np.zeros((3, 2), np.float32)}, tolerance())[0].passed
    missing = compare_outputs(ref, {}, tolerance())[0]
    assert not missing.shape_ok and not missing.passed


def test_existing_agreement_fields_unchanged():
    # bench.py and report.py build and read these; new fields must not disturb them.
    a = OutputAgreement("y", 0.1, 0.2, 0.05, 0.99, 0, 0, True)
    assert a.max_abs == 0.1 and a.passed is None and a.top1 is None
    assert compare_outputs({"y": np.ones(3)}, {"y": np.ones(3)})[0].passed is None


def test_tolerance_profiles_and_their_errors():
    assert list(TOLERANCES) == ["fp32", "fp16", "bf16", "int8"]
    strictness = [(t.atol, t.rtol) for t in TOLERANCES.values()]
    assert strictness == sorted(strictness)  # lower precision, looser tolerance
    assert tolerance("fp16", rtol=0.5) == hwkit.parity.tolerance.Tolerance("fp16", TOLERANCES["fp16"].atol, 0.5)
    with pytest.raises(OptionError, match="unknown precision 'fp64'; choose one of fp32, fp16, bf16, int8"):
        tolerance("fp64")
    with pytest.raises(OptionError, match="atol must be a finite number >= 0"):
        CheckSettings(atol=-1.0)
    with pytest.raises(OptionError, match="seeds must be"):
        CheckSettings(seeds=0)


# -- the engine ---------------------------------------------------------------------------


def test_identical_backends_pass(registry, chain):
    report = check(chain, ["fake", "perturb"], reference="fake", seeds=2)
    assert report.passed and report.reference.backend == "fake"
    assert report.reference_note == "chosen with --reference" and report.inputs == "seeds 0..1"
    (result,) = report.results
    assert result.backend == "perturb" and result.agreement[0].max_abs == 0.0
    assert report.failures() == []


def test_a_perturbed_node_is_flagged(registry, chain):
    report = check(chain, ["fake", "perturb"], reference="fake", options=_perturbed("n4"))
    assert not report.passed
    agreement = report.results[0].agreement[0]
    assert agreement.max_abs > 0.01 and agreement.violations > 3 * 3 * 4 // 2  # of 3 seeds x 3x4
    atol = f"{agreement.atol_effective:.3g} (0.0001 × rms(ref) {agreement.ref_rms:.3g})"  # y's rms is above 1
    assert report.failures() == [f"perturb: output 'y' {agreement.violations} element(s) beyond atol {atol} + rtol 0.001"]


def test_a_nan_backend_fails(registry, chain):
    report = check(chain, ["fake", "perturb"], reference="fake", options=_perturbed("n7", float("nan")))
    result = report.results[0]
    assert not report.passed and result.agreement[0].nan == 36 and result.nonfinite["y"] == (36, 0)
    assert "36 NaN, 0 Inf where the reference is finite" in report.failures()[0]
    data = json.loads(report.to_json(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["results"][0]["outputs"][0]["max_abs"] == "inf" and data["passed"] is False


def test_profile_decides_small_differences(registry, chain):
    small = _perturbed("n9", 2e-3)  # the last node: the output itself moves by 2e-3
    assert not check(chain, ["fake", "perturb"], reference="fake", options=small).passed
    # A precision the fake backends do not declare is no silent fp32 run judged by a looser profile
    # (tests/precision: a backend that declares bf16 is judged by the bf16 profile).
    fp16 = check(chain, ["fake", "perturb"], reference="fake", options=small, precision="fp16")
    assert [r.status for r in fp16.results] == ["unsupported", "unsupported"]
    assert check(chain, ["fake", "perturb"], reference="fake", options=small, atol=3e-3).passed


def test_default_reference_is_onnxruntime_and_runs_even_if_not_chosen(registry, chain):
    report = check(chain, ["fake"], seeds=1)
    assert report.reference.backend == "onnxruntime" and report.reference_note == "the default reference"
    assert [r.backend for r in report.results] == ["fake"] and report.passed


def test_fallback_reference_is_named(registry, chain, monkeypatch):
    monkeypatch.setattr(hwkit.runner.plan, "DEFAULT_REFERENCE", "absent")
    report = check(chain, ["perturb", "fake"], seeds=1)
    assert report.reference.backend == "perturb"
    assert report.reference_note == "absent is not available here, so the first chosen backend"
    assert "reference: perturb (absent is not available here" in _render(report.table())


def test_a_failing_backend_is_recorded_and_fails(registry, chain):
    report = check(chain, ["fake", "perturb"], reference="fake", options=_perturbed("no_such_node"))
    assert not report.passed and report.results[0].status == "failed"
    assert "no node named 'no_such_node'" in report.results[0].error


def test_a_failing_reference_is_an_error_naming_the_fix(registry, chain):
    with pytest.raises(CompileError, match="reference backend 'perturb' failed: .* choose another with --reference"):
        check(chain, ["fake", "perturb"], reference="perturb", options=_perturbed("no_such_node"))


def test_nothing_to_compare_and_unknown_names(registry, chain):
    with pytest.raises(OptionError, match="nothing to compare"):
        check(chain, ["fake"], reference="fake")
    with pytest.raises(BackendNotFoundError):
        check(chain, ["fake", "nope"], reference="fake")


def test_users_inputs_file(registry, chain, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, x=np.full((3, 4), 0.5, np.float32))
    report = check(chain, ["fake", "perturb"], reference="fake", inputs=str(path))
    assert report.passed and report.inputs == str(path) and report.shapes == {"x": (3, 4)}
    np.savez(path, x=np.zeros((2, 2), np.float32))
    with pytest.raises(hwkit.ModelError):
        check(chain, ["fake", "perturb"], reference="fake", inputs=str(path))


def test_table_shows_every_metric(registry, chain):
    report = check(chain, ["fake", "perturb"], reference="fake", options=_perturbed("n4"), seeds=1)
    text = _render(report.table())
    for word in ("max abs", "max rel", "mean abs", "cosine", "top-1", "top-5", "NaN/Inf", "FAIL", "reference"):
        assert word in text


def _render(table: object) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


# -- the command, in fresh processes with the perturbing plugin installed -----------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    source = Path(perturb_backend.__file__).read_text()
    make_plugin_dist(folder, "hwkit-perturb", "perturb", "hwkit_perturb_test", source)
    onnx.save(chain_model(), folder / "chain.onnx")
    return folder


def test_cli_exit_codes(site, tmp_path):
    model = str(site / "chain.onnx")
    agree = run_cli("check", model, "-b", "onnxruntime,perturb", "--seeds", "2", site=site)
    assert agree.returncode == 0, agree.stderr
    assert "reference: onnxruntime (the default reference)" in agree.stdout and "pass" in agree.stdout

    report = tmp_path / "check.json"
    differ = run_cli("check", model, "-b", "onnxruntime,perturb", "-o", "perturb.node=n3",
                     "--json", str(report), site=site)
    assert differ.returncode == 1, differ.stderr
    assert "hwkit: mismatch: perturb: output 'y'" in differ.stderr and "FAIL" in differ.stdout
    data = json.loads(report.read_text())
    assert data["schema"] == "hwkit.check/1" and data["passed"] is False
    assert data["reference"]["backend"] == "onnxruntime" and data["tolerance"]["profile"] == "fp32"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp64"], "invalid choice: 'fp64'"),
        (["--atol", "-1"], "atol must be a finite number >= 0"),
        (["--json", "/no/such/folder/r.json"], "folder /no/such/folder does not exist"),
        (["--bisect", "-b", "onnxruntime"], "--bisect compares two backends: give -b A,B"),
        (["-b", "onnxruntime"], "nothing to compare"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(site, args, message):
    result = run_cli("check", str(site / "chain.onnx"), *args, site=site)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
