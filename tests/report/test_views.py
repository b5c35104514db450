"""hwkit.report: every view renders the result dict, so a result just measured and the same result
read back from its JSON file look the same; files are strict JSON; a wrong file is a ResultError."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from hwkit.errors import ResultError
from hwkit.measure.bench import BenchSettings, bench
from hwkit.report import files, plot, tables
from hwkit.report.schema import CHECK_SCHEMA, load_result
from tests.helpers import add_relu_model, run_cli

QUICK = dict(warmup_iters=1, warmup_time=0.0, min_iters=5, min_time=0.01, isolation=False, efficiency=False,
             target_ci=None)


def _render(table) -> str:
    console = Console(file=io.StringIO(), width=250)
    console.print(table)
    return console.file.getvalue()


@pytest.fixture
def result(fake_registry):
    settings = BenchSettings(**QUICK, options={"fake": {"scale": 2.0}})
    return bench(add_relu_model(dynamic=True), ["onnxruntime", "fake"], settings, batches=[1, 2])


def test_a_saved_result_renders_exactly_like_the_live_one(result, tmp_path):
    path = tmp_path / "r.json"
    result.to_json(str(path))
    saved = load_result(path)
    assert _render(tables.bench_table(saved)) == _render(result.table())
    assert files.bench_csv(saved) == result.to_csv() and files.bench_markdown(saved) == result.to_markdown()
    assert tables.run_summary(saved) == result.summary_line()


def test_the_json_file_is_strict(result, tmp_path):
    text = result.to_json()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON token {c}"))
    fake = [r for r in data["results"] if r["backend"] == "fake"]
    assert len(fake) == 2 and all(r["parity"] == "FAIL" for r in fake)
    assert data["reference"] == "onnxruntime" and data["reference_note"] == "the default reference"


def test_csv_and_markdown(result, tmp_path):
    csv_text = result.to_csv(str(tmp_path / "r.csv"))
    header, *rows = csv_text.strip().splitlines()
    assert header.startswith("backend,device,batch,precision,emulated,baseline,status,median_s") and len(rows) == 4
    assert (tmp_path / "r.csv").read_text() == csv_text
    markdown = result.to_markdown()
    assert "| onnxruntime | cpu | 1 |" in markdown and "| fake | cpu | 2 |" in markdown and "reference" in markdown


def test_the_plot_is_a_png_with_both_panels(result, tmp_path):
    pytest.importorskip("matplotlib")
    png = plot.bench_png(result.to_dict())
    assert png.startswith(b"\x89PNG")
    path = tmp_path / "r.png"
    result.plot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000


def test_a_result_of_another_kind_is_refused_by_name(tmp_path):
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"schema": CHECK_SCHEMA}))
    with pytest.raises(ResultError, match="is a hwkit.check/1 result, not hwkit.bench/1"):
        load_result(path)
    path.write_text("[1, 2")
    with pytest.raises(ResultError, match="not a readable JSON result"):
        load_result(path)


def test_compare_exit_codes(tmp_path):
    def result_file(name, median, low, high):
        # Every field the views need (docs/schema/hwkit.bench-1.schema.json), with these timings.
        settings = dict.fromkeys(("warmup_iters", "warmup_time", "min_iters", "min_time", "max_time", "threads",
                                  "seed", "input_sets"), 1) | {"isolation": True, "precision": "fp32"}
        data = {"schema": "hwkit.bench/1", "model": {"name": "m", "sha256": "abc", "shapes": {"1": {"x": [1]}}},
                "mode": "latency", "settings": settings, "elapsed_s": 1.0,
                "results": [{"backend": "onnxruntime", "device": "cpu", "batch": 1, "status": "ok",
                             "latency_s": {"median": median, "ci_low": low, "ci_high": high},
                             "ci_half_width": 0.01, "items_per_s": 1 / median, "vs_fastest": 1.0}]}
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return str(path)

    base = result_file("a.json", 0.010, 0.0099, 0.0101)
    noisy = result_file("b.json", 0.0102, 0.0098, 0.0106)
    slower = result_file("c.json", 0.013, 0.0129, 0.0131)
    assert run_cli("compare", base, noisy).returncode == 0
    worse = run_cli("compare", base, slower)
    assert worse.returncode == 1 and "REGRESSED" in worse.stdout and "+30.0%" in worse.stdout
    assert run_cli("compare", base, slower, "--threshold", "0.5").returncode == 0
    bad = run_cli("compare", base, str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "result file not found" in bad.stderr
