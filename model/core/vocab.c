/* vocab: string id -> row index, and back, for the item and action embeddings.
 *
 * Row 0 is "<oov>", the shared out-of-vocabulary row. The ids live twice: NUL-terminated in
 * `arena` (for index -> id) and joined by '\n' in `joined` (the U8 tensor of the model file).
 * The map is open addressing with linear probing over a power-of-two table at most half full,
 * keyed by hash_keyed; lookups run once per event in the worker, so they compare the length first
 * and touch one string in the common case.
 */
#include <stdlib.h>

#include "hash.h"
#include "model_internal.h"

struct model_vocab {
    int n;
    char *arena;        /* n NUL-terminated ids */
    size_t *off;        /* n offsets into arena */
    uint32_t *len;      /* n lengths */
    uint32_t *hash;     /* n hashes */
    char *joined;       /* ids joined by '\n' */
    size_t joined_len;
    int32_t *table;     /* cap slots: row index or -1 */
    uint32_t mask;
};

/* hash_keyed: the ids come from outside (the training data, the items topic). Only the low 32
 * bits are kept: the table holds at most MODEL_VOCAB_MAX rows. */
static uint32_t vocab_hash(const char *s, size_t n) { return (uint32_t)hash_keyed(0, s, n); }

void vocab_free(model_vocab *v) {
    if (!v) return;
    free(v->arena);
    free(v->off);
    free(v->len);
    free(v->hash);
    free(v->joined);
    free(v->table);
    free(v);
}

int vocab_size(const model_vocab *v) { return v ? v->n : 0; }

const char *vocab_id(const model_vocab *v, int index) {
    if (!v || index < 0 || index >= v->n) return NULL;
    return v->arena + v->off[index];
}

const char *vocab_joined(const model_vocab *v, size_t *len) {
    *len = v->joined_len;
    return v->joined;
}

int vocab_find(const model_vocab *v, const char *id, size_t len) {
    if (!v || (len > 0 && !id)) return -1;
    uint32_t h = vocab_hash(id, len);
    for (uint32_t s = h & v->mask;; s = (s + 1) & v->mask) {
        int32_t r = v->table[s];
        if (r < 0) return -1;
        if (v->hash[r] == h && v->len[r] == len && memcmp(v->arena + v->off[r], id, len) == 0) return r;
    }
}

/* Core builder over (pointer, length) pairs; ids[0] must be "<oov>". */
static int build(model_vocab **out, const char *const *ids, const size_t *lens, int n, const char *what,
                 char *err, size_t errlen) {
    *out = NULL;
    if (n < 1 || n > MODEL_VOCAB_MAX)
        return model_errf(err, errlen, "%s vocabulary: %d rows (with <oov>), expected 1..%d", what, n, MODEL_VOCAB_MAX);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] == 0)
            return model_errf(err, errlen, "%s vocabulary: id #%d is empty", what, i);
        if (lens[i] > UINT32_MAX / 2)
            return model_errf(err, errlen, "%s vocabulary: id #%d is too long (%zu bytes)", what, i, lens[i]);
        if (memchr(ids[i], '\n', lens[i]) || memchr(ids[i], '\0', lens[i]))
            return model_errf(err, errlen, "%s vocabulary: id #%d contains a newline or NUL byte", what, i);
        total += lens[i] + 1;
    }
    model_vocab *v = calloc(1, sizeof *v);
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n) cap <<= 1;
    if (!v) goto oom;
    v->n = n;
    v->arena = malloc(total);
    v->joined = malloc(total);
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = malloc((size_t)n * sizeof *v->len);
    v->hash = malloc((size_t)n * sizeof *v->hash);
    v->table = malloc((size_t)cap * sizeof *v->table);
    if (!v->arena || !v->joined || !v->off || !v->len || !v->hash || !v->table) goto oom;
    memset(v->table, 0xFF, (size_t)cap * sizeof *v->table);
    v->mask = cap - 1;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        memcpy(v->arena + pos, ids[i], lens[i]);
        v->arena[pos + lens[i]] = 0;
        memcpy(v->joined + pos, ids[i], lens[i]);
        v->joined[pos + lens[i]] = '\n';
        v->off[i] = pos;
        v->len[i] = (uint32_t)lens[i];
        v->hash[i] = vocab_hash(ids[i], lens[i]);
        pos += lens[i] + 1;
        int dup = vocab_find(v, ids[i], lens[i]);
        if (dup >= 0) {
            if (dup == 0)
                model_errf(err, errlen, "%s vocabulary: id #%d is \"%s\", which is reserved for the out-of-vocabulary row",
                           what, i, MODEL_OOV_ID);
            else
                model_errf(err, errlen, "%s vocabulary: id \"%.*s\" appears twice (#%d and #%d)", what,
                           (int)(lens[i] > 80 ? 80 : lens[i]), ids[i], dup, i);
            vocab_free(v);
            return -1;
        }
        uint32_t s = v->hash[i] & v->mask;
        while (v->table[s] >= 0) s = (s + 1) & v->mask;
        v->table[s] = i;
    }
    v->joined_len = total - 1; /* no '\n' after the last id */
    *out = v;
    return 0;
oom:
    vocab_free(v);
    return model_errf(err, errlen, "%s vocabulary: out of memory", what);
}

int vocab_new(model_vocab **out, const char *const *ids, int n, const char *what, char *err, size_t errlen) {
    *out = NULL;
    if (n < 0 || n >= MODEL_VOCAB_MAX)
        return model_errf(err, errlen, "%s vocabulary: %d ids, expected 0..%d", what, n, MODEL_VOCAB_MAX - 1);
    const char **p = malloc(((size_t)n + 1) * sizeof *p);
    size_t *l = malloc(((size_t)n + 1) * sizeof *l);
    if (!p || !l) {
        free(p);
        free(l);
        return model_errf(err, errlen, "%s vocabulary: out of memory", what);
    }
    p[0] = MODEL_OOV_ID;
    l[0] = strlen(MODEL_OOV_ID);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (!ids[i]) {
            rc = model_errf(err, errlen, "%s vocabulary: id #%d is NULL", what, i + 1);
            break;
        }
        p[i + 1] = ids[i];
        l[i + 1] = strlen(ids[i]);
    }
    if (rc == 0) rc = build(out, p, l, n + 1, what, err, errlen);
    free(p);
    free(l);
    return rc;
}

int vocab_from_joined(model_vocab **out, const char *text, size_t len, const char *what, char *err,
                      size_t errlen) {
    *out = NULL;
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (n > MODEL_VOCAB_MAX)
        return model_errf(err, errlen, "%s vocabulary: %zu rows, at most %d", what, n, MODEL_VOCAB_MAX);
    const char **p = malloc(n * sizeof *p);
    size_t *l = malloc(n * sizeof *l);
    if (!p || !l) {
        free(p);
        free(l);
        return model_errf(err, errlen, "%s vocabulary: out of memory", what);
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            p[k] = text + start;
            l[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    int rc;
    if (l[0] != strlen(MODEL_OOV_ID) || memcmp(p[0], MODEL_OOV_ID, l[0]) != 0)
        rc = model_errf(err, errlen, "%s vocabulary: row 0 must be \"%s\"", what, MODEL_OOV_ID);
    else
        rc = build(out, p, l, (int)n, what, err, errlen);
    free(p);
    free(l);
    return rc;
}
