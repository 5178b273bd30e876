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

/* ---- the LRU stack's pieces (model.h): layer normalisation, GELU, the diagonal complex
 * recurrence. A complex vector of N is stored as 2N floats, [re_0 .. re_{N-1}, im_0 .. im_{N-1}]. */

#define NN_LN_EPS 1e-5 /* torch.nn.LayerNorm's */

/* layernorm: x (B,C) -> out (B,C) = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps) with the
 * biased variance; mean, rstd (B) kept for backward. out may alias x. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int B, int C);
/* layernorm backward: dout (B,C) -> dx (B,C) +=, dw (C) +=, db (C) += (dw, db may be NULL).
 *   n = (x - mean) rstd,  dn = dout w,  dx = rstd (dn - mean_c(dn) - n mean_c(dn n)) */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *mean,
                        const float *rstd, const float *w, int B, int C);

/* gelu (torch.nn.GELU(), the erf form): out (n) = 0.5 x (1 + erf(x / sqrt 2)). out may alias x. */
void gelu_forward(float *out, const float *x, long n);
/* gelu backward: dx (n) += dout * (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)). */
void gelu_backward(float *dx, const float *x, const float *dout, long n);

/* lru_lambda: the eigenvalues from their logs (N each): r = exp(-exp(nu)), phi = exp(theta),
 *   lambda = r (cos phi + i sin phi) -> lre, lim (N);  gamma = exp(gamma_log) (N). */
void lru_lambda_forward(float *lre, float *lim, float *gamma, const float *nu, const float *theta, const float *gamma_log,
                        int N);
/* its backward: dlre, dlim, dgamma (N) -> dnu, dtheta, dgamma_log (N) +=.
 *   dnu = -exp(nu) (dlre lre + dlim lim),  dtheta = phi (dlim lre - dlre lim),  dgamma_log = dgamma gamma */
void lru_lambda_backward(float *dnu, float *dtheta, float *dgamma_log, const float *dlre, const float *dlim,
                         const float *dgamma, const float *lre, const float *lim, const float *gamma, const float *theta,
                         const float *nu, int N);

/* lru_scan: T steps of the diagonal complex recurrence over B rows, time-major:
 *   u (T,B,2N), h0 (B,2N) -> hs (T,B,2N),  h_t = lambda h_{t-1} + gamma u_t   (complex, per k < N)
 * T = 1 is the serving step. hs may not alias u or h0. */
void lru_scan_forward(float *hs, const float *u, const float *h0, const float *lre, const float *lim, const float *gamma,
                      int T, int B, int N);
/* lru_scan backward: dhs (T,B,2N), the gradient reaching each h_t from outside the recurrence ->
 * du (T,B,2N) +=, dh0 (B,2N) += (may be NULL), dlre, dlim, dgamma (N) +=. With G_t = dL/dh_t
 * (total): G_t = dhs_t + conj(lambda) G_{t+1}, du_t = gamma G_t, dgamma += Re(conj(G_t) u_t),
 * dlambda += conj(h_{t-1}) G_t (as re/im parts of a complex gradient). */
void lru_scan_backward(float *du, float *dh0, float *dlre, float *dlim, float *dgamma, const float *dhs, const float *hs,
                       const float *u, const float *h0, const float *lre, const float *lim, const float *gamma, int T,
                       int B, int N);

/* mha_window (the transformer blocks' attention, one position): q (H), the window's keys K and
 * values V (n rows of H, oldest first, the current position last; row j at K + j*ldk, V + j*ldv),
 * nh heads of dh = H / nh:
 *   a[h][j] = softmax_j( q_h . K_j,h / sqrt(dh) ),   out_h = sum_j a[h][j] V_j,h     -> out (H)
 * a (nh, n) kept for backward. */
void mha_window_forward(float *out, float *a, const float *q, const float *K, long ldk, const float *V, long ldv, int n,
                        int H, int nh);
/* its backward: dout (H) -> dq (H) +=, dK (rows at dK + j*ldk) +=, dV (rows at dV + j*ldv) +=
 * (dK, dV may be NULL: entries from before a chunk take no gradient).
 *   dV_j,h = a_j dout_h,  da_j = dout_h . V_j,h,  ds_j = a_j (da_j - sum_l a_l da_l),
 *   dq_h = sum_j ds_j K_j,h / sqrt(dh),  dK_j,h = ds_j q_h / sqrt(dh) */
void mha_window_backward(float *dq, float *dK, float *dV, const float *dout, const float *a, const float *q,
                         const float *K, long ldk, const float *V, long ldv, int n, int H, int nh);

/* drift: u, u_prev (D) -> 1 - cos(u, u_prev), cos = u.v / max(|u||v|, 1e-12); 0 when first. */
float drift_forward(const float *u, const float *u_prev, int D, int first);

#endif
