/* test_model_backward: every backward kernel of nn_ref against central finite differences of
 * its forward.
 *
 * For a kernel y = f(inputs, params) the test draws a random cotangent R, takes the loss
 * L = sum(R * y) in double, and compares the backward's gradient of L with
 * (L(w + e) - L(w - e)) / 2e for every element of every input and parameter (the sizes are
 * small). The forwards accumulate in double and round to float once, so with e = 1e-2 the
 * differences carry about 1e-5 of rounding and O(e^2) of truncation: the tolerance is
 * 1e-4 + 1e-3 |g| (observed: at most 3e-5 absolute, 0.04 of the tolerance). A deliberately wrong
 * backward (a wrong bias term, a halved forget path, a complemented reset gate, stale attention
 * weights) misses it by 100x or more: the last section switches each mistake on and checks that
 * this test notices.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nn_ref.h"
#include "rng.h"

static rng_t g_rng;
static void fill(float *p, int n, double s) {
    for (int i = 0; i < n; i++) p[i] = (float)(s * (2.0 * rng_uniform(&g_rng) - 1.0));
}

/* A kernel under test: forward writes its output (n_out floats) from the buffers in bufs. */
typedef struct kernel kernel;
struct kernel {
    const char *name;
    int nb;              /* buffers: inputs and parameters */
    float *buf[8];
    int len[8];
    const char *bname[8];
    int n_out;
    void (*forward)(kernel *k, float *out);
    /* backward: cotangent R -> gradient of sum(R*y) per buffer (zeroed by the caller) */
    void (*backward)(kernel *k, const float *R, float **grad);
    int B, I, H, K, n;
    float *scratch;
};

static double loss_of(kernel *k, const float *R, float *out) {
    k->forward(k, out);
    double l = 0;
    for (int i = 0; i < k->n_out; i++) l += (double)R[i] * out[i];
    return l;
}

/* Returns the worst |analytic - numeric| / (tol) over all elements (<= 1 passes). */
static double check_kernel(kernel *k, int verbose) {
    float *R = malloc((size_t)k->n_out * sizeof *R), *out = malloc((size_t)k->n_out * sizeof *out);
    fill(R, k->n_out, 1.0);
    float *grad[8];
    for (int b = 0; b < k->nb; b++) grad[b] = calloc((size_t)k->len[b], sizeof(float));
    k->backward(k, R, grad);
    double worst = 0, worst_abs = 0;
    const double e = 1e-2;
    for (int b = 0; b < k->nb; b++)
        for (int i = 0; i < k->len[b]; i++) {
            float keep = k->buf[b][i];
            k->buf[b][i] = (float)(keep + e);
            double lp = loss_of(k, R, out);
            k->buf[b][i] = (float)(keep - e);
            double lm = loss_of(k, R, out);
            k->buf[b][i] = keep;
            double num = (lp - lm) / (2 * e), ana = grad[b][i];
            double tol = 1e-4 + 1e-3 * fabs(num);
            double r = fabs(ana - num) / tol;
            if (r > worst) worst = r;
            if (fabs(ana - num) > worst_abs) worst_abs = fabs(ana - num);
            if (verbose && r > 1) fprintf(stderr, "  %s %s[%d]: backward %.6g, finite difference %.6g\n", k->name, k->bname[b], i, ana, num);
        }
    if (verbose) fprintf(stderr, "%-18s max |backward - finite difference| %.2e (%.2f of tolerance)\n", k->name, worst_abs, worst);
    for (int b = 0; b < k->nb; b++) free(grad[b]);
    free(R);
    free(out);
    return worst;
}

/* ---- linear ---- */
static int g_break = 0; /* which deliberate mistake is on (0 = none) */

static void lin_fwd(kernel *k, float *out) { linear_forward(out, k->buf[0], k->buf[1], k->buf[2], k->B, k->I, k->H); }
static void lin_bwd(kernel *k, const float *R, float **g) {
    linear_backward(g[0], g[1], g[2], R, k->buf[0], k->buf[1], k->B, k->I, k->H);
    if (g_break == 1) g[2][0] += 0.5f; /* a wrong bias gradient */
}

/* ---- lstm cell: out = [h_out ; c_out] ---- */
static void lstm_fwd(kernel *k, float *out) {
    int B = k->B, H = k->H;
    lstm_cell_forward(out, out + B * H, k->scratch, k->buf[0], k->buf[1], k->buf[2], k->buf[3], k->buf[4], k->buf[5],
                      k->buf[6], B, k->I, H);
}
static void lstm_bwd(kernel *k, const float *R, float **g) {
    int B = k->B, H = k->H;
    float *out = malloc((size_t)2 * B * H * sizeof *out);
    lstm_fwd(k, out); /* gates */
    lstm_cell_backward(g[0], g[1], g[2], g[3], g[4], g[5], g[6], R, R + B * H, k->scratch, k->buf[0], k->buf[1],
                       k->buf[2], k->buf[3], k->buf[4], B, k->I, H);
    if (g_break == 2) g[2][1] *= 0.5f; /* forget-gate path to c halved */
    free(out);
}

/* ---- gru cell ---- */
static void gru_fwd(kernel *k, float *out) {
    int B = k->B, H = k->H;
    float *gx = k->scratch, *gh = gx + B * 3 * H, *act = gh + B * 3 * H;
    gru_cell_forward(out, gx, gh, act, k->buf[0], k->buf[1], k->buf[2], k->buf[3], k->buf[4], k->buf[5], B, k->I, H);
}
static void gru_bwd(kernel *k, const float *R, float **g) {
    int B = k->B, H = k->H;
    float *out = malloc((size_t)B * H * sizeof *out);
    gru_fwd(k, out);
    float *gh = k->scratch + B * 3 * H, *act = gh + B * 3 * H;
    if (g_break == 3) act[0] = 1.0f - act[0]; /* the reset gate used as its complement */
    gru_cell_backward(g[0], g[1], g[2], g[3], g[4], g[5], R, gh, act, k->buf[0], k->buf[1], k->buf[2], k->buf[3], B,
                      k->I, H);
    free(out);
}

/* ---- window attention: buffers h, xs, w_q, b_q, w_k, b_k, w_v, b_v ---- */
static void att_fwd(kernel *k, float *out) {
    int n = k->n, K = k->K;
    float *a = k->scratch, *q = a + n, *kk = q + K, *v = kk + n * K;
    window_attention_forward(out, a, q, kk, v, k->buf[0], k->buf[1], n, k->buf[2], k->buf[3], k->buf[4], k->buf[5],
                             k->buf[6], k->buf[7], k->H, k->I, K);
}
static void att_bwd(kernel *k, const float *R, float **g) {
    int n = k->n, K = k->K;
    float *out = malloc((size_t)K * sizeof *out);
    att_fwd(k, out);
    float *a = k->scratch, *q = a + n, *kk = q + K, *v = kk + n * K;
    if (g_break == 4) a[0] += 0.1f; /* stale attention weights */
    window_attention_backward(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], R, a, q, kk, v, k->buf[0], k->buf[1], n,
                              k->buf[2], k->buf[4], k->buf[6], k->H, k->I, K);
    free(out);
}

static kernel make(const char *name, void (*f)(kernel *, float *), void (*bw)(kernel *, const float *, float **), int n_out,
                   int nb, const char *const *names, const int *lens, const double *scales) {
    kernel k;
    memset(&k, 0, sizeof k);
    k.name = name, k.forward = f, k.backward = bw, k.n_out = n_out, k.nb = nb;
    for (int b = 0; b < nb; b++) {
        k.bname[b] = names[b];
        k.len[b] = lens[b];
        k.buf[b] = malloc((size_t)lens[b] * sizeof(float));
        fill(k.buf[b], lens[b], scales[b]);
    }
    k.scratch = calloc(4096, sizeof(float));
    return k;
}

static void drop(kernel *k) {
    for (int b = 0; b < k->nb; b++) free(k->buf[b]);
    free(k->scratch);
}

static double run_all(int verbose, int which) {
    const int B = 3, I = 5, H = 4, K = 6, n = 4;
    double worst = 0;
    if (!which || which == 1) {
        const char *nm[] = {"inp", "weight", "bias"};
        int ln[] = {B * I, H * I, H};
        double sc[] = {1, 0.5, 0.5};
        kernel k = make("linear", lin_fwd, lin_bwd, B * H, 3, nm, ln, sc);
        k.B = B, k.I = I, k.H = H;
        double w = check_kernel(&k, verbose);
        worst = w > worst ? w : worst;
        drop(&k);
    }
    if (!which || which == 2) {
        const char *nm[] = {"x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"};
        int ln[] = {B * I, B * H, B * H, 4 * H * I, 4 * H * H, 4 * H, 4 * H};
        double sc[] = {1, 0.8, 0.8, 0.6, 0.6, 0.3, 0.3};
        kernel k = make("lstm_cell", lstm_fwd, lstm_bwd, 2 * B * H, 7, nm, ln, sc);
        k.B = B, k.I = I, k.H = H;
        double w = check_kernel(&k, verbose);
        worst = w > worst ? w : worst;
        drop(&k);
    }
    if (!which || which == 3) {
        const char *nm[] = {"x", "h", "w_ih", "w_hh", "b_ih", "b_hh"};
        int ln[] = {B * I, B * H, 3 * H * I, 3 * H * H, 3 * H, 3 * H};
        double sc[] = {1, 0.8, 0.6, 0.6, 0.3, 0.3};
        kernel k = make("gru_cell", gru_fwd, gru_bwd, B * H, 6, nm, ln, sc);
        k.B = B, k.I = I, k.H = H;
        double w = check_kernel(&k, verbose);
        worst = w > worst ? w : worst;
        drop(&k);
    }
    if (!which || which == 4) {
        const char *nm[] = {"h", "xs", "w_q", "b_q", "w_k", "b_k", "w_v", "b_v"};
        int ln[] = {H, n * I, K * H, K, K * I, K, K * I, K};
        double sc[] = {1, 1, 0.7, 0.3, 0.7, 0.3, 0.7, 0.3};
        kernel k = make("window_attention", att_fwd, att_bwd, K, 8, nm, ln, sc);
        k.H = H, k.I = I, k.K = K, k.n = n;
        double w = check_kernel(&k, verbose);
        worst = w > worst ? w : worst;
        drop(&k);
    }
    return worst;
}

int main(void) {
    rng_seed(&g_rng, 20240501);
    double worst = run_all(1, 0);
    CHECK(worst <= 1.0, "a backward disagrees with finite differences (%.2f x tolerance)", worst);
    /* Each deliberate mistake must be caught. */
    const char *what[] = {"", "linear: wrong bias gradient", "lstm: forget path halved", "gru: reset gate complemented",
                          "attention: stale weights"};
    for (int b = 1; b <= 4; b++) {
        g_break = b;
        double w = run_all(0, b);
        fprintf(stderr, "mutation %-32s -> %.1f x tolerance\n", what[b], w);
        CHECK(w > 10.0, "mutation '%s' went unnoticed (%.2f x tolerance)", what[b], w);
    }
    g_break = 0;
    return check_exit("test_model_backward");
}
