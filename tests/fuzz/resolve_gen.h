/* resolve_gen: random writer schemas derived from UserAction's reader schema, records written
 * with them by avro-c's generic writer, and avro-c's resolving reader as the reference for what
 * the reader must see. Shared by tests/unit/test_resolve.c (a seeded generator, every ctest run)
 * and tests/fuzz/fuzz_resolve.c (libFuzzer's bytes choose).
 *
 * A writer schema keeps each reader field under a type the reader can read (the same, a
 * promotion, the other of string/bytes, a union with it, branches reordered, a branch the reader
 * cannot read), drops the fields that have defaults, and inserts fields the reader does not know
 * anywhere, of any type: primitives, enums, fixed, arrays, maps, nested records, unions, a
 * recursive linked list. Records are named UserAction in a random namespace.
 *
 * The reference: avro_resolved_writer_new over the writer schema and the reader schema less the
 * fields the writer lacks (avro-c takes no defaults; those fields must come out as the reader's
 * defaults, which the caller checks). Header-only: both users compile it in.
 */
#ifndef IEVO_RESOLVE_GEN_H
#define IEVO_RESOLVE_GEN_H

#include <avro.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"
#include "schemas.h"

/* Choices come from bytes while there are some, then from a xorshift generator. */
typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t rng;
    int named;   /* counter for unique type names */
} gen_src;

static inline uint32_t gen_below(gen_src *g, uint32_t n) {
    if (n <= 1) return 0;
    uint32_t x;
    if (g->n >= 2) {
        x = (uint32_t)g->p[0] << 8 | g->p[1];
        g->p += 2, g->n -= 2;
    } else {
        g->rng ^= g->rng << 13;
        g->rng ^= g->rng >> 7;
        g->rng ^= g->rng << 17;
        x = (uint32_t)(g->rng >> 16);
    }
    return x % n;
}

/* ---- schemas ----------------------------------------------------------------------------------- */

static inline json_t *gen_named(gen_src *g, const char *type, const char *prefix) {
    char name[32];
    snprintf(name, sizeof name, "%s%d", prefix, g->named++);
    return json_pack("{s:s, s:s}", "type", type, "name", name);
}

/* A type for a field the reader does not know. */
static inline json_t *gen_extra_type(gen_src *g, int depth) {
    static const char *const prim[] = {"null", "boolean", "int", "long", "float", "double", "string", "bytes"};
    uint32_t k = gen_below(g, depth < 3 ? 15 : 8);
    if (k < 8) return json_string(prim[k]);
    json_t *t;
    switch (k) {
    case 8: {
        t = gen_named(g, "enum", "E");
        json_t *syms = json_array();
        int n = 1 + (int)gen_below(g, 5);
        for (int i = 0; i < n; i++) {
            char s[8];
            snprintf(s, sizeof s, "S%d", i);
            json_array_append_new(syms, json_string(s));
        }
        json_object_set_new(t, "symbols", syms);
        return t;
    }
    case 9:
        /* size 1 up: avro-c cannot append to an array of zero-size items */
        t = gen_named(g, "fixed", "F");
        json_object_set_new(t, "size", json_integer(1 + gen_below(g, 9)));
        return t;
    case 10: return json_pack("{s:s, s:o}", "type", "array", "items", gen_extra_type(g, depth + 1));
    case 11: return json_pack("{s:s, s:o}", "type", "map", "values", gen_extra_type(g, depth + 1));
    case 12: {
        t = gen_named(g, "record", "R");
        json_t *fields = json_array();
        int n = 1 + (int)gen_below(g, 3);   /* not empty, as for fixed */
        for (int i = 0; i < n; i++) {
            char f[8];
            snprintf(f, sizeof f, "f%d", i);
            json_array_append_new(fields, json_pack("{s:s, s:o}", "name", f, "type", gen_extra_type(g, depth + 1)));
        }
        json_object_set_new(t, "fields", fields);
        return t;
    }
    case 13: { /* a union of distinct types (no nested unions) */
        static const char *const br[] = {"null", "int", "string", "double", "boolean"};
        json_t *u = json_array();
        int used = 0, n = 1 + (int)gen_below(g, 4);
        for (int i = 0; i < n; i++) {
            int b = (int)gen_below(g, 6);
            if (b == 5) { /* a named record branch */
                if (used & 32) continue;
                json_t *r = gen_named(g, "record", "U");
                json_object_set_new(r, "fields", json_pack("[{s:s, s:s}]", "name", "a", "type", "int"));
                json_array_append_new(u, r);
                used |= 32;
                continue;
            }
            if (used & (1 << b)) continue;
            used |= 1 << b;
            json_array_append_new(u, json_string(br[b]));
        }
        if (json_array_size(u) == 0) json_array_append_new(u, json_string("null"));
        return u;
    }
    default: { /* a recursive linked list */
        t = gen_named(g, "record", "Node");
        const char *name = json_string_value(json_object_get(t, "name"));
        json_object_set_new(t, "fields", json_pack("[{s:s, s:s}, {s:s, s:[s, s]}]", "name", "v", "type", "int", "name",
                                                   "next", "type", "null", name));
        return t;
    }
    }
}

/* The writer's type for reader field i of UserAction (user_id, item_id, action, ts, value, text);
 * *bad set when the reader cannot read it (a union branch it cannot read). *ref: the same type
 * for avro-c, which does not promote bytes to string: "bytes" where the reader reads a string
 * becomes "string" (the bytes on the wire are the same). */
static inline json_t *gen_reader_field_type(gen_src *g, int i, int *bad, json_t **ref) {
    json_t *t;
    *ref = NULL;
    switch (i) {
    case 0:
    case 1:
    case 2:
        switch (gen_below(g, 20)) {
        case 0: t = json_string("bytes"), *ref = json_string("string"); break;
        case 1: t = json_pack("[s, s]", "null", "string"), *bad = 1; break;
        case 2: t = json_pack("[s, s]", "string", "int"), *bad = 1; break;
        case 3: t = json_pack("[s]", "string"); break;
        default: t = json_string("string"); break;
        }
        break;
    case 3:
        switch (gen_below(g, 4)) {
        case 0: t = json_string("int"); break;
        case 1: t = json_pack("{s:s, s:s}", "type", "long", "logicalType", "timestamp-millis"); break;
        case 2: t = json_pack("[s, s]", "int", "long"); break;
        default: t = json_string("long"); break;
        }
        break;
    case 4:
        switch (gen_below(g, 20)) {
        case 0: t = json_pack("[s, s]", "float", "null"); break;
        case 1: t = json_string("float"); break;
        case 2: t = json_string("int"); break;
        case 3: t = json_string("long"); break;
        case 4: t = json_pack("[s, s]", "null", "int"); break;
        case 5: t = json_pack("[s, s]", "null", "long"); break;
        case 6: t = json_pack("[s, s, s]", "null", "float", "string"), *bad = 1; break;
        case 7: t = json_pack("[s, s]", "null", "double"), *bad = 1; break;
        default: t = json_pack("[s, s]", "null", "float"); break;
        }
        break;
    default:
        switch (gen_below(g, 6)) {
        case 0: t = json_pack("[s, s]", "string", "null"); break;
        case 1: t = json_string("string"); break;
        case 2: t = json_string("bytes"), *ref = json_string("string"); break;
        case 3: t = json_pack("[s, s]", "null", "bytes"), *ref = json_pack("[s, s]", "null", "string"); break;
        default: t = json_pack("[s, s]", "null", "string"); break;
        }
        break;
    }
    if (!*ref) *ref = json_deep_copy(t);
    return t;
}

static const char *const GEN_UA_FIELDS[6] = {"user_id", "item_id", "action", "ts", "value", "text"};

/* A generated writer: its schema, the same for avro-c (gen_reader_field_type's ref), which
 * reader fields it has, and whether the reader can read it (bad[i]: field i makes it
 * incompatible). */
typedef struct {
    char *json, *ref_json;
    int kept[6], bad[6], compatible;
} gen_writer;

static inline void gen_writer_free(gen_writer *w) {
    free(w->json);
    free(w->ref_json);
}

/* A writer schema derived from UserAction's. */
static inline void gen_writer_schema(gen_src *g, gen_writer *w) {
    int *kept = w->kept;
    memset(w, 0, sizeof *w);
    int order[6] = {0, 1, 2, 3, 4, 5};
    for (int i = 5; i > 0; i--) { /* shuffled sometimes */
        if (gen_below(g, 3)) continue;
        int j = (int)gen_below(g, (uint32_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    json_t *fields = json_array(), *ref_fields = json_array();
    for (int k = 0; k < 6; k++) {
        int i = order[k];
        while (gen_below(g, 4) == 0) { /* unknown fields before this one */
            char f[16];
            snprintf(f, sizeof f, "x%d", g->named++);
            json_t *x = json_pack("{s:s, s:o}", "name", f, "type", gen_extra_type(g, 0));
            json_array_append(fields, x);
            json_array_append_new(ref_fields, x);
        }
        kept[i] = !(i >= 4 && gen_below(g, 4) == 0);   /* value and text have defaults */
        if (kept[i]) {
            json_t *ref;
            json_t *t = gen_reader_field_type(g, i, &w->bad[i], &ref);
            json_array_append_new(fields, json_pack("{s:s, s:o}", "name", GEN_UA_FIELDS[i], "type", t));
            json_array_append_new(ref_fields, json_pack("{s:s, s:o}", "name", GEN_UA_FIELDS[i], "type", ref));
        }
    }
    int tail = (int)gen_below(g, 3);
    for (int k = 0; k < tail; k++) {
        char f[16];
        snprintf(f, sizeof f, "t%d", g->named++);
        json_t *t = gen_extra_type(g, 0);
        /* an added optional field, as producers evolve: a union with null and a default */
        json_t *x;
        if (gen_below(g, 2) && !json_is_array(t) && !(json_is_string(t) && !strcmp(json_string_value(t), "null")))
            x = json_pack("{s:s, s:[s, o], s:n}", "name", f, "type", "null", t, "default");
        else
            x = json_pack("{s:s, s:o}", "name", f, "type", t);
        json_array_append(fields, x);
        json_array_append_new(ref_fields, x);
    }
    static const char *const ns[] = {"ievo.v1", "ievo.v2", "com.example.events", ""};
    const char *space = ns[gen_below(g, 4)];
    json_t *root = json_pack("{s:s, s:s, s:s, s:o}", "type", "record", "name", "UserAction", "namespace", space,
                             "fields", fields);
    json_t *ref = json_pack("{s:s, s:s, s:s, s:o}", "type", "record", "name", "UserAction", "namespace", space,
                            "fields", ref_fields);
    w->json = json_dumps(root, JSON_COMPACT);
    w->ref_json = json_dumps(ref, JSON_COMPACT);
    json_decref(root);
    json_decref(ref);
    w->compatible = 1;
    for (int i = 0; i < 6; i++) w->compatible = w->compatible && !w->bad[i];
}

/* ---- records ----------------------------------------------------------------------------------- */

/* Fills v (of schema s) at random. tame: values the reader's validation accepts (non-empty short
 * ASCII strings, non-negative numbers below 2^31). */
static inline int gen_value(gen_src *g, avro_value_t *v, avro_schema_t s, int tame, int depth) {
    while (is_avro_link(s)) s = avro_schema_link_target(s);
    char buf[24];
    switch (avro_typeof(s)) {
    case AVRO_NULL: return avro_value_set_null(v);
    case AVRO_BOOLEAN: return avro_value_set_boolean(v, (int)gen_below(g, 2));
    case AVRO_INT32:
        return avro_value_set_int(v, tame ? (int32_t)gen_below(g, 1u << 31) : (int32_t)(gen_below(g, 65536) * 65537u));
    case AVRO_INT64:
        return avro_value_set_long(v, tame ? (int64_t)gen_below(g, 1u << 30) * 3001
                                           : (int64_t)(((uint64_t)gen_below(g, 65536) << 48 | gen_below(g, 65536)) - (1ULL << 62)));
    case AVRO_FLOAT: return avro_value_set_float(v, (float)gen_below(g, 100000) / 8.0f - (tame ? 0 : 5000.0f));
    case AVRO_DOUBLE: return avro_value_set_double(v, (double)gen_below(g, 100000) / 3.0);
    case AVRO_STRING:
    case AVRO_BYTES: {
        int n = (int)gen_below(g, 12) + (tame ? 1 : 0);
        for (int i = 0; i < n; i++) buf[i] = (char)('a' + gen_below(g, 26));
        buf[n] = 0;
        return avro_typeof(s) == AVRO_STRING ? avro_value_set_string_len(v, buf, (size_t)n + 1)
                                             : avro_value_set_bytes(v, buf, (size_t)n);
    }
    case AVRO_ENUM: return avro_value_set_enum(v, (int)gen_below(g, (uint32_t)avro_schema_enum_number_of_symbols(s)));
    case AVRO_FIXED: {
        int64_t n = avro_schema_fixed_size(s);
        memset(buf, 'f', sizeof buf);
        return avro_value_set_fixed(v, buf, (size_t)n);
    }
    case AVRO_RECORD: {
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            avro_value_t f;
            int rc = avro_value_get_by_index(v, i, &f, NULL);
            if (!rc) rc = gen_value(g, &f, avro_schema_record_field_get_by_index(s, (int)i), tame, depth + 1);
            if (rc) return rc;
        }
        return 0;
    }
    case AVRO_ARRAY:
    case AVRO_MAP: {
        int n = depth > 4 ? 0 : (int)gen_below(g, 4);
        for (int i = 0; i < n; i++) {
            avro_value_t e;
            int rc;
            if (avro_typeof(s) == AVRO_ARRAY) {
                rc = avro_value_append(v, &e, NULL);
                if (!rc) rc = gen_value(g, &e, avro_schema_array_items(s), tame, depth + 1);
            } else {
                snprintf(buf, sizeof buf, "k%d", i);
                rc = avro_value_add(v, buf, &e, NULL, NULL);
                if (!rc) rc = gen_value(g, &e, avro_schema_map_values(s), tame, depth + 1);
            }
            if (rc) return rc;
        }
        return 0;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        int b = (int)gen_below(g, (uint32_t)n);
        /* a recursive list ends: past a few levels take a branch that is not a record */
        if (depth > 4)
            for (size_t i = 0; i < n; i++)
                if (!is_avro_link(avro_schema_union_branch(s, (int)i)) && !is_avro_record(avro_schema_union_branch(s, (int)i))) b = (int)i;
        avro_value_t br;
        int rc = avro_value_set_branch(v, b, &br);
        return rc ? rc : gen_value(g, &br, avro_schema_union_branch(s, b), tame, depth + 1);
    }
    default: return EINVAL;
    }
}

/* A record of writer schema ws written by avro-c: *out (malloc'd) of *len bytes. Reader fields
 * get tame values. Returns 0, or -1. */
static inline int gen_record(gen_src *g, avro_schema_t ws, uint8_t **out, size_t *len) {
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t v;
    int rc = -1;
    *out = NULL;
    if (!iface || avro_generic_value_new(iface, &v)) goto done;
    size_t n = avro_schema_record_size(ws);
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = avro_schema_record_field_name(ws, (int)i);
        int tame = 0;
        for (int k = 0; k < 6; k++) tame |= !strcmp(name, GEN_UA_FIELDS[k]);
        avro_value_t f;
        rc = avro_value_get_by_index(&v, i, &f, NULL);
        if (!rc) rc = gen_value(g, &f, avro_schema_record_field_get_by_index(ws, (int)i), tame, 1);
    }
    size_t size = 0;
    if (!rc) rc = avro_value_sizeof(&v, &size);
    if (!rc) {
        *out = malloc(size ? size : 1);
        avro_writer_t w = *out ? avro_writer_memory((const char *)*out, (int64_t)size) : NULL;
        rc = !w || avro_value_write(w, &v);
        if (w) avro_writer_free(w);
        *len = size;
    }
    avro_value_decref(&v);
    rc = rc ? -1 : 0;
done:
    if (iface) avro_value_iface_decref(iface);
    if (rc) free(*out), *out = NULL;
    return rc;
}

/* ---- the reference: avro-c's resolving reader --------------------------------------------------- */

/* What avro-c reads for one reader field. */
typedef struct {
    int present;             /* in the writer, so avro-c read it */
    int is_null;
    int64_t l;
    float f;
    char s[64];
    size_t n;
} gen_ref_field;

/* Reads body with avro-c: writer schema ws resolved into UserAction less the fields kept[] says
 * the writer lacks. Returns 0 with ref[] filled, or -1 when avro-c cannot resolve or read
 * (its error in err). */
static inline int gen_reference(avro_schema_t ws, const int kept[6], const uint8_t *body, size_t len,
                                gen_ref_field ref[6], char *err, size_t errlen) {
    json_t *root = json_loads(ievo_schema_user_action_json, 0, NULL);
    json_t *fields = json_object_get(root, "fields");
    for (int i = 5; i >= 0; i--)
        if (!kept[i]) json_array_remove(fields, (size_t)i);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    avro_schema_t rs = NULL;
    avro_value_iface_t *ri = NULL, *res = NULL;
    avro_value_t rv = {NULL, NULL}, resv = {NULL, NULL};
    avro_reader_t rd = NULL;
    int rc = -1;
    memset(ref, 0, 6 * sizeof *ref);
    if (avro_schema_from_json_length(text, strlen(text), &rs) || !(ri = avro_generic_class_from_schema(rs)) ||
        avro_generic_value_new(ri, &rv)) {
        snprintf(err, errlen, "reduced reader: %s", avro_strerror());
        goto done;
    }
    if (!(res = avro_resolved_writer_new(ws, rs))) {
        snprintf(err, errlen, "avro_resolved_writer_new: %s", avro_strerror());
        goto done;
    }
    if (avro_resolved_writer_new_value(res, &resv)) goto done;
    avro_resolved_writer_set_dest(&resv, &rv);
    rd = avro_reader_memory((const char *)body, (int64_t)len);
    if (avro_value_read(rd, &resv)) {
        snprintf(err, errlen, "avro_value_read: %s", avro_strerror());
        goto done;
    }
    for (int i = 0; i < 6; i++) {
        if (!kept[i]) continue;
        gen_ref_field *r = &ref[i];
        avro_value_t f, b;
        r->present = 1;
        if (avro_value_get_by_name(&rv, GEN_UA_FIELDS[i], &f, NULL)) goto done;
        if (i >= 4) {
            int d;
            if (avro_value_get_discriminant(&f, &d) || avro_value_get_current_branch(&f, &b)) goto done;
            if ((r->is_null = d == 0)) continue;
            f = b;
        }
        if (i == 3) {
            if (avro_value_get_long(&f, &r->l)) goto done;
        } else if (i == 4) {
            if (avro_value_get_float(&f, &r->f)) goto done;
        } else {
            const char *s;
            size_t n;
            if (avro_value_get_string(&f, &s, &n)) goto done;
            r->n = n ? n - 1 : 0;   /* avro-c counts the NUL */
            if (r->n > sizeof r->s) goto done;
            memcpy(r->s, s, r->n);
        }
    }
    rc = 0;
done:
    if (rd) avro_reader_free(rd);
    if (resv.self) avro_value_decref(&resv);
    if (res) avro_value_iface_decref(res);
    if (rv.self) avro_value_decref(&rv);
    if (ri) avro_value_iface_decref(ri);
    if (rs) avro_schema_decref(rs);
    free(text);
    return rc;
}

/* Compares what the resolver read (vals) with the reference; "" when they agree, else what
 * differs (into why). */
static inline void gen_compare(const resolve_value vals[6], const gen_ref_field ref[6], char *why, size_t whylen) {
    why[0] = 0;
    for (int i = 0; i < 6; i++) {
        const resolve_value *v = &vals[i];
        const gen_ref_field *r = &ref[i];
        if (!r->present) { /* the reader's default: value and text are null */
            if (v->type != RESOLVE_NULL) snprintf(why, whylen, "%s: not null (the default)", GEN_UA_FIELDS[i]);
        } else if (i >= 4 && r->is_null) {
            if (v->type != RESOLVE_NULL) snprintf(why, whylen, "%s: avro-c null, resolver not", GEN_UA_FIELDS[i]);
        } else if (i >= 4 && v->type == RESOLVE_NULL) {
            snprintf(why, whylen, "%s: resolver null, avro-c not", GEN_UA_FIELDS[i]);
        } else if (i == 3) {
            if (v->type != RESOLVE_LONG || v->v.l != r->l)
                snprintf(why, whylen, "ts: %lld vs avro-c %lld", (long long)v->v.l, (long long)r->l);
        } else if (i == 4) {
            if (v->type != RESOLVE_FLOAT || memcmp(&v->v.f, &r->f, 4))
                snprintf(why, whylen, "value: %.9g vs avro-c %.9g", v->v.f, r->f);
        } else if ((v->type != RESOLVE_STRING) || v->v.s.n != r->n || memcmp(v->v.s.p, r->s, r->n)) {
            snprintf(why, whylen, "%s: '%.*s' vs avro-c '%.*s'", GEN_UA_FIELDS[i], (int)v->v.s.n, v->v.s.p, (int)r->n, r->s);
        }
        if (why[0]) return;
    }
}

#endif
