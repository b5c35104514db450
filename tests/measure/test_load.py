"""hwkit.measure.load: a busy machine is measured during each row and said in the table (class
10a of the second hardening round: torch's OpenMP pool collapses when a core is taken)."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from hwkit.cli import main
from hwkit.measure import load
from hwkit.measure.bench import BenchSettings, bench
from hwkit.report.schema import bench_rows
from tests.helpers import add_relu_model

QUICK = dict(warmup_iters=1, warmup_time=0.0, min_iters=20, min_time=0.8, isolation=False, efficiency=False,
             target_ci=None, options={"timed": {"delay": 0.005}})  # "timed" sleeps: hwkit itself is idle
SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"


def _render(table) -> str:
    console = Console(file=io.StringIO(), width=400)
    console.print(table)
    return console.file.getvalue()


def test_other_processes_busy_cores_are_the_machine_minus_ours():
    before = load.CpuSnapshot(wall=0.0, busy=10.0, ours=3.0)
    assert load.others_busy_cores(before, load.CpuSnapshot(wall=2.0, busy=13.0, ours=4.0)) == 1.0
    assert load.others_busy_cores(before, load.CpuSnapshot(wall=2.0, busy=11.0, ours=5.0)) == 0.0  # never < 0
    assert load.others_busy_cores(before, load.CpuSnapshot(wall=0.1, busy=11.0, ours=3.0)) is None  # too short
    assert load.fitting_threads(4, 1.0) == 3 and load.fitting_threads(2, 1.9) == 1 and load.fitting_threads(2, 0.8) == 1


def test_row_27_a_busy_machine_is_said_in_the_table(fake_registry, tmp_path):
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])  # a CPU-bound neighbour takes a core
    try:
        result = bench(add_relu_model(), ["timed"], BenchSettings(**QUICK))
    finally:
        spinner.kill()
        spinner.wait()
    (record,) = result.results
    assert record.others_busy_cores is not None and record.others_busy_cores >= load.BUSY_CORES
    data = result.to_dict()
    machine = data["results"][0]["machine"]
    assert machine["busy"] is True and machine["threads_that_fit"] >= 1
    assert bench_rows(data)[0]["machine_busy"] is True
    text = _render(result.table())
    assert "!" in text and "THE MACHINE WAS BUSY" in text and f"--threads {machine['threads_that_fit']}" in text
    saved = tmp_path / "r.json"
    result.to_json(str(saved))
    assert main(["compare", str(saved), str(saved)]) == 0  # the saved file (with "machine") validates
