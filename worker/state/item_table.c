/* item_table: item text vectors by item key, catalogues, and USE-lite encoding with a file cache.
 * See item_table.h. */
#include "item_table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "atomic_file.h"
#include "clock.h"
#include "codec.h" /* CODEC_MAX_ID_BYTES */
#include "event_source.h" /* the MovieLens reader */
#include "hash.h"
#include "json_text.h"
#include "model.h"
#include "use_encoder.h"
#include "utf8.h"

#define CHUNK 1024 /* vectors per chunk: chunks never move, so vector pointers stay valid */

typedef struct {
    uint64_t key, text_hash;
    char *id;
} entry;

struct item_table {
    int dim;
    entry *e;          /* insertion order */
    size_t n, cap;
    float **chunks;    /* vector i at chunks[i / CHUNK] + (i % CHUNK) * dim */
    size_t nchunks;
    int64_t *slot;     /* open addressing: key -> entry index, -1 empty */
    size_t slots;      /* power of two */
};

int item_table_new(item_table **out, int dim) {
    *out = NULL;
    item_table *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->dim = dim;
    t->slots = 1024;
    t->slot = malloc(t->slots * sizeof *t->slot);
    if (!t->slot) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < t->slots; i++) t->slot[i] = -1;
    *out = t;
    return 0;
}

void item_table_free(item_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->e[i].id);
    for (size_t i = 0; i < t->nchunks; i++) free(t->chunks[i]);
    free(t->chunks);
    free(t->e);
    free(t->slot);
    free(t);
}

size_t item_table_size(const item_table *t) { return t->n; }

static inline size_t hslot(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

static int64_t find(const item_table *t, uint64_t key) {
    size_t mask = t->slots - 1;
    for (size_t h = hslot(key, mask);; h = (h + 1) & mask) {
        int64_t i = t->slot[h];
        if (i < 0) return -1;
        if (t->e[i].key == key) return i;
    }
}

static float *vec_at(const item_table *t, size_t i) { return t->chunks[i / CHUNK] + (i % CHUNK) * (size_t)t->dim; }

static int grow(item_table *t) {
    if (t->n == t->cap) {
        size_t c = t->cap ? 2 * t->cap : 256;
        entry *e = realloc(t->e, c * sizeof *e);
        if (!e) return -1;
        t->e = e;
        t->cap = c;
    }
    if (t->n == t->nchunks * CHUNK) {
        float **ch = realloc(t->chunks, (t->nchunks + 1) * sizeof *ch);
        if (!ch) return -1;
        t->chunks = ch;
        if (!(ch[t->nchunks] = malloc((size_t)CHUNK * t->dim * sizeof(float)))) return -1;
        t->nchunks++;
    }
    if (2 * (t->n + 1) > t->slots) {
        size_t ns = t->slots * 2, mask = ns - 1;
        int64_t *sl = malloc(ns * sizeof *sl);
        if (!sl) return -1;
        for (size_t i = 0; i < ns; i++) sl[i] = -1;
        for (size_t i = 0; i < t->n; i++) {
            size_t h = hslot(t->e[i].key, mask);
            while (sl[h] >= 0) h = (h + 1) & mask;
            sl[h] = (int64_t)i;
        }
        free(t->slot);
        t->slot = sl;
        t->slots = ns;
    }
    return 0;
}

int item_table_put(item_table *t, const char *id, size_t id_len, uint64_t text_hash, const float *vec) {
    uint64_t key = model_item_key(id, id_len);
    int64_t i = find(t, key);
    if (i >= 0) {
        if (t->e[i].text_hash == text_hash) return 0;
        t->e[i].text_hash = text_hash;
        memcpy(vec_at(t, (size_t)i), vec, (size_t)t->dim * sizeof(float));
        return 1;
    }
    if (grow(t)) return -1;
    char *copy = malloc(id_len + 1);
    if (!copy) return -1;
    memcpy(copy, id, id_len);
    copy[id_len] = 0;
    size_t n = t->n++;
    t->e[n] = (entry){key, text_hash, copy};
    memcpy(vec_at(t, n), vec, (size_t)t->dim * sizeof(float));
    size_t mask = t->slots - 1, h = hslot(key, mask);
    while (t->slot[h] >= 0) h = (h + 1) & mask;
    t->slot[h] = (int64_t)n;
    return 1;
}

const float *item_table_get(const item_table *t, uint64_t key) {
    int64_t i = t ? find(t, key) : -1;
    return i < 0 ? NULL : vec_at(t, (size_t)i);
}

int item_table_text_hash(const item_table *t, uint64_t key, uint64_t *hash) {
    int64_t i = find(t, key);
    if (i < 0) return 0;
    *hash = t->e[i].text_hash;
    return 1;
}

const char *item_table_id(const item_table *t, uint64_t key) {
    int64_t i = find(t, key);
    return i < 0 ? NULL : t->e[i].id;
}

const float *item_table_lookup(void *ctx, uint64_t key) { return item_table_get(ctx, key); }

/* Whether every one of n floats is finite: a vector read back from a file or a store could hold
 * anything, and one NaN would spread through every score it touches. */
static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

int item_table_load_record(item_table *t, uint64_t key, uint64_t text_hash, const char *id, size_t id_len,
                           const void *vec, int dim, float *scratch, char *why, size_t whylen) {
    if (dim != t->dim) return snprintf(why, whylen, "a vector of %d floats, where the table's are %d", dim, t->dim), -1;
    if (id_len == 0 || id_len > CODEC_MAX_ID_BYTES || !utf8_valid(id, id_len))
        return snprintf(why, whylen, "an item id of %zu bytes that is not a UTF-8 id of 1 to %d bytes", id_len,
                        CODEC_MAX_ID_BYTES), -1;
    if (model_item_key(id, id_len) != key) return snprintf(why, whylen, "an id that is not its key's"), -1;
    memcpy(scratch, vec, (size_t)dim * sizeof(float));
    if (!all_finite(scratch, (size_t)dim)) return snprintf(why, whylen, "a vector that is not finite"), -1;
    if (item_table_put(t, id, id_len, text_hash, scratch) < 0) return snprintf(why, whylen, "out of memory"), -1;
    return 0;
}

typedef struct {
    item_table *t;
    float *buf;
    char why[160];
    uint64_t key;
} load_ctx;

static int load_one(void *ctx, uint64_t key, uint64_t text_hash, const char *id, size_t id_len, const void *vec,
                    int dim) {
    load_ctx *x = ctx;
    x->key = key;
    return item_table_load_record(x->t, key, text_hash, id, id_len, vec, dim, x->buf, x->why, sizeof x->why) ? 1 : 0;
}

int item_table_load_store(item_table *t, state_store *s, char *err, size_t errlen) {
    load_ctx x = {.t = t, .buf = malloc((size_t)t->dim * sizeof(float))};
    if (!x.buf) return snprintf(err, errlen, "out of memory"), -1;
    int rc = state_store_foreach_item(s, load_one, &x, err, errlen);
    free(x.buf);
    if (!rc && x.why[0]) rc = -1, snprintf(err, errlen, "stored item %016llx: %s", (unsigned long long)x.key, x.why);
    return rc;
}

/* ---- catalogues ------------------------------------------------------------------------------ */

void item_catalog_free(item_catalog *c) {
    for (size_t i = 0; i < c->n; i++) free(c->ids[i]), free(c->texts[i]);
    free(c->ids);
    free(c->texts);
    memset(c, 0, sizeof *c);
}

static int catalog_push(item_catalog *c, size_t *cap, const char *id, size_t idn, const char *text, size_t tn) {
    if (c->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 1024;
        char **a = realloc(c->ids, nc * sizeof *a);
        if (!a) return -1;
        c->ids = a;
        char **b = realloc(c->texts, nc * sizeof *b);
        if (!b) return -1;
        c->texts = b;
        *cap = nc;
    }
    char *i = malloc(idn + 1), *t = malloc(tn + 1);
    if (!i || !t) return free(i), free(t), -1;
    memcpy(i, id, idn), i[idn] = 0;
    memcpy(t, text, tn), t[tn] = 0;
    c->ids[c->n] = i, c->texts[c->n] = t;
    c->n++;
    return 0;
}

int item_catalog_movielens(const char *dir, item_catalog *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    movielens_items items;
    movielens_genres genres;
    if (movielens_genres_load(dir, &genres, err, errlen) || movielens_items_load(dir, &items, err, errlen)) return -1;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < items.n && !rc; i++) {
        const movielens_item *it = &items.items[i];
        char *text = NULL;
        if (!it->has_genres) rc = -1, snprintf(err, errlen, "%s/u.item: item %s has no genre flags", dir, it->id);
        else if (movielens_item_text(it, &genres, &text) ||
                 catalog_push(c, &cap, it->id, strlen(it->id), text, strlen(text)))
            rc = -1, snprintf(err, errlen, "out of memory");
        free(text);
    }
    movielens_items_free(&items);
    if (rc) item_catalog_free(c);
    return rc;
}

int item_catalog_jsonl(const char *path, item_catalog *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) return snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)), -1;
    char *line = NULL;
    size_t cap = 0, ccap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
        if (!n) continue;
        /* without JSON_ALLOW_NUL: an id or text with a NUL byte fails to parse */
        json_error_t jerr;
        json_t *v = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
        json_t *id = json_object_get(v, "item_id"), *text = json_object_get(v, "text");
        if (!json_is_string(id) || !json_string_length(id) || !json_is_string(text)) {
            char why[200] = "";
            char jt[JSON_ERROR_TEXT_LENGTH];
            if (!v) snprintf(why, sizeof why, ": json: %s at byte %d", json_error_text(&jerr, jt, sizeof jt), jerr.position);
            snprintf(err, errlen, "%s:%ld: expected {\"item_id\": non-empty string, \"text\": string}%s", path, lineno, why);
            rc = -1;
        } else if (catalog_push(c, &ccap, json_string_value(id), json_string_length(id), json_string_value(text),
                                json_string_length(text))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        json_decref(v);
    }
    free(line);
    if (f != stdin) fclose(f);
    if (rc) item_catalog_free(c);
    return rc;
}

/* ---- encoding ---------------------------------------------------------------------------------- */

void text_default_dirs(char *encoder_dir, size_t n1, char *cache_dir, size_t n2) {
    const char *base = getenv("IEVO_CACHE"), *home = getenv("HOME");
    char root[3072];
    if (base && *base) snprintf(root, sizeof root, "%s", base);
    else snprintf(root, sizeof root, "%s/.cache/ievo", home && *home ? home : "/tmp");
    if (encoder_dir) snprintf(encoder_dir, n1, "%s/use-lite", root);
    if (cache_dir) snprintf(cache_dir, n2, "%s/text-vectors", root);
}

/* The cache's directories are the user's own (0700), as XDG asks of ~/.cache. */
static int mkdirs(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

int text_encode_all(const char *encoder_dir, const char *cache_dir, const char *const *texts, size_t n, float *out,
                    text_encode_stats *st, char *err, size_t errlen) {
    text_encode_stats local = {0};
    if (!st) st = &local;
    st->texts += (long)n;
    if (n == 0) return 0;
    char path[4096] = "";
    int use_cache = cache_dir && *cache_dir && strcmp(cache_dir, "none");
    if (use_cache) {
        /* the cache file's name: hash_stable, as other processes must find the same file */
        uint64_t h = hash_stable(HASH_FNV_BASIS, USE_BLOB_SHA256, strlen(USE_BLOB_SHA256));
        for (size_t i = 0; i < n; i++) {
            uint64_t len = strlen(texts[i]);
            h = hash_stable(h, &len, sizeof len);
            h = hash_stable(h, texts[i], len);
        }
        snprintf(path, sizeof path, "%s/%016llx-%zu.f32", cache_dir, (unsigned long long)h, n);
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(out, sizeof(float), n * USE_DIM, f);
            int extra = fgetc(f) != EOF;
            fclose(f);
            if (got == n * USE_DIM && !extra && all_finite(out, n * USE_DIM)) {
                st->from_cache += (long)n;
                return 0;
            }
        }
    }
    double t0 = clock_mono_s();
    use_encoder *enc = NULL;
    if (use_encoder_open(&enc, encoder_dir, USE_BACKEND_ONEDNN, err, errlen)) return -1;
    st->load_s += clock_mono_s() - t0;
    int rc = 0, ntok[32];
    size_t lens[32];
    double t1 = clock_mono_s();
    for (size_t i = 0; i < n && !rc; i += 32) {
        int k = (int)(n - i < 32 ? n - i : 32);
        for (int j = 0; j < k; j++) lens[j] = strlen(texts[i + (size_t)j]);
        rc = use_encoder_encode(enc, texts + i, lens, k, out + i * USE_DIM, ntok, err, errlen);
        for (int j = 0; j < k && !rc; j++) st->tokens += ntok[j] < USE_MAX_TOKENS ? ntok[j] : USE_MAX_TOKENS;
    }
    st->encode_s += clock_mono_s() - t1;
    use_encoder_free(enc);
    if (rc) return -1;
    st->encoded += (long)n;
    atomic_file af;
    char cerr[256];
    if (use_cache && mkdirs(cache_dir) == 0 && atomic_file_open(&af, path, 0600, cerr, sizeof cerr) == 0) {
        /* best effort: a failed cache write only costs time */
        if (fwrite(out, sizeof(float), n * USE_DIM, af.f) == n * USE_DIM) atomic_file_commit(&af, cerr, sizeof cerr);
        else atomic_file_abort(&af);
    }
    return 0;
}

int item_table_from_catalog(item_table **out, const item_catalog *c, const char *encoder_dir, const char *cache_dir,
                            text_encode_stats *st, char *err, size_t errlen) {
    *out = NULL;
    float *v = malloc((c->n ? c->n : 1) * USE_DIM * sizeof *v);
    item_table *t = NULL;
    if (!v || item_table_new(&t, USE_DIM)) {
        free(v);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    if (text_encode_all(encoder_dir, cache_dir, (const char *const *)c->texts, c->n, v, st, err, errlen)) {
        free(v);
        item_table_free(t);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        if (item_table_put(t, c->ids[i], strlen(c->ids[i]), model_item_key(c->texts[i], strlen(c->texts[i])),
                           v + i * USE_DIM) < 0) {
            free(v);
            item_table_free(t);
            return snprintf(err, errlen, "out of memory"), -1;
        }
    free(v);
    *out = t;
    return 0;
}

int item_table_for_model(int text_dim, const char *items_path, const char *movielens, const char *encoder_dir,
                         const char *cache_dir, item_catalog *cat, item_table **items, text_encode_stats *st,
                         char *err, size_t errlen) {
    *items = NULL;
    if (text_dim <= 0) {
        if (!items_path) return 0;
        snprintf(err, errlen, "--items: the model has no text (text_dim 0)");
        return -1;
    }
    if (text_dim != USE_DIM) {
        snprintf(err, errlen, "text_dim %d: this build encodes text with USE-lite (%d)", text_dim, USE_DIM);
        return -1;
    }
    if (items_path ? item_catalog_jsonl(items_path, cat, err, errlen)
                   : movielens ? item_catalog_movielens(movielens, cat, err, errlen) : 0)
        return -1;
    return item_table_from_catalog(items, cat, encoder_dir, cache_dir, st, err, errlen);
}
