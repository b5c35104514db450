"""Which precisions OpenVINO runs on a device: what the device reports in its
OPTIMIZATION_CAPABILITIES. fp32, fp16 and bf16 are its INFERENCE_PRECISION_HINT (the backend
always sets it, so fp32 is f32 even where OpenVINO defaults to bf16); int8 is hwkit's QDQ
graph, which OpenVINO's low-precision transformations run with int8 kernels."""

from __future__ import annotations

from typing import Any

from hwkit import Device
from hwkit.backend import NATIVE, Precision, PrecisionSupport
from hwkit.errors import first_line

# hwkit's precision -> the OPTIMIZATION_CAPABILITIES entry that says the device computes in it.
CAPABILITIES: dict[Precision, str] = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8"}


def declared(core: Any, device: Device) -> dict[Precision, PrecisionSupport]:
    """Each precision as the device's capabilities report it; never raises."""
    try:
        capabilities = {str(c).upper() for c in core.get_property(device.name, "OPTIMIZATION_CAPABILITIES")}
    except (RuntimeError, TypeError) as e:  # a plugin without the property: nothing but fp32 is known
        why = f"OpenVINO's {device.name} plugin reports no OPTIMIZATION_CAPABILITIES ({first_line(e, 120)})"
        return {p: NATIVE if p == "fp32" else PrecisionSupport(unsupported=why) for p in CAPABILITIES}
    found: dict[Precision, PrecisionSupport] = {}
    for precision, capability in CAPABILITIES.items():
        if precision == "fp32" or capability in capabilities:
            found[precision] = NATIVE
        elif precision == "int8":  # the QDQ graph still runs: dequantised, in floating point
            found[precision] = PrecisionSupport(emulated=f"OpenVINO's {device.name} reports no INT8 capability: "
                                                         "the QDQ graph is dequantised and computed in float")
        else:
            found[precision] = PrecisionSupport(
                unsupported=f"OpenVINO's {device.name} does not report {capability} among its capabilities "
                            f"({', '.join(sorted(capabilities))})")
    return found
