/* es_rfft.c — CMSIS-DSP's window + 256-point q15 real FFT, bit for bit (see es_rfft.h). */
#include "es_rfft.h"

#include <stddef.h>

#include "es_rfft256_q15.h"

/* 2 bitrev4(m): the bin pair of the last-stage butterfly at point 4m of a column */
static const uint8_t LAST_BIN[16] = {0, 16, 8, 24, 4, 20, 12, 28, 2, 18, 10, 26, 6, 22, 14, 30};

#if defined(__ARM_ARCH_6M__)
/* es_rfft_m0.c: the same passes in Thumb-1 assembly (4-byte aligned buffers and tables) */
void es_rfft_m0_radix2(const int16_t *in, const int16_t *window, int16_t *x, const int16_t *tw);
void es_rfft_m0_stage1(int16_t *x, const int16_t *tw);
void es_rfft_m0_stage2(int16_t *x, const int16_t *tw);
void es_rfft_m0_stage3(const int16_t *x, int16_t *y, const uint8_t *last_bin);
void es_rfft_m0_split(int16_t *x, const int16_t *coef);
#endif

/*
 * Layout: the 256 real samples are 128 complex points (re, im); the radix-2 step leaves the
 * even-frequency column in points 0..63 and the odd one in 64..127, each then a 64-point
 * radix-4 FFT of three stages (butterfly spans 16, 4, 1 points). CMSIS's radix-4 leaves
 * frequency bitrev6(n) at point n, so point n of the 128 holds bin bitrev7(n).
 */
#define HALF 64          /* points per column */
#define COL (2 * HALF)   /* int16 values per column */

_Static_assert(sizeof ES_RFFT_RADIX2_TW / sizeof ES_RFFT_RADIX2_TW[0] == 2 * HALF, "radix-2");
_Static_assert(sizeof ES_RFFT_STAGE1_TW / sizeof ES_RFFT_STAGE1_TW[0] == 16 * 6, "stage 1");
_Static_assert(sizeof ES_RFFT_STAGE2_TW / sizeof ES_RFFT_STAGE2_TW[0] == 4 * 6, "stage 2");
_Static_assert(sizeof ES_RFFT_SPLIT_A / sizeof ES_RFFT_SPLIT_A[0] == 2 * 63, "split pairs");

/* (co re + si im) >> 16, (co im - si re) >> 16 into q: CMSIS's twiddle rotation (no overflow:
 * |re|, |im| <= 32767 and |co + i si| <= 32768 keep both sums below 2^31). */
static inline void rotate(int16_t *q, int32_t re, int32_t im, int32_t co, int32_t si)
{
    q[0] = (int16_t)((co * re + si * im) >> 16);
    q[1] = (int16_t)((co * im - si * re) >> 16);
}

/*
 * Pass 1: window (optional) and arm_cfft_radix4by2_q15's radix-2 step, in -> x. With
 * |window| <= 32767, (s w) >> 15 is in int16 range: arm_mult_q15's __SSAT never acts.
 */
static inline void radix2_pass(const int16_t *in, const int16_t *win, int16_t *x)
{
    const int16_t *tw = ES_RFFT_RADIX2_TW;
    for (uint32_t i = 0; i < HALF; i++, in += 2, tw += 2, x += 2) {
        int32_t ar = in[0], ai = in[1], br = in[COL], bi = in[COL + 1];
        if (win != NULL) {
            ar = (ar * win[0]) >> 15;
            ai = (ai * win[1]) >> 15;
            br = (br * win[COL]) >> 15;
            bi = (bi * win[COL + 1]) >> 15;
            win += 2;
        }
        ar >>= 1;
        ai >>= 1;
        br >>= 1;
        bi >>= 1;
        const int32_t xt = ar - br, yt = ai - bi, co = tw[0], si = tw[1];
        x[0] = (int16_t)((ar + br) >> 1);
        x[1] = (int16_t)((ai + bi) >> 1);
        /* each product >> 16 is within +-2^14, so CMSIS's int16 casts of them never act */
        x[COL] = (int16_t)(((xt * co) >> 16) + ((yt * si) >> 16));
        x[COL + 1] = (int16_t)(((yt * co) >> 16) - ((xt * si) >> 16));
    }
}

/*
 * First radix-4 stage butterfly (span 16 points = 32 values): inputs >> 2 lie in
 * [-8192, 8191], so every sum and difference fits int16 and CMSIS's __SSATs never act.
 */
static inline void butterfly_first(int16_t *p, const int16_t *tw)
{
    const int32_t ar = p[0] >> 2, ai = p[1] >> 2, br = p[32] >> 2, bi = p[33] >> 2;
    const int32_t cr = p[64] >> 2, ci = p[65] >> 2, dr = p[96] >> 2, di = p[97] >> 2;
    const int32_t r0 = ar + cr, r1 = ai + ci, s0 = ar - cr, s1 = ai - ci;
    const int32_t t0 = br + dr, t1 = bi + di, u0 = br - dr, u1 = bi - di;
    p[0] = (int16_t)((r0 >> 1) + (t0 >> 1));
    p[1] = (int16_t)((r1 >> 1) + (t1 >> 1));
    rotate(p + 32, r0 - t0, r1 - t1, tw[2], tw[3]);
    rotate(p + 64, s0 + u1, s1 - u0, tw[0], tw[1]);
    rotate(p + 96, s0 - u1, s1 + u0, tw[4], tw[5]);
}

/*
 * Second stage butterfly (span 4 points): sums, then halving as CMSIS does. CMSIS saturates
 * each sum (__SSAT); here no sum can leave int16 for any input (the stage's inputs are at most
 * ~11,600 in magnitude: tests/test_firmware_fft.py bounds them), so the saturation is omitted,
 * here and in the last stage.
 */
static inline void butterfly_mid(int16_t *p, const int16_t *tw)
{
    const int32_t ar = p[0], ai = p[1], br = p[8], bi = p[9];
    const int32_t cr = p[16], ci = p[17], dr = p[24], di = p[25];
    const int32_t r0 = (ar + cr) >> 1, r1 = (ai + ci) >> 1;
    const int32_t s0 = (ar - cr) >> 1, s1 = (ai - ci) >> 1;
    const int32_t t0 = (br + dr) >> 1, t1 = (bi + di) >> 1;
    const int32_t u0 = (br - dr) >> 1, u1 = (bi - di) >> 1;
    p[0] = (int16_t)((r0 + t0) >> 1);
    p[1] = (int16_t)((r1 + t1) >> 1);
    rotate(p + 8, r0 - t0, r1 - t1, tw[2], tw[3]);
    rotate(p + 16, s0 + u1, s1 - u0, tw[0], tw[1]);
    rotate(p + 24, s0 - u1, s1 + u0, tw[4], tw[5]);
}

/*
 * Last stage butterfly (span 1 point, no twiddles) of the four points at p, followed by
 * arm_cfft_radix4by2_q15's final << 1 (int16 wrap, as CMSIS's q15 store) and the bit
 * reversal: its outputs 0, 1, 2, 3 are bins k, k + 64, k + 32, k + 96 of y.
 */
static inline void butterfly_last(const int16_t *p, int16_t *y)
{
    const int32_t ar = p[0], ai = p[1], br = p[2], bi = p[3];
    const int32_t cr = p[4], ci = p[5], dr = p[6], di = p[7];
    const int32_t r0 = (ar + cr) >> 1, r1 = (ai + ci) >> 1;
    const int32_t s0 = (ar - cr) >> 1, s1 = (ai - ci) >> 1;
    const int32_t t0 = (br + dr) >> 1, t1 = (bi + di) >> 1;
    const int32_t u0 = (br - dr) >> 1, u1 = (bi - di) >> 1;
    y[0] = (int16_t)((r0 + t0) * 2);
    y[1] = (int16_t)((r1 + t1) * 2);
    y[128] = (int16_t)((r0 - t0) * 2);
    y[129] = (int16_t)((r1 - t1) * 2);
    y[64] = (int16_t)((s0 + u1) * 2);
    y[65] = (int16_t)((s1 - u0) * 2);
    y[192] = (int16_t)((s0 - u1) * 2);
    y[193] = (int16_t)((s1 + u0) * 2);
}

static void radix4_stages(int16_t *x, int16_t *y)
{
    const int16_t *tw = ES_RFFT_STAGE1_TW;
    for (uint32_t i = 0; i < 16; i++, tw += 6) {
        butterfly_first(x + 2 * i, tw);
        butterfly_first(x + COL + 2 * i, tw);
    }
    tw = ES_RFFT_STAGE2_TW;
    for (uint32_t j = 0; j < 4; j++, tw += 6) {
        for (uint32_t g = 0; g < COL; g += 32) {
            butterfly_mid(x + g + 2 * j, tw);
            butterfly_mid(x + COL + g + 2 * j, tw);
        }
    }
    for (uint32_t m = 0; m < 16; m++) {
        int16_t *bin = y + 2 * LAST_BIN[m];
        butterfly_last(x + 8 * m, bin);
        butterfly_last(x + COL + 8 * m, bin + 2);
    }
}

/* The high 16 bits of v as int16: CMSIS's (q15_t)(sum >> 16) of a wrapped int32 sum. */
static inline int16_t high16(uint32_t v)
{
    return (int16_t)(uint16_t)(v >> 16);
}

/*
 * arm_split_rfft_q15 on the natural-order 128-point spectrum, in place, bins 0..128. For
 * k = 1..63 and j = 128 - k, with x = X[k], y = X[j], a = A_re(k), c = A_im(k), CMSIS's sums
 * reduce (B_re = 2^15 - a, B_im = -c, A_re(j) = a, A_im(j) = -c; es_rfft256_q15.h) to
 *   P = a (xr - yr) - c (xi + yi),  Q = a (xi + yi) + c (xr - yr),
 *   out(k) = (P + 2^15 yr, Q - 2^15 yi) >> 16,  out(j) = (2^15 xr - P, Q - 2^15 xi) >> 16,
 * the same integers, so the same values modulo 2^32 as CMSIS's int32 arithmetic.
 */
static void split_ends(int16_t *x)
{
    const int32_t x0r = x[0], x0i = x[1];
    x[0] = (int16_t)((x0r + x0i) >> 1);
    x[1] = 0;
    x[2 * HALF * 2] = (int16_t)((x0r - x0i) >> 1);
    x[2 * HALF * 2 + 1] = 0;
    const int32_t mr = x[2 * HALF], mi = x[2 * HALF + 1];
    const int32_t ar = ES_RFFT_SPLIT_MID[0], ai = ES_RFFT_SPLIT_MID[1];
    const int32_t br = ES_RFFT_SPLIT_MID[2], bi = ES_RFFT_SPLIT_MID[3];
    x[2 * HALF] = high16((uint32_t)(mr * ar) - (uint32_t)(mi * ai) + (uint32_t)(mr * br) +
                         (uint32_t)(mi * bi));
    x[2 * HALF + 1] = high16((uint32_t)(mr * bi) - (uint32_t)(mi * br) + (uint32_t)(mi * ar) +
                             (uint32_t)(mr * ai));
}

static void split_pairs(int16_t *x)
{
    const int16_t *coef = ES_RFFT_SPLIT_A;
    int16_t *lo = x + 2, *hi = x + 2 * (2 * HALF - 1);
    for (uint32_t k = 1; k < HALF; k++, lo += 2, hi -= 2, coef += 2) {
        const int32_t xr = lo[0], xi = lo[1], yr = hi[0], yi = hi[1];
        const int32_t a = coef[0], c = coef[1], d = xr - yr, s = xi + yi;
        const uint32_t p = (uint32_t)(a * d) - (uint32_t)(c * s);
        const uint32_t q = (uint32_t)(a * s) + (uint32_t)(c * d);
        lo[0] = high16(p + ((uint32_t)yr << 15));
        lo[1] = high16(q - ((uint32_t)yi << 15));
        hi[0] = high16(((uint32_t)xr << 15) - p);
        hi[1] = high16(q - ((uint32_t)xi << 15));
    }
}

void es_rfft256_q15(const int16_t in[ES_RFFT_LEN], const int16_t *window,
                    int16_t work[ES_RFFT_LEN], int16_t out[ES_RFFT_OUT])
{
#if defined(__ARM_ARCH_6M__)
    const uintptr_t addresses = (uintptr_t)in | (uintptr_t)window | (uintptr_t)work | (uintptr_t)out;
    if (window != NULL && (addresses & 3U) == 0U) {
        es_rfft_m0_radix2(in, window, work, ES_RFFT_RADIX2_TW);
        es_rfft_m0_stage1(work, ES_RFFT_STAGE1_TW);
        es_rfft_m0_stage2(work, ES_RFFT_STAGE2_TW);
        es_rfft_m0_stage3(work, out, LAST_BIN);
        split_ends(out);
        es_rfft_m0_split(out, ES_RFFT_SPLIT_A);
        return;
    }
#endif
    if (window != NULL) {
        radix2_pass(in, window, work);
    } else {
        radix2_pass(in, NULL, work);
    }
    radix4_stages(work, out);
    split_ends(out);
    split_pairs(out);
}
