/* item_codec: the Item record's hand decoder (no library: the fuzz target builds it alone). See
 * item_codec.h; the avro-c writer is item_writer.c. */
#include "item_codec.h"
#include "codec_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoder (the cursor and its checks: codec_read.h) ----------------------------------------- */

codec_status item_decode(const codec_in_opts *o, const void *payload, size_t len, item_record *out, char *reason,
                         size_t reason_len) {
    size_t max = o->max_bytes ? o->max_bytes : (size_t)ITEM_MAX_TEXT_BYTES + 4096;
    codec_cursor c = {NULL, NULL};
    codec_status st;
    if (reason && reason_len) reason[0] = 0;
    if ((st = codec_open_payload(o, payload, len, max, &c, reason, reason_len))) return st;
    item_record r;
    memset(&r, 0, sizeof r);
    if ((st = codec_read_string(&c, "item_id", &r.item_id, &r.item_id_len, reason, reason_len))) return st;
    if ((st = codec_read_string(&c, "text", &r.text, &r.text_len, reason, reason_len))) return st;
    if ((st = codec_read_long_field(&c, "ts", &r.ts, reason, reason_len))) return st;
    if ((st = codec_check_end(&c, reason, reason_len))) return st;
    if ((st = item_validate(&r, reason, reason_len))) return st;
    *out = r;
    return CODEC_OK;
}

codec_status item_validate(const item_record *r, char *reason, size_t reason_len) {
    codec_status st;
    if ((st = codec_check_id("item_id", r->item_id, r->item_id_len, CODEC_MAX_ID_BYTES, reason, reason_len))) return st;
    if (r->text_len > ITEM_MAX_TEXT_BYTES)
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "text is %zu bytes (limit %d)", r->text_len,
                          ITEM_MAX_TEXT_BYTES);
    return codec_check_ts(r->ts, reason, reason_len);
}
