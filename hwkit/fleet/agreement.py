"""Agreement across machines: each row's outputs (the first input set, identical on every node)
compared with one reference row, by the tolerance profile of the row's precision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hwkit.api import split_target
from hwkit.parity.agreement import compare_outputs
from hwkit.parity.tolerance import tolerance
from hwkit.runner.plan import DEFAULT_REFERENCE


def attach_fleet_agreement(merged: dict[str, Any], outputs: Sequence[Any], reference: str | None) -> None:
    """Fill ``is_reference``, ``max_abs_diff``, ``parity`` and ``agreement`` of every row of
    ``merged`` (``outputs[i]`` belongs to ``merged["results"][i]``), and the result's
    ``reference``/``reference_note``. The reference row at each batch: the first measured row of
    ``reference`` (a backend, optionally with its device), else of onnxruntime, else the first
    measured row; its fp32 row where it has one, as a local bench judges every precision against
    the reference's fp32 outputs."""
    rows = merged["results"]
    chosen, note = (reference, "chosen with --reference") if reference else (DEFAULT_REFERENCE, "the default reference")
    name, device = split_target(chosen)
    described = ""
    for row in rows:
        row["is_reference"] = False
    for batch in sorted({int(r["batch"]) for r in rows}):
        at_batch = [i for i, r in enumerate(rows) if int(r["batch"]) == batch and outputs[i] is not None]
        matching = [i for i in at_batch if rows[i]["backend"] == name
                    and (device is None or rows[i]["device"].lower() == device.lower())]
        if not at_batch:
            continue
        candidates = matching or at_batch
        ref = next((i for i in candidates if (rows[i].get("precision") or "fp32") == "fp32"), candidates[0])
        row_note = note if matching else f"{chosen} measured nothing at batch {batch}, so the first measured row"
        reference_row = rows[ref]
        reference_row["is_reference"] = True
        described = described or f"{reference_row['backend']} on {reference_row['host']} ({row_note})"
        for i in at_batch:
            row = rows[i]
            row["max_abs_diff"] = row["parity"] = row["agreement"] = None
            if i == ref:
                continue
            found = compare_outputs(outputs[ref], outputs[i], tolerance(row.get("precision") or "fp32"))
            row["agreement"] = [a.to_dict() for a in found]
            row["max_abs_diff"] = max((a.max_abs for a in found), default=None)
            row["parity"] = "pass" if all(a.passed for a in found) else "FAIL"
        merged["reference"] = reference_row["backend"]
    merged["reference_note"] = described or "no row was measured, so none is the reference"
