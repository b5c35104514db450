"""hwkit's attention kernel for fp32 on the CPU: its build, its op, and the graph rewrite to it.

The converter turns the attention pattern into ``F.scaled_dot_product_attention``. On the CPU,
ATen's kernel for it computes its small per-block products with MKL's sgemm, which runs without
AVX-512 on AMD CPUs. ``cpu_attention.cpp`` computes them with oneDNN's brgemm micro-kernel (through
``at::native::cpublas::brgemm``). Measured on the 2-core AMD EPYC, 2 threads, fp32: the built-in
encoder's attention [1, 4, 128, 64] 132 → 74 µs, BERT-base's [1, 12, 128, 64] 384 → 211 µs,
[2, 8, 77, 32] 203 → 115 µs, within 1e-6 of ATen's results (``docs/torch-backends.md``).

The kernel is C++ built once per machine with the C++ compiler (``$CXX``, else ``c++``) against
the installed torch's headers, about 8 s, into hwkit's cache folder (``hwkit.backend.cache_folder``),
keyed by its source, torch's version, the compiler and its flags (the CPU's vector capability
among them); later processes load it (a cached build that will not load is built again).
Where it cannot be built (no compiler, another OS), the graph keeps ATen's kernel, with one
warning naming the reason: a slower attention, never a different result. ``-o cpu.attention=aten``
keeps ATen's kernel on purpose (to compare the two).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from hwkit.backend import cache_folder

SOURCE = "cpu_attention.cpp"
BUILD_SECONDS = 300  # a build that takes longer than this has hung

# The vector flags ATen builds each of its CPU capabilities with; the kernel's at::vec code
# compiles for the capability torch runs with here.
_CAPABILITY_FLAGS = {
    "AVX512": ["-DCPU_CAPABILITY_AVX512", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-DCPU_CAPABILITY_AVX2", "-mavx2", "-mfma", "-mf16c"],
}


def use_hwkit_attention(gm: fx.GraphModule) -> int:
    """Rewrite fp32 ``F.scaled_dot_product_attention(q, k, v, attn_mask=…, scale=…)`` of 4-D
    inputs into ``hwkit::attention``; returns how many (0, with one warning, when the kernel
    cannot be built)."""
    nodes = [n for n in gm.graph.nodes if _rewritable(n)]
    if not nodes or load() is not None:
        return 0
    for node in nodes:
        q, k, v = node.args
        node.target = torch.ops.hwkit.attention.default
        node.args = (q, k, v, node.kwargs.get("attn_mask"), float(node.kwargs["scale"]))
        node.kwargs = {}
    gm.recompile()
    return len(nodes)


def _rewritable(node: fx.Node) -> bool:
    if node.op != "call_function" or node.target is not F.scaled_dot_product_attention or len(node.args) != 3:
        return False
    if set(node.kwargs) - {"attn_mask", "scale"} or node.kwargs.get("scale") is None:
        return False
    values = [a.meta.get("val") if isinstance(a, fx.Node) else None for a in node.args]
    mask = node.kwargs.get("attn_mask")
    mask_value = mask.meta.get("val") if isinstance(mask, fx.Node) else None
    return (all(isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.dim() == 4 for t in values)
            and (mask is None or (isinstance(mask_value, torch.Tensor) and mask_value.dtype == torch.float32)))


@functools.cache
def load() -> str | None:
    """Load the kernel (building it first when this machine has no build of it yet); the reason
    it cannot be used, or None. Warns once with that reason."""
    reason = _load()
    if reason is not None:
        warnings.warn(f"cpu: hwkit's attention kernel is not used ({reason}); attention runs on "
                      "ATen's scaled_dot_product_attention, slower on AMD CPUs", stacklevel=3)
    return reason


def _load() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"it is built on Linux only, not on {sys.platform}"
    compiler = shutil.which(os.environ.get("CXX") or "c++")
    if compiler is None:
        return f"no C++ compiler: install one (e.g. g++) or set CXX (looked for '{os.environ.get('CXX') or 'c++'}')"
    source = resources.files("hwkit_torch").joinpath(SOURCE).read_text()
    flags = _flags()
    key = hashlib.sha256("\0".join([source, torch.__version__, compiler, *flags[0], *flags[1]]).encode()).hexdigest()[:16]
    library = cache_folder("torch") / f"cpu_attention-{key}.so"
    for attempt in ("cached", "built"):
        if not library.exists():
            reason = _build(compiler, source, flags, library)
            if reason is not None:
                return reason
        try:
            torch.ops.load_library(str(library))
            break
        except OSError as e:  # a damaged cache entry: build it again, once
            library.unlink(missing_ok=True)
            if attempt == "built":
                return f"loading {library} failed: {e}"
    _register_fake()
    return None


def _flags() -> tuple[list[str], list[str]]:
    """The compile step's flags and the link step's. Linked without -fopenmp, as Inductor links its
    kernels: the OpenMP calls resolve to the runtime torch has loaded, never to a second one (two
    OpenMP pools on the same cores fight)."""
    home = Path(torch.__file__).parent  # the wheel's headers and libraries
    capability = torch.backends.cpu.get_cpu_capability()
    return (["-O3", "-std=c++17", "-fPIC", "-fopenmp",  # at::parallel_for is OpenMP here
             f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
             *_CAPABILITY_FLAGS.get(capability, []), f"-I{home / 'include'}"],
            ["-shared", f"-L{home / 'lib'}", "-lc10", "-ltorch_cpu"])


def _build(compiler: str, source: str, flags: tuple[list[str], list[str]], library: Path) -> str | None:
    """Compile into a scratch folder beside ``library``, then rename the library into place
    (atomic: another process sees no library or a whole one; two building at once both succeed)."""
    with tempfile.TemporaryDirectory(dir=library.parent, prefix=".building-") as scratch:
        cpp, obj, built = Path(scratch) / SOURCE, Path(scratch) / "attention.o", Path(scratch) / library.name
        cpp.write_text(source)
        for step in ([compiler, "-c", str(cpp), "-o", str(obj), *flags[0]],
                     [compiler, str(obj), "-o", str(built), *flags[1]]):
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=BUILD_SECONDS, check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                return f"building it with {compiler} failed: {e}"
            if done.returncode != 0:
                first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])
                return f"building it with {compiler} failed: {first}"
        os.replace(built, library)
    return None


def _register_fake() -> None:
    """The op's output for tracing (torch.compile): the kernel's [batch, query, head, dim] layout
    as a [batch, head, query, dim] view."""
    @torch.library.register_fake("hwkit::attention")
    def _(q: Any, k: Any, v: Any, mask: Any, scale: float) -> Any:
        return q.new_empty((q.shape[0], q.shape[2], q.shape[1], v.shape[3])).permute(0, 2, 1, 3)
