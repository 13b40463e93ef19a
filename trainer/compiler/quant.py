"""Quantisation arithmetic the lowerings need on top of ``earshot.quant``.

``earshot.quant.quantize_multiplier`` is TFLite's QuantizeMultiplier, the one definition the
trainer, this compiler and the daemon share; what is here is what only the lowering uses: C's
``round()``, TFLite's activation ranges and input radii, and the integer MEAN's multiplier.
"""

from __future__ import annotations

import math

import numpy as np

from earshot.quant import quantize_multiplier

from .errors import CompileError
from .tflite_graph import ACT_NONE, ACT_RELU, ACT_RELU6, ACT_RELU_N1_TO_1, TensorInfo


def qparams(t: TensorInfo) -> tuple[float, int]:
    """(scale as float32, zero point) of a per-tensor quantised tensor."""
    if not t.scale:
        raise CompileError(f"tensor {t.name!r} is not quantised")
    return float(np.float32(t.scale[0])), int(t.zero_point[0]) if t.zero_point else 0


def round_away(x: np.ndarray | np.floating | float) -> np.ndarray:
    """round() of C (half away from zero), exactly, for float32 or float64 values."""
    v = np.asarray(x, np.float64)
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= 0.5)


def act_range(fused: int, out: TensorInfo, where: str) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output."""
    scale, zp = qparams(out)

    def q(f: float) -> int:
        return zp + int(round_away(np.float32(f) / np.float32(scale)))

    if fused == ACT_NONE:
        return -128, 127
    if fused == ACT_RELU:
        return max(-128, q(0.0)), 127
    if fused == ACT_RELU6:
        return max(-128, q(0.0)), min(127, q(6.0))
    if fused == ACT_RELU_N1_TO_1:
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise CompileError(f"{where}: fused activation {fused} is not supported")


def calculate_input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """TFLite CalculateInputRadius."""
    v = 1.0 * ((1 << int_bits) - 1) * (1 << (total_bits - int_bits)) / (1 << left_shift)
    return int(math.floor(v))


def mean_multiplier(n: int, s_in: float, s_out: float) -> tuple[int, int]:
    """(multiplier, shift) of the integer MEAN: ``MBQM(sum - n*zp_in, m, s) + zp_out``.

    TFLite's reference kernels (2.21) and TFLM both fold 1/n into the rescale
    (``QuantizedMeanOrSum``): ``QuantizeMultiplier(s_in/s_out)`` in double, then
    ``k = min(floor(log2 n), 32, 31 + shift)``, ``m = (m << k) / n`` (integer, truncating) and
    ``shift -= k``. Measured: the same for keep_dims true and false and for equal or different
    input/output quantisation (tests/test_kernels.py).
    """
    if n <= 0:
        raise CompileError(f"mean over {n} elements")
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))
    k = min(n.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // n), shift - k
