/* clock: the one clock of the code base. Monotonic seconds for durations and deadlines, wall
 * milliseconds for event times and latencies. */
#ifndef IEVO_CLOCK_H
#define IEVO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC: for durations, never for event times. */
static inline double clock_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Milliseconds since the Unix epoch on CLOCK_REALTIME: what Kafka timestamps are in. */
static inline int64_t clock_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
