/*
 * es_host.c — the firmware's block loop on a PC: a WAV file in, detections out.
 *
 * Runs exactly what the RP2040 runs (es_pipeline_push_block on 512-sample blocks, device time =
 * the end of each block in ms) on a 16 kHz mono 16-bit PCM WAV. A trailing partial block is not
 * processed (the firmware only ever sees whole blocks). Modes:
 *
 *   es_host [detector options] FILE.wav      one line per detection: "<t_ms> <label> <score>"
 *   --features OUT   also write the rolling int16 spectrogram after the last block (124 x 129,
 *                    little-endian, oldest frame first) to OUT ("-" = stdout)
 *   --scratch OUT    the same, computed from scratch (es_frontend_clip) on the last 16000 samples
 *   --input OUT      the int8 model input after the last block (124 x 129 bytes)
 *   --misalign       hand every other block to the pipeline 2 bytes off a word boundary
 *   --trace OUT      one text line per block: "<t_ms> <level> <level> ..." (scores in 1/256)
 *   --scores         no WAV: replay detector vectors from stdin (see usage()) — the test harness
 *                    for es_detector against earshot/detector.py
 *   --quantize M,S,Z no WAV: int16 LE magnitudes on stdin -> es_frontend_quantize(multiplier M,
 *                    shift S, zero point Z) -> int8 on stdout (tested against q15_to_int8)
 *   --quantize-table M,S,Z  the same through es_quant_table_apply (the pipeline's path); its
 *                    table's shape on stderr: "table buckets N width W" or "table none"
 *   --quantize-log FILE  the same through es_log_quant_apply (q15log models) with the
 *                    breakpoints in FILE: uint16 LE count, count uint16 LE starts, count int8
 *                    values (tested against earshot.quant.log_mag_to_int8)
 *
 * Exit status: 0 ok, 1 bad input (message names the file), 2 usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_app.h"
#include "es_common.h"
#include "es_detector.h"
#include "es_frontend.h"
#include "es_model.h"
#include "es_pipeline.h"

#define HOST_MAX_COMMANDS 16
#define ES_HOST_TICK_US 1000u /* the fake clock: each reading is 1 ms after the previous one */

typedef struct {
    const char *wav;          /* input WAV path */
    const char *features;     /* --features output, or NULL */
    const char *scratch;      /* --scratch output, or NULL */
    const char *input;        /* --input output, or NULL */
    const char *trace;        /* --trace output, or NULL */
    bool scores;              /* --scores replay mode */
    const char *quantize;     /* --quantize M,S,Z, or NULL */
    bool quantize_table;      /* --quantize-table: the same via es_quant_table_apply */
    const char *quantize_log; /* --quantize-log FILE: via es_log_quant_apply, or NULL */
    bool misalign;            /* --misalign: odd blocks at a non-word-aligned address */
    uint32_t status_ms;       /* --lines: device time between STATUS lines */
    const char *lines;        /* --lines output (the application's serial lines), or NULL */
    EsDetectorConfig det;     /* detector settings (default: the compiled policy) */
    uint32_t cmd_block[HOST_MAX_COMMANDS];  /* --command: before this block ... */
    const char *cmd_text[HOST_MAX_COMMANDS]; /* ... these bytes arrive, plus a newline */
    int n_cmds;
} HostArgs;

/* The application's port in es_host: lines to a file, commands at given blocks, a fake clock. */
typedef struct {
    FILE *out;              /* --lines file, or NULL: lines go nowhere */
    const char *pending;    /* command bytes not yet read */
    bool newline_due;       /* the newline after pending */
    uint32_t clock_us;      /* advances ES_HOST_TICK_US per reading */
} HostPort;

static EsApp g_app;                /* the device application (~23 KB): static, as on the device */
static EsSpectrogram g_spec;       /* rolling int16 spectrogram (--features) */
static EsSpectrogram g_scratch;    /* from-scratch spectrogram (--scratch) */
static EsFrontEnd g_scratch_fe;    /* a second front end for --scratch */
static int16_t g_history[ES_CLIP_SAMPLES]; /* the last 1 s of samples (--scratch) */
static EsDetector g_det;           /* --scores mode */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: es_host [options] FILE.wav\n"
            "       es_host --scores [options] < VECTORS\n"
            "Runs the earshot firmware block loop (512-sample blocks) on a 16 kHz mono 16-bit WAV\n"
            "and prints one line per detection: <t_ms> <label> <score>.\n"
            "  --threshold L        threshold for every label, levels of 1/256 (0..256, default 179)\n"
            "  --thresholds L,L,..  per-label thresholds in levels (one per label)\n"
            "  --window-ms MS       averaging window (ms, default 1000)\n"
            "  --min-count N        results needed in the window (default 3)\n"
            "  --suppression-ms MS  refractory time after a detection (ms, default 1500)\n"
            "  --max-history N      remembered results, 1..32 (default 32)\n"
            "  --ignore I,I,..      label indices that never fire (replaces the policy's)\n"
            "  --lines OUT          write the device application's serial lines to OUT ('-':\n"
            "                       stdout); its clock is fake: +1 ms per reading\n"
            "  --command B:LINE     the command LINE arrives before block B (repeatable)\n"
            "  --status-ms MS       --lines: device time between STATUS lines (default 5000)\n"
            "Detector defaults: the policy compiled into the model (es_model_policy).\n"
            "  --features OUT       write the final int16 spectrogram (124x129 LE) to OUT\n"
            "  --scratch OUT        same, computed from scratch on the last 16000 samples\n"
            "  --input OUT          write the final int8 model input (124x129) to OUT\n"
            "  --misalign           pass every other block at a non-word-aligned address\n"
            "  --trace OUT          write each block's scores (levels of 1/256) to OUT\n"
            "  --quantize M,S,Z     no WAV: int16 LE on stdin -> int8 on stdout (multiplier,\n"
            "                       shift, zero point)\n"
            "  --quantize-table M,S,Z  the same via the pipeline's table (shape on stderr)\n"
            "  --quantize-log FILE  the same via q15log breakpoints (count, starts, values)\n"
            "--scores reads lines 'config N WINDOW_MS MIN_COUNT SUPPRESSION_MS MAX_HISTORY\n"
            "IGNORE_MASK T0..T(N-1)' and 'T_MS L0 L1 ...' and answers each with 'ok', 'none',\n"
            "'fire INDEX T_MS LEVEL_SUM COUNT' or 'error ES_ERR_...'.\n");
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* "a,b,c" -> values; returns the count or -1 on a bad number. */
static int parse_list(const char *s, uint32_t max, uint32_t *vals, int cap)
{
    char buf[512];
    if (strlen(s) >= sizeof buf) {
        return -1;
    }
    strcpy(buf, s);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
        if (n >= cap || !parse_u32(tok, max, &vals[n])) {
            return -1;
        }
        n++;
    }
    return n;
}

static bool add_command(HostArgs *a, const char *val)
{
    char *end = NULL;
    unsigned long b = strtoul(val, &end, 10);
    if (a->n_cmds >= HOST_MAX_COMMANDS || end == val || *end != ':' || b > UINT32_MAX) {
        return false;
    }
    a->cmd_block[a->n_cmds] = (uint32_t)b;
    a->cmd_text[a->n_cmds] = end + 1;
    a->n_cmds++;
    return true;
}

static bool host_write(void *ctx, const char *line, size_t len)
{
    HostPort *p = ctx;
    return p->out == NULL || fwrite(line, 1, len, p->out) == len;
}

static int host_read(void *ctx)
{
    HostPort *p = ctx;
    if (p->pending != NULL && *p->pending != '\0') {
        return (unsigned char)*p->pending++;
    }
    if (p->newline_due) {
        p->newline_due = false;
        return '\n';
    }
    return -1;
}

static uint32_t host_now_us(void *ctx)
{
    HostPort *p = ctx;
    p->clock_us += ES_HOST_TICK_US;
    return p->clock_us;
}

/* Commands due before block b (0-based) become the port's pending bytes, then get answered. */
static void deliver_commands(const HostArgs *a, HostPort *port, uint32_t b)
{
    for (int k = 0; k < a->n_cmds; k++) {
        if (a->cmd_block[k] == b) {
            port->pending = a->cmd_text[k];
            port->newline_due = true;
            es_app_poll(&g_app);
        }
    }
}

static bool parse_args(int argc, char **argv, HostArgs *a)
{
    uint32_t v = 0;
    uint32_t list[ES_DETECTOR_MAX_LABELS];
    uint32_t thr_all = UINT32_MAX; /* not given: the compiled policy's thresholds */
    int n_thr = 0;
    memset(a, 0, sizeof *a);
    (void)es_app_detector_config(&a->det); /* the model's compiled policy, as on a board */
    a->status_ms = 5000u;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(opt, "--scores") == 0) {
            a->scores = true;
            takes = false;
        } else if (strcmp(opt, "--misalign") == 0) {
            a->misalign = true;
            takes = false;
        } else if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (val == NULL && opt[0] == '-' && opt[1] == '-') {
            fprintf(stderr, "es_host: option %s needs a value\n", opt);
            return false;
        } else if (strcmp(opt, "--threshold") == 0 && parse_u32(val, ES_LEVEL_ONE, &v)) {
            thr_all = v;
        } else if (strcmp(opt, "--thresholds") == 0) {
            n_thr = parse_list(val, ES_LEVEL_ONE, list, ES_DETECTOR_MAX_LABELS);
            if (n_thr < 0) {
                fprintf(stderr, "es_host: --thresholds wants levels 0..256, got '%s'\n", val);
                return false;
            }
            for (int k = 0; k < n_thr; k++) {
                a->det.thresholds[k] = (uint16_t)list[k];
            }
        } else if (strcmp(opt, "--window-ms") == 0 && parse_u32(val, UINT32_MAX, &v)) {
            a->det.average_window_ms = v;
        } else if (strcmp(opt, "--min-count") == 0 && parse_u32(val, UINT16_MAX, &v)) {
            a->det.min_count = (uint16_t)v;
        } else if (strcmp(opt, "--suppression-ms") == 0 && parse_u32(val, UINT32_MAX, &v)) {
            a->det.suppression_ms = v;
        } else if (strcmp(opt, "--max-history") == 0 && parse_u32(val, UINT16_MAX, &v)) {
            a->det.max_history = (uint16_t)v;
        } else if (strcmp(opt, "--status-ms") == 0 && parse_u32(val, UINT32_MAX, &v) && v > 0) {
            a->status_ms = v;
        } else if (strcmp(opt, "--lines") == 0) {
            a->lines = val;
        } else if (strcmp(opt, "--command") == 0) {
            if (!add_command(a, val)) {
                fprintf(stderr, "es_host: --command wants BLOCK:LINE (at most %d), got '%s'\n",
                        HOST_MAX_COMMANDS, val);
                return false;
            }
        } else if (strcmp(opt, "--ignore") == 0) {
            a->det.ignore_mask = 0;
            int n = parse_list(val, ES_DETECTOR_MAX_LABELS - 1, list, ES_DETECTOR_MAX_LABELS);
            if (n < 0) {
                fprintf(stderr, "es_host: --ignore wants label indices, got '%s'\n", val);
                return false;
            }
            for (int k = 0; k < n; k++) {
                a->det.ignore_mask |= 1U << list[k];
            }
        } else if (strcmp(opt, "--features") == 0) {
            a->features = val;
        } else if (strcmp(opt, "--scratch") == 0) {
            a->scratch = val;
        } else if (strcmp(opt, "--input") == 0) {
            a->input = val;
        } else if (strcmp(opt, "--trace") == 0) {
            a->trace = val;
        } else if (strcmp(opt, "--quantize") == 0) {
            a->quantize = val;
        } else if (strcmp(opt, "--quantize-table") == 0) {
            a->quantize = val;
            a->quantize_table = true;
        } else if (strcmp(opt, "--quantize-log") == 0) {
            a->quantize_log = val;
        } else if (opt[0] == '-' && opt[1] == '-') {
            fprintf(stderr, "es_host: bad option or value: %s %s\n", opt, val);
            return false;
        } else {
            if (a->wav != NULL) {
                fprintf(stderr, "es_host: more than one WAV file given (%s, %s)\n", a->wav, opt);
                return false;
            }
            a->wav = opt;
            takes = false;
        }
        if (takes) {
            i++;
        }
    }
    a->det.n_labels = es_model_info.n_labels;
    if (n_thr == 0 && thr_all != UINT32_MAX) {
        for (uint16_t k = 0; k < ES_DETECTOR_MAX_LABELS; k++) {
            a->det.thresholds[k] = (uint16_t)thr_all;
        }
    } else if (n_thr != 0 && n_thr != es_model_info.n_labels) {
        fprintf(stderr, "es_host: --thresholds has %d values, the model has %u labels\n", n_thr,
                (unsigned)es_model_info.n_labels);
        return false;
    }
    if (!a->scores && a->quantize == NULL && a->quantize_log == NULL && a->wav == NULL) {
        fprintf(stderr, "es_host: no WAV file given\n");
        return false;
    }
    return true;
}

/* ---- WAV input: RIFF/WAVE, PCM (or extensible PCM), 16 kHz, mono, 16-bit ---- */

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}

static uint16_t le16(const unsigned char *b)
{
    return (uint16_t)((unsigned)b[0] | ((unsigned)b[1] << 8));
}

static EsStatus check_fmt(const char *path, const unsigned char *fmt, uint32_t size)
{
    if (size < 16) {
        fprintf(stderr, "es_host: %s: fmt chunk too short (%u bytes)\n", path, (unsigned)size);
        return ES_ERR_IO;
    }
    uint16_t tag = le16(fmt);
    if (tag == 0xFFFEU && size >= 26) {
        tag = le16(fmt + 24); /* WAVE_FORMAT_EXTENSIBLE: the subformat GUID starts with the tag */
    }
    const uint16_t channels = le16(fmt + 2);
    const uint32_t rate = le32(fmt + 4);
    const uint16_t bits = le16(fmt + 14);
    if (tag != 1U || channels != 1U || rate != ES_SAMPLE_RATE || bits != 16U) {
        fprintf(stderr,
                "es_host: %s: need 16 kHz mono 16-bit PCM, got format %u, %u channel(s), %u Hz, "
                "%u bits (convert it, e.g. sox IN -r 16000 -c 1 -b 16 OUT.wav)\n",
                path, (unsigned)tag, (unsigned)channels, (unsigned)rate, (unsigned)bits);
        return ES_ERR_IO;
    }
    return ES_OK;
}

/* Positions f at the start of the data chunk; *n_samples gets its length in samples. */
static EsStatus open_wav(const char *path, FILE *f, uint32_t *n_samples)
{
    unsigned char hdr[12];
    unsigned char fmt[40];
    bool have_fmt = false;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || memcmp(hdr, "RIFF", 4) != 0 ||
        memcmp(hdr + 8, "WAVE", 4) != 0) {
        fprintf(stderr, "es_host: %s: not a RIFF/WAVE file\n", path);
        return ES_ERR_IO;
    }
    for (;;) {
        unsigned char ch[8];
        if (fread(ch, 1, sizeof ch, f) != sizeof ch) {
            fprintf(stderr, "es_host: %s: no data chunk\n", path);
            return ES_ERR_IO;
        }
        const uint32_t size = le32(ch + 4);
        if (memcmp(ch, "fmt ", 4) == 0) {
            const uint32_t keep = size < sizeof fmt ? size : (uint32_t)sizeof fmt;
            if (fread(fmt, 1, keep, f) != keep ||
                fseek(f, (long)(size - keep + (size & 1U)), SEEK_CUR) != 0) {
                fprintf(stderr, "es_host: %s: truncated fmt chunk\n", path);
                return ES_ERR_IO;
            }
            EsStatus st = check_fmt(path, fmt, size);
            if (st != ES_OK) {
                return st;
            }
            have_fmt = true;
        } else if (memcmp(ch, "data", 4) == 0) {
            if (!have_fmt) {
                fprintf(stderr, "es_host: %s: data chunk before fmt chunk\n", path);
                return ES_ERR_IO;
            }
            *n_samples = size / 2U;
            return ES_OK;
        } else if (fseek(f, (long)(size + (size & 1U)), SEEK_CUR) != 0) {
            fprintf(stderr, "es_host: %s: truncated chunk\n", path);
            return ES_ERR_IO;
        }
    }
}

/* Reads up to ES_BLOCK samples; returns how many (a short count only at the end of data). */
static size_t read_block(FILE *f, uint32_t *left, int16_t block[ES_BLOCK])
{
    unsigned char raw[2 * ES_BLOCK];
    size_t want = *left < ES_BLOCK ? *left : ES_BLOCK;
    size_t got = fread(raw, 2, want, f);
    for (size_t i = 0; i < got; i++) {
        block[i] = (int16_t)le16(raw + 2 * i);
    }
    *left -= (uint32_t)got;
    return got;
}

static void remember(const int16_t block[ES_BLOCK])
{
    memmove(g_history, g_history + ES_BLOCK, (ES_CLIP_SAMPLES - ES_BLOCK) * sizeof g_history[0]);
    memcpy(g_history + ES_CLIP_SAMPLES - ES_BLOCK, block, ES_BLOCK * sizeof g_history[0]);
}

/* ---- outputs ---- */

static int write_out(const char *path, const void *data, size_t size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "es_host: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t n = fwrite(data, 1, size, f);
    int bad = (f == stdout) ? fflush(f) : fclose(f);
    if (n != size || bad != 0) {
        fprintf(stderr, "es_host: writing %s failed\n", path);
        return 1;
    }
    return 0;
}

static int write_spectrogram(const char *path, const EsSpectrogram *spec)
{
    static unsigned char buf[2 * ES_FRAMES * ES_BINS];
    size_t k = 0;
    for (size_t f = 0; f < ES_FRAMES; f++) {
        for (size_t b = 0; b < ES_BINS; b++) {
            const uint16_t v = (uint16_t)spec->mag[f][b];
            buf[k++] = (unsigned char)(v & 0xFFU);
            buf[k++] = (unsigned char)(v >> 8);
        }
    }
    return write_out(path, buf, sizeof buf);
}

static int dump_outputs(const HostArgs *a)
{
    int rc = 0;
    if (a->features != NULL) {
        rc |= write_spectrogram(a->features, &g_spec);
    }
    if (a->scratch != NULL) {
        EsStatus st = es_frontend_init(&g_scratch_fe);
        if (st == ES_OK) {
            st = es_frontend_clip(&g_scratch_fe, g_history, &g_scratch);
        }
        if (st != ES_OK) {
            fprintf(stderr, "es_host: from-scratch front end failed: %s\n", es_status_str(st));
            return 1;
        }
        rc |= write_spectrogram(a->scratch, &g_scratch);
    }
    if (a->input != NULL) {
        rc |= write_out(a->input, g_app.pipe.input, sizeof g_app.pipe.input);
    }
    return rc;
}

static int run_wav(const HostArgs *a)
{
    FILE *f = fopen(a->wav, "rb");
    if (f == NULL) {
        fprintf(stderr, "es_host: cannot open %s: %s\n", a->wav, strerror(errno));
        return 1;
    }
    uint32_t left = 0;
    HostPort hp = {0};
    EsPort port = {.ctx = &hp, .write_line = host_write, .read_byte = host_read,
                   .now_us = host_now_us, .led = NULL};
    EsAppConfig cfg = {.board = "host", .id = {0, 0, 0, 0, 0, 0, 0, 1},
                       .status_ms = a->status_ms};
    EsStatus st = open_wav(a->wav, f, &left);
    if (st == ES_OK) {
        st = es_app_init(&g_app, &port, &cfg, &a->det);
        if (st != ES_OK) {
            fprintf(stderr, "es_host: pipeline init failed: %s\n", es_status_str(st));
        }
    }
    if (st == ES_OK && a->lines != NULL) {
        hp.out = strcmp(a->lines, "-") == 0 ? stdout : fopen(a->lines, "w");
        if (hp.out == NULL) {
            fprintf(stderr, "es_host: cannot write %s: %s\n", a->lines, strerror(errno));
            st = ES_ERR_IO;
        }
    }
    if (st != ES_OK) {
        fclose(f);
        return 1;
    }
    es_app_hello(&g_app);
    FILE *trace = NULL;
    if (a->trace != NULL) {
        trace = strcmp(a->trace, "-") == 0 ? stdout : fopen(a->trace, "w");
        if (trace == NULL) {
            fprintf(stderr, "es_host: cannot write %s: %s\n", a->trace, strerror(errno));
            fclose(f);
            return 1;
        }
    }
    es_spectrogram_clear(&g_spec);
    static int16_t buf[ES_BLOCK + 2] __attribute__((aligned(4)));
    int16_t *block = buf;
    uint32_t b = 0;
    /* --misalign: every other block 2 bytes off a word boundary (the front end's copy path) */
    while (st == ES_OK && read_block(f, &left, block = buf + (a->misalign ? (b & 1U) : 0U)) ==
                              ES_BLOCK) {
        deliver_commands(a, &hp, b++);
        const bool detecting = g_app.mode == ES_MODE_DETECT;
        st = es_app_block(&g_app, block, 0u);
        const uint32_t t_ms = g_app.t_ms;
        const EsDetection det = g_app.det;
        const bool fired = g_app.fired;
        if (!detecting) {
            continue; /* raw mode: no model ran */
        }
        es_spectrogram_push(&g_spec, (const int16_t(*)[ES_BINS])g_app.pipe.frames,
                            ES_FRAMES_PER_BLOCK);
        remember(block);
        if (st == ES_OK && trace != NULL) {
            fprintf(trace, "%u", (unsigned)t_ms);
            for (uint16_t i = 0; i < es_model_info.n_labels; i++) {
                fprintf(trace, " %u", (unsigned)g_app.pipe.levels[i]);
            }
            fputc('\n', trace);
        }
        if (st == ES_OK && fired) {
            const double score = (double)det.level_sum / (256.0 * (double)det.count);
            printf("%u %s %.4f\n", (unsigned)det.t_ms, es_model_info.labels[det.index], score);
        }
    }
    const bool io_error = ferror(f) != 0;
    fclose(f);
    if (hp.out != NULL && (fflush(hp.out) != 0 || (hp.out != stdout && fclose(hp.out) != 0))) {
        fprintf(stderr, "es_host: writing %s failed\n", a->lines);
        return 1;
    }
    if (trace != NULL && trace != stdout && fclose(trace) != 0) {
        fprintf(stderr, "es_host: writing %s failed\n", a->trace);
        return 1;
    }
    if (io_error) {
        fprintf(stderr, "es_host: %s: read error\n", a->wav);
        return 1;
    }
    if (st != ES_OK) {
        fprintf(stderr, "es_host: %s: block loop failed: %s\n", a->wav, es_status_str(st));
        return 1;
    }
    fprintf(stderr, "es_host: %s: %u blocks\n", a->wav, (unsigned)g_app.pipe.blocks);
    return dump_outputs(a);
}

/* ---- --scores: detector vectors from stdin ---- */

static int split_u32(char *line, uint32_t *vals, int cap)
{
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok != NULL; tok = strtok(NULL, " \t\r\n")) {
        if (n >= cap || !parse_u32(tok, UINT32_MAX, &vals[n])) {
            return -1;
        }
        n++;
    }
    return n;
}

static void scores_config(char *rest)
{
    uint32_t v[6 + ES_DETECTOR_MAX_LABELS + 1];
    int n = split_u32(rest, v, (int)(sizeof v / sizeof v[0]));
    if (n < 7 || v[0] > ES_DETECTOR_MAX_LABELS || n != 6 + (int)v[0]) {
        printf("error ES_ERR_ARG\n");
        return;
    }
    EsDetectorConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_labels = (uint16_t)v[0];
    cfg.average_window_ms = v[1];
    cfg.min_count = (uint16_t)(v[2] > UINT16_MAX ? UINT16_MAX : v[2]);
    cfg.suppression_ms = v[3];
    cfg.max_history = (uint16_t)(v[4] > UINT16_MAX ? UINT16_MAX : v[4]);
    cfg.ignore_mask = v[5];
    for (uint32_t i = 0; i < v[0]; i++) {
        cfg.thresholds[i] = (uint16_t)(v[6 + i] > UINT16_MAX ? UINT16_MAX : v[6 + i]);
    }
    EsStatus st = es_detector_init(&g_det, &cfg);
    printf(st == ES_OK ? "ok\n" : "error %s\n", es_status_str(st));
}

static void scores_update(char *line)
{
    uint32_t v[1 + ES_DETECTOR_MAX_LABELS + 1];
    uint16_t levels[ES_DETECTOR_MAX_LABELS + 1];
    int n = split_u32(line, v, (int)(sizeof v / sizeof v[0]));
    if (n < 1) {
        printf("error ES_ERR_ARG\n");
        return;
    }
    for (int i = 1; i < n; i++) {
        levels[i - 1] = (uint16_t)(v[i] > UINT16_MAX ? UINT16_MAX : v[i]);
    }
    EsDetection det;
    bool fired = false;
    EsStatus st = es_detector_update(&g_det, v[0], levels, (uint16_t)(n - 1), &det, &fired);
    if (st != ES_OK) {
        printf("error %s\n", es_status_str(st));
    } else if (fired) {
        printf("fire %u %u %u %u\n", (unsigned)det.index, (unsigned)det.t_ms,
               (unsigned)det.level_sum, (unsigned)det.count);
    } else {
        printf("none\n");
    }
}

static int run_scores(void)
{
    char line[1024];
    bool configured = false;
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strncmp(line, "config", 6) == 0) {
            scores_config(line + 6);
            configured = true;
        } else if (!configured) {
            printf("error ES_ERR_ARG\n");
        } else {
            scores_update(line);
        }
    }
    return 0;
}

/* ---- --quantize: the int8 input conversion on its own ---- */

/* Which conversion the --quantize modes run: the q15log breakpoints when log is not NULL, else
 * the pipeline's table when table is not NULL, else es_frontend_quantize with (m, sh, zp). */
typedef struct {
    const EsQuantTable *table;
    const EsLogQuant *log;
    long m, sh, zp;
} HostQuantizer;

static EsStatus quantize_chunk(const HostQuantizer *q, const int16_t *mag, size_t n, int8_t *out)
{
    if (q->log != NULL) {
        return es_log_quant_apply(q->log, mag, n, out);
    }
    if (q->table != NULL) {
        return es_quant_table_apply(q->table, mag, n, out);
    }
    return es_frontend_quantize(mag, n, (int32_t)q->m, (int32_t)q->sh, (int32_t)q->zp, out);
}

/* int16 LE magnitudes on stdin -> int8 on stdout through q. */
static int quantize_stdin(const HostQuantizer *q)
{
    unsigned char raw[2 * 1024];
    int16_t mag[1024];
    int8_t out[1024];
    size_t n;
    while ((n = fread(raw, 2, 1024, stdin)) > 0) {
        for (size_t i = 0; i < n; i++) {
            mag[i] = (int16_t)le16(raw + 2 * i);
        }
        EsStatus st = quantize_chunk(q, mag, n, out);
        if (st != ES_OK) {
            fprintf(stderr, "es_host: quantising: %s\n", es_status_str(st));
            return 1;
        }
        if (fwrite(out, 1, n, stdout) != n) {
            fprintf(stderr, "es_host: writing stdout failed\n");
            return 1;
        }
    }
    return 0;
}

static int run_quantize(const char *spec, bool table)
{
    long m = 0;
    long sh = 0;
    long zp = 0;
    char extra = 0;
    if (sscanf(spec, "%ld,%ld,%ld%c", &m, &sh, &zp, &extra) != 3 || m < 0 || m > INT32_MAX ||
        sh < -64 || sh > 64 || zp < -128 || zp > 127) {
        fprintf(stderr, "es_host: --quantize wants MULTIPLIER,SHIFT,ZERO_POINT, got '%s'\n", spec);
        return 2;
    }
    static EsQuantTable qt;
    if (table) {
        EsStatus st = es_quant_table_init(&qt, (int32_t)m, (int32_t)sh, (int32_t)zp);
        if (st != ES_OK) {
            fprintf(stderr, "es_host: es_quant_table_init: %s\n", es_status_str(st));
            return 1;
        }
        if (qt.table) {
            fprintf(stderr, "table buckets %u width %u\n", (unsigned)qt.buckets,
                    1U << qt.shift_k);
        } else {
            fprintf(stderr, "table none\n");
        }
    }
    const HostQuantizer q = {table ? &qt : NULL, NULL, m, sh, zp};
    return quantize_stdin(&q);
}

/* ---- --quantize-log: a q15log model's input conversion on its own ---- */

static int run_quantize_log(const char *path)
{
    static uint16_t starts[256];
    static int8_t values[256];
    unsigned char raw[2 * 256];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "es_host: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t count = fread(raw, 2, 1, f) == 1 ? le16(raw) : 0U;
    bool ok = count >= 1U && count <= 256U && fread(raw, 2, count, f) == count;
    for (size_t i = 0; ok && i < count; i++) {
        starts[i] = le16(raw + 2 * i);
    }
    ok = ok && fread(values, 1, count, f) == count;
    fclose(f);
    static EsLogQuant lq;
    if (!ok || es_log_quant_init(&lq, starts, values, (uint16_t)count) != ES_OK) {
        fprintf(stderr, "es_host: %s: not a breakpoint file (count, increasing starts from 0, "
                "values)\n", path);
        return 1;
    }
    const HostQuantizer q = {NULL, &lq, 0, 0, 0};
    return quantize_stdin(&q);
}

int main(int argc, char **argv)
{
    HostArgs args;
    if (!parse_args(argc, argv, &args)) {
        usage(stderr);
        return 2;
    }
    if (args.quantize != NULL) {
        return run_quantize(args.quantize, args.quantize_table);
    }
    if (args.quantize_log != NULL) {
        return run_quantize_log(args.quantize_log);
    }
    return args.scores ? run_scores() : run_wav(&args);
}
