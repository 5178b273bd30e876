/* atomic_file: temporary sibling, O_EXCL, rename. See atomic_file.h. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ATOMIC_FILE_TRIES 64

static void atomic_file_free(atomic_file *a) {
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
    a->f = NULL;
}

/* 12 characters of [a-z0-9]: from getrandom, else from the clock and a counter (the name only
 * has to be new: O_EXCL, not its unpredictability, is what keeps a planted file out). */
static void random_suffix(char out[13]) {
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static _Atomic uint64_t counter;
    unsigned char r[12];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^ ++counter;
        for (int i = 0; i < 12; i++, x = x * 6364136223846793005u + 1442695040888963407u) r[i] = (unsigned char)(x >> 56);
    }
    for (int i = 0; i < 12; i++) out[i] = digits[r[i] % (sizeof digits - 1)];
    out[12] = 0;
}

int atomic_file_open(atomic_file *a, const char *path, int mode, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 32;
    if (!(a->path = strdup(path)) || !(a->tmp = malloc(n))) {
        atomic_file_free(a);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int fd = -1, e = 0;
    for (int i = 0; i < ATOMIC_FILE_TRIES && fd < 0; i++) {
        char sfx[13];
        random_suffix(sfx);
        snprintf(a->tmp, n, "%s.tmp-%s", path, sfx);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        e = errno;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file beside %s: %s", path, strerror(e));
        atomic_file_free(a);
        return -1;
    }
    if (!(a->f = fdopen(fd, "wb"))) {
        e = errno;
        close(fd);
        unlink(a->tmp);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        atomic_file_free(a);
        return -1;
    }
    return 0;
}

int atomic_file_commit(atomic_file *a, char *err, size_t errlen) {
    int bad = ferror(a->f) != 0, e = bad ? EIO : 0;
    if (!bad && (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)) bad = 1, e = errno;
    if (fclose(a->f) != 0 && !bad) bad = 1, e = errno;
    a->f = NULL;
    if (!bad && rename(a->tmp, a->path) != 0) bad = 1, e = errno;
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", a->path, strerror(e));
        unlink(a->tmp);
    }
    atomic_file_free(a);
    return bad ? -1 : 0;
}

void atomic_file_abort(atomic_file *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    atomic_file_free(a);
}
