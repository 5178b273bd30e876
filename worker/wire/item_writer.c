/* item_writer: the Item record through avro-c's generic writer (ievo produce --items, tests), so
 * the hand decoder (item_codec.c) is checked against an independent encoder. See item_codec.h. */
#include <avro.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_codec.h"

struct item_writer {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value, f_id, f_text, f_ts;
    int has_value;
    avro_writer_t writer;
    uint8_t *out, *scratch;
    size_t cap, scap;
    wire_format fmt;
    int32_t schema_id;
};

void item_writer_free(item_writer *w) {
    if (!w) return;
    if (w->writer) avro_writer_free(w->writer);
    if (w->has_value) avro_value_decref(&w->value);
    if (w->iface) avro_value_iface_decref(w->iface);
    if (w->schema) avro_schema_decref(w->schema);
    free(w->out);
    free(w->scratch);
    free(w);
}

item_writer *item_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen) {
    item_writer *w = calloc(1, sizeof *w);
    if (!w) return snprintf(err, errlen, "out of memory"), NULL;
    w->fmt = fmt, w->schema_id = schema_id;
    if (avro_schema_from_json_length(ievo_schema_item_json, strlen(ievo_schema_item_json), &w->schema) ||
        !(w->iface = avro_generic_class_from_schema(w->schema)) || avro_generic_value_new(w->iface, &w->value)) {
        snprintf(err, errlen, "avro: schemas/item.avsc: %s", avro_strerror());
        item_writer_free(w);
        return NULL;
    }
    w->has_value = 1;
    if (avro_value_get_by_name(&w->value, "item_id", &w->f_id, NULL) ||
        avro_value_get_by_name(&w->value, "text", &w->f_text, NULL) || avro_value_get_by_name(&w->value, "ts", &w->f_ts, NULL) ||
        !(w->out = malloc(w->cap = 4096)) || !(w->writer = avro_writer_memory((const char *)w->out, 1))) {
        snprintf(err, errlen, "avro: item writer: %s", avro_strerror());
        item_writer_free(w);
        return NULL;
    }
    return w;
}

static int grow(uint8_t **p, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < n) c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

/* avro-c wants the length with a NUL that is really there: strings go through a scratch copy */
static int set_string(item_writer *w, avro_value_t *v, const char *s, size_t n) {
    if (grow(&w->scratch, &w->scap, n + 1)) return ENOMEM;
    if (n) memcpy(w->scratch, s, n);
    w->scratch[n] = 0;
    return avro_value_set_string_len(v, (const char *)w->scratch, n + 1);
}

int item_write(item_writer *w, const item_record *r, const uint8_t **out, size_t *len, char *err, size_t errlen) {
    int rc = set_string(w, &w->f_id, r->item_id, r->item_id_len);
    rc = rc ? rc : set_string(w, &w->f_text, r->text, r->text_len);
    rc = rc ? rc : avro_value_set_long(&w->f_ts, r->ts);
    size_t hdr = w->fmt == WIRE_CONFLUENT ? 5 : 0, need;
    if (!rc && !avro_value_sizeof(&w->value, &need) && !grow(&w->out, &w->cap, hdr + need)) {
        avro_writer_memory_set_dest(w->writer, (const char *)w->out + hdr, (int64_t)(w->cap - hdr));
        if (avro_value_write(w->writer, &w->value) == 0) {
            if (hdr) codec_put_confluent_header(w->out, w->schema_id);
            *out = w->out;
            *len = hdr + (size_t)avro_writer_tell(w->writer);
            return 0;
        }
    }
    snprintf(err, errlen, "avro: cannot write item %.*s: %s", (int)(r->item_id_len > 64 ? 64 : r->item_id_len), r->item_id,
             avro_strerror());
    return -1;
}
