/* train_linear: the trainer's linear layer, y = x w^T + b over R rows, forward and backward, on
 * either backend (train_internal.h): nn_ref's double-accumulating reference (scalar) or oneDNN's
 * sgemm (dnnl). Every layer of train_seq.c and train_lru.c goes through these two.
 */
#include "nn_ref.h"
#include "train_internal.h"

int seq_lin_fwd(const seq_ctx *s, float *y, const float *x, const float *w, const float *b, long R, int C, int OC) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        linear_forward(y, x, w, b, (int)R, C, OC);
        return 0;
    }
    if (R == 0) return 0;
    for (long r = 0; r < R; r++)
        if (b) memcpy(y + r * OC, b, (size_t)OC * sizeof(float));
        else memset(y + r * OC, 0, (size_t)OC * sizeof(float));
    return nn_gemm('N', 'T', R, OC, C, 1.0f, x, C, w, C, 1.0f, y, OC);
}

int seq_lin_bwd(const seq_ctx *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                long R, int C, int OC) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        linear_backward(dx, dw, db, dy, x, w, (int)R, C, OC);
        return 0;
    }
    if (dx && nn_gemm('N', 'N', R, C, OC, 1.0f, dy, OC, w, C, 1.0f, dx, C)) return -1;
    if (dw && nn_gemm('T', 'N', OC, C, R, 1.0f, dy, OC, x, C, 1.0f, dw, C)) return -1;
    if (db && nn_gemm('T', 'N', OC, 1, R, 1.0f, dy, OC, s->ones, 1, 1.0f, db, 1)) return -1;
    return 0;
}
