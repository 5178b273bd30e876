/* jsonl_source: UserAction events from JSON lines, for hand-written test inputs and replays.
 *
 * One object per line: "user_id", "item_id", "action" (strings), "ts" (integer ms), optional
 * "value" (number or null) and "text" (string or null); other keys are ignored, blank lines
 * skipped. The loader only checks shape and types: it does not apply the codec's validation
 * (empty ids, limits), so a test can deliberately produce records the worker must reject.
 * Any bad line fails the whole load with an error naming the line. Lines are strict JSON
 * (jansson): valid UTF-8, each key once, integers within 64 bits.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_source_internal.h"
#include "json_text.h"
#include "stop_signal.h"

/* A string member as an interned copy: 0, or -1 with why filled (NUL bytes are refused, as the
 * event list stores NUL-terminated strings). */
static int jsonl_string(event_list *l, const char *name, const json_t *v, const char **dst, char *why, size_t whylen) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, 0, n)) return snprintf(why, whylen, "\"%s\" contains a NUL character", name), -1;
    if (!(*dst = event_list_intern(l, s, n))) return snprintf(why, whylen, "out of memory"), -1;
    return 0;
}

/* Fills e from one parsed object; returns 0, or -1 with why filled. */
static int jsonl_event(event_list *l, const json_t *o, source_event *e, char *why, size_t whylen) {
    static const char *const names[3] = {"user_id", "item_id", "action"};
    const char **dst[3] = {&e->user_id, &e->item_id, &e->action};
    if (!json_is_object(o)) return snprintf(why, whylen, "not a JSON object"), -1;
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(o, names[i]);
        if (!v) return snprintf(why, whylen, "missing \"%s\"", names[i]), -1;
        if (!json_is_string(v)) return snprintf(why, whylen, "\"%s\" is not a string", names[i]), -1;
        if (jsonl_string(l, names[i], v, dst[i], why, whylen)) return -1;
    }
    const json_t *ts = json_object_get(o, "ts");
    if (!ts) return snprintf(why, whylen, "missing \"ts\""), -1;
    if (!json_is_integer(ts)) return snprintf(why, whylen, "\"ts\" is not an integer (ms since the epoch)"), -1;
    e->ts = json_integer_value(ts);
    const json_t *val = json_object_get(o, "value");
    if (json_is_number(val)) {
        float f = (float)json_number_value(val);
        if (!isfinite(f)) return snprintf(why, whylen, "\"value\" is out of float range"), -1;
        e->value = f;
        e->has_value = 1;
    } else if (val && !json_is_null(val)) {
        return snprintf(why, whylen, "\"value\" is neither a number nor null"), -1;
    }
    const json_t *text = json_object_get(o, "text");
    if (json_is_string(text)) {
        if (jsonl_string(l, "text", text, &e->text, why, whylen)) return -1;
    } else if (text && !json_is_null(text)) {
        return snprintf(why, whylen, "\"text\" is neither a string nor null"), -1;
    }
    return 0;
}

int events_load_jsonl(FILE *f, const char *name, event_list *out, char *err, size_t errlen) {
    if (event_list_init(out)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (stop_signal_received()) {
            snprintf(err, errlen, "%s:%ld: stopped by %s while reading", name, lineno,
                     stop_signal_name(stop_signal_received()));
            rc = -1;
            break;
        }
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n')) k++;
        if (k == (size_t)len) continue;
        /* JSON_ALLOW_NUL: a string with \u0000 gets jsonl_string's message, which names the field */
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!o) {
            char jt[JSON_ERROR_TEXT_LENGTH];
            snprintf(err, errlen, "%s:%ld: json: %s at byte %d", name, lineno, json_error_text(&jerr, jt, sizeof jt),
                     jerr.position);
            rc = -1;
            break;
        }
        source_event *e = event_list_push(out);
        char why[160] = "out of memory";
        if (!e || jsonl_event(out, o, e, why, sizeof why)) {
            snprintf(err, errlen, "%s:%ld: %s", name, lineno, why);
            rc = -1;
        }
        json_decref(o);
    }
    if (!rc && stop_signal_received()) { /* a signal cut a read short */
        snprintf(err, errlen, "%s: stopped by %s while reading", name, stop_signal_name(stop_signal_received()));
        rc = -1;
    } else if (!rc && ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", name, strerror(errno));
        rc = -1;
    }
    free(line);
    if (!rc && event_list_sort_stable(out)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc) event_list_free(out);
    return rc;
}

int events_load_jsonl_path(const char *path, event_list *out, char *err, size_t errlen) {
    if (!strcmp(path, "-")) return events_load_jsonl(stdin, "<stdin>", out, err, errlen);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = events_load_jsonl(f, path, out, err, errlen);
    fclose(f);
    return rc;
}
