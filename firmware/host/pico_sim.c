/*
 * pico_sim.c — a Pico on a PC: the board's application (es_app) fed from a WAV.
 *
 * The device application is the board's own (firmware/core/es_app.c: commands, HELLO, SCORES,
 * DET, STATUS, raw mode, the detector policy compiled into the model); this file is only its
 * port: lines to a pty or stdout, command bytes from the same pty or stdin, the monotonic clock,
 * and the WAV as the microphone. With --pty, lines that the pty cannot take (no host reading)
 * are not sent, as the board drops what USB cannot take.
 *
 *   pico_sim [options] FILE.wav     FILE: 16 kHz mono 16-bit PCM, at most 120 s
 *   --pty LINK          make a pty and a symlink LINK to its slave (what a host opens, like
 *                       /dev/serial/by-id/...); default: lines to stdout, commands from stdin
 *   --board NAME        board name in HELLO (default: host)
 *   --id HEX16          unique board id, 16 hex digits (default: 0000000000000001)
 *   --speed X           pace blocks at X times real time; 0 = as fast as possible (default: 1)
 *   --loop              start the WAV again at its end (device time keeps running)
 *   --status-ms MS      device time between STATUS lines (default: 5000)
 *   --silent-after MS   stop sending (and reading) after MS of device time and keep running:
 *                       a hung board, for tests of the host (default: never)
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

#include "es_app.h"
#include "es_common.h"
#include "es_protocol.h"

#define SIM_RATE ES_APP_RATE
#define SIM_MAX_SAMPLES (120u * SIM_RATE)

typedef struct {
    const char *wav;          /* input WAV */
    const char *pty;          /* symlink to make to a new pty's slave, or NULL: stdout/stdin */
    const char *board;        /* board name in HELLO */
    uint8_t id[ES_PROTO_ID_BYTES]; /* board id */
    double speed;             /* x real time, 0 = unpaced */
    bool loop;                /* rewind at the end */
    uint32_t status_ms;       /* device time between STATUS lines */
    uint32_t silent_after_ms; /* device time after which the board hangs (0: never) */
} SimArgs;

typedef struct {
    int out_fd;               /* where lines go */
    int in_fd;                /* where commands come from */
    bool drop_when_full;      /* a pty: drop lines nobody reads instead of blocking */
    bool hung;                /* --silent-after reached: nothing in, nothing out */
    bool failed;              /* a write failed (not a full pty): stop */
} Sim;

static int16_t g_audio[SIM_MAX_SAMPLES]; /* the whole WAV */
static EsApp g_app;                      /* ~23 KB, static as on the device */

static void usage(void)
{
    fprintf(stderr, "usage: pico_sim [--pty LINK] [--board NAME] [--id HEX16] [--speed X] [--loop]\n"
                    "                [--status-ms MS] [--silent-after MS] FILE.wav\n"
                    "The detector is the model's compiled policy (es_model_policy), as on a board.\n");
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
    } else if (strcmp(opt, "--silent-after") == 0 && parse_u32(val, 0xFFFFFFFFu, &v) && v > 0u) {
        a->silent_after_ms = v;
    } else {
        return false;
    }
    return true;
}

static bool parse_args(int argc, char **argv, SimArgs *a)
{
    *a = (SimArgs){.board = "host", .id = {0, 0, 0, 0, 0, 0, 0, 1}, .speed = 1.0,
                   .status_ms = 5000u};
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

/* EsPort.write_line: the whole line, or (a full pty) none of it */
static bool port_write(void *ctx, const char *line, size_t len)
{
    Sim *s = ctx;
    size_t done = 0;
    if (s->hung || s->failed) {
        return false;
    }
    if (s->drop_when_full) {
        struct pollfd p = {.fd = s->out_fd, .events = POLLOUT};
        if (poll(&p, 1, 0) <= 0 || (p.revents & POLLOUT) == 0) {
            return false;
        }
    }
    while (done < len) {
        ssize_t w = write(s->out_fd, line + done, len - done);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue; /* the rest of a started line: finish it, never tear it */
        }
        if (w <= 0) {
            fprintf(stderr, "pico_sim: write failed: %s\n", strerror(errno));
            s->failed = true;
            return false;
        }
        done += (size_t)w;
    }
    return true;
}

/* EsPort.read_byte: one waiting command byte, never blocking */
static int port_read(void *ctx)
{
    Sim *s = ctx;
    struct pollfd p = {.fd = s->in_fd, .events = POLLIN};
    unsigned char c = 0;
    if (s->hung || poll(&p, 1, 0) <= 0 || (p.revents & POLLIN) == 0) {
        return -1;
    }
    return read(s->in_fd, &c, 1) == 1 ? (int)c : -1; /* stdin closed: no host, keep running */
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t port_now_us(void *ctx)
{
    (void)ctx;
    return (uint32_t)now_us();
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
    es_app_hello(&g_app);
    uint64_t start = now_us();
    size_t pos = 0;
    while (!s->failed) {
        if (pos + ES_BLOCK > n) {
            if (!a->loop) {
                return 0;
            }
            pos = 0;
        }
        if (es_app_block(&g_app, &g_audio[pos], 0u) != ES_OK) {
            return 1; /* ERR model was sent */
        }
        pos += ES_BLOCK;
        s->hung = a->silent_after_ms != 0u && g_app.t_ms >= a->silent_after_ms;
        pace(a, start, g_app.t_ms);
        es_app_poll(&g_app);
    }
    return 1;
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
    Sim s = {.out_fd = STDOUT_FILENO, .in_fd = STDIN_FILENO};
    EsPort port = {.ctx = &s, .write_line = port_write, .read_byte = port_read,
                   .now_us = port_now_us, .led = NULL};
    EsAppConfig cfg = {.board = a.board, .status_ms = a.status_ms};
    memcpy(cfg.id, a.id, sizeof cfg.id);
    EsStatus st = es_app_init(&g_app, &port, &cfg, NULL);
    if (st != ES_OK) {
        fprintf(stderr, "pico_sim: the model does not fit the pipeline: %s\n", es_status_str(st));
        return 1;
    }
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
