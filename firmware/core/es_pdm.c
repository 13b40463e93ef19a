/*
 * es_pdm.c — CIC + FIR decimator, PDM bits at 1.024 MHz to 16 kHz int16 PCM (see es_pdm.h).
 */
#include "es_pdm.h"

/*
 * Designed with scipy.signal.firls(95, bands, desired, weight, fs=64000): 14 passband pieces over
 * 0..7 kHz whose desired gain is 1/|H_cic(f)| (order-4, R=16 CIC at 1.024 MHz), stopband
 * 9..32 kHz with weight 3000 against 1 in the passband; rounded to q15 and the centre tap moved
 * by -4 so the taps sum to exactly 32768. tests/test_pdm.py checks the resulting response.
 */
const int16_t es_pdm_fir_taps[ES_PDM_FIR_TAPS] = {
    4, 10, 16, 17, 9, -9, -32, -47, -42, -12, 34, 74,
    83, 45, -29, -104, -135, -94, 13, 135, 204, 165, 20, -168,
    -293, -268, -77, 198, 409, 415, 172, -224, -567, -637, -335, 241,
    805, 1012, 644, -235, -1247, -1820, -1435, 116, 2581, 5290, 7392, 8180,
    7392, 5290, 2581, 116, -1435, -1820, -1247, -235, 644, 1012, 805, 241,
    -335, -637, -567, -224, 172, 415, 409, 198, -77, -268, -293, -168,
    20, 165, 204, 135, 13, -94, -135, -104, -29, 45, 83, 74,
    34, -12, -42, -47, -32, -9, 9, 17, 16, 10, 4,
};

#define ES_PDM_CIC_SHIFT 2  /* CIC output (|y| <= 2^16) -> |x| <= 2^14, so sum|c|*|x| < 2^31 */
#define ES_PDM_FIR_SHIFT 6  /* FIR sum (full scale 2^29) -> q8 PCM (full scale 2^23) */
#define ES_PDM_DC_POLE 10   /* DC blocker pole 1 - 2^-10: corner 16000/(2*pi*1024) = 2.5 Hz */

EsStatus es_pdm_init(EsPdm *pdm, const EsPdmConfig *cfg)
{
    if (pdm == NULL || cfg == NULL) {
        return ES_ERR_ARG;
    }
    if (cfg->gain_q8 < 1 || cfg->gain_q8 > ES_PDM_GAIN_MAX) {
        return ES_ERR_ARG;
    }
    *pdm = (EsPdm){.cfg = *cfg};
    return ES_OK;
}

size_t es_pdm_max_out(size_t n_words)
{
    return (n_words * 32u) / ES_PDM_DECIMATION + 1u;
}

/* One CIC output: the comb section over the integrators' current value. */
static int32_t es_pdm_comb(EsPdm *pdm)
{
    uint32_t v = pdm->integ[ES_PDM_CIC_ORDER - 1];
    for (int k = 0; k < ES_PDM_CIC_ORDER; k++) {
        uint32_t prev = pdm->comb[k];
        pdm->comb[k] = v;
        v -= prev;
    }
    return (int32_t)v; /* exact: the true value lies in [-2^16, 2^16] */
}

static int32_t es_pdm_fir(const EsPdm *pdm)
{
    /* fir_hist[pos .. pos+TAPS-1] holds the last TAPS inputs, oldest first (mirrored ring). */
    const int32_t *x = &pdm->fir_hist[pdm->fir_pos];
    int32_t acc = 0;
    for (int i = 0; i < ES_PDM_FIR_TAPS; i++) {
        acc += (int32_t)es_pdm_fir_taps[i] * x[i];
    }
    return acc;
}

static int16_t es_pdm_output(EsPdm *pdm, int32_t acc)
{
    int32_t v = acc / (1 << ES_PDM_FIR_SHIFT); /* q8 PCM, full scale 2^23 */
    if (pdm->cfg.dc_block) {
        int32_t y = v - pdm->dc_x1 + pdm->dc_y1 - pdm->dc_y1 / (1 << ES_PDM_DC_POLE);
        pdm->dc_x1 = v;
        pdm->dc_y1 = y;
        v = y;
    }
    int64_t g = ((int64_t)v * pdm->cfg.gain_q8) / (1 << 16); /* q8 * q8 -> integer PCM */
    if (g > INT16_MAX) {
        return INT16_MAX;
    }
    if (g < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)g;
}

static void es_pdm_push_cic(EsPdm *pdm, int32_t y, int16_t *out, size_t *n)
{
    uint32_t pos = pdm->fir_pos;
    int32_t x = y / (1 << ES_PDM_CIC_SHIFT);
    pdm->fir_hist[pos] = x;
    pdm->fir_hist[pos + ES_PDM_FIR_TAPS] = x;
    pdm->fir_pos = (pos + 1u) % ES_PDM_FIR_TAPS;
    pdm->fir_phase++;
    if (pdm->fir_phase == ES_PDM_FIR_RATIO) {
        pdm->fir_phase = 0;
        out[(*n)++] = es_pdm_output(pdm, es_pdm_fir(pdm));
    }
}

EsStatus es_pdm_process(EsPdm *pdm, const uint32_t *words, size_t n_words, int16_t *out,
                        size_t out_cap, size_t *n_out)
{
    if (pdm == NULL || n_out == NULL || (n_words > 0 && (words == NULL || out == NULL))) {
        return ES_ERR_ARG;
    }
    if (out_cap < es_pdm_max_out(n_words)) {
        return ES_ERR_SHAPE;
    }
    size_t n = 0;
    uint32_t i1 = pdm->integ[0], i2 = pdm->integ[1], i3 = pdm->integ[2], i4 = pdm->integ[3];
    for (size_t w = 0; w < n_words; w++) {
        uint32_t bits = words[w];
        for (int b = 31; b >= 0; b--) {
            i1 += ((bits >> b) & 1u) ? 1u : 0xFFFFFFFFu; /* +1 / -1 */
            i2 += i1;
            i3 += i2;
            i4 += i3;
            if (++pdm->cic_phase == ES_PDM_CIC_RATIO) {
                pdm->cic_phase = 0;
                pdm->integ[ES_PDM_CIC_ORDER - 1] = i4;
                es_pdm_push_cic(pdm, es_pdm_comb(pdm), out, &n);
            }
        }
    }
    pdm->integ[0] = i1;
    pdm->integ[1] = i2;
    pdm->integ[2] = i3;
    pdm->integ[3] = i4;
    *n_out = n;
    return ES_OK;
}
