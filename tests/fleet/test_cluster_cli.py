"""The cluster commands' edges that need no cluster of several nodes: joining (the ray start
command it runs), --cluster local, and the one-line refusals."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from hwkit.cli import main
from hwkit.fleet.resources import LOCK
from tests.helpers import FAST_BENCH


def test_join_runs_ray_start_with_this_machines_backends_as_resources(fake_registry, capsys) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (the extra hwkit[ray]): join runs its ray start")
    assert main(["cluster", "join", "10.0.0.5:6379", "--name", "lab-1", "--print"]) == 0
    command = shlex.split(capsys.readouterr().out)
    assert command[1:4] == ["start", "--address", "10.0.0.5:6379"] and command[0].endswith("ray")
    resources = json.loads(command[command.index("--resources") + 1])
    assert resources[LOCK] == 1  # the no-sharing rule: every measurement takes the machine whole
    assert resources["hwkit:fake:cpu"] == 1 and resources["hwkit:timed:gpu"] == 1
    assert "hwkit:offline:cpu" not in json.dumps(resources)  # unavailable here: not offered
    assert command[-2:] == ["--labels", "hwkit.name=lab-1"]


def test_row_94_a_machine_name_ray_cannot_label_is_one_line(capsys) -> None:
    assert main(["cluster", "join", "10.0.0.5:6379", "--name", "lab 1", "--print"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("hwkit: error: --name 'lab 1' cannot be a Ray node label: use up to 63 letters, digits, '-', '_' "
                   "or '.', starting and ending with a letter or digit")


def test_row_90_cluster_without_ray_names_the_extra_to_install(fake_registry, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    assert main(["bench", "mlp", "-b", "fake", "--cluster", "local", *FAST_BENCH]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "hwkit: error: --cluster needs Ray, which is not installed here: pip install 'hwkit[ray]'"


def test_row_91_an_address_where_no_cluster_answers_is_one_line_at_once(fake_registry, capsys) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (the extra hwkit[ray])")
    assert main(["bench", "mlp", "-b", "fake", "--cluster", "127.0.0.1:1", *FAST_BENCH]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("hwkit: error: no Ray cluster answers at 127.0.0.1:1 (")
    assert err.endswith("start one with 'hwkit cluster head' (or 'ray start --head') and give the address it prints, "
                        "or try --cluster local")


def test_cluster_local_prints_the_table_with_a_machine_column(fake_registry, tmp_path, capsys) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (the extra hwkit[ray])")
    out = tmp_path / "local.json"
    assert main(["bench", "mlp", "-b", "fake", "--cluster", "local", *FAST_BENCH, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "┃ machine ┃ backend" in printed
    rows = json.loads(out.read_text())["results"]
    assert [(r["backend"], r["device"], r["status"]) for r in rows] == [("fake", "cpu", "ok")]
    assert not ray.is_initialized()  # the throwaway cluster is gone


def test_cluster_refuses_generation_rather_than_running_it_here(capsys) -> None:
    assert main(["bench", "mlp", "--generate", "--cluster", "local"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == ("hwkit: error: --cluster does not run --generate benches: run hwkit bench "
                                         "--generate on each machine")
