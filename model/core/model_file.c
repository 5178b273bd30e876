/* model_file: save and load a model as a safetensors file.
 *
 * Layout (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes
 * of JSON (padded with spaces so the data section starts 8-byte aligned), then the data section.
 * The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} relative to
 * the data section, which the tensors cover exactly (no holes, no overlaps), and carries
 * "__metadata__", a string -> string map: format "ievo-model", format_version, the config (one key
 * per field, decimal text), name, model_id, fingerprint (16 hex), crc32c (8 hex, CRC-32C of the
 * whole data section) and, when present, "meta" (the free-form JSON object as text).
 * The parameter tensors the config and heads call for (model_tensor_present) are F32 in model.h's
 * order, the LSTM/GRU family's 14 or the LRU family's; the vocabularies are U8 tensors
 * "vocab.items" / "vocab.actions", ids joined by '\n' with "<oov>" first. A text model
 * (metadata "text_dim", absent for models without text) carries text.b and text.w after the
 * core. The optional heads (score.*, value.*: see model.h) are F32 tensors too, stored after
 * those when the model has them; a file without them is a model without heads, and the format version stays 1 (a build
 * that predates heads rejects a file with them as "unexpected tensor", which is the truth).
 *
 * Loading trusts nothing: every size, offset, dtype and shape is checked against the config, the
 * checksum against the data, the parameters must be finite, and the stored model_id/fingerprint
 * must match what the loaded content hashes to. Errors say which check failed and on what.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "json_text.h"
#include "model_internal.h"

/* File table order: the 14 core tensors, the optional heads (present or not), the 2 vocabularies. */
#define N_FILE_TENSORS (MODEL_N_TENSORS + 2)
#define HEADER_MAX (64u << 20) /* a header beyond 64 MB is not ours (safetensors itself caps at 100 MB) */

static const char *const vocab_names[2] = {"vocab.items", "vocab.actions"};

/* ---- save -------------------------------------------------------------------------------- */

/* Metadata values are strings (safetensors' rule): integers as decimal text. */
static int meta_int(json_t *meta, const char *k, long long v) {
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    return json_object_set_new(meta, k, json_string(t));
}

/* The header object: "__metadata__" first, then the tensors in file order (jansson keeps an
 * object's insertion order when it writes it; tests/unit/test_json.c pins that). NULL only when
 * out of memory. */
static json_t *header_json(const model *m, const size_t vlen[2], uint32_t crc) {
    const model_config *c = &m->cfg;
    char name[MODEL_NAME_MAX + 1], fp_hex[24], crc_hex[16];
    model_name_of(m, name, sizeof name);
    snprintf(fp_hex, sizeof fp_hex, "%016llx", (unsigned long long)m->fingerprint);
    snprintf(crc_hex, sizeof crc_hex, "%08x", crc);
    json_t *hdr = json_object(), *meta = json_object();
    if (!hdr || !meta) {
        json_decref(hdr), json_decref(meta);
        return NULL;
    }
    int bad = json_object_set_new(hdr, "__metadata__", meta);
    bad = bad || json_object_set_new(meta, "format", json_string("ievo-model"));
    bad = bad || meta_int(meta, "format_version", MODEL_FORMAT_VERSION);
    /* name and model_id are [A-Za-z0-9._-] (model_name_check), the rest is ours: plain strings */
    bad = bad || json_object_set_new(meta, "name", json_string(name)) ||
          json_object_set_new(meta, "model_id", json_string(m->model_id));
    bad = bad || json_object_set_new(meta, "fingerprint", json_string(fp_hex)) ||
          json_object_set_new(meta, "crc32c", json_string(crc_hex));
    bad = bad || json_object_set_new(meta, "cell", json_string(model_cell_name(c->cell)));
    bad = bad || meta_int(meta, "item_dim", c->item_dim) || meta_int(meta, "action_dim", c->action_dim) ||
          meta_int(meta, "hidden", c->hidden) || meta_int(meta, "attn_dim", c->attn_dim) ||
          meta_int(meta, "out_dim", c->out_dim) || meta_int(meta, "window", c->window) ||
          meta_int(meta, "n_items", c->n_items) || meta_int(meta, "n_actions", c->n_actions);
    if (c->text_dim > 0) bad = bad || meta_int(meta, "text_dim", c->text_dim); /* absent: 0, the file of old */
    /* the other families' keys: absent in the files of the LSTM/GRU family with window attention */
    if (c->cell == MODEL_CELL_LRU)
        bad = bad || meta_int(meta, "layers", c->layers) || meta_int(meta, "state_dim", c->state_dim);
    if (c->cell == MODEL_CELL_LRU || c->attn == MODEL_ATTN_TF) bad = bad || meta_int(meta, "ffn_dim", c->ffn_dim);
    if (c->attn == MODEL_ATTN_TF)
        bad = bad || json_object_set_new(meta, "attention", json_string("tf")) || meta_int(meta, "blocks", c->blocks) ||
              meta_int(meta, "heads", c->heads);
    /* meta_json passed jansson's parser in model_set_meta, so it is valid UTF-8 */
    if (m->meta_json) bad = bad || json_object_set_new(meta, "meta", json_string(m->meta_json));
    size_t off = 0;
    for (int t = 0; t < N_FILE_TENSORS && !bad; t++) {
        size_t bytes;
        const char *tname;
        json_t *shape;
        if (t < MODEL_N_TENSORS) {
            const model_tensor *x = &m->t[t];
            if (x->numel == 0) continue; /* a tensor of another family, or a head the model lacks */
            bytes = x->numel * sizeof(float);
            tname = x->name;
            shape = x->ndim == 2 ? json_pack("[i,i]", x->shape[0], x->shape[1]) : json_pack("[i]", x->shape[0]);
        } else {
            bytes = vlen[t - MODEL_N_TENSORS];
            tname = vocab_names[t - MODEL_N_TENSORS];
            shape = json_pack("[I]", (json_int_t)bytes);
        }
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", t < MODEL_N_TENSORS ? "F32" : "U8", "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + bytes));
        bad = json_object_set_new(hdr, tname, e);
        off += bytes;
    }
    if (bad) {
        json_decref(hdr);
        return NULL;
    }
    return hdr;
}

int model_save(const model *m, const char *path, char *err, size_t errlen) {
    size_t vlen[2];
    const char *vdata[2] = {vocab_joined(m->items, &vlen[0]), vocab_joined(m->actions, &vlen[1])};
    uint32_t crc = crc32c(0, m->params, m->n_params * sizeof(float));
    crc = crc32c(crc, vdata[0], vlen[0]);
    crc = crc32c(crc, vdata[1], vlen[1]);

    json_t *hdr = header_json(m, vlen, crc);
    char *text = hdr ? json_dumps(hdr, IEVO_JSON_DUMP) : NULL;
    json_decref(hdr);
    if (!text) return model_errf(err, errlen, "model save: out of memory");
    /* spaces after the JSON so the data section starts 8-byte aligned */
    size_t tlen = strlen(text), pad = (8 - (8 + tlen) % 8) % 8;

    /* Write next to the target and rename, so a crash never leaves a half-written model. */
    atomic_file af;
    int rc = -1;
    if (atomic_file_open(&af, path, 0666, err, errlen)) {
        free(text);
        return -1;
    }
    FILE *f = af.f;
    uint64_t hlen = tlen + pad;
    int ok = fwrite(&hlen, 8, 1, f) == 1 && fwrite(text, 1, tlen, f) == tlen && fwrite("       ", 1, pad, f) == pad &&
             fwrite(m->params, sizeof(float), m->n_params, f) == m->n_params &&
             fwrite(vdata[0], 1, vlen[0], f) == vlen[0] && fwrite(vdata[1], 1, vlen[1], f) == vlen[1];
    if (!ok) {
        model_errf(err, errlen, "model save: writing %s failed: %s", path, strerror(errno));
        atomic_file_abort(&af);
        goto done;
    }
    if (atomic_file_commit(&af, err, errlen)) goto done;
    rc = 0;
done:
    free(text);
    return rc;
}

/* ---- load -------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int is_u8;
    int ndim, shape[2];
    int found;
    int absent; /* a tensor this model does not have (another family's, a head it lacks) */
    uint64_t begin, end;
} file_tensor;

static int dtype_size(const char *d) {
    static const struct { const char *n; int s; } t[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
        {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(d, t[i].n) == 0) return t[i].s;
    return 0;
}

static int read_file(const char *path, unsigned char **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return model_errf(err, errlen, "model file %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return model_errf(err, errlen, "model file %s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return model_errf(err, errlen, "model file %s: out of memory for %zu bytes", path, n);
    }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return model_errf(err, errlen, "model file %s: read failed", path);
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const file_tensor *x = *(const file_tensor *const *)a, *y = *(const file_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Reads an array of exactly n non-negative integers into v. */
static int int_array(const json_t *a, size_t n, uint64_t *v) {
    if (!json_is_array(a) || json_array_size(a) != n) return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0) return -1;
        v[i] = (uint64_t)json_integer_value(x);
    }
    return 0;
}

/* A metadata value (every one is a string: checked first), or NULL when absent. The parser
 * runs without JSON_ALLOW_NUL, so a value never hides a NUL byte. */
static const char *meta_str(const json_t *meta, const char *key) { return json_string_value(json_object_get(meta, key)); }

int model_load(model **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    unsigned char *buf = NULL;
    size_t flen = 0;
    json_t *hdr = NULL;
    model *m = NULL;
    if (read_file(path, &buf, &flen, err, errlen)) return -1;
#define FAIL(...)                                                              \
    do {                                                                       \
        char why_[1024];                                              \
        snprintf(why_, sizeof why_, __VA_ARGS__);                              \
        model_errf(err, errlen, "model file %s: %s", path, why_);              \
        goto fail;                                                             \
    } while (0)

    /* 1. Framing. */
    if (flen < 8) FAIL("truncated: %zu bytes, not even the 8-byte header length (not a safetensors file)", flen);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if (hlen > flen - 8)
        FAIL("header length %llu runs past the end of the %zu-byte file (truncated, or not a safetensors file)",
             (unsigned long long)hlen, flen);
    if (hlen < 2 || hlen > HEADER_MAX) FAIL("header length %llu is implausible (not a safetensors file?)", (unsigned long long)hlen);
    if (buf[8] != '{') FAIL("bad magic: the header does not start with '{' (not a safetensors file)");
    const unsigned char *data = buf + 8 + hlen;
    uint64_t dlen = flen - 8 - hlen;
    json_error_t jerr;
    /* Duplicate keys are an error here, so a tensor cannot appear twice in the header. */
    hdr = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    char jt[JSON_ERROR_TEXT_LENGTH];
    if (!hdr) FAIL("header is not valid JSON: %s at byte %d", json_error_text(&jerr, jt, sizeof jt), jerr.position);
    if (!json_is_object(hdr)) FAIL("header is not a JSON object");

    /* 2. Metadata and config. */
    json_t *meta = json_object_get(hdr, "__metadata__");
    if (!json_is_object(meta)) FAIL("no \"__metadata__\" object: not an ievo model");
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v)
        if (!json_is_string(v)) FAIL("__metadata__ value \"%s\" is not a string", key);
    const char *fmt = meta_str(meta, "format"), *ver = meta_str(meta, "format_version");
    if (!fmt || strcmp(fmt, "ievo-model") != 0) FAIL("bad format \"%s\", expected \"ievo-model\"", fmt ? fmt : "(missing)");
    char want_ver[16];
    snprintf(want_ver, sizeof want_ver, "%d", MODEL_FORMAT_VERSION);
    if (!ver || strcmp(ver, want_ver) != 0)
        FAIL("unsupported format_version \"%s\" (this build reads %s)", ver ? ver : "(missing)", want_ver);
    model_config cfg;
    model_config_default(&cfg);
    static const char *const cfg_keys[] = {"cell", "item_dim", "action_dim", "hidden", "attn_dim",
                                           "out_dim", "window", "n_items", "n_actions"};
    for (size_t i = 0; i < sizeof cfg_keys / sizeof cfg_keys[0]; i++) {
        const char *v = meta_str(meta, cfg_keys[i]);
        char cerr[MODEL_ERR_LEN];
        if (!v) FAIL("__metadata__ lacks config key \"%s\"", cfg_keys[i]);
        if (model_config_set(&cfg, cfg_keys[i], v, cerr, sizeof cerr)) FAIL("%s", cerr);
    }
    {
        char cerr[MODEL_ERR_LEN];
        const char *td = meta_str(meta, "text_dim"); /* optional: models without text do not carry it */
        if (td && model_config_set(&cfg, "text_dim", td, cerr, sizeof cerr)) FAIL("%s", cerr);
        if (td && cfg.text_dim == 0) FAIL("text_dim \"0\" is written only as an absent key");
        /* the other families' keys: required where the family has them, absent in the files of
         * the LSTM/GRU family with window attention (the files written before the others existed) */
        const char *at = meta_str(meta, "attention");
        if (at && (strcmp(at, "tf") != 0 || model_config_set(&cfg, "attention", at, cerr, sizeof cerr)))
            FAIL("attention \"%s\": only \"tf\" is written (window is the absent key)", at);
        const int lru = cfg.cell == MODEL_CELL_LRU, tf = cfg.attn == MODEL_ATTN_TF;
        static const char *const fam_keys[] = {"layers", "state_dim", "ffn_dim", "blocks", "heads"};
        const int want[] = {lru, lru, lru || tf, tf, tf};
        for (size_t i = 0; i < sizeof fam_keys / sizeof fam_keys[0]; i++) {
            const char *v = meta_str(meta, fam_keys[i]);
            if ((v == NULL) == (want[i] != 0))
                FAIL("config key \"%s\" is %s for cell %s, attention %s", fam_keys[i], v ? "unexpected" : "missing",
                     model_cell_name(cfg.cell), tf ? "tf" : "window");
            if (v && model_config_set(&cfg, fam_keys[i], v, cerr, sizeof cerr)) FAIL("%s", cerr);
            if (v && atoi(v) == 0) FAIL("config key \"%s\" is 0", fam_keys[i]);
        }
        if (model_config_check(&cfg, cerr, sizeof cerr)) FAIL("%s", cerr);
    }
    const char *name = meta_str(meta, "name"), *model_id = meta_str(meta, "model_id");
    const char *fp_hex = meta_str(meta, "fingerprint"), *crc_hex = meta_str(meta, "crc32c");
    if (!name || !model_id || !fp_hex || !crc_hex) FAIL("__metadata__ lacks name, model_id, fingerprint or crc32c");
    {
        char nerr[MODEL_ERR_LEN];
        if (model_name_check(name, nerr, sizeof nerr)) FAIL("%s", nerr);
    }
    if (model_alloc(&m, &cfg, err, errlen)) goto fail;
    /* The optional heads: a head is present when any of its tensors is named in the header (the
     * checks below then require all of its tensors). */
    int heads = 0;
    json_object_foreach(hdr, key, v)
        for (int t = 0; t < MODEL_N_TENSORS; t++)
            if (strcmp(key, model_tensor_names[t]) == 0) heads |= model_head_of_tensor(t);
    if (heads && model_alloc_heads(m, heads, err, errlen)) goto fail;

    /* 3. The tensor table: names, dtypes, shapes. */
    file_tensor ft[N_FILE_TENSORS];
    int n_present = 0;
    for (int t = 0; t < N_FILE_TENSORS; t++) {
        memset(&ft[t], 0, sizeof ft[t]);
        if (t < MODEL_N_TENSORS) {
            ft[t].name = model_tensor_names[t];
            ft[t].ndim = m->t[t].ndim;
            ft[t].shape[0] = m->t[t].shape[0];
            ft[t].shape[1] = m->t[t].shape[1];
            ft[t].absent = m->t[t].numel == 0;
        } else {
            ft[t].name = vocab_names[t - MODEL_N_TENSORS];
            ft[t].is_u8 = 1;
            ft[t].ndim = 1;
        }
        n_present += !ft[t].absent;
    }
    json_object_foreach(hdr, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        file_tensor *x = NULL;
        for (int t = 0; t < N_FILE_TENSORS; t++)
            if (strcmp(key, ft[t].name) == 0) x = &ft[t];
        if (!x) FAIL("unexpected tensor \"%s\"", key);
        if (x->absent) FAIL("unexpected tensor \"%s\" (a model of cell %s has none)", key, model_cell_name(cfg.cell));
        x->found = 1;
        if (!json_is_object(v)) FAIL("tensor \"%s\": entry is not an object", key);
        const char *dtype = json_string_value(json_object_get(v, "dtype"));
        if (!dtype) FAIL("tensor \"%s\": no dtype", key);
        int dsz = dtype_size(dtype);
        if (!dsz) FAIL("tensor \"%s\": unknown dtype \"%s\"", key, dtype);
        if (strcmp(dtype, x->is_u8 ? "U8" : "F32") != 0)
            FAIL("tensor \"%s\": dtype %s, ievo stores it as %s", key, dtype, x->is_u8 ? "U8" : "F32");
        uint64_t sh[2] = {0, 0}, off[2];
        if (int_array(json_object_get(v, "shape"), (size_t)x->ndim, sh)) {
            if (x->ndim == 2)
                FAIL("tensor \"%s\": shape is not [%d,%d] as the config requires", key, x->shape[0], x->shape[1]);
            FAIL("tensor \"%s\": shape must be a 1-element array of a non-negative integer%s", key,
                 x->is_u8 ? "" : " (the config's size)");
        }
        if (x->is_u8) {
            x->shape[0] = (int)(sh[0] > INT32_MAX ? INT32_MAX : sh[0]);
        } else if (sh[0] != (uint64_t)x->shape[0] || (x->ndim == 2 && sh[1] != (uint64_t)x->shape[1])) {
            if (x->ndim == 2)
                FAIL("tensor \"%s\": shape [%llu,%llu] does not match the config's [%d,%d]", key, (unsigned long long)sh[0],
                     (unsigned long long)sh[1], x->shape[0], x->shape[1]);
            FAIL("tensor \"%s\": shape [%llu] does not match the config's [%d]", key, (unsigned long long)sh[0], x->shape[0]);
        }
        if (int_array(json_object_get(v, "data_offsets"), 2, off)) FAIL("tensor \"%s\": data_offsets is not [begin,end]", key);
        uint64_t bytes = (x->is_u8 ? sh[0] : (uint64_t)sh[0] * (x->ndim == 2 ? sh[1] : 1)) * (uint64_t)dsz;
        if (off[0] > off[1] || off[1] > dlen)
            FAIL("tensor \"%s\": data_offsets [%llu,%llu] out of range (data section is %llu bytes; truncated file?)", key,
                 (unsigned long long)off[0], (unsigned long long)off[1], (unsigned long long)dlen);
        if (off[1] - off[0] != bytes)
            FAIL("tensor \"%s\": data_offsets [%llu,%llu] span %llu bytes, its shape needs %llu", key,
                 (unsigned long long)off[0], (unsigned long long)off[1], (unsigned long long)(off[1] - off[0]),
                 (unsigned long long)bytes);
        x->begin = off[0];
        x->end = off[1];
    }
    for (int t = 0; t < N_FILE_TENSORS; t++)
        if (!ft[t].found && !ft[t].absent) FAIL("missing tensor \"%s\"", ft[t].name);

    /* 4. The tensors tile the data section exactly. */
    file_tensor *order[N_FILE_TENSORS];
    for (int t = 0, k = 0; t < N_FILE_TENSORS; t++)
        if (!ft[t].absent) order[k++] = &ft[t];
    qsort(order, (size_t)n_present, sizeof order[0], cmp_begin);
    uint64_t pos = 0;
    for (int t = 0; t < n_present; t++) {
        if (order[t]->begin < pos)
            FAIL("tensors \"%s\" and \"%s\" overlap (data_offsets [%llu,..) starts before %llu)", order[t - 1]->name,
                 order[t]->name, (unsigned long long)order[t]->begin, (unsigned long long)pos);
        if (order[t]->begin > pos)
            FAIL("bytes [%llu,%llu) of the data section belong to no tensor", (unsigned long long)pos,
                 (unsigned long long)order[t]->begin);
        pos = order[t]->end;
    }
    if (pos != dlen) FAIL("%llu trailing bytes after the last tensor", (unsigned long long)(dlen - pos));

    /* 5. Checksum. */
    uint32_t crc = crc32c(0, data, (size_t)dlen);
    char crc_now[16];
    snprintf(crc_now, sizeof crc_now, "%08x", crc);
    if (strcmp(crc_now, crc_hex) != 0)
        FAIL("checksum mismatch: the data section's CRC-32C is %s, the header says %s (corrupted file)", crc_now, crc_hex);

    /* 6. Contents. */
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        if (ft[t].absent) continue;
        memcpy(m->t[t].data, data + ft[t].begin, m->t[t].numel * sizeof(float));
        for (size_t i = 0; i < m->t[t].numel; i++)
            if (!isfinite(m->t[t].data[i])) FAIL("tensor \"%s\": element %zu is not finite", m->t[t].name, i);
    }
    if (m->t[T_VALUE_USER].numel) {
        const float *vu = m->t[T_VALUE_USER].data;
        if (!(vu[0] >= 0 && vu[0] <= 1) || !(vu[1] >= 0))
            FAIL("tensor \"value.user\": decay %g must be in [0, 1] and shrinkage %g >= 0", vu[0], vu[1]);
    }
    model_vocab **vv[2] = {&m->items, &m->actions};
    const int want_rows[2] = {cfg.n_items, cfg.n_actions};
    for (int k = 0; k < 2; k++) {
        const file_tensor *x = &ft[MODEL_N_TENSORS + k];
        char verr[MODEL_ERR_LEN];
        if (vocab_from_joined(vv[k], (const char *)data + x->begin, (size_t)(x->end - x->begin), k ? "action" : "item",
                              verr, sizeof verr))
            FAIL("tensor \"%s\": %s", x->name, verr);
        if (vocab_size(*vv[k]) != want_rows[k])
            FAIL("tensor \"%s\" holds %d ids, the config says %d rows", x->name, vocab_size(*vv[k]), want_rows[k]);
    }
    const char *mj = meta_str(meta, "meta");
    if (mj) {
        char merr[MODEL_ERR_LEN];
        if (model_set_meta(m, mj, merr, sizeof merr)) FAIL("%s", merr);
    }

    /* 7. Identity: what the content hashes to must be what the header claims. */
    if (model_finalize(m, name, err, errlen)) goto fail;
    char fp_now[24];
    snprintf(fp_now, sizeof fp_now, "%016llx", (unsigned long long)m->fingerprint);
    if (strcmp(fp_now, fp_hex) != 0 || strcmp(model_id, m->model_id) != 0)
        FAIL("identity mismatch: content hashes to %s (fingerprint %s), the header says %s (fingerprint %s)",
             m->model_id, fp_now, model_id, fp_hex);
#undef FAIL
    json_decref(hdr);
    free(buf);
    *out = m;
    return 0;
fail:
    json_decref(hdr);
    free(buf);
    model_free(m);
    return -1;
}
