/*
 * es_lmul_m0.c — the low 64 bits of a 64 x 64-bit product for Cortex-M0/M0+ (ARMv6-M) builds.
 *
 * ARMv6-M has no UMULL: its only multiply is MULS, 32 x 32 -> low 32 bits (one cycle on the
 * RP2040's M0+). gcc turns every `(int64_t)a * b` into a call to the run-time helper
 * __aeabi_lmul, and libgcc's generic one (__muldi3) costs ~57 cycles; CMSIS-DSP's arm_sqrt_q31
 * makes ten such calls per square root, ~4,450 per 512-sample block of the q15 front end.
 * This file provides __aeabi_lmul from 16-bit halves with seven MULS: portable C (the
 * reference, also what the host tests compile) and, on ARMv6-M, the same steps scheduled by
 * hand in Thumb-1 (25 instructions, no calls). The low 64 bits of a product are the same for
 * signed and unsigned operands (two's complement), so one function serves both.
 *
 * Linked only into the bare-metal Cortex-M0+ image (firmware/CMakeLists.txt, es_image when
 * ES_CPU is cortex-m0plus). The pico-sdk board build must not link it: pico-sdk's
 * pico_int64_ops already replaces __aeabi_lmul (by -Wl,--wrap) with its own fast version.
 * Cortex-M4/M7 multiply 64-bit inline with UMULL/UMLAL and never call the helper.
 *
 * Tests (tests/test_int64_helper.py): the C compiled on the host with -DES_LMUL_NAME=es_lmul
 * against the plain uint64 product on edge values and 4 million random pairs; the Thumb-1 and
 * (-DES_LMUL_PORTABLE) the C cross-compiled and run in unicorn on edge and random pairs.
 */
#include <stdint.h>

#ifndef ES_LMUL_NAME
#if !defined(__ARM_ARCH_6M__)
#error "es_lmul_m0.c defines __aeabi_lmul for ARMv6-M only; elsewhere pass -DES_LMUL_NAME=<name>"
#endif
#define ES_LMUL_NAME __aeabi_lmul
#endif

uint64_t ES_LMUL_NAME(uint64_t a, uint64_t b);

#if defined(__ARM_ARCH_6M__) && !defined(ES_LMUL_PORTABLE)
/*
 * The device version: the C below, scheduled by hand (gcc -O2 spends 5 saved registers and
 * ~42 cycles on it; this is 25 instructions, ~31 cycles on the M0+ with the return).
 * a = r1:r0, b = r3:r2, product in r1:r0 (AAPCS). tests/test_int64_helper.py runs this code
 * in unicorn against Python's product on edge and random pairs, and the C on the host.
 */
__attribute__((naked)) uint64_t ES_LMUL_NAME(uint64_t a __attribute__((unused)),
                                             uint64_t b __attribute__((unused)))
{
    __asm volatile(
        ".syntax unified\n\t"      /* gcc's Thumb-1 output is in divided syntax */
        "muls  r1, r2\n\t"          /* r1 = ah * bl (low 32 bits: all that is kept) */
        "muls  r3, r0\n\t"          /* r3 = bh * al */
        "adds  r1, r1, r3\n\t"      /* r1 = high word, so far */
        "push  {r4, r5}\n\t"
        "lsrs  r3, r0, #16\n\t"     /* r3 = a1 */
        "lsrs  r4, r2, #16\n\t"     /* r4 = b1 */
        "movs  r5, r3\n\t"
        "muls  r5, r4\n\t"          /* r5 = a1 * b1, weight 2^32 */
        "adds  r1, r1, r5\n\t"
        "uxth  r0, r0\n\t"          /* r0 = a0 */
        "uxth  r2, r2\n\t"          /* r2 = b0 */
        "muls  r4, r0\n\t"          /* r4 = a0 * b1, weight 2^16 */
        "muls  r0, r2\n\t"          /* r0 = a0 * b0 */
        "muls  r3, r2\n\t"          /* r3 = a1 * b0, weight 2^16 */
        "adds  r4, r4, r3\n\t"      /* r4 = mid, carry out worth 2^48 */
        "movs  r5, #0\n\t"          /* MOVS #imm leaves C alone */
        "adcs  r5, r5\n\t"          /* r5 = that carry */
        "lsls  r5, r5, #16\n\t"
        "adds  r1, r1, r5\n\t"
        "lsls  r3, r4, #16\n\t"     /* mid << 16 ... */
        "lsrs  r4, r4, #16\n\t"     /* ... and mid >> 16 into the high word */
        "adds  r0, r0, r3\n\t"
        "adcs  r1, r4\n\t"
        "pop   {r4, r5}\n\t"
        "bx    lr\n\t"
        ".syntax divided\n");
}
#else

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
#endif
