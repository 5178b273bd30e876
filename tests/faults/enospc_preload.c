/* enospc_preload: an LD_PRELOAD shim that makes the disk "fill up" under one directory.
 *
 *   IEVO_FAULT_DIR=/path        files opened under this prefix are watched
 *   IEVO_FAULT_AFTER_BYTES=N    once N bytes were written to watched files, every further write
 *                               to them fails with ENOSPC (as a full file system does)
 *
 * It wraps open/openat/creat (to learn which descriptors are watched) and write/pwrite/writev/
 * fallocate. Used by tests/integration/test_worker_disk.py to check that the worker stops with a
 * clear error and leaves a store that a later run continues from without losing or repeating an
 * event. Test-only code: never linked into ievo.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

static atomic_char watched[MAX_FD];
static atomic_llong written;
static const char *g_dir;
static size_t g_dir_len;
static long long g_after = -1;

static void init(void) {
    static int done;
    if (done) return;
    done = 1;
    g_dir = getenv("IEVO_FAULT_DIR");
    g_dir_len = g_dir ? strlen(g_dir) : 0;
    const char *a = getenv("IEVO_FAULT_AFTER_BYTES");
    g_after = a ? atoll(a) : -1;
}

static void track(int fd, const char *path) {
    init();
    if (fd < 0 || fd >= MAX_FD) return;
    int w = g_dir && path && strncmp(path, g_dir, g_dir_len) == 0;
    atomic_store(&watched[fd], (char)w);
}

/* 1 when the write must fail. */
static int full(int fd, size_t n) {
    init();
    if (g_after < 0 || fd < 0 || fd >= MAX_FD || !atomic_load(&watched[fd])) return 0;
    long long total = atomic_fetch_add(&written, (long long)n) + (long long)n;
    if (total <= g_after) return 0;
    errno = ENOSPC;
    return 1;
}

#define REAL(name, ret, ...)                                  \
    static ret (*real_##name)(__VA_ARGS__);                   \
    if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

int open(const char *path, int flags, ...) {
    REAL(open, int, const char *, int, ...);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    track(fd, path);
    return fd;
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...) {
    REAL(openat, int, int, const char *, int, ...);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_openat(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, ssize_t, int, const void *, size_t);
    if (full(fd, n)) return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    if (full(fd, n)) return -1;
    return real_pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev, ssize_t, int, const struct iovec *, int);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    if (full(fd, n)) return -1;
    return real_writev(fd, iov, cnt);
}

int fallocate(int fd, int mode, off_t off, off_t len) {
    REAL(fallocate, int, int, int, off_t, off_t);
    if (full(fd, 0) || (g_after >= 0 && fd >= 0 && fd < MAX_FD && atomic_load(&watched[fd]) &&
                        atomic_load(&written) > g_after)) {
        errno = ENOSPC;
        return -1;
    }
    return real_fallocate(fd, mode, off, len);
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));
