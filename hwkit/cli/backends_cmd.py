"""``hwkit backends``: what is installed, whether it can run here, on which devices."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from hwkit.api import backends
from hwkit.cli.common import print_whole, stdout


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("backends", help="list installed backends, their status and devices")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    infos = backends()
    if args.json:
        print(json.dumps([b.to_dict() for b in infos], indent=2))
        return 0
    table = Table(title="hwkit backends")
    for column in ("backend", "status", "devices", "plugin", "runtime", "reason"):
        table.add_column(column)
    colours = {"available": "green", "unavailable": "yellow", "failed": "red"}
    for info in infos:
        devices = ", ".join(f"{d.name} ({d.description})" if d.description else d.name for d in info.devices)
        dist = f"{info.distribution} {info.version}" if info.distribution else info.plugin
        runtime = ", ".join(f"{k} {v.split('-')[0]}" for k, v in info.versions().items())
        table.add_row(escape(info.name), f"[{colours[info.status]}]{info.status}[/]", escape(devices or "-"),
                      escape(dist), escape(runtime or "-"), escape(info.reason or ""))
    if not infos:
        stdout.print("no backends installed: pip install hwkit-onnxruntime (or another hwkit-* plugin)")
        return 0
    print_whole(table)
    return 0
