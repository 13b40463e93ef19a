"""SOFTMAX and LOGISTIC (gemmlowp fixed point, int8 probabilities out)."""

from __future__ import annotations

import numpy as np

from earshot.quant import quantize_multiplier

from ..errors import CompileError
from ..quant import calculate_input_radius, qparams
from ..tflite_graph import Graph, OpInfo
from .common import tensor, where
from .schedule import Call, Lowered


def _check_prob_output(graph: Graph, i: int, op: OpInfo) -> None:
    s, zp = qparams(tensor(graph, op.outputs[0]))
    if s != 1.0 / 256 or zp != -128:
        raise CompileError(
            f"{where(graph, i, op)}: int8 output must have scale 1/256 and "
            f"zero point -128, has {s} and {zp}"
        )


def softmax(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    _check_prob_output(graph, i, op)
    s_in, _ = qparams(tensor(graph, x))
    beta = float(np.float32(op.options.beta))
    real = min(beta * s_in * (1 << (31 - 5)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    shape = tensor(graph, x).shape
    depth = int(shape[-1])
    fields = {
        "rows": int(np.prod(shape)) // depth,
        "depth": depth,
        "input_multiplier": mult,
        "input_left_shift": shift,
        "diff_min": -calculate_input_radius(5, shift),
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsSoftmaxParams", fields)
    return Call(op.name, f"op {i}: SOFTMAX over {depth}", "es_softmax_s8", params, [x], out)


def logistic(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    _check_prob_output(graph, i, op)
    s_in, zp_in = qparams(tensor(graph, x))
    mult, shift = quantize_multiplier(s_in * float(1 << (31 - 4)))
    fields = {
        "size": int(np.prod(tensor(graph, x).shape)),
        "input_zero_point": zp_in,
        "input_range_radius": calculate_input_radius(4, shift),
        "input_multiplier": mult,
        "input_left_shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsLogisticParams", fields)
    return Call(op.name, f"op {i}: LOGISTIC", "es_logistic_s8", params, [x], out)
