/* cmd_state: `ievo state dump|offsets`, a look inside a worker's state dir (the worker must not
 * be running: RocksDB allows one process per store). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "item_table.h"
#include "json.h"
#include "model.h"
#include "state_store.h"
#include "worker_record.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ievo state dump -d STATE_DIR -m MODEL    one JSON line per user state\n"
               "       ievo state offsets -d STATE_DIR           one JSON line per partition\n");
}

typedef struct {
    const model *m;
    model_runner *r; /* recomputes the vector a state holds (model_state_output) */
    json_buf b;
    int bad;
    char err[256];
    void *aligned;   /* model_state_size bytes */
    float *v;        /* out_dim floats */
} dump_ctx;

static int dump_one(void *vctx, int32_t partition, const char *user, size_t user_len, const void *value,
                    size_t value_size) {
    dump_ctx *x = vctx;
    size_t size = RECORD_HEADER + model_state_size(x->m);
    /* RocksDB values carry no alignment guarantee (the model reads floats in place), and are
     * stored without their trailing zeros (worker_record.h). */
    int sized = record_load(x->aligned, size, value, value_size) == 0;
    if (!sized || model_state_check(x->m, record_blob_c(x->aligned), x->err, sizeof x->err)) {
        fprintf(stderr, "ievo state: user '%.*s' (partition %d): %s\n", (int)user_len, user, partition,
                !sized ? "record size does not match the model" : x->err);
        x->bad++;
        return 0;
    }
    const void *state = record_blob_c(x->aligned);
    json_buf *b = &x->b;
    const float *v = x->v;
    if (model_state_output(x->r, state, x->v, x->err, sizeof x->err)) {
        fprintf(stderr, "ievo state: user '%.*s' (partition %d): %s\n", (int)user_len, user, partition, x->err);
        x->bad++;
        return 0;
    }
    b->len = 0;
    json_buf_printf(b, "{\"partition\":%d,\"user_id\":", partition);
    json_buf_string(b, user, user_len);
    json_buf_printf(b, ",\"events\":%lld,\"ts\":%lld,\"last_offset\":%lld,\"vector\":[",
                    (long long)model_state_events(state), (long long)model_state_last_ts(state),
                    (long long)record_last_offset(x->aligned));
    for (int i = 0; i < x->m->cfg.out_dim; i++) {
        if (i) json_buf_append(b, ",", 1);
        json_buf_float(b, v[i]);
    }
    json_buf_append(b, "]}\n", 3);
    fwrite(b->data, 1, b->len, stdout);
    return 0;
}

int cmd_state(int argc, char **argv) {
    static const struct option opts[] = {{"state-dir", required_argument, 0, 'd'},
                                         {"model", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    if (argc < 2 || (strcmp(argv[1], "dump") && strcmp(argv[1], "offsets"))) {
        usage(argc < 2 ? stderr : stdout);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    int dump = !strcmp(argv[1], "dump");
    const char *dir = NULL, *model_path = NULL;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "d:m:h", opts, NULL)) != -1) {
        if (c == 'd') dir = optarg;
        else if (c == 'm') model_path = optarg;
        else if (c == 'h') { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if (!dir || (dump && !model_path)) { usage(stderr); return 2; }
    char err[512];
    state_store_opts o;
    state_store_opts_default(&o);
    o.block_cache_bytes = 8u << 20;
    state_store *s = NULL;
    model *m = NULL;
    int rc = 1;
    if (state_store_open(&s, dir, &o, err, sizeof err)) goto done;
    if (dump) {
        if (model_load(&m, model_path, err, sizeof err)) goto done;
        dump_ctx x = {.m = m, .aligned = malloc(RECORD_HEADER + model_state_size(m)),
                      .v = malloc((size_t)m->cfg.out_dim * sizeof(float))};
        if (!x.aligned || !x.v) { free(x.aligned), free(x.v); snprintf(err, sizeof err, "out of memory"); goto done; }
        if (model_runner_new(&x.r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err)) { free(x.aligned), free(x.v); goto done; }
        item_table *items = NULL; /* text models: the item texts the worker stored, for the window's lookups */
        if (m->cfg.text_dim > 0) {
            if (item_table_new(&items, m->cfg.text_dim)) snprintf(err, sizeof err, "out of memory");
            if (!items || item_table_load_store(items, s, err, sizeof err)) {
                item_table_free(items), model_runner_free(x.r), free(x.aligned), free(x.v);
                goto done;
            }
            model_runner_set_text(x.r, item_table_lookup, items);
        }
        int frc = state_store_foreach(s, dump_one, &x, err, sizeof err);
        item_table_free(items);
        model_runner_free(x.r);
        json_buf_free(&x.b);
        free(x.aligned);
        free(x.v);
        if (frc) goto done;
        rc = x.bad ? 1 : 0;
        if (x.bad) snprintf(err, sizeof err, "%d state(s) could not be read with this model", x.bad);
    } else {
        int32_t parts[4096];
        int64_t offs[4096];
        int n = state_store_list_offsets(s, parts, offs, 4096, err, sizeof err);
        if (n < 0) goto done;
        for (int i = 0; i < n && i < 4096; i++)
            printf("{\"partition\":%d,\"next_offset\":%lld}\n", parts[i], (long long)offs[i]);
        rc = 0;
    }
done:
    if (rc) fprintf(stderr, "ievo state: %s\n", err);
    model_free(m);
    state_store_close(s);
    return rc;
}
