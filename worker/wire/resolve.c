/* resolve: a writer schema compiled against a flat reader record (see resolve.h for the rules).
 *
 * Compiling walks the writer's schema as avro-c parsed it (named types, namespaces and recursive
 * references resolved by the library) and the reader's as avro-c parsed it too; the reader's
 * defaults and aliases come from its JSON text through jansson, since avro-c's parser keeps
 * neither. The result is three flat tables:
 *   nodes   the skip program: one node per writer type that some skipped field contains
 *           (memoized by schema, so a recursive type is one node that refers to itself);
 *   reads   a writer primitive (or enum) read into a reader type, with its conversion; a writer
 *           union field has one per branch;
 *   fields  the writer's fields in its order, each a skip, a read, or a union of reads.
 * Decoding runs the fields over the payload once, the reader's defaults filled in first.
 */
#include "resolve.h"

#include <avro.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writer value kinds on the wire. */
enum {
    W_NULL, W_BOOLEAN, W_INT, W_LONG, W_FLOAT, W_DOUBLE, W_STRING, W_BYTES, W_ENUM, W_FIXED,
    W_RECORD, W_ARRAY, W_MAP, W_UNION,
};

typedef struct {
    uint8_t kind;
    int32_t size;        /* W_ENUM: the symbols; W_FIXED: the bytes */
    int32_t first, n;    /* W_RECORD, W_UNION: kids[first .. first + n); W_ARRAY, W_MAP: first is the item */
    int64_t fixed_size;  /* bytes every value of this type takes; -1: it varies (then >= 1) */
} rs_node;

typedef struct {
    uint8_t wkind;          /* W_NULL .. W_ENUM */
    uint8_t rtype;          /* resolve_type */
    uint8_t exact;          /* same type, no conversion (an enum: the same symbols) */
    int16_t rbranch;
    int32_t nsym, map;      /* W_ENUM: enum_map[map .. map + nsym): the reader's symbol */
} rs_read;

enum { F_SKIP, F_READ, F_UNION };

typedef struct {
    uint8_t kind;
    int16_t slot;           /* F_READ, F_UNION: the reader field */
    int32_t node;           /* F_SKIP */
    int32_t read, nread;    /* F_READ: reads[read]; F_UNION: reads[read .. read + nread) */
    const char *name;       /* the writer's field name (owned by the writer schema) */
} rs_field;

struct resolve_plan {
    avro_schema_t writer;   /* kept: field and symbol names point into it */
    int nfields;
    char *names[RESOLVE_MAX_FIELDS];
    resolve_value defaults[RESOLVE_MAX_FIELDS];
    resolve_layout layout;
    int prefix_fields;
    rs_field *fields;
    int nwfields;
    rs_node *nodes;
    int nnodes, nodes_cap;
    int32_t *kids;
    int nkids, kids_cap;
    rs_read *reads;
    int nreads, reads_cap;
    int32_t *enum_map;
    int nmap, map_cap;
    char **msgs;            /* the defaults' strings */
    int nmsgs, msgs_cap;
};

/* ---- compiling --------------------------------------------------------------------------------- */

/* A reader type: one branch of a reader field. */
typedef struct {
    resolve_type type;
    avro_schema_t schema;
    int enum_default;       /* RESOLVE_ENUM: the reader enum's default symbol, -1: none */
} rs_rtype;

#define RS_MAX_BRANCHES 16
#define RS_MAX_SCHEMA_DEPTH 256   /* a writer type's nesting, for the compile's recursion */

typedef struct {
    const char *name;
    int is_union, n;
    rs_rtype b[RS_MAX_BRANCHES];
    json_t *json;           /* the field's object in the reader's JSON */
    int filled;
} rs_rfield;

typedef struct {
    resolve_plan *p;
    avro_schema_t reader;
    json_t *rjson;
    rs_rfield rf[RESOLVE_MAX_FIELDS];
    struct rs_memo {
        avro_schema_t s;
        int32_t node;
    } *memo;
    int nmemo, memo_cap;
    int failed_alloc;
    int too_deep;
} rs_ctx;

static int rs_grow(void **a, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *n = realloc(*a, (size_t)c * elem);
    if (!n) return -1;
    *a = n;
    *cap = c;
    return 0;
}

static avro_schema_t rs_deref(avro_schema_t s) {
    while (s && is_avro_link(s)) s = avro_schema_link_target(s);
    return s;
}

/* The part of a name after its last dot (names compare unqualified, as the spec says). */
static const char *rs_unqualified(const char *name) {
    const char *dot = name ? strrchr(name, '.') : NULL;
    return dot ? dot + 1 : name;
}

static int rs_kind_of(avro_schema_t s) {
    switch (avro_typeof(s)) {
    case AVRO_NULL: return W_NULL;
    case AVRO_BOOLEAN: return W_BOOLEAN;
    case AVRO_INT32: return W_INT;
    case AVRO_INT64: return W_LONG;
    case AVRO_FLOAT: return W_FLOAT;
    case AVRO_DOUBLE: return W_DOUBLE;
    case AVRO_STRING: return W_STRING;
    case AVRO_BYTES: return W_BYTES;
    case AVRO_ENUM: return W_ENUM;
    case AVRO_FIXED: return W_FIXED;
    case AVRO_RECORD: return W_RECORD;
    case AVRO_ARRAY: return W_ARRAY;
    case AVRO_MAP: return W_MAP;
    case AVRO_UNION: return W_UNION;
    default: return -1;
    }
}

/* "string", "enum Color", "record Foo", ... */
static void rs_describe(avro_schema_t s, char *buf, size_t len) {
    s = rs_deref(s);
    const char *kind = is_avro_record(s) ? "record" : is_avro_enum(s) ? "enum" : is_avro_fixed(s) ? "fixed" : NULL;
    if (kind) snprintf(buf, len, "%s %s", kind, avro_schema_name(s));
    else snprintf(buf, len, "%s", avro_schema_type_name(s));
}

static const char *rs_type_name(resolve_type t) {
    static const char *const names[] = {"null", "boolean", "int", "long", "float", "double", "string", "bytes", "enum"};
    return names[t];
}

/* The reader field's type as written: "long", "[null, float]". */
static void rs_describe_reader(const rs_rfield *rf, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < rf->n && used < len; i++) {
        const rs_rtype *t = &rf->b[i];
        int k = snprintf(buf + used, len - used, "%s%s%s%s", rf->is_union && i == 0 ? "[" : "", i ? ", " : "",
                         t->type == RESOLVE_ENUM ? "enum " : "",
                         t->type == RESOLVE_ENUM ? avro_schema_name(t->schema) : rs_type_name(t->type));
        if (k < 0) return;
        used += (size_t)k;
    }
    if (rf->is_union && used < len) snprintf(buf + used, len - used, "]");
}

/* n bytes the plan owns (a default's string), NULL when out of memory. */
static char *rs_own(rs_ctx *x, size_t n) {
    resolve_plan *p = x->p;
    char *s = malloc(n ? n : 1);
    if (!s || rs_grow((void **)&p->msgs, &p->msgs_cap, p->nmsgs + 1, sizeof *p->msgs)) {
        free(s);
        x->failed_alloc = 1;
        return NULL;
    }
    p->msgs[p->nmsgs++] = s;
    return s;
}

/* The skip node of writer type s (memoized; recursion ends at the memo). -1 when out of memory or
 * nested deeper than RS_MAX_SCHEMA_DEPTH (x->too_deep). */
static int32_t rs_skip_node(rs_ctx *x, avro_schema_t s, int depth) {
    resolve_plan *p = x->p;
    s = rs_deref(s);
    if (depth > RS_MAX_SCHEMA_DEPTH) {
        x->too_deep = 1;
        return -1;
    }
    for (int i = 0; i < x->nmemo; i++)
        if (x->memo[i].s == s) return x->memo[i].node;
    if (rs_grow((void **)&p->nodes, &p->nodes_cap, p->nnodes + 1, sizeof *p->nodes) ||
        rs_grow((void **)&x->memo, &x->memo_cap, x->nmemo + 1, sizeof *x->memo))
        return -1;
    int32_t id = p->nnodes++;
    x->memo[x->nmemo++] = (struct rs_memo){s, id};
    rs_node nd = {.kind = (uint8_t)rs_kind_of(s), .fixed_size = -1};
    switch (avro_typeof(s)) {
    case AVRO_NULL: nd.fixed_size = 0; break;
    case AVRO_BOOLEAN: nd.fixed_size = 1; break;
    case AVRO_FLOAT: nd.fixed_size = 4; break;
    case AVRO_DOUBLE: nd.fixed_size = 8; break;
    case AVRO_FIXED: nd.size = (int32_t)avro_schema_fixed_size(s); nd.fixed_size = nd.size; break;
    case AVRO_ENUM: nd.size = avro_schema_enum_number_of_symbols(s); break;
    default: break;
    }
    p->nodes[id] = nd;   /* recursive references see fixed_size -1 while the children compile */
    if (is_avro_record(s) || is_avro_union(s)) {
        int n = (int)(is_avro_record(s) ? avro_schema_record_size(s) : avro_schema_union_size(s));
        if (rs_grow((void **)&p->kids, &p->kids_cap, p->nkids + n, sizeof *p->kids)) return -1;
        int first = p->nkids;
        p->nkids += n;
        int64_t total = 0;
        for (int i = 0; i < n; i++) {
            avro_schema_t child = is_avro_record(s) ? avro_schema_record_field_get_by_index(s, i)
                                                    : avro_schema_union_branch(s, i);
            int32_t k = rs_skip_node(x, child, depth + 1);
            if (k < 0) return -1;
            p->kids[first + i] = k;
            int64_t fs = p->nodes[k].fixed_size;
            total = total < 0 || fs < 0 ? -1 : total + fs;
        }
        p->nodes[id].first = first;
        p->nodes[id].n = n;
        if (is_avro_record(s)) p->nodes[id].fixed_size = total;
    } else if (is_avro_array(s) || is_avro_map(s)) {
        int32_t k = rs_skip_node(x, is_avro_array(s) ? avro_schema_array_items(s) : avro_schema_map_values(s), depth + 1);
        if (k < 0) return -1;
        p->nodes[id].first = k;
    }
    return id;
}

/* Whether writer kind wk with schema ws reads as reader type t: 2 exactly, 1 by promotion, 0 not. */
static int rs_match(int wk, avro_schema_t ws, const rs_rtype *t) {
    switch (wk) {
    case W_NULL: return t->type == RESOLVE_NULL ? 2 : 0;
    case W_BOOLEAN: return t->type == RESOLVE_BOOLEAN ? 2 : 0;
    case W_INT:
        return t->type == RESOLVE_INT ? 2 : (t->type == RESOLVE_LONG || t->type == RESOLVE_FLOAT || t->type == RESOLVE_DOUBLE);
    case W_LONG: return t->type == RESOLVE_LONG ? 2 : (t->type == RESOLVE_FLOAT || t->type == RESOLVE_DOUBLE);
    case W_FLOAT: return t->type == RESOLVE_FLOAT ? 2 : t->type == RESOLVE_DOUBLE;
    case W_DOUBLE: return t->type == RESOLVE_DOUBLE ? 2 : 0;
    case W_STRING: return t->type == RESOLVE_STRING ? 2 : t->type == RESOLVE_BYTES;
    case W_BYTES: return t->type == RESOLVE_BYTES ? 2 : t->type == RESOLVE_STRING;
    case W_ENUM:
        return t->type == RESOLVE_ENUM &&
                       strcmp(rs_unqualified(avro_schema_name(ws)), rs_unqualified(avro_schema_name(t->schema))) == 0
                   ? 2
                   : 0;
    default: return 0;
    }
}

/* The read of writer type ws into reader field rf: 0, or -1 with why (not readable; x->failed_alloc
 * on allocation failure). */
static int rs_read_for(rs_ctx *x, avro_schema_t ws, const rs_rfield *rf, rs_read *out, char *why, size_t whylen) {
    resolve_plan *p = x->p;
    ws = rs_deref(ws);
    int wk = rs_kind_of(ws);
    int best = -1, best_score = 0;
    for (int i = 0; i < rf->n; i++) {
        int sc = rs_match(wk, ws, &rf->b[i]);
        if (sc > best_score) best = i, best_score = sc;
        if (sc == 2) break;   /* the first exact match; else the first promotion */
    }
    if (best < 0) {
        char wd[160], rd[200];
        rs_describe(ws, wd, sizeof wd);
        rs_describe_reader(rf, rd, sizeof rd);
        snprintf(why, whylen, "the writer's %s cannot be read as %s", wd, rd);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->wkind = (uint8_t)wk;
    out->rtype = (uint8_t)rf->b[best].type;
    out->rbranch = (int16_t)(rf->is_union ? best : 0);
    out->exact = best_score == 2;
    if (wk == W_ENUM) {
        avro_schema_t rs = rf->b[best].schema;
        int n = avro_schema_enum_number_of_symbols(ws);
        if (rs_grow((void **)&p->enum_map, &p->map_cap, p->nmap + n, sizeof *p->enum_map)) {
            x->failed_alloc = 1;
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        out->nsym = n;
        out->map = p->nmap;
        int same = n == avro_schema_enum_number_of_symbols(rs);
        for (int i = 0; i < n; i++) {
            int r = avro_schema_enum_get_by_name(rs, avro_schema_enum_get(ws, i));
            if (r < 0) r = rf->b[best].enum_default;
            if (r < 0) {
                snprintf(why, whylen, "the writer's symbol %s is not in the reader's enum %s, which has no default",
                         avro_schema_enum_get(ws, i), avro_schema_name(rs));
                return -1;
            }
            p->enum_map[p->nmap + i] = r;
            same = same && r == i;
        }
        p->nmap += n;
        out->exact = out->exact && same;
    }
    return 0;
}

/* Finds the JSON definition of the enum named name in the reader's JSON (for its default). */
static json_t *rs_find_enum(json_t *j, const char *name) {
    if (json_is_object(j)) {
        const char *t = json_string_value(json_object_get(j, "type"));
        const char *n = json_string_value(json_object_get(j, "name"));
        if (t && n && !strcmp(t, "enum") && !strcmp(rs_unqualified(n), rs_unqualified(name))) return j;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            json_t *f = rs_find_enum(v, name);
            if (f) return f;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            json_t *f = rs_find_enum(v, name);
            if (f) return f;
        }
    }
    return NULL;
}

static int rs_reader_type(rs_ctx *x, avro_schema_t s, rs_rtype *t) {
    s = rs_deref(s);
    t->schema = s;
    t->enum_default = -1;
    switch (avro_typeof(s)) {
    case AVRO_NULL: t->type = RESOLVE_NULL; return 0;
    case AVRO_BOOLEAN: t->type = RESOLVE_BOOLEAN; return 0;
    case AVRO_INT32: t->type = RESOLVE_INT; return 0;
    case AVRO_INT64: t->type = RESOLVE_LONG; return 0;
    case AVRO_FLOAT: t->type = RESOLVE_FLOAT; return 0;
    case AVRO_DOUBLE: t->type = RESOLVE_DOUBLE; return 0;
    case AVRO_STRING: t->type = RESOLVE_STRING; return 0;
    case AVRO_BYTES: t->type = RESOLVE_BYTES; return 0;
    case AVRO_ENUM: {
        t->type = RESOLVE_ENUM;
        json_t *def = json_object_get(rs_find_enum(x->rjson, avro_schema_name(s)), "default");
        if (json_is_string(def)) t->enum_default = avro_schema_enum_get_by_name(s, json_string_value(def));
        return 0;
    }
    default: return -1;
    }
}

/* The reader's default for rf (its first branch's type, for a union) into *v. */
static int rs_default(rs_ctx *x, const rs_rfield *rf, json_t *d, resolve_value *v, char *err, size_t errlen) {
    const rs_rtype *t = &rf->b[0];
    memset(v, 0, sizeof *v);
    v->type = t->type;
    v->branch = 0;
    int ok = 0;
    switch (t->type) {
    case RESOLVE_NULL: ok = json_is_null(d); break;
    case RESOLVE_BOOLEAN: ok = json_is_boolean(d), v->v.b = json_is_true(d); break;
    case RESOLVE_INT:
        ok = json_is_integer(d) && json_integer_value(d) >= INT32_MIN && json_integer_value(d) <= INT32_MAX;
        v->v.i = ok ? (int32_t)json_integer_value(d) : 0;
        break;
    case RESOLVE_LONG: ok = json_is_integer(d), v->v.l = json_integer_value(d); break;
    case RESOLVE_FLOAT: ok = json_is_number(d), v->v.f = (float)json_number_value(d); break;
    case RESOLVE_DOUBLE: ok = json_is_number(d), v->v.d = json_number_value(d); break;
    case RESOLVE_STRING:
        if ((ok = json_is_string(d))) {
            size_t n = json_string_length(d);
            char *s = rs_own(x, n + 1);
            if (!s) return snprintf(err, errlen, "out of memory"), -1;
            memcpy(s, json_string_value(d), n + 1);
            v->v.s.p = s, v->v.s.n = n;
        }
        break;
    case RESOLVE_BYTES:
        /* JSON strings whose code points 0-255 are the bytes */
        if ((ok = json_is_string(d))) {
            const unsigned char *u = (const unsigned char *)json_string_value(d);
            size_t n = json_string_length(d), k = 0;
            char *s = rs_own(x, n + 1);
            if (!s) return snprintf(err, errlen, "out of memory"), -1;
            for (size_t i = 0; i < n && ok; k++) {
                if (u[i] < 0x80) s[k] = (char)u[i++];
                else if ((u[i] & 0xE0) == 0xC0 && i + 1 < n && u[i] <= 0xC3) s[k] = (char)(((u[i] & 0x1F) << 6) | (u[i + 1] & 0x3F)), i += 2;
                else ok = 0;
            }
            v->v.s.p = s, v->v.s.n = k;
        }
        break;
    case RESOLVE_ENUM:
        ok = json_is_string(d) && (v->v.e = avro_schema_enum_get_by_name(t->schema, json_string_value(d))) >= 0;
        break;
    }
    if (!ok) {
        char rd[200];
        rs_describe_reader(rf, rd, sizeof rd);
        snprintf(err, errlen, "reader schema: field %s: the default does not match its type %s", rf->name, rd);
        return -1;
    }
    return 0;
}

/* The reader field a writer field named name fills: by name, then by the reader's aliases. */
static int rs_find_reader_field(rs_ctx *x, const char *name) {
    for (int i = 0; i < x->p->nfields; i++)
        if (!strcmp(x->rf[i].name, name)) return i;
    for (int i = 0; i < x->p->nfields; i++) {
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(x->rf[i].json, "aliases"), k, a)
            if (json_is_string(a) && !strcmp(json_string_value(a), name)) return i;
    }
    return -1;
}

static int rs_add_read(rs_ctx *x) {
    resolve_plan *p = x->p;
    if (rs_grow((void **)&p->reads, &p->reads_cap, p->nreads + 1, sizeof *p->reads)) return -1;
    return p->nreads++;
}

/* One writer field: a skip, a read or a union of reads. */
static int rs_compile_field(rs_ctx *x, avro_schema_t wrec, int wi, char *err, size_t errlen) {
    resolve_plan *p = x->p;
    const char *name = avro_schema_record_field_name(wrec, wi);
    avro_schema_t ws = rs_deref(avro_schema_record_field_get_by_index(wrec, wi));
    rs_field f = {.kind = F_SKIP, .slot = -1, .node = -1, .read = -1, .name = name};
    int slot = rs_find_reader_field(x, name);
    if (slot >= 0 && x->rf[slot].filled) slot = -1;   /* a second writer field for it (an alias): skipped */
    char why[400];
    if (slot < 0) {
        if ((f.node = rs_skip_node(x, ws, 0)) < 0) {
            if (x->too_deep)
                snprintf(err, errlen, "field %s: the writer's type nests deeper than %d levels", name, RS_MAX_SCHEMA_DEPTH);
            else
                snprintf(err, errlen, "out of memory");
            return -1;
        }
    } else if (is_avro_union(ws)) {
        /* every branch must be readable, as in Java's SchemaCompatibility (what registries
         * check): the verdict is the schema's, never a record's */
        f.kind = F_UNION;
        f.slot = (int16_t)slot;
        f.nread = (int32_t)avro_schema_union_size(ws);
        for (int b = 0; b < f.nread; b++) {
            int r = rs_add_read(x);
            if (r < 0) return snprintf(err, errlen, "out of memory"), -1;
            if (b == 0) f.read = r;
            rs_read rd;
            if (rs_read_for(x, avro_schema_union_branch(ws, b), &x->rf[slot], &rd, why, sizeof why)) {
                if (x->failed_alloc) return snprintf(err, errlen, "out of memory"), -1;
                snprintf(err, errlen, "field %s: in the writer's union, %s", x->rf[slot].name, why);
                return -1;
            }
            p->reads[r] = rd;
        }
    } else {
        f.kind = F_READ;
        f.slot = (int16_t)slot;
        f.nread = 1;
        rs_read rd;
        if (rs_read_for(x, ws, &x->rf[slot], &rd, why, sizeof why)) {
            if (x->failed_alloc) return snprintf(err, errlen, "out of memory"), -1;
            snprintf(err, errlen, "field %s: %s", x->rf[slot].name, why);
            return -1;
        }
        int r = rs_add_read(x);
        if (r < 0) return snprintf(err, errlen, "out of memory"), -1;
        p->reads[r] = rd;
        f.read = r;
    }
    if (slot >= 0) x->rf[slot].filled = 1;
    p->fields[wi] = f;
    return 0;
}

/* Field i of the writer is read exactly as the reader's decoder reads its field i. */
static int rs_same_field(const resolve_plan *p, const rs_ctx *x, int i) {
    const rs_field *f = &p->fields[i];
    const rs_rfield *rf = &x->rf[i];
    if (f->slot != i) return 0;
    if (f->kind == F_READ) return !rf->is_union && p->reads[f->read].exact;
    if (f->kind != F_UNION || !rf->is_union || f->nread != rf->n) return 0;
    for (int b = 0; b < f->nread; b++) {
        const rs_read *r = &p->reads[f->read + b];
        if (!r->exact || r->rbranch != b) return 0;
    }
    return 1;
}

static int rs_reader(rs_ctx *x, const char *reader_json, char *err, size_t errlen) {
    resolve_plan *p = x->p;
    json_error_t je;
    if (!(x->rjson = json_loads(reader_json, 0, &je)) ||
        avro_schema_from_json_length(reader_json, strlen(reader_json), &x->reader)) {
        snprintf(err, errlen, "reader schema does not parse: %s", x->rjson ? avro_strerror() : je.text);
        return -1;
    }
    json_t *fields = json_object_get(x->rjson, "fields");
    if (!is_avro_record(x->reader) || !json_is_array(fields)) {
        snprintf(err, errlen, "reader schema is not a record");
        return -1;
    }
    p->nfields = (int)avro_schema_record_size(x->reader);
    if (p->nfields > RESOLVE_MAX_FIELDS || (size_t)p->nfields != json_array_size(fields)) {
        snprintf(err, errlen, "reader schema: %d fields (at most %d)", p->nfields, RESOLVE_MAX_FIELDS);
        return -1;
    }
    for (int i = 0; i < p->nfields; i++) {
        rs_rfield *rf = &x->rf[i];
        rf->name = avro_schema_record_field_name(x->reader, i);
        rf->json = json_array_get(fields, (size_t)i);
        if (!(p->names[i] = strdup(rf->name))) return snprintf(err, errlen, "out of memory"), -1;
        avro_schema_t t = rs_deref(avro_schema_record_field_get_by_index(x->reader, i));
        rf->is_union = is_avro_union(t);
        rf->n = rf->is_union ? (int)avro_schema_union_size(t) : 1;
        int bad = rf->n > RS_MAX_BRANCHES;
        for (int b = 0; b < rf->n && !bad; b++)
            bad = rs_reader_type(x, rf->is_union ? avro_schema_union_branch(t, b) : t, &rf->b[b]) != 0;
        if (bad) {
            snprintf(err, errlen, "reader schema: field %s has a type this resolver does not read (%s)", rf->name,
                     avro_schema_type_name(t));
            return -1;
        }
    }
    return 0;
}

int resolve_plan_new(const char *reader_json, const char *writer_json, size_t writer_len, resolve_plan **out,
                     char *err, size_t errlen) {
    rs_ctx x;
    memset(&x, 0, sizeof x);
    resolve_plan *p = x.p = calloc(1, sizeof *p);
    int rc = -1;
    *out = NULL;
    if (!p) return snprintf(err, errlen, "out of memory"), -1;
    if (rs_reader(&x, reader_json, err, errlen)) goto done;
    if (avro_schema_from_json_length(writer_json, writer_len, &p->writer)) {
        snprintf(err, errlen, "writer schema does not parse: %s", avro_strerror());
        goto done;
    }
    avro_schema_t w = rs_deref(p->writer);
    if (!is_avro_record(w)) {
        snprintf(err, errlen, "the writer's schema is %s, not a record", avro_schema_type_name(w));
        goto done;
    }
    /* Records match by unqualified name, or by one of the reader's aliases. */
    const char *wname = rs_unqualified(avro_schema_name(w)), *rname = rs_unqualified(avro_schema_name(x.reader));
    int named = !strcmp(wname, rname);
    size_t k;
    json_t *a;
    json_array_foreach(json_object_get(x.rjson, "aliases"), k, a)
        named = named || (json_is_string(a) && !strcmp(rs_unqualified(json_string_value(a)), wname));
    if (!named) {
        snprintf(err, errlen, "the writer's record %s is not the reader's %s (records match by name)",
                 avro_schema_name(w), avro_schema_name(x.reader));
        goto done;
    }
    p->nwfields = (int)avro_schema_record_size(w);
    if (!(p->fields = calloc((size_t)(p->nwfields ? p->nwfields : 1), sizeof *p->fields))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < p->nwfields; i++)
        if (rs_compile_field(&x, w, i, err, errlen)) goto done;
    int defaults_used = 0;
    for (int i = 0; i < p->nfields; i++) {
        if (x.rf[i].filled) continue;
        json_t *d = json_object_get(x.rf[i].json, "default");
        if (!d) {
            snprintf(err, errlen, "field %s: not in the writer's schema, and the reader has no default for it",
                     x.rf[i].name);
            goto done;
        }
        if (rs_default(&x, &x.rf[i], d, &p->defaults[i], err, errlen)) goto done;
        defaults_used = 1;
    }
    int same = !defaults_used && p->nwfields >= p->nfields;
    for (int i = 0; same && i < p->nfields; i++) same = rs_same_field(p, &x, i);
    p->layout = !same ? RESOLVE_GENERAL : p->nwfields == p->nfields ? RESOLVE_SAME : RESOLVE_PREFIX;
    p->prefix_fields = p->nfields;
    *out = p;
    rc = 0;
done:
    if (rc) resolve_plan_free(p);
    if (x.reader) avro_schema_decref(x.reader);
    json_decref(x.rjson);
    free(x.memo);
    return rc;
}

void resolve_plan_free(resolve_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nfields; i++) free(p->names[i]);
    for (int i = 0; i < p->nmsgs; i++) free(p->msgs[i]);
    free(p->msgs);
    free(p->fields);
    free(p->nodes);
    free(p->kids);
    free(p->reads);
    free(p->enum_map);
    if (p->writer) avro_schema_decref(p->writer);
    free(p);
}

resolve_layout resolve_plan_layout(const resolve_plan *p) { return p->layout; }
int resolve_plan_fields(const resolve_plan *p) { return p->nfields; }

/* ---- decoding ---------------------------------------------------------------------------------- */

static codec_status rs_take(codec_cursor *c, size_t n, const char *field, char *reason, size_t rl) {
    if ((size_t)(c->end - c->p) < n) return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s", field);
    c->p += n;
    return CODEC_OK;
}

static codec_status rs_varint(codec_cursor *c, int64_t *v, const char *field, char *reason, size_t rl) {
    int rc = codec_read_long(c, v);
    return rc ? codec_long_error(rc, field, reason, rl) : CODEC_OK;
}

static codec_status rs_int(codec_cursor *c, int64_t *v, const char *field, char *reason, size_t rl) {
    codec_status st = rs_varint(c, v, field, reason, rl);
    if (!st && (*v < INT32_MIN || *v > INT32_MAX))
        return codec_fail(CODEC_E_AVRO, reason, rl, "int %lld out of range in field %s", (long long)*v, field);
    return st;
}

static codec_status rs_skip(const resolve_plan *p, int32_t node, codec_cursor *c, int depth, const char *field,
                            char *reason, size_t rl) {
    const rs_node *n = &p->nodes[node];
    int64_t v;
    codec_status st;
    if (depth > RESOLVE_MAX_DEPTH)
        return codec_fail(CODEC_E_AVRO, reason, rl, "field %s nests deeper than %d levels", field, RESOLVE_MAX_DEPTH);
    switch (n->kind) {
    case W_NULL: return CODEC_OK;
    case W_BOOLEAN:
        if (c->p < c->end && *c->p > 1)
            return codec_fail(CODEC_E_AVRO, reason, rl, "bad boolean 0x%02x in field %s", *c->p, field);
        return rs_take(c, 1, field, reason, rl);
    case W_INT: return rs_int(c, &v, field, reason, rl);
    case W_LONG: return rs_varint(c, &v, field, reason, rl);
    case W_ENUM:
        if ((st = rs_varint(c, &v, field, reason, rl))) return st;
        if (v < 0 || v >= n->size)
            return codec_fail(CODEC_E_AVRO, reason, rl, "bad enum index %lld in field %s", (long long)v, field);
        return CODEC_OK;
    case W_FLOAT: return rs_take(c, 4, field, reason, rl);
    case W_DOUBLE: return rs_take(c, 8, field, reason, rl);
    case W_FIXED: return rs_take(c, (size_t)n->size, field, reason, rl);
    case W_STRING:
    case W_BYTES: {
        const char *s;
        size_t len;
        return codec_read_string(c, field, &s, &len, reason, rl);
    }
    case W_RECORD:
        for (int i = 0; i < n->n; i++)
            if ((st = rs_skip(p, p->kids[n->first + i], c, depth + 1, field, reason, rl))) return st;
        return CODEC_OK;
    case W_UNION:
        if ((st = rs_varint(c, &v, field, reason, rl))) return st;
        if (v < 0 || v >= n->n)
            return codec_fail(CODEC_E_AVRO, reason, rl, "bad union branch %lld in field %s", (long long)v, field);
        return rs_skip(p, p->kids[n->first + v], c, depth + 1, field, reason, rl);
    case W_ARRAY:
    case W_MAP: {
        const rs_node *item = &p->nodes[n->first];
        for (;;) {
            int64_t count;
            if ((st = rs_varint(c, &count, field, reason, rl))) return st;
            if (count == 0) return CODEC_OK;
            if (count < 0) { /* a block with its size in bytes: skipped whole */
                int64_t size;
                if (count == INT64_MIN) return codec_fail(CODEC_E_AVRO, reason, rl, "bad block count in field %s", field);
                if ((st = rs_varint(c, &size, field, reason, rl))) return st;
                if (size < 0 || (uint64_t)size > (uint64_t)(c->end - c->p))
                    return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s (block of %lld bytes, %zu left)",
                                      field, (long long)size, (size_t)(c->end - c->p));
                c->p += size;
                continue;
            }
            size_t left = (size_t)(c->end - c->p);
            if (n->kind == W_ARRAY && item->fixed_size >= 0) {
                if (item->fixed_size > 0 && (uint64_t)count > left / (uint64_t)item->fixed_size)
                    return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s (%lld items, %zu bytes left)",
                                      field, (long long)count, left);
                c->p += (size_t)count * (size_t)item->fixed_size;
                continue;
            }
            /* every item takes at least one byte (a map's key is a string) */
            if ((uint64_t)count > left)
                return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s (%lld items, %zu bytes left)", field,
                                  (long long)count, left);
            for (int64_t i = 0; i < count; i++) {
                if (n->kind == W_MAP) {
                    const char *s;
                    size_t len;
                    if ((st = codec_read_string(c, field, &s, &len, reason, rl))) return st;
                }
                if ((st = rs_skip(p, n->first, c, depth + 1, field, reason, rl))) return st;
            }
        }
    }
    }
    return codec_fail(CODEC_E_AVRO, reason, rl, "field %s: unknown writer type", field);
}

static codec_status rs_read_value(const resolve_plan *p, const rs_read *r, codec_cursor *c, const char *field,
                                  resolve_value *out, char *reason, size_t rl) {
    codec_status st;
    int64_t v;
    out->type = (resolve_type)r->rtype;
    out->branch = r->rbranch;
    switch (r->wkind) {
    case W_NULL: return CODEC_OK;
    case W_BOOLEAN:
        if (c->p >= c->end) return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s", field);
        if (*c->p > 1) return codec_fail(CODEC_E_AVRO, reason, rl, "bad boolean 0x%02x in field %s", *c->p, field);
        out->v.b = *c->p++;
        return CODEC_OK;
    case W_INT:
    case W_LONG:
        if ((st = r->wkind == W_INT ? rs_int(c, &v, field, reason, rl) : rs_varint(c, &v, field, reason, rl))) return st;
        switch (out->type) {
        case RESOLVE_INT: out->v.i = (int32_t)v; break;
        case RESOLVE_FLOAT: out->v.f = (float)v; break;
        case RESOLVE_DOUBLE: out->v.d = (double)v; break;
        default: out->v.l = v; break;
        }
        return CODEC_OK;
    case W_FLOAT: {
        if (c->end - c->p < 4) return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s", field);
        uint32_t bits = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
        float f;
        memcpy(&f, &bits, 4);
        c->p += 4;
        if (out->type == RESOLVE_DOUBLE) out->v.d = (double)f;
        else out->v.f = f;
        return CODEC_OK;
    }
    case W_DOUBLE: {
        if (c->end - c->p < 8) return codec_fail(CODEC_E_AVRO, reason, rl, "truncated in field %s", field);
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--) bits = bits << 8 | c->p[i];
        memcpy(&out->v.d, &bits, 8);
        c->p += 8;
        return CODEC_OK;
    }
    case W_STRING:
    case W_BYTES: return codec_read_string(c, field, &out->v.s.p, &out->v.s.n, reason, rl);
    case W_ENUM:
        if ((st = rs_varint(c, &v, field, reason, rl))) return st;
        if (v < 0 || v >= r->nsym)
            return codec_fail(CODEC_E_AVRO, reason, rl, "bad enum index %lld in field %s", (long long)v, field);
        out->v.e = p->enum_map[r->map + v];
        return CODEC_OK;
    }
    return codec_fail(CODEC_E_AVRO, reason, rl, "field %s: unknown writer type", field);
}

static codec_status rs_field_run(const resolve_plan *p, const rs_field *f, codec_cursor *c, resolve_value *out,
                                 char *reason, size_t rl) {
    codec_status st;
    int64_t b;
    switch (f->kind) {
    case F_SKIP: return rs_skip(p, f->node, c, 0, f->name, reason, rl);
    case F_READ: return rs_read_value(p, &p->reads[f->read], c, p->names[f->slot], &out[f->slot], reason, rl);
    default:
        if ((st = rs_varint(c, &b, p->names[f->slot], reason, rl))) return st;
        if (b < 0 || b >= f->nread)
            return codec_fail(CODEC_E_AVRO, reason, rl, "bad union branch %lld in field %s", (long long)b,
                              p->names[f->slot]);
        return rs_read_value(p, &p->reads[f->read + b], c, p->names[f->slot], &out[f->slot], reason, rl);
    }
}

codec_status resolve_decode(const resolve_plan *p, const uint8_t *body, size_t len, resolve_value *out, char *reason,
                            size_t reason_len) {
    codec_cursor c = {body, body + len};
    codec_status st;
    if (reason && reason_len) reason[0] = 0;
    memcpy(out, p->defaults, (size_t)p->nfields * sizeof *out);
    for (int i = 0; i < p->nwfields; i++)
        if ((st = rs_field_run(p, &p->fields[i], &c, out, reason, reason_len))) return st;
    return codec_check_end(&c, reason, reason_len);
}

codec_status resolve_skip_tail(const resolve_plan *p, codec_cursor *c, char *reason, size_t reason_len) {
    codec_status st;
    for (int i = p->prefix_fields; i < p->nwfields; i++)
        if ((st = rs_skip(p, p->fields[i].node, c, 0, p->fields[i].name, reason, reason_len))) return st;
    return CODEC_OK;
}
