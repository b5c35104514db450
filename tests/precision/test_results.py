"""Result files with the precision axis: hwkit.bench/2 written and validated, hwkit.bench/1
still read (each row fp32), compare across the two versions matching rows by precision, and
the speed-vs-accuracy plot with its Pareto front."""

from __future__ import annotations

import json

import pytest

from hwkit.cli import main
from hwkit.measure.bench import bench
from hwkit.report.diff import compare_results
from hwkit.report.plot import accuracy_of, bench_png, pareto_front
from hwkit.report.schema import BENCH_SCHEMA_V1, bench_rows, json_schema, load_result
from tests.precision.test_sweep import FAST


@pytest.fixture
def v2(sweep, fake_quantizer, tmp_path):
    result = bench("mlp", ["exact"], reference="exact", precisions="fp32,bf16,int8", **{**FAST, "min_iters": 6})
    path = tmp_path / "v2.json"
    result.to_json(str(path))
    return path


def _as_v1(path, tmp_path, scale=1.0):
    """The fp32 row of a v2 file written as hwkit.bench/1 wrote it (no precision fields), its
    timings multiplied by ``scale``."""
    data = json.loads(path.read_text())
    data["schema"] = BENCH_SCHEMA_V1
    data["settings"]["precision"] = data["settings"].pop("precisions")[0]
    row = {k: v for k, v in data["results"][0].items()
           if k not in ("precision", "emulated", "baseline", "quantization", "speedup_vs_fp32", "accuracy")}
    for key in ("median", "ci_low", "ci_high"):
        row["latency_s"][key] *= scale
    data["results"] = [row]
    out = tmp_path / f"v1-{scale}.json"
    out.write_text(json.dumps(data))
    return out


def test_both_schemas_are_published_alike():
    v1, v2 = json_schema(BENCH_SCHEMA_V1), json_schema()
    assert v2["title"] == "hwkit.bench/2" and "precision" in v2["$defs"]["result"]["required"]
    assert set(v1["$defs"]["result"]["properties"]) < set(v2["$defs"]["result"]["properties"])


def test_a_v1_file_reads_as_fp32_rows(v2, tmp_path):
    data = load_result(_as_v1(v2, tmp_path))
    assert data["schema"] == BENCH_SCHEMA_V1
    assert data["results"][0]["precision"] == "fp32" and data["results"][0]["accuracy"] is None
    assert bench_rows(data)[0]["precision"] == "fp32"


def test_compare_v1_against_v2_matches_the_fp32_rows(v2, tmp_path, capsys):
    # The old run ten times as slow: far outside the noise of six runs even on a busy machine (at
    # 2x, a loaded machine's wide confidence interval once made the verdict "within noise").
    old = _as_v1(v2, tmp_path, scale=10.0)
    changes, gone, added = compare_results(load_result(old), load_result(v2))
    assert [(c.backend, c.precision) for c in changes] == [("exact", "fp32")] and changes[0].ratio == pytest.approx(0.1)
    assert [k[-1] for k in added] == ["bf16", "int8"] and gone == []
    assert main(["compare", str(old), str(v2)]) == 0
    out = capsys.readouterr().out
    assert "faster" in out and "only in NEW: mlp exact cpu 1 bf16" in out


def test_a_v2_row_without_its_precision_is_refused(v2, tmp_path):
    data = json.loads(v2.read_text())
    del data["results"][1]["precision"]
    v2.write_text(json.dumps(data))
    with pytest.raises(Exception, match=r"results\[1\].precision is missing; it is not a complete hwkit.bench/2 result"):
        load_result(v2)


def test_pareto_front():
    points = [(10.0, 0.99), (20.0, 0.95), (5.0, 1.0), (8.0, 0.9), (20.0, 0.94)]
    assert pareto_front(points) == [0, 1, 2]  # (8, 0.9) and (20, 0.94) are beaten


def test_the_plot_gains_a_speed_vs_accuracy_panel(v2):
    pytest.importorskip("matplotlib")
    data = load_result(v2)
    assert [accuracy_of(r)[1] for r in data["results"]] == ["top-1 agreement with the reference"] * 3
    png = bench_png(data)
    assert png.startswith(b"\x89PNG")
    width = int.from_bytes(png[16:20], "big")
    assert width > 7 * 110  # two panels are wider than the single latency one


def test_row_65_a_result_of_a_newer_schema_names_the_versions_read(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": "hwkit.bench/3", "results": []}))
    assert main(["compare", str(path), str(path)]) == 2
    assert capsys.readouterr().err.strip() == (f"hwkit: error: {path} is a hwkit.bench/3 result, not hwkit.bench/1 or "
                                               "hwkit.bench/2; write one with hwkit bench --json")
