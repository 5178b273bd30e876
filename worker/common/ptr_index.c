/* ptr_index: see ptr_index.h. */
#include "ptr_index.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const char *k, size_t cap) { return ((uintptr_t)k >> 3) * 0x9E3779B97F4A7C15ull % cap; }

int32_t ptr_index_get(ptr_index *m, const char *k, int *is_new) {
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        const char **nk = calloc(nc, sizeof *nk);
        int32_t *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) return free(nk), free(nv), -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = slot_of(m->key[i], nc);
                while (nk[j]) j = (j + 1) % nc;
                nk[j] = m->key[i], nv[j] = m->val[i];
            }
        free(m->key), free(m->val);
        m->key = nk, m->val = nv, m->cap = nc;
    }
    size_t j = slot_of(k, m->cap);
    while (m->key[j] && m->key[j] != k) j = (j + 1) % m->cap;
    if (m->key[j]) return m->val[j];
    m->key[j] = k, m->val[j] = (int32_t)m->n++;
    if (is_new) *is_new = 1;
    return m->val[j];
}

void ptr_index_free(ptr_index *m) {
    free(m->key), free(m->val);
    memset(m, 0, sizeof *m);
}
