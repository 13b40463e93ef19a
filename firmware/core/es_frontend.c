/* es_frontend.c — the q15 front end (see es_frontend.h for the contract). */
#include "es_frontend.h"

#include <string.h>

#include "es_hann_q15.h"
#include "es_kernels.h"
#include "es_mag.h"
#include "es_rfft.h"

_Static_assert(sizeof ES_HANN_Q15 / sizeof ES_HANN_Q15[0] == ES_FFT_LEN,
               "Hann table must have ES_FFT_LEN entries");
_Static_assert(ES_RFFT_LEN == ES_FFT_LEN && ES_RFFT_OUT == 2 * ES_BINS, "es_rfft256_q15 sizes");
_Static_assert(ES_BLOCK % ES_HOP == 0, "a block must hold whole hops");
_Static_assert((ES_FRAMES - 1) * ES_HOP + ES_FFT_LEN == ES_CLIP_SAMPLES,
               "124 frames of hop 128 must cover the 1 s clip exactly");

EsStatus es_frontend_init(EsFrontEnd *fe)
{
    if (fe == NULL) {
        return ES_ERR_ARG;
    }
    memset(fe, 0, sizeof *fe);
    return ES_OK;
}

EsStatus es_frontend_frame(EsFrontEnd *fe, const int16_t samples[ES_FFT_LEN], int16_t out[ES_BINS])
{
    if (fe == NULL || samples == NULL || out == NULL) {
        return ES_ERR_ARG;
    }
    /* arm_mult_q15 with the Hann table, then arm_rfft_q15 (256, forward), to the bit:
     * bin k at [2k], [2k+1]; bin N/2 (Nyquist) real part at [N], imaginary 0 at [N+1] */
    es_rfft256_q15(samples, ES_HANN_Q15, fe->fft_work, fe->spectrum);
    /* es_cmplx_mag_q15 is arm_cmplx_mag_q15 to the bit, without its 64-bit multiplies */
    return es_cmplx_mag_q15(fe->spectrum, out, ES_BINS);
}

EsStatus es_frontend_push_block(EsFrontEnd *fe, const int16_t block[ES_BLOCK],
                                int16_t frames[ES_FRAMES_PER_BLOCK][ES_BINS])
{
    if (fe == NULL || block == NULL || frames == NULL) {
        return ES_ERR_ARG;
    }
    /* work[0..128) holds the previous block's last 128 samples (the seed kept 128 bytes, i.e.
     * 64 samples). Only frame 0 straddles them and the block; the others read the block itself
     * when it is word-aligned as es_rfft256_q15's fast passes want (else all from the copy). */
    const bool direct = ((uintptr_t)block & 3U) == 0U;
    const size_t copied = direct ? ES_FFT_LEN - ES_TAIL : ES_BLOCK;
    memcpy(fe->work + ES_TAIL, block, copied * sizeof fe->work[0]);
    for (size_t f = 0; f < ES_FRAMES_PER_BLOCK; f++) {
        const int16_t *start = f == 0U || !direct ? fe->work + f * ES_HOP
                                                  : block + (f - 1U) * ES_HOP;
        EsStatus st = es_frontend_frame(fe, start, frames[f]);
        if (st != ES_OK) {
            return st;
        }
    }
    memcpy(fe->work, block + ES_BLOCK - ES_TAIL, ES_TAIL * sizeof fe->work[0]);
    fe->blocks++;
    return ES_OK;
}

EsStatus es_frontend_clip(EsFrontEnd *fe, const int16_t clip[ES_CLIP_SAMPLES], EsSpectrogram *out)
{
    if (fe == NULL || clip == NULL || out == NULL) {
        return ES_ERR_ARG;
    }
    for (size_t f = 0; f < ES_FRAMES; f++) {
        EsStatus st = es_frontend_frame(fe, clip + f * ES_HOP, out->mag[f]);
        if (st != ES_OK) {
            return st;
        }
    }
    return ES_OK;
}

EsStatus es_spectrogram_clear(EsSpectrogram *spec)
{
    if (spec == NULL) {
        return ES_ERR_ARG;
    }
    memset(spec, 0, sizeof *spec);
    return ES_OK;
}

EsStatus es_spectrogram_push(EsSpectrogram *spec, const int16_t (*frames)[ES_BINS], size_t n)
{
    if (spec == NULL || frames == NULL || n > ES_FRAMES) {
        return ES_ERR_ARG;
    }
    memmove(spec->mag[0], spec->mag[n], (ES_FRAMES - n) * sizeof spec->mag[0]);
    memcpy(spec->mag[ES_FRAMES - n], frames, n * sizeof spec->mag[0]);
    return ES_OK;
}

/*
 * TFLite reference MultiplyByQuantizedMultiplier(x, multiplier, shift) for |x| <= 2^15 and
 * shift <= 16: x * 2^shift stays below 2^31, so es_kernels' int32 version (no 64-bit multiply)
 * is exact. Beyond shift 16 the result exceeds any int8 anyway and is saturated to +-2^24.
 * Used for shift > 0 (input scale < 1); requantize_down below serves the usual shift <= 0.
 */
static int32_t requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 16) {
        /* |x| * 2^shift * multiplier / 2^31 >= 2^16 for any x != 0: far outside int8 */
        return x == 0 ? 0 : (x > 0 ? (1 << 24) : -(1 << 24));
    }
    /* at shift 16, x = -2^15 and multiplier ~2^31 give ~-2^31: the caller's + zero_point would
     * overflow int32, so clamp to the same +-2^24 (any int8 clamps the same) */
    const int32_t v = es_multiply_by_quantized_multiplier(x, multiplier, shift);
    return v < -(1 << 24) ? -(1 << 24) : (v > (1 << 24) ? (1 << 24) : v);
}

/*
 * The same for shift <= 0 (input scale >= 1, the usual case for q15 magnitudes), in two MULS
 * and no call: SaturatingRoundingDoublingHighMul(x, m) is floor((x m + 2^30) / 2^31) for every
 * operand pair but (INT32_MIN, INT32_MIN) (the reference's nudge 1 - 2^30 on negative products
 * with truncation gives the same). With m = mh 2^16 + ml and |x| <= 2^15, x mh and x ml fit
 * int32, and nested floors give floor((x mh + 2^14 + floor(x ml / 2^16)) / 2^15). Then
 * RoundingDivideByPOT(., -shift) as the reference: round half away from zero.
 */
static int32_t requantize_down(int32_t x, int32_t mh, int32_t ml, int32_t exponent)
{
    const int32_t high = (x * mh + (1 << 14) + ((x * ml) >> 16)) >> 15;
    if (exponent == 0) {
        return high;
    }
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1U);
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> exponent) + ((high & mask) > threshold ? 1 : 0);
}

EsStatus es_frontend_quantize(const int16_t *mag, size_t n, int32_t multiplier, int32_t shift,
                              int32_t zero_point, int8_t *out)
{
    if (mag == NULL || out == NULL) {
        return ES_ERR_ARG;
    }
    if (multiplier < (INT32_C(1) << 30) || shift < -31 || shift > 30) {
        return ES_ERR_ARG;
    }
    if (zero_point < -128 || zero_point > 127) {
        return ES_ERR_ARG;
    }
    const int32_t mh = multiplier >> 16;               /* 2^14 <= mh < 2^15 */
    const int32_t ml = multiplier & 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        int32_t q = zero_point + (shift <= 0 ? requantize_down(mag[i], mh, ml, -shift)
                                              : requantize(mag[i], multiplier, shift));
        if (q < -128) {
            q = -128;
        } else if (q > 127) {
            q = 127;
        }
        out[i] = (int8_t)q;
    }
    return ES_OK;
}

/* ---- the table (see es_frontend.h) ---- */

static int8_t quantize_one(const EsQuantTable *t, int32_t m)
{
    const int16_t v = (int16_t)m;
    int8_t q = 0;
    (void)es_frontend_quantize(&v, 1, t->multiplier, t->shift, t->zero_point, &q);
    return q;
}

/* floor(log2(v)) for v > 0 */
static uint32_t log2_floor(uint32_t v)
{
    uint32_t k = 0;
    while (v > 1U) {
        v >>= 1;
        k++;
    }
    return k;
}

/* The widest bucket shift with at most one +1 step per bucket; *last the last step's m (0: none). */
static uint32_t widest_shift(const EsQuantTable *t, int32_t *last)
{
    uint32_t k = 8;
    int32_t prev_step = -1;
    int32_t prev_q = quantize_one(t, 0);
    *last = 0;
    for (int32_t m = 1; m <= INT16_MAX; m++) {
        const int32_t q = quantize_one(t, m);
        if (q == prev_q) {
            continue;
        }
        if (q != prev_q + 1) {
            k = 0; /* only k = 0 holds a jump of more than one */
        } else if (prev_step >= 0) {
            const uint32_t apart = log2_floor((uint32_t)(prev_step ^ m));
            k = apart < k ? apart : k;
        }
        prev_step = m;
        prev_q = q;
        *last = m;
    }
    return k;
}

/* Entry of bucket b: its first value and the offset of its step (256: none). */
static uint16_t bucket_entry(const EsQuantTable *t, uint32_t b)
{
    const int32_t start = (int32_t)(b << t->shift_k);
    const int8_t base = quantize_one(t, start);
    uint32_t step = 256U;
    for (int32_t j = 1; j < (1 << t->shift_k) && start + j <= INT16_MAX; j++) {
        if (quantize_one(t, start + j) != base) {
            step = (uint32_t)j;
            break;
        }
    }
    return (uint16_t)(((uint32_t)(uint8_t)base << 8) + 256U - step);
}

EsStatus es_quant_table_init(EsQuantTable *t, int32_t multiplier, int32_t shift,
                             int32_t zero_point)
{
    if (t == NULL) {
        return ES_ERR_ARG;
    }
    int8_t probe;
    const int16_t zero = 0;
    EsStatus st = es_frontend_quantize(&zero, 1, multiplier, shift, zero_point, &probe);
    if (st != ES_OK) {
        return st;
    }
    memset(t, 0, sizeof *t);
    t->multiplier = multiplier;
    t->shift = shift;
    t->zero_point = zero_point;
    int32_t last;
    t->shift_k = (uint8_t)widest_shift(t, &last);
    t->top = quantize_one(t, last);
    const uint32_t buckets = last == 0 ? 0U : ((uint32_t)last >> t->shift_k) + 1U;
    if (buckets > ES_QTABLE_MAX) {
        return ES_OK; /* t->table false: the reference for every value */
    }
    t->buckets = (uint16_t)buckets;
    for (uint32_t b = 0; b < buckets; b++) {
        t->entry[b] = bucket_entry(t, b);
    }
    t->table = true;
    return ES_OK;
}

EsStatus es_quant_table_apply(const EsQuantTable *t, const int16_t *mag, size_t n, int8_t *out)
{
    if (t == NULL || mag == NULL || out == NULL) {
        return ES_ERR_ARG;
    }
    if (!t->table) {
        return es_frontend_quantize(mag, n, t->multiplier, t->shift, t->zero_point, out);
    }
    const uint32_t k = t->shift_k, mask = (1U << k) - 1U, buckets = t->buckets;
    for (size_t i = 0; i < n; i++) {
        const uint32_t m = (uint16_t)mag[i]; /* negative m: >= 2^15, past every bucket */
        const uint32_t b = m >> k;
        if (b < buckets) {
            out[i] = (int8_t)(uint8_t)((t->entry[b] + (m & mask)) >> 8);
        } else if (m <= (uint32_t)INT16_MAX) {
            out[i] = t->top;
        } else {
            out[i] = quantize_one(t, mag[i]);
        }
    }
    return ES_OK;
}

/* values[j] for the last j with starts[j] <= m (starts[0] == 0). */
static int8_t log_search(const EsLogQuant *q, uint32_t m)
{
    uint32_t lo = 0U, hi = q->count; /* starts[lo] <= m < starts[hi] (starts[count] = inf) */
    while (hi - lo > 1U) {
        const uint32_t mid = (lo + hi) >> 1;
        if (q->starts[mid] <= m) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return q->values[lo];
}

EsStatus es_log_quant_init(EsLogQuant *q, const uint16_t *starts, const int8_t *values,
                           uint16_t count)
{
    if (q == NULL || starts == NULL || values == NULL || count == 0U || count > 256U ||
        starts[0] != 0U) {
        return ES_ERR_ARG;
    }
    for (uint16_t j = 1; j < count; j++) {
        if (starts[j] <= starts[j - 1U]) {
            return ES_ERR_ARG;
        }
    }
    q->starts = starts;
    q->values = values;
    q->count = count;
    for (uint32_t m = 0; m < ES_LOG_LOW; m++) {
        q->low[m] = log_search(q, m);
    }
    return ES_OK;
}

EsStatus es_log_quant_apply(const EsLogQuant *q, const int16_t *mag, size_t n, int8_t *out)
{
    if (q == NULL || mag == NULL || out == NULL || q->count == 0U) {
        return ES_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        const int32_t m = mag[i] < 0 ? 0 : mag[i];
        out[i] = m < ES_LOG_LOW ? q->low[m] : log_search(q, (uint32_t)m);
    }
    return ES_OK;
}
