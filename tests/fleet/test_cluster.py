"""hwkit bench --cluster against a real Ray cluster on this machine (ray.cluster_utils.Cluster):
two nodes with distinct backends, one measurement per machine at a time, a node killed mid-run,
and the one-line refusals. The fake backends travel to the nodes as a plugin registered in this
process (hwkit.testing.backends), as a user's own plugin would."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from hwkit.cli import main
from hwkit.fleet.resources import LOCK, NAME_LABEL
from hwkit.report.schema import load_result
from tests.helpers import FAST_BENCH

ray = pytest.importorskip("ray", reason="Ray is not installed (the extra hwkit[ray]): the cluster tests need it")
from ray.cluster_utils import Cluster  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def cluster():
    """A head that offers nothing to hwkit, alpha (fake:cpu, timed:cpu) and beta (timed:cpu)."""
    made = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
    for name, offers in (("alpha", ["hwkit:fake:cpu", "hwkit:timed:cpu"]), ("beta", ["hwkit:timed:cpu"])):
        # The nodes share this process's environment, so its cache: the matmul peak is measured once.
        made.add_node(**NODE, resources={LOCK: 1, **{r: 1 for r in offers}}, labels={NAME_LABEL: name})
    yield made
    made.shutdown()


def bench(cluster: Cluster, *args: str) -> int:
    return main(["bench", "mlp", "--cluster", cluster.address, *args])


def test_two_machines_one_table_with_a_machine_column(cluster, fake_registry, tmp_path, capsys) -> None:
    out = tmp_path / "fleet.json"
    assert bench(cluster, *FAST_BENCH, "--json", str(out), "--markdown", str(tmp_path / "fleet.md")) == 0
    printed = capsys.readouterr().out
    assert "machine" in printed and "alpha" in printed and "beta" in printed
    result = load_result(out)
    rows = {(r["host"], r["backend"], r["device"]): r for r in result["results"]}
    assert sorted(rows) == [("alpha", "fake", "cpu"), ("alpha", "timed", "cpu"), ("beta", "timed", "cpu")]
    assert all(r["status"] == "ok" for r in rows.values())
    # one reference for every machine (the first measured row: fake on alpha), and every row agrees with it
    assert rows["alpha", "fake", "cpu"]["is_reference"] and result["reference"] == "fake"
    assert [rows[k]["parity"] for k in (("alpha", "timed", "cpu"), ("beta", "timed", "cpu"))] == ["pass", "pass"]
    assert set(result["machines"]) == {"alpha", "beta"}
    assert all(m["cpu"] and m["packages"]["hwkit"] for m in result["machines"].values())
    # the rule: alpha's two measurements ran one after the other, never at once
    (a0, a1), (b0, b1) = (rows["alpha", b, "cpu"]["measured_between"] for b in ("fake", "timed"))
    assert a1 <= b0 or b1 <= a0
    assert "| machine | backend |" in (tmp_path / "fleet.md").read_text()


def test_cluster_nodes_lists_each_machine_and_what_it_offers(cluster, capsys) -> None:
    assert main(["cluster", "nodes", cluster.address]) == 0
    printed = capsys.readouterr().out
    assert "alpha" in printed and "fake:cpu" in printed and "beta" in printed and "timed:cpu" in printed


def test_row_92_a_backend_no_machine_offers_is_one_line_before_anything_runs(cluster, fake_registry, capsys) -> None:
    assert bench(cluster, "-b", "onnxruntime", *FAST_BENCH) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("hwkit: error: no machine of the Ray cluster offers onnxruntime (machines: alpha: fake:cpu, "
                          "timed:cpu; beta: timed:cpu)")


def test_row_95_a_machine_with_another_hwkit_version_fails_its_rows(cluster, fake_registry, monkeypatch,
                                                                     capsys) -> None:
    import hwkit

    monkeypatch.setattr(hwkit, "__version__", "0.0.0-driver")
    assert bench(cluster, "-b", "fake", *FAST_BENCH) == 2
    out, err = capsys.readouterr()
    assert "alpha" in out and "failed" in out
    assert "fake:cpu on alpha: failed: this node runs hwkit" in err and "the driver 0.0.0-driver" in err


def test_row_93_a_machine_lost_mid_run_loses_its_rows_only(cluster, fake_registry, tmp_path, capsys) -> None:
    marker = tmp_path / "gamma-cache"  # the node caches the model there as its task starts
    gamma = cluster.add_node(**NODE, resources={LOCK: 1, "hwkit:timed:gpu": 1}, labels={NAME_LABEL: "gamma"},
                             env_vars={"HWKIT_CACHE_DIR": str(marker)})
    out = tmp_path / "fleet.json"
    codes: list[int] = []
    # only gamma offers timed:gpu: its row lasts --min-time, long enough to kill gamma in the middle of it
    run = threading.Thread(target=lambda: codes.append(bench(
        cluster, "-b", "fake,timed:gpu", "--min-time", "5", "--max-time", "5", "--min-iters", "3", "--warmup", "1",
        "--warmup-time", "0", "--target-ci", "0", "--json", str(out))))
    run.start()
    deadline = time.monotonic() + 60
    while not list(marker.glob("fleet/*.onnx")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(marker.glob("fleet/*.onnx")), "gamma's task never started"
    cluster.remove_node(gamma, allow_graceful=False)
    run.join(timeout=120)
    assert codes == [2]
    result = json.loads(out.read_text())  # load_result: once the schema knows "lost" (test_merge.py)
    status = {(r["host"], r["backend"], r["device"]): r["status"] for r in result["results"]}
    assert status[("gamma", "timed", "gpu")] == "lost"
    assert status[("alpha", "fake", "cpu")] == "ok"
    printed, err = capsys.readouterr()
    assert "lost" in printed
    assert "hwkit: error: timed:gpu on gamma: lost: the machine left the cluster" in err


def test_sigterm_mid_run_stops_the_tasks_and_writes_what_was_measured(cluster, fake_registry, tmp_path,
                                                                       capsys) -> None:
    marker = tmp_path / "delta-cache"
    delta = cluster.add_node(**NODE, resources={LOCK: 1, "hwkit:timed:gpu": 1}, labels={NAME_LABEL: "delta"},
                             env_vars={"HWKIT_CACHE_DIR": str(marker)})

    def stop_when_started() -> None:  # main() runs in this (the main) thread, where signals arrive
        deadline = time.monotonic() + 60
        while not list(marker.glob("fleet/*.onnx")) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    out = tmp_path / "fleet.json"
    # As in a fresh hwkit process: Cluster() gave this one Ray's own SIGTERM handler (exit at once).
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        code = bench(cluster, "-b", "timed:gpu", "--min-time", "5", "--max-time", "5", "--min-iters", "3", "--warmup",
                     "1", "--warmup-time", "0", "--target-ci", "0", "--json", str(out))
    finally:
        stopper.join()
        signal.signal(signal.SIGTERM, previous)
        cluster.remove_node(delta, allow_graceful=False)
    assert code == 143
    rows = {r["host"]: r for r in json.loads(out.read_text())["results"]}
    assert (rows["delta"]["status"], rows["delta"]["error"]) == (
        "interrupted", "not measured: the run was stopped (SIGTERM)")
    # gamma (killed by another test) may still be listed alive for a moment: its row is never measured
    assert set(rows) <= {"delta", "gamma"} and rows.get("gamma", rows["delta"])["status"] in ("interrupted", "lost")
    assert "interrupted" in capsys.readouterr().out
