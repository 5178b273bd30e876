/* ptr_index: first-seen indices of interned strings (the event loaders' arenas intern ids, so
 * two ids are equal exactly when their pointers are). Open addressing on the pointer, at most
 * half full; the offline commands (train, eval) use it to number users, items and actions.
 */
#ifndef IEVO_PTR_INDEX_H
#define IEVO_PTR_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char **key;
    int32_t *val;
    size_t cap, n;   /* n: indices given so far, 0..n-1 */
} ptr_index;

/* k's index, a new one (n, then n + 1) the first time k is seen, when *is_new is set to 1
 * (is_new may be NULL). -1 when out of memory. */
int32_t ptr_index_get(ptr_index *m, const char *k, int *is_new);
void ptr_index_free(ptr_index *m);

#endif
