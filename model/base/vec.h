/* vec: the small float vector kernels the step, the trainer and the text adaptor share.
 *
 * dotf's summation order is part of the model's numerics: the worker's step (step.c), the
 * trainer's forward (train_seq.c) and the cached text adaptor (text.c) must produce the same bits
 * for the same inputs, so all three use this one definition. Eight independent partial sums
 * vectorise without -ffast-math; a row's result depends on that row alone.
 */
#ifndef IEVO_MODEL_VEC_H
#define IEVO_MODEL_VEC_H

/* sum_i a[i] b[i], a and b (n) */
static inline float dotf(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* y (n) += a x (n), in blocks of 8 so -O2's cheap vectoriser takes it (elementwise: the bits do
 * not depend on the blocking). */
static inline void axpyf(float *restrict y, float a, const float *restrict x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) y[i + l] += a * x[i + l];
    for (; i < n; i++) y[i] += a * x[i];
}

/* dotf and axpyf whose x operand may sit at any address (a state blob has no alignment: a
 * RocksDB value or a cache slot, state.c): the same order and bits, each load through memcpy,
 * which compilers turn into an unaligned load. */
static inline float load_f32(const unsigned char *p) {
    float x;
    __builtin_memcpy(&x, p, sizeof x);
    return x;
}

static inline float dotf_unaligned(const float *restrict a, const void *restrict b_any, int n) {
    const unsigned char *b = b_any;
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * load_f32(b + 4 * (i + l));
    float s = 0;
    for (; i < n; i++) s += a[i] * load_f32(b + 4 * i);
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline void axpyf_unaligned(float *restrict y, float a, const void *restrict x_any, int n) {
    const unsigned char *x = x_any;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) y[i + l] += a * load_f32(x + 4 * (i + l));
    for (; i < n; i++) y[i] += a * load_f32(x + 4 * i);
}

#endif
