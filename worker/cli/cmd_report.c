/* cmd_report: `ievo report`, one self-contained HTML page about a run.
 *
 * Inputs, all files a run leaves behind (none needs a broker or the model):
 *   --series FILE    worker snapshots as JSON lines {"t": s, "applied": n, "consumed": n, "lag": n}
 *                    (the proposed `stats.series.file`, or /metrics scraped periodically);
 *                    repeatable, one line per file in the charts (one file per worker)
 *   --vectors FILE   the output topic as `ievo consume --from-beginning` prints it
 *   --truth FILE     the synthetic generator's ground truth (`ievo produce --truth`)
 *   --movielens DIR  u.data / u.item / u.genre: what each user rated, titles and genres
 * The page: throughput and consumer lag over time; the drift of every user's vector by event
 * number (mean over users); and for a few users (the most active, or --user ID) their drift per
 * event, their interest vector over their history as a heat map, the true topic over time (with
 * --truth) and the genres of what they rated over windows of events (with --movielens: that view
 * needs no model at all, it is what the user did).
 *
 * Self-contained by construction: inline CSS and SVG, no script, no font, no image and no link
 * to anything outside the file (the MovieLens IMDb URLs are never read), so it opens the same
 * offline, in a mail attachment or in CI artifacts. Outputs are at least once: repeats of a
 * (user, event number) are collapsed (they carry the same vector).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "commands.h"
#include "event_source.h"
#include "json_text.h"
#include "log.h"
#include "settings.h"
#include "str_index.h"

#define REPORT_MAX_SERIES 8
#define REPORT_MAX_USERS_SHOWN 12
#define REPORT_HEAT_COLUMNS 120    /* the vector heat map samples at most this many events */
#define REPORT_DRIFT_EVENTS 400    /* mean drift by event number: the first this many */
#define REPORT_MAX_EVENT 100000000 /* the largest event number a vectors line may carry */
/* The per-event arrays (every user's drift; the shown users' vectors, times, topics, items) are
 * sized by the event numbers the lines claim, not by the lines: a few short lines could claim
 * billions. Their total is checked against this before anything is allocated. */
#define REPORT_MAX_ARRAY_BYTES (INT64_C(1) << 30)
#define ML_GENRES MOVIELENS_GENRES
/* Writes a string literal. */
#define LIT(f, s) fputs((s), (f))

/* 20 distinguishable colours (the first ten are the usual categorical set, then lighter tints). */
static const char *const REPORT_PALETTE[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                             "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78",
                                             "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#393b79",
                                             "#dbdb8d", "#9edae5"};
#define PALETTE_N (sizeof REPORT_PALETTE / sizeof REPORT_PALETTE[0])

/* ---- inputs ------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    double *t, *applied, *consumed, *lag;   /* lag < 0: unknown at that time */
    size_t n, cap;
} series;

typedef struct {
    const char *id;        /* the index's copy */
    int64_t events;        /* largest event number seen */
    int64_t lines, lines_again;   /* its lines in the first pass, and so far in the second */
    /* Filled for the users shown (second pass): index k-1 is event k. */
    float *drift;          /* NaN where no output was read */
    float *vec;            /* events x dim */
    int64_t *ts;
    int *topic;            /* --truth: true topic per event (-1 unknown) */
    int *item;             /* --movielens: item index per event (-1 unknown) */
    int shown;
} report_user;

/* The users of the vectors file, by id: users[i] is the id of index i in ids. */
typedef struct {
    str_index ids;
    report_user *users;
    size_t n, cap;
} user_map;

typedef struct {
    char title[256];       /* UTF-8 */
    unsigned char genre[ML_GENRES];
} ml_item;

typedef struct {
    series series[REPORT_MAX_SERIES];
    int n_series;
    user_map users;
    int dim;
    char model_id[128];
    int64_t lines, distinct, ts_min, ts_max;
    double drift_sum[REPORT_DRIFT_EVENTS];
    int64_t drift_cnt[REPORT_DRIFT_EVENTS];
    int64_t truth_lines, truth_switches;
    int max_topic;
    ml_item *items;        /* indexed by MovieLens item id */
    int n_items;
    char genres[ML_GENRES][32];
} report;

/* The user record for id (created when absent and create is set); NULL when absent, or out of
 * memory. Records move while users are added: hold no pointer across a create. */
static report_user *user_get(user_map *m, const char *id, size_t len, int create) {
    int32_t i = str_index_get(&m->ids, id, len, create);
    if (i < 0) return NULL;
    if ((size_t)i < m->n) return &m->users[i];
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        report_user *nu = realloc(m->users, nc * sizeof *nu);
        if (!nu) return NULL;
        m->users = nu;
        m->cap = nc;
    }
    report_user *u = &m->users[m->n++];
    memset(u, 0, sizeof *u);
    u->id = str_index_key(&m->ids, i);
    return u;
}

static void report_free(report *r) {
    for (int i = 0; i < r->n_series; i++) {
        free(r->series[i].t);
        free(r->series[i].applied);
        free(r->series[i].consumed);
        free(r->series[i].lag);
    }
    for (size_t i = 0; i < r->users.n; i++) {
        report_user *u = &r->users.users[i];
        free(u->drift);
        free(u->vec);
        free(u->ts);
        free(u->topic);
        free(u->item);
    }
    free(r->users.users);
    str_index_free(&r->users.ids);
    free(r->items);
}

/* Calls fn on every JSON line of path (blank lines skipped). A line that does not parse, or is
 * not an object, is an error naming the file and line. */
typedef int (*line_fn)(report *r, json_t *v, void *ctx, char *err, size_t errlen);
static int for_each_json_line(report *r, const char *path, line_fn fn, void *ctx, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && isspace((unsigned char)line[len - 1])) len--;
        if (!len) continue;
        json_error_t jerr;
        json_t *v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        char ferr[400] = "", jt[JSON_ERROR_TEXT_LENGTH];
        if (!v || !json_is_object(v)) {
            if (v) snprintf(ferr, sizeof ferr, "not a JSON object");
            else snprintf(ferr, sizeof ferr, "at %d: %s", jerr.position, json_error_text(&jerr, jt, sizeof jt));
            rc = -1;
        } else {
            rc = fn(r, v, ctx, ferr, sizeof ferr);
        }
        json_decref(v);
        if (rc) snprintf(err, errlen, "%s:%ld: %s", path, lineno, ferr);
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* A number field when it is there and a number, else def. */
static double number_or(const json_t *v, const char *key, double def) {
    const json_t *x = json_object_get(v, key);
    return json_is_number(x) ? json_number_value(x) : def;
}

static int push_d(double **a, size_t n, size_t *cap, double v, int grow) {
    if (grow) {
        size_t nc = *cap ? *cap * 2 : 256;
        double *na = realloc(*a, nc * sizeof *na);
        if (!na) return -1;
        *a = na;
    }
    (*a)[n] = v;
    return 0;
}

static int series_line(report *r, json_t *v, void *ctx, char *err, size_t errlen) {
    (void)r;
    series *s = ctx;
    double t, applied;
    if (json_unpack(v, "{s:F,s:F}", "t", &t, "applied", &applied)) {
        snprintf(err, errlen, "a series line needs numbers \"t\" (seconds) and \"applied\"");
        return -1;
    }
    double consumed = number_or(v, "consumed", NAN), lag = number_or(v, "lag", -1);
    if (s->n && t < s->t[s->n - 1]) {
        snprintf(err, errlen, "\"t\" goes backwards (%g after %g)", t, s->t[s->n - 1]);
        return -1;
    }
    int grow = s->n == s->cap;
    size_t cap = s->cap;
    if (push_d(&s->t, s->n, &cap, t, grow) || push_d(&s->applied, s->n, &cap, applied, grow) ||
        push_d(&s->consumed, s->n, &cap, consumed, grow) || push_d(&s->lag, s->n, &cap, lag, grow)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (grow) s->cap = s->cap ? s->cap * 2 : 256;
    s->n++;
    return 0;
}

/* The fields of an InterestVector line both passes read. */
typedef struct {
    const char *id;
    size_t idlen;
    json_int_t events, ts;
    double drift;
    json_t *vector;
} vector_line;

static int vector_fields(json_t *v, vector_line *l, char *err, size_t errlen) {
    if (json_unpack(v, "{s:s%,s:I,s:I,s:F,s:o}", "user_id", &l->id, &l->idlen, "events", &l->events, "ts",
                    &l->ts, "drift", &l->drift, "vector", &l->vector) ||
        l->events < 1 || !json_is_array(l->vector)) {
        snprintf(err, errlen, "not an InterestVector line (user_id, events >= 1, ts, drift, vector)");
        return -1;
    }
    return 0;
}

/* First pass over the vectors: event counts per user, totals, mean drift by event number. */
static int vectors_count_line(report *r, json_t *v, void *ctx, char *err, size_t errlen) {
    (void)ctx;
    vector_line l;
    if (vector_fields(v, &l, err, errlen)) return -1;
    if (l.events > REPORT_MAX_EVENT) {
        snprintf(err, errlen, "events %lld out of range", (long long)l.events);
        return -1;
    }
    size_t dim = json_array_size(l.vector);
    if (r->dim == 0) {
        r->dim = (int)dim;
        const json_t *mid = json_object_get(v, "model");
        if (json_is_string(mid)) snprintf(r->model_id, sizeof r->model_id, "%s", json_string_value(mid));
    } else if ((int)dim != r->dim) {
        snprintf(err, errlen, "vector of %zu floats after vectors of %d", dim, r->dim);
        return -1;
    }
    report_user *u = user_get(&r->users, l.id, l.idlen, 1);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->lines++;
    u->lines++;
    if (l.events > u->events) u->events = l.events;
    if (!r->ts_min || l.ts < r->ts_min) r->ts_min = l.ts;
    if (l.ts > r->ts_max) r->ts_max = l.ts;
    return 0;
}

/* Second pass: per-event data of the users shown, and the distinct outputs of everyone. */
static int vectors_fill_line(report *r, json_t *v, void *ctx, char *err, size_t errlen) {
    (void)ctx;
    vector_line l;
    if (vector_fields(v, &l, err, errlen)) return -1;
    int64_t ev = l.events;
    report_user *u = user_get(&r->users, l.id, l.idlen, 0);
    /* Everything the arrays were sized by is checked again: the file may have changed since the
     * first read (a worker still appending, a pipe that gives other bytes). */
    size_t dim = json_array_size(l.vector);
    if (!u || ev > u->events || ++u->lines_again > u->lines || dim != (size_t)r->dim) {
        snprintf(err, errlen, "the file changed between two reads (%s)",
                 !u ? "a user the first read did not see" : ev > u->events ? "a larger event number"
                 : dim != (size_t)r->dim ? "a vector of another size" : "more lines of a user");
        return -1;
    }
    if (!u->drift) {
        /* Every user's drift: repeats of an event are collapsed, and the means count each once. */
        if (!(u->drift = malloc((size_t)u->events * sizeof *u->drift))) goto oom;
        for (int64_t k = 0; k < u->events; k++) u->drift[k] = NAN;
    }
    int fresh = isnan(u->drift[ev - 1]);
    u->drift[ev - 1] = (float)l.drift;
    if (fresh) {
        r->distinct++;
        if (ev <= REPORT_DRIFT_EVENTS) {
            r->drift_sum[ev - 1] += l.drift;
            r->drift_cnt[ev - 1]++;
        }
    }
    if (!u->shown) return 0;
    if (!u->vec) {
        if (!(u->vec = calloc((size_t)u->events * (size_t)r->dim, sizeof *u->vec))) goto oom;
        if (!(u->ts = calloc((size_t)u->events, sizeof *u->ts))) goto oom;
    }
    for (int d = 0; d < r->dim; d++) {
        const json_t *x = json_array_get(l.vector, (size_t)d);
        u->vec[(size_t)(ev - 1) * (size_t)r->dim + (size_t)d] = json_is_number(x) ? (float)json_number_value(x) : NAN;
    }
    u->ts[ev - 1] = l.ts;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int truth_line(report *r, json_t *v, void *ctx, char *err, size_t errlen) {
    (void)ctx;
    const char *id;
    size_t idlen;
    json_int_t ev, topic;
    if (json_unpack(v, "{s:s%,s:I,s:I}", "user_id", &id, &idlen, "events", &ev, "topic", &topic)) {
        snprintf(err, errlen, "not a truth line (user_id, events, topic)");
        return -1;
    }
    r->truth_lines++;
    if (json_is_true(json_object_get(v, "switched"))) r->truth_switches++;
    if (topic > r->max_topic && topic < 1000) r->max_topic = (int)topic;
    report_user *u = user_get(&r->users, id, idlen, 0);
    if (!u || !u->shown || ev < 1 || ev > u->events) return 0;
    if (!u->topic) {
        if (!(u->topic = malloc((size_t)u->events * sizeof *u->topic))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int64_t k = 0; k < u->events; k++) u->topic[k] = -1;
    }
    u->topic[ev - 1] = (int)topic;
    return 0;
}

/* ---- MovieLens ---------------------------------------------------------------------------- */

/* Titles and genres of u.item, indexed by the numeric item id; the genres' names of u.genre. */
static int ml_load_items(report *r, const char *dir, char *err, size_t errlen) {
    movielens_items m;
    movielens_genres g;
    if (movielens_genres_load(dir, &g, err, errlen) || movielens_items_load(dir, &m, err, errlen)) return -1;
    for (int k = 0; k < ML_GENRES; k++) snprintf(r->genres[k], sizeof r->genres[k], "%s", k < g.n ? g.name[k] : "");
    int rc = 0;
    for (size_t i = 0; i < m.n && !rc; i++) {
        const movielens_item *it = &m.items[i];
        int id = atoi(it->id);
        if (!it->has_genres || id <= 0 || id > 10000000) {
            snprintf(err, errlen, "%s/u.item: item '%s': expected a numeric id and 19 genre flags", dir, it->id);
            rc = -1;
        } else if (id >= r->n_items) {
            int nn = id + 1 > r->n_items * 2 ? id + 1 : r->n_items * 2;
            ml_item *ni = realloc(r->items, (size_t)nn * sizeof *ni);
            if (!ni) rc = -1, snprintf(err, errlen, "out of memory");
            else memset(ni + r->n_items, 0, (size_t)(nn - r->n_items) * sizeof *ni), r->items = ni, r->n_items = nn;
        }
        if (!rc) {
            snprintf(r->items[id].title, sizeof r->items[id].title, "%s", it->title);
            memcpy(r->items[id].genre, it->genre, ML_GENRES);
        }
    }
    movielens_items_free(&m);
    return rc;
}

/* The items of the users shown, in the order the producer sends them (ts, ties in file order:
 * the MovieLens loader's order): a user's k-th event in that order is its output number k. */
static int ml_load_events(report *r, const char *dir, char *err, size_t errlen) {
    event_list ev;
    if (events_load_movielens(dir, &ev, err, errlen)) return -1;
    size_t *seen = calloc(r->users.n ? r->users.n : 1, sizeof *seen);
    int rc = 0;
    for (size_t i = 0; i < r->users.n && !rc; i++) {
        report_user *u = &r->users.users[i];
        if (!u->shown) continue;
        if (!(u->item = malloc((size_t)u->events * sizeof *u->item))) rc = -1;
        for (int64_t k = 0; u->item && k < u->events; k++) u->item[k] = -1;
    }
    for (size_t i = 0; seen && !rc && i < ev.n; i++) {
        const source_event *e = &ev.ev[i];
        report_user *u = user_get(&r->users, e->user_id, strlen(e->user_id), 0);
        if (!u || !u->shown) continue;
        size_t k = (size_t)(u - r->users.users);
        if ((int64_t)seen[k] < u->events) u->item[seen[k]] = atoi(e->item_id);
        seen[k]++;
    }
    if (rc || !seen) snprintf(err, errlen, "out of memory"), rc = -1;
    free(seen);
    event_list_free(&ev);
    return rc;
}

/* ---- HTML and SVG ------------------------------------------------------------------------- */

/* Writes UTF-8 text escaped for HTML. */
static void html_str(FILE *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&') LIT(b, "&amp;");
        else if (c == '<') LIT(b, "&lt;");
        else if (c == '>') LIT(b, "&gt;");
        else if (c == '"') LIT(b, "&quot;");
        else if (c == '\'') LIT(b, "&#39;");
        else if (c < 0x20 && c != '\t') LIT(b, " ");
        else fputc(c, b);
    }
}

/* A "nice" tick step for a range: 1, 2 or 5 times a power of ten, about n ticks. */
static double nice_step(double range, int n) {
    if (!(range > 0) || !isfinite(range)) return 1;
    double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_num(char *out, size_t n, double v) {
    double a = fabs(v);
    if (a >= 1e6) snprintf(out, n, "%.3gM", v / 1e6);
    else if (a >= 1e4) snprintf(out, n, "%.3gk", v / 1e3);
    else snprintf(out, n, "%.4g", v);
}

typedef struct {
    const char *name;
    const double *x, *y;   /* y < 0 or NaN: a gap (no point) */
    size_t n;
    const char *color;
} chart_line;

typedef struct {
    int w, h;              /* whole SVG */
    int ml, mr, mt, mb;    /* plot margins */
    double x0, x1, y0, y1;
} chart_frame;

static double cx(const chart_frame *f, double x) {
    return f->ml + (x - f->x0) / (f->x1 - f->x0) * (f->w - f->ml - f->mr);
}
static double cy(const chart_frame *f, double y) {
    return f->h - f->mb - (y - f->y0) / (f->y1 - f->y0) * (f->h - f->mt - f->mb);
}

/* Opens an <svg> with axes, grid and tick labels for the frame. */
static void chart_open(FILE *b, chart_frame *f, const char *aria, const char *xlabel, const char *ylabel) {
    if (!(f->x1 > f->x0)) f->x1 = f->x0 + 1;
    if (!(f->y1 > f->y0)) f->y1 = f->y0 + 1;
    fprintf(b, "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            f->w, f->h, f->w, f->h);
    html_str(b, aria);
    fprintf(b, "\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fbfbfd\" stroke=\"#ccc\"/>", f->ml,
            f->mt, f->w - f->ml - f->mr, f->h - f->mt - f->mb);
    char num[32];
    double sy = nice_step(f->y1 - f->y0, 5);
    for (double y = ceil(f->y0 / sy) * sy; y <= f->y1 + 1e-9 * sy; y += sy) {
        fmt_num(num, sizeof num, fabs(y) < 1e-12 * sy ? 0 : y);
        fprintf(b,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e8\"/>"
                "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
                f->ml, f->w - f->mr, cy(f, y), cy(f, y), f->ml - 4, cy(f, y) + 4, num);
    }
    double sx = nice_step(f->x1 - f->x0, 8);
    for (double x = ceil(f->x0 / sx) * sx; x <= f->x1 + 1e-9 * sx; x += sx) {
        fmt_num(num, sizeof num, fabs(x) < 1e-12 * sx ? 0 : x);
        fprintf(b,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>",
                cx(f, x), cx(f, x), f->h - f->mb, f->h - f->mb + 4, cx(f, x), f->h - f->mb + 16, num);
    }
    fprintf(b, "<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"middle\">", (f->ml + f->w - f->mr) / 2,
            f->h - 4);
    html_str(b, xlabel);
    fprintf(b, "</text><text x=\"12\" y=\"%d\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 12 %d)\">",
            (f->mt + f->h - f->mb) / 2, (f->mt + f->h - f->mb) / 2);
    html_str(b, ylabel);
    LIT(b, "</text>");
}

static void chart_legend(FILE *b, const chart_frame *f, const char *const *names, const char *const *colors, int n) {
    int x = f->ml + 8;
    for (int i = 0; i < n; i++) {
        fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"legend\">",
                x, f->mt + 6, colors[i], x + 14, f->mt + 15);
        html_str(b, names[i]);
        LIT(b, "</text>");
        x += 24 + 7 * (int)strlen(names[i]);
    }
}

/* Polylines (a gap where y is negative or NaN), with a legend when there are several. */
static void line_chart(FILE *b, const char *title, const char *xlabel, const char *ylabel, const chart_line *lines,
                       int nl, int w, int h, int y_from_zero) {
    chart_frame f = {.w = w, .h = h, .ml = 64, .mr = 16, .mt = 10, .mb = 36,
                     .x0 = INFINITY, .x1 = -INFINITY, .y0 = INFINITY, .y1 = -INFINITY};
    for (int l = 0; l < nl; l++)
        for (size_t i = 0; i < lines[l].n; i++) {
            double x = lines[l].x[i], y = lines[l].y[i];
            if (!isfinite(x) || !isfinite(y) || y < 0) continue;
            if (x < f.x0) f.x0 = x;
            if (x > f.x1) f.x1 = x;
            if (y < f.y0) f.y0 = y;
            if (y > f.y1) f.y1 = y;
        }
    if (!isfinite(f.x0)) f.x0 = 0, f.x1 = 1, f.y0 = 0, f.y1 = 1;
    if (y_from_zero) f.y0 = 0;
    f.y1 += (f.y1 - f.y0) * 0.05;
    if (!(f.y1 > f.y0)) f.y1 = f.y0 + 1;
    LIT(b, "<figure><figcaption>");
    html_str(b, title);
    LIT(b, "</figcaption>");
    chart_open(b, &f, title, xlabel, ylabel);
    for (int l = 0; l < nl; l++) {
        int open = 0;
        for (size_t i = 0; i < lines[l].n; i++) {
            double x = lines[l].x[i], y = lines[l].y[i];
            if (!isfinite(x) || !isfinite(y) || y < 0) {
                if (open) LIT(b, "\"/>");
                open = 0;
                continue;
            }
            if (!open)
                fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", lines[l].color);
            fprintf(b, "%.1f,%.1f ", cx(&f, x), cy(&f, y));
            open = 1;
        }
        if (open) LIT(b, "\"/>");
    }
    if (nl > 1) {
        const char *names[REPORT_MAX_SERIES * 2], *colors[REPORT_MAX_SERIES * 2];
        for (int l = 0; l < nl && l < REPORT_MAX_SERIES * 2; l++) names[l] = lines[l].name, colors[l] = lines[l].color;
        chart_legend(b, &f, names, colors, nl < REPORT_MAX_SERIES * 2 ? nl : REPORT_MAX_SERIES * 2);
    }
    LIT(b, "</svg></figure>\n");
}

/* Diverging blue-white-red for v in [-1, 1]. */
static void heat_color(char *out, size_t n, double v) {
    if (!isfinite(v)) {
        snprintf(out, n, "#dddddd");
        return;
    }
    if (v > 1) v = 1;
    if (v < -1) v = -1;
    int r, g, bl;
    if (v >= 0) r = 255, g = (int)(255 - 200 * v), bl = (int)(255 - 220 * v);
    else r = (int)(255 + 220 * v), g = (int)(255 + 150 * v), bl = 255;
    snprintf(out, n, "#%02x%02x%02x", r, g, bl);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ---- the page ----------------------------------------------------------------------------- */

static void page_head(FILE *b, const char *title) {
    LIT(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    LIT(b, "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    html_str(b, title);
    static const char css[] =
        "</title><style>\n"
        "body{font-family:sans-serif;margin:16px 24px;color:#222;background:#fff;max-width:1180px}\n"
        "h1{font-size:22px;margin:4px 0 8px}h2{font-size:18px;margin:22px 0 6px;border-bottom:1px solid #ddd}\n"
        "h3{font-size:15px;margin:14px 0 4px}figure{margin:6px 0 10px}figcaption{font-size:13px;color:#444;margin:2px 0}\n"
        ".tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}.legend{font-size:11px;fill:#222}\n"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}\n"
        ".grid{display:flex;flex-wrap:wrap;gap:8px 24px}.note{font-size:12px;color:#555}\n"
        ".chip{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px}\n"
        "</style></head><body>\n";
    fputs(css, b);
}

static void section_throughput(FILE *b, const report *r) {
    LIT(b, "<h2>Throughput and lag</h2>\n");
    if (!r->n_series) {
        LIT(b, "<p class=\"note\">No --series file given: no time series.</p>\n");
        return;
    }
    chart_line tl[REPORT_MAX_SERIES * 2] = {0}, ll[REPORT_MAX_SERIES] = {0};
    double *bufs[REPORT_MAX_SERIES * 3] = {0};
    int nt = 0, nlag = 0, nb = 0;
    for (int i = 0; i < r->n_series; i++) {
        const series *s = &r->series[i];
        if (s->n < 2) continue;
        double *x = malloc(s->n * sizeof *x), *ya = malloc(s->n * sizeof *ya), *yc = malloc(s->n * sizeof *yc);
        bufs[nb++] = x, bufs[nb++] = ya, bufs[nb++] = yc;
        if (!x || !ya || !yc) break;
        size_t m = 0;
        for (size_t k = 1; k < s->n; k++) {
            double dt = s->t[k] - s->t[k - 1];
            if (dt <= 0) continue;
            x[m] = s->t[k];
            ya[m] = (s->applied[k] - s->applied[k - 1]) / dt;
            yc[m] = isnan(s->consumed[k]) ? NAN : (s->consumed[k] - s->consumed[k - 1]) / dt;
            m++;
        }
        const char *name = base_name(s->path);
        const char *color = REPORT_PALETTE[(2 * i) % PALETTE_N];
        if (r->n_series == 1) {   /* one worker: consumed under applied (they mostly coincide) */
            tl[nt++] = (chart_line){.name = "consumed", .x = x, .y = yc, .n = m, .color = REPORT_PALETTE[1]};
            tl[nt++] = (chart_line){.name = "applied", .x = x, .y = ya, .n = m, .color = color};
        } else {
            tl[nt++] = (chart_line){.name = name, .x = x, .y = ya, .n = m, .color = color};
        }
        ll[nlag++] = (chart_line){.name = name, .x = s->t, .y = s->lag, .n = s->n, .color = color};
    }
    LIT(b, "<div class=\"grid\">");
    line_chart(b, "Events per second (from successive snapshots)", "seconds", "events/s", tl, nt, 540, 240, 1);
    line_chart(b, "Consumer lag (records, summed over partitions)", "seconds", "records", ll, nlag, 540, 240, 1);
    LIT(b, "</div>\n");
    for (int i = 0; i < nb; i++) free(bufs[i]);
}

static void section_drift_all(FILE *b, const report *r) {
    double x[REPORT_DRIFT_EVENTS], y[REPORT_DRIFT_EVENTS];
    size_t n = 0;
    for (int k = 1; k < REPORT_DRIFT_EVENTS; k++)   /* event 1 has drift 0 by definition */
        if (r->drift_cnt[k] >= 3) {
            x[n] = k + 1;
            y[n] = r->drift_sum[k] / (double)r->drift_cnt[k];
            n++;
        }
    chart_line l = {.name = "mean drift", .x = x, .y = y, .n = n, .color = REPORT_PALETTE[4]};
    line_chart(b, "Mean drift (1 - cosine to the previous vector) by event number, all users with that many events",
               "event number", "drift", &l, 1, 1140, 220, 1);
}

/* Genres of the items in windows of `win` events: a stacked bar per window. */
static void user_genres(FILE *b, const report *r, const report_user *u) {
    int64_t n = u->events;
    int win = (int)(n / 24 > 5 ? n / 24 : 5);
    int64_t nw = (n + win - 1) / win;
    double tot[ML_GENRES] = {0};
    double *share = calloc((size_t)nw * ML_GENRES, sizeof *share);
    if (!share) return;
    for (int64_t e = 0; e < n; e++) {
        int it = u->item ? u->item[e] : -1;
        if (it <= 0 || it >= r->n_items) continue;
        int k = 0;
        for (int g = 0; g < ML_GENRES; g++) k += r->items[it].genre[g];
        for (int g = 0; g < ML_GENRES && k; g++)
            if (r->items[it].genre[g]) {
                share[(e / win) * ML_GENRES + g] += 1.0 / k;
                tot[g] += 1.0 / k;
            }
    }
    int order[ML_GENRES];
    for (int g = 0; g < ML_GENRES; g++) order[g] = g;
    for (int i = 0; i < ML_GENRES; i++)
        for (int j = i + 1; j < ML_GENRES; j++)
            if (tot[order[j]] > tot[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    chart_frame f = {.w = 1140, .h = 200, .ml = 64, .mr = 16, .mt = 24, .mb = 36, .x0 = 0, .x1 = (double)n, .y0 = 0,
                     .y1 = 1};
    char cap[160];
    snprintf(cap, sizeof cap, "Genres of the items rated, share per window of %d events (no model involved)", win);
    LIT(b, "<figure><figcaption>");
    html_str(b, cap);
    LIT(b, "</figcaption>");
    chart_open(b, &f, cap, "event number", "genre share");
    for (int64_t w = 0; w < nw; w++) {
        double sum = 0;
        for (int g = 0; g < ML_GENRES; g++) sum += share[w * ML_GENRES + g];
        if (sum <= 0) continue;
        double y = 0;
        double x0 = cx(&f, (double)(w * win)), x1 = cx(&f, (double)((w + 1) * win > n ? n : (w + 1) * win));
        for (int i = 0; i < ML_GENRES; i++) {
            int g = order[i];
            double s = share[w * ML_GENRES + g] / sum;
            if (s <= 0) continue;
            fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x0,
                    cy(&f, y + s), x1 - x0 > 1.5 ? x1 - x0 - 0.5 : 1, cy(&f, y) - cy(&f, y + s),
                    REPORT_PALETTE[g % PALETTE_N]);
            html_str(b, r->genres[g]);
            fprintf(b, " %.0f%%</title></rect>", s * 100);
            y += s;
        }
    }
    const char *names[6], *colors[6];
    int nl = 0;
    for (int i = 0; i < 6 && tot[order[i]] > 0; i++) names[nl] = r->genres[order[i]], colors[nl++] = REPORT_PALETTE[order[i] % PALETTE_N];
    chart_frame lf = f;
    lf.mt = 4;
    chart_legend(b, &lf, names, colors, nl);
    LIT(b, "</svg></figure>\n");
    free(share);
}

/* Top genres at the start and the end of a user's history, and the last items. */
static void user_genre_notes(FILE *b, const report *r, const report_user *u) {
    int64_t n = u->events, fifth = n / 5 > 0 ? n / 5 : 1;
    for (int part = 0; part < 2; part++) {
        double t[ML_GENRES] = {0};
        int64_t a = part ? n - fifth : 0, z = part ? n : fifth;
        for (int64_t e = a; e < z; e++) {
            int it = u->item ? u->item[e] : -1;
            if (it <= 0 || it >= r->n_items) continue;
            for (int g = 0; g < ML_GENRES; g++) t[g] += r->items[it].genre[g];
        }
        fprintf(b, "<p class=\"note\">%s %lld events, top genres:", part ? "Last" : "First", (long long)(z - a));
        for (int k = 0; k < 3; k++) {
            int best = -1;
            for (int g = 0; g < ML_GENRES; g++)
                if (t[g] > 0 && (best < 0 || t[g] > t[best])) best = g;
            if (best < 0) break;
            fprintf(b, "<span class=\"chip\" style=\"background:%s\"></span>", REPORT_PALETTE[best % PALETTE_N]);
            html_str(b, r->genres[best]);
            fprintf(b, " (%.0f)", t[best]);
            t[best] = 0;
        }
        LIT(b, "</p>\n");
    }
    LIT(b, "<p class=\"note\">Last items: ");
    for (int64_t e = n - 1, k = 0; e >= 0 && k < 5; e--) {
        int it = u->item ? u->item[e] : -1;
        if (it <= 0 || it >= r->n_items || !r->items[it].title[0]) continue;
        if (k++) LIT(b, "; ");
        html_str(b, r->items[it].title);
    }
    LIT(b, "</p>\n");
}

static void section_user(FILE *b, const report *r, const report_user *u) {
    int64_t n = u->events, have = 0;
    double dsum = 0;
    for (int64_t k = 0; k < n; k++)
        if (u->drift && !isnan(u->drift[k])) have++, dsum += u->drift[k];
    LIT(b, "<h3>User ");
    html_str(b, u->id);
    fprintf(b, "</h3><p class=\"note\">%lld events, %lld outputs read, mean drift %.4f", (long long)n,
            (long long)have, have ? dsum / (double)have : 0.0);
    if (u->ts && u->ts[0] && u->ts[n - 1]) {
        double days = (double)(u->ts[n - 1] - u->ts[0]) / 86400000.0;
        fprintf(b, ", over %.1f days of event time", days);
    }
    LIT(b, "</p>\n");

    /* Drift per event, with the true topic as a strip and its switches as lines. */
    chart_frame f = {.w = 1140, .h = u->topic ? 230 : 200, .ml = 64, .mr = 16, .mt = 10, .mb = u->topic ? 66 : 36,
                     .x0 = 0.5, .x1 = (double)n + 0.5, .y0 = 0, .y1 = 0};
    for (int64_t k = 0; k < n; k++)
        if (u->drift && isfinite(u->drift[k]) && u->drift[k] > f.y1) f.y1 = u->drift[k];
    f.y1 = f.y1 > 0 ? f.y1 * 1.05 : 1;
    const char *cap = u->topic ? "Drift per event; below, the true topic (ground truth), switches dashed"
                               : "Drift per event (1 - cosine to the previous vector)";
    LIT(b, "<figure><figcaption>");
    html_str(b, cap);
    LIT(b, "</figcaption>");
    chart_open(b, &f, cap, "event number", "drift");
    if (u->topic) {
        int ytop = f.h - f.mb + 22;
        for (int64_t k = 0; k < n; k++) {
            int t = u->topic[k];
            if (t < 0) continue;
            fprintf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.2f\" height=\"12\" fill=\"%s\"><title>topic %d</title></rect>",
                    cx(&f, (double)k + 0.5), ytop, cx(&f, (double)k + 1.5) - cx(&f, (double)k + 0.5) + 0.3,
                    REPORT_PALETTE[t % PALETTE_N], t);
            if (k > 0 && u->topic[k - 1] >= 0 && u->topic[k - 1] != t)
                fprintf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>",
                        cx(&f, (double)k + 0.5), cx(&f, (double)k + 0.5), f.mt, f.h - f.mb);
        }
    }
    int open = 0;
    for (int64_t k = 0; k < n; k++) {
        if (!u->drift || isnan(u->drift[k])) {
            if (open) LIT(b, "\"/>");
            open = 0;
            continue;
        }
        if (!open) fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", REPORT_PALETTE[0]);
        fprintf(b, "%.1f,%.1f ", cx(&f, (double)k + 1), cy(&f, u->drift[k]));
        open = 1;
    }
    if (open) LIT(b, "\"/>");
    LIT(b, "</svg></figure>\n");

    /* The interest vector over the history: dims down, sampled events across. */
    if (u->vec && r->dim > 0) {
        int cols = n < REPORT_HEAT_COLUMNS ? (int)n : REPORT_HEAT_COLUMNS;
        int rows = r->dim;
        double vmax = 0;
        for (int64_t k = 0; k < n * rows; k++)
            if (isfinite(u->vec[k]) && fabs(u->vec[k]) > vmax) vmax = fabs(u->vec[k]);
        if (vmax <= 0) vmax = 1;
        int cw = 1060 / cols, ch = rows <= 32 ? 4 : rows <= 64 ? 2 : 1;
        if (cw < 1) cw = 1;
        int w = 64 + cols * cw + 16, h = 10 + rows * ch + 30;
        LIT(b, "<figure><figcaption>Interest vector over the history (dimensions down, events across; "
                           "red positive, blue negative)</figcaption>");
        fprintf(b, "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"interest vector heat map\">",
                w, h, w, h);
        char col[16];
        for (int c = 0; c < cols; c++) {
            int64_t e = cols == n ? c : (int64_t)((double)c * (double)(n - 1) / (double)(cols - 1 > 0 ? cols - 1 : 1));
            for (int d = 0; d < rows; d++) {
                heat_color(col, sizeof col, u->vec[(size_t)e * (size_t)rows + (size_t)d] / vmax);
                fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>", 64 + c * cw,
                        10 + d * ch, cw, ch, col);
            }
        }
        fprintf(b, "<text x=\"64\" y=\"%d\" class=\"tick\">event 1</text>"
                           "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">event %lld</text>"
                           "<text x=\"58\" y=\"16\" class=\"tick\" text-anchor=\"end\">dim 0</text>"
                           "<text x=\"58\" y=\"%d\" class=\"tick\" text-anchor=\"end\">dim %d</text></svg></figure>\n",
                10 + rows * ch + 14, 64 + cols * cw, 10 + rows * ch + 14, (long long)n, 10 + rows * ch, rows - 1);
    }
    if (u->item) user_genres(b, r, u), user_genre_notes(b, r, u);
}

/* ---- the command ------------------------------------------------------------------------------ */

enum { OPT_SERIES = CLI_OPT_ID_FIRST_FREE, OPT_VECTORS, OPT_TRUTH, OPT_USERS, OPT_USER, OPT_TITLE };

static const cli_option OPTS[] = {
    CLI_OPT_OUT("the page to write"),
    {"series", OPT_SERIES, "FILE", "worker snapshots, JSON lines {\"t\", \"applied\", \"consumed\", \"lag\"}; repeatable", NULL},
    {"vectors", OPT_VECTORS, "FILE", "`ievo consume -t interest-vectors --from-beginning` output", NULL},
    {"truth", OPT_TRUTH, "FILE", "`ievo produce --synthetic ... --truth FILE`: the true topic over time", NULL},
    {"movielens", CLI_OPT_ID_MOVIELENS, "DIR", "u.data, u.item, u.genre: the genres of what each shown user rated", NULL},
    {"users", OPT_USERS, "N", "show the N most active users (default 4, at most 12)", NULL},
    {"user", OPT_USER, "ID", "show this user (repeatable; instead of --users)", NULL},
    {"title", OPT_TITLE, "TEXT", "the page's title", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "report",
    .synopsis = "-o FILE.html [--series FILE]... [--vectors FILE] [--truth FILE] [--movielens DIR]\n"
                " [--users N | --user ID ...] [--title TEXT]",
    .about = "One self-contained HTML page (inline SVG; no script, font or link) about a run: throughput\n"
             "and lag over time (--series), the drift of every user's vector and, for a few users, their\n"
             "vector over their history (--vectors), the true topic (--truth) and the genres of what they\n"
             "rated (--movielens).\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_OTHER,
};

typedef struct {
    report *r;
    const char *out, *vectors, *truth, *ml, *title;
    const char *pick[REPORT_MAX_USERS_SHOWN];
    int n_pick, n_users;
} report_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    report_opts *o = ctx;
    int64_t x = 0;
    switch (key) {
    case 'o': o->out = value; break;
    case OPT_VECTORS: o->vectors = value; break;
    case OPT_TRUTH: o->truth = value; break;
    case CLI_OPT_ID_MOVIELENS: o->ml = value; break;
    case OPT_TITLE: o->title = value; break;
    case OPT_SERIES:
        if (o->r->n_series == REPORT_MAX_SERIES) return snprintf(err, errlen, "at most %d files", REPORT_MAX_SERIES), -1;
        o->r->series[o->r->n_series++].path = value;
        break;
    case OPT_USER:
        if (o->n_pick == REPORT_MAX_USERS_SHOWN) return snprintf(err, errlen, "at most %d users", REPORT_MAX_USERS_SHOWN), -1;
        o->pick[o->n_pick++] = value;
        break;
    case OPT_USERS:
        if (cli_int(value, 0, REPORT_MAX_USERS_SHOWN, &x, err, errlen)) return -1;
        o->n_users = (int)x;
        break;
    }
    return 0;
}

static int user_cmp_events(const void *a, const void *b) {
    const report_user *x = *(const report_user *const *)a, *y = *(const report_user *const *)b;
    if (x->events != y->events) return x->events > y->events ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The users shown: the ones named, else the most active. */
static int report_pick_users(report *r, const report_opts *o, report_user **shown, int *n_shown, char *err, size_t errlen) {
    *n_shown = 0;
    for (int i = 0; i < o->n_pick; i++) {
        report_user *u = user_get(&r->users, o->pick[i], strlen(o->pick[i]), 0);
        if (!u) return snprintf(err, errlen, "--user %s: no output of that user in %s", o->pick[i], o->vectors), -1;
        if (!u->shown) shown[(*n_shown)++] = u, u->shown = 1;
    }
    if (o->n_pick || !r->users.n) return 0;
    report_user **order = malloc(r->users.n * sizeof *order);
    if (!order) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < r->users.n; i++) order[i] = &r->users.users[i];
    qsort(order, r->users.n, sizeof *order, user_cmp_events);
    for (size_t i = 0; i < r->users.n && *n_shown < o->n_users; i++) shown[(*n_shown)++] = order[i], order[i]->shown = 1;
    free(order);
    return 0;
}

/* What the per-event arrays of the second pass will take, refused over REPORT_MAX_ARRAY_BYTES. */
static int report_check_sizes(const report *r, const report_opts *o, char *err, size_t errlen) {
    int64_t bytes = 0, most = 0;
    const int64_t shown_per_event = (int64_t)r->dim * (int64_t)sizeof(float) + (int64_t)sizeof(int64_t) +
                                    (o->truth ? (int64_t)sizeof(int) : 0) + (o->ml ? (int64_t)sizeof(int) : 0);
    for (size_t i = 0; i < r->users.n; i++) {
        const report_user *u = &r->users.users[i];
        bytes += u->events * (int64_t)sizeof(float) + (u->shown ? u->events * shown_per_event : 0);
        if (u->events > most) most = u->events;
        if (bytes > REPORT_MAX_ARRAY_BYTES) break;   /* each term is at most ~1e8 x 8 KiB: no overflow */
    }
    if (bytes <= REPORT_MAX_ARRAY_BYTES) return 0;
    snprintf(err, errlen, "%s: %lld lines claim event numbers up to %lld over %zu users, whose per-event arrays "
             "would take more than %lld MiB: not a run this report can draw", o->vectors, (long long)r->lines,
             (long long)most, r->users.n, (long long)(REPORT_MAX_ARRAY_BYTES >> 20));
    return -1;
}

/* Every input file, read into r (the vectors twice: counts first, then the shown users' data). */
static int report_read(report *r, const report_opts *o, report_user **shown, int *n_shown, char *err, size_t errlen) {
    for (int i = 0; i < r->n_series; i++)
        if (for_each_json_line(r, r->series[i].path, series_line, &r->series[i], err, errlen)) return -1;
    if (o->vectors && (for_each_json_line(r, o->vectors, vectors_count_line, NULL, err, errlen) ||
                       report_pick_users(r, o, shown, n_shown, err, errlen) || report_check_sizes(r, o, err, errlen) ||
                       for_each_json_line(r, o->vectors, vectors_fill_line, NULL, err, errlen)))
        return -1;
    /* The users' record pointers are stable from here on (no more inserts). */
    if (o->truth && for_each_json_line(r, o->truth, truth_line, NULL, err, errlen)) return -1;
    if (o->ml && (ml_load_items(r, o->ml, err, errlen) || ml_load_events(r, o->ml, err, errlen))) return -1;
    return 0;
}

/* The table of inputs at the top of the page. */
static void section_inputs(FILE *b, const report *r, const report_opts *o) {
    LIT(b, "<table><tr><th>input</th><th>what it holds</th></tr>");
    for (int i = 0; i < r->n_series; i++) {
        const series *s = &r->series[i];
        LIT(b, "<tr><td>series ");
        html_str(b, base_name(s->path));
        double peak_lag = -1;
        for (size_t k = 0; k < s->n; k++)
            if (s->lag[k] > peak_lag) peak_lag = s->lag[k];
        fprintf(b, "</td><td>%zu snapshots over %.1f s; %.0f events applied; peak lag %.0f</td></tr>", s->n,
                s->n ? s->t[s->n - 1] - s->t[0] : 0.0, s->n ? s->applied[s->n - 1] - s->applied[0] : 0.0, peak_lag);
    }
    if (o->vectors) {
        LIT(b, "<tr><td>vectors ");
        html_str(b, base_name(o->vectors));
        fprintf(b, "</td><td>%lld outputs, %lld distinct (user, event), %zu users, D = %d, model ", (long long)r->lines,
                (long long)r->distinct, r->users.n, r->dim);
        html_str(b, r->model_id);
        fprintf(b, "; event time spans %.1f days</td></tr>", (double)(r->ts_max - r->ts_min) / 86400000.0);
    }
    if (o->truth) {
        LIT(b, "<tr><td>truth ");
        html_str(b, base_name(o->truth));
        fprintf(b, "</td><td>%lld events, %lld topic switches, %d topics</td></tr>", (long long)r->truth_lines,
                (long long)r->truth_switches, r->max_topic + 1);
    }
    if (o->ml)
        fprintf(b, "<tr><td>movielens</td><td>%d items, %d genres</td></tr>", r->n_items ? r->n_items - 1 : 0, ML_GENRES);
    LIT(b, "</table>\n");
}

static void report_page(FILE *b, const report *r, const report_opts *o, report_user *const *shown, int n_shown) {
    page_head(b, o->title);
    LIT(b, "<h1>");
    html_str(b, o->title);
    LIT(b, "</h1>\n");
    section_inputs(b, r, o);
    section_throughput(b, r);
    if (o->vectors) {
        LIT(b, "<h2>Interest drift</h2>\n");
        section_drift_all(b, r);
        fprintf(b, "<h2>Users (%d %s)</h2>\n", n_shown, o->n_pick ? "chosen" : "most active");
        for (int i = 0; i < n_shown; i++) section_user(b, r, shown[i]);
    }
    LIT(b, "<p class=\"note\">Made by <code>ievo report</code>: inline SVG, no script, no external resource.</p>\n</body></html>\n");
}

/* The page, written whole or not at all (atomic_file.h), so that no reader sees half of it. */
static int report_write(const report *r, const report_opts *o, report_user *const *shown, int n_shown, long *bytes,
                        char *err, size_t errlen) {
    atomic_file af;
    if (atomic_file_open(&af, o->out, 0666, err, errlen)) return -1;
    report_page(af.f, r, o, shown, n_shown);
    *bytes = ftell(af.f);
    return atomic_file_commit(&af, err, errlen);
}

int cmd_report(int argc, char **argv) {
    report *r = calloc(1, sizeof *r);
    report_opts o = {.r = r, .title = "ievo run report", .n_users = 4};
    report_user *shown[REPORT_MAX_USERS_SHOWN];
    int n_shown = 0;
    char err[1024] = "";
    long bytes = 0;
    cli_args a;
    if (!r) {
        LOG_E("report", "out of memory");
        return CLI_FAILED;
    }
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK && (!o.out || (!o.vectors && !r->n_series)))
        rc = cli_usage_error(&CMD, "need -o FILE and at least one of --vectors, --series");
    if (rc == CLI_OK) {
        if (report_read(r, &o, shown, &n_shown, err, sizeof err) || report_write(r, &o, shown, n_shown, &bytes, err, sizeof err)) {
            LOG_E("report", "%s", err);
            rc = CLI_FAILED;
        } else {
            LOG_I("report", "%s: %ld bytes; %d series, %lld outputs of %zu users, %d users shown", o.out, bytes, r->n_series,
                  (long long)r->lines, r->users.n, n_shown);
        }
    }
    cli_args_free(&a);
    report_free(r);
    free(r);
    return rc < 0 ? CLI_OK : rc;
}
