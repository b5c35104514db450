"""hwkit-torch: the ``cpu`` and ``cuda`` backends, PyTorch running hwkit's conversion of the graph.

What the package owns:

* ``hwkit_torch.fx``: the ONNX -> ``torch.fx.GraphModule`` converter (``convert``,
  ``supported_ops``), one module per op family in ``fx/ops``;
* ``hwkit_torch.executable``: ``TorchGraphExecutable``, the Executable both backends share
  (convert once, optionally ``torch.compile``, run under ``torch.inference_mode``);
* ``hwkit_torch.cpu`` and ``hwkit_torch.cuda``: the two backends, each its plugin's entry point;
* ``hwkit_torch.compiled`` (+ ``inductor_onednn``, ``onednn``, ``cpu_attention``): how a converted
  graph runs fast: torch.compile modes, oneDNN linears, hwkit's fp32 attention kernel;
* ``hwkit_torch.options``: option types the backends and the executable share;
* ``hwkit_torch.testing``: ONNX's node test suite through the converter (conformance runs).

Neither this module nor the entry points import torch: without torch both backends load and
show as unavailable, with the reason, instead of failing to load.
"""
