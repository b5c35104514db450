"""The names of hwkit's result schemas, and reading a saved result back.

Every result dict (live ``to_dict()`` or a file) is strict JSON: non-finite numbers are the
strings "nan", "inf" and "-inf" (``hwkit._files.finite``); ``number`` reads them back.
``load_result`` is the one reader of result files: a ``hwkit.bench/2`` file (or a
``hwkit.bench/1`` one, written before the precision axis) is checked against its published JSON
Schema (``hwkit.bench-2.schema.json`` and ``-1`` beside this module, the same files as
docs/schema/), so a malformed one is one line naming the file and the field, never a traceback
in a view. A v1 result comes back with its rows upgraded: each is an fp32 row.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Iterable
from importlib import resources
from typing import Any

from hwkit._files import not_a_regular_file
from hwkit.errors import ResultError

BENCH_SCHEMA = "hwkit.bench/2"
BENCH_SCHEMA_V1 = "hwkit.bench/1"  # before the precision axis: read, upgraded, never written
CHECK_SCHEMA = "hwkit.check/1"
BISECT_SCHEMA = "hwkit.bisect/1"
WRITERS = {BENCH_SCHEMA: "hwkit bench --json", BENCH_SCHEMA_V1: "hwkit bench --json", CHECK_SCHEMA: "hwkit check --json",
           BISECT_SCHEMA: "hwkit check --bisect --json"}
# The JSON Schema of each result schema that has one, shipped beside this module.
SCHEMA_FILES = {BENCH_SCHEMA: "hwkit.bench-2.schema.json", BENCH_SCHEMA_V1: "hwkit.bench-1.schema.json"}
# The older schemas each one still reads.
READS = {BENCH_SCHEMA: (BENCH_SCHEMA, BENCH_SCHEMA_V1)}


def load_result(path: str | os.PathLike[str], schema: str = BENCH_SCHEMA) -> dict[str, Any]:
    """The result saved at ``path``, checked to be of ``schema`` or an older version it reads
    (``READS``: a bench result may be v1 or v2) and valid under its JSON Schema; a v1 bench
    result comes back upgraded (``upgrade``).

    Raises:
        ResultError: the file is missing, unreadable, not UTF-8, not JSON, not a result of that
            schema, or malformed (the first problem named by its place, e.g.
            ``results[0].latency_s.median is missing``).
    """
    hint = f"write one with {WRITERS.get(schema, 'hwkit')}"
    try:
        special = not_a_regular_file(path)  # /dev/zero would be read forever, a FIFO block forever
        if special is not None:
            raise ResultError(f"{special}, not a result file; {hint}")
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError as e:
        raise ResultError(f"result file not found: {path}; {hint}") from e
    except OSError as e:
        raise ResultError(f"cannot read the result file {path}: {e.strerror or e}; {hint}") from e
    return load_document(raw, path, schema)


def load_document(raw: bytes | str, name: str | os.PathLike[str], schema: str = BENCH_SCHEMA) -> dict[str, Any]:
    """``load_result`` of a document already read (e.g. from the results database): ``name``
    stands for it in the errors.

    Raises:
        ResultError: as ``load_result``, bar the reading.
    """
    hint = f"write one with {WRITERS.get(schema, 'hwkit')}"
    path = name
    data = _parse(raw.encode() if isinstance(raw, str) else raw, path, hint)
    accepted = READS.get(schema, (schema,))
    if not isinstance(data, dict) or data.get("schema") not in accepted:
        found = data.get("schema") if isinstance(data, dict) else None
        what = f"a {found} result" if isinstance(found, str) else (
            "not a hwkit result" if isinstance(data, dict) else f"not a hwkit result (a JSON {_json_kind(data)})")
        raise ResultError(f"{path} is {what}, not {' or '.join(sorted(accepted))}; {hint}")
    schema = data["schema"]
    problems = validation_errors(data, schema)
    if not problems and schema in READS[BENCH_SCHEMA]:
        problems = _inconsistencies(data)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ResultError(f"{path}: {problems[0]}{more}; it is not a complete {schema} result: "
                          f"{hint} again (fields: docs/results.md)")
    return upgrade(data)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A ``hwkit.bench/1`` dict with the fields ``hwkit.bench/2`` added to every row, as they
    were: fp32, run natively, no baseline, no accuracy figures. Any other dict is returned as is."""
    if data.get("schema") != BENCH_SCHEMA_V1:
        return data
    defaults = {"precision": "fp32", "emulated": None, "baseline": False, "quantization": None,
                "speedup_vs_fp32": None, "accuracy": None}
    return {**data, "results": [{**defaults, **row} for row in data["results"]]}


def _parse(raw: bytes, path: str | os.PathLike[str], hint: str) -> Any:
    """The JSON document in ``raw``; a ResultError saying why not ("is not a readable JSON result
    (...)": empty, not UTF-8, truncated or otherwise broken, a bare NaN token)."""
    unreadable = f"{path} is not a readable JSON result"
    if not raw.strip():
        raise ResultError(f"{unreadable} (the file is empty); {hint}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultError(f"{unreadable} (not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}); {hint}") from e
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError as e:  # nesting deeper than the parser's stack; no result nests past 6
        raise ResultError(f"{unreadable} (nested too deeply: lists or objects inside each other over "
                          f"{sys.getrecursionlimit()} levels); {hint}") from e
    except json.JSONDecodeError as e:
        cut = "truncated? " if e.pos >= len(text.rstrip()) else ""
        raise ResultError(f"{unreadable} ({cut}{e.msg} at line {e.lineno} column {e.colno}); {hint}") from e
    except ValueError as e:  # a bare NaN / Infinity, an integer of too many digits, a repeated key
        raise ResultError(f"{unreadable} ({e}); {hint}") from e


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of ``pairs``; a key given twice is refused (JSON readers disagree which one wins)."""
    found = dict(pairs)
    if len(found) < len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"the key {_short(twice)} appears twice in one object")
    return found


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"the bare token {token} (hwkit writes non-finite numbers as \"nan\", \"inf\", \"-inf\")")


@functools.lru_cache(maxsize=None)
def json_schema(schema: str = BENCH_SCHEMA) -> dict[str, Any]:
    """The published JSON Schema of ``schema`` (docs/schema/; a KeyError for a schema without one)."""
    text = resources.files("hwkit.report").joinpath(SCHEMA_FILES[schema]).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validation_errors(data: Any, schema: str = BENCH_SCHEMA) -> list[str]:
    """Every way ``data`` breaks the JSON Schema of ``schema``, one phrase each, in document
    order (``results[0].latency_s.median is missing``); [] when valid or when ``schema`` has no
    JSON Schema."""
    if schema not in SCHEMA_FILES:
        return []
    import jsonschema  # only when a file is read: keeps `import hwkit` light

    validator = jsonschema.Draft202012Validator(json_schema(schema))
    too_long = _too_long(data, validator.schema)
    if too_long:  # jsonschema would check every item first (~40 µs a result): minutes for 10^6
        return [too_long]
    data, samples = _without_samples(data)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(e) for e in errors] + samples


def _too_long(data: Any, schema: dict[str, Any]) -> str | None:
    """The first of ``results`` and ``model.shapes`` over the schema's maxItems / maxProperties."""
    model = data.get("model") if isinstance(data, dict) else None
    for where, value, rule in (("results", data.get("results") if isinstance(data, dict) else None,
                                schema["properties"]["results"]),
                               ("model.shapes", model.get("shapes") if isinstance(model, dict) else None,
                                schema["properties"]["model"]["properties"]["shapes"])):
        limit = rule.get("maxItems") if isinstance(value, list) else rule.get("maxProperties")
        if isinstance(value, (list, dict)) and limit is not None and len(value) > limit:
            return f"{where} has {len(value)} entries, expected {rule['description']}"
    return None


def _without_samples(data: Any) -> tuple[Any, list[str]]:
    """``data`` with each result's ``samples_s`` emptied, and the problems of those lists.

    A long bench keeps 10^5-10^6 samples, which jsonschema checks at ~4 µs each (seconds); a
    plain loop applies the same rule (a finite number or "nan"/"inf"/"-inf") at ~0.1 µs each.
    """
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return data, []
    problems, rows = [], []
    for i, row in enumerate(results):
        samples = row.get("samples_s") if isinstance(row, dict) else None
        if isinstance(samples, list):
            bad = next((j for j, x in enumerate(samples) if not _is_figure(x)), None)
            if bad is not None:
                problems.append(f"results[{i}].samples_s[{bad}] is {_short(samples[bad])}, expected a finite "
                                "number or \"nan\", \"inf\", \"-inf\"")
            row = {**row, "samples_s": []}
        rows.append(row)
    return {**data, "results": rows}, problems


def _is_figure(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= sys.float_info.max
    return value in ("nan", "inf", "-inf")


def _inconsistencies(data: dict[str, Any]) -> list[str]:
    """What the JSON Schema cannot say of a valid ``hwkit.bench/1`` dict: an interval of the
    median whose low end lies above its high end."""
    problems = []
    for i, row in enumerate(data["results"]):
        latency = row.get("latency_s") or {}
        low, high = latency.get("ci_low"), latency.get("ci_high")
        if low is not None and high is not None and low > high:
            problems.append(f"results[{i}].latency_s.ci_low {low:g} is above its ci_high {high:g}, expected "
                            "ci_low <= ci_high")
    return problems


def _describe(error: Any) -> str:
    """One phrase for a jsonschema ``ValidationError``: where, and what is wrong."""
    where = _place(error.absolute_path)
    if error.validator == "required":
        missing = next((k for k in error.validator_value if k not in error.instance), "?")
        return f"{where + '.' if where else ''}{missing} is missing"
    expected = error.schema.get("description") if isinstance(error.schema, dict) else None
    if "propertyNames" in error.relative_schema_path:
        return f"{where or 'the document'} has the key {_short(error.instance)}, expected {expected or 'another key'}"
    if error.validator == "minProperties":
        return f"{where or 'the document'} is empty, expected {expected or error.message}"
    if error.validator == "type" and not expected:
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_ARTICLE.get(str(k), str(k)) for k in kinds)
    return f"{where or 'the document'} is {_short(error.instance)}, expected {expected or error.message}"


_ARTICLE = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
            "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _place(path: Iterable[Any]) -> str:
    """["results", 0, "latency_s"] -> "results[0].latency_s"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any, limit: int = 40) -> str:
    """A value as it appears in the file, cut to ``limit`` characters."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return "a number too large for a float"  # what a literal like 1e999 parses to
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return f"a {len(str(abs(value)))}-digit number"
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def number(value: Any) -> float | None:
    """A figure of a result dict as a float: None stays None, "nan"/"inf"/"-inf" become floats."""
    if value is None:
        return None
    return float(value)


def bench_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per backend, precision and batch of a ``hwkit.bench/2`` (or ``/1``) result:
    what the table, CSV and Markdown show (None where not measured; a v1 row is fp32)."""
    rows = []
    for result in data["results"]:
        latency = result.get("latency_s") or {}
        peak_rss = (result.get("memory") or {}).get("peak_rss")
        accuracy = result.get("accuracy") or {}
        vs_fp32, vs_reference = accuracy.get("vs_fp32") or {}, accuracy.get("vs_reference") or {}
        rows.append({
            "backend": result["backend"],
            "timed_options": " ".join(f"{k}={v}" for k, v in (result.get("timed_options") or {}).items()),
            "device": result["device"],
            "batch": result["batch"],
            "precision": result.get("precision") or "fp32",
            "emulated": result.get("emulated") or "",
            "baseline": bool(result.get("baseline")),
            "speedup_vs_fp32": result.get("speedup_vs_fp32"),
            "cosine_vs_fp32": number(vs_fp32.get("cosine")),
            "top1_vs_fp32": number(vs_fp32.get("top1")),
            "max_abs_vs_fp32": number(vs_fp32.get("max_abs")),
            "cosine_vs_reference": number(vs_reference.get("cosine")),
            "top1_vs_reference": number(vs_reference.get("top1")),
            "status": result["status"],
            "error": result.get("error", ""),
            "median_s": latency.get("median"),
            "p90_s": latency.get("p90"),
            "p99_s": latency.get("p99"),
            "ci_low_s": latency.get("ci_low"),
            "ci_high_s": latency.get("ci_high"),
            "ci_half_width": number(result.get("ci_half_width")),
            "runs": latency.get("count", 0),
            "hit_max_time": result.get("hit_max_time", False),
            "items_per_s": result.get("items_per_s"),
            "vs_fastest": result.get("vs_fastest"),
            "within_noise": result.get("within_noise", False),
            "is_reference": result.get("is_reference", result["backend"] == data.get("reference")
                                       and (result.get("precision") or "fp32") == "fp32"),
            "max_abs_diff": number(result.get("max_abs_diff")),
            "parity": result.get("parity"),
            "compile_s": result.get("compile_s"),
            "first_run_s": result.get("first_run_s"),
            "peak_rss_mib": peak_rss / 2**20 if peak_rss else None,
            "gflops_per_s": result.get("gflops_per_s"),
            "percent_of_peak": result.get("percent_of_peak"),
            "machine_busy": bool((result.get("machine") or {}).get("busy")),
        })
    return rows
