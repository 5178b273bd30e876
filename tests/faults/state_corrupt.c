/* state_corrupt: damages one user's record in a state dir, as a disk or a bug might, for the
 * integration tests that check the worker quarantines what it cannot trust
 * (tests/integration/test_worker_hostile.py). Test-only; never linked into ievo.
 *
 *   state_corrupt DIR PARTITION USER truncate|counters|future
 *     truncate   the record cut to 10 bytes (shorter than any record)
 *     counters   the window length set to 65535 (more than the window holds)
 *     future     the last applied input offset set to 10^12 (past any input's end)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "state_store.h"
#include "worker_record.h"

#define BIG (1 << 20)

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: state_corrupt DIR PARTITION USER truncate|counters|future\n");
        return 2;
    }
    char err[512];
    state_store_opts o;
    state_store_opts_default(&o);
    state_store *s;
    if (state_store_open(&s, argv[1], &o, err, sizeof err)) {
        fprintf(stderr, "state_corrupt: %s\n", err);
        return 1;
    }
    int32_t p = atoi(argv[2]);
    const char *user = argv[3];
    size_t ulen = strlen(user), bad_len;
    uint8_t *rec = calloc(1, BIG);
    void *bufs[1] = {rec};
    int found = 0;
    size_t malformed = 0;
    if (!rec || state_store_multi_get(s, 1, &p, &user, &ulen, bufs, BIG, &found, &malformed, err, sizeof err) ||
        found != 1) {
        fprintf(stderr, "state_corrupt: no record of %s in partition %d %s\n", user, p, err);
        return 1;
    }
    size_t len = record_stored_len(rec, BIG);
    if (!strcmp(argv[4], "truncate")) {
        len = 10;
    } else if (!strcmp(argv[4], "counters")) {
        rec[RECORD_HEADER + 24] = 0xFF, rec[RECORD_HEADER + 25] = 0xFF; /* the blob's u16 wlen */
    } else if (!strcmp(argv[4], "future")) {
        record_set_last_offset(rec, 1000000000000LL);
    } else {
        fprintf(stderr, "state_corrupt: unknown mode %s\n", argv[4]);
        return 2;
    }
    bad_len = len;
    state_batch *b = state_batch_new();
    state_batch_put_state(b, p, user, ulen, rec, bad_len);
    int rc = state_store_write(s, b, err, sizeof err);
    if (rc) fprintf(stderr, "state_corrupt: %s\n", err);
    state_batch_free(b);
    state_store_close(s);
    free(rec);
    return rc ? 1 : 0;
}
