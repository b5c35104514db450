"""``hwkit bench --generate`` and ``hwkit check --generate`` end to end, in process."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from hwkit.cli import main
from hwkit.generate.compare import compare_generations
from hwkit.generate.records import GenerateRecord
from hwkit.parity.tolerance import tolerance
from hwkit.testing.conformance import require_backend
from hwkit.testing.generate_conformance import tiny_decoder

BACKENDS = ["onnxruntime", "openvino", "cpu"]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_decoder(), path)
    return str(path)


def test_bench_generate_gives_a_row_per_backend_prompt_and_batch(tiny, tmp_path, capsys):
    for name in BACKENDS:
        require_backend(name)
    out = tmp_path / "gen.json"
    md, png = tmp_path / "gen.md", tmp_path / "gen.png"
    plot = ["--plot", str(png)] if _has_matplotlib() else []
    code = main(["bench", tiny, "--generate", "-b", ",".join(BACKENDS), "--prompt", "4", "--new", "3",
                 "--batch", "1,2", "--runs", "2", "--no-isolation", "--json", str(out), "--markdown", str(md), *plot])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    data = json.loads(out.read_text())
    assert data["schema"] == "hwkit.generate/1" and data["reference"] == "onnxruntime"
    rows = data["results"]
    assert sorted((r["backend"], r["prompt"], r["batch"]) for r in rows) == sorted(
        (b, 4, n) for b in BACKENDS for n in (1, 2))
    for row in rows:
        assert row["status"] == "ok" and row["cache"] == "native" and row["precision"] == "fp32"
        assert row["ttft_s"]["count"] == 2 and row["decode_step_s"]["count"] == 2 * 2
        assert row["decode_tokens_per_s"] > 0 and row["end_to_end_tokens_per_s"] > 0
        assert row["memory"]["kv_cache_bytes"] == 2 * 2 * row["batch"] * (row["prompt"] + 2) * 4 * 4
        assert len(row["tokens"]) == row["batch"] and len(row["tokens"][0]) == 3
        assert row["same_tokens"] is (None if row["is_reference"] else True)
    # The same seeded prompt for every backend: batch 1 is row 0 of batch 2.
    first = {r["batch"]: r["tokens"] for r in rows if r["backend"] == "onnxruntime"}
    assert first[1][0] == first[2][0]
    assert "decode tok/s" in printed.out and "| onnxruntime |" in md.read_text()
    if plot:
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_bench_generate_takes_a_prompt_list_and_a_numpy_cache(tiny, tmp_path, capsys):
    out = tmp_path / "gen.json"
    assert main(["bench", tiny, "--generate", "-b", "onnxruntime", "--prompt", "4,8", "--new", "2", "--batch", "1",
                 "--runs", "1", "--numpy-cache", "--no-isolation", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["prompt"], r["cache"]) for r in rows] == [(4, "numpy"), (8, "numpy")]


def test_check_generate_decoder_passes(capsys, tmp_path):
    for name in BACKENDS:
        require_backend(name)
    out = tmp_path / "check.json"
    code = main(["check", "decoder", "--generate", "-b", "onnxruntime,openvino", "--prompt", "6", "--new", "3",
                 "--batch", "2", "--no-isolation", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["schema"] == "hwkit.generate-check/1" and data["passed"] is True
    compared = [r for r in data["results"] if not r["is_reference"]]
    assert {r["backend"] for r in compared} == {"openvino"}
    assert all(r["first_difference"] is None and r["steps_compared"] == 3 and r["logits_within"] for r in compared)


def test_check_generate_names_the_first_differing_step(tiny, registry, capsys, tmp_path):
    out = tmp_path / "check.json"
    code = main(["check", tiny, "--generate", "-b", "perturb", "-o", "perturb.node=new.0.key.flat",
                 "-o", "perturb.delta=3", "--prompt", "5", "--new", "4", "--no-isolation", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    (row,) = [r for r in json.loads(out.read_text())["results"] if r["backend"] == "perturb"]
    assert row["passed"] is False and row["first_difference"] is not None
    step = row["first_difference"]["step"]
    assert f"differ from onnxruntime's first at step {step}" in err and row["steps_compared"] == step + 1


def test_compare_generations_stops_at_the_first_differing_token():
    ref = GenerateRecord("a", tokens=[[1, 2, 3, 4], [5, 6, 7, 8]], logits=np.zeros((4, 2, 3), np.float32))
    got = GenerateRecord("b", tokens=[[1, 2, 3, 4], [5, 6, 9, 1]], logits=np.zeros((4, 2, 3), np.float32))
    got.logits[2, 1, 0] = 0.5  # at the differing step: reported
    got.logits[3] = 9.0  # after it the inputs differ: never judged
    found = compare_generations(ref, got, tolerance("fp32"))
    assert found["first_difference"] == {"step": 2, "row": 1, "token": 9, "reference_token": 7, "max_abs": 0.5}
    assert found["steps_compared"] == 3 and found["first_outside_step"] == 2 and found["passed"] is False


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_each_backend_runs_in_its_own_process_by_default(tiny, tmp_path, capsys):
    out = tmp_path / "gen.json"
    assert main(["bench", tiny, "--generate", "-b", "onnxruntime", "--prompt", "4", "--new", "2",
                 "--batch", "1,2", "--runs", "1", "--json", str(out)]) == 0, capsys.readouterr().err
    rows = json.loads(out.read_text())["results"]
    assert [r["batch"] for r in rows] == [1, 2] and all(r["status"] == "ok" for r in rows)
    assert all(r["memory"]["peak_rss"] > r["memory"]["rss_before_compile"] > 0 for r in rows)
    assert rows[0]["compile_s"] == rows[1]["compile_s"]  # compiled once for both rows
