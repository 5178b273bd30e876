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

/* Calls fn on every non-empty line of DIR/name (chomped, editable); fn's error is prefixed with
 * "path:line: ". The one loop of the three files. */
typedef int (*movielens_line_fn)(char *line, void *ctx, char *err, size_t errlen);
static int movielens_lines(const char *dir, const char *name, movielens_line_fn fn, void *ctx, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)), -1;
    char *line = NULL, why[512];
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        movielens_chomp(line);
        if (line[0] && (rc = fn(line, ctx, why, sizeof why))) snprintf(err, errlen, "%s:%ld: %s", path, lineno, why);
    }
    if (!rc && ferror(f)) rc = -1, snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* u.data: user \t item \t rating \t unix seconds. */
static int movielens_data_line(char *line, void *ctx, char *err, size_t errlen) {
    event_list *out = ctx;
    char *fl[4];
    long long rating, secs;
    if (movielens_split(line, '\t', fl, 4) != 4)
        return snprintf(err, errlen, "expected 4 tab-separated fields (user, item, rating, timestamp)"), -1;
    if (!fl[0][0] || !fl[1][0]) return snprintf(err, errlen, "empty user or item id"), -1;
    if (movielens_parse_int(fl[2], &rating))
        return snprintf(err, errlen, "rating '%s' is not a non-negative integer", fl[2]), -1;
    if (movielens_parse_int(fl[3], &secs) || secs > INT64_MAX / 1000)
        return snprintf(err, errlen, "timestamp '%s' is not unix seconds", fl[3]), -1;
    source_event *e = event_list_push(out);
    if (!e || !(e->user_id = event_list_intern(out, fl[0], strlen(fl[0]))) ||
        !(e->item_id = event_list_intern(out, fl[1], strlen(fl[1]))) || !(e->action = event_list_intern(out, "rate", 4)))
        return snprintf(err, errlen, "out of memory"), -1;
    e->ts = secs * 1000;
    e->value = (float)rating;
    e->has_value = 1;
    return 0;
}

int events_load_movielens(const char *dir, event_list *out, char *err, size_t errlen) {
    if (event_list_init(out)) return snprintf(err, errlen, "out of memory"), -1;
    int rc = movielens_lines(dir, "u.data", movielens_data_line, out, err, errlen);
    if (!rc && event_list_sort_stable(out)) rc = -1, snprintf(err, errlen, "out of memory");
    if (rc) event_list_free(out);
    return rc;
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

/* One u.item line: id|title|release|video release|IMDb URL|19 genre flags. */
static int movielens_item_line(char *line, void *ctx, char *err, size_t errlen) {
    movielens_items *out = ctx;
    char *fl[5 + MOVIELENS_GENRES];
    int nf = movielens_split(line, '|', fl, 5 + MOVIELENS_GENRES);
    if (nf < 2 || !fl[0][0] || nf > 5 + MOVIELENS_GENRES)
        return snprintf(err, errlen, "expected 'id|title|...' (at most %d fields)", 5 + MOVIELENS_GENRES), -1;
    if (out->n % 1024 == 0) {
        movielens_item *ni = realloc(out->items, (out->n + 1024) * sizeof *ni);
        if (!ni) return snprintf(err, errlen, "out of memory"), -1;
        out->items = ni;
    }
    movielens_item *it = &out->items[out->n++];
    memset(it, 0, sizeof *it);   /* counted at once: a failure below is freed with the rest */
    it->has_genres = nf == 5 + MOVIELENS_GENRES;
    for (int g = 0; it->has_genres && g < MOVIELENS_GENRES; g++) it->genre[g] = !strcmp(fl[5 + g], "1");
    if (!(it->id = strdup(fl[0])) || !(it->title = movielens_utf8(fl[1]))) return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

int movielens_items_load(const char *dir, movielens_items *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int rc = movielens_lines(dir, "u.item", movielens_item_line, out, err, errlen);
    if (rc) movielens_items_free(out);
    return rc;
}

void movielens_items_free(movielens_items *m) {
    for (size_t i = 0; i < m->n; i++) free(m->items[i].id), free(m->items[i].title);
    free(m->items);
    memset(m, 0, sizeof *m);
}

/* One u.genre line: name|index. */
static int movielens_genre_line(char *line, void *ctx, char *err, size_t errlen) {
    movielens_genres *out = ctx;
    char *bar = strrchr(line, '|');
    long long g;
    if (!bar || movielens_parse_int(bar + 1, &g) || g >= MOVIELENS_GENRES)
        return snprintf(err, errlen, "expected 'name|index' with an index below %d", MOVIELENS_GENRES), -1;
    *bar = 0;
    char *name = movielens_utf8(line);
    if (!name) return snprintf(err, errlen, "out of memory"), -1;
    snprintf(out->name[g], sizeof out->name[g], "%s", name);
    free(name);
    if ((int)g + 1 > out->n) out->n = (int)g + 1;
    return 0;
}

int movielens_genres_load(const char *dir, movielens_genres *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    return movielens_lines(dir, "u.genre", movielens_genre_line, out, err, errlen);
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
