/* atomic_file: a file written whole or not at all. It is written under a temporary name beside
 * its final one and renamed into place, so a reader or a crash never sees half of it.
 *
 * The temporary name is random and created with O_CREAT | O_EXCL | O_NOFOLLOW: a file or a
 * symbolic link that already has the name (another process's, or one planted in a shared
 * directory to redirect the write) is never opened, truncated or followed; another name is
 * tried instead. A fixed name such as "PATH.tmp" gives both away.
 */
#ifndef IEVO_ATOMIC_FILE_H
#define IEVO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;            /* write here */
    char *tmp, *path;   /* the temporary name and the final one (ours) */
} atomic_file;

/* Creates a temporary sibling of path ("PATH.tmp-XXXXXXXXXXXX") with mode, less the umask, and
 * opens it for writing in a->f. Returns 0, or -1 with err naming path. */
int atomic_file_open(atomic_file *a, const char *path, int mode, char *err, size_t errlen);
/* Flushes, fsyncs and closes a->f and renames the temporary over path. Returns 0; -1 with err
 * (the temporary removed) when any of that, or an earlier write, failed. */
int atomic_file_commit(atomic_file *a, char *err, size_t errlen);
/* Closes and removes the temporary: the write is abandoned and path left as it was. */
void atomic_file_abort(atomic_file *a);

#endif
