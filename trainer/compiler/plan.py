"""Planners: which ops stream (``plan_stream``) and where each buffer lives in the arena
(``plan_arena``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import STREAM_FRAMES
from .lower.schedule import Call
from .tflite_graph import Graph

ALIGN = 4
"""Arena offsets are multiples of this many bytes."""
STREAM_ROWS = STREAM_FRAMES
"""The default shift es_model_invoke_stream is compiled for: the input rows one firmware block
adds (``trainer.models.STREAM_FRAMES``, es_frontend.h ES_FRAMES_PER_BLOCK)."""


@dataclass(frozen=True)
class Buffer:
    """One planned region of the arena (several aliasing tensors may share it)."""

    root: int
    """Index of the tensor that owns the region."""
    size: int
    """Bytes."""
    first: int
    """Index of the op that writes it."""
    last: int
    """Index of the last op that reads it (n_ops for the graph output)."""
    offset: int
    """Byte offset in the arena."""


@dataclass(frozen=True)
class StreamStep:
    """How one op's output is updated by es_model_invoke_stream."""

    shift: int
    """Output rows the op's output moves up per step (its input's shift / its time stride)."""
    rows: int
    """Output rows (H)."""
    row_bytes: int
    """Bytes per output row (W * C)."""

    @property
    def row0(self) -> int:
        """First output row recomputed; rows above it are the previous call's rows moved up."""
        return self.rows - self.shift


STREAM_FNS = {
    "es_conv2d_s8": "es_conv2d_rows_s8",
    "es_conv2d_x4_s8": "es_conv2d_x4_rows_s8",
    "es_depthwise_conv2d_s8": "es_depthwise_conv2d_rows_s8",
    "es_max_pool2d_s8": "es_max_pool2d_rows_s8",
    "es_avg_pool2d_s8": "es_avg_pool2d_rows_s8",
}
"""Kernels with a row-range (streaming) variant."""


def plan_stream(graph: Graph, calls: list[Call], rows: int) -> dict[int, StreamStep]:
    """Which ops' outputs can be updated row-wise when the input moves up by ``rows`` rows.

    Output row r of a window op (conv, depthwise, pool) without padding in height, filter
    height kh and stride sh reads input rows [r*sh, r*sh + kh). If its input moved up by s rows
    (s a multiple of sh) and s new rows were appended, row r now reads exactly what row r + s/sh
    read before whenever r*sh + kh <= H_in - s; with H_out = floor((H_in - kh) / sh) + 1 that
    holds exactly for r < H_out - s/sh. So those rows are the previous output moved up by s/sh
    rows, only the last s/sh rows are computed, and the output moves by s/sh rows per step:
    the next op may stream from it in turn. Any padding in height ends the chain for that
    tensor: top padding makes the first rows read zeros where they read data before, and bottom
    padding (SAME with an odd total puts it all there) makes the old last rows differ from the
    rows that replace them. So does a stride that does not divide the shift.
    """
    if rows <= 0:
        return {}
    shifts = {graph.input: rows}
    steps: dict[int, StreamStep] = {}
    for i, (op, call) in enumerate(zip(graph.ops, calls, strict=True)):
        s_in = shifts.get(op.inputs[0]) if op.inputs else None
        if not s_in or call.fn not in STREAM_FNS:
            continue
        o = op.options
        ih = int(graph.tensors[op.inputs[0]].shape[1])
        out_shape = graph.tensors[op.outputs[0]].shape
        oh = int(out_shape[1])
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kh = int(graph.tensors[op.inputs[1]].shape[1])
        else:
            kh = int(o.filterHeight)
        sh = int(o.strideH)
        # the VALID output height means no padding at either end (SAME pads when it is larger)
        if ih < kh or oh != (ih - kh) // sh + 1 or s_in % sh:
            continue
        s_out = s_in // sh
        if s_out >= oh:
            continue
        steps[i] = StreamStep(s_out, oh, int(np.prod(out_shape[2:])))
        shifts[op.outputs[0]] = s_out
    return steps


def plan_arena(
    sizes: dict[int, int], first: dict[int, int], last: dict[int, int]
) -> tuple[list[Buffer], int, int]:
    """Greedy offset assignment: largest buffers first, each at the lowest aligned offset that
    does not overlap a placed buffer alive at the same time. Returns (plan, arena, peak)."""
    order = sorted(sizes, key=lambda r: (-sizes[r], first[r], r))
    placed: list[Buffer] = []
    for r in order:
        clashes = sorted(
            (b for b in placed if b.first <= last[r] and first[r] <= b.last),
            key=lambda b: b.offset,
        )
        off = 0
        for b in clashes:
            if off + sizes[r] <= b.offset:
                break
            off = max(off, _align(b.offset + b.size))
        placed.append(Buffer(r, sizes[r], first[r], last[r], off))
    arena = max((b.offset + b.size for b in placed), default=0)
    steps = range(min(first.values(), default=0), max(last.values(), default=0) + 1)
    peak = max((sum(b.size for b in placed if b.first <= t <= b.last) for t in steps), default=0)
    return sorted(placed, key=lambda b: b.offset), arena, peak


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
