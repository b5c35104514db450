"""Registry of ONNX op handlers, keyed by (domain, op_type) and an opset range.

A leaf: it imports nothing of the converter. The op modules (``hwkit_torch.fx.ops``) fill it as
they are imported; ``hwkit_torch.fx`` and the converter import them, so the registry is complete
whenever the converter can be used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


class NotSupported(Exception):
    """Raised by a handler for attribute values or dtypes it cannot honour.

    The converter turns it into :class:`hwkit.errors.UnsupportedOpError` for the node.
    """


@dataclass(frozen=True)
class Entry:
    domain: str
    op_type: str
    since: int
    until: int | None  # inclusive; None = open ended
    fn: Handler


_REGISTRY: dict[tuple[str, str], list[Entry]] = {}


def _norm_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def op(
    op_type: str | tuple[str, ...], *, domain: str = "", since: int = 1, until: int | None = None
) -> Callable[[Handler], Handler]:
    """Register ``fn(ctx, node, *inputs)`` for ``op_type`` in opsets ``since..until``."""
    names = (op_type,) if isinstance(op_type, str) else op_type

    def deco(fn: Handler) -> Handler:
        for n in names:
            key = (_norm_domain(domain), n)
            _REGISTRY.setdefault(key, []).append(Entry(key[0], n, since, until, fn))
        return fn

    return deco


def lookup(domain: str, op_type: str, version: int) -> Handler | None:
    """The handler for ``op_type`` at opset ``version`` or None."""
    for e in _REGISTRY.get((_norm_domain(domain), op_type), ()):
        if e.since <= version and (e.until is None or version <= e.until):
            return e.fn
    return None


def supported_ops() -> set[tuple[str, str]]:
    """All (domain, op_type) pairs that have at least one handler."""
    return set(_REGISTRY)
