/* use_dnnl: the oneDNN matmuls of the USE-lite encoder (oneDNN 2.6 C API, op-descriptor style:
 * gone in 3.x, so it stays behind this small interface, like nn_dnnl.h does for the step).
 *
 * Every encoder GEMM is y (M,OC) [+]= x (M,C) @ w (C,OC) + b, M = the tokens of a batch (or its
 * texts, for the head). M changes with every batch, so each matmul is ONE primitive created with
 * a run-time M (DNNL_RUNTIME_DIM_VAL): no padded rows, no per-shape primitive creation. Measured
 * on this project's 2-vCPU AVX-512 VM, one thread: the run-time-M primitive (gemm:jit) is within
 * about 5 % of the fixed-M brgemm one at M = 8..2048, and a fixed-M bucket scheme would compute
 * up to 2x padded rows (docs/text-encoder.md). The memory objects for a given M are created the
 * first time that M is seen and kept, so this code allocates nothing in a steady state (oneDNN's
 * dnnl_primitive_execute itself makes ~7 small allocations a call, for its argument map); weights
 * are copied once, into 64-byte aligned buffers in the layout the primitive asks for.
 *
 * Post-ops: USE_DNNL_RELU applies relu to the result; USE_DNNL_ACCUMULATE adds the result to
 * what y holds (oneDNN's sum post-op), i.e. a residual connection without another pass.
 */
#ifndef IEVO_USE_DNNL_H
#define IEVO_USE_DNNL_H

#include <stddef.h>

enum { USE_DNNL_RELU = 1, USE_DNNL_ACCUMULATE = 2 };

typedef struct use_dnnl use_dnnl;
typedef struct use_dnnl_matmul use_dnnl_matmul;

/* A CPU engine and stream; max_rows (>= 2) bounds M for every matmul created on it. */
int use_dnnl_new(use_dnnl **out, int max_rows, char *err, size_t errlen);
/* Frees the context and every matmul created on it. */
void use_dnnl_free(use_dnnl *d);

/* w (C,OC) row-major, b (OC) or NULL; both copied. flags: USE_DNNL_RELU | USE_DNNL_ACCUMULATE. */
int use_dnnl_matmul_new(use_dnnl_matmul **out, use_dnnl *d, int C, int OC, const float *w, const float *b, int flags,
                        char *err, size_t errlen);
/* y (M,OC) [+]= x (M,C) @ w + b, dense rows; 0 <= M <= max_rows (M = 0 does nothing).
 * M = 1 runs as M = 2, so x and y must have room for 2 rows (the second row's result is
 * meaningless): oneDNN's one-row path (a gemv) sums in another order than every M >= 2, and a
 * text's vector must not depend on how many texts share its call. For M >= 2 a row's result is
 * bitwise the same whatever M and wherever the row sits (checked on this VM for the encoder's
 * five shapes, M = 2..1200). */
int use_dnnl_matmul_run(use_dnnl_matmul *m, const float *x, float *y, int M, char *err, size_t errlen);
/* The implementation oneDNN picked (e.g. "gemm:jit"), for the benchmark's report. */
const char *use_dnnl_matmul_impl(const use_dnnl_matmul *m);

#endif
