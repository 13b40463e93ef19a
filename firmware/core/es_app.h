/*
 * es_app.h — the device application: what a board says and does, on any port.
 *
 * One implementation for the RP2040 (firmware/board/main.c), the PC simulator (pico_sim) and the
 * test driver (es_app_drive): commands in, HELLO / OK / ERR / SCORES / DET / STATUS / AUD lines
 * out (docs/serial-protocol.md), behind EsPort — write a line, read a byte, a microsecond clock,
 * the LED. The caller owns the audio: it hands es_app_block one block of ES_BLOCK samples and
 * the number of blocks it lost before it (DMA overruns on the board).
 *
 * Device time: t_ms of a block = (blocks processed + blocks lost) * 32 ms, the end of that block.
 * STATUS every status_ms of device time: loop_us the worst es_app_block time in the period, cpu
 * its busy share clamped to 0..100, dropped the audio blocks lost since start (the one meaning of
 * dropped; lines the port could not take are counted in lines_unsent, never on the wire).
 * The LED shows the best score among labels that can fire (level 0..256).
 */
#ifndef ES_APP_H
#define ES_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "es_common.h"
#include "es_detector.h"
#include "es_pipeline.h"
#include "es_protocol.h"

#define ES_APP_RATE 16000u                               /* sample rate, Hz */
#define ES_APP_BLOCK_MS (ES_BLOCK * 1000u / ES_APP_RATE) /* 32 ms */
#define ES_APP_FW "0.2.0"                                /* firmware version in HELLO */

typedef struct {
    void *ctx;                                         /* handed to every call */
    bool (*write_line)(void *ctx, const char *line, size_t len); /* false: not sent (dropped) */
    int (*read_byte)(void *ctx);                       /* a waiting command byte, or -1 */
    uint32_t (*now_us)(void *ctx);                     /* free-running us clock (may wrap) */
    void (*led)(void *ctx, uint16_t level);            /* 0..256; NULL: no LED */
} EsPort;

typedef struct {
    const char *board;              /* board name in HELLO (no spaces) */
    uint8_t id[ES_PROTO_ID_BYTES];  /* unique board id */
    uint32_t status_ms;             /* device time between STATUS lines (> 0) */
} EsAppConfig;

typedef struct {
    EsPort port;                    /* where lines go */
    EsAppConfig cfg;                /* copied at init */
    EsPipeline pipe;                /* front end, model input, detector (~22.5 KB) */
    EsCmdReader cmd;                /* command line assembler */
    EsMode mode;                    /* detect or raw */
    uint32_t seq;                   /* next AUD frame number (0 after each mode change) */
    uint32_t t_ms;                  /* device time of the latest block */
    uint32_t last_status_ms;        /* device time of the latest STATUS */
    uint32_t worst_us;              /* worst block time in the STATUS period */
    uint64_t busy_us;               /* block time in the STATUS period */
    uint32_t dropped;               /* audio blocks lost since start */
    uint32_t lines_unsent;          /* lines the port did not take */
    bool fired;                     /* the latest block fired a detection ... */
    EsDetection det;                /* ... this one */
    char line[ES_PROTO_MAX_LINE + 1];
} EsApp;

/* The detector the model was compiled with (es_model_policy). ES_ERR_ARG: out NULL. */
EsStatus es_app_detector_config(EsDetectorConfig *out);

/*
 * Start the application (detect mode, device time 0); det NULL means es_app_detector_config.
 * ES_ERR_ARG: NULL port/cfg or a port without write_line/read_byte/now_us, status_ms 0; else
 * what es_pipeline_init says. Sends nothing: call es_app_hello when the port is up.
 */
EsStatus es_app_init(EsApp *app, const EsPort *port, const EsAppConfig *cfg,
                     const EsDetectorConfig *det);

/* Send HELLO (board, id, fw, model sha256, labels, rate, mode). */
void es_app_hello(EsApp *app);

/* Read every waiting command byte and answer complete commands (HELLO, OK + HELLO, ERR). */
void es_app_poll(EsApp *app);

/*
 * One block of audio, after `lost` blocks that never arrived. Detect mode: SCORES, maybe DET,
 * LED; raw mode: ES_BLOCK / ES_PROTO_AUDIO_MAX AUD frames. Then STATUS when it is due.
 * Returns ES_OK, or the pipeline's error (also sent as ERR model).
 */
EsStatus es_app_block(EsApp *app, const int16_t block[ES_BLOCK], uint32_t lost);

#endif /* ES_APP_H */
