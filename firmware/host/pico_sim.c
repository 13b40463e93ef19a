/*
 * pico_sim.c — a Pico on a PC: the firmware's block loop and serial protocol, fed from a WAV.
 *
 * Speaks exactly what the board speaks over USB CDC (docs/serial-protocol.md): a HELLO at start,
 * then per 512-sample block (32 ms) a SCORES line and, when the detector fires, a DET line;
 * STATUS every --status-ms of device time; in raw mode two AUD frames per block instead. Commands
 * (ES1 CMD mode=raw|detect, ES1 CMD hello) are read from the same pty, or from stdin when the
 * output is stdout, and answered as the firmware answers them (es_cmd_reader_feed).
 * With --pty, lines that the pty cannot take (no host reading) are dropped and counted in
 * STATUS's dropped, as the board drops what USB cannot take.
 *
 *   pico_sim [options] FILE.wav     FILE: 16 kHz mono 16-bit PCM, at most 120 s
 *   --pty LINK          make a pty and a symlink LINK to its slave (what a host opens, like
 *                       /dev/serial/by-id/...); default: lines to stdout, commands from stdin
 *   --board NAME        board name in HELLO (default: host)
 *   --id HEX16          unique board id, 16 hex digits (default: 0000000000000001)
 *   --speed X           pace blocks at X times real time; 0 = as fast as possible (default: 1)
 *   --loop              start the WAV again at its end (device time keeps running)
 *   --status-ms MS      device time between STATUS lines (default: 5000)
 *   --threshold L       detector threshold for every label, levels of 1/256 (default: 179)
 *   --min-count N       results needed in the averaging window (default: 3)
 *   --suppression-ms MS refractory time after a detection (default: 1500)
 *   --ignore I,I,..     label indices that never fire (background classes; default: none)
 *
 * Exit status: 0 at the end of the WAV, 1 bad input or I/O error (message names it), 2 usage.
 */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "es_common.h"
#include "es_detector.h"
#include "es_model.h"
#include "es_pipeline.h"
#include "es_protocol.h"

#define SIM_RATE 16000u
#define SIM_MAX_SAMPLES (120u * SIM_RATE)
#define SIM_FW "0.1.0"

typedef struct {
    const char *wav;          /* input WAV */
    const char *pty;          /* symlink to make to a new pty's slave, or NULL: stdout/stdin */
    const char *board;        /* board name in HELLO */
    uint8_t id[ES_PROTO_ID_BYTES]; /* board id */
    double speed;             /* x real time, 0 = unpaced */
    bool loop;                /* rewind at the end */
    uint32_t status_ms;       /* device time between STATUS lines */
    EsDetectorConfig det;     /* detector settings */
} SimArgs;

typedef struct {
    int out_fd;               /* where lines go */
    int in_fd;                /* where commands come from */
    bool drop_when_full;      /* a pty: drop lines nobody reads instead of blocking */
    uint32_t dropped;         /* lines dropped */
    EsMode mode;              /* current mode */
    uint32_t seq;             /* next AUD frame number */
    uint32_t worst_us;        /* worst block time since the last STATUS */
    uint64_t busy_us;         /* block time since the last STATUS */
    uint32_t last_status_ms;  /* device time of the last STATUS */
    EsCmdReader cmd;          /* command line assembler */
} Sim;

static int16_t g_audio[SIM_MAX_SAMPLES]; /* the whole WAV */
static EsPipeline g_pipe;                /* ~19 KB, static as on the device */
static char g_line[ES_PROTO_MAX_LINE + 1];

static void usage(void)
{
    fprintf(stderr, "usage: pico_sim [--pty LINK] [--board NAME] [--id HEX16] [--speed X] [--loop]\n"
                    "                [--status-ms MS] [--threshold L] [--min-count N]\n"
                    "                [--suppression-ms MS] [--ignore I,I,..] FILE.wav\n");
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool parse_id(const char *s, uint8_t id[ES_PROTO_ID_BYTES])
{
    if (strlen(s) != 2u * ES_PROTO_ID_BYTES) {
        return false;
    }
    for (size_t i = 0; i < ES_PROTO_ID_BYTES; i++) {
        unsigned int byte = 0;
        if (sscanf(&s[2u * i], "%2x", &byte) != 1) {
            return false;
        }
        id[i] = (uint8_t)byte;
    }
    return true;
}

/* "0,2": label indices that never fire, as a bit mask */
static bool parse_ignore(const char *s, uint32_t *mask)
{
    char buf[128];
    if (strlen(s) >= sizeof buf) {
        return false;
    }
    strcpy(buf, s);
    *mask = 0;
    for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
        uint32_t i = 0;
        if (!parse_u32(tok, ES_DETECTOR_MAX_LABELS - 1u, &i)) {
            return false;
        }
        *mask |= 1u << i;
    }
    return true;
}

static bool parse_option(SimArgs *a, const char *opt, const char *val)
{
    uint32_t v = 0;
    if (strcmp(opt, "--pty") == 0) {
        a->pty = val;
    } else if (strcmp(opt, "--board") == 0) {
        a->board = val;
    } else if (strcmp(opt, "--id") == 0) {
        return parse_id(val, a->id);
    } else if (strcmp(opt, "--speed") == 0) {
        char *end = NULL;
        a->speed = strtod(val, &end);
        return end != val && *end == '\0' && a->speed >= 0.0;
    } else if (strcmp(opt, "--status-ms") == 0 && parse_u32(val, 3600000u, &v) && v > 0u) {
        a->status_ms = v;
    } else if (strcmp(opt, "--threshold") == 0 && parse_u32(val, ES_LEVEL_ONE, &v)) {
        for (int i = 0; i < ES_DETECTOR_MAX_LABELS; i++) {
            a->det.thresholds[i] = (uint16_t)v;
        }
    } else if (strcmp(opt, "--ignore") == 0) {
        return parse_ignore(val, &a->det.ignore_mask);
    } else if (strcmp(opt, "--min-count") == 0 && parse_u32(val, ES_DETECTOR_MAX_HISTORY, &v)) {
        a->det.min_count = (uint16_t)v;
    } else if (strcmp(opt, "--suppression-ms") == 0 && parse_u32(val, 3600000u, &v)) {
        a->det.suppression_ms = v;
    } else {
        return false;
    }
    return true;
}

static bool parse_args(int argc, char **argv, SimArgs *a)
{
    *a = (SimArgs){.board = "host", .id = {0, 0, 0, 0, 0, 0, 0, 1}, .speed = 1.0,
                   .status_ms = 5000u};
    a->det = (EsDetectorConfig){.n_labels = es_model_info.n_labels, .average_window_ms = 1000u,
                                .min_count = 3u, .suppression_ms = 1500u,
                                .max_history = ES_DETECTOR_MAX_HISTORY};
    for (int i = 0; i < ES_DETECTOR_MAX_LABELS; i++) {
        a->det.thresholds[i] = 179u; /* 0.7 */
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--loop") == 0) {
            a->loop = true;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            if (i + 1 >= argc || !parse_option(a, argv[i], argv[i + 1])) {
                fprintf(stderr, "pico_sim: bad or missing value for %s\n", argv[i]);
                return false;
            }
            i++;
        } else if (a->wav == NULL) {
            a->wav = argv[i];
        } else {
            fprintf(stderr, "pico_sim: more than one WAV file given (%s, %s)\n", a->wav, argv[i]);
            return false;
        }
    }
    return a->wav != NULL;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Read a 16 kHz mono 16-bit PCM WAV into g_audio; returns the sample count, 0 on error. */
static size_t load_wav(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "pico_sim: cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    unsigned char hdr[12], ch[8], fmt[16] = {0};
    size_t n = 0;
    bool have_fmt = false;
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) != 0 || memcmp(hdr + 8, "WAVE", 4) != 0) {
        fprintf(stderr, "pico_sim: %s: not a RIFF/WAVE file\n", path);
    } else {
        while (fread(ch, 1, 8, f) == 8) {
            uint32_t size = le32(ch + 4);
            if (memcmp(ch, "fmt ", 4) == 0 && size >= 16u && fread(fmt, 1, 16, f) == 16) {
                have_fmt = true;
                fseek(f, (long)(size - 16u + (size & 1u)), SEEK_CUR);
            } else if (memcmp(ch, "data", 4) == 0) {
                bool ok = have_fmt && fmt[0] == 1 && fmt[2] == 1 && le32(fmt + 4) == SIM_RATE &&
                          fmt[14] == 16;
                if (!ok) {
                    fprintf(stderr, "pico_sim: %s: need 16 kHz mono 16-bit PCM\n", path);
                    break;
                }
                size_t want = size / 2u < SIM_MAX_SAMPLES ? size / 2u : SIM_MAX_SAMPLES;
                n = fread(g_audio, 2, want, f); /* little-endian host assumed (x86, ARM) */
                break;
            } else {
                fseek(f, (long)(size + (size & 1u)), SEEK_CUR);
            }
        }
    }
    fclose(f);
    if (n < ES_BLOCK) {
        fprintf(stderr, "pico_sim: %s: fewer than %d samples of audio\n", path, ES_BLOCK);
        return 0;
    }
    return n;
}

static bool send_line(Sim *s, EsStatus st)
{
    if (st != ES_OK) {
        fprintf(stderr, "pico_sim: formatting a line failed: %s\n", es_status_str(st));
        return false;
    }
    size_t len = strlen(g_line), done = 0;
    if (s->drop_when_full) {
        struct pollfd p = {.fd = s->out_fd, .events = POLLOUT};
        if (poll(&p, 1, 0) <= 0 || (p.revents & POLLOUT) == 0) {
            s->dropped++;
            return true;
        }
    }
    while (done < len) {
        ssize_t w = write(s->out_fd, g_line + done, len - done);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue; /* the rest of a started line: finish it, never tear it */
        }
        if (w <= 0) {
            fprintf(stderr, "pico_sim: write failed: %s\n", strerror(errno));
            return false;
        }
        done += (size_t)w;
    }
    return true;
}

static bool send_hello(Sim *s, const SimArgs *a)
{
    EsHello h = {.fw = SIM_FW, .board = a->board, .model_sha256 = es_model_info.sha256,
                 .labels = es_model_info.labels, .n_labels = es_model_info.n_labels,
                 .rate = SIM_RATE, .mode = s->mode};
    memcpy(h.id, a->id, sizeof h.id);
    size_t len = 0;
    return send_line(s, es_proto_hello(&h, g_line, sizeof g_line, &len));
}

static bool handle_command(Sim *s, const SimArgs *a, const EsCommand *c)
{
    size_t len = 0;
    switch (c->kind) {
    case ES_CMD_HELLO:
        return send_hello(s, a);
    case ES_CMD_MODE:
        s->mode = c->mode;
        s->seq = 0;
        return send_line(s, es_proto_ok(s->mode, g_line, sizeof g_line, &len)) && send_hello(s, a);
    case ES_CMD_BAD:
        return send_line(s, es_proto_err("bad_cmd", "unknown command", g_line, sizeof g_line, &len));
    case ES_CMD_TOO_LONG:
        return send_line(s, es_proto_err("too_long", "command line too long", g_line,
                                         sizeof g_line, &len));
    case ES_CMD_NONE:
    default:
        return true;
    }
}

/* Read whatever command bytes are waiting, without blocking. */
static bool poll_commands(Sim *s, const SimArgs *a)
{
    struct pollfd p = {.fd = s->in_fd, .events = POLLIN};
    char buf[128];
    while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0) {
        ssize_t n = read(s->in_fd, buf, sizeof buf);
        if (n <= 0) {
            return true; /* no host (stdin closed): keep running, as a board does */
        }
        for (ssize_t i = 0; i < n; i++) {
            EsCommand c;
            if (es_cmd_reader_feed(&s->cmd, buf[i], &c) != ES_OK || !handle_command(s, a, &c)) {
                return false;
            }
        }
    }
    return true;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool detect_block(Sim *s, const int16_t *block, uint32_t t_ms)
{
    EsDetection d;
    bool fired = false;
    size_t len = 0;
    EsStatus st = es_pipeline_push_block(&g_pipe, block, t_ms, &d, &fired);
    if (st != ES_OK) {
        return send_line(s, es_proto_err("model", es_status_str(st), g_line, sizeof g_line, &len));
    }
    if (!send_line(s, es_proto_scores(t_ms, g_pipe.levels, es_model_info.n_labels, g_line,
                                      sizeof g_line, &len))) {
        return false;
    }
    if (!fired) {
        return true;
    }
    /* mean score in thousandths, rounded: level_sum / (256 * count) */
    uint32_t den = (uint32_t)ES_LEVEL_ONE * d.count;
    uint32_t milli = (uint32_t)(((uint64_t)d.level_sum * 1000u + den / 2u) / den);
    return send_line(s, es_proto_det(t_ms, es_model_info.labels[d.index], milli > 1000u ? 1000u : milli,
                                     g_line, sizeof g_line, &len));
}

static bool raw_block(Sim *s, const int16_t *block)
{
    size_t len = 0;
    for (size_t off = 0; off < ES_BLOCK; off += ES_PROTO_AUDIO_MAX) {
        if (!send_line(s, es_proto_audio(s->seq++, block + off, ES_PROTO_AUDIO_MAX, g_line,
                                         sizeof g_line, &len))) {
            return false;
        }
    }
    return true;
}

static bool maybe_status(Sim *s, const SimArgs *a, uint32_t t_ms)
{
    if (t_ms - s->last_status_ms < a->status_ms) {
        return true;
    }
    uint64_t period_us = (uint64_t)(t_ms - s->last_status_ms) * 1000u;
    uint64_t cpu = s->busy_us * 100u / period_us;
    EsHealth h = {.t_ms = t_ms, .loop_us = s->worst_us, .cpu = cpu > 100u ? 100u : (uint32_t)cpu,
                  .dropped = s->dropped, .mode = s->mode};
    s->last_status_ms = t_ms;
    s->worst_us = 0;
    s->busy_us = 0;
    size_t len = 0;
    return send_line(s, es_proto_health(&h, g_line, sizeof g_line, &len));
}

static bool pace(const SimArgs *a, uint64_t start_us, uint32_t t_ms)
{
    if (a->speed <= 0.0) {
        return true;
    }
    uint64_t due = start_us + (uint64_t)((double)t_ms * 1000.0 / a->speed);
    uint64_t now = now_us();
    if (due > now) {
        struct timespec ts = {.tv_sec = (time_t)((due - now) / 1000000u),
                              .tv_nsec = (long)((due - now) % 1000000u) * 1000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

static int run(const SimArgs *a, Sim *s, size_t n)
{
    if (!send_hello(s, a)) {
        return 1;
    }
    uint64_t start = now_us();
    uint32_t t_ms = 0;
    size_t pos = 0;
    for (;;) {
        if (pos + ES_BLOCK > n) {
            if (!a->loop) {
                return 0;
            }
            pos = 0;
        }
        t_ms += (uint32_t)(ES_BLOCK * 1000u / SIM_RATE);
        uint64_t t0 = now_us();
        bool ok = s->mode == ES_MODE_RAW ? raw_block(s, &g_audio[pos]) : detect_block(s, &g_audio[pos], t_ms);
        uint64_t dt = now_us() - t0;
        s->busy_us += dt;
        s->worst_us = dt > s->worst_us ? (uint32_t)dt : s->worst_us;
        pos += ES_BLOCK;
        if (!ok || !maybe_status(s, a, t_ms) || !pace(a, start, t_ms) || !poll_commands(s, a)) {
            return 1;
        }
    }
}

/*
 * A new pty in raw mode; LINK becomes a symlink to its slave. We keep a slave fd open so the
 * pty lives while hosts come and go. Returns the non-blocking master, or -1 (message printed).
 */
static int open_pty(const char *link, int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    const char *name = NULL;
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || (name = ptsname(m)) == NULL) {
        fprintf(stderr, "pico_sim: cannot make a pty: %s\n", strerror(errno));
        return -1;
    }
    *slave = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (*slave < 0 || tcgetattr(*slave, &t) != 0) {
        fprintf(stderr, "pico_sim: cannot open %s: %s\n", name, strerror(errno));
        return -1;
    }
    cfmakeraw(&t);
    tcsetattr(*slave, TCSANOW, &t);
    unlink(link);
    if (symlink(name, link) != 0) {
        fprintf(stderr, "pico_sim: cannot make %s -> %s: %s\n", link, name, strerror(errno));
        return -1;
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    fprintf(stderr, "pico_sim: %s -> %s\n", link, name);
    return m;
}

int main(int argc, char **argv)
{
    SimArgs a;
    if (!parse_args(argc, argv, &a)) {
        usage();
        return 2;
    }
    size_t n = load_wav(a.wav);
    if (n == 0) {
        return 1;
    }
    EsStatus st = es_pipeline_init(&g_pipe, &a.det);
    if (st != ES_OK) {
        fprintf(stderr, "pico_sim: pipeline init failed: %s\n", es_status_str(st));
        return 1;
    }
    Sim s = {.out_fd = STDOUT_FILENO, .in_fd = STDIN_FILENO, .mode = ES_MODE_DETECT};
    es_cmd_reader_init(&s.cmd);
    int slave = -1;
    if (a.pty != NULL) {
        s.out_fd = open_pty(a.pty, &slave);
        if (s.out_fd < 0) {
            return 1;
        }
        s.in_fd = s.out_fd;
        s.drop_when_full = true;
    }
    int rc = run(&a, &s, n);
    if (a.pty != NULL) {
        unlink(a.pty);
        close(slave);
        close(s.out_fd);
    }
    return rc;
}
