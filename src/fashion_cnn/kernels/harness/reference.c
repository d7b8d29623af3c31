/* The kernels' definition, written for reading, not speed: a scalar loop per formula, sums in double.
 * test_kernels.c holds every kernel entry point against these; bench_kernels.c times both (see run.sh):
 *
 *     sh src/fashion_cnn/kernels/harness/run.sh check
 *
 * A block is a 3x3 'same' convolution (zero padding) with bias, then a 2x2 max-pool of stride 2, then ReLU.
 * The pooling follows PyTorch's CPU operator: the window is read in row-major order and a later element wins
 * if it is greater than the winner so far or if it is NaN -- so the first of equal maxima wins, a NaN wins
 * over any number, and of two NaNs the later. ReLU keeps NaN (max(NaN, 0) is NaN in PyTorch), and its gradient
 * passes where the output is not <= 0 (so through NaN). The backward pass puts each pooled gradient, where ReLU
 * passed it, on its window's winner (zero elsewhere), then differentiates the convolution over every position,
 * zeros included, as PyTorch does (0 * NaN is NaN). Layouts: harness.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Room for count floats; never malloc(0), which may answer NULL (a batch of no images is valid input). */
static float *scratch(int64_t count) { return malloc(sizeof(float) * (size_t)(count > 0 ? count : 1)); }

/* x (n, h, w, c) at image i, row r, column s, channel k; zero outside the image ('same' padding). */
static double pixel(const float *x, int64_t h, int64_t w, int64_t c, int64_t i, int64_t r, int64_t s, int64_t k) {
    return r < 0 || r >= h || s < 0 || s >= w ? 0.0 : x[((i * h + r) * w + s) * c + k];
}

void ref_conv3x3_same(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, const float *bias,
                      int64_t f, float *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h; r++)
            for (int64_t s = 0; s < w; s++)
                for (int64_t o = 0; o < f; o++) {
                    double sum = bias ? bias[o] : 0.0;
                    for (int dr = 0; dr < 3; dr++)
                        for (int ds = 0; ds < 3; ds++)
                            for (int64_t k = 0; k < c; k++)
                                sum += pixel(x, h, w, c, i, r + dr - 1, s + ds - 1, k) * weight[((o * 3 + dr) * 3 + ds) * c + k];
                    y[((i * h + r) * w + s) * f + o] = (float)sum;
                }
}

/* The gradients of ref_conv3x3_same from dy (n, h, w, f): grad_x (skipped where NULL), grad_weight, grad_bias. */
static void conv3x3_same_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, int64_t f,
                                  const float *dy, float *grad_x, float *grad_weight, float *grad_bias) {
    for (int64_t o = 0; o < f; o++) {
        double sum = 0;
        for (int64_t at = 0; at < n * h * w; at++) sum += dy[at * f + o];
        grad_bias[o] = (float)sum;
    }
    for (int64_t o = 0; o < f; o++) /* d/dweight[o][dr][ds][k]: every output of o times the input under that tap */
        for (int dr = 0; dr < 3; dr++)
            for (int ds = 0; ds < 3; ds++)
                for (int64_t k = 0; k < c; k++) {
                    double sum = 0;
                    for (int64_t i = 0; i < n; i++)
                        for (int64_t r = 0; r < h; r++)
                            for (int64_t s = 0; s < w; s++)
                                sum += dy[((i * h + r) * w + s) * f + o] * pixel(x, h, w, c, i, r + dr - 1, s + ds - 1, k);
                    grad_weight[((o * 3 + dr) * 3 + ds) * c + k] = (float)sum;
                }
    if (!grad_x) return;
    for (int64_t i = 0; i < n; i++) /* d/dx[i][r][s][k]: every output whose 3x3 window covers (r, s), times its tap */
        for (int64_t r = 0; r < h; r++)
            for (int64_t s = 0; s < w; s++)
                for (int64_t k = 0; k < c; k++) {
                    double sum = 0;
                    for (int64_t o = 0; o < f; o++)
                        for (int dr = 0; dr < 3; dr++)
                            for (int ds = 0; ds < 3; ds++) {
                                const int64_t yr = r - dr + 1, ys = s - ds + 1;
                                if (yr < 0 || yr >= h || ys < 0 || ys >= w) continue;
                                sum += (double)dy[((i * h + yr) * w + ys) * f + o] * weight[((o * 3 + dr) * 3 + ds) * c + k];
                            }
                    grad_x[((i * h + r) * w + s) * c + k] = (float)sum;
                }
}

/* (n, h, w, c) -> (n, h/2, w/2, c): each window's winner and its value after ReLU. */
static void pool2_relu(const float *y, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h / 2; r++)
            for (int64_t s = 0; s < w / 2; s++)
                for (int64_t k = 0; k < c; k++) {
                    float best = 0;
                    int winner = 0;
                    for (int q = 0; q < 4; q++) {
                        const float v = y[((i * h + 2 * r + q / 2) * w + 2 * s + q % 2) * c + k];
                        if (q == 0 || v > best || isnan(v)) best = v, winner = q;
                    }
                    const int64_t at = ((i * (h / 2) + r) * (w / 2) + s) * c + k;
                    out[at] = best > 0 || isnan(best) ? best : 0.0f;
                    arg[at] = (uint8_t)winner;
                }
}

/* The gradient at the pool's input (n, h, w, c): each pooled gradient where ReLU passed it (out not <= 0), on
 * its window's winner; zero at the window's three other places. */
static void unpool2_relu(const float *out, const uint8_t *arg, const float *grad, int64_t n, int64_t h, int64_t w, int64_t c,
                         float *dy) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h / 2; r++)
            for (int64_t s = 0; s < w / 2; s++)
                for (int64_t k = 0; k < c; k++) {
                    const int64_t at = ((i * (h / 2) + r) * (w / 2) + s) * c + k;
                    for (int q = 0; q < 4; q++)
                        dy[((i * h + 2 * r + q / 2) * w + 2 * s + q % 2) * c + k] = q == arg[at] && !(out[at] <= 0) ? grad[at] : 0.0f;
                }
}

/* The first block is the Winograd block with one input channel: (N, H, W) is (N, H, W, 1) and [F][9] is (F, 3, 3, 1). */

int ref_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, const float *weight, const float *bias, int64_t f,
                               float *out, uint8_t *arg) {
    return ref_winograd_conv_pool_relu_forward(x, n, h, w, 1, weight, bias, f, out, arg);
}

int ref_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, const float *out, const uint8_t *arg,
                                const float *grad_out, int64_t f, float *grad_weight, float *grad_bias) {
    float *dy = scratch(n * h * w * f);
    if (!dy) return 2;
    unpool2_relu(out, arg, grad_out, n, h, w, f, dy);
    conv3x3_same_backward(x, n, h, w, 1, NULL, f, dy, NULL, grad_weight, grad_bias);
    free(dy);
    return 0;
}

int ref_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg) {
    pool2_relu(x, n, h, w, c, out, arg);
    return 0;
}

int ref_pool_relu_backward(const float *out, const uint8_t *arg, const float *grad_out, int64_t n, int64_t h, int64_t w, int64_t c,
                           float *grad_in) {
    unpool2_relu(out, arg, grad_out, n, h, w, c, grad_in);
    return 0;
}

int ref_winograd_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight,
                                        const float *bias, int64_t f, float *out, uint8_t *arg) {
    float *y = scratch(n * h * w * f);
    if (!y) return 2;
    ref_conv3x3_same(x, n, h, w, c, weight, bias, f, y);
    pool2_relu(y, n, h, w, f, out, arg);
    free(y);
    return 0;
}

int ref_winograd_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight,
                                         int64_t f, const float *out, const uint8_t *arg, const float *grad, float *grad_x,
                                         float *grad_weight, float *grad_bias) {
    float *dy = scratch(n * h * w * f);
    if (!dy) return 2;
    unpool2_relu(out, arg, grad, n, h, w, f, dy);
    conv3x3_same_backward(x, n, h, w, c, weight, f, dy, grad_x, grad_weight, grad_bias);
    free(dy);
    return 0;
}
