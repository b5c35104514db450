"""hwkit's CPU attention kernel (hwkit_torch/cpu_attention.py): equal to softmax(q·kᵀ·s + mask)·v
within fp32 rounding on every layout, mask and size it takes, ATen's result where it hands over,
the layout it declares, the rewrite that puts it in converted graphs, and what happens where it
cannot be built."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hwkit
from hwkit.parity.agreement import compare_output
from hwkit.parity.tolerance import tolerance
from hwkit.testing import require_backend

torch = pytest.importorskip("torch")
F = torch.nn.functional
cpu_attention = pytest.importorskip("hwkit_torch.cpu_attention")


@pytest.fixture(scope="module")
def kernel():
    reason = cpu_attention.load()
    if reason is not None:
        pytest.skip(f"hwkit's attention kernel cannot be built here: {reason}")
    return torch.ops.hwkit.attention


def _math(q, k, v, mask, scale):
    """The definition, in float64: a fully masked row is NaN, as in ONNX's Softmax."""
    s = q.double() @ k.double().transpose(-1, -2) * scale
    if mask is not None:
        s = s + mask.double()
    return (torch.softmax(s, dim=-1) @ v.double()).float()


def _heads(batch, length, heads, dim, seed):
    """q, k, v as the converter's graphs give them: strided views into one fused projection."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(batch, length, 3 * heads * dim, generator=g)
    return qkv.view(batch, length, 3, heads, dim).permute(2, 0, 3, 1, 4).unbind(0)


@pytest.mark.parametrize("shape", [(1, 128, 4, 64), (2, 77, 8, 32), (1, 5, 2, 16), (3, 200, 2, 72), (1, 1, 1, 8)])
@pytest.mark.parametrize("masked", ["none", "keys", "full", "2d"])
def test_equals_the_definition(kernel, shape, masked):
    batch, length, heads, dim = shape
    q, k, v = _heads(batch, length, heads, dim, seed=sum(shape))
    g = torch.Generator().manual_seed(7)
    mask = {"none": None,
            "keys": torch.randn(batch, 1, 1, length, generator=g),  # BERT's padding mask
            "full": torch.randn(batch, heads, length, length, generator=g),
            "2d": torch.randn(length, length, generator=g)}[masked]
    got = kernel(q, k, v, mask, dim ** -0.5)
    expected = _math(q, k, v, mask, dim ** -0.5)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-6)
    # the declared layout: [batch, query, head, dim] memory seen as [batch, head, query, dim]
    assert got.permute(0, 2, 1, 3).is_contiguous()


def test_cross_attention_and_contiguous_inputs(kernel):
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 3, 10, 16, generator=g)
    k, v = torch.randn(2, 3, 33, 16, generator=g), torch.randn(2, 3, 33, 24, generator=g)
    torch.testing.assert_close(kernel(q, k, v, None, 0.3), _math(q, k, v, None, 0.3), rtol=1e-5, atol=2e-6)


def test_a_fully_masked_row_is_nan_and_the_others_are_not(kernel):
    q, k, v = _heads(1, 6, 2, 8, seed=1)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 2, :] = -torch.inf  # query 2 sees nothing
    mask[..., 4, :3] = -torch.inf  # query 4 sees half
    got = kernel(q, k, v, mask, 0.5)
    assert torch.isnan(got[:, :, 2]).all()
    assert not torch.isnan(got[:, :, [0, 1, 3, 4, 5]]).any()
    torch.testing.assert_close(got, _math(q, k, v, mask, 0.5), rtol=1e-5, atol=2e-6, equal_nan=True)


@pytest.mark.parametrize("case", ["bool mask", "float64", "long keys"])
def test_hands_what_it_does_not_take_to_aten(kernel, case):
    keys = 4097 if case == "long keys" else 9  # over the kernel's key range
    dtype = torch.float64 if case == "float64" else torch.float32
    g = torch.Generator().manual_seed(5)
    q = torch.randn(1, 2, 4, 8, generator=g, dtype=dtype)
    k, v = torch.randn(1, 2, keys, 8, generator=g, dtype=dtype), torch.randn(1, 2, keys, 8, generator=g, dtype=dtype)
    mask = torch.rand(1, 1, 4, keys, generator=g) > 0.3 if case == "bool mask" else None
    if mask is not None:
        mask[..., 0] = True  # no row masked entirely
    got = kernel(q, k, v, mask, 0.25)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.25))
    assert got.permute(0, 2, 1, 3).is_contiguous()  # the declared layout here too: Inductor asserts it


def test_the_rewrite_fires_on_the_encoder_and_keeps_the_fp32_profile(kernel):
    require_backend("cpu")
    require_backend("onnxruntime")
    model = hwkit.Model.builtin("encoder")
    inputs = model.make_inputs(seed=2)
    with hwkit.compile(model, "onnxruntime") as ref:
        expected = ref.run(inputs)
    for choice, count in (("hwkit", 4), ("aten", 0)):
        with hwkit.compile(model, "cpu", attention=choice, threads=1) as exe:
            ops = [n for n in exe.module.graph.nodes if n.target is torch.ops.hwkit.attention.default]
            assert len(ops) == count, choice
            got = exe.run(inputs)
        assert compare_output("hidden_states", expected["hidden_states"], got["hidden_states"], tolerance("fp32")).passed


@pytest.mark.slow
def test_compile_fast_calls_the_kernel_from_inductor(kernel):
    require_backend("cpu")
    require_backend("onnxruntime")
    model = hwkit.Model.builtin("encoder")
    inputs = model.make_inputs(seed=0)
    with hwkit.compile(model, "onnxruntime") as ref, hwkit.compile(model, "cpu", compile="fast", threads=2) as exe:
        assert any(n.target is torch.ops.hwkit.attention.default for n in exe.module.graph.graph.nodes)
        got, expected = exe.run(inputs), ref.run(inputs)
    assert compare_output("hidden_states", expected["hidden_states"], got["hidden_states"], tolerance("fp32")).passed


def test_row_119_without_a_compiler_it_says_why_and_attention_stays_on_aten(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    reason = cpu_attention._load()
    assert reason is not None and "no C++ compiler" in reason and "no-such-compiler" in reason

    monkeypatch.setattr(cpu_attention, "load", lambda: reason)
    q, k, v = (torch.randn(1, 2, 4, 8) for _ in range(3))
    gm = torch.fx.symbolic_trace(_Sdpa())
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            node.meta["val"] = q
    assert cpu_attention.use_hwkit_attention(gm) == 0
    assert any(n.target is F.scaled_dot_product_attention for n in gm.graph.nodes)
    torch.testing.assert_close(gm(q, k, v), F.scaled_dot_product_attention(q, k, v, scale=0.5))


def test_a_failed_build_names_the_compilers_error(monkeypatch, tmp_path):
    compiler = tmp_path / "c++"
    compiler.write_text("#!/bin/sh\necho 'attention.cpp:1: error: simulated failure' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path / "cache"))
    reason = cpu_attention._load()
    assert reason is not None and "simulated failure" in reason
    assert not list((tmp_path / "cache").rglob("*.so")), "a failed build left a library behind"


def test_the_warning_is_one_line_naming_the_reason(monkeypatch):
    monkeypatch.setattr(cpu_attention, "_load", lambda: "no C++ compiler: install one")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu_attention.load.__wrapped__() == "no C++ compiler: install one"  # not the process's cached answer
    lines = [str(w.message) for w in caught]
    assert len(lines) == 1 and "\n" not in lines[0] and "no C++ compiler" in lines[0]


class _Sdpa(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None, scale=0.5)


def test_kernel_matches_numpy_on_a_hand_sized_case(kernel):
    """One case small enough to follow by hand: two queries, three keys, one head."""
    q = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]])
    v = torch.tensor([[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]])
    scores = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(kernel(q, k, v, None, 1.0)[0, 0].numpy(), p @ v[0, 0].numpy(), rtol=1e-6)


def test_the_kernel_uses_torchs_openmp_runtime_not_a_second_one(kernel):
    """Linked as Inductor links its kernels: two OpenMP pools on the same cores would fight."""
    q = torch.randn(1, 2, 64, 16)
    kernel(q, q, q, None, 0.25)  # its parallel region has run
    with open("/proc/self/maps") as maps:
        runtimes = {line.split()[-1] for line in maps if "libgomp" in line or "libiomp" in line}
    assert len(runtimes) <= 1, runtimes


def test_a_damaged_cached_build_is_built_again(monkeypatch, tmp_path):
    """The cache heals: a library that will not load (truncated, foreign) is rebuilt, not kept."""
    monkeypatch.setenv("HWKIT_CACHE_DIR", str(tmp_path / "cache"))
    loaded = []
    monkeypatch.setattr(cpu_attention, "_register_fake", lambda: None)
    monkeypatch.setattr(torch.ops, "load_library", lambda path: loaded.append(open(path, "rb").read(4)))

    def build(compiler, source, flags, library):
        library.write_bytes(b"\x7fELF rebuilt")
        return None

    monkeypatch.setattr(cpu_attention, "_build", build)
    folder = tmp_path / "cache" / "torch"
    folder.mkdir(parents=True)
    assert cpu_attention._load() is None and loaded == [b"\x7fELF"]  # built once, loaded
    (library,) = folder.glob("cpu_attention-*.so")
    library.write_bytes(b"garbage")
    calls = []

    def load_library(path):
        calls.append(open(path, "rb").read())
        if calls[-1] == b"garbage":
            raise OSError("invalid ELF header")

    monkeypatch.setattr(torch.ops, "load_library", load_library)
    assert cpu_attention._load() is None
    assert calls == [b"garbage", b"\x7fELF rebuilt"]
