"""Real transformers architectures (Llama, GPT-2; tiny, random weights) exported in the Hugging
Face convention run through ``bench --generate`` and ``check --generate`` on every backend."""

from __future__ import annotations

import json

import pytest

from hwkit.cli import main
from hwkit.generate import convention
from hwkit.model import Model
from hwkit.testing.conformance import require_backend

BACKENDS = ["onnxruntime", "openvino", "cpu"]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A function exporting one architecture on first use (each xdist worker exports only the
    kinds its tests need)."""
    pytest.importorskip("transformers", reason="transformers (a development dependency) is not installed")
    pytest.importorskip("torch", reason="exporting a transformers model needs torch")
    from tests.generate.hf_decoders import export_decoder

    folder = tmp_path_factory.mktemp("hf_decoders")
    paths: dict[str, str] = {}

    def export(kind: str) -> str:
        if kind not in paths:
            paths[kind] = str(export_decoder(kind, folder / f"{kind}.onnx"))
        return paths[kind]

    return export


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_transformers_export_passes_bench_and_check(exported, kind, tmp_path, capsys):
    for name in BACKENDS:
        require_backend(name)
    path = exported(kind)
    conv = convention.read(Model.load(path))
    assert conv.layers == 2 and conv.mask and conv.positions
    assert conv.max_positions == (64 if kind == "gpt2" else None)  # GPT-2's table; Llama computes RoPE
    out = tmp_path / "bench.json"
    # bench on the two runtimes (the torch converter's time is the cost of a test); check on all three
    code = main(["bench", path, "--generate", "-b", "onnxruntime,openvino", "--prompt", "8", "--new", "4",
                 "--batch", "1,2", "--runs", "1", "--no-isolation", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 4 and all(r["status"] == "ok" and r["cache"] == "native" for r in rows)
    assert all(r["same_tokens"] for r in rows if not r["is_reference"])
    code = main(["check", path, "--generate", "-b", ",".join(BACKENDS), "--prompt", "8", "--new", "6",
                 "--batch", "2", "--no-isolation"])
    assert code == 0, capsys.readouterr().err
    if kind == "gpt2":  # its learned position table has 64 rows: refused before anything runs
        assert main(["bench", path, "--generate", "--prompt", "60", "--new", "8", "--no-isolation"]) == 2
        assert "position table has 64" in capsys.readouterr().err
