"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."""

from __future__ import annotations

from typing import Any

import numpy as np

from earshot.quant import quantize_multiplier

from ..errors import CompileError
from ..quant import act_range, qparams
from ..tflite_graph import Graph, OpInfo
from .common import hwc, pad, tensor, where
from .schedule import Call, Lowered

CONV_PATCH_MAX = 256
"""es_kernels.h ES_CONV_PATCH_MAX: largest kh*kw*in_c of the CONV_2D fast path."""


def filter_x4(weights: np.ndarray) -> np.ndarray:
    """CONV_2D weights [oc][kh][kw][ic] as int32 [ceil(oc/4)][kh*kw*ic][4], zero past oc.

    The layout of EsConvParams.filter_x4: the fast kernel walks one output pixel's patch once
    per group of 4 output channels and loads the group's 4 weights of each tap in a row.
    """
    oc = int(weights.shape[0])
    k = int(np.prod(weights.shape[1:]))
    groups = -(-oc // 4)
    w = np.zeros((groups * 4, k), np.int32)
    w[:oc] = np.asarray(weights, np.int32).reshape(oc, k)
    return w.reshape(groups, 4, k).transpose(0, 2, 1)


def _conv_like(graph: Graph, i: int, op: OpInfo, em: Lowered, depthwise: bool) -> Call:
    at = where(graph, i, op)
    o = op.options
    if (o.dilationHFactor, o.dilationWFactor) != (1, 1):
        raise CompileError(
            f"{at}: dilation {o.dilationHFactor}x{o.dilationWFactor} is not supported (only 1)"
        )
    x, w, out = op.inputs[0], op.inputs[1], op.outputs[0]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    ih, iw, ic = hwc(graph, x, "input")
    oh, ow, oc = hwc(graph, out, "output")
    wt = tensor(graph, w)
    if wt.data is None:
        raise CompileError(f"{at}: filter {wt.name!r} is not constant")
    if any(z != 0 for z in wt.zero_point):
        raise CompileError(f"{at}: filter {wt.name!r} is not symmetrically quantised")
    kh, kw = int(wt.shape[1]), int(wt.shape[2])
    if depthwise:
        if wt.shape[3] != oc or oc % ic:
            raise CompileError(f"{at}: depthwise filter shape {list(wt.shape)} does not fit")
        dm = oc // ic
    else:
        if wt.shape[0] != oc or wt.shape[3] != ic:
            raise CompileError(
                f"{at}: filter shape {list(wt.shape)} does not fit "
                f"input channels {ic} / output channels {oc}"
            )
        dm = 1
    s_in, zp_in = qparams(tensor(graph, x))
    s_out, zp_out = qparams(tensor(graph, out))
    fscales = wt.scale if len(wt.scale) > 1 else wt.scale * oc
    mults, shifts = zip(
        *(
            quantize_multiplier(
                float(np.float32(s_in)) * float(np.float32(fs)) / float(np.float32(s_out))
            )
            for fs in fscales
        ),
        strict=True,
    )
    lo, hi = act_range(o.fusedActivationFunction, tensor(graph, out), at)
    base = f"k_{em.prefix}_op{i}"
    fields: dict[str, Any] = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "kh": kh,
        "kw": kw,
        "stride_h": o.strideH,
        "stride_w": o.strideW,
        "pad_h": pad(o.padding, o.strideH, ih, kh, oh),
        "pad_w": pad(o.padding, o.strideW, iw, kw, ow),
        "depth_multiplier": dm,
        "input_offset": -zp_in,
        "output_offset": zp_out,
        "act_min": lo,
        "act_max": hi,
        "filter": em.array(base + "_filter", "int8_t", wt.data),
        "bias": (
            em.array(base + "_bias", "int32_t", tensor(graph, bias).data) if bias >= 0 else "NULL"
        ),
        "mult": em.array(base + "_mult", "int32_t", np.array(mults)),
        "shift": em.array(base + "_shift", "int32_t", np.array(shifts)),
    }
    if not depthwise and kh * kw * ic <= CONV_PATCH_MAX:
        x4 = em.array(base + "_filter_x4", "int32_t", filter_x4(wt.data))
        params = em.struct(base, "EsConvX4Params", {"conv": fields, "filter_x4": x4})
        fn = "es_conv2d_x4_s8"
    else:
        params = em.struct(base, "EsConvParams", fields)
        fn = "es_depthwise_conv2d_s8" if depthwise else "es_conv2d_s8"
    return Call(
        op.name, f"op {i}: {op.name} {kh}x{kw}/{o.strideH} -> {oh}x{ow}x{oc}", fn, params, [x], out
    )


def conv(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    return _conv_like(graph, i, op, em, depthwise=False)


def depthwise_conv(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    return _conv_like(graph, i, op, em, depthwise=True)


def fully_connected(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    at = where(graph, i, op)
    x, w, out = op.inputs[0], op.inputs[1], op.outputs[0]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    wt = tensor(graph, w)
    if wt.data is None or len(wt.shape) != 2:
        raise CompileError(f"{at}: weights {wt.name!r} must be a constant 2-D tensor")
    n_out, depth = int(wt.shape[0]), int(wt.shape[1])
    n_in = int(np.prod(tensor(graph, x).shape))
    if n_in % depth:
        raise CompileError(f"{at}: input of {n_in} values is not a multiple of {depth}")
    s_in, zp_in = qparams(tensor(graph, x))
    s_out, zp_out = qparams(tensor(graph, out))
    per_channel = len(wt.scale) > 1
    if per_channel:
        # PopulateConvolutionQuantizationParams: double products.
        reals = [float(np.float32(s_in)) * float(np.float32(fs)) / s_out for fs in wt.scale]
    else:
        # GetQuantizedConvolutionMultipler: the input*filter product is taken in float32.
        reals = [float(np.float32(s_in) * np.float32(wt.scale[0])) / s_out]
    mults, shifts = zip(*(quantize_multiplier(r) for r in reals), strict=True)
    lo, hi = act_range(op.options.fusedActivationFunction, tensor(graph, out), at)
    base = f"k_{em.prefix}_op{i}"
    fields = {
        "batches": n_in // depth,
        "in_depth": depth,
        "out_depth": n_out,
        "input_offset": -zp_in,
        "filter_offset": -(wt.zero_point[0] if wt.zero_point else 0),
        "output_offset": zp_out,
        "act_min": lo,
        "act_max": hi,
        "per_channel": 1 if per_channel else 0,
        "filter": em.array(base + "_filter", "int8_t", wt.data),
        "bias": (
            em.array(base + "_bias", "int32_t", tensor(graph, bias).data) if bias >= 0 else "NULL"
        ),
        "mult": em.array(base + "_mult", "int32_t", np.array(mults)),
        "shift": em.array(base + "_shift", "int32_t", np.array(shifts)),
    }
    params = em.struct(base, "EsFullyConnectedParams", fields)
    return Call(
        op.name,
        f"op {i}: FULLY_CONNECTED {depth} -> {n_out}",
        "es_fully_connected_s8",
        params,
        [x],
        out,
    )
