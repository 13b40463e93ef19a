/*
 * es_kernels.c — int8 kernels with TensorFlow Lite's int8 reference semantics (see es_kernels.h).
 *
 * Written from the documented semantics of TFLite's reference kernels and gemmlowp's fixed-point
 * library: accumulate in int32 with zero-point offsets, requantise with
 * MultiplyByQuantizedMultiplier, add the output zero point, clamp to the activation range.
 */
#include "es_kernels.h"

#include <stddef.h>

/* ---- gemmlowp fixed point ------------------------------------------------------------------ */

/* Arithmetic shift right of a signed value (gcc/clang: implementation-defined as arithmetic). */
static int32_t asr32(int32_t x, int32_t n) { return x >> n; }

/* Signed left shift with two's-complement wrap, as the reference's x * (1 << n) behaves. */
static int32_t shl32(int32_t x, int32_t n) { return (int32_t)((uint32_t)x << n); }

/*
 * SaturatingRoundingDoublingHighMul = floor((a * b + 2^30) / 2^31), saturated for
 * a = b = INT32_MIN. (gemmlowp adds 2^30 or 1 - 2^30 by sign and truncates toward zero; for a
 * negative product that truncation equals floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31), the same
 * expression.) ARMv6-M has no 32x32->64 multiply and gcc would call __aeabi_lmul (about 60
 * cycles on the M0+), so the 64-bit product is formed from 16-bit halves with four MULS
 * (Hacker's Delight, mulhs): every partial product and sum below fits int32 / uint32 exactly.
 * tests/test_kernels_fast.py compares it with the int64 formula on edge and random inputs.
 */
static inline int32_t srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const uint32_t al = (uint32_t)a & 0xFFFFu;
    const uint32_t bl = (uint32_t)b & 0xFFFFu;
    const int32_t ah = asr32(a, 16);
    const int32_t bh = asr32(b, 16);
    const uint32_t ll = al * bl;
    const int32_t t = ah * (int32_t)bl + (int32_t)(ll >> 16);
    const int32_t w1 = (int32_t)((uint32_t)t & 0xFFFFu) + (int32_t)al * bh;
    const int32_t hi = ah * bh + asr32(t, 16) + asr32(w1, 16);
    const uint32_t lo = ((uint32_t)w1 << 16) | (ll & 0xFFFFu);
    const uint32_t lo_nudged = lo + (UINT32_C(1) << 30);
    const uint32_t hi_nudged = (uint32_t)hi + (lo_nudged < lo ? 1u : 0u);
    return (int32_t)((hi_nudged << 1) | (lo_nudged >> 31));
}

static inline int32_t rdbp(int32_t x, int32_t exponent)
{
    if (exponent <= 0) {
        return x;
    }
    /* 32-bit mask: a 64-bit shift would be a libgcc call on the M0+ */
    const int32_t mask = (int32_t)(exponent >= 32 ? 0xFFFFFFFFu
                                                  : (UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = asr32(mask, 1) + (x < 0 ? 1 : 0);
    return asr32(x, exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t mbqm(int32_t x, int32_t mult, int32_t shift)
{
    if (shift > 0) {
        return srdhm(shl32(x, shift), mult);
    }
    return rdbp(srdhm(x, mult), -shift);
}

/* The exported forms (front end, tests); the kernels inline the static ones above. */
int32_t es_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) { return srdhm(a, b); }

int32_t es_rounding_divide_by_pot(int32_t x, int32_t exponent) { return rdbp(x, exponent); }

int32_t es_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift)
{
    return mbqm(x, mult, shift);
}

#define SRDHM srdhm
#define RDBP rdbp
#define MBQM mbqm

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0. */
static int32_t sat_shl(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return shl32(x, e);
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* exp(x) for x in [-1/4, 0), x and result in Q0.31 (Taylor series around -1/8). */
static int32_t exp_on_interval_neg_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = a + (1 << 28);             /* a + 1/8 */
    const int32_t x2 = SRDHM(x, x);
    const int32_t x3 = SRDHM(x2, x);
    const int32_t x4 = SRDHM(x2, x2);
    const int32_t x4_over_4 = RDBP(x4, 2);
    const int32_t poly = RDBP(SRDHM(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + SRDHM(constant_term, x + poly);
}

/* exp(a) for a <= 0 given with int_bits integer bits (1..5); result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a, int32_t int_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2..4. */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    const int32_t frac_bits = 31 - int_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    int32_t result = exp_on_interval_neg_quarter(sat_shl(a_mod_quarter_minus_quarter, int_bits));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int32_t k = -2; k <= 4; k++) {
        if (int_bits > k && (remainder & ((int32_t)1 << (frac_bits + k))) != 0) {
            result = SRDHM(result, barrel[k + 2]);
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out (Newton-Raphson, 3 iterations). */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int64_t t = sum + (sum >= 0 ? 1 : -1);
    const int32_t half_denominator = (int32_t)(t >= 0 ? (t >> 1) : -((-t) >> 1));
    const int32_t c48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t cneg32_over_17 = -1010580540;  /* Q2.29 */
    int32_t x = c48_over_17 + SRDHM(half_denominator, cneg32_over_17);
    for (int i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = SRDHM(half_denominator, x);
        const int32_t one_minus = ((int32_t)1 << 29) - half_denominator_times_x;
        x = x + sat_shl(SRDHM(x, one_minus), 2);
    }
    return sat_shl(x, 1);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        n++;
    }
    return n;
}

/* ---- convolutions -------------------------------------------------------------------------- */

static int dims_ok(const EsDims *d)
{
    return d->h > 0 && d->w > 0 && d->c > 0;
}

static EsStatus check_conv(const EsConvParams *p, const int8_t *input, const int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->filter == NULL || p->mult == NULL ||
        p->shift == NULL) {
        return ES_ERR_ARG;
    }
    if (!dims_ok(&p->in) || !dims_ok(&p->out) || p->kh <= 0 || p->kw <= 0 ||
        p->stride_h <= 0 || p->stride_w <= 0 || p->act_min > p->act_max) {
        return ES_ERR_SHAPE;
    }
    return ES_OK;
}

static int8_t requant(int32_t acc, const EsConvParams *p, int32_t oc)
{
    if (p->bias != NULL) {
        acc += p->bias[oc];
    }
    acc = MBQM(acc, p->mult[oc], p->shift[oc]) + p->output_offset;
    return (int8_t)clamp32(acc, p->act_min, p->act_max);
}

static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* Plain CONV_2D: any size; taps clipped per output row and column, no per-tap checks. */
static void conv_generic(const EsConvParams *p, int32_t row0, const int8_t *input,
                         int8_t *output)
{
    const int32_t in_c = p->in.c;
    const int32_t k_row = p->kw * in_c;
    const int32_t k_all = p->kh * k_row;
    const int32_t off = p->input_offset;
    output += (size_t)row0 * (size_t)p->out.w * (size_t)p->out.c;
    for (int32_t oy = row0; oy < p->out.h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = max32(0, -y0);
        const int32_t ky1 = min32(p->kh, p->in.h - y0);
        for (int32_t ox = 0; ox < p->out.w; ox++) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = max32(0, -x0);
            const int32_t kx1 = min32(p->kw, p->in.w - x0);
            const int32_t run = (kx1 - kx0) * in_c; /* contiguous valid taps in one row */
            for (int32_t oc = 0; oc < p->out.c; oc++) {
                const int8_t *f = p->filter + (size_t)oc * (size_t)k_all + (size_t)(kx0 * in_c);
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const int8_t *in = input + ((size_t)(y0 + ky) * (size_t)p->in.w +
                                                (size_t)(x0 + kx0)) * (size_t)in_c;
                    const int8_t *fk = f + (size_t)(ky * k_row);
                    for (int32_t i = 0; i < run; i++) {
                        acc += (int32_t)fk[i] * ((int32_t)in[i] + off);
                    }
                }
                *output++ = requant(acc, p, oc);
            }
        }
    }
}

/* acc[j] += sum_i x[i] * w[4 i + j], j = 0..3 (gcc -O2 for the M0+: 5.5 cycles per MAC). */
static void dot4_s32(const int32_t *x, const int32_t *w, int32_t n, int32_t acc[4])
{
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    const int32_t *end = x + n;
    while (x != end) {
        const int32_t v = *x++;
        s0 += v * w[0];
        s1 += v * w[1];
        s2 += v * w[2];
        s3 += v * w[3];
        w += 4;
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/* The patch of output pixel (y0, x0): x + input_offset on valid taps, 0 on padded ones. */
static void gather_patch(const EsConvParams *p, const int8_t *input, int32_t y0, int32_t x0,
                         int32_t patch[ES_CONV_PATCH_MAX])
{
    const int32_t in_c = p->in.c;
    const int32_t k_row = p->kw * in_c;
    const int32_t ky0 = max32(0, -y0);
    const int32_t ky1 = min32(p->kh, p->in.h - y0);
    const int32_t kx0 = max32(0, -x0);
    const int32_t kx1 = min32(p->kw, p->in.w - x0);
    if (ky0 > 0 || ky1 < p->kh || kx0 > 0 || kx1 < p->kw) {
        for (int32_t i = 0; i < p->kh * k_row; i++) {
            patch[i] = 0;
        }
    }
    const int32_t run = (kx1 - kx0) * in_c;
    const int32_t off = p->input_offset;
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *src = input + ((size_t)(y0 + ky) * (size_t)p->in.w + (size_t)(x0 + kx0)) *
                                        (size_t)in_c;
        int32_t *dst = patch + ky * k_row + kx0 * in_c;
        for (int32_t i = 0; i < run; i++) {
            dst[i] = src[i] + off;
        }
    }
}

/* CONV_2D with filter_x4: im2col per output pixel, 4 output channels per pass. */
static void conv_patch(const EsConvParams *p, const int32_t *filter_x4, int32_t row0,
                       const int8_t *input, int8_t *output)
{
    int32_t patch[ES_CONV_PATCH_MAX];
    const int32_t k_all = p->kh * p->kw * p->in.c;
    const int32_t out_c = p->out.c;
    output += (size_t)row0 * (size_t)p->out.w * (size_t)out_c;
    for (int32_t oy = row0; oy < p->out.h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        for (int32_t ox = 0; ox < p->out.w; ox++) {
            gather_patch(p, input, y0, ox * p->stride_w - p->pad_w, patch);
            const int32_t *w = filter_x4;
            for (int32_t g = 0; g < out_c; g += 4) {
                int32_t acc[4] = {0, 0, 0, 0}; /* requant adds the bias */
                const int32_t n = min32(4, out_c - g);
                dot4_s32(patch, w, k_all, acc);
                w += 4 * k_all;
                for (int32_t j = 0; j < n; j++) {
                    *output++ = requant(acc[j], p, g + j);
                }
            }
        }
    }
}

EsStatus es_conv2d_rows_s8(const EsConvParams *p, int32_t row0, const int8_t *input,
                           int8_t *output)
{
    EsStatus st = check_conv(p, input, output);
    if (st != ES_OK) {
        return st;
    }
    if (row0 < 0 || row0 > p->out.h) {
        return ES_ERR_RANGE;
    }
    conv_generic(p, row0, input, output);
    return ES_OK;
}

EsStatus es_conv2d_s8(const EsConvParams *p, const int8_t *input, int8_t *output)
{
    return es_conv2d_rows_s8(p, 0, input, output);
}

EsStatus es_conv2d_x4_rows_s8(const EsConvX4Params *p, int32_t row0, const int8_t *input,
                              int8_t *output)
{
    if (p == NULL || p->filter_x4 == NULL) {
        return ES_ERR_ARG;
    }
    EsStatus st = check_conv(&p->conv, input, output);
    if (st != ES_OK) {
        return st;
    }
    if ((int64_t)p->conv.kh * p->conv.kw * p->conv.in.c > ES_CONV_PATCH_MAX || row0 < 0 ||
        row0 > p->conv.out.h) {
        return ES_ERR_RANGE;
    }
    conv_patch(&p->conv, p->filter_x4, row0, input, output);
    return ES_OK;
}

EsStatus es_conv2d_x4_s8(const EsConvX4Params *p, const int8_t *input, int8_t *output)
{
    return es_conv2d_x4_rows_s8(p, 0, input, output);
}

EsStatus es_depthwise_conv2d_s8(const EsConvParams *p, const int8_t *input, int8_t *output)
{
    return es_depthwise_conv2d_rows_s8(p, 0, input, output);
}

EsStatus es_depthwise_conv2d_rows_s8(const EsConvParams *p, int32_t row0, const int8_t *input,
                                     int8_t *output)
{
    EsStatus st = check_conv(p, input, output);
    if (st != ES_OK) {
        return st;
    }
    if (row0 < 0 || row0 > p->out.h) {
        return ES_ERR_RANGE;
    }
    if (p->depth_multiplier <= 0 || p->out.c != p->in.c * p->depth_multiplier) {
        return ES_ERR_SHAPE;
    }
    const int32_t out_c = p->out.c;
    const int32_t in_c = p->in.c;
    const int32_t dm = p->depth_multiplier;
    const int32_t off = p->input_offset;
    const size_t in_row = (size_t)p->in.w * (size_t)in_c;
    output += (size_t)row0 * (size_t)p->out.w * (size_t)out_c;
    for (int32_t oy = row0; oy < p->out.h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = max32(0, -y0);
        const int32_t ky1 = min32(p->kh, p->in.h - y0);
        for (int32_t ox = 0; ox < p->out.w; ox++) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = max32(0, -x0);
            const int32_t kx1 = min32(p->kw, p->in.w - x0);
            const int8_t *base = input + (size_t)(y0 + ky0) * in_row + (size_t)(x0 + kx0) *
                                                                       (size_t)in_c;
            int32_t ic = 0;
            int32_t m = 0;
            for (int32_t oc = 0; oc < out_c; oc++) {
                const int8_t *in_c0 = base + ic; /* ic = oc / dm, without a divide */
                if (++m == dm) {
                    m = 0;
                    ic++;
                }
                const int8_t *f = p->filter + (size_t)(ky0 * p->kw + kx0) * (size_t)out_c +
                                  (size_t)oc;
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const int8_t *in = in_c0;
                    const int8_t *fk = f;
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        acc += (int32_t)*fk * ((int32_t)*in + off);
                        in += in_c;
                        fk += out_c;
                    }
                    in_c0 += in_row;
                    f += (size_t)p->kw * (size_t)out_c;
                }
                *output++ = requant(acc, p, oc);
            }
        }
    }
    return ES_OK;
}

EsStatus es_fully_connected_s8(const EsFullyConnectedParams *p, const int8_t *input,
                               int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->filter == NULL || p->mult == NULL ||
        p->shift == NULL) {
        return ES_ERR_ARG;
    }
    if (p->batches <= 0 || p->in_depth <= 0 || p->out_depth <= 0 || p->act_min > p->act_max) {
        return ES_ERR_SHAPE;
    }
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + (size_t)b * (size_t)p->in_depth;
        for (int32_t o = 0; o < p->out_depth; o++) {
            const int8_t *w = p->filter + (size_t)o * (size_t)p->in_depth;
            int32_t acc = 0;
            for (int32_t i = 0; i < p->in_depth; i++) {
                acc += ((int32_t)w[i] + p->filter_offset) * ((int32_t)in[i] + p->input_offset);
            }
            if (p->bias != NULL) {
                acc += p->bias[o];
            }
            const int32_t k = p->per_channel ? o : 0;
            acc = MBQM(acc, p->mult[k], p->shift[k]) + p->output_offset;
            output[(size_t)b * (size_t)p->out_depth + (size_t)o] =
                (int8_t)clamp32(acc, p->act_min, p->act_max);
        }
    }
    return ES_OK;
}

/* ---- pooling ------------------------------------------------------------------------------- */

static EsStatus check_pool(const EsPoolParams *p, const int8_t *input, const int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (!dims_ok(&p->in) || !dims_ok(&p->out) || p->in.c != p->out.c || p->fh <= 0 ||
        p->fw <= 0 || p->stride_h <= 0 || p->stride_w <= 0 || p->act_min > p->act_max) {
        return ES_ERR_SHAPE;
    }
    return ES_OK;
}

/* Round half away from zero of acc / count, as the reference does; a shift for powers of 2. */
static int32_t average_of(int32_t acc, int32_t count)
{
    if ((count & (count - 1)) == 0) {
        int32_t n = 0;
        while ((1 << n) < count) {
            n++;
        }
        const int32_t half = count >> 1;
        /* truncating division of a value whose sign is that of acc: a shift of its magnitude */
        return acc > 0 ? asr32(acc + half, n) : -asr32(half - acc, n);
    }
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

/* Sum / maximum of a rows x cols window (element stride step, row stride row). */
static int32_t window_sum(const int8_t *in, int32_t rows, int32_t cols, int32_t step, size_t row)
{
    int32_t acc = 0;
    for (int32_t y = 0; y < rows; y++, in += row) {
        const int8_t *v = in;
        for (int32_t x = 0; x < cols; x++, v += step) {
            acc += *v;
        }
    }
    return acc;
}

static int32_t window_max(const int8_t *in, int32_t rows, int32_t cols, int32_t step, size_t row)
{
    int32_t acc = -128;
    for (int32_t y = 0; y < rows; y++, in += row) {
        const int8_t *v = in;
        for (int32_t x = 0; x < cols; x++, v += step) {
            acc = max32(acc, *v);
        }
    }
    return acc;
}

/* out[c] = max(-128, every in[c] of a rows x cols window of pixels of chans channels): four
 * channels at a time in registers (the M0+ has no LDRSB with an immediate offset: LDRB + SXTB
 * at fixed offsets), the rest one by one. The same maxima as window_max, in another order. */
static void window_max_channels(const int8_t *in, int32_t rows, int32_t cols, int32_t chans,
                                size_t row, int8_t *out)
{
    int32_t c = 0;
    for (; c + 4 <= chans; c += 4) {
        int32_t m0 = -128, m1 = -128, m2 = -128, m3 = -128;
        const int8_t *r = in + c;
        for (int32_t y = 0; y < rows; y++, r += row) {
            const int8_t *v = r;
            for (int32_t x = 0; x < cols; x++, v += chans) {
                m0 = max32(m0, v[0]);
                m1 = max32(m1, v[1]);
                m2 = max32(m2, v[2]);
                m3 = max32(m3, v[3]);
            }
        }
        out[c] = (int8_t)m0;
        out[c + 1] = (int8_t)m1;
        out[c + 2] = (int8_t)m2;
        out[c + 3] = (int8_t)m3;
    }
    for (; c < chans; c++) {
        out[c] = (int8_t)window_max(in + c, rows, cols, chans, row);
    }
}

static EsStatus pool(const EsPoolParams *p, int32_t row0, const int8_t *input, int8_t *output,
                     int average)
{
    EsStatus st = check_pool(p, input, output);
    if (st != ES_OK) {
        return st;
    }
    if (row0 < 0 || row0 > p->out.h) {
        return ES_ERR_RANGE;
    }
    const int32_t in_c = p->in.c;
    const size_t in_row = (size_t)p->in.w * (size_t)in_c;
    output += (size_t)row0 * (size_t)p->out.w * (size_t)in_c;
    for (int32_t oy = row0; oy < p->out.h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t fy0 = max32(0, -y0);
        const int32_t fy1 = min32(p->fh, p->in.h - y0);
        for (int32_t ox = 0; ox < p->out.w; ox++) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t fx0 = max32(0, -x0);
            const int32_t fx1 = min32(p->fw, p->in.w - x0);
            const int32_t count = (fy1 - fy0) * (fx1 - fx0);
            if (fy1 <= fy0 || fx1 <= fx0) {
                return ES_ERR_SHAPE;
            }
            const int8_t *corner = input + (size_t)(y0 + fy0) * in_row +
                                   (size_t)(x0 + fx0) * (size_t)in_c;
            if (!average) {
                /* the same maxima with the channels innermost: contiguous loads */
                window_max_channels(corner, fy1 - fy0, fx1 - fx0, in_c, in_row, output);
                for (int32_t c = 0; c < in_c; c++, output++) {
                    *output = (int8_t)clamp32(*output, p->act_min, p->act_max);
                }
                continue;
            }
            for (int32_t c = 0; c < in_c; c++) {
                const int32_t acc = average ? average_of(window_sum(corner + c, fy1 - fy0,
                                                                    fx1 - fx0, in_c, in_row),
                                                         count)
                                            : window_max(corner + c, fy1 - fy0, fx1 - fx0,
                                                         in_c, in_row);
                *output++ = (int8_t)clamp32(acc, p->act_min, p->act_max);
            }
        }
    }
    return ES_OK;
}

EsStatus es_max_pool2d_s8(const EsPoolParams *p, const int8_t *input, int8_t *output)
{
    return pool(p, 0, input, output, 0);
}

EsStatus es_avg_pool2d_s8(const EsPoolParams *p, const int8_t *input, int8_t *output)
{
    return pool(p, 0, input, output, 1);
}

EsStatus es_max_pool2d_rows_s8(const EsPoolParams *p, int32_t row0, const int8_t *input,
                               int8_t *output)
{
    return pool(p, row0, input, output, 0);
}

EsStatus es_avg_pool2d_rows_s8(const EsPoolParams *p, int32_t row0, const int8_t *input,
                               int8_t *output)
{
    return pool(p, row0, input, output, 1);
}

/* ---- resizing ------------------------------------------------------------------------------ */

/* Source coordinate in 1/1024 units and its two neighbouring source indices. */
static void interp_integer(int32_t value, int32_t scale_10, int32_t half_pixel, int32_t size,
                           int32_t *scaled, int32_t *lo, int32_t *hi)
{
    *scaled = half_pixel ? value * scale_10 + scale_10 / 2 - (1 << 9) : value * scale_10;
    *lo = max32(*scaled / (1 << 10), 0);
    *hi = min32((*scaled + (1 << 10) - 1) / (1 << 10), size - 1);
}

static int32_t resize_scale_10(int32_t in, int32_t out, int32_t align_corners)
{
    if (align_corners && out > 1) {
        return ((1 << 10) * (in - 1) + (out - 1) / 2) / (out - 1);
    }
    return ((1 << 10) * in + out / 2) / out;
}

EsStatus es_resize_bilinear_s8(const EsResizeBilinearParams *p, const int8_t *input,
                               int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (!dims_ok(&p->in) || !dims_ok(&p->out) || p->in.c != p->out.c) {
        return ES_ERR_SHAPE;
    }
    if (p->in.h > (1 << 20) / 1024 || p->in.w > (1 << 20) / 1024) {
        return ES_ERR_RANGE;
    }
    const int32_t sh = resize_scale_10(p->in.h, p->out.h, p->align_corners);
    const int32_t sw = resize_scale_10(p->in.w, p->out.w, p->align_corners);
    const size_t row = (size_t)p->in.w * (size_t)p->in.c;
    for (int32_t y = 0; y < p->out.h; y++) {
        int32_t iy, y0, y1;
        interp_integer(y, sh, p->half_pixel_centers, p->in.h, &iy, &y0, &y1);
        const int32_t dy = iy - (1 << 10) * y0;
        for (int32_t x = 0; x < p->out.w; x++) {
            int32_t ix, x0, x1;
            interp_integer(x, sw, p->half_pixel_centers, p->in.w, &ix, &x0, &x1);
            const int32_t dx = ix - (1 << 10) * x0;
            const int8_t *r0 = input + (size_t)y0 * row;
            const int8_t *r1 = input + (size_t)y1 * row;
            for (int32_t c = 0; c < p->in.c; c++) {
                const size_t c0 = (size_t)x0 * (size_t)p->in.c + (size_t)c;
                const size_t c1 = (size_t)x1 * (size_t)p->in.c + (size_t)c;
                /* int32 is exact: dy, dx lie in (-1024, 1024), so the four weights sum to
                 * at most 2048^2 in magnitude and |v| <= 128 * 2^22 = 2^29. */
                const int32_t v = r0[c0] * ((1 << 10) - dy) * ((1 << 10) - dx) +
                                  r1[c0] * dy * ((1 << 10) - dx) +
                                  r0[c1] * ((1 << 10) - dy) * dx + r1[c1] * dy * dx;
                /* Round half away from zero, then truncate toward zero (reference). */
                const int32_t r = v + (v > 0 ? (1 << 19) : -(1 << 19));
                const int32_t q = r >= 0 ? asr32(r, 20) : -asr32(-r, 20);
                output[((size_t)y * (size_t)p->out.w + (size_t)x) * (size_t)p->out.c +
                       (size_t)c] = (int8_t)q;
            }
        }
    }
    return ES_OK;
}

EsStatus es_resize_nearest_s8(const EsResizeNearestParams *p, const int8_t *input,
                              int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->src_y == NULL || p->src_x == NULL) {
        return ES_ERR_ARG;
    }
    if (!dims_ok(&p->in) || !dims_ok(&p->out) || p->in.c != p->out.c) {
        return ES_ERR_SHAPE;
    }
    for (int32_t y = 0; y < p->out.h; y++) {
        const int32_t sy = p->src_y[y];
        if (sy < 0 || sy >= p->in.h) {
            return ES_ERR_RANGE;
        }
        for (int32_t x = 0; x < p->out.w; x++) {
            const int32_t sx = p->src_x[x];
            if (sx < 0 || sx >= p->in.w) {
                return ES_ERR_RANGE;
            }
            const int8_t *src = input + ((size_t)sy * (size_t)p->in.w + (size_t)sx) *
                                            (size_t)p->in.c;
            int8_t *dst = output + ((size_t)y * (size_t)p->out.w + (size_t)x) *
                                       (size_t)p->out.c;
            for (int32_t c = 0; c < p->in.c; c++) {
                dst[c] = src[c];
            }
        }
    }
    return ES_OK;
}

/* ---- activations --------------------------------------------------------------------------- */

EsStatus es_softmax_s8(const EsSoftmaxParams *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (p->rows <= 0 || p->depth <= 0) {
        return ES_ERR_SHAPE;
    }
    /* The Q12.19 sum must not reach 2^11, so the final shift stays below 32. */
    if (p->depth > 2047 || p->input_left_shift < 0 || p->input_left_shift > 31) {
        return ES_ERR_RANGE;
    }
    const int32_t score_bits = 5;   /* input differences in Q5.26 */
    const int32_t accum_bits = 12;  /* sum of exps in Q12.19 */
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *in = input + (size_t)r * (size_t)p->depth;
        int8_t *out = output + (size_t)r * (size_t)p->depth;
        int32_t max_in = -128;
        for (int32_t c = 0; c < p->depth; c++) {
            max_in = max32(max_in, in[c]);
        }
        int32_t sum = 0;
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t diff = (int32_t)in[c] - max_in;
            if (diff >= p->diff_min) {
                const int32_t scaled =
                    SRDHM(shl32(diff, p->input_left_shift), p->input_multiplier);
                sum += RDBP(exp_on_negative_values(scaled, score_bits), accum_bits);
            }
        }
        const int32_t headroom_plus_one = count_leading_zeros((uint32_t)sum);
        const int32_t bits_over_unit = accum_bits - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t diff = (int32_t)in[c] - max_in;
            if (diff >= p->diff_min) {
                const int32_t scaled =
                    SRDHM(shl32(diff, p->input_left_shift), p->input_multiplier);
                const int32_t e = exp_on_negative_values(scaled, score_bits);
                const int32_t unsat = RDBP(SRDHM(shifted_scale, e), bits_over_unit + 31 - 8);
                out[c] = (int8_t)clamp32(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
    return ES_OK;
}

/* gemmlowp logistic for a Q4.27 input, result in Q0.31. */
static int32_t logistic_q4(int32_t a)
{
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    const int32_t abs_a = a > 0 ? a : -a;
    const int32_t pos = one_over_one_plus_x(exp_on_negative_values(-abs_a, 4));
    return a > 0 ? pos : INT32_MAX - pos;
}

EsStatus es_logistic_s8(const EsLogisticParams *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (p->size <= 0) {
        return ES_ERR_SHAPE;
    }
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t v = (int32_t)input[i] - p->input_zero_point;
        if (v <= -p->input_range_radius) {
            output[i] = -128;
        } else if (v >= p->input_range_radius) {
            output[i] = 127;
        } else {
            const int32_t in_q4 = MBQM(v, p->input_multiplier, p->input_left_shift);
            const int32_t out_q23 = RDBP(logistic_q4(in_q4), 31 - 8) - 128;
            output[i] = (int8_t)clamp32(out_q23, -128, 127);
        }
    }
    return ES_OK;
}

/* ---- reductions and element-wise ----------------------------------------------------------- */

EsStatus es_mean_hw_s8(const EsMeanParams *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (!dims_ok(&p->in)) {
        return ES_ERR_SHAPE;
    }
    /* n * 255 must fit the int32 sum; the shift must be one MBQM accepts. */
    if ((int64_t)p->in.h * p->in.w > ((int32_t)1 << 23) || p->shift < -31 || p->shift > 30 ||
        p->mult < 0) {
        return ES_ERR_RANGE;
    }
    const size_t n = (size_t)p->in.h * (size_t)p->in.w;
    const int32_t offset = (int32_t)n * p->input_zero_point;
    for (int32_t c = 0; c < p->in.c; c++) {
        int32_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum += input[i * (size_t)p->in.c + (size_t)c];
        }
        const int32_t v = MBQM(sum - offset, p->mult, p->shift) + p->output_zero_point;
        output[c] = (int8_t)clamp32(v, -128, 127);
    }
    return ES_OK;
}

static int8_t binary_one(const EsBinaryParams *p, int32_t a, int32_t b)
{
    const int32_t x = a + p->input1_offset;
    const int32_t y = b + p->input2_offset;
    int32_t raw;
    if (p->op == ES_BIN_MUL) {
        raw = MBQM(x * y, p->output_multiplier, p->output_shift);
    } else {
        const int32_t sx = MBQM(shl32(x, p->left_shift), p->input1_multiplier, p->input1_shift);
        const int32_t sy = MBQM(shl32(y, p->left_shift), p->input2_multiplier, p->input2_shift);
        raw = MBQM(p->op == ES_BIN_ADD ? sx + sy : sx - sy, p->output_multiplier,
                   p->output_shift);
    }
    return (int8_t)clamp32(raw + p->output_offset, p->act_min, p->act_max);
}

/* strides walk the output in order (every dimension that is not 1 has its dense stride) */
static int dense_strides(const EsBinaryParams *p, const int32_t strides[4])
{
    int32_t dense = 1;
    for (int k = 3; k >= 0; k--) {
        if (p->out_dims[k] > 1 && strides[k] != dense) {
            return 0;
        }
        dense *= p->out_dims[k];
    }
    return 1;
}

/*
 * One operand a single value (e.g. the normaliser's mean): the result is a function of the
 * other operand's int8 value only, so tabulate its 256 results once and look every element up.
 * scalar_is_second: the scalar is input 2 (else input 1). The tensor's strides are then dense.
 */
static void binary_with_scalar(const EsBinaryParams *p, const int8_t *tensor, int8_t scalar,
                               int scalar_is_second, int32_t total, int8_t *output)
{
    int8_t table[256];
    for (int32_t v = -128; v <= 127; v++) {
        table[v + 128] = scalar_is_second ? binary_one(p, v, scalar) : binary_one(p, scalar, v);
    }
    for (int32_t i = 0; i < total; i++) {
        output[i] = table[tensor[i] + 128];
    }
}

EsStatus es_binary_s8(const EsBinaryParams *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (p->op != ES_BIN_ADD && p->op != ES_BIN_SUB && p->op != ES_BIN_MUL) {
        return ES_ERR_UNSUPPORTED;
    }
    for (int k = 0; k < 4; k++) {
        if (p->out_dims[k] <= 0) {
            return ES_ERR_SHAPE;
        }
    }
    if (p->act_min > p->act_max || p->left_shift < 0 || p->left_shift > 24) {
        return ES_ERR_RANGE;
    }
    const int32_t total = p->out_dims[0] * p->out_dims[1] * p->out_dims[2] * p->out_dims[3];
    const int scalar1 = p->in1_strides[0] == 0 && p->in1_strides[1] == 0 &&
                        p->in1_strides[2] == 0 && p->in1_strides[3] == 0;
    const int scalar2 = p->in2_strides[0] == 0 && p->in2_strides[1] == 0 &&
                        p->in2_strides[2] == 0 && p->in2_strides[3] == 0;
    if (total > 256 && ((scalar2 && dense_strides(p, p->in1_strides)) ||
                        (scalar1 && dense_strides(p, p->in2_strides)))) {
        binary_with_scalar(p, scalar2 ? input1 : input2, scalar2 ? input2[0] : input1[0],
                           scalar2, total, output);
        return ES_OK;
    }
    size_t o = 0;
    for (int32_t i0 = 0; i0 < p->out_dims[0]; i0++) {
        for (int32_t i1 = 0; i1 < p->out_dims[1]; i1++) {
            for (int32_t i2 = 0; i2 < p->out_dims[2]; i2++) {
                for (int32_t i3 = 0; i3 < p->out_dims[3]; i3++) {
                    const int32_t a = i0 * p->in1_strides[0] + i1 * p->in1_strides[1] +
                                      i2 * p->in1_strides[2] + i3 * p->in1_strides[3];
                    const int32_t b = i0 * p->in2_strides[0] + i1 * p->in2_strides[1] +
                                      i2 * p->in2_strides[2] + i3 * p->in2_strides[3];
                    output[o++] = binary_one(p, input1[a], input2[b]);
                }
            }
        }
    }
    return ES_OK;
}

EsStatus es_requantize_s8(const EsRequantizeParams *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return ES_ERR_ARG;
    }
    if (p->size <= 0) {
        return ES_ERR_SHAPE;
    }
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t v = MBQM((int32_t)input[i] - p->input_zero_point, p->mult, p->shift) +
                          p->output_zero_point;
        output[i] = (int8_t)clamp32(v, -128, 127);
    }
    return ES_OK;
}
