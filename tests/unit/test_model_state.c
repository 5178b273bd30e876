/* test_model_state: the state blob byte for byte as model.h lays it out, its checks and accessors. */
#include "model_fixture.h"
#include "model_internal.h"

static void test_layout(model_cell cell) {
    int H = 5, D = 4, W = 3;
    model *m = fixture_model(cell, 6, 2, H, 3, D, W, 8, 2, 9);
    size_t want = 40 + 4 * (size_t)(H * (cell == MODEL_CELL_LSTM ? 2 : 1) + D) + 20 * (size_t)W;
    CHECK(model_state_size(m) == want, "state size %zu, want %zu", model_state_size(m), want);
    unsigned char st[512];
    memset(st, 0xA5, sizeof st);
    model_state_init(m, st);
    static const unsigned char magic[8] = {'I', 'E', 'V', 'S', 1, 0, 0, 0};
    unsigned char want_hdr[40] = {0};
    memcpy(want_hdr, magic, 8);
    want_hdr[6] = (unsigned char)cell;
    for (int i = 0; i < 8; i++) want_hdr[32 + i] = (unsigned char)(m->fingerprint >> (8 * i)); /* little-endian */
    CHECK(memcmp(st, want_hdr, 40) == 0, "header bytes of the empty state");
    int zero = 1;
    for (size_t i = 40; i < want; i++) zero &= st[i] == 0;
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
    size_t off_u = 40 + 4 * (size_t)H * (cell == MODEL_CELL_LSTM ? 2 : 1);
    CHECK((const unsigned char *)model_state_vector(m, raw) == raw + off_u, "model_state_vector offset");

    /* After steps: the blob holds h (c) u where model.h says, and u is the step's output. */
    model_runner *r = NULL;
    REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "%s", err);
    void *p = st;
    float u[4], drift;
    for (int k = 0; k < 4; k++) {
        model_event e = {.item = k, .action = 1, .ts = 5000 + k, .value = 1, .has_value = 1};
        REQUIRE(model_step(r, 1, &p, &e, u, &drift, err, sizeof err) == 0, "%s", err);
    }
    CHECK(memcmp(st + off_u, u, sizeof u) == 0, "u not at offset %zu", off_u);
    CHECK(model_state_events(st) == 4 && model_state_last_ts(st) == 5003, "counters after 4 events");
    int32_t wlen, head;
    memcpy(&wlen, st + 24, 4);
    memcpy(&head, st + 28, 4);
    CHECK(wlen == 3 && head == 1, "window length %d head %d after 4 events with W=3", wlen, head);
    int32_t item0;
    memcpy(&item0, st + off_u + 4 * D, 4); /* slot 0 was overwritten by event 3 */
    CHECK(item0 == 3, "slot 0 item %d", item0);
    CHECK(model_state_check(m, st, err, sizeof err) == 0, "stepped state rejected: %s", err);

    /* Rejections. */
    unsigned char bad[512];
    memcpy(bad, st, sizeof bad);
    bad[0] ^= 1;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "magic"), "bad magic: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[4] = 2;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "version"), "bad version: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[6] ^= 1;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "cell"), "bad cell: %s", err);
    memcpy(bad, st, sizeof bad);
    bad[39] ^= 0x80;
    CHECK(model_state_check(m, bad, err, sizeof err) == -1 && strstr(err, "fingerprint"), "bad fingerprint: %s", err);
    memset(bad, 0, sizeof bad);
    CHECK(model_state_check(m, bad, err, sizeof err) == -1, "a zeroed blob is valid");
    model *other = fixture_model(cell, 6, 2, H, 3, D, W, 8, 2, 10); /* same shape, other weights */
    CHECK(model_state_check(other, st, err, sizeof err) == -1 && strstr(err, "another model"),
          "another model's state accepted: %s", err);
    model_free(other);
    model_runner_free(r);
    model_free(m);
}

int main(void) {
    test_layout(MODEL_CELL_LSTM);
    test_layout(MODEL_CELL_GRU);
    return check_exit("test_model_state");
}
