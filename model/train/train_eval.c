/* train_eval: leave-one-out ranking of given interest vectors (the model and the popularity
 * baseline, same run, same candidates, same filter), the trainer's validation, and the interest-
 * evolution measurement on data with known interest switches. Pure compute: `ievo eval` builds
 * the vectors through model_step and hands them in. The protocol is rank_metrics.h's.
 */
#include <math.h>
#include <stdlib.h>

#include "train_internal.h"

int train_rank_vectors_set(const model *m, const train_data *d, int holdout, const float *U, const train_rank_set *rs,
                           rank_metrics *model_m, rank_metrics *pop_m, char *err, size_t errlen) {
    const int nu = d->n_users, NI = rs->n, D = m->cfg.out_dim;
    const int BS = NI > (1 << 17) ? 1 + (1 << 25) / NI : 256; /* score blocks of at most ~32 M floats */
    if (model_m) memset(model_m, 0, sizeof *model_m);
    if (pop_m) memset(pop_m, 0, sizeof *pop_m);
    if (model_m && !(model_heads(m) & MODEL_HEAD_SCORE))
        return model_errf(err, errlen, "model %s has no scoring head: nothing to rank with", m->model_id);
    float *scores = model_m ? malloc((size_t)BS * NI * sizeof *scores) : NULL, *pop = malloc((size_t)NI * sizeof *pop);
    unsigned char *seen = calloc((size_t)NI, 1);
    int rc = -1;
    if ((model_m && !scores) || !pop || !seen) {
        model_errf(err, errlen, "evaluation: out of memory");
        goto done;
    }
#define CAND(i) (rs->cand[i] < 0 || rs->cand[i] >= NI ? 0 : rs->cand[i])
    /* Popularity: how often each candidate occurs among the split's input events (every user's
     * events but the last `holdout`); the value baseline is the mean value of those events. */
    double vsum = 0;
    long vn = 0;
    for (int i = 0; i < NI; i++) pop[i] = 0;
    for (int u = 0; u < nu; u++)
        for (int64_t i = d->start[u]; i < d->start[u + 1] - holdout; i++) {
            pop[CAND(i)] += 1.0f;
            if (d->ev[i].has_value) vsum += d->ev[i].value, vn++;
        }
    const double vmean = vn ? vsum / (double)vn : 0;
    const int has_value = model_heads(m) & MODEL_HEAD_VALUE;
    for (int i = 0; rs->rank_only && i < NI; i++) seen[i] = !rs->rank_only[i]; /* out of the ranking for good */
#define UNSEE(r) (seen[r] = rs->rank_only ? !rs->rank_only[r] : 0)
    for (int u0 = 0; u0 < nu; u0 += BS) {
        int nb = nu - u0 < BS ? nu - u0 : BS;
        if (model_m && model_score_with(m, nb, U + (size_t)u0 * D, NI, rs->S, rs->bias, scores, err, errlen)) goto done;
        for (int k = 0; k < nb; k++) {
            int u = u0 + k;
            int64_t b = d->start[u], n = d->start[u + 1] - b, tpos = n - holdout;
            const model_event *ev = d->ev + b;
            /* needs at least one input event, and a target among the candidates */
            if (tpos < 1) continue;
            int target = CAND(b + tpos);
            if (target <= 0 || (rs->target_only && !rs->target_only[target])) continue;
            for (int64_t i = 0; i < tpos; i++) seen[CAND(b + i)] = 1;
            if (model_m) metrics_add_rank(model_m, metrics_rank(scores + (size_t)k * NI, NI, target, seen));
            if (pop_m) metrics_add_rank(pop_m, metrics_rank(pop, NI, target, seen));
            for (int64_t i = 0; i < tpos; i++) UNSEE(CAND(b + i));
            if (ev[tpos].has_value) {
                if (model_m && has_value)
                    metrics_add_value(model_m,
                                      model_predict_value_user(m, U + (size_t)u * D, train_user_bias(m, ev, (long)tpos),
                                                               ev[tpos].item),
                                      ev[tpos].value);
                if (pop_m && vn) metrics_add_value(pop_m, vmean, ev[tpos].value);
            }
        }
    }
#undef CAND
#undef UNSEE
    if (model_m) metrics_finish(model_m);
    if (pop_m) metrics_finish(pop_m);
    rc = 0;
done:
    free(scores);
    free(pop);
    free(seen);
    return rc;
}

int train_rank_vectors(const model *m, const train_data *d, int holdout, const float *U, rank_metrics *model_m,
                       rank_metrics *pop_m, char *err, size_t errlen) {
    const int NI = m->cfg.n_items, D = m->cfg.out_dim;
    const int64_t n_ev = d->start[d->n_users];
    int32_t *cand = malloc((size_t)(n_ev ? n_ev : 1) * sizeof *cand), *idx = malloc((size_t)NI * sizeof *idx);
    float *S = NULL, *bias = malloc((size_t)NI * sizeof *bias);
    const float **text = m->cfg.text_dim > 0 && d->item_text ? malloc((size_t)NI * sizeof *text) : NULL;
    int rc = -1, score = model_m && (model_heads(m) & MODEL_HEAD_SCORE);
    if (score) S = malloc((size_t)NI * D * sizeof *S);
    if (!cand || !idx || !bias || (score && !S) || (m->cfg.text_dim > 0 && d->item_text && !text)) {
        model_errf(err, errlen, "evaluation: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_ev; i++) cand[i] = d->ev[i].item > 0 && d->ev[i].item < NI ? d->ev[i].item : 0;
    for (int i = 0; i < NI; i++) {
        idx[i] = i;
        if (text) text[i] = d->item_has_text[i] ? d->item_text + (size_t)i * m->cfg.text_dim : NULL;
    }
    if (score && model_score_rows(m, NI, idx, text, S, bias, err, errlen)) goto done;
    if (!score) memset(bias, 0, (size_t)NI * sizeof *bias);
    train_rank_set rs = {NI, S, bias, cand, NULL, NULL};
    if (model_m && !score) { /* the error message of the ranking itself */
        rc = train_rank_vectors_set(m, d, holdout, U, &rs, model_m, pop_m, err, errlen);
        goto done;
    }
    rc = train_rank_vectors_set(m, d, holdout, U, &rs, model_m, pop_m, err, errlen);
done:
    free(cand), free(idx), free(S), free(bias), free(text);
    return rc;
}

int train_evaluate(const model *m, const train_data *d, int holdout, model_backend backend, rank_metrics *out,
                   char *err, size_t errlen) {
    const int nu = d->n_users, D = m->cfg.out_dim;
    int *len = malloc((size_t)(nu ? nu : 1) * sizeof *len);
    float *U = malloc((size_t)(nu ? nu : 1) * D * sizeof *U);
    int rc = -1;
    if (!len || !U) {
        model_errf(err, errlen, "trainer: out of memory");
        goto done;
    }
    for (int u = 0; u < nu; u++) {
        int64_t n = d->start[u + 1] - d->start[u];
        len[u] = n - holdout >= 1 ? (int)(n - holdout) : 0;
    }
    if (train_forward(m, d, len, 0, U, backend, 64, 200, err, errlen) ||
        train_rank_vectors(m, d, holdout, U, out, NULL, err, errlen))
        goto done;
    rc = 0;
done:
    free(len);
    free(U);
    return rc;
}

/* ---- interest evolution -------------------------------------------------------------------- */

/* The topic most represented among the k best-scored items (ties: the topic met first in the
 * ranking); -1 when no ranked item has a topic. */
static int top_topic(const float *scores, int n, const int32_t *item_topic, int n_topics, int k, int32_t *idx,
                     int *count) {
    int got = model_top_k(scores, n, k, NULL, 0, idx, NULL);
    for (int t = 0; t < n_topics; t++) count[t] = 0;
    int best = -1;
    for (int j = 0; j < got; j++) {
        int t = item_topic[idx[j]];
        if (t < 0 || t >= n_topics) continue;
        count[t]++;
    }
    for (int j = 0; j < got; j++) { /* in rank order, so the first of the tied topics wins */
        int t = item_topic[idx[j]];
        if (t < 0 || t >= n_topics) continue;
        if (best < 0 || count[t] > count[best]) best = t;
    }
    return best;
}

int train_evolution(const model *m, const train_data *d, const float *U, const int32_t *topic,
                    const int32_t *item_topic, int K, train_evolution_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (K < 1 || K > TRAIN_EVOLUTION_MAX) return model_errf(err, errlen, "evolution: K %d out of 1..%d", K, TRAIN_EVOLUTION_MAX);
    if (!(model_heads(m) & MODEL_HEAD_SCORE)) return model_errf(err, errlen, "evolution: the model has no scoring head");
    r->K = K;
    const int NI = m->cfg.n_items, D = m->cfg.out_dim, TOPK = 10;
    int n_topics = 0;
    for (int i = 0; i < NI; i++) n_topics = item_topic[i] + 1 > n_topics ? item_topic[i] + 1 : n_topics;
    const float *S = m->t[T_SCORE_EMB].data;
    float *sm = malloc((size_t)NI * sizeof *sm), *ss = malloc((size_t)NI * sizeof *ss);
    double *psum = malloc((size_t)D * sizeof *psum);
    float *p = malloc((size_t)D * sizeof *p);
    int32_t *idx = malloc((size_t)TOPK * sizeof *idx);
    int *count = malloc((size_t)(n_topics ? n_topics : 1) * sizeof *count);
    int rc = -1;
    if (!sm || !ss || !psum || !p || !idx || !count) {
        model_errf(err, errlen, "evolution: out of memory");
        goto done;
    }
    for (int u = 0; u < d->n_users; u++) {
        const int64_t b = d->start[u], n = d->start[u + 1] - b;
        for (int k = 0; k < D; k++) psum[k] = 0;
        int64_t np = 0;
        /* Walk the events; at a switch j (topic[j] != topic[j-1]) with K events on the new topic
         * before the next switch, score after each of events j .. j+K-1. */
        int64_t sw = -1; /* the switch being followed */
        int model_lag = -1, static_lag = -1;
        for (int64_t j = 0; j < n; j++) {
            const model_event *e = &d->ev[b + j];
            if (e->item > 0 && e->item < NI) {
                const float *row = S + (size_t)e->item * D;
                for (int k = 0; k < D; k++) psum[k] += row[k];
                np++;
            }
            if (j > 0 && topic[b + j] != topic[b + j - 1]) {
                sw = -1;
                int64_t end = j + 1;
                while (end < n && topic[b + end] == topic[b + j]) end++;
                if (end - j >= K) sw = j, model_lag = static_lag = -1, r->switches++;
            }
            if (sw < 0 || j - sw >= K) continue;
            const int k = (int)(j - sw), want = topic[b + j];
            if (model_score_items(m, U + (size_t)(b + j) * D, sm, err, errlen)) goto done;
            for (int c = 0; c < D; c++) p[c] = np ? (float)(psum[c] / (double)np) : 0.0f;
            ss[0] = -INFINITY; /* the static profile: mean past embedding, no bias */
            for (int i = 1; i < NI; i++) {
                const float *row = S + (size_t)i * D;
                double acc = 0;
                for (int c = 0; c < D; c++) acc += (double)p[c] * row[c];
                ss[i] = (float)acc;
            }
            int tm = top_topic(sm, NI, item_topic, n_topics, TOPK, idx, count);
            int ts = top_topic(ss, NI, item_topic, n_topics, TOPK, idx, count);
            if (tm == want) {
                r->model_hit[k]++;
                if (model_lag < 0) model_lag = k;
            }
            if (ts == want) {
                r->static_hit[k]++;
                if (static_lag < 0) static_lag = k;
            }
            if (k == K - 1) {
                r->model_lag_hist[model_lag < 0 ? K : model_lag]++;
                r->static_lag_hist[static_lag < 0 ? K : static_lag]++;
            }
        }
    }
    rc = 0;
done:
    free(sm), free(ss), free(psum), free(p), free(idx), free(count);
    return rc;
}
