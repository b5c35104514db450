"""Op handlers, one module per op family; importing this registers them all."""

from hwkit_torch.fx.ops import (  # noqa: F401
    attention,
    cast,
    control_flow,
    conv,
    elementwise,
    generate,
    indexing,
    loss,
    math,
    misc,
    norm,
    pool,
    quant,
    recurrent,
    reduce,
    resize,
    sampling,
    sequence,
    signal,
    shape,
)
