/* serde: the schema-id cache of the input side and the registration of the output side (see
 * serde.h). The cache is an open-addressing table keyed by id; the last id met is checked
 * first, since a topic's records mostly carry one, and a record of the last id met with our
 * layout goes straight to the fixed-id decoder of old (codec_decode_user_action). */
#include "serde.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec_read.h"
#include "log.h"
#include "resolve.h"
#include "schemas.h"

typedef struct {
    int32_t id;
    int used;
    codec_status st;            /* CODEC_OK with a plan; CODEC_E_SCHEMA_ID or CODEC_E_SCHEMA: why in reason */
    resolve_plan *plan;
    char *reason;
} serde_entry;

struct serde_in {
    serde_in_opts o;
    serde_entry *tab;
    size_t cap, n;
    const serde_entry *last;    /* the entry of the last id met */
    codec_in_opts same;         /* the last id met whose writer has our layout: today's decoder, as is */
    int has_same;
    double down_until;          /* dead-letter policy: the registry is not asked again before this */
    char down_reason[1024];
    serde_in_stats stats;
};

int serde_in_new(const serde_in_opts *o, serde_in **out, char *err, size_t errlen) {
    *out = NULL;
    if (o->reg && o->fixed.format != WIRE_CONFLUENT) {
        snprintf(err, errlen, "a schema registry needs the Confluent framing (the format setting is avro)");
        return -1;
    }
    serde_in *in = calloc(1, sizeof *in);
    if (!in) return snprintf(err, errlen, "out of memory"), -1;
    in->o = *o;
    *out = in;
    return 0;
}

void serde_in_free(serde_in *in) {
    if (!in) return;
    for (size_t i = 0; i < in->cap; i++) {
        resolve_plan_free(in->tab[i].plan);
        free(in->tab[i].reason);
    }
    free(in->tab);
    free(in);
}

int serde_in_waits(const serde_in *in) { return in->o.reg && !in->o.ro->wait_dead_letter; }

void serde_in_stats_get(const serde_in *in, serde_in_stats *out) { *out = in->stats; }

static size_t serde_slot(const serde_in *in, int32_t id) {
    size_t h = ((uint32_t)id * 0x9E3779B1u) & (in->cap - 1);
    while (in->tab[h].used && in->tab[h].id != id) h = (h + 1) & (in->cap - 1);
    return h;
}

/* Adds id's entry (the table grows at half full). NULL when out of memory. */
static serde_entry *serde_add(serde_in *in, int32_t id) {
    if (2 * (in->n + 1) > in->cap) {
        size_t nc = in->cap ? in->cap * 2 : 16;
        serde_entry *old = in->tab;
        size_t oc = in->cap;
        if (!(in->tab = calloc(nc, sizeof *in->tab))) {
            in->tab = old;
            return NULL;
        }
        in->cap = nc;
        in->last = NULL;   /* it pointed into the old table */
        for (size_t i = 0; i < oc; i++)
            if (old[i].used) in->tab[serde_slot(in, old[i].id)] = old[i];
        free(old);
    }
    serde_entry *e = &in->tab[serde_slot(in, id)];
    e->used = 1;
    e->id = id;
    in->n++;
    return e;
}

static int serde_make_plan(const serde_in *in, const char *json, resolve_plan **plan, char *err, size_t errlen) {
    return in->o.record == SERDE_ITEM ? item_plan_new(json, strlen(json), plan, err, errlen)
                                      : codec_user_action_plan_new(json, strlen(json), plan, err, errlen);
}

static void serde_sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* Fetches id's writer schema, waiting for the registry as the policy says. Returns REGISTRY_OK
 * with *schema, REGISTRY_NOT_FOUND, or the failure (err filled). */
static registry_status serde_fetch(serde_in *in, int32_t id, const char **schema, char *err, size_t errlen) {
    const registry_opts *ro = in->o.ro;
    double now = clock_mono_s();
    if (ro->wait_dead_letter && now < in->down_until) {
        snprintf(err, errlen, "%s", in->down_reason);
        return REGISTRY_UNAVAILABLE;
    }
    double deadline = now + ro->wait_ms / 1000.0;
    for (int round = 0;; round++) {
        registry_status st = registry_schema_by_id(in->o.reg, id, schema, err, errlen);
        if (st == REGISTRY_OK || st == REGISTRY_NOT_FOUND) return st;
        in->stats.unavailable++;
        if (ro->wait_dead_letter) {
            in->down_until = clock_mono_s() + ro->backoff_max_ms / 1000.0;
            snprintf(in->down_reason, sizeof in->down_reason, "%s", err);
            return st;
        }
        now = clock_mono_s();
        if (now >= deadline || (in->o.should_stop && in->o.should_stop())) return st;
        if (round == 0)
            LOG_W("serde", "%s; waiting up to %.1f s for the registry (schema.registry.unavailable=wait)", err,
                  deadline - now);
        serde_sleep_s(deadline - now < 1.0 ? deadline - now : 1.0);
    }
}

/* The entry for id: cached, or fetched and compiled now. NULL with *st and reason when the
 * registry could not answer (nothing is cached then) or memory ran out. */
static const serde_entry *serde_lookup(serde_in *in, int32_t id, codec_status *st, char *reason, size_t reason_len) {
    if (in->cap) {
        const serde_entry *e = &in->tab[serde_slot(in, id)];
        if (e->used) return e;
    }
    const char *schema = NULL;
    char err[1024];
    registry_status rs = serde_fetch(in, id, &schema, err, sizeof err);
    if (rs != REGISTRY_OK && rs != REGISTRY_NOT_FOUND) {
        *st = codec_fail(CODEC_E_REGISTRY, reason, reason_len, "%s", err);
        return NULL;
    }
    serde_entry *e = serde_add(in, id);
    if (!e) {
        *st = codec_fail(CODEC_E_REGISTRY, reason, reason_len, "out of memory caching schema id %d", (int)id);
        return NULL;
    }
    in->stats.ids++;
    const char *what = in->o.record == SERDE_ITEM ? "ievo.v1.Item" : "ievo.v1.UserAction";
    char msg[1200];
    if (rs == REGISTRY_NOT_FOUND) {
        e->st = CODEC_E_SCHEMA_ID;
        snprintf(msg, sizeof msg, "%s", err);
        in->stats.unknown++;
    } else if (serde_make_plan(in, schema, &e->plan, err, sizeof err)) {
        e->st = CODEC_E_SCHEMA;
        snprintf(msg, sizeof msg, "writer schema id %d cannot be read as %s: %s", (int)id, what, err);
        in->stats.incompatible++;
    } else {
        e->st = CODEC_OK;
        if (resolve_plan_layout(e->plan) == RESOLVE_SAME) in->stats.same++;
        else in->stats.resolved++;
        LOG_I("serde", "schema id %d: read as %s (%s)", (int)id, what,
              resolve_plan_layout(e->plan) == RESOLVE_SAME     ? "the same layout"
              : resolve_plan_layout(e->plan) == RESOLVE_PREFIX ? "our fields, then fields we skip"
                                                               : "resolved field by field");
        return e;
    }
    LOG_W("serde", "%s; none of its records can be read", msg);
    if (!(e->reason = strdup(msg))) {
        *st = codec_fail(CODEC_E_REGISTRY, reason, reason_len, "out of memory caching schema id %d", (int)id);
        return NULL;
    }
    return e;
}

/* The plan for a framed payload's writer: CODEC_OK with *plan (NULL: decode as the fixed id
 * says) and the body, or the record's status with its reason. */
static codec_status serde_frame(serde_in *in, const void *payload, size_t len, const resolve_plan **plan,
                                const uint8_t **body, size_t *body_len, char *reason, size_t reason_len) {
    int32_t id;
    codec_status st = codec_read_header(payload, len, in->o.fixed.max_bytes, &id, body, body_len, reason, reason_len);
    if (st) return st;
    const serde_entry *e = in->last;
    if (!e || e->id != id) {
        if (!(e = serde_lookup(in, id, &st, reason, reason_len))) return st;
        in->last = e;
        if (e->plan && resolve_plan_layout(e->plan) == RESOLVE_SAME) {
            in->same = in->o.fixed;
            in->same.schema_id = id;
            in->has_same = 1;
        }
    }
    if (e->st != CODEC_OK) return codec_fail(e->st, reason, reason_len, "%s", e->reason);
    *plan = e->plan;
    return CODEC_OK;
}

codec_status serde_decode_user_action(serde_in *in, const void *payload, size_t len, user_action *out, char *reason,
                                      size_t reason_len) {
    if (!in->o.reg) return codec_decode_user_action(&in->o.fixed, payload, len, out, reason, reason_len);
    /* the current schema's id: today's decoder with that id, nothing else on the way */
    const uint8_t *b = payload;
    if (in->has_same && len >= 5 && !b[0] &&
        (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]) == in->same.schema_id)
        return codec_decode_user_action(&in->same, payload, len, out, reason, reason_len);
    const resolve_plan *plan = NULL;   /* set when serde_frame returns CODEC_OK */
    const uint8_t *body = NULL;
    size_t blen = 0;
    codec_status st = serde_frame(in, payload, len, &plan, &body, &blen, reason, reason_len);
    return st ? st : codec_decode_user_action_as(plan, body, blen, out, reason, reason_len);
}

codec_status serde_decode_item(serde_in *in, const void *payload, size_t len, item_record *out, char *reason,
                               size_t reason_len) {
    if (!in->o.reg) return item_decode(&in->o.fixed, payload, len, out, reason, reason_len);
    const resolve_plan *plan = NULL;   /* set when serde_frame returns CODEC_OK */
    const uint8_t *body = NULL;
    size_t blen = 0;
    codec_status st = serde_frame(in, payload, len, &plan, &body, &blen, reason, reason_len);
    return st ? st : item_decode_as(plan, body, blen, out, reason, reason_len);
}

int serde_registry_open(const config *c, unsigned commands, registry_opts *ro, registry **reg, char *err,
                        size_t errlen) {
    *reg = NULL;
    if (registry_opts_from_config(ro, c, commands, err, errlen)) return -1;
    return ro->n_urls ? registry_new(ro, reg, err, errlen) : 0;
}

/* ---- output ------------------------------------------------------------------------------------ */

/* Whether the registry's latest schema is ours (same names, types and fields). */
static int serde_same_schema(const char *a, const char *b) {
    avro_schema_t sa = NULL, sb = NULL;
    int same = !avro_schema_from_json_length(a, strlen(a), &sa) && !avro_schema_from_json_length(b, strlen(b), &sb) &&
               avro_schema_equal(sa, sb);
    if (sa) avro_schema_decref(sa);
    if (sb) avro_schema_decref(sb);
    return same;
}

int serde_out_id(registry *reg, const registry_opts *ro, const char *topic, const char *schema,
                 int (*should_stop)(void), int32_t *id, char *err, size_t errlen) {
    char subject[512];
    if (registry_subject(ro->strategy, topic, schema, subject, sizeof subject, err, errlen)) return -1;
    double deadline = clock_mono_s() + ro->wait_ms / 1000.0;
    for (int round = 0;; round++) {
        registry_status st;
        int version = -1;
        if (ro->use_latest) {
            const char *latest;
            st = registry_latest(reg, subject, id, &version, &latest, err, errlen);
            if (st == REGISTRY_OK && !serde_same_schema(latest, schema)) {
                snprintf(err, errlen, "use.latest.version: version %d of subject %s (id %d) is not the schema this "
                         "writer encodes; register it, or set use.latest.version=false", version, subject, (int)*id);
                return -1;
            }
        } else if (ro->auto_register) {
            st = registry_register(reg, subject, schema, id, err, errlen);
        } else {
            st = registry_lookup(reg, subject, schema, id, &version, err, errlen);
            if (st == REGISTRY_NOT_FOUND) {
                char why[1024];
                snprintf(why, sizeof why, "%s", err);
                snprintf(err, errlen, "%s; with auto.register.schemas=false the schema must be registered under "
                         "subject %s first", why, subject);
                return -1;
            }
        }
        if (st == REGISTRY_OK) {
            LOG_I("serde", "topic %s: writing schema id %d (subject %s%s)", topic, (int)*id, subject,
                  ro->use_latest ? ", its latest version" : ro->auto_register ? ", registered" : ", looked up");
            return 0;
        }
        if (st != REGISTRY_UNAVAILABLE) return -1;
        double now = clock_mono_s();
        if (now >= deadline || (should_stop && should_stop())) {
            char why[1024];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "%s (gave up after schema.registry.wait.ms=%d)", why, ro->wait_ms);
            return -1;
        }
        if (round == 0)
            LOG_W("serde", "topic %s: %s; retrying for up to %.1f s (schema.registry.wait.ms)", topic, err, deadline - now);
        serde_sleep_s(deadline - now < 1.0 ? deadline - now : 1.0);
    }
}
