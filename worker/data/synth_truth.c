/* synth_truth: the synthetic generator's ground truth, one JSON line per event as it was sent
 * (`ievo produce --synthetic ... --truth FILE`; read by `ievo report --truth` and the demo).
 *
 * A line: {"user_id": the id as sent, "events": the event's number for that user (1, 2, ...),
 * "topic": the user's interest topic at the event, "switched": whether it differs from the
 * user's previous event's, "ts": the time as sent}. Users are numbered by their interned id
 * pointer (ptr_index), so a lookup costs no string compare.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_source.h"
#include "json_text.h"
#include "ptr_index.h"

struct synth_truth {
    FILE *f;
    const char *path;
    ptr_index users;
    uint32_t *count, *topic;   /* per user index */
    size_t cap;
};

int synth_truth_open(synth_truth **out, const char *path, char *err, size_t errlen) {
    synth_truth *t = calloc(1, sizeof *t);
    if (!t) return snprintf(err, errlen, "out of memory"), -1;
    if (!(t->f = fopen(path, "w"))) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        free(t);
        return -1;
    }
    t->path = path;
    *out = t;
    return 0;
}

void synth_truth_restart(synth_truth *t) {
    if (t->cap) memset(t->count, 0, t->cap * sizeof *t->count);
}

/* The user's slot, the arrays grown to hold it. -1 when out of memory. */
static int32_t truth_user(synth_truth *t, const char *user) {
    int32_t u = ptr_index_get(&t->users, user, NULL);
    if (u < 0 || (size_t)u < t->cap) return u;
    size_t nc = t->cap ? 2 * t->cap : 1024;
    uint32_t *c = realloc(t->count, nc * sizeof *c);
    if (c) t->count = c;
    uint32_t *p = c ? realloc(t->topic, nc * sizeof *p) : NULL;
    if (!p) return -1;
    t->topic = p;
    memset(t->count + t->cap, 0, (nc - t->cap) * sizeof *t->count);
    t->cap = nc;
    return u;
}

int synth_truth_write(synth_truth *t, const source_event *e, const char *user_id, size_t len, int64_t ts, char *err,
                      size_t errlen) {
    int32_t u = truth_user(t, e->user_id);
    if (u < 0) return snprintf(err, errlen, "out of memory"), -1;
    int switched = t->count[u] > 0 && t->topic[u] != e->topic;
    t->topic[u] = e->topic;
    uint32_t nth = ++t->count[u];
    json_t *line = json_pack("{s:o,s:I,s:I,s:b,s:I}", "user_id", json_string_lossy(user_id, len), "events",
                             (json_int_t)nth, "topic", (json_int_t)e->topic, "switched", switched, "ts", (json_int_t)ts);
    int bad = !line || json_dumpf(line, t->f, IEVO_JSON_DUMP) || fputc('\n', t->f) == EOF;
    json_decref(line);
    if (bad) snprintf(err, errlen, "cannot write %s", t->path);
    return bad ? -1 : 0;
}

int synth_truth_close(synth_truth *t, char *err, size_t errlen) {
    if (!t) return 0;
    int rc = 0;
    if (fclose(t->f)) rc = -1, snprintf(err, errlen, "cannot write %s: %s", t->path, strerror(errno));
    ptr_index_free(&t->users);
    free(t->count);
    free(t->topic);
    free(t);
    return rc;
}
