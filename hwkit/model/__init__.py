"""The graph users bring and the inputs it gets.

Owns: ``Model`` (load, validate, fingerprint), external-data vetting, input signatures
(``specs``), seeded input generation (``inputs``), tensor sizes and the memory check before
inputs are drawn (``shapes``), ``.npz`` input files (``npz``), torch export
(``export``), FLOP counting (``flops``) and the built-in demo models (``zoo``).

May import: ``hwkit.errors``, ``hwkit._files``. Nothing here knows about backends, measuring,
parity or reports.
"""

from hwkit.model.model import Model
from hwkit.model.specs import TensorSpec

__all__ = ["Model", "TensorSpec"]
