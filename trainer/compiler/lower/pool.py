"""MAX_POOL_2D, AVERAGE_POOL_2D and MEAN over H, W."""

from __future__ import annotations

from ..errors import CompileError
from ..quant import act_range, mean_multiplier, qparams
from ..tflite_graph import Graph, OpInfo
from .common import hwc, pad, tensor, where
from .schedule import Call, Lowered


def pool(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    at = where(graph, i, op)
    o = op.options
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = hwc(graph, x, "input")
    oh, ow, oc = hwc(graph, out, "output")
    if qparams(tensor(graph, x)) != qparams(tensor(graph, out)):
        raise CompileError(f"{at}: input and output quantisation differ")
    lo, hi = act_range(o.fusedActivationFunction, tensor(graph, out), at)
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "fh": o.filterHeight,
        "fw": o.filterWidth,
        "stride_h": o.strideH,
        "stride_w": o.strideW,
        "pad_h": pad(o.padding, o.strideH, ih, o.filterHeight, oh),
        "pad_w": pad(o.padding, o.strideW, iw, o.filterWidth, ow),
        "act_min": lo,
        "act_max": hi,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsPoolParams", fields)
    fn = "es_max_pool2d_s8" if op.name == "MAX_POOL_2D" else "es_avg_pool2d_s8"
    return Call(
        op.name,
        f"op {i}: {op.name} {o.filterHeight}x{o.filterWidth} -> {oh}x{ow}x{oc}",
        fn,
        params,
        [x],
        out,
    )


def mean(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    at = where(graph, i, op)
    x, axis, out = op.inputs[0], op.inputs[1], op.outputs[0]
    ih, iw, ic = hwc(graph, x, "input")
    ax = tensor(graph, axis).data
    if ax is None or sorted(int(a) % 4 for a in ax.reshape(-1)) != [1, 2]:
        raise CompileError(f"{at}: only a mean over H and W (axes 1, 2) is supported")
    if ih * iw > (1 << 23):
        raise CompileError(f"{at}: mean over {ih * iw} elements is too large")
    keep = bool(op.options.keepDims)
    s_in, zp_in = qparams(tensor(graph, x))
    s_out, zp_out = qparams(tensor(graph, out))
    mult, shift = mean_multiplier(ih * iw, s_in, s_out)
    fields = {
        "in": (ih, iw, ic),
        "input_zero_point": zp_in,
        "output_zero_point": zp_out,
        "mult": mult,
        "shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsMeanParams", fields)
    return Call(
        op.name,
        f"op {i}: MEAN over {ih}x{iw} ({'keep' if keep else 'drop'} dims)",
        "es_mean_hw_s8",
        params,
        [x],
        out,
    )
