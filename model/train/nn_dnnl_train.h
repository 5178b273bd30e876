/* nn_dnnl_train: the oneDNN 2.6 kernels of the trainer: a single-layer LSTM / linear-before-reset GRU over T time steps with forward-training and
 * backward primitives. Like nn_dnnl.c (the step's kernels), it keeps oneDNN's 2.x API behind a
 * small interface, so a move to oneDNN 3.x touches the .c file and nothing that uses it.
 *
 * Shapes are time-major as oneDNN wants them: x (T,N,I), y (T,N,H); states (N,H). Weights are
 * PyTorch's (G*H, I) / (G*H, H) with gates i,f,g,o (LSTM) or r,z,n (GRU), converted on every
 * nn_rnn_train_set_weights (the trainer changes them every step) to the plain layouts the
 * primitives are created with: ldigo for forward, ldgoi for backward (both accepted by 2.6's
 * implementations, measured no slower than the blocked layouts at H = 64). Gradients come back
 * in ldigo and are mapped to PyTorch's layout and gate order, added to the caller's buffers.
 *
 * Primitives are created per (T, N) and cached (creation costs about a millisecond); the
 * trainer pads T and N to a few sizes so the cache stays small.
 */
#ifndef IEVO_NN_DNNL_TRAIN_H
#define IEVO_NN_DNNL_TRAIN_H

#include <stddef.h>

#include "nn_dnnl.h" /* nn_gemm */

typedef struct nn_rnn_train nn_rnn_train;

int nn_rnn_train_new(nn_rnn_train **out, int lstm, int I, int H, char *err, size_t errlen);
void nn_rnn_train_free(nn_rnn_train *r);
/* Takes the current weights (PyTorch layouts; copied and converted). */
int nn_rnn_train_set_weights(nn_rnn_train *r, const float *w_ih, const float *w_hh, const float *b_ih,
                             const float *b_hh, char *err, size_t errlen);
/* Forward (training) over T steps and N rows: x (T,N,I), h0 (N,H), c0 (N,H, LSTM only, else
 * NULL) -> y (T,N,H), hT (N,H), cT (N,H, LSTM only). The workspace for the backward is kept;
 * the buffers must stay untouched until nn_rnn_train_backward. */
int nn_rnn_train_forward(nn_rnn_train *r, int T, int N, const float *x, const float *h0, const float *c0, float *y,
                         float *hT, float *cT, char *err, size_t errlen);
/* Backward of the last forward, with no gradient arriving at hT/cT (truncated BPTT): dy (T,N,H)
 * -> dx (T,N,I) (overwritten); dw_ih, dw_hh, db_ih, db_hh (PyTorch layouts) are added to. */
int nn_rnn_train_backward(nn_rnn_train *r, const float *dy, float *dx, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, char *err, size_t errlen);

#endif
