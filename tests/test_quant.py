"""earshot.quant's QuantizeMultiplier and MultiplyByQuantizedMultiplier against TFLite itself.

The oracle is TFLite's own arithmetic: one-op int8 CONV_2D models (1x1 filter of ones, one
input value, a bias per output channel) run by TFLite's reference kernels (BUILTIN_REF) and by
the TFLite Micro interpreter. Each output channel computes
``clamp(MBQM(bias + x - zp_in, QuantizeMultiplier(s_in * s_w / s_out)) + zp_out)`` with the
ratio taken in double from the float32 scales (PopulateConvolutionQuantizationParams), so the
scales written into the flatbuffer choose the real multiplier exactly, and each channel's bias
places the 256 accumulators of the 256 int8 inputs where the rounding is decided.

Exact halves: a ratio whose mantissa * 2**31 ends in .5 needs 32 significant bits. A single
float32 scale quotient (QUANTIZE, pooling) cannot hold that, but the conv's double product of
two float32 scales can: s_in = p * 2**-24, s_w = q * 2**-8 with p * q odd in [2**31, 2**32).
So the exact half is provoked through TFLite here, and so is a mantissa that rounds up to
2**31 (renormalised to 2**30 with the shift one higher).

Very small scales: QuantizeMultiplier flushes a shift below -31 to (0, 0). No int32 result can
tell a flushed multiplier from an unflushed one (a right shift of 32 or more rounds every int32
product to 0 either way), so the flush is tested at its edge, where it is observable: at a
ratio of exactly 2**-32 (shift -31, kept) the largest accumulators round to 1, and one float32
step below it (shift -32, flushed) every output is the zero point.

Each case also names the rule a plausible mistake would follow (Python's round-half-even, no
renormalisation) and requires TFLite's outputs to differ from it somewhere: the cases decide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from earshot.quant import multiply_by_quantized_multiplier, quantize_multiplier

tf = pytest.importorskip("tensorflow")
runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

INPUT_ZP = -128
"""Input zero point: the accumulator of input x is bias + x + 128, 256 consecutive values."""
INT32_MAX = (1 << 31) - 1

Rule = Callable[[float], tuple[int, int]]


def mbqm(acc: np.ndarray, rule: Rule, ratio: float) -> np.ndarray:
    """The output (zero point 0, int8 clamp) a multiplier rule predicts for each accumulator."""
    m, shift = rule(ratio)
    return np.clip(multiply_by_quantized_multiplier(acc, m, shift), -128, 127)


def half_even(real: float) -> tuple[int, int]:
    """QuantizeMultiplier with Python's round() (half to even): the mistake exact halves catch."""
    q, shift = math.frexp(real)
    m = round(q * (1 << 31))
    if m == 1 << 31:
        m, shift = m // 2, shift + 1
    return (0, 0) if shift < -31 else (m, shift)


def no_renormalise(real: float) -> tuple[int, int]:
    """QuantizeMultiplier that clamps a mantissa rounding to 2**31 instead of renormalising."""
    q, shift = math.frexp(real)
    m = min(int(math.floor(q * (1 << 31) + 0.5)), INT32_MAX)
    return (0, 0) if shift < -31 else (m, shift)


# ---- one-op CONV_2D models ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One model: every output channel has the same scales (one ratio), its own bias."""

    s_in: float
    """Input scale (exactly representable in float32)."""
    s_w: float
    """Filter scale of every channel (float32)."""
    s_out: float
    """Output scale (float32)."""
    biases: tuple[int, ...]
    """Per channel: the accumulator of input x is bias + x + 128."""

    @property
    def ratio(self) -> float:
        """The real multiplier as TFLite's conv Prepare computes it (double products)."""
        f32 = np.float32
        return float(f32(self.s_in)) * float(f32(self.s_w)) / float(f32(self.s_out))

    def accumulators(self) -> np.ndarray:
        """[256 inputs, channels] int64 accumulators."""
        x = np.arange(-128, 128, dtype=np.int64)[:, None]
        return np.asarray(self.biases, np.int64)[None, :] + x - INPUT_ZP


def conv_model(case: Case) -> bytes:
    """The flatbuffer: input [1,1,1,1] int8 -> CONV_2D 1x1 (weights 1) -> [1,1,1,C] int8."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    n = len(case.biases)
    buffers = [fb.BufferT()]

    def tensor(name: str, shape: list[int], dtype: int, scales: list[float], zps: list[int],
               data: bytes | None = None) -> Any:
        t = fb.TensorT()
        t.name, t.shape, t.type = name, shape, dtype
        q = fb.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = scales, zps, 0
        t.quantization = q
        t.buffer = 0
        if data is not None:
            b = fb.BufferT()
            b.data = list(data)
            buffers.append(b)
            t.buffer = len(buffers) - 1
        return t

    f32 = np.float32
    bias_scale = float(f32(case.s_in) * f32(case.s_w))
    tensors = [
        tensor("x", [1, 1, 1, 1], fb.TensorType.INT8, [case.s_in], [INPUT_ZP]),
        tensor("w", [n, 1, 1, 1], fb.TensorType.INT8, [case.s_w] * n, [0] * n,
               np.ones(n, np.int8).tobytes()),
        tensor("b", [n], fb.TensorType.INT32, [bias_scale] * n, [0] * n,
               np.asarray(case.biases, "<i4").tobytes()),
        tensor("y", [1, 1, 1, n], fb.TensorType.INT8, [case.s_out], [0]),
    ]
    code = fb.OperatorCodeT()
    code.builtinCode = fb.BuiltinOperator.CONV_2D
    code.deprecatedBuiltinCode = fb.BuiltinOperator.CONV_2D
    code.version = 3
    opts = fb.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = fb.Padding.VALID, 1, 1
    opts.dilationHFactor, opts.dilationWFactor = 1, 1
    opts.fusedActivationFunction = fb.ActivationFunctionType.NONE
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.Conv2DOptions, opts
    sg = fb.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [0], [3], [op]
    model = fb.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sg], buffers
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def tflite_outputs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """[256, C] outputs of the reference kernels and of TFLM for inputs -128..127."""
    model = conv_model(case)
    ref = tf.lite.Interpreter(
        model_content=model,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    ref.allocate_tensors()
    ind, outd = ref.get_input_details()[0], ref.get_output_details()[0]
    micro = runtime.Interpreter.from_bytes(model)
    a, b = [], []
    for x in range(-128, 128):
        xin = np.array(x, np.int8).reshape(1, 1, 1, 1)
        ref.set_tensor(ind["index"], xin)
        ref.invoke()
        a.append(ref.get_tensor(outd["index"]).reshape(-1).copy())
        micro.set_input(xin, 0)
        micro.invoke()
        b.append(np.asarray(micro.get_output(0)).reshape(-1).copy())
    return np.array(a, np.int64), np.array(b, np.int64)


def step_biases(ratio: float, ys: list[int]) -> tuple[int, ...]:
    """Biases whose 256 accumulators straddle the output step y -> y+1 (y > 0) or y -> y-1
    (y < 0): where the rounding of MBQM decides the output."""
    out = []
    for y in ys:
        bias = int((y + (0.5 if y > 0 else -0.5)) / ratio) - 128
        if -INT32_MAX < bias and bias + 256 < INT32_MAX:
            out.append(bias)
    return tuple(out)


def deciding_biases(ratio: float, other: Rule, limit: int = 48) -> tuple[int, ...]:
    """Step windows (``step_biases``) where ``other`` rounds differently from
    quantize_multiplier, then windows at negative steps (whatever they decide)."""
    out = []
    for bias in step_biases(ratio, [sign * k for k in range(1, 121) for sign in (1, -1)]):
        acc = np.arange(bias, bias + 256, dtype=np.int64)
        if np.any(mbqm(acc, quantize_multiplier, ratio) != mbqm(acc, other, ratio)):
            out.append(bias)
        if len(out) == limit:
            break
    return tuple(out) + step_biases(ratio, [-1, -2, -17, -64, -100, -119])


def check_against_tflite(case: Case, other: Rule | None) -> None:
    """Both TFLite oracles equal earshot.quant's prediction on every input of every channel;
    and, if given, the ``other`` rule's prediction differs from TFLite somewhere."""
    ref, micro = tflite_outputs(case)
    acc = case.accumulators()
    ours = mbqm(acc, quantize_multiplier, case.ratio)
    bad = np.argwhere(ours != ref)
    assert bad.size == 0, (
        f"ratio {case.ratio!r}: earshot.quant gives {ours[tuple(bad[0])]} where TFLite's "
        f"reference gives {ref[tuple(bad[0])]} (accumulator {acc[tuple(bad[0])]})"
    )
    assert np.array_equal(micro, ref), f"ratio {case.ratio!r}: TFLM differs from the reference"
    if other is not None:
        assert np.any(mbqm(acc, other, case.ratio) != ref), "the case does not decide the rule"
    # negative and positive accumulators both exercised
    assert acc.min() < 0 < acc.max()


# ---- the cases -------------------------------------------------------------------------------

P, Q = 16777213, 253
"""Odd, below 2**24 (exact float32 mantissas), p*q in [2**31, 2**32) and p*q % 4 == 1, so the
exact mantissa*2**31 is k + 0.5 with k even: half away from zero gives k+1, half-even k."""
EXACT_HALF = Case(P * 2.0**-24, Q * 2.0**-8, 2.0**24, ())
NEAR_ONE_A, NEAR_ONE_B = 7 * 23 * 89, 599479
"""(2**33 - 1) = 14329 * 599479: a mantissa of 1 - 2**-33, whose *2**31 rounds up to 2**31."""
NEAR_ONE = Case(NEAR_ONE_A * 2.0**-14, NEAR_ONE_B * 2.0**-20, 2.0**23, ())


def test_exact_half_rounds_away_from_zero_like_tflite() -> None:
    ratio = EXACT_HALF.ratio
    q, _ = math.frexp(ratio)
    k2 = q * 2.0**32  # exact: 2k+1
    assert k2 == P * Q and (P * Q) % 4 == 1
    m, shift = quantize_multiplier(ratio)
    assert (m, shift) == ((P * Q + 1) // 2, -24)
    assert half_even(ratio)[0] == m - 1  # Python's round() would differ here
    assert quantize_multiplier(-ratio) == (-m, shift)  # away from zero on both sides
    case = Case(EXACT_HALF.s_in, EXACT_HALF.s_w, EXACT_HALF.s_out,
                deciding_biases(ratio, half_even))
    assert len(case.biases) >= 4
    check_against_tflite(case, half_even)


def test_mantissa_rounding_to_two_pow_31_renormalises_like_tflite() -> None:
    ratio = NEAR_ONE.ratio
    assert math.frexp(ratio) == (1 - 2.0**-33, -24)
    assert quantize_multiplier(ratio) == (1 << 30, -23)
    assert no_renormalise(ratio) == (INT32_MAX, -24)
    case = Case(NEAR_ONE.s_in, NEAR_ONE.s_w, NEAR_ONE.s_out,
                deciding_biases(ratio, no_renormalise))
    assert len(case.biases) >= 4
    check_against_tflite(case, no_renormalise)


def test_shift_below_minus_31_flushes_to_zero_like_tflite() -> None:
    kept = Case(2.0**-16, 2.0**-16, 1.0, ())
    flushed = Case(2.0**-16, float(np.nextafter(np.float32(2.0**-16), np.float32(0))), 1.0, ())
    assert kept.ratio == 2.0**-32 and flushed.ratio < 2.0**-32
    assert quantize_multiplier(kept.ratio) == (1 << 30, -31)
    assert quantize_multiplier(flushed.ratio) == (0, 0)
    # the largest and the most negative accumulators
    extremes = (INT32_MAX - 255, -INT32_MAX, -(1 << 20), 1 << 20)
    for case, moved in ((kept, True), (flushed, False)):
        c = Case(case.s_in, case.s_w, case.s_out, extremes)
        check_against_tflite(c, None)
        ref, _ = tflite_outputs(c)
        # at 2**-32 only the top accumulator (2**31 - 1) rounds up; flushed, nothing moves
        assert bool(ref[-1, 0] == 1) is moved and np.count_nonzero(ref) == int(moved)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scales_agree_with_tflite_at_every_output_step(seed: int) -> None:
    """Ordinary scales (ratios from 2**-24 to 2**-8): every rounding step that 24 windows of
    256 accumulators, on both signs, come across."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    s_in = float(f32(rng.uniform(0.5, 1.0)))
    s_w = float(f32(rng.uniform(0.5, 1.0)))
    s_out = float(f32(2.0 ** rng.uniform(8, 22)))
    ratio = Case(s_in, s_w, s_out, ()).ratio
    ys = [int(y) for y in (*rng.integers(1, 120, 12), *(-rng.integers(1, 120, 12)))]
    case = Case(s_in, s_w, s_out, step_biases(ratio, ys))
    assert len(case.biases) >= 8
    check_against_tflite(case, None)
