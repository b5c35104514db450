"""Merging bench results of one model from several machines into one comparison.

A merged result is an ordinary bench result dict (of the first result's schema version, so
``load_result`` reads it and ``hwkit merge`` can merge it again) with two additions that the
schema allows (unknown fields do not change its version):

- ``machines``: ``{name: fingerprint}``, each machine's ``system`` fingerprint (plus its
  ``peaks_gflops``); the single-machine ``system`` field is left out, since no one fingerprint
  describes every row;
- ``host`` in every row: the name of the machine in ``machines`` where the row was measured.

"vs fastest" and "within noise" are computed again across every machine, per batch size (as a
local bench does, across precisions too). Each row keeps the agreement its own machine measured.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwkit.errors import ResultError
from hwkit.report.schema import number

HOST = "host"  # the row field naming its machine in "machines"
MACHINES = "machines"
DEFAULT_PRECISION = "fp32"  # a row of a result written before rows had a precision


def machine_name(path: str | os.PathLike[str]) -> str:
    """The name a single-machine result file gives its machine: the file's stem
    (``laptop.json`` -> ``laptop``), as people name result files after the machine."""
    return Path(path).stem or "machine"


def merge_results(named: Sequence[tuple[str, dict[str, Any]]], one_name_one_machine: bool = False) -> dict[str, Any]:
    """One result of every row of ``named`` (``(name, result dict)``: the name is the machine's,
    for a single-machine result; a merged result keeps its own machines' names).

    Two results of one name are two machines (``run``, ``run-2``: files of one name from
    different folders) unless ``one_name_one_machine`` (a cluster's names are its nodes').

    Raises:
        ResultError: fewer than one result, or two results of different models (``model.sha256``)
            or different input settings (seed, input sets, input shapes at a batch size both
            measured): one line that says which differ.
    """
    if not named:
        raise ResultError("nothing to merge; give the result files (hwkit bench --json) of each machine")
    first_name, first = named[0]
    for name, data in named[1:]:
        why = refusal(first_name, first, name, data)
        if why:
            raise ResultError(why)
    merged = copy.deepcopy(first)
    merged.pop("system", None)  # the schema stays the first result's: its settings are the merged result's
    merged[MACHINES] = {}
    merged["results"] = []
    merged["peaks_gflops"] = {}
    shapes: dict[str, Any] = {}
    flops: dict[str, Any] = {}
    for name, data in named:
        renamed = _add_machines(merged[MACHINES], name, data, one_name_one_machine)
        for row in data["results"]:
            row = copy.deepcopy(row)
            row[HOST] = renamed[row.get(HOST, name)]
            row.setdefault("precision", DEFAULT_PRECISION)
            merged["results"].append(row)
        shapes.update(data["model"]["shapes"])
        flops.update(data["model"].get("flops") or {})
    merged["model"]["shapes"] = dict(sorted(shapes.items(), key=lambda item: int(item[0])))
    merged["model"]["flops"] = flops
    merged["mode"] = "throughput" if any(d["mode"] == "throughput" for _, d in named) else "latency"
    references = {d.get("reference") for _, d in named}
    if len(references) > 1:
        merged["reference"] = None
        merged["reference_note"] = "each machine's own reference: " + ", ".join(
            f"{n}: {d.get('reference') or '-'}" for n, d in named)
    merged["interrupted"] = any(d.get("interrupted") for _, d in named)
    merged["elapsed_s"] = max(float(d["elapsed_s"]) for _, d in named)
    rank_across_machines(merged["results"])
    return merged


def refusal(name_a: str, a: dict[str, Any], name_b: str, b: dict[str, Any]) -> str | None:
    """Why the rows of ``a`` and ``b`` are not one comparison (one phrase naming what differs),
    or None. Settings that legitimately differ between machines (threads, timing) are allowed."""
    model_a, model_b = a["model"], b["model"]
    if model_a["sha256"] != model_b["sha256"]:
        return (f"{name_a} and {name_b} measure different models: model.sha256 differs ({model_a['name']} "
                f"{model_a['sha256'][:12]} vs {model_b['name']} {model_b['sha256'][:12]}); merge results of the "
                "same model graph")
    for setting in ("seed", "input_sets"):
        x, y = a["settings"].get(setting), b["settings"].get(setting)
        if x != y:
            return (f"{name_a} and {name_b} used different inputs: settings.{setting} differs ({x} vs {y}); "
                    f"bench every machine with the same --{setting.replace('_', '-')}")
    for batch in sorted(model_a["shapes"].keys() & model_b["shapes"].keys(), key=int):
        x, y = model_a["shapes"][batch], model_b["shapes"][batch]
        if x != y:
            return (f"{name_a} and {name_b} used different input shapes at batch {batch} ({_shapes(x)} vs "
                    f"{_shapes(y)}); bench every machine with the same --dim and --shape")
    return None


def _add_machines(machines: dict[str, Any], name: str, data: dict[str, Any], reuse: bool) -> dict[str, str]:
    """Add ``data``'s machines to ``machines`` under names not taken yet; returns old -> new names."""
    own = data.get(MACHINES)
    if not isinstance(own, dict):
        own = {name: {**(data.get("system") or {}), "peaks_gflops": data.get("peaks_gflops") or {}}}
    renamed = {}
    for old, fingerprint in own.items():
        new, k = old, 2
        while new in machines and not reuse:  # two files named alike (a/run.json, b/run.json): run, run-2
            new, k = f"{old}-{k}", k + 1
        machines[new] = fingerprint
        renamed[old] = new
    return renamed


def rank_across_machines(rows: list[dict[str, Any]]) -> None:
    """Set ``vs_fastest`` and ``within_noise`` of every timed row against the fastest row of the
    same batch size, on whichever machine it ran."""
    timed = [r for r in rows if r.get("status") == "ok" and isinstance(r.get("latency_s"), dict)]
    for row in rows:
        if row not in timed:
            row["vs_fastest"] = None
            row["within_noise"] = False
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in timed:
        groups.setdefault(int(row["batch"]), []).append(row)
    for group in groups.values():
        best = min(group, key=lambda r: float(r["latency_s"]["median"]))
        best_median = float(best["latency_s"]["median"])
        for row in group:
            median = float(row["latency_s"]["median"])
            if best_median > 0:  # a median of 0 (a timer too coarse for the run) keeps its own machine's ratio
                row["vs_fastest"] = median / best_median
            row["within_noise"] = row is not best and _overlap(row["latency_s"], best["latency_s"])


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the two medians' 95% intervals overlap; False when either has none (too few runs)."""
    bounds = [number(a.get("ci_low")), number(a.get("ci_high")), number(b.get("ci_low")), number(b.get("ci_high"))]
    if any(x is None for x in bounds):
        return False
    low_a, high_a, low_b, high_b = (float(x) for x in bounds)  # type: ignore[arg-type]
    return low_a <= high_b and low_b <= high_a


def _shapes(shapes: dict[str, Any]) -> str:
    return ", ".join(f"{name} {list(dims)}" for name, dims in shapes.items())
