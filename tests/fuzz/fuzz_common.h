/* fuzz_common: what the libFuzzer targets share: an invariant check that keeps the input
 * (abort), and allocation counting through the sanitizer's malloc hooks (a decoder must not
 * allocate). Each target defines FUZZ_NAME before including this and calls fuzz_count_begin /
 * fuzz_count_end around a decode. */
#ifndef IEVO_FUZZ_COMMON_H
#define IEVO_FUZZ_COMMON_H

#include <sanitizer/allocator_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A violated invariant: print what and where, then abort so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, FUZZ_NAME ": %s:%d: invariant %s failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Thread-local: the hooks see every thread's allocations, and libFuzzer's own threads (its RSS
 * watcher, the -fork machinery) allocate while a decode runs. */
static _Thread_local int g_counting;
static _Thread_local long g_allocs;

static void fuzz_malloc_hook(const volatile void *ptr, size_t size) {
    (void)ptr, (void)size;
    if (g_counting) g_allocs++;
}
static void fuzz_free_hook(const volatile void *ptr) { (void)ptr; }

static inline void fuzz_hooks_install(void) {
    __sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook, fuzz_free_hook);
}

/* A target with its own set-up defines FUZZ_OWN_INIT and calls fuzz_hooks_install from it. */
#ifndef FUZZ_OWN_INIT
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_hooks_install();
    return 0;
}
#endif

/* One temporary file a target rewrites with each input, for a loader that reads a path; removed
 * at exit. fuzz_tmp_open creates it (tag names it) and returns its path. */
static char g_fuzz_tmp[256];
static int g_fuzz_tmp_fd = -1;

static inline void fuzz_tmp_remove(void) { unlink(g_fuzz_tmp); }

static inline const char *fuzz_tmp_open(const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(g_fuzz_tmp, sizeof g_fuzz_tmp, "%s/ievo-fuzz-%s-XXXXXX", dir && *dir ? dir : "/tmp", tag);
    if ((g_fuzz_tmp_fd = mkstemp(g_fuzz_tmp)) < 0) {
        perror(FUZZ_NAME ": mkstemp");
        abort();
    }
    atexit(fuzz_tmp_remove);
    return g_fuzz_tmp;
}

/* The temporary file now holds exactly d[0..n). */
static inline void fuzz_tmp_write(const uint8_t *d, size_t n) {
    if (ftruncate(g_fuzz_tmp_fd, 0) || pwrite(g_fuzz_tmp_fd, d, n, 0) != (ssize_t)n) abort();
}

static inline void fuzz_count_begin(void) { g_allocs = 0, g_counting = 1; }
/* The allocations since fuzz_count_begin. */
static inline long fuzz_count_end(void) { g_counting = 0; return g_allocs; }

#endif
