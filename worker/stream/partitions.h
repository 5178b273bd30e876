/* partitions: what the worker knows about each input partition it has seen: whether it owns it,
 * the next offset to apply, the next offset as of the last checkpoint, and the batch's progress.
 * A table indexed by partition number that grows as partitions appear. */
#ifndef IEVO_PARTITIONS_H
#define IEVO_PARTITIONS_H

#include <stdint.h>

typedef struct {
    int owned;            /* currently assigned to us */
    int64_t next;         /* next offset to apply (-1: unknown until the first record) */
    int64_t checkpointed; /* next offset as of the last checkpoint (durable; -1: none) */
    int64_t batch_next;   /* next offset after the records of the batch being applied */
    int touched;          /* the current batch holds records of this partition */
    int eof;              /* drained: the last fetch reached the end of the log */
    int64_t start, end;   /* replay: first offset and the captured end (-1: not a replay) */
    int64_t input_end;    /* the input's end offset when assigned (-1 unknown): no stored record
                             may have applied an offset at or past max(input_end, next) */
} part_state;

typedef struct {
    part_state *p;        /* (n) indexed by partition number */
    int n;
    int owned;            /* how many are owned */
} partitions;

/* Partition p's record, growing the table as needed (new records: nothing known). NULL on
 * ENOMEM or p < 0. */
part_state *partitions_get(partitions *t, int32_t p);
void partitions_free(partitions *t);

/* Some partition's next offset moved past its last checkpoint. */
int partitions_advanced(const partitions *t);
/* Every owned partition reached the end of its log (and at least one is owned). */
int partitions_drained(const partitions *t);

/* Takes partition p (assigned): resumes at next (-1: from the committed offset). */
void partitions_own(partitions *t, int32_t p, int64_t next);
/* Gives partition p up (revoked): forgets its offsets, so a later assignment starts clean. */
void partitions_release(partitions *t, int32_t p);

#endif
