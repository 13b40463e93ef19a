/*
 * es_test_model.c — a tiny stand-in for a compiled model, for tests of the block loop.
 *
 * Not trained: a fixed rule that implements es_model.h, so the pipeline and the host program can
 * be tested without the trainer. Labels [background, tone]. The tone level is the loudest bin's
 * mean input level over the newest 16 frames (0.25 s): level = max_bin mean_frames (q + 128),
 * so a steady tone (a few bins near full int8 scale) scores high and silence or broadband noise
 * at moderate level scores low. Outputs are softmax-like: tone = level - 128, background =
 * 127 - level (scale 1/256, zero point -128).
 *
 * Input quantisation: scale 4.0 (magnitude 4 per step), zero point -128, so magnitude 0 is -128
 * and magnitudes >= 1020 saturate at 127. Multiplier/shift = QuantizeMultiplier(1 / 4.0).
 */
#include "es_model.h"

#define TEST_FRAMES 124
#define TEST_BINS 129
#define TEST_RECENT 16

static const char *const LABELS[] = {"background", "tone"};

const EsModelInfo es_model_info = {
    .labels = LABELS,
    .n_labels = 2,
    .n_outputs = 2,
    .input_frames = TEST_FRAMES,
    .input_bins = TEST_BINS,
    .input_scale = 4.0f,
    .input_zero_point = -128,
    .input_multiplier = 1073741824, /* 2^30: 0.25 = 0.5 * 2^-1 */
    .input_shift = -1,
    .output_scale = 1.0f / 256.0f,
    .output_zero_point = -128,
    .sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
    .arena_bytes = 0,
};

/*
 * The stand-in's detector policy, what `earshot-train compile` would emit for it from
 * earshot.detector.bundle_policy(["background", "tone"], "softmax", {"background": 0.7,
 * "tone": 0.7},
 * ignore=["background"], average_window_ms=1000, min_count=3): 0.7 rounds up to level 180
 * (179.2 / 256).
 * tests/test_firmware_app.py checks these numbers against that call.
 */
static const uint16_t THRESHOLDS[] = {180u, 180u};
const EsModelPolicy es_model_policy = {
    .thresholds = THRESHOLDS,
    .ignore_mask = 0x1u, /* background never fires */
    .average_window_ms = 1000u,
    .min_count = 3u,
    .suppression_ms = 1500u,
    .max_history = 32u,
};

EsStatus es_model_invoke(const int8_t *input, int8_t *output)
{
    if (input == 0 || output == 0) {
        return ES_ERR_ARG;
    }
    int32_t best = 0;
    for (int32_t b = 0; b < TEST_BINS; b++) {
        int32_t sum = 0;
        for (int32_t f = TEST_FRAMES - TEST_RECENT; f < TEST_FRAMES; f++) {
            sum += input[f * TEST_BINS + b] + 128;
        }
        if (sum / TEST_RECENT > best) {
            best = sum / TEST_RECENT;
        }
    }
    if (best > 255) {
        best = 255;
    }
    output[0] = (int8_t)(127 - best);
    output[1] = (int8_t)(best - 128);
    return ES_OK;
}

/* No state between calls: the streaming entry point is the plain one. */
EsStatus es_model_invoke_stream(const int8_t *input, int8_t *output)
{
    return es_model_invoke(input, output);
}
