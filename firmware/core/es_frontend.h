/*
 * es_frontend.h — the q15 front end: 16 kHz int16 PCM in, CMSIS-DSP magnitude spectrogram out.
 *
 * Exactly earshot/frontends.py's Q15FrontEnd, computed with the C sources of the same CMSIS-DSP
 * release as the Python package (1.10.3), so the two agree to the bit:
 *   frame of 256 samples -> arm_mult_q15 with the periodic Hann q15 table (es_hann_q15.h)
 *   -> arm_rfft_q15 (256, forward, bit reversal on) -> arm_cmplx_mag_q15 over bins 0..128.
 * The magnitude step is es_cmplx_mag_q15 (es_mag.h), which equals arm_cmplx_mag_q15 for every
 * input (proven over all 2^30 + 1 values its square root can see) but needs no 64-bit
 * multiply: on the Cortex-M0+, which has none, CMSIS's arm_sqrt_q31 was most of the block's
 * front-end cycles. Window multiply and FFT are es_rfft256_q15 (es_rfft.h): CMSIS's
 * arm_mult_q15 + arm_rfft_q15 to the bit (tested against its C sources on millions of frames),
 * in fewer passes and without CMSIS's generic loops.
 * Frames start every 128 samples; a 1 s clip (16000 samples) gives 124 frames x 129 bins.
 *
 * Streaming: es_frontend_push_block takes 512 new samples (32 ms) and yields the 4 frames that
 * end inside them. It keeps the last 128 samples of the previous block as the overlap tail
 * (zeros at start-up, as if silence preceded the stream). After block b (0-based) the newest
 * frame ends at the block's last sample, so the last 124 frames are exactly Q15FrontEnd.native()
 * of the last 16000 samples of the stream (with zeros before sample 0).
 *
 * EsSpectrogram is the rolling 124 x 129 int16 spectrogram (oldest frame first, as the model
 * sees it); es_frontend_quantize turns magnitudes into the model's int8 input with TFLite's
 * MultiplyByQuantizedMultiplier, bit for bit earshot.frontends.q15_to_int8.
 */
#ifndef ES_FRONTEND_H
#define ES_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arm_math.h"
#include "es_common.h"

#define ES_SAMPLE_RATE 16000  /* Hz */
#define ES_FFT_LEN 256        /* samples per frame */
#define ES_HOP 128            /* samples between frame starts */
#define ES_BINS 129           /* ES_FFT_LEN / 2 + 1 magnitudes per frame */
#define ES_FRAMES 124         /* frames in a 1 s clip: (16000 - 256) / 128 + 1 */
#define ES_CLIP_SAMPLES 16000 /* samples in the clip the model sees (1 s) */
#define ES_BLOCK 512          /* samples per block of the firmware loop (32 ms) */
#define ES_FRAMES_PER_BLOCK (ES_BLOCK / ES_HOP)   /* 4 */
#define ES_TAIL (ES_FFT_LEN - ES_HOP)             /* 128 overlap samples kept between blocks */

typedef struct {
    int16_t work[ES_TAIL + ES_BLOCK];       /* the last 128 samples of the previous block (the
                                               tail), then the new block (only its first 128
                                               samples when the block is word-aligned) */
    int16_t fft_work[ES_FFT_LEN];           /* es_rfft256_q15's scratch */
    int16_t spectrum[ES_FFT_LEN + 2];       /* bins 0..128 as (re, im) (es_rfft256_q15) */
    uint32_t blocks;                        /* blocks pushed since init */
} EsFrontEnd;

typedef struct {
    int16_t mag[ES_FRAMES][ES_BINS]; /* magnitudes, row 0 the oldest frame */
} EsSpectrogram;

/* Reset: tail zeroed, FFT instance set up. ES_ERR_ARG: fe NULL. */
EsStatus es_frontend_init(EsFrontEnd *fe);

/* One frame of ES_FFT_LEN samples -> ES_BINS magnitudes. ES_ERR_ARG: NULL pointers. */
EsStatus es_frontend_frame(EsFrontEnd *fe, const int16_t samples[ES_FFT_LEN],
                           int16_t out[ES_BINS]);

/*
 * Push one block of ES_BLOCK samples; writes the ES_FRAMES_PER_BLOCK new frames, oldest first.
 * ES_ERR_ARG: NULL pointers.
 */
EsStatus es_frontend_push_block(EsFrontEnd *fe, const int16_t block[ES_BLOCK],
                                int16_t frames[ES_FRAMES_PER_BLOCK][ES_BINS]);

/* From scratch: one clip of ES_CLIP_SAMPLES samples -> the whole spectrogram (no streaming). */
EsStatus es_frontend_clip(EsFrontEnd *fe, const int16_t clip[ES_CLIP_SAMPLES],
                          EsSpectrogram *out);

/* Zero every frame (the spectrogram of silence). ES_ERR_ARG: spec NULL. */
EsStatus es_spectrogram_clear(EsSpectrogram *spec);

/* Drop the n oldest frames and append n new ones (n <= ES_FRAMES). ES_ERR_ARG: NULL, n too big. */
EsStatus es_spectrogram_push(EsSpectrogram *spec, const int16_t (*frames)[ES_BINS], size_t n);

/*
 * mag[0..n) -> out[0..n): clamp(zero_point + MultiplyByQuantizedMultiplier(mag, multiplier,
 * shift), -128, 127), with (multiplier, shift) = QuantizeMultiplier(1 / input_scale), TFLite's
 * reference arithmetic. Bit for bit earshot.frontends.q15_to_int8 for every input scale > 2^-16
 * (smaller scales saturate every nonzero magnitude, as the exact result would).
 * ES_ERR_ARG: NULL pointers, multiplier not in [2^30, 2^31), shift outside -31..30.
 */
EsStatus es_frontend_quantize(const int16_t *mag, size_t n, int32_t multiplier, int32_t shift,
                              int32_t zero_point, int8_t *out);

/*
 * The same quantisation as a table, exact by construction. For fixed (multiplier, shift,
 * zero_point) the int8 value is a step function of the magnitude m. es_quant_table_init
 * evaluates es_frontend_quantize itself at every m in [0, 32767] and picks the widest bucket
 * 2^k (k <= 8) such that inside each bucket [b 2^k, (b + 1) 2^k) the value is one number q_b,
 * or q_b below an offset t_b and q_b + 1 from it (always true at k = 0); above the last bucket
 * the value is constant (top). Entry b is (uint8(q_b) << 8) + 256 - t_b (t_b = 256: no step),
 * so that q = low byte of (entry[m >> k] + (m & (2^k - 1))) >> 8: the carry adds the step.
 * Input scales whose table would need more than ES_QTABLE_MAX buckets, and negative m, use
 * es_frontend_quantize per value. tests/test_firmware_frontend.py compares both on every int16.
 */
#define ES_QTABLE_MAX 640 /* buckets; at most 508 over a sweep of scales 2^-16..2^15 (tested) */

typedef struct {
    uint16_t entry[ES_QTABLE_MAX]; /* per bucket: (uint8(q_b) << 8) + 256 - t_b */
    uint16_t buckets;              /* entries used; m >= buckets << shift_k gives top */
    uint8_t shift_k;               /* bucket width 2^shift_k */
    int8_t top;                    /* the value for m >= buckets << shift_k */
    bool table;                    /* false: too many buckets, every value via the reference */
    int32_t multiplier, shift, zero_point; /* for the reference */
} EsQuantTable;

/* Build t for (multiplier, shift, zero_point). ES_ERR_ARG: NULL, or as es_frontend_quantize. */
EsStatus es_quant_table_init(EsQuantTable *t, int32_t multiplier, int32_t shift,
                             int32_t zero_point);

/* es_frontend_quantize(mag, n, t's multiplier, shift, zero point, out), bit for bit. */
EsStatus es_quant_table_apply(const EsQuantTable *t, const int16_t *mag, size_t n, int8_t *out);

/*
 * The q15log front end's int8 input, by breakpoints: out[i] = values[j] for the last j with
 * starts[j] <= mag[i] (a negative magnitude, which arm_cmplx_mag_q15 never gives, counts as 0).
 * (starts, values) are earshot.quant.log_mag_breakpoints of log_mag_int8_table(input scale,
 * zero point): q = clamp(zero_point + floor(ln(1 + m) / scale + 0.5)) for every m, computed
 * once by the compiler, so no logarithm runs here and the result is the Python table's to the
 * bit (tests/test_firmware_frontend.py checks every int16). Magnitudes below ES_LOG_LOW (nearly
 * all of them: speech at a normal level has 99 % of its bins under 120) read a table that
 * es_log_quant_init fills from the breakpoints; larger ones a binary search (at most 8 steps).
 */
#define ES_LOG_LOW 512

typedef struct {
    const uint16_t *starts; /* breakpoints: the magnitudes where the value changes */
    const int8_t *values;   /* the value from each start on */
    uint16_t count;         /* breakpoints, 1..256 */
    int8_t low[ES_LOG_LOW]; /* the value of every magnitude below ES_LOG_LOW */
} EsLogQuant;

/* Fill q from the breakpoints (kept by pointer). ES_ERR_ARG: NULL, count 0 or above 256,
 * starts[0] != 0 or starts not increasing. */
EsStatus es_log_quant_init(EsLogQuant *q, const uint16_t *starts, const int8_t *values,
                           uint16_t count);

/* mag[0..n) -> out[0..n) as above. ES_ERR_ARG: NULL pointers. */
EsStatus es_log_quant_apply(const EsLogQuant *q, const int16_t *mag, size_t n, int8_t *out);

#endif /* ES_FRONTEND_H */
