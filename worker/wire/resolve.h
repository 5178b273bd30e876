/* resolve: Avro schema resolution, compiled. A record written with one schema (the writer's, as
 * a schema registry returns it by id) is read into another (the reader's, one of schemas/), by
 * the rules of the Avro specification ("Schema Resolution"):
 *
 *   - fields are matched by name (or a reader field's alias); the writer's other fields are
 *     skipped, whatever their type (records, arrays, maps, unions, fixed, recursive types);
 *   - a reader field the writer lacks takes the reader's default; without one the writer is
 *     incompatible;
 *   - promotions: int to long, float or double; long to float or double; float to double;
 *     string to bytes and bytes to string;
 *   - enums: matched by (unqualified) name, symbols by name; a writer symbol the reader lacks
 *     takes the reader enum's default;
 *   - unions: a writer union is read branch by branch; a writer value read into a reader union
 *     takes the first branch of the same type, else the first it promotes to.
 * The verdict is the schema's, as in Java's SchemaCompatibility (what schema registries check):
 * a writer union with a branch the reader cannot read, or an enum symbol the reader lacks with
 * no default to take, makes the writer incompatible, though the specification would fail only
 * the records that use them. So a compatible writer's records never fail for their schema.
 *
 * The reader record is flat: its fields are null, boolean, int, long, float, double, string,
 * bytes, enum, or a union of those (UserAction and Item are). A plan is compiled once per writer
 * schema: a list of field operations in the writer's order and a skip program for what the
 * reader does not read, so a record costs one pass over its bytes with no allocation. Decoding
 * is bounded by the payload like codec.c: every length is checked before use, a skipped array's
 * item count against the bytes left, nesting to RESOLVE_MAX_DEPTH.
 *
 * avro-c 1.11.1 has its own resolver (avro_resolved_writer_new), but it takes no reader
 * defaults (a reader field the writer lacks is an error) and maps enums by index rather than
 * by symbol, and it does not promote string and bytes; the tests use it as the reference where it
 * is right (tests/unit/test_resolve.c,
 * tests/fuzz/fuzz_resolve.c).
 */
#ifndef IEVO_RESOLVE_H
#define IEVO_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "codec_read.h"

#define RESOLVE_MAX_DEPTH 64     /* nesting of a skipped value (recursive writer types) */
#define RESOLVE_MAX_FIELDS 64    /* fields of the reader record */

typedef enum {
    RESOLVE_NULL,
    RESOLVE_BOOLEAN,
    RESOLVE_INT,
    RESOLVE_LONG,
    RESOLVE_FLOAT,
    RESOLVE_DOUBLE,
    RESOLVE_STRING,
    RESOLVE_BYTES,
    RESOLVE_ENUM,
} resolve_type;

/* One reader field's value. Strings and bytes point into the payload (or, for a default, into
 * the plan). */
typedef struct {
    resolve_type type;   /* the reader's type of this value (for a union field, its branch's) */
    int branch;          /* the reader union's branch; 0 for a field that is not a union */
    union {
        int b;
        int32_t i;
        int64_t l;
        float f;
        double d;
        int e;           /* the reader's symbol index */
        struct {
            const char *p;
            size_t n;
        } s;
    } v;
} resolve_value;

/* How the writer's layout relates to the reader's. */
typedef enum {
    RESOLVE_SAME,     /* the reader's fields, types and union branches, in its order: its own decoder reads it */
    RESOLVE_PREFIX,   /* the same, then more fields: the reader's decoder, then resolve_skip_tail */
    RESOLVE_GENERAL,  /* anything else: resolve_decode */
} resolve_layout;

typedef struct resolve_plan resolve_plan;

/* Compiles the reading of writer_json into reader_json. Returns 0, or -1 with err saying why:
 * a schema that does not parse, or the first incompatibility, naming the field ("field ts:
 * the writer's string cannot be read as long"). */
int resolve_plan_new(const char *reader_json, const char *writer_json, size_t writer_len, resolve_plan **out,
                     char *err, size_t errlen);
void resolve_plan_free(resolve_plan *p);

resolve_layout resolve_plan_layout(const resolve_plan *p);
int resolve_plan_fields(const resolve_plan *p);                  /* the reader's fields */

/* Decodes one body (no header) into out[0 .. resolve_plan_fields). Returns CODEC_OK, or
 * CODEC_E_AVRO (truncated, bad varint, bad branch or symbol index, trailing bytes, nesting too
 * deep) with the field named. */
codec_status resolve_decode(const resolve_plan *p, const uint8_t *body, size_t len, resolve_value *out, char *reason,
                            size_t reason_len);

/* RESOLVE_PREFIX: skips the writer's fields after the reader's. */
codec_status resolve_skip_tail(const resolve_plan *p, codec_cursor *c, char *reason, size_t reason_len);

#endif
