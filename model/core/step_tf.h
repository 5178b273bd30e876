/* step_tf: the transformer blocks of model_step (attention tf, model.h): what reads h_t instead
 * of the window attention, with every block's keys and values of the window's earlier
 * positions cached in the state, so a step computes one position per block. step.c owns the
 * runner and calls these; they share its oneDNN context and its h_t and u buffers.
 */
#ifndef IEVO_STEP_TF_H
#define IEVO_STEP_TF_H

#include "model_internal.h"
#include "nn_dnnl.h"

typedef struct step_tf step_tf;

/* Buffers for max_batch rows, reading h (max_batch, H) and writing u (max_batch, D); with the
 * dnnl backend (dn not NULL) the blocks' primitives, created on dn before its finalize. */
int step_tf_new(step_tf **out, const model *m, int max_batch, nn_dnnl *dn, float *h, float *u, char *err, size_t errlen);
void step_tf_free(step_tf *t);
/* The blocks over rows 0..n-1 (bucket: the dnnl primitives' for n rows, ignored by scalar):
 * row i attends, in every block, over the cached keys and values of the used[i] window entries
 * before it (the ring before hdr[i].head in states[i]) and its own. u is written; the states are
 * not (step_tf_commit). */
int step_tf_forward(step_tf *t, int n, int bucket, void *const *states, const int *used, const model_state_hdr *hdr,
                    char *err, size_t errlen);
/* Writes row i's keys and values of every block into its state's cache at window slot `slot`. */
void step_tf_commit(const step_tf *t, int i, void *state, int slot);
/* u (D) of the last event of a state with wlen >= 1 entries and ring head `head`, from h_t
 * (state) and the cache, with the scalar kernels: model_state_output's transformer part. */
int step_tf_output(step_tf *t, const void *state, const float *h, int wlen, int head, float *u, char *err, size_t errlen);

#endif
