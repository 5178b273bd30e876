/* partitions: see partitions.h. */
#include <stdlib.h>

#include "partitions.h"

static const part_state UNKNOWN = {.next = -1, .checkpointed = -1, .start = -1, .end = -1, .input_end = -1};

part_state *partitions_get(partitions *t, int32_t p) {
    if (p < 0) return NULL;
    if (p >= t->n) {
        int n = t->n ? t->n : 16;
        while (n <= p) n *= 2;
        part_state *np = realloc(t->p, (size_t)n * sizeof *np);
        if (!np) return NULL;
        for (int i = t->n; i < n; i++) np[i] = UNKNOWN;
        t->p = np;
        t->n = n;
    }
    return &t->p[p];
}

void partitions_free(partitions *t) {
    free(t->p);
    *t = (partitions){0};
}

int partitions_advanced(const partitions *t) {
    for (int i = 0; i < t->n; i++)
        if (t->p[i].next > t->p[i].checkpointed) return 1;
    return 0;
}

int partitions_drained(const partitions *t) {
    if (t->owned == 0) return 0;
    for (int i = 0; i < t->n; i++)
        if (t->p[i].owned && !t->p[i].eof) return 0;
    return 1;
}

void partitions_own(partitions *t, int32_t p, int64_t next) {
    part_state *s = partitions_get(t, p); /* the caller has grown the table */
    if (!s->owned) t->owned++;
    s->owned = 1;
    s->eof = 0;
    s->touched = 0;
    s->next = s->checkpointed = next;
}

void partitions_release(partitions *t, int32_t p) {
    if (p < 0 || p >= t->n) return;
    part_state *s = &t->p[p];
    if (s->owned) t->owned--;
    s->owned = 0;
    s->eof = 0;
    s->next = s->checkpointed = -1;
}
