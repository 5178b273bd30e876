/* item_table: item texts as vectors, in memory, keyed by item key (model_item_key of the id): what a
 * text model's step looks item texts up in (item_table_lookup is a model_item_text_fn), and where
 * they come from (a catalogue: ML-100K u.item, or {"item_id","text"} JSON lines) and how they are
 * encoded (USE-lite, with a file cache so a catalogue is encoded once per machine).
 *
 * The worker fills one from the items topic and RocksDB (item_consumer.c); `ievo train`, `ievo
 * eval` and `ievo reference` fill one from a catalogue file. Each entry keeps its id, the hash of
 * the text it was encoded from (model_item_key of the text bytes: a re-sent, unchanged text is not
 * re-encoded) and its vector. Vectors live in fixed chunks, so a pointer returned by
 * item_table_get stays valid for the table's life; a changed text overwrites the vector in place
 * (the caller tells the runner: model_runner_text_changed).
 */
#ifndef IEVO_ITEM_TABLE_H
#define IEVO_ITEM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "state_store.h"

typedef struct item_table item_table;

int item_table_new(item_table **out, int dim);
void item_table_free(item_table *t);
size_t item_table_size(const item_table *t);

/* Inserts or replaces the entry of id. Returns 1 when the entry is new or its vector changed, 0
 * when it was already there with the same text hash (nothing written), -1 on ENOMEM. */
int item_table_put(item_table *t, const char *id, size_t id_len, uint64_t text_hash, const float *vec);
/* The vector of a key, or NULL. */
const float *item_table_get(const item_table *t, uint64_t key);
/* 1 and *hash when the key is there, else 0. */
int item_table_text_hash(const item_table *t, uint64_t key, uint64_t *hash);
/* The id of a key (NUL-terminated), or NULL. */
const char *item_table_id(const item_table *t, uint64_t key);
/* model_item_text_fn over an item_table (ctx is the table). */
const float *item_table_lookup(void *ctx, uint64_t key);

/* Loads every item vector a worker stored (state_store_put_item) into t; a record that fails
 * item_table_load_record is an error naming it. */
int item_table_load_store(item_table *t, state_store *s, char *err, size_t errlen);
/* One stored item record (state_store_item_decode's fields; vec: dim little-endian floats at any
 * alignment) into t, checked first: dim is the table's, the id a UTF-8 item id of at most
 * CODEC_MAX_ID_BYTES whose key is key, every float finite. scratch holds dim floats. Returns 0,
 * or -1 with why. */
int item_table_load_record(item_table *t, uint64_t key, uint64_t text_hash, const char *id, size_t id_len,
                           const void *vec, int dim, float *scratch, char *why, size_t whylen);

/* ---- catalogues ------------------------------------------------------------------------------ */

typedef struct {
    char **ids, **texts; /* UTF-8, NUL-terminated */
    size_t n;
} item_catalog;
void item_catalog_free(item_catalog *c);
/* ML-100K u.item (Latin-1, '|'-separated): text = "<title>. <genre>, <genre>..." (field 2, then the
 * names in u.genre of the flags in fields 6..24), converted to UTF-8, as bench/bench_embed.sh. */
int item_catalog_movielens(const char *dir, item_catalog *c, char *err, size_t errlen);
/* JSON lines {"item_id": string, "text": string}; a later line of an id replaces its text. */
int item_catalog_jsonl(const char *path, item_catalog *c, char *err, size_t errlen);

/* ---- encoding ---------------------------------------------------------------------------------- */

typedef struct {
    long texts, encoded, from_cache;
    double encode_s; /* in use_encoder_encode */
    double load_s;   /* opening the encoder */
    long tokens;
} text_encode_stats;

/* The default places: ${IEVO_CACHE:-$HOME/.cache/ievo}/use-lite and .../text-vectors. */
void text_default_dirs(char *encoder_dir, size_t n1, char *cache_dir, size_t n2);
/* Encodes n texts into out (n, USE_DIM) with USE-lite (oneDNN, batches of 32). cache_dir (NULL or
 * "none": no cache) holds one file per distinct list of texts (named by a hash of the encoder's
 * digest and the texts), so the same catalogue is encoded once. Returns 0, or -1 with err. */
int text_encode_all(const char *encoder_dir, const char *cache_dir, const char *const *texts, size_t n, float *out,
                    text_encode_stats *st, char *err, size_t errlen);
/* A catalogue encoded into a new table (with text hashes). */
int item_table_from_catalog(item_table **out, const item_catalog *c, const char *encoder_dir, const char *cache_dir,
                            text_encode_stats *st, char *err, size_t errlen);
/* The offline commands' catalogue (eval, reference): for a model with text_dim > 0, the items of
 * items_path ({"item_id","text"} lines), else of movielens's u.item, else none, encoded into
 * *items (text_dim must be USE-lite's). For a model without text *items stays NULL, and an
 * items_path is an error. */
int item_table_for_model(int text_dim, const char *items_path, const char *movielens, const char *encoder_dir,
                         const char *cache_dir, item_catalog *cat, item_table **items, text_encode_stats *st,
                         char *err, size_t errlen);

#endif
