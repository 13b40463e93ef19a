/*
 * es_protocol.c — line formatters and the command reader of the serial protocol (es_protocol.h).
 */
#include "es_protocol.h"

#include <string.h>

/* A bounded line writer: every put is checked; on overflow the line is abandoned. */
typedef struct {
    char *p;
    size_t cap;
    size_t len;
    bool overflow;
} EsLine;

static const char *const es_mode_names[] = {
    [ES_MODE_DETECT] = "detect",
    [ES_MODE_RAW] = "raw",
};
_Static_assert(sizeof es_mode_names / sizeof es_mode_names[0] == ES_MODE_RAW + 1,
               "one name per EsMode");

static const char es_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char es_hex_upper[] = "0123456789ABCDEF";

static void es_put_char(EsLine *l, char c)
{
    if (l->len + 1u >= l->cap) { /* keep room for the NUL */
        l->overflow = true;
        return;
    }
    l->p[l->len++] = c;
}

static void es_put_str(EsLine *l, const char *s)
{
    while (*s != '\0') {
        es_put_char(l, *s++);
    }
}

static void es_put_u32(EsLine *l, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        es_put_char(l, digits[--n]);
    }
}

static void es_put_key(EsLine *l, const char *key)
{
    es_put_char(l, ' ');
    es_put_str(l, key);
    es_put_char(l, '=');
}

static void es_line_start(EsLine *l, char *out, size_t cap, const char *type)
{
    *l = (EsLine){.p = out, .cap = cap, .len = 0, .overflow = false};
    es_put_str(l, "ES1 ");
    es_put_str(l, type);
}

static EsStatus es_line_end(EsLine *l, size_t *len)
{
    es_put_char(l, '\n');
    if (l->overflow) {
        l->p[0] = '\0';
        *len = 0;
        return ES_ERR_SHAPE;
    }
    l->p[l->len] = '\0';
    *len = l->len;
    return ES_OK;
}

/* A token value: printable ASCII without space, comma or '=' (labels, board names). */
static bool es_is_token(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s <= ' ' || *s > '~' || *s == ',' || *s == '=') {
            return false;
        }
    }
    return true;
}

static bool es_is_sha256(const char *s)
{
    if (s == NULL || strlen(s) != 64u) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool es_valid_mode(EsMode mode)
{
    return mode == ES_MODE_DETECT || mode == ES_MODE_RAW;
}

static bool es_out_ok(const char *out, size_t cap, const size_t *len)
{
    return out != NULL && len != NULL && cap > 0u;
}

static bool es_hello_ok(const EsHello *h)
{
    if (!es_is_token(h->fw) || !es_is_token(h->board) || !es_is_sha256(h->model_sha256)) {
        return false;
    }
    if (h->labels == NULL || h->n_labels == 0u || !es_valid_mode(h->mode)) {
        return false;
    }
    for (uint16_t i = 0; i < h->n_labels; i++) {
        if (!es_is_token(h->labels[i])) {
            return false;
        }
    }
    return true;
}

EsStatus es_proto_hello(const EsHello *h, char *out, size_t cap, size_t *len)
{
    if (h == NULL || !es_out_ok(out, cap, len) || !es_hello_ok(h)) {
        return ES_ERR_ARG;
    }
    EsLine l;
    es_line_start(&l, out, cap, "HELLO");
    es_put_key(&l, "fw");
    es_put_str(&l, h->fw);
    es_put_key(&l, "board");
    es_put_str(&l, h->board);
    es_put_key(&l, "id");
    for (size_t i = 0; i < ES_PROTO_ID_BYTES; i++) {
        es_put_char(&l, es_hex_upper[h->id[i] >> 4]);
        es_put_char(&l, es_hex_upper[h->id[i] & 0x0Fu]);
    }
    es_put_key(&l, "model");
    es_put_str(&l, h->model_sha256);
    es_put_key(&l, "labels");
    for (uint16_t i = 0; i < h->n_labels; i++) {
        if (i > 0u) {
            es_put_char(&l, ',');
        }
        es_put_str(&l, h->labels[i]);
    }
    es_put_key(&l, "rate");
    es_put_u32(&l, h->rate);
    es_put_key(&l, "mode");
    es_put_str(&l, es_mode_names[h->mode]);
    return es_line_end(&l, len);
}

EsStatus es_proto_det(uint32_t t_ms, const char *label, uint32_t score_milli, char *out,
                      size_t cap, size_t *len)
{
    if (!es_out_ok(out, cap, len) || !es_is_token(label) || score_milli > 1000u) {
        return ES_ERR_ARG;
    }
    EsLine l;
    es_line_start(&l, out, cap, "DET");
    es_put_key(&l, "t");
    es_put_u32(&l, t_ms);
    es_put_key(&l, "label");
    es_put_str(&l, label);
    es_put_key(&l, "score");
    es_put_u32(&l, score_milli / 1000u);
    es_put_char(&l, '.');
    es_put_char(&l, (char)('0' + (score_milli / 100u) % 10u));
    es_put_char(&l, (char)('0' + (score_milli / 10u) % 10u));
    es_put_char(&l, (char)('0' + score_milli % 10u));
    return es_line_end(&l, len);
}

EsStatus es_proto_scores(uint32_t t_ms, const uint16_t *q, size_t n, char *out, size_t cap,
                         size_t *len)
{
    if (!es_out_ok(out, cap, len) || q == NULL || n == 0u) {
        return ES_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        if (q[i] > 256u) {
            return ES_ERR_ARG;
        }
    }
    EsLine l;
    es_line_start(&l, out, cap, "SCORES");
    es_put_key(&l, "t");
    es_put_u32(&l, t_ms);
    es_put_key(&l, "q");
    for (size_t i = 0; i < n; i++) {
        if (i > 0u) {
            es_put_char(&l, ',');
        }
        es_put_u32(&l, q[i]);
    }
    return es_line_end(&l, len);
}

EsStatus es_proto_health(const EsHealth *s, char *out, size_t cap, size_t *len)
{
    if (s == NULL || !es_out_ok(out, cap, len) || s->cpu > 100u || !es_valid_mode(s->mode)) {
        return ES_ERR_ARG;
    }
    EsLine l;
    es_line_start(&l, out, cap, "STATUS");
    es_put_key(&l, "t");
    es_put_u32(&l, s->t_ms);
    es_put_key(&l, "loop_us");
    es_put_u32(&l, s->loop_us);
    es_put_key(&l, "cpu");
    es_put_u32(&l, s->cpu);
    es_put_key(&l, "dropped");
    es_put_u32(&l, s->dropped);
    es_put_key(&l, "mode");
    es_put_str(&l, es_mode_names[s->mode]);
    return es_line_end(&l, len);
}

static bool es_is_code(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 16u) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) {
            return false;
        }
    }
    return true;
}

EsStatus es_proto_err(const char *code, const char *msg, char *out, size_t cap, size_t *len)
{
    if (!es_out_ok(out, cap, len) || !es_is_code(code) || msg == NULL) {
        return ES_ERR_ARG;
    }
    EsLine l;
    es_line_start(&l, out, cap, "ERR");
    es_put_key(&l, "code");
    es_put_str(&l, code);
    es_put_key(&l, "msg");
    for (; *msg != '\0'; msg++) {
        es_put_char(&l, (*msg < ' ' || *msg > '~') ? '?' : *msg);
    }
    return es_line_end(&l, len);
}

EsStatus es_proto_ok(EsMode mode, char *out, size_t cap, size_t *len)
{
    if (!es_out_ok(out, cap, len) || !es_valid_mode(mode)) {
        return ES_ERR_ARG;
    }
    EsLine l;
    es_line_start(&l, out, cap, "OK");
    es_put_key(&l, "mode");
    es_put_str(&l, es_mode_names[mode]);
    return es_line_end(&l, len);
}

uint16_t es_proto_crc16(const uint8_t *data, size_t n, uint16_t crc)
{
    if (data == NULL) {
        return crc;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)crc ^ ((uint32_t)data[i] << 8);
        for (int b = 0; b < 8; b++) {
            c = (c & 0x8000u) ? ((c << 1) ^ 0x1021u) : (c << 1);
        }
        crc = (uint16_t)(c & 0xFFFFu);
    }
    return crc;
}

/* Base64 of up to three bytes (n = 1..3), '=' padded to four characters. */
static void es_put_b64(EsLine *l, const uint8_t *b, size_t n)
{
    uint32_t v = (uint32_t)b[0] << 16;
    if (n > 1u) {
        v |= (uint32_t)b[1] << 8;
    }
    if (n > 2u) {
        v |= b[2];
    }
    es_put_char(l, es_b64[(v >> 18) & 63u]);
    es_put_char(l, es_b64[(v >> 12) & 63u]);
    es_put_char(l, n > 1u ? es_b64[(v >> 6) & 63u] : '=');
    es_put_char(l, n > 2u ? es_b64[v & 63u] : '=');
}

EsStatus es_proto_audio(uint32_t seq, const int16_t *pcm, size_t n, char *out, size_t cap,
                        size_t *len)
{
    if (!es_out_ok(out, cap, len) || pcm == NULL || n == 0u || n > ES_PROTO_AUDIO_MAX) {
        return ES_ERR_ARG;
    }
    uint8_t bytes[2u * ES_PROTO_AUDIO_MAX];
    for (size_t i = 0; i < n; i++) { /* little-endian on the wire, whatever the CPU */
        uint16_t u = (uint16_t)pcm[i];
        bytes[2u * i] = (uint8_t)(u & 0xFFu);
        bytes[2u * i + 1u] = (uint8_t)(u >> 8);
    }
    size_t nb = 2u * n;
    uint16_t crc = es_proto_crc16(bytes, nb, 0xFFFFu);
    EsLine l;
    es_line_start(&l, out, cap, "AUD");
    es_put_key(&l, "seq");
    es_put_u32(&l, seq);
    es_put_key(&l, "n");
    es_put_u32(&l, (uint32_t)n);
    es_put_key(&l, "crc");
    for (uint32_t shift = 16u; shift > 0u; shift -= 4u) {
        es_put_char(&l, es_hex_upper[((uint32_t)crc >> (shift - 4u)) & 0x0Fu]);
    }
    es_put_key(&l, "data");
    for (size_t i = 0; i < nb; i += 3u) {
        es_put_b64(&l, &bytes[i], nb - i < 3u ? nb - i : 3u);
    }
    return es_line_end(&l, len);
}

static bool es_equals(const char *line, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n == m && memcmp(line, lit, m) == 0;
}

EsStatus es_proto_parse_command(const char *line, size_t n, EsCommand *cmd)
{
    if (line == NULL || cmd == NULL) {
        return ES_ERR_ARG;
    }
    cmd->kind = ES_CMD_NONE;
    cmd->mode = ES_MODE_DETECT;
    if (es_equals(line, n, "ES1 CMD hello")) {
        cmd->kind = ES_CMD_HELLO;
    } else if (es_equals(line, n, "ES1 CMD mode=detect")) {
        cmd->kind = ES_CMD_MODE;
    } else if (es_equals(line, n, "ES1 CMD mode=raw")) {
        cmd->kind = ES_CMD_MODE;
        cmd->mode = ES_MODE_RAW;
    } else {
        return ES_ERR_ARG;
    }
    return ES_OK;
}

EsStatus es_cmd_reader_init(EsCmdReader *r)
{
    if (r == NULL) {
        return ES_ERR_ARG;
    }
    *r = (EsCmdReader){.len = 0, .discarding = false};
    return ES_OK;
}

EsStatus es_cmd_reader_feed(EsCmdReader *r, char c, EsCommand *cmd)
{
    if (r == NULL || cmd == NULL) {
        return ES_ERR_ARG;
    }
    cmd->kind = ES_CMD_NONE;
    cmd->mode = ES_MODE_DETECT;
    if (c == '\r') {
        return ES_OK;
    }
    if (c != '\n') {
        if (r->len + 1u >= ES_PROTO_MAX_CMD) { /* no room left for the newline */
            r->discarding = true;
            r->len = 0;
        } else if (!r->discarding) {
            r->buf[r->len++] = c;
        }
        return ES_OK;
    }
    if (r->discarding) {
        cmd->kind = ES_CMD_TOO_LONG;
    } else if (r->len > 0u && es_proto_parse_command(r->buf, r->len, cmd) != ES_OK) {
        cmd->kind = ES_CMD_BAD;
    }
    r->len = 0;
    r->discarding = false;
    return ES_OK;
}
