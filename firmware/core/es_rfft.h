/*
 * es_rfft.h — CMSIS-DSP's q15 window multiply and 256-point real FFT, bit for bit, faster.
 *
 * es_rfft256_q15(in, window, work, out) writes to out[0..257] exactly what
 *     arm_mult_q15(in, window, tmp, 256); arm_rfft_q15(&S, tmp, spectrum);
 * writes to spectrum[0..257] (bins 0..128 as (re, im) pairs), with S set up as
 * arm_rfft_init_q15(&S, 256, 0, 1) does (forward, bit reversal on), in CMSIS-DSP 1.10.3's
 * plain-C code paths (the ones the Python package `cmsisdsp` and every build here compile).
 * window NULL: no window (arm_rfft_q15 on in itself).
 *
 * CMSIS computes it in passes over memory: the window, a radix-2 step that halves its input
 * and splits 128 complex points into two 64-point columns, three radix-4 stages per column
 * (arm_radix4_butterfly_q15: inputs >> 2 in the first, halving adds with saturation after),
 * an output << 1, a table-driven bit-reversal permutation, and the split step that turns the
 * 128-point complex FFT into the 256-point real one. es_rfft256_q15 does the same arithmetic,
 * truncation for truncation and saturation for saturation, in five passes instead of nine:
 * the window is applied while the radix-2 step loads, the last radix-4 stage writes its
 * outputs << 1 straight to their bit-reversed places, both columns share one loop per stage
 * with the twiddles laid out in reading order (es_rfft256_q15.h), no saturation (CMSIS's
 * __SSATs never act here: every sum they guard stays below 23,200 in magnitude for any int16
 * input, bounds in tests/test_firmware_fft.py), and the split
 * step computes bins k and 128 - k together from the same four inputs with four multiplies
 * instead of sixteen (exact identities of CMSIS's split tables, checked when they are
 * generated; sums modulo 2^32 as CMSIS's int32 sums wrap). The upper half of CMSIS's output
 * (the conjugate mirror, spectrum[258..511]) is not written: the front end never reads it.
 *
 * Requirements: every window entry in [-32767, 32767] (then (x * w) >> 15 needs no saturation;
 * the Hann table is in [0, 32767]); in, work and out must not overlap. Only 32 x 32 -> 32-bit
 * multiplies, shifts and adds. On ARMv6-M (the RP2040) the passes are es_rfft_m0.c's Thumb-1
 * assembly when a window is given and every buffer is 4-byte aligned, the C passes otherwise.
 * tests/test_firmware_fft.py compares it with the CMSIS-DSP C sources on millions of frames,
 * with the Python package, and (the assembly) with CMSIS-DSP in the Cortex-M0+ emulator.
 */
#ifndef ES_RFFT_H
#define ES_RFFT_H

#include <stdint.h>

#define ES_RFFT_LEN 256                    /* real input samples */
#define ES_RFFT_OUT (ES_RFFT_LEN + 2)      /* bins 0..128 as (re, im): 258 values */

void es_rfft256_q15(const int16_t in[ES_RFFT_LEN], const int16_t *window,
                    int16_t work[ES_RFFT_LEN], int16_t out[ES_RFFT_OUT]);

#endif /* ES_RFFT_H */
