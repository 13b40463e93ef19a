/* es_mag.c — arm_cmplx_mag_q15 without 64-bit multiplies (see es_mag.h for the contract). */
#include "es_mag.h"

#include "arm_common_tables.h"

/*
 * floor(2^19 sqrt(i)) for i = 64..256: 256 sqrt(n / 2) at n = i 2^23, the segment starts of
 * the normalised power n in [2^29, 2^31) (Q8). Interpolating between two entries never
 * overestimates (floors, and a chord under a concave curve) and is at most 0.14 below
 * sqrt(n / 2), so the estimate of floor(sqrt(x / 2)) is exact or one below.
 */
static const uint32_t SQRT_Q8[193] = {
    4194304U, 4226944U, 4259335U, 4291482U, 4323389U, 4355063U, 4386508U, 4417729U,
    4448731U, 4479518U, 4510095U, 4540467U, 4570636U, 4600608U, 4630386U, 4659973U,
    4689374U, 4718592U, 4747629U, 4776491U, 4805178U, 4833696U, 4862046U, 4890232U,
    4918257U, 4946123U, 4973832U, 5001388U, 5028793U, 5056050U, 5083160U, 5110127U,
    5136952U, 5163637U, 5190186U, 5216599U, 5242880U, 5269029U, 5295049U, 5320942U,
    5346709U, 5372353U, 5397875U, 5423277U, 5448560U, 5473727U, 5498778U, 5523716U,
    5548542U, 5573257U, 5597864U, 5622362U, 5646754U, 5671041U, 5695225U, 5719306U,
    5743287U, 5767168U, 5790950U, 5814635U, 5838224U, 5861718U, 5885118U, 5908425U,
    5931641U, 5954766U, 5977802U, 6000750U, 6023610U, 6046384U, 6069072U, 6091676U,
    6114196U, 6136633U, 6158989U, 6181264U, 6203459U, 6225575U, 6247612U, 6269572U,
    6291456U, 6313263U, 6334996U, 6356654U, 6378238U, 6399750U, 6421190U, 6442558U,
    6463856U, 6485084U, 6506242U, 6527332U, 6548355U, 6569309U, 6590197U, 6611020U,
    6631776U, 6652468U, 6673096U, 6693661U, 6714162U, 6734601U, 6754978U, 6775294U,
    6795549U, 6815744U, 6835879U, 6855955U, 6875972U, 6895931U, 6915833U, 6935678U,
    6955466U, 6975198U, 6994874U, 7014495U, 7034061U, 7053573U, 7073031U, 7092436U,
    7111788U, 7131087U, 7150335U, 7169530U, 7188674U, 7207768U, 7226811U, 7245804U,
    7264747U, 7283641U, 7302486U, 7321283U, 7340032U, 7358732U, 7377386U, 7395992U,
    7414552U, 7433065U, 7451532U, 7469954U, 7488330U, 7506661U, 7524948U, 7543190U,
    7561389U, 7579543U, 7597654U, 7615723U, 7633748U, 7651731U, 7669672U, 7687571U,
    7705428U, 7723244U, 7741019U, 7758753U, 7776447U, 7794101U, 7811715U, 7829289U,
    7846824U, 7864320U, 7881776U, 7899195U, 7916575U, 7933917U, 7951221U, 7968487U,
    7985716U, 8002908U, 8020064U, 8037182U, 8054265U, 8071311U, 8088321U, 8105295U,
    8122234U, 8139138U, 8156007U, 8172841U, 8189640U, 8206405U, 8223135U, 8239832U,
    8256495U, 8273125U, 8289721U, 8306284U, 8322813U, 8339311U, 8355775U, 8372207U,
    8388608U,
};
_Static_assert(sizeof SQRT_Q8 / sizeof SQRT_Q8[0] == 256 - 64 + 1, "one entry per segment + 1");

/* Bit E % 32 of word E / 32 is set when arm_sqrt_q31(2 E^2) >> 16 is E - 1 (E < 256). */
static const uint32_t LOW_AT_SQUARE[8] = {
    0xF9E2D8C8U, 0xD56B5C8EU, 0x1378C0D4U, 0xD9B31C4DU,
    0x5800D9B0U, 0xA3AF9D62U, 0x0BF2B079U, 0xF3E96D25U,
};
#define BITMAP_LIMIT 256U  /* E covered by LOW_AT_SQUARE */
#define CLEAN_LIMIT 8192U  /* below this E only x = 2 E^2 differs from floor(sqrt(x / 2)) */
#define NEWTON_STEPS 3     /* arm_sqrt_q31's iterations on 1/sqrt */

/* The rare path stays out of line so that the common one inlines into the loop. */
#if defined(__GNUC__)
#define ES_MAG_COLD __attribute__((noinline, cold))
#else
#define ES_MAG_COLD
#endif

/* x << 2k in [2^29, 2^31) for x in [1, 2^31), as arm_sqrt_q31 normalises; k in *pairs. */
static inline uint32_t normalise(uint32_t x, uint32_t *pairs)
{
    uint32_t k = 0;
    if ((x >> 15) == 0U) {
        x <<= 16;
        k += 8;
    }
    if ((x >> 23) == 0U) {
        x <<= 8;
        k += 4;
    }
    if ((x >> 27) == 0U) {
        x <<= 4;
        k += 2;
    }
    if ((x >> 29) == 0U) {
        x <<= 2;
        k += 1;
    }
    *pairs = k;
    return x;
}

/* Low 32 bits of (a * b) >> sh for a, b < 2^31 and sh in [1, 31], from 16-bit halves. */
static uint32_t mul_shr(uint32_t a, uint32_t b, uint32_t sh)
{
    const uint32_t ah = a >> 16, al = a & 0xFFFFU, bh = b >> 16, bl = b & 0xFFFFU;
    const uint32_t lo = al * bl;
    const uint32_t mid = ah * bl + al * bh; /* < 2^32: ah, bh < 2^15 */
    const uint32_t low = lo + (mid << 16);
    const uint32_t high = ah * bh + (mid >> 16) + (low < lo ? 1U : 0U);
    return (high << (32U - sh)) | (low >> sh);
}

/*
 * arm_sqrt_q31(x) for x in [1, 2^31): its normalisation, start table and three Newton steps
 * on 1/sqrt in Q28 with the same truncations, each q63 product replaced by mul_shr. Every
 * intermediate stays in [0, 2^31), where the two agree (the exhaustive test is the proof).
 */
ES_MAG_COLD static uint32_t sqrt_q31_replay(uint32_t x)
{
    uint32_t pairs;
    const uint32_t n = normalise(x, &pairs);
    uint32_t v = (uint32_t)sqrt_initial_lut_q31[(n >> 26) - 8U];
    for (int step = 0; step < NEWTON_STEPS; step++) {
        uint32_t t = mul_shr(v, v, 28);
        t = 0x30000000U - mul_shr(n, t, 31);
        v = mul_shr(v, t, 29);
    }
    return mul_shr(n, v, 28) >> pairs;
}

/* Bit r of LOW_AT_SQUARE: 1 when arm_sqrt_q31(2 r^2) >> 16 is r - 1 (r < BITMAP_LIMIT). */
static inline uint32_t low_at_square(uint32_t r)
{
    return (LOW_AT_SQUARE[r >> 5] >> (r & 31U)) & 1U;
}

static inline q15_t mag_from_power(uint32_t x)
{
    if (x == 0U) {
        return 0;
    }
    uint32_t pairs;
    const uint32_t n = normalise(x, &pairs);
    const uint32_t *seg = &SQRT_Q8[(n >> 23) - 64U];  /* n >> 23 in [64, 256) */
    const uint32_t frac = (n >> 7) & 0xFFFFU;
    uint32_t r = (seg[0] + (((seg[1] - seg[0]) * frac) >> 16)) >> (pairs + 8U);
    /* r is floor(sqrt(x / 2)) or one below; x in [2 r^2, 2 (r + 1)^2) settles it */
    uint32_t d0 = x - 2U * r * r;
    uint32_t w = 4U * r + 2U;
    if (d0 >= w) {
        d0 -= w;
        r++;
        w += 4U;
    }
    if (r + 1U < CLEAN_LIMIT) {
        /* below E = 8192 CMSIS differs from r only at x = 2 r^2 itself */
        if (d0 != 0U) {
            return (q15_t)r;
        }
        if (r < BITMAP_LIMIT) {
            return (q15_t)(r - low_at_square(r));
        }
    } else if (d0 >= 6U && d0 + 4U < w) {
        /* outside both windows: x - 2 r^2 in [0, 5], x - 2 (r + 1)^2 in [-4, -1] */
        return (q15_t)r;
    }
    /* inside a window (rare: at most 10 of every 4 r + 2 values of x, r >= 256) */
    return (q15_t)(sqrt_q31_replay(x) >> 16);
}

q15_t es_mag_from_power(uint32_t x)
{
    return mag_from_power(x > ES_MAG_MAX_POWER ? ES_MAG_MAX_POWER : x);
}

#if defined(__ARM_ARCH_6M__)
/* es_mag_m0.c: the loop below in Thumb-1 assembly; tables[0] SQRT_Q8, tables[1] LOW_AT_SQUARE */
void es_mag_m0(const q15_t *src, q15_t *dst, uint32_t n, const uint32_t *const tables[2]);
static const uint32_t *const M0_TABLES[2] = {SQRT_Q8, LOW_AT_SQUARE};
#endif

EsStatus es_cmplx_mag_q15(const q15_t *src, q15_t *dst, uint32_t n)
{
    if (src == NULL || dst == NULL) {
        return ES_ERR_ARG;
    }
#if defined(__ARM_ARCH_6M__)
    if (((uintptr_t)src & 3U) == 0U && ((uintptr_t)dst & 1U) == 0U) {
        es_mag_m0(src, dst, n, M0_TABLES);
        return ES_OK;
    }
#endif
    for (uint32_t i = 0; i < n; i++) {
        const int32_t re = src[2U * i];
        const int32_t im = src[2U * i + 1U];
        /* as CMSIS: each square < 2^31 as int32, the sum (up to 2^31) in uint32 */
        dst[i] = mag_from_power(((uint32_t)(re * re) + (uint32_t)(im * im)) >> 1);
    }
    return ES_OK;
}
