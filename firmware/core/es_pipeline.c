/* es_pipeline.c — the block loop (see es_pipeline.h). */
#include "es_pipeline.h"

#include <string.h>

static EsStatus check_model(const EsDetectorConfig *cfg)
{
    const EsModelInfo *m = &es_model_info;
    if (m->input_frames != ES_FRAMES || m->input_bins != ES_BINS) {
        return ES_ERR_SHAPE;
    }
    if (m->stream_rows != 0 && m->stream_rows != ES_FRAMES_PER_BLOCK) {
        return ES_ERR_SHAPE; /* compiled for another block size: earshot-train compile --stream-rows */
    }
    if (m->n_labels != cfg->n_labels || m->n_labels > ES_DETECTOR_MAX_LABELS) {
        return ES_ERR_SHAPE;
    }
    const bool softmax = m->n_outputs == m->n_labels;
    const bool sigmoid = m->n_outputs == 1U && m->n_labels == 2U;
    if (!softmax && !sigmoid) {
        return ES_ERR_SHAPE;
    }
    /* TFLite's int8 SOFTMAX and LOGISTIC outputs are always quantised this way */
    if (m->output_scale != 1.0f / 256.0f || m->output_zero_point != -128) {
        return ES_ERR_UNSUPPORTED;
    }
    return ES_OK;
}

/* Magnitudes -> the model's int8 input: q15log breakpoints, or the q15 multiplier's table. */
static EsStatus quantize(const EsPipeline *p, const int16_t *mag, size_t n, int8_t *out)
{
    const EsModelInfo *m = &es_model_info;
    if (m->input_log_count != 0U) {
        return es_log_quant_apply(&p->log_quant, mag, n, out);
    }
    return es_quant_table_apply(&p->quant, mag, n, out);
}

EsStatus es_pipeline_init(EsPipeline *p, const EsDetectorConfig *cfg)
{
    if (p == NULL || cfg == NULL) {
        return ES_ERR_ARG;
    }
    EsStatus st = check_model(cfg);
    if (st != ES_OK) {
        return st;
    }
    memset(p, 0, sizeof *p);
    st = es_frontend_init(&p->fe);
    if (st != ES_OK) {
        return st;
    }
    st = es_detector_init(&p->det, cfg);
    if (st != ES_OK) {
        return st;
    }
    if (es_model_info.input_log_count == 0U) {
        st = es_quant_table_init(&p->quant, es_model_info.input_multiplier,
                                 es_model_info.input_shift, es_model_info.input_zero_point);
    } else {
        st = es_log_quant_init(&p->log_quant, es_model_info.input_log_starts,
                               es_model_info.input_log_values, es_model_info.input_log_count);
    }
    if (st != ES_OK) {
        return st;
    }
    /* the spectrogram before the stream is all zeros; quantise one zero for its int8 value */
    const int16_t zero = 0;
    int8_t q0;
    st = quantize(p, &zero, 1, &q0);
    if (st != ES_OK) {
        return st;
    }
    memset(p->input, (unsigned char)q0, sizeof p->input);
    return ES_OK;
}

/* Raw int8 outputs -> levels of 1/256 per label. */
static void outputs_to_levels(EsPipeline *p)
{
    const EsModelInfo *m = &es_model_info;
    if (m->n_outputs == 1U && m->n_labels == 2U) {
        const uint16_t pos = (uint16_t)(p->output[0] + 128);
        p->levels[0] = (uint16_t)(ES_LEVEL_ONE - pos);
        p->levels[1] = pos;
        return;
    }
    for (uint16_t i = 0; i < m->n_outputs; i++) {
        p->levels[i] = (uint16_t)(p->output[i] + 128);
    }
}

/*
 * memmove(dst, src, n) for dst <= src (moving the model input up by one block, ~15.5 KB per
 * block). On the Cortex-M0+ a 48-byte LDM/STM loop (two 6-register pairs) where both are
 * word-aligned: ~0.65 cycles per byte against ~1.4 for newlib's memmove; the rest by memmove.
 * Kept out of line so the benchmark counts it.
 */
#if defined(__GNUC__)
__attribute__((noinline, noclone))
#endif
static void shift_input(int8_t *dst, const int8_t *src, size_t n)
{
#if defined(__ARM_ARCH_6M__)
    const size_t bulk = n - n % 48U;
    if (bulk != 0U && dst <= src && (((uintptr_t)dst | (uintptr_t)src) & 3U) == 0U) {
        const int8_t *end = src + bulk;
        __asm__ volatile("1:\n\t"
                         "ldmia %[s]!, {r0, r1, r2, r3, r4, r5}\n\t"
                         "stmia %[d]!, {r0, r1, r2, r3, r4, r5}\n\t"
                         "ldmia %[s]!, {r0, r1, r2, r3, r4, r5}\n\t"
                         "stmia %[d]!, {r0, r1, r2, r3, r4, r5}\n\t"
                         "cmp %[s], %[e]\n\t"
                         "bne 1b\n\t"
                         : [d] "+l"(dst), [s] "+l"(src)
                         : [e] "h"(end)
                         : "r0", "r1", "r2", "r3", "r4", "r5", "cc", "memory");
        n -= bulk;
    }
#endif
    memmove(dst, src, n);
}

EsStatus es_pipeline_push_block(EsPipeline *p, const int16_t block[ES_BLOCK], uint32_t t_ms,
                                EsDetection *out, bool *fired)
{
    if (p == NULL || block == NULL || out == NULL || fired == NULL) {
        return ES_ERR_ARG;
    }
    *fired = false;
    if (p->det.have_last && t_ms < p->det.last_t_ms) {
        return ES_ERR_TIME; /* before any work, so the stream state stays consistent */
    }
    EsStatus st = es_frontend_push_block(&p->fe, block, p->frames);
    if (st != ES_OK) {
        return st;
    }
    const size_t fresh = ES_FRAMES_PER_BLOCK * ES_BINS;
    /* from here until the model has run, its kept rows no longer match the input */
    const bool stream = p->model_in_step;
    p->model_in_step = false;
    shift_input(p->input, p->input + fresh, ES_INPUT_SIZE - fresh);
    st = quantize(p, &p->frames[0][0], fresh, p->input + ES_INPUT_SIZE - fresh);
    if (st != ES_OK) {
        return st;
    }
    /* after a successful run the input is the previous one moved up by exactly one block, so
       the model need compute only what the new frames change; otherwise (first block, or an
       error in between) it runs whole */
    st = stream ? es_model_invoke_stream(p->input, p->output)
                : es_model_invoke(p->input, p->output);
    if (st != ES_OK) {
        return st;
    }
    p->model_in_step = true;
    outputs_to_levels(p);
    p->blocks++;
    return es_detector_update(&p->det, t_ms, p->levels, es_model_info.n_labels, out, fired);
}
