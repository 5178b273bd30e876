/* cmd_demo: `ievo demo`, the whole pipeline on one machine in a minute.
 *
 * It runs the same commands a user would, as child processes of this binary, and prints each
 * one first: a local broker, a model, events (ML-100K when --movielens is given, else the
 * synthetic generator), the worker until the input is drained, a consumer of the output topic.
 * Then it shows what happened: events processed, events/s, CPU per event, and how a few users'
 * interest vectors drifted over time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "event_source.h"
#include "json_text.h"
#include "settings.h"
#include "str_index.h"

extern char **environ;

enum { OPT_DIR = CLI_OPT_ID_FIRST_FREE, OPT_PARTITIONS, OPT_EPOCHS, OPT_NO_TRAIN };

static const cli_option OPTS[] = {
    {"movielens", CLI_OPT_ID_MOVIELENS, "DIR", "MovieLens-100K's events instead of the synthetic generator's", NULL},
    {"synthetic", CLI_OPT_ID_SYNTHETIC, "USERS:EVENTS", "the synthetic generator's size (default 2000:100000)", NULL},
    {"dir", OPT_DIR, "WORKDIR", "where everything goes, emptied first (default ./ievo-demo)", NULL},
    {"partitions", OPT_PARTITIONS, "N", "input partitions of the local broker (default 8)", NULL},
    {"epochs", OPT_EPOCHS, "N", "training epochs (default 60 on MovieLens, 25 synthetic)", NULL},
    {"no-train", OPT_NO_TRAIN, NULL, "stream with random weights (ievo model init) instead of training", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "demo",
    .synopsis = "[--movielens DIR | --synthetic USERS:EVENTS] [--dir WORKDIR] [--partitions N] [--epochs N | --no-train]",
    .about = "Trains a model on the events (ievo train, a minute or two), measures it (ievo eval), then\n"
             "runs broker, produce, worker --until-eof and consume, and summarises what happened.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_OTHER,
};

typedef struct {
    const char *ml, *syn, *dir, *epochs;
    int partitions, train;
} demo_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    demo_opts *o = ctx;
    int64_t x = 0;
    switch (key) {
    case CLI_OPT_ID_MOVIELENS: o->ml = value; break;
    case CLI_OPT_ID_SYNTHETIC: o->syn = value; break;
    case OPT_DIR: o->dir = value; break;
    case OPT_EPOCHS: o->epochs = value; break;
    case OPT_NO_TRAIN: o->train = 0; break;
    case OPT_PARTITIONS:
        if (cli_int(value, 1, 1000, &x, err, errlen)) return -1;
        o->partitions = (int)x;
        break;
    }
    return 0;
}

/* ---- child processes ------------------------------------------------------------------------ */

static void print_cmd(char *const *argv) {
    fprintf(stderr, "\n$ ievo");
    for (int i = 1; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
}

/* Starts this binary with argv (argv[0] ignored); stdout to out_path when given. */
static pid_t spawn_self(char *const *argv, const char *out_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path) posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "ievo demo: cannot start a child process: %s\n", strerror(rc));
        return -1;
    }
    return pid;
}

static int run_self(char *const *argv, const char *out_path) {
    print_cmd(argv);
    pid_t pid = spawn_self(argv, out_path);
    if (pid < 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    fprintf(stderr, "ievo demo: `ievo %s` failed (status %d)\n", argv[1], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return -1;
}

/* ---- the summary ------------------------------------------------------------------------ */

typedef struct {
    const char *id;  /* the index's copy */
    int n, cap;
    float *drift;    /* by events index - 1 */
    int last_event;  /* the latest output's events count, and its top items */
    int n_top;
    char top[5][64];
} user_trace;

/* The users of vectors.jsonl: users[i] is index i of ids. */
typedef struct {
    str_index ids;
    user_trace *users;
    int n, cap;
    long outputs;
} trace_set;

static user_trace *find_user(trace_set *t, const char *id, size_t len) {
    int32_t i = str_index_get(&t->ids, id, len, 1);
    if (i < 0) return NULL;
    if (i < t->n) return &t->users[i];
    if (t->n == t->cap) {
        int nc = t->cap ? t->cap * 2 : 256;
        user_trace *nu = realloc(t->users, (size_t)nc * sizeof *nu);
        if (!nu) return NULL;
        t->users = nu;
        t->cap = nc;
    }
    user_trace *u = &t->users[t->n++];
    memset(u, 0, sizeof *u);
    u->id = str_index_key(&t->ids, i);
    return u;
}

static void trace_set_free(trace_set *t) {
    for (int i = 0; i < t->n; i++) free(t->users[i].drift);
    free(t->users);
    str_index_free(&t->ids);
}

/* One output line: the user's drift at its event number, and its latest top items. */
static void trace_line(trace_set *t, json_t *v) {
    const char *id;
    size_t len;
    json_int_t ev;
    double drift;
    json_t *top = NULL;
    if (json_unpack(v, "{s:s%,s:I,s:F,s?o}", "user_id", &id, &len, "events", &ev, "drift", &drift, "top_items", &top) ||
        ev < 1)
        return;
    user_trace *u = find_user(t, id, len);
    if (u && json_is_array(top) && ev > u->last_event) {
        u->last_event = (int)ev;
        u->n_top = 0;
        for (size_t k = 0; k < json_array_size(top) && k < 5; k++) {
            const json_t *item = json_object_get(json_array_get(top, k), "item_id");
            if (json_is_string(item)) snprintf(u->top[u->n_top++], sizeof u->top[0], "%s", json_string_value(item));
        }
    }
    if (u && ev <= 100000) {
        if (ev > u->cap) {
            int nc = u->cap ? u->cap : 64;
            while (nc < ev) nc *= 2;
            float *nd = realloc(u->drift, (size_t)nc * sizeof *nd);
            if (nd) {
                memset(nd + u->cap, 0, (size_t)(nc - u->cap) * sizeof *nd);
                u->drift = nd;
                u->cap = nc;
            }
        }
        if (ev <= u->cap) {
            u->drift[ev - 1] = (float)drift;
            if (ev > u->n) u->n = (int)ev;
        }
    }
    t->outputs++;
}

static int read_traces(const char *path, trace_set *t) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t ln;
    while ((ln = getline(&line, &cap, f)) > 0) {
        json_t *v = json_loadb(line, (size_t)ln, 0, NULL);
        if (v) trace_line(t, v);
        json_decref(v);
    }
    free(line);
    fclose(f);
    return 0;
}

/* One column per event, scaled to the largest drift shown. */
static void sparkline(const float *v, int n) {
    static const char *blocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    float mx = 1e-12f;
    for (int i = 0; i < n; i++) if (v[i] > mx) mx = v[i];
    for (int i = 0; i < n; i++) {
        int k = (int)(v[i] / mx * 7.999f);
        fputs(blocks[k < 0 ? 0 : k > 7 ? 7 : k], stderr);
    }
}

/* Synthetic ground truth: for one user, which of its events switched interest topic. */
static void mark_switches(const char *truth_path, const char *user, int first, int n, int indent) {
    FILE *f = fopen(truth_path, "r");
    if (!f) return;
    char *marks = malloc((size_t)n + 1), *line = NULL;
    size_t cap = 0;
    ssize_t ln;
    if (!marks) { fclose(f); return; }
    memset(marks, ' ', (size_t)n);
    marks[n] = 0;
    while ((ln = getline(&line, &cap, f)) > 0) {
        if (!strstr(line, user)) continue;
        json_t *v = json_loadb(line, (size_t)ln, 0, NULL);
        const char *id;
        json_int_t ev;
        int switched = 0;
        if (v && !json_unpack(v, "{s:s,s:I,s?b}", "user_id", &id, "events", &ev, "switched", &switched) &&
            !strcmp(id, user) && switched && ev - 1 >= first && ev - 1 < first + n)
            marks[ev - 1 - first] = '^';
        json_decref(v);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "%*s%s  (^: the generator switched this user's topic)\n", indent, "", marks);
    free(marks);
}

/* A JSON file as an object; NULL when it cannot be read or parsed. */
static json_t *load_json(const char *path) { return json_load_file(path, 0, NULL); }

/* What `ievo eval` measured before streaming: the learned model against popularity. */
static void print_quality(const char *eval_path) {
    if (!eval_path) {
        fprintf(stderr, "model                 random weights (--no-train): the vectors mean nothing yet\n");
        return;
    }
    json_t *e = load_json(eval_path);
    double mh, mn, ph, pn, mm, sm;
    if (e && !json_unpack(e, "{s:{s:{s:F,s:F},s:{s:F,s:F}}}", "test", "model", "hr10", &mh, "ndcg10", &mn, "popularity",
                          "hr10", &ph, "ndcg10", &pn))
        fprintf(stderr, "learned model         leave-one-out test, all items ranked: HR@10 %.4f NDCG@10 %.4f "
                        "(popularity: %.4f / %.4f)\n", mh, mn, ph, pn);
    if (e && !json_unpack(e, "{s:{s:F,s:F}}", "evolution", "model_median_events", &mm, "static_median_events", &sm))
        fprintf(stderr, "interest switches     the model's top topic follows a switch after %.0f events (median); "
                        "a static profile after %s%.0f\n", mm, sm >= 11 ? "more than " : "", sm >= 11 ? 10.0 : sm);
    json_decref(e);
}

/* An item's title from the catalogue (the id itself when it has none). */
static const char *item_title(const movielens_items *cat, const char *id) {
    for (size_t i = 0; cat && i < cat->n; i++)
        if (!strcmp(cat->items[i].id, id)) return cat->items[i].title;
    return id;
}

/* The user with the most events still to show (its n made negative once shown), or NULL. */
static user_trace *next_active(trace_set *t) {
    user_trace *best = NULL;
    for (int i = 0; i < t->n; i++)
        if (t->users[i].n > 0 && (!best || t->users[i].n > best->n)) best = &t->users[i];
    return best;
}

/* The three most active users: drift (1 - cosine to the previous vector), their last events. */
static void print_users(trace_set *t, const char *truth_path, const movielens_items *cat) {
    fprintf(stderr, "\ndrift = 1 - cos(u_t, u_t-1) over each user's last events (scaled per user):\n");
    user_trace *u;
    for (int k = 0; k < 3 && (u = next_active(t)); k++) {
        double mean = 0, mx = 0;
        for (int i = 1; i < u->n; i++) {
            mean += u->drift[i];
            if (u->drift[i] > mx) mx = u->drift[i];
        }
        mean = u->n > 1 ? mean / (u->n - 1) : 0;
        int shown = u->n < 60 ? u->n : 60, first = u->n - shown;
        char head[160];
        int indent = snprintf(head, sizeof head, "  %-10s %5d events, drift mean %.4f max %.4f  ", u->id, u->n, mean, mx);
        fputs(head, stderr);
        sparkline(u->drift + first, shown);
        fprintf(stderr, "\n");
        if (truth_path) mark_switches(truth_path, u->id, first, shown, indent);
        if (u->n_top) {
            fprintf(stderr, "%*snow recommended:", indent, "");
            for (int j = 0; j < u->n_top; j++) fprintf(stderr, "%s %s", j ? "," : "", item_title(cat, u->top[j]));
            fprintf(stderr, "\n");
        }
        u->n = -u->n;   /* exclude from the next pick */
    }
}

static int summarise(const char *dir, const char *truth_path, const char *eval_path, const char *ml) {
    char path[1024];
    snprintf(path, sizeof path, "%s/worker-stats.json", dir);
    json_t *stats = load_json(path);
    json_int_t applied = 0, dead = 0;
    double eps = 0, cpu_us = 0, active = 0;
    if (!stats || json_unpack(stats, "{s:I,s:I,s:F,s:F,s:F}", "applied", &applied, "dead_lettered", &dead, "events_per_s",
                              &eps, "cpu_us_per_event", &cpu_us, "active_s", &active)) {
        fprintf(stderr, "ievo demo: no worker stats in %s\n", path);
        json_decref(stats);
        return -1;
    }
    json_decref(stats);
    trace_set t = {0};
    snprintf(path, sizeof path, "%s/vectors.jsonl", dir);
    if (read_traces(path, &t)) {
        fprintf(stderr, "ievo demo: cannot read %s\n", path);
        return -1;
    }
    char err[256];
    movielens_items cat;
    int have_cat = ml && movielens_items_load(ml, &cat, err, sizeof err) == 0;
    fprintf(stderr, "\n================ what happened ================\n");
    fprintf(stderr, "events applied        %lld (dead-lettered: %lld)\n", (long long)applied, (long long)dead);
    fprintf(stderr, "interest vectors out  %ld, for %d users\n", t.outputs, t.n);
    fprintf(stderr, "worker throughput     %.0f events/s over %.2f s, %.2f µs CPU per event (worker process)\n",
            eps, active, cpu_us);
    print_quality(eval_path);
    print_users(&t, truth_path, have_cat ? &cat : NULL);
    if (have_cat) movielens_items_free(&cat);
    trace_set_free(&t);
    fprintf(stderr, "\nFiles: %s/{vectors.jsonl,worker-stats.json,model.safetensors,state/}\n", dir);
    return 0;
}

/* ---- the run ---------------------------------------------------------------------------- */

static int wait_for_file(const char *path, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0) return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* The demo's files, all in the work dir. */
typedef struct {
    char bs_file[1024], model[1024], state[1024], stats[1024], vectors[1024], eval[1024], truth[1024], broker_log[1024];
    char bs[512];
} demo_paths;

/* The local broker; its bootstrap servers in p->bs. Returns its pid, or -1. */
static pid_t demo_broker(const demo_opts *o, demo_paths *p) {
    char parts[16], out_topic[64];
    snprintf(parts, sizeof parts, "%d", o->partitions);
    /* The local broker keeps ~5 MiB per partition: give the bulky output topic more of them. */
    snprintf(out_topic, sizeof out_topic, "interest-vectors:%d", 4 * o->partitions);
    char *broker[] = {"ievo", "broker", "--partitions", parts, "--topic", "user-actions", "--topic", "state-changelog",
                      "--topic", out_topic, "--topic", "user-actions.dlq", "--bootstrap-file", p->bs_file, NULL};
    print_cmd(broker);
    pid_t pid = spawn_self(broker, p->broker_log);
    FILE *bf = NULL;
    if (pid >= 0 && (wait_for_file(p->bs_file, 15000) || !(bf = fopen(p->bs_file, "r")) || !fgets(p->bs, sizeof p->bs, bf))) {
        fprintf(stderr, "ievo demo: the broker did not start\n");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    if (bf) fclose(bf);
    p->bs[strcspn(p->bs, "\r\n")] = 0;
    return pid;
}

/* Learn the model from the history first (bounded: a minute or two on two cores) and measure
 * it the field's way; or, with --no-train, a model of random weights. */
static int demo_model(const demo_opts *o, demo_paths *p) {
    char *src_flag = o->ml ? "--movielens" : "--synthetic", *src = (char *)(o->ml ? o->ml : o->syn);
    char *epochs = (char *)(o->epochs ? o->epochs : o->ml ? "60" : "25");
    char *train[] = {"ievo", "train", "--out", p->model, src_flag, src, "--epochs", epochs, "--patience", "10",
                     "--threads", "2", NULL};
    char *eval[] = {"ievo", "eval", "--model", p->model, src_flag, src, "--json", p->eval, o->ml ? NULL : "--evolution",
                    NULL};
    char *init_ml[] = {"ievo", "model", "init", "--out", p->model, "--vocab-movielens", src, NULL};
    char *init_syn[] = {"ievo", "model", "init", "--out", p->model, "--vocab-synthetic", NULL};
    if (!o->train) return run_self(o->ml ? init_ml : init_syn, NULL);
    return run_self(train, NULL) || run_self(eval, NULL) ? -1 : 0;
}

/* Events in, the worker until they are drained, the vectors out. */
static int demo_stream(const demo_opts *o, demo_paths *p) {
    char *src_flag = o->ml ? "--movielens" : "--synthetic", *src = (char *)(o->ml ? o->ml : o->syn);
    char *produce[] = {"ievo", "produce", "-b", p->bs, "-t", "user-actions", src_flag, src,
                       o->ml ? NULL : "--truth", p->truth, NULL};
    char x_state[1100], x_model[1100], x_stats[1100];
    snprintf(x_state, sizeof x_state, "state.dir=%s", p->state);
    snprintf(x_model, sizeof x_model, "model.path=%s", p->model);
    snprintf(x_stats, sizeof x_stats, "stats.file=%s", p->stats);
    char *worker[] = {"ievo", "worker", "-b", p->bs, "-X", "group.id=ievo-demo", "-X", x_state, "-X", x_model,
                      "-X", x_stats, "-X", "changelog.topic=state-changelog", "-X", o->train ? "output.top.k=5" : "output.top.k=0",
                      "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
                      "--until-eof", NULL};
    char *consume[] = {"ievo", "consume", "-b", p->bs, "-t", "interest-vectors", "--from-beginning", "--until-eof", NULL};
    return run_self(produce, NULL) || run_self(worker, NULL) || run_self(consume, p->vectors) ? -1 : 0;
}

int cmd_demo(int argc, char **argv) {
    demo_opts o = {.syn = "2000:100000", .dir = "ievo-demo", .partitions = 8, .train = 1};
    cli_args a;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    cli_args_free(&a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", o.dir, o.dir);
    if (strchr(o.dir, '\'') || system(cmd) != 0) {
        fprintf(stderr, "ievo demo: cannot prepare %s\n", o.dir);
        return CLI_FAILED;
    }
    demo_paths p = {0};
    snprintf(p.bs_file, sizeof p.bs_file, "%s/bootstrap", o.dir);
    snprintf(p.model, sizeof p.model, "%s/model.safetensors", o.dir);
    snprintf(p.state, sizeof p.state, "%s/state", o.dir);
    snprintf(p.stats, sizeof p.stats, "%s/worker-stats.json", o.dir);
    snprintf(p.vectors, sizeof p.vectors, "%s/vectors.jsonl", o.dir);
    snprintf(p.eval, sizeof p.eval, "%s/eval.json", o.dir);
    snprintf(p.truth, sizeof p.truth, "%s/truth.jsonl", o.dir);
    snprintf(p.broker_log, sizeof p.broker_log, "%s/broker.out", o.dir);
    fprintf(stderr, "ievo demo: %s events, work dir %s\n", o.ml ? "MovieLens" : "synthetic", o.dir);
    pid_t bpid = demo_broker(&o, &p);
    if (bpid < 0) return CLI_FAILED;
    rc = demo_model(&o, &p) || demo_stream(&o, &p) ||
                 summarise(o.dir, o.ml ? NULL : p.truth, o.train ? p.eval : NULL, o.ml)
             ? CLI_FAILED
             : CLI_OK;
    kill(bpid, SIGTERM);
    int st;
    waitpid(bpid, &st, 0);
    return rc;
}
