/* test_str_index: first-seen indices of strings (any bytes, NUL included), lookups without
 * create, growth past the first table, and the keys kept as copies. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "str_index.h"

int main(void) {
    str_index m = {0};
    CHECK(str_index_get(&m, "a", 1, 0) == -1, "lookup in an empty index");
    CHECK(str_index_get(&m, "a", 1, 1) == 0 && str_index_get(&m, "b\0c", 3, 1) == 1, "first-seen order");
    CHECK(str_index_get(&m, "b", 1, 1) == 2, "a prefix is another string");
    CHECK(str_index_get(&m, "b\0c", 3, 0) == 1 && str_index_get(&m, "a", 1, 1) == 0, "found again");
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "user-%d", i);
        int32_t k = str_index_get(&m, buf, strlen(buf), 1);
        CHECK(k == i + 3, "index %d for %s", k, buf);
    }
    strcpy(buf, "user-4321");
    CHECK(str_index_get(&m, buf, strlen(buf), 0) == 4324 && m.n == 5003, "after growth: n %zu", m.n);
    buf[0] = 'X';   /* the index holds its own copy */
    CHECK(!strcmp(str_index_key(&m, 4324), "user-4321"), "copy kept: %s", str_index_key(&m, 4324));
    CHECK(str_index_get(&m, "nobody", 6, 0) == -1 && m.n == 5003, "absent, not added");
    str_index_free(&m);
    return check_exit("test_str_index");
}
