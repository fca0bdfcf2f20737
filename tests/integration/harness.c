/* Integration test harness: see harness.h. Every helper fails the calling cmocka test on error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

extern char **environ;

/* Set by CMake for every target of the library; the fallback keeps the harness buildable alone. */
#ifndef LP_SOURCE_DIR
#define LP_SOURCE_DIR "."
#endif

/* Admin, produce and metadata requests against a local broker answer in milliseconds; this only
 * bounds how long a broken stack can hold a test. */
#define LP_IT_KAFKA_TIMEOUT_MS 30000

/* ---- environment and names ---- */

const char *lp_it_env(const char *name) {
    const char *value = getenv(name);
    const char *skip_flag = getenv("LP_IT_SKIP");

    if (value != NULL && value[0] != '\0') {
        return value;
    }
    if (skip_flag != NULL && strcmp(skip_flag, "1") == 0) {
        print_message("%s is not set and LP_IT_SKIP=1: skipping\n", name);
        skip();
        return NULL;
    }
    fail_msg("%s is not set: integration tests need the local stack. Start it with\n"
             "    eval \"$(deploy/local/stack up)\"\n"
             "(or set LP_IT_SKIP=1 to skip integration tests)",
             name);
    return NULL;
}

typedef struct lp_it_name {
    struct lp_it_name *next;
    char text[];
} lp_it_name_t;

/* Reachable from here until exit, so leak checkers don't report the names. */
static lp_it_name_t *lp_it_names;

const char *lp_it_unique(const char *prefix) {
    static unsigned counter;
    static long long start;
    lp_it_name_t *entry;
    int len;

    if (start == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    counter++;
    len = snprintf(NULL, 0, "%s-%ld-%u-%llx", prefix, (long)getpid(), counter, start);
    entry = malloc(sizeof(*entry) + (size_t)len + 1);
    assert_non_null(entry);
    snprintf(entry->text, (size_t)len + 1, "%s-%ld-%u-%llx", prefix, (long)getpid(), counter,
             start);
    entry->next = lp_it_names;
    lp_it_names = entry;
    return entry->text;
}

/* ---- time ---- */

int64_t lp_it_now_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lp_it_sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int lp_it_wait(lp_it_cond_fn cond, void *arg, int64_t deadline_ms) {
    int64_t end = lp_it_now_ms() + deadline_ms;

    for (;;) {
        if (cond(arg)) {
            return 1;
        }
        if (lp_it_now_ms() >= end) {
            /* One last look: the condition may have come true while we slept. */
            return cond(arg) ? 1 : 0;
        }
        lp_it_sleep_ms(10);
    }
}

/* ---- Kafka ---- */

static rd_kafka_conf_t *lp_it_kafka_conf(void) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", lp_it_env("LP_KAFKA_BROKERS"), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        fail_msg("bootstrap.servers: %s", errstr);
    }
    return conf;
}

static void lp_it_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        fail_msg("librdkafka config %s=%s: %s", name, value, errstr);
    }
}

static rd_kafka_t *lp_it_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));

    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fail_msg("rd_kafka_new: %s", errstr);
    }
    return rk;
}

/* Number of partitions of topic that have a leader (-1: topic unknown). */
static int lp_it_partitions_led(rd_kafka_t *rk, const char *topic, int *total) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int led = -1;

    *total = 0;
    err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        led = 0;
        *total = md->topics[0].partition_cnt;
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            if (md->topics[0].partitions[i].leader >= 0) {
                led++;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    return led;
}

int lp_it_topic_partitions(const char *topic) {
    rd_kafka_t *rk = lp_it_kafka_new(RD_KAFKA_PRODUCER, lp_it_kafka_conf());
    int total = 0;
    int led = lp_it_partitions_led(rk, topic, &total);

    rd_kafka_destroy(rk);
    return led < 0 ? -1 : total;
}

void lp_it_create_topic(const char *topic, int partitions) {
    rd_kafka_t *rk = lp_it_kafka_new(RD_KAFKA_PRODUCER, lp_it_kafka_conf());
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *new_topic;
    rd_kafka_event_t *event;
    const rd_kafka_CreateTopics_result_t *result;
    const rd_kafka_topic_result_t **results;
    size_t result_count = 0;
    char errstr[512];
    char failure[512] = "";
    int64_t end;

    new_topic = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    if (new_topic == NULL) {
        snprintf(failure, sizeof(failure), "%s", errstr);
        goto done;
    }
    rd_kafka_CreateTopics(rk, &new_topic, 1, NULL, queue);
    rd_kafka_NewTopic_destroy(new_topic);

    event = rd_kafka_queue_poll(queue, LP_IT_KAFKA_TIMEOUT_MS);
    if (event == NULL) {
        snprintf(failure, sizeof(failure), "no answer within %d ms", LP_IT_KAFKA_TIMEOUT_MS);
        goto done;
    }
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof(failure), "%s", rd_kafka_event_error_string(event));
        rd_kafka_event_destroy(event);
        goto done;
    }
    result = rd_kafka_event_CreateTopics_result(event);
    results = result != NULL ? rd_kafka_CreateTopics_result_topics(result, &result_count) : NULL;
    if (result_count != 1) {
        snprintf(failure, sizeof(failure), "unexpected admin result (%zu topics)", result_count);
    } else if (rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof(failure), "%s: %s",
                 rd_kafka_err2name(rd_kafka_topic_result_error(results[0])),
                 rd_kafka_topic_result_error_string(results[0]));
    }
    rd_kafka_event_destroy(event);
    if (failure[0] != '\0') {
        goto done;
    }

    /* The controller answers before the partitions have leaders; producing right away would fail
     * with "unknown partition" now and then. */
    end = lp_it_now_ms() + LP_IT_KAFKA_TIMEOUT_MS;
    for (;;) {
        int total = 0;
        int led = lp_it_partitions_led(rk, topic, &total);

        if (led == partitions && total == partitions) {
            break;
        }
        if (lp_it_now_ms() >= end) {
            snprintf(failure, sizeof(failure), "%d of %d partitions have a leader after %d ms",
                     led < 0 ? 0 : led, partitions, LP_IT_KAFKA_TIMEOUT_MS);
            break;
        }
        lp_it_sleep_ms(20);
    }

done:
    rd_kafka_queue_destroy(queue);
    rd_kafka_destroy(rk);
    if (failure[0] != '\0') {
        fail_msg("creating topic %s (%d partitions) on %s: %s", topic, partitions,
                 lp_it_env("LP_KAFKA_BROKERS"), failure);
    }
}

typedef struct lp_it_delivery {
    size_t delivered;
    size_t failed;
    char first_error[256];
} lp_it_delivery_t;

static void lp_it_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    lp_it_delivery_t *delivery = opaque;

    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        delivery->delivered++;
        return;
    }
    if (delivery->failed++ == 0) {
        snprintf(delivery->first_error, sizeof(delivery->first_error), "%s [%" PRId32 "]: %s",
                 rd_kafka_topic_name(msg->rkt), msg->partition, rd_kafka_err2str(msg->err));
    }
}

void lp_it_produce(const char *topic, const lp_it_record_t *records, size_t count) {
    rd_kafka_conf_t *conf = lp_it_kafka_conf();
    lp_it_delivery_t delivery = {0};
    rd_kafka_t *rk;
    char failure[512] = "";
    rd_kafka_resp_err_t err;

    lp_it_conf_set(conf, "acks", "all");
    lp_it_conf_set(conf, "linger.ms", "5");
    lp_it_conf_set(conf, "enable.idempotence", "true");
    rd_kafka_conf_set_dr_msg_cb(conf, lp_it_on_delivery);
    rd_kafka_conf_set_opaque(conf, &delivery);
    rk = lp_it_kafka_new(RD_KAFKA_PRODUCER, conf);

    for (size_t i = 0; i < count; i++) {
        const lp_it_record_t *record = &records[i];
        rd_kafka_headers_t *headers = NULL;

        if (record->header_count > 0) {
            headers = rd_kafka_headers_new(record->header_count);
            for (size_t h = 0; h < record->header_count; h++) {
                rd_kafka_header_add(headers, record->headers[h].name, -1, record->headers[h].value,
                                    (ssize_t)record->headers[h].value_len);
            }
        }
        do {
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION(record->partition < 0 ? RD_KAFKA_PARTITION_UA
                                                           : record->partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(record->key, record->key_len),
                RD_KAFKA_V_VALUE(record->value, record->value_len),
                RD_KAFKA_V_TIMESTAMP(record->timestamp > 0 ? record->timestamp : 0),
                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
            /* A full local queue only means the broker is slower than the loop: drain, retry. */
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100);
            }
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* On failure the headers were not handed over. */
            rd_kafka_headers_destroy(headers);
            snprintf(failure, sizeof(failure), "record %zu: %s", i, rd_kafka_err2str(err));
            break;
        }
        rd_kafka_poll(rk, 0);
    }

    err = rd_kafka_flush(rk, LP_IT_KAFKA_TIMEOUT_MS);
    if (failure[0] == '\0' && err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof(failure), "flush: %s (%zu of %zu delivered)",
                 rd_kafka_err2str(err), delivery.delivered, count);
    }
    if (failure[0] == '\0' && delivery.failed > 0) {
        snprintf(failure, sizeof(failure), "%zu deliveries failed, first: %s", delivery.failed,
                 delivery.first_error);
    }
    rd_kafka_destroy(rk);
    if (failure[0] != '\0') {
        fail_msg("producing %zu records to %s: %s", count, topic, failure);
    }
}

void lp_it_produce_str(const char *topic, const char *key, const char *value) {
    lp_it_record_t record = {
        .key = (void *)key,
        .key_len = key != NULL ? strlen(key) : 0,
        .value = (void *)value,
        .value_len = value != NULL ? strlen(value) : 0,
        .partition = -1,
    };

    lp_it_produce(topic, &record, 1);
}

/* A copy of len bytes plus a NUL, so text payloads can be read as strings. */
static void *lp_it_copy(const void *data, size_t len) {
    char *copy;

    if (data == NULL) {
        return NULL;
    }
    copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

static void lp_it_record_fill(lp_it_record_t *record, const rd_kafka_message_t *msg) {
    rd_kafka_headers_t *headers = NULL;

    memset(record, 0, sizeof(*record));
    record->key = lp_it_copy(msg->key, msg->key_len);
    record->key_len = msg->key_len;
    record->value = lp_it_copy(msg->payload, msg->len);
    record->value_len = msg->len;
    record->partition = msg->partition;
    record->offset = msg->offset;
    record->timestamp = rd_kafka_message_timestamp(msg, NULL);
    if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t count = rd_kafka_header_cnt(headers);

        record->headers = calloc(count, sizeof(*record->headers));
        assert_non_null(record->headers);
        for (size_t h = 0; h < count; h++) {
            const char *name;
            const void *value;
            size_t value_len;

            if (rd_kafka_header_get_all(headers, h, &name, &value, &value_len) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                break;
            }
            record->headers[h].name = lp_it_copy(name, strlen(name));
            record->headers[h].value = lp_it_copy(value, value_len);
            record->headers[h].value_len = value_len;
            record->header_count++;
        }
    }
}

static void lp_it_record_clear(lp_it_record_t *record) {
    for (size_t h = 0; h < record->header_count; h++) {
        free(record->headers[h].name);
        free(record->headers[h].value);
    }
    free(record->headers);
    free(record->key);
    free(record->value);
}

void lp_it_records_free(lp_it_records_t *records) {
    if (records == NULL) {
        return;
    }
    for (size_t i = 0; i < records->count; i++) {
        lp_it_record_clear(&records->records[i]);
    }
    free(records->records);
    free(records);
}

static void lp_it_records_push(lp_it_records_t *records, size_t *capacity,
                               const rd_kafka_message_t *msg) {
    if (records->count == *capacity) {
        size_t grown = *capacity == 0 ? 64 : *capacity * 2;
        lp_it_record_t *bigger = realloc(records->records, grown * sizeof(*bigger));

        assert_non_null(bigger);
        records->records = bigger;
        *capacity = grown;
    }
    lp_it_record_fill(&records->records[records->count++], msg);
}

lp_it_records_t *lp_it_consume(const char *topic, size_t min_count, int quiet_ms,
                               int64_t deadline_ms) {
    rd_kafka_conf_t *conf = lp_it_kafka_conf();
    rd_kafka_topic_partition_list_t *assignment = NULL;
    lp_it_records_t *records = calloc(1, sizeof(*records));
    char *at_end = NULL;
    size_t capacity = 0;
    int partitions = 0;
    int ends = 0;
    int64_t start = lp_it_now_ms();
    int64_t end = start + deadline_ms;
    int64_t last_arrival = start;
    char failure[512] = "";
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;

    assert_non_null(records);
    /* No group: assign() every partition from the beginning, commit nothing. */
    lp_it_conf_set(conf, "group.id", lp_it_unique("lp-it-reader"));
    lp_it_conf_set(conf, "enable.auto.commit", "false");
    lp_it_conf_set(conf, "enable.partition.eof", "true");
    lp_it_conf_set(conf, "isolation.level", "read_committed");
    rk = lp_it_kafka_new(RD_KAFKA_CONSUMER, conf);

    while (partitions == 0) {
        int total = 0;
        int led = lp_it_partitions_led(rk, topic, &total);

        if (led > 0 && led == total) {
            partitions = total;
        } else if (lp_it_now_ms() >= end) {
            snprintf(failure, sizeof(failure), "topic unknown or without leaders");
            goto done;
        } else {
            lp_it_sleep_ms(20);
        }
    }
    assignment = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(assignment, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    err = rd_kafka_assign(rk, assignment);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof(failure), "assign: %s", rd_kafka_err2str(err));
        goto done;
    }
    at_end = calloc((size_t)partitions, 1);
    assert_non_null(at_end);

    for (;;) {
        int64_t now = lp_it_now_ms();
        rd_kafka_message_t *msg;

        if (records->count >= min_count && ends == partitions && now - last_arrival >= quiet_ms) {
            break;
        }
        if (now >= end) {
            break;
        }
        msg = rd_kafka_consumer_poll(rk, 50);
        if (msg == NULL) {
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->partition >= 0 && msg->partition < partitions && !at_end[msg->partition]) {
                at_end[msg->partition] = 1;
                ends++;
            }
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Transport errors are retried by librdkafka; anything else is a real failure. */
            if (msg->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
                msg->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                snprintf(failure, sizeof(failure), "consume: %s", rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                goto done;
            }
        } else {
            lp_it_records_push(records, &capacity, msg);
            last_arrival = lp_it_now_ms();
            if (msg->partition >= 0 && msg->partition < partitions && at_end[msg->partition]) {
                at_end[msg->partition] = 0;
                ends--;
            }
        }
        rd_kafka_message_destroy(msg);
    }

done:
    free(at_end);
    if (assignment != NULL) {
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (failure[0] != '\0') {
        lp_it_records_free(records);
        fail_msg("reading topic %s from %s: %s", topic, lp_it_env("LP_KAFKA_BROKERS"), failure);
    }
    return records;
}

lp_it_records_t *lp_it_consume_all(const char *topic, int64_t deadline_ms) {
    return lp_it_consume(topic, 0, 500, deadline_ms);
}

const lp_it_header_t *lp_it_record_header(const lp_it_record_t *record, const char *name) {
    for (size_t h = 0; h < record->header_count; h++) {
        if (strcmp(record->headers[h].name, name) == 0) {
            return &record->headers[h];
        }
    }
    return NULL;
}

/* ---- Redis ---- */

struct redisContext *lp_it_redis(void) {
    const char *url = lp_it_env("LP_REDIS_URL");
    char host[256];
    int port = 0;
    int db = 0;
    int consumed = 0;
    redisContext *ctx;
    struct timeval timeout = {.tv_sec = 5, .tv_usec = 0};

    if (sscanf(url, "redis://%255[^:/]:%d%n", host, &port, &consumed) != 2 || port <= 0 ||
        port > 65535) {
        fail_msg("LP_REDIS_URL=%s: expected redis://host:port[/db]", url);
    }
    if (url[consumed] == '/' && url[consumed + 1] != '\0') {
        db = atoi(url + consumed + 1);
    }
    ctx = redisConnectWithTimeout(host, port, timeout);
    if (ctx == NULL || ctx->err != 0) {
        char reason[256];

        snprintf(reason, sizeof(reason), "%s", ctx != NULL ? ctx->errstr : "out of memory");
        redisFree(ctx);
        fail_msg("connecting to redis at %s: %s (is the stack up?)", url, reason);
    }
    if (db != 0) {
        redisReply *reply = redisCommand(ctx, "SELECT %d", db);
        int ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;

        freeReplyObject(reply);
        if (!ok) {
            redisFree(ctx);
            fail_msg("redis at %s: SELECT %d failed", url, db);
        }
    }
    return ctx;
}

/* ---- child processes ---- */

/* environ with the NAME=value entries of extra added or replaced. Only the array is allocated;
 * the strings belong to environ and extra. */
static char **lp_it_merged_env(char *const extra[]) {
    size_t base = 0;
    size_t more = 0;
    size_t count = 0;
    char **merged;

    while (environ[base] != NULL) {
        base++;
    }
    while (extra != NULL && extra[more] != NULL) {
        more++;
    }
    merged = calloc(base + more + 1, sizeof(*merged));
    assert_non_null(merged);
    for (size_t i = 0; i < base; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq != NULL ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        int replaced = 0;

        for (size_t j = 0; j < more; j++) {
            if (strncmp(environ[i], extra[j], name_len) == 0) {
                replaced = 1;
                break;
            }
        }
        if (!replaced) {
            merged[count++] = environ[i];
        }
    }
    for (size_t j = 0; j < more; j++) {
        merged[count++] = extra[j];
    }
    merged[count] = NULL;
    return merged;
}

pid_t lp_it_spawn(char *const argv[], char *const env[]) {
    /* Built before fork: the test process has librdkafka threads, so the child may only make
     * async-signal-safe calls before exec (no malloc). */
    char **envp = lp_it_merged_env(env);
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        int saved = errno;

        free(envp);
        fail_msg("fork for %s: %s", argv[0], strerror(saved));
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);

        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The test may have died between fork and prctl. */
        if (getppid() != parent) {
            _exit(127);
        }
        execvpe(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    return pid;
}

void lp_it_kill(pid_t pid, int sig) {
    if (kill(pid, sig) != 0) {
        fail_msg("kill(%ld, %d): %s", (long)pid, sig, strerror(errno));
    }
}

int lp_it_wait_exit(pid_t pid, int64_t deadline_ms) {
    int64_t end = lp_it_now_ms() + deadline_ms;
    int status = 0;

    for (;;) {
        pid_t done = waitpid(pid, &status, WNOHANG);

        if (done == pid) {
            if (WIFEXITED(status)) {
                return WEXITSTATUS(status);
            }
            if (WIFSIGNALED(status)) {
                return 128 + WTERMSIG(status);
            }
        } else if (done < 0 && errno != EINTR) {
            fail_msg("waitpid(%ld): %s", (long)pid, strerror(errno));
        }
        if (lp_it_now_ms() >= end) {
            return -1;
        }
        lp_it_sleep_ms(10);
    }
}

void lp_it_stack(const char *command, const char *option) {
    const char *source_dir = getenv("LP_SOURCE_DIR");
    char script[4096];
    char *argv[5];
    pid_t pid;
    int status;

    (void)lp_it_env("LP_STACK_DIR");
    if (source_dir == NULL || source_dir[0] == '\0') {
        source_dir = LP_SOURCE_DIR;
    }
    snprintf(script, sizeof(script), "%s/deploy/local/stack", source_dir);
    argv[0] = "bash";
    argv[1] = script;
    argv[2] = (char *)command;
    argv[3] = (char *)option;
    argv[4] = NULL;
    pid = lp_it_spawn(argv, NULL);
    /* A clean Kafka restart takes 10-20 s on a small machine; the limit only catches a hang. */
    status = lp_it_wait_exit(pid, 300000);
    if (status == -1) {
        kill(pid, SIGKILL);
        lp_it_wait_exit(pid, 10000);
    }
    if (status != 0) {
        fail_msg("deploy/local/stack %s%s%s failed (status %d; its messages are above)", command,
                 option != NULL ? " " : "", option != NULL ? option : "", status);
    }
}
