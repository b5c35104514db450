"""The library in ten lines: load a model, see the backends, run one, benchmark all.

    python examples/quickstart.py [MODEL]     # MODEL: an .onnx file or mlp / cnn / encoder
"""

from __future__ import annotations

import sys

from rich.console import Console

import hwkit


def main(source: str = "mlp") -> None:
    console = Console()
    model = hwkit.open_model(source)
    console.print(model)
    for backend in hwkit.backends():
        console.print(f"{backend.name}: {backend.status} {backend.reason}")
    inputs = model.make_inputs(seed=0)
    with hwkit.compile(model, "onnxruntime") as exe:
        outputs = exe.run(inputs)
    console.print({name: value.shape for name, value in outputs.items()})
    result = hwkit.bench(model, min_time=0.2, min_iters=10)
    console.print(result.table())


if __name__ == "__main__":
    main(*sys.argv[1:2])
