"""TFLite's integer arithmetic, exactly: the rules int8 models and the RP2040 kernels share.

Facts from TFLite (``tensorflow/lite/kernels/internal/quantization_util.cc`` and
``common.h``), restated here so the trainer, the C compiler and the daemon use one definition:

* ``QuantizeMultiplier(real)`` writes a positive real as ``m * 2**(shift - 31)`` with ``m`` a q31
  in [2**30, 2**31): ``m = round(frexp(real).mantissa * 2**31)``, rounding half *away from zero*
  (``TfLiteRound`` is ``std::round``). An ``m`` of exactly 2**31 becomes 2**30 with ``shift + 1``;
  0 gives (0, 0), and a shift below -31 flushes to (0, 0) because every bit would shift out.
* ``MultiplyByQuantizedMultiplier(x, m, shift)`` is gemmlowp's
  ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2**max(shift, 0), m), max(-shift, 0))``.
"""

from __future__ import annotations

import math

import numpy as np


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real = m * 2**(shift - 31)``, ``m`` rounded half away from 0."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    qf = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q > 0 else -1)
    if qf == (1 << 31):
        qf //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return qf, shift


def rounding_doubling_high_mul(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 ``a`` and ``b`` (vectorised)."""
    ab = np.asarray(a).astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C integer division truncates toward zero; emulate it.
    s = ab + nudge
    out = np.where(s >= 0, s >> 31, -((-s) >> 31)).astype(np.int64)
    # The one overflow case: a == b == INT32_MIN saturates to INT32_MAX.
    both_min = (np.asarray(a) == -(1 << 31)) & (b == -(1 << 31))
    return np.where(both_min, (1 << 31) - 1, out)


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: ``x / 2**exponent`` rounded half away from zero."""
    x = np.asarray(x, np.int64)
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """TFLite reference MultiplyByQuantizedMultiplier (gemmlowp rounding), vectorised."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    v = np.asarray(x, np.int64) * (1 << left)
    return rounding_divide_by_pot(rounding_doubling_high_mul(v, mult), right)


def q15_to_int8(mag: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """q15 magnitudes (int16) -> the int8 model input, integer-only, as the firmware does it.

    ``q = clamp(zero_point + MultiplyByQuantizedMultiplier(mag, QuantizeMultiplier(1/scale)))``
    """
    mult, shift = quantize_multiplier(1.0 / scale)
    q = multiply_by_quantized_multiplier(np.asarray(mag, np.int64), mult, shift) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


MAG_MAX = 32767
"""Largest q15 magnitude (arm_cmplx_mag_q15 output is a non-negative int16)."""


def log_mag_int8_table(scale: float, zero_point: int) -> np.ndarray:
    """The ``q15log`` front end's int8 input for every q15 magnitude 0..MAG_MAX (int8, 32768).

    ``q(m) = clamp(zero_point + floor(ln(1 + m) / scale + 0.5), -128, 127)``, evaluated once in
    float64; the trainer, the daemon and the firmware all read the table (the firmware as
    :func:`log_mag_breakpoints`), so none of them evaluates a logarithm per value."""
    m = np.arange(MAG_MAX + 1, dtype=np.float64)
    q = zero_point + np.floor(np.log1p(m) / float(scale) + 0.5)
    return np.clip(q, -128, 127).astype(np.int8)


def log_mag_breakpoints(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, values)``: the magnitudes where :func:`log_mag_int8_table` changes value and
    the value from there on (``starts[0] == 0``); at most 256 entries, the firmware's form."""
    t = np.asarray(table, np.int8)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(t.astype(np.int16))) + 1])
    return starts.astype(np.uint16), t[starts]


def log_mag_to_int8(mag: np.ndarray, table: np.ndarray) -> np.ndarray:
    """q15 magnitudes -> the ``q15log`` model input through ``table`` (log_mag_int8_table)."""
    return np.asarray(table, np.int8)[np.clip(np.asarray(mag, np.int64), 0, MAG_MAX)]
