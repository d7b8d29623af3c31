/* Milliseconds per call of each kernel entry point (../csrc) and of the plain reference (reference.c), at the
 * tutorial's shapes, batch 32; prints one table (a few seconds).
 *
 *     sh src/fashion_cnn/kernels/harness/run.sh bench
 *
 * Built -O3 at the widest vectors this CPU runs, with OpenMP (threads: OMP_NUM_THREADS, else every core), as
 * kernels/build.py builds the library. A kernel's time is the mean over the calls that fit in BUDGET seconds
 * after one warm-up call; the reference's is one call. Inputs are random floats; each backward pass reads the
 * forward results of the same inputs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "parallel.h"

static const double BUDGET = 0.3;

/* One block's shapes and buffers: x (n, h, w, c), weight (f, 3, 3, c), out/arg/grad (n, h/2, w/2, f). */
typedef struct {
    int64_t n, h, w, c, f;
    float *x, *weight, *bias, *out, *grad, *grad_x, *grad_weight, *grad_bias;
    uint8_t *arg;
} Block;

static float *random_floats(int64_t count) {
    float *a = malloc(sizeof(float) * (size_t)count);
    for (int64_t i = 0; i < count; i++) a[i] = (float)rand() / RAND_MAX * 2 - 1;
    return a;
}

static Block block(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f) {
    const int64_t pooled = n * (h / 2) * (w / 2) * f;
    return (Block){n, h, w, c, f, random_floats(n * h * w * c), random_floats(f * 9 * c), random_floats(f),
                   random_floats(pooled), random_floats(pooled), random_floats(n * h * w * c), random_floats(f * 9 * c),
                   random_floats(f), malloc((size_t)pooled)};
}

/* Each entry point on a block: the kernel, or (reference) the reference. */
static int first_forward(const Block *b, int reference) {
    return (reference ? ref_conv_pool_relu_forward : conv_pool_relu_forward)(b->x, b->n, b->h, b->w, b->weight, b->bias, b->f, b->out,
                                                                             b->arg);
}
static int first_backward(const Block *b, int reference) {
    return (reference ? ref_conv_pool_relu_backward : conv_pool_relu_backward)(b->x, b->n, b->h, b->w, b->out, b->arg, b->grad, b->f,
                                                                               b->grad_weight, b->grad_bias);
}
static int pool_forward(const Block *b, int reference) {
    return (reference ? ref_pool_relu_forward : pool_relu_forward)(b->x, b->n, b->h, b->w, b->c, b->out, b->arg);
}
static int pool_backward(const Block *b, int reference) {
    return (reference ? ref_pool_relu_backward : pool_relu_backward)(b->out, b->arg, b->grad, b->n, b->h, b->w, b->c, b->grad_x);
}
static int winograd_forward(const Block *b, int reference) {
    return (reference ? ref_winograd_conv_pool_relu_forward : winograd_conv_pool_relu_forward)(b->x, b->n, b->h, b->w, b->c, b->weight,
                                                                                               b->bias, b->f, b->out, b->arg);
}
static int winograd_backward(const Block *b, int reference) {
    return (reference ? ref_winograd_conv_pool_relu_backward : winograd_conv_pool_relu_backward)(
        b->x, b->n, b->h, b->w, b->c, b->weight, b->f, b->out, b->arg, b->grad, b->grad_x, b->grad_weight, b->grad_bias);
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Milliseconds a call: one warm-up call (the kernel only), then calls until budget seconds have passed. */
static double ms_per_call(int (*call)(const Block *, int), const Block *b, int reference, double budget) {
    if (!reference && call(b, 0)) return -1;
    int calls = 0;
    const double start = seconds();
    do {
        if (call(b, reference)) return -1;
        calls++;
    } while (seconds() - start < budget);
    return 1e3 * (seconds() - start) / calls;
}

static void row(const char *what, int (*call)(const Block *, int), const Block *b) {
    const double kernel = ms_per_call(call, b, 0, BUDGET), reference = ms_per_call(call, b, 1, 0);
    printf("| %-34s | %10.3f | %12.2f | %7.1fx |\n", what, kernel, reference, reference / kernel);
}

int main(void) {
    srand(1);
    const Block first = block(32, 28, 28, 1, 32), pool = block(32, 14, 14, 64, 64), second = block(32, 14, 14, 32, 64);
    printf("batch 32, %d threads\n\n", omp_get_max_threads());
    printf("| %-34s | %10s | %12s | %8s |\n", "entry point", "kernel ms", "reference ms", "speed-up");
    printf("| %-34s | %10s | %12s | %8s |\n", "---", "---:", "---:", "---:");
    row("first block forward 28x28x1 -> 32", first_forward, &first);
    row("first block backward", first_backward, &first);
    row("pool+relu forward 14x14x64", pool_forward, &pool);
    row("pool+relu backward", pool_backward, &pool);
    row("winograd forward 14x14x32 -> 64", winograd_forward, &second);
    row("winograd backward", winograd_backward, &second);
    return 0;
}
