"""``hwkit compare`` on malformed, hostile or mismatched results: one line and exit 2, never a
traceback; a fixed-seed fuzz of field mutations exits 0, 1 or 2 only."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from hwkit.cli import main
from hwkit.errors import ResultError
from hwkit.report.diff import Change
from hwkit.report.schema import load_result


def compare(capsys: pytest.CaptureFixture[str], tmp_path: Path, old: Any, new: Any) -> tuple[int, str, list[str]]:
    paths = []
    for name, data in (("old.json", old), ("new.json", new)):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        paths.append(str(path))
    code = main(["compare", *paths])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, old: Any, new: Any) -> str:
    code, _, err = compare(capsys, tmp_path, old, new)
    assert code == 2 and len(err) == 1 and err[0].startswith("hwkit: error: "), err
    return err[0]


def edited(data: dict[str, Any], *path: Any, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


# -- row 55: malformed files that passed the JSON Schema --------------------------------------

@pytest.mark.parametrize("path, value, needle", [
    (("results", 0, "latency_s", "median"), -0.001, "results[0].latency_s.median is -0.001, expected a finite number of seconds >= 0"),
    (("results", 0, "latency_s", "ci_low"), 1.0, "results[0].latency_s.ci_low 1 is above its ci_high"),
    (("results", 0, "latency_s", "median"), "nan", "results[0].latency_s.median is \"nan\""),
    (("results", 1, "latency_s", "p90"), "inf", "results[1].latency_s.p90 is \"inf\""),
    (("results", 0, "samples_s", 3), "fast", "results[0].samples_s[3] is \"fast\""),
    (("results", 0, "samples_s", 0), True, "results[0].samples_s[0] is true"),
])
def test_row_55_values_the_schema_let_through_are_one_line(capsys, tmp_path, real, path, value, needle):
    line = refused(capsys, tmp_path, real, edited(real, *path, value=value))
    assert needle in line and "new.json" in line


def test_row_55_a_zero_median_compares_without_dividing(capsys, tmp_path, real):
    zero = edited(real, "results", 0, "latency_s", "median", value=0.0)
    for old, new in ((zero, real), (real, zero), (zero, zero)):
        code, out, err = compare(capsys, tmp_path, old, new)
        assert code in (0, 1) and not err and "fake" in out
    assert Change("m", "b", "cpu", 1, 0.0, 0.001, False).regressed(0.05)
    assert Change("m", "b", "cpu", 1, 0.0, 0.0, False).ratio == 1.0


@pytest.mark.parametrize("text, needle", [
    ('{"schema": "hwkit.bench/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"schema": "hwkit.bench/1", "schema": "hwkit.bench/1"}', 'the key "schema" appears twice'),
    ('{"schema": "hwkit.bench/1", "model": {"name": "a", "name": "b"}}', 'the key "name" appears twice'),
])
def test_row_55_unparseable_structures_are_one_line(capsys, tmp_path, real, text, needle):
    assert needle in refused(capsys, tmp_path, real, text)


def test_row_55_huge_lists_are_checked_quickly_or_refused(capsys, tmp_path, real):
    many = edited(real, "results", 0, "samples_s", value=[0.001] * 300_000)  # jsonschema alone: ~1 s
    assert load_result(_write(tmp_path, many))["results"][0]["samples_s"][-1] == 0.001
    rows = edited(real, "results", value=real["results"] * 5_001)
    assert "results has 10002 entries, expected a list of at most 10000 results" in refused(capsys, tmp_path, real, rows)
    shapes = edited(real, "model", "shapes", value={str(n): {} for n in range(10_001)})
    assert "model.shapes has 10001 entries, expected an object of input shapes per batch size (1 to 10000" in refused(
        capsys, tmp_path, real, shapes)


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(data))
    return path


def test_row_55_a_duplicate_row_is_one_line(capsys, tmp_path, real):
    twice = edited(real, "results", value=real["results"] + real["results"][:1])
    assert "NEW measures fake on cpu at batch 1 in fp32 twice (results[0] and results[2])" in refused(capsys, tmp_path, real, twice)


# -- row 56: results that cannot be compared --------------------------------------------------

def test_row_56_different_models_are_refused(capsys, tmp_path, real):
    other = edited(real, "model", "sha256", value="f" * 64)
    line = refused(capsys, tmp_path, real, other)
    assert "different models: model.sha256 differs" in line and "ffffffffffff" in line


def test_row_56_different_input_shapes_are_refused(capsys, tmp_path, real):
    batch, shapes = next(iter(real["model"]["shapes"].items()))
    name = next(iter(shapes))
    other = edited(real, "model", "shapes", batch, name, value=[int(batch), 999])
    line = refused(capsys, tmp_path, real, other)
    assert f"different input shapes at batch {batch}" in line and "999" in line and "--dim" in line


@pytest.mark.parametrize("results", [[], "failed"])
def test_row_56_no_row_in_common_is_refused(capsys, tmp_path, real, results):
    if results == "failed":
        results = [{**r, "status": "failed", "latency_s": None} for r in real["results"]]
    line = refused(capsys, tmp_path, real, edited(real, "results", value=results))
    assert "no measured row in common (OLD: fake cpu batch 1, timed cpu batch 1; NEW: no measured row)" in line


def test_row_56_other_backends_only_is_refused(capsys, tmp_path, real):
    renamed = edited(real, "results", value=[{**r, "backend": r["backend"] + "2"} for r in real["results"]])
    assert "NEW: fake2 cpu batch 1, timed2 cpu batch 1" in refused(capsys, tmp_path, real, renamed)


def test_row_56_different_settings_only_warn(capsys, tmp_path, real):
    other = edited(real, "settings", "threads", value=real["settings"]["threads"] + 7)
    other["model"]["name"] = "renamed"  # the same graph under another name still matches
    code, out, err = compare(capsys, tmp_path, real, other)
    assert code in (0, 1) and "fake" in out
    assert err == [f"hwkit: warning: OLD and NEW differ in threads {real['settings']['threads']} vs "
                   f"{real['settings']['threads'] + 7}; the change may come from it"]


@pytest.mark.parametrize("value", ["nan", "-0.1", "inf"])
def test_row_56_a_bad_threshold_is_one_line(capsys, tmp_path, real, value):
    with pytest.raises(SystemExit) as stop:  # argparse's usage error, as the hwkit script exits
        main(["compare", str(_write(tmp_path, real)), str(_write(tmp_path, real)), "--threshold", value])
    err = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--threshold" in err[0] and value in err[0]


# -- fuzz --------------------------------------------------------------------------------------

WRONG = [None, True, -1, 0, 0.0, -0.0, 1e308, 2**70, "", "nan", "x" * 50, [], [1, "a"], {}, {"a": None}, [[[]]]]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        if key != "samples_s":
            found += _paths(child, (*path, key))
    return found


def test_fuzz_compare_exits_0_1_or_2_with_one_line(capsys, tmp_path, real):
    rng = random.Random(55)
    small = edited(real, "results", value=[{**r, "samples_s": r["samples_s"][:3]} for r in real["results"]])
    paths = _paths(small)
    seen = set()
    for _ in range(300):
        mutant = copy.deepcopy(small)
        for path in rng.sample(paths, rng.randint(1, 3)):
            try:
                node = mutant
                for key in path[:-1]:
                    node = node[key]
                if rng.random() < 0.15 and isinstance(node, dict):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = copy.deepcopy(rng.choice(WRONG + [rng.uniform(-1, 1)]))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation replaced a parent
        old, new = (small, mutant) if rng.random() < 0.5 else (mutant, small)
        code, _, err = compare(capsys, tmp_path, old, new)  # an exception here fails the test
        assert code in (0, 1, 2), code
        if code == 2:
            assert len(err) == 1 and err[0].startswith("hwkit: error: "), err
        else:
            assert all(line.startswith("hwkit: warning: ") for line in err), err
        seen.add(code)
    assert seen >= {0, 2}


def test_resulterror_is_what_load_result_raises(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 50_000)
    with pytest.raises(ResultError):
        load_result(path)
