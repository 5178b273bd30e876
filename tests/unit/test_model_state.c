/* test_model_state: the state blob (version 2) byte for byte as model.h lays it out, its checks and
 * accessors; the item key (FNV-1a 64, fixed vectors); the fp16 conversions (every half value, ties
 * to even, subnormals, saturation); the drift against the fp16-rounded previous vector; the
 * vector a state holds (model_state_output) against what the step returned. */
#include "model_fixture.h"
#include "model_internal.h"

/* The LRU models here: 2 layers, complex state N = 3 (the product's: 64), feed-forward 7 (128). */
static size_t want_size(model_cell cell, int H, int D, int W, int T) {
    const int N = H == 64 ? 64 : 3;
    size_t rec = cell == MODEL_CELL_LSTM ? 2 * (size_t)H : cell == MODEL_CELL_GRU ? (size_t)H : (size_t)H + 2 * 2 * (size_t)N;
    return 36 + 4 * rec + 2 * (size_t)D + (size_t)(T > 0 ? 24 : 16) * W;
}

static model *layout_model(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items, int n_actions, int T,
                           uint64_t seed) {
    if (cell != MODEL_CELL_LRU) return fixture_model_t(cell, E, A, H, K, D, W, n_items, n_actions, T, seed);
    return H == 64 ? fixture_lru_model(E, A, H, 64, 128, 2, K, D, W, n_items, n_actions, T, seed)
                   : fixture_lru_model(E, A, H, 3, 7, 2, K, D, W, n_items, n_actions, T, seed);
}

static const float *text_of(void *ctx, uint64_t key) {
    const float *v = ctx;
    return key == model_item_key("i2", 2) ? v : key == model_item_key("new", 3) ? v + 8 : NULL;
}

static void test_layout(model_cell cell, int T) {
    int H = 5, D = 4, W = 3;
    model *m = layout_model(cell, 6, 2, H, 3, D, W, 8, 2, T, 9);
    size_t want = want_size(cell, H, D, W, T);
    CHECK(model_state_size(m) == want, "state size %zu, want %zu", model_state_size(m), want);
    unsigned char st[512];
    memset(st, 0xA5, sizeof st);
    model_state_init(m, st);
    unsigned char want_hdr[36] = {'I', 'E', 'V', 'S', 2, 0, (unsigned char)cell, 0};
    for (int i = 0; i < 8; i++) want_hdr[28 + i] = (unsigned char)(m->fingerprint >> (8 * i)); /* little-endian */
    CHECK(memcmp(st, want_hdr, 36) == 0, "header bytes of the empty state");
    int zero = 1;
    for (size_t i = 36; i < want; i++) zero &= st[i] == 0;
    CHECK(zero, "the empty state's h/c/u/window are not zero");
    CHECK(st[want] == 0xA5, "model_state_init wrote past model_state_size");
    char err[MODEL_ERR_LEN];
    CHECK(model_state_check(m, st, err, sizeof err) == 0, "fresh state rejected: %s", err);
    CHECK(model_state_events(st) == 0 && model_state_last_ts(st) == 0, "fresh counters");

    /* Accessors read the documented offsets, little-endian. */
    unsigned char raw[512];
    memcpy(raw, st, sizeof raw);
    int64_t ev = 0x0102030405060708LL, ts = -1234567890123LL;
    memcpy(raw + 8, &ev, 8);
    memcpy(raw + 16, &ts, 8);
    CHECK(raw[8] == 0x08 && raw[15] == 0x01, "host is not little-endian");
    CHECK(model_state_events(raw) == ev && model_state_last_ts(raw) == ts, "events/last_ts accessors");

    /* After steps: h (c) and fp16 u where model.h says; the slots as documented. */
    float tv[16];
    for (int i = 0; i < 16; i++) tv[i] = (float)(0.25 * ((i % 5) - 2));
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "%s", err);
    if (T) model_runner_set_text(r, text_of, tv);
    void *p = st;
    float u[4], drift, hs[10];
    const char *ids[4] = {"i0", "i1", "i2", "new"};
    for (int k = 0; k < 4; k++) {
        model_event e = {.item = k, .action = 1 + (k == 3), .ts = 5000 + k, .value = 1, .has_value = k != 2};
        e.item_key = model_item_key(ids[k], strlen(ids[k]));
        e.event_text = T && k == 1 ? tv + 4 : NULL;
        REQUIRE(model_step(r, 1, &p, &e, u, &drift, err, sizeof err) == 0, "%s", err);
    }
    size_t off_u = want - (size_t)(T ? 24 : 16) * W - 2 * (size_t)D, off_w = off_u + 2 * (size_t)D;
    memcpy(hs, st + 36, 4 * (size_t)H);
    int finite = 1;
    const float hmax = cell == MODEL_CELL_LRU ? 10.0f : 1.0f; /* the LRU's h is a LayerNorm output, no tanh */
    for (int i = 0; i < H; i++) finite &= isfinite(hs[i]) && fabsf(hs[i]) < hmax;
    CHECK(finite, "h at offset 36");
    for (int i = 0; i < D; i++) {
        uint16_t h16;
        memcpy(&h16, st + off_u + 2 * (size_t)i, 2);
        CHECK(h16 == model_f16_from_f32(u[i]), "u[%d] at offset %zu is not fp16(u): %04x", i, off_u + 2 * (size_t)i, h16);
    }
    float dec[4];
    model_state_vector(m, st, dec);
    for (int i = 0; i < D; i++)
        CHECK(dec[i] == model_f32_from_f16(model_f16_from_f32(u[i])) && fabsf(dec[i] - u[i]) <= fabsf(u[i]) * 0x1p-11f,
              "model_state_vector[%d] %g vs u %g", i, dec[i], u[i]);
    CHECK(model_state_events(st) == 4 && model_state_last_ts(st) == 5003, "counters after 4 events");
    uint16_t wlen, head;
    memcpy(&wlen, st + 24, 2);
    memcpy(&head, st + 26, 2);
    CHECK(wlen == 3 && head == 1, "window length %d head %d after 4 events with W=3", wlen, head);
    size_t slot = T ? 24 : 16;
    const unsigned char *s0 = st + off_w; /* slot 0 was overwritten by event 3 */
    int32_t item0;
    uint16_t act0;
    memcpy(&item0, s0, 4);
    memcpy(&act0, s0 + 4, 2);
    CHECK(item0 == 3 && act0 == 2 && s0[6] == 1 && s0[7] == 0, "slot 0: item %d action %d flags %d pad %d", item0, act0,
          s0[6], s0[7]);
    float f0, f1;
    memcpy(&f0, s0 + 8, 4);
    memcpy(&f1, s0 + 12, 4);
    CHECK(f0 == (float)(log1p(0.001) / 10) && f1 == (float)log1p(1.0), "slot 0 features %g %g", f0, f1);
    CHECK(st[off_w + 2 * slot + 6] == 0, "slot 2 (event 2, no value): flags %d", st[off_w + 2 * slot + 6]);
    if (T) {
        uint64_t k0;
        memcpy(&k0, s0 + 16, 8);
        CHECK(k0 == model_item_key("new", 3), "slot 0 key %016llx", (unsigned long long)k0);
    }
    CHECK(model_state_check(m, st, err, sizeof err) == 0, "stepped state rejected: %s", err);
    /* model_state_output: what the last step returned (the scalar runner: the same kernels, bitwise) */
    float again[4];
    REQUIRE(model_state_output(r, st, again, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(again, u, sizeof u) == 0, "model_state_output differs from the step's u");

    /* Rejections. */
    unsigned char bad[512];
    memcpy(bad, st, sizeof bad);
    bad[0] ^= 1;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "magic"), "bad magic: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[4] = 1; /* version 1 blobs are not read */
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "version"), "version 1: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[6] ^= 1;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "cell"), "bad cell: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[35] ^= 0x80;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "fingerprint"), "bad fingerprint: %s", err);
    memset(bad, 0, sizeof bad);
    CHECK(model_state_check(m, bad, err, sizeof err) == -1, "a zeroed blob is valid");
    model *other = layout_model(cell, 6, 2, H, 3, D, W, 8, 2, T, 10); /* same shape, other weights */
    CHECK(model_state_check(other, st, err, sizeof err) == -1 && strstr(err, "another model"),
          "another model's state accepted: %s", err);
    model_free(other);
    model_runner_free(r);
    model_free(m);
}

/* The sizes of the product's shape, before (version 1: 1,128 bytes for an LSTM) and after. */
static void test_sizes(void) {
    for (int cell = 0; cell < 3; cell++)
        for (int T = 0; T <= 512; T += 512) {
            model *m = layout_model((model_cell)cell, 64, 8, 64, 64, 64, 16, 20, 3, T, 1);
            size_t v1 = 40 + 4 * 64 * (size_t)(cell == MODEL_CELL_LSTM ? 2 : 1) + 4 * 64 + 20 * 16;
            if (cell == MODEL_CELL_LRU)
                fprintf(stderr, "  lru  H=D=64 N=64 L=2 W=16%s: state %zu bytes\n", T ? " text" : "     ", model_state_size(m));
            else
                fprintf(stderr, "  %-4s H=D=64 W=16%s: state %zu bytes (version 1: %zu)\n", model_cell_name((model_cell)cell),
                        T ? " text" : "     ", model_state_size(m), v1);
            CHECK(model_state_size(m) == want_size((model_cell)cell, 64, 64, 16, T), "size");
            model_free(m);
        }
}

/* FNV-1a 64: published vectors, and 0 never comes out. */
static void test_item_key(void) {
    CHECK(model_item_key("", 0) == 0xcbf29ce484222325ull, "FNV-1a of the empty string");
    CHECK(model_item_key("a", 1) == 0xaf63dc4c8601ec8cull, "FNV-1a of \"a\": %016llx", (unsigned long long)model_item_key("a", 1));
    CHECK(model_item_key("foobar", 6) == 0x85944171f73967e8ull, "FNV-1a of \"foobar\"");
    CHECK(model_item_key("1682", 4) == model_item_key("1682x", 4), "only len bytes are read");
}

/* fp16: every half value round-trips; conversions round to nearest even; saturation; NaN. */
static void test_fp16(void) {
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = model_f32_from_f16((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e == 31) {
            if ((h & 0x3FF) ? !isnan(f) : !isinf(f)) bad++;
            continue;
        }
        if (model_f16_from_f32(f) != h) bad++;
        /* the midpoint to the next larger magnitude ties to the even one */
        if ((h & 0x7FFF) < 0x7BFF) {
            float g = model_f32_from_f16((uint16_t)(h + 1));
            float mid = (float)(((double)f + (double)g) / 2);
            uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            if (model_f16_from_f32(mid) != want) bad++;
            float above = nextafterf(mid, g), below = nextafterf(mid, f);
            if (model_f16_from_f32(above) != h + 1 || model_f16_from_f32(below) != h) bad++;
        }
    }
    CHECK(bad == 0, "%ld fp16 conversions wrong", bad);
    CHECK(model_f16_from_f32(65504.0f) == 0x7BFF && model_f16_from_f32(1e6f) == 0x7BFF &&
              model_f16_from_f32(-INFINITY) == 0xFBFF && model_f16_from_f32(65519.0f) == 0x7BFF,
          "saturation at 65504");
    CHECK(isnan(model_f32_from_f16(model_f16_from_f32(NAN))), "NaN");
    CHECK(model_f16_from_f32(0x1p-25f) == 0 && model_f16_from_f32(0x1.000002p-25f) == 1 &&
              model_f16_from_f32(0x1p-24f) == 1 && model_f16_from_f32(-0.0f) == 0x8000,
          "smallest subnormals");
}

/* The blob's bulk u conversions (model_state_write_u / read_u: F16C in hardware where the CPU has
 * it, eight at a time, with a scalar tail) give model_f16_from_f32's and model_f32_from_f16's
 * bits for every half value, every rounding midpoint and its neighbours, saturation, and NaN. */
static void test_fp16_bulk(void) {
    const int D = 67; /* 8 blocks of 8 and a tail of 3 */
    model *m = fixture_model(MODEL_CELL_GRU, 6, 3, 7, 5, D, 4, 20, 3, 17);
    char st[4096];
    REQUIRE(model_state_size(m) <= sizeof st, "state of %zu bytes", model_state_size(m));
    model_state_init(m, st);
    size_t n = 0, cap = 65536 * 4 + 16;
    float *x = malloc(cap * sizeof *x);
    REQUIRE(x != NULL, "out of memory");
    for (uint32_t h = 0; h < 65536; h++) {
        float f = model_f32_from_f16((uint16_t)h);
        if (isnan(f)) continue;
        x[n++] = f;
        if ((h & 0x7FFF) < 0x7BFF) {
            float g = model_f32_from_f16((uint16_t)(h + 1)), mid = (float)(((double)f + (double)g) / 2);
            x[n++] = mid, x[n++] = nextafterf(mid, g), x[n++] = nextafterf(mid, f);
        }
    }
    const float extra[] = {65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, INFINITY, -INFINITY, 0x1p-25f, 0x1.000002p-25f,
                           -0.0f, 1e-30f, -1e-30f, NAN, 1.0f, -NAN, 0.5f};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) x[n++] = extra[i];
    long bad = 0;
    float u[67], back[67];
    const uint8_t *pu = (const uint8_t *)st + model_state_off_u(m);
    for (size_t at = 0; at < n; at += D) {
        for (int i = 0; i < D; i++) u[i] = x[(at + (size_t)i) % n];
        model_state_write_u(m, st, u);
        model_state_read_u(m, st, back);
        for (int i = 0; i < D; i++) {
            uint16_t h;
            memcpy(&h, pu + 2 * i, 2);
            if (h != model_f16_from_f32(u[i])) bad++;
            float want = model_f32_from_f16(h);
            if (memcmp(&back[i], &want, 4) && !(isnan(back[i]) && isnan(want))) bad++;
        }
    }
    CHECK(bad == 0, "%ld bulk fp16 conversions differ from the scalar ones (%zu values)", bad, n);
    free(x);
    model_free(m);
}

/* The drift is 1 - cos(u_t, fp16(u_{t-1})) exactly, in both backends. */
static void test_fp16_drift(model_backend be) {
    model *m = fixture_model(MODEL_CELL_GRU, 6, 3, 7, 5, 9, 4, 20, 3, 17);
    char err[MODEL_ERR_LEN];
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, be, 4, err, sizeof err) == 0, "%s", err);
    char st[1024];
    model_state_init(m, st);
    void *p = st;
    float prev[9], u[9], drift, rounded[9];
    int differs = 0;
    for (int k = 0; k < 12; k++) {
        model_event e = {.item = 1 + k % 20, .action = k % 3, .ts = 1000 * k, .value = (float)k, .has_value = 1};
        REQUIRE(model_step(r, 1, &p, &e, u, &drift, err, sizeof err) == 0, "%s", err);
        if (k) {
            for (int i = 0; i < 9; i++) rounded[i] = model_f32_from_f16(model_f16_from_f32(prev[i]));
            double uv = 0, uu = 0, vv = 0, fv = 0, ff = 0;
            for (int i = 0; i < 9; i++) uv += (double)u[i] * rounded[i], uu += (double)u[i] * u[i], vv += (double)rounded[i] * rounded[i];
            for (int i = 0; i < 9; i++) fv += (double)u[i] * prev[i], ff += (double)prev[i] * prev[i];
            double want = 1 - uv / sqrt(uu * vv), exact = 1 - fv / sqrt(uu * ff);
            CHECK(fabs(drift - want) < 1e-6, "step %d: drift %.9g, 1 - cos(u, fp16(prev)) = %.9g", k, drift, want);
            differs |= fabs(want - exact) > 1e-9;
        }
        memcpy(prev, u, sizeof u);
    }
    CHECK(differs, "fp16 rounding never changed the drift: the test cannot tell");
    model_runner_free(r);
    model_free(m);
}

int main(void) {
    model_runtime_init(1);
    for (int T = 0; T <= 8; T += 8) {
        test_layout(MODEL_CELL_LSTM, T);
        test_layout(MODEL_CELL_GRU, T);
        test_layout(MODEL_CELL_LRU, T);
    }
    test_sizes();
    test_item_key();
    test_fp16();
    test_fp16_bulk();
    test_fp16_drift(MODEL_BACKEND_SCALAR);
    test_fp16_drift(MODEL_BACKEND_DNNL);
    return check_exit("test_model_state");
}
