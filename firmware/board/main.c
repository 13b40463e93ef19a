/*
 * main.c — earshot on an RP2040 board: only the pico-sdk glue around the device application.
 *
 * The application (commands, HELLO, SCORES, DET, STATUS, raw mode, the compiled detector
 * policy) is firmware/core/es_app.c, the same code pico_sim and es_host run. Here: PIO clocks
 * the PDM mic at 1.024 MHz; two chained DMA channels fill two buffers of 1024 words (one 32 ms
 * block of PDM) in turn; the loop turns each full buffer into 512 PCM samples (es_pdm) and hands
 * them to es_app_block with the number of buffers the DMA overwrote before they were processed
 * (STATUS dropped). EsPort: lines to USB CDC (dropped while no host has the port open, so a
 * board never blocks), command bytes from USB without blocking, time_us_32, the LED's PWM.
 */
#include <stdio.h>

#include "hardware/clocks.h"
#include "hardware/dma.h"
#include "hardware/gpio.h"
#include "hardware/irq.h"
#include "hardware/pio.h"
#include "hardware/pwm.h"
#include "pdm_mic.pio.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"

#include "es_app.h"
#include "es_pdm.h"
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
#define ES_PDM_HZ 1024000u                               /* 16 kHz x 64 */
#define ES_DMA_WORDS (ES_BLOCK * ES_PDM_DECIMATION / 32) /* 1024 words = one block */
#define ES_STATUS_MS 5000u

static uint32_t g_pdm_buf[2][ES_DMA_WORDS];
static volatile uint32_t g_ready_mask; /* bit i: buffer i is full and not yet processed */
static volatile uint32_t g_overruns;   /* buffers refilled while still unprocessed */
static uint g_dma[2];
static EsPdm g_pdm;
static EsApp g_app;
static int16_t g_block[ES_BLOCK + 1]; /* es_pdm_max_out(ES_DMA_WORDS) = 513 */

static void __not_in_flash_func(dma_irq)(void)
{
    for (int i = 0; i < 2; i++) {
        if (dma_channel_get_irq0_status(g_dma[i])) {
            dma_channel_acknowledge_irq0(g_dma[i]);
            dma_channel_set_write_addr(g_dma[i], g_pdm_buf[i], false); /* re-arm */
            if (g_ready_mask & (1u << i)) {
                g_overruns++;
            }
            g_ready_mask |= 1u << i;
        }
    }
}

static void dma_start(PIO pio, uint sm)
{
    g_dma[0] = (uint)dma_claim_unused_channel(true);
    g_dma[1] = (uint)dma_claim_unused_channel(true);
    for (int i = 0; i < 2; i++) {
        dma_channel_config d = dma_channel_get_default_config(g_dma[i]);
        channel_config_set_transfer_data_size(&d, DMA_SIZE_32);
        channel_config_set_read_increment(&d, false);
        channel_config_set_write_increment(&d, true);
        channel_config_set_dreq(&d, pio_get_dreq(pio, sm, false));
        channel_config_set_chain_to(&d, g_dma[1 - i]); /* ping-pong */
        dma_channel_configure(g_dma[i], &d, g_pdm_buf[i], &pio->rxf[sm], ES_DMA_WORDS, false);
        dma_channel_set_irq0_enabled(g_dma[i], true);
    }
    irq_set_exclusive_handler(DMA_IRQ_0, dma_irq);
    irq_set_enabled(DMA_IRQ_0, true);
    dma_channel_start(g_dma[0]);
}

static void pdm_start(void)
{
    PIO pio = pio0;
    uint sm = (uint)pio_claim_unused_sm(pio, true);
    uint offset = (uint)pio_add_program(pio, &pdm_mic_program);
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
    dma_start(pio, sm);
    pio_sm_set_enabled(pio, sm, true);
}

static void led_init(void)
{
    gpio_set_function(ES_LED_PIN, GPIO_FUNC_PWM);
    uint slice = pwm_gpio_to_slice_num(ES_LED_PIN);
    pwm_set_wrap(slice, 65535);
    pwm_set_enabled(slice, true);
}

/* EsPort.led: brightness from a score level 0..256, squared so that low scores stay dark */
static void port_led(void *ctx, uint16_t level)
{
    (void)ctx;
    uint32_t duty = (uint32_t)level * level;
    pwm_set_gpio_level(ES_LED_PIN, (uint16_t)(duty > 65535u ? 65535u : duty));
}

/* EsPort.write_line: to USB CDC, or nowhere while no host has the port open */
static bool port_write(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (!stdio_usb_connected()) {
        return false;
    }
    fwrite(line, 1, len, stdout);
    fflush(stdout);
    return true;
}

static int port_read(void *ctx)
{
    (void)ctx;
    int c = getchar_timeout_us(0);
    return c == PICO_ERROR_TIMEOUT ? -1 : (c & 0xFF);
}

static uint32_t port_now_us(void *ctx)
{
    (void)ctx;
    return time_us_32();
}

/* The next full buffer's PCM in g_block, and the overruns since the last call; false: none. */
static bool next_block(uint32_t *lost)
{
    static uint32_t seen_overruns;
    uint32_t ready = g_ready_mask;
    if (ready == 0u) {
        return false;
    }
    int i = (ready & 1u) ? 0 : 1;
    size_t n = 0;
    es_pdm_process(&g_pdm, g_pdm_buf[i], ES_DMA_WORDS, g_block, ES_BLOCK + 1, &n);
    __atomic_fetch_and(&g_ready_mask, ~(1u << i), __ATOMIC_SEQ_CST);
    uint32_t overruns = g_overruns;
    *lost = overruns - seen_overruns;
    seen_overruns = overruns;
    return true;
}

int main(void)
{
    stdio_init_all();
    led_init();
    EsPort port = {.ctx = NULL, .write_line = port_write, .read_byte = port_read,
                   .now_us = port_now_us, .led = port_led};
    EsAppConfig cfg = {.board = ES_BOARD_NAME, .status_ms = ES_STATUS_MS};
    pico_unique_board_id_t uid;
    pico_get_unique_board_id(&uid);
    for (int i = 0; i < ES_PROTO_ID_BYTES; i++) {
        cfg.id[i] = uid.id[i];
    }
    EsPdmConfig pc = {.gain_q8 = ES_MIC_GAIN_Q8, .dc_block = true};
    EsStatus st = es_pdm_init(&g_pdm, &pc);
    if (st == ES_OK) {
        st = es_app_init(&g_app, &port, &cfg, NULL);
    }
    for (size_t len = 0; st != ES_OK; sleep_ms(1000)) { /* the model does not fit: say so */
        if (es_proto_err("model", es_status_str(st), g_app.line, sizeof g_app.line, &len) == ES_OK) {
            port_write(NULL, g_app.line, len);
        }
    }
    pdm_start();
    es_app_hello(&g_app);
    for (;;) {
        es_app_poll(&g_app);
        uint32_t lost = 0;
        if (next_block(&lost)) {
            es_app_block(&g_app, g_block, lost);
        }
    }
}
