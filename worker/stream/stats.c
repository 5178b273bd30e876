/* stats: the tables that describe worker_stats (worker.h): the stages' names and the model
 * step's time buckets, shared by the batch (which fills them) and the metrics (which name them). */
#include "worker.h"

const double WORKER_STEP_US_BOUNDS[STEP_US_BUCKETS - 1] = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000};

const char *const WORKER_STAGE_NAMES[STAGE_N] = {"consume", "decode", "state", "model", "encode", "produce",
                                                  "changelog"};
