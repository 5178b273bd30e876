/* test_topics: the internal topics' decision (worker/stream/topics.h) against a fake cluster:
 * missing -> created with the input's partitions and compaction; wrong count or policy -> an
 * error naming the fix, nothing created; a broker that cannot say its policy -> accepted. */
#include <string.h>

#include "check.h"
#include "topics.h"

typedef struct {
    topic_facts facts;       /* what describe answers */
    int creates, describes;
    int created_partitions, created_rf;
    char created_policy[32];
    int fail_create, show_after_create;
} fake_cluster;

static int fake_describe(void *ctx, const char *topic, topic_facts *out, char *err, size_t errlen) {
    (void)topic, (void)err, (void)errlen;
    fake_cluster *c = ctx;
    c->describes++;
    *out = c->facts;
    return 0;
}

static int fake_create(void *ctx, const char *topic, int partitions, int rf, const char *policy, char *err,
                       size_t errlen) {
    fake_cluster *c = ctx;
    c->creates++;
    if (c->fail_create) {
        snprintf(err, errlen, "create topic %s: not authorized", topic);
        return -1;
    }
    c->created_partitions = partitions, c->created_rf = rf;
    snprintf(c->created_policy, sizeof c->created_policy, "%s", policy ? policy : "");
    if (c->show_after_create) {
        c->facts.exists = 1;
        c->facts.partitions = partitions;
        snprintf(c->facts.cleanup_policy, sizeof c->facts.cleanup_policy, "%s", policy ? policy : "delete");
    }
    return 0;
}

static int ensure(fake_cluster *c, int create_missing, char *err, size_t errlen) {
    topics_ops ops = {c, fake_describe, fake_create};
    return topics_ensure(&ops, "g-state-changelog", 8, "compact", create_missing, 8, 3, err, errlen);
}

int main(void) {
    char err[512];
    fake_cluster c = {.show_after_create = 1};
    CHECK(ensure(&c, 1, err, sizeof err) == 0, "missing: %s", err);
    CHECK(c.creates == 1 && c.created_partitions == 8 && c.created_rf == 3 && !strcmp(c.created_policy, "compact"),
          "missing -> created with 8 partitions, rf 3, compact (%d creates, %d partitions, '%s')", c.creates,
          c.created_partitions, c.created_policy);

    c = (fake_cluster){.facts = {1, 8, "compact"}};
    CHECK(ensure(&c, 1, err, sizeof err) == 0 && c.creates == 0, "as wanted: nothing to do");

    c = (fake_cluster){.facts = {1, 4, "compact"}};
    CHECK(ensure(&c, 1, err, sizeof err) == -1 && c.creates == 0, "wrong count accepted");
    CHECK(strstr(err, "4 partitions") && strstr(err, "needs 8") && strstr(err, "create it with 8"),
          "the error names the mismatch and the fix: %s", err);

    c = (fake_cluster){.facts = {1, 8, "delete"}};
    CHECK(ensure(&c, 1, err, sizeof err) == -1 && c.creates == 0, "cleanup.policy=delete accepted");
    CHECK(strstr(err, "cleanup.policy=delete") && strstr(err, "--add-config cleanup.policy=compact"),
          "the error names the policy and the fix: %s", err);

    c = (fake_cluster){.facts = {1, 8, "compact,delete"}};
    CHECK(ensure(&c, 1, err, sizeof err) == 0, "compact,delete keeps the latest record per key: %s", err);

    c = (fake_cluster){.facts = {1, 8, ""}};
    CHECK(ensure(&c, 1, err, sizeof err) == 0, "a broker that cannot say its policy: %s", err);

    c = (fake_cluster){0};
    CHECK(ensure(&c, 0, err, sizeof err) == -1 && c.creates == 0 && strstr(err, "does not exist"),
          "missing, creation off: %s", err);

    c = (fake_cluster){.fail_create = 1};
    CHECK(ensure(&c, 1, err, sizeof err) == -1 && strstr(err, "not authorized"), "a failed creation: %s", err);

    c = (fake_cluster){.show_after_create = 0};
    CHECK(ensure(&c, 1, err, sizeof err) == -1 && strstr(err, "does not show it"), "created but not shown: %s", err);

    topic_facts f = {1, 3, "compact"};
    char why[256];
    CHECK(topics_decide("dlq", &f, 0, NULL, why, sizeof why) == TOPIC_OK, "any count, no policy wanted");
    return check_exit("test_topics");
}
