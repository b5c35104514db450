"""``hwkit bench MODEL --cluster ADDRESS``: the flag, and the bench function it selects (the
hook in ``bench_cmd``). The result has the same views as a local bench, with a machine column."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

from hwkit.errors import OptionError
from hwkit.fleet.cluster import cluster_bench, require_ray


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="measure on every machine of the Ray cluster whose head is at ADDRESS (host:port), one "
                             "machine at a time per measurement; 'local': a throwaway cluster of this machine. Needs "
                             "pip install 'hwkit[ray]'; machines join with hwkit cluster join (docs/cluster.md)")


def bench_function(args: argparse.Namespace, local: Callable[..., Any]) -> Callable[..., Any]:
    """``local`` (the caller's ``bench``) without ``--cluster``; with it, the cluster bench (an
    OptionError naming the install command when Ray is missing)."""
    if not getattr(args, "cluster", None):
        return local
    require_ray()  # one line naming the install command, before anything is scheduled
    return functools.partial(cluster_bench, args.cluster)


def refuse_what_a_cluster_cannot_run(args: argparse.Namespace) -> None:
    """``--cluster`` with a mode the cluster does not run (generation): one line, not a local run."""
    if getattr(args, "cluster", None) and getattr(args, "generate", False):
        raise OptionError("--cluster does not run --generate benches: run hwkit bench --generate on each machine")
