"""``hwkit cluster join ADDRESS`` / ``hwkit cluster head`` / ``hwkit cluster nodes ADDRESS``:
put machines together into a Ray cluster that ``hwkit bench --cluster`` measures on."""

from __future__ import annotations

import argparse
import shlex

from rich.markup import escape
from rich.table import Table

from hwkit.cli.common import stdout
from hwkit.fleet import join
from hwkit.fleet.cluster import require_ray
from hwkit.fleet.nodes import alive, connected


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cluster", help="join this machine to a Ray cluster for bench --cluster",
        description="Machines join a Ray cluster with Ray's own node start (ray start), offering what hwkit finds "
                    "on them as Ray resources: one per backend and device, and one 'hwkit.machine' that every "
                    "measurement takes whole, so no two measurements share a machine. Needs pip install "
                    "'hwkit[ray]' on every machine (docs/cluster.md).")
    commands = parser.add_subparsers(dest="cluster_command", metavar="COMMAND", parser_class=type(parser))
    commands.required = True
    for name, help_text in (("join", "join the cluster whose head is at ADDRESS (host:port)"),
                            ("head", "start a cluster here: this machine is its head and first member")):
        command = commands.add_parser(name, help=help_text, description=help_text + "; runs ray start with this "
                                      "machine's hwkit resources. For other ray start options, run the command "
                                      "--print prints, with them added.")
        if name == "join":
            command.add_argument("address", help="the head's address, host:port (ray start --head prints it)")
        command.add_argument("--name", help="the machine's name in result tables (default: its host name)")
        command.add_argument("--print", action="store_true", dest="print_only",
                             help="print the ray start command instead of running it")
        command.set_defaults(handler=run_start)
    nodes = commands.add_parser("nodes", help="list the machines of a cluster and what each one offers")
    nodes.add_argument("address", help="the head's address, host:port, or 'local'")
    nodes.set_defaults(handler=run_nodes)


def run_start(args: argparse.Namespace) -> int:
    command = join.start_command(getattr(args, "address", None), args.name)
    if args.print_only:
        stdout.print(shlex.join(command), highlight=False, markup=False, soft_wrap=True)
        return 0
    return join.start(command)


def run_nodes(args: argparse.Namespace) -> int:
    ray = require_ray()
    with connected(ray, args.address):
        nodes = alive(ray)
    table = Table(title=escape(f"hwkit machines of the Ray cluster at {args.address}"))
    for column in ("machine", "node", "backends (default)", "backends (only with -b)"):
        table.add_column(column)
    for node in nodes:
        table.add_row(*(escape(cell) for cell in (
            node.name, node.node_id[:12], ", ".join(f"{b}:{d}" for b, d, on in node.offers if on) or "-",
            ", ".join(f"{b}:{d}" for b, d, on in node.offers if not on) or "-")))
    stdout.print(table)
    return 0
