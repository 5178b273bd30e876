/* topics: the worker's internal topics, checked on every start and created when missing, as
 * Kafka Streams does with its changelogs.
 *
 *   the changelog      partition p holds the states of input partition p: as many partitions as
 *                      the input, cleanup.policy=compact (the latest record per user is the
 *                      restore), replication factor changelog.replication.factor
 *   the dead-letter    created when missing only with dlq.topic.create=true (its partitioning
 *   topic              does not matter to the worker; an operator may want to own it)
 *
 * A topic that exists with the wrong partition count or cleanup policy is an error that names
 * the fix: the worker does not repartition or reconfigure what someone else created.
 *
 * The decision (topics_decide) is apart from the cluster calls (topics_ops), so it is tested
 * without a cluster: librdkafka's local broker auto-creates any topic a client asks about, with
 * 4 partitions, and answers neither CreateTopics nor DescribeConfigs; only a real cluster shows
 * the creation itself.
 */
#ifndef IEVO_TOPICS_H
#define IEVO_TOPICS_H

#include <stddef.h>

/* What the cluster says of a topic. */
typedef struct {
    int exists;
    int partitions;
    char cleanup_policy[32];   /* "" when the broker could not say (it does not serve DescribeConfigs) */
} topic_facts;

typedef enum { TOPIC_OK, TOPIC_CREATE, TOPIC_WRONG } topic_verdict;

/* What to do about topic `name` that should have want_partitions partitions (0: any) and, when
 * want_policy is not NULL, that cleanup.policy. TOPIC_WRONG fills why with the mismatch and the
 * fix. An unknown policy passes (the caller warns). */
topic_verdict topics_decide(const char *name, const topic_facts *f, int want_partitions, const char *want_policy,
                            char *why, size_t whylen);

/* The cluster calls topics_ensure needs; each returns 0, or -1 with err. */
typedef struct {
    void *ctx;
    int (*describe)(void *ctx, const char *topic, topic_facts *out, char *err, size_t errlen);
    int (*create)(void *ctx, const char *topic, int partitions, int replication_factor, const char *cleanup_policy,
                  char *err, size_t errlen);
} topics_ops;

/* Makes sure topic exists as wanted: describes it, creates it when missing (create_missing, with
 * create_partitions partitions and replication_factor, -1: the cluster's default), and describes
 * it again after a creation. Returns 0, or -1 with err (a mismatch, a failed call). */
int topics_ensure(const topics_ops *ops, const char *topic, int want_partitions, const char *want_policy,
                  int create_missing, int create_partitions, int replication_factor, char *err, size_t errlen);

#endif
