/*
 * es_protocol.h — the Pico -> host serial protocol, version 1 (docs/serial-protocol.md).
 *
 * Formatters write one whole line, newline included and NUL-terminated, into a caller buffer;
 * the command reader turns host bytes into commands one character at a time (USB CDC delivers
 * bytes as they come). No malloc, no printf, no floating point: fine for a Cortex-M0+.
 * docs/serial-protocol-examples.txt holds the lines these functions must produce byte for byte.
 */
#ifndef ES_PROTOCOL_H
#define ES_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "es_common.h"

#define ES_PROTO_VERSION 1
#define ES_PROTO_MAX_LINE 1024   /* longest line, newline included (bytes) */
#define ES_PROTO_MAX_CMD 64      /* longest command line, newline included (bytes) */
#define ES_PROTO_AUDIO_MAX 256   /* most samples in one AUD frame */
#define ES_PROTO_ID_BYTES 8      /* the flash chip's unique id */

typedef enum { ES_MODE_DETECT = 0, ES_MODE_RAW = 1 } EsMode;

typedef struct {
    const char *fw;                  /* firmware version, "1.2.3" */
    const char *board;               /* board name, no spaces */
    uint8_t id[ES_PROTO_ID_BYTES];   /* unique board id, printed as 16 upper-case hex digits */
    const char *model_sha256;        /* 64 lower-case hex digits */
    const char *const *labels;       /* label names in output order */
    uint16_t n_labels;               /* entries in labels (>= 1) */
    uint32_t rate;                   /* sample rate, Hz */
    EsMode mode;                     /* current mode */
} EsHello;

typedef struct {
    uint32_t t_ms;     /* device time, ms since boot */
    uint32_t loop_us;  /* worst block-loop time in the period, us */
    uint32_t cpu;      /* percent of the period spent in the loop, 0..100 */
    uint32_t dropped;  /* audio blocks lost since boot */
    EsMode mode;       /* current mode */
} EsHealth;

typedef enum {
    ES_CMD_NONE = 0,  /* no complete line yet */
    ES_CMD_HELLO,     /* "ES1 CMD hello" */
    ES_CMD_MODE,      /* "ES1 CMD mode=detect|raw" */
    ES_CMD_BAD,       /* a complete line that is not a known command (answer: ERR bad_cmd) */
    ES_CMD_TOO_LONG   /* a line longer than ES_PROTO_MAX_CMD was skipped (answer: ERR too_long) */
} EsCmdKind;

typedef struct {
    EsCmdKind kind;  /* what the host asked for */
    EsMode mode;     /* for ES_CMD_MODE */
} EsCommand;

typedef struct {
    char buf[ES_PROTO_MAX_CMD]; /* the command line being received */
    size_t len;                 /* bytes in buf */
    bool discarding;            /* an over-long line is being skipped up to its newline */
} EsCmdReader;

/*
 * Every formatter: out/cap is the caller's buffer, *len gets the line length (without the NUL).
 * ES_ERR_ARG: NULL pointers, or a value that would break the line syntax (a space in a label, a
 * score above 1000, n outside 1..ES_PROTO_AUDIO_MAX). ES_ERR_SHAPE: the buffer is too small
 * (out is then ""; ES_PROTO_MAX_LINE + 1 bytes always suffice for a valid line).
 */
EsStatus es_proto_hello(const EsHello *h, char *out, size_t cap, size_t *len);
/* score_milli: the averaged score in thousandths, 0..1000, printed as 0.871 */
EsStatus es_proto_det(uint32_t t_ms, const char *label, uint32_t score_milli, char *out,
                      size_t cap, size_t *len);
/* q: per-label scores in levels of 1/256, each 0..256 */
EsStatus es_proto_scores(uint32_t t_ms, const uint16_t *q, size_t n, char *out, size_t cap,
                         size_t *len);
EsStatus es_proto_health(const EsHealth *s, char *out, size_t cap, size_t *len);
/* code: [a-z0-9_]+; msg: free text, control characters are printed as '?' */
EsStatus es_proto_err(const char *code, const char *msg, char *out, size_t cap, size_t *len);
EsStatus es_proto_ok(EsMode mode, char *out, size_t cap, size_t *len);
/* One AUD frame: n (1..256) samples of int16 PCM, sent little-endian in base64 with a CRC. */
EsStatus es_proto_audio(uint32_t seq, const int16_t *pcm, size_t n, char *out, size_t cap,
                        size_t *len);

/* CRC-16/CCITT-FALSE (poly 0x1021, MSB first, no final xor); start with crc = 0xFFFF. */
uint16_t es_proto_crc16(const uint8_t *data, size_t n, uint16_t crc);

/* Parse one command line (without newline). ES_ERR_ARG for anything but a known command. */
EsStatus es_proto_parse_command(const char *line, size_t n, EsCommand *cmd);

/* Start (or restart) a command reader. ES_ERR_ARG: NULL. */
EsStatus es_cmd_reader_init(EsCmdReader *r);

/*
 * Feed one received byte. *cmd gets ES_CMD_NONE while a line is incomplete; at its newline, the
 * command, or ES_CMD_BAD / ES_CMD_TOO_LONG. The reader is then ready for the next line. '\r' and
 * empty lines are ignored. ES_ERR_ARG: NULL pointers.
 */
EsStatus es_cmd_reader_feed(EsCmdReader *r, char c, EsCommand *cmd);

#endif /* ES_PROTOCOL_H */
