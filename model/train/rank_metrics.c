/* rank_metrics: see rank_metrics.h. */
#include "rank_metrics.h"

#include <math.h>

long metrics_rank(const float *scores, int n_items, int target, const unsigned char *seen) {
    const float st = scores[target];
    long rank = 0;
    for (int i = 1; i < n_items; i++) {
        if (i == target || (seen && seen[i])) continue;
        float s = scores[i];
        rank += s > st || (s == st && i < target);
    }
    return rank;
}

void metrics_add_rank(rank_metrics *m, long rank) {
    m->n++;
    double g = 1.0 / log2((double)rank + 2.0);
    if (rank < 10) m->hr10 += 1, m->ndcg10 += g;
    if (rank < 20) m->hr20 += 1, m->ndcg20 += g;
}

void metrics_add_value(rank_metrics *m, double predicted, double actual) {
    if (!isfinite(predicted)) return;
    double e = predicted - actual;
    m->n_value++;
    m->mae += fabs(e);
    m->rmse += e * e;
}

void metrics_finish(rank_metrics *m) {
    if (m->n > 0) m->hr10 /= m->n, m->ndcg10 /= m->n, m->hr20 /= m->n, m->ndcg20 /= m->n;
    if (m->n_value > 0) m->mae /= m->n_value, m->rmse = sqrt(m->rmse / m->n_value);
}
