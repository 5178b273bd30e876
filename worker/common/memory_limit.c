/* memory_limit: see memory_limit.h. A cgroup's limit is read from the files the kernel shows
 * inside the container at /sys/fs/cgroup (cgroup v2: memory.max; v1: memory/memory.limit_in_bytes,
 * where "unlimited" is a huge number near 2^63). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory_limit.h"

/* The number in path, or -1 when it cannot be read or is not a number ("max"). */
static int64_t read_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[64] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!ok) return -1;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || (*end && *end != '\n')) return -1;
    return v;
}

int64_t memory_limit_cgroup(void) {
    int64_t v = read_number("/sys/fs/cgroup/memory.max");
    if (v < 0) v = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    if (v <= 0 || v >= (int64_t)1 << 60) return 0;
    return v;
}
