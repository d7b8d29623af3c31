/* A 2x2 max-pooling window, then ReLU, as PyTorch's operators compute them: the window's first maximum in
 * row-major order wins, a NaN wins over any number, ReLU keeps NaN. Stores the result at out and a one-byte
 * index (0-3) of the winner at arg, for the backward pass. For the kernels' files to include where vf, vi, vb,
 * pick, splat and store are defined (conv_pool_lanes.h: once per vector width, with window_relu_store renamed
 * per width by LANES). */

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
