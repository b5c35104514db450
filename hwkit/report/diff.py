"""Comparing two bench result dicts: what got faster or slower, and whether it is noise."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hwkit.errors import ResultError


Key = tuple[str, str, str, int, str]  # model, backend, device, batch, precision


@dataclasses.dataclass(frozen=True)
class Change:
    """One backend's median before and after."""

    model: str
    backend: str
    device: str
    batch: int
    old_median: float
    new_median: float
    within_noise: bool  # the two 95% CIs of the median overlap
    precision: str = "fp32"

    @property
    def ratio(self) -> float:
        """new / old; from a median of 0 (a timer too coarse for the run) anything slower is inf."""
        if self.old_median == 0:
            return 1.0 if self.new_median == 0 else math.inf
        return self.new_median / self.old_median

    def regressed(self, threshold: float) -> bool:
        """Slower by more than ``threshold`` (0.05 = 5%) and not within noise."""
        return not self.within_noise and self.ratio > 1 + threshold

    def verdict(self, threshold: float) -> str:
        if self.within_noise:
            return "within noise"
        if self.regressed(threshold):
            return "REGRESSED"
        if self.ratio < 1:
            return "faster"
        return "slower (under threshold)"


def compare_results(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[Key], list[Key]]:
    """Changes for rows in both; and the keys only in the old and only in the new result.

    Rows match by backend, device, batch and precision (a ``hwkit.bench/1`` row is fp32; the
    model is the same: ``refusal`` says when not), and in merged results by machine too (the
    backend is then named ``backend@machine``).

    Raises:
        ResultError: one of them measures the same backend, device and batch twice.
    """
    before, after = _rows(old, "OLD"), _rows(new, "NEW")
    changes = []
    model = new["model"]["name"]
    for key in before.keys() & after.keys():
        a, b = before[key], after[key]
        bounds = (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"])
        # Without both CIs (too few runs: null) nothing says the change is noise.
        noise = None not in bounds and float(bounds[0]) <= float(bounds[3]) and float(bounds[2]) <= float(bounds[1])
        backend, device, batch, precision = key
        changes.append(Change(model, backend, device, batch, float(a["median"]), float(b["median"]), noise, precision))
    changes.sort(key=lambda c: (c.model, c.batch, c.backend, c.device, c.precision))
    return (changes, sorted((old["model"]["name"], *k) for k in before.keys() - after.keys()),
            sorted((model, *k) for k in after.keys() - before.keys()))


def refusal(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why comparing the speed of ``old`` and ``new`` means nothing (one phrase), or None.

    Different graphs (``model.sha256``) or different input shapes at a batch both measured make
    every ratio meaningless. Settings that change speed legitimately (threads, mode, precision)
    only warn: ``differences``.
    """
    a, b = old["model"], new["model"]
    if a["sha256"] != b["sha256"]:
        return (f"OLD and NEW measure different models: model.sha256 differs ({a['name']} {a['sha256'][:12]} vs "
                f"{b['name']} {b['sha256'][:12]}); compare two results of the same model graph")
    for batch in sorted(a["shapes"].keys() & b["shapes"].keys(), key=int):
        if a["shapes"][batch] != b["shapes"][batch]:
            return (f"OLD and NEW measure different input shapes at batch {batch} (model.shapes: "
                    f"{_shapes(a['shapes'][batch])} vs {_shapes(b['shapes'][batch])}); compare two results "
                    "benched with the same --dim and --shape")
    return None


# Not the precisions: rows match by precision, so a changed sweep shows as rows only in one file.
WARNED_SETTINGS = ("mode", "threads", "isolation", "input_sets", "seed")


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings and machine that differ between ``old`` and ``new``: worth a warning, since a
    comparison across them may be the point (does 8 threads beat 4?), but a surprise otherwise."""
    found = []
    for name in WARNED_SETTINGS:
        a, b = (data["mode"] if name == "mode" else data["settings"].get(name) for data in (old, new))
        if a != b:
            found.append(f"{name} {_short(a)} vs {_short(b)}")
    cpus = [(data.get("system") or {}).get("cpu") if isinstance(data.get("system"), dict) else None
            for data in (old, new)]
    if cpus[0] != cpus[1] and None not in cpus:
        found.append(f"cpu {_short(cpus[0])} vs {_short(cpus[1])}")
    return found


def _rows(data: dict[str, Any], label: str) -> dict[tuple[str, str, int, str], dict[str, float]]:
    rows: dict[tuple[str, str, int, str], dict[str, float]] = {}
    seen: dict[tuple[str, str, int, str], int] = {}
    for i, record in enumerate(data["results"]):
        latency = record.get("latency_s")
        if record.get("status") == "ok" and latency:
            # A merged result (hwkit merge) has a backend on several machines: its rows also match by host.
            backend = f"{record['backend']}@{record['host']}" if record.get("host") else record["backend"]
            key = (backend, record["device"], int(record["batch"]), str(record.get("precision") or "fp32"))
            if key in seen:
                raise ResultError(f"{label} measures {key[0]} on {key[1]} at batch {key[2]} in {key[3]} twice "
                                  f"(results[{seen[key]}] and results[{i}]); keep one of the two rows")
            seen[key], rows[key] = i, latency
    return rows


def nothing_in_common(gone: list[Key], added: list[Key]) -> str:
    """The one line for two results without a measured row in common (``compare_results``
    found no change): what each has."""
    return (f"OLD and NEW have no measured row in common (OLD: {_listing(gone)}; NEW: {_listing(added)}); "
            "compare two hwkit bench --json results of the same backends and batch sizes")


def _listing(keys: list[Key], limit: int = 4) -> str:
    if not keys:
        return "no measured row"
    names = [f"{b} {d} batch {n}" + ("" if p == "fp32" else f" {p}") for _, b, d, n, p in keys]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _shapes(shapes: dict[str, Any]) -> str:
    return _short(", ".join(f"{name} {list(dims)}" for name, dims in shapes.items()), 80)


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
