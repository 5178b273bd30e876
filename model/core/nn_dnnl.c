/* nn_dnnl: oneDNN primitives for the step. See nn_dnnl.h.
 *
 * Gate and bias layouts (checked against torch by tests/oracle/test_model_oracle.py):
 *   LSTM: oneDNN gates i, f, c~, o = PyTorch i, f, g, o; bias (4,H) = b_ih + b_hh.
 *   LBR-GRU: oneDNN gates u (update), r (reset), o (candidate) = PyTorch z, r, n, so the first two
 *   blocks swap; bias (4,H) = [b_iz + b_hz, b_ir + b_hr, b_in, b_hn] (the 4th gate is the hidden
 *   part of the candidate, added before the reset gate multiplies it).
 *   User weights are built in ldigo (I, G, H) from PyTorch's (G*H, I) and reordered into the
 *   layout the primitive picks with format_tag_any.
 */
#include "nn_dnnl.h"
#include "dnnl_util.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN_MAX_BUCKETS 16
#define NN_MAX_ARGS 12
#define NN_MAX_LAYOUTS NN_MAX_BUCKETS

typedef struct {
    dnnl_primitive_t p;
    dnnl_memory_desc_t scratch_md;
    size_t scratch_size;
    dnnl_memory_t mem[NN_MAX_ARGS];
    int nmem;
    dnnl_exec_arg_t args[NN_MAX_ARGS];
    int nargs;
} nn_prim;

/* Reordered weight buffers, one per distinct layout asked for. */
typedef struct {
    int n;
    dnnl_memory_desc_t md[NN_MAX_LAYOUTS];
    void *buf[NN_MAX_LAYOUTS];
} nn_wcache;

struct nn_dnnl_rnn {
    nn_dnnl *d;
    nn_prim prim[NN_MAX_BUCKETS];
    nn_wcache wl, wi;
    float *bias;
    float *dst_iter;  /* (R,H): LSTM's dst_iter, a copy of dst_layer we do not read */
    nn_dnnl_rnn *next;
};

struct nn_dnnl_linear {
    nn_dnnl *d;
    nn_prim prim[NN_MAX_BUCKETS];
    nn_wcache w;
    float *bias;
    nn_dnnl_linear *next;
};

struct nn_dnnl_layernorm {
    nn_dnnl *d;
    nn_prim prim[NN_MAX_BUCKETS];
    float *scale, *shift;
    nn_dnnl_layernorm *next;
};

struct nn_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int nb, rows[NN_MAX_BUCKETS];
    void *scratch;
    size_t scratch_size;
    int finalized;
    nn_dnnl_rnn *rnns;
    nn_dnnl_linear *linears;
    nn_dnnl_layernorm *norms;
};

static void prim_free(nn_prim *p) {
    for (int i = 0; i < p->nmem; i++) dnnl_memory_destroy(p->mem[i]);
    if (p->p) dnnl_primitive_destroy(p->p);
    memset(p, 0, sizeof *p);
}

static void wcache_free(nn_wcache *w) {
    for (int i = 0; i < w->n; i++) free(w->buf[i]);
    w->n = 0;
}

/* ---- context ----------------------------------------------------------------------------- */

int nn_dnnl_new(nn_dnnl **out, int max_batch, char *err, size_t errlen) {
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 20)) return model_errf(err, errlen, "oneDNN: max_batch %d out of range", max_batch);
    nn_dnnl *d = calloc(1, sizeof *d);
    if (!d) return model_errf(err, errlen, "oneDNN: out of memory");
    /* Powers of two up to 256 (a step's rows are a wave of distinct users, often a few: padding
     * 1 row to 16 cost 16 rows), then powers of four. */
    for (int r = 1; r < max_batch && d->nb < NN_MAX_BUCKETS - 1; r *= r < 256 ? 2 : 4) d->rows[d->nb++] = r;
    d->rows[d->nb++] = max_batch;
    DN(dnnl_engine_create(&d->eng, dnnl_cpu, 0), "engine create");
    DN(dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags), "stream create");
    *out = d;
    return 0;
fail:
    nn_dnnl_free(d);
    return -1;
}

static void rnn_free(nn_dnnl_rnn *r) {
    for (int b = 0; b < NN_MAX_BUCKETS; b++) prim_free(&r->prim[b]);
    wcache_free(&r->wl);
    wcache_free(&r->wi);
    free(r->bias);
    free(r->dst_iter);
    free(r);
}

static void linear_free(nn_dnnl_linear *l) {
    for (int b = 0; b < NN_MAX_BUCKETS; b++) prim_free(&l->prim[b]);
    wcache_free(&l->w);
    free(l->bias);
    free(l);
}

static void layernorm_free(nn_dnnl_layernorm *l) {
    for (int b = 0; b < NN_MAX_BUCKETS; b++) prim_free(&l->prim[b]);
    free(l->scale);
    free(l->shift);
    free(l);
}

void nn_dnnl_free(nn_dnnl *d) {
    if (!d) return;
    while (d->norms) {
        nn_dnnl_layernorm *n = d->norms->next;
        layernorm_free(d->norms);
        d->norms = n;
    }
    while (d->rnns) {
        nn_dnnl_rnn *n = d->rnns->next;
        rnn_free(d->rnns);
        d->rnns = n;
    }
    while (d->linears) {
        nn_dnnl_linear *n = d->linears->next;
        linear_free(d->linears);
        d->linears = n;
    }
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->eng) dnnl_engine_destroy(d->eng);
    free(d->scratch);
    free(d);
}

int nn_dnnl_n_buckets(const nn_dnnl *d) { return d->nb; }
int nn_dnnl_bucket_rows(const nn_dnnl *d, int bucket) { return d->rows[bucket]; }

int nn_dnnl_bucket_for(const nn_dnnl *d, int n) {
    for (int b = 0; b < d->nb; b++)
        if (n <= d->rows[b]) return b;
    return -1;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static int md_tag(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag, char *err,
                  size_t errlen) {
    DN(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag), "memory_desc_init_by_tag");
    return 0;
fail:
    return -1;
}

/* Adds (arg, memory over buf with md) to p. */
static int prim_arg(nn_prim *p, int arg_id, const dnnl_memory_desc_t *md, nn_dnnl *d, void *buf, char *err,
                    size_t errlen) {
    if (p->nmem == NN_MAX_ARGS) return model_errf(err, errlen, "oneDNN: too many arguments");
    dnnl_memory_t m = NULL;
    DN(dnnl_memory_create(&m, md, d->eng, buf), "memory create");
    p->mem[p->nmem++] = m;
    p->args[p->nargs].arg = arg_id;
    p->args[p->nargs].memory = m;
    p->nargs++;
    return 0;
fail:
    return -1;
}

/* Returns the buffer holding the weights in layout `want`, reordering the user's plain weights
 * (user_md over user) into a new buffer the first time this layout is asked for. */
static void *weights_for(nn_dnnl *d, nn_wcache *wc, const dnnl_memory_desc_t *want, const dnnl_memory_desc_t *user_md,
                         const void *user, char *err, size_t errlen) {
    for (int i = 0; i < wc->n; i++)
        if (dnnl_memory_desc_equal(&wc->md[i], want)) return wc->buf[i];
    if (wc->n == NN_MAX_LAYOUTS) {
        model_errf(err, errlen, "oneDNN: too many weight layouts");
        return NULL;
    }
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    void *buf = dnnl_alloc64(dnnl_memory_desc_get_size(want));
    if (!buf) {
        model_errf(err, errlen, "oneDNN: out of memory for weights");
        return NULL;
    }
    DN(dnnl_memory_create(&src, user_md, d->eng, (void *)user), "memory create (weights)");
    DN(dnnl_memory_create(&dst, want, d->eng, buf), "memory create (weights)");
    DN(dnnl_reorder_primitive_desc_create(&rpd, user_md, d->eng, want, d->eng, NULL), "reorder pd create");
    DN(dnnl_primitive_create(&rp, rpd), "reorder create");
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    DN(dnnl_primitive_execute(rp, d->stream, 2, a), "reorder execute");
    DN(dnnl_stream_wait(d->stream), "stream wait");
    dnnl_primitive_destroy(rp);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(dst);
    wc->md[wc->n] = *want;
    wc->buf[wc->n] = buf;
    wc->n++;
    return buf;
fail:
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    free(buf);
    return NULL;
}

/* Creates the primitive from an op descriptor with a user-managed scratchpad and the post-op
 * `post` (NN_POST_*); returns the pd (caller destroys it) in *pd_out. */
static int prim_create_post(nn_dnnl *d, nn_prim *p, const void *op_desc, int post, dnnl_primitive_desc_t *pd_out,
                            char *err, size_t errlen) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_post_ops_t po = NULL;
    DN(dnnl_primitive_attr_create(&attr), "attr create");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set scratchpad mode");
    if (post != NN_POST_NONE) {
        DN(dnnl_post_ops_create(&po), "post-ops create");
        if (post == NN_POST_GELU) DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0), "append gelu");
        else DN(dnnl_post_ops_append_sum(po, 1.0f), "append sum");
        DN(dnnl_primitive_attr_set_post_ops(attr, po), "set post-ops");
        dnnl_post_ops_destroy(po);
        po = NULL;
    }
    DN(dnnl_primitive_desc_create(&pd, op_desc, attr, d->eng, NULL), "primitive desc create");
    DN(dnnl_primitive_create(&p->p, pd), "primitive create");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd) {
        p->scratch_md = *smd;
        p->scratch_size = dnnl_memory_desc_get_size(smd);
    }
    if (p->scratch_size > d->scratch_size) d->scratch_size = p->scratch_size;
    dnnl_primitive_attr_destroy(attr);
    *pd_out = pd;
    return 0;
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return -1;
}

static int prim_create(nn_dnnl *d, nn_prim *p, const void *op_desc, dnnl_primitive_desc_t *pd_out, char *err,
                       size_t errlen) {
    return prim_create_post(d, p, op_desc, NN_POST_NONE, pd_out, err, errlen);
}

static int prim_run(nn_dnnl *d, nn_prim *p, char *err, size_t errlen) {
    if (!p->p) return model_errf(err, errlen, "oneDNN: no primitive for this bucket");
    DN(dnnl_primitive_execute(p->p, d->stream, p->nargs, p->args), "execute");
    DN(dnnl_stream_wait(d->stream), "stream wait");
    return 0;
fail:
    return -1;
}

int nn_dnnl_finalize(nn_dnnl *d, char *err, size_t errlen) {
    if (d->finalized) return model_errf(err, errlen, "oneDNN: finalize called twice");
    if (d->scratch_size > 0 && !(d->scratch = dnnl_alloc64(d->scratch_size)))
        return model_errf(err, errlen, "oneDNN: out of memory for a %zu-byte scratchpad", d->scratch_size);
    for (nn_dnnl_rnn *r = d->rnns; r; r = r->next)
        for (int b = 0; b < d->nb; b++)
            if (r->prim[b].scratch_size > 0 &&
                prim_arg(&r->prim[b], DNNL_ARG_SCRATCHPAD, &r->prim[b].scratch_md, d, d->scratch, err, errlen))
                return -1;
    for (nn_dnnl_linear *l = d->linears; l; l = l->next)
        for (int b = 0; b < d->nb; b++)
            if (l->prim[b].scratch_size > 0 &&
                prim_arg(&l->prim[b], DNNL_ARG_SCRATCHPAD, &l->prim[b].scratch_md, d, d->scratch, err, errlen))
                return -1;
    for (nn_dnnl_layernorm *l = d->norms; l; l = l->next)
        for (int b = 0; b < d->nb; b++)
            if (l->prim[b].scratch_size > 0 &&
                prim_arg(&l->prim[b], DNNL_ARG_SCRATCHPAD, &l->prim[b].scratch_md, d, d->scratch, err, errlen))
                return -1;
    d->finalized = 1;
    return 0;
}

/* ---- rnn --------------------------------------------------------------------------------- */

int nn_dnnl_rnn_new(nn_dnnl_rnn **out, nn_dnnl *d, int lstm, int I, int H, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh, float *x, float *h, float *c, float *h_out,
                    float *c_out, char *err, size_t errlen) {
    *out = NULL;
    if (d->finalized) return model_errf(err, errlen, "oneDNN: rnn created after finalize");
    const int G = lstm ? 4 : 3, GB = 4; /* LSTM: 4 gates, 4 biases; LBR-GRU: 3 gates, 4 biases */
    /* oneDNN gate g takes PyTorch gate map[g]. */
    const int map[4] = {lstm ? 0 : 1, lstm ? 1 : 0, 2, 3};
    float *wl = NULL, *wi = NULL;
    dnnl_primitive_desc_t pd = NULL;
    nn_dnnl_rnn *r = calloc(1, sizeof *r);
    if (!r) return model_errf(err, errlen, "oneDNN: out of memory");
    r->d = d;
    if (lstm && !(r->dst_iter = dnnl_alloc64((size_t)d->rows[d->nb - 1] * H * sizeof(float)))) {
        model_errf(err, errlen, "oneDNN: out of memory");
        goto fail;
    }
    wl = malloc((size_t)I * G * H * sizeof *wl);
    wi = malloc((size_t)H * G * H * sizeof *wi);
    r->bias = dnnl_alloc64((size_t)GB * H * sizeof *r->bias);
    if (!wl || !wi || !r->bias) {
        model_errf(err, errlen, "oneDNN: out of memory");
        goto fail;
    }
    /* ldigo: [i][g][o] <- PyTorch [(map[g]*H + o)][i] */
    for (int g = 0; g < G; g++)
        for (int o = 0; o < H; o++) {
            const float *src_x = w_ih + ((size_t)map[g] * H + o) * I;
            const float *src_h = w_hh + ((size_t)map[g] * H + o) * H;
            for (int i = 0; i < I; i++) wl[((size_t)i * G + g) * H + o] = src_x[i];
            for (int i = 0; i < H; i++) wi[((size_t)i * G + g) * H + o] = src_h[i];
        }
    for (int o = 0; o < H; o++) {
        if (lstm) {
            for (int g = 0; g < 4; g++) r->bias[g * H + o] = b_ih[g * H + o] + b_hh[g * H + o];
        } else {
            r->bias[0 * H + o] = b_ih[1 * H + o] + b_hh[1 * H + o]; /* u = z */
            r->bias[1 * H + o] = b_ih[0 * H + o] + b_hh[0 * H + o]; /* r */
            r->bias[2 * H + o] = b_ih[2 * H + o];                   /* candidate, input part */
            r->bias[3 * H + o] = b_hh[2 * H + o];                   /* candidate, hidden part */
        }
    }
    dnnl_memory_desc_t wl_user, wi_user, wl_any, wi_any, bias_md;
    if (md_tag(&wl_user, 5, (dnnl_dims_t){1, 1, I, G, H}, dnnl_ldigo, err, errlen) ||
        md_tag(&wi_user, 5, (dnnl_dims_t){1, 1, H, G, H}, dnnl_ldigo, err, errlen) ||
        md_tag(&wl_any, 5, (dnnl_dims_t){1, 1, I, G, H}, dnnl_format_tag_any, err, errlen) ||
        md_tag(&wi_any, 5, (dnnl_dims_t){1, 1, H, G, H}, dnnl_format_tag_any, err, errlen) ||
        md_tag(&bias_md, 4, (dnnl_dims_t){1, 1, GB, H}, dnnl_ldgo, err, errlen))
        goto fail;
    for (int b = 0; b < d->nb; b++) {
        int B = d->rows[b];
        nn_prim *p = &r->prim[b];
        dnnl_memory_desc_t sl, si, sc, dl, di, dc;
        if (md_tag(&sl, 3, (dnnl_dims_t){1, B, I}, dnnl_tnc, err, errlen) ||
            md_tag(&si, 4, (dnnl_dims_t){1, 1, B, H}, dnnl_ldnc, err, errlen) ||
            md_tag(&sc, 4, (dnnl_dims_t){1, 1, B, H}, dnnl_ldnc, err, errlen) ||
            md_tag(&dl, 3, (dnnl_dims_t){1, B, H}, dnnl_tnc, err, errlen) ||
            md_tag(&di, 4, (dnnl_dims_t){1, 1, B, H}, dnnl_ldnc, err, errlen) ||
            md_tag(&dc, 4, (dnnl_dims_t){1, 1, B, H}, dnnl_ldnc, err, errlen))
            goto fail;
        dnnl_rnn_desc_t rd;
        if (lstm)
            DN(dnnl_lstm_forward_desc_init(&rd, dnnl_forward_inference, dnnl_unidirectional_left2right, &sl, &si, &sc,
                                           &wl_any, &wi_any, &bias_md, &dl, &di, &dc, dnnl_rnn_flags_undef),
               "lstm desc init");
        else
            DN(dnnl_lbr_gru_forward_desc_init(&rd, dnnl_forward_inference, dnnl_unidirectional_left2right, &sl, &si,
                                              &wl_any, &wi_any, &bias_md, &dl, NULL, dnnl_rnn_flags_undef),
               "lbr_gru desc init");
        if (prim_create(d, p, &rd, &pd, err, errlen)) goto fail;
        const dnnl_memory_desc_t *wl_md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
        const dnnl_memory_desc_t *wi_md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
        if (!wl_md || !wi_md) {
            model_errf(err, errlen, "oneDNN: rnn weights query failed");
            goto fail;
        }
        void *wl_buf = weights_for(d, &r->wl, wl_md, &wl_user, wl, err, errlen);
        void *wi_buf = wl_buf ? weights_for(d, &r->wi, wi_md, &wi_user, wi, err, errlen) : NULL;
        if (!wi_buf) goto fail;
        if (prim_arg(p, DNNL_ARG_SRC_LAYER, &sl, d, x, err, errlen) ||
            prim_arg(p, DNNL_ARG_SRC_ITER, &si, d, h, err, errlen) ||
            prim_arg(p, DNNL_ARG_WEIGHTS_LAYER, wl_md, d, wl_buf, err, errlen) ||
            prim_arg(p, DNNL_ARG_WEIGHTS_ITER, wi_md, d, wi_buf, err, errlen) ||
            prim_arg(p, DNNL_ARG_BIAS, &bias_md, d, r->bias, err, errlen) ||
            prim_arg(p, DNNL_ARG_DST_LAYER, &dl, d, h_out, err, errlen))
            goto fail;
        if (lstm && (prim_arg(p, DNNL_ARG_SRC_ITER_C, &sc, d, c, err, errlen) ||
                     prim_arg(p, DNNL_ARG_DST_ITER, &di, d, r->dst_iter, err, errlen) ||
                     prim_arg(p, DNNL_ARG_DST_ITER_C, &dc, d, c_out, err, errlen)))
            goto fail;
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    free(wl);
    free(wi);
    r->next = d->rnns;
    d->rnns = r;
    *out = r;
    return 0;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    free(wl);
    free(wi);
    rnn_free(r);
    return -1;
}

int nn_dnnl_rnn_forward(nn_dnnl_rnn *r, int bucket, char *err, size_t errlen) {
    if (bucket < 0 || bucket >= r->d->nb) return model_errf(err, errlen, "oneDNN: bad bucket %d", bucket);
    return prim_run(r->d, &r->prim[bucket], err, errlen);
}

/* ---- linear (matmul) --------------------------------------------------------------------- */

int nn_dnnl_linear_new(nn_dnnl_linear **out, nn_dnnl *d, int C, int OC, const float *w, const float *b, float *x,
                       float *y, char *err, size_t errlen) {
    return nn_dnnl_linear_new_post(out, d, C, OC, w, b, x, y, NN_POST_NONE, err, errlen);
}

int nn_dnnl_linear_new_post(nn_dnnl_linear **out, nn_dnnl *d, int C, int OC, const float *w, const float *b, float *x,
                            float *y, int post, char *err, size_t errlen) {
    *out = NULL;
    if (d->finalized) return model_errf(err, errlen, "oneDNN: linear created after finalize");
    dnnl_primitive_desc_t pd = NULL;
    nn_dnnl_linear *l = calloc(1, sizeof *l);
    if (!l) return model_errf(err, errlen, "oneDNN: out of memory");
    l->d = d;
    if (!(l->bias = dnnl_alloc64((size_t)OC * sizeof(float)))) {
        model_errf(err, errlen, "oneDNN: out of memory");
        goto fail;
    }
    memcpy(l->bias, b, (size_t)OC * sizeof(float));
    /* The weights are logically (C, OC); PyTorch's (OC, C) row-major is tag ba of that. */
    dnnl_memory_desc_t w_user, w_any, bias_md;
    if (md_tag(&w_user, 2, (dnnl_dims_t){C, OC}, dnnl_ba, err, errlen) ||
        md_tag(&w_any, 2, (dnnl_dims_t){C, OC}, dnnl_format_tag_any, err, errlen) ||
        md_tag(&bias_md, 2, (dnnl_dims_t){1, OC}, dnnl_ab, err, errlen))
        goto fail;
    for (int bk = 0; bk < d->nb; bk++) {
        int B = d->rows[bk];
        nn_prim *p = &l->prim[bk];
        dnnl_memory_desc_t src, dst;
        if (md_tag(&src, 2, (dnnl_dims_t){B, C}, dnnl_ab, err, errlen) ||
            md_tag(&dst, 2, (dnnl_dims_t){B, OC}, dnnl_ab, err, errlen))
            goto fail;
        dnnl_matmul_desc_t md;
        DN(dnnl_matmul_desc_init(&md, &src, &w_any, &bias_md, &dst), "matmul desc init");
        if (prim_create_post(d, p, &md, post, &pd, err, errlen)) goto fail;
        const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS);
        if (!w_md) {
            model_errf(err, errlen, "oneDNN: matmul weights query failed");
            goto fail;
        }
        void *w_buf = weights_for(d, &l->w, w_md, &w_user, w, err, errlen);
        if (!w_buf) goto fail;
        if (prim_arg(p, DNNL_ARG_SRC, &src, d, x, err, errlen) ||
            prim_arg(p, DNNL_ARG_WEIGHTS, w_md, d, w_buf, err, errlen) ||
            prim_arg(p, DNNL_ARG_BIAS, &bias_md, d, l->bias, err, errlen) ||
            prim_arg(p, DNNL_ARG_DST, &dst, d, y, err, errlen))
            goto fail;
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    l->next = d->linears;
    d->linears = l;
    *out = l;
    return 0;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    linear_free(l);
    return -1;
}

int nn_dnnl_linear_forward(nn_dnnl_linear *l, int bucket, char *err, size_t errlen) {
    if (bucket < 0 || bucket >= l->d->nb) return model_errf(err, errlen, "oneDNN: bad bucket %d", bucket);
    return prim_run(l->d, &l->prim[bucket], err, errlen);
}

/* ---- layer normalisation ------------------------------------------------------------------ */

int nn_dnnl_layernorm_new(nn_dnnl_layernorm **out, nn_dnnl *d, int C, const float *w, const float *b, float *x, float *y,
                          char *err, size_t errlen) {
    *out = NULL;
    if (d->finalized) return model_errf(err, errlen, "oneDNN: layernorm created after finalize");
    dnnl_primitive_desc_t pd = NULL;
    nn_dnnl_layernorm *l = calloc(1, sizeof *l);
    if (!l) return model_errf(err, errlen, "oneDNN: out of memory");
    l->d = d;
    l->scale = dnnl_alloc64((size_t)C * sizeof(float));
    l->shift = dnnl_alloc64((size_t)C * sizeof(float));
    if (!l->scale || !l->shift) {
        model_errf(err, errlen, "oneDNN: out of memory");
        goto fail;
    }
    memcpy(l->scale, w, (size_t)C * sizeof(float));
    memcpy(l->shift, b, (size_t)C * sizeof(float));
    dnnl_memory_desc_t vec_md;
    if (md_tag(&vec_md, 1, (dnnl_dims_t){C}, dnnl_a, err, errlen)) goto fail;
    for (int bk = 0; bk < d->nb; bk++) {
        nn_prim *p = &l->prim[bk];
        dnnl_memory_desc_t data;
        if (md_tag(&data, 2, (dnnl_dims_t){d->rows[bk], C}, dnnl_ab, err, errlen)) goto fail;
        dnnl_layer_normalization_desc_t ld;
        DN(dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &data, NULL, (float)1e-5,
                                                      dnnl_use_scale | dnnl_use_shift),
           "layer normalization desc init");
        if (prim_create(d, p, &ld, &pd, err, errlen)) goto fail;
        if (prim_arg(p, DNNL_ARG_SRC, &data, d, x, err, errlen) || prim_arg(p, DNNL_ARG_DST, &data, d, y, err, errlen) ||
            prim_arg(p, DNNL_ARG_SCALE, &vec_md, d, l->scale, err, errlen) ||
            prim_arg(p, DNNL_ARG_SHIFT, &vec_md, d, l->shift, err, errlen))
            goto fail;
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    l->next = d->norms;
    d->norms = l;
    *out = l;
    return 0;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    layernorm_free(l);
    return -1;
}

int nn_dnnl_layernorm_forward(nn_dnnl_layernorm *l, int bucket, char *err, size_t errlen) {
    if (bucket < 0 || bucket >= l->d->nb) return model_errf(err, errlen, "oneDNN: bad bucket %d", bucket);
    return prim_run(l->d, &l->prim[bucket], err, errlen);
}

int nn_dnnl_rnn_weight_layouts(const nn_dnnl_rnn *r) { return r->wl.n > r->wi.n ? r->wl.n : r->wi.n; }
int nn_dnnl_linear_weight_layouts(const nn_dnnl_linear *l) { return l->w.n; }

int nn_gemm(char ta, char tb, long M, long N, long K, float alpha, const float *A, long lda, const float *B, long ldb,
            float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) { /* C = beta * C */
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return 0;
    }
    return dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == dnnl_success ? 0 : -1;
}
