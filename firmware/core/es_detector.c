/* es_detector.c — the recogniser (see es_detector.h for the rules). */
#include "es_detector.h"

#include <string.h>

EsStatus es_detector_init(EsDetector *d, const EsDetectorConfig *cfg)
{
    if (d == NULL || cfg == NULL) {
        return ES_ERR_ARG;
    }
    if (cfg->n_labels < 1 || cfg->n_labels > ES_DETECTOR_MAX_LABELS) {
        return ES_ERR_ARG;
    }
    if (cfg->average_window_ms == 0 || cfg->min_count < 1) {
        return ES_ERR_ARG;
    }
    if (cfg->max_history < 1 || cfg->max_history > ES_DETECTOR_MAX_HISTORY) {
        return ES_ERR_ARG;
    }
    for (uint16_t i = 0; i < cfg->n_labels; i++) {
        if (cfg->thresholds[i] > ES_LEVEL_ONE) {
            return ES_ERR_ARG;
        }
    }
    if (cfg->n_labels < 32 && (cfg->ignore_mask >> cfg->n_labels) != 0U) {
        return ES_ERR_ARG; /* ignores a label that does not exist */
    }
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    return ES_OK;
}

EsStatus es_detector_reset(EsDetector *d)
{
    if (d == NULL) {
        return ES_ERR_ARG;
    }
    EsDetectorConfig cfg = d->cfg;
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    return ES_OK;
}

static EsDetectorEntry *entry(EsDetector *d, uint16_t i)
{
    return &d->history[(d->head + i) % ES_DETECTOR_MAX_HISTORY];
}

static void drop_oldest(EsDetector *d)
{
    d->head = (uint16_t)((d->head + 1U) % ES_DETECTOR_MAX_HISTORY);
    d->count--;
}

static void append(EsDetector *d, uint32_t t_ms, const uint16_t *levels)
{
    if (d->count == ES_DETECTOR_MAX_HISTORY) {
        drop_oldest(d);
    }
    EsDetectorEntry *e = entry(d, d->count);
    e->t_ms = t_ms;
    memcpy(e->levels, levels, d->cfg.n_labels * sizeof levels[0]);
    d->count++;
    while (d->count > 0 && t_ms - entry(d, 0)->t_ms >= d->cfg.average_window_ms) {
        drop_oldest(d);
    }
    while (d->count > d->cfg.max_history) {
        drop_oldest(d);
    }
}

/* Label with the highest sum (ties: lower index) that is not ignored; -1 if all are ignored. */
static int32_t best_label(EsDetector *d, uint32_t sums[ES_DETECTOR_MAX_LABELS])
{
    int32_t best = -1;
    for (uint16_t i = 0; i < d->cfg.n_labels; i++) {
        uint32_t s = 0;
        for (uint16_t k = 0; k < d->count; k++) {
            s += entry(d, k)->levels[i];
        }
        sums[i] = s;
        if ((d->cfg.ignore_mask >> i) & 1U) {
            continue;
        }
        if (best < 0 || s > sums[best]) {
            best = (int32_t)i;
        }
    }
    return best;
}

EsStatus es_detector_update(EsDetector *d, uint32_t t_ms, const uint16_t *levels,
                            uint16_t n_levels, EsDetection *out, bool *fired)
{
    if (d == NULL || levels == NULL || out == NULL || fired == NULL) {
        return ES_ERR_ARG;
    }
    *fired = false;
    if (n_levels != d->cfg.n_labels) {
        return ES_ERR_SHAPE;
    }
    for (uint16_t i = 0; i < n_levels; i++) {
        if (levels[i] > ES_LEVEL_ONE) {
            return ES_ERR_RANGE;
        }
    }
    if (d->have_last && t_ms < d->last_t_ms) {
        return ES_ERR_TIME;
    }
    d->have_last = true;
    d->last_t_ms = t_ms;
    append(d, t_ms, levels);

    uint32_t sums[ES_DETECTOR_MAX_LABELS];
    const int32_t best = best_label(d, sums);
    if (best < 0 || d->count < d->cfg.min_count) {
        return ES_OK;
    }
    const uint32_t b = (uint32_t)best;
    if (sums[b] < (uint32_t)d->cfg.thresholds[b] * d->count) {
        return ES_OK;
    }
    if (d->have_fired && t_ms - d->last_fire_ms < d->cfg.suppression_ms) {
        return ES_OK;
    }
    d->have_fired = true;
    d->last_fire_ms = t_ms;
    out->index = (uint16_t)b;
    out->t_ms = t_ms;
    out->level_sum = sums[b];
    out->count = d->count;
    *fired = true;
    return ES_OK;
}
