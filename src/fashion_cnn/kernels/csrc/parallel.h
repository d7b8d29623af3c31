/* OpenMP where the compiler has it (-fopenmp), else one thread: the same guard for every kernel file.
 * Without OpenMP the pragmas are ignored and these three functions answer for a team of one. */
#ifndef FASHION_CNN_PARALLEL_H
#define FASHION_CNN_PARALLEL_H
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif
#endif
