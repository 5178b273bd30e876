/* str_index: see str_index.h. */
#include "str_index.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

static int str_index_grow(str_index *m) {
    size_t nc = m->cap ? 2 * m->cap : 1024;
    int32_t *slots = calloc(nc, sizeof *slots);
    char **keys = realloc(m->keys, nc / 2 * sizeof *keys);
    if (keys) m->keys = keys;
    size_t *lens = keys ? realloc(m->lens, nc / 2 * sizeof *lens) : NULL;
    if (lens) m->lens = lens;
    if (!slots || !keys || !lens) return free(slots), -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t h = (size_t)hash_keyed(0, m->keys[i], m->lens[i]) & (nc - 1);
        while (slots[h]) h = (h + 1) & (nc - 1);
        slots[h] = (int32_t)i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = nc;
    return 0;
}

int32_t str_index_get(str_index *m, const char *s, size_t len, int create) {
    if (m->cap == 0 || (create && 2 * (m->n + 1) > m->cap)) {
        if (!create) return -1;
        if (str_index_grow(m)) return -1;
    }
    size_t h = (size_t)hash_keyed(0, s, len) & (m->cap - 1);
    for (; m->slots[h]; h = (h + 1) & (m->cap - 1)) {
        int32_t i = m->slots[h] - 1;
        if (m->lens[i] == len && !memcmp(m->keys[i], s, len)) return i;
    }
    if (!create) return -1;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, s, len);
    copy[len] = 0;
    m->keys[m->n] = copy;
    m->lens[m->n] = len;
    m->slots[h] = (int32_t)m->n + 1;
    return (int32_t)m->n++;
}

void str_index_free(str_index *m) {
    for (size_t i = 0; i < m->n; i++) free(m->keys[i]);
    free(m->keys), free(m->lens), free(m->slots);
    memset(m, 0, sizeof *m);
}
