/*
 * es_model.h — the interface every compiled int8 model implements.
 *
 * `earshot-train compile BUNDLE` writes es_model_data.c/.h, which define es_model_info and
 * es_model_invoke for one model: its weights as const arrays, a static schedule of es_kernels
 * calls and one static arena whose offsets were planned at compile time. The pipeline codes
 * against this header only, so swapping the model is swapping one generated .c file.
 *
 * Input: input_frames x input_bins int8 values, row-major (frame-major), i.e. the model's
 * [1, frames, bins, 1] NHWC tensor. The q15 front end's magnitudes become that input with
 *   q = clamp(input_zero_point + MultiplyByQuantizedMultiplier(mag, input_multiplier,
 *             input_shift), -128, 127)
 * where (input_multiplier, input_shift) = earshot.frontends.quantize_multiplier(1/input_scale),
 * exactly earshot.frontends.q15_to_int8. A model trained on the q15log front end (input
 * ln(1 + mag)) instead has input_log_count > 0 breakpoints: q = input_log_values[j] for the last
 * j with input_log_starts[j] <= mag (es_log_quant_apply; earshot.quant.log_mag_breakpoints).
 *
 * Output: n_out int8 values (n_labels for softmax models; 1 for a binary sigmoid model, whose
 * labels are [negative, positive]); probability = (q - output_zero_point) * output_scale.
 */
#ifndef ES_MODEL_H
#define ES_MODEL_H

#include <stdint.h>

#include "es_common.h"

typedef struct {
    const char *const *labels;  /* label names, in output order */
    uint16_t n_labels;          /* entries in labels */
    uint16_t n_outputs;         /* int8 values es_model_invoke writes (n_labels, or 1 for sigmoid) */
    int16_t input_frames;       /* model input height (spectrogram frames) */
    int16_t input_bins;         /* model input width (spectrogram bins) */
    float input_scale;          /* input quantisation scale (informational; use the multiplier) */
    int32_t input_zero_point;   /* input quantisation zero point */
    int32_t input_multiplier;   /* q31 multiplier of 1/input_scale (TFLite QuantizeMultiplier) */
    int32_t input_shift;        /* its power-of-two exponent (left if > 0, right if < 0) */
    float output_scale;         /* output quantisation scale */
    int32_t output_zero_point;  /* output quantisation zero point */
    const char *sha256;         /* sha256 of the .tflite the model was compiled from (hex) */
    uint32_t arena_bytes;       /* static arena the model uses (planned peak, bytes) */
    int16_t stream_rows;        /* input rows one es_model_invoke_stream step shifts (0: none) */
    uint16_t streamed_ops;      /* ops whose earlier rows es_model_invoke_stream reuses */
    const uint16_t *input_log_starts; /* q15log: magnitudes where the int8 input changes */
    const int8_t *input_log_values;   /* q15log: the int8 input from each start on */
    uint16_t input_log_count;   /* q15log: breakpoints (1..256); 0: the q15 multiplier above */
} EsModelInfo;

extern const EsModelInfo es_model_info;

/*
 * The detector policy the model was compiled with (`earshot-train compile` emits it from the
 * bundle through earshot.detector.bundle_policy and device_policy, the daemon's detector
 * function): per-label thresholds in levels of 1/256, the labels that never fire, the timing
 * rules. es_app_detector_config (es_app.h) turns it into an EsDetectorConfig.
 */
typedef struct {
    const uint16_t *thresholds; /* n_labels threshold levels, 0..256 */
    uint32_t ignore_mask;       /* bit i set: label i never fires */
    uint32_t average_window_ms; /* averaging window (ms) */
    uint16_t min_count;         /* results needed in the window */
    uint32_t suppression_ms;    /* refractory time after a detection (ms) */
    uint16_t max_history;       /* remembered results */
} EsModelPolicy;

extern const EsModelPolicy es_model_policy;

/*
 * Run the model once. input: input_frames*input_bins int8 (not modified); output: n_outputs
 * int8. Returns ES_ERR_ARG for NULL pointers, else ES_OK. Not reentrant (one static arena).
 */
EsStatus es_model_invoke(const int8_t *input, int8_t *output);

/*
 * Run the model on an input that is the input of the previous call (to either function) moved
 * up by stream_rows rows, with stream_rows new rows at the bottom — the firmware's rolling
 * spectrogram after one block. Gives exactly es_model_invoke's output on that input, computing
 * only what the new rows change: each streamed op's output keeps the rows of the previous call,
 * moved up, and recomputes the rest (docs/compiler.md). With stream_rows 0 it is
 * es_model_invoke. Calling it after anything else (a first call, a different input) gives wrong
 * outputs: the caller makes the first call with es_model_invoke. The kept rows live in the
 * model's one static arena, so one input stream (one EsPipeline) drives a compiled model.
 */
EsStatus es_model_invoke_stream(const int8_t *input, int8_t *output);

#endif /* ES_MODEL_H */
