/* test_use_kernels: the USE-lite encoder's fast kernels against its scalar reference (use_ref.h),
 * on random inputs of the encoder's own shapes, without the weights:
 *   use_layernorm, use_softmax, use_mha, use_mean_pool + use_tanh_l2norm (use_ops.h)
 *   oneDNN matmuls with bias, relu and accumulate (use_dnnl.h), for M = 0, 1, 2, 5, 9, 100, 300
 * and that a oneDNN matmul row does not depend on the batch it is in: row r computed alone, at
 * another position, or among 300 rows must be bitwise equal (M = 1 included). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "use_dnnl.h"
#include "use_ops.h"
#include "use_ref.h"

static unsigned long long g_rng = 88172645463325252ull;
static float frand(float lo, float hi) { /* xorshift64 */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return lo + (hi - lo) * (float)((g_rng >> 11) * (1.0 / 9007199254740992.0));
}
static float *rnd(long n, float lo, float hi) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    REQUIRE(p, "out of memory");
    for (long i = 0; i < n; i++) p[i] = frand(lo, hi);
    return p;
}

static void test_layernorm(void) {
    const int T = 37;
    for (int C = 256; C <= 512; C += 256) {
        float *x = rnd((long)T * C, -3, 5), *g = rnd(C, 0.5f, 1.5f), *b = rnd(C, -0.2f, 0.2f);
        float *y = rnd((long)T * C, 0, 0), *yr = rnd((long)T * C, 0, 0);
        for (int i = 0; i < C; i++) x[5 * C + i] = 7.0f; /* a constant row: variance 0, eps matters */
        use_layernorm(y, x, g, b, T, C, 1e-6f);
        use_layernorm_ref(yr, x, g, b, T, C, 1e-6f);
        double d = check_max_abs_diff(y, yr, (size_t)T * C);
        CHECK(d < 2e-6, "layernorm C=%d: max |diff| %.3g", C, d);
        fprintf(stderr, "layernorm C=%d: max |diff| vs reference %.2g\n", C, d);
        free(x), free(g), free(b), free(y), free(yr);
    }
}

static void test_softmax(void) {
    for (int n = 1; n <= 128; n = n * 3 + 1) {
        float *x = rnd(n, -30, 30);
        double ref[128], mx = -INFINITY, s = 0;
        for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < n; j++) s += ref[j] = exp(x[j] - mx);
        use_softmax(x, n);
        double d = 0, sum = 0;
        for (int j = 0; j < n; j++) {
            d = fmax(d, fabs(x[j] - ref[j] / s));
            sum += x[j];
        }
        CHECK(d < 1e-6 && fabs(sum - 1) < 1e-5, "softmax n=%d: max |diff| %.3g, sum %.7f", n, d, sum);
        free(x);
    }
}

static void test_mha(void) {
    const int Ls[] = {1, 2, 9, 128};
    for (int li = 0; li < 4; li++)
        for (int dh = 64; dh <= 128; dh += 64) {
            int L = Ls[li], H = 4, C = H * dh;
            float *qkv = rnd((long)L * 3 * C, -2, 2), *o = rnd((long)L * C, 0, 0), *orf = rnd((long)L * C, 0, 0);
            float probs[128];
            double scratch[128];
            float scale = dh == 64 ? 0.125f : 0.0883883461f;
            use_mha(o, qkv, L, H, dh, scale, probs);
            use_mha_ref(orf, qkv, L, H, dh, scale, scratch);
            double d = check_max_abs_diff(o, orf, (size_t)L * C);
            CHECK(d < 2e-6, "mha L=%d dh=%d: max |diff| %.3g", L, dh, d);
            if (L == 128) fprintf(stderr, "mha L=128 dh=%d: max |diff| vs reference %.2g\n", dh, d);
            free(qkv), free(o), free(orf);
        }
}

static void test_pool_head(void) {
    const int lens[] = {3, 0, 1, 12};
    const int N = 4, C = 512, D = 512, T = 16;
    float *y = rnd((long)T * C, -2, 2), *w = rnd((long)C * D, -0.1f, 0.1f), *b = rnd(D, -0.5f, 0.5f);
    float *u = rnd((long)N * C, 0, 0), *e = rnd((long)N * D, 0, 0), *er = rnd(D, 0, 0);
    double scratch[512];
    use_mean_pool(u, y, lens, N, C);
    use_matmul_ref(e, u, w, b, N, C, D, 0);
    use_tanh_l2norm(e, N, D);
    long row = 0;
    for (int n = 0; n < N; row += lens[n], n++) {
        use_head_ref(er, y + row * C, lens[n], w, b, C, D, scratch);
        double d = check_max_abs_diff(e + (long)n * D, er, D), norm = 0;
        for (int i = 0; i < D; i++) norm += (double)e[n * D + i] * e[n * D + i];
        CHECK(d < 1e-6 && fabs(norm - 1) < 1e-5, "pool + head, text %d (%d rows): max |diff| %.3g, |e|^2 %.7f", n,
              lens[n], d, norm);
    }
    free(y), free(w), free(b), free(u), free(e), free(er);
}

static void test_matmul(void) {
    char err[256];
    use_dnnl *d;
    REQUIRE(use_dnnl_new(&d, 300, err, sizeof err) == 0, "%s", err);
    static const struct {
        int C, OC, flags;
    } sh[] = {{256, 768, 0}, {256, 512, USE_DNNL_ACCUMULATE}, {512, 1536, USE_DNNL_RELU},
              {1536, 512, USE_DNNL_ACCUMULATE}, {512, 512, 0}};
    const int Ms[] = {0, 1, 2, 5, 9, 100, 300};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int C = sh[s].C, OC = sh[s].OC, fl = sh[s].flags;
        float *w = rnd((long)C * OC, -0.05f, 0.05f), *b = rnd(OC, -0.5f, 0.5f);
        float *x = rnd(300L * C, -1, 1), *y0 = rnd(300L * OC, -1, 1);
        float *y = rnd(300L * OC, 0, 0), *yr = rnd(300L * OC, 0, 0), *all = rnd(300L * OC, 0, 0);
        use_dnnl_matmul *m;
        REQUIRE(use_dnnl_matmul_new(&m, d, C, OC, w, b, fl, err, sizeof err) == 0, "%s", err);
        /* all 300 rows at once: the batch the others are compared with */
        memcpy(all, y0, 300L * OC * sizeof(float));
        REQUIRE(use_dnnl_matmul_run(m, x, all, 300, err, sizeof err) == 0, "%s", err);
        for (size_t k = 0; k < sizeof Ms / sizeof Ms[0]; k++) {
            int M = Ms[k], off = M == 300 ? 0 : 7; /* rows off..off+M of the batch */
            memcpy(y, y0 + (long)off * OC, 300L * OC * sizeof(float) - (size_t)off * OC * sizeof(float));
            memcpy(yr, y, (size_t)(M > 0 ? M : 1) * OC * sizeof(float));
            REQUIRE(use_dnnl_matmul_run(m, x + (long)off * C, y, M, err, sizeof err) == 0, "%s", err);
            use_matmul_ref(yr, x + (long)off * C, w, b, M, C, OC, fl & USE_DNNL_ACCUMULATE);
            if (fl & USE_DNNL_RELU) use_relu_ref(yr, (long)M * OC);
            double dd = check_max_abs_diff(y, yr, (size_t)M * OC);
            CHECK(dd < 2e-5, "matmul %dx%d flags %d M=%d: max |diff| vs reference %.3g", C, OC, fl, M, dd);
            int same = M == 0 || memcmp(y, all + (long)off * OC, (size_t)M * OC * sizeof(float)) == 0;
            CHECK(same, "matmul %dx%d flags %d: rows %d..%d alone differ from the same rows in a batch of 300 "
                        "(max |diff| %.3g)", C, OC, fl, off, off + M, check_max_abs_diff(y, all + (long)off * OC, (size_t)M * OC));
            if (M == 100) fprintf(stderr, "matmul %dx%d (%s) M=100: max |diff| vs reference %.2g\n", C, OC, use_dnnl_matmul_impl(m), dd);
        }
        free(w), free(b), free(x), free(y0), free(y), free(yr), free(all);
    }
    use_dnnl_matmul *m;
    float w16[16] = {0}, xy[8] = {0};
    REQUIRE(use_dnnl_matmul_new(&m, d, 4, 4, w16, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK(use_dnnl_matmul_run(m, xy, xy, 301, err, sizeof err) < 0 && strstr(err, "301"),
          "301 rows accepted by a 300-row context");
    use_dnnl_free(d);
}

int main(void) {
    test_layernorm();
    test_softmax();
    test_mha();
    test_pool_head();
    test_matmul();
    return check_exit("test_use_kernels");
}
