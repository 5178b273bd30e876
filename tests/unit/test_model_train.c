/* test_model_train: the trainer's sequence model, checked three ways, and what it hands the
 * worker.
 *
 *  1. oneDNN backend == scalar backend (loss and every gradient), LSTM and GRU, one chunk and
 *     several (truncated BPTT with the window crossing chunks), with and without dropout, full
 *     and sampled softmax.
 *  2. The scalar backend == central finite differences of its own loss (single chunk, where
 *     the truncated gradient is the true one), for sampled elements of every tensor.
 *  3. The trainer's batched forward == model_step (both backends) at every position: what is
 *     trained is what is served.
 * Then: AdamW and clipping against hand computation, determinism of train_fit (same seed: the
 * same bits; another seed: other bits), and the heads API (file round trip, old files, scores,
 * values, top-K, the window's items).
 * Text models (T > 0: item texts through the adaptor, events' own texts, the scoring rows with
 * a_out) go through 1-3 as well, and train_fit's text options: tied adaptors, text_only and the
 * OOV rows held at zero, the cold-item bias, model_score_rows by hand.
 * Tolerances are stated where they are checked, with what was observed.
 */
#include <math.h>

#include <jansson.h>

#include "model_internal.h"
#include "train_fixture.h"
#include "train_internal.h"

static const char *cellname(model_cell c) { return model_cell_name(c); }

static double g_cold = 0; /* text runs: train_config.cold_dropout (item dropout) */

/* max |a-b| / max(max|a|, 1e-3) over the whole block */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - b[i]);
        if (x > d || x != x) d = x;
        if (fabs(a[i]) > s) s = fabs(a[i]);
    }
    return d / (s > 1e-3 ? s : 1e-3);
}

/* ---- 1. scalar vs oneDNN ------------------------------------------------------------------- */

static void backends_agree_t(model_cell cell, int bptt, double dropout, train_loss loss, int mask_seen, int T) {
    const int lens[] = {23, 5, 17, 30, 9, 12, 3, 26};
    /* the sampled softmax needs a catalogue larger than the chunk's targets + negatives */
    const int NI = loss == TRAIN_LOSS_SAMPLED ? 400 : 40;
    fixture_data f = fixture_events(8, lens, NI, 3, 11 + cell);
    fixture_texts tx = {0};
    if (T) tx = fixture_add_texts(&f, NI, T, 41 + cell);
    model *m = fixture_trained_model_t(cell, 6, 3, 7, 5, 6, 4, NI, 3, T, 5 + cell);
    int users[8], len[8];
    for (int u = 0; u < 8; u++) users[u] = u, len[u] = lens[u] - 1;
    train_config c;
    train_config_default(&c);
    c.bptt = bptt, c.dropout = dropout, c.layer_dropout = dropout, c.loss = loss, c.negatives = 7, c.seed = 3;
    c.mask_seen = mask_seen;
    c.cold_dropout = T ? g_cold : 0;
    float *gs = calloc(m->n_params, sizeof *gs), *gd = calloc(m->n_params, sizeof *gd);
    double ls, ld;
    char err[MODEL_ERR_LEN];
    c.backend = MODEL_BACKEND_SCALAR;
    REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 8, gs, &ls, err, sizeof err) == 0, "%s", err);
    c.backend = MODEL_BACKEND_DNNL;
    REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 8, gd, &ld, err, sizeof err) == 0, "%s", err);
    double worst = 0;
    int worst_t = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        if (!m->t[t].numel) continue;
        size_t off = (size_t)(m->t[t].data - m->params);
        double r = rel_diff(gs + off, gd + off, m->t[t].numel);
        if (r > worst) worst = r, worst_t = t;
    }
    fprintf(stderr, "backends %-4s bptt %3d dropout %.1f %-7s mask_seen %d T %2d cold %.1f: loss %.6f vs %.6f, worst tensor %s rel %.2e\n",
            cellname(cell), bptt, dropout, loss == TRAIN_LOSS_FULL ? "full" : "sampled", mask_seen, T, c.cold_dropout, ls, ld,
            m->t[worst_t].name, worst);
    if (T) { /* the adaptors get a gradient at all */
        double gw = 0, go = 0;
        for (size_t i = 0; i < m->t[T_TEXT_W].numel; i++) gw += fabs(gd[(size_t)(m->t[T_TEXT_W].data - m->params) + i]);
        for (size_t i = 0; i < m->t[T_SCORE_TEXT_W].numel; i++) go += fabs(gd[(size_t)(m->t[T_SCORE_TEXT_W].data - m->params) + i]);
        CHECK(gw > 0 && go > 0, "no gradient reached text.w (%g) or score.text_w (%g)", gw, go);
    }
    /* Observed: <= 3e-6 relative (float GEMMs vs double reference). */
    CHECK(fabs(ls - ld) <= 1e-5 * fabs(ls) && worst <= 1e-4, "%s: oneDNN and scalar backends disagree (loss %.8g vs %.8g, "
          "%s %.3g)", cellname(cell), ls, ld, m->t[worst_t].name, worst);
    free(gs);
    free(gd);
    model_free(m);
    fixture_events_free(&f);
    if (T) fixture_texts_free(&tx);
}

static void backends_agree(model_cell cell, int bptt, double dropout, train_loss loss, int mask_seen) {
    backends_agree_t(cell, bptt, dropout, loss, mask_seen, 0);
}

/* ---- 2. finite differences ----------------------------------------------------------------- */

static void finite_differences_t(model_cell cell, train_loss loss, double dropout, int mask_seen, int T) {
    const int lens[] = {14, 6, 11, 9};
    const int NI = loss == TRAIN_LOSS_SAMPLED ? 80 : 12; /* 36 targets + 3 negatives < 79 */
    fixture_data f = fixture_events(4, lens, NI, 2, 21 + cell);
    fixture_texts tx = {0};
    if (T) tx = fixture_add_texts(&f, NI, T, 51 + cell);
    model *m = fixture_trained_model_t(cell, 4, 2, 5, 3, 4, 3, NI, 2, T, 9 + cell);
    int users[4] = {0, 1, 2, 3}, len[4];
    for (int u = 0; u < 4; u++) len[u] = lens[u] - 1;
    train_config c;
    train_config_default(&c);
    c.backend = MODEL_BACKEND_SCALAR, c.dropout = dropout, c.layer_dropout = dropout, c.bptt = 16, c.loss = loss;
    c.negatives = 3, c.seed = 5;
    c.mask_seen = mask_seen, c.cold_dropout = T ? g_cold : 0;
    char err[MODEL_ERR_LEN];
    float *g = calloc(m->n_params, sizeof *g), *tmp = calloc(m->n_params, sizeof *tmp);
    double l0;
    REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 4, g, &l0, err, sizeof err) == 0, "%s", err);
    rng_t r;
    rng_seed(&r, 77);
    double worst = 0, worst_abs = 0;
    int checked = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        size_t n = m->t[t].numel;
        if (!n) continue;
        for (int k = 0; k < 8 && k < (int)n; k++) {
            size_t i = n <= 8 ? (size_t)k : (size_t)(rng_uniform(&r) * n);
            /* An LRU eigenvalue's phase exp(theta) turns h_t by t exp(theta) radians: over a
             * history of 30 steps the loss oscillates in theta with a period far below any step
             * float resolution allows. Its gradient is checked against torch instead
             * (test_train_oracle); here nu and gamma, the rows of lru.log around it. */
            if (t == T_LRU_LOG && (i / (size_t)m->cfg.state_dim) % 3 == 1) continue;
            float *p = m->t[t].data + i, keep = *p;
            const double e = 1e-2;
            double lp, lm;
            *p = (float)(keep + e);
            REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 4, tmp, &lp, err, sizeof err) == 0, "%s", err);
            *p = (float)(keep - e);
            REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 4, tmp, &lm, err, sizeof err) == 0, "%s", err);
            double num = (lp - lm) / (2 * e), ana = g[(size_t)(m->t[t].data - m->params) + i];
            {
                /* the five-point stencil, whose error is O(e^4): the LRU's eigenvalue moduli enter
                 * as exp(-exp(nu))^t, and the stacks' LayerNorms under dropout's 1/(1-p) scaling
                 * curve the loss more than the three-point one resolves at e = 1e-2 */
                double lp2, lm2;
                *p = (float)(keep + 2 * e);
                REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 4, tmp, &lp2, err, sizeof err) == 0, "%s", err);
                *p = (float)(keep - 2 * e);
                REQUIRE(train_batch_loss_grad(m, &f.d, &c, users, len, 4, tmp, &lm2, err, sizeof err) == 0, "%s", err);
                num = (8 * (lp - lm) - (lp2 - lm2)) / (12 * e);
            }
            *p = keep;
            /* the seeded masks are the same at w+e and w-e, so dropout is differentiated too */
            double tol = 3e-5 + 3e-3 * fabs(num);
            if (fabs(ana - num) / tol > worst) worst = fabs(ana - num) / tol;
            if (fabs(ana - num) > worst_abs) worst_abs = fabs(ana - num);
            if (fabs(ana - num) > tol)
                fprintf(stderr, "  %s %s[%zu]: gradient %.6g, finite difference %.6g\n", cellname(cell), m->t[t].name, i,
                        ana, num);
            checked++;
        }
    }
    /* Observed: <= 3e-5 absolute (the five-point stencil). */
    fprintf(stderr, "finite differences %-4s %-7s dropout %.1f mask_seen %d T %2d cold %.1f: %d elements, max |diff| %.2e (%.2f of "
            "tolerance)\n", cellname(cell), loss == TRAIN_LOSS_FULL ? "full" : "sampled", dropout, mask_seen, T, c.cold_dropout, checked,
            worst_abs, worst);
    CHECK(worst <= 1.0, "%s: trainer gradient disagrees with finite differences", cellname(cell));
    free(g);
    free(tmp);
    model_free(m);
    fixture_events_free(&f);
    if (T) fixture_texts_free(&tx);
}

static void finite_differences(model_cell cell, train_loss loss, double dropout, int mask_seen) {
    finite_differences_t(cell, loss, dropout, mask_seen, 0);
}

/* ---- 3. trainer forward == model_step -------------------------------------------------------- */

static void forward_equals_step_t(model_cell cell, int W, int bptt, int T) {
    const int lens[] = {40, 1, 19, 33, 8, 25};
    const int nu = 6;
    fixture_data f = fixture_events(nu, lens, 30, 3, 31 + cell);
    fixture_texts tx = {0};
    if (T) tx = fixture_add_texts(&f, 30, T, 61 + cell);
    model *m = fixture_trained_model_t(cell, 8, 3, 9, 6, 7, W, 30, 3, T, 13 + cell);
    const int D = m->cfg.out_dim;
    int64_t total = f.start[nu];
    float *fw = calloc((size_t)total * D, sizeof *fw);
    char err[MODEL_ERR_LEN];
    REQUIRE(train_forward(m, &f.d, NULL, 1, fw, MODEL_BACKEND_DNNL, 4, bptt, err, sizeof err) == 0, "%s", err);
    float *fs = calloc((size_t)total * D, sizeof *fs);
    REQUIRE(train_forward(m, &f.d, NULL, 1, fs, MODEL_BACKEND_SCALAR, 3, bptt, err, sizeof err) == 0, "%s", err);
    for (int be = 0; be < 2; be++) {
        model_runner *r;
        REQUIRE(model_runner_new(&r, m, be ? MODEL_BACKEND_DNNL : MODEL_BACKEND_SCALAR, nu, err, sizeof err) == 0, "%s", err);
        if (T) model_runner_set_text(r, fixture_text_lookup, &tx);
        size_t ss = model_state_size(m);
        unsigned char *st = malloc(ss * nu);
        for (int u = 0; u < nu; u++) model_state_init(m, st + ss * u);
        double worst = 0;
        /* waves: event k of every user that has one, as the worker does */
        for (int k = 0; k < 40; k++) {
            void *states[8];
            model_event ev[8];
            int who[8], n = 0;
            for (int u = 0; u < nu; u++)
                if (k < lens[u]) states[n] = st + ss * u, ev[n] = f.ev[f.start[u] + k], who[n++] = u;
            if (!n) break;
            float vec[8 * 64], drift[8];
            REQUIRE(model_step(r, n, states, ev, vec, drift, err, sizeof err) == 0, "%s", err);
            for (int j = 0; j < n; j++) {
                const float *t = fw + (size_t)(f.start[who[j]] + k) * D;
                double d = check_max_abs_diff(vec + j * D, t, (size_t)D);
                worst = d > worst ? d : worst;
            }
        }
        fprintf(stderr, "train_forward vs model_step (%s backend) %-4s W=%d bptt=%d T=%d: max |diff| %.2e\n",
                be ? "dnnl" : "scalar", cellname(cell), W, bptt, T, worst);
        /* Observed: <= 2e-7. */
        CHECK(worst <= 1e-5, "%s W=%d bptt=%d: the trainer's forward is not model_step's (%.3g)", cellname(cell), W, bptt, worst);
        free(st);
        model_runner_free(r);
    }
    double d = check_max_abs_diff(fw, fs, (size_t)total * D);
    CHECK(d <= 1e-5, "train_forward dnnl vs scalar %.3g", d);
    /* last-position mode: row u = the vector after len[u] events */
    int len[6] = {40, 1, 0, 10, 8, 24};
    float *last = calloc((size_t)nu * D, sizeof *last);
    REQUIRE(train_forward(m, &f.d, len, 0, last, MODEL_BACKEND_DNNL, 4, bptt, err, sizeof err) == 0, "%s", err);
    for (int u = 0; u < nu; u++) {
        if (!len[u]) {
            for (int i = 0; i < D; i++) CHECK(last[u * D + i] == 0.0f, "len 0 must give zeros");
            continue;
        }
        CHECK(check_max_abs_diff(last + u * D, fw + (size_t)(f.start[u] + len[u] - 1) * D, (size_t)D) <= 1e-6,
              "last-position forward of user %d", u);
    }
    free(last);
    free(fw);
    free(fs);
    model_free(m);
    fixture_events_free(&f);
    if (T) fixture_texts_free(&tx);
}

static void forward_equals_step(model_cell cell, int W, int bptt) { forward_equals_step_t(cell, W, bptt, 0); }

/* ---- text: train_fit's options, the scoring rows ------------------------------------------------ */

static void quiet(const train_progress *p, void *u);

static void text_fit(void) {
    int lens[10];
    for (int u = 0; u < 10; u++) lens[u] = 5 + 7 * u;
    const int NI = 30, T = 10;
    fixture_data f = fixture_events(10, lens, NI, 3, 97);
    fixture_texts tx = fixture_add_texts(&f, NI, T, 71);
    char err[MODEL_ERR_LEN];
    for (int mode = 0; mode < 4; mode++) { /* 0: id + text, tied; 1: untied; 2: text only; 3: tied ids, own adaptors */
        model *m = fixture_trained_model_t(MODEL_CELL_GRU, 8, 3, 8, 8, 8, 4, NI, 3, T, 2);
        model *init = fixture_trained_model_t(MODEL_CELL_GRU, 8, 3, 8, 8, 8, 4, NI, 3, T, 2);
        train_config c;
        train_config_default(&c);
        c.epochs = 2, c.batch_users = 4, c.bptt = 16, c.patience = 5, c.tie = mode == 0 || mode == 3;
        c.text_only = mode == 2, c.untie_text = mode == 3;
        train_result res;
        REQUIRE(train_fit(m, &f.d, &c, quiet, NULL, &res, err, sizeof err) == 0, "%s", err);
        const int E = 8;
        double oov = 0, ids = 0, moved = 0;
        for (int k = 0; k < E; k++) oov += fabs(m->t[T_ITEM_EMB].data[k]) + fabs(m->t[T_SCORE_EMB].data[k]);
        for (size_t i = E; i < m->t[T_ITEM_EMB].numel; i++) ids += fabs(m->t[T_ITEM_EMB].data[i]) + fabs(m->t[T_SCORE_EMB].data[i]);
        for (size_t i = 0; i < m->t[T_TEXT_W].numel; i++) moved += fabs(m->t[T_TEXT_W].data[i] - init->t[T_TEXT_W].data[i]);
        CHECK(oov == 0, "mode %d: the OOV rows are not held at zero (%g)", mode, oov);
        CHECK(mode == 2 ? ids == 0 : ids > 0, "mode %d: id rows %g", mode, ids);
        CHECK(moved > 0, "mode %d: text.w did not learn", mode);
        int tied = !memcmp(m->t[T_TEXT_W].data, m->t[T_SCORE_TEXT_W].data, m->t[T_TEXT_W].numel * sizeof(float)) &&
                   !memcmp(m->t[T_TEXT_B].data, m->t[T_SCORE_TEXT_B].data, m->t[T_TEXT_B].numel * sizeof(float));
        CHECK(tied == (mode == 0), "mode %d: score.text_* tied %d", mode, tied);
        int ids_tied = !memcmp(m->t[T_ITEM_EMB].data, m->t[T_SCORE_EMB].data, m->t[T_ITEM_EMB].numel * sizeof(float));
        CHECK(ids_tied == (mode == 0 || mode == 3 || mode == 2), "mode %d: score.item_emb tied %d", mode, ids_tied);
        /* text.b starts at the mean item text: after 2 epochs it is still near it */
        double mean0 = 0;
        int n = 0;
        for (int i = 1; i < NI; i++)
            if (tx.has[i]) mean0 += tx.item_text[(size_t)i * T], n++;
        CHECK(fabs(m->t[T_TEXT_B].data[0] - mean0 / n) < 0.05, "mode %d: text.b[0] %g, the mean text %g", mode,
              m->t[T_TEXT_B].data[0], mean0 / n);
        /* the cold bias: the mean bias of the vocabulary items */
        float cb = m->t[T_SCORE_BIAS].data[0];
        CHECK(cb < 0 && isfinite(cb), "mode %d: cold bias %g", mode, cb);
        /* model_score_rows by hand: idx 0 (a new item) and a vocabulary item, with texts */
        int32_t idx[2] = {0, 5};
        const float *txt[2] = {tx.event_text, tx.item_text + 5 * T};
        float S[16], b[2];
        REQUIRE(model_score_rows(m, 2, idx, txt, S, b, err, sizeof err) == 0, "%s", err);
        double worst = 0;
        for (int r = 0; r < 2; r++)
            for (int d = 0; d < 8; d++) {
                double want = idx[r] ? m->t[T_SCORE_EMB].data[idx[r] * 8 + d] : 0;
                for (int k = 0; k < T; k++)
                    want += (double)m->t[T_SCORE_TEXT_W].data[d * T + k] * ((double)txt[r][k] - m->t[T_SCORE_TEXT_B].data[k]);
                worst = fmax(worst, fabs(want - S[r * 8 + d]));
            }
        CHECK(worst < 1e-6 && b[0] == cb && b[1] == m->t[T_SCORE_BIAS].data[5], "model_score_rows: %g", worst);
        fprintf(stderr, "text fit mode %d (%s): best epoch %d, val NDCG@10 %.4f, cold bias %.3f\n", mode,
                mode == 0 ? "id+text tied" : mode == 1 ? "id+text untied" : mode == 2 ? "text only" : "tied ids, own adaptors",
                res.best_epoch, res.best_val.ndcg10, cb);
        model_free(m);
        model_free(init);
    }
    fixture_texts_free(&tx);
    fixture_events_free(&f);
}

/* ---- optimizer ----------------------------------------------------------------------------- */

static void optimizer(void) {
    model *m = fixture_trained_model(MODEL_CELL_GRU, 4, 2, 5, 3, 4, 3, 12, 2, 3);
    train_config c;
    train_config_default(&c);
    c.lr = 0.01, c.weight_decay = 0.1, c.value_lr = 0.5, c.value_wd = 0.3;
    size_t n = m->n_params;
    float *g = malloc(n * sizeof *g), *ma = calloc(n, sizeof *ma), *va = calloc(n, sizeof *va), *p0 = malloc(n * sizeof *p0);
    rng_t r;
    rng_seed(&r, 4);
    for (size_t i = 0; i < n; i++) g[i] = (float)(rng_uniform(&r) - 0.5);
    memcpy(p0, m->params, n * sizeof *p0);
    train_adamw(m, g, ma, va, 1, &c);
    train_adamw(m, g, ma, va, 2, &c);
    /* By hand for two steps with the same gradient. */
    double worst = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        size_t off = (size_t)(m->t[t].data - m->params);
        /* the value head: lr * value_lr, decay value_wd (not on value.bias); others: decay on matrices */
        int value = t >= T_VALUE_EMB && t <= T_VALUE_W;
        double lr = value ? c.lr * c.value_lr : c.lr;
        double decay = value ? (t == T_VALUE_B ? 0 : c.value_wd) : m->t[t].ndim == 2 ? c.weight_decay : 0;
        for (size_t i = 0; i < m->t[t].numel; i++) {
            double p = p0[off + i], gg = g[off + i], mm = 0, vv = 0;
            for (int s = 1; s <= 2; s++) {
                p -= lr * decay * p;
                mm = c.beta1 * mm + (1 - c.beta1) * gg;
                vv = c.beta2 * vv + (1 - c.beta2) * gg * gg;
                p -= lr * (mm / (1 - pow(c.beta1, s))) / (sqrt(vv / (1 - pow(c.beta2, s))) + c.eps);
            }
            double d = fabs(p - m->params[off + i]);
            worst = d > worst ? d : worst;
        }
    }
    CHECK(worst <= 1e-6, "AdamW differs from the hand computation by %.3g", worst);
    /* Clipping: the norm is reported and the clipped norm equals clip. */
    double norm = train_clip(g, n, 0.5), after = 0;
    for (size_t i = 0; i < n; i++) after += (double)g[i] * g[i];
    CHECK(norm > 0.5 && fabs(sqrt(after) - 0.5) < 1e-5, "clip: norm %.6g -> %.6g", norm, sqrt(after));
    CHECK(train_clip(g, n, 10.0) <= 0.5 + 1e-5, "clip must not scale a small gradient");
    fprintf(stderr, "adamw: max |diff| to the hand computation %.2e; clip ok\n", worst);
    free(g), free(ma), free(va), free(p0);
    model_free(m);
}

/* ---- determinism --------------------------------------------------------------------------- */

static void quiet(const train_progress *p, void *u) {
    (void)u;
    fprintf(stderr, "  epoch %d loss %.4f val ndcg@10 %.4f\n", p->epoch, p->loss, p->val.ndcg10);
}

static model *fit_once(fixture_data *f, uint64_t seed, int tie) {
    model *m = fixture_trained_model(MODEL_CELL_LSTM, 8, 3, 8, 8, 8, 4, 30, 3, 1);
    train_config c;
    train_config_default(&c);
    c.epochs = 2, c.batch_users = 4, c.bptt = 16, c.seed = seed, c.patience = 5, c.tie = tie, c.mask_seen = 1;
    c.ema = tie ? 0.9 : 0, c.plateau = 1;
    train_result res;
    char err[MODEL_ERR_LEN];
    REQUIRE(train_fit(m, &f->d, &c, quiet, NULL, &res, err, sizeof err) == 0, "%s", err);
    CHECK(res.epochs_run == 2 && res.best_epoch >= 1 && res.val_users == 10, "train_fit result: %d epochs, best %d, %ld users",
          res.epochs_run, res.best_epoch, res.val_users);
    return m;
}

static void determinism(void) {
    int lens[10];
    for (int u = 0; u < 10; u++) lens[u] = 5 + 7 * u;
    fixture_data f = fixture_events(10, lens, 30, 3, 99);
    model *a = fit_once(&f, 7, 0), *b = fit_once(&f, 7, 0), *c = fit_once(&f, 8, 0), *t = fit_once(&f, 7, 1);
    /* tied: one parameter, stored twice and equal */
    CHECK(memcmp(t->t[T_ITEM_EMB].data, t->t[T_SCORE_EMB].data, t->t[T_ITEM_EMB].numel * sizeof(float)) == 0,
          "tied embeddings differ after training");
    CHECK(memcmp(a->t[T_ITEM_EMB].data, a->t[T_SCORE_EMB].data, a->t[T_ITEM_EMB].numel * sizeof(float)) != 0,
          "untied embeddings are equal");
    model_free(t);
    model *init = fixture_trained_model(MODEL_CELL_LSTM, 8, 3, 8, 8, 8, 4, 30, 3, 1);
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0, "train_fit is not deterministic for a seed");
    CHECK(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0, "another seed must train differently");
    CHECK(memcmp(a->params, init->params, a->n_params * sizeof(float)) != 0, "training changed nothing");
    model_free(a), model_free(b), model_free(c), model_free(init);
    fixture_events_free(&f);
}

/* ---- heads --------------------------------------------------------------------------------- */

static void heads(void) {
    char err[MODEL_ERR_LEN], path[256], path2[256];
    model *plain = fixture_model(MODEL_CELL_LSTM, 5, 2, 6, 4, 3, 3, 9, 2, 5);
    uint64_t fp_plain = plain->fingerprint;
    size_t n_plain = plain->n_params;
    CHECK(model_heads(plain) == 0, "a fresh model has no heads");
    float u[3] = {0.5f, -1.0f, 2.0f}, s[16];
    CHECK(model_score_items(plain, u, s, err, sizeof err) != 0 && strstr(err, "no scoring head"), "scoring without a head");
    CHECK(isnan(model_predict_value(plain, u, 1)), "value without a head is NaN");
    fixture_tmp_path(path, sizeof path, "heads-plain");
    REQUIRE(model_save(plain, path, err, sizeof err) == 0, "%s", err);
    /* add heads: core parameters kept, identity changes, file round trip */
    float core[1024];
    memcpy(core, plain->params, n_plain * sizeof(float));
    REQUIRE(model_add_heads(plain, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, 3, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(core, plain->params, n_plain * sizeof(float)) == 0, "adding heads moved the core");
    CHECK(plain->n_params == n_plain + 10 * 3 + 10 + 10 * 3 + 10 + 1 + 3, "n_params %zu", plain->n_params); /* 9 ids + OOV */
    CHECK(plain->fingerprint != fp_plain && strncmp(plain->model_id, "fixture-", 8) == 0, "identity after heads");
    CHECK(model_heads(plain) == (MODEL_HEAD_SCORE | MODEL_HEAD_VALUE), "heads %d", model_heads(plain));
    fixture_tmp_path(path2, sizeof path2, "heads-both");
    REQUIRE(model_save(plain, path2, err, sizeof err) == 0, "%s", err);
    model *back = NULL, *old = NULL;
    REQUIRE(model_load(&back, path2, err, sizeof err) == 0, "%s", err);
    CHECK(back->n_params == plain->n_params && memcmp(back->params, plain->params, back->n_params * 4) == 0 &&
              back->fingerprint == plain->fingerprint && model_heads(back) == model_heads(plain),
          "a model with heads does not round-trip");
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        if (!plain->t[t].numel) { /* another family's tensor, the text adaptor of a model without text */
            CHECK(!back->t[t].numel, "tensor %d appeared", t);
            continue;
        }
        CHECK(back->t[t].data - back->params == plain->t[t].data - plain->params && !strcmp(back->t[t].name, plain->t[t].name),
              "tensor %d layout", t);
    }
    REQUIRE(model_load(&old, path, err, sizeof err) == 0, "a model without heads must still load: %s", err);
    CHECK(old->fingerprint == fp_plain && model_heads(old) == 0 && old->n_params == n_plain, "old file identity");
    /* scores and values by hand */
    REQUIRE(model_score_items(back, u, s, err, sizeof err) == 0, "%s", err);
    CHECK(isinf(s[0]) && s[0] < 0, "OOV score must be -inf");
    for (int i = 1; i < 10; i++) {
        const float *e = back->t[T_SCORE_EMB].data + i * 3;
        double want = back->t[T_SCORE_BIAS].data[i] + (double)u[0] * e[0] + (double)u[1] * e[1] + (double)u[2] * e[2];
        CHECK(fabs(s[i] - want) < 1e-5, "score[%d] %.7g want %.7g", i, s[i], want);
    }
    back->t[T_VALUE_B].data[0] = 1.0f;
    for (int i = 0; i < 3; i++) back->t[T_VALUE_W].data[i] = 0.1f * (float)(i + 1), back->t[T_VALUE_EMB].data[6 + i] = -0.2f * (float)i;
    const float *v = back->t[T_VALUE_EMB].data + 2 * 3, *vw = back->t[T_VALUE_W].data;
    double y = 1.0 + back->t[T_VALUE_BIAS].data[2];
    for (int i = 0; i < 3; i++) y += (double)u[i] * ((double)vw[i] + v[i]);
    double want = y < 0 ? -expm1(-y) : expm1(y);
    CHECK(fabs(model_predict_value(back, u, 2) - want) < 1e-5 * (1 + fabs(want)), "value %.7g want %.7g",
          model_predict_value(back, u, 2), want);
    CHECK(isnan(model_predict_value(back, u, 10)) && isnan(model_predict_value(back, u, -1)), "value out of range");
    /* a file whose head is incomplete is refused */
    {
        FILE *fh = fopen(path2, "rb");
        fseek(fh, 0, SEEK_END);
        size_t n = (size_t)ftell(fh);
        fseek(fh, 0, SEEK_SET);
        char *b = malloc(n);
        REQUIRE(fread(b, 1, n, fh) == n, "read");
        fclose(fh);
        char *p = memmem(b, n, "\"value.bias\"", 12);
        REQUIRE(p, "value.bias in the header");
        memcpy(p, "\"valuX.bias\"", 12);
        fh = fopen(path2, "wb");
        fwrite(b, 1, n, fh);
        fclose(fh);
        model *bad = NULL;
        CHECK(model_load(&bad, path2, err, sizeof err) != 0 && strstr(err, "valuX.bias"), "broken head accepted: %s", err);
        free(b);
    }
    /* top-K: ties by index, -inf skipped, exclusions */
    float sc[8] = {-INFINITY, 3, 5, 5, NAN, 1, 5, 2};
    int32_t idx[8];
    float val[8];
    int n = model_top_k(sc, 8, 4, NULL, 0, idx, val);
    CHECK(n == 4 && idx[0] == 2 && idx[1] == 3 && idx[2] == 6 && idx[3] == 1 && val[3] == 3, "top_k: %d [%d %d %d %d]", n,
          idx[0], idx[1], idx[2], idx[3]);
    int32_t ex[3] = {3, 2, 3};
    n = model_top_k(sc, 8, 3, ex, 3, idx, NULL);
    CHECK(n == 3 && idx[0] == 6 && idx[1] == 1 && idx[2] == 7, "top_k with exclusions: %d [%d %d %d]", n, idx[0], idx[1], idx[2]);
    n = model_top_k(sc, 8, 100, NULL, 0, idx, val);
    CHECK(n == 6, "top_k of everything: %d (two entries are -inf/NaN)", n);
    /* the window's items */
    model_runner *r;
    REQUIRE(model_runner_new(&r, back, MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "%s", err);
    unsigned char st[4096];
    REQUIRE(model_state_size(back) <= sizeof st, "state size");
    model_state_init(back, st);
    int32_t items[8];
    CHECK(model_state_items(back, st, items) == 0, "empty state has no items");
    for (int k = 0; k < 5; k++) {
        void *sp = st;
        model_event ev = {1 + k, 1, 1000 * k, 0, 0};
        float vec[8], drift;
        REQUIRE(model_step(r, 1, &sp, &ev, vec, &drift, err, sizeof err) == 0, "%s", err);
    }
    n = model_state_items(back, st, items);
    CHECK(n == 3 && items[0] == 3 && items[1] == 4 && items[2] == 5, "window items: %d [%d %d %d]", n, items[0], items[1], items[2]);
    model_runner_free(r);
    unlink(path);
    unlink(path2);
    model_free(plain), model_free(back), model_free(old);
}

/* train_config_json writes every setting under the name train_config_set reads, so a config
 * read back from a model's metadata is the config it was trained with. */
static void config_json(void) {
    train_config a, b;
    train_config_default(&a);
    train_config_default(&b);
    char err[MODEL_ERR_LEN];
    static const char *const set[][2] = {{"epochs", "7"},   {"lr", "0.0125"},     {"eps", "1e-07"}, {"loss", "sampled"},
                                         {"tie", "1"},      {"backend", "scalar"}, {"ema", "0.99"},  {"cold_dropout", "0.1"},
                                         {"seed", "9223372036854775807"}};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        REQUIRE(train_config_set(&a, set[i][0], set[i][1], err, sizeof err) == 0, "%s", err);
    char *text_a = train_config_json(&a);
    REQUIRE(text_a, "train_config_json: NULL");
    json_error_t jerr;
    json_t *ja = json_loads(text_a, JSON_REJECT_DUPLICATES, &jerr);
    REQUIRE(json_is_object(ja), "train_config_json wrote %s: %s", text_a, jerr.text);
    CHECK(strstr(text_a, "\"lr\":0.0125,") && strstr(text_a, "\"seed\":9223372036854775807,"), "text: %s", text_a);
    free(text_a);
    const char *k;
    json_t *v;
    json_object_foreach(ja, k, v) {
        char text[64];
        if (json_is_string(v)) snprintf(text, sizeof text, "%s", json_string_value(v));
        else if (json_is_integer(v)) snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v)) snprintf(text, sizeof text, "%.17g", json_real_value(v));
        else snprintf(text, sizeof text, "(not a string or number)");
        CHECK(train_config_set(&b, k, text, err, sizeof err) == 0, "key \"%s\" = %s: %s", k, text, err);
    }
    char *text_b = train_config_json(&b);
    json_t *jb = text_b ? json_loads(text_b, 0, NULL) : NULL;
    free(text_b);
    /* both configs started from train_config_default's memset, so padding compares equal too */
    CHECK(memcmp(&a, &b, sizeof a) == 0, "config read back from its JSON differs (a setting is not written?)");
    CHECK(jb && json_equal(ja, jb), "the JSON of the config read back differs");
    CHECK(json_integer_value(json_object_get(ja, "seed")) == INT64_MAX, "seed");
    CHECK(json_real_value(json_object_get(ja, "lr")) == 0.0125, "lr");
    json_decref(ja);
    json_decref(jb);
    /* The seed is a signed JSON integer in the metadata: larger seeds are refused, not wrapped. */
    a.seed = (uint64_t)INT64_MAX + 1;
    CHECK(train_config_check(&a, err, sizeof err) == -1 && strstr(err, "seed"), "seed 2^63 accepted: %s", err);
    CHECK(train_config_set(&b, "seed", "18446744073709551616", err, sizeof err) == -1, "seed 2^64 accepted");
}

/* The value head's user bias (model.h): the state (both backends) holds what the trainer's scan
 * computes, to the bit, after every event; the refit's objective has the gradient finite
 * differences give (it reaches value.bias and the item biases through every user's history). */
static void value_user(void) {
    const int lens[] = {30, 2, 17, 9}, nu = 4, NI = 12;
    fixture_data f = fixture_events(nu, lens, NI, 3, 77);
    model *m = fixture_model(MODEL_CELL_GRU, 6, 3, 7, 5, 6, 4, NI, 3, 8);
    char err[MODEL_ERR_LEN];
    REQUIRE(model_add_heads(m, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE | MODEL_HEAD_VALUE_USER, 8, err, sizeof err) == 0, "%s",
            err);
    rng_t r;
    rng_seed(&r, 5);
    const int NR = m->cfg.n_items; /* the ids and the OOV row */
    for (int i = 0; i < NR; i++) m->t[T_VALUE_BIAS].data[i] = (float)(0.3 * rng_normal(&r));
    m->t[T_VALUE_B].data[0] = 1.2f, m->t[T_VALUE_USER].data[0] = 0.7f, m->t[T_VALUE_USER].data[1] = 1.5f;
    for (int k = 0; k < 6; k++) m->t[T_VALUE_W].data[k] = 0.1f * (float)(k - 2);
    REQUIRE(model_add_heads(m, 0, 0, err, sizeof err) == 0, "%s", err);
    const size_t ss = model_state_size(m);
    CHECK(ss == 36 + 4 * 7 + 2 * 6 + 8 + 16 * 4, "state of %zu bytes (+8 for the user bias)", ss);
    for (int be = 0; be < 2; be++) {
        model_runner *run;
        REQUIRE(model_runner_new(&run, m, be ? MODEL_BACKEND_DNNL : MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "%s", err);
        int bad = 0;
        for (int u = 0; u < nu; u++) {
            unsigned char st[512];
            model_state_init(m, st);
            void *sp = st;
            CHECK(model_state_user_bias(m, st) == 0.0f, "an empty state has no user bias");
            for (int k = 0; k < lens[u]; k++) {
                float vec[8], drift;
                REQUIRE(model_step(run, 1, &sp, &f.ev[f.start[u] + k], vec, &drift, err, sizeof err) == 0, "%s", err);
                bad += model_state_user_bias(m, st) != train_user_bias(m, f.ev + f.start[u], k + 1);
            }
        }
        CHECK(bad == 0, "%s: the state's user bias differs from the trainer's at %d events", be ? "dnnl" : "scalar", bad);
        model_runner_free(run);
    }
    /* b_u enters the prediction as a shift in g-space */
    float u[6] = {0.5f, -1, 0.25f, 2, 0, 1};
    double y = 0.8 + m->t[T_VALUE_BIAS].data[3] + 1.2;
    for (int k = 0; k < 6; k++) y += u[k] * (m->t[T_VALUE_W].data[k] + m->t[T_VALUE_EMB].data[3 * 6 + k]);
    CHECK(fabs(model_predict_value_user(m, u, 0.8f, 3) - expm1(y)) < 1e-5 * expm1(y), "predicted value with b_u");
    /* the refit's gradient against central differences (double objective, float parameters) */
    int tlen[4];
    for (int k = 0; k < nu; k++) tlen[k] = lens[k] > 3 ? lens[k] - 3 : 0;
    float *U = malloc((size_t)f.start[nu] * 6 * sizeof *U);
    for (int64_t i = 0; i < f.start[nu] * 6; i++) U[i] = (float)rng_normal(&r);
    const int np = NR + 1 + 6;
    double *g = calloc((size_t)np, sizeof *g), worst = 0;
    train_value_loss(m, &f.d, tlen, U, 1, g);
    float *P[3] = {m->t[T_VALUE_BIAS].data, m->t[T_VALUE_B].data, m->t[T_VALUE_W].data};
    for (int i = 0; i < np; i++) {
        float *p = i < NR ? P[0] + i : i == NR ? P[1] : P[2] + (i - NR - 1), keep = *p;
        const float h = 1e-2f;
        *p = keep + h;
        double lp = train_value_loss(m, &f.d, tlen, U, 1, NULL);
        *p = keep - h;
        double lm = train_value_loss(m, &f.d, tlen, U, 1, NULL);
        *p = keep;
        double fd = (lp - lm) / (2.0 * (double)h), d = fabs(fd - g[i]) / (fabs(fd) > 1e-2 ? fabs(fd) : 1e-2);
        worst = d > worst ? d : worst;
    }
    fprintf(stderr, "value head refit: gradient vs central differences over %d parameters: max rel diff %.2e\n", np, worst);
    /* Observed: 2.7e-6 (the objective is quadratic: only float rounding of the parameters). */
    CHECK(worst < 1e-3, "the refit's gradient differs from finite differences (%.3g)", worst);
    free(U), free(g);
    model_free(m);
    fixture_events_free(&f);
}

int main(void) {
    model_runtime_init(1);
    config_json();
    for (int cell = 0; cell < 3; cell++) { /* LSTM, GRU, the LRU stack */
        backends_agree((model_cell)cell, 200, 0.0, TRAIN_LOSS_FULL, 0);
        backends_agree((model_cell)cell, 8, 0.0, TRAIN_LOSS_FULL, 0);
        backends_agree((model_cell)cell, 8, 0.3, TRAIN_LOSS_FULL, 1);
        backends_agree((model_cell)cell, 16, 0.3, TRAIN_LOSS_SAMPLED, 1);
        finite_differences((model_cell)cell, TRAIN_LOSS_FULL, 0.0, 0);
        finite_differences((model_cell)cell, TRAIN_LOSS_FULL, 0.3, 1);
        finite_differences((model_cell)cell, TRAIN_LOSS_SAMPLED, 0.0, 1);
        forward_equals_step((model_cell)cell, 4, 8);
        forward_equals_step((model_cell)cell, 1, 16);
        forward_equals_step((model_cell)cell, 16, 200);
    }
    for (int cell = 0; cell < 3; cell++) { /* text models */
        backends_agree_t((model_cell)cell, 200, 0.0, TRAIN_LOSS_FULL, 0, 12);
        backends_agree_t((model_cell)cell, 8, 0.3, TRAIN_LOSS_FULL, 1, 12);
        backends_agree_t((model_cell)cell, 16, 0.3, TRAIN_LOSS_SAMPLED, 1, 12);
        finite_differences_t((model_cell)cell, TRAIN_LOSS_FULL, 0.0, 0, 6);
        finite_differences_t((model_cell)cell, TRAIN_LOSS_FULL, 0.3, 1, 6);
        finite_differences_t((model_cell)cell, TRAIN_LOSS_SAMPLED, 0.0, 1, 6);
        forward_equals_step_t((model_cell)cell, 4, 8, 12);
        forward_equals_step_t((model_cell)cell, 16, 200, 12);
        g_cold = 0.3; /* item dropout: "new" items without id rows, the learned cold bias */
        backends_agree_t((model_cell)cell, 8, 0.3, TRAIN_LOSS_FULL, 1, 12);
        backends_agree_t((model_cell)cell, 16, 0.3, TRAIN_LOSS_SAMPLED, 1, 12);
        finite_differences_t((model_cell)cell, TRAIN_LOSS_FULL, 0.3, 1, 6);
        finite_differences_t((model_cell)cell, TRAIN_LOSS_SAMPLED, 0.0, 1, 6);
        g_cold = 0;
    }
    /* transformer blocks (attention tf) on a GRU, on the LRU stack and alone */
    fixture_attn = MODEL_ATTN_TF;
    const model_cell tf_cells[] = {MODEL_CELL_GRU, MODEL_CELL_LRU, MODEL_CELL_NONE};
    for (int k = 0; k < 3; k++) {
        backends_agree(tf_cells[k], 200, 0.0, TRAIN_LOSS_FULL, 0);
        backends_agree(tf_cells[k], 8, 0.3, TRAIN_LOSS_FULL, 1);
        finite_differences(tf_cells[k], TRAIN_LOSS_FULL, 0.0, 0);
        finite_differences(tf_cells[k], TRAIN_LOSS_FULL, 0.3, 1);
        forward_equals_step(tf_cells[k], 4, 8);
        forward_equals_step(tf_cells[k], 16, 200);
    }
    backends_agree_t(MODEL_CELL_GRU, 8, 0.3, TRAIN_LOSS_FULL, 1, 12);
    forward_equals_step_t(MODEL_CELL_GRU, 4, 8, 12);
    fixture_attn = MODEL_ATTN_WINDOW;
    optimizer();
    determinism();
    text_fit();
    heads();
    value_user();
    return check_exit("test_model_train");
}
