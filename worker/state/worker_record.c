/* worker_record: the checks of a record read back from outside the process. See worker_record.h. */
#include "worker_record.h"

#include <stdio.h>

int record_check_loaded(const model *m, const void *rec, int64_t input_end, char *why, size_t whylen) {
    if (model_state_validate_stored(m, record_blob_c(rec), why, whylen)) return -1;
    int64_t last = record_last_offset(rec);
    if (last < -1 || (input_end >= 0 && last >= input_end)) {
        snprintf(why, whylen, "the record has applied input offset %lld, but the input ends at %lld", (long long)last,
                 (long long)input_end);
        return -1;
    }
    return 0;
}

int record_check_stored(const model *m, size_t size, const void *stored, size_t len, int64_t input_end, void *scratch,
                        char *why, size_t whylen) {
    if (record_load(scratch, size, stored, len)) {
        snprintf(why, whylen, "a record of %zu bytes, where this model's are %d to %zu", len, RECORD_MIN, size);
        return -1;
    }
    return record_check_loaded(m, scratch, input_end, why, whylen);
}
