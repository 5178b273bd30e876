/* runtime: pins the compute runtime. oneDNN's CPU runtime here is OpenMP; the worker runs one
 * compute thread per process and scales with processes (platform notes 4.7: the 2-thread default
 * was 2-6x slower at small batches). */
#include <omp.h>

#include "model.h"

void model_runtime_init(int threads) { omp_set_num_threads(threads < 1 ? 1 : threads); }
