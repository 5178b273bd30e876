/* dnnl_util: what the oneDNN wrappers of model/ (nn_dnnl.c, nn_dnnl_train.c, use_dnnl.c) share:
 * the status check and 64-byte-aligned zeroed buffers. */
#ifndef IEVO_MODEL_DNNL_UTIL_H
#define IEVO_MODEL_DNNL_UTIL_H

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdlib.h>
#include <string.h>

#include "model_errf.h"

/* Runs a oneDNN call; on failure fills err (the caller's `err`, `errlen`) and jumps to `fail`. */
#define DN(call, what)                                                                          \
    do {                                                                                        \
        dnnl_status_t st_ = (call);                                                             \
        if (st_ != dnnl_success) {                                                              \
            model_errf(err, errlen, "oneDNN: %s failed: %s", what, dnnl_status2str(st_));       \
            goto fail;                                                                          \
        }                                                                                       \
    } while (0)

/* bytes rounded up to 64 (at least 64), 64-byte aligned, zeroed; free() it. NULL when out of memory. */
static inline void *dnnl_alloc64(size_t bytes) {
    size_t n = (bytes + 63) & ~(size_t)63;
    if (!n) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

#endif
