"""What the database indexes of a result dict: its machine's key, and one row per measurement."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# The parts of the fingerprint that name the hardware. The OS, Python and package versions are
# left out on purpose: a driver, runtime or hwkit update on the same machine is exactly what
# `compare --last` and `trend` are for.
MACHINE_FIELDS = ("cpu", "machine", "physical_cores", "logical_cores", "memory_gib")
DEFAULT_PRECISION = "fp32"  # rows written before results carried a precision


def machine_key(data: dict[str, Any]) -> str:
    """A short, stable key of the machine that measured ``data`` (12 hex digits)."""
    system = _system(data)
    hardware = {name: system.get(name) for name in MACHINE_FIELDS}
    return hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:12]


def machine_summary(data: dict[str, Any]) -> str:
    """The machine in a few words: "AMD EPYC 7B13, 2 cores, 7.8 GiB"."""
    system = _system(data)
    parts = [str(system.get("cpu") or system.get("machine") or "unknown CPU")]
    if system.get("logical_cores"):
        parts.append(f"{system['logical_cores']} cores")
    if system.get("memory_gib"):
        parts.append(f"{system['memory_gib']} GiB")
    return ", ".join(parts)


def _system(data: dict[str, Any]) -> dict[str, Any]:
    system = data.get("system")
    return system if isinstance(system, dict) else {}


def backend_names(data: dict[str, Any]) -> str:
    """The backends of ``data``, in the order they ran, comma-separated."""
    return ",".join(dict.fromkeys(str(row["backend"]) for row in data["results"]))


def row_precision(data: dict[str, Any], row: dict[str, Any]) -> str:
    """A row's precision: its own field, else the run's ``--precision`` setting, else fp32."""
    return str(row.get("precision") or (data.get("settings") or {}).get("precision") or DEFAULT_PRECISION)


def measurement_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(backend, device, batch, precision, status, median_s, ci_low_s, ci_high_s) per result row;
    the figures None where the row was not measured."""
    rows = []
    for row in data["results"]:
        latency = row.get("latency_s") or {}
        rows.append((row["backend"], row["device"], int(row["batch"]), row_precision(data, row), row["status"],
                     _figure(latency.get("median")), _figure(latency.get("ci_low")), _figure(latency.get("ci_high"))))
    return rows


def _figure(value: Any) -> float | None:
    # Saved results write non-finite numbers as strings ("nan", "inf"); SQLite stores them as REAL.
    return None if value is None else float(value)
