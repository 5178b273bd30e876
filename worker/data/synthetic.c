/* synthetic: a generator of users whose interests drift across topics, with the ground truth.
 *
 * The process (deterministic for a seed; every user draws from its own splitmix64 stream, so a
 * user's events do not depend on how the users interleave in time):
 *   - Items: `topics` x `items_per_topic` ids "t%02d-i%03d" (fixed width: the universe order is
 *     the sort order; hence topics <= 100, items_per_topic <= 1000).
 *   - Users: "u%07llu". Activity is Zipf(zipf_users) over the user index (u0000000 is the most
 *     active), scaled so the total is exactly `events`: every user gets 1, the other
 *     events - users are shared in proportion to the Zipf weights (floors), and the rounding
 *     remainder goes one each to the most active users.
 *   - Each user starts at a random topic at a uniform time within one day of start_ts. Before
 *     each later event it switches, with probability switch_prob, to a different random topic.
 *     The event's `topic` is the user's topic at that event: the ground truth of interest drift.
 *   - Item: with probability on_topic from the current topic, with popularity 1/(rank+1) inside
 *     the topic; otherwise uniform over all items.
 *   - Action: view 70 % (value = dwell seconds, lognormal, median ~20 s), click 20 % (no value),
 *     purchase 10 % (value = price, lognormal, median ~25). About 5 % of events carry a text
 *     query of 1-3 words of the current topic ("t07-w3 t07-w8").
 *   - Gaps are exponential. The mean is 1 h, shortened for users busier than average
 *     (1 h * mean_events / events_of_user), so heavy users do not run for years: the whole data
 *     set spans about mean_events hours after the first day.
 * Output order: a heap merges the users' streams by (ts, user index), which is exactly the
 * stable sort by ts of the events listed user by user, without holding and sorting them twice.
 *
 * Memory: the event array (56 bytes per event), 40 bytes per user of generator state and a
 * 16-byte heap entry per user; ids and texts are stored once in the list's arena.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_source_internal.h"
#include "stop_signal.h"

#define SYNTH_MAX_TOPICS 100
#define SYNTH_MAX_ITEMS_PER_TOPIC 1000
#define SYNTH_WORDS_PER_TOPIC 10
#define SYNTH_DAY_MS 86400000LL
#define SYNTH_HOUR_MS 3600000.0

void synth_opts_default(synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->users = 1000;
    o->events = 10000;
    o->topics = 20;
    o->items_per_topic = 50;
    o->switch_prob = 0.05;
    o->on_topic = 0.8;
    o->zipf_users = 0.8;
    o->seed = 42;
    o->start_ts = 1704067200000LL;   /* 2024-01-01T00:00:00Z */
}

int synth_opts_parse(synth_opts *o, const char *spec, char *err, size_t errlen) {
    char *end;
    unsigned long long u, e;
    if (!spec || *spec < '0' || *spec > '9') goto bad;
    errno = 0;
    u = strtoull(spec, &end, 10);
    if (*end != ':' || end[1] < '0' || end[1] > '9') goto bad;
    e = strtoull(end + 1, &end, 10);
    if (*end) goto bad;
    if (errno == ERANGE || u > UINT32_MAX || e > UINT32_MAX) {
        snprintf(err, errlen, "synthetic '%s': at most %u users and %u events", spec, UINT32_MAX, UINT32_MAX);
        return -1;
    }
    if (u == 0) {
        snprintf(err, errlen, "synthetic '%s': need at least 1 user", spec);
        return -1;
    }
    if (e < u) {
        snprintf(err, errlen, "synthetic '%s': %llu events cannot give each of %llu users one: give EVENTS >= USERS", spec,
                 e, u);
        return -1;
    }
    o->users = u;
    o->events = e;
    return 0;
bad:
    snprintf(err, errlen, "synthetic '%s': expected USERS:EVENTS, e.g. 1000:50000", spec ? spec : "");
    return -1;
}

/* ---- randomness --------------------------------------------------------------------------- */

static inline uint64_t synth_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline uint64_t synth_next(uint64_t *s) { return synth_mix(*s += 0x9E3779B97F4A7C15ULL); }
/* Uniform in [0, 1). */
static inline double synth_unit(uint64_t *s) { return (double)(synth_next(s) >> 11) * 0x1.0p-53; }
static inline uint32_t synth_below(uint64_t *s, uint32_t n) { return (uint32_t)(synth_unit(s) * n); }
static double synth_normal(uint64_t *s) {
    double u1 = 1.0 - synth_unit(s), u2 = synth_unit(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- the generator ------------------------------------------------------------------------ */

typedef struct {
    uint64_t rng;
    const char *user_id;
    double mean_gap_ms;
    uint32_t remaining, done, topic;
} synth_user;

typedef struct {
    int64_t ts;
    uint32_t user;
} synth_heap_entry;

static inline int synth_before(const synth_heap_entry *a, const synth_heap_entry *b) {
    return a->ts < b->ts || (a->ts == b->ts && a->user < b->user);
}

static void synth_sift_down(synth_heap_entry *h, size_t n, size_t i) {
    synth_heap_entry x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && synth_before(&h[c + 1], &h[c])) c++;
        if (!synth_before(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

typedef struct {
    const synth_opts *o;
    event_list *out;
    const char **items;          /* topics * items_per_topic, topic-major */
    double *topic_cdf;           /* items_per_topic: popularity inside a topic */
    const char *act_view, *act_click, *act_purchase;
} synth_ctx;

static const char *synth_text(synth_ctx *c, synth_user *u) {
    char buf[64];
    int words = 1 + (int)synth_below(&u->rng, 3), n = 0;
    for (int i = 0; i < words; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%st%02u-w%u", i ? " " : "", u->topic,
                      synth_below(&u->rng, SYNTH_WORDS_PER_TOPIC));
    return event_list_intern(c->out, buf, (size_t)n);
}

/* Draws the user's next event into e (ts already set). Returns 0, or -1 on ENOMEM. */
static int synth_event(synth_ctx *c, synth_user *u, source_event *e) {
    const synth_opts *o = c->o;
    if (u->done > 0 && o->topics > 1 && synth_unit(&u->rng) < o->switch_prob)
        u->topic = (u->topic + 1 + synth_below(&u->rng, (uint32_t)o->topics - 1)) % (uint32_t)o->topics;
    uint32_t item;
    if (synth_unit(&u->rng) < o->on_topic) {
        double r = synth_unit(&u->rng);
        size_t lo = 0, hi = (size_t)o->items_per_topic - 1;
        while (lo < hi) {   /* first rank whose cumulative share exceeds r */
            size_t mid = (lo + hi) / 2;
            if (c->topic_cdf[mid] > r) hi = mid;
            else lo = mid + 1;
        }
        item = u->topic * (uint32_t)o->items_per_topic + (uint32_t)lo;
    } else {
        item = synth_below(&u->rng, (uint32_t)(o->topics * o->items_per_topic));
    }
    e->user_id = u->user_id;
    e->item_id = c->items[item];
    e->topic = u->topic;
    double a = synth_unit(&u->rng);
    if (a < 0.7) {
        e->action = c->act_view;
        e->value = (float)(round(exp(3.0 + synth_normal(&u->rng)) * 10.0) / 10.0);
        e->has_value = 1;
    } else if (a < 0.9) {
        e->action = c->act_click;
    } else {
        e->action = c->act_purchase;
        e->value = (float)(round(exp(3.2 + 0.8 * synth_normal(&u->rng)) * 100.0) / 100.0);
        e->has_value = 1;
    }
    if (synth_unit(&u->rng) < 0.05 && !(e->text = synth_text(c, u))) return -1;
    return 0;
}

static int synth_check(const synth_opts *o, char *err, size_t errlen) {
    if (o->users == 0 || o->events < o->users) {
        snprintf(err, errlen, "synthetic: need at least 1 user and at least one event per user (%llu users, %llu events)",
                 (unsigned long long)o->users, (unsigned long long)o->events);
        return -1;
    }
    if (o->events > UINT32_MAX || o->users > UINT32_MAX) {
        snprintf(err, errlen, "synthetic: at most %u users and events", UINT32_MAX);
        return -1;
    }
    if (o->topics < 1 || o->topics > SYNTH_MAX_TOPICS || o->items_per_topic < 1 ||
        o->items_per_topic > SYNTH_MAX_ITEMS_PER_TOPIC) {
        snprintf(err, errlen, "synthetic: topics must be in [1, %d] and items_per_topic in [1, %d]", SYNTH_MAX_TOPICS,
                 SYNTH_MAX_ITEMS_PER_TOPIC);
        return -1;
    }
    if (!(o->switch_prob >= 0 && o->switch_prob <= 1) || !(o->on_topic >= 0 && o->on_topic <= 1) ||
        !(o->zipf_users >= 0 && o->zipf_users <= 10)) {
        snprintf(err, errlen, "synthetic: switch_prob and on_topic must be in [0, 1], zipf_users in [0, 10]");
        return -1;
    }
    return 0;
}

/* Events per user: 1 each plus a Zipf share of the rest; the total is exactly o->events. */
static void synth_counts(const synth_opts *o, synth_user *users) {
    uint64_t n = o->users, extra = o->events - o->users, total = 0;
    double wsum = 0;
    for (uint64_t i = 0; i < n; i++) wsum += pow((double)(i + 1), -o->zipf_users);
    for (uint64_t i = 0; i < n; i++) {
        double share = (double)extra * pow((double)(i + 1), -o->zipf_users) / wsum;
        users[i].remaining = 1 + (uint32_t)floor(share);
        total += users[i].remaining;
    }
    /* Rounding: floors leave at most n - 1 over; float error could overshoot by a few. */
    for (uint64_t i = 0; total > o->events; i = (i + 1) % n)
        if (users[i].remaining > 1) users[i].remaining--, total--;
    for (uint64_t i = 0; total < o->events; i = (i + 1) % n) users[i].remaining++, total++;
}

int events_generate_synthetic(const synth_opts *o, event_list *out, char *err, size_t errlen) {
    if (synth_check(o, err, errlen)) return -1;
    if (event_list_init(out)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nusers = (size_t)o->users, nitems = (size_t)o->topics * (size_t)o->items_per_topic;
    synth_ctx c = {o, out, NULL, NULL, NULL, NULL, NULL};
    synth_user *users = calloc(nusers, sizeof *users);
    synth_heap_entry *heap = malloc(nusers * sizeof *heap);
    c.items = malloc(nitems * sizeof *c.items);
    c.topic_cdf = malloc((size_t)o->items_per_topic * sizeof *c.topic_cdf);
    int rc = -1, stopped = 0;
    if (!users || !heap || !c.items || !c.topic_cdf || event_list_reserve(out, (size_t)o->events)) goto done;
    if (!(c.act_view = event_list_intern(out, "view", 4)) || !(c.act_click = event_list_intern(out, "click", 5)) ||
        !(c.act_purchase = event_list_intern(out, "purchase", 8)))
        goto done;
    char buf[32];
    for (size_t i = 0; i < nitems; i++) {
        int n = snprintf(buf, sizeof buf, "t%02d-i%03d", (int)(i / (size_t)o->items_per_topic),
                         (int)(i % (size_t)o->items_per_topic));
        if (!(c.items[i] = event_list_intern(out, buf, (size_t)n))) goto done;
    }
    double cum = 0, tot = 0;
    for (int k = 0; k < o->items_per_topic; k++) tot += 1.0 / (k + 1);
    for (int k = 0; k < o->items_per_topic; k++) c.topic_cdf[k] = (cum += 1.0 / (k + 1) / tot);
    c.topic_cdf[o->items_per_topic - 1] = 1.0;

    synth_counts(o, users);
    double mean_events = (double)o->events / (double)o->users;
    uint64_t seed_mix = synth_mix(o->seed ^ 0x5DEECE66DULL);
    for (size_t i = 0; i < nusers; i++) {
        synth_user *u = &users[i];
        u->rng = synth_mix(seed_mix + synth_mix(i + 1));
        int n = snprintf(buf, sizeof buf, "u%07llu", (unsigned long long)i);
        if (!(u->user_id = event_list_store(out, buf, (size_t)n))) goto done;
        u->topic = synth_below(&u->rng, (uint32_t)o->topics);
        u->mean_gap_ms = SYNTH_HOUR_MS * (u->remaining > mean_events ? mean_events / u->remaining : 1.0);
        heap[i].ts = o->start_ts + (int64_t)synth_below(&u->rng, (uint32_t)SYNTH_DAY_MS);
        heap[i].user = (uint32_t)i;
    }
    size_t hn = nusers;
    for (size_t i = hn / 2; i-- > 0;) synth_sift_down(heap, hn, i);

    for (uint64_t made = 0; hn > 0; made++) {
        if ((made & 0xFFFF) == 0 && stop_signal_received()) {
            stopped = 1;
            goto done;
        }
        synth_user *u = &users[heap[0].user];
        source_event *e = event_list_push(out);
        if (!e) goto done;
        e->ts = heap[0].ts;
        if (synth_event(&c, u, e)) goto done;
        u->done++;
        if (--u->remaining == 0) {
            heap[0] = heap[--hn];
        } else {
            double gap = -u->mean_gap_ms * log(1.0 - synth_unit(&u->rng));
            heap[0].ts += (int64_t)llround(gap < 1e12 ? gap : 1e12);
        }
        if (hn) synth_sift_down(heap, hn, 0);
    }
    rc = 0;
done:
    if (stopped) snprintf(err, errlen, "synthetic: stopped by %s while generating", stop_signal_name(stop_signal_received()));
    else if (rc) snprintf(err, errlen, "synthetic: out of memory for %llu users, %llu events", (unsigned long long)o->users,
                          (unsigned long long)o->events);
    free(users);
    free(heap);
    free(c.items);
    free(c.topic_cdf);
    if (rc) event_list_free(out);
    return rc;
}

int synth_item_ids(const synth_opts *o, char ***ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (o->topics < 1 || o->topics > SYNTH_MAX_TOPICS || o->items_per_topic < 1 ||
        o->items_per_topic > SYNTH_MAX_ITEMS_PER_TOPIC)
        return -1;
    int count = o->topics * o->items_per_topic;
    char **v = calloc((size_t)count, sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < count; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "t%02d-i%03d", i / o->items_per_topic, i % o->items_per_topic);
        if (!(v[i] = strdup(buf))) {
            synth_item_ids_free(v, i);
            return -1;
        }
    }
    *ids = v;
    *n = count;
    return 0;
}

void synth_item_ids_free(char **ids, int n) {
    if (!ids) return;
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}
