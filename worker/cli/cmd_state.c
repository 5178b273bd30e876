/* cmd_state: `ievo state dump|offsets`, a look inside a worker's state dir. Both print JSON lines
 * on stdout. The store is opened read-only: a missing dir is an error, nothing is created or
 * written. Run them on a stopped worker's dir: a running worker's latest states are still in
 * its memory and memtables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "item_table.h"
#include "json_text.h"
#include "model.h"
#include "settings.h"
#include "state_store.h"
#include "worker_record.h"

static const cli_option OPTS[] = {
    {"state-dir", 'd', "DIR", "the worker's state dir", "state.dir"},
    CLI_OPT_MODEL("model.path"),
    CLI_OPT_END,
};

static const cli_command DUMP_CMD = {
    .name = "state dump",
    .synopsis = "[-d STATE_DIR] -m MODEL [-F FILE] [-X KEY=VALUE]...",
    .about = "One JSON line per user state: partition, user_id, events, ts, last_offset and the interest\n"
             "vector the state holds (recomputed with the model, which must be the worker's).\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_STATE,
};

static const cli_command OFFSETS_CMD = {
    .name = "state offsets",
    .synopsis = "[-d STATE_DIR] [-F FILE] [-X KEY=VALUE]...",
    .about = "One JSON line per partition: the next input offset the state dir would apply.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_STATE,
};

/* ---- dump ----------------------------------------------------------------------------------- */

typedef struct {
    const model *m;
    model_runner *r; /* recomputes the vector a state holds (model_state_output) */
    int bad, write_failed;
    char err[256];
    void *aligned;   /* model_state_size bytes */
    float *v;        /* out_dim floats */
} dump_ctx;

static int dump_print(const dump_ctx *x, int32_t partition, const char *user, size_t user_len, const void *state) {
    json_t *vec = json_array();
    for (int i = 0; vec && i < x->m->cfg.out_dim; i++) json_array_append_new(vec, json_real_or_null(x->v[i]));
    json_t *line = json_pack("{s:i,s:o,s:I,s:I,s:I,s:o}", "partition", (int)partition, "user_id",
                             json_string_lossy(user, user_len), "events", (json_int_t)model_state_events(state), "ts",
                             (json_int_t)model_state_last_ts(state), "last_offset",
                             (json_int_t)record_last_offset(x->aligned), "vector", vec);
    int bad = !line || json_dumpf(line, stdout, IEVO_JSON_DUMP) || putchar('\n') == EOF;
    json_decref(line);
    return bad ? -1 : 0;
}

static int dump_one(void *vctx, int32_t partition, const char *user, size_t user_len, const void *value,
                    size_t value_size) {
    dump_ctx *x = vctx;
    size_t size = RECORD_HEADER + model_state_size(x->m);
    /* RocksDB values carry no alignment guarantee (the model reads floats in place), and are
     * stored without their trailing zeros (worker_record.h). */
    int sized = record_load(x->aligned, size, value, value_size) == 0;
    const void *state = record_blob_c(x->aligned);
    /* validated like a restored record: counters, window slots and values are read below */
    if (!sized || model_state_validate_stored(x->m, state, x->err, sizeof x->err) ||
        model_state_output(x->r, state, x->v, x->err, sizeof x->err)) {
        fprintf(stderr, "ievo state: user '%.*s' (partition %d): %s\n", (int)user_len, user, partition,
                !sized ? "record size does not match the model" : x->err);
        x->bad++;
        return 0;
    }
    if (dump_print(x, partition, user, user_len, state)) return x->write_failed = 1, -1;
    return 0;
}

/* Every state of s through the model at model_path. */
static int state_dump(state_store *s, const char *model_path, char *err, size_t errlen) {
    model *m = NULL;
    item_table *items = NULL;   /* text models: the item texts the worker stored, for the window's lookups */
    dump_ctx x = {0};
    int rc = -1;
    if (model_load(&m, model_path, err, errlen)) return -1;
    x.m = m;
    x.aligned = malloc(RECORD_HEADER + model_state_size(m));
    x.v = malloc((size_t)m->cfg.out_dim * sizeof(float));
    if (!x.aligned || !x.v || (m->cfg.text_dim > 0 && item_table_new(&items, m->cfg.text_dim))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (model_runner_new(&x.r, m, MODEL_BACKEND_SCALAR, 1, err, errlen) ||
        (items && item_table_load_store(items, s, err, errlen)))
        goto done;
    if (items) model_runner_set_text(x.r, item_table_lookup, items);
    if (state_store_foreach(s, dump_one, &x, err, errlen)) {
        if (x.write_failed) snprintf(err, errlen, "cannot write stdout");
        goto done;
    }
    if (x.bad) snprintf(err, errlen, "%d state(s) could not be read with this model", x.bad);
    else rc = 0;
done:
    item_table_free(items);
    model_runner_free(x.r);
    free(x.aligned);
    free(x.v);
    model_free(m);
    return rc;
}

/* ---- offsets -------------------------------------------------------------------------------- */

static int state_offsets(state_store *s, char *err, size_t errlen) {
    int32_t parts[4096];
    int64_t offs[4096];
    int n = state_store_list_offsets(s, parts, offs, 4096, err, errlen);
    for (int i = 0; i < n && i < 4096; i++) printf("{\"partition\":%d,\"next_offset\":%lld}\n", parts[i], (long long)offs[i]);
    return n < 0 ? -1 : 0;
}

/* ---- the commands --------------------------------------------------------------------------- */

static int state_main(const cli_command *cmd, int argc, char **argv, int dump) {
    cli_args a;
    char err[512];
    const char *dir = NULL, *model_path = NULL;
    int rc = cli_parse(cmd, argc, argv, NULL, NULL, &a);
    if (rc == CLI_OK && (settings_string(&a.cfg, "state.dir", &dir, err, sizeof err) ||
                         settings_string(&a.cfg, "model.path", &model_path, err, sizeof err)))
        rc = cli_usage_error(cmd, "%s", err);
    if (rc == CLI_OK && dump && !model_path) rc = cli_usage_error(cmd, "the model is required: give -m MODEL");
    if (rc == CLI_OK) {
        state_store_opts o;
        state_store_opts_default(&o);
        o.block_cache_bytes = 8u << 20;
        o.read_only = 1;   /* a look inside: a mistyped -d must not leave an empty store behind */
        state_store *s = NULL;
        int failed = state_store_open(&s, dir, &o, err, sizeof err) ||
                     (dump ? state_dump(s, model_path, err, sizeof err) : state_offsets(s, err, sizeof err));
        if (failed) fprintf(stderr, "ievo %s: %s\n", cmd->name, err);
        state_store_close(s);
        fflush(stdout);
        rc = failed ? CLI_FAILED : CLI_OK;
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}

static int state_dump_main(int argc, char **argv) { return state_main(&DUMP_CMD, argc, argv, 1); }
static int state_offsets_main(int argc, char **argv) { return state_main(&OFFSETS_CMD, argc, argv, 0); }

int cmd_state(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"dump", state_dump_main, "one JSON line per user state"},
        {"offsets", state_offsets_main, "one JSON line per partition: its next input offset"},
    };
    return cli_dispatch("state", subs, sizeof subs / sizeof subs[0], argc, argv);
}
