/*
 * es_size_image.c — a minimal bare-metal program around the block loop, for the cross builds.
 *
 * Linked with --gc-sections and newlib's nosys specs, it holds exactly what the firmware's loop
 * needs (front end, CMSIS-DSP, model, detector), so arm-none-eabi-size on it is the flash and
 * static RAM of core + model. It is not a board application: the audio comes from es_image_block,
 * which a debugger or the cycle benchmark (bench/mcu_cycles.py) may fill before es_image_run.
 */
#include <stdbool.h>
#include <stdint.h>

#include "es_app.h"
#include "es_pipeline.h"

EsPipeline es_image_pipeline;            /* the loop's state (static RAM) */
int16_t es_image_block[ES_BLOCK];        /* one block of PCM, filled from outside */
volatile uint32_t es_image_result;       /* last status | fired << 8, readable from outside */

/* Run the block loop once on es_image_block; returns status | fired << 8. */
uint32_t es_image_run(uint32_t t_ms)
{
    EsDetection det;
    bool fired = false;
    EsStatus st = es_pipeline_push_block(&es_image_pipeline, es_image_block, t_ms, &det, &fired);
    es_image_result = (uint32_t)st | ((fired ? 1U : 0U) << 8);
    return es_image_result;
}

int main(void)
{
    EsDetectorConfig c;
    (void)es_app_detector_config(&c); /* the model's compiled policy, as on a board */
    EsStatus st = es_pipeline_init(&es_image_pipeline, &c);
    if (st != ES_OK) {
        return (int)st;
    }
    for (uint32_t b = 1; b <= 4; b++) {
        (void)es_image_run(b * 32U);
    }
    return (int)(es_image_result & 0xFFU);
}
