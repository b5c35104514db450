"""hwkit.measure.peak: the CPU peak is the best of every installed matmul kernel, so that no
backend shows above 100% of a yardstick one slow library set (MKL on AMD: 204 against MLAS 447)."""

from __future__ import annotations

import json

from hwkit.measure import peak


def test_the_cpu_peak_is_the_best_of_every_installed_library(monkeypatch):
    monkeypatch.setattr(peak, "SECONDS", 0.05)  # a structure test, not a measurement
    figure = peak._measure("cpu", 1)
    assert peak._not_a_figure(json.dumps(figure).encode()) is None
    tried = figure["library"].split("(best of ", 1)[1].rstrip(")").split(", ")
    installed = [name for name, _ in peak._CPU_KERNELS if peak._importable(name)]
    assert tried == installed and "numpy" in tried  # numpy is a core dependency: always a candidate
    assert figure["library"].split(" ")[0] in tried and figure["gflops"] > 0


def test_each_kernel_multiplies_the_matrix_it_claims(monkeypatch):
    monkeypatch.setattr(peak, "MATRIX", 64)
    import numpy as np

    x = peak._matrix()
    for name, make in peak._CPU_KERNELS:
        if not peak._importable(name):
            continue
        run, label = make(1)
        out = run()
        if isinstance(out, list):  # onnxruntime: a list of outputs
            product = out[0]
        elif type(out).__module__.startswith("torch"):
            product = out.numpy()
        elif isinstance(out, np.ndarray):
            product = out
        else:  # openvino: its results by port
            product = next(iter(out.values()))
        np.testing.assert_allclose(np.asarray(product), x @ x, rtol=1e-4, atol=1e-3, err_msg=label)
