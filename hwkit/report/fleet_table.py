"""Views of a result measured on several machines (``hwkit merge``, ``hwkit bench --cluster``):
the bench views with a machine column, and a line per machine saying what it is.

Such a result is a bench result dict whose rows carry ``host`` (the machine's name) and whose
``machines`` maps each name to its fingerprint (``hwkit.fleet.merge`` documents the fields).
"""

from __future__ import annotations

import copy
import csv
import io
from typing import Any

from rich.markup import escape
from rich.table import Table

from hwkit.report import files, plot
from hwkit.report.schema import bench_rows
from hwkit.report.tables import bench_table

MACHINE_CAPTION = ("machine: where the row was measured (its fingerprint below the table); vs fastest: across "
                   "every machine; lost: the machine left the cluster before the row was measured")


def hosts(data: dict[str, Any]) -> list[str]:
    """Each row's machine name, in row order ("-" for a row without one)."""
    return [str(row.get("host") or "-") for row in data["results"]]


def precisions(data: dict[str, Any]) -> list[str]:
    """Each row's precision, in row order (a row without one is fp32)."""
    return [str(row.get("precision") or "fp32") for row in data["results"]]


def fleet_table(data: dict[str, Any]) -> Table:
    """The bench table of ``data`` with a machine column first (and a precision column where
    the rows differ in precision): the same cells as a local bench, rendered by ``bench_table``."""
    base = bench_table(data)
    table = Table(title=base.title, caption=f"{base.caption}; {MACHINE_CAPTION}")
    names = hosts(data)
    extra = [("machine", names)]
    if len(set(precisions(data))) > 1 and not any(c.header == "precision" for c in base.columns):
        extra.append(("precision", precisions(data)))
    for header, _ in extra:
        table.add_column(header, justify="left", no_wrap=True)
    for column in base.columns:
        table.add_column(column.header, justify=column.justify, no_wrap=column.no_wrap)
    cells = [list(column.cells) for column in base.columns]
    if any(len(column) != len(names) for column in cells):
        raise ValueError("the bench table has not one row per result; the machine column cannot be aligned")
    for i in range(len(names)):
        table.add_row(*(escape(values[i]) for _, values in extra), *(column[i] for column in cells))
    return table


def machines_lines(data: dict[str, Any]) -> list[str]:
    """One line per machine: its name and what its fingerprint says it is."""
    return [f"{name}: {describe_machine(fingerprint)}" for name, fingerprint in (data.get("machines") or {}).items()]


def describe_machine(fingerprint: dict[str, Any]) -> str:
    """"Intel Xeon …, 2 physical / 4 logical cores, 15.6 GiB, Linux-…, Python 3.11, onnxruntime 1.32"."""
    if not fingerprint.get("cpu"):
        return "no fingerprint recorded"
    packages = fingerprint.get("packages") or {}
    parts = [str(fingerprint["cpu"]),
             f"{fingerprint.get('physical_cores', '?')} physical / {fingerprint.get('logical_cores', '?')} logical cores",
             f"{fingerprint.get('memory_gib', '?')} GiB", str(fingerprint.get("os", "?")),
             f"Python {fingerprint.get('python', '?')}"]
    parts += [f"{name} {version}" for name, version in packages.items() if name not in ("numpy", "onnx")]
    return ", ".join(parts)


def fleet_csv(data: dict[str, Any]) -> str:
    """The bench CSV with a ``machine`` column first (and ``precision`` where the bench CSV has none)."""
    buffer = io.StringIO()
    first = ["machine"] + ([] if "precision" in files.CSV_COLUMNS else ["precision"])
    writer = csv.DictWriter(buffer, [*first, *files.CSV_COLUMNS], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name, precision, row in zip(hosts(data), precisions(data), bench_rows(data)):
        writer.writerow({"precision": precision, **row, "machine": name})
    return buffer.getvalue()


def fleet_markdown(data: dict[str, Any]) -> str:
    """The bench Markdown table with a machine column first, then one line per machine."""
    lines = files.bench_markdown(data).rstrip("\n").split("\n")
    names = iter(hosts(data))
    table_started = False
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        if not table_started:
            lines[i], table_started = "| machine " + line, True
        elif line.startswith("|---"):
            lines[i] = "|---" + line
        else:
            lines[i] = f"| {' '.join(next(names).split()).replace('|', '/')} " + line
    return "\n".join(lines + ["", *(f"- {line}" for line in machines_lines(data))]) + "\n"


def fleet_png(data: dict[str, Any]) -> bytes:
    """The bench plot, each bar labelled with its machine as well."""
    labelled = copy.deepcopy(data)
    for row, name in zip(labelled["results"], hosts(data)):
        row["backend"] = f"{row['backend']} @ {name}"  # the throughput curves group by it too
    return plot.bench_png(labelled)
