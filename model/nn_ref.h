/* nn_ref: the plain scalar kernels of the model, the reference every faster path is checked
 * against (and, through tests/oracle, checked against python3-torch themselves).
 *
 * llm.c style: flat row-major float buffers, a shape comment on each function, accumulation in
 * double so the reference is more accurate than what it checks. Each layer is an x_forward; its
 * x_backward (for the trainer) goes right beside it, and the buffers a forward fills "for
 * backward" are the activations that backward will need.
 */
#ifndef IEVO_NN_REF_H
#define IEVO_NN_REF_H

/* linear: out (B,OC) = inp (B,C) @ weight (OC,C)^T + bias (OC); bias may be NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC);

/* lstm_cell (PyTorch nn.LSTMCell): x (B,I), h (B,H), c (B,H) -> h_out (B,H), c_out (B,H).
 * w_ih (4H,I), w_hh (4H,H), b_ih (4H), b_hh (4H); gate blocks in order i, f, g, o:
 *   i = sig(.), f = sig(.), g = tanh(.), o = sig(.) of W_ih x + b_ih + W_hh h + b_hh
 *   c_out = f*c + i*g,  h_out = o*tanh(c_out)
 * gates (B,4H) receives the activated i, f, g, o (for backward). h_out/c_out may not alias h/c. */
void lstm_cell_forward(float *h_out, float *c_out, float *gates, const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                       int B, int I, int H);

/* gru_cell (PyTorch nn.GRUCell, = oneDNN linear-before-reset GRU): x (B,I), h (B,H) -> h_out (B,H).
 * w_ih (3H,I), w_hh (3H,H), b_ih (3H), b_hh (3H); gate blocks in order r, z, n:
 *   gx = W_ih x + b_ih,  gh = W_hh h + b_hh                      (B,3H) each, kept for backward
 *   r = sig(gx_r + gh_r), z = sig(gx_z + gh_z), n = tanh(gx_n + r*gh_n)
 *   h_out = (1-z)*n + z*h
 * act (B,3H) receives r, z, n (for backward). h_out may not alias h. */
void gru_cell_forward(float *h_out, float *gx, float *gh, float *act, const float *x, const float *h,
                      const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                      int B, int I, int H);

/* window_attention (one user): h (H), xs (n,I) the window inputs, oldest first.
 *   q = W_q h + b_q (K);  k_j = W_k x_j + b_k, v_j = W_v x_j + b_v  (n,K) each
 *   a = softmax_j(q.k_j / sqrt(K)) (n);  ctx = sum_j a_j v_j (K)
 * w_q (K,H), b_q (K), w_k (K,I), b_k (K), w_v (K,I), b_v (K). q, k, v, a are kept for backward. */
void window_attention_forward(float *ctx, float *a, float *q, float *k, float *v, const float *h, const float *xs,
                              int n, const float *w_q, const float *b_q, const float *w_k, const float *b_k,
                              const float *w_v, const float *b_v, int H, int I, int K);

/* drift: u, u_prev (D) -> 1 - cos(u, u_prev), cos = u.v / max(|u||v|, 1e-12); 0 when first. */
float drift_forward(const float *u, const float *u_prev, int D, int first);

#endif
