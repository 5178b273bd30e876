/* movielens: the MovieLens-100K loader (u.data events, u.item ids).
 *
 * u.data lines are "user \t item \t rating \t unix-seconds". Each becomes a "rate" event with
 * value = rating and ts = seconds * 1000; ids keep the file's decimal strings. The result is
 * sorted by ts with ties in file order (the documented rule: many ratings share a second).
 * u.item is Latin-1 and pipe-separated; only its first field, the item id, is read, so the
 * encoding of the titles never matters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_source_internal.h"

/* Splits line (NUL-terminated, no newline) at tabs into at most max fields. Returns the count. */
static int movielens_split(char *line, char sep, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *t = strchr(p, sep);
        if (!t) break;
        *t = 0;
        p = t + 1;
        if (n == max) return max + 1;   /* more fields than expected */
    }
    return n;
}

static void movielens_chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

/* Parses a non-negative decimal integer that fills the whole string. */
static int movielens_parse_int(const char *s, long long *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static FILE *movielens_open(const char *dir, const char *name, char *path, size_t pathlen, char *err, size_t errlen) {
    snprintf(path, pathlen, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return f;
}

int events_load_movielens(const char *dir, event_list *out, char *err, size_t errlen) {
    char path[4096];
    if (event_list_init(out)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    FILE *f = movielens_open(dir, "u.data", path, sizeof path, err, errlen);
    if (!f) goto bad;
    const char *rate = event_list_intern(out, "rate", 4);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = rate ? 0 : -1;
    if (!rate) snprintf(err, errlen, "out of memory");
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        movielens_chomp(line);
        if (!line[0]) continue;
        char *fl[4];
        long long rating, secs;
        if (movielens_split(line, '\t', fl, 4) != 4) {
            snprintf(err, errlen, "%s:%ld: expected 4 tab-separated fields (user, item, rating, timestamp)", path, lineno);
            rc = -1;
        } else if (!fl[0][0] || !fl[1][0]) {
            snprintf(err, errlen, "%s:%ld: empty user or item id", path, lineno);
            rc = -1;
        } else if (movielens_parse_int(fl[2], &rating)) {
            snprintf(err, errlen, "%s:%ld: rating '%s' is not a non-negative integer", path, lineno, fl[2]);
            rc = -1;
        } else if (movielens_parse_int(fl[3], &secs) || secs > INT64_MAX / 1000) {
            snprintf(err, errlen, "%s:%ld: timestamp '%s' is not unix seconds", path, lineno, fl[3]);
            rc = -1;
        } else {
            source_event *e = event_list_push(out);
            const char *u = event_list_intern(out, fl[0], strlen(fl[0]));
            const char *i = event_list_intern(out, fl[1], strlen(fl[1]));
            if (!e || !u || !i) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            } else {
                e->user_id = u;
                e->item_id = i;
                e->action = rate;
                e->ts = secs * 1000;
                e->value = (float)rating;
                e->has_value = 1;
            }
        }
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (!rc && event_list_sort_stable(out)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (!rc) return 0;
bad:
    event_list_free(out);
    return -1;
}

int movielens_item_ids(const char *dir, char ***ids, int *n, char *err, size_t errlen) {
    char path[4096];
    *ids = NULL;
    *n = 0;
    FILE *f = movielens_open(dir, "u.item", path, sizeof path, err, errlen);
    if (!f) return -1;
    char **v = NULL, *line = NULL;
    size_t cap = 0, vcap = 0;
    int count = 0, rc = 0;
    long lineno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        movielens_chomp(line);
        if (!line[0]) continue;
        char *bar = strchr(line, '|');
        if (!bar || bar == line) {
            snprintf(err, errlen, "%s:%ld: expected 'id|title|...'", path, lineno);
            rc = -1;
            break;
        }
        *bar = 0;
        if ((size_t)count == vcap) {
            size_t nc = vcap ? vcap * 2 : 2048;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) { rc = -1; snprintf(err, errlen, "out of memory"); break; }
            v = nv;
            vcap = nc;
        }
        if (!(v[count] = strdup(line))) { rc = -1; snprintf(err, errlen, "out of memory"); break; }
        count++;
    }
    free(line);
    fclose(f);
    if (rc) {
        synth_item_ids_free(v, count);
        return -1;
    }
    *ids = v;
    *n = count;
    return 0;
}
