"""Lowering: every op of the graph becomes one es_kernels call (or, for RESHAPE, an alias),
with its parameters and constants as C declarations; ``HANDLERS`` is the dispatch table, one
module per op family."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CompileError
from ..tflite_graph import Graph, OpInfo
from . import activation, conv, elementwise, pool, resize
from .schedule import Call, Lowered

Handler = Callable[[Graph, int, OpInfo, Lowered], Call]

HANDLERS: dict[str, Handler] = {
    "CONV_2D": conv.conv,
    "DEPTHWISE_CONV_2D": conv.depthwise_conv,
    "FULLY_CONNECTED": conv.fully_connected,
    "MAX_POOL_2D": pool.pool,
    "AVERAGE_POOL_2D": pool.pool,
    "MEAN": pool.mean,
    "RESIZE_BILINEAR": resize.resize_bilinear,
    "RESIZE_NEAREST_NEIGHBOR": resize.resize_nearest,
    "RESHAPE": resize.reshape,
    "SOFTMAX": activation.softmax,
    "LOGISTIC": activation.logistic,
    "ADD": elementwise.binary,
    "SUB": elementwise.binary,
    "MUL": elementwise.binary,
    "QUANTIZE": elementwise.quantize,
}
"""Builtin op name -> its lowering."""

__all__ = ["HANDLERS", "Call", "Lowered", "lower"]


def lower(graph: Graph, prefix: str) -> Lowered:
    """Check every op and tensor, emit params and calls, record buffer lifetimes."""
    em = Lowered(prefix)
    for i, op in enumerate(graph.ops):
        handler = HANDLERS.get(op.name)
        if handler is None:
            raise CompileError(
                f"{graph.path.name}: op {op.name} (#{i}) is not supported by the firmware's "
                f"kernels (supported: {', '.join(sorted(HANDLERS))})"
            )
        _check_types(graph, i, op)
        call = handler(graph, i, op, em)
        em.calls.append(call)
        _track(graph, em, i, op, call)
    out_root = em.root.get(graph.output, graph.output)
    if out_root in em.last:
        em.last[out_root] = len(graph.ops)
    return em


def _check_types(graph: Graph, i: int, op: OpInfo) -> None:
    for t in op.inputs + op.outputs:
        if t < 0:
            continue
        ti = graph.tensors[t]
        const = ti.data is not None
        if ti.dtype == "int8" or (ti.dtype == "int32" and const):
            continue
        raise CompileError(
            f"{graph.path.name}: op {op.name} (#{i}) uses {ti.dtype} tensor {ti.name!r}; "
            "the firmware runs full-int8 models only"
        )


def _track(graph: Graph, em: Lowered, i: int, op: OpInfo, call: Call) -> None:
    for t in call.args:
        if isinstance(t, int):
            r = em.root.get(t, t)
            if r in em.first:
                em.last[r] = max(em.last[r], i)
    out = call.output
    if call.fn is None:  # alias: the output shares its input's buffer
        src = op.inputs[0]
        em.root[out] = em.root.get(src, src)
        return
    em.root[out] = out
    em.sizes[out] = graph.tensors[out].nbytes
    em.first[out] = i
    em.last[out] = i
