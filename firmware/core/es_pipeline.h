/*
 * es_pipeline.h — the firmware's block loop: 512 PCM samples in, maybe a detection out.
 *
 * Per block (32 ms at 16 kHz): the q15 front end yields 4 new spectrogram frames; they are
 * quantised to int8 (es_quant_table_apply: es_frontend_quantize with the model's input
 * multiplier/shift/zero point, by table; for a q15log model es_log_quant_apply with its
 * breakpoints, tabled below ES_LOG_LOW)
 * and appended to the rolling int8 model input (124 x 129, oldest frame first, older frames
 * shifted out); the compiled model runs on it (es_model_invoke on the first block,
 * es_model_invoke_stream after, which recomputes only what the new frames change, exactly);
 * its int8 outputs become levels of 1/256
 * (q + 128; for a one-output sigmoid model, labels [negative, positive] get [256 - p, p]); the
 * detector decides. Until 1 s of audio has arrived, the input holds the spectrogram of silence
 * before the stream's first sample (the front end's zero tail).
 *
 * All state is in the caller's EsPipeline (about 23 KB; put it in static storage). The int16
 * spectrogram is not kept here (the model needs only int8); a debugging host keeps an
 * EsSpectrogram from p->frames after each block.
 */
#ifndef ES_PIPELINE_H
#define ES_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "es_common.h"
#include "es_detector.h"
#include "es_frontend.h"
#include "es_model.h"

#define ES_INPUT_SIZE (ES_FRAMES * ES_BINS) /* int8 model input values (15996) */

typedef struct {
    EsFrontEnd fe;                                  /* q15 front end state */
    EsDetector det;                                 /* recogniser state */
    int16_t frames[ES_FRAMES_PER_BLOCK][ES_BINS];   /* the newest block's frames (magnitudes) */
    EsQuantTable quant;                             /* the model's input quantisation, tabled */
    EsLogQuant log_quant;                           /* ... for a q15log model */
    int8_t input[ES_INPUT_SIZE] __attribute__((aligned(4))); /* rolling int8 model input
                                                                (word-aligned: see shift_input) */
    int8_t output[ES_DETECTOR_MAX_LABELS];          /* latest raw model output */
    uint16_t levels[ES_DETECTOR_MAX_LABELS];        /* latest scores, levels of 1/256 */
    uint32_t blocks;                                /* blocks processed since init */
    bool model_in_step;  /* the model's kept rows match input moved up by one block: stream */
} EsPipeline;

/*
 * Check the compiled model against the pipeline and cfg, and reset all state.
 * ES_ERR_ARG: NULL or a bad detector setting; ES_ERR_SHAPE: the model's input is not 124 x 129,
 * its label count differs from cfg->n_labels, or its output count fits neither softmax nor
 * sigmoid; ES_ERR_UNSUPPORTED: the output quantisation is not scale 1/256, zero point -128.
 */
EsStatus es_pipeline_init(EsPipeline *p, const EsDetectorConfig *cfg);

/*
 * Process one block of ES_BLOCK samples that ends at device time t_ms. *fired tells whether a
 * detection fired (then *out holds it). Errors: ES_ERR_ARG NULL pointers, ES_ERR_TIME t_ms before
 * the previous block's, or what the model returns.
 */
EsStatus es_pipeline_push_block(EsPipeline *p, const int16_t block[ES_BLOCK], uint32_t t_ms,
                                EsDetection *out, bool *fired);

#endif /* ES_PIPELINE_H */
