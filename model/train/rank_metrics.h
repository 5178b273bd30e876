/* rank_metrics: leave-one-out ranking metrics and the popularity baseline, shared by the trainer's
 * validation and `ievo eval`.
 *
 * The protocol (docs/training.md): every item of the vocabulary except the OOV row is a
 * candidate; items already in the user's input history are removed; the target's rank is the
 * number of remaining candidates that score higher, or the same with a lower index (so a tie
 * never helps the target and every ranking is deterministic). HR@K = [rank < K],
 * NDCG@K = [rank < K] / log2(rank + 2), averaged over the users that have a target.
 */
#ifndef IEVO_RANK_METRICS_H
#define IEVO_RANK_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    long n;                          /* targets ranked */
    double hr10, ndcg10, hr20, ndcg20; /* sums until metrics_finish, then means */
    long n_value;                    /* targets with a value and a prediction */
    double mae, rmse;                /* sums of |e| and e^2 until metrics_finish */
} rank_metrics;

/* Rank of `target` among items 1..n_items-1 with seen[i] == 0 (target itself excluded from the
 * count; its own seen flag is ignored). scores[0] is never read. */
long metrics_rank(const float *scores, int n_items, int target, const unsigned char *seen);
void metrics_add_rank(rank_metrics *m, long rank);
void metrics_add_value(rank_metrics *m, double predicted, double actual);
/* Turns the sums into means (idempotent only once: call it exactly once). */
void metrics_finish(rank_metrics *m);

#endif
