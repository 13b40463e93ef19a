/*
 * main.c — earshot on an RP2040 board: PDM mic -> es_pdm -> es_pipeline -> USB CDC + LED.
 *
 * PIO clocks the mic at 1.024 MHz and samples one bit per clock; two chained DMA channels fill
 * two buffers of 1024 words (32768 bits = 512 PCM samples = one 32 ms block) in turn, so a
 * whole block of PDM is ready every 32 ms and the loop has 32 ms to process it before its buffer
 * is refilled. Per block: es_pdm_process -> 512 samples; detect mode runs es_pipeline_push_block
 * and prints SCORES (and DET when the detector fires); raw mode prints two AUD frames. The LED's
 * PWM duty follows the best non-background score. Commands are read from USB without blocking.
 * Lines follow docs/serial-protocol.md; nothing is printed while no host has the port open.
 */
#include <stdio.h>
#include <string.h>

#include "hardware/clocks.h"
#include "hardware/dma.h"
#include "hardware/gpio.h"
#include "hardware/pio.h"
#include "hardware/pwm.h"
#include "pdm_mic.pio.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "es_common.h"
#include "es_model.h"
#include "es_pdm.h"
#include "es_pipeline.h"
#include "es_protocol.h"
#include ES_BOARD_HEADER

#ifndef ES_PDM_CLK_PIN
#define ES_PDM_CLK_PIN ES_BOARD_PDM_CLK_PIN
#endif
#ifndef ES_PDM_DATA_PIN
#define ES_PDM_DATA_PIN ES_BOARD_PDM_DATA_PIN
#endif
#ifndef ES_LED_PIN
#define ES_LED_PIN ES_BOARD_LED_PIN
#endif
#ifndef ES_THRESHOLD_LEVEL
#define ES_THRESHOLD_LEVEL 179 /* 0.7 in levels of 1/256, every label */
#endif
#define ES_FW_VERSION "0.1.0"
#define ES_PDM_HZ 1024000u                          /* 16 kHz x 64 */
#define ES_DMA_WORDS (ES_BLOCK * ES_PDM_DECIMATION / 32) /* 1024 words = one block */
#define ES_STATUS_MS 5000u

static uint32_t g_pdm_buf[2][ES_DMA_WORDS];
static volatile uint32_t g_ready_mask;  /* bit i: buffer i is full and not yet processed */
static volatile uint32_t g_overruns;    /* buffers completed while still unprocessed */
static int g_dma[2];
static EsPdm g_pdm;
static EsPipeline g_pipe;
static int16_t g_block[ES_BLOCK + 1];   /* es_pdm_max_out(ES_DMA_WORDS) = 513 */
static char g_line[ES_PROTO_MAX_LINE + 1];
static EsMode g_mode = ES_MODE_DETECT;
static uint32_t g_seq;
static uint32_t g_dropped_lines;

static void dma_irq(void)
{
    for (int i = 0; i < 2; i++) {
        if (dma_channel_get_irq0_status((uint)g_dma[i])) {
            dma_channel_acknowledge_irq0((uint)g_dma[i]);
            dma_channel_set_write_addr((uint)g_dma[i], g_pdm_buf[i], false); /* re-arm */
            if (g_ready_mask & (1u << i)) {
                g_overruns++;
            }
            g_ready_mask |= 1u << i;
        }
    }
}

static void pdm_start(void)
{
    PIO pio = pio0;
    uint sm = pio_claim_unused_sm(pio, true);
    uint offset = pio_add_program(pio, &pdm_mic_program);
    pio_sm_config c = pdm_mic_program_get_default_config(offset);
    sm_config_set_sideset_pins(&c, ES_PDM_CLK_PIN);
    sm_config_set_in_pins(&c, ES_PDM_DATA_PIN);
    sm_config_set_in_shift(&c, false, true, 32); /* shift left, autopush: first bit -> MSB */
    sm_config_set_fifo_join(&c, PIO_FIFO_JOIN_RX);
    sm_config_set_clkdiv(&c, (float)clock_get_hz(clk_sys) / (2.0f * (float)ES_PDM_HZ));
    pio_gpio_init(pio, ES_PDM_CLK_PIN);
    pio_sm_set_consecutive_pindirs(pio, sm, ES_PDM_CLK_PIN, 1, true);
    pio_sm_set_consecutive_pindirs(pio, sm, ES_PDM_DATA_PIN, 1, false);
    pio_sm_init(pio, sm, offset, &c);

    g_dma[0] = dma_claim_unused_channel(true);
    g_dma[1] = dma_claim_unused_channel(true);
    for (int i = 0; i < 2; i++) {
        dma_channel_config d = dma_channel_get_default_config((uint)g_dma[i]);
        channel_config_set_transfer_data_size(&d, DMA_SIZE_32);
        channel_config_set_read_increment(&d, false);
        channel_config_set_write_increment(&d, true);
        channel_config_set_dreq(&d, pio_get_dreq(pio, sm, false));
        channel_config_set_chain_to(&d, (uint)g_dma[1 - i]); /* ping-pong */
        dma_channel_configure((uint)g_dma[i], &d, g_pdm_buf[i], &pio->rxf[sm], ES_DMA_WORDS, false);
        dma_channel_set_irq0_enabled((uint)g_dma[i], true);
    }
    irq_set_exclusive_handler(DMA_IRQ_0, dma_irq);
    irq_set_enabled(DMA_IRQ_0, true);
    dma_channel_start((uint)g_dma[0]);
    pio_sm_set_enabled(pio, sm, true);
}

static void led_init(void)
{
    gpio_set_function(ES_LED_PIN, GPIO_FUNC_PWM);
    uint slice = pwm_gpio_to_slice_num(ES_LED_PIN);
    pwm_set_wrap(slice, 65535);
    pwm_set_enabled(slice, true);
}

/* LED brightness from a score level 0..256, squared so that low scores stay dark. */
static void led_level(uint32_t level)
{
    uint32_t duty = level * level;
    pwm_set_gpio_level(ES_LED_PIN, (uint16_t)(duty > 65535u ? 65535u : duty));
}

static void send(EsStatus st)
{
    if (st != ES_OK || !stdio_usb_connected()) {
        g_dropped_lines++; /* no host: a board never blocks on USB */
        return;
    }
    fputs(g_line, stdout);
    fflush(stdout);
}

static void send_hello(void)
{
    pico_unique_board_id_t uid;
    pico_get_unique_board_id(&uid);
    EsHello h = {.fw = ES_FW_VERSION, .board = ES_BOARD_NAME, .model_sha256 = es_model_info.sha256,
                 .labels = es_model_info.labels, .n_labels = es_model_info.n_labels,
                 .rate = 16000u, .mode = g_mode};
    memcpy(h.id, uid.id, sizeof h.id);
    size_t len;
    send(es_proto_hello(&h, g_line, sizeof g_line, &len));
}

static void poll_commands(EsCmdReader *r)
{
    size_t len;
    for (int c = getchar_timeout_us(0); c != PICO_ERROR_TIMEOUT; c = getchar_timeout_us(0)) {
        EsCommand cmd;
        es_cmd_reader_feed(r, (char)c, &cmd);
        if (cmd.kind == ES_CMD_HELLO) {
            send_hello();
        } else if (cmd.kind == ES_CMD_MODE) {
            g_mode = cmd.mode;
            g_seq = 0;
            send(es_proto_ok(g_mode, g_line, sizeof g_line, &len));
            send_hello();
        } else if (cmd.kind == ES_CMD_BAD) {
            send(es_proto_err("bad_cmd", "unknown command", g_line, sizeof g_line, &len));
        } else if (cmd.kind == ES_CMD_TOO_LONG) {
            send(es_proto_err("too_long", "command line too long", g_line, sizeof g_line, &len));
        }
    }
}

static void detect_block(uint32_t t_ms)
{
    EsDetection d;
    bool fired = false;
    size_t len;
    EsStatus st = es_pipeline_push_block(&g_pipe, g_block, t_ms, &d, &fired);
    if (st != ES_OK) {
        send(es_proto_err("model", es_status_str(st), g_line, sizeof g_line, &len));
        return;
    }
    send(es_proto_scores(t_ms, g_pipe.levels, es_model_info.n_labels, g_line, sizeof g_line, &len));
    uint32_t best = 0;
    for (uint16_t i = 0; i < es_model_info.n_labels; i++) {
        if (es_model_info.labels[i][0] != '_' && g_pipe.levels[i] > best) {
            best = g_pipe.levels[i];
        }
    }
    led_level(best);
    if (fired) {
        uint32_t den = (uint32_t)ES_LEVEL_ONE * d.count;
        uint32_t milli = (uint32_t)(((uint64_t)d.level_sum * 1000u + den / 2u) / den);
        send(es_proto_det(t_ms, es_model_info.labels[d.index], milli > 1000u ? 1000u : milli,
                          g_line, sizeof g_line, &len));
    }
}

static void raw_block(void)
{
    size_t len;
    for (size_t off = 0; off < ES_BLOCK; off += ES_PROTO_AUDIO_MAX) {
        send(es_proto_audio(g_seq++, &g_block[off], ES_PROTO_AUDIO_MAX, g_line, sizeof g_line, &len));
    }
}

int main(void)
{
    stdio_init_all();
    led_init();
    EsPdmConfig pc = {.gain_q8 = ES_MIC_GAIN_Q8, .dc_block = true};
    EsDetectorConfig dc = {.n_labels = es_model_info.n_labels, .average_window_ms = 1000u,
                           .min_count = 3u, .suppression_ms = 1500u,
                           .max_history = ES_DETECTOR_MAX_HISTORY};
    for (uint16_t i = 0; i < es_model_info.n_labels; i++) {
        dc.thresholds[i] = ES_THRESHOLD_LEVEL;
        if (es_model_info.labels[i][0] == '_') {
            dc.ignore_mask |= 1u << i; /* _silence_, _unknown_, _background_ never fire */
        }
    }
    EsCmdReader reader;
    es_cmd_reader_init(&reader);
    if (es_pdm_init(&g_pdm, &pc) != ES_OK || es_pipeline_init(&g_pipe, &dc) != ES_OK) {
        for (;;) { /* a build whose model does not fit the pipeline: say so forever */
            size_t len;
            send(es_proto_err("model", "pipeline init failed", g_line, sizeof g_line, &len));
            sleep_ms(1000);
        }
    }
    pdm_start();
    send_hello();
    uint32_t t_ms = 0, last_status = 0, worst_us = 0, busy_us = 0, blocks = 0;
    for (;;) {
        poll_commands(&reader);
        uint32_t ready = g_ready_mask;
        if (ready == 0u) {
            continue;
        }
        int i = (ready & 1u) ? 0 : 1;
        uint32_t t0 = time_us_32();
        size_t n = 0;
        es_pdm_process(&g_pdm, g_pdm_buf[i], ES_DMA_WORDS, g_block, ES_BLOCK + 1, &n);
        __atomic_fetch_and(&g_ready_mask, ~(1u << i), __ATOMIC_SEQ_CST);
        blocks++;
        t_ms = blocks * (ES_BLOCK * 1000u / 16000u); /* device time: end of this block */
        if (g_mode == ES_MODE_RAW) {
            raw_block();
        } else {
            detect_block(t_ms);
        }
        uint32_t dt = time_us_32() - t0;
        busy_us += dt;
        worst_us = dt > worst_us ? dt : worst_us;
        if (t_ms - last_status >= ES_STATUS_MS) {
            EsHealth h = {.t_ms = t_ms, .loop_us = worst_us,
                          .cpu = busy_us / ((t_ms - last_status) * 10u), .dropped = g_overruns,
                          .mode = g_mode};
            size_t len;
            send(es_proto_health(&h, g_line, sizeof g_line, &len));
            last_status = t_ms;
            worst_us = busy_us = 0;
        }
    }
}
