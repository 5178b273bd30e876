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
/* linear backward, accumulating (+=) like every backward here: dout (B,OC) ->
 *   dinp (B,C) += dout @ weight,  dweight (OC,C) += dout^T @ inp,  dbias (OC) += sum_b dout.
 * dinp, dweight and dbias may each be NULL (not wanted). */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int B, int C, int OC);

/* lstm_cell (PyTorch nn.LSTMCell): x (B,I), h (B,H), c (B,H) -> h_out (B,H), c_out (B,H).
 * w_ih (4H,I), w_hh (4H,H), b_ih (4H), b_hh (4H); gate blocks in order i, f, g, o:
 *   i = sig(.), f = sig(.), g = tanh(.), o = sig(.) of W_ih x + b_ih + W_hh h + b_hh
 *   c_out = f*c + i*g,  h_out = o*tanh(c_out)
 * gates (B,4H) receives the activated i, f, g, o (for backward). h_out/c_out may not alias h/c. */
void lstm_cell_forward(float *h_out, float *c_out, float *gates, const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                       int B, int I, int H);
/* lstm_cell backward: dh_out (B,H), dc_out (B,H) or NULL (no gradient reaches c_out from later)
 * -> dx (B,I) +=, dh (B,H) +=, dc (B,H) +=, dw_ih (4H,I) +=, dw_hh (4H,H) +=, db_ih, db_hh (4H) +=.
 * gates, x, h, c are the forward's (c_out is recomputed from them). dx/dh/dc may be NULL. */
void lstm_cell_backward(float *dx, float *dh, float *dc, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh_out, const float *dc_out, const float *gates, const float *x,
                        const float *h, const float *c, const float *w_ih, const float *w_hh, int B, int I, int H);

/* gru_cell (PyTorch nn.GRUCell, = oneDNN linear-before-reset GRU): x (B,I), h (B,H) -> h_out (B,H).
 * w_ih (3H,I), w_hh (3H,H), b_ih (3H), b_hh (3H); gate blocks in order r, z, n:
 *   gx = W_ih x + b_ih,  gh = W_hh h + b_hh                      (B,3H) each, kept for backward
 *   r = sig(gx_r + gh_r), z = sig(gx_z + gh_z), n = tanh(gx_n + r*gh_n)
 *   h_out = (1-z)*n + z*h
 * act (B,3H) receives r, z, n (for backward). h_out may not alias h. */
void gru_cell_forward(float *h_out, float *gx, float *gh, float *act, const float *x, const float *h,
                      const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                      int B, int I, int H);
/* gru_cell backward: dh_out (B,H) -> dx (B,I) +=, dh (B,H) +=, dw_ih (3H,I) +=, dw_hh (3H,H) +=,
 * db_ih, db_hh (3H) +=. gh and act are the forward's, x and h its inputs. dx/dh may be NULL.
 *   dn = dh_out (1-z), dz = dh_out (h - n), dh += dh_out z
 *   da_n = dn (1-n^2): dgx_n = da_n, dgh_n = da_n r, dr = da_n gh_n
 *   da_z = dz z(1-z), da_r = dr r(1-r): dgx = dgh for the r and z blocks */
void gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                       const float *dh_out, const float *gh, const float *act, const float *x, const float *h,
                       const float *w_ih, const float *w_hh, int B, int I, int H);

/* window_attention (one user): h (H), xs (n,I) the window inputs, oldest first.
 *   q = W_q h + b_q (K);  k_j = W_k x_j + b_k, v_j = W_v x_j + b_v  (n,K) each
 *   a = softmax_j(q.k_j / sqrt(K)) (n);  ctx = sum_j a_j v_j (K)
 * w_q (K,H), b_q (K), w_k (K,I), b_k (K), w_v (K,I), b_v (K). q, k, v, a are kept for backward. */
void window_attention_forward(float *ctx, float *a, float *q, float *k, float *v, const float *h, const float *xs,
                              int n, const float *w_q, const float *b_q, const float *w_k, const float *b_k,
                              const float *w_v, const float *b_v, int H, int I, int K);
/* window_attention backward: dctx (K) -> dh (H) +=, dxs (n,I) +=, dw_q (K,H), db_q (K), dw_k (K,I),
 * db_k (K), dw_v (K,I), db_v (K) +=. a, q, k, v are the forward's, h and xs its inputs.
 *   dv_j = a_j dctx,  da_j = dctx . v_j,  ds_j = a_j (da_j - sum_l a_l da_l)
 *   dq = sum_j ds_j k_j / sqrt(K),  dk_j = ds_j q / sqrt(K),  then the three linears.
 * dh/dxs may be NULL. */
void window_attention_backward(float *dh, float *dxs, float *dw_q, float *db_q, float *dw_k, float *db_k, float *dw_v,
                               float *db_v, const float *dctx, const float *a, const float *q, const float *k,
                               const float *v, const float *h, const float *xs, int n, const float *w_q,
                               const float *w_k, const float *w_v, int H, int I, int K);

/* drift: u, u_prev (D) -> 1 - cos(u, u_prev), cos = u.v / max(|u||v|, 1e-12); 0 when first. */
float drift_forward(const float *u, const float *u_prev, int D, int first);

#endif
