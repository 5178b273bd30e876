/* topics: see topics.h. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "topics.h"

topic_verdict topics_decide(const char *name, const topic_facts *f, int want_partitions, const char *want_policy,
                            char *why, size_t whylen) {
    if (!f->exists) return TOPIC_CREATE;
    if (want_partitions > 0 && f->partitions != want_partitions) {
        snprintf(why, whylen, "topic %s has %d partitions, it needs %d (the input's count: partition p of it holds "
                 "the states of input partition p); delete it and let the worker create it, or create it with %d "
                 "partitions%s%s", name, f->partitions, want_partitions, want_partitions,
                 want_policy ? " and cleanup.policy=" : "", want_policy ? want_policy : "");
        return TOPIC_WRONG;
    }
    if (want_policy && f->cleanup_policy[0] && !strstr(f->cleanup_policy, want_policy)) {
        snprintf(why, whylen, "topic %s has cleanup.policy=%s, it needs %s (a restore reads the latest record of "
                 "each user, which only compaction keeps for ever); set it with kafka-configs --alter "
                 "--entity-type topics --entity-name %s --add-config cleanup.policy=%s", name, f->cleanup_policy,
                 want_policy, name, want_policy);
        return TOPIC_WRONG;
    }
    return TOPIC_OK;
}

int topics_ensure(const topics_ops *ops, const char *topic, int want_partitions, const char *want_policy,
                  int create_missing, int create_partitions, int replication_factor, char *err, size_t errlen) {
    topic_facts f;
    char why[512];
    if (ops->describe(ops->ctx, topic, &f, err, errlen)) return -1;
    topic_verdict v = topics_decide(topic, &f, want_partitions, want_policy, why, sizeof why);
    if (v == TOPIC_CREATE) {
        if (!create_missing) {
            snprintf(err, errlen, "topic %s does not exist (create it, or let the worker create it)", topic);
            return -1;
        }
        LOG_IF("topics", LOG_AT(LF_TOPIC(topic), LF_COUNT(create_partitions)),
               "creating %s: %d partitions%s%s, replication factor %s", topic, create_partitions,
              want_policy ? ", cleanup.policy=" : "", want_policy ? want_policy : "",
              replication_factor > 0 ? "as configured" : "the cluster's default");
        if (ops->create(ops->ctx, topic, create_partitions, replication_factor, want_policy, err, errlen) ||
            ops->describe(ops->ctx, topic, &f, err, errlen))
            return -1;
        v = topics_decide(topic, &f, want_partitions, want_policy, why, sizeof why);
        if (v == TOPIC_CREATE) {
            snprintf(err, errlen, "topic %s: created, but the cluster does not show it", topic);
            return -1;
        }
    }
    if (v == TOPIC_WRONG) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (want_policy && !f.cleanup_policy[0])
        LOG_W("topics", "%s: the broker does not say its cleanup.policy (no DescribeConfigs); it should be %s", topic,
              want_policy);
    return 0;
}
