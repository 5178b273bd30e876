/* cmd_train: `ievo train`, learning the interest model from history and writing the model file
 * the worker loads.
 *
 * The shell around model/train.c: it reads the events (MovieLens, JSON lines, the synthetic
 * generator, or a Kafka topic from its beginning up to the end offsets seen at start), builds
 * each user's sequence in the order the worker applies events (event time, ties in input order),
 * maps ids to a vocabulary (MovieLens: u.item; synthetic: the generator's universe; otherwise
 * the items and actions of the data, in order of first appearance), initialises a model with a
 * scoring head (and a value head when events carry values), trains it, and saves it with the
 * training config and the best validation metrics in the header's metadata. Progress goes to
 * stderr, one line per epoch. --dump-forward writes the trainer's own batched forward at every
 * position as JSON lines, for the train/serve parity test.
 * --text makes a text model (docs/text.md): item texts from a catalogue (--movielens: u.item's
 * title and genres; otherwise --items FILE of {"item_id","text"} lines) and the events' own text
 * fields, encoded once with USE-lite (frozen; cached in the text cache dir), feed the adaptor the
 * trainer learns. --text-only drops the id embeddings (the ablation). --holdout-items F removes a
 * seeded fraction F of the items from the vocabulary and every one of their events from training,
 * and lists them in the metadata (`ievo eval --cold` ranks them).
 * Exit codes: 0 done, 1 failed, 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "commands.h"
#include "config.h"
#include "event_source.h"
#include "event_source_internal.h"
#include "item_table.h"
#include "json.h"
#include "ptr_index.h"
#include "model.h"
#include "model_init.h"
#include "rng.h"
#include "train.h"
#include "use_encoder.h"

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: ievo train --out MODEL (--movielens DIR | --jsonl FILE | --synthetic USERS:EVENTS\n"
            "                  | --topic T -b BOOTSTRAP [-X prop=val]...) [options]\n"
            "Trains the model the worker runs (embeddings -> LSTM/GRU -> window attention -> u_t) with a\n"
            "scoring head over all items (and a value head when events carry values), leave-one-out:\n"
            "each user's last event is the test target, the second-last the validation target.\n"
            "data:\n"
            "  --movielens DIR       MovieLens-100K u.data (vocabulary: DIR/u.item)\n"
            "  --jsonl FILE          UserAction JSON lines\n"
            "  --synthetic U:E       the synthetic generator (--synth-seed N, default 42)\n"
            "  --topic T -b BS       a Kafka topic from the beginning up to its end offsets at start\n"
            "                        (-X input.format=confluent|avro, -X input.schema.id=N, -X prop=val)\n"
            "model (as `ievo model init`): --cell lstm|gru|lru (default gru) --item-dim --action-dim --hidden\n"
            "  --attn-dim --out-dim (64 each; action 8) --window N (16) --name NAME (ievo) --init-seed N\n"
            "  lru: --layers N (2) --state-dim N (--hidden) --ffn-dim N (2 x --hidden); --cell none: no recurrence\n"
            "  --attention window|tf (window) --blocks N (2) --heads N (2): transformer blocks over the window\n"
            "  --layer-dropout X (0.2): dropout on the LRU's and the blocks' residual branches\n"
            "training: --epochs N (200) --patience N (20) --batch N users (32) --bptt L (200) --lr X (2e-3)\n"
            "  --weight-decay X (0.01) --dropout X (0.2) --clip X (5) --value-weight X (1, 0 = no value head)\n"
            "  --loss full|sampled (full) --negatives N (2048) --tie 0|1 (score.item_emb = item_emb;\n"
            "  default 1 when --item-dim == --out-dim)\n"
            "  --ema DECAY (0 = off: validate and keep a moving average of the weights) --seed N (1)\n"
            "  --plateau N (4; 0 = off: lr *= --lr-decay X (0.5) after N epochs without a better validation)\n"
            "  --value-lr X (the value head's lr as a multiple of --lr, default 0.1) --value-wd X (0)\n"
            "  --value-refit N (refit the value head alone on the final u, <= 50 N steps; 50, 0 = off)\n"
            "  --value-user 0|1 (1: the value head adds the user's recency-weighted bias, kept in the state)\n"
            "  --mask-seen 0|1 (1, default: the training softmax leaves out items already in the user's inputs)\n"
            "  --init-bias 0|1 (1: start the score bias at log popularity, the value biases at item means)\n"
            "  --backend dnnl|scalar\n"
            "  --threads N (default: OMP_NUM_THREADS, else every core)\n"
            "text (docs/text.md): --text (item and event texts through USE-lite and a learned adaptor)\n"
            "  --text-only (no id embeddings: every item is its text) --items FILE ({\"item_id\",\"text\"} lines;\n"
            "  default with --movielens: u.item title + genres) --text-encoder DIR --text-cache DIR|none\n"
            "  --zero-oov 0|1 (1: the OOV rows stay zero, a new item is its text alone)\n"
            "  --cold-dropout P (0: each step treats a fraction P of the items as new: no id rows, the cold bias)\n"
            "  --untie-text 0|1 (with --tie: 1 = the scoring head's text adaptor is its own, not the input's)\n"
            "cold start: --holdout-items FRACTION --holdout-seed N (1): items removed from the vocabulary and\n"
            "  all their events from training; listed in the model's metadata for `ievo eval --cold`\n"
            "output: --out MODEL   --dump-forward FILE (u_t at every position: user_id, events, vector)\n");
}

/* ---- a Kafka topic as an event list ------------------------------------------------------ */

/* Reads topic from offset 0 (the log start) to the end offsets queried before reading. */
static int load_topic(const config *cfg, const char *topic, event_list *out, char *err, size_t errlen) {
    int rc = -1, nparts = -1;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t *hi = NULL;
    unsigned char *done = NULL;
    char kerr[512], gid[64];
    int64_t schema_id;
    codec_in_opts in = {WIRE_CONFLUENT, 1, 1 << 20};
    int f = wire_format_parse(config_get(cfg, "input.format", "confluent"));
    if (f < 0) return snprintf(err, errlen, "input.format: expected confluent or avro"), -1;
    in.format = (wire_format)f;
    if (config_get_int(cfg, "input.schema.id", 1, 0, INT32_MAX, &schema_id, err, errlen)) return -1;
    in.schema_id = (int32_t)schema_id;
    if (event_list_init(out)) return snprintf(err, errlen, "out of memory"), -1;
    snprintf(gid, sizeof gid, "ievo-train-%ld-%ld", (long)getpid(), (long)time(NULL));
    const char *defaults[] = {"client.id", "ievo-train", "group.id", gid, "enable.auto.commit", "false",
                              "enable.partition.eof", "false", "auto.offset.reset", "earliest", NULL, NULL};
    static const char *const ours[] = {"input.format", "input.schema.id", NULL};
    rd_kafka_conf_t *conf = config_kafka_conf(cfg, defaults, ours, NULL, err, errlen);
    if (!conf) goto done;
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr))) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create consumer: %s", kerr);
        goto done;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20 && nparts < 0; attempt++) {
        e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
            nparts = md->topics[0].partition_cnt;
        else if (!e)
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (md) rd_kafka_metadata_destroy(md), md = NULL;
        if (nparts < 0) usleep(250000);
    }
    rd_kafka_topic_destroy(rkt);
    if (nparts < 0) {
        snprintf(err, errlen, "no metadata for topic %s: %s", topic, rd_kafka_err2str(e));
        goto done;
    }
    hi = calloc((size_t)nparts, sizeof *hi);
    done = calloc((size_t)nparts, 1);
    parts = rd_kafka_topic_partition_list_new(nparts);
    int open_parts = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, h = 0;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &h, 10000))) {
            snprintf(err, errlen, "%s [%d]: cannot read the end offset: %s", topic, p, rd_kafka_err2str(e));
            goto done;
        }
        hi[p] = h;
        if (h > lo) rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING, open_parts++;
        else done[p] = 1;
    }
    fprintf(stderr, "ievo train: reading %s: %d partitions, %d with data, up to the end offsets now\n", topic, nparts,
            open_parts);
    if ((e = rd_kafka_assign(rk, parts))) {
        snprintf(err, errlen, "cannot assign %s: %s", topic, rd_kafka_err2str(e));
        goto done;
    }
    long bad = 0;
    while (open_parts > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (m->err) {
            snprintf(err, errlen, "%s [%d]: %s", topic, (int)m->partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            goto done;
        }
        int p = (int)m->partition;
        if (p >= 0 && p < nparts && !done[p] && m->offset < hi[p]) {
            user_action ua;
            char why[256];
            if (codec_decode_user_action(&in, m->payload, m->len, &ua, why, sizeof why) != CODEC_OK) {
                bad++; /* the worker would dead-letter it: it is no part of any history */
            } else {
                source_event *ev = event_list_push(out);
                if (!ev || !(ev->user_id = event_list_intern(out, ua.user_id, ua.user_id_len)) ||
                    !(ev->item_id = event_list_intern(out, ua.item_id, ua.item_id_len)) ||
                    !(ev->action = event_list_intern(out, ua.action, ua.action_len))) {
                    rd_kafka_message_destroy(m);
                    snprintf(err, errlen, "out of memory");
                    goto done;
                }
                ev->ts = ua.ts, ev->value = ua.value, ev->has_value = ua.has_value;
                if (ua.has_text && !memchr(ua.text, 0, ua.text_len) &&
                    !(ev->text = event_list_intern(out, ua.text, ua.text_len))) {
                    rd_kafka_message_destroy(m);
                    snprintf(err, errlen, "out of memory");
                    goto done;
                }
            }
            if (m->offset + 1 >= hi[p]) done[p] = 1, open_parts--;
        }
        rd_kafka_message_destroy(m);
    }
    if (bad) fprintf(stderr, "ievo train: %ld records of %s did not decode and were skipped\n", bad, topic);
    /* Partition order, then offsets, then a stable sort by time: per user (one partition) this is
     * the worker's order whenever the topic is in time order per user. */
    if (event_list_sort_stable(out)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
done:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free(hi);
    free(done);
    if (rc) event_list_free(out);
    return rc;
}

/* ---- ids -> indices ------------------------------------------------------------------------ */

/* Distinct strings of one field, first seen first (pointers into the list's arena). */
static int distinct_ids(const event_list *l, int item, const char ***out, int *n) {
    ptr_index m = {0};
    const char **v = malloc((l->n ? l->n : 1) * sizeof *v);
    if (!v) return -1;
    *n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *s = item ? l->ev[i].item_id : l->ev[i].action;
        int is_new = 0;
        if (ptr_index_get(&m, s, &is_new) < 0) return ptr_index_free(&m), free(v), -1;
        if (is_new) v[(*n)++] = s;
    }
    ptr_index_free(&m);
    *out = v;
    return 0;
}

/* Users in first-seen order; uid[i] = user index of event i; names[u] = its id. */
static int index_users(const event_list *l, int32_t *uid, const char ***names, int *n_users) {
    ptr_index m = {0};
    const char **nm = malloc((l->n ? l->n : 1) * sizeof *nm);
    if (!nm) return -1;
    for (size_t i = 0; i < l->n; i++) {
        int is_new = 0;
        int32_t v = ptr_index_get(&m, l->ev[i].user_id, &is_new);
        if (v < 0) return ptr_index_free(&m), free(nm), -1;
        if (is_new) nm[v] = l->ev[i].user_id;
        uid[i] = v;
    }
    *n_users = (int)m.n;
    ptr_index_free(&m);
    *names = nm;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ---- progress ------------------------------------------------------------------------------ */

static void fmt_dur(char *b, size_t n, double s) {
    if (s < 90) snprintf(b, n, "%.0fs", s);
    else if (s < 5400) snprintf(b, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(b, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

static void on_progress(const train_progress *p, void *user) {
    (void)user;
    char el[32], eta[32];
    fmt_dur(el, sizeof el, p->elapsed_s);
    fmt_dur(eta, sizeof eta, p->eta_s);
    fprintf(stderr,
            "epoch %3d/%d  loss %.4f  val HR@10 %.4f NDCG@10 %.4f HR@20 %.4f NDCG@20 %.4f", p->epoch, p->epochs, p->loss,
            p->val.hr10, p->val.ndcg10, p->val.hr20, p->val.ndcg20);
    if (p->val.n_value) fprintf(stderr, "  MAE %.4f RMSE %.4f (train g-MSE %.4f)", p->val.mae, p->val.rmse, p->value_mse);
    fprintf(stderr, "  | lr %.2g  %.0f ev/s  %.1fs/epoch  elapsed %s  left <= %s%s\n", p->lr, p->events_per_s, p->epoch_s, el, eta,
            p->improved ? "  *best" : "");
}

/* ---- the command --------------------------------------------------------------------------- */

static int write_dump(const char *path, const model *m, const train_data *d, const char *const *names, char *err,
                      size_t errlen) {
    const int D = m->cfg.out_dim;
    int64_t total = d->start[d->n_users];
    float *U = malloc((size_t)(total ? total : 1) * D * sizeof *U);
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    json_buf b = {0};
    int rc = -1;
    if (!U || !f) {
        snprintf(err, errlen, "%s: %s", path, !U ? "out of memory" : strerror(errno));
        goto done;
    }
    if (train_forward(m, d, NULL, 1, U, MODEL_BACKEND_DNNL, 64, 200, err, errlen)) goto done;
    for (int u = 0; u < d->n_users; u++)
        for (int64_t i = d->start[u]; i < d->start[u + 1]; i++) {
            b.len = 0;
            json_buf_append(&b, "{\"user_id\":", 11);
            json_buf_string(&b, names[u], strlen(names[u]));
            json_buf_printf(&b, ",\"events\":%lld,\"vector\":[", (long long)(i - d->start[u] + 1));
            for (int k = 0; k < D; k++) {
                if (k) json_buf_append(&b, ",", 1);
                json_buf_float(&b, U[(size_t)i * D + k]);
            }
            json_buf_append(&b, "]}\n", 3);
            if (b.failed || fwrite(b.data, 1, b.len, f) != b.len) {
                snprintf(err, errlen, "%s: write failed", path);
                goto done;
            }
        }
    rc = 0;
done:
    if (f && f != stdout && fclose(f) != 0 && rc == 0) rc = -1, snprintf(err, errlen, "%s: %s", path, strerror(errno));
    json_buf_free(&b);
    free(U);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *out = NULL, *ml = NULL, *jl = NULL, *syn = NULL, *topic = NULL, *dump = NULL, *name = "ievo";
    const char *items_path = NULL;
    int threads = 0, tie_set = 0, text = 0;
    double holdout = 0;
    unsigned long long holdout_seed = 1;
    char enc_dir[4096], cache_dir[4096];
    text_default_dirs(enc_dir, sizeof enc_dir, cache_dir, sizeof cache_dir);
    unsigned long long init_seed = 1;
    model_config mc;
    model_config_default(&mc);
    mc.cell = MODEL_CELL_GRU;
    train_config tc;
    train_config_default(&tc);
    synth_opts so;
    synth_opts_default(&so);
    config kcfg = {0};
    char err[1024] = "";
    static const struct { const char *flag, *key; } mflags[] = {
        {"--cell", "cell"}, {"--item-dim", "item_dim"}, {"--action-dim", "action_dim"}, {"--hidden", "hidden"},
        {"--attn-dim", "attn_dim"}, {"--out-dim", "out_dim"}, {"--window", "window"}, {"--layers", "layers"},
        {"--state-dim", "state_dim"}, {"--ffn-dim", "ffn_dim"}, {"--attention", "attention"}, {"--blocks", "blocks"},
        {"--heads", "heads"}};
    static const struct { const char *flag, *key; } tflags[] = {
        {"--epochs", "epochs"}, {"--patience", "patience"}, {"--batch", "batch_users"}, {"--bptt", "bptt"},
        {"--lr", "lr"}, {"--weight-decay", "weight_decay"}, {"--dropout", "dropout"}, {"--clip", "clip"},
        {"--value-weight", "value_weight"}, {"--loss", "loss"}, {"--negatives", "negatives"}, {"--seed", "seed"},
        {"--backend", "backend"}, {"--beta1", "beta1"}, {"--beta2", "beta2"}, {"--tie", "tie"}, {"--ema", "ema"},
        {"--init-bias", "init_bias"}, {"--plateau", "plateau"}, {"--lr-decay", "lr_decay"},
        {"--mask-seen", "mask_seen"}, {"--value-lr", "value_lr"}, {"--value-wd", "value_wd"},
        {"--value-refit", "value_refit"}, {"--zero-oov", "zero_oov"}, {"--cold-dropout", "cold_dropout"},
        {"--untie-text", "untie_text"}, {"--value-user", "value_user"}, {"--layer-dropout", "layer_dropout"}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            train_usage(stdout);
            config_free(&kcfg);
            return 0;
        }
        if (!strcmp(a, "--text") || !strcmp(a, "--text-only")) {
            text = 1;
            if (!strcmp(a, "--text-only")) tc.text_only = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ievo train: unknown option or missing value: %s\n", a);
            goto usage;
        }
        const char *v = argv[++i];
        int known = 1;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--movielens")) ml = v;
        else if (!strcmp(a, "--jsonl")) jl = v;
        else if (!strcmp(a, "--synthetic")) syn = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--dump-forward")) dump = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--synth-seed")) so.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--init-seed")) init_seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--items")) items_path = v;
        else if (!strcmp(a, "--text-encoder")) snprintf(enc_dir, sizeof enc_dir, "%s", v);
        else if (!strcmp(a, "--text-cache")) snprintf(cache_dir, sizeof cache_dir, "%s", v);
        else if (!strcmp(a, "--holdout-seed")) holdout_seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--holdout-items")) {
            char *end;
            holdout = strtod(v, &end);
            if (*end || !(holdout >= 0 && holdout < 1)) {
                fprintf(stderr, "ievo train: --holdout-items takes a fraction in [0, 1), got %s\n", v);
                goto usage;
            }
        }
        else if (!strcmp(a, "-b")) known = config_set(&kcfg, "bootstrap.servers", v) == 0;
        else if (!strcmp(a, "-X")) {
            if (config_set_kv(&kcfg, v, err, sizeof err)) {
                fprintf(stderr, "ievo train: -X %s: %s\n", v, err);
                goto usage;
            }
        } else {
            known = 0;
            for (size_t k = 0; k < sizeof mflags / sizeof mflags[0] && !known; k++)
                if (!strcmp(a, mflags[k].flag)) {
                    known = 1;
                    if (model_config_set(&mc, mflags[k].key, v, err, sizeof err)) {
                        fprintf(stderr, "ievo train: %s: %s\n", a, err);
                        goto usage;
                    }
                }
            for (size_t k = 0; k < sizeof tflags / sizeof tflags[0] && !known; k++)
                if (!strcmp(a, tflags[k].flag)) {
                    known = 1;
                    tie_set |= !strcmp(a, "--tie");
                    if (train_config_set(&tc, tflags[k].key, v, err, sizeof err)) {
                        fprintf(stderr, "ievo train: %s: %s\n", a, err);
                        goto usage;
                    }
                }
        }
        if (!known) {
            fprintf(stderr, "ievo train: unknown option %s\n", a);
            goto usage;
        }
    }
    if (!out || (!!ml + !!jl + !!syn + !!topic) != 1) {
        fprintf(stderr, "ievo train: give --out and exactly one of --movielens, --jsonl, --synthetic, --topic\n");
        goto usage;
    }
    if (topic && !config_get(&kcfg, "bootstrap.servers", NULL)) {
        fprintf(stderr, "ievo train: --topic needs -b BOOTSTRAP\n");
        goto usage;
    }
    mc.n_items = mc.n_actions = 1;
    if (text) mc.text_dim = USE_DIM;
    if (items_path && !text) {
        fprintf(stderr, "ievo train: --items needs --text\n");
        goto usage;
    }
    if (!tie_set) tc.tie = mc.item_dim == mc.out_dim; /* tied by default: measured better on ML-100K */
    if (model_config_check(&mc, err, sizeof err) || train_config_check(&tc, err, sizeof err)) {
        fprintf(stderr, "ievo train: %s\n", err);
        goto usage;
    }
    if (syn && synth_opts_parse(&so, syn, err, sizeof err)) {
        fprintf(stderr, "ievo train: %s\n", err);
        goto usage;
    }
    if (threads > 0) model_runtime_init(threads);

    int rc = 1, n_users = 0, n_item_ids = 0, n_act_ids = 0, heads = MODEL_HEAD_SCORE, n_vocab = 0, n_held = 0;
    const char **vocab_ids = NULL, **held_ids = NULL;
    uint64_t *held_keys = NULL;
    item_catalog cat = {0};
    item_table *items = NULL;
    text_encode_stats tstats = {0};
    float *item_text = NULL, *event_text = NULL;
    uint8_t *item_has_text = NULL;
    long n_item_text = 0, n_event_text = 0;
    event_list ev = {0};
    char **own_items = NULL;
    const char **item_ids = NULL, **act_ids = NULL, **user_names = NULL;
    int32_t *uid = NULL;
    model_event *mev = NULL;
    train_data data = {0};
    model *m = NULL;
    char *cfg_json = NULL;
    json_buf meta = {0};
    /* 1. events */
    if (ml && events_load_movielens(ml, &ev, err, sizeof err)) goto done;
    if (syn && events_generate_synthetic(&so, &ev, err, sizeof err)) goto done;
    if (jl && events_load_jsonl_path(jl, &ev, err, sizeof err)) goto done;
    if (topic && load_topic(&kcfg, topic, &ev, err, sizeof err)) goto done;
    if (ev.n == 0) {
        snprintf(err, sizeof err, "no events");
        goto done;
    }
    /* 2. vocabularies */
    if (ml) {
        if (movielens_item_ids(ml, &own_items, &n_item_ids, err, sizeof err)) goto done;
        item_ids = (const char **)own_items;
    } else if (syn) {
        if (synth_item_ids(&so, &own_items, &n_item_ids)) {
            snprintf(err, sizeof err, "the synthetic generator gave no item ids");
            goto done;
        }
        item_ids = (const char **)own_items;
    } else if (distinct_ids(&ev, 1, &item_ids, &n_item_ids)) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    if (distinct_ids(&ev, 0, &act_ids, &n_act_ids)) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    /* cold start: a seeded fraction of the items leaves the vocabulary, and all their events the data */
    vocab_ids = malloc((size_t)(n_item_ids ? n_item_ids : 1) * sizeof *vocab_ids);
    held_ids = malloc((size_t)(n_item_ids ? n_item_ids : 1) * sizeof *held_ids);
    held_keys = malloc((size_t)(n_item_ids ? n_item_ids : 1) * sizeof *held_keys);
    if (!vocab_ids || !held_ids || !held_keys) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    {
        int n_hold = (int)(holdout * n_item_ids + 0.5), *perm = malloc((size_t)(n_item_ids ? n_item_ids : 1) * sizeof *perm);
        unsigned char *is_held = calloc((size_t)(n_item_ids ? n_item_ids : 1), 1);
        if (!perm || !is_held) {
            free(perm), free(is_held);
            snprintf(err, sizeof err, "out of memory");
            goto done;
        }
        rng_t hr;
        rng_seed(&hr, holdout_seed ^ 0x686f6c646f7574ull); /* "holdout" */
        for (int i = 0; i < n_item_ids; i++) perm[i] = i;
        for (int i = n_item_ids - 1; i > 0; i--) {
            int j = (int)(rng_uniform(&hr) * (i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        for (int k = 0; k < n_hold; k++) is_held[perm[k]] = 1;
        for (int i = 0; i < n_item_ids; i++) {
            if (is_held[i]) held_ids[n_held] = item_ids[i], held_keys[n_held++] = model_item_key(item_ids[i], strlen(item_ids[i]));
            else vocab_ids[n_vocab++] = item_ids[i];
        }
        free(perm), free(is_held);
        qsort(held_keys, (size_t)n_held, sizeof *held_keys, cmp_u64);
    }
    for (size_t i = 0; i < ev.n; i++) heads |= ev.ev[i].has_value && tc.value_weight > 0 ? MODEL_HEAD_VALUE : 0;
    if (model_init_random(&m, &mc, name, vocab_ids, n_vocab, act_ids, n_act_ids, init_seed, err, sizeof err) ||
        model_add_heads(m, heads, init_seed, err, sizeof err))
        goto done;
    /* text: the catalogue's vectors by vocabulary index, the events' own texts */
    if (text) {
        if (items_path ? item_catalog_jsonl(items_path, &cat, err, sizeof err)
                       : ml ? item_catalog_movielens(ml, &cat, err, sizeof err) : 0)
            goto done;
        if (item_table_from_catalog(&items, &cat, enc_dir, cache_dir, &tstats, err, sizeof err)) goto done;
        const int NI = m->cfg.n_items;
        item_text = calloc((size_t)NI * USE_DIM, sizeof *item_text);
        item_has_text = calloc((size_t)NI, 1);
        if (!item_text || !item_has_text) {
            snprintf(err, sizeof err, "out of memory");
            goto done;
        }
        for (int i = 1; i < NI; i++) {
            const char *id = model_item_id(m, i);
            const float *v = item_table_get(items, model_item_key(id, strlen(id)));
            if (v) memcpy(item_text + (size_t)i * USE_DIM, v, USE_DIM * sizeof(float)), item_has_text[i] = 1, n_item_text++;
        }
        const char **texts = malloc((ev.n ? ev.n : 1) * sizeof *texts);
        if (!texts) {
            snprintf(err, sizeof err, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < ev.n; i++)
            if (ev.ev[i].text) texts[n_event_text++] = ev.ev[i].text;
        event_text = malloc((size_t)(n_event_text ? n_event_text : 1) * USE_DIM * sizeof *event_text);
        int trc = !event_text ? (snprintf(err, sizeof err, "out of memory"), -1)
                              : text_encode_all(enc_dir, cache_dir, texts, (size_t)n_event_text, event_text, &tstats, err,
                                                sizeof err);
        free(texts);
        if (trc) goto done;
        fprintf(stderr, "ievo train: text: %ld of %d vocabulary items have a catalogue text (%zu in the catalogue), %ld events "
                "their own; USE-lite: %ld texts encoded in %.2f s (+%.2f s loading), %ld from the cache\n",
                n_item_text, NI - 1, cat.n, n_event_text, tstats.encoded, tstats.encode_s, tstats.load_s, tstats.from_cache);
    }
    /* 3. sequences (without the held-out items' events) */
    uid = malloc(ev.n * sizeof *uid);
    mev = malloc(ev.n * sizeof *mev);
    if (!uid || !mev || index_users(&ev, uid, &user_names, &n_users)) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    long oov = 0, dropped = 0;
    size_t nk = 0;
    for (size_t i = 0, et = 0; i < ev.n; i++) {
        const source_event *e = &ev.ev[i];
        const float *etext = e->text ? event_text + (et++) * USE_DIM : NULL;
        uint64_t key = model_item_key(e->item_id, strlen(e->item_id));
        if (n_held && bsearch(&key, held_keys, (size_t)n_held, sizeof *held_keys, cmp_u64)) {
            dropped++;
            continue;
        }
        uid[nk] = uid[i];
        mev[nk] = (model_event){model_item_index(m, e->item_id, strlen(e->item_id)),
                                model_action_index(m, e->action, strlen(e->action)), e->ts, e->value, e->has_value,
                                text ? key : 0, text ? etext : NULL};
        oov += mev[nk].item == 0;
        nk++;
    }
    if (train_data_group(&data, n_users, nk, uid, mev, NULL, err, sizeof err)) goto done;
    data.item_text = item_text;
    data.item_has_text = item_has_text;
    fprintf(stderr,
            "ievo train: %zu events, %d users, %d items + <oov> (%ld events with an unknown item), %d actions; "
            "%s H=%d E=%d D=%d W=%d%s, %zu parameters\n",
            nk, n_users, n_vocab, oov, n_act_ids, model_cell_name(mc.cell), mc.hidden,
            mc.item_dim, mc.out_dim, mc.window, text ? (tc.text_only ? ", text only" : ", text") : "", m->n_params);
    if (n_held)
        fprintf(stderr, "ievo train: held out %d items (fraction %g, seed %llu) and their %ld events\n", n_held, holdout,
                holdout_seed, dropped);
    /* 4. train */
    train_result res;
    if (train_fit(m, &data, &tc, on_progress, NULL, &res, err, sizeof err)) goto done;
    fprintf(stderr,
            "ievo train: best epoch %d of %d: val HR@10 %.4f NDCG@10 %.4f HR@20 %.4f NDCG@20 %.4f (%ld users); "
            "%.1f s to the best epoch, %.1f s in all, %.0f training events/s, %d threads\n",
            res.best_epoch, res.epochs_run, res.best_val.hr10, res.best_val.ndcg10, res.best_val.hr20,
            res.best_val.ndcg20, res.best_val.n, res.time_to_best_s, res.total_s, res.events_per_s, res.threads);
    if (res.value_refit_epoch && model_heads(m) & MODEL_HEAD_VALUE_USER)
        fprintf(stderr, "ievo train: value head: %s kept, with the user bias (decay %g, shrinkage %g): validation MAE "
                "%.4f RMSE %.4f (%ld events)\n", res.value_refit_epoch == 2 ? "the refit on the final u_t" : "the joint one",
                res.value_user[0], res.value_user[1], res.best_val.mae, res.best_val.rmse, res.best_val.n_value);
    else if (res.value_refit_epoch)
        fprintf(stderr, "ievo train: value head: %s kept, no user bias: validation MAE %.4f RMSE %.4f (%ld events)\n",
                res.value_refit_epoch == 2 ? "the refit on the final u_t" : "the joint one", res.best_val.mae,
                res.best_val.rmse, res.best_val.n_value);
    /* 5. save, with what produced it */
    cfg_json = train_config_json(&tc);
    const char *src = ml ? "movielens" : syn ? "synthetic" : jl ? "jsonl" : "topic";
    const char *src_arg = ml ? ml : syn ? syn : jl ? jl : topic;
    json_buf_printf(&meta, "{\"created_by\":\"ievo train\",\"data\":{\"source\":\"%s\",\"path\":", src);
    json_buf_string(&meta, src_arg, strlen(src_arg));
    json_buf_printf(&meta, ",\"events\":%zu,\"users\":%d,\"items\":%d,\"actions\":%d}", ev.n, n_users, n_vocab, n_act_ids);
    if (text) {
        json_buf_printf(&meta, ",\"text\":{\"encoder\":\"use-lite\",\"dim\":%d,\"catalogue\":", USE_DIM);
        const char *csrc = items_path ? items_path : ml ? ml : NULL;
        if (csrc) json_buf_string(&meta, csrc, strlen(csrc));
        else json_buf_append(&meta, "null", 4);
        json_buf_printf(&meta, ",\"catalogue_format\":\"%s\",\"catalogue_items\":%zu,\"vocab_items_with_text\":%ld,"
                        "\"event_texts\":%ld,\"text_only\":%d,\"zero_oov\":%d,\"encoded\":%ld,\"from_cache\":%ld,"
                        "\"encode_s\":%.3f,\"encoder_load_s\":%.3f,\"tokens\":%ld}",
                        items_path ? "jsonl" : ml ? "movielens" : "none", cat.n, n_item_text, n_event_text, tc.text_only,
                        tc.zero_oov, tstats.encoded, tstats.from_cache, tstats.encode_s, tstats.load_s, tstats.tokens);
    }
    if (n_held) {
        json_buf_printf(&meta, ",\"holdout\":{\"fraction\":%.9g,\"seed\":%llu,\"events_dropped\":%ld,\"items\":[", holdout,
                        holdout_seed, dropped);
        for (int i = 0; i < n_held; i++) {
            if (i) json_buf_append(&meta, ",", 1);
            json_buf_string(&meta, held_ids[i], strlen(held_ids[i]));
        }
        json_buf_append(&meta, "]}", 2);
    }
    json_buf_printf(&meta, ",\"train\":%s,\"init_seed\":%llu,\"threads\":%d", cfg_json ? cfg_json : "null", init_seed,
                    res.threads);
    json_buf_printf(&meta, ",\"protocol\":\"leave-one-out: last event test, second-last validation; all items "
                           "ranked, input history filtered\"");
    json_buf_printf(&meta,
                    ",\"validation\":{\"epoch\":%d,\"users\":%ld,\"hr10\":%.6f,\"ndcg10\":%.6f,\"hr20\":%.6f,"
                    "\"ndcg20\":%.6f",
                    res.best_epoch, res.best_val.n, res.best_val.hr10, res.best_val.ndcg10, res.best_val.hr20,
                    res.best_val.ndcg20);
    if (res.best_val.n_value)
        json_buf_printf(&meta, ",\"value_events\":%ld,\"mae\":%.6f,\"rmse\":%.6f", res.best_val.n_value,
                        res.best_val.mae, res.best_val.rmse);
    if (res.value_refit_epoch) json_buf_printf(&meta, ",\"value_refit\":%s", res.value_refit_epoch == 2 ? "true" : "false");
    if (model_heads(m) & MODEL_HEAD_VALUE_USER)
        json_buf_printf(&meta, ",\"value_user\":[%g,%g]", res.value_user[0], res.value_user[1]);
    json_buf_printf(&meta, "},\"epochs_run\":%d,\"time_to_best_s\":%.3f,\"total_s\":%.3f,\"events_per_s\":%.1f}",
                    res.epochs_run, res.time_to_best_s, res.total_s, res.events_per_s);
    if (meta.failed) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    if (model_set_meta(m, meta.data, err, sizeof err) || model_save(m, out, err, sizeof err))
        goto done;
    fprintf(stderr, "ievo train: wrote %s (model_id %s)\n", out, m->model_id);
    if (dump) {
        if (write_dump(dump, m, &data, user_names, err, sizeof err)) goto done;
        fprintf(stderr, "ievo train: wrote the trainer's forward at every position to %s\n", dump);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "ievo train: %s\n", err);
    json_buf_free(&meta);
    free(cfg_json);
    model_free(m);
    train_data_free(&data);
    free(uid);
    free(mev);
    free(user_names);
    if (own_items) synth_item_ids_free(own_items, n_item_ids);
    else free(item_ids);
    free(act_ids);
    free(vocab_ids), free(held_ids), free(held_keys);
    item_table_free(items);
    item_catalog_free(&cat);
    free(item_text), free(item_has_text), free(event_text);
    event_list_free(&ev);
    config_free(&kcfg);
    return rc;
usage:
    config_free(&kcfg);
    fprintf(stderr, "(ievo train --help lists the options)\n");
    return 2;
}
