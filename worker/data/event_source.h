/* event_source: historical user-action events from MovieLens, the synthetic generator, JSON
 * lines or a Kafka topic, and what comes with them (MovieLens items, the generator's truth).
 *
 * Used by `ievo produce` (to load a topic) and by the trainer and tests (to read history without
 * a broker). Every loader returns the events sorted by event time, ties kept in input order (a
 * stable sort): for MovieLens this is the documented rule "ties by file order".
 */
#ifndef IEVO_EVENT_SOURCE_H
#define IEVO_EVENT_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "config.h"

#define SOURCE_NO_TOPIC UINT32_MAX

/* Strings are interned in the list (one copy per distinct id) and NUL-terminated. */
typedef struct {
    const char *user_id;
    const char *item_id;
    const char *action;
    const char *text;        /* NULL when absent */
    int64_t ts;              /* ms */
    float value;
    int has_value;
    uint32_t topic;          /* synthetic only: the user's interest topic at this event (ground truth) */
} source_event;

typedef struct event_list event_list;   /* owns events and the string arena */
struct event_list {
    source_event *ev;
    size_t n;
    void *arena;              /* private: interned strings */
};
void event_list_free(event_list *l);

/* MovieLens-100K u.data (user \t item \t rating \t unix seconds): action "rate", value = rating,
 * ts = seconds * 1000, user_id/item_id as the decimal strings of the file. */
int events_load_movielens(const char *dir, event_list *out, char *err, size_t errlen);

/* JSON lines, one UserAction object per line: {"user_id","item_id","action","ts", optional
 * "value" (number or null), optional "text" (string or null)}. A bad line is an error naming
 * the line number (nothing is produced from a file with a bad line). */
int events_load_jsonl(FILE *f, const char *name, event_list *out, char *err, size_t errlen);
/* The same from a path ("-": standard input); a file that cannot be opened is an error. */
int events_load_jsonl_path(const char *path, event_list *out, char *err, size_t errlen);

/* The synthetic generator: users whose interests drift across topics.
 *   topics x items_per_topic items, ids "t<topic>-i<k>" ... see synthetic.c for the process.
 * Deterministic for a seed. */
typedef struct {
    uint64_t users;
    uint64_t events;            /* total */
    int topics;                 /* default 20 */
    int items_per_topic;        /* default 50 */
    double switch_prob;         /* per event, default 0.05 */
    double on_topic;            /* share of events drawn from the current topic, default 0.8 */
    double zipf_users;          /* activity skew across users, default 0.8 (0 = uniform; 1.1 gives the top user 11 % of 10 M events) */
    uint64_t seed;              /* default 42 */
    int64_t start_ts;           /* ms, default 2024-01-01T00:00:00Z */
} synth_opts;
void synth_opts_default(synth_opts *o);
/* Parses "USERS:EVENTS" into o (other fields untouched). */
int synth_opts_parse(synth_opts *o, const char *spec, char *err, size_t errlen);
int events_generate_synthetic(const synth_opts *o, event_list *out, char *err, size_t errlen);
/* The synthetic item universe, in a fixed order (for building a vocabulary): n ids written to
 * a newly allocated array of interned strings owned by the caller's list. */
int synth_item_ids(const synth_opts *o, char ***ids, int *n);
void synth_item_ids_free(char **ids, int n);

/* MovieLens item ids present in u.item ("1".."1682"), in file order. */
int movielens_item_ids(const char *dir, char ***ids, int *n, char *err, size_t errlen);

/* MovieLens u.item: every item in file order. */
#define MOVIELENS_GENRES 19
typedef struct {
    char *id;                                /* field 1 */
    char *title;                             /* field 2 in UTF-8 ("" when the line has none) */
    unsigned char genre[MOVIELENS_GENRES];   /* fields 6..24: of genre g (exactly "1") */
    int has_genres;                          /* the line has all 24 fields */
} movielens_item;
typedef struct {
    movielens_item *items;
    size_t n;
} movielens_items;
int movielens_items_load(const char *dir, movielens_items *out, char *err, size_t errlen);
void movielens_items_free(movielens_items *m);

/* MovieLens u.genre: the genres' names by index (UTF-8), n = the highest index + 1. */
typedef struct {
    char name[MOVIELENS_GENRES][32];
    int n;
} movielens_genres;
int movielens_genres_load(const char *dir, movielens_genres *out, char *err, size_t errlen);
/* An item's catalogue text: "<title>. <genre>, <genre>..." (newly allocated); -1 when out of memory. */
int movielens_item_text(const movielens_item *it, const movielens_genres *g, char **text);

/* A Kafka topic of UserAction records (in's wire format) from its start to the end offsets when
 * reading began; records that do not decode are skipped (and counted in a log line). cfg: the
 * librdkafka properties of the consumer, and the schema registry's settings (with
 * schema.registry.url set, each record is read with its writer schema from the registry). */
int events_load_topic(const config *cfg, const char *topic, const codec_in_opts *in, event_list *out, char *err,
                      size_t errlen);

/* The synthetic generator's ground truth, one JSON line per event as sent (synth_truth.c). */
typedef struct synth_truth synth_truth;
int synth_truth_open(synth_truth **out, const char *path, char *err, size_t errlen);
/* Starts every user's count afresh (a repeat of the data set under new user ids). */
void synth_truth_restart(synth_truth *t);
/* The line of event e, sent as user_id[0..len) at ts. */
int synth_truth_write(synth_truth *t, const source_event *e, const char *user_id, size_t len, int64_t ts, char *err,
                      size_t errlen);
/* Closes the file, reporting a failed write (t may be NULL). */
int synth_truth_close(synth_truth *t, char *err, size_t errlen);

#endif
