/* codec_resolved: UserAction and Item bodies written with another schema than ours, read through
 * a resolution plan (resolve.h) into the same structs and the same validation as the hand
 * decoders. The common evolutions stay on the hand decoder: a writer with the reader's layout
 * is read by it outright, one that only appends fields is read by it and the rest skipped; the
 * plan's general decoding handles everything else (reordered, removed or promoted fields,
 * unions that differ). */
#include <string.h>

#include "codec.h"
#include "codec_read.h"
#include "item_codec.h"
#include "resolve.h"
#include "schemas.h"

/* The reader's fields, in schemas/user_action.avsc's order. */
enum { UA_USER_ID, UA_ITEM_ID, UA_ACTION, UA_TS, UA_VALUE, UA_TEXT, UA_FIELDS };
enum { ITEM_ID, ITEM_TEXT, ITEM_TS, ITEM_FIELDS };

int codec_user_action_plan_new(const char *writer_json, size_t writer_len, struct resolve_plan **out, char *err,
                               size_t errlen) {
    if (resolve_plan_new(ievo_schema_user_action_json, writer_json, writer_len, out, err, errlen)) return -1;
    if (resolve_plan_fields(*out) != UA_FIELDS) { /* schemas/user_action.avsc and this file disagree */
        snprintf(err, errlen, "schemas/user_action.avsc has %d fields, this decoder reads %d",
                 resolve_plan_fields(*out), UA_FIELDS);
        resolve_plan_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static void ua_string(const resolve_value *v, const char **s, size_t *n) {
    *s = v->v.s.p;
    *n = v->v.s.n;
}

codec_status codec_decode_user_action_as(const struct resolve_plan *plan, const uint8_t *body, size_t len,
                                         user_action *out, char *reason, size_t reason_len) {
    resolve_layout layout = plan ? resolve_plan_layout(plan) : RESOLVE_SAME;
    if (layout == RESOLVE_SAME) return codec_decode_user_action_body(body, len, out, reason, reason_len);
    codec_cursor c = {body, body + len};
    codec_status st;
    user_action ua;
    if (reason && reason_len) reason[0] = 0;
    if (layout == RESOLVE_PREFIX) {
        if ((st = codec_read_user_action_fields(&c, &ua, reason, reason_len))) return st;
        if ((st = resolve_skip_tail(plan, &c, reason, reason_len))) return st;
        if ((st = codec_check_end(&c, reason, reason_len))) return st;
    } else {
        resolve_value v[UA_FIELDS];
        if ((st = resolve_decode(plan, body, len, v, reason, reason_len))) return st;
        memset(&ua, 0, sizeof ua);
        ua_string(&v[UA_USER_ID], &ua.user_id, &ua.user_id_len);
        ua_string(&v[UA_ITEM_ID], &ua.item_id, &ua.item_id_len);
        ua_string(&v[UA_ACTION], &ua.action, &ua.action_len);
        ua.ts = v[UA_TS].v.l;
        if ((ua.has_value = v[UA_VALUE].type != RESOLVE_NULL)) ua.value = v[UA_VALUE].v.f;
        if ((ua.has_text = v[UA_TEXT].type != RESOLVE_NULL)) ua_string(&v[UA_TEXT], &ua.text, &ua.text_len);
    }
    if ((st = codec_validate_user_action(&ua, reason, reason_len))) return st;
    *out = ua;
    return CODEC_OK;
}

int item_plan_new(const char *writer_json, size_t writer_len, struct resolve_plan **out, char *err, size_t errlen) {
    if (resolve_plan_new(ievo_schema_item_json, writer_json, writer_len, out, err, errlen)) return -1;
    if (resolve_plan_fields(*out) != ITEM_FIELDS) {
        snprintf(err, errlen, "schemas/item.avsc has %d fields, this decoder reads %d", resolve_plan_fields(*out),
                 ITEM_FIELDS);
        resolve_plan_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

codec_status item_decode_as(const struct resolve_plan *plan, const uint8_t *body, size_t len, item_record *out,
                            char *reason, size_t reason_len) {
    codec_status st;
    item_record r;
    memset(&r, 0, sizeof r);
    if (reason && reason_len) reason[0] = 0;
    if (!plan || resolve_plan_layout(plan) != RESOLVE_GENERAL) {
        codec_cursor c = {body, body + len};
        if ((st = codec_read_string(&c, "item_id", &r.item_id, &r.item_id_len, reason, reason_len))) return st;
        if ((st = codec_read_string(&c, "text", &r.text, &r.text_len, reason, reason_len))) return st;
        if ((st = codec_read_long_field(&c, "ts", &r.ts, reason, reason_len))) return st;
        if (plan && resolve_plan_layout(plan) == RESOLVE_PREFIX &&
            (st = resolve_skip_tail(plan, &c, reason, reason_len)))
            return st;
        if ((st = codec_check_end(&c, reason, reason_len))) return st;
    } else {
        resolve_value v[ITEM_FIELDS];
        if ((st = resolve_decode(plan, body, len, v, reason, reason_len))) return st;
        r.item_id = v[ITEM_ID].v.s.p, r.item_id_len = v[ITEM_ID].v.s.n;
        r.text = v[ITEM_TEXT].v.s.p, r.text_len = v[ITEM_TEXT].v.s.n;
        r.ts = v[ITEM_TS].v.l;
    }
    if ((st = item_validate(&r, reason, reason_len))) return st;
    *out = r;
    return CODEC_OK;
}
