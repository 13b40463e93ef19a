"""ADD, SUB, MUL (4-D broadcast, constant operands) and QUANTIZE (int8 to int8)."""

from __future__ import annotations

from typing import Any

import numpy as np

from earshot.quant import quantize_multiplier

from ..errors import CompileError
from ..quant import act_range, qparams
from ..tflite_graph import Graph, OpInfo
from .common import tensor, where
from .schedule import Call, Lowered


def _strides4(shape: tuple[int, ...], out4: list[int]) -> tuple[int, ...]:
    s = [1] * (4 - len(shape)) + [int(d) for d in shape]
    strides = [0, 0, 0, 0]
    acc = 1
    for k in range(3, -1, -1):
        strides[k] = 0 if s[k] == 1 and out4[k] != 1 else acc
        acc *= s[k]
    return tuple(strides)


def binary(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    at = where(graph, i, op)
    a, b, out = op.inputs[0], op.inputs[1], op.outputs[0]
    ta, tb, to = tensor(graph, a), tensor(graph, b), tensor(graph, out)
    if len(to.shape) > 4:
        raise CompileError(f"{at}: more than 4 dimensions")
    out4 = [1] * (4 - len(to.shape)) + [int(d) for d in to.shape]
    s1, z1 = qparams(ta)
    s2, z2 = qparams(tb)
    so, zo = qparams(to)
    lo, hi = act_range(op.options.fusedActivationFunction, to, at)
    base = f"k_{em.prefix}_op{i}"
    f: dict[str, Any] = {
        "op": {"ADD": "ES_BIN_ADD", "SUB": "ES_BIN_SUB", "MUL": "ES_BIN_MUL"}[op.name],
        "out_dims": tuple(out4),
        "in1_strides": _strides4(ta.shape, out4),
        "in2_strides": _strides4(tb.shape, out4),
        "input1_offset": -z1,
        "input2_offset": -z2,
        "output_offset": zo,
    }
    if op.name == "MUL":
        om, osh = quantize_multiplier(s1 * s2 / so)
        f.update(
            left_shift=0,
            input1_multiplier=0,
            input1_shift=0,
            input2_multiplier=0,
            input2_shift=0,
            output_multiplier=om,
            output_shift=osh,
        )
    else:
        twice = 2.0 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice)
        m2, sh2 = quantize_multiplier(s2 / twice)
        om, osh = quantize_multiplier(twice / ((1 << 20) * so))
        f.update(
            left_shift=20,
            input1_multiplier=m1,
            input1_shift=sh1,
            input2_multiplier=m2,
            input2_shift=sh2,
            output_multiplier=om,
            output_shift=osh,
        )
    f.update(act_min=lo, act_max=hi)
    args: list[int | str] = []
    for k, t in ((1, ta), (2, tb)):
        if t.data is not None:
            args.append(em.array(f"{base}_in{k}", "int8_t", t.data))
        else:
            args.append(t.index)
    params = em.struct(base, "EsBinaryParams", f)
    return Call(
        op.name, f"op {i}: {op.name} -> {list(to.shape)}", "es_binary_s8", params, args, out
    )


def quantize(graph: Graph, i: int, op: OpInfo, em: Lowered) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    s_in, zp_in = qparams(tensor(graph, x))
    s_out, zp_out = qparams(tensor(graph, out))
    mult, shift = quantize_multiplier(s_in / s_out)
    fields = {
        "size": int(np.prod(tensor(graph, x).shape)),
        "input_zero_point": zp_in,
        "output_zero_point": zp_out,
        "mult": mult,
        "shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsRequantizeParams", fields)
    return Call(op.name, f"op {i}: QUANTIZE int8 -> int8", "es_requantize_s8", params, [x], out)
