/*
 * es_pdm.h — PDM microphone bit stream to 16 kHz PCM: CIC decimator + FIR compensation/decimation.
 *
 * Input: the 1-bit stream of a PDM microphone clocked at 1.024 MHz (16 kHz x 64), packed into
 * 32-bit words with the earliest bit in the most significant position (what an RP2040 PIO program
 * `in pins, 1` with left shift and autopush at 32 delivers by DMA). Output: int16 PCM at 16 kHz.
 *
 * Stages (all integer, portable C99, no malloc, state in a caller-owned EsPdm):
 *   1. CIC, order 4, decimation 16 (1.024 MHz -> 64 kHz). Bits are +1/-1; gain 16^4 = 2^16, so
 *      the output lies in [-65536, 65536]. uint32 integrators: wrap-around is exact (Hogenauer).
 *   2. FIR, 95 taps q15, decimation 4 (64 kHz -> 16 kHz), least-squares design that flattens the
 *      CIC's passband droop: within +0.12/-0.35 dB to 7 kHz (CIC included), <= -63 dB from 9 kHz.
 *   3. Optional DC blocker (one-pole high-pass, corner ~2.5 Hz at 16 kHz): PDM mics carry DC.
 *   4. Gain (build-time mic gain, q8: 256 = x1) and saturation to int16.
 * Full scale: a PDM stream of all ones is +32767 (before gain).
 */
#ifndef ES_PDM_H
#define ES_PDM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "es_common.h"

#define ES_PDM_CIC_ORDER 4
#define ES_PDM_CIC_RATIO 16
#define ES_PDM_FIR_RATIO 4
#define ES_PDM_DECIMATION (ES_PDM_CIC_RATIO * ES_PDM_FIR_RATIO) /* PDM bits per PCM sample */
#define ES_PDM_FIR_TAPS 95
#define ES_PDM_GAIN_UNITY 256
#define ES_PDM_GAIN_MAX 65536 /* x256 */

typedef struct {
    int32_t gain_q8; /* output gain, 256 = x1, 1..ES_PDM_GAIN_MAX */
    bool dc_block;   /* remove DC with a ~2.5 Hz one-pole high-pass */
} EsPdmConfig;

typedef struct {
    EsPdmConfig cfg;
    uint32_t integ[ES_PDM_CIC_ORDER];  /* CIC integrators (modulo 2^32) */
    uint32_t comb[ES_PDM_CIC_ORDER];   /* CIC comb delays */
    uint32_t cic_phase;                /* bits into the current CIC output, 0..15 */
    int32_t fir_hist[2 * ES_PDM_FIR_TAPS]; /* CIC outputs, mirrored ring for contiguous reads */
    uint32_t fir_pos;                  /* next write index in fir_hist, 0..TAPS-1 */
    uint32_t fir_phase;                /* CIC outputs into the current PCM sample, 0..3 */
    int32_t dc_x1;                     /* DC blocker: previous input (q8) */
    int32_t dc_y1;                     /* DC blocker: previous output (q8) */
} EsPdm;

/* Reset the filter state and take cfg. ES_ERR_ARG: NULL, or gain out of range. */
EsStatus es_pdm_init(EsPdm *pdm, const EsPdmConfig *cfg);

/* Most PCM samples es_pdm_process can write for n_words input words (state included). */
size_t es_pdm_max_out(size_t n_words);

/*
 * Decimate n_words 32-bit words of PDM bits into out (capacity out_cap samples); *n_out gets the
 * number written. Partial samples carry over to the next call, so any n_words works.
 * ES_ERR_ARG: NULL pointers. ES_ERR_SHAPE: out_cap < es_pdm_max_out(n_words) (nothing consumed).
 */
EsStatus es_pdm_process(EsPdm *pdm, const uint32_t *words, size_t n_words, int16_t *out,
                        size_t out_cap, size_t *n_out);

/* The FIR's q15 taps (sum 32768: unity gain at DC), for tests and documentation. */
extern const int16_t es_pdm_fir_taps[ES_PDM_FIR_TAPS];

#endif /* ES_PDM_H */
