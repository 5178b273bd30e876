/* event_source: historical user-action events from MovieLens, the synthetic generator or JSON lines.
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

#endif
