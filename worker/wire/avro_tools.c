/* avro_tools: UserAction writer, InterestVector writer and reader on avro-c's generic API.
 * See avro_tools.h for why this side exists; the traps it avoids are listed there. */
#include "avro_tools.h"

#include <avro.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "schemas.h"

#define AVRO_TOOLS_HEADER 5

/* A growable byte buffer: encoded output, and NUL-terminated copies of strings for avro-c. */
typedef struct {
    uint8_t *p;
    size_t cap;
} avro_tools_buf;

static int avro_tools_buf_reserve(avro_tools_buf *b, size_t n) {
    if (n <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < n) nc *= 2;
    uint8_t *np = realloc(b->p, nc);
    if (!np) return -1;
    b->p = np;
    b->cap = nc;
    return 0;
}

/* Sets an avro-c string from s[0..n): avro-c wants the length including a NUL that is really
 * there, so the bytes go through a NUL-terminated scratch copy. */
static int avro_tools_set_string(avro_value_t *v, avro_tools_buf *scratch, const char *s, size_t n) {
    if (avro_tools_buf_reserve(scratch, n + 1)) return ENOMEM;
    if (n) memcpy(scratch->p, s, n);
    scratch->p[n] = 0;
    return avro_value_set_string_len(v, (const char *)scratch->p, n + 1);
}

/* The common part of both writers: schema, value, memory writer, output buffer. */
typedef struct {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    int has_value;
    avro_writer_t writer;
    avro_tools_buf out, scratch;
    wire_format fmt;
    int32_t schema_id;
} avro_tools_rec;

static int avro_tools_rec_init(avro_tools_rec *r, const char *json, wire_format fmt, int32_t schema_id,
                               char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->fmt = fmt;
    r->schema_id = schema_id;
    if (avro_schema_from_json_length(json, strlen(json), &r->schema)) {
        snprintf(err, errlen, "avro: cannot parse embedded schema: %s", avro_strerror());
        return -1;
    }
    if (!(r->iface = avro_generic_class_from_schema(r->schema))) {
        snprintf(err, errlen, "avro: cannot build generic class: %s", avro_strerror());
        return -1;
    }
    if (avro_generic_value_new(r->iface, &r->value)) {
        snprintf(err, errlen, "avro: cannot create value: %s", avro_strerror());
        return -1;
    }
    r->has_value = 1;
    if (avro_tools_buf_reserve(&r->out, 1024) || !(r->writer = avro_writer_memory((const char *)r->out.p, 1))) {
        snprintf(err, errlen, "avro: out of memory");
        return -1;
    }
    return 0;
}

static void avro_tools_rec_free(avro_tools_rec *r) {
    if (r->writer) avro_writer_free(r->writer);
    if (r->has_value) avro_value_decref(&r->value);
    if (r->iface) avro_value_iface_decref(r->iface);
    if (r->schema) avro_schema_decref(r->schema);
    free(r->out.p);
    free(r->scratch.p);
}

/* Writes r->value (with the header when Confluent) into r->out. */
static int avro_tools_rec_write(avro_tools_rec *r, const uint8_t **out, size_t *len, char *err, size_t errlen) {
    size_t hdr = r->fmt == WIRE_CONFLUENT ? AVRO_TOOLS_HEADER : 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        avro_writer_memory_set_dest(r->writer, (const char *)r->out.p + hdr, (int64_t)(r->out.cap - hdr));
        if (avro_value_write(r->writer, &r->value) == 0) {
            if (hdr) codec_put_confluent_header(r->out.p, r->schema_id);
            *out = r->out.p;
            *len = hdr + (size_t)avro_writer_tell(r->writer);
            return 0;
        }
        /* Too small: size it and retry once. */
        size_t need;
        if (avro_value_sizeof(&r->value, &need) || avro_tools_buf_reserve(&r->out, hdr + need)) break;
    }
    snprintf(err, errlen, "avro: cannot write record: %s", avro_strerror());
    return -1;
}

/* ---- UserAction writer ---------------------------------------------------------------------- */

struct avro_tools_ua_writer {
    avro_tools_rec rec;
    avro_value_t f_user, f_item, f_action, f_ts, f_value, f_text;
};

avro_tools_ua_writer *avro_tools_ua_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen) {
    avro_tools_ua_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (avro_tools_rec_init(&w->rec, ievo_schema_user_action_json, fmt, schema_id, err, errlen)) goto bad;
    avro_value_t *v = &w->rec.value;
    if (avro_value_get_by_name(v, "user_id", &w->f_user, NULL) || avro_value_get_by_name(v, "item_id", &w->f_item, NULL) ||
        avro_value_get_by_name(v, "action", &w->f_action, NULL) || avro_value_get_by_name(v, "ts", &w->f_ts, NULL) ||
        avro_value_get_by_name(v, "value", &w->f_value, NULL) || avro_value_get_by_name(v, "text", &w->f_text, NULL)) {
        snprintf(err, errlen, "avro: UserAction schema lacks a field: %s", avro_strerror());
        goto bad;
    }
    return w;
bad:
    avro_tools_ua_writer_free(w);
    return NULL;
}

void avro_tools_ua_writer_free(avro_tools_ua_writer *w) {
    if (!w) return;
    avro_tools_rec_free(&w->rec);
    free(w);
}

int avro_tools_ua_write(avro_tools_ua_writer *w, const user_action *ua, const uint8_t **out, size_t *len,
                        char *err, size_t errlen) {
    avro_tools_buf *s = &w->rec.scratch;
    avro_value_t branch;
    int rc = avro_tools_set_string(&w->f_user, s, ua->user_id, ua->user_id_len);
    rc = rc ? rc : avro_tools_set_string(&w->f_item, s, ua->item_id, ua->item_id_len);
    rc = rc ? rc : avro_tools_set_string(&w->f_action, s, ua->action, ua->action_len);
    rc = rc ? rc : avro_value_set_long(&w->f_ts, ua->ts);
    if (!rc) {
        if (ua->has_value) {
            rc = avro_value_set_branch(&w->f_value, 1, &branch);
            rc = rc ? rc : avro_value_set_float(&branch, ua->value);
        } else {
            rc = avro_value_set_branch(&w->f_value, 0, &branch);
            rc = rc ? rc : avro_value_set_null(&branch);
        }
    }
    if (!rc) {
        if (ua->has_text) {
            rc = avro_value_set_branch(&w->f_text, 1, &branch);
            rc = rc ? rc : avro_tools_set_string(&branch, s, ua->text, ua->text_len);
        } else {
            rc = avro_value_set_branch(&w->f_text, 0, &branch);
            rc = rc ? rc : avro_value_set_null(&branch);
        }
    }
    if (rc) {
        snprintf(err, errlen, "avro: cannot set UserAction fields: %s", rc == ENOMEM ? "out of memory" : avro_strerror());
        return -1;
    }
    return avro_tools_rec_write(&w->rec, out, len, err, errlen);
}

/* ---- InterestVector: field handles shared by the writer and the reader ---------------------- */

typedef struct {
    avro_value_t user, ts, events, vector, drift, model, spart, soff, top;
} avro_tools_iv_fields;

static int avro_tools_iv_fields_get(avro_value_t *v, avro_tools_iv_fields *f, char *err, size_t errlen) {
    if (avro_value_get_by_name(v, "user_id", &f->user, NULL) || avro_value_get_by_name(v, "ts", &f->ts, NULL) ||
        avro_value_get_by_name(v, "events", &f->events, NULL) || avro_value_get_by_name(v, "vector", &f->vector, NULL) ||
        avro_value_get_by_name(v, "drift", &f->drift, NULL) || avro_value_get_by_name(v, "model", &f->model, NULL) ||
        avro_value_get_by_name(v, "source_partition", &f->spart, NULL) ||
        avro_value_get_by_name(v, "source_offset", &f->soff, NULL)) {
        snprintf(err, errlen, "avro: InterestVector schema lacks a field: %s", avro_strerror());
        return -1;
    }
    if (avro_value_get_by_name(v, "top_items", &f->top, NULL)) f->top.self = NULL;   /* its default: null */
    return 0;
}

struct avro_tools_iv_writer {
    avro_tools_rec rec;
    avro_tools_iv_fields f;
};

avro_tools_iv_writer *avro_tools_iv_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen) {
    avro_tools_iv_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (avro_tools_rec_init(&w->rec, ievo_schema_interest_vector_json, fmt, schema_id, err, errlen) ||
        avro_tools_iv_fields_get(&w->rec.value, &w->f, err, errlen)) {
        avro_tools_iv_writer_free(w);
        return NULL;
    }
    return w;
}

void avro_tools_iv_writer_free(avro_tools_iv_writer *w) {
    if (!w) return;
    avro_tools_rec_free(&w->rec);
    free(w);
}

int avro_tools_iv_write(avro_tools_iv_writer *w, const interest_vector *iv, const uint8_t **out, size_t *len,
                        char *err, size_t errlen) {
    avro_tools_buf *s = &w->rec.scratch;
    avro_tools_iv_fields *f = &w->f;
    avro_value_t elem, branch, sub;
    int rc = avro_tools_set_string(&f->user, s, iv->user_id, iv->user_id_len);
    rc = rc ? rc : avro_value_set_long(&f->ts, iv->ts);
    rc = rc ? rc : avro_value_set_long(&f->events, iv->events);
    rc = rc ? rc : avro_value_reset(&f->vector);
    for (int i = 0; !rc && i < iv->dim; i++) {
        rc = avro_value_append(&f->vector, &elem, NULL);
        rc = rc ? rc : avro_value_set_float(&elem, iv->vector[i]);
    }
    rc = rc ? rc : avro_value_set_float(&f->drift, iv->drift);
    rc = rc ? rc : avro_tools_set_string(&f->model, s, iv->model, iv->model_len);
    rc = rc ? rc : avro_value_set_int(&f->spart, iv->source_partition);
    rc = rc ? rc : avro_value_set_long(&f->soff, iv->source_offset);
    if (!rc && !iv->top_items) {
        rc = avro_value_set_branch(&f->top, 0, &branch);
        rc = rc ? rc : avro_value_set_null(&branch);
    } else if (!rc) {
        rc = avro_value_set_branch(&f->top, 1, &branch);
        rc = rc ? rc : avro_value_reset(&branch);
        for (int i = 0; !rc && i < iv->n_top_items; i++) {
            rc = avro_value_append(&branch, &elem, NULL);
            rc = rc ? rc : avro_value_get_by_index(&elem, 0, &sub, NULL);
            rc = rc ? rc : avro_tools_set_string(&sub, s, iv->top_items[i].item_id, iv->top_items[i].item_id_len);
            rc = rc ? rc : avro_value_get_by_index(&elem, 1, &sub, NULL);
            rc = rc ? rc : avro_value_set_float(&sub, iv->top_items[i].score);
        }
    }
    if (rc) {
        snprintf(err, errlen, "avro: cannot set InterestVector fields: %s",
                 rc == ENOMEM ? "out of memory" : avro_strerror());
        return -1;
    }
    return avro_tools_rec_write(&w->rec, out, len, err, errlen);
}

/* ---- InterestVector reader ------------------------------------------------------------------ */

/* A registry's writer schema for one id, resolved into a reader value of ours less the fields
 * the writer lacks. */
typedef struct {
    int32_t id;
    avro_schema_t writer, reader;
    avro_value_iface_t *reader_iface, *resolver;
    avro_value_t value, resolved;
    int has_value, has_resolved;
    avro_tools_iv_fields f;
} avro_tools_iv_writer_schema;

struct avro_tools_iv_reader {
    avro_tools_rec rec;          /* its writer and out buffer are unused */
    avro_tools_iv_fields f;
    avro_tools_iv_writer_schema *writers;
    int n_writers;
    avro_reader_t reader;
    float *vec;
    size_t vec_cap;
    codec_top_item *top;
    size_t top_cap;
};

avro_tools_iv_reader *avro_tools_iv_reader_new(wire_format fmt, char *err, size_t errlen) {
    avro_tools_iv_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (avro_tools_rec_init(&r->rec, ievo_schema_interest_vector_json, fmt, 0, err, errlen) ||
        avro_tools_iv_fields_get(&r->rec.value, &r->f, err, errlen))
        goto bad;
    static const char empty[1];
    if (!(r->reader = avro_reader_memory(empty, 0))) {
        snprintf(err, errlen, "avro: out of memory");
        goto bad;
    }
    return r;
bad:
    avro_tools_iv_reader_free(r);
    return NULL;
}

static void avro_tools_writer_schema_free(avro_tools_iv_writer_schema *w) {
    if (w->has_resolved) avro_value_decref(&w->resolved);
    if (w->resolver) avro_value_iface_decref(w->resolver);
    if (w->has_value) avro_value_decref(&w->value);
    if (w->reader_iface) avro_value_iface_decref(w->reader_iface);
    if (w->reader) avro_schema_decref(w->reader);
    if (w->writer) avro_schema_decref(w->writer);
}

void avro_tools_iv_reader_free(avro_tools_iv_reader *r) {
    if (!r) return;
    for (int i = 0; i < r->n_writers; i++) avro_tools_writer_schema_free(&r->writers[i]);
    free(r->writers);
    if (r->reader) avro_reader_free(r->reader);
    avro_tools_rec_free(&r->rec);
    free(r->vec);
    free(r->top);
    free(r);
}

static int avro_tools_get_str(avro_value_t *v, const char **s, size_t *n) {
    size_t size;
    int rc = avro_value_get_string(v, s, &size);
    if (rc) return rc;
    *n = size ? size - 1 : 0;   /* avro-c reports the size including the NUL */
    return 0;
}

int avro_tools_iv_reader_has_writer(const avro_tools_iv_reader *r, int32_t id) {
    for (int i = 0; i < r->n_writers; i++)
        if (r->writers[i].id == id) return 1;
    return 0;
}

int avro_tools_iv_reader_add_writer(avro_tools_iv_reader *r, int32_t id, const char *writer_json, char *err,
                                    size_t errlen) {
    avro_tools_iv_writer_schema w;
    memset(&w, 0, sizeof w);
    w.id = id;
    json_t *rj = NULL;
    char *reduced = NULL;
    int rc = -1;
    if (avro_schema_from_json_length(writer_json, strlen(writer_json), &w.writer) || !is_avro_record(w.writer)) {
        snprintf(err, errlen, "schema id %d: not an Avro record schema: %s", (int)id,
                 w.writer ? "another type" : avro_strerror());
        goto done;
    }
    /* ours, less the fields the writer lacks (each must have a default) */
    rj = json_loads(ievo_schema_interest_vector_json, 0, NULL);
    json_t *fields = json_object_get(rj, "fields");
    for (size_t i = 0; i < json_array_size(fields);) {
        json_t *fld = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(fld, "name"));
        if (avro_schema_record_field_get_index(w.writer, name) >= 0) {
            i++;
            continue;
        }
        if (!json_object_get(fld, "default")) {
            snprintf(err, errlen, "schema id %d cannot be read as ievo.v1.InterestVector: field %s: not in the "
                     "writer's schema, and the reader has no default for it", (int)id, name);
            goto done;
        }
        json_array_remove(fields, i);
    }
    if (!(reduced = json_dumps(rj, JSON_COMPACT)) ||
        avro_schema_from_json_length(reduced, strlen(reduced), &w.reader) ||
        !(w.reader_iface = avro_generic_class_from_schema(w.reader)) || avro_generic_value_new(w.reader_iface, &w.value)) {
        snprintf(err, errlen, "avro: %s", avro_strerror());
        goto done;
    }
    w.has_value = 1;
    if (!(w.resolver = avro_resolved_writer_new(w.writer, w.reader))) {
        snprintf(err, errlen, "schema id %d cannot be read as ievo.v1.InterestVector: %s", (int)id, avro_strerror());
        goto done;
    }
    if (avro_resolved_writer_new_value(w.resolver, &w.resolved)) {
        snprintf(err, errlen, "avro: %s", avro_strerror());
        goto done;
    }
    w.has_resolved = 1;
    avro_resolved_writer_set_dest(&w.resolved, &w.value);
    if (avro_tools_iv_fields_get(&w.value, &w.f, err, errlen)) goto done;
    avro_tools_iv_writer_schema *nw = realloc(r->writers, (size_t)(r->n_writers + 1) * sizeof *nw);
    if (!nw) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    r->writers = nw;
    r->writers[r->n_writers++] = w;
    rc = 0;
done:
    if (rc) avro_tools_writer_schema_free(&w);
    json_decref(rj);
    free(reduced);
    return rc;
}

int avro_tools_iv_read(avro_tools_iv_reader *r, const void *payload, size_t len, interest_vector *out,
                       int32_t *schema_id, char *err, size_t errlen) {
    const uint8_t *b = payload;
    avro_tools_iv_writer_schema *w = NULL;
    if (r->rec.fmt == WIRE_CONFLUENT) {
        if (len < AVRO_TOOLS_HEADER || b[0] != 0) {
            snprintf(err, errlen, "framing: %s", len < AVRO_TOOLS_HEADER ? "shorter than the 5-byte Confluent header"
                                                                         : "magic byte is not 0");
            return -1;
        }
        int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
        if (schema_id) *schema_id = id;
        for (int i = 0; i < r->n_writers && !w; i++)
            if (r->writers[i].id == id) w = &r->writers[i];
        b += AVRO_TOOLS_HEADER;
        len -= AVRO_TOOLS_HEADER;
    }
    avro_reader_memory_set_source(r->reader, (const char *)b, (int64_t)len);
    if (w) {
        avro_value_reset(&w->value);
        if (avro_value_read(r->reader, &w->resolved)) {
            snprintf(err, errlen, "avro: cannot read InterestVector (schema id %d): %s", (int)w->id, avro_strerror());
            return -1;
        }
    } else {
        if (avro_value_read(r->reader, &r->rec.value)) {
            snprintf(err, errlen, "avro: cannot read InterestVector: %s", avro_strerror());
            return -1;
        }
        size_t used;
        if (avro_value_sizeof(&r->rec.value, &used) == 0 && used != len) {
            snprintf(err, errlen, "avro: %zu trailing bytes after the InterestVector", len - used);
            return -1;
        }
    }
    avro_tools_iv_fields *f = w ? &w->f : &r->f;
    memset(out, 0, sizeof *out);
    int32_t i32;
    float fl;
    size_t n;
    avro_value_t elem, branch, sub;
    int rc = avro_tools_get_str(&f->user, &out->user_id, &out->user_id_len);
    rc = rc ? rc : avro_value_get_long(&f->ts, &out->ts);
    rc = rc ? rc : avro_value_get_long(&f->events, &out->events);
    rc = rc ? rc : avro_value_get_size(&f->vector, &n);
    if (!rc && n > r->vec_cap) {
        float *nv = realloc(r->vec, n * sizeof *nv);
        if (!nv) rc = ENOMEM;
        else r->vec = nv, r->vec_cap = n;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        rc = avro_value_get_by_index(&f->vector, i, &elem, NULL);
        rc = rc ? rc : avro_value_get_float(&elem, &fl);
        if (!rc) r->vec[i] = fl;
    }
    if (!rc) {
        out->vector = r->vec;
        out->dim = (int)n;
    }
    rc = rc ? rc : avro_value_get_float(&f->drift, &out->drift);
    rc = rc ? rc : avro_tools_get_str(&f->model, &out->model, &out->model_len);
    rc = rc ? rc : avro_value_get_int(&f->spart, &i32);
    if (!rc) out->source_partition = i32;
    rc = rc ? rc : avro_value_get_long(&f->soff, &out->source_offset);
    int disc = 0;
    if (f->top.self) rc = rc ? rc : avro_value_get_discriminant(&f->top, &disc);
    if (!rc && disc == 1) {
        rc = avro_value_get_current_branch(&f->top, &branch);
        rc = rc ? rc : avro_value_get_size(&branch, &n);
        /* One slot even for an empty list, so a present-but-empty list is not NULL. */
        if (!rc && (n > r->top_cap || !r->top)) {
            codec_top_item *nt = realloc(r->top, (n ? n : 1) * sizeof *nt);
            if (!nt) rc = ENOMEM;
            else r->top = nt, r->top_cap = n ? n : 1;
        }
        for (size_t i = 0; !rc && i < n; i++) {
            rc = avro_value_get_by_index(&branch, i, &elem, NULL);
            rc = rc ? rc : avro_value_get_by_index(&elem, 0, &sub, NULL);
            rc = rc ? rc : avro_tools_get_str(&sub, &r->top[i].item_id, &r->top[i].item_id_len);
            rc = rc ? rc : avro_value_get_by_index(&elem, 1, &sub, NULL);
            rc = rc ? rc : avro_value_get_float(&sub, &r->top[i].score);
        }
        if (!rc) {
            out->top_items = r->top;
            out->n_top_items = (int)n;
        }
    }
    if (rc) {
        snprintf(err, errlen, "avro: cannot get InterestVector fields: %s",
                 rc == ENOMEM ? "out of memory" : avro_strerror());
        return -1;
    }
    return 0;
}

/* iv as a JSON object, NULL when out of memory. Ids and the model name are outside bytes
 * (json_string_lossy); floats through json_real_or_null (NaN, infinities: null). */
static json_t *iv_json(const interest_vector *iv, int32_t partition, int64_t offset) {
    json_t *o = json_object();
    if (!o) return NULL;
    /* the arrays go into o first (o owns them: one decref frees all), then get filled */
    json_t *vec = json_array(), *top = iv->top_items ? json_array() : json_null();
    int bad = json_object_set_new(o, "user_id", json_string_lossy(iv->user_id, iv->user_id_len)) ||
              json_object_set_new(o, "ts", json_integer(iv->ts)) || json_object_set_new(o, "events", json_integer(iv->events));
    bad = json_object_set_new(o, "vector", vec) || bad;
    for (int i = 0; i < iv->dim && !bad; i++) bad = json_array_append_new(vec, json_real_or_null(iv->vector[i]));
    bad = bad || json_object_set_new(o, "drift", json_real_or_null(iv->drift)) ||
          json_object_set_new(o, "model", json_string_lossy(iv->model, iv->model_len)) ||
          json_object_set_new(o, "source_partition", json_integer(iv->source_partition)) ||
          json_object_set_new(o, "source_offset", json_integer(iv->source_offset));
    bad = json_object_set_new(o, "top_items", top) || bad;
    for (int i = 0; iv->top_items && i < iv->n_top_items && !bad; i++)
        bad = json_array_append_new(top, json_pack("{s:o, s:o}", "item_id",
                                                   json_string_lossy(iv->top_items[i].item_id, iv->top_items[i].item_id_len),
                                                   "score", json_real_or_null(iv->top_items[i].score)));
    if (partition >= 0)
        bad = bad || json_object_set_new(o, "partition", json_integer(partition)) ||
              json_object_set_new(o, "offset", json_integer(offset));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int avro_tools_iv_write_json(const interest_vector *iv, int32_t partition, int64_t offset, FILE *f, char *err,
                             size_t errlen) {
    json_t *o = iv_json(iv, partition, offset);
    if (!o) return snprintf(err, errlen, "out of memory"), -1;
    int rc = json_dumpf(o, f, IEVO_JSON_DUMP);
    json_decref(o);
    if (rc || fputc('\n', f) == EOF) return snprintf(err, errlen, "cannot write: %s", strerror(errno)), -1;
    return 0;
}
