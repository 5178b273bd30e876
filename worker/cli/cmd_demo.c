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
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "json.h"

extern char **environ;

static void usage(FILE *f) {
    fprintf(f, "usage: ievo demo [--movielens DIR | --synthetic USERS:EVENTS] [--dir WORKDIR] [--partitions N]\n"
               "                 [--epochs N | --no-train]\n"
               "Trains a model on the events (ievo train, a minute or two), measures it (ievo eval), then\n"
               "runs broker, produce, worker --until-eof and consume, and summarises what happened.\n"
               "Default: --synthetic 2000:100000 in ./ievo-demo; --no-train streams with random weights.\n");
}

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

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* ---- the summary ------------------------------------------------------------------------ */

typedef struct {
    char id[64];
    int n, cap;
    float *drift;    /* by events index - 1 */
    int last_event;  /* the latest output's events count, and its top items */
    int n_top;
    char top[5][64];
} user_trace;

static user_trace *find_user(user_trace **us, int *n, int *cap, const char *id) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*us)[i].id, id)) return &(*us)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        user_trace *nu = realloc(*us, (size_t)*cap * sizeof *nu);
        if (!nu) return NULL;
        *us = nu;
    }
    user_trace *u = &(*us)[(*n)++];
    memset(u, 0, sizeof *u);
    snprintf(u->id, sizeof u->id, "%s", id);
    return u;
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
    char *marks = malloc((size_t)n + 1), *line = NULL, err[128];
    size_t cap = 0;
    ssize_t ln;
    if (!marks) { fclose(f); return; }
    memset(marks, ' ', (size_t)n);
    marks[n] = 0;
    while ((ln = getline(&line, &cap, f)) > 0) {
        if (!strstr(line, user)) continue;
        json_value *v = json_parse(line, (size_t)ln, err, sizeof err);
        const char *id;
        int64_t ev;
        const json_value *sw = json_get(v, "switched");
        if (v && !json_get_string(v, "user_id", &id, NULL) && !strcmp(id, user) && !json_get_int(v, "events", &ev) &&
            sw && sw->type == JSON_BOOL && sw->boolean && ev - 1 >= first && ev - 1 < first + n)
            marks[ev - 1 - first] = '^';
        json_free(v);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "%*s%s  (^: the generator switched this user's topic)\n", indent, "", marks);
    free(marks);
}

/* The title of a MovieLens item (u.item is Latin-1; printed as UTF-8), or the id itself. */
static const char *movielens_title(const char *dir, const char *id, char *out, size_t n) {
    char path[1024], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/u.item", dir);
    snprintf(out, n, "%s", id);
    FILE *f = fopen(path, "r");
    if (!f) return out;
    size_t idlen = strlen(id);
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, id, idlen) || line[idlen] != '|') continue;
        const char *t = line + idlen + 1;
        size_t o = 0;
        for (; *t && *t != '|' && o + 3 < n; t++) {
            unsigned char ch = (unsigned char)*t;
            if (ch < 0x80) out[o++] = (char)ch;
            else { out[o++] = (char)(0xC0 | (ch >> 6)); out[o++] = (char)(0x80 | (ch & 0x3F)); }
        }
        out[o] = 0;
        break;
    }
    free(line);
    fclose(f);
    return out;
}

/* What `ievo eval` measured before streaming: the learned model against popularity. */
static void print_quality(const char *eval_path) {
    if (!eval_path) {
        fprintf(stderr, "model                 random weights (--no-train): the vectors mean nothing yet\n");
        return;
    }
    char *text = read_file(eval_path, NULL), err[256];
    json_value *e = text ? json_parse(text, strlen(text), err, sizeof err) : NULL;
    free(text);
    const json_value *t = json_get(e, "test");
    double mh = 0, mn = 0, ph = 0, pn = 0, mm = 0, sm = 0;
    if (!json_get_number(json_get(t, "model"), "hr10", &mh) && !json_get_number(json_get(t, "model"), "ndcg10", &mn) &&
        !json_get_number(json_get(t, "popularity"), "hr10", &ph) &&
        !json_get_number(json_get(t, "popularity"), "ndcg10", &pn))
        fprintf(stderr, "learned model         leave-one-out test, all items ranked: HR@10 %.4f NDCG@10 %.4f "
                        "(popularity: %.4f / %.4f)\n", mh, mn, ph, pn);
    const json_value *ev = json_get(e, "evolution");
    if (ev && !json_get_number(ev, "model_median_events", &mm) && !json_get_number(ev, "static_median_events", &sm))
        fprintf(stderr, "interest switches     the model's top topic follows a switch after %.0f events (median); "
                        "a static profile after %s%.0f\n", mm, sm >= 11 ? "more than " : "", sm >= 11 ? 10.0 : sm);
    json_free(e);
}

static int summarise(const char *dir, const char *truth_path, const char *eval_path, const char *ml) {
    char path[1024];
    snprintf(path, sizeof path, "%s/worker-stats.json", dir);
    char *stats_text = read_file(path, NULL);
    char err[256];
    json_value *stats = stats_text ? json_parse(stats_text, strlen(stats_text), err, sizeof err) : NULL;
    free(stats_text);
    if (!stats) {
        fprintf(stderr, "ievo demo: no worker stats in %s\n", path);
        return -1;
    }
    int64_t applied = 0, dead = 0;
    double eps = 0, cpu_us = 0, active = 0;
    json_get_int(stats, "applied", &applied);
    json_get_int(stats, "dead_lettered", &dead);
    json_get_number(stats, "events_per_s", &eps);
    json_get_number(stats, "cpu_us_per_event", &cpu_us);
    json_get_number(stats, "active_s", &active);
    json_free(stats);

    snprintf(path, sizeof path, "%s/vectors.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "ievo demo: cannot read %s\n", path);
        return -1;
    }
    user_trace *us = NULL;
    int nu = 0, cu = 0;
    long outputs = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ln;
    while ((ln = getline(&line, &lcap, f)) > 0) {
        json_value *v = json_parse(line, (size_t)ln, err, sizeof err);
        const char *id;
        int64_t ev;
        double drift;
        if (v && !json_get_string(v, "user_id", &id, NULL) && !json_get_int(v, "events", &ev) &&
            !json_get_number(v, "drift", &drift) && ev >= 1) {
            user_trace *u = find_user(&us, &nu, &cu, id);
            const json_value *top = json_get(v, "top_items");
            if (u && top && top->type == JSON_ARRAY && ev > u->last_event) {
                u->last_event = (int)ev;
                u->n_top = 0;
                for (size_t k = 0; k < top->len && k < 5; k++) {
                    const char *item;
                    if (!json_get_string(top->items[k], "item_id", &item, NULL))
                        snprintf(u->top[u->n_top++], sizeof u->top[0], "%s", item);
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
            outputs++;
        }
        json_free(v);
    }
    free(line);
    fclose(f);

    fprintf(stderr, "\n================ what happened ================\n");
    fprintf(stderr, "events applied        %lld (dead-lettered: %lld)\n", (long long)applied, (long long)dead);
    fprintf(stderr, "interest vectors out  %ld, for %d users\n", outputs, nu);
    fprintf(stderr, "worker throughput     %.0f events/s over %.2f s, %.2f µs CPU per event (worker process)\n",
            eps, active, cpu_us);
    print_quality(eval_path);
    /* The three most active users: drift (1 - cosine to the previous vector), their last events. */
    fprintf(stderr, "\ndrift = 1 - cos(u_t, u_t-1) over each user's last events (scaled per user):\n");
    for (int k = 0; k < 3 && k < nu; k++) {
        int best = -1;
        for (int i = 0; i < nu; i++)
            if (us[i].n > 0 && (best < 0 || us[i].n > us[best].n)) best = i;
        if (best < 0) break;
        user_trace *u = &us[best];
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
            for (int k = 0; k < u->n_top; k++) {
                char title[256];
                fprintf(stderr, "%s %s", k ? "," : "", ml ? movielens_title(ml, u->top[k], title, sizeof title) : u->top[k]);
            }
            fprintf(stderr, "\n");
        }
        u->n = -u->n;   /* exclude from the next pick */
    }
    for (int i = 0; i < nu; i++) free(us[i].drift);
    free(us);
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

int cmd_demo(int argc, char **argv) {
    static const struct option opts[] = {
        {"movielens", required_argument, 0, 'L'}, {"synthetic", required_argument, 0, 'S'},
        {"dir", required_argument, 0, 'd'}, {"partitions", required_argument, 0, 'p'},
        {"epochs", required_argument, 0, 'e'}, {"no-train", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *ml = NULL, *syn = "2000:100000", *dir = "ievo-demo", *parts = "8", *epochs = NULL;
    int train = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'L': ml = optarg; break;
        case 'S': syn = optarg; break;
        case 'd': dir = optarg; break;
        case 'p': parts = optarg; break;
        case 'e': epochs = optarg; break;
        case 'n': train = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (strchr(dir, '\'') || system(cmd) != 0) {
        fprintf(stderr, "ievo demo: cannot prepare %s\n", dir);
        return 1;
    }
    char bs_file[1024], model_path[1024], state_dir[1024], stats[1024], vectors[1024], out_topic[64];
    snprintf(bs_file, sizeof bs_file, "%s/bootstrap", dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    snprintf(stats, sizeof stats, "%s/worker-stats.json", dir);
    snprintf(vectors, sizeof vectors, "%s/vectors.jsonl", dir);
    /* The local broker keeps ~5 MiB per partition: give the bulky output topic more of them. */
    snprintf(out_topic, sizeof out_topic, "interest-vectors:%d", 4 * atoi(parts));

    fprintf(stderr, "ievo demo: %s events, work dir %s\n", ml ? "MovieLens" : "synthetic", dir);
    char *broker[] = {"ievo", "broker", "--partitions", (char *)parts, "--topic", "user-actions",
                      "--topic", "state-changelog",
                      "--topic", out_topic, "--topic", "user-actions.dlq", "--bootstrap-file", bs_file, NULL};
    print_cmd(broker);
    char broker_log[1024];
    snprintf(broker_log, sizeof broker_log, "%s/broker.out", dir);
    pid_t bpid = spawn_self(broker, broker_log);
    if (bpid < 0) return 1;
    int rc = 1;
    if (wait_for_file(bs_file, 15000)) {
        fprintf(stderr, "ievo demo: the broker did not start\n");
        goto out;
    }
    char bs[512] = "";
    FILE *bf = fopen(bs_file, "r");
    if (!bf || !fgets(bs, sizeof bs, bf)) {
        if (bf) fclose(bf);
        goto out;
    }
    fclose(bf);
    bs[strcspn(bs, "\r\n")] = 0;

    /* Learn the model from the history first (bounded: a minute or two on two cores), measure it
     * the field's way, then stream the same events through the worker with it. */
    char eval_json[1100];
    snprintf(eval_json, sizeof eval_json, "%s/eval.json", dir);
    if (!epochs) epochs = ml ? "60" : "25";
    char *train_ml[] = {"ievo", "train", "--out", model_path, "--movielens", (char *)ml, "--epochs", (char *)epochs,
                        "--patience", "10", "--threads", "2", NULL};
    char *train_syn[] = {"ievo", "train", "--out", model_path, "--synthetic", (char *)syn, "--epochs", (char *)epochs,
                         "--patience", "10", "--threads", "2", NULL};
    char *eval_ml[] = {"ievo", "eval", "--model", model_path, "--movielens", (char *)ml, "--json", eval_json, NULL};
    char *eval_syn[] = {"ievo", "eval", "--model", model_path, "--synthetic", (char *)syn, "--evolution",
                        "--json", eval_json, NULL};
    char *init_ml[] = {"ievo", "model", "init", "--out", model_path, "--vocab-movielens", (char *)ml, NULL};
    char *init_syn[] = {"ievo", "model", "init", "--out", model_path, "--vocab-synthetic", NULL};
    if (train) {
        if (run_self(ml ? train_ml : train_syn, NULL) || run_self(ml ? eval_ml : eval_syn, NULL)) goto out;
    } else if (run_self(ml ? init_ml : init_syn, NULL)) {
        goto out;
    }

    char *prod_ml[] = {"ievo", "produce", "-b", bs, "-t", "user-actions", "--movielens", (char *)ml, NULL};
    char truth[1100];
    snprintf(truth, sizeof truth, "%s/truth.jsonl", dir);
    char *prod_syn[] = {"ievo", "produce", "-b", bs, "-t", "user-actions", "--synthetic", (char *)syn,
                        "--truth", truth, NULL};
    if (run_self(ml ? prod_ml : prod_syn, NULL)) goto out;

    char x_state[1100], x_model[1100], x_stats[1100];
    snprintf(x_state, sizeof x_state, "state.dir=%s", state_dir);
    snprintf(x_model, sizeof x_model, "model.path=%s", model_path);
    snprintf(x_stats, sizeof x_stats, "stats.file=%s", stats);
    char *worker[] = {"ievo", "worker", "-b", bs, "-X", "group.id=ievo-demo", "-X", x_state, "-X", x_model,
                      "-X", x_stats, "-X", "changelog.topic=state-changelog", "-X", train ? "output.top.k=5" : "output.top.k=0",
                      "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
                      "--until-eof", NULL};
    if (run_self(worker, NULL)) goto out;

    char *consume[] = {"ievo", "consume", "-b", bs, "-t", "interest-vectors", "--from-beginning", "--until-eof", NULL};
    if (run_self(consume, vectors)) goto out;
    rc = summarise(dir, ml ? NULL : truth, train ? eval_json : NULL, ml) ? 1 : 0;
out:
    kill(bpid, SIGTERM);
    int st;
    waitpid(bpid, &st, 0);
    return rc;
}
