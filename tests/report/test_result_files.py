"""Reading result files back: ``load_result`` checks a ``hwkit.bench/1`` file against its
published JSON Schema, and every malformed, truncated or foreign file is one line naming the
file and what is wrong (a ``ResultError``, exit 2 from ``hwkit compare``), never a traceback in
a view. The schema's required lists are exactly what the views need: a file lacking any of them
is refused, and one lacking anything else still renders in every view."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hwkit.cli import main
from hwkit.errors import ResultError
from hwkit.report import diff, files, plot, tables
from hwkit.report.schema import BENCH_SCHEMA, json_schema, load_result, validation_errors

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json_schema(BENCH_SCHEMA)


def _write(tmp_path: Path, data: Any, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ResultError) as caught:
        load_result(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))  # one line that names the file
    return message


def _render(data: dict[str, Any], with_plot: bool = False) -> None:
    """Every view of a bench result, as the commands use them."""
    from rich.console import Console

    Console(file=open("/dev/null", "w"), width=200).print(tables.bench_table(data))  # noqa: SIM115
    tables.run_summary(data)
    files.bench_csv(data)
    files.bench_markdown(data)
    changes, _, _ = diff.compare_results(data, data)
    tables.compare_table(changes, 0.05)
    if with_plot:
        plot.bench_png(data)


# -- the schema -----------------------------------------------------------------------------


def test_the_published_schema_is_the_shipped_one_and_valid():
    docs = ROOT / "docs" / "schema" / "hwkit.bench-1.schema.json"
    shipped = ROOT / "hwkit" / "report" / "hwkit.bench-1.schema.json"
    assert docs.read_bytes() == shipped.read_bytes()
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert "docs/schema/hwkit.bench-1.schema.json" in (ROOT / "docs" / "results.md").read_text()


def test_a_real_result_round_trips(real, tmp_path):
    assert validation_errors(real) == []
    loaded = load_result(_write(tmp_path, real))
    assert loaded == real
    _render(loaded, with_plot=True)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _required_paths(node: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every (path to a required key) of the schema, list items as their first element."""
    node = _resolve(node)
    for key in node.get("required", []):
        yield (*path, key)
    for key, sub in node.get("properties", {}).items():
        yield from _required_paths(sub, (*path, key))
    if isinstance(node.get("items"), dict):
        yield from _required_paths(node["items"], (*path, 0))
    if "then" in node:
        yield from _required_paths(node["then"], path)


REQUIRED = sorted(set(_required_paths(SCHEMA)), key=str)


def _place(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def test_the_required_lists_cover_what_the_views_read():
    # A sample of what each view reads unguarded, so that the parametrised test below is not empty.
    places = {_place(p) for p in REQUIRED}
    assert {"model.name", "model.shapes", "settings.threads", "results[0].batch", "results[0].latency_s.median",
            "results[0].items_per_s", "results[0].latency_s.ci_low"} <= places


@pytest.mark.parametrize("path", REQUIRED, ids=_place)
def test_row_35_every_key_the_views_need_missing_is_one_line(real, tmp_path, path):
    data = copy.deepcopy(real)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    message = _error(_write(tmp_path, data))
    if path == ("schema",):
        assert "is not a hwkit result, not hwkit.bench/1" in message
    else:
        assert f"r.json: {_place(path)} is missing; it is not a complete {BENCH_SCHEMA} result" in message


def _optional_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    required = {p for p in REQUIRED}
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*path, key)
            generic = tuple(0 if isinstance(p, int) else p for p in here)
            if generic not in required and path[:1] not in (("system",),):
                yield here
            if key not in ("samples_s", "system", "options", "versions", "agreement", "shapes", "flops"):
                yield from _optional_paths(value, here)
    elif isinstance(data, list):
        for i, value in enumerate(data[:2]):
            yield from _optional_paths(value, (*path, i))


def test_anything_not_required_may_be_absent_and_every_view_still_renders(real):
    # One key at a time (older hwkit versions wrote fewer fields), then all of them at once.
    paths = list(_optional_paths(real))
    assert len(paths) > 40
    stripped = copy.deepcopy(real)
    for path in paths:
        data = copy.deepcopy(real)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
        assert validation_errors(data) == [], path
        _render(data)
    for path in sorted(paths, key=len, reverse=True):  # deepest first
        parent = stripped
        try:
            for part in path[:-1]:
                parent = parent[part]
            del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # already gone with its parent
    assert validation_errors(stripped) == []
    _render(stripped, with_plot=True)


def test_an_older_result_without_the_later_fields_loads(real, tmp_path):
    data = copy.deepcopy(real)
    for key in ("reference_note", "reference_error", "peaks_gflops", "elapsed_s"):
        data.pop(key, None)
    data["elapsed_s"] = 1.0
    for record in data["results"]:
        for key in ("device_kind", "is_reference", "max_abs_diff", "parity", "device_time_s", "gflops_per_s",
                    "percent_of_peak", "agreement", "memory"):
            record.pop(key, None)
    for key in ("efficiency", "target_ci", "timeout"):
        data["settings"].pop(key, None)
    _render(load_result(_write(tmp_path, data)), with_plot=True)


# -- what is wrong, in one line ---------------------------------------------------------------


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["results"][0].__setitem__("batch", "1"), 'results[0].batch is "1", expected a whole number >= 0'),
    (lambda d: d["results"][0]["latency_s"].__setitem__("median", "fast"),
     'results[0].latency_s.median is "fast", expected a finite number'),
    (lambda d: d["results"][0]["latency_s"].__setitem__("median", "nan"),
     'results[0].latency_s.median is "nan", expected a finite number'),  # the views compute with it
    (lambda d: d["results"][0].__setitem__("max_abs_diff", [1]), "results[0].max_abs_diff is a list, expected"),
    (lambda d: d.__setitem__("results", {}), "results is an object, expected a list"),
    (lambda d: d["results"].__setitem__(0, 5), "results[0] is 5, expected an object"),
    (lambda d: d["model"].__setitem__("name", None), "model.name is null, expected a string"),
    (lambda d: d["model"]["shapes"].__setitem__("x", {}), 'model.shapes has the key "x", expected a batch size'),
    (lambda d: d["settings"].__setitem__("isolation", "yes"), 'settings.isolation is "yes", expected true or false'),
    (lambda d: d.__setitem__("mode", "fast"), 'mode is "fast", expected "latency" or "throughput"'),
    (lambda d: d["results"][0].__setitem__("parity", "ok"), 'results[0].parity is "ok", expected "pass", "FAIL"'),
    (lambda d: d["results"][0]["latency_s"].__setitem__("median", 10 ** 400),
     "results[0].latency_s.median is a 401-digit number, expected a finite number"),
])
def test_row_35_wrong_types_name_the_field(real, tmp_path, change, expected):
    data = copy.deepcopy(real)
    change(data)
    assert f"r.json: {expected}" in _error(_write(tmp_path, data))


def test_a_huge_number_literal_is_refused(real, tmp_path):
    text = json.dumps(real).replace('"elapsed_s": ', '"elapsed_s": 1e999, "x": ', 1)
    assert "r.json: elapsed_s is a number too large for a float, expected a finite number" in _error(
        _write(tmp_path, text))


@pytest.mark.parametrize("content, expected", [
    (b"", "is not a readable JSON result (the file is empty)"),
    (b"   \n", "is not a readable JSON result (the file is empty)"),
    (b'{"schema": "hwkit.bench/1", "results": [', "is not a readable JSON result (truncated? "),
    (b'{"schema": "hwkit.bench/1", \xff\xfe}', "is not a readable JSON result (not UTF-8 text: byte 0xff at offset 28)"),
    (b'{"schema": "hwkit.bench/1", "elapsed_s": NaN}', "the bare token NaN"),
    (b"[1, 2]", "is not a hwkit result (a JSON list), not hwkit.bench/1"),
    (b'"hwkit.bench/1"', "is not a hwkit result (a JSON string), not hwkit.bench/1"),
    (b'{"schema": "hwkit.check/1"}', "is a hwkit.check/1 result, not hwkit.bench/1"),
    (b'{"schema": "hwkit.bench/3"}', "is a hwkit.bench/3 result, not hwkit.bench/1 or hwkit.bench/2"),
    (b'{"schema": "other-tool/3", "results": []}', "is a other-tool/3 result, not hwkit.bench/1"),
    (b'{"results": []}', "is not a hwkit result, not hwkit.bench/1"),
    (b'{"schema": "hwkit.bench/1"}', "r.json: model is missing (and 4 more problem(s))"),
])
def test_unreadable_and_foreign_files(tmp_path, content, expected):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    message = _error(path)
    assert expected in message and "write one with hwkit bench --json" in message


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(ResultError, match="result file not found: .*r.json; write one with hwkit bench --json"):
        load_result(tmp_path / "r.json")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ResultError, match="d.json is a folder, not a result file"):
        load_result(tmp_path / "d.json")


def test_row_35_compare_on_a_malformed_file_is_one_line_and_exit_2(real, tmp_path, capsys):
    good = _write(tmp_path, real, "good.json")
    broken = copy.deepcopy(real)
    del broken["results"][0]["latency_s"]["median"]
    bad = _write(tmp_path, broken, "bad.json")
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"hwkit: error: {bad}: results[0].latency_s.median is missing" in err
    assert main(["compare", str(good), str(good)]) == 0


@pytest.mark.timeout(20)  # a regression would block on the FIFO or read /dev/zero forever
@pytest.mark.parametrize("kind", ["char device", "fifo", "folder", "link to a device"])
def test_a_result_path_that_is_not_a_file_is_refused_before_opening(tmp_path, kind):
    import os

    path = tmp_path / "r.json"
    if kind == "char device":
        path = Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(ResultError, match=r"is a (character device|FIFO \(named pipe\)|folder).*, not a result file"):
        load_result(path)
