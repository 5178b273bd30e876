/* use_dnnl: the oneDNN matmuls of the USE-lite encoder (oneDNN 2.6 C API, op-descriptor style:
 * gone in 3.x, so it stays behind this small interface, like nn_dnnl.h does for the step).
 *
 * Every encoder GEMM is y (M,OC) [+]= x (M,C) @ w (C,OC) + b, M = the tokens of a batch (or its
 * texts, for the head). Each matmul is ONE primitive created with a run-time M
 * (DNNL_RUNTIME_DIM_VAL, implementation gemm:jit), and it is always run on blocks of at most
 * USE_DNNL_BLOCK_ROWS = 48 rows, each a whole number of USE_DNNL_ROW_GROUP = 6 rows: a call of
 * M rows is floor(M / 48) blocks of 48 and one of M mod 48 rounded up to a multiple of 6, whose
 * padding rows are computed and ignored. Why: a text's vector must not depend on which texts
 * share its call (the trainer, `ievo embed` and the worker's catalogue encode in different
 * batches), so a row's result must be bitwise the same whatever M and wherever the row sits, and
 * gemm:jit does not give that for any M on every CPU:
 *   - Without AVX-512 (AVX2 here: AMD EPYC), gemm:jit runs its no-copy kernel (jit_avx_gemm_f32)
 *     for M up to a few hundred and a copy-based one above; the no-copy kernel works in groups of
 *     6 rows (its UNROLL_N) and sums a last group of 1..3 rows in another order than a full one;
 *     its driver also halves a last block of 73..95 rows, which makes such groups. Measured on
 *     the encoder's shapes: rows 7.. computed as M = 1..3, 7..9, 13..15, .. (M mod 6 in 1..3), and
 *     from 73 up also e.g. M = 73..79, 85..91, differ from the same rows in a batch of 300, by up
 *     to ~1e-6.
 *   - With AVX-512, gemm:jit's no-copy kernel (jit_avx512_common_gemm_f32, groups of 8) gave the
 *     same bits for every M from 2 to 1200 on the project's AVX-512 VM; only M = 1 (a gemv) did not.
 * Blocks of whole groups of 6, never more than 48 rows (the no-copy driver's own block of rows,
 * so it never splits one), keep every row in a full group of one no-copy kernel on both; M = 1
 * is padded like any other count, so no gemv either. tests/unit/test_use_kernels.c checks the
 * property on the machine it runs on. The cost, measured on the AVX2 VM over the encoder's 10
 * GEMMs against one call of M rows: within a few % up to M = 288, about 14 % at M = 1024, where
 * one call would take the faster copy-based kernel (docs/performance.md has the figures).
 *
 * The memory objects for each block size are made the first time it is seen and kept, so this
 * code allocates nothing in a steady state (oneDNN's dnnl_primitive_execute itself makes ~7 small
 * allocations a call, for its argument map); weights are copied once, into 64-byte aligned
 * buffers in the layout the primitive asks for.
 *
 * Post-ops: USE_DNNL_RELU applies relu to the result; USE_DNNL_ACCUMULATE adds the result to
 * what y holds (oneDNN's sum post-op), i.e. a residual connection without another pass.
 */
#ifndef IEVO_USE_DNNL_H
#define IEVO_USE_DNNL_H

#include <stddef.h>

enum { USE_DNNL_RELU = 1, USE_DNNL_ACCUMULATE = 2 };

#define USE_DNNL_ROW_GROUP 6
#define USE_DNNL_BLOCK_ROWS 48
/* The rows x and y must have room for in a call of M rows: M rounded up to a whole group. */
#define USE_DNNL_ROWS_ROOM(M) (((M) + USE_DNNL_ROW_GROUP - 1) / USE_DNNL_ROW_GROUP * USE_DNNL_ROW_GROUP)

typedef struct use_dnnl use_dnnl;
typedef struct use_dnnl_matmul use_dnnl_matmul;

/* A CPU engine and stream; max_rows (>= 2) bounds M for every matmul created on it. */
int use_dnnl_new(use_dnnl **out, int max_rows, char *err, size_t errlen);
/* Frees the context and every matmul created on it. */
void use_dnnl_free(use_dnnl *d);

/* w (C,OC) row-major, b (OC) or NULL; both copied. flags: USE_DNNL_RELU | USE_DNNL_ACCUMULATE. */
int use_dnnl_matmul_new(use_dnnl_matmul **out, use_dnnl *d, int C, int OC, const float *w, const float *b, int flags,
                        char *err, size_t errlen);
/* y (M,OC) [+]= x (M,C) @ w + b, dense rows; 0 <= M <= max_rows (M = 0 does nothing). x and y
 * must have room for USE_DNNL_ROWS_ROOM(M) rows: the rows past M are read and written (their
 * results are meaningless and do not touch rows < M). A row's result is bitwise the same whatever
 * M and wherever the row sits (see the top of this file). */
int use_dnnl_matmul_run(use_dnnl_matmul *m, const float *x, float *y, int M, char *err, size_t errlen);
/* The implementation oneDNN picked (e.g. "gemm:jit"), for the benchmark's report. */
const char *use_dnnl_matmul_impl(const use_dnnl_matmul *m);

#endif
