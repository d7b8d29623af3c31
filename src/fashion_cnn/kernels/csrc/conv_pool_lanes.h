/* The kernels of conv_pool.c for one vector width: V floats (8: AVX2, 16: AVX-512). conv_pool.c includes
 * this file once per width, with LANES(name) giving each width's functions and types their own names, and
 * calls the widest one the channel count allows. Within a vector each channel is its own lane, so the sums,
 * and so the results, are the same bits at every width. */

#define vf LANES(vf)
#define vi LANES(vi)
#define vb LANES(vb)
#define splat LANES(splat)
#define pick LANES(pick)
#define load LANES(load)
#define store LANES(store)
#define window_relu_store LANES(window_relu_store)
#define window_grad LANES(window_grad)

#include "vectors.h"
#include "pool_window.h"

static int LANES(conv_pool_relu_forward)(const float *x, int64_t n, int64_t h, int64_t w, const float *weight, const float *bias,
                           int64_t f, float *out, uint8_t *arg) {
    if (f % V || f < V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t ho = h / 2, wo = w / 2, pw = w + 2;
    float *wt = malloc(sizeof(float) * 9 * f); /* [9][f]: V channels of one tap are one vector */
    if (!wt) return 2;
    for (int64_t c = 0; c < f; c++)
        for (int k = 0; k < 9; k++) wt[k * f + c] = weight[c * 9 + k];
    int failed = 0;
#pragma omp parallel
    {
        float *padded = malloc(sizeof(float) * (h + 2) * pw);
        if (!padded) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            if (!padded) continue;
            pad_image(x + b * h * w, h, w, padded);
            for (int64_t c0 = 0; c0 < f; c0 += V) {
                vf wk[9];
                for (int k = 0; k < 9; k++) wk[k] = load(wt + k * f + c0);
                const vf bv = load(bias + c0);
                for (int64_t i = 0; i < ho; i++) {
                    for (int64_t j = 0; j < wo; j++) {
                        const float *p = padded + 2 * i * pw + 2 * j; /* the 4x4 patch's top-left */
                        vf a[4];
                        for (int q = 0; q < 4; q++) {
                            const float *pq = p + (q >> 1) * pw + (q & 1);
                            vf s = splat(0.0f);
                            for (int k = 0; k < 9; k++) s += splat(pq[(k / 3) * pw + k % 3]) * wk[k];
                            a[q] = s + bv;
                        }
                        const int64_t at = ((b * ho + i) * wo + j) * f + c0;
                        window_relu_store(a, out + at, arg + at);
                    }
                }
            }
        }
        free(padded);
    }
    free(wt);
    return failed ? 2 : 0;
}

static int LANES(conv_pool_relu_backward)(const float *x, int64_t n, int64_t h, int64_t w, const float *out, const uint8_t *arg,
                            const float *grad_out, int64_t f, float *grad_weight /* [F][9] */, float *grad_bias) {
    if (f % V || f < V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t ho = h / 2, wo = w / 2, pw = w + 2;
    const int threads = omp_get_max_threads();
    float *part = calloc((size_t)threads * 10 * f, sizeof(float)); /* per thread: [9][f] weight, [f] bias */
    if (!part) return 2;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *gw = part + (int64_t)t * 10 * f, *gb = gw + 9 * f;
        float *padded = malloc(sizeof(float) * (h + 2) * pw);
        if (!padded) {
#pragma omp atomic write
            failed = 1;
        }
        for (int64_t b = n * t / nt; padded && b < n * (t + 1) / nt; b++) {
            pad_image(x + b * h * w, h, w, padded);
            for (int64_t c0 = 0; c0 < f; c0 += V) {
                vf acc[9], accb = load(gb + c0);
                for (int k = 0; k < 9; k++) acc[k] = load(gw + k * f + c0);
                for (int64_t i = 0; i < ho; i++) {
                    for (int64_t j = 0; j < wo; j++) {
                        const int64_t at = ((b * ho + i) * wo + j) * f + c0;
                        vf gq[4];
                        accb += window_grad(out + at, arg + at, grad_out + at, gq);
                        const float *p = padded + 2 * i * pw + 2 * j;
                        for (int q = 0; q < 4; q++) {
                            const float *pq = p + (q >> 1) * pw + (q & 1);
                            for (int k = 0; k < 9; k++) acc[k] += gq[q] * splat(pq[(k / 3) * pw + k % 3]);
                        }
                    }
                }
                for (int k = 0; k < 9; k++) store(gw + k * f + c0, acc[k]);
                store(gb + c0, accb);
            }
        }
        free(padded);
    }
    memset(grad_weight, 0, sizeof(float) * 9 * f);
    memset(grad_bias, 0, sizeof(float) * f);
    for (int t = 0; t < threads; t++) { /* in thread order: the same sums for the same thread count */
        const float *gw = part + (int64_t)t * 10 * f, *gb = gw + 9 * f;
        for (int64_t c = 0; c < f; c++) {
            for (int k = 0; k < 9; k++) grad_weight[c * 9 + k] += gw[k * f + c];
            grad_bias[c] += gb[c];
        }
    }
    free(part);
    return failed ? 2 : 0;
}

/* MaxPooling2D(2) then ReLU on a channels-last (N, H, W, C) activation, C a multiple of V: the pooled output
 * and a one-byte index of each window's winner; the backward pass writes the whole input gradient in one
 * pass (the winner's share or zero), where PyTorch zero-fills it first and scatters into it after. */
static int LANES(pool_relu_forward)(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, float *out, uint8_t *arg) {
    if (c % V || c < V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n * ho; r++) { /* one output row: image r / ho, row r % ho */
        const int64_t b = r / ho, i = r % ho;
        for (int64_t j = 0; j < wo; j++) {
            const float *p = x + ((b * h + 2 * i) * w + 2 * j) * c;
            const int64_t at = (r * wo + j) * c;
            for (int64_t c0 = 0; c0 < c; c0 += V) {
                vf a[4];
                for (int q = 0; q < 4; q++) a[q] = load(p + ((q >> 1) * w + (q & 1)) * c + c0);
                window_relu_store(a, out + at + c0, arg + at + c0);
            }
        }
    }
    return 0;
}

static int LANES(pool_relu_backward)(const float *out, const uint8_t *arg, const float *grad_out, int64_t n, int64_t h, int64_t w,
                       int64_t c, float *grad_in) {
    if (c % V || c < V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n * ho; r++) {
        const int64_t b = r / ho, i = r % ho;
        for (int64_t j = 0; j < wo; j++) {
            float *p = grad_in + ((b * h + 2 * i) * w + 2 * j) * c;
            const int64_t at = (r * wo + j) * c;
            for (int64_t c0 = 0; c0 < c; c0 += V) {
                vf gq[4];
                window_grad(out + at + c0, arg + at + c0, grad_out + at + c0, gq);
                for (int q = 0; q < 4; q++) store(p + ((q >> 1) * w + (q & 1)) * c + c0, gq[q]);
            }
        }
    }
    return 0;
}

#undef vf
#undef vi
#undef vb
#undef splat
#undef pick
#undef load
#undef store
#undef window_relu_store
#undef window_grad
