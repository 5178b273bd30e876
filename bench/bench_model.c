/* bench_model: the serving cost of a model file, model_step alone, in CPU microseconds per event
 * on one core, for comparing the families (docs/training.md's table).
 *
 *   ievo_bench_model -m MODEL [-m MODEL2 ...] [--batch B] [--users U] [--events N] [--backend dnnl|scalar]
 *
 * Each step applies one event to each of B distinct users (256: the worker's largest wave),
 * drawn from U users (10,000) whose states start empty and then lie wherever the history left
 * them, random items and actions with a value on half the events: the worker's model stage
 * without the I/O. Figures are the best of three runs of N events (200,000), CPU time of this
 * process, with the runtime pinned to one thread. Several models are timed in turn in the same
 * process, so their ratio holds whatever the machine's load (run it on a quiet machine for the
 * absolute figures). Prints one JSON line per model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model.h"
#include "rng.h"

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int bench(const char *path, model_backend be, int B, int U, long N) {
    char err[MODEL_ERR_LEN], family[32];
    model *m = NULL;
    model_runner *r = NULL;
    if (model_load(&m, path, err, sizeof err) || model_runner_new(&r, m, be, B, err, sizeof err)) {
        fprintf(stderr, "bench_model: %s: %s\n", path, err);
        model_free(m);
        return 1;
    }
    const size_t ss = model_state_size(m);
    const int D = m->cfg.out_dim;
    char *pool = malloc(ss * (size_t)U);
    int *perm = malloc((size_t)U * sizeof *perm);
    void **st = malloc((size_t)B * sizeof *st);
    model_event *ev = calloc((size_t)B, sizeof *ev);
    float *vec = malloc((size_t)B * D * sizeof *vec), *drift = malloc((size_t)B * sizeof *drift);
    int64_t *ts = calloc((size_t)U, sizeof *ts);
    if (!pool || !perm || !st || !ev || !vec || !drift || !ts) {
        fprintf(stderr, "bench_model: out of memory\n");
        return 1;
    }
    for (int u = 0; u < U; u++) model_state_init(m, pool + ss * (size_t)u), perm[u] = u, ts[u] = 1700000000000LL;
    rng_t g;
    rng_seed(&g, 7);
    double best = 1e30;
    for (int run = 0; run < 3; run++) {
        double t0 = cpu_now();
        for (long done = 0; done < N; done += B) {
            for (int i = 0; i < B; i++) { /* B distinct users: a partial shuffle */
                int j = i + (int)(rng_uniform(&g) * (U - i)), t = perm[i];
                perm[i] = perm[j], perm[j] = t;
                int u = perm[i];
                st[i] = pool + ss * (size_t)u;
                ts[u] += 1000 + (int64_t)(rng_uniform(&g) * 3.6e6);
                ev[i] = (model_event){1 + (int)(rng_uniform(&g) * (m->cfg.n_items - 1)),
                                      (int)(rng_uniform(&g) * m->cfg.n_actions), ts[u],
                                      (float)(1 + (int)(rng_uniform(&g) * 5)), rng_uniform(&g) < 0.5, 0, NULL};
            }
            if (model_step(r, B, st, ev, vec, drift, err, sizeof err)) {
                fprintf(stderr, "bench_model: %s\n", err);
                return 1;
            }
        }
        double us = (cpu_now() - t0) * 1e6 / (double)N;
        best = us < best ? us : best;
    }
    model_family_name(&m->cfg, family, sizeof family);
    printf("{\"model\":\"%s\",\"family\":\"%s\",\"backend\":\"%s\",\"batch\":%d,\"users\":%d,\"events\":%ld,"
           "\"us_per_event\":%.3f,\"state_bytes\":%zu,\"params\":%zu}\n",
           path, family, be == MODEL_BACKEND_DNNL ? "dnnl" : "scalar", B, U, N, best, ss, m->n_params);
    fflush(stdout);
    free(pool), free(perm), free(st), free(ev), free(vec), free(drift), free(ts);
    model_runner_free(r);
    model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int B = 256, U = 10000, rc = 0, nm = 0;
    long N = 200000;
    model_backend be = MODEL_BACKEND_DNNL;
    const char *models[16];
    if (argc % 2 == 0) goto usage; /* every option takes a value */
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "-m") && nm < 16) models[nm++] = v;
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--users")) U = atoi(v);
        else if (!strcmp(a, "--events")) N = atol(v);
        else if (!strcmp(a, "--backend")) be = strcmp(v, "scalar") ? MODEL_BACKEND_DNNL : MODEL_BACKEND_SCALAR;
        else goto usage;
    }
    if (!nm || B < 1 || U < B || N < B) goto usage;
    model_runtime_init(1);
    for (int k = 0; k < nm; k++) rc |= bench(models[k], be, B, U, N);
    return rc;
usage:
    fprintf(stderr, "usage: ievo_bench_model -m MODEL [-m MODEL2 ...] [--batch B] [--users U >= B] [--events N] "
                    "[--backend dnnl|scalar]\n");
    return 2;
}
