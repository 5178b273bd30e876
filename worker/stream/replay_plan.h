/* replay_plan: where a bounded replay starts and ends, per partition.
 *
 * `ievo replay` re-applies a historical topic into a fresh state dir (a backfill, a model
 * upgrade): from the beginning, from given offsets, or from a point in time, up to the end
 * offsets captured when it starts. A partition the state dir already holds resumes from there
 * (a replay that crashed continues where it stopped). The broker is reached only through the
 * callbacks, so the logic is tested with a double: the local broker cannot map timestamps to
 * offsets (librdkafka 2.0.2's mock answers -1), a real cluster can.
 */
#ifndef IEVO_REPLAY_PLAN_H
#define IEVO_REPLAY_PLAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { REPLAY_FROM_BEGINNING = 0, REPLAY_FROM_OFFSETS = 1, REPLAY_FROM_TIMESTAMP = 2 } replay_from;

#define REPLAY_MAX_OFFSETS 1024

typedef struct {
    replay_from from;
    int64_t timestamp_ms;                    /* REPLAY_FROM_TIMESTAMP */
    int n_offsets;                           /* REPLAY_FROM_OFFSETS: partition=offset pairs */
    int32_t offset_partition[REPLAY_MAX_OFFSETS];
    int64_t offset_value[REPLAY_MAX_OFFSETS];
} replay_spec;

/* Parses "beginning", "offsets:0=120,1=0,..." or "timestamp:MS" (ms since the epoch). */
int replay_spec_parse(replay_spec *spec, const char *text, char *err, size_t errlen);

/* What the plan asks of the broker and the state store. Each returns 0, or -1 with err filled. */
typedef struct {
    void *ctx;
    /* low and high watermark of one partition */
    int (*watermarks)(void *ctx, int32_t partition, int64_t *low, int64_t *high, char *err, size_t errlen);
    /* the first offset at or after ts_ms, per partition; -1 when the broker has no answer
     * (a real cluster answers the end offset for a time after the last record) */
    int (*offsets_for_times)(void *ctx, int n, const int32_t *partitions, int64_t ts_ms, int64_t *offsets,
                             char *err, size_t errlen);
    /* the state dir's next offset for a partition, -1 when it holds none */
    int (*stored_offset)(void *ctx, int32_t partition, int64_t *next, char *err, size_t errlen);
} replay_env;

typedef struct {
    int32_t partition;
    int64_t start;      /* first offset to apply */
    int64_t end;        /* stop before this offset (captured high watermark) */
    int resumed;        /* start came from the state dir */
} replay_range;

/* Plans n partitions 0..n-1 into out[n]. An offset below the low watermark is an error (the
 * data is gone); a start past the end is clamped to the end (nothing to do). */
int replay_plan(const replay_spec *spec, const replay_env *env, int n, replay_range *out, char *err, size_t errlen);

#endif
