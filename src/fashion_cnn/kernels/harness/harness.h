/* What test_kernels.c and bench_kernels.c share: the kernels' six entry points (../csrc; declared here as
 * kernels/build.py declares them for ctypes, since the kernels have no header of their own) and the plain
 * reference (reference.c), which has the same six under a ref_ prefix, with the same arguments and layouts.
 *
 * Layouts (all row-major, channels last): the first block's x is (N, H, W) and its weight (F, 1, 3, 3) = [F][9];
 * the Winograd block's x is (N, H, W, C) and its weight (F, 3, 3, C); every out, arg and grad_out is
 * (N, H/2, W/2, F or C); arg is the window's winner, 0-3 = row * 2 + column. Return 0 (done), 1 (refused
 * input), 2 (out of memory). */
#ifndef FASHION_CNN_HARNESS_H
#define FASHION_CNN_HARNESS_H
#include <stdint.h>

int conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, const float *weight, const float *bias, int64_t f,
                           float *out, uint8_t *arg);
int conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, const float *out, const uint8_t *arg,
                            const float *grad_out, int64_t f, float *grad_weight, float *grad_bias);
int pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg);
int pool_relu_backward(const float *out, const uint8_t *arg, const float *grad_out, int64_t n, int64_t h, int64_t w, int64_t c,
                       float *grad_in);
int winograd_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight,
                                    const float *bias, int64_t f, float *out, uint8_t *arg);
int winograd_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, int64_t f,
                                     const float *out, const uint8_t *arg, const float *grad, float *grad_x, float *grad_weight,
                                     float *grad_bias);

int ref_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, const float *weight, const float *bias, int64_t f,
                               float *out, uint8_t *arg);
int ref_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, const float *out, const uint8_t *arg,
                                const float *grad_out, int64_t f, float *grad_weight, float *grad_bias);
int ref_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg);
int ref_pool_relu_backward(const float *out, const uint8_t *arg, const float *grad_out, int64_t n, int64_t h, int64_t w, int64_t c,
                           float *grad_in);
int ref_winograd_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight,
                                        const float *bias, int64_t f, float *out, uint8_t *arg);
int ref_winograd_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight,
                                         int64_t f, const float *out, const uint8_t *arg, const float *grad, float *grad_x,
                                         float *grad_weight, float *grad_bias);

/* The convolution alone, (N, H, W, C) -> (N, H, W, F), weight (F, 3, 3, C), bias may be NULL: for a test that
 * asks whether a kernel's winner is a maximum of its window to within rounding. */
void ref_conv3x3_same(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, const float *bias,
                      int64_t f, float *y);

#endif
