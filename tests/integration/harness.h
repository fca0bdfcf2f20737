/* Helpers for the cmocka integration tests (tests/integration/itest_*.c).
 *
 * The tests run against the real local stack: `eval "$(deploy/local/stack up)"` sets
 * LP_KAFKA_BROKERS, LP_REDIS_URL and LP_STACK_DIR. Without them every test FAILS with a message
 * saying how to start the stack, so a missing stack can never look like a green run; LP_IT_SKIP=1
 * turns that into a skip (for machines that only want the unit tests).
 *
 * Helpers that talk to Kafka, Redis or child processes fail the calling test themselves (cmocka
 * fail_msg) with a message saying what went wrong where, so tests stay short. They must be called
 * from inside a cmocka test, setup or teardown function. */
#ifndef LP_IT_HARNESS_H
#define LP_IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct redisContext;

/* ---- environment and names ---- */

/* Value of the environment variable name (e.g. "LP_KAFKA_BROKERS"). When it is missing: skips the
 * calling test if LP_IT_SKIP=1, fails it otherwise. The string belongs to the environment. */
const char *lp_it_env(const char *name);

/* A name unique to this process and call: "<prefix>-<pid>-<counter>-<start>", where <start> is
 * the process start time (hex ms), so names don't collide with an earlier run that had the same
 * pid against the same, still running, stack. Valid characters for Kafka topics and Redis keys.
 * The harness owns the string; it stays valid until the process exits. */
const char *lp_it_unique(const char *prefix);

/* ---- time ---- */

/* Monotonic clock in milliseconds. */
int64_t lp_it_now_ms(void);

typedef int (*lp_it_cond_fn)(void *arg);

/* Calls cond(arg) every few milliseconds until it returns non-zero (returns 1) or deadline_ms
 * milliseconds have passed (returns 0, after one last try). Use instead of sleeping:
 * assert_true(lp_it_wait(lead_scored, &ctx, 10000)); */
int lp_it_wait(lp_it_cond_fn cond, void *arg, int64_t deadline_ms);

/* ---- Kafka ---- */

typedef struct lp_it_header {
    char *name;
    void *value; /* NULL for a header without value; else value_len bytes plus a NUL */
    size_t value_len;
} lp_it_header_t;

/* One Kafka record. For lp_it_produce the fields are inputs (partition < 0 = by key, headers
 * optional, offset and timestamp ignored; timestamp > 0 sets the record time in ms). Records
 * returned by lp_it_consume own their buffers; key and value then carry a NUL after their
 * bytes so text payloads can be used as strings (key is NULL for a record without key). */
typedef struct lp_it_record {
    void *key;
    size_t key_len;
    void *value;
    size_t value_len;
    lp_it_header_t *headers;
    size_t header_count;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
} lp_it_record_t;

typedef struct lp_it_records {
    lp_it_record_t *records;
    size_t count;
} lp_it_records_t;

/* Creates topic with the given partitions (replication factor 1) on LP_KAFKA_BROKERS and waits
 * until every partition has a leader. Fails the test on any error, also if it exists already. */
void lp_it_create_topic(const char *topic, int partitions);

/* Number of partitions of topic on LP_KAFKA_BROKERS, or -1 if the broker doesn't know it. */
int lp_it_topic_partitions(const char *topic);

/* Produces count records to topic and waits until all are acknowledged (acks=all); fails the test
 * if any delivery fails. */
void lp_it_produce(const char *topic, const lp_it_record_t *records, size_t count);

/* Produces one record with a text key (NULL: none) and a text value (NULL: tombstone). */
void lp_it_produce_str(const char *topic, const char *key, const char *value);

/* Reads topic from the beginning of every partition, without a consumer group (read_committed).
 * Returns when at least min_count records were read, every partition is at its end and nothing
 * new arrived for quiet_ms; or, with what it has, when deadline_ms have passed (the caller checks
 * the count). Records are in arrival order, per partition in offset order.
 * The caller owns the result and frees it with lp_it_records_free(). */
lp_it_records_t *lp_it_consume(const char *topic, size_t min_count, int quiet_ms,
                               int64_t deadline_ms);

/* lp_it_consume(topic, 0, 500, deadline_ms): everything that is there now. */
lp_it_records_t *lp_it_consume_all(const char *topic, int64_t deadline_ms);

/* Frees records and everything they own. Accepts NULL. */
void lp_it_records_free(lp_it_records_t *records);

/* The first header of record named name, or NULL. Points into record. */
const lp_it_header_t *lp_it_record_header(const lp_it_record_t *record, const char *name);

/* ---- Redis ---- */

/* Connects to LP_REDIS_URL (redis://host:port[/db]); fails the test when it cannot.
 * The caller frees the context with redisFree(). */
struct redisContext *lp_it_redis(void);

/* ---- child processes ---- */

/* Starts argv[0] (searched in PATH) with argv, in the current environment plus env (a
 * NULL-terminated list of "NAME=value" entries that add or replace variables; may be NULL).
 * stdin is /dev/null; stdout and stderr are the test's. The child gets SIGKILL if the test process
 * dies, so a failed test leaves no worker behind. Returns the child's pid; fails the test if fork
 * fails (an exec failure shows as exit status 127). */
pid_t lp_it_spawn(char *const argv[], char *const env[]);

/* Sends sig to pid; fails the test if that is impossible (e.g. no such process). */
void lp_it_kill(pid_t pid, int sig);

/* Waits up to deadline_ms for the child pid to exit and reaps it. Returns its exit code (0-255),
 * 128 + the signal number if a signal ended it, or -1 if it still runs at the deadline. */
int lp_it_wait_exit(pid_t pid, int64_t deadline_ms);

/* Runs `deploy/local/stack <command> [option]` for the stack in LP_STACK_DIR (e.g.
 * "restart-redis", "stop-kafka" with "--kill") and waits for it; fails the test unless it exits
 * 0. option may be NULL. */
void lp_it_stack(const char *command, const char *option);

#endif
