"""The library's entry points: list backends, open a model, compile it for a backend."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from hwkit.backend import BackendOptions, Device, Executable, PrecisionSupport
from hwkit.errors import BackendUnavailableError, CompileError, HwkitError, OptionError, first_line
from hwkit.model.model import Model
from hwkit.guard import describe
from hwkit.plugins import BackendInfo, registry

ModelSource = Model | onnx.ModelProto | bytes | str | os.PathLike[str]


def backends() -> list[BackendInfo]:
    """Every installed backend with its status (available / unavailable / failed), reason
    and devices, sorted by name."""
    return [registry().backends[name] for name in sorted(registry().backends)]


def open_model(source: ModelSource) -> Model:
    """A Model from a Model, ModelProto, bytes, an .onnx path, or a built-in model's name."""
    from hwkit.model.zoo import BUILTIN_MODELS, GENERATIVE_MODELS

    if isinstance(source, str) and (source in BUILTIN_MODELS or source in GENERATIVE_MODELS) \
            and not Path(source).exists():
        return Model.builtin(source)
    return Model.load(source)


def split_target(target: str) -> tuple[str, str | None]:
    """'openvino:GPU' -> ('openvino', 'GPU'); 'cpu' -> ('cpu', None)."""
    name, _, device = target.partition(":")
    return name.strip(), (device.strip() or None)


def pick_device(info: BackendInfo, device: str | Device | None) -> Device:
    """The named device of a backend (case-insensitive), or its first one. A ``Device`` must be
    one of the backend's own (``hwkit.backends()`` lists them): another backend's is refused here,
    not deep in the plugin."""
    names = ", ".join(d.name for d in info.devices)
    if isinstance(device, Device):
        if device in info.devices:
            return device
        raise BackendUnavailableError(f"backend '{info.name}' has no device {device.name!r} ({device.kind}; "
                                      f"is it another backend's Device?); its devices: {names}")
    if device is None:
        return info.devices[0]
    if not isinstance(device, str):
        raise BackendUnavailableError(f"device must be a name or a hwkit.Device, got {type(device).__name__}; "
                                      f"backend '{info.name}' has: {names}")
    for candidate in info.devices:
        if candidate.name.lower() == device.lower():
            return candidate
    raise BackendUnavailableError(f"backend '{info.name}' has no device '{device}'; its devices: {names}")


def compile(  # noqa: A001 - the public name the API promises
    model: ModelSource, backend: str, device: str | Device | None = None, **options: Any
) -> Executable:
    """Compile ``model`` for ``backend`` (``"name"`` or ``"name:DEVICE"``) with its options.

    Raises:
        BackendNotFoundError / BackendUnavailableError: no such backend, or it cannot run here.
        OptionError: an option the backend does not know, or a bad value.
        CompileError / UnsupportedOpError: the backend could not compile the graph.
    """
    _, named_device = split_target(backend)
    if device is not None and named_device is not None:
        raise BackendUnavailableError(f"device given twice: '{backend}' and device={device!r}")
    info, target, parsed = resolve(backend, options, device)
    return compile_with(info, open_model(model), target, parsed)


def resolve(
    target: str, options: Mapping[str, Any], device: str | Device | None = None
) -> tuple[BackendInfo, Device, BackendOptions]:
    """'name[:DEVICE]' and raw options -> the available backend, its device, parsed options."""
    name, named_device = split_target(target)
    info = registry().get(name)
    chosen = pick_device(info, device if device is not None else named_device)
    return info, chosen, info.runtime.Options.parse(options, backend=name)


def compile_with(info: BackendInfo, model: Model, device: Device, options: BackendOptions) -> Executable:
    """Compile, mapping any non-hwkit exception of a plugin to CompileError (one place).

    The backend always receives an instance of its own ``Options``: options of another type
    (plain ``BackendOptions`` from a caller) are parsed into it, so plugins never coerce.
    """
    wanted = info.runtime.Options
    if not isinstance(options, wanted):
        options = wanted.parse(dataclasses.asdict(options), backend=info.name)
    precision = getattr(options, "precision", "fp32")
    if precision == "int8":
        raise OptionError("precision int8 means hwkit's quantised graph: compile quantize_int8(model).model at fp32 "
                          "(hwkit.model.quantize), or use --precision int8 with bench or check")
    support = precision_support(info, device, precision)
    if not support.supported:
        raise OptionError(f"backend '{info.name}' cannot run {precision} on {device.name}: {support.unsupported}")
    try:
        executable = info.runtime.compile(model, device, options)
    except HwkitError:
        raise
    except (Exception, SystemExit) as e:  # a plugin's SDK may raise anything (even exit) while compiling
        what = f"{type(e).__name__}: {first_line(e)}" if isinstance(e, Exception) else describe(e)
        raise CompileError(f"backend '{info.name}' failed to compile '{model.name}': {what}") from e
    if not isinstance(executable, Executable):
        raise CompileError(f"backend '{info.name}' returned {type(executable).__name__}, not an Executable")
    return executable


def precision_support(info: BackendInfo, device: Device, precision: str) -> PrecisionSupport:
    """What ``Backend.precisions`` declares for ``precision`` on ``device``; never raises: a
    precision left out, or a plugin whose ``precisions`` fails, is unsupported with the reason."""
    try:
        declared = dict(info.runtime.precisions(device))
    except (Exception, SystemExit) as e:  # plugin code: its failure is this row's reason, not a crash
        what = f"{type(e).__name__}: {first_line(e)}" if isinstance(e, Exception) else describe(e)
        return PrecisionSupport(unsupported=f"backend '{info.name}' failed to declare its precisions: {what}")
    found = declared.get(precision)  # type: ignore[call-overload]  # any str: unknown ones are unsupported
    if isinstance(found, PrecisionSupport):
        return found
    if found is None:
        return PrecisionSupport(unsupported=f"backend '{info.name}' does not declare {precision} on {device.name}")
    return PrecisionSupport(unsupported=f"backend '{info.name}' declared {precision} as {type(found).__name__}, "
                                        "not a hwkit.backend.PrecisionSupport")
