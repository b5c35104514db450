"""The precision sweep of bench and check, on backends that need no runtime: one row per
backend × precision, unsupported rows with their reason, the fp32 baseline, the accuracy and
speed-up columns, int8 rows on the one quantised graph, and the bad input around them."""

from __future__ import annotations

import json

import pytest

import hwkit
from hwkit.parity.tolerance import TOLERANCES
from hwkit.cli import main
from hwkit.errors import OptionError
from hwkit.measure.bench import bench
from hwkit.parity.check import check
from hwkit.report.schema import bench_rows, load_result, validation_errors
from tests.precision import backends

FAST = dict(warmup_iters=0, warmup_time=0.0, min_iters=3, min_time=0.0, target_ci=None, isolation=False,
            efficiency=False, input_sets=1)


def _rows(result):
    return {(r.backend, r.precision): r for r in result.results}


def test_every_backend_runs_every_precision_it_declares(sweep, fake_quantizer):
    result = bench("mlp", ["exact", "plain"], reference="exact", precisions="bf16,fp16,int8", **FAST)
    rows = _rows(result)
    # fp32 was not asked for: it runs as the baseline of the Δ and speed-up columns, marked so.
    assert list(rows) == [("exact", p) for p in ("fp32", "fp16", "bf16", "int8")] + [
        ("plain", p) for p in ("fp32", "fp16", "bf16", "int8")]
    assert rows["exact", "fp32"].baseline and rows["exact", "fp32"].ok
    assert rows["exact", "fp16"].status == "unsupported" and rows["exact", "fp16"].error == "no fp16 here, by design"
    assert rows["exact", "int8"].ok and rows["exact", "int8"].emulated == "the reference evaluator dequantises"
    for precision in ("fp16", "bf16", "int8"):  # the default declaration: fp32 only, naming the plugin
        assert rows["plain", precision].status == "unsupported"
        assert "backend 'plain' declares fp32 only" in rows["plain", precision].error
    # The backend compiled bf16 with its option, int8 as the quantised graph at fp32, nothing unsupported.
    assert ("exact", "bf16", "mlp") in backends.COMPILED and ("exact", "fp32", "int8") in backends.COMPILED
    assert not [c for c in backends.COMPILED if c[0] == "plain" and c[1] != "fp32"]
    assert len(fake_quantizer) == 1  # once, in the parent, for every backend


def test_rows_carry_accuracy_speedup_and_the_quantiser_settings(sweep, fake_quantizer):
    data = bench("mlp", ["exact"], reference="exact", precisions="fp32,bf16,int8", **FAST).to_dict()
    assert data["schema"] == "hwkit.bench/2" and validation_errors(data) == []
    rows = {r["precision"]: r for r in data["results"]}
    assert rows["fp32"]["is_reference"] and not rows["bf16"]["is_reference"] and not rows["fp32"]["baseline"]
    bf16 = rows["bf16"]
    cost = bf16["accuracy"]["vs_fp32"]
    assert 0 < cost["max_abs"] < 0.1 and 0.999 < cost["cosine"] < 1 and cost["top1"] == 1.0
    assert bf16["accuracy"]["vs_reference"]["max_abs"] == cost["max_abs"]  # the reference is exact's fp32
    assert bf16["speedup_vs_fp32"] > 0 and rows["fp32"]["speedup_vs_fp32"] is None
    assert bf16["parity"] == "pass"  # judged by the bf16 profile: bf16 rounding is within it
    assert rows["int8"]["quantization"] == {"quantiser": "fake", "calibration": "None"} == data["quantization"]
    assert rows["int8"]["emulated"] and rows["bf16"]["emulated"] is None
    assert rows["int8"]["accuracy"]["vs_fp32"]["cosine"] == pytest.approx(1.0)
    flat = {r["precision"]: r for r in bench_rows(data)}
    assert flat["bf16"]["top1_vs_fp32"] == 1.0 and flat["int8"]["emulated"]


def test_the_table_shows_precision_speedup_delta_and_why_unsupported(sweep, fake_quantizer, capsys, tmp_path):
    out = tmp_path / "r.json"
    code = main(["bench", "mlp", "-b", "exact,plain", "--reference", "exact", "--precision", "bf16,int8",
                 "--min-iters", "3", "--min-time", "0", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0",
                 "--no-isolation", "--input-sets", "1", "--json", str(out), "--markdown", str(tmp_path / "r.md"),
                 "--csv", str(tmp_path / "r.csv")])
    text = " ".join(capsys.readouterr().out.split())
    assert code == 0  # unsupported rows are rows, not errors
    for needle in ("precision", "speed-up vs fp32", "Δ vs fp32", "fp32 (baseline)", "int8 (emulated)", "top-1 100.0%",
                   "unsupported", "UNSUPPORTED", "plain bf16: backend 'plain' declares fp32 only"):
        assert needle in text
    assert load_result(out)["results"][2]["precision"] == "int8"
    assert "| int8 (emulated) |" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("backend,device,batch,precision,emulated,baseline")


def test_fp32_alone_keeps_the_plain_table(sweep):
    data = bench("mlp", ["exact"], reference="exact", **FAST).to_dict()
    assert [r["precision"] for r in data["results"]] == ["fp32"] and data["results"][0]["accuracy"]["vs_fp32"] is None \
        if "vs_fp32" in (data["results"][0]["accuracy"] or {}) else True
    assert "speed-up" not in " ".join(hwkit.report.tables.bench_table(data).columns[i].header
                                       for i in range(len(hwkit.report.tables.bench_table(data).columns)))


def test_check_judges_each_row_by_its_precision_profile(sweep, fake_quantizer):
    report = check("mlp", ["exact", "plain"], reference="exact", precision="bf16,int8", seeds=2, isolation=False)
    rows = {(r.backend, r.precision): r for r in report.results}
    # The reference's own fp32 run is what the others meet; plain's fp32 is compared too? no: not asked.
    assert set(rows) == {("exact", "bf16"), ("exact", "int8"), ("plain", "bf16"), ("plain", "int8")}
    assert rows["exact", "bf16"].tolerance.profile == "bf16" and rows["exact", "bf16"].passed
    assert rows["exact", "int8"].tolerance.profile == "int8" and rows["exact", "int8"].emulated
    assert rows["plain", "int8"].status == "unsupported" and report.passed  # unsupported is no failure
    data = report.to_dict()
    assert data["quantization"]["quantiser"] == "fake"
    assert {r["precision"]: r["passed"] for r in data["results"] if r["backend"] == "plain"} == {"bf16": None, "int8": None}


def test_check_cli_with_a_precision_list(sweep, fake_quantizer, capsys):
    code = main(["check", "mlp", "-b", "exact,plain", "--reference", "exact", "--precision", "bf16,int8",
                 "--no-isolation", "--seeds", "1"])
    text = " ".join(capsys.readouterr().out.split())
    bf16 = TOLERANCES["bf16"]
    assert code == 0 and f"bf16 (atol {bf16.atol:g}, rtol {bf16.rtol:g})" in text and "unsupported" in text


def test_a_plugin_whose_precisions_fail_gets_unsupported_rows(sweep):
    rows = _rows(bench("mlp", ["liar", "typo"], reference="liar", precision="fp32,bf16", **FAST))  # check's keyword
    assert rows["liar", "fp32"].status == "unsupported"
    assert "failed to declare its precisions: RuntimeError: cannot tell" in rows["liar", "fp32"].error
    assert rows["typo", "fp32"].ok and "declared bf16 as str, not a hwkit.backend.PrecisionSupport" in rows["typo", "bf16"].error


def test_row_60_unknown_precision_lists_the_valid_ones(sweep, capsys):
    for command in ("bench", "check"):
        with pytest.raises(SystemExit) as stop:
            main([command, "mlp", "-b", "exact", "--precision", "fp32,fp64"])
        assert stop.value.code == 2
        assert capsys.readouterr().err.strip() == (
            f"hwkit: error: argument --precision: invalid choice: 'fp64'; valid precisions: fp32, fp16, bf16, int8 "
            f"(a comma list, e.g. fp32,bf16,int8) (see 'hwkit {command} --help')")
    with pytest.raises(OptionError, match="unknown precision 'f16'; valid precisions: fp32, fp16, bf16, int8"):
        bench("mlp", ["exact"], precisions=["fp32", "f16"])


def test_row_61_backend_precision_option_is_replaced_by_the_sweep(sweep, capsys):
    assert main(["bench", "mlp", "-b", "exact", "-o", "exact.precision=bf16", "--no-isolation"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("hwkit: error: -o exact.precision is replaced by --precision, which every backend follows: "
                   "use --precision bf16 (a list sweeps, e.g. --precision fp32,bf16)")
    assert backends.COMPILED == []  # refused before anything ran


def test_row_62_calibration_without_int8(sweep, capsys, tmp_path):
    assert main(["check", "mlp", "-b", "exact,plain", "--calibration", str(tmp_path / "c.npz"), "--no-isolation"]) == 2
    assert capsys.readouterr().err.strip() == ("hwkit: error: --calibration is for int8 only: add int8 to --precision, "
                                               "e.g. --precision fp32,int8")


def test_row_63_library_compile_at_an_unsupported_precision(sweep):
    with pytest.raises(hwkit.OptionError, match="backend 'exact' cannot run fp16 on cpu: no fp16 here, by design"):
        hwkit.compile("mlp", "exact", precision="fp16")
    with pytest.raises(hwkit.OptionError, match="precision int8 means hwkit's quantised graph"):
        hwkit.compile("mlp", "exact", precision="int8")
    with hwkit.compile("mlp", "exact", precision="bf16") as exe:
        assert exe.options.precision == "bf16"


def test_check_with_only_the_reference_names_precision_as_a_way_out(sweep):
    with pytest.raises(OptionError, match="name at least two backends, e.g. -b onnxruntime,openvino, or another precision"):
        check("mlp", ["exact"], reference="exact", isolation=False)
    assert len(check("mlp", ["exact"], reference="exact", precision="bf16", isolation=False, seeds=1).results) == 1


def test_result_json_round_trip(sweep, fake_quantizer, tmp_path):
    result = bench("mlp", ["exact"], reference="exact", precisions="bf16,int8", **FAST)
    path = tmp_path / "r.json"
    result.to_json(str(path))
    assert json.loads(path.read_text())["schema"] == "hwkit.bench/2"
    assert hwkit.report.tables.bench_table(load_result(path)).row_count == 3


def test_row_64_a_precision_the_backend_does_not_declare_is_a_row_not_an_error(sweep, capsys):
    code = main(["bench", "mlp", "-b", "plain", "--reference", "plain", "--precision", "fp32,bf16", "--no-isolation",
                 "--min-iters", "3", "--min-time", "0", "--warmup", "0", "--warmup-time", "0", "--target-ci", "0"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    text = " ".join(captured.out.split())
    assert "unsupported" in text and ("plain bf16: backend 'plain' declares fp32 only (its plugin does not override "
                                      "Backend.precisions; see docs/writing-plugins.md)") in text


def test_calibration_with_int8_that_no_backend_runs_gives_unsupported_rows(sweep, fake_quantizer, tmp_path):
    """int8 was asked for, so --calibration is not refused; no backend runs it, so nothing is quantised."""
    data = bench("mlp", ["plain"], reference="plain", precisions="fp32,int8", calibration=str(tmp_path / "c.npz"),
                 **FAST).to_dict()
    assert {r["precision"]: r["status"] for r in data["results"]} == {"fp32": "ok", "int8": "unsupported"}
    assert fake_quantizer == []  # the quantiser never ran
