/* A 2x2 max-pooling window, then ReLU, as PyTorch's operators compute them, forward and backward: the window's
 * first maximum in row-major order wins, a NaN wins over any number, ReLU keeps NaN, and its gradient passes
 * where the output is not <= 0. For the kernels' files to include after vectors.h (conv_pool_lanes.h: once per
 * vector width, with these functions renamed per width by LANES). */

/* Forward: the result at out, and a one-byte index (0-3: row * 2 + column) of the winner at arg. */

static inline void window_relu_store(const vf a[4], float *out, uint8_t *arg) {
    vf m = a[0];
    vi which = (vi){0};
    for (int q = 1; q < 4; q++) {
        const vi wins = (a[q] > m) | (a[q] != a[q]);
        m = pick(wins, a[q], m);
        which = (wins & ((vi){} + q)) | (~wins & which);
    }
    store(out, pick((m > splat(0.0f)) | (m != m), m, splat(0.0f)));
    const vb bytes = __builtin_convertvector(which, vb);
    memcpy(arg, &bytes, sizeof bytes);
}

/* Backward: the pooled gradient where ReLU passed it (returned: the bias's share) and, in to[q], that gradient at
 * the window's winner and zero at its three other places. */
static inline vf window_grad(const float *out, const uint8_t *arg, const float *grad, vf to[4]) {
    vb bytes;
    memcpy(&bytes, arg, sizeof bytes);
    const vi which = __builtin_convertvector(bytes, vi);
    const vf g = pick(~(load(out) <= splat(0.0f)), load(grad), splat(0.0f));
    for (int q = 0; q < 4; q++) to[q] = pick(which == ((vi){} + q), g, splat(0.0f));
    return g;
}
