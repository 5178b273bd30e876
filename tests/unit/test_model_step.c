/* test_model_step: the oneDNN backend against the scalar reference (model_step), and the step's
 * bookkeeping: the window ring, the state update, validation before mutation, drift.
 *
 * Every run feeds both backends the same randomized waves (distinct users per wave, sizes that
 * hit every bucket and sizes between buckets, users at different points in their history, the
 * window wrapping, OOV items, events with and without value, time gaps, out-of-order timestamps)
 * and requires u_t, drift and the state floats to agree within 1e-5 and the rest of the blob to
 * be byte-identical. Every family: LSTM, GRU and the LRU stack. The torch oracle (tests/oracle) checks the scalar reference itself.
 */
#include <math.h>

#include "model_fixture.h"
#include "model_internal.h"
#include "nn_dnnl.h"

#define TOL 1e-5
/* The drift is computed against the fp16-rounded previous vector (model.h): where the backends'
 * u_{t-1} straddle an fp16 rounding boundary (their 1e-6 difference crosses it), the rounded
 * vectors differ by one fp16 ulp in that component, which moves the drift by up to ~1e-5. */
#define DRIFT_TOL 1e-4

typedef struct {
    double u, drift, state, u16;
} maxdiff;

/* Compares two blobs: float regions (h, c) within tol, the fp16 u within one fp16 ulp, the rest
 * (header, window slots) bytewise. */
static void compare_states(const model *m, const char *a, const char *b, maxdiff *md, int user) {
    size_t off_h = model_state_off_h(m), off_u = model_state_off_u(m), off_win = model_state_off_win(m);
    size_t size = model_state_size(m);
    CHECK(memcmp(a, b, off_h) == 0, "user %d: state headers differ", user);
    size_t nf = (off_u - off_h) / 4;
    float fa[4096], fb[4096];
    REQUIRE(nf <= 4096 && m->cfg.out_dim <= 4096, "state too big for the test buffer");
    memcpy(fa, a + off_h, nf * 4);
    memcpy(fb, b + off_h, nf * 4);
    double d = check_max_abs_diff(fa, fb, nf);
    if (d > md->state) md->state = d;
    model_state_vector(m, a, fa);
    model_state_vector(m, b, fb);
    /* |fp16(a) - fp16(b)| <= |a - b| + one fp16 ulp: what is left after the backends' own
     * difference in u (md->u, the largest so far) must be within one ulp */
    for (int i = 0; i < m->cfg.out_dim; i++) {
        double ulp = fabs((double)fa[i]) * 0x1p-10 + 0x1p-24, e = fabs((double)fa[i] - fb[i]) - md->u;
        if (e / ulp > md->u16) md->u16 = e / ulp;
    }
    size_t off_kv = model_state_off_kv(m), nkv = (size - off_kv) / 4; /* transformer blocks' k, v cache */
    CHECK(memcmp(a + off_win, b + off_win, off_kv - off_win) == 0, "user %d: window slots differ", user);
    for (size_t k = 0; k < nkv; k += 4096) {
        size_t cnt = nkv - k < 4096 ? nkv - k : 4096;
        memcpy(fa, a + off_kv + 4 * k, cnt * 4);
        memcpy(fb, b + off_kv + 4 * k, cnt * 4);
        d = check_max_abs_diff(fa, fb, cnt);
        if (d > md->state) md->state = d;
    }
}

/* Text lookups for the agreement runs: a table of keys with vectors (some items have no text). */
typedef struct {
    uint64_t *keys;
    const float *vecs;
    int n, T;
} text_lut;

static const float *lut_text(void *ctx, uint64_t key) {
    const text_lut *l = ctx;
    for (int i = 0; i < l->n; i++)
        if (l->keys[i] == key) return l->vecs + (size_t)i * l->T;
    return NULL;
}

static model_attn g_attn = MODEL_ATTN_WINDOW; /* what reads h_t in the agreement runs */

/* Runs `waves` random waves through both backends and checks agreement. Blobs of the dnnl copy
 * sit at an odd address to prove the step never needs an aligned blob. */
static void run_agreement_t(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items, int users,
                            int max_batch, const int *sizes, int n_sizes, int waves, int T, uint64_t seed) {
    /* the LRU stack: 2 layers, an odd complex state and feed-forward width (the product's 64 and
     * 128 at H = 64) */
    model *m = g_attn == MODEL_ATTN_TF ? fixture_family(cell, MODEL_ATTN_TF, E, A, H, K, D, W, n_items, 5, T, seed)
               : cell != MODEL_CELL_LRU ? fixture_model_t(cell, E, A, H, K, D, W, n_items, 5, T, seed)
               : H == 64 ? fixture_lru_model(E, A, H, 64, 128, 2, K, D, W, n_items, 5, T, seed)
                         : fixture_lru_model(E, A, H, H / 2 + 1, 2 * H + 3, 2, K, D, W, n_items, 5, T, seed);
    char err[MODEL_ERR_LEN];
    model_runner *rs = NULL, *rd = NULL;
    REQUIRE(model_runner_new(&rs, m, MODEL_BACKEND_SCALAR, max_batch, err, sizeof err) == 0, "%s", err);
    REQUIRE(model_runner_new(&rd, m, MODEL_BACKEND_DNNL, max_batch, err, sizeof err) == 0, "%s", err);
    /* Text: 70 % of the vocabulary's items and 20 "new" items (outside the vocabulary) have a
     * catalogue text; events carry their own text 30 % of the time. */
    const int NEW = 20, NTXT = 64;
    text_lut lut = {calloc((size_t)(n_items + NEW), sizeof(uint64_t)), NULL, 0, T};
    float *vecs = T ? fixture_unit_vectors(n_items + NEW + NTXT, T, seed ^ 0x55) : NULL;
    char id[32];
    long texted = 0, ev_texted = 0, new_items = 0;
    if (T) {
        lut.vecs = vecs;
        for (int i = 1; i <= n_items + NEW; i++) {
            if (i <= n_items && (i * 7919) % 10 >= 7) continue;
            int len = i <= n_items ? snprintf(id, sizeof id, "i%d", i) : snprintf(id, sizeof id, "new%d", i - n_items);
            lut.keys[lut.n] = model_item_key(id, (size_t)len);
            if (lut.n != i - 1) memcpy(vecs + (size_t)lut.n * T, vecs + (size_t)(i - 1) * T, (size_t)T * sizeof(float));
            lut.n++;
        }
        model_runner_set_text(rs, lut_text, &lut);
        model_runner_set_text(rd, lut_text, &lut);
    }
    size_t ss = model_state_size(m);
    char *pool_s = malloc(ss * (size_t)users), *pool_d = malloc(ss * (size_t)users + 1);
    int64_t *last_ts = calloc((size_t)users, sizeof *last_ts);
    int *perm = malloc((size_t)users * sizeof *perm);
    void **st_s = malloc((size_t)max_batch * sizeof *st_s), **st_d = malloc((size_t)max_batch * sizeof *st_d);
    model_event *ev = malloc((size_t)max_batch * sizeof *ev);
    float *vs = malloc((size_t)max_batch * D * sizeof *vs), *vd = malloc((size_t)max_batch * D * sizeof *vd);
    float *ds = malloc((size_t)max_batch * sizeof *ds), *dd = malloc((size_t)max_batch * sizeof *dd);
    REQUIRE(pool_s && pool_d && last_ts && perm && st_s && st_d && ev && vs && vd && ds && dd, "oom");
    for (int u = 0; u < users; u++) {
        model_state_init(m, pool_s + (size_t)u * ss);
        model_state_init(m, pool_d + 1 + (size_t)u * ss);
        last_ts[u] = 1700000000000LL + u * 977;
    }
    rng_t r;
    rng_seed(&r, seed ^ 0xABCDEF);
    maxdiff md = {0, 0, 0};
    long events = 0, wrapped = 0, oov = 0, valued = 0;
    for (int w = 0; w < waves; w++) {
        int n = sizes[w % n_sizes];
        REQUIRE(n <= users && n <= max_batch, "bad wave size");
        for (int u = 0; u < users; u++) perm[u] = u;
        /* Skewed choice: low user ids get many more events than high ones, so a wave mixes
         * users deep into their history with users on their first event. */
        for (int i = 0; i < n; i++) {
            int span = users - i, pick = (int)(rng_uniform(&r) * rng_uniform(&r) * span);
            int t = perm[i];
            perm[i] = perm[i + pick];
            perm[i + pick] = t;
        }
        for (int i = 0; i < n; i++) {
            int u = perm[i];
            st_s[i] = pool_s + (size_t)u * ss;
            st_d[i] = pool_d + 1 + (size_t)u * ss;
            double p = rng_uniform(&r);
            int64_t gap = p < 0.1 ? 0 : p < 0.15 ? -5000 : (int64_t)(rng_uniform(&r) * 3.6e6 * (p < 0.5 ? 1 : 48));
            last_ts[u] += gap;
            ev[i].ts = last_ts[u];
            ev[i].item = rng_uniform(&r) < 0.1 ? 0 : 1 + (int)(rng_uniform(&r) * (n_items));
            ev[i].action = (int)(rng_uniform(&r) * 6);
            ev[i].has_value = rng_uniform(&r) < 0.6;
            ev[i].value = ev[i].has_value ? (float)((rng_uniform(&r) - 0.4) * 12.0) : 123.0f;
            ev[i].item_key = 0, ev[i].event_text = NULL;
            if (T) {
                int len = ev[i].item ? snprintf(id, sizeof id, "i%d", ev[i].item)
                                     : snprintf(id, sizeof id, "new%d", 1 + (int)(rng_uniform(&r) * (NEW + 3)));
                ev[i].item_key = model_item_key(id, (size_t)len);
                if (rng_uniform(&r) < 0.3)
                    ev[i].event_text = vecs + (size_t)(n_items + NEW + (int)(rng_uniform(&r) * NTXT)) * T, ev_texted++;
                texted += lut_text(&lut, ev[i].item_key) != NULL;
                new_items += ev[i].item == 0 && lut_text(&lut, ev[i].item_key) != NULL;
            }
            if (model_state_events(st_s[i]) >= W) wrapped++;
            oov += ev[i].item == 0;
            valued += ev[i].has_value;
        }
        REQUIRE(model_step(rs, n, st_s, ev, vs, ds, err, sizeof err) == 0, "scalar step: %s", err);
        REQUIRE(model_step(rd, n, st_d, ev, vd, dd, err, sizeof err) == 0, "dnnl step: %s", err);
        double d = check_max_abs_diff(vs, vd, (size_t)n * D);
        if (d > md.u) md.u = d;
        d = check_max_abs_diff(ds, dd, (size_t)n);
        if (d > md.drift) md.drift = d;
        for (int i = 0; i < n; i++) compare_states(m, st_s[i], st_d[i], &md, perm[i]);
        events += n;
        if (T && w == waves / 2) { /* a catalogue text changes in place: the dnnl cache must be told */
            for (int k = 0; k < T; k++) ((float *)lut.vecs)[k] = -lut.vecs[k];
            model_runner_text_changed(rd, lut.keys[0]);
        }
    }
    char fam[32];
    model_family_name(&m->cfg, fam, sizeof fam);
    fprintf(stderr, "  %s E=%d A=%d H=%d K=%d D=%d W=%d T=%d batch<=%d: %ld events (%ld past the window, %ld OOV, %ld valued"
                    ", %ld with item text, %ld new items, %ld event texts) max|diff| u %.2e drift %.2e state %.2e, u fp16 %.2f ulp\n",
            fam, E, A, H, K, D, W, T, max_batch, events, wrapped, oov, valued, texted,
            new_items, ev_texted, md.u, md.drift, md.state, md.u16);
    CHECK(md.u <= TOL && md.drift <= DRIFT_TOL && md.state <= TOL && md.u16 <= 1.0,
          "backends disagree: u %.3g drift %.3g state %.3g u16 %.3g ulp", md.u, md.drift, md.state, md.u16);
    CHECK(wrapped > 0 && oov > 0 && valued > 0 && valued < events, "the random events missed a case");
    CHECK(!T || (texted > 0 && texted < events && new_items > 0 && ev_texted > 0), "the text cases were missed");
    free(lut.keys);
    free(vecs);
    model_runner_free(rs);
    model_runner_free(rd);
    free(pool_s), free(pool_d), free(last_ts), free(perm), free(st_s), free(st_d), free(ev);
    free(vs), free(vd), free(ds), free(dd);
    model_free(m);
}

static void run_agreement(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items, int users,
                          int max_batch, const int *sizes, int n_sizes, int waves, uint64_t seed) {
    run_agreement_t(cell, E, A, H, K, D, W, n_items, users, max_batch, sizes, n_sizes, waves, 0, seed);
}

/* The dnnl runner caches a(t) per key and pointer: a text changed in place without
 * model_runner_text_changed is not seen (the contract the worker keeps), with it it is. */
static void test_text_cache(void) {
    const int T = 16;
    model *m = fixture_model_t(MODEL_CELL_GRU, 8, 2, 6, 5, 4, 3, 10, 2, T, 31);
    char err[MODEL_ERR_LEN];
    float *v = fixture_unit_vectors(2, T, 3);
    uint64_t key = model_item_key("i1", 2);
    text_lut lut = {&key, v, 1, T};
    model_runner *rs = NULL, *rd = NULL;
    REQUIRE(model_runner_new(&rs, m, MODEL_BACKEND_SCALAR, 2, err, sizeof err) == 0, "%s", err);
    REQUIRE(model_runner_new(&rd, m, MODEL_BACKEND_DNNL, 2, err, sizeof err) == 0, "%s", err);
    model_runner_set_text(rs, lut_text, &lut);
    model_runner_set_text(rd, lut_text, &lut);
    char a[512], b[512];
    float ua[4], ub[4], da, db;
    for (int pass = 0; pass < 3; pass++) {
        model_state_init(m, a);
        model_state_init(m, b);
        void *pa = a, *pb = b;
        model_event e = {.item = 1, .action = 1, .ts = 1000, .item_key = key};
        REQUIRE(model_step(rs, 1, &pa, &e, ua, &da, err, sizeof err) == 0, "%s", err);
        REQUIRE(model_step(rd, 1, &pb, &e, ub, &db, err, sizeof err) == 0, "%s", err);
        double d = check_max_abs_diff(ua, ub, 4);
        if (pass == 1) CHECK(d > 1e-3, "pass 1: a text changed in place must stay cached until told (|diff| %g)", d);
        else CHECK(d <= TOL, "pass %d: backends differ by %g", pass, d);
        if (pass == 0) memcpy(v, v + T, (size_t)T * sizeof(float)); /* the text changes in place */
        if (pass == 1) model_runner_text_changed(rd, key);
    }
    free(v);
    model_runner_free(rs);
    model_runner_free(rd);
    model_free(m);
}

/* One event at a time vs the same events in a batch: the scalar path is row-independent. */
static void test_batch_independence(void) {
    model *m = fixture_model(MODEL_CELL_LSTM, 6, 3, 8, 5, 7, 4, 20, 3, 7);
    char err[MODEL_ERR_LEN];
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 8, err, sizeof err) == 0, "%s", err);
    size_t ss = model_state_size(m);
    char a[8][2048], b[8][2048];
    REQUIRE(ss <= 2048, "state too big");
    void *pa[8], *pb[8];
    for (int i = 0; i < 8; i++) {
        model_state_init(m, a[i]);
        model_state_init(m, b[i]);
        pa[i] = a[i];
        pb[i] = b[i];
    }
    float va[8 * 7], vb[8 * 7], da[8], db[8];
    for (int step = 0; step < 6; step++) {
        model_event ev[8];
        for (int i = 0; i < 8; i++)
            ev[i] = (model_event){.item = (i * 7 + step) % 21, .action = (i + step) % 4, .ts = 1000 * step + i,
                                  .value = (float)(i - step), .has_value = (i + step) % 2};
        REQUIRE(model_step(r, 8, pa, ev, va, da, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < 8; i++) REQUIRE(model_step(r, 1, &pb[i], &ev[i], vb + i * 7, &db[i], err, sizeof err) == 0, "%s", err);
        CHECK(memcmp(va, vb, sizeof va) == 0 && memcmp(da, db, sizeof da) == 0, "step %d: batch changes the result", step);
        for (int i = 0; i < 8; i++) CHECK(memcmp(a[i], b[i], ss) == 0, "step %d row %d: batch changes the state", step, i);
    }
    model_runner_free(r);
    model_free(m);
}

/* The bookkeeping of the step, read back through the blob layout. */
static void test_state_update(void) {
    int W = 3;
    model *m = fixture_model(MODEL_CELL_GRU, 4, 2, 5, 3, 4, W, 10, 2, 11);
    char err[MODEL_ERR_LEN];
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_DNNL, 4, err, sizeof err) == 0, "%s", err);
    char st[1024];
    model_state_init(m, st);
    void *p = st;
    float u[4], prev_u[4], drift;
    int64_t ts[5] = {10000, 70000, 65000, 65000, 3665000};
    for (int k = 0; k < 5; k++) {
        model_event ev = {.item = k + 1, .action = k % 3, .ts = ts[k], .value = k == 1 ? -3.0f : 2.5f, .has_value = k != 3};
        REQUIRE(model_step(r, 1, &p, &ev, u, &drift, err, sizeof err) == 0, "%s", err);
        model_state_hdr h;
        model_state_read_hdr(st, &h);
        CHECK(h.events == k + 1 && h.last_ts == ts[k], "step %d: events %lld last_ts %lld", k, (long long)h.events,
              (long long)h.last_ts);
        CHECK(h.wlen == (k + 1 < W ? k + 1 : W) && h.head == (k + 1) % W, "step %d: wlen %d head %d", k, h.wlen, h.head);
        model_state_slot s;
        model_state_read_slot(m, st, k % W, &s);
        double gap = k == 0 ? 0 : ts[k] > ts[k - 1] ? (ts[k] - ts[k - 1]) / 1000.0 : 0;
        double v = k == 1 ? -log1p(3.0) : k == 3 ? 0 : log1p(2.5);
        CHECK(s.item == k + 1 && s.action == k % 3, "step %d: slot item %d action %d", k, s.item, s.action);
        CHECK(s.f[0] == (float)(log1p(gap) / 10) && s.f[1] == (float)v && s.f[2] == (k != 3 ? 1.0f : 0.0f),
              "step %d: features %g %g %g", k, s.f[0], s.f[1], s.f[2]);
        float back[4];
        REQUIRE(model_state_output(r, st, back, err, sizeof err) == 0, "%s", err);
        CHECK(check_max_abs_diff(back, u, 4) <= TOL, "step %d: the state's u is not the output", k);
        if (k == 0) CHECK(drift == 0.0f, "first event drift %g", drift);
        else {
            double uv = 0, uu = 0, vv = 0;
            for (int i = 0; i < 4; i++) { /* the drift is against the fp16-rounded previous vector */
                double p16 = model_f32_from_f16(model_f16_from_f32(prev_u[i]));
                uv += u[i] * p16, uu += u[i] * u[i], vv += p16 * p16;
            }
            CHECK(fabs(drift - (1 - uv / sqrt(uu * vv))) < 1e-6, "step %d: drift %g", k, drift);
        }
        memcpy(prev_u, u, sizeof u);
    }
    model_runner_free(r);
    model_free(m);
}

/* Bad input is rejected before any state changes. */
static void test_validation(void) {
    model *m = fixture_model(MODEL_CELL_LSTM, 4, 2, 5, 3, 4, 2, 10, 2, 3);
    model *other = fixture_model(MODEL_CELL_LSTM, 4, 2, 5, 3, 4, 2, 10, 2, 4);
    char err[MODEL_ERR_LEN];
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 4, err, sizeof err) == 0, "%s", err);
    size_t ss = model_state_size(m);
    char st[3][512], copy[3][512];
    void *p[3] = {st[0], st[1], st[2]};
    for (int i = 0; i < 3; i++) model_state_init(m, st[i]);
    model_event ev[3] = {{1, 1, 1000, 1.0f, 1}, {2, 0, 1000, 0, 0}, {3, 2, 1000, 2.0f, 1}};
    float u[12], d[3];
    REQUIRE(model_step(r, 3, p, ev, u, d, err, sizeof err) == 0, "%s", err);
    memcpy(copy, st, sizeof st);
    struct { const char *what; int row; } cases[] = {{"item out of range", 2}, {"negative action", 1}, {"NaN value", 2},
                                                    {"foreign state", 1},      {"corrupt counters", 0}, {"bad slot", 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        model_event e2[3];
        memcpy(e2, ev, sizeof ev);
        char tmp[512];
        int row = cases[c].row;
        memcpy(tmp, st[row], ss);
        switch (c) {
        case 0: e2[row].item = 11; break;
        case 1: e2[row].action = -1; break;
        case 2: e2[row].value = NAN; break;
        case 3: model_state_init(other, st[row]); break;
        case 4: { uint16_t wl = 5; memcpy(st[row] + 24, &wl, 2); } break;
        case 5: { int32_t it = 99; memcpy(st[row] + model_state_off_win(m), &it, 4); } break;
        }
        err[0] = 0;
        CHECK(model_step(r, 3, p, e2, u, d, err, sizeof err) == -1, "%s accepted", cases[c].what);
        char want[16];
        snprintf(want, sizeof want, "row %d", row);
        CHECK(strstr(err, want) != NULL, "%s: message \"%s\" does not name the row", cases[c].what, err);
        memcpy(st[row], tmp, ss);
        CHECK(memcmp(copy, st, sizeof st) == 0, "%s: a state changed", cases[c].what);
    }
    CHECK(model_step(r, 5, p, ev, u, d, err, sizeof err) == -1, "batch above max_batch accepted");
    CHECK(model_step(r, 0, p, ev, u, d, err, sizeof err) == 0, "empty batch rejected");
    model_runner_free(r);
    model_free(m);
    model_free(other);
}

/* The RNN weights are reordered once: one layout serves every bucket (platform notes 3). */
static void test_dnnl_layouts(void) {
    model *m = fixture_model(MODEL_CELL_LSTM, 64, 8, 64, 64, 64, 16, 50, 8, 5);
    char err[MODEL_ERR_LEN];
    int I = model_input_dim(&m->cfg), H = 64, R = 1024;
    for (int lstm = 0; lstm < 2; lstm++) {
        model *mm = lstm ? m : fixture_model(MODEL_CELL_GRU, 64, 8, 64, 64, 64, 16, 50, 8, 5);
        nn_dnnl *d = NULL;
        nn_dnnl_rnn *rnn = NULL;
        nn_dnnl_linear *lin = NULL;
        float *x = calloc((size_t)R * I, 4), *h = calloc((size_t)R * H, 4), *c = calloc((size_t)R * H, 4);
        float *h1 = calloc((size_t)R * H, 4), *c1 = calloc((size_t)R * H, 4), *y = calloc((size_t)R * 64, 4);
        REQUIRE(nn_dnnl_new(&d, R, err, sizeof err) == 0, "%s", err);
        /* 1, 2, 4, ..., 256, then 1024 */
        CHECK(nn_dnnl_n_buckets(d) == 10 && nn_dnnl_bucket_rows(d, 0) == 1 && nn_dnnl_bucket_rows(d, 8) == 256 &&
                  nn_dnnl_bucket_rows(d, 9) == 1024,
              "buckets for 1024: %d", nn_dnnl_n_buckets(d));
        CHECK(nn_dnnl_bucket_for(d, 1) == 0 && nn_dnnl_bucket_for(d, 3) == 2 && nn_dnnl_bucket_for(d, 17) == 5 &&
                  nn_dnnl_bucket_for(d, 256) == 8 && nn_dnnl_bucket_for(d, 257) == 9,
              "bucket_for");
        REQUIRE(nn_dnnl_rnn_new(&rnn, d, lstm, I, H, mm->t[T_W_IH].data, mm->t[T_W_HH].data, mm->t[T_B_IH].data,
                                mm->t[T_B_HH].data, x, h, c, h1, c1, err, sizeof err) == 0, "%s", err);
        REQUIRE(nn_dnnl_linear_new(&lin, d, H, 64, mm->t[T_W_Q].data, mm->t[T_B_Q].data, h1, y, err, sizeof err) == 0, "%s", err);
        REQUIRE(nn_dnnl_finalize(d, err, sizeof err) == 0, "%s", err);
        fprintf(stderr, "  %s: rnn weight layouts over 10 buckets: %d; matmul weight layouts: %d\n", lstm ? "lstm" : "gru",
                nn_dnnl_rnn_weight_layouts(rnn), nn_dnnl_linear_weight_layouts(lin));
        CHECK(nn_dnnl_rnn_weight_layouts(rnn) == 1, "rnn weights reordered %d times", nn_dnnl_rnn_weight_layouts(rnn));
        for (int b = 0; b < nn_dnnl_n_buckets(d); b++) {
            CHECK(nn_dnnl_rnn_forward(rnn, b, err, sizeof err) == 0, "%s", err);
            CHECK(nn_dnnl_linear_forward(lin, b, err, sizeof err) == 0, "%s", err);
        }
        nn_dnnl_free(d);
        free(x), free(h), free(c), free(h1), free(c1), free(y);
        if (!lstm) model_free(mm);
    }
    model_free(m);
}

int main(void) {
    model_runtime_init(1);
    const int small[] = {1, 3, 17, 100, 16, 64, 5, 2, 63, 65, 40};
    const int large[] = {256, 257, 300, 1, 64, 255, 17};
    for (int cell = 0; cell < 3; cell++) { /* LSTM, GRU, the LRU stack */
        /* W small so the ring wraps many times; odd sizes everywhere. */
        run_agreement((model_cell)cell, 8, 4, 16, 12, 10, 3, 30, 120, 100, small, 11, 40, 1 + cell);
        run_agreement((model_cell)cell, 5, 3, 7, 6, 9, 1, 12, 20, 17, small, 3, 30, 3 + cell);
        /* The product's shape, with batches across every bucket up to 300. */
        run_agreement((model_cell)cell, 64, 8, 64, 64, 64, 16, 400, 600, 300, large, 7, 30, 5 + cell);
        /* Text models: small, then the product's shape with USE-lite's T = 512. */
        run_agreement_t((model_cell)cell, 8, 4, 16, 12, 10, 3, 30, 120, 100, small, 11, 40, 24, 7 + cell);
        run_agreement_t((model_cell)cell, 64, 8, 64, 64, 64, 16, 400, 600, 300, large, 7, 30, 512, 9 + cell);
    }
    /* transformer blocks on a GRU, on the LRU stack and alone (cell none) */
    g_attn = MODEL_ATTN_TF;
    const model_cell tf_cells[] = {MODEL_CELL_GRU, MODEL_CELL_LRU, MODEL_CELL_NONE};
    for (int k = 0; k < 3; k++) {
        run_agreement(tf_cells[k], 8, 4, 16, 12, 10, 3, 30, 120, 100, small, 11, 40, 11 + k);
        run_agreement(tf_cells[k], 5, 3, 7, 6, 9, 1, 12, 20, 17, small, 3, 30, 14 + k);
        run_agreement_t(tf_cells[k], 8, 4, 16, 12, 10, 3, 30, 120, 100, small, 11, 40, 24, 17 + k);
    }
    run_agreement(MODEL_CELL_GRU, 64, 8, 64, 64, 64, 16, 400, 600, 300, large, 7, 30, 20);
    g_attn = MODEL_ATTN_WINDOW;
    test_text_cache();
    test_batch_independence();
    test_state_update();
    test_validation();
    test_dnnl_layouts();
    return check_exit("test_model_step");
}
