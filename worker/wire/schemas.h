/* schemas: the .avsc files in schemas/, embedded at build time (generated/schemas.c), so the
 * binary needs no schema files at run time and always carries the exact JSON it was built with
 * (register that original JSON with a schema registry: avro-c's avro_schema_to_json drops
 * logicalType and default). */
#ifndef IEVO_SCHEMAS_H
#define IEVO_SCHEMAS_H

extern const char *const ievo_schema_user_action_json;
extern const char *const ievo_schema_interest_vector_json;

#endif
