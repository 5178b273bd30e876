/* replay_plan: start and end offsets of a bounded replay. See replay_plan.h. */
#include "replay_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_i64(const char *s, const char **end, int64_t *out) {
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || e == s) return -1;
    *out = v;
    *end = e;
    return 0;
}

int replay_spec_parse(replay_spec *spec, const char *text, char *err, size_t errlen) {
    memset(spec, 0, sizeof *spec);
    const char *end;
    if (!strcmp(text, "beginning")) {
        spec->from = REPLAY_FROM_BEGINNING;
        return 0;
    }
    if (!strncmp(text, "timestamp:", 10)) {
        spec->from = REPLAY_FROM_TIMESTAMP;
        if (parse_i64(text + 10, &end, &spec->timestamp_ms) || *end || spec->timestamp_ms < 0) {
            snprintf(err, errlen, "replay --from timestamp:MS needs milliseconds since the epoch, got '%s'", text + 10);
            return -1;
        }
        return 0;
    }
    if (!strncmp(text, "offsets:", 8)) {
        spec->from = REPLAY_FROM_OFFSETS;
        const char *p = text + 8;
        while (*p) {
            int64_t part, off;
            if (spec->n_offsets == REPLAY_MAX_OFFSETS) {
                snprintf(err, errlen, "replay: more than %d partition offsets", REPLAY_MAX_OFFSETS);
                return -1;
            }
            if (parse_i64(p, &end, &part) || *end != '=' || part < 0 || part > INT32_MAX ||
                parse_i64(end + 1, &end, &off) || off < 0 || (*end && *end != ',')) {
                snprintf(err, errlen, "replay --from offsets:P=O,... : cannot parse '%s'", p);
                return -1;
            }
            spec->offset_partition[spec->n_offsets] = (int32_t)part;
            spec->offset_value[spec->n_offsets] = off;
            spec->n_offsets++;
            p = *end ? end + 1 : end;
        }
        if (!spec->n_offsets) {
            snprintf(err, errlen, "replay --from offsets: needs at least one P=O");
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "replay --from: expected beginning, offsets:P=O,... or timestamp:MS, got '%s'", text);
    return -1;
}

int replay_plan(const replay_spec *spec, const replay_env *env, int n, replay_range *out, char *err, size_t errlen) {
    int32_t *parts = malloc((size_t)(n ? n : 1) * sizeof *parts);
    int64_t *ts_offsets = malloc((size_t)(n ? n : 1) * sizeof *ts_offsets);
    int rc = -1;
    if (!parts || !ts_offsets) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) parts[p] = p;
    if (spec->from == REPLAY_FROM_TIMESTAMP &&
        env->offsets_for_times(env->ctx, n, parts, spec->timestamp_ms, ts_offsets, err, errlen))
        goto out;
    for (int p = 0; p < n; p++) {
        int64_t low, high, stored;
        if (env->watermarks(env->ctx, p, &low, &high, err, errlen)) goto out;
        if (env->stored_offset(env->ctx, p, &stored, err, errlen)) goto out;
        replay_range *r = &out[p];
        r->partition = p;
        r->end = high;
        r->resumed = stored >= 0;
        if (stored >= 0) {
            r->start = stored;
        } else if (spec->from == REPLAY_FROM_BEGINNING) {
            r->start = low;
        } else if (spec->from == REPLAY_FROM_TIMESTAMP) {
            if (ts_offsets[p] < 0) {
                snprintf(err, errlen, "partition %d: the broker has no offset for timestamp %lld (the local broker "
                         "never has: it cannot map times to offsets; use --from offsets:...)", p,
                         (long long)spec->timestamp_ms);
                goto out;
            }
            r->start = ts_offsets[p];
        } else {
            r->start = -1;
            for (int i = 0; i < spec->n_offsets; i++)
                if (spec->offset_partition[i] == p) r->start = spec->offset_value[i];
            if (r->start < 0) r->start = high;   /* not named: nothing to replay there */
        }
        if (!r->resumed && r->start < low) {
            snprintf(err, errlen, "partition %d: offset %lld is below the log start %lld (the data is gone)", p,
                     (long long)r->start, (long long)low);
            goto out;
        }
        if (r->start > r->end) r->start = r->end;
    }
    for (int i = 0; i < spec->n_offsets; i++)
        if (spec->offset_partition[i] >= n) {
            snprintf(err, errlen, "partition %d does not exist (the topic has %d)", spec->offset_partition[i], n);
            goto out;
        }
    rc = 0;
out:
    free(parts);
    free(ts_offsets);
    return rc;
}
