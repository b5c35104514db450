"""Without torch, the entry points still import and both backends say why they cannot run.

Each check runs in a fresh interpreter where ``import torch`` fails (``sys.modules['torch'] =
None``), as on a machine where hwkit-torch was installed without its torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _run_without_torch(code: str) -> dict:
    script = "import sys\nsys.modules['torch'] = None  # import torch raises ImportError\n" + textwrap.dedent(code)
    env = {**os.environ, "HWKIT_LOAD_PLUGINS": "cpu,cuda"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_entry_points_import_without_torch() -> None:
    result = _run_without_torch("""
        import json
        import hwkit_torch, hwkit_torch.cpu, hwkit_torch.cuda, hwkit_torch.options
        loaded = sorted(m for m in sys.modules if m.startswith(("hwkit_torch.fx", "hwkit_torch.executable")))
        print(json.dumps({"loaded": loaded}))
    """)
    assert result["loaded"] == []  # the converter (which needs torch) is imported only to compile


def test_backends_are_unavailable_with_the_reason() -> None:
    result = _run_without_torch("""
        import json, warnings
        warnings.simplefilter("error")  # a plugin that fails to load warns: make it fail here
        import hwkit
        print(json.dumps({b.name: [b.status, b.reason, b.distribution] for b in hwkit.backends()}))
    """)
    assert set(result) == {"cpu", "cuda"}
    for name in ("cpu", "cuda"):
        status, reason, distribution = result[name]
        assert status == "unavailable", (name, status, reason)
        assert "torch is not installed" in reason
        assert distribution == "hwkit-torch"


def test_compiling_without_torch_names_the_reason() -> None:
    result = _run_without_torch("""
        import json
        import hwkit
        try:
            hwkit.compile(hwkit.Model.builtin("mlp"), "cpu")
        except hwkit.BackendUnavailableError as e:
            print(json.dumps({"error": str(e)}))
    """)
    assert "torch is not installed" in result["error"]


@pytest.mark.parametrize("module", ["hwkit_torch.cpu", "hwkit_torch.cuda"])
def test_entry_point_is_registered(module: str) -> None:
    from importlib.metadata import entry_points

    points = {ep.name: ep.value for ep in entry_points(group="hwkit")}
    assert points[module.rsplit(".", 1)[1]] == module
