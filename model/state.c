/* state: the per-user state blob (layout in model.h), read and written with memcpy so that a
 * blob may sit at any alignment in a RocksDB value buffer. model_state_vector is the exception:
 * it returns a pointer into the blob, so that one needs a 4-byte aligned blob.
 */
#include <math.h>

#include "model_internal.h"

static uint32_t rd_u32(const void *p, size_t off) { uint32_t v; memcpy(&v, (const char *)p + off, 4); return v; }
static uint16_t rd_u16(const void *p, size_t off) { uint16_t v; memcpy(&v, (const char *)p + off, 2); return v; }
static int64_t rd_i64(const void *p, size_t off) { int64_t v; memcpy(&v, (const char *)p + off, 8); return v; }
static uint64_t rd_u64(const void *p, size_t off) { uint64_t v; memcpy(&v, (const char *)p + off, 8); return v; }
static int32_t rd_i32(const void *p, size_t off) { int32_t v; memcpy(&v, (const char *)p + off, 4); return v; }

size_t model_state_size(const model *m) {
    return model_state_off_win(m) + (size_t)MODEL_STATE_SLOT * (size_t)m->cfg.window;
}

void model_state_init(const model *m, void *state) {
    memset(state, 0, model_state_size(m));
    uint32_t magic = MODEL_STATE_MAGIC;
    uint16_t version = MODEL_STATE_VERSION, cell = (uint16_t)m->cfg.cell;
    memcpy((char *)state + 0, &magic, 4);
    memcpy((char *)state + 4, &version, 2);
    memcpy((char *)state + 6, &cell, 2);
    memcpy((char *)state + 32, &m->fingerprint, 8);
}

int model_state_check(const model *m, const void *state, char *err, size_t errlen) {
    if (!state) return model_errf(err, errlen, "state: NULL blob");
    uint32_t magic = rd_u32(state, 0);
    if (magic != MODEL_STATE_MAGIC)
        return model_errf(err, errlen, "state: bad magic 0x%08x (expected 0x%08x \"IEVS\"): not an ievo state blob",
                          magic, MODEL_STATE_MAGIC);
    uint16_t version = rd_u16(state, 4), cell = rd_u16(state, 6);
    if (version != MODEL_STATE_VERSION)
        return model_errf(err, errlen, "state: version %u, this build reads version %d", version, MODEL_STATE_VERSION);
    if (cell != (uint16_t)m->cfg.cell)
        return model_errf(err, errlen, "state: cell %u, the model's is %d (%s)", cell, (int)m->cfg.cell,
                          m->cfg.cell == MODEL_CELL_LSTM ? "lstm" : "gru");
    uint64_t fp = rd_u64(state, 32);
    if (fp != m->fingerprint)
        return model_errf(err, errlen, "state: fingerprint %016llx belongs to another model (%s has %016llx)",
                          (unsigned long long)fp, m->model_id, (unsigned long long)m->fingerprint);
    return 0;
}

void model_state_read_hdr(const void *state, model_state_hdr *h) {
    h->events = rd_i64(state, 8);
    h->last_ts = rd_i64(state, 16);
    h->wlen = rd_i32(state, 24);
    h->head = rd_i32(state, 28);
}

void model_state_write_hdr(void *state, const model_state_hdr *h) {
    memcpy((char *)state + 8, &h->events, 8);
    memcpy((char *)state + 16, &h->last_ts, 8);
    memcpy((char *)state + 24, &h->wlen, 4);
    memcpy((char *)state + 28, &h->head, 4);
}

void model_state_read_slot(const model *m, const void *state, int slot, model_state_slot *s) {
    const char *p = (const char *)state + model_state_off_win(m) + (size_t)slot * MODEL_STATE_SLOT;
    memcpy(&s->item, p, 4);
    memcpy(&s->action, p + 4, 4);
    memcpy(s->f, p + 8, 4 * MODEL_FEATURES);
}

void model_state_write_slot(const model *m, void *state, int slot, const model_state_slot *s) {
    char *p = (char *)state + model_state_off_win(m) + (size_t)slot * MODEL_STATE_SLOT;
    memcpy(p, &s->item, 4);
    memcpy(p + 4, &s->action, 4);
    memcpy(p + 8, s->f, 4 * MODEL_FEATURES);
}

int model_state_validate(const model *m, const void *state, char *err, size_t errlen) {
    if (model_state_check(m, state, err, errlen)) return -1;
    model_state_hdr h;
    model_state_read_hdr(state, &h);
    int W = m->cfg.window;
    if (h.events < 0 || h.wlen < 0 || h.wlen > W || (int64_t)h.wlen > h.events || h.head < 0 || h.head >= W)
        return model_errf(err, errlen, "state: corrupt counters (events %lld, window length %d, head %d, W %d)",
                          (long long)h.events, h.wlen, h.head, W);
    return 0;
}

int64_t model_state_events(const void *state) { return rd_i64(state, 8); }
int64_t model_state_last_ts(const void *state) { return rd_i64(state, 16); }

const float *model_state_vector(const model *m, const void *state) {
    return (const float *)(const void *)((const char *)state + model_state_off_u(m));
}
