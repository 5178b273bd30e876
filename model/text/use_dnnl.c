/* use_dnnl: run-time-M oneDNN matmuls with relu / sum post-ops, run in blocks of whole row groups.
 * See use_dnnl.h for why. */
#include "use_dnnl.h"
#include "dnnl_util.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The block sizes a call can have: 6, 12, .. 48 rows. */
#define N_BLOCK_SIZES (USE_DNNL_BLOCK_ROWS / USE_DNNL_ROW_GROUP)
#if USE_DNNL_BLOCK_ROWS % USE_DNNL_ROW_GROUP
#error "USE_DNNL_BLOCK_ROWS must be whole row groups"
#endif

struct use_dnnl_matmul {
    use_dnnl *d;
    int C, OC;
    dnnl_primitive_t p;
    char impl[64];
    dnnl_memory_t w_mem, b_mem, scratch_mem;
    void *w_buf, *b_buf, *scratch;
    dnnl_memory_t src_mem[N_BLOCK_SIZES], dst_mem[N_BLOCK_SIZES]; /* by block rows / ROW_GROUP - 1, made
                                                                     on first use */
    use_dnnl_matmul *next;
};

struct use_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int max_rows;
    use_dnnl_matmul *mms;
};

int use_dnnl_new(use_dnnl **out, int max_rows, char *err, size_t errlen) {
    *out = NULL;
    if (max_rows < 2 || max_rows > (1 << 20)) return model_errf(err, errlen, "oneDNN: max_rows %d out of range", max_rows);
    use_dnnl *d = calloc(1, sizeof *d);
    if (!d) return model_errf(err, errlen, "oneDNN: out of memory");
    d->max_rows = max_rows;
    DN(dnnl_engine_create(&d->eng, dnnl_cpu, 0), "engine create");
    DN(dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags), "stream create");
    *out = d;
    return 0;
fail:
    use_dnnl_free(d);
    return -1;
}

static void matmul_free(use_dnnl_matmul *m) {
    for (int i = 0; i < N_BLOCK_SIZES; i++) {
        if (m->src_mem[i]) dnnl_memory_destroy(m->src_mem[i]);
        if (m->dst_mem[i]) dnnl_memory_destroy(m->dst_mem[i]);
    }
    if (m->w_mem) dnnl_memory_destroy(m->w_mem);
    if (m->b_mem) dnnl_memory_destroy(m->b_mem);
    if (m->scratch_mem) dnnl_memory_destroy(m->scratch_mem);
    if (m->p) dnnl_primitive_destroy(m->p);
    free(m->w_buf);
    free(m->b_buf);
    free(m->scratch);
    free(m);
}

void use_dnnl_free(use_dnnl *d) {
    if (!d) return;
    while (d->mms) {
        use_dnnl_matmul *n = d->mms->next;
        matmul_free(d->mms);
        d->mms = n;
    }
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->eng) dnnl_engine_destroy(d->eng);
    free(d);
}

int use_dnnl_matmul_new(use_dnnl_matmul **out, use_dnnl *d, int C, int OC, const float *w, const float *b, int flags,
                        char *err, size_t errlen) {
    *out = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t rp = NULL;
    dnnl_memory_t wu = NULL;
    use_dnnl_matmul *m = calloc(1, sizeof *m);
    if (!m) return model_errf(err, errlen, "oneDNN: out of memory");
    m->d = d;
    m->C = C;
    m->OC = OC;
    dnnl_memory_desc_t src, wmd, wuser, bmd, dst;
    DN(dnnl_memory_desc_init_by_tag(&src, 2, (dnnl_dims_t){DNNL_RUNTIME_DIM_VAL, C}, dnnl_f32, dnnl_ab), "src desc");
    DN(dnnl_memory_desc_init_by_tag(&dst, 2, (dnnl_dims_t){DNNL_RUNTIME_DIM_VAL, OC}, dnnl_f32, dnnl_ab), "dst desc");
    DN(dnnl_memory_desc_init_by_tag(&wmd, 2, (dnnl_dims_t){C, OC}, dnnl_f32, dnnl_ab), "weights desc");
    DN(dnnl_memory_desc_init_by_tag(&wuser, 2, (dnnl_dims_t){C, OC}, dnnl_f32, dnnl_ab), "weights desc");
    DN(dnnl_memory_desc_init_by_tag(&bmd, 2, (dnnl_dims_t){1, OC}, dnnl_f32, dnnl_ab), "bias desc");
    dnnl_matmul_desc_t md;
    DN(dnnl_matmul_desc_init(&md, &src, &wmd, b ? &bmd : NULL, &dst), "matmul desc init");
    DN(dnnl_primitive_attr_create(&attr), "attr create");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set scratchpad mode");
    DN(dnnl_post_ops_create(&po), "post-ops create");
    if (flags & USE_DNNL_ACCUMULATE) DN(dnnl_post_ops_append_sum(po, 1.0f), "append sum");
    if (flags & USE_DNNL_RELU) DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "append relu");
    DN(dnnl_primitive_attr_set_post_ops(attr, po), "set post-ops");
    DN(dnnl_primitive_desc_create(&pd, &md, attr, d->eng, NULL), "matmul primitive desc create");
    const char *impl = NULL;
    DN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "impl query");
    snprintf(m->impl, sizeof m->impl, "%s", impl ? impl : "?");
    DN(dnnl_primitive_create(&m->p, pd), "matmul primitive create");
    /* weights: into the layout the primitive asks for, once */
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!want) {
        model_errf(err, errlen, "oneDNN: matmul weights query failed");
        goto fail;
    }
    if (!(m->w_buf = dnnl_alloc64(dnnl_memory_desc_get_size(want)))) {
        model_errf(err, errlen, "oneDNN: out of memory for weights");
        goto fail;
    }
    DN(dnnl_memory_create(&wu, &wuser, d->eng, (void *)w), "memory create (user weights)");
    DN(dnnl_memory_create(&m->w_mem, want, d->eng, m->w_buf), "memory create (weights)");
    DN(dnnl_reorder_primitive_desc_create(&rpd, &wuser, d->eng, want, d->eng, NULL), "reorder pd create");
    DN(dnnl_primitive_create(&rp, rpd), "reorder create");
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, m->w_mem}};
    DN(dnnl_primitive_execute(rp, d->stream, 2, ra), "reorder execute");
    DN(dnnl_stream_wait(d->stream), "stream wait");
    if (b) {
        if (!(m->b_buf = dnnl_alloc64((size_t)OC * sizeof(float)))) {
            model_errf(err, errlen, "oneDNN: out of memory");
            goto fail;
        }
        memcpy(m->b_buf, b, (size_t)OC * sizeof(float));
        DN(dnnl_memory_create(&m->b_mem, &bmd, d->eng, m->b_buf), "memory create (bias)");
    }
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ss = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (ss > 0) {
        if (!(m->scratch = dnnl_alloc64(ss))) {
            model_errf(err, errlen, "oneDNN: out of memory for a %zu-byte scratchpad", ss);
            goto fail;
        }
        DN(dnnl_memory_create(&m->scratch_mem, smd, d->eng, m->scratch), "memory create (scratchpad)");
    }
    dnnl_primitive_destroy(rp);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(wu);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    m->next = d->mms;
    d->mms = m;
    *out = m;
    return 0;
fail:
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (wu) dnnl_memory_destroy(wu);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    matmul_free(m);
    return -1;
}

/* One call of oneDNN: rows [0, n) of x and y, n a whole number of row groups. */
static int run_block(use_dnnl_matmul *m, const float *x, float *y, int n, char *err, size_t errlen) {
    use_dnnl *d = m->d;
    int b = n / USE_DNNL_ROW_GROUP - 1;
    if (!m->src_mem[b]) {
        dnnl_memory_desc_t s, t;
        DN(dnnl_memory_desc_init_by_tag(&s, 2, (dnnl_dims_t){n, m->C}, dnnl_f32, dnnl_ab), "src desc");
        DN(dnnl_memory_desc_init_by_tag(&t, 2, (dnnl_dims_t){n, m->OC}, dnnl_f32, dnnl_ab), "dst desc");
        DN(dnnl_memory_create(&m->src_mem[b], &s, d->eng, (void *)x), "memory create (src)");
        DN(dnnl_memory_create(&m->dst_mem[b], &t, d->eng, y), "memory create (dst)");
    } else {
        DN(dnnl_memory_set_data_handle(m->src_mem[b], (void *)x), "set src handle");
        DN(dnnl_memory_set_data_handle(m->dst_mem[b], y), "set dst handle");
    }
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, m->src_mem[b]}, {DNNL_ARG_WEIGHTS, m->w_mem}, {DNNL_ARG_DST, m->dst_mem[b]}};
    int na = 3;
    if (m->b_mem) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m->b_mem};
    if (m->scratch_mem) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m->scratch_mem};
    DN(dnnl_primitive_execute(m->p, d->stream, na, a), "matmul execute");
    DN(dnnl_stream_wait(d->stream), "stream wait");
    return 0;
fail:
    return -1;
}

int use_dnnl_matmul_run(use_dnnl_matmul *m, const float *x, float *y, int M, char *err, size_t errlen) {
    if (M < 0 || M > m->d->max_rows) return model_errf(err, errlen, "oneDNN: %d rows, more than the %d allowed", M, m->d->max_rows);
    for (int r = 0; r < M; r += USE_DNNL_BLOCK_ROWS) {
        int n = M - r < USE_DNNL_BLOCK_ROWS ? USE_DNNL_ROWS_ROOM(M - r) : USE_DNNL_BLOCK_ROWS;
        if (run_block(m, x + (long)r * m->C, y + (long)r * m->OC, n, err, errlen)) return -1;
    }
    return 0;
}

const char *use_dnnl_matmul_impl(const use_dnnl_matmul *m) { return m->impl; }
