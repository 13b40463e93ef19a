/*
 * es_detector.h — the recogniser: per-inference scores in, at most one detection per event out.
 *
 * The C port of earshot/detector.py, with scores as integer levels of 1/256 (0..256): an int8
 * softmax or logistic output (scale 1/256, zero point -128) is level = q + 128; for a binary
 * sigmoid model the negative label's level is 256 - positive. Thresholds are levels too
 * (threshold t fires when mean >= t / 256). Rules, for each es_detector_update(t_ms, levels):
 *
 *  1. t_ms must not go backwards (ES_ERR_TIME, state unchanged); one level per label
 *     (ES_ERR_SHAPE), each <= 256 (ES_ERR_RANGE).
 *  2. The history keeps results with t_ms - t < average_window_ms, at most max_history of them
 *     (oldest dropped first).
 *  3. Per label, sum of levels over the history; the candidate is the label with the highest sum
 *     (ties: lower index), skipping labels in ignore_mask.
 *  4. Fires when sum >= threshold * count, count >= min_count, and no detection fired in the last
 *     suppression_ms (t_ms - last_fire >= suppression_ms).
 *
 * Integer sums make rule 4 exact, which is how this matches the Python detector bit for bit.
 */
#ifndef ES_DETECTOR_H
#define ES_DETECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "es_common.h"

#define ES_DETECTOR_MAX_LABELS 32  /* labels (bits of ignore_mask) */
#define ES_DETECTOR_MAX_HISTORY 32 /* remembered results (fixed array) */
#define ES_LEVEL_ONE 256           /* the level of probability 1.0 */

typedef struct {
    uint16_t n_labels;                              /* labels, 1..ES_DETECTOR_MAX_LABELS */
    uint16_t thresholds[ES_DETECTOR_MAX_LABELS];    /* per-label threshold level, 0..256 */
    uint32_t average_window_ms;                     /* averaging window (ms, > 0) */
    uint16_t min_count;                             /* results needed in the window (>= 1) */
    uint32_t suppression_ms;                        /* refractory time after a detection (ms) */
    uint32_t ignore_mask;                           /* bit i set: label i never fires */
    uint16_t max_history;                           /* 1..ES_DETECTOR_MAX_HISTORY */
} EsDetectorConfig;

typedef struct {
    uint16_t index;     /* label index in model output order */
    uint32_t t_ms;      /* time of the result that fired */
    uint32_t level_sum; /* sum of the label's levels over the history */
    uint16_t count;     /* results in the history: mean score = level_sum / (256 * count) */
} EsDetection;

typedef struct {
    uint32_t t_ms;                              /* when the result arrived */
    uint16_t levels[ES_DETECTOR_MAX_LABELS];    /* its scores */
} EsDetectorEntry;

typedef struct {
    EsDetectorConfig cfg;                           /* settings, copied at init */
    EsDetectorEntry history[ES_DETECTOR_MAX_HISTORY]; /* ring, oldest at head */
    uint16_t head;                                  /* index of the oldest entry */
    uint16_t count;                                 /* entries in the ring */
    bool have_last;                                 /* a result has been seen */
    uint32_t last_t_ms;                             /* time of the latest result */
    bool have_fired;                                /* a detection has fired */
    uint32_t last_fire_ms;                          /* time of the latest detection */
} EsDetector;

/* Check cfg and reset. ES_ERR_ARG: NULL, or a setting out of its range (see EsDetectorConfig). */
EsStatus es_detector_init(EsDetector *d, const EsDetectorConfig *cfg);

/* Forget the history and the last detection; keep the config. ES_ERR_ARG: d NULL. */
EsStatus es_detector_reset(EsDetector *d);

/*
 * One result: n_levels levels at t_ms. *fired says whether a detection fired; if so *out holds
 * it. Errors (state unchanged): ES_ERR_ARG NULL pointers, ES_ERR_SHAPE n_levels != n_labels,
 * ES_ERR_RANGE a level > 256, ES_ERR_TIME t_ms before the previous result.
 */
EsStatus es_detector_update(EsDetector *d, uint32_t t_ms, const uint16_t *levels,
                            uint16_t n_levels, EsDetection *out, bool *fired);

#endif /* ES_DETECTOR_H */
