/* use_tokenizer: vocabulary trie and Viterbi segmentation. See use_tokenizer.h for the exact
 * rules (they are the JavaScript reference's, quirks included).
 *
 * The trie is a hash table of edges, (node, code point) -> child, with open addressing: about
 * 30 k edges for the 8 k pieces, one probe per step on average. The Viterbi pass relaxes the
 * candidates start by start; for a fixed end that applies them in ascending start, exactly the
 * order of the reference's lattice loop, and best[s] is final when start s is reached.
 *
 * NFKC is utf8proc's (see nfkc() below); the reference normalises with the ICU of the Node it runs
 * in. The two agree on every code point that utf8proc's Unicode version (15.0 in Debian 12's
 * libutf8proc 2.8) assigns: tests/oracle/test_use_nfkc.py compares them on each one. A code point
 * assigned later is unassigned here and passes through unchanged, exactly as in Debian 12's own
 * nodejs 18 (libnode108 links ICU 72: Unicode 15.0). A newer Node normalises some of them
 * (measured against Node 20 with ICU 78.2, Unicode 17.0): 37 map on their own (U+A7F1 to "S", the
 * outlined letters and digits U+1CCD6..U+1CCF9 to A..Z and 0..9), 20 composites of the 16.0
 * scripts Todhri, Tulu-Tigalari, Gurung Khema and Kirat Rai are composed from their parts (e.g.
 * U+105D2 U+0307 -> U+105C9), and 46 newer combining marks (e.g. U+0897, U+1ACF..U+1AEB) are
 * ordered by their class. Only texts holding such code points can tokenize differently from
 * that Node.
 */
#include "use_tokenizer.h"
#include "json_text.h"
#include "model_errf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <utf8proc.h>

#include "use_utf8.h"

#define SEP 0x2581u /* "▁" */

typedef struct {
    int id;       /* piece id when a piece ends here, else -1 */
    double score;
} trie_node;

struct use_tokenizer {
    int n_pieces;
    char **pieces;        /* UTF-8, NUL-terminated */
    int *utf16_len;       /* JavaScript's String.length of each piece */
    trie_node *nodes;
    int n_nodes;
    uint64_t *edge_key;   /* node << 21 | cp, or UINT64_MAX when empty */
    int *edge_child;
    size_t edge_mask;
    /* work buffers, grown on demand */
    uint32_t *cps, *sym;
    unsigned char *u8;    /* cps re-encoded, for utf8proc */
    utf8proc_int32_t *nf; /* NFKC code points */
    size_t cap_u8, cap_nf;
    double *best;
    int *word, *rev;
    size_t cap_cps, cap_sym, cap_pos;
    size_t n_sym;
};

static inline size_t edge_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

static int edge_get(const use_tokenizer *t, int node, uint32_t cp) {
    uint64_t k = (uint64_t)node << 21 | cp;
    for (size_t i = edge_hash(k) & t->edge_mask;; i = (i + 1) & t->edge_mask) {
        if (t->edge_key[i] == k) return t->edge_child[i];
        if (t->edge_key[i] == UINT64_MAX) return -1;
    }
}

static void edge_put(use_tokenizer *t, int node, uint32_t cp, int child) {
    uint64_t k = (uint64_t)node << 21 | cp;
    size_t i = edge_hash(k) & t->edge_mask;
    while (t->edge_key[i] != UINT64_MAX) i = (i + 1) & t->edge_mask;
    t->edge_key[i] = k;
    t->edge_child[i] = child;
}

void use_tokenizer_free(use_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->utf16_len);
    free(t->nodes);
    free(t->edge_key);
    free(t->edge_child);
    free(t->cps);
    free(t->sym);
    free(t->u8);
    free(t->nf);
    free(t->best);
    free(t->word);
    free(t->rev);
    free(t);
}

int use_tokenizer_new(use_tokenizer **out, const char *json, size_t len, char *err, size_t errlen) {
    *out = NULL;
    json_error_t jerr;
    uint32_t *cps = NULL;
    /* JSON_ALLOW_NUL: a piece with "\u0000" is reported below as what it is */
    json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    char jt[JSON_ERROR_TEXT_LENGTH];
    if (!v) return model_errf(err, errlen, "vocabulary: json: %s at byte %d", json_error_text(&jerr, jt, sizeof jt),
                              jerr.position);
    use_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    if (!json_is_array(v) || json_array_size(v) <= USE_RESERVED_IDS || json_array_size(v) > (1 << 24)) {
        model_errf(err, errlen, "vocabulary: expected a JSON array of more than %d [piece, score] pairs", USE_RESERVED_IDS);
        goto fail;
    }
    int n = (int)json_array_size(v);
    size_t total_cps = 0;
    t->pieces = calloc((size_t)n, sizeof *t->pieces);
    t->utf16_len = calloc((size_t)n, sizeof *t->utf16_len);
    if (!t->pieces || !t->utf16_len) goto oom;
    t->n_pieces = n;
    for (int i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i), *s = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (json_array_size(e) != 2 || !json_is_string(s) || !(json_is_number(sc) || json_is_null(sc))) {
            model_errf(err, errlen, "vocabulary: entry %d is not a [string, number|null] pair", i);
            goto fail;
        }
        const char *str = json_string_value(s);
        size_t slen = json_string_length(s);
        if (memchr(str, 0, slen)) {
            model_errf(err, errlen, "vocabulary: piece %d contains a NUL character", i);
            goto fail;
        }
        if (!(t->pieces[i] = strdup(str))) goto oom;
        free(cps);
        if (!(cps = malloc((slen + 1) * sizeof *cps))) goto oom;
        size_t m = use_utf8_decode(cps, str, slen);
        int u16 = 0;
        for (size_t k = 0; k < m; k++) u16 += cps[k] > 0xFFFF ? 2 : 1;
        t->utf16_len[i] = u16;
        if (i >= USE_RESERVED_IDS) total_cps += m;
    }
    /* trie: at most one node per code point of the pieces, plus the root */
    t->nodes = malloc((total_cps + 1) * sizeof *t->nodes);
    size_t cap = 16;
    while (cap < 2 * total_cps + 2) cap *= 2;
    t->edge_key = malloc(cap * sizeof *t->edge_key);
    t->edge_child = malloc(cap * sizeof *t->edge_child);
    if (!t->nodes || !t->edge_key || !t->edge_child) goto oom;
    memset(t->edge_key, 0xFF, cap * sizeof *t->edge_key);
    t->edge_mask = cap - 1;
    t->nodes[0] = (trie_node){-1, 0};
    t->n_nodes = 1;
    for (int i = USE_RESERVED_IDS; i < n; i++) {
        const json_t *e = json_array_get(v, i), *s = json_array_get(e, 0), *sc = json_array_get(e, 1);
        free(cps);
        if (!(cps = malloc((json_string_length(s) + 1) * sizeof *cps))) goto oom;
        size_t m = use_utf8_decode(cps, json_string_value(s), json_string_length(s));
        if (m == 0) continue; /* the reference's insert does nothing for "" */
        int node = 0;
        for (size_t k = 0; k < m; k++) {
            int c = edge_get(t, node, cps[k]);
            if (c < 0) {
                c = t->n_nodes++;
                t->nodes[c] = (trie_node){-1, 0};
                edge_put(t, node, cps[k], c);
            }
            node = c;
        }
        t->nodes[node].id = i; /* a repeated piece: the last one wins, as in the reference */
        t->nodes[node].score = json_is_null(sc) ? 0.0 : json_number_value(sc);
    }
    free(cps);
    json_decref(v);
    *out = t;
    return 0;
oom:
    model_errf(err, errlen, "vocabulary: out of memory");
fail:
    free(cps);
    json_decref(v);
    use_tokenizer_free(t);
    return -1;
}

int use_tokenizer_load(use_tokenizer **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return model_errf(err, errlen, "vocabulary %s: %s", path, strerror(errno));
    char *buf = NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz < 0 || sz > (64L << 20) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return model_errf(err, errlen, "vocabulary %s: cannot size it (or larger than 64 MiB)", path);
    }
    if (!(buf = malloc((size_t)sz + 1))) {
        fclose(f);
        return model_errf(err, errlen, "vocabulary %s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        return model_errf(err, errlen, "vocabulary %s: short read", path);
    }
    char e2[200];
    int rc = use_tokenizer_new(out, buf, got, e2, sizeof e2);
    free(buf);
    if (rc) return model_errf(err, errlen, "%s: %s", path, e2);
    return 0;
}

int use_tokenizer_n_pieces(const use_tokenizer *t) { return t->n_pieces; }

const char *use_tokenizer_piece(const use_tokenizer *t, int id) {
    return id >= 0 && id < t->n_pieces ? t->pieces[id] : NULL;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* String.prototype.normalize("NFKC") as utf8proc does it: UTF8PROC_COMPAT | UTF8PROC_COMPOSE is
 * full compatibility decomposition, canonical ordering (a stable sort of each run of marks by
 * combining class) and canonical composition; UTF8PROC_STABLE keeps the composition exclusions
 * apart (U+1D1BC stays U+1D1BA U+1D165), which NFKC requires. These are the flags of
 * utf8proc_NFKC, which the tokenizer cannot call: it takes NUL-terminated text, and a text may
 * hold U+0000. */
#define NFKC_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE)

/* *nf[0..*m) = NFKC(cps[0..n)), in *u8 / *nf grown as needed. utf8proc reads valid UTF-8, which
 * use_utf8_decode's code points re-encode as. */
static int nfkc(const uint32_t *cps, size_t n, unsigned char **u8, size_t *cap_u8, utf8proc_int32_t **nf,
                size_t *cap_nf, size_t *m, char *err, size_t errlen) {
    if (grow((void **)u8, cap_u8, 4 * n + 1, 1) || grow((void **)nf, cap_nf, n + 16, sizeof **nf))
        return model_errf(err, errlen, "NFKC: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)utf8proc_encode_char((utf8proc_int32_t)cps[i], *u8 + k);
    for (;;) { /* a second pass only when the decomposition outgrows *nf */
        utf8proc_ssize_t r =
            utf8proc_decompose(*u8, (utf8proc_ssize_t)k, *nf, (utf8proc_ssize_t)*cap_nf, NFKC_OPTIONS);
        if (r < 0) return model_errf(err, errlen, "NFKC (utf8proc_decompose): %s", utf8proc_errmsg(r));
        if ((size_t)r > *cap_nf) {
            if (grow((void **)nf, cap_nf, (size_t)r, sizeof **nf)) return model_errf(err, errlen, "NFKC: out of memory");
            continue;
        }
        r = utf8proc_normalize_utf32(*nf, r, NFKC_OPTIONS);
        if (r < 0) return model_errf(err, errlen, "NFKC (utf8proc_normalize_utf32): %s", utf8proc_errmsg(r));
        *m = (size_t)r;
        return 0;
    }
}

/* step 1: t->sym[0..n_sym) = "▁" + NFKC(text) with spaces as "▁" (or nothing) */
static int symbols(use_tokenizer *t, const char *text, size_t len, char *err, size_t errlen) {
    if (len > USE_TEXT_MAX_BYTES)
        return model_errf(err, errlen, "tokenizer: text of %zu bytes is longer than the limit of %d", len, USE_TEXT_MAX_BYTES);
    if (grow((void **)&t->cps, &t->cap_cps, len + 1, sizeof *t->cps)) return model_errf(err, errlen, "tokenizer: out of memory");
    size_t n = use_utf8_decode(t->cps, text, len), m;
    char e2[160];
    if (nfkc(t->cps, n, &t->u8, &t->cap_u8, &t->nf, &t->cap_nf, &m, e2, sizeof e2))
        return model_errf(err, errlen, "tokenizer: %s", e2);
    if (m == 0) {
        t->n_sym = 0;
        return 0;
    }
    if (grow((void **)&t->sym, &t->cap_sym, m + 1, sizeof *t->sym)) return model_errf(err, errlen, "tokenizer: out of memory");
    t->sym[0] = SEP;
    for (size_t i = 0; i < m; i++) t->sym[i + 1] = t->nf[i] == 0x20 ? SEP : (uint32_t)t->nf[i];
    t->n_sym = m + 1;
    return 0;
}

static inline void relax(use_tokenizer *t, size_t e, double score, int id) {
    if (t->best[e] == 0 || score >= t->best[e]) {
        t->best[e] = score;
        t->word[e] = id;
    }
}

int use_tokenizer_encode(use_tokenizer *t, const char *text, size_t len, int *ids, int cap, char *err,
                         size_t errlen) {
    if (symbols(t, text, len, err, errlen)) return -1;
    size_t n = t->n_sym;
    if (n + 1 > t->cap_pos) { /* best, word and rev share one capacity */
        size_t c = t->cap_pos ? t->cap_pos : 64;
        while (c < n + 1) c *= 2;
        double *b = realloc(t->best, c * sizeof *b);
        if (b) t->best = b;
        int *w = b ? realloc(t->word, c * sizeof *w) : NULL;
        if (w) t->word = w;
        int *r = w ? realloc(t->rev, c * sizeof *r) : NULL;
        if (r) t->rev = r;
        if (!r) return model_errf(err, errlen, "tokenizer: out of memory");
        t->cap_pos = c;
    }
    for (size_t i = 0; i <= n; i++) t->best[i] = 0, t->word[i] = 0;
    const uint32_t *sym = t->sym;
    for (size_t s = 0; s < n; s++) {
        int node = 0, any = 0;
        for (size_t k = s; k < n; k++) {
            node = edge_get(t, node, sym[k]);
            if (node < 0) break;
            if (t->nodes[node].id >= 0) {
                any = 1;
                relax(t, k + 1, t->nodes[node].score + t->best[s], t->nodes[node].id);
            }
        }
        if (!any) relax(t, s + 1, 0.0 + t->best[s], USE_UNK_ID);
    }
    /* backtrack (reversed ids into rev), collapsing runs of unknowns */
    int nrev = 0, prev_unk = 0;
    for (long i = (long)n; i > 0;) {
        int id = t->word[i];
        if (!(prev_unk && id == USE_UNK_ID)) t->rev[nrev++] = id;
        prev_unk = id == USE_UNK_ID;
        int step = t->utf16_len[id];
        i -= step > 0 ? step : 1; /* the reference would loop forever on an empty piece 0 */
    }
    for (int i = 0; i < nrev && i < cap; i++) ids[i] = t->rev[nrev - 1 - i];
    return nrev;
}

const uint32_t *use_tokenizer_last_symbols(const use_tokenizer *t, size_t *n) {
    *n = t->n_sym;
    return t->sym;
}

int use_tokenizer_nfkc_utf8(const char *text, size_t len, char **out, size_t *out_len, char *err, size_t errlen) {
    *out = NULL;
    *out_len = 0;
    if (len > USE_TEXT_MAX_BYTES)
        return model_errf(err, errlen, "text of %zu bytes is longer than the limit of %d", len, USE_TEXT_MAX_BYTES);
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    unsigned char *u8 = NULL;
    utf8proc_int32_t *nf = NULL;
    size_t cap_u8 = 0, cap_nf = 0, m = 0, k = 0;
    char *s = NULL;
    int rc = -1;
    if (!cps) {
        model_errf(err, errlen, "out of memory");
        goto out;
    }
    if (nfkc(cps, use_utf8_decode(cps, text, len), &u8, &cap_u8, &nf, &cap_nf, &m, err, errlen)) goto out;
    if (!(s = malloc(4 * m + 1))) {
        model_errf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < m; i++) k += (size_t)utf8proc_encode_char(nf[i], (utf8proc_uint8_t *)s + k);
    s[k] = 0;
    *out = s;
    *out_len = k;
    rc = 0;
out:
    free(cps);
    free(u8);
    free(nf);
    return rc;
}
