/* movielens: the MovieLens-100K reader: u.data events, and the one reader of u.item and
 * u.genre that every command uses (vocabularies, the text catalogue, the demo's titles, the
 * report's genres).
 *
 * u.data lines are "user \t item \t rating \t unix-seconds". Each becomes a "rate" event with
 * value = rating and ts = seconds * 1000; ids keep the file's decimal strings. The result is
 * sorted by ts with ties in file order (the documented rule: many ratings share a second).
 * u.item is Latin-1 and pipe-separated: id|title|release|video release|IMDb URL|19 genre flags.
 * Only the id is required (a vocabulary needs nothing else); titles are converted to UTF-8;
 * an item has genres when its line has all 24 fields. u.genre lines are "name|index".
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

/* Latin-1 -> UTF-8 (every byte is a code point): a new string. */
static char *movielens_utf8(const char *s) {
    size_t n = strlen(s), o = 0;
    char *out = malloc(2 * n + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) out[o++] = (char)ch;
        else out[o++] = (char)(0xC0 | (ch >> 6)), out[o++] = (char)(0x80 | (ch & 0x3F));
    }
    out[o] = 0;
    return out;
}

/* One u.item line (chomped, not empty) into it. Returns 0, or -1 with err naming the line. */
static int movielens_item_line(char *line, const char *path, long lineno, movielens_item *it, char *err,
                               size_t errlen) {
    char *fl[5 + MOVIELENS_GENRES];
    int nf = movielens_split(line, '|', fl, 5 + MOVIELENS_GENRES);
    memset(it, 0, sizeof *it);
    if (nf < 2 || !fl[0][0] || nf > 5 + MOVIELENS_GENRES) {
        snprintf(err, errlen, "%s:%ld: expected 'id|title|...' (at most %d fields)", path, lineno, 5 + MOVIELENS_GENRES);
        return -1;
    }
    it->has_genres = nf == 5 + MOVIELENS_GENRES;
    for (int g = 0; it->has_genres && g < MOVIELENS_GENRES; g++) it->genre[g] = !strcmp(fl[5 + g], "1");
    if (!(it->id = strdup(fl[0])) || !(it->title = movielens_utf8(nf > 1 ? fl[1] : ""))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int movielens_items_load(const char *dir, movielens_items *out, char *err, size_t errlen) {
    char path[4096];
    memset(out, 0, sizeof *out);
    FILE *f = movielens_open(dir, "u.item", path, sizeof path, err, errlen);
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0, icap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        movielens_chomp(line);
        if (!line[0]) continue;
        if (out->n == icap) {
            size_t nc = icap ? 2 * icap : 2048;
            movielens_item *ni = realloc(out->items, nc * sizeof *ni);
            if (!ni) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            out->items = ni;
            icap = nc;
        }
        rc = movielens_item_line(line, path, lineno, &out->items[out->n], err, errlen);
        out->n++;   /* a failed line's strings are freed with the rest */
    }
    if (!rc && ferror(f)) rc = -1, snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (rc) movielens_items_free(out);
    return rc;
}

void movielens_items_free(movielens_items *m) {
    for (size_t i = 0; i < m->n; i++) free(m->items[i].id), free(m->items[i].title);
    free(m->items);
    memset(m, 0, sizeof *m);
}

int movielens_genres_load(const char *dir, movielens_genres *out, char *err, size_t errlen) {
    char path[4096];
    memset(out, 0, sizeof *out);
    FILE *f = movielens_open(dir, "u.genre", path, sizeof path, err, errlen);
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        movielens_chomp(line);
        if (!line[0]) continue;
        char *bar = strrchr(line, '|');
        long long g;
        if (!bar || movielens_parse_int(bar + 1, &g) || g >= MOVIELENS_GENRES) {
            snprintf(err, errlen, "%s:%ld: expected 'name|index' with an index below %d", path, lineno, MOVIELENS_GENRES);
            rc = -1;
            break;
        }
        *bar = 0;
        char *name = movielens_utf8(line);
        if (!name) rc = -1, snprintf(err, errlen, "out of memory");
        else snprintf(out->name[g], sizeof out->name[g], "%s", name);
        free(name);
        if ((int)g + 1 > out->n) out->n = (int)g + 1;
    }
    free(line);
    fclose(f);
    return rc;
}

int movielens_item_text(const movielens_item *it, const movielens_genres *g, char **text) {
    size_t n = strlen(it->title) + 3;
    for (int k = 0; k < g->n; k++) n += strlen(g->name[k]) + 2;
    char *t = malloc(n);
    if (!t) return -1;
    size_t o = (size_t)snprintf(t, n, "%s. ", it->title);
    int first = 1;
    for (int k = 0; k < g->n; k++)
        if (it->genre[k]) {
            o += (size_t)snprintf(t + o, n - o, "%s%s", first ? "" : ", ", g->name[k]);
            first = 0;
        }
    *text = t;
    return 0;
}

int movielens_item_ids(const char *dir, char ***ids, int *n, char *err, size_t errlen) {
    movielens_items m;
    *ids = NULL;
    *n = 0;
    if (movielens_items_load(dir, &m, err, errlen)) return -1;
    char **v = malloc((m.n ? m.n : 1) * sizeof *v);
    if (!v) {
        movielens_items_free(&m);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    for (size_t i = 0; i < m.n; i++) v[i] = m.items[i].id, m.items[i].id = NULL;   /* the ids change hands */
    *n = (int)m.n;
    *ids = v;
    movielens_items_free(&m);
    return 0;
}
