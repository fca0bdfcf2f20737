/* The local stack and the integration harness themselves: Kafka round trip through a fresh
 * topic, the topics `deploy/local/stack up` creates, Redis, child processes and waiting. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "harness.h"

#define RECORDS 100
#define KEYS 10

static void test_kafka_round_trip(void **state) {
    const char *topic = lp_it_unique("itest-stack");
    lp_it_record_t records[RECORDS];
    lp_it_header_t headers[RECORDS];
    char keys[RECORDS][32];
    char values[RECORDS][32];
    char seqs[RECORDS][16];
    int seen[RECORDS] = {0};
    int32_t key_partition[KEYS];
    int64_t last_offset[3] = {-1, -1, -1};
    lp_it_records_t *got;

    (void)state;
    lp_it_create_topic(topic, 3);
    assert_int_equal(lp_it_topic_partitions(topic), 3);

    for (int i = 0; i < RECORDS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "lead-%d", i % KEYS);
        snprintf(values[i], sizeof(values[i]), "value-%d", i);
        snprintf(seqs[i], sizeof(seqs[i]), "%d", i);
        headers[i] =
            (lp_it_header_t){.name = "seq", .value = seqs[i], .value_len = strlen(seqs[i])};
        records[i] = (lp_it_record_t){
            .key = keys[i],
            .key_len = strlen(keys[i]),
            .value = values[i],
            .value_len = strlen(values[i]),
            .headers = &headers[i],
            .header_count = 1,
            .partition = -1,
            .timestamp = 1700000000000LL + i,
        };
    }
    lp_it_produce(topic, records, RECORDS);

    got = lp_it_consume(topic, RECORDS, 300, 30000);
    assert_int_equal(got->count, RECORDS);
    for (int k = 0; k < KEYS; k++) {
        key_partition[k] = -1;
    }
    for (size_t i = 0; i < got->count; i++) {
        const lp_it_record_t *record = &got->records[i];
        const lp_it_header_t *seq = lp_it_record_header(record, "seq");
        int n;
        int k;

        assert_non_null(seq);
        n = atoi(seq->value);
        assert_in_range(n, 0, RECORDS - 1);
        assert_int_equal(seen[n], 0);
        seen[n] = 1;
        assert_string_equal(record->value, values[n]);
        assert_string_equal(record->key, keys[n]);
        assert_int_equal(record->timestamp, 1700000000000LL + n);
        /* Same key, same partition: what co-partitioning of the input topics relies on. */
        k = n % KEYS;
        if (key_partition[k] < 0) {
            key_partition[k] = record->partition;
        }
        assert_int_equal(record->partition, key_partition[k]);
        assert_in_range(record->partition, 0, 2);
        assert_true(record->offset > last_offset[record->partition]);
        last_offset[record->partition] = record->offset;
    }
    lp_it_records_free(got);
}

static void test_stack_topics(void **state) {
    static const char *const inputs[] = {"engagement.events", "lead.profiles", "sales.feedback"};
    static const char *const outputs[] = {"leads.mql", "leads.stale", "leads.erased",
                                          "leadpulse.dlq"};
    int partitions = lp_it_topic_partitions(inputs[0]);

    (void)state;
    assert_true(partitions >= 1);
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        /* Input topics must be co-partitioned: same count everywhere. */
        assert_int_equal(lp_it_topic_partitions(inputs[i]), partitions);
    }
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        assert_true(lp_it_topic_partitions(outputs[i]) >= 1);
    }
    assert_int_equal(lp_it_topic_partitions(lp_it_unique("no-such-topic")), -1);
}

static void test_redis(void **state) {
    redisContext *ctx = lp_it_redis();
    const char *key = lp_it_unique("itest-stack-key");
    redisReply *reply;

    (void)state;
    reply = redisCommand(ctx, "PING");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    assert_string_equal(reply->str, "PONG");
    freeReplyObject(reply);

    reply = redisCommand(ctx, "SET %s %s", key, "v1");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    reply = redisCommand(ctx, "GET %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "v1");
    freeReplyObject(reply);
    reply = redisCommand(ctx, "DEL %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);

    /* The stack runs Redis with the documented durability: AOF, fsync every second. */
    reply = redisCommand(ctx, "CONFIG GET appendonly");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 2);
    assert_string_equal(reply->element[1]->str, "yes");
    freeReplyObject(reply);
    redisFree(ctx);
}

static void test_spawn(void **state) {
    char *exit7[] = {"sh", "-c", "exit 7", NULL};
    char *env_check[] = {"sh", "-c", "test \"$LP_IT_PROBE\" = yes && test -n \"$PATH\"", NULL};
    char *probe[] = {"LP_IT_PROBE=yes", NULL};
    char *sleeper[] = {"sleep", "60", NULL};
    char *missing[] = {"lp-it-no-such-program", NULL};
    pid_t pid;

    (void)state;
    assert_int_equal(lp_it_wait_exit(lp_it_spawn(exit7, NULL), 10000), 7);
    assert_int_equal(lp_it_wait_exit(lp_it_spawn(env_check, probe), 10000), 0);
    assert_int_equal(lp_it_wait_exit(lp_it_spawn(env_check, NULL), 10000), 1);
    assert_int_equal(lp_it_wait_exit(lp_it_spawn(missing, NULL), 10000), 127);

    pid = lp_it_spawn(sleeper, NULL);
    assert_int_equal(lp_it_wait_exit(pid, 50), -1);
    lp_it_kill(pid, SIGTERM);
    assert_int_equal(lp_it_wait_exit(pid, 10000), 128 + SIGTERM);
}

static int count_to_five(void *arg) {
    int *calls = arg;

    return ++*calls >= 5;
}

static int never(void *arg) {
    (void)arg;
    return 0;
}

static void test_wait(void **state) {
    int calls = 0;
    int64_t start;

    (void)state;
    assert_int_equal(lp_it_wait(count_to_five, &calls, 10000), 1);
    assert_int_equal(calls, 5);

    start = lp_it_now_ms();
    assert_int_equal(lp_it_wait(never, NULL, 200), 0);
    assert_true(lp_it_now_ms() - start >= 200);

    assert_string_not_equal(lp_it_unique("x"), lp_it_unique("x"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_round_trip),
        cmocka_unit_test(test_stack_topics),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_spawn),
        cmocka_unit_test(test_wait),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
