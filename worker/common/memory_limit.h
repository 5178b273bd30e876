/* memory_limit: the memory the process may use, as its cgroup says (a container's limit). */
#ifndef IEVO_MEMORY_LIMIT_H
#define IEVO_MEMORY_LIMIT_H

#include <stdint.h>

/* The limit of the cgroup this process runs in, in bytes (cgroup v2's memory.max, else v1's
 * memory.limit_in_bytes); 0 when there is none ("max", a value meaning unlimited, no cgroup). */
int64_t memory_limit_cgroup(void);

#endif
