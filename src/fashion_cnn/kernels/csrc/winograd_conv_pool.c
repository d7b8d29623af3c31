/* The tutorial's second block (Conv2D 3x3 'same' on C channels -> MaxPooling2D(2) -> ReLU) by Winograd's
 * minimal filtering F(2x2, 3x3), forward and backward, in one pass per image.
 *
 * A direct 3x3 convolution costs 9 multiply-adds per output and channel pair; F(2x2, 3x3) computes each 2x2
 * output tile from a 4x4 input tile with 16: 2.25 times fewer. Input tiles and filters are transformed
 * (B^T d B, G g G^T: additions and halvings), the 16 positions of a tile become 16 small matrix products
 * over the channels, and the output transform A^T m A gives the tile's 2x2 outputs -- which are exactly one
 * 2x2 max-pooling window, so bias, pooling and ReLU happen there and the HxWxF convolution output is never
 * written (as in conv_pool.c: the pooled value and a one-byte index of the window's winner). The backward
 * pass is the same algebra transposed: the pooled gradient goes to its winner (where ReLU passed it), is
 * transformed (A dy A^T), multiplied by the transposed filters for the input gradient (scattered back
 * through B dv B^T; neighbouring tiles overlap by two pixels) and by the transformed input for the filter
 * gradient (G^T du G at the end). The sums are in another order than a direct convolution's, and the
 * transforms round too: results agree with PyTorch's operators to float rounding (~1e-6 relative), not bit
 * for bit. They are deterministic for a given thread count (each thread sums its own images' filter
 * gradient, then the threads' sums are added in order).
 *
 * Semantics as conv_pool.c: first maximum of a window wins, NaN wins, ReLU's gradient passes where the
 * output is not <= 0. Layouts: x and grad_x are NHWC (N, H, W, C); weight and grad_weight are channels-last
 * (F, 3, 3, C), the memory of PyTorch's channels-last (F, C, 3, 3); out, arg and grad are NHWC (N, H/2, W/2,
 * F). C must be a multiple of 8, F of 16, H and W even. 8 floats a vector (GCC vector extensions: AVX2 + FMA
 * where compiled for it); OpenMP over images, in the process's OpenMP runtime.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "parallel.h"

#define V 8
#include "vectors.h"
#include "pool_window.h"

/* The transformed filters G g G^T: U[p][c][f] (transpose 0, for the forward product) or U[p][f][c] (1, for the
 * input gradient), p the 16 positions of a tile, from weight (F, 3, 3, C). */
static void filter_transform(const float *w, int64_t f, int64_t c, float *u, int transpose) {
    for (int64_t o = 0; o < f; o++)
        for (int64_t i = 0; i < c; i++) {
            float g[9], t[4][3], r[4][4];
            for (int k = 0; k < 9; k++) g[k] = w[(o * 9 + k) * c + i];
            for (int s = 0; s < 3; s++) {
                t[0][s] = g[s];
                t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
                t[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
                t[3][s] = g[6 + s];
            }
            for (int q = 0; q < 4; q++) {
                r[q][0] = t[q][0];
                r[q][1] = 0.5f * (t[q][0] + t[q][1] + t[q][2]);
                r[q][2] = 0.5f * (t[q][0] - t[q][1] + t[q][2]);
                r[q][3] = t[q][2];
            }
            for (int p = 0; p < 16; p++)
                u[p * f * c + (transpose ? o * c + i : i * f + o)] = r[p / 4][p % 4];
        }
}

/* The transformed input tiles B^T d B of one image (h, w, c): V[p][t][c], t = the (h/2) x (w/2) tiles in row-major
 * order, each the 4x4 patch around its 2x2 outputs ('same' padding: zeros outside the image). */
static void input_transform(const float *x, int64_t h, int64_t w, int64_t c, float *v) {
    const int64_t th = h / 2, tw = w / 2, nt = th * tw;
    for (int64_t ti = 0; ti < th; ti++)
        for (int64_t tj = 0; tj < tw; tj++) {
            const int64_t t = ti * tw + tj;
            for (int64_t c0 = 0; c0 < c; c0 += V) {
                vf d[4][4];
                for (int r = 0; r < 4; r++) {
                    const int64_t y = 2 * ti - 1 + r;
                    for (int s = 0; s < 4; s++) {
                        const int64_t xx = 2 * tj - 1 + s;
                        d[r][s] = (y >= 0 && y < h && xx >= 0 && xx < w) ? load(x + (y * w + xx) * c + c0) : splat(0.0f);
                    }
                }
                vf e[4][4];
                for (int s = 0; s < 4; s++) {
                    e[0][s] = d[0][s] - d[2][s];
                    e[1][s] = d[1][s] + d[2][s];
                    e[2][s] = d[2][s] - d[1][s];
                    e[3][s] = d[1][s] - d[3][s];
                }
                for (int r = 0; r < 4; r++) {
                    float *o = v + (r * 4) * nt * c + t * c + c0;
                    store(o, e[r][0] - e[r][2]);
                    store(o + nt * c, e[r][1] + e[r][2]);
                    store(o + 2 * nt * c, e[r][2] - e[r][1]);
                    store(o + 3 * nt * c, e[r][1] - e[r][3]);
                }
            }
        }
}

/* C[rows][n] = A[rows][k] B[k][n], n a multiple of V: six rows by two vectors of accumulators in registers
 * (then one vector where n is an odd number of vectors, then single rows). */
static void gemm(const float *a, const float *b, float *cm, int64_t rows, int64_t k, int64_t n) {
    int64_t i = 0;
    for (; i + 6 <= rows; i += 6) {
        int64_t n0 = 0;
        for (; n0 + 2 * V <= n; n0 += 2 * V) {
            vf acc[6][2] = {};
            for (int64_t q = 0; q < k; q++) {
                const vf b0 = load(b + q * n + n0), b1 = load(b + q * n + n0 + V);
                for (int r = 0; r < 6; r++) {
                    const vf av = splat(a[(i + r) * k + q]);
                    acc[r][0] += av * b0;
                    acc[r][1] += av * b1;
                }
            }
            for (int r = 0; r < 6; r++) {
                store(cm + (i + r) * n + n0, acc[r][0]);
                store(cm + (i + r) * n + n0 + V, acc[r][1]);
            }
        }
        for (; n0 < n; n0 += V) {
            vf acc[6] = {};
            for (int64_t q = 0; q < k; q++) {
                const vf b0 = load(b + q * n + n0);
                for (int r = 0; r < 6; r++) acc[r] += splat(a[(i + r) * k + q]) * b0;
            }
            for (int r = 0; r < 6; r++) store(cm + (i + r) * n + n0, acc[r]);
        }
    }
    for (; i < rows; i++)
        for (int64_t n0 = 0; n0 < n; n0 += V) {
            vf acc = {};
            for (int64_t q = 0; q < k; q++) acc += splat(a[i * k + q]) * load(b + q * n + n0);
            store(cm + i * n + n0, acc);
        }
}

/* C[m][n] += sum over t of A[t][m] B[t][n] (m a multiple of 4, n of 2V): the filter gradient of one image. */
static void gemm_tn_acc(const float *a, const float *b, float *cm, int64_t t, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i += 4)
        for (int64_t n0 = 0; n0 < n; n0 += 2 * V) {
            vf acc[4][2] = {};
            for (int64_t q = 0; q < t; q++) {
                const vf b0 = load(b + q * n + n0), b1 = load(b + q * n + n0 + V);
                for (int r = 0; r < 4; r++) {
                    const vf av = splat(a[q * m + i + r]);
                    acc[r][0] += av * b0;
                    acc[r][1] += av * b1;
                }
            }
            for (int r = 0; r < 4; r++) {
                float *o = cm + (i + r) * n + n0;
                store(o, load(o) + acc[r][0]);
                store(o + V, load(o + V) + acc[r][1]);
            }
        }
}

/* The entry points (ctypes). 1: refused input; 2: out of memory. */

int winograd_conv_pool_relu_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, const float *bias,
                 int64_t f, float *out, uint8_t *arg) {
    if (c % V || c < V || f % (2 * V) || f < 2 * V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t th = h / 2, tw = w / 2, nt = th * tw;
    float *u = malloc(sizeof(float) * 16 * c * f);
    if (!u) return 2;
    filter_transform(weight, f, c, u, 0);
    int failed = 0;
#pragma omp parallel
    {
        float *v = malloc(sizeof(float) * 16 * nt * c), *m = malloc(sizeof(float) * 16 * nt * f);
        if (!v || !m) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            if (!v || !m) continue;
            input_transform(x + b * h * w * c, h, w, c, v);
            for (int p = 0; p < 16; p++) gemm(v + p * nt * c, u + p * c * f, m + p * nt * f, nt, c, f);
            for (int64_t t = 0; t < nt; t++)
                for (int64_t f0 = 0; f0 < f; f0 += V) {
                    vf mm[4][4];
                    for (int p = 0; p < 16; p++) mm[p / 4][p % 4] = load(m + p * nt * f + t * f + f0);
                    vf r0[4], r1[4];
                    for (int s = 0; s < 4; s++) {
                        r0[s] = mm[0][s] + mm[1][s] + mm[2][s];
                        r1[s] = mm[1][s] - mm[2][s] - mm[3][s];
                    }
                    const vf bv = load(bias + f0);
                    vf a[4];
                    a[0] = r0[0] + r0[1] + r0[2] + bv;
                    a[1] = r0[1] - r0[2] - r0[3] + bv;
                    a[2] = r1[0] + r1[1] + r1[2] + bv;
                    a[3] = r1[1] - r1[2] - r1[3] + bv;
                    const int64_t at = (b * nt + t) * f + f0;
                    window_relu_store(a, out + at, arg + at);
                }
        }
        free(v);
        free(m);
    }
    free(u);
    return failed ? 2 : 0;
}

int winograd_conv_pool_relu_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *weight, int64_t f,
                  const float *out, const uint8_t *arg, const float *grad, float *grad_x, float *grad_weight, float *grad_bias) {
    if (c % V || c < V || f % (2 * V) || f < 2 * V || h % 2 || w % 2 || h < 2 || w < 2) return 1;
    const int64_t th = h / 2, tw = w / 2, nt = th * tw, pw = w + 2;
    const int nth = omp_get_max_threads();
    float *ut = malloc(sizeof(float) * 16 * c * f);
    float *du_all = calloc((size_t)nth * 16 * c * f, sizeof(float));
    float *db_all = calloc((size_t)nth * f, sizeof(float));
    if (!ut || !du_all || !db_all) { free(ut); free(du_all); free(db_all); return 2; }
    filter_transform(weight, f, c, ut, 1);
    int failed = 0;
#pragma omp parallel num_threads(nth)
    {
        const int me = omp_get_thread_num();
        float *du = du_all + (size_t)me * 16 * c * f, *db = db_all + (size_t)me * f;
        float *v = malloc(sizeof(float) * 16 * nt * c), *dm = malloc(sizeof(float) * 16 * nt * f);
        float *dv = malloc(sizeof(float) * 16 * nt * c), *pad = malloc(sizeof(float) * (h + 2) * pw * c);
        if (!v || !dm || !dv || !pad) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            if (!v || !dm || !dv || !pad) continue;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t f0 = 0; f0 < f; f0 += V) {
                    const int64_t at = (b * nt + t) * f + f0;
                    vf dy[4]; /* the window's 2x2 gradient, row-major */
                    store(db + f0, load(db + f0) + window_grad(out + at, arg + at, grad + at, dy));
                    vf z[2][4];
                    for (int a = 0; a < 2; a++) {
                        z[a][0] = dy[2 * a];
                        z[a][1] = dy[2 * a] + dy[2 * a + 1];
                        z[a][2] = dy[2 * a] - dy[2 * a + 1];
                        z[a][3] = -dy[2 * a + 1];
                    }
                    for (int s = 0; s < 4; s++) {
                        float *o2 = dm + s * nt * f + t * f + f0;
                        store(o2, z[0][s]);
                        store(o2 + 4 * nt * f, z[0][s] + z[1][s]);
                        store(o2 + 8 * nt * f, z[0][s] - z[1][s]);
                        store(o2 + 12 * nt * f, -z[1][s]);
                    }
                }
            const float *xb = x + b * h * w * c;
            input_transform(xb, h, w, c, v);
            for (int p = 0; p < 16; p++) {
                gemm(dm + p * nt * f, ut + p * f * c, dv + p * nt * c, nt, f, c);
                gemm_tn_acc(v + p * nt * c, dm + p * nt * f, du + p * c * f, nt, c, f);
            }
            memset(pad, 0, sizeof(float) * (h + 2) * pw * c);
            for (int64_t ti = 0; ti < th; ti++)
                for (int64_t tj = 0; tj < tw; tj++) {
                    const int64_t t = ti * tw + tj;
                    for (int64_t c0 = 0; c0 < c; c0 += V) {
                        vf q[4][4], e[4][4];
                        for (int p = 0; p < 16; p++) q[p / 4][p % 4] = load(dv + p * nt * c + t * c + c0);
                        for (int s = 0; s < 4; s++) {
                            e[0][s] = q[0][s];
                            e[1][s] = q[1][s] - q[2][s] + q[3][s];
                            e[2][s] = q[1][s] + q[2][s] - q[0][s];
                            e[3][s] = -q[3][s];
                        }
                        for (int r = 0; r < 4; r++) {
                            float *o = pad + ((2 * ti + r) * pw + 2 * tj) * c + c0;
                            store(o, load(o) + e[r][0]);
                            store(o + c, load(o + c) + (e[r][1] - e[r][2] + e[r][3]));
                            store(o + 2 * c, load(o + 2 * c) + (e[r][1] + e[r][2] - e[r][0]));
                            store(o + 3 * c, load(o + 3 * c) - e[r][3]);
                        }
                    }
                }
            for (int64_t y = 0; y < h; y++) memcpy(grad_x + (b * h + y) * w * c, pad + ((y + 1) * pw + 1) * c, sizeof(float) * w * c);
        }
        free(v);
        free(dm);
        free(dv);
        free(pad);
    }
    if (!failed) {
        for (int k = 1; k < nth; k++) {
            for (int64_t i = 0; i < 16 * c * f; i++) du_all[i] += du_all[(size_t)k * 16 * c * f + i];
            for (int64_t i = 0; i < f; i++) db_all[i] += db_all[(size_t)k * f + i];
        }
        memcpy(grad_bias, db_all, sizeof(float) * f);
        for (int64_t o = 0; o < f; o++)
            for (int64_t i = 0; i < c; i++) {
                float d[4][4], t[3][4];
                for (int p = 0; p < 16; p++) d[p / 4][p % 4] = du_all[p * c * f + i * f + o];
                for (int s = 0; s < 4; s++) {
                    t[0][s] = d[0][s] + 0.5f * (d[1][s] + d[2][s]);
                    t[1][s] = 0.5f * (d[1][s] - d[2][s]);
                    t[2][s] = 0.5f * (d[1][s] + d[2][s]) + d[3][s];
                }
                float *g = grad_weight + o * 9 * c + i;
                for (int r = 0; r < 3; r++) {
                    g[(r * 3 + 0) * c] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
                    g[(r * 3 + 1) * c] = 0.5f * (t[r][1] - t[r][2]);
                    g[(r * 3 + 2) * c] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
                }
            }
    }
    free(ut);
    free(du_all);
    free(db_all);
    return failed ? 2 : 0;
}
