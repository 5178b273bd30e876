/* test_replay_plan: where a bounded replay starts and ends, against a broker double (the local
 * broker cannot answer offsets-for-times, so that path is only testable this way). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "replay_plan.h"

typedef struct {
    int64_t low[3], high[3], stored[3], ts_answer[3];
    int64_t asked_ts;
} fake;

static int wm(void *ctx, int32_t p, int64_t *lo, int64_t *hi, char *err, size_t n) {
    (void)err; (void)n;
    fake *f = ctx;
    *lo = f->low[p];
    *hi = f->high[p];
    return 0;
}
static int oft(void *ctx, int n, const int32_t *parts, int64_t ts, int64_t *out, char *err, size_t en) {
    (void)err; (void)en;
    fake *f = ctx;
    f->asked_ts = ts;
    for (int i = 0; i < n; i++) out[i] = f->ts_answer[parts[i]];
    return 0;
}
static int stored(void *ctx, int32_t p, int64_t *next, char *err, size_t n) {
    (void)err; (void)n;
    *next = ((fake *)ctx)->stored[p];
    return 0;
}

int main(void) {
    char err[256];
    replay_spec s;
    CHECK(replay_spec_parse(&s, "beginning", err, sizeof err) == 0 && s.from == REPLAY_FROM_BEGINNING, "beginning");
    CHECK(replay_spec_parse(&s, "timestamp:1700000000000", err, sizeof err) == 0 && s.from == REPLAY_FROM_TIMESTAMP &&
          s.timestamp_ms == 1700000000000LL, "timestamp");
    CHECK(replay_spec_parse(&s, "offsets:0=50,2=7", err, sizeof err) == 0 && s.n_offsets == 2 &&
          s.offset_partition[1] == 2 && s.offset_value[1] == 7, "offsets");
    const char *bad[] = {"", "start", "timestamp:", "timestamp:-5", "timestamp:12x", "offsets:", "offsets:0",
                         "offsets:0=", "offsets:a=1", "offsets:0=-1", "offsets:0=1;1=2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(replay_spec_parse(&s, bad[i], err, sizeof err) != 0, "'%s' accepted", bad[i]);

    fake f = {.low = {10, 0, 5}, .high = {100, 0, 50}, .stored = {-1, -1, 20}, .ts_answer = {60, 0, 7}};
    replay_env env = {&f, wm, oft, stored};
    replay_range r[3];

    replay_spec_parse(&s, "beginning", err, sizeof err);
    REQUIRE(replay_plan(&s, &env, 3, r, err, sizeof err) == 0, "%s", err);
    CHECK(r[0].start == 10 && r[0].end == 100 && !r[0].resumed, "p0 %lld..%lld", (long long)r[0].start, (long long)r[0].end);
    CHECK(r[1].start == 0 && r[1].end == 0, "empty p1");
    CHECK(r[2].start == 20 && r[2].end == 50 && r[2].resumed, "p2 resumes from the state dir");

    replay_spec_parse(&s, "offsets:0=50,1=0", err, sizeof err);
    REQUIRE(replay_plan(&s, &env, 3, r, err, sizeof err) == 0, "%s", err);
    CHECK(r[0].start == 50 && r[1].start == 0 && r[2].start == 20, "offsets");
    f.stored[2] = -1;
    REQUIRE(replay_plan(&s, &env, 3, r, err, sizeof err) == 0, "%s", err);
    CHECK(r[2].start == 50 && r[2].end == 50, "a partition not named replays nothing: %lld", (long long)r[2].start);

    replay_spec_parse(&s, "offsets:0=5", err, sizeof err);
    CHECK(replay_plan(&s, &env, 3, r, err, sizeof err) != 0 && strstr(err, "below the log start"), "gone: %s", err);
    replay_spec_parse(&s, "offsets:0=500", err, sizeof err);
    REQUIRE(replay_plan(&s, &env, 3, r, err, sizeof err) == 0, "%s", err);
    CHECK(r[0].start == 100, "past the end is clamped: %lld", (long long)r[0].start);
    replay_spec_parse(&s, "offsets:7=1", err, sizeof err);
    CHECK(replay_plan(&s, &env, 3, r, err, sizeof err) != 0 && strstr(err, "does not exist"), "%s", err);

    f.stored[2] = 20;
    replay_spec_parse(&s, "timestamp:1700000000000", err, sizeof err);
    REQUIRE(replay_plan(&s, &env, 3, r, err, sizeof err) == 0, "%s", err);
    CHECK(f.asked_ts == 1700000000000LL, "asked the broker for the time");
    CHECK(r[0].start == 60 && r[1].start == 0 && r[2].start == 20, "time: %lld %lld %lld", (long long)r[0].start,
          (long long)r[1].start, (long long)r[2].start);
    f.ts_answer[0] = -1;   /* what the local broker answers */
    CHECK(replay_plan(&s, &env, 3, r, err, sizeof err) != 0 && strstr(err, "no offset for timestamp"), "%s", err);
    return check_exit("test_replay_plan");
}
