/* test_user_table: per-batch (partition, user) slots — same key same slot, growth keeps every
 * slot findable, clear resets. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "user_table.h"

int main(void) {
    user_table t;
    REQUIRE(user_table_init(&t, 16, 4) == 0, "init");
    static char names[5000][16];
    for (int i = 0; i < 5000; i++) snprintf(names[i], sizeof names[i], "user-%d", i);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            long s = user_table_upsert(&t, i % 7, names[i], strlen(names[i]));
            CHECK(s == i, "slot %ld for %d", s, i);
            memset(user_table_state(&t, (size_t)s), i & 0xff, 16);
        }
        CHECK(t.n == 5000, "n %zu", t.n);
        for (int i = 0; i < 5000; i++) {
            long s = user_table_upsert(&t, i % 7, names[i], strlen(names[i]));
            CHECK(s == i && ((unsigned char *)user_table_state(&t, (size_t)s))[15] == (i & 0xff), "refind %d", i);
        }
        /* Same id in another partition is another user. */
        long s = user_table_upsert(&t, 100, names[0], strlen(names[0]));
        CHECK(s == 5000, "partition is part of the key: %ld", s);
        user_table_clear(&t);
        CHECK(t.n == 0, "clear");
    }
    user_table_free(&t);
    return check_exit("test_user_table");
}
