/* train_optim: AdamW and gradient clipping over the model's single parameter block.
 *
 * The gradient and the two moment buffers have the model's layout (one block, the same tensor
 * offsets), so the optimizer is one loop per tensor. AdamW as in PyTorch (Loshchilov & Hutter):
 *   p -= lr * wd * p                          (decoupled decay, matrices and embeddings only:
 *                                              model_tensor_decays)
 *   m  = b1 m + (1-b1) g,   v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * with lr scaled by value_lr for the value head's tensors.
 */
#include <math.h>

#include "model_internal.h"
#include "train.h"

void train_adamw(model *m, const float *grad, float *madam, float *vadam, long t, const train_config *c) {
    const double b1 = c->beta1, b2 = c->beta2, lr = c->lr, eps = c->eps;
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    const float fb1 = (float)b1, fb2 = (float)b2;
    for (int k = 0; k < MODEL_N_TENSORS; k++) {
        const model_tensor *x = &m->t[k];
        if (!x->numel || k == T_VALUE_USER) continue; /* value.user is chosen on validation, not descended */
        size_t off = (size_t)(x->data - m->params), n = x->numel;
        float *p = x->data;
        const float *g = grad + off;
        float *mm = madam + off, *vv = vadam + off;
        /* the value head learns at value_lr * lr: its gradients are sparse per item, and Adam's
         * per-parameter normalisation turns every rare item's few errors into full-size steps */
        const int value = k >= T_VALUE_EMB && k <= T_VALUE_W;
        const double tlr = value ? lr * c->value_lr : lr;
        /* the value head's item and user parts decay with value_wd (its ratings are few and noisy) */
        const double wd = value ? (k == T_VALUE_B ? 0.0 : c->value_wd) : model_tensor_decays(k) ? c->weight_decay : 0.0;
        const float decay = (float)(1.0 - tlr * wd);
        const float step = (float)(tlr / bc1), inv_bc2 = (float)(1.0 / bc2), feps = (float)eps;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i];
            mm[i] = fb1 * mm[i] + (1.0f - fb1) * gi;
            vv[i] = fb2 * vv[i] + (1.0f - fb2) * gi * gi;
            p[i] = p[i] * decay - step * mm[i] / (sqrtf(vv[i] * inv_bc2) + feps);
        }
    }
}

double train_clip(float *grad, size_t n, double clip) {
    /* Fixed-order sum in blocks (no parallel reduction: the bits must not depend on threads). */
    double total = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i + 4096 < n ? i + 4096 : n;
        double s = 0;
        for (; i < e; i++) s += (double)grad[i] * grad[i];
        total += s;
    }
    double norm = sqrt(total);
    if (clip > 0 && norm > clip) {
        float scale = (float)(clip / (norm + 1e-12));
        for (size_t i = 0; i < n; i++) grad[i] *= scale;
    }
    return norm;
}
