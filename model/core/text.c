/* text: the text adaptor a(t) = w (t - b) of model.h, which maps a frozen text encoder's vector
 * (USE-lite, 512-d) into the model's item space (E) or, for the scoring head, into u's space (D).
 *
 *   text_adapt_ref   the reference: (t - b) formed and summed in double, as written
 *   text_adapt_fast  w t - wb with wb = w b once per model (float, 8 partial sums per dot): a
 *                    row's bits depend on that row alone, never on what else a step computes,
 *                    so a cached a(t) equals a recomputed one
 * w is (OUT, T) row-major, b and t (T). About OUT*T multiply-adds (64 x 512 = 32 k).
 */
#include "model_internal.h"
#include "vec.h"

void text_adapt_ref(const float *w, const float *b, int OUT, int T, const float *t, float *out) {
    for (int o = 0; o < OUT; o++) {
        const float *wo = w + (size_t)o * T;
        double s = 0;
        for (int k = 0; k < T; k++) s += (double)wo[k] * ((double)t[k] - (double)b[k]);
        out[o] = (float)s;
    }
}

void text_wb(const float *w, const float *b, int OUT, int T, float *wb) {
    for (int o = 0; o < OUT; o++) {
        double s = 0;
        for (int k = 0; k < T; k++) s += (double)w[(size_t)o * T + k] * b[k];
        wb[o] = (float)s;
    }
}

void text_adapt_fast(const float *w, const float *wb, int OUT, int T, const float *t, float *out) {
    for (int o = 0; o < OUT; o++) out[o] = dotf(w + (size_t)o * T, t, T) - wb[o];
}
