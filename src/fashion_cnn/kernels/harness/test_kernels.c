/* The CPU kernels (../csrc) against a plain scalar C reference, on several shapes and random inputs.
 *
 *     sh src/fashion_cnn/kernels/harness/run.sh            # every vector width this CPU has, with and without
 *                                                          # OpenMP, under AddressSanitizer and UBSan
 *
 * The reference is the definition, written for reading: a 3x3 'same' convolution (zero padding) with bias,
 * a 2x2 max-pool of stride 2 (the first maximum wins), then ReLU; each backward by the chain rule through
 * the winner of each window. The kernels sum in another order (Winograd's transforms for the second block),
 * so values are compared to a float tolerance. Prints one line per case and ends with "N passed, N failed";
 * exits 1 on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int passed, failed;
static uint64_t rng = 88172645463325252ull;

static float uniform(void) { /* xorshift64: the same inputs on every machine */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

static float *random_array(int64_t count) {
    float *a = malloc(sizeof(float) * (size_t)count);
    for (int64_t i = 0; i < count; i++) a[i] = uniform();
    return a;
}

/* Reference, NHWC: x (n,h,w,c), weight (f,3,3,c), conv out (n,h,w,f). */
static void ref_conv(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *wt, const float *b, int64_t f, float *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h; r++)
            for (int64_t s = 0; s < w; s++)
                for (int64_t o = 0; o < f; o++) {
                    double sum = b ? b[o] : 0.0;
                    for (int dr = 0; dr < 3; dr++)
                        for (int ds = 0; ds < 3; ds++) {
                            int64_t rr = r + dr - 1, ss = s + ds - 1;
                            if (rr < 0 || rr >= h || ss < 0 || ss >= w) continue;
                            for (int64_t k = 0; k < c; k++)
                                sum += (double)x[((i * h + rr) * w + ss) * c + k] * wt[((o * 3 + dr) * 3 + ds) * c + k];
                        }
                    y[((i * h + r) * w + s) * f + o] = (float)sum;
                }
}

/* Max-pool 2x2 stride 2 then ReLU; win: the flat index (into y) of each window's first maximum. */
static void ref_pool_relu(const float *y, int64_t n, int64_t h, int64_t w, int64_t c, float *out, int64_t *win) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h / 2; r++)
            for (int64_t s = 0; s < w / 2; s++)
                for (int64_t k = 0; k < c; k++) {
                    int64_t best = ((i * h + 2 * r) * w + 2 * s) * c + k;
                    for (int dr = 0; dr < 2; dr++)
                        for (int ds = 0; ds < 2; ds++) {
                            int64_t at = ((i * h + 2 * r + dr) * w + 2 * s + ds) * c + k;
                            if (y[at] > y[best]) best = at;
                        }
                    int64_t o = ((i * (h / 2) + r) * (w / 2) + s) * c + k;
                    out[o] = y[best] > 0 ? y[best] : 0;
                    win[o] = best;
                }
}

/* The gradient at the conv output (n,h,w,c): each pooled gradient at its window's winner, where ReLU passed it. */
static float *ref_unpool(const float *out, const int64_t *win, const float *grad, int64_t pooled, int64_t full) {
    float *dy = calloc((size_t)full, sizeof(float));
    for (int64_t o = 0; o < pooled; o++)
        if (out[o] > 0) dy[win[o]] += grad[o];
    return dy;
}

static void ref_conv_backward(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *wt, int64_t f, const float *dy,
                              float *gx, float *gw, float *gb) {
    if (gx) memset(gx, 0, sizeof(float) * (size_t)(n * h * w * c));
    memset(gw, 0, sizeof(float) * (size_t)(f * 9 * c));
    memset(gb, 0, sizeof(float) * (size_t)f);
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h; r++)
            for (int64_t s = 0; s < w; s++)
                for (int64_t o = 0; o < f; o++) {
                    float d = dy[((i * h + r) * w + s) * f + o];
                    if (d == 0) continue;
                    gb[o] += d;
                    for (int dr = 0; dr < 3; dr++)
                        for (int ds = 0; ds < 3; ds++) {
                            int64_t rr = r + dr - 1, ss = s + ds - 1;
                            if (rr < 0 || rr >= h || ss < 0 || ss >= w) continue;
                            for (int64_t k = 0; k < c; k++) {
                                gw[((o * 3 + dr) * 3 + ds) * c + k] += d * x[((i * h + rr) * w + ss) * c + k];
                                if (gx) gx[((i * h + rr) * w + ss) * c + k] += d * wt[((o * 3 + dr) * 3 + ds) * c + k];
                            }
                        }
                }
}

/* Largest difference relative to the reference's largest magnitude (1 where a value is NaN on one side only). */
static double difference(const float *a, const float *b, int64_t count) {
    double worst = 0, scale = 1e-6;
    for (int64_t i = 0; i < count; i++) scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < count; i++) {
        if (isnan(a[i]) != isnan(b[i])) return 1;
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    }
    return worst / scale;
}

static void check(const char *what, int code, double diff, double tolerance) {
    int ok = code == 0 && diff <= tolerance;
    ok ? passed++ : failed++;
    printf("%s %s (return %d, relative difference %.2e)\n", ok ? "PASS" : "FAIL", what, code, diff);
}

static void first_block(int64_t n, int64_t h, int64_t w, int64_t f) {
    char name[96];
    int64_t full = n * h * w * f, pooled = full / 4;
    float *x = random_array(n * h * w), *wt = random_array(f * 9), *b = random_array(f), *grad = random_array(pooled);
    float *y = malloc(sizeof(float) * full), *ref = malloc(sizeof(float) * pooled), *out = malloc(sizeof(float) * pooled);
    int64_t *win = malloc(sizeof(int64_t) * pooled);
    uint8_t *arg = malloc((size_t)pooled);
    float *gw = malloc(sizeof(float) * f * 9), *gb = malloc(sizeof(float) * f), *rgw = malloc(sizeof(float) * f * 9),
          *rgb = malloc(sizeof(float) * f);
    ref_conv(x, n, h, w, 1, wt, b, f, y);
    ref_pool_relu(y, n, h, w, f, ref, win);
    snprintf(name, sizeof name, "first block forward n=%lld %lldx%lld f=%lld", (long long)n, (long long)h, (long long)w, (long long)f);
    int code = conv_pool_relu_forward(x, n, h, w, wt, b, f, out, arg); /* before comparing: argument order is unspecified */
    check(name, code, difference(out, ref, pooled), 1e-5);
    float *dy = ref_unpool(ref, win, grad, pooled, full);
    ref_conv_backward(x, n, h, w, 1, wt, f, dy, NULL, rgw, rgb);
    code = conv_pool_relu_backward(x, n, h, w, out, arg, grad, f, gw, gb);
    snprintf(name, sizeof name, "first block backward n=%lld %lldx%lld f=%lld", (long long)n, (long long)h, (long long)w, (long long)f);
    check(name, code, fmax(difference(gw, rgw, f * 9), difference(gb, rgb, f)), 1e-4);
    free(x), free(wt), free(b), free(grad), free(y), free(ref), free(out), free(win), free(arg), free(gw), free(gb), free(rgw), free(rgb), free(dy);
}

static void pool_block(int64_t n, int64_t h, int64_t w, int64_t c) {
    char name[96];
    int64_t full = n * h * w * c, pooled = full / 4;
    float *x = random_array(full), *grad = random_array(pooled);
    float *ref = malloc(sizeof(float) * pooled), *out = malloc(sizeof(float) * pooled), *gin = malloc(sizeof(float) * full);
    int64_t *win = malloc(sizeof(int64_t) * pooled);
    uint8_t *arg = malloc((size_t)pooled);
    ref_pool_relu(x, n, h, w, c, ref, win);
    snprintf(name, sizeof name, "pool+relu forward n=%lld %lldx%lld c=%lld", (long long)n, (long long)h, (long long)w, (long long)c);
    int code = pool_relu_forward(x, n, h, w, c, out, arg);
    check(name, code, difference(out, ref, pooled), 0);
    float *dy = ref_unpool(ref, win, grad, pooled, full);
    snprintf(name, sizeof name, "pool+relu backward n=%lld %lldx%lld c=%lld", (long long)n, (long long)h, (long long)w, (long long)c);
    code = pool_relu_backward(out, arg, grad, n, h, w, c, gin);
    check(name, code, difference(gin, dy, full), 0);
    free(x), free(grad), free(ref), free(out), free(gin), free(win), free(arg), free(dy);
}

static void winograd_block(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f) {
    char name[112];
    int64_t full = n * h * w * f, pooled = full / 4;
    float *x = random_array(n * h * w * c), *wt = random_array(f * 9 * c), *b = random_array(f), *grad = random_array(pooled);
    float *y = malloc(sizeof(float) * full), *ref = malloc(sizeof(float) * pooled), *out = malloc(sizeof(float) * pooled);
    int64_t *win = malloc(sizeof(int64_t) * pooled);
    uint8_t *arg = malloc((size_t)pooled);
    float *gx = malloc(sizeof(float) * n * h * w * c), *gw = malloc(sizeof(float) * f * 9 * c), *gb = malloc(sizeof(float) * f);
    float *rgx = malloc(sizeof(float) * n * h * w * c), *rgw = malloc(sizeof(float) * f * 9 * c), *rgb = malloc(sizeof(float) * f);
    ref_conv(x, n, h, w, c, wt, b, f, y);
    ref_pool_relu(y, n, h, w, f, ref, win);
    snprintf(name, sizeof name, "winograd forward n=%lld %lldx%lld c=%lld f=%lld", (long long)n, (long long)h, (long long)w, (long long)c,
             (long long)f);
    int code = winograd_conv_pool_relu_forward(x, n, h, w, c, wt, b, f, out, arg);
    check(name, code, difference(out, ref, pooled), 1e-4);
    float *dy = ref_unpool(ref, win, grad, pooled, full);
    ref_conv_backward(x, n, h, w, c, wt, f, dy, rgx, rgw, rgb);
    code = winograd_conv_pool_relu_backward(x, n, h, w, c, wt, f, out, arg, grad, gx, gw, gb);
    snprintf(name, sizeof name, "winograd backward n=%lld %lldx%lld c=%lld f=%lld", (long long)n, (long long)h, (long long)w, (long long)c,
             (long long)f);
    check(name, code, fmax(difference(gx, rgx, n * h * w * c), fmax(difference(gw, rgw, f * 9 * c), difference(gb, rgb, f))), 1e-4);
    free(x), free(wt), free(b), free(grad), free(y), free(ref), free(out), free(win), free(arg);
    free(gx), free(gw), free(gb), free(rgx), free(rgw), free(rgb), free(dy);
}

int main(void) {
    static const int64_t first[][4] = {{1, 2, 2, 8}, {3, 6, 10, 16}, {2, 28, 28, 32}, {4, 28, 28, 64}, {1, 4, 4, 24}};
    static const int64_t pool[][4] = {{1, 2, 2, 8}, {2, 14, 14, 32}, {3, 6, 4, 64}, {2, 8, 8, 24}};
    static const int64_t wino[][5] = {{1, 2, 2, 8, 16}, {2, 14, 14, 32, 64}, {3, 6, 8, 16, 32}, {1, 4, 4, 24, 48}};
    for (size_t i = 0; i < sizeof first / sizeof *first; i++) first_block(first[i][0], first[i][1], first[i][2], first[i][3]);
    for (size_t i = 0; i < sizeof pool / sizeof *pool; i++) pool_block(pool[i][0], pool[i][1], pool[i][2], pool[i][3]);
    for (size_t i = 0; i < sizeof wino / sizeof *wino; i++) winograd_block(wino[i][0], wino[i][1], wino[i][2], wino[i][3], wino[i][4]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
