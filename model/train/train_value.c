/* train_value: the heads' data-dependent start, stage 2 of the value head (its refit on the
 * final u_t), and the user bias as the trainer computes it from a history (the same arithmetic as
 * the state's, model_internal.h).
 *
 * Why a second stage: joint training keeps moving u for the ranking objective, and the value
 * head's per-item rows follow it into overfitting (measured on ML-100K: validation RMSE best
 * after 1-2 epochs, then worse). So with the ranking model fixed (the best epoch), the head is
 * refit on the final u_t without dropout (the u the worker serves):
 *
 *   y_hat(t) = value.bias + value.item_bias[i_{t+1}] + b_u(t) + u_t . value.w     (value.item_emb = 0)
 *
 * in g-space, by full-batch Adam on the mean squared error over the training targets, keeping
 * the step of lowest validation RMSE. b_u(t) is the user bias after events 0..t (model.h): it
 * depends on value.bias and on the item biases of the user's own history, and its gradient
 * reaches them by a reverse scan over each user's events:
 *
 *   forward   s_k = rho s_{k-1} + r_k (event k has a value; else s_k = s_{k-1}),
 *             r_k = g_k - value.bias - value.item_bias[i_k],  b_u(k) = s_k / (c_k + lambda)
 *   backward  G_k = e_k / (c_k + lambda) + (event k+1 has a value ? rho : 1) G_{k+1}   (dL/ds_k)
 *             event k with a value: d value.bias -= G_k, d value.item_bias[i_k] -= G_k
 *
 * with e_k = dL/dy_hat(k). The user bias is the refit's alone: joint training trains the head
 * without it (b_u = 0, the value loss as it always was, so the ranking model trains as before
 * it existed), and the refit adds value.user (train_config.value_user). It picks rho and lambda
 * on validation first, each on a biases-only fit (value.w = 0: cheap, and what rho and lambda
 * are about), from rho in {0.5, 0.7, 0.8, 0.9, 0.95, 1} and lambda in {0.5, 1, 2, 4}; then
 * value.w joins at the chosen pair. The jointly trained head competes as it is: whichever
 * validates best is kept, with or without value.user.
 */
#include <math.h>
#include <stdlib.h>

#include "train_internal.h"

/* Data-dependent start for the heads' biases: the scoring head starts as the popularity model
 * (log share of the training targets, +1 smoothing), the value head as the item-mean model
 * (value.bias = the mean g(value) of the training targets, value.item_bias = each item's mean
 * deviation from it, shrunk towards 0 by 5 pseudo-targets). Adam moves a rarely seen item's
 * bias slowly and noisily, so starting where the data already points matters. */
void train_init_biases(model *m, const train_data *d, const int *tlen, int heads) {
    const int NI = m->cfg.n_items;
    double *cnt = calloc((size_t)NI, sizeof *cnt), total = 0, vsum = 0;
    double *isum = calloc((size_t)NI, sizeof *isum), *icnt = calloc((size_t)NI, sizeof *icnt);
    long vn = 0;
    if (!cnt || !isum || !icnt) {
        free(cnt), free(isum), free(icnt);
        return;
    }
    for (int u = 0; u < d->n_users; u++)
        for (int t = 1; t <= tlen[u]; t++) { /* the targets e_1 .. e_len */
            const model_event *e = &d->ev[d->start[u] + t];
            if (e->item <= 0 || e->item >= NI) continue;
            cnt[e->item] += 1, total += 1;
            if (e->has_value) {
                double gv = model_value_g(e->value);
                vsum += gv, vn++;
                isum[e->item] += gv, icnt[e->item] += 1;
            }
        }
    float *sb = m->t[T_SCORE_BIAS].data;
    for (int i = 1; i < NI && (heads & MODEL_HEAD_SCORE); i++) sb[i] = (float)log((cnt[i] + 1.0) / (total + NI - 1));
    if (heads & MODEL_HEAD_SCORE) sb[0] = 0;
    if ((heads & MODEL_HEAD_VALUE) && (model_heads(m) & MODEL_HEAD_VALUE) && vn) {
        const double mean = vsum / (double)vn;
        m->t[T_VALUE_B].data[0] = (float)mean;
        for (int i = 0; i < NI; i++) m->t[T_VALUE_BIAS].data[i] = (float)((isum[i] - icnt[i] * mean) / (icnt[i] + 5.0));
    }
    free(cnt), free(isum), free(icnt);
}

float train_user_bias(const model *m, const model_event *ev, long n) {
    if (!m->t[T_VALUE_USER].numel) return 0.0f;
    float s = 0, c = 0;
    for (long k = 0; k < n; k++)
        if (ev[k].has_value) model_value_user_push(m, &s, &c, ev[k].item, model_value_g(ev[k].value));
    return model_value_user_bias(m, s, c);
}

typedef struct {
    model *m;
    const train_data *d;
    const int *tlen;
    const float *U;        /* (events, D): u after each event */
    float *den;            /* (longest user) c_k + lambda per position, or 0 */
    double *ek;            /* (longest user) dL/dy_hat per position */
    long n_train;          /* training targets with a value */
    int fit_w;
} vfit;

static int target_ok(const model *m, const model_event *e) {
    return e->has_value && e->item > 0 && e->item < m->cfg.n_items;
}

/* The training loss (mean squared g-space error) and, when g is not NULL, its gradient over
 * value.item_bias (g), value.bias (g + NI) and value.w (g + NI + 1), in double. */
static double vfit_pass(vfit *f, double *g) {
    model *m = f->m;
    const train_data *d = f->d;
    const int D = m->cfg.out_dim, NI = m->cfg.n_items, user = m->t[T_VALUE_USER].numel > 0;
    const float *b = m->t[T_VALUE_BIAS].data, *w = m->t[T_VALUE_W].data, v0 = m->t[T_VALUE_B].data[0];
    const float rho = user ? m->t[T_VALUE_USER].data[0] : 1.0f;
    double loss = 0, *gb = g, *gv0 = g ? g + NI : NULL, *gw = g ? g + NI + 1 : NULL;
    const double inv = f->n_train ? 1.0 / (double)f->n_train : 0;
    if (g) memset(g, 0, (size_t)(NI + 1 + D) * sizeof *g);
    for (int u = 0; u < d->n_users; u++) {
        const model_event *ev = d->ev + d->start[u];
        const float *Uu = f->U + (size_t)d->start[u] * D;
        const int n = f->tlen[u];
        float s = 0, c = 0;
        for (int k = 0; k < n; k++) {
            if (user && ev[k].has_value) model_value_user_push(m, &s, &c, ev[k].item, model_value_g(ev[k].value));
            float bu = user ? model_value_user_bias(m, s, c) : 0.0f;
            f->den[k] = user && c + m->t[T_VALUE_USER].data[1] > 0 ? c + m->t[T_VALUE_USER].data[1] : 0.0f;
            f->ek[k] = 0;
            const model_event *t = &ev[k + 1];
            if (!target_ok(m, t)) continue;
            double p = (double)v0 + b[t->item] + bu;
            if (f->fit_w)
                for (int q = 0; q < D; q++) p += (double)Uu[(size_t)k * D + q] * w[q];
            double e = p - model_value_g(t->value);
            loss += e * e;
            f->ek[k] = 2.0 * e * inv;
        }
        if (!g) continue;
        double G = 0; /* dL/ds_k, carried backwards */
        for (int k = n - 1; k >= 0; k--) {
            const double e = f->ek[k];
            if (e != 0) {
                *gv0 += e;
                gb[ev[k + 1].item] += e;
                for (int q = 0; f->fit_w && q < D; q++) gw[q] += e * Uu[(size_t)k * D + q];
            }
            if (!user) continue;
            if (k + 1 < n && ev[k + 1].has_value) G *= rho; /* s_{k+1} = rho s_k + r_{k+1} */
            if (f->den[k] > 0) G += e / f->den[k];
            if (ev[k].has_value) *gv0 -= G, gb[ev[k].item] -= G;
        }
    }
    return loss * inv;
}

double train_value_loss(model *m, const train_data *d, const int *tlen, const float *U, int fit_w, double *grad) {
    int maxlen = 1;
    for (int u = 0; u < d->n_users; u++) maxlen = tlen[u] > maxlen ? tlen[u] : maxlen;
    vfit f = {m, d, tlen, U, malloc((size_t)maxlen * sizeof(float)), malloc((size_t)maxlen * sizeof(double)), 0, fit_w};
    double loss = NAN;
    if (f.den && f.ek) {
        for (int u = 0; u < d->n_users; u++)
            for (int t = 0; t < tlen[u]; t++) f.n_train += target_ok(m, &d->ev[d->start[u] + t + 1]);
        loss = vfit_pass(&f, grad);
    }
    free(f.den), free(f.ek);
    return loss;
}

/* Validation MAE/RMSE of the head as served: each user with n >= 3 events, u after n - 2
 * inputs, target event n - 2 (the trainer's validation split). */
static void vfit_validate(const vfit *f, rank_metrics *val) {
    const model *m = f->m;
    const train_data *d = f->d;
    const int D = m->cfg.out_dim;
    memset(val, 0, sizeof *val);
    for (int u = 0; u < d->n_users; u++) {
        int64_t n = d->start[u + 1] - d->start[u];
        if (n < 3) continue;
        const model_event *ev = d->ev + d->start[u], *e = &ev[n - 2];
        if (!target_ok(m, e)) continue;
        float bu = train_user_bias(m, ev, (long)(n - 2));
        metrics_add_value(val, model_predict_value_user(m, f->U + (size_t)(d->start[u] + n - 3) * D, bu, e->item), e->value);
    }
    metrics_finish(val);
}

/* Full-batch Adam from the head's current values, checking validation every 10 steps and
 * keeping the best (patience 10 checks, at most `steps` steps). Leaves the best values in the
 * model and returns their validation metrics in *best. */
static int vfit_run(vfit *f, const train_config *c, int steps, rank_metrics *best, char *err, size_t errlen) {
    model *m = f->m;
    const int D = m->cfg.out_dim, NI = m->cfg.n_items, np = NI + 1 + D;
    float *P[3] = {m->t[T_VALUE_BIAS].data, m->t[T_VALUE_B].data, m->t[T_VALUE_W].data};
    const int len[3] = {NI, 1, D};
    double *g = malloc((size_t)np * sizeof *g), *ma = calloc((size_t)np, sizeof *ma), *va = calloc((size_t)np, sizeof *va);
    float *keep = malloc((size_t)np * sizeof *keep);
    int rc = -1;
    if (!g || !ma || !va || !keep) {
        model_errf(err, errlen, "train: out of memory");
        goto done;
    }
#define SNAP(dst_is_keep)                                                                  \
    for (int k = 0, o = 0; k < 3; o += len[k], k++)                                        \
        if (dst_is_keep) memcpy(keep + o, P[k], (size_t)len[k] * sizeof(float));           \
        else memcpy(P[k], keep + o, (size_t)len[k] * sizeof(float));
    vfit_validate(f, best);
    SNAP(1);
    const double lr = 0.01, b1 = c->beta1, b2 = c->beta2;
    int since = 0;
    for (int t = 1; t <= steps && since < 10; t++) {
        vfit_pass(f, g);
        const double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        for (int k = 0, o = 0; k < 3; o += len[k], k++) {
            if (k == 2 && !f->fit_w) continue;
            const double decay = k == 1 ? 1.0 : 1.0 - lr * c->value_wd; /* value.bias is not decayed */
            for (int i = 0; i < len[k]; i++) {
                double gi = g[o + i];
                ma[o + i] = b1 * ma[o + i] + (1 - b1) * gi;
                va[o + i] = b2 * va[o + i] + (1 - b2) * gi * gi;
                P[k][i] = (float)(P[k][i] * decay - lr * (ma[o + i] / bc1) / (sqrt(va[o + i] / bc2) + c->eps));
            }
        }
        if (t % 10) continue;
        rank_metrics val;
        vfit_validate(f, &val);
        if (val.rmse < best->rmse) {
            *best = val;
            SNAP(1);
            since = 0;
        } else {
            since++;
        }
    }
    SNAP(0);
#undef SNAP
    rc = 0;
done:
    free(g), free(ma), free(va), free(keep);
    return rc;
}

int train_value_refit(model *m, const train_data *d, const train_config *c, const int *tlen, train_result *res,
                      char *err, size_t errlen) {
    const int D = m->cfg.out_dim, nu = d->n_users, heads0 = model_heads(m);
    const int64_t total = d->start[nu];
    int maxlen = 1, rc = -1;
    for (int u = 0; u < nu; u++) maxlen = tlen[u] > maxlen ? tlen[u] : maxlen;
    /* the value tensors are the end of the block: value.item_emb .. value.w (.. value.user) */
    const size_t off = (size_t)(m->t[T_VALUE_EMB].data - m->params), nv = m->n_params - off;
    float *U = malloc((size_t)(total ? total : 1) * D * sizeof *U), *joint = malloc(nv * sizeof *joint);
    vfit f = {m, d, tlen, U, malloc((size_t)maxlen * sizeof(float)), malloc((size_t)maxlen * sizeof(double)), 0, 0};
    if (!U || !joint || !f.den || !f.ek) {
        model_errf(err, errlen, "train: out of memory");
        goto done;
    }
    if (train_forward(m, d, NULL, 1, U, c->backend, 64, c->bptt, err, errlen)) goto done;
    for (int u = 0; u < nu; u++)
        for (int t = 0; t < tlen[u]; t++) f.n_train += target_ok(m, &d->ev[d->start[u] + t + 1]);
    if (f.n_train == 0) {
        rc = 0;
        goto done;
    }
    /* 0. the jointly trained head, as it is */
    rank_metrics joint_val, val;
    vfit_validate(&f, &joint_val);
    memcpy(joint, m->params + off, nv * sizeof(float));
    /* the refit's head: with the user bias when asked for (train_config.value_user) */
    const int heads = c->value_user ? heads0 | MODEL_HEAD_VALUE_USER : heads0 & ~MODEL_HEAD_VALUE_USER;
    if (heads != heads0 && model_set_heads(m, heads, err, errlen)) goto done;
    const int user = m->t[T_VALUE_USER].numel > 0;
    /* 1. value.user on a biases-only fit, from the item-mean start */
    static const float rhos[] = {0.5f, 0.7f, 0.8f, 0.9f, 0.95f, 1.0f}, lambdas[] = {0.5f, 1.0f, 2.0f, 4.0f};
    const int n_rho = user ? 6 : 1, n_lambda = user ? 4 : 1;
    float pick[2] = {0, 0};
    double pick_rmse = INFINITY;
    for (int i = 0; i < n_rho; i++)
        for (int j = 0; j < n_lambda; j++) {
            if (!user) break;
            memset(m->t[T_VALUE_EMB].data, 0, m->t[T_VALUE_EMB].numel * sizeof(float)); /* value.item_emb = 0 for good */
            memset(m->t[T_VALUE_W].data, 0, (size_t)D * sizeof(float));
            train_init_biases(m, d, tlen, MODEL_HEAD_VALUE);
            m->t[T_VALUE_USER].data[0] = rhos[i], m->t[T_VALUE_USER].data[1] = lambdas[j];
            f.fit_w = 0;
            if (vfit_run(&f, c, 400, &val, err, errlen)) goto done;
            if (val.rmse < pick_rmse) pick_rmse = val.rmse, pick[0] = rhos[i], pick[1] = lambdas[j];
        }
    /* 2. at the chosen pair: the biases again, then value.w with them */
    memset(m->t[T_VALUE_EMB].data, 0, m->t[T_VALUE_EMB].numel * sizeof(float));
    memset(m->t[T_VALUE_W].data, 0, (size_t)D * sizeof(float));
    train_init_biases(m, d, tlen, MODEL_HEAD_VALUE);
    if (user) m->t[T_VALUE_USER].data[0] = pick[0], m->t[T_VALUE_USER].data[1] = pick[1];
    f.fit_w = 0;
    if (vfit_run(&f, c, 400, &val, err, errlen)) goto done;
    f.fit_w = 1;
    if (vfit_run(&f, c, 50 * c->value_refit, &val, err, errlen)) goto done;
    /* 3. the better of the two on validation */
    if (val.rmse < joint_val.rmse) {
        res->value_refit_epoch = 2;
    } else {
        if (heads != heads0 && model_set_heads(m, heads0, err, errlen)) goto done;
        memcpy(m->params + off, joint, nv * sizeof(float));
        val = joint_val;
        res->value_refit_epoch = 1;
    }
    res->best_val.mae = val.mae, res->best_val.rmse = val.rmse, res->best_val.n_value = val.n_value;
    if (m->t[T_VALUE_USER].numel) res->value_user[0] = m->t[T_VALUE_USER].data[0], res->value_user[1] = m->t[T_VALUE_USER].data[1];
    rc = 0;
done:
    free(U), free(joint), free(f.den), free(f.ek);
    return rc;
}
