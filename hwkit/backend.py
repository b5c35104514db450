"""The plugin contract: everything a backend author implements or may use, in one file.

A plugin subclasses ``Backend`` (and usually ``BackendOptions``) and returns the class from its
``hwkit_register_backends`` hook (``hwkit.hookspecs``). The core owns timing, inputs and
comparison; a backend only says which devices it has, compiles a graph for one of them, and runs
it::

    @dataclasses.dataclass(frozen=True)
    class MineOptions(BackendOptions):           # threads and precision come from BackendOptions
        fast_math: bool = False

    class MineBackend(Backend[MineOptions]):
        name = "mine"
        Options = MineOptions                    # compile() always receives a MineOptions
        requires = ("mine_sdk",)                 # unavailable, with the reason, if not importable
        install_hint = "pip install hwkit-mine"

        def devices(self) -> list[Device]: ...
        def precisions(self, device) -> dict[Precision, PrecisionSupport]:  # default: fp32 only
            return {"fp32": NATIVE, "bf16": NATIVE, "fp16": PrecisionSupport("no fp16 kernels"),
                    "int8": NATIVE}              # int8: hwkit's QDQ graph, compiled at fp32
        def compile(self, model, device, options) -> Executable:
            refuse_unknown_domains(model, self.name, {"", "ai.onnx"})
            return MineExecutable(model, device, options)

    class MineExecutable(Executable):
        def execute(self, inputs): ...           # numpy in, numpy out, by name

Optional extras an Executable may offer: ``synchronize`` (wait for the device), ``memory_stats``
(device memory figures) and ``device_time`` (the ``DeviceTimer`` protocol: the device's own
clock, e.g. CUDA events) and ``step_session`` (the ``Stepper`` protocol: a KV cache kept in
the runtime's own values while a decoder generates). Helpers for plugins: ``hwkit.system.cpu_name`` and
``hwkit.system.package_version``. Errors to raise: ``hwkit.errors``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

from hwkit.errors import ExecutionError, OptionError, UnsupportedOpError

if TYPE_CHECKING:
    import numpy as np

    from hwkit.model import Model

Precision = Literal["fp32", "fp16", "bf16", "int8"]
"""The one precision vocabulary of every backend and tolerance profile. A backend maps it to its
runtime's own names inside the plugin (OpenVINO's ``f32``, torch's ``float16``)."""
PRECISIONS: tuple[Precision, ...] = typing.get_args(Precision)


@dataclasses.dataclass(frozen=True)
class PrecisionSupport:
    """Whether a backend runs one precision on one device, and how (``Backend.precisions``).

    Attributes:
        unsupported: why it cannot ("" when it can): the row says ``unsupported`` and this reason,
            instead of running something else under that precision's name.
        emulated: how it runs without that precision's kernels ("" when it has them), e.g. "QDQ
            graph computed in fp32 by the converter": the row is labelled emulated, with this.
    """

    unsupported: str = ""
    emulated: str = ""

    @property
    def supported(self) -> bool:
        return not self.unsupported


NATIVE = PrecisionSupport()
"""A precision the backend runs with kernels of that precision."""


@dataclasses.dataclass(frozen=True)
class Device:
    """One place a backend can run.

    Attributes:
        name: the backend's own id for it, as users type it after ``backend:`` ("CPU", "cuda:0").
        kind: "cpu", "gpu", "npu" or "other"; the core uses it for labels and peak figures.
        description: a human name, e.g. the processor or GPU model.
    """

    name: str
    kind: Literal["cpu", "gpu", "npu", "other"] = "cpu"
    description: str = ""


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """Options every backend accepts. A backend extends this with its own frozen dataclass.

    Attributes:
        threads: intra-op threads; None leaves the runtime's default. The bench sets one value
            for every backend so that they compete on equal terms.
        precision: the precision to compute in (fp32, fp16, bf16). The core passes only those
            ``Backend.precisions`` declares supported; int8 is never passed: an int8 row compiles
            hwkit's quantised QDQ graph at fp32 (docs/precision.md). A backend may narrow the
            field's ``Literal`` to what it can map.
    """

    threads: int | None = None
    precision: Precision = "fp32"

    # Values a timed run (``hwkit.bench``) gives the options its user left unset: for a backend
    # whose fastest steady state takes a compile step that one untimed run (check, the API)
    # would not pay back. A bench record's ``options`` are the values the backend ran with
    # (``Executable.options``, which a backend may settle while compiling or on its first run).
    timing_defaults: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise OptionError(f"threads must be a whole number >= 1, got {self.threads!r}")
        for field in dataclasses.fields(self):
            _check_choice(type(self), field.name, getattr(self, field.name))

    @classmethod
    def parse(cls, values: Mapping[str, Any], backend: str = "") -> BackendOptions:
        """Build options from a mapping, converting strings (from the CLI) to each field's type.

        Raises:
            OptionError: for an unknown name or a value of the wrong type.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(values) - set(fields))
        if unknown:
            where = f"backend '{backend}'" if backend else cls.__name__
            raise OptionError(
                f"unknown option(s) {', '.join(unknown)} for {where}; "
                f"valid options: {', '.join(fields) or 'none'}"
            )
        converted = {name: _convert(name, value, hints[name]) for name, value in values.items()}
        return cls(**converted)

    def timed(self, given: Mapping[str, Any]) -> BackendOptions:
        """These options for a timed run: ``timing_defaults`` for each option not in ``given``
        (the options the user set)."""
        defaults = {k: v for k, v in self.timing_defaults.items() if k not in given}
        return dataclasses.replace(self, **defaults) if defaults else self

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Option name -> its type and default (and a timed run's, where it differs), for help texts."""
        hints = typing.get_type_hints(cls)
        return {
            f.name: f"{_type_name(hints[f.name])} (default: {f.default!r}"
                    + (f"; bench: {cls.timing_defaults[f.name]!r})" if f.name in cls.timing_defaults else ")")
            for f in dataclasses.fields(cls)
        }


class Executable(ABC):
    """A model compiled for one device. Plugins implement ``execute``; callers use ``run``.

    ``run`` checks and normalises the inputs against the model's signature, then calls
    ``execute``. The bench engine validates once and calls ``execute`` in its timed loop, so that
    hwkit adds no per-call work to what it measures.
    """

    def __init__(self, model: Model, device: Device, options: BackendOptions) -> None:
        self.model = model
        self.device = device
        self.options = options
        self.closed = False

    @abstractmethod
    def execute(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on inputs already checked against the model; return outputs by name.

        Outputs are numpy arrays on the host, in the order of the model's outputs. May return
        before the device finished only if ``synchronize`` waits for it.
        """

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Check ``inputs`` against the model (names, dtypes, shapes), run once, wait, return."""
        if self.closed:
            raise ExecutionError("this executable was closed; compile the model again")
        checked = self.model.check_inputs(inputs)
        try:
            outputs = self.execute(checked)
            self.synchronize()
        except SystemExit as e:  # a plugin's exit is its failure; never hwkit's (a CI gate would pass)
            raise ExecutionError(f"{type(self).__name__}.execute called sys.exit({e.code!r})") from e
        return outputs

    def synchronize(self) -> None:
        """Wait until all work submitted by ``execute`` has finished. Idempotent."""

    def memory_stats(self) -> dict[str, int]:
        """Device memory figures in bytes (e.g. peak allocated), where the runtime has them."""
        return {}

    def close(self) -> None:
        """Release the compiled model and its device memory. Idempotent."""
        self.closed = True

    def __enter__(self) -> Executable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@runtime_checkable
class DeviceTimer(Protocol):
    """An Executable that can time one run with the device's own clock (e.g. CUDA events).

    The bench calls ``device_time`` after the wall-clock runs and reports its samples beside
    them; implement it only where the device's clock sees something the host's cannot.
    """

    def device_time(self, inputs: Mapping[str, np.ndarray]) -> float:
        """Seconds of device time for one run on checked ``inputs``, excluding host overhead."""
        ...


class StepSession(Protocol):
    """Runs of one graph whose state outputs (a KV cache) feed its state inputs at the next run,
    kept as the runtime's own values between runs (``Stepper``)."""

    def step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on ``feeds`` (every input but the state) and the state; keep the new state;
        return the requested outputs as host numpy arrays, the run finished."""
        ...

    def state_bytes(self) -> int:
        """Bytes the state holds now (the KV cache's size)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Stepper(Protocol):
    """An Executable that keeps a decoder's KV cache on its own side between generation steps
    (IOBinding, device tensors). Optional: without it the core feeds the cache back as numpy
    through ``execute``. Guide and checks: docs/writing-plugins.md, "Generation"."""

    def step_session(self, state: Mapping[str, str], initial: Mapping[str, np.ndarray],
                     outputs: Sequence[str]) -> StepSession:
        """A session where state output ``k`` feeds state input ``state[k]`` at the next step,
        ``initial`` holds the state inputs' first values and ``outputs`` names what ``step`` returns."""
        ...


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


class Backend(ABC, Generic[OptionsT]):
    """A way of running ONNX graphs: a runtime plus the devices it can drive.

    Parametrise it with the options class (``class MineBackend(Backend[MineOptions])``) so that
    type checkers know what ``compile`` receives.

    Class attributes:
        name: the unique name users type ("onnxruntime"); no ":" (that separates the device).
        Options: the frozen dataclass of options; ``compile`` always receives an instance of it,
            parsed and checked by the core.
        requires: modules the backend needs; the default ``unavailable_reason`` says which one
            is missing, without importing any of them.
        install_hint: what to run when the backend is unavailable ("pip install hwkit-x").
        in_default_runs: False for backends too slow to include unless named (a reference
            evaluator used as an oracle); ``bench`` and ``check`` without ``-b`` skip them.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    in_default_runs: ClassVar[bool] = True

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (missing SDK, driver, device), or None. Never raises.

        The default checks ``requires``; override it (calling ``super()``) to check drivers too.
        """
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError) as e:  # a dotted name whose parent fails to import
                return f"{module} cannot be imported: {e}"
            if not found:
                return f"{module} is not installed"
        return None

    @abstractmethod
    def devices(self) -> list[Device]:
        """The devices usable now; the first is the default. [] when none. Never raises."""

    @abstractmethod
    def compile(self, model: Model, device: Device, options: OptionsT) -> Executable:
        """Compile ``model`` for ``device``. Raise CompileError / UnsupportedOpError on failure."""

    def versions(self) -> dict[str, str]:
        """Versions of the runtime libraries this backend uses, for result fingerprints."""
        return {}

    def precisions(self, device: Device) -> Mapping[Precision, PrecisionSupport]:
        """How this backend runs each precision on ``device``; a precision left out is
        unsupported. Never raises.

        fp16 / bf16 reach ``compile`` as ``options.precision``; int8 means hwkit's quantised QDQ
        graph compiled with ``precision="fp32"``: declare it ``NATIVE`` only if the runtime runs
        QDQ with int8 kernels, else ``PrecisionSupport(emulated=...)``. The default is honest for
        a backend that knows nothing of precision: fp32 only.
        """
        why = (f"backend '{self.name}' declares fp32 only (its plugin does not override Backend.precisions; "
               "see docs/writing-plugins.md)")
        return {p: NATIVE if p == "fp32" else PrecisionSupport(unsupported=why) for p in PRECISIONS}


def cache_folder(plugin: str) -> Path:
    """A folder of hwkit's cache for a plugin's own files (e.g. converted models): under
    ``HWKIT_CACHE_DIR`` or the user's cache folder, created on demand; when it cannot be written,
    a temporary stand-in for the rest of the process, with one warning (as for hwkit's own cache)."""
    from hwkit._files import cache_dir  # the one rule for hwkit's cache folder

    return cache_dir(plugin)


def refuse_unknown_domains(model: Model, backend: str, known: Iterable[str]) -> None:
    """Raise ``UnsupportedOpError`` listing every node whose domain is not in ``known``.

    Functions the model defines itself (``model.proto.functions``) count as known: runtimes
    inline them. Call it at the start of ``compile`` so that the user sees every unsupported op
    at once, not the first one the runtime trips over.
    """
    domains = set(known)
    local = {(f.domain, f.name) for f in model.proto.functions}
    foreign = sorted({f"{n.domain}.{n.op_type}" for n in model.proto.graph.node
                      if n.domain not in domains and (n.domain, n.op_type) not in local})
    if foreign:
        raise UnsupportedOpError(backend, model.nodes_by_op(foreign))


def _check_choice(cls: type, name: str, value: Any) -> None:
    hint = typing.get_type_hints(cls)[name]
    choices = _literal_choices(hint)
    if choices and value not in choices and value is not None:
        raise OptionError(
            f"option {name} must be one of {', '.join(map(str, choices))}, got {value!r}"
        )


def _literal_choices(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(c for arg in typing.get_args(hint) for c in _literal_choices(arg))
    return ()


def _type_name(hint: Any) -> str:
    choices = _literal_choices(hint)
    if choices:
        return "|".join(map(str, choices))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return getattr(base, "__name__", str(base))


def _convert(name: str, value: Any, hint: Any) -> Any:
    """Convert a CLI string to the field's type; leave other values for __post_init__ to check."""
    if not isinstance(value, str):
        return value
    if _literal_choices(hint):
        return value
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    if value.lower() in ("none", "") and type(None) in typing.get_args(hint):
        return None
    for kind in args:
        try:
            if kind is bool:
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if kind in (int, float, str):
                return kind(value)
        except ValueError:
            continue
    raise OptionError(f"option {name} takes {_type_name(hint)}, got {value!r}")
