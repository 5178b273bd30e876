/* str_index: first-seen indices of strings that come from outside the process (user ids read
 * from files), with its own copy of each. The hash is keyed (hash.h: hash_keyed), so ids chosen
 * to collide cannot turn lookups into long probes. Open addressing, at most half full. The
 * companion of ptr_index, which indexes strings already interned. */
#ifndef IEVO_STR_INDEX_H
#define IEVO_STR_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **keys;       /* by index: the copies, NUL-terminated */
    size_t *lens;
    int32_t *slots;    /* index + 1 by hash position, 0: empty */
    size_t cap, n;     /* slots; indices given so far, 0..n-1 */
} str_index;

/* s[0..len)'s index: with create, a new one (n) the first time it is seen; without, -1 when it
 * was never seen. -1 also when out of memory (create only). */
int32_t str_index_get(str_index *m, const char *s, size_t len, int create);
/* The string of an index. */
static inline const char *str_index_key(const str_index *m, int32_t i) { return m->keys[i]; }
void str_index_free(str_index *m);

#endif
