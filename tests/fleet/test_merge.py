"""hwkit merge: results of one model from two runs (two machines) become one comparison with a
machine column, and results of different models or inputs are refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from hwkit.cli import main
from hwkit.fleet.merge import merge_results
from hwkit.report.diff import compare_results
from hwkit.report.schema import load_result, validation_errors
from tests.helpers import FAST_BENCH
from tests.perturb_backend import chain_model


def bench_file(path: Path, *args: str, model: str = "mlp") -> Path:
    code = main(["bench", model, "-b", "fake", "--no-isolation", *FAST_BENCH, "--json", str(path), *args])
    assert code == 0
    return path


@pytest.fixture
def two_runs(tmp_path: Path, fake_registry, capsys) -> tuple[Path, Path]:
    """Two single-machine results of mlp, named after their machines."""
    laptop = bench_file(tmp_path / "laptop.json")
    server = bench_file(tmp_path / "server.json", "-b", "fake,timed")
    capsys.readouterr()
    return laptop, server


def test_merge_two_runs_into_one_table_with_a_machine_column(two_runs, tmp_path, capsys) -> None:
    laptop, server = two_runs
    out = tmp_path / "merged.json"
    markdown, csv = tmp_path / "merged.md", tmp_path / "merged.csv"
    assert main(["merge", str(laptop), str(server), "--json", str(out), "--markdown", str(markdown),
                 "--csv", str(csv)]) == 0
    printed = capsys.readouterr().out
    assert "machine" in printed and "laptop" in printed and "server" in printed
    merged = load_result(out)  # a valid bench result, readable by every reader of results
    rows = [(r["host"], r["backend"], r["device"], r["batch"], r["precision"]) for r in merged["results"]]
    assert rows == [("laptop", "fake", "cpu", 1, "fp32"), ("server", "fake", "cpu", 1, "fp32"),
                    ("server", "timed", "cpu", 1, "fp32")]
    assert set(merged["machines"]) == {"laptop", "server"}
    assert all(m["cpu"] and m["packages"]["hwkit"] for m in merged["machines"].values())
    # vs fastest across machines: exactly one row of the batch is the fastest, the others are slower
    ratios = sorted(r["vs_fastest"] for r in merged["results"])
    assert ratios[0] == 1.0 and all(r >= 1.0 for r in ratios)
    fastest = min(merged["results"], key=lambda r: r["latency_s"]["median"])
    assert fastest["vs_fastest"] == 1.0
    assert markdown.read_text().splitlines()[2].startswith("| machine | backend |")
    header, first = (line.split(",") for line in csv.read_text().splitlines()[:2])
    assert header[0] == "machine" and header.count("precision") == 1
    assert dict(zip(header, first)) | {"machine": "laptop", "precision": "fp32", "backend": "fake", "status": "ok"} \
        == dict(zip(header, first))


def test_a_merged_result_merges_again_keeping_its_machines(two_runs, tmp_path, capsys) -> None:
    laptop, server = two_runs
    first = tmp_path / "fleet.json"
    assert main(["merge", str(laptop), str(server), "--json", str(first)]) == 0
    again = tmp_path / "again.json"
    assert main(["merge", str(first), str(laptop), "--json", str(again)]) == 0
    merged = load_result(again)
    assert [r["host"] for r in merged["results"]] == ["laptop", "server", "server", "laptop-2"]


def test_row_88_results_of_different_models_are_refused(two_runs, tmp_path, fake_registry, capsys) -> None:
    laptop, _ = two_runs
    chain = tmp_path / "chain.onnx"
    chain.write_bytes(chain_model().SerializeToString())
    other = bench_file(tmp_path / "other.json", model=str(chain))
    capsys.readouterr()
    assert main(["merge", str(laptop), str(other), "--json", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("hwkit: error: laptop and other measure different models: model.sha256 differs")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("change, says", [
    (["--seed", "3"], "settings.seed differs (0 vs 3); bench every machine with the same --seed"),
    (["--input-sets", "2"], "settings.input_sets differs (4 vs 2)"),
])
def test_row_89_results_with_different_inputs_are_refused(change, says, two_runs, tmp_path, capsys) -> None:
    laptop, _ = two_runs
    other = bench_file(tmp_path / "other.json", *change)
    capsys.readouterr()
    assert main(["merge", str(laptop), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hwkit: error: laptop and other ") and says in err


def relu_of_any_width(path: Path) -> str:
    """A one-node model whose input is [batch, width], both dimensions free."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "width"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return str(path)


def test_row_89_results_with_different_input_shapes_at_one_batch_are_refused(tmp_path, fake_registry, capsys) -> None:
    model = relu_of_any_width(tmp_path / "relu.onnx")
    short = bench_file(tmp_path / "short.json", "--dim", "batch=1", "--dim", "width=8", model=model)
    long = bench_file(tmp_path / "long.json", "--dim", "batch=1", "--dim", "width=16", model=model)
    capsys.readouterr()
    assert main(["merge", str(short), str(long)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "short and long used different input shapes at batch 1" in err and "the same --dim and --shape" in err


def test_other_batch_sizes_merge_as_a_sweep(two_runs, tmp_path, capsys) -> None:
    laptop, _ = two_runs
    other = bench_file(tmp_path / "other.json", "--shape", "x=2x784")
    assert main(["merge", str(laptop), str(other), "--json", str(tmp_path / "m.json")]) == 0
    merged = load_result(tmp_path / "m.json")
    assert sorted(merged["model"]["shapes"]) == ["1", "2"]
    assert [r["vs_fastest"] for r in merged["results"]] == [1.0, 1.0]  # each the fastest of its batch


def test_merge_never_writes_over_an_input(two_runs, capsys) -> None:
    laptop, server = two_runs
    before = laptop.read_bytes()
    assert main(["merge", str(laptop), str(server), "--json", str(laptop)]) == 2
    assert laptop.read_bytes() == before
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_rows_without_a_precision_are_fp32_and_ranked_per_batch(two_runs) -> None:
    laptop, server = two_runs
    old = json.loads(laptop.read_text())
    for row in old["results"]:
        row.pop("precision", None)
    merged = merge_results([("old", old), ("server", load_result(server))])
    assert {r["precision"] for r in merged["results"]} == {"fp32"}
    assert sum(r["vs_fastest"] == 1.0 for r in merged["results"]) == 1


def test_a_result_with_lost_rows_is_a_valid_result(two_runs) -> None:
    laptop, _ = two_runs
    merged = merge_results([("laptop", load_result(laptop))])
    merged["results"].append({"backend": "fake", "device": "cpu", "batch": 1, "status": "lost", "precision": "fp32",
                              "error": "the machine left the cluster", "host": "gone"})
    assert validation_errors(merged, merged["schema"]) == []


def test_compare_matches_the_rows_of_two_merged_results_machine_by_machine(two_runs, tmp_path, capsys) -> None:
    """The same backend on two machines is two rows, not a duplicate: compare keys them by machine."""
    laptop, server = two_runs
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert main(["merge", str(laptop), str(server), "--json", str(before)]) == 0
    assert main(["merge", str(laptop), str(server), "--json", str(after)]) == 0
    capsys.readouterr()
    assert main(["compare", str(before), str(after)]) == 0  # no "measures fake on cpu twice" refusal
    changes, gone, added = compare_results(load_result(before), load_result(after))
    assert sorted(c.backend for c in changes) == ["fake@laptop", "fake@server", "timed@server"]
    assert gone == added == []
