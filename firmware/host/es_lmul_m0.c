/*
 * es_lmul_m0.c — the low 64 bits of a 64 x 64-bit product for Cortex-M0/M0+ (ARMv6-M) builds.
 *
 * ARMv6-M has no UMULL: its only multiply is MULS, 32 x 32 -> low 32 bits (one cycle on the
 * RP2040's M0+). gcc turns every `(int64_t)a * b` into a call to the run-time helper
 * __aeabi_lmul, and libgcc's generic one (__muldi3) costs ~57 cycles; CMSIS-DSP's arm_sqrt_q31
 * makes ten such calls per square root, ~4,450 per 512-sample block of the q15 front end.
 * This file provides __aeabi_lmul from 16-bit halves with seven MULS (~31 instructions
 * at -O2, no calls). The low 64 bits of a
 * product are the same for signed and unsigned operands (two's complement), so one function
 * serves both.
 *
 * Linked only into the bare-metal Cortex-M0+ image (firmware/CMakeLists.txt, es_image when
 * ES_CPU is cortex-m0plus). The pico-sdk board build must not link it: pico-sdk's
 * pico_int64_ops already replaces __aeabi_lmul (by -Wl,--wrap) with its own fast version.
 * Cortex-M4/M7 multiply 64-bit inline with UMULL/UMLAL and never call the helper.
 *
 * Host test (tests/test_int64_helper.py): compiled with -DES_LMUL_NAME=es_lmul and compared
 * with the plain uint64 product on edge values and millions of random pairs; the same source
 * cross-compiled is run in unicorn on the same pairs.
 */
#include <stdint.h>

#ifndef ES_LMUL_NAME
#if !defined(__ARM_ARCH_6M__)
#error "es_lmul_m0.c defines __aeabi_lmul for ARMv6-M only; elsewhere pass -DES_LMUL_NAME=<name>"
#endif
#define ES_LMUL_NAME __aeabi_lmul
#endif

uint64_t ES_LMUL_NAME(uint64_t a, uint64_t b);

uint64_t ES_LMUL_NAME(uint64_t a, uint64_t b)
{
    const uint32_t al = (uint32_t)a;
    const uint32_t ah = (uint32_t)(a >> 32);
    const uint32_t bl = (uint32_t)b;
    const uint32_t bh = (uint32_t)(b >> 32);
    /* al * bl from 16-bit halves: every partial product fits 32 bits */
    const uint32_t a0 = (uint16_t)al;
    const uint32_t a1 = al >> 16;
    const uint32_t b0 = (uint16_t)bl;
    const uint32_t b1 = bl >> 16;
    const uint64_t mid = (uint64_t)(a0 * b1) + (a1 * b0);   /* 33 bits, weight 2^16 */
    /* a1 * b1 has weight 2^32; the cross terms al * bh, ah * bl too, and their own high
     * halves (weight 2^64) fall off the top, so 32-bit MULS gives exactly what is kept */
    const uint64_t outer = ((uint64_t)(a1 * b1 + al * bh + ah * bl) << 32) | (a0 * b0);
    return outer + (mid << 16);
}
