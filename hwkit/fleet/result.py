"""A result measured on several machines, with the views a local ``BenchResult`` has (table,
summary line, JSON, CSV, Markdown, plot), each rendered from its dict by ``hwkit.report``."""

from __future__ import annotations

import dataclasses
from typing import Any

from hwkit._files import atomic_write, write_json
from hwkit.report import fleet_table, tables


@dataclasses.dataclass(frozen=True)
class RowOutcome:
    """How one row ended, for the caller's exit code and error lines."""

    backend: str  # "target on machine"
    ok: bool
    error: str
    status: str


@dataclasses.dataclass
class FleetResult:
    """A merged result dict (``hwkit.fleet.merge``) and how the run that made it ended."""

    data: dict[str, Any]
    interrupted: bool = False
    interrupted_by: str = ""

    @property
    def results(self) -> list[RowOutcome]:
        """One outcome per row: ok when it was measured."""
        return [RowOutcome(f"{_target(row)} on {row.get('host', '-')}",
                           row.get("status") == "ok" and bool(row.get("latency_s")),
                           f"{row.get('status')}: {row.get('error') or 'no timings'}", str(row.get("status")))
                for row in self.data["results"]]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def table(self) -> Any:
        return fleet_table.fleet_table(self.data)

    def summary_line(self) -> str:
        lost = sum(1 for row in self.data["results"] if row.get("status") == "lost")
        machines = [f"machine {line}" for line in fleet_table.machines_lines(self.data)]
        return "\n".join([tables.run_summary(self.data) + (f"; {lost} row(s) lost with their machine" if lost else ""),
                          *machines])

    def to_json(self, path: str | None = None) -> str:
        return write_json(self.data, path)

    def to_csv(self, path: str | None = None) -> str:
        text = fleet_table.fleet_csv(self.data)
        if path:
            atomic_write(path, text)
        return text

    def to_markdown(self, path: str | None = None) -> str:
        text = fleet_table.fleet_markdown(self.data)
        if path:
            atomic_write(path, text)
        return text

    def plot(self, path: str) -> None:
        atomic_write(path, fleet_table.fleet_png(self.data))


def _target(row: dict[str, Any]) -> str:
    return f"{row['backend']}:{row['device']}" if row.get("device") else str(row["backend"])
