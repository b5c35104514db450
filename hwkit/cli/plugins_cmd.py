"""``hwkit plugins``: every plugin found, as JSON (name, distribution, version, hooks, status)."""

from __future__ import annotations

import argparse
import json

from hwkit.plugins import registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plugins", help="list plugins as JSON: status, hooks, failure reason")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    plugins = sorted(registry().plugins.values(), key=lambda p: p.name)
    print(json.dumps([p.to_dict() for p in plugins], indent=2))
    return 0
