"""The accuracy a precision costs (hwkit.parity.accuracy): each figure's definition, the worst
over outputs, and every input set counted, so that top-1 is not one item's coin toss."""

from __future__ import annotations

import numpy as np
import pytest

from hwkit.measure.bench import bench
from hwkit.parity.accuracy import accuracy_cost, row_accuracy
from tests.precision.test_sweep import FAST


def _scores(rows: int, classes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, classes)).astype(np.float32)


def test_each_figure_is_the_worst_over_the_outputs():
    base = {"logits": _scores(8, 10, 0), "features": np.ones((2, 3), np.float32)}
    actual = {"logits": base["logits"].copy(), "features": np.array([[1, 1, 1], [1, 1, -1]], np.float32)}
    actual["logits"][0] = -actual["logits"][0]  # one of 8 rows has another arg-max (and top-5)
    cost = accuracy_cost(base, actual)
    assert cost["max_abs"] == pytest.approx(max(2.0, 2 * float(np.abs(base["logits"][0]).max())))
    assert cost["cosine"] == pytest.approx(min(4 / 6, _cosine(base["logits"], actual["logits"])), rel=1e-6)
    assert cost["top1"] == pytest.approx(7 / 8)  # "features" has 3 classes: class scores too, all agree
    assert cost["top5"] == pytest.approx(7 / 8)  # only "logits" has more than 5 classes
    assert cost["shape_ok"]


def test_outputs_that_are_not_class_scores_have_no_top1():
    base = {"y": np.arange(4, dtype=np.float32).reshape(4, 1)}  # one "class": no arg-max to agree on
    assert accuracy_cost(base, base)["top1"] is None


def test_top1_counts_the_items_of_every_input_set():
    sets = [{"logits": _scores(1, 10, seed)} for seed in range(4)]
    flipped = [{"logits": s["logits"].copy()} for s in sets]
    flipped[3]["logits"] *= -1  # the last set's single item now has another arg-max
    _, cost = row_accuracy("bf16", flipped, reference=sets, fp32=sets)
    assert cost["vs_fp32"]["top1"] == pytest.approx(3 / 4) and cost["vs_fp32"]["sets"] == 4
    assert cost["vs_reference"]["top1"] == pytest.approx(3 / 4)
    agreement, first_only = row_accuracy("bf16", flipped[:1], reference=sets[:1], fp32=sets[:1])
    assert first_only["vs_fp32"]["top1"] == 1.0 and first_only["vs_fp32"]["sets"] == 1
    assert agreement is not None and all(a.passed for a in agreement)  # parity: the first set


def test_an_fp32_row_has_no_cost_against_itself():
    sets = [{"y": _scores(2, 3, 0)}]
    _, cost = row_accuracy("fp32", sets, reference=sets, fp32=None)
    assert "vs_fp32" not in cost and cost["vs_reference"]["max_abs"] == 0.0


def test_a_bench_row_reports_its_accuracy_over_every_input_set(sweep):
    data = bench("mlp", ["exact"], reference="exact", precisions="fp32,bf16", **{**FAST, "input_sets": 3}).to_dict()
    bf16 = next(r for r in data["results"] if r["precision"] == "bf16")
    assert bf16["accuracy"]["vs_fp32"]["sets"] == 3 and bf16["accuracy"]["vs_reference"]["sets"] == 3
    assert 0.999 < bf16["accuracy"]["vs_fp32"]["cosine"] < 1.0  # exact rounds its bf16 outputs: a real, small cost


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
