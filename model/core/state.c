/* state: the per-user state blob (layout in model.h, version 2), read and written with memcpy so
 * that a blob may sit at any alignment in a RocksDB value buffer; the fp16 conversions the blob's
 * previous interest vector uses; the item key.
 *
 * Why fp16 for u_{t-1}: it is read for the drift only (1 - cos), where 2^-11 relative rounding
 * is far below what the drift is used for, and it is a fifth of the blob (D = 64: 256 -> 128
 * bytes). h and c stay float: they feed the recurrence, where rounding would compound.
 */
#include <math.h>

#include "hash.h"
#include "model_internal.h"

static uint32_t rd_u32(const void *p, size_t off) { uint32_t v; memcpy(&v, (const char *)p + off, 4); return v; }
static uint16_t rd_u16(const void *p, size_t off) { uint16_t v; memcpy(&v, (const char *)p + off, 2); return v; }
static int64_t rd_i64(const void *p, size_t off) { int64_t v; memcpy(&v, (const char *)p + off, 8); return v; }
static uint64_t rd_u64(const void *p, size_t off) { uint64_t v; memcpy(&v, (const char *)p + off, 8); return v; }

/* ---- IEEE binary16 ------------------------------------------------------------------------ */

uint16_t model_f16_from_f32(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);   /* NaN stays NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7BFFu);  /* rounds to >= 65520 (or inf): saturate at 65504 */
    if (a < 0x38800000u) {                                    /* below 2^-14: a subnormal half (or 0) */
        if (a < 0x33000000u) return sign;                     /* below 2^-25: rounds to 0 (2^-25 itself ties to 0) */
        uint32_t e = a >> 23, mant = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e;                            /* value = mant * 2^(e-150); half ulp 2^-24 */
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((a >> 13) - (112u << 10)), rem = a & 0x1FFFu; /* rebias 127 -> 15 */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;   /* carries into the exponent correctly */
    return (uint16_t)(sign | h);
}

float model_f32_from_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, b;
    if (e == 0) {
        if (!mant) b = sign;
        else { /* subnormal: mant * 2^-24, exact in float */
            float f = (float)mant * 5.9604644775390625e-8f;
            memcpy(&b, &f, 4);
            b |= sign;
        }
    } else if (e == 31) {
        b = sign | 0x7F800000u | (mant << 13);
    } else {
        b = sign | ((e + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* ---- the item key ------------------------------------------------------------------------- */

uint64_t model_item_key(const char *id, size_t len) {
    uint64_t h = hash_stable(HASH_FNV_BASIS, id, len); /* states store it: the same everywhere */
    return h ? h : 1;
}

/* ---- the blob ----------------------------------------------------------------------------- */

size_t model_state_size(const model *m) { return model_state_off_kv(m) + 4 * model_state_kv_floats(m); }

void model_state_init(const model *m, void *state) {
    memset(state, 0, model_state_size(m));
    uint32_t magic = MODEL_STATE_MAGIC;
    uint16_t version = MODEL_STATE_VERSION, cell = (uint16_t)m->cfg.cell;
    memcpy((char *)state + 0, &magic, 4);
    memcpy((char *)state + 4, &version, 2);
    memcpy((char *)state + 6, &cell, 2);
    memcpy((char *)state + 28, &m->fingerprint, 8);
}

int model_state_check(const model *m, const void *state, char *err, size_t errlen) {
    if (!state) return model_errf(err, errlen, "state: NULL blob");
    uint32_t magic = rd_u32(state, 0);
    if (magic != MODEL_STATE_MAGIC)
        return model_errf(err, errlen, "state: bad magic 0x%08x (expected 0x%08x \"IEVS\"): not an ievo state blob",
                          magic, MODEL_STATE_MAGIC);
    uint16_t version = rd_u16(state, 4), cell = rd_u16(state, 6);
    if (version != MODEL_STATE_VERSION)
        return model_errf(err, errlen, "state: version %u, this build reads version %d (start the state dir afresh or replay)",
                          version, MODEL_STATE_VERSION);
    if (cell != (uint16_t)m->cfg.cell)
        return model_errf(err, errlen, "state: cell %u, the model's is %d (%s)", cell, (int)m->cfg.cell,
                          model_cell_name(m->cfg.cell));
    uint64_t fp = rd_u64(state, 28);
    if (fp != m->fingerprint)
        return model_errf(err, errlen, "state: fingerprint %016llx belongs to another model (%s has %016llx)",
                          (unsigned long long)fp, m->model_id, (unsigned long long)m->fingerprint);
    return 0;
}

void model_state_read_hdr(const void *state, model_state_hdr *h) {
    h->events = rd_i64(state, 8);
    h->last_ts = rd_i64(state, 16);
    h->wlen = rd_u16(state, 24);
    h->head = rd_u16(state, 26);
}

void model_state_write_hdr(void *state, const model_state_hdr *h) {
    uint16_t wlen = (uint16_t)h->wlen, head = (uint16_t)h->head;
    memcpy((char *)state + 8, &h->events, 8);
    memcpy((char *)state + 16, &h->last_ts, 8);
    memcpy((char *)state + 24, &wlen, 2);
    memcpy((char *)state + 26, &head, 2);
}

void model_state_read_slot(const model *m, const void *state, int slot, model_state_slot *s) {
    const char *p = (const char *)state + model_state_off_win(m) + (size_t)slot * model_state_slot_size(m);
    uint16_t action;
    memcpy(&s->item, p, 4);
    memcpy(&action, p + 4, 2);
    s->action = action;
    s->f[2] = (p[6] & 1) ? 1.0f : 0.0f;
    memcpy(&s->f[0], p + 8, 4);
    memcpy(&s->f[1], p + 12, 4);
    s->key = 0;
    if (m->cfg.text_dim > 0) memcpy(&s->key, p + 16, 8);
}

void model_state_write_slot(const model *m, void *state, int slot, const model_state_slot *s) {
    char *p = (char *)state + model_state_off_win(m) + (size_t)slot * model_state_slot_size(m);
    uint16_t action = (uint16_t)s->action;
    memcpy(p, &s->item, 4);
    memcpy(p + 4, &action, 2);
    p[6] = s->f[2] != 0.0f ? 1 : 0;
    p[7] = 0;
    memcpy(p + 8, &s->f[0], 4);
    memcpy(p + 12, &s->f[1], 4);
    if (m->cfg.text_dim > 0) memcpy(p + 16, &s->key, 8);
}

/* The blob's u in bulk. On x86-64 with F16C, eight at a time in hardware: vcvtph2ps is exact
 * like model_f32_from_f16, and vcvtps2ph with round-to-nearest-even gives model_f16_from_f32's
 * bits once the input is clamped to +-65504 (our saturation); a block holding a NaN takes the
 * scalar path (the hardware would keep the payload). The unit test compares both paths bit for bit. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define STATE_F16C 1
/* CPUID leaf 1: AVX (ECX 28), F16C (ECX 29), and the OS saving the AVX state (OSXSAVE, ECX 27,
 * then XCR0 bits 1 and 2). Asked directly: clang 14's __builtin_cpu_supports knows no "f16c". */
static int have_f16c(void) {
    static int v = -1;   /* a benign race: every thread computes the same answer */
    if (v < 0) {
        unsigned a, b, c, d;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1) && (c >> 28 & 1) && (c >> 29 & 1);
        if (ok) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            ok = (lo & 6) == 6;
        }
        v = ok;
    }
    return v;
}
__attribute__((target("avx,f16c"))) static int read_u_f16c(const char *p, float *u, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(u + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * (size_t)i))));
    return i;
}
__attribute__((target("avx,f16c"))) static int write_u_f16c(const float *u, char *p, int n) {
    const __m256 hi = _mm256_set1_ps(65504.0f), lo = _mm256_set1_ps(-65504.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(u + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q))) break;   /* a NaN: scalar from here */
        x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
        _mm_storeu_si128((__m128i *)(void *)(p + 2 * (size_t)i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    }
    return i;
}
#endif

void model_state_read_u(const model *m, const void *state, float *u) {
    const char *p = (const char *)state + model_state_off_u(m);
    int i = 0;
#ifdef STATE_F16C
    if (have_f16c()) i = read_u_f16c(p, u, m->cfg.out_dim);
#endif
    for (; i < m->cfg.out_dim; i++) u[i] = model_f32_from_f16(rd_u16(p, 2 * (size_t)i));
}

void model_state_write_u(const model *m, void *state, const float *u) {
    char *p = (char *)state + model_state_off_u(m);
    int i = 0;
#ifdef STATE_F16C
    if (have_f16c()) i = write_u_f16c(u, p, m->cfg.out_dim);
#endif
    for (; i < m->cfg.out_dim; i++) {
        uint16_t h = model_f16_from_f32(u[i]);
        memcpy(p + 2 * (size_t)i, &h, 2);
    }
}

int model_state_validate(const model *m, const void *state, char *err, size_t errlen) {
    if (model_state_check(m, state, err, errlen)) return -1;
    model_state_hdr h;
    model_state_read_hdr(state, &h);
    int W = m->cfg.window;
    if (h.events < 0 || h.events == INT64_MAX || h.wlen > W || (int64_t)h.wlen > h.events || h.head >= W)
        return model_errf(err, errlen, "state: corrupt counters (events %lld, window length %d, head %d, W %d)",
                          (long long)h.events, h.wlen, h.head, W);
    if (m->t[T_VALUE_USER].numel) {
        float s, c;
        model_state_read_vu(m, state, &s, &c);
        if (!isfinite(s) || !(c >= 0 && c <= (float)h.events))
            return model_errf(err, errlen, "state: corrupt user bias sums (s %g, c %g after %lld events)", s, c,
                              (long long)h.events);
    }
    return 0;
}

/* The ranges a step can produce, which bound what a stored state may hold: h = o * tanh(c) (LSTM)
 * or a convex mix of tanh outputs and h (GRU) stays in [-1, 1]; an LSTM's |c| grows by less than
 * 1 an event; f[0] = log1p(gap in s) / 10 < 4 for any two int64 times; |f[1]| = log1p(|value|)
 * < 89 for any float. h and c get a factor 2 for float rounding over long histories. A finite
 * value outside them is as foreign as a NaN, and could overflow the attention's dot products
 * into one. */
#define STATE_H_MAX 2.0f
#define STATE_F0_MAX 4.0f
#define STATE_F1_MAX 89.0f

int model_state_validate_stored(const model *m, const void *state, char *err, size_t errlen) {
    if (model_state_validate(m, state, err, errlen)) return -1;
    model_state_hdr h;
    model_state_read_hdr(state, &h);
    if (h.events > MODEL_STATE_EVENTS_MAX)
        return model_errf(err, errlen, "state: %lld events, more than any user has", (long long)h.events);
    int W = m->cfg.window;
    for (int j = 0; j < h.wlen; j++) {
        model_state_slot s;
        int slot = ((h.head - h.wlen + j) % W + W) % W;
        model_state_read_slot(m, state, slot, &s);
        if (s.item < 0 || s.item >= m->cfg.n_items || s.action < 0 || s.action >= m->cfg.n_actions ||
            !(s.f[0] >= 0 && s.f[0] <= STATE_F0_MAX) || !(fabsf(s.f[1]) <= STATE_F1_MAX))
            return model_errf(err, errlen, "state: window slot %d holds item %d / action %d or a feature out of range",
                              slot, s.item, s.action);
    }
    const char *hc = (const char *)state + model_state_off_h(m);
    int H = m->cfg.hidden;
    float c_max = 2.0f * ((float)h.events + 1.0f);
    for (int i = 0; i < H * (m->cfg.cell == MODEL_CELL_LSTM ? 2 : 1); i++) {
        float x;
        memcpy(&x, hc + 4 * (size_t)i, 4);
        if (!(fabsf(x) <= (i < H ? STATE_H_MAX : c_max)))
            return model_errf(err, errlen, "state: %s[%d] = %g is outside what a step produces", i < H ? "h" : "c",
                              i < H ? i : i - H, (double)x);
    }
    for (int i = 0; i < m->cfg.out_dim; i++)   /* fp16: exponent all ones is Inf or NaN */
        if ((rd_u16(state, model_state_off_u(m) + 2 * (size_t)i) & 0x7C00u) == 0x7C00u)
            return model_errf(err, errlen, "state: previous vector value %d is not finite", i);
    return 0;
}

int64_t model_state_events(const void *state) { return rd_i64(state, 8); }
int64_t model_state_last_ts(const void *state) { return rd_i64(state, 16); }

void model_state_vector(const model *m, const void *state, float *out) { model_state_read_u(m, state, out); }

void model_state_read_vu(const model *m, const void *state, float *s, float *c) {
    memcpy(s, (const char *)state + model_state_off_vu(m), 4);
    memcpy(c, (const char *)state + model_state_off_vu(m) + 4, 4);
}

void model_state_write_vu(const model *m, void *state, float s, float c) {
    memcpy((char *)state + model_state_off_vu(m), &s, 4);
    memcpy((char *)state + model_state_off_vu(m) + 4, &c, 4);
}

float model_state_user_bias(const model *m, const void *state) {
    if (!m->t[T_VALUE_USER].numel) return 0.0f;
    float s, c;
    model_state_read_vu(m, state, &s, &c);
    return model_value_user_bias(m, s, c);
}
