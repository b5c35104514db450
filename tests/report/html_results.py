"""Result dicts for the HTML report tests: a real result grown into a batch sweep with precision
rows, and one whose names and errors carry markup."""

from __future__ import annotations

import copy
from typing import Any


def swept(real: dict[str, Any]) -> dict[str, Any]:
    """``real`` with batch 4 rows (3x slower) and an fp16 row per backend (1.6x faster, a larger
    difference from the reference): every plot of the report has something to draw."""
    data = copy.deepcopy(real)
    data["model"]["shapes"]["4"] = {k: [4, *v[1:]] for k, v in data["model"]["shapes"]["1"].items()}
    extra = []
    for row in data["results"]:
        if row["status"] != "ok":
            continue
        for batch, precision, factor, diff in ((4, "fp32", 3.0, None), (1, "fp16", 1 / 1.6, 1e-3)):
            copied = copy.deepcopy(row)
            copied.update(batch=batch, precision=precision, is_reference=False)
            copied["latency_s"] = {k: v * factor if k != "count" and isinstance(v, float) else v
                                   for k, v in row["latency_s"].items()}
            copied["items_per_s"] = batch / copied["latency_s"]["median"]
            copied["max_abs_diff"] = diff if diff is not None else row["max_abs_diff"]
            extra.append(copied)
    data["results"] += extra
    return data


PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def hostile(real: dict[str, Any]) -> dict[str, Any]:
    """``real`` with markup in the model's name, a backend's name and a failed row's error."""
    data = copy.deepcopy(real)
    data["model"]["name"] = f"mlp{PAYLOAD}"
    failed = copy.deepcopy(data["results"][0])
    failed.update(backend=f"evil{PAYLOAD}", status="failed", error=f"compile failed: {PAYLOAD}", latency_s=None,
                  ci_half_width=None, items_per_s=None, vs_fastest=None, max_abs_diff=None, parity=None)
    data["results"].append(failed)
    return data
