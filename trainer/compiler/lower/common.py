"""Helpers every op's lowering uses: tensor lookup, NHWC shapes, padding, error locations."""

from __future__ import annotations

from ..errors import CompileError
from ..tflite_graph import PADDING_VALID, Graph, OpInfo, TensorInfo


def tensor(graph: Graph, idx: int) -> TensorInfo:
    return graph.tensors[idx]


def hwc(graph: Graph, idx: int, what: str) -> tuple[int, int, int]:
    """(H, W, C) of a [1, H, W, C] tensor, else CompileError."""
    t = graph.tensors[idx]
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise CompileError(
            f"{graph.path.name}: {what} tensor {t.name!r} has shape "
            f"{list(t.shape)}, expected [1, H, W, C]"
        )
    return int(t.shape[1]), int(t.shape[2]), int(t.shape[3])


def pad(padding: int, stride: int, size_in: int, filt: int, size_out: int) -> int:
    """Leading padding of a window op in one dimension (TFLite's ComputePadding)."""
    if padding == PADDING_VALID:
        return 0
    return max(0, ((size_out - 1) * stride + filt - size_in) // 2)


def where(graph: Graph, i: int, op: OpInfo) -> str:
    """``<model file>: op NAME (#i)``, the start of every lowering error."""
    return f"{graph.path.name}: op {op.name} (#{i})"
