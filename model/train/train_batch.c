/* train_batch: one batch of users through the sequence layers, chunk by chunk (training:
 * loss and gradients; inference: the interest vectors), and the trainer's batched forward over
 * a whole data set (validation, evaluation, parity dumps). The loop that calls them is train.c.
 */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* ---- one batch ---------------------------------------------------------------------------- */

int run_batch(seq_ctx *s, const int *users, const int *len, int n, int bptt, int targets, double dropout,
                     batch_run *br, char *err, size_t errlen) {
    seq_reset_state(s);
    s->cold_p = br->grad && br->c ? br->c->cold_dropout : 0; /* item dropout: training only */
    s->layer_p = br->grad && br->c ? br->c->layer_dropout : 0; /* the LRU stack's residual dropout: training only */
    int maxlen = n ? len[0] : 0;
    for (long c0 = 0; c0 < maxlen; c0 += bptt) {
        int active = 0;
        while (active < n && len[active] > c0) active++;
        int steps = (int)(maxlen - c0 < bptt ? maxlen - c0 : bptt);
        seq_chunk ch = {pad8(active), active, steps == bptt ? steps : pad8(steps), c0, users, len, targets};
        if (c0 > 0) seq_carry(s, ch.N);
        if (seq_forward(s, &ch, dropout, br->rng, err, errlen)) return -1;
        if (br->grad) {
            double l, vse;
            long nv, nt;
            if (seq_heads(s, &ch, br->c, br->rng, br->grad, &l, &vse, &nv, &nt, err, errlen) ||
                seq_backward(s, &ch, br->grad, err, errlen))
                return -1;
            br->loss += l * (double)nt;
            br->loss_means += l;
            br->value_se += vse;
            br->n_value += nv;
            br->n_targets += nt;
            if (br->step && br->step(br->step_ctx, err, errlen)) return -1;
        }
        if (br->emit) br->emit(br->emit_ctx, s, &ch);
        br->chunks++;
    }
    return 0;
}

/* Sorts idx[0..n) by len[idx] descending, ties by index ascending: a total order, so qsort's
 * instability cannot show. */
typedef struct {
    int len, idx;
} len_idx;

static int cmp_len_idx(const void *pa, const void *pb) {
    const len_idx *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

int sort_by_len(int *idx, int n, const int *len) {
    len_idx *k = malloc((size_t)(n ? n : 1) * sizeof *k);
    if (!k) return -1;
    for (int i = 0; i < n; i++) k[i] = (len_idx){len[idx[i]], idx[i]};
    qsort(k, (size_t)n, sizeof *k, cmp_len_idx);
    for (int i = 0; i < n; i++) idx[i] = k[i].idx;
    free(k);
    return 0;
}

int train_batch_loss_grad(const model *m, const train_data *d, const train_config *c, const int *users,
                          const int *len, int n, float *grad, double *loss, char *err, size_t errlen) {
    int rc = -1;
    float *feat = train_features(d);
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order), *lens = malloc((size_t)(n ? n : 1) * sizeof *lens);
    int *us = malloc((size_t)(n ? n : 1) * sizeof *us);
    seq_ctx *s = NULL;
    if (!feat || !order || !lens || !us) {
        model_errf(err, errlen, "trainer: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        order[i] = i;
        if (len[i] < 1 || len[i] > d->start[users[i] + 1] - d->start[users[i]] - 1) {
            model_errf(err, errlen, "train_batch_loss_grad: user %d: %d inputs but %lld events", users[i], len[i],
                       (long long)(d->start[users[i] + 1] - d->start[users[i]]));
            goto done;
        }
    }
    if (sort_by_len(order, n, len)) {
        model_errf(err, errlen, "trainer: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) us[i] = users[order[i]], lens[i] = len[order[i]];
    if (seq_ctx_new(&s, m, d, feat, c->backend, n, c->bptt, c->loss == TRAIN_LOSS_SAMPLED ? c->negatives : 0, err,
                    errlen))
        goto done;
    rng_t rng;
    rng_seed(&rng, c->seed);
    batch_run br = {.c = c, .rng = &rng, .grad = grad};
    if (run_batch(s, us, lens, n, c->bptt, 1, c->dropout, &br, err, errlen)) goto done;
    *loss = br.loss_means;
    rc = 0;
done:
    seq_ctx_free(s);
    free(feat);
    free(order);
    free(lens);
    free(us);
    return rc;
}

/* ---- forward and evaluation --------------------------------------------------------------- */

typedef struct {
    const train_data *d;
    const int *len;
    int all, D;
    float *out;
    const int *uidx; /* row -> position in the caller's user order (for all = 0) */
} emit_ctx;

static void emit_rows(void *ctxp, const seq_ctx *s, const seq_chunk *ch) {
    emit_ctx *e = ctxp;
    const int D = e->D;
    for (int t = 0; t < ch->T; t++)
        for (int b = 0; b < ch->n; b++) {
            long g = ch->c0 + t;
            if (g >= ch->len[b]) continue;
            const float *u = s->u + ((size_t)t * ch->N + b) * D;
            int user = ch->users[b];
            if (e->all) memcpy(e->out + (size_t)(e->d->start[user] + g) * D, u, (size_t)D * sizeof(float));
            else if (g == ch->len[b] - 1) memcpy(e->out + (size_t)user * D, u, (size_t)D * sizeof(float));
        }
}

int train_forward(const model *m, const train_data *d, const int *len, int all, float *out, model_backend backend,
                  int batch_users, int bptt, char *err, size_t errlen) {
    int rc = -1, nu = d->n_users, D = m->cfg.out_dim;
    if (batch_users < 1) batch_users = 64;
    if (bptt < 8) bptt = 200;
    bptt = pad8(bptt);
    float *feat = train_features(d);
    int *order = malloc((size_t)(nu ? nu : 1) * sizeof *order), *ulen = malloc((size_t)(nu ? nu : 1) * sizeof *ulen);
    int *lens = malloc((size_t)batch_users * sizeof *lens);
    seq_ctx *s = NULL;
    if (!feat || !order || !ulen || !lens) {
        model_errf(err, errlen, "trainer: out of memory");
        goto done;
    }
    for (int u = 0; u < nu; u++) {
        int64_t n = d->start[u + 1] - d->start[u];
        ulen[u] = len ? (len[u] < 0 ? 0 : len[u] > n ? (int)n : len[u]) : (int)n;
        order[u] = u;
    }
    if (!all) memset(out, 0, (size_t)nu * D * sizeof(float));
    if (sort_by_len(order, nu, ulen)) { /* one global order: batches of similar length */
        model_errf(err, errlen, "trainer: out of memory");
        goto done;
    }
    if (seq_ctx_new(&s, m, d, feat, backend, batch_users, bptt, 0, err, errlen)) goto done;
    emit_ctx ec = {d, NULL, all, D, out, NULL};
    batch_run br = {.emit = emit_rows, .emit_ctx = &ec};
    for (int i = 0; i < nu; i += batch_users) {
        int n = nu - i < batch_users ? nu - i : batch_users;
        while (n > 0 && ulen[order[i + n - 1]] == 0) n--; /* len 0 sorts last */
        if (n == 0) break;
        for (int k = 0; k < n; k++) lens[k] = ulen[order[i + k]];
        if (run_batch(s, order + i, lens, n, bptt, 0, 0.0, &br, err, errlen)) goto done;
    }
    rc = 0;
done:
    seq_ctx_free(s);
    free(feat);
    free(order);
    free(ulen);
    free(lens);
    return rc;
}
