/* test_model_file: the model file (save -> load bit-exact, every rejection with its message),
 * seeded init, vocabularies, config parsing, checksums and metadata. */
#include "model_fixture.h"
#include "model_internal.h"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    REQUIRE(b && fread(b, 1, *n, f) == *n, "read %s", path);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

static void same_model(const model *a, const model *b, const char *what) {
    CHECK(memcmp(&a->cfg, &b->cfg, sizeof a->cfg) == 0, "%s: config differs", what);
    CHECK(a->n_params == b->n_params && memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0,
          "%s: parameters differ", what);
    for (int t = 0; t < MODEL_N_TENSORS; t++)
        CHECK(a->t[t].numel == b->t[t].numel && a->t[t].ndim == b->t[t].ndim && a->t[t].shape[0] == b->t[t].shape[0] &&
              a->t[t].shape[1] == b->t[t].shape[1] && strcmp(a->t[t].name, b->t[t].name) == 0 &&
              (a->t[t].data ? a->t[t].data - a->params : -1) == (b->t[t].data ? b->t[t].data - b->params : -1),
              "%s: tensor %d differs", what, t);
    CHECK(strcmp(a->model_id, b->model_id) == 0 && a->fingerprint == b->fingerprint, "%s: identity %s vs %s", what,
          a->model_id, b->model_id);
    CHECK((!a->meta_json && !b->meta_json) || (a->meta_json && b->meta_json && strcmp(a->meta_json, b->meta_json) == 0),
          "%s: metadata differs", what);
    for (int i = 0; i < a->cfg.n_items; i++) CHECK(strcmp(model_item_id(a, i), model_item_id(b, i)) == 0, "%s: item %d", what, i);
    for (int i = 0; i < a->cfg.n_actions; i++)
        CHECK(strcmp(model_action_id(a, i), model_action_id(b, i)) == 0, "%s: action %d", what, i);
}

/* The file with its header rewritten: the first occurrence of `from` becomes `to`. The data
 * section is kept, and the header length updated. */
static unsigned char *rewrite_header(const unsigned char *file, size_t n, const char *from, const char *to, size_t *out_n) {
    uint64_t hlen;
    memcpy(&hlen, file, 8);
    char *h = malloc(hlen + 1);
    memcpy(h, file + 8, hlen);
    h[hlen] = 0;
    char *p = strstr(h, from);
    REQUIRE(p, "header lacks \"%s\"", from);
    size_t fl = strlen(from), tl = strlen(to), nh = hlen - fl + tl;
    unsigned char *o = malloc(8 + nh + (n - 8 - hlen));
    uint64_t nh64 = nh;
    memcpy(o, &nh64, 8);
    memcpy(o + 8, h, (size_t)(p - h));
    memcpy(o + 8 + (p - h), to, tl);
    memcpy(o + 8 + (p - h) + tl, p + fl, hlen - (size_t)(p - h) - fl);
    memcpy(o + 8 + nh, file + 8 + hlen, n - 8 - hlen);
    *out_n = 8 + nh + (n - 8 - hlen);
    free(h);
    return o;
}

/* Recomputes the crc32c in a (valid-framed) file's header after the data was edited. */
static unsigned char *fix_crc(const unsigned char *file, size_t n, size_t *out_n) {
    uint64_t hlen;
    memcpy(&hlen, file, 8);
    char *h = malloc(hlen + 1);
    memcpy(h, file + 8, hlen);
    h[hlen] = 0;
    char *p = strstr(h, "\"crc32c\":\"");
    REQUIRE(p, "no crc32c");
    char old[32], now[32];
    snprintf(old, sizeof old, "\"crc32c\":\"%.8s\"", p + 10);
    snprintf(now, sizeof now, "\"crc32c\":\"%08x\"", crc32c(0, file + 8 + hlen, n - 8 - hlen));
    free(h);
    return rewrite_header(file, n, old, now, out_n);
}

static void expect_reject(const char *path, const void *bytes, size_t n, const char *want, const char *what) {
    spit(path, bytes, n);
    model *m = NULL;
    char err[MODEL_ERR_LEN] = "";
    int rc = model_load(&m, path, err, sizeof err);
    CHECK(rc == -1 && m == NULL, "%s: accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, want);
    fprintf(stderr, "  rejects %-28s %s\n", what, err);
    model_free(m);
}

static void test_round_trip_and_rejections(void) {
    model *m = fixture_model(MODEL_CELL_LSTM, 6, 3, 5, 4, 7, 3, 11, 4, 42);
    char err[MODEL_ERR_LEN], path[512], bad[512];
    REQUIRE(model_set_meta(m, "{\"trained_on\":\"ml-100k\",\"loss\":0.25,\"tags\":[\"a\",\"\\\"q\\\"\"]}", err, sizeof err) == 0, "%s", err);
    fixture_tmp_path(path, sizeof path, "file");
    fixture_tmp_path(bad, sizeof bad, "bad");
    REQUIRE(model_save(m, path, err, sizeof err) == 0, "save: %s", err);
    model *l = NULL;
    REQUIRE(model_load(&l, path, err, sizeof err) == 0, "load: %s", err);
    same_model(m, l, "round trip");
    /* Saving the loaded model reproduces the file byte for byte. */
    char path2[600];
    snprintf(path2, sizeof path2, "%s.2", path);
    REQUIRE(model_save(l, path2, err, sizeof err) == 0, "save 2: %s", err);
    size_t n, n2;
    unsigned char *f = slurp(path, &n), *f2 = slurp(path2, &n2);
    CHECK(n == n2 && memcmp(f, f2, n) == 0, "save(load(save(m))) is not byte-identical");
    uint64_t hlen;
    memcpy(&hlen, f, 8);
    CHECK((8 + hlen) % 8 == 0 && f[8] == '{', "data section not aligned or header not an object");
    free(f2);
    unlink(path2);
    /* A model without metadata round-trips too. */
    REQUIRE(model_set_meta(l, NULL, err, sizeof err) == 0, "%s", err);
    REQUIRE(model_save(l, path2, err, sizeof err) == 0, "%s", err);
    model *l2 = NULL;
    REQUIRE(model_load(&l2, path2, err, sizeof err) == 0, "%s", err);
    same_model(l, l2, "round trip without metadata");
    unlink(path2);
    model_free(l2);

    size_t dlen = n - 8 - hlen, bn;
    unsigned char *b = malloc(n + 64);
    expect_reject(bad, f, 0, "truncated", "empty file");
    expect_reject(bad, f, 5, "truncated", "5-byte file");
    memcpy(b, f, n);
    b[8] = 'X';
    expect_reject(bad, b, n, "bad magic", "bad magic");
    memcpy(b, f, n);
    uint64_t big = n;
    memcpy(b, &big, 8);
    expect_reject(bad, b, n, "runs past the end", "header length beyond file");
    expect_reject(bad, f, n - 10, "out of range", "truncated data");
    expect_reject(bad, f, 8 + hlen / 2, "runs past the end", "truncated header");
    memcpy(b, f, n);
    memset(b + n, 0, 8);
    expect_reject(bad, b, n + 8, "trailing bytes", "trailing bytes");
    memcpy(b, f, n);
    b[8 + hlen + 4 * (m->t[T_W_HH].data - m->params) + 5] ^= 0x01; /* one byte of rnn.w_hh */
    expect_reject(bad, b, n, "checksum mismatch", "one flipped tensor byte");

    /* Header edits. */
    char from[160], to[160];
    unsigned char *e;
    snprintf(from, sizeof from, "\"rnn.w_ih\":{\"dtype\":\"F32\",\"shape\":[%d,%d]", m->t[T_W_IH].shape[0], m->t[T_W_IH].shape[1]);
    snprintf(to, sizeof to, "\"rnn.w_ih\":{\"dtype\":\"F32\",\"shape\":[%d,%d]", m->t[T_W_IH].shape[1], m->t[T_W_IH].shape[0]);
    e = rewrite_header(f, n, from, to, &bn);
    expect_reject(bad, e, bn, "does not match the config", "tensor shape vs config");
    free(e);
    e = rewrite_header(f, n, "\"hidden\":\"5\"", "\"hidden\":\"6\"", &bn);
    expect_reject(bad, e, bn, "does not match the config", "config vs tensor shapes");
    free(e);
    e = rewrite_header(f, n, "\"rnn.b_ih\":{\"dtype\":\"F32\"", "\"rnn.b_ih\":{\"dtype\":\"Q7\"", &bn);
    expect_reject(bad, e, bn, "unknown dtype \"Q7\"", "unknown dtype");
    free(e);
    e = rewrite_header(f, n, "\"rnn.b_ih\":{\"dtype\":\"F32\"", "\"rnn.b_ih\":{\"dtype\":\"F16\"", &bn);
    expect_reject(bad, e, bn, "dtype F16", "wrong dtype");
    free(e);
    size_t ob = 4 * (size_t)(m->t[T_OUT_B].data - m->params), oe = ob + 4 * m->t[T_OUT_B].numel;
    snprintf(from, sizeof from, "\"data_offsets\":[%zu,%zu]", ob, oe);
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", ob - 4, oe - 4);
    e = rewrite_header(f, n, from, to, &bn);
    expect_reject(bad, e, bn, "overlap", "overlapping data_offsets");
    free(e);
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", ob + dlen, oe + dlen);
    e = rewrite_header(f, n, from, to, &bn);
    expect_reject(bad, e, bn, "out of range", "data_offsets past the data");
    free(e);
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", oe, ob);
    e = rewrite_header(f, n, from, to, &bn);
    expect_reject(bad, e, bn, "out of range", "data_offsets reversed");
    free(e);
    snprintf(to, sizeof to, "\"data_offsets\":[%zu,%zu]", ob, oe - 4);
    e = rewrite_header(f, n, from, to, &bn);
    expect_reject(bad, e, bn, "its shape needs", "data_offsets size");
    free(e);
    e = rewrite_header(f, n, "\"out.b\":", "\"out.bias\":", &bn);
    expect_reject(bad, e, bn, "unexpected tensor \"out.bias\"", "renamed tensor");
    free(e);
    e = rewrite_header(f, n, "\"ievo-model\"", "\"xevo-model\"", &bn);
    expect_reject(bad, e, bn, "bad format", "foreign format");
    free(e);
    e = rewrite_header(f, n, "\"format_version\":\"1\"", "\"format_version\":\"9\"", &bn);
    expect_reject(bad, e, bn, "unsupported format_version", "future version");
    free(e);
    e = rewrite_header(f, n, "{\"__metadata__\"", "[{\"__metadata__\"", &bn);
    expect_reject(bad, e, bn, "bad magic", "header not an object");
    free(e);
    e = rewrite_header(f, n, "\"__metadata__\":{", "\"__metadata__\":{\"x\":1,", &bn);
    expect_reject(bad, e, bn, "not a string", "non-string metadata");
    free(e);
    e = rewrite_header(f, n, "\"__metadata__\":{", "\"out.b\":{},\"__metadata__\":{", &bn);
    expect_reject(bad, e, bn, "duplicate object key", "a tensor named twice");
    free(e);
    e = rewrite_header(f, n, "\"window\":\"3\"", "\"window\":\"3x\"", &bn);
    expect_reject(bad, e, bn, "window must be an integer", "malformed config value");
    free(e);
    e = rewrite_header(f, n, "}}", "}", &bn);
    expect_reject(bad, e, bn, "not valid JSON", "malformed JSON");
    free(e);

    /* Content edits with a recomputed checksum: still caught. */
    memcpy(b, f, n);
    b[8 + hlen + 4 * (m->t[T_OUT_W].data - m->params) + 2] ^= 0x40;
    e = fix_crc(b, n, &bn);
    expect_reject(bad, e, bn, "identity mismatch", "edited parameter");
    free(e);
    memcpy(b, f, n);
    float nan = NAN;
    memcpy(b + 8 + hlen + 4 * (m->t[T_B_Q].data - m->params), &nan, 4);
    e = fix_crc(b, n, &bn);
    expect_reject(bad, e, bn, "not finite", "NaN parameter");
    free(e);
    memcpy(b, f, n);
    memcpy(b + n - 2, "a1", 2); /* the last action id becomes a duplicate of the first ("a1") */
    e = fix_crc(b, n, &bn);
    expect_reject(bad, e, bn, "appears twice", "duplicate vocabulary id");
    free(e);

    CHECK(model_load(&l2, "/nonexistent/dir/x.safetensors", err, sizeof err) == -1 && strstr(err, "cannot open"),
          "missing file: %s", err);
    CHECK(model_save(m, "/nonexistent/dir/x.safetensors", err, sizeof err) == -1 && strstr(err, "cannot create"),
          "unwritable path: %s", err);
    unlink(path);
    unlink(bad);
    free(b);
    free(f);
    model_free(l);
    model_free(m);
}

static void test_init(void) {
    model *a = fixture_model(MODEL_CELL_GRU, 8, 4, 6, 5, 3, 4, 9, 2, 7);
    model *b = fixture_model(MODEL_CELL_GRU, 8, 4, 6, 5, 3, 4, 9, 2, 7);
    model *c = fixture_model(MODEL_CELL_GRU, 8, 4, 6, 5, 3, 4, 9, 2, 8);
    CHECK(memcmp(a->params, b->params, a->n_params * 4) == 0 && strcmp(a->model_id, b->model_id) == 0,
          "same seed, different model");
    CHECK(memcmp(a->params, c->params, a->n_params * 4) != 0 && strcmp(a->model_id, c->model_id) != 0,
          "different seeds, same model");
    CHECK(strncmp(a->model_id, "fixture-", 8) == 0 && strlen(a->model_id) == 8 + 12, "model_id \"%s\"", a->model_id);
    /* Parameter count and ranges: PyTorch-style bounds, N(0, 0.1) embeddings. */
    int G = 3, H = 6, I = 8 + 4 + 3, K = 5, D = 3;
    size_t want = 10 * 8 + 3 * 4 + (size_t)G * H * I + (size_t)G * H * H + 2 * G * H + K * H + K + 2 * (K * I + K) +
                  D * (H + K) + D;
    CHECK(a->n_params == want, "n_params %zu, want %zu", a->n_params, want);
    double bound[MODEL_N_TENSORS] = {
        [T_W_IH] = 1 / sqrt(H), [T_W_HH] = 1 / sqrt(H), [T_B_IH] = 1 / sqrt(H), [T_B_HH] = 1 / sqrt(H),
        [T_W_Q] = 1 / sqrt(H),  [T_B_Q] = 1 / sqrt(H),  [T_W_K] = 1 / sqrt(I),  [T_B_K] = 1 / sqrt(I),
        [T_W_V] = 1 / sqrt(I),  [T_B_V] = 1 / sqrt(I),  [T_OUT_W] = 1 / sqrt(H + K), [T_OUT_B] = 1 / sqrt(H + K)};
    for (int t = 2; t < MODEL_N_TENSORS; t++) {
        if (!a->t[t].numel) continue;
        float mx = 0;
        for (size_t i = 0; i < a->t[t].numel; i++) mx = fabsf(a->t[t].data[i]) > mx ? fabsf(a->t[t].data[i]) : mx;
        CHECK(mx <= bound[t] && mx > 0.3 * bound[t], "tensor %s: max |w| %g, bound %g", a->t[t].name, mx, bound[t]);
    }
    double s = 0, s2 = 0;
    size_t ne = a->t[T_ITEM_EMB].numel;
    for (size_t i = 0; i < ne; i++) s += a->t[T_ITEM_EMB].data[i], s2 += a->t[T_ITEM_EMB].data[i] * a->t[T_ITEM_EMB].data[i];
    double sd = sqrt(s2 / ne - (s / ne) * (s / ne));
    CHECK(sd > 0.07 && sd < 0.13, "embedding std %g, want about 0.1", sd);
    model_free(a);
    model_free(b);
    model_free(c);

    model_config cfg;
    model_config_default(&cfg);
    model *m = NULL;
    char err[MODEL_ERR_LEN];
    const char *dup[] = {"x", "y", "x"}, *nl[] = {"a\nb"}, *empty[] = {""}, *oov[] = {"<oov>"}, *ok[] = {"a"};
    CHECK(model_init_random(&m, &cfg, "t", dup, 3, ok, 1, 1, err, sizeof err) == -1 && strstr(err, "appears twice"), "%s", err);
    CHECK(model_init_random(&m, &cfg, "t", nl, 1, ok, 1, 1, err, sizeof err) == -1 && strstr(err, "newline"), "%s", err);
    CHECK(model_init_random(&m, &cfg, "t", empty, 1, ok, 1, 1, err, sizeof err) == -1 && strstr(err, "empty"), "%s", err);
    CHECK(model_init_random(&m, &cfg, "t", ok, 1, oov, 1, 1, err, sizeof err) == -1 && strstr(err, "reserved"), "%s", err);
    CHECK(model_init_random(&m, &cfg, "bad name", ok, 1, ok, 1, 1, err, sizeof err) == -1 && strstr(err, "character"), "%s", err);
    CHECK(model_init_random(&m, &cfg, "", ok, 1, ok, 1, 1, err, sizeof err) == -1, "empty name accepted");
    cfg.hidden = 0;
    CHECK(model_init_random(&m, &cfg, "t", ok, 1, ok, 1, 1, err, sizeof err) == -1 && strstr(err, "hidden"), "%s", err);
    CHECK(m == NULL, "failed init left a model");
    /* A model with no ids at all: only the OOV rows. */
    model_config_default(&cfg);
    REQUIRE(model_init_random(&m, &cfg, "empty", NULL, 0, NULL, 0, 1, err, sizeof err) == 0, "%s", err);
    CHECK(m->cfg.n_items == 1 && m->cfg.n_actions == 1, "OOV-only vocab sizes");
    char path[512];
    fixture_tmp_path(path, sizeof path, "oovonly");
    model *l = NULL;
    REQUIRE(model_save(m, path, err, sizeof err) == 0 && model_load(&l, path, err, sizeof err) == 0, "%s", err);
    same_model(m, l, "OOV-only round trip");
    unlink(path);
    model_free(l);
    model_free(m);
}

static void test_vocab_and_meta(void) {
    model *m = fixture_model(MODEL_CELL_LSTM, 4, 2, 3, 3, 3, 2, 1000, 3, 1);
    CHECK(model_item_index(m, "i1", 2) == 1 && model_item_index(m, "i1000", 5) == 1000, "known items");
    CHECK(model_item_index(m, "i1001", 5) == 0 && model_item_index(m, "", 0) == 0 && model_item_index(m, "<oov>", 5) == 0,
          "unknown items are not OOV");
    CHECK(model_item_index(m, "i12345", 3) == 12, "lookup must use the length, not the NUL");
    CHECK(model_action_index(m, "a3", 2) == 3 && model_action_index(m, "a4", 2) == 0, "actions");
    CHECK(strcmp(model_item_id(m, 0), "<oov>") == 0 && strcmp(model_item_id(m, 17), "i17") == 0, "ids by index");
    CHECK(model_item_id(m, -1) == NULL && model_item_id(m, 1001) == NULL && model_action_id(m, 4) == NULL, "out of range id");
    for (int i = 0; i <= 1000; i++) {
        const char *id = model_item_id(m, i);
        CHECK(model_item_index(m, id, strlen(id)) == i, "index(id(%d))", i);
    }
    char err[MODEL_ERR_LEN];
    CHECK(model_set_meta(m, "[1,2]", err, sizeof err) == -1 && strstr(err, "object"), "array metadata: %s", err);
    CHECK(model_set_meta(m, "{\"a\":", err, sizeof err) == -1 && strstr(err, "json"), "broken metadata: %s", err);
    CHECK(model_set_meta(m, "{\"a\":1}", err, sizeof err) == 0 && strcmp(m->meta_json, "{\"a\":1}") == 0, "meta");
    uint64_t fp = m->fingerprint;
    CHECK(model_compute_fingerprint(m) == fp, "metadata must not change the fingerprint");
    m->params[3] += 1.0f;
    CHECK(model_compute_fingerprint(m) != fp, "fingerprint ignores a parameter");
    model_free(m);
}

static void test_config(void) {
    model_config c;
    char err[MODEL_ERR_LEN];
    model_config_default(&c);
    CHECK(c.cell == MODEL_CELL_LSTM && c.item_dim == 64 && c.action_dim == 8 && c.hidden == 64 && c.attn_dim == 64 &&
          c.out_dim == 64 && c.window == 16, "defaults");
    CHECK(model_config_set(&c, "cell", "gru", err, sizeof err) == 0 && c.cell == MODEL_CELL_GRU, "cell gru");
    CHECK(model_config_set(&c, "cell", "rnn", err, sizeof err) == -1 && strstr(err, "lstm"), "cell rnn: %s", err);
    CHECK(model_config_set(&c, "hidden", "128", err, sizeof err) == 0 && c.hidden == 128, "hidden");
    CHECK(model_config_set(&c, "hidden", "12a", err, sizeof err) == -1, "12a accepted");
    CHECK(model_config_set(&c, "hidden", "", err, sizeof err) == -1, "empty accepted");
    CHECK(model_config_set(&c, "hidden", "99999999999999", err, sizeof err) == -1, "overflow accepted");
    CHECK(model_config_set(&c, "depth", "2", err, sizeof err) == -1 && strstr(err, "unknown key"), "unknown key: %s", err);
    CHECK(model_config_check(&c, err, sizeof err) == 0, "valid config rejected: %s", err);
    c.window = 1025;
    CHECK(model_config_check(&c, err, sizeof err) == -1 && strstr(err, "window"), "window 1025: %s", err);
    c.window = 1;
    c.item_dim = 4097;
    CHECK(model_config_check(&c, err, sizeof err) == -1 && strstr(err, "item_dim"), "item_dim 4097: %s", err);
}

/* The family: the config and the file say which architecture a model holds. A file of the
 * LSTM/GRU family written before the LRU family existed is that family still: the same tensors,
 * the same bytes, the same identity (the fingerprints below were computed by the build before
 * the LRU family, commit 849c312). An LRU model round-trips with its own keys and tensors, and a
 * file that mixes the two is refused. */
static void test_family(void) {
    char err[MODEL_ERR_LEN], path[512], bad[512];
    model *a = fixture_model(MODEL_CELL_LSTM, 6, 3, 5, 4, 7, 3, 11, 4, 42);
    model *b = fixture_model_t(MODEL_CELL_GRU, 8, 2, 6, 5, 4, 3, 10, 2, 16, 31);
    REQUIRE(model_add_heads(a, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, 9, err, sizeof err) == 0, "%s", err);
    CHECK(a->fingerprint == 0x7f5c4772724810a8ull && a->n_params == 865, "lstm identity %016llx (%zu params)",
          (unsigned long long)a->fingerprint, a->n_params);
    CHECK(b->fingerprint == 0x68ae0a6d7d5f3273ull && b->n_params == 839, "gru text identity %016llx (%zu params)",
          (unsigned long long)b->fingerprint, b->n_params);
    model_free(a);
    model_free(b);

    model_config c;
    model_config_default(&c);
    CHECK(model_config_set(&c, "cell", "lru", err, sizeof err) == 0 && c.cell == MODEL_CELL_LRU, "cell lru");
    model_config r = model_config_resolve(&c);
    CHECK(r.layers == 2 && r.state_dim == 64 && r.ffn_dim == 128, "lru defaults %d %d %d", r.layers, r.state_dim, r.ffn_dim);
    char fam[32];
    model_family_name(&c, fam, sizeof fam);
    CHECK(strcmp(fam, "lru2+window") == 0, "family name %s", fam);
    CHECK(model_config_set(&c, "layers", "17", err, sizeof err) == 0 && model_config_check(&c, err, sizeof err) == -1 &&
              strstr(err, "layers"), "17 layers: %s", err);
    model_config_default(&c);
    c.cell = MODEL_CELL_GRU, c.layers = 2;
    CHECK(model_config_check(&c, err, sizeof err) == -1 && strstr(err, "one layer"), "a 2-layer gru: %s", err);
    c.layers = 0, c.ffn_dim = 8;
    CHECK(model_config_check(&c, err, sizeof err) == -1 && strstr(err, "ffn_dim"), "a gru with ffn_dim: %s", err);

    model *m = fixture_lru_model(6, 3, 5, 4, 9, 3, 4, 7, 3, 11, 4, 0, 42);
    CHECK(!m->t[T_W_IH].numel && m->t[T_LRU_BW].numel == 2 * 3 * 4 * 5 && m->t[T_LRU_W1].numel == 3 * 9 * 5 &&
              m->t[T_W_Q].numel == 4 * 5, "lru tensors");
    const float *lg = m->t[T_LRU_LOG].data; /* nu, theta, gamma of layer 0: |lambda| in [0.8, 0.99] */
    for (int k = 0; k < 4; k++) {
        double mod = exp(-exp(lg[k])), gam = exp(lg[8 + k]);
        CHECK(mod >= 0.8 - 1e-6 && mod <= 0.99 + 1e-6 && fabs(gam * gam - (1 - mod * mod)) < 1e-5, "eigenvalue %d: %g %g", k,
              mod, gam);
    }
    fixture_tmp_path(path, sizeof path, "lru");
    fixture_tmp_path(bad, sizeof bad, "lru-bad");
    REQUIRE(model_save(m, path, err, sizeof err) == 0, "%s", err);
    model *l = NULL, *ignored = NULL;
    REQUIRE(model_load(&l, path, err, sizeof err) == 0, "%s", err);
    same_model(m, l, "lru round trip");
    CHECK(l->cfg.layers == 3 && l->cfg.state_dim == 4 && l->cfg.ffn_dim == 9, "lru config back");
    size_t n, n2;
    unsigned char *f = slurp(path, &n);
    unsigned char *g = rewrite_header(f, n, "\"layers\":\"3\"", "\"layerz\":\"3\"", &n2);
    spit(bad, g, n2);
    CHECK(model_load(&ignored, bad, err, sizeof err) == -1 && strstr(err, "\"layers\" is missing"), "lru without layers: %s", err);
    free(g);
    g = rewrite_header(f, n, "\"lru.in.w\":", "\"rnn.w_ih\":", &n2);
    spit(bad, g, n2);
    CHECK(model_load(&ignored, bad, err, sizeof err) == -1 && strstr(err, "unexpected tensor \"rnn.w_ih\""), "rnn in lru: %s", err);
    free(g);
    g = rewrite_header(f, n, "\"cell\":\"lru\"", "\"cell\":\"gru\"", &n2);
    spit(bad, g, n2);
    CHECK(model_load(&ignored, bad, err, sizeof err) == -1 && strstr(err, "unexpected for cell gru"), "gru with lru keys: %s", err);
    free(g);
    free(f);
    unlink(path);
    unlink(bad);
    model_free(l);
    model_free(m);
}

static void test_checksums(void) {
    CHECK(crc32c(0, "123456789", 9) == 0xE3069283u, "CRC-32C check value: %08x", crc32c(0, "123456789", 9));
    CHECK(crc32c(crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u, "CRC-32C chaining");
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 37 + 11);
    fp64_t a, b;
    fp64_init(&a, 5);
    fp64_update(&a, buf, 1000);
    fp64_init(&b, 5);
    for (size_t off = 0, k = 1; off < 1000; off += k, k = k % 13 + 1)
        fp64_update(&b, buf + off, off + k > 1000 ? 1000 - off : k);
    CHECK(fp64_final(&a) == fp64_final(&b), "fp64 depends on chunking");
    fp64_init(&b, 5);
    fp64_update(&b, buf, 999);
    CHECK(fp64_final(&a) != fp64_final(&b), "fp64 ignores the last byte");
}

int main(void) {
    test_checksums();
    test_config();
    test_family();
    test_vocab_and_meta();
    test_init();
    test_round_trip_and_rejections();
    return check_exit("test_model_file");
}
