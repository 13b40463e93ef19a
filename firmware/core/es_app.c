/* es_app.c — the device application (see es_app.h). */
#include "es_app.h"

#include <string.h>

#include "es_model.h"

EsStatus es_app_detector_config(EsDetectorConfig *out)
{
    if (out == NULL) {
        return ES_ERR_ARG;
    }
    const EsModelPolicy *p = &es_model_policy;
    memset(out, 0, sizeof *out);
    out->n_labels = es_model_info.n_labels;
    out->average_window_ms = p->average_window_ms;
    out->min_count = p->min_count;
    out->suppression_ms = p->suppression_ms;
    out->ignore_mask = p->ignore_mask;
    out->max_history = p->max_history;
    for (uint16_t i = 0; i < es_model_info.n_labels && i < ES_DETECTOR_MAX_LABELS; i++) {
        out->thresholds[i] = p->thresholds[i];
    }
    return ES_OK;
}

EsStatus es_app_init(EsApp *app, const EsPort *port, const EsAppConfig *cfg,
                     const EsDetectorConfig *det)
{
    if (app == NULL || port == NULL || cfg == NULL || port->write_line == NULL ||
        port->read_byte == NULL || port->now_us == NULL || cfg->status_ms == 0u) {
        return ES_ERR_ARG;
    }
    EsDetectorConfig own;
    if (det == NULL) {
        (void)es_app_detector_config(&own);
        det = &own;
    }
    memset(app, 0, sizeof *app);
    app->port = *port;
    app->cfg = *cfg;
    app->mode = ES_MODE_DETECT;
    es_cmd_reader_init(&app->cmd);
    return es_pipeline_init(&app->pipe, det);
}

/* Send app->line as formatted (st: the formatter's status). */
static void send(EsApp *app, EsStatus st)
{
    if (st != ES_OK || !app->port.write_line(app->port.ctx, app->line, strlen(app->line))) {
        app->lines_unsent++; /* a board never blocks on a host that is not reading */
    }
}

void es_app_hello(EsApp *app)
{
    EsHello h = {.fw = ES_APP_FW, .board = app->cfg.board, .model_sha256 = es_model_info.sha256,
                 .labels = es_model_info.labels, .n_labels = es_model_info.n_labels,
                 .rate = ES_APP_RATE, .mode = app->mode};
    memcpy(h.id, app->cfg.id, sizeof h.id);
    size_t len = 0;
    send(app, es_proto_hello(&h, app->line, sizeof app->line, &len));
}

static void err(EsApp *app, const char *code, const char *msg)
{
    size_t len = 0;
    send(app, es_proto_err(code, msg, app->line, sizeof app->line, &len));
}

static void command(EsApp *app, const EsCommand *c)
{
    size_t len = 0;
    if (c->kind == ES_CMD_HELLO) {
        es_app_hello(app);
    } else if (c->kind == ES_CMD_MODE) {
        app->mode = c->mode;
        app->seq = 0;
        send(app, es_proto_ok(app->mode, app->line, sizeof app->line, &len));
        es_app_hello(app);
    } else if (c->kind == ES_CMD_BAD) {
        err(app, "bad_cmd", "unknown command");
    } else if (c->kind == ES_CMD_TOO_LONG) {
        err(app, "too_long", "command line too long");
    }
}

void es_app_poll(EsApp *app)
{
    for (int b = app->port.read_byte(app->port.ctx); b >= 0; b = app->port.read_byte(app->port.ctx)) {
        EsCommand c = {.kind = ES_CMD_NONE};
        if (es_cmd_reader_feed(&app->cmd, (char)b, &c) == ES_OK) {
            command(app, &c);
        }
    }
}

/* Best level among labels that can fire: the LED's brightness. */
static uint16_t best_level(const EsApp *app)
{
    uint16_t best = 0;
    for (uint16_t i = 0; i < es_model_info.n_labels; i++) {
        bool can_fire = ((app->pipe.det.cfg.ignore_mask >> i) & 1u) == 0u;
        if (can_fire && app->pipe.levels[i] > best) {
            best = app->pipe.levels[i];
        }
    }
    return best;
}

static void det_line(EsApp *app, const EsDetection *d)
{
    /* mean score in thousandths, rounded: level_sum / (256 * count) */
    uint32_t den = (uint32_t)ES_LEVEL_ONE * d->count;
    uint32_t milli = (uint32_t)(((uint64_t)d->level_sum * 1000u + den / 2u) / den);
    size_t len = 0;
    send(app, es_proto_det(d->t_ms, es_model_info.labels[d->index], milli > 1000u ? 1000u : milli,
                           app->line, sizeof app->line, &len));
}

static EsStatus detect_block(EsApp *app, const int16_t *block)
{
    size_t len = 0;
    EsStatus st = es_pipeline_push_block(&app->pipe, block, app->t_ms, &app->det, &app->fired);
    if (st != ES_OK) {
        err(app, "model", es_status_str(st));
        return st;
    }
    send(app, es_proto_scores(app->t_ms, app->pipe.levels, es_model_info.n_labels, app->line,
                              sizeof app->line, &len));
    if (app->port.led != NULL) {
        app->port.led(app->port.ctx, best_level(app));
    }
    if (app->fired) {
        det_line(app, &app->det);
    }
    return ES_OK;
}

static void raw_block(EsApp *app, const int16_t *block)
{
    for (size_t off = 0; off < ES_BLOCK; off += ES_PROTO_AUDIO_MAX) {
        size_t len = 0;
        send(app, es_proto_audio(app->seq++, &block[off], ES_PROTO_AUDIO_MAX, app->line,
                                 sizeof app->line, &len));
    }
}

static void maybe_status(EsApp *app)
{
    uint32_t period_ms = app->t_ms - app->last_status_ms;
    if (period_ms < app->cfg.status_ms) {
        return;
    }
    uint64_t cpu = app->busy_us * 100u / ((uint64_t)period_ms * 1000u);
    EsHealth h = {.t_ms = app->t_ms, .loop_us = app->worst_us,
                  .cpu = cpu > 100u ? 100u : (uint32_t)cpu, .dropped = app->dropped,
                  .mode = app->mode};
    app->last_status_ms = app->t_ms;
    app->worst_us = 0;
    app->busy_us = 0;
    size_t len = 0;
    send(app, es_proto_health(&h, app->line, sizeof app->line, &len));
}

EsStatus es_app_block(EsApp *app, const int16_t block[ES_BLOCK], uint32_t lost)
{
    if (app == NULL || block == NULL) {
        return ES_ERR_ARG;
    }
    uint32_t t0 = app->port.now_us(app->port.ctx);
    app->dropped += lost;
    app->t_ms += (lost + 1u) * ES_APP_BLOCK_MS;
    app->fired = false;
    EsStatus st = ES_OK;
    if (app->mode == ES_MODE_RAW) {
        raw_block(app, block);
    } else {
        st = detect_block(app, block);
    }
    uint32_t dt = app->port.now_us(app->port.ctx) - t0;
    app->busy_us += dt;
    app->worst_us = dt > app->worst_us ? dt : app->worst_us;
    maybe_status(app);
    return st;
}
