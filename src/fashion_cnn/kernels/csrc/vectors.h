/* V floats a vector (GCC vector extensions) and the few operations the kernels build on. For the kernels' files
 * to include after defining V (conv_pool_lanes.h: once per vector width, with every name renamed per width by
 * LANES). */

typedef float vf __attribute__((vector_size(4 * V)));
typedef int32_t vi __attribute__((vector_size(4 * V)));
typedef uint8_t vb __attribute__((vector_size(V)));

static inline vf splat(float v) { return __builtin_shuffle((vf){v}, (vi){}); } /* one broadcast (0 + v: an addition too) */
static inline vf pick(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
