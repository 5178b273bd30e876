/* nn_dnnl_train: oneDNN GEMM and RNN training primitives. See nn_dnnl_train.h.
 *
 * Gate and bias mapping (the same as nn_dnnl.c, which tests/oracle checks against torch):
 *   LSTM: oneDNN gates i, f, c~, o = PyTorch i, f, g, o; bias (4,H) = b_ih + b_hh, so the
 *         gradient of either bias is the gradient of the sum.
 *   LBR-GRU: oneDNN gates u, r, o = PyTorch z, r, n (the first two swap); bias (4,H) =
 *         [b_iz + b_hz, b_ir + b_hr, b_in, b_hn].
 * oneDNN's RNN backward accumulates into its diff-weights outputs, so they are zeroed before
 * every backward and then added to the caller's PyTorch-layout gradients.
 */
#include "nn_dnnl_train.h"
#include "dnnl_util.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 256

typedef struct {
    int T, N;
    dnnl_primitive_t fwd, bwd;
    size_t ws_size;
} rnn_entry;

struct nn_rnn_train {
    int lstm, I, H, G;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    rnn_entry cache[CACHE_MAX];
    int ncache;
    /* weights: forward ldigo, backward ldgoi, bias ldgo (4,H); gradients in ldigo */
    float *wl_f, *wi_f, *wl_b, *wi_b, *bias, *dwl, *dwi, *dbias;
    /* the last forward */
    rnn_entry *last;
    int lT, lN;
    const float *x, *h0, *c0, *y, *hT, *cT;
    void *ws;
    size_t ws_cap;
    /* zero diff_dst_iter(_c) and discarded diff_src_iter(_c), (N,H) each, grown on demand */
    float *zeros, *sink, *sink_c;
    size_t state_cap; /* floats */
};

static float *falloc(size_t n) { return dnnl_alloc64(n * sizeof(float)); }


static void cache_clear(nn_rnn_train *r) {
    for (int i = 0; i < r->ncache; i++) {
        if (r->cache[i].fwd) dnnl_primitive_destroy(r->cache[i].fwd);
        if (r->cache[i].bwd) dnnl_primitive_destroy(r->cache[i].bwd);
    }
    r->ncache = 0;
    r->last = NULL;
}

void nn_rnn_train_free(nn_rnn_train *r) {
    if (!r) return;
    cache_clear(r);
    if (r->stream) dnnl_stream_destroy(r->stream);
    if (r->eng) dnnl_engine_destroy(r->eng);
    float *b[] = {r->wl_f, r->wi_f, r->wl_b, r->wi_b, r->bias, r->dwl, r->dwi, r->dbias, r->zeros, r->sink, r->sink_c};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) free(b[i]);
    free(r->ws);
    free(r);
}

int nn_rnn_train_new(nn_rnn_train **out, int lstm, int I, int H, char *err, size_t errlen) {
    *out = NULL;
    if (I < 1 || H < 1) return model_errf(err, errlen, "oneDNN rnn: bad sizes I=%d H=%d", I, H);
    nn_rnn_train *r = calloc(1, sizeof *r);
    if (!r) return model_errf(err, errlen, "oneDNN rnn: out of memory");
    r->lstm = lstm, r->I = I, r->H = H, r->G = lstm ? 4 : 3;
    size_t G = (size_t)r->G;
    r->wl_f = falloc((size_t)I * G * H), r->wi_f = falloc((size_t)H * G * H);
    r->wl_b = falloc((size_t)I * G * H), r->wi_b = falloc((size_t)H * G * H);
    r->dwl = falloc((size_t)I * G * H), r->dwi = falloc((size_t)H * G * H);
    r->bias = falloc(4 * (size_t)H), r->dbias = falloc(4 * (size_t)H);
    if (!r->wl_f || !r->wi_f || !r->wl_b || !r->wi_b || !r->dwl || !r->dwi || !r->bias || !r->dbias) {
        model_errf(err, errlen, "oneDNN rnn: out of memory");
        goto fail;
    }
    DN(dnnl_engine_create(&r->eng, dnnl_cpu, 0), "engine create");
    DN(dnnl_stream_create(&r->stream, r->eng, dnnl_stream_default_flags), "stream create");
    *out = r;
    return 0;
fail:
    nn_rnn_train_free(r);
    return -1;
}

/* oneDNN gate g <- PyTorch gate map(g) */
static inline int gate_map(int lstm, int g) { return lstm || g > 1 ? g : 1 - g; }

int nn_rnn_train_set_weights(nn_rnn_train *r, const float *w_ih, const float *w_hh, const float *b_ih,
                             const float *b_hh, char *err, size_t errlen) {
    (void)err, (void)errlen;
    const int I = r->I, H = r->H, G = r->G;
    for (int g = 0; g < G; g++) {
        int pg = gate_map(r->lstm, g);
        for (int o = 0; o < H; o++) {
            const float *sx = w_ih + ((size_t)pg * H + o) * I, *sh = w_hh + ((size_t)pg * H + o) * H;
            /* ldgoi is PyTorch's layout with the gate blocks in oneDNN's order */
            memcpy(r->wl_b + ((size_t)g * H + o) * I, sx, (size_t)I * sizeof(float));
            memcpy(r->wi_b + ((size_t)g * H + o) * H, sh, (size_t)H * sizeof(float));
            for (int i = 0; i < I; i++) r->wl_f[((size_t)i * G + g) * H + o] = sx[i];
            for (int i = 0; i < H; i++) r->wi_f[((size_t)i * G + g) * H + o] = sh[i];
        }
    }
    for (int o = 0; o < H; o++) {
        if (r->lstm) {
            for (int g = 0; g < 4; g++) r->bias[g * H + o] = b_ih[g * H + o] + b_hh[g * H + o];
        } else {
            r->bias[0 * H + o] = b_ih[1 * H + o] + b_hh[1 * H + o];
            r->bias[1 * H + o] = b_ih[0 * H + o] + b_hh[0 * H + o];
            r->bias[2 * H + o] = b_ih[2 * H + o];
            r->bias[3 * H + o] = b_hh[2 * H + o];
        }
    }
    return 0;
}

typedef struct {
    dnnl_memory_desc_t sl, si, wl_f, wi_f, wl_b, wi_b, b, dl, di;
} rnn_mds;

static int make_mds(const nn_rnn_train *r, int T, int N, rnn_mds *d, char *err, size_t errlen) {
    const int I = r->I, H = r->H, G = r->G;
    DN(dnnl_memory_desc_init_by_tag(&d->sl, 3, (dnnl_dims_t){T, N, I}, dnnl_f32, dnnl_tnc), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->si, 4, (dnnl_dims_t){1, 1, N, H}, dnnl_f32, dnnl_ldnc), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->wl_f, 5, (dnnl_dims_t){1, 1, I, G, H}, dnnl_f32, dnnl_ldigo), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->wi_f, 5, (dnnl_dims_t){1, 1, H, G, H}, dnnl_f32, dnnl_ldigo), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->wl_b, 5, (dnnl_dims_t){1, 1, I, G, H}, dnnl_f32, dnnl_ldgoi), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->wi_b, 5, (dnnl_dims_t){1, 1, H, G, H}, dnnl_f32, dnnl_ldgoi), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->b, 4, (dnnl_dims_t){1, 1, 4, H}, dnnl_f32, dnnl_ldgo), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->dl, 3, (dnnl_dims_t){T, N, H}, dnnl_f32, dnnl_tnc), "md");
    DN(dnnl_memory_desc_init_by_tag(&d->di, 4, (dnnl_dims_t){1, 1, N, H}, dnnl_f32, dnnl_ldnc), "md");
    return 0;
fail:
    return -1;
}

static rnn_entry *get_entry(nn_rnn_train *r, int T, int N, char *err, size_t errlen) {
    for (int i = 0; i < r->ncache; i++)
        if (r->cache[i].T == T && r->cache[i].N == N) return &r->cache[i];
    if (r->ncache == CACHE_MAX) cache_clear(r); /* unexpected with padded shapes; stay correct */
    rnn_mds d;
    dnnl_rnn_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    rnn_entry e = {T, N, NULL, NULL, 0};
    if (make_mds(r, T, N, &d, err, errlen)) return NULL;
    const dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    if (r->lstm) {
        DN(dnnl_lstm_forward_desc_init(&fd, dnnl_forward_training, dir, &d.sl, &d.si, &d.si, &d.wl_f, &d.wi_f, &d.b, &d.dl,
                                       &d.di, &d.di, 0),
           "lstm forward desc");
        DN(dnnl_lstm_backward_desc_init(&bd, dnnl_backward, dir, &d.sl, &d.si, &d.si, &d.wl_b, &d.wi_b, &d.b, &d.dl, &d.di,
                                        &d.di, &d.sl, &d.si, &d.si, &d.wl_f, &d.wi_f, &d.b, &d.dl, &d.di, &d.di, 0),
           "lstm backward desc");
    } else {
        DN(dnnl_lbr_gru_forward_desc_init(&fd, dnnl_forward_training, dir, &d.sl, &d.si, &d.wl_f, &d.wi_f, &d.b, &d.dl,
                                          &d.di, 0),
           "lbr_gru forward desc");
        DN(dnnl_lbr_gru_backward_desc_init(&bd, dnnl_backward, dir, &d.sl, &d.si, &d.wl_b, &d.wi_b, &d.b, &d.dl, &d.di,
                                           &d.sl, &d.si, &d.wl_f, &d.wi_f, &d.b, &d.dl, &d.di, 0),
           "lbr_gru backward desc");
    }
    DN(dnnl_primitive_desc_create(&fpd, &fd, NULL, r->eng, NULL), "rnn forward pd");
    DN(dnnl_primitive_desc_create(&bpd, &bd, NULL, r->eng, fpd), "rnn backward pd");
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    e.ws_size = ws ? dnnl_memory_desc_get_size(ws) : 0;
    DN(dnnl_primitive_create(&e.fwd, fpd), "rnn forward create");
    DN(dnnl_primitive_create(&e.bwd, bpd), "rnn backward create");
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    r->cache[r->ncache] = e;
    return &r->cache[r->ncache++];
fail:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (e.fwd) dnnl_primitive_destroy(e.fwd);
    if (e.bwd) dnnl_primitive_destroy(e.bwd);
    return NULL;
}

/* Executes p with (arg, md, ptr) triples; memories are created around the call (cheap). */
typedef struct {
    int arg;
    const dnnl_memory_desc_t *md;
    const void *ptr;
} arg_spec;

static int run(nn_rnn_train *r, dnnl_primitive_t p, const arg_spec *a, int n, char *err, size_t errlen) {
    dnnl_memory_t mem[24] = {0};
    dnnl_exec_arg_t args[24];
    int rc = -1, made = 0;
    for (int i = 0; i < n; i++) {
        DN(dnnl_memory_create(&mem[i], a[i].md, r->eng, (void *)a[i].ptr), "memory create");
        made++;
        args[i].arg = a[i].arg;
        args[i].memory = mem[i];
    }
    DN(dnnl_primitive_execute(p, r->stream, n, args), "rnn execute");
    DN(dnnl_stream_wait(r->stream), "stream wait");
    rc = 0;
fail:
    for (int i = 0; i < made; i++) dnnl_memory_destroy(mem[i]);
    return rc;
}

static int ensure_state_bufs(nn_rnn_train *r, int N, char *err, size_t errlen) {
    size_t need = (size_t)N * r->H;
    if (need <= r->state_cap) return 0;
    free(r->zeros), free(r->sink), free(r->sink_c);
    r->zeros = falloc(need), r->sink = falloc(need), r->sink_c = falloc(need);
    r->state_cap = need;
    if (!r->zeros || !r->sink || !r->sink_c) {
        r->state_cap = 0;
        return model_errf(err, errlen, "oneDNN rnn: out of memory");
    }
    return 0;
}

int nn_rnn_train_forward(nn_rnn_train *r, int T, int N, const float *x, const float *h0, const float *c0, float *y,
                         float *hT, float *cT, char *err, size_t errlen) {
    r->last = NULL;
    if (T < 1 || N < 1) return model_errf(err, errlen, "oneDNN rnn: T=%d N=%d", T, N);
    if (r->lstm && (!c0 || !cT)) return model_errf(err, errlen, "oneDNN rnn: LSTM needs c0 and cT");
    rnn_entry *e = get_entry(r, T, N, err, errlen);
    if (!e) return -1;
    if (e->ws_size > r->ws_cap) {
        free(r->ws);
        r->ws = aligned_alloc(64, (e->ws_size + 63) & ~(size_t)63);
        r->ws_cap = r->ws ? e->ws_size : 0;
        if (!r->ws) return model_errf(err, errlen, "oneDNN rnn: out of memory for a %zu-byte workspace", e->ws_size);
    }
    rnn_mds d;
    if (make_mds(r, T, N, &d, err, errlen)) return -1;
    {
        /* The workspace md is the primitive's own. */
        const_dnnl_primitive_desc_t pd;
        DN(dnnl_primitive_get_primitive_desc(e->fwd, &pd), "query pd");
        const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0);
        if (!ws) return model_errf(err, errlen, "oneDNN rnn: forward-training primitive has no workspace");
        dnnl_memory_desc_t wsmd = *ws;
        arg_spec a[] = {
            {DNNL_ARG_SRC_LAYER, &d.sl, x},         {DNNL_ARG_SRC_ITER, &d.si, h0},     {DNNL_ARG_WEIGHTS_LAYER, &d.wl_f, r->wl_f},
            {DNNL_ARG_WEIGHTS_ITER, &d.wi_f, r->wi_f}, {DNNL_ARG_BIAS, &d.b, r->bias},   {DNNL_ARG_DST_LAYER, &d.dl, y},
            {DNNL_ARG_DST_ITER, &d.di, hT},         {DNNL_ARG_WORKSPACE, &wsmd, r->ws}, {DNNL_ARG_SRC_ITER_C, &d.si, c0},
            {DNNL_ARG_DST_ITER_C, &d.di, cT},
        };
        if (run(r, e->fwd, a, r->lstm ? 10 : 8, err, errlen)) return -1;
    }
    r->last = e;
    r->lT = T, r->lN = N;
    r->x = x, r->h0 = h0, r->c0 = c0, r->y = y, r->hT = hT, r->cT = cT;
    return 0;
fail:
    return -1;
}

int nn_rnn_train_backward(nn_rnn_train *r, const float *dy, float *dx, float *dw_ih, float *dw_hh, float *db_ih,
                          float *db_hh, char *err, size_t errlen) {
    rnn_entry *e = r->last;
    if (!e) return model_errf(err, errlen, "oneDNN rnn: backward without a forward");
    const int T = r->lT, N = r->lN, I = r->I, H = r->H, G = r->G;
    if (ensure_state_bufs(r, N, err, errlen)) return -1;
    memset(r->dwl, 0, (size_t)I * G * H * sizeof(float));
    memset(r->dwi, 0, (size_t)H * G * H * sizeof(float));
    memset(r->dbias, 0, 4 * (size_t)H * sizeof(float));
    rnn_mds d;
    if (make_mds(r, T, N, &d, err, errlen)) return -1;
    const_dnnl_primitive_desc_t pd;
    DN(dnnl_primitive_get_primitive_desc(e->bwd, &pd), "query pd");
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0);
    if (!ws) return model_errf(err, errlen, "oneDNN rnn: backward has no workspace");
    {
        arg_spec a[] = {
            {DNNL_ARG_SRC_LAYER, &d.sl, r->x},
            {DNNL_ARG_SRC_ITER, &d.si, r->h0},
            {DNNL_ARG_WEIGHTS_LAYER, &d.wl_b, r->wl_b},
            {DNNL_ARG_WEIGHTS_ITER, &d.wi_b, r->wi_b},
            {DNNL_ARG_BIAS, &d.b, r->bias},
            {DNNL_ARG_DST_LAYER, &d.dl, r->y},
            {DNNL_ARG_DST_ITER, &d.di, r->hT},
            {DNNL_ARG_WORKSPACE, ws, r->ws},
            {DNNL_ARG_DIFF_SRC_LAYER, &d.sl, dx},
            {DNNL_ARG_DIFF_SRC_ITER, &d.si, r->sink},
            {DNNL_ARG_DIFF_WEIGHTS_LAYER, &d.wl_f, r->dwl},
            {DNNL_ARG_DIFF_WEIGHTS_ITER, &d.wi_f, r->dwi},
            {DNNL_ARG_DIFF_BIAS, &d.b, r->dbias},
            {DNNL_ARG_DIFF_DST_LAYER, &d.dl, dy},
            {DNNL_ARG_DIFF_DST_ITER, &d.di, r->zeros},
            /* LSTM only: */
            {DNNL_ARG_SRC_ITER_C, &d.si, r->c0},
            {DNNL_ARG_DST_ITER_C, &d.di, r->cT},
            {DNNL_ARG_DIFF_SRC_ITER_C, &d.si, r->sink_c},
            {DNNL_ARG_DIFF_DST_ITER_C, &d.di, r->zeros},
        };
        if (run(r, e->bwd, a, r->lstm ? 19 : 15, err, errlen)) return -1;
    }
    /* ldigo [i][g][o] -> PyTorch [(map(g)*H + o)][i], added */
    for (int g = 0; g < G; g++) {
        int pg = gate_map(r->lstm, g);
        for (int o = 0; o < H; o++) {
            float *tx = dw_ih + ((size_t)pg * H + o) * I, *th = dw_hh + ((size_t)pg * H + o) * H;
            for (int i = 0; i < I; i++) tx[i] += r->dwl[((size_t)i * G + g) * H + o];
            for (int i = 0; i < H; i++) th[i] += r->dwi[((size_t)i * G + g) * H + o];
        }
    }
    for (int o = 0; o < H; o++) {
        if (r->lstm) {
            for (int g = 0; g < 4; g++) {
                db_ih[g * H + o] += r->dbias[g * H + o];
                db_hh[g * H + o] += r->dbias[g * H + o];
            }
        } else {
            float dz = r->dbias[0 * H + o], dr = r->dbias[1 * H + o];
            db_ih[0 * H + o] += dr, db_hh[0 * H + o] += dr;
            db_ih[1 * H + o] += dz, db_hh[1 * H + o] += dz;
            db_ih[2 * H + o] += r->dbias[2 * H + o];
            db_hh[2 * H + o] += r->dbias[3 * H + o];
        }
    }
    return 0;
fail:
    return -1;
}
