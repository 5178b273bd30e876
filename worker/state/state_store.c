/* state_store: RocksDB-backed per-user state with per-partition offsets. See state_store.h. */
#include "state_store.h"
#include "worker_record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

#define K_META 0x00
#define K_OFFSET 0x01
#define K_STATE 0x02
#define K_ITEM 0x03
#define K_ITEM_OFFSET 0x04
#define MAX_USER_KEY 512

struct state_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_env_t *env;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_column_family_handle_t *cf;     /* "default", needed by batched_multi_get_cf */
    /* multi-get scratch, grown as needed */
    char **keys;
    size_t *key_lens;
    rocksdb_pinnableslice_t **vals;
    char **errs;
    char *key_arena;
    size_t scratch_cap, arena_cap;
    atomic_int write_failed;   /* a write returned an error: the DB must not be touched again (the
                                  checkpoint writer thread and the event loop both write) */
};

struct state_batch {
    rocksdb_writebatch_t *wb;
    size_t count;
};

void state_store_opts_default(state_store_opts *o) {
    memset(o, 0, sizeof *o);
    o->block_cache_bytes = 64u << 20;
    o->write_buffer_bytes = 32u << 20;
    o->max_write_buffers = 3;
    o->wal = 1;
    o->sync = 0;
    o->background_jobs = 2;
    o->info_log_level = 4;   /* FATAL */
}

static void put_be32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}
static uint32_t get_be32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}
static void put_be64(char *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}
static uint64_t get_be64(const char *p) { return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4); }

/* 0x02 be32(partition) user -> returns key length (user_len <= MAX_USER_KEY, checked by callers) */
static size_t state_key(char *out, int32_t partition, const char *user, size_t user_len) {
    out[0] = K_STATE;
    put_be32(out + 1, (uint32_t)partition);
    memcpy(out + 5, user, user_len);
    return 5 + user_len;
}

static int take_err(char *rerr, const char *what, char *err, size_t errlen) {
    if (!rerr) return 0;
    snprintf(err, errlen, "rocksdb %s: %s", what, rerr);
    rocksdb_free(rerr);
    return -1;
}

/* RocksDB's "IO error: While lock file: DIR/LOCK: Resource temporarily unavailable" says what
 * failed, not why: another process holds the store's lock (RocksDB takes an fcntl lock on
 * DIR/LOCK). Fills err with that, the holder's pid when the kernel says it, and what to do;
 * 0 when rerr is about something else. Only called once the open failed: this process then
 * holds no lock on the file, so closing the descriptor used to ask releases nothing. */
static int locked_by_another(const char *dir, const char *rerr, char *err, size_t errlen) {
    if (!strstr(rerr, "While lock file") || strstr(rerr, "current process")) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd = open(path, O_RDWR | O_CLOEXEC);
    pid_t pid = fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? fl.l_pid : 0;
    if (fd >= 0) close(fd);
    char who[48] = "another process";
    if (pid > 0) snprintf(who, sizeof who, "another process (pid %ld)", (long)pid);
    snprintf(err, errlen, "state dir %s is in use by %s, most likely another ievo worker, replay or state command "
             "on the same state.dir: stop that one first, or give this one a state.dir of its own", dir, who);
    return 1;
}

int state_store_open(state_store **out, const char *dir, const state_store_opts *o,
                     char *err, size_t errlen) {
    *out = NULL;
    struct stat st;
    if (o->read_only) {
        /* RocksDB's read-only open would report a missing CURRENT file; say what is missing */
        if (stat(dir, &st)) {
            snprintf(err, errlen, "state dir %s: %s", dir, strerror(errno));
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "state dir %s: not a directory", dir);
            return -1;
        }
        char current[4200];
        snprintf(current, sizeof current, "%s/CURRENT", dir);
        if (stat(current, &st)) {
            snprintf(err, errlen, "state dir %s holds no state store (no CURRENT file): is it the worker's state.dir?", dir);
            return -1;
        }
    } else if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state dir %s: %s", dir, strerror(errno));
        return -1;
    }
    state_store *s = calloc(1, sizeof *s);
    if (!s) { snprintf(err, errlen, "out of memory"); return -1; }

    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, !o->read_only);
    rocksdb_options_set_compression(s->opts, rocksdb_no_compression);   /* float state: compression only costs CPU */
    rocksdb_options_set_write_buffer_size(s->opts, o->write_buffer_bytes);
    rocksdb_options_set_max_write_buffer_number(s->opts, o->max_write_buffers);
    rocksdb_options_set_max_background_jobs(s->opts, o->background_jobs);
    /* RocksDB's own info log (state.dir/LOG): Debian builds RocksDB 7.8 with assertions on, and
     * its log writer asserts (SIGABRT) when it logs after a failed write on a full disk. Keep it
     * to fatal messages by default; errors reach our log through the returned statuses. */
    rocksdb_options_set_info_log_level(s->opts, o->info_log_level);
    if (o->universal) rocksdb_options_set_compaction_style(s->opts, rocksdb_universal_compaction);
    /* A bloom filter over each memtable's whole keys: a user the store has never seen (every
     * new user's first event) is answered without searching the memtables' skip lists. */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
    /* Compactions at a lower CPU priority: on a busy machine the event loop comes first (they
     * catch up when it idles; RocksDB slows writes, not reads, if they fall far behind). */
    s->env = rocksdb_create_default_env();
    rocksdb_env_lower_thread_pool_cpu_priority(s->env);
    rocksdb_options_set_env(s->opts, s->env);
    s->cache = rocksdb_cache_create_lru(o->block_cache_bytes);
    s->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(s->table, s->cache);
    rocksdb_block_based_options_set_filter_policy(s->table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->table, 1);
    rocksdb_options_set_block_based_table_factory(s->opts, s->table);

    const char *cf_names[1] = {"default"};
    const rocksdb_options_t *cf_opts[1] = {s->opts};
    char *rerr = NULL;
    s->db = o->read_only
                ? rocksdb_open_for_read_only_column_families(s->opts, dir, 1, cf_names, cf_opts, &s->cf, 0, &rerr)
                : rocksdb_open_column_families(s->opts, dir, 1, cf_names, cf_opts, &s->cf, &rerr);
    if (rerr) {
        if (!locked_by_another(dir, rerr, err, errlen)) snprintf(err, errlen, "cannot open state store %s: %s", dir, rerr);
        rocksdb_free(rerr);
        state_store_close(s);
        return -1;
    }
    s->ropts = rocksdb_readoptions_create();
    s->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts, (unsigned char)(o->sync != 0 && o->wal));
    rocksdb_writeoptions_disable_WAL(s->wopts, !o->wal);
    *out = s;
    return 0;
}

void state_store_close(state_store *s) {
    if (!s) return;
    if (s->write_failed) {
        /* After a failed write (disk full, I/O error) RocksDB 7.8 as built by Debian asserts on
         * any further use of the failed file writer, closing included. Leave the DB to recovery
         * at the next open: to the WAL's last write, or (WAL off) to the last flush, which the
         * changelog's tail brings forward. */
        return;
    }
    if (s->cf) rocksdb_column_family_handle_destroy(s->cf);
    if (s->db) rocksdb_close(s->db);
    if (s->ropts) rocksdb_readoptions_destroy(s->ropts);
    if (s->wopts) rocksdb_writeoptions_destroy(s->wopts);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->table) rocksdb_block_based_options_destroy(s->table);
    if (s->cache) rocksdb_cache_destroy(s->cache);
    if (s->env) rocksdb_env_destroy(s->env);
    free(s->keys);
    free(s->key_lens);
    free(s->vals);
    free(s->errs);
    free(s->key_arena);
    free(s);
}

static int meta_get(state_store *s, const char *name, char **val, size_t *len, char *err, size_t errlen) {
    char key[64];
    int kn = snprintf(key, sizeof key, "%cmeta:%s", K_META, name);
    char *rerr = NULL;
    *val = rocksdb_get(s->db, s->ropts, key, (size_t)kn, len, &rerr);
    return take_err(rerr, "get meta", err, errlen);
}

static int meta_put(state_store *s, const char *name, const char *val, char *err, size_t errlen) {
    char key[64];
    int kn = snprintf(key, sizeof key, "%cmeta:%s", K_META, name);
    char *rerr = NULL;
    rocksdb_put(s->db, s->wopts, key, (size_t)kn, val, strlen(val), &rerr);
    return take_err(rerr, "put meta", err, errlen);
}

/* Checks one metadata value, recording it when absent. */
static int meta_bind(state_store *s, const char *name, const char *want, const char *what,
                     char *err, size_t errlen) {
    char *have;
    size_t hn;
    if (meta_get(s, name, &have, &hn, err, errlen)) return -1;
    if (!have) return meta_put(s, name, want, err, errlen);
    int same = hn == strlen(want) && memcmp(have, want, hn) == 0;
    if (!same)
        snprintf(err, errlen, "state dir was written for %s '%.*s', not '%s' (use a fresh state.dir, or replay)",
                 what, (int)hn, have, want);
    rocksdb_free(have);
    return same ? 0 : -1;
}

int state_store_bind(state_store *s, const char *input_topic, uint64_t model_fingerprint,
                     const char *model_id, char *err, size_t errlen) {
    char fp[64];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)model_fingerprint);
    if (meta_bind(s, "input.topic", input_topic, "input topic", err, errlen)) return -1;
    if (meta_bind(s, "model.fingerprint", fp, "model fingerprint", err, errlen)) {
        char inner[300];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, errlen, "%s; this model is %s", inner, model_id);
        return -1;
    }
    return meta_put(s, "model.id", model_id, err, errlen);
}

int state_store_get_offset(state_store *s, int32_t partition, int64_t *next_offset, int64_t *changelog_next,
                           char *err, size_t errlen) {
    char key[5];
    key[0] = K_OFFSET;
    put_be32(key + 1, (uint32_t)partition);
    size_t n;
    char *rerr = NULL;
    *next_offset = -1;
    if (changelog_next) *changelog_next = -1;
    char *v = rocksdb_get(s->db, s->ropts, key, sizeof key, &n, &rerr);
    if (take_err(rerr, "get offset", err, errlen)) return -1;
    if (!v) return 0;
    int ok = n == 8 || n == 16;   /* 8: no changelog position (changelog off, or unknown) */
    if (ok) *next_offset = (int64_t)get_be64(v);
    if (ok && n == 16 && changelog_next) *changelog_next = (int64_t)get_be64(v + 8);
    rocksdb_free(v);
    if (!ok) {
        snprintf(err, errlen, "corrupt offset record for partition %d (%zu bytes)", partition, n);
        return -1;
    }
    return 0;
}

static int grow_scratch(state_store *s, size_t n, size_t arena) {
    if (n > s->scratch_cap) {
        size_t c = n < 64 ? 64 : n;
        char **k = realloc(s->keys, c * sizeof *k);
        if (k) s->keys = k;
        size_t *kl = realloc(s->key_lens, c * sizeof *kl);
        if (kl) s->key_lens = kl;
        rocksdb_pinnableslice_t **v = realloc(s->vals, c * sizeof *v);
        if (v) s->vals = v;
        char **e = realloc(s->errs, c * sizeof *e);
        if (e) s->errs = e;
        if (!k || !kl || !v || !e) return -1;
        s->scratch_cap = c;
    }
    if (arena > s->arena_cap) {
        size_t c = arena < 65536 ? 65536 : arena;
        char *a = realloc(s->key_arena, c);
        if (!a) return -1;
        s->key_arena = a;
        s->arena_cap = c;
    }
    return 0;
}

int state_store_multi_get(state_store *s, size_t n, const int32_t *partitions,
                          const char *const *users, const size_t *user_lens, void *const *bufs,
                          size_t state_size, int *found, size_t *malformed_len, char *err, size_t errlen) {
    if (n == 0) return 0;
    size_t arena = 0;
    for (size_t i = 0; i < n; i++) {
        if (user_lens[i] > MAX_USER_KEY) {
            snprintf(err, errlen, "user id of %zu bytes exceeds %d", user_lens[i], MAX_USER_KEY);
            return -1;
        }
        arena += 5 + user_lens[i];
    }
    if (grow_scratch(s, n, arena)) { snprintf(err, errlen, "out of memory"); return -1; }
    char *p = s->key_arena;
    for (size_t i = 0; i < n; i++) {
        s->keys[i] = p;
        s->key_lens[i] = state_key(p, partitions[i], users[i], user_lens[i]);
        p += s->key_lens[i];
        s->errs[i] = NULL;
        s->vals[i] = NULL;
    }
    rocksdb_batched_multi_get_cf(s->db, s->ropts, s->cf, n, (const char *const *)s->keys, s->key_lens,
                                 s->vals, s->errs, 0);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->errs[i]) {
            if (!rc) snprintf(err, errlen, "rocksdb multi-get: %s", s->errs[i]);
            rocksdb_free(s->errs[i]);
            rc = -1;
        }
        found[i] = 0;
        if (s->vals[i]) {
            size_t vn;
            const char *v = rocksdb_pinnableslice_value(s->vals[i], &vn);
            if (v && record_load(bufs[i], state_size, v, vn) == 0) {
                found[i] = 1;
            } else if (v) { /* the caller quarantines it: the value's first bytes and its length */
                found[i] = STATE_STORE_MALFORMED;
                size_t keep = vn < state_size ? vn : state_size;
                memcpy(bufs[i], v, keep);
                memset((char *)bufs[i] + keep, 0, state_size - keep);
                malformed_len[i] = vn;
            }
            rocksdb_pinnableslice_destroy(s->vals[i]);
        }
    }
    return rc;
}

state_batch *state_batch_new(void) {
    state_batch *b = calloc(1, sizeof *b);
    if (b) b->wb = rocksdb_writebatch_create();
    return b;
}

void state_batch_free(state_batch *b) {
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void state_batch_clear(state_batch *b) {
    rocksdb_writebatch_clear(b->wb);
    b->count = 0;
}

size_t state_batch_count(const state_batch *b) { return b->count; }

void state_batch_put_state(state_batch *b, int32_t partition, const char *user, size_t user_len,
                           const void *state, size_t state_size) {
    char key[5 + MAX_USER_KEY];
    if (user_len > MAX_USER_KEY) user_len = MAX_USER_KEY;  /* callers validate ids; codec limit is below this */
    size_t kn = state_key(key, partition, user, user_len);
    rocksdb_writebatch_put(b->wb, key, kn, state, state_size);
    b->count++;
}

void state_batch_put_offset(state_batch *b, int32_t partition, int64_t next_offset, int64_t changelog_next) {
    char key[5], val[16];
    key[0] = K_OFFSET;
    put_be32(key + 1, (uint32_t)partition);
    put_be64(val, (uint64_t)next_offset);
    put_be64(val + 8, (uint64_t)changelog_next);
    rocksdb_writebatch_put(b->wb, key, sizeof key, val, changelog_next >= 0 ? 16 : 8);
    b->count++;
}

void state_batch_delete_state(state_batch *b, int32_t partition, const char *user, size_t user_len) {
    char key[5 + MAX_USER_KEY];
    if (user_len > MAX_USER_KEY) user_len = MAX_USER_KEY; /* as state_batch_put_state */
    size_t kn = state_key(key, partition, user, user_len);
    rocksdb_writebatch_delete(b->wb, key, kn);
    b->count++;
}

int state_store_write(state_store *s, state_batch *b, char *err, size_t errlen) {
    char *rerr = NULL;
    if (s->write_failed) {
        snprintf(err, errlen, "state store: an earlier write failed; restart the worker");
        return -1;
    }
    rocksdb_write(s->db, s->wopts, b->wb, &rerr);
    if (rerr) s->write_failed = 1;
    return take_err(rerr, "write", err, errlen);
}

int state_store_flush(state_store *s, char *err, size_t errlen) {
    if (s->write_failed) {
        snprintf(err, errlen, "state store: an earlier write failed; restart the worker");
        return -1;
    }
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *rerr = NULL;
    rocksdb_flush(s->db, fo, &rerr);
    rocksdb_flushoptions_destroy(fo);
    if (rerr) s->write_failed = 1;
    return take_err(rerr, "flush", err, errlen);
}

int state_store_drop_partition(state_store *s, int32_t partition, char *err, size_t errlen) {
    char from[5], to[5], off[5];
    from[0] = K_STATE;
    put_be32(from + 1, (uint32_t)partition);
    to[0] = K_STATE;
    put_be32(to + 1, (uint32_t)partition + 1);
    if (partition == INT32_MAX) {   /* the next key space starts after every partition */
        to[0] = K_STATE + 1;
        memset(to + 1, 0, 4);
    }
    off[0] = K_OFFSET;
    put_be32(off + 1, (uint32_t)partition);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, from, sizeof from, to, sizeof to);
    rocksdb_writebatch_delete(wb, off, sizeof off);
    char *rerr = NULL;
    rocksdb_write(s->db, s->wopts, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    if (rerr) s->write_failed = 1;
    return take_err(rerr, "drop partition", err, errlen);
}

int state_store_foreach(state_store *s, state_store_visit_fn fn, void *ctx, char *err, size_t errlen) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropts);
    char start = K_STATE;
    int rc = 0;
    for (rocksdb_iter_seek(it, &start, 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kn, vn;
        const char *k = rocksdb_iter_key(it, &kn);
        if (kn < 5 || k[0] != K_STATE) break;
        const char *v = rocksdb_iter_value(it, &vn);
        if (fn(ctx, (int32_t)get_be32(k + 1), k + 5, kn - 5, v, vn)) break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (take_err(rerr, "iterate", err, errlen)) rc = -1;
    rocksdb_iter_destroy(it);
    return rc;
}

int state_store_list_offsets(state_store *s, int32_t *partitions, int64_t *offsets, int cap,
                             char *err, size_t errlen) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropts);
    char start = K_OFFSET;
    int n = 0;
    for (rocksdb_iter_seek(it, &start, 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kn, vn;
        const char *k = rocksdb_iter_key(it, &kn);
        if (kn != 5 || k[0] != K_OFFSET) break;
        const char *v = rocksdb_iter_value(it, &vn);
        if (vn != 8 && vn != 16) continue;
        if (n < cap) {
            partitions[n] = (int32_t)get_be32(k + 1);
            offsets[n] = (int64_t)get_be64(v);
        }
        n++;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    int rc = take_err(rerr, "iterate offsets", err, errlen);
    rocksdb_iter_destroy(it);
    return rc ? -1 : n;
}

void state_batch_put_item(state_batch *b, uint64_t key, uint64_t text_hash, const char *id, size_t id_len,
                          const float *vec, int dim) {
    char k[9];
    k[0] = K_ITEM;
    put_be64(k + 1, key);
    size_t n = 12 + id_len + 4 * (size_t)dim;
    char stack[4096], *v = n <= sizeof stack ? stack : malloc(n);
    if (!v) return; /* ENOMEM: the item is re-read from the topic after a restart */
    for (int i = 0; i < 8; i++) v[i] = (char)(text_hash >> (8 * i));
    uint32_t il = (uint32_t)id_len;
    memcpy(v + 8, &il, 4);
    memcpy(v + 12, id, id_len);
    memcpy(v + 12 + id_len, vec, 4 * (size_t)dim); /* little-endian hosts only, as model/ */
    rocksdb_writebatch_put(b->wb, k, sizeof k, v, n);
    b->count++;
    if (v != stack) free(v);
}

void state_batch_put_item_offset(state_batch *b, int32_t partition, int64_t next_offset) {
    char key[5], val[8];
    key[0] = K_ITEM_OFFSET;
    put_be32(key + 1, (uint32_t)partition);
    put_be64(val, (uint64_t)next_offset);
    rocksdb_writebatch_put(b->wb, key, sizeof key, val, sizeof val);
    b->count++;
}

int state_store_item_decode(const void *value, size_t len, uint64_t *text_hash, const char **id, size_t *id_len,
                            const void **vec, int *dim) {
    const unsigned char *v = value;
    if (len < 12) return -1;
    uint32_t il = (uint32_t)v[8] | (uint32_t)v[9] << 8 | (uint32_t)v[10] << 16 | (uint32_t)v[11] << 24;
    size_t rest = len - 12;
    if (il > rest || (rest - il) % 4 || (rest - il) / 4 > INT32_MAX) return -1;
    uint64_t th = 0;
    for (int i = 7; i >= 0; i--) th = (th << 8) | v[i];
    *text_hash = th;
    *id = (const char *)v + 12;
    *id_len = il;
    *vec = v + 12 + il;
    *dim = (int)((rest - il) / 4);
    return 0;
}

int state_store_foreach_item(state_store *s, state_store_item_fn fn, void *ctx, char *err, size_t errlen) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropts);
    char start = K_ITEM;
    int rc = 0;
    for (rocksdb_iter_seek(it, &start, 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kn, vn, il;
        const char *k = rocksdb_iter_key(it, &kn);
        if (kn != 9 || k[0] != K_ITEM) break;
        const char *v = rocksdb_iter_value(it, &vn), *id;
        uint64_t th;
        const void *vec;
        int dim;
        if (state_store_item_decode(v, vn, &th, &id, &il, &vec, &dim)) {
            snprintf(err, errlen, "corrupt item record (key %016llx, %zu bytes)", (unsigned long long)get_be64(k + 1), vn);
            rc = -1;
            break;
        }
        if (fn(ctx, get_be64(k + 1), th, id, il, vec, dim)) break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (take_err(rerr, "iterate items", err, errlen)) rc = -1;
    rocksdb_iter_destroy(it);
    return rc;
}

int state_store_get_item_offset(state_store *s, int32_t partition, int64_t *next_offset, char *err, size_t errlen) {
    char key[5];
    key[0] = K_ITEM_OFFSET;
    put_be32(key + 1, (uint32_t)partition);
    size_t n;
    char *rerr = NULL;
    char *v = rocksdb_get(s->db, s->ropts, key, sizeof key, &n, &rerr);
    if (take_err(rerr, "get item offset", err, errlen)) return -1;
    *next_offset = -1;
    if (!v) return 0;
    int ok = n == 8;
    if (ok) *next_offset = (int64_t)get_be64(v);
    rocksdb_free(v);
    if (!ok) {
        snprintf(err, errlen, "corrupt items offset record for partition %d (%zu bytes)", partition, n);
        return -1;
    }
    return 0;
}

uint64_t state_store_memory_bytes(state_store *s) {
    uint64_t mem = 0, v = 0;
    if (rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &v) == 0) mem += v;
    mem += rocksdb_cache_get_usage(s->cache);
    return mem;
}
