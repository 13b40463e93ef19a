"""The M0+ fast paths of firmware/core/es_kernels.c against the arithmetic they replace.

es_saturating_rounding_doubling_high_mul builds the 64-bit product from 16-bit halves (ARMv6-M
has no 32x32->64 multiply); here it is compared with the int64 formula of gemmlowp, compiled
next to it, on every pair of edge values and on millions of random pairs, and a sample of its
results with Python's exact integers. The whole-kernel fast paths (im2col convolution, pooling)
are pinned by tests/test_kernels.py against TFLite and TFLite Micro.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware" / "core"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
TIMEOUT_S = 300

ORACLE = r"""
#include <stdio.h>
#include <stdlib.h>
#include "es_kernels.h"

/* gemmlowp, with a 64-bit product: what the fast versions must equal */
static int32_t srdhm_ref(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    const int64_t s = ab + nudge;
    return (int32_t)(s >= 0 ? (s >> 31) : -((-s) >> 31));
}

static int32_t rdbp_ref(int32_t x, int32_t e)
{
    if (e <= 0) return x;
    const int64_t mask = ((int64_t)1 << e) - 1;
    const int64_t rem = (int64_t)x & mask;
    const int64_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (rem > thr ? 1 : 0));
}

static uint64_t s_state = 0x9E3779B97F4A7C15u;
static uint32_t next32(void)
{
    s_state ^= s_state << 13; s_state ^= s_state >> 7; s_state ^= s_state << 17;
    return (uint32_t)(s_state >> 16);
}

/* random value with a random magnitude (so small and large operands are both common) */
static int32_t rand_value(void)
{
    const uint32_t v = next32();
    const uint32_t bits = next32() % 33u;
    const uint32_t m = bits == 32u ? v : (v & ((UINT32_C(1) << bits) - 1u));
    return (next32() & 1u) ? (int32_t)m : (int32_t)(0u - m);
}

int main(int argc, char **argv)
{
    const long n_random = argc > 1 ? atol(argv[1]) : 1000000L;
    static const int32_t edges[] = {0, 1, -1, 2, -2, 0x7FFF, 0x8000, -0x8000, -0x8001, 0xFFFF,
        0x10000, -0x10000, 0x10001, 0x3FFFFFFF, 0x40000000, -0x40000000, 0x7FFFFFFF,
        INT32_MIN, INT32_MIN + 1, 0x55555555, -0x55555555, 0x12345678, -0x7EDCBA98, 1 << 30,
        (1 << 30) + 1, 2147418112, -2147418112, 46341, -46341};
    const size_t n_edges = sizeof edges / sizeof edges[0];
    long bad = 0;
    for (size_t i = 0; i < n_edges; i++) {
        for (size_t j = 0; j < n_edges; j++) {
            if (es_saturating_rounding_doubling_high_mul(edges[i], edges[j]) !=
                srdhm_ref(edges[i], edges[j])) {
                fprintf(stderr, "srdhm(%ld, %ld)\n", (long)edges[i], (long)edges[j]);
                bad++;
            }
        }
        for (int32_t e = 0; e <= 31; e++) {
            if (es_rounding_divide_by_pot(edges[i], e) != rdbp_ref(edges[i], e)) {
                fprintf(stderr, "rdbp(%ld, %ld)\n", (long)edges[i], (long)e);
                bad++;
            }
        }
    }
    for (long k = 0; k < n_random; k++) {
        const int32_t a = rand_value();
        const int32_t b = rand_value();
        const int32_t got = es_saturating_rounding_doubling_high_mul(a, b);
        if (got != srdhm_ref(a, b)) {
            if (bad < 10) fprintf(stderr, "srdhm(%ld, %ld)\n", (long)a, (long)b);
            bad++;
        }
        const int32_t e = (int32_t)(next32() % 32u);
        if (es_rounding_divide_by_pot(a, e) != rdbp_ref(a, e)) {
            if (bad < 10) fprintf(stderr, "rdbp(%ld, %ld)\n", (long)a, (long)e);
            bad++;
        }
        /* a sample for Python's exact integers */
        if (k < 2000) printf("%ld %ld %ld\n", (long)a, (long)b, (long)got);
    }
    fprintf(stderr, "mismatches: %ld\n", bad);
    return bad ? 1 : 0;
}
"""


def _build(tmp_path: Path) -> Path:
    src = tmp_path / "oracle.c"
    src.write_text(ORACLE)
    exe = tmp_path / "oracle"
    proc = subprocess.run(
        ["gcc", *CFLAGS, "-O2", "-fsanitize=undefined", "-fno-sanitize-recover=all",
         "-I", str(CORE), str(CORE / "es_kernels.c"), str(CORE / "es_common.c"), str(src),
         "-o", str(exe)],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    return exe


def test_high_mul_from_halves_equals_the_int64_product(tmp_path: Path) -> None:
    """Every edge pair and 4 million random pairs: the halves version equals gemmlowp's int64
    SaturatingRoundingDoublingHighMul (and RoundingDivideByPOT its int64 form), with UBSan on."""
    exe = _build(tmp_path)
    proc = subprocess.run([str(exe), "4000000"], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = np.array([line.split() for line in proc.stdout.splitlines()], dtype=object)
    assert len(rows) == 2000
    for a, b, got in rows:
        a, b, got = int(a), int(b), int(got)
        want = (1 << 31) - 1 if a == b == -(1 << 31) else (a * b + (1 << 30)) >> 31
        assert got == want, (a, b, got, want)


CONV_PATHS = r"""
#include <stdio.h>
#include <string.h>
#include "es_kernels.h"

static uint32_t s_state = 12345u;
static uint32_t next32(void) { s_state = s_state * 1664525u + 1013904223u; return s_state >> 8; }
static int32_t pick(int32_t lo, int32_t hi) { return lo + (int32_t)(next32() % (uint32_t)(hi - lo + 1)); }

int main(void)
{
    static int8_t in[4096], w[4096], out_a[4096], out_b[4096];
    static int32_t w4[4 * 4096], bias[64], mult[64], shift[64];
    int bad = 0;
    for (int trial = 0; trial < 400; trial++) {
        EsConvX4Params x = {0};
        EsConvParams *c = &x.conv;
        c->kh = pick(1, 5); c->kw = pick(1, 5);
        c->in.c = pick(1, 8); c->in.h = pick(c->kh, 12); c->in.w = pick(c->kw, 12);
        c->stride_h = pick(1, 3); c->stride_w = pick(1, 3);
        const int same = (int)(next32() & 1u);
        c->pad_h = same ? pick(0, c->kh - 1) : 0;
        c->pad_w = same ? pick(0, c->kw - 1) : 0;
        c->out.h = (c->in.h + 2 * c->pad_h - c->kh) / c->stride_h + 1;
        c->out.w = (c->in.w + 2 * c->pad_w - c->kw) / c->stride_w + 1;
        c->out.c = pick(1, 11);
        c->depth_multiplier = 1;
        c->input_offset = pick(-127, 128);
        c->output_offset = pick(-128, 127);
        c->act_min = pick(-128, 0); c->act_max = pick(0, 127);
        const int32_t k = c->kh * c->kw * c->in.c;
        for (int32_t i = 0; i < c->in.h * c->in.w * c->in.c; i++) in[i] = (int8_t)pick(-128, 127);
        memset(w4, 0, sizeof w4);
        for (int32_t o = 0; o < c->out.c; o++) {
            bias[o] = pick(-5000, 5000);
            mult[o] = pick(1 << 30, 0x7FFFFFFF);
            shift[o] = pick(-12, 1);
            for (int32_t i = 0; i < k; i++) {
                w[o * k + i] = (int8_t)pick(-127, 127);
                w4[(o / 4) * 4 * k + 4 * i + o % 4] = w[o * k + i];
            }
        }
        c->filter = w; c->bias = (next32() & 1u) ? bias : NULL; c->mult = mult; c->shift = shift;
        x.filter_x4 = w4;
        const int32_t n = c->out.h * c->out.w * c->out.c;
        if (es_conv2d_s8(c, in, out_a) != ES_OK || es_conv2d_x4_s8(&x, in, out_b) != ES_OK ||
            memcmp(out_a, out_b, (size_t)n) != 0) {
            fprintf(stderr, "trial %d differs\n", trial);
            bad++;
        }
    }
    return bad ? 1 : 0;
}
"""


def test_conv_fast_path_equals_the_plain_kernel(tmp_path: Path) -> None:
    """400 random CONV_2D shapes (1-5 x 1-5 kernels, strides 1-3, SAME-style padding, odd
    channel counts): es_conv2d_x4_s8 writes exactly what es_conv2d_s8 writes. The fast path is
    the one the compiler emits, checked against TFLite and TFLM in tests/test_kernels.py; this
    pins the plain kernel (used for patches over ES_CONV_PATCH_MAX) to it."""
    src = tmp_path / "conv.c"
    src.write_text(CONV_PATHS)
    exe = tmp_path / "conv"
    proc = subprocess.run(
        ["gcc", *CFLAGS, "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-I", str(CORE), str(CORE / "es_kernels.c"), str(CORE / "es_common.c"), str(src),
         "-o", str(exe)],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
