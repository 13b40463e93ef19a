"""RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR and RESHAPE (shape changes)."""

from __future__ import annotations

import numpy as np

from ..errors import CompileError
from ..quant import qparams, round_away
from ..tflite_graph import Graph, OpInfo
from .common import hwc, tensor, where
from .schedule import Call, Lowered


def resize_bilinear(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = hwc(graph, x, "input")
    oh, ow, oc = hwc(graph, out, "output")
    o = op.options
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "align_corners": int(bool(o.alignCorners)),
        "half_pixel_centers": int(bool(o.halfPixelCenters)),
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsResizeBilinearParams", fields)
    return Call(
        op.name,
        f"op {i}: RESIZE_BILINEAR {ih}x{iw} -> {oh}x{ow}",
        "es_resize_bilinear_s8",
        params,
        [x],
        out,
    )


def nearest_index(n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    """Source index per output index, as the reference's float GetNearestNeighbor computes it."""
    f32 = np.float32
    if align and n_out > 1:
        scale = f32(n_in - 1) / f32(n_out - 1)
    else:
        scale = f32(n_in) / f32(n_out)
    offset = f32(0.5) if half else f32(0.0)
    v = (np.arange(n_out).astype(f32) + offset) * scale
    idx = round_away(v) if align else np.floor(v.astype(np.float64))
    idx = np.minimum(idx.astype(np.int64), n_in - 1)
    if half:
        idx = np.maximum(idx, 0)
    return idx


def resize_nearest(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = hwc(graph, x, "input")
    oh, ow, oc = hwc(graph, out, "output")
    o = op.options
    base = f"k_{em.prefix}_op{i}"
    a, h = bool(o.alignCorners), bool(o.halfPixelCenters)
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "src_y": em.array(base + "_src_y", "int16_t", nearest_index(ih, oh, a, h)),
        "src_x": em.array(base + "_src_x", "int16_t", nearest_index(iw, ow, a, h)),
    }
    params = em.struct(base, "EsResizeNearestParams", fields)
    return Call(
        op.name,
        f"op {i}: RESIZE_NEAREST_NEIGHBOR {ih}x{iw} -> {oh}x{ow}",
        "es_resize_nearest_s8",
        params,
        [x],
        out,
    )


def reshape(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    if tensor(graph, x).nbytes != tensor(graph, out).nbytes:
        raise CompileError(f"{where(graph, i, op)}: element counts differ")
    if qparams(tensor(graph, x)) != qparams(tensor(graph, out)):
        raise CompileError(f"{where(graph, i, op)}: input and output quantisation differ")
    return Call(
        op.name,
        f"op {i}: RESHAPE {list(tensor(graph, x).shape)} -> "
        f"{list(tensor(graph, out).shape)} (aliases its input)",
        None,
        "",
        [x],
        out,
    )
