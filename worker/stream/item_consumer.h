/* item_consumer: a text model's texts in the live worker (docs/text.md).
 *
 * The item catalogue: the items topic (schemas/item.avsc, keyed by item_id, compacted on a real
 * cluster) read like a global table: no group membership, every partition assigned, read
 * continuously. A record whose text differs from the one the table holds (by the text's hash) is
 * encoded with USE-lite, batched per poll; its vector goes to RocksDB (state_store_put_item, one
 * atomic write with the topic's next offsets) and to the in-memory item_table the step's lookup
 * reads (the runner's cache is told: model_runner_text_changed). Unchanged texts are not
 * re-encoded. On start the table is loaded from RocksDB, then the topic is read from the stored
 * offsets up to its end offsets as of then, before any event is applied (readiness); after that
 * the worker polls it between batches, without waiting.
 *
 * The events' own texts (user_action.text) are encoded per model-step chunk, in one call.
 * items.topic empty: no catalogue (item texts absent), event texts still encoded.
 */
#ifndef IEVO_ITEM_CONSUMER_H
#define IEVO_ITEM_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "item_table.h"
#include "model.h"
#include "serde.h"
#include "state_store.h"

typedef struct {
    const char *topic;        /* items.topic; NULL or "" = no catalogue */
    const char *encoder_dir;  /* text.encoder.dir */
    serde_in *in;             /* the Item reader: items.format, items.schema.id, or the schema registry */
    const char *const *our_keys; /* config keys that are not librdkafka's */
    const model *m;           /* the served model (its vocabulary and scoring head) */
    size_t pending_bytes;     /* items.pending.bytes: catalogue texts read and not yet encoded */
} item_consumer_opts;

typedef struct {
    int64_t records, bad, unchanged, encoded;  /* items topic */
    int64_t event_texts;                       /* events' own texts encoded */
    double encode_s, event_encode_s, load_s;   /* encoder time (items, events), start-up load from RocksDB */
    int64_t loaded;                            /* vectors loaded from RocksDB at start */
} item_consumer_stats;

typedef struct item_consumer item_consumer;

/* Opens the encoder, loads the table from the store, creates the consumer (when a topic is set)
 * and sets the runner's item text lookup. Returns 0, or -1 with err. */
int item_consumer_open(item_consumer **out, const item_consumer_opts *o, const config *c, state_store *store,
                       model_runner *runner, int max_rows, char *err, size_t errlen);
void item_consumer_close(item_consumer *ic);

/* Reads the topic up to its end offsets as of the call. */
int item_consumer_catch_up(item_consumer *ic, char *err, size_t errlen);
/* Applies whatever has arrived, waiting for nothing. */
int item_consumer_poll(item_consumer *ic, char *err, size_t errlen);

/* For the n user actions of one model step: sets each event's item_key and, for those with a
 * text, encodes it (one encoder call) and points event_text at it (valid until the next call). */
int item_consumer_step_events(item_consumer *ic, int n, const user_action *const *ua, model_event *ev, char *err,
                              size_t errlen);

/* Scores of n vectors U (n, D) against every vocabulary item with the text part (model.h's
 * scoring rows, kept up to date as item texts change): scores (n, n_items), scores[.][0] = -inf.
 * What output.top.k ranks with for a text model. Returns 0, or -1 (no scoring head). */
int item_consumer_score(item_consumer *ic, int n, const float *U, float *scores, char *err, size_t errlen);

#endif
