/*
 * es_kernels.h — int8 kernels with TensorFlow Lite's int8 REFERENCE semantics.
 *
 * Tensors are NHWC with batch 1, int8, row-major. Every kernel takes a const parameter struct
 * (emitted into flash by `earshot-train compile`, with all multipliers and shifts already
 * computed), an input and an output buffer owned by the caller, and returns an EsStatus:
 * ES_ERR_ARG for NULL pointers, ES_ERR_SHAPE for inconsistent dimensions, ES_ERR_RANGE for
 * parameters outside what the arithmetic supports. No kernel allocates, and none uses floating
 * point: where the reference computes in float (RESIZE_NEAREST_NEIGHBOR's source index), the
 * compiler evaluates the float formula at compile time and emits integer tables.
 *
 * Bit-exactness target: TFLite Micro on every input, and TFLite's reference kernels wherever
 * they agree with TFLM. They differ only in FULLY_CONNECTED, whose reference kernel (TF 2.21)
 * rescales in float; here, as in TFLM, it is MultiplyByQuantizedMultiplier (docs/compiler.md).
 *
 * Fixed-point arithmetic follows gemmlowp/TFLite:
 *   MultiplyByQuantizedMultiplier(x, m, s) = RoundingDivideByPOT(
 *       SaturatingRoundingDoublingHighMul(x * 2^max(s,0), m), max(-s,0))
 * Right shifts of negative values assume an arithmetic shift (gcc and clang on every target).
 */
#ifndef ES_KERNELS_H
#define ES_KERNELS_H

#include <stdint.h>

#include "es_common.h"

/* Height, width, channels of a batch-1 NHWC tensor. */
typedef struct {
    int32_t h;
    int32_t w;
    int32_t c;
} EsDims;

/* CONV_2D and DEPTHWISE_CONV_2D (per-channel quantised, dilation 1). */
typedef struct {
    EsDims in;
    EsDims out;
    int32_t kh, kw;            /* filter height, width */
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;      /* top and left padding (SAME: TFLite's ComputePadding; VALID: 0) */
    int32_t depth_multiplier;  /* depthwise: out.c = in.c * depth_multiplier; conv: unused */
    int32_t input_offset;      /* -input zero point */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;  /* fused activation range, in output quanta */
    const int8_t *filter;      /* conv [out.c][kh][kw][in.c]; depthwise [kh][kw][out.c] */
    const int32_t *bias;       /* out.c values (scale in*filter), or NULL */
    const int32_t *mult;       /* out.c q31 multipliers */
    const int32_t *shift;      /* out.c exponents */
} EsConvParams;

/*
 * CONV_2D fast path (es_conv2d_x4_s8): the filter again as int32, in groups of 4 output
 * channels, [ceil(out.c / 4)][kh * kw * in.c][4], zero past out.c; emitted by the compiler
 * when kh * kw * in.c <= ES_CONV_PATCH_MAX. The kernel gathers each output pixel's input patch
 * once (x + input_offset, 0 where TFLite skips a padded tap) and runs 4 output channels per
 * pass over it: per tap one LDM of the patch value, then LDR/MULS/ADDS per channel (on the
 * M0+ LDR has an immediate offset and LDRSB does not; int32 weights need no sign extension).
 * Same results as es_conv2d_s8 on conv, to the bit.
 */
typedef struct {
    EsConvParams conv;
    const int32_t *filter_x4;
} EsConvX4Params;

/* Largest kh * kw * in.c of the CONV_2D fast path (its patch is an int32 stack array). */
#define ES_CONV_PATCH_MAX 256

/* FULLY_CONNECTED: out[b][o] = requant(sum_i (in[b][i] + input_offset) * (w[o][i] + filter_offset)). */
typedef struct {
    int32_t batches;
    int32_t in_depth;
    int32_t out_depth;
    int32_t input_offset;      /* -input zero point */
    int32_t filter_offset;     /* -filter zero point (0 for the converter's symmetric weights) */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;
    int32_t per_channel;       /* 1: mult/shift have out_depth entries; 0: one entry */
    const int8_t *filter;      /* [out_depth][in_depth] */
    const int32_t *bias;       /* out_depth values, or NULL */
    const int32_t *mult;
    const int32_t *shift;
} EsFullyConnectedParams;

/* MAX_POOL_2D and AVERAGE_POOL_2D (input and output share scale and zero point). */
typedef struct {
    EsDims in;
    EsDims out;
    int32_t fh, fw;            /* window height, width */
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t act_min, act_max;
} EsPoolParams;

/* RESIZE_BILINEAR, the reference's integer path (10 fractional bits). */
typedef struct {
    EsDims in;
    EsDims out;
    int32_t align_corners;
    int32_t half_pixel_centers;
} EsResizeBilinearParams;

/* RESIZE_NEAREST_NEIGHBOR: source row/column per output row/column, computed at compile time. */
typedef struct {
    EsDims in;
    EsDims out;
    const int16_t *src_y;      /* out.h entries */
    const int16_t *src_x;      /* out.w entries */
} EsResizeNearestParams;

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128), gemmlowp fixed point. */
typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier;  /* PreprocessSoftmaxScaling(beta, input scale, 5 integer bits) */
    int32_t input_left_shift;
    int32_t diff_min;          /* -CalculateInputRadius(5, input_left_shift) */
} EsSoftmaxParams;

/* LOGISTIC int8 -> int8 (output scale 1/256, zero point -128), gemmlowp fixed point. */
typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;  /* q31 of input scale * 2^27 */
    int32_t input_left_shift;
} EsLogisticParams;

/*
 * MEAN over H and W of an NHWC tensor, one value per channel, all integer (TFLite's
 * QuantizedMeanOrSum, as both its reference kernels and TFLM run it):
 *   out = clamp(MultiplyByQuantizedMultiplier(sum - n * input_zero_point, mult, shift)
 *               + output_zero_point)
 * where the compiler has folded 1/n (n = h * w) into mult and shift.
 */
typedef struct {
    EsDims in;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t mult;              /* q31 multiplier of in_scale / out_scale / n */
    int32_t shift;             /* its exponent (>= -31) */
} EsMeanParams;

/* ADD, SUB, MUL of int8 tensors with numpy-style broadcasting over 4 dimensions. */
typedef enum { ES_BIN_ADD = 0, ES_BIN_SUB = 1, ES_BIN_MUL = 2 } EsBinaryOp;

typedef struct {
    EsBinaryOp op;
    int32_t out_dims[4];       /* output shape, padded to 4 dimensions at the front with 1 */
    int32_t in1_strides[4];    /* element strides of input 1 per output dimension, 0 = broadcast */
    int32_t in2_strides[4];
    int32_t input1_offset;     /* -zero point of input 1 */
    int32_t input2_offset;
    int32_t output_offset;     /* output zero point */
    int32_t left_shift;        /* ADD/SUB: 20 (TFLite int8); MUL: 0 */
    int32_t input1_multiplier, input1_shift;  /* ADD/SUB only */
    int32_t input2_multiplier, input2_shift;  /* ADD/SUB only */
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} EsBinaryParams;

/* QUANTIZE int8 -> int8 (requantise to another scale/zero point). */
typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t mult;
    int32_t shift;
} EsRequantizeParams;

/* gemmlowp primitives, exposed for the front end's input quantisation and for tests. */
int32_t es_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t es_rounding_divide_by_pot(int32_t x, int32_t exponent);
int32_t es_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift);

EsStatus es_conv2d_s8(const EsConvParams *p, const int8_t *input, int8_t *output);
EsStatus es_conv2d_x4_s8(const EsConvX4Params *p, const int8_t *input, int8_t *output);
EsStatus es_depthwise_conv2d_s8(const EsConvParams *p, const int8_t *input, int8_t *output);
EsStatus es_fully_connected_s8(const EsFullyConnectedParams *p, const int8_t *input,
                               int8_t *output);
EsStatus es_max_pool2d_s8(const EsPoolParams *p, const int8_t *input, int8_t *output);
EsStatus es_avg_pool2d_s8(const EsPoolParams *p, const int8_t *input, int8_t *output);
EsStatus es_resize_bilinear_s8(const EsResizeBilinearParams *p, const int8_t *input,
                               int8_t *output);
EsStatus es_resize_nearest_s8(const EsResizeNearestParams *p, const int8_t *input,
                              int8_t *output);
EsStatus es_softmax_s8(const EsSoftmaxParams *p, const int8_t *input, int8_t *output);
EsStatus es_logistic_s8(const EsLogisticParams *p, const int8_t *input, int8_t *output);
EsStatus es_mean_hw_s8(const EsMeanParams *p, const int8_t *input, int8_t *output);
EsStatus es_binary_s8(const EsBinaryParams *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
EsStatus es_requantize_s8(const EsRequantizeParams *p, const int8_t *input, int8_t *output);

/*
 * Streaming variants: compute only output rows [row0, out.h) of the full output tensor (rows
 * before row0 are left as they are); row0 = 0 is the plain kernel. The compiled model's
 * es_model_invoke_stream moves a layer's output up by the rows one block shifts it, then calls
 * these for the rows whose input window reaches the new input rows (docs/compiler.md).
 * ES_ERR_RANGE: row0 outside 0..out.h.
 */
EsStatus es_conv2d_rows_s8(const EsConvParams *p, int32_t row0, const int8_t *input,
                           int8_t *output);
EsStatus es_conv2d_x4_rows_s8(const EsConvX4Params *p, int32_t row0, const int8_t *input,
                              int8_t *output);
EsStatus es_depthwise_conv2d_rows_s8(const EsConvParams *p, int32_t row0, const int8_t *input,
                                     int8_t *output);
EsStatus es_max_pool2d_rows_s8(const EsPoolParams *p, int32_t row0, const int8_t *input,
                               int8_t *output);
EsStatus es_avg_pool2d_rows_s8(const EsPoolParams *p, int32_t row0, const int8_t *input,
                               int8_t *output);

#endif /* ES_KERNELS_H */
