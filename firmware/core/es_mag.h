/*
 * es_mag.h — CMSIS-DSP's arm_cmplx_mag_q15, bit for bit, without 64-bit multiplies.
 *
 * CMSIS-DSP 1.10.3's arm_cmplx_mag_q15 (plain-C path, as the Python package and our builds
 * compile it) computes per complex pair
 *     x = ((uint32_t)(re * re) + (uint32_t)(im * im)) >> 1      (0 <= x <= 2^30)
 *     out = arm_sqrt_q31(x) >> 16
 * and arm_sqrt_q31 runs three Newton steps on 1/sqrt with q63 products: ten 64-bit multiplies
 * per bin, each a ~30-cycle __aeabi_lmul call on the Cortex-M0+ (no UMULL), plus a bit-by-bit
 * CLZ loop. Its output is floor(sqrt(x / 2)) except right next to the points x = 2 E^2, where
 * the Newton result lands one below or above: checked over every x, the exceptions are
 * x - 2 E^2 in [0, 5] (CMSIS gives E - 1) and in [-4, -1] (CMSIS gives E), and below
 * E = 8192 only x = 2 E^2 itself.
 *
 * es_mag_from_power(x) = arm_sqrt_q31(x) >> 16 for every x in [0, 2^30]: a table-interpolated
 * square root exact to one step, corrected to floor(sqrt(x / 2)) with one square; inside the
 * exception windows a 32-bit-only replay of arm_sqrt_q31's own arithmetic (16-bit halves) for
 * E >= 256, a bitmap of the x = 2 E^2 cases below. Only shifts, adds, compares and 32 x 32 ->
 * 32-bit multiplies (one MULS each on the M0+): no 64-bit multiply, no divide, no float.
 * tests/test_firmware_mag.py proves the equality over all 2^30 + 1 inputs against the
 * CMSIS-DSP C sources; since the output depends on (re, im) only through x, that covers
 * every input pair.
 */
#ifndef ES_MAG_H
#define ES_MAG_H

#include <stdint.h>

#include "arm_math.h"
#include "es_common.h"

#define ES_MAG_MAX_POWER (UINT32_C(1) << 30) /* largest x = (re^2 + im^2) >> 1: both -32768 */

/*
 * arm_cmplx_mag_q15(src, dst, n), bit for bit: src holds n (re, im) pairs (2n values),
 * dst gets n magnitudes. ES_ERR_ARG: src or dst NULL.
 */
EsStatus es_cmplx_mag_q15(const q15_t *src, q15_t *dst, uint32_t n);

/*
 * (q15_t)(arm_sqrt_q31(x) >> 16) for x in [0, ES_MAG_MAX_POWER], the per-bin step of the
 * above; larger x are clamped to ES_MAG_MAX_POWER (arm_cmplx_mag_q15 never produces them).
 */
q15_t es_mag_from_power(uint32_t x);

#endif /* ES_MAG_H */
