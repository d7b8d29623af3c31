/* The tutorial's first block in one pass: Conv2D(F, 3, padding='same') on a one-channel image, then
 * MaxPooling2D(2), then ReLU (pool-then-ReLU equals ReLU-then-pool exactly: ReLU is monotonic).
 *
 * Each pooled pixel needs a 4x4 patch of the (zero-padded) input; the four convolution outputs under its
 * pooling window are computed 8 or 16 channels at a time in vector registers, and only their maximum is kept,
 * with a one-byte index of which of the four won. The HxWxF convolution output that PyTorch's operators
 * write, read back, index with int64 and zero-fill again in the backward pass never exists here.
 *
 * Semantics follow PyTorch's CPU operators: the window's first maximum wins (row-major order); a NaN wins
 * over any number; ReLU keeps NaN; its gradient passes where the output is not <= 0.
 *
 * Layouts: x is (N, H, W) (one channel: NCHW and NHWC are the same bytes); weight is PyTorch's (F, 1, 3, 3)
 * = [F][9]; out and arg are NHWC (N, H/2, W/2, F), the channels-last layout the next convolution reads.
 * F must be a multiple of 8. Threads: OpenMP over images, in the process's OpenMP runtime (PyTorch's, when
 * it is loaded first), so torch.set_num_threads holds. GCC vector extensions, 8 floats a vector: compiled for
 * AVX2 + FMA where the CPU has them, plain SSE otherwise; with -DFASHION_CNN_AVX512 (models/fused.py sets it
 * where PyTorch runs AVX-512 kernels) also 16 floats a vector, used where F is a multiple of 16.
 * The kernels themselves are in conv_pool_lanes.h, once per vector width.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "parallel.h"

/* The image with a zero border of one pixel: (h + 2) x (w + 2). */
static void pad_image(const float *img, int64_t h, int64_t w, float *padded) {
    memset(padded, 0, sizeof(float) * (h + 2) * (w + 2));
    for (int64_t y = 0; y < h; y++) memcpy(padded + (y + 1) * (w + 2) + 1, img + y * w, sizeof(float) * w);
}

#define V 8
#define LANES(name) name##8
#include "conv_pool_lanes.h"
#undef LANES
#undef V

#ifdef FASHION_CNN_AVX512
#define V 16
#define LANES(name) name##16
#include "conv_pool_lanes.h"
#undef LANES
#undef V
#define WIDE(channels) ((channels) % 16 == 0)
#else
#define WIDE(channels) 0
#define conv_pool_relu_forward16 conv_pool_relu_forward8
#define conv_pool_relu_backward16 conv_pool_relu_backward8
#define pool_relu_forward16 pool_relu_forward8
#define pool_relu_backward16 pool_relu_backward8
#endif

/* The entry points (ctypes): the widest vectors the channel count allows. 1: refused input; 2: out of memory. */

int conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, const float *weight, const float *bias,
                           int64_t f, float *out, uint8_t *arg) {
    return (WIDE(f) ? conv_pool_relu_forward16 : conv_pool_relu_forward8)(x, n, h, w, weight, bias, f, out, arg);
}

int conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, const float *out, const uint8_t *arg,
                            const float *grad_out, int64_t f, float *grad_weight, float *grad_bias) {
    return (WIDE(f) ? conv_pool_relu_backward16 : conv_pool_relu_backward8)(x, n, h, w, out, arg, grad_out, f, grad_weight, grad_bias);
}

int pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg) {
    return (WIDE(c) ? pool_relu_forward16 : pool_relu_forward8)(x, n, h, w, c, out, arg);
}

int pool_relu_backward(const float *out, const uint8_t *arg, const float *grad_out, int64_t n, int64_t h, int64_t w,
                       int64_t c, float *grad_in) {
    return (WIDE(c) ? pool_relu_backward16 : pool_relu_backward8)(out, arg, grad_out, n, h, w, c, grad_in);
}
