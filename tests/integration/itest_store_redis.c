/* leadpulse Redis store against a real redis-server: the shared store suite, then what only Redis
 * can do wrong (script cache loss, restarts, partial writes, big batches), Redis memory per lead
 * and a small commit benchmark.
 *
 * LP_REDIS_URL=redis://127.0.0.1:<port> names the server for the suite (LP_IT_SKIP=1 skips the
 * test when it is unset). The restart and memory tests start their own redis-server on a free
 * loopback port, so they never disturb a shared server; they are skipped without the binary. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../unit/test_store_suite.h"
#include "store/redis_internal.h"

extern char **environ;

static const char *redis_url;
static int prefix_seq;

static double now_s(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each test gets its own key prefix: tests never see each other's keys. */
static lp_store_t *new_store_at(const char *url) {
    char prefix[64];
    char err[LP_ERRSTR];
    lp_store_t *store;

    snprintf(prefix, sizeof(prefix), "lpit%d.%d", (int)getpid(), ++prefix_seq);
    store = lp_store_redis_new(url, prefix, 2000, err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "itest_store_redis: %s\n", err);
    }
    return store;
}

static lp_store_t *new_redis_store(void) {
    return new_store_at(redis_url);
}

/* A plain hiredis connection for checks and admin commands (AUTH/SELECT from the url). */
static redisContext *raw_connect(const char *url) {
    lp_store_redis_url_t u;
    char err[LP_ERRSTR];
    struct timeval tv = {2, 0};
    redisContext *ctx;
    redisReply *reply;

    if (lp_store_redis_url_parse(url, &u, err, sizeof(err)) != LP_OK) {
        return NULL;
    }
    ctx = redisConnectWithTimeout(u.host, u.port, tv);
    if (ctx == NULL || ctx->err) {
        redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    if (u.password[0] != '\0') {
        reply = u.user[0] != '\0' ? redisCommand(ctx, "AUTH %s %s", u.user, u.password)
                                  : redisCommand(ctx, "AUTH %s", u.password);
        freeReplyObject(reply);
    }
    if (u.db != 0) {
        freeReplyObject(redisCommand(ctx, "SELECT %d", u.db));
    }
    return ctx;
}

static long long raw_int(redisContext *ctx, const char *fmt, const char *arg) {
    redisReply *reply = redisCommand(ctx, fmt, arg);
    long long v;

    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    v = reply->integer;
    freeReplyObject(reply);
    return v;
}

static const char *store_prefix(char *buf, size_t size) {
    snprintf(buf, size, "lpit%d.%d", (int)getpid(), prefix_seq);
    return buf;
}

/* ---- a private redis-server, for the tests that kill it or measure its memory ---- */

typedef struct {
    pid_t pid;
    int port;
    char url[64];
} private_redis_t;

static int free_port(void) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static int redis_ready(const char *url) {
    redisContext *ctx = raw_connect(url);
    redisReply *reply;
    int ok;

    if (ctx == NULL) {
        return 0;
    }
    reply = redisCommand(ctx, "PING");
    ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    redisFree(ctx);
    return ok;
}

static int private_start(private_redis_t *r, int port) {
    char portstr[16];
    char *argv[] = {"redis-server", "--port",    portstr,        "--bind", "127.0.0.1",
                    "--save",       "",          "--appendonly", "no",     "--loglevel",
                    "warning",      "--logfile", "/dev/null",    NULL};
    posix_spawn_file_actions_t fa;
    double deadline;
    int rc;

    snprintf(portstr, sizeof(portstr), "%d", port);
    r->port = port;
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", port);
    /* The server must not hold our stdout: a pipe reading the test output would never end. */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&r->pid, "redis-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        r->pid = 0;
        return -1;
    }
    for (deadline = now_s() + 10; now_s() < deadline;) {
        if (redis_ready(r->url)) {
            return 0;
        }
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1; /* exited: port taken, or no redis-server */
        }
        usleep(20000);
    }
    return -1;
}

static void private_kill(private_redis_t *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* Starts a private server or skips the calling test (no redis-server binary). */
static void private_start_or_skip(private_redis_t *r) {
    int attempt;

    for (attempt = 0; attempt < 3; attempt++) {
        int port = free_port();

        if (port > 0 && private_start(r, port) == 0) {
            return;
        }
        private_kill(r);
    }
    skip();
}

/* Setup and teardown of the private-server tests: the server dies even when a test fails. */
static int private_setup(void **state) {
    *state = calloc(1, sizeof(private_redis_t));
    return *state == NULL ? -1 : 0;
}

static int private_teardown(void **state) {
    private_kill(*state);
    free(*state);
    return 0;
}

/* ---- Redis-only tests ---- */

static void test_script_flush_reloads(void **state) {
    lp_store_t *store = *state;
    redisContext *raw = raw_connect(redis_url);
    static const uint8_t v1[] = "one";
    static const uint8_t v2[] = "two";
    const char *ids[] = {"lead"};
    lp_store_loaded_t loaded;
    int64_t epoch;
    uint64_t rt;

    assert_non_null(raw);
    assert_int_equal(lp_store_fence(store, 0, &epoch), LP_OK);
    assert_int_equal(put_lead(store, 0, epoch, "lead", v1, sizeof(v1)), LP_OK);
    freeReplyObject(redisCommand(raw, "SCRIPT FLUSH"));
    rt = store->round_trips;
    assert_int_equal(put_lead(store, 0, epoch, "lead", v2, sizeof(v2)), LP_OK);
    /* EVALSHA -> NOSCRIPT, SCRIPT LOAD, EVALSHA. */
    assert_int_equal(store->round_trips - rt, 3);
    rt = store->round_trips;
    assert_int_equal(put_lead(store, 0, epoch, "lead", v1, sizeof(v1)), LP_OK);
    assert_int_equal(store->round_trips - rt, 1);
    assert_int_equal(lp_store_load(store, 0, 1, ids, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], v1, sizeof(v1));

    /* The ack script reloads too. */
    freeReplyObject(redisCommand(raw, "SCRIPT FLUSH"));
    {
        const char *none[] = {"1-0"};

        assert_int_equal(lp_store_outbox_ack(store, 0, epoch, 1, none), LP_OK);
        assert_int_equal(lp_store_outbox_ack(store, 0, epoch - 1, 1, none), LP_STORE_FENCED);
    }
    redisFree(raw);
}

/* Redis runs a script's writes up to a failing command and keeps them: the script must find
 * every problem before its first write. A key of the wrong type must leave everything as it was. */
static void test_wrong_type_writes_nothing(void **state) {
    lp_store_t *store = *state;
    redisContext *raw = raw_connect(redis_url);
    char prefix[64];
    char key[128];
    lp_store_lead_t lead = {"w", (const uint8_t *)"data", 4};
    lp_store_timer_t timer = {"w", 5};
    lp_store_offset_t off = {"t", 3, -1};
    lp_store_outbox_t e = out_entry(0, "w", "v", 1, "id", "");
    lp_store_batch_t batch = {.partition = 3,
                              .nleads = 1,
                              .leads = &lead,
                              .ntimers = 1,
                              .timers = &timer,
                              .noffsets = 1,
                              .offsets = &off,
                              .noutbox = 1,
                              .outbox = &e};

    assert_non_null(raw);
    snprintf(key, sizeof(key), "%s:{3}:outbox", store_prefix(prefix, sizeof(prefix)));
    freeReplyObject(redisCommand(raw, "SET %s not-a-stream", key));
    assert_int_equal(lp_store_commit(store, &batch), LP_ERR);
    assert_non_null(strstr(store->errstr, "WRONGTYPE"));
    snprintf(key, sizeof(key), "%s:{3}:leads", prefix);
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);
    snprintf(key, sizeof(key), "%s:{3}:buckets", prefix);
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);
    snprintf(key, sizeof(key), "%s:{3}:leads:%u", prefix,
             lp_redis_lead_bucket("w", 1, LP_STORE_REDIS_LEAD_BUCKETS));
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);
    snprintf(key, sizeof(key), "%s:{3}:timers", prefix);
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);
    snprintf(key, sizeof(key), "%s:{3}:offsets", prefix);
    assert_int_equal(raw_int(raw, "EXISTS %s", key), 0);
    snprintf(key, sizeof(key), "%s:{3}:outbox", prefix);
    freeReplyObject(redisCommand(raw, "DEL %s", key));
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    redisFree(raw);
}

/* Every key of a partition carries the same hash tag {p}: one slot, one atomic script. */
static void test_key_layout(void **state) {
    lp_store_t *store = *state;
    redisContext *raw = raw_connect(redis_url);
    char bucket[32];
    const char *const names[] = {bucket,  "timers", "offsets", "outbox",
                                 "epoch", "leads",  "buckets"};
    static const char *const types[] = {"hash",   "zset",   "hash",  "stream",
                                        "string", "string", "string"};
    lp_store_lead_t lead = {"k", (const uint8_t *)"d", 1};
    lp_store_timer_t timer = {"k", 5};
    lp_store_offset_t off = {"t", 3, -1};
    lp_store_outbox_t e = out_entry(0, "k", "v", 1, "id", "");
    lp_store_batch_t batch = {.partition = 42,
                              .nleads = 1,
                              .leads = &lead,
                              .ntimers = 1,
                              .timers = &timer,
                              .noffsets = 1,
                              .offsets = &off,
                              .noutbox = 1,
                              .outbox = &e};
    char prefix[64];
    char key[128];
    size_t i;

    assert_non_null(raw);
    snprintf(bucket, sizeof(bucket), "leads:%u",
             lp_redis_lead_bucket("k", 1, LP_STORE_REDIS_LEAD_BUCKETS));
    assert_int_equal(lp_store_fence(store, 42, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    store_prefix(prefix, sizeof(prefix));
    for (i = 0; i < 7; i++) {
        redisReply *reply;

        snprintf(key, sizeof(key), "%s:{42}:%s", prefix, names[i]);
        reply = redisCommand(raw, "TYPE %s", key);
        assert_non_null(reply);
        assert_string_equal(reply->str, types[i]);
        freeReplyObject(reply);
    }
    redisFree(raw);
}

/* A retried commit whose offsets are stored already (its first reply was lost) writes nothing:
 * no second outbox entry, no overwrite of the lead. */
static void test_retry_is_idempotent(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t lead = {"k", (const uint8_t *)"first", 5};
    lp_store_offset_t off = {"t", 10, -1};
    lp_store_outbox_t e = out_entry(0, "k", "v", 1, "id", "");
    lp_store_batch_t batch = {.partition = 43,
                              .nleads = 1,
                              .leads = &lead,
                              .noffsets = 1,
                              .offsets = &off,
                              .noutbox = 1,
                              .outbox = &e};
    lp_store_outbox_list_t list = {0};
    lp_store_loaded_t loaded = {0};
    const char *ids[1] = {"k"};

    assert_int_equal(lp_store_fence(store, 43, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    lead.data = (const uint8_t *)"again";
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_DUPLICATE);
    assert_int_equal(lp_store_outbox_read(store, 43, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
    assert_int_equal(lp_store_load(store, 43, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 5);
    assert_memory_equal(loaded.data[0], "first", 5);
    /* The next batch (offsets move on) is applied. */
    off.expected = 10;
    off.next_offset = 11;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 43, 10, &list), LP_OK);
    assert_int_equal(list.n, 2);
}

static void test_big_batch(void **state) {
    enum { N = 10000 };
    lp_store_t *store = *state;
    static lp_store_lead_t leads[N];
    static lp_store_timer_t timers[N];
    static lp_store_outbox_t outbox[N / 10];
    static char ids[N][24];
    static const char *idp[N];
    static uint8_t data[N][100];
    lp_store_batch_t batch = {.partition = 5,
                              .nleads = N,
                              .leads = leads,
                              .ntimers = N,
                              .timers = timers,
                              .noutbox = N / 10,
                              .outbox = outbox};
    lp_store_loaded_t loaded;
    lp_store_outbox_list_t list;
    const char **due = NULL;
    size_t ndue;
    uint64_t rt;
    size_t i;

    for (i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "big-%05zu", i);
        memset(data[i], (int)(i % 251), sizeof(data[i]));
        leads[i] = (lp_store_lead_t){ids[i], data[i], sizeof(data[i])};
        timers[i] = (lp_store_timer_t){ids[i], (int64_t)(N - i)};
        idp[i] = ids[i];
        if (i < N / 10) {
            outbox[i] = out_entry(1, ids[i], data[i], sizeof(data[i]), ids[i], "");
        }
    }
    assert_int_equal(lp_store_fence(store, 5, &batch.epoch), LP_OK);
    rt = store->round_trips;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(store->round_trips - rt, 1);
    rt = store->round_trips;
    assert_int_equal(lp_store_load(store, 5, N, idp, &loaded), LP_OK);
    assert_int_equal(store->round_trips - rt, 1);
    for (i = 0; i < N; i++) {
        assert_int_equal(loaded.len[i], sizeof(data[i]));
        assert_memory_equal(loaded.data[i], data[i], sizeof(data[i]));
    }
    assert_int_equal(lp_store_due(store, 5, 3, 100, &ndue, &due), LP_OK);
    assert_int_equal(ndue, 3);
    assert_string_equal(due[0], ids[N - 1]);
    assert_string_equal(due[2], ids[N - 3]);
    assert_int_equal(lp_store_outbox_read(store, 5, N, &list), LP_OK);
    assert_int_equal(list.n, N / 10);
    assert_string_equal(list.entries[N / 10 - 1].event_id, ids[N / 10 - 1]);
}

/* Redis killed and restarted on the same port (state lost: no persistence here). */
static void test_restart(void **state) {
    private_redis_t *rp = *state;
    lp_store_t *store;
    const char *ids[] = {"r"};
    lp_store_loaded_t loaded;
    int64_t epoch = 0;
    int failures = 0;
    int rc = LP_ERR;
    double deadline;

    private_start_or_skip(rp);
    store = new_store_at(rp->url);
    assert_non_null(store);
    assert_int_equal(lp_store_fence(store, 0, &epoch), LP_OK);
    assert_int_equal(put_lead(store, 0, epoch, "r", (const uint8_t *)"1", 1), LP_OK);

    /* Killed while idle and back before the next call: even a commit goes through at once (the
     * dead socket is noticed before sending, and the lost script cache is reloaded). */
    private_kill(rp);
    assert_int_equal(private_start(rp, rp->port), 0);
    assert_int_equal(put_lead(store, 0, 0, "r", (const uint8_t *)"2", 1), LP_OK);
    assert_int_equal(lp_store_load(store, 0, 1, ids, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], "2", 1);

    /* Down: calls fail cleanly with a reason, and keep failing without crashing. */
    private_kill(rp);
    assert_int_equal(lp_store_load(store, 0, 1, ids, &loaded), LP_ERR);
    assert_non_null(strstr(store->errstr, "127.0.0.1"));
    assert_int_equal(put_lead(store, 0, 0, "r", (const uint8_t *)"3", 1), LP_ERR);
    assert_int_equal(lp_store_fence(store, 0, &epoch), LP_ERR);

    /* Back: a later call succeeds (the engine retries with backoff). */
    assert_int_equal(private_start(rp, rp->port), 0);
    for (deadline = now_s() + 10; now_s() < deadline;) {
        rc = lp_store_fence(store, 0, &epoch);
        if (rc == LP_OK) {
            break;
        }
        failures++;
        usleep(50000);
    }
    assert_int_equal(rc, LP_OK);
    assert_true(failures <= 1);
    assert_int_equal(epoch, 1);
    assert_int_equal(put_lead(store, 0, epoch, "r", (const uint8_t *)"4", 1), LP_OK);
    assert_int_equal(lp_store_load(store, 0, 1, ids, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], "4", 1);
    lp_store_destroy(store);
}

static long long used_memory(redisContext *raw) {
    redisReply *reply = redisCommand(raw, "INFO memory");
    const char *p;
    long long v = -1;

    if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
        (p = strstr(reply->str, "used_memory:")) != NULL) {
        v = atoll(p + strlen("used_memory:"));
    }
    freeReplyObject(reply);
    return v;
}

/* Commits n leads of 100 bytes (and a timer each if with_timers) in batches of 1000 over
 * 8 partitions. Returns the seconds taken. */
static double fill(lp_store_t *store, size_t n, int with_timers, const char *tag) {
    enum { BATCH = 1000, PARTS = 8 };
    static lp_store_lead_t leads[BATCH];
    static lp_store_timer_t timers[BATCH];
    static char ids[BATCH][32];
    uint8_t data[100];
    double t0 = now_s();
    size_t b;
    size_t i;

    memset(data, 'x', sizeof(data));
    for (b = 0; b < n / BATCH; b++) {
        lp_store_batch_t batch = {.partition = (int32_t)(b % PARTS),
                                  .nleads = BATCH,
                                  .leads = leads,
                                  .ntimers = with_timers ? BATCH : 0,
                                  .timers = timers};

        for (i = 0; i < BATCH; i++) {
            /* Ids like real ones: 16-24 characters. */
            snprintf(ids[i], sizeof(ids[i]), "%s-lead-%08zu", tag, b * BATCH + i);
            leads[i] = (lp_store_lead_t){ids[i], data, sizeof(data)};
            timers[i] = (lp_store_timer_t){ids[i], 1700000000000LL + (int64_t)(b * BATCH + i)};
        }
        assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    }
    return now_s() - t0;
}

/* Memory per lead, measured on a private server so other clients cannot skew it. */
static void test_memory_per_lead(void **state) {
    enum { N = 100000 };
    private_redis_t *r = *state;
    redisContext *raw;
    lp_store_t *store;
    long long m0;
    long long m1;
    long long m2;
    double per_lead;
    double per_lead_timer;

    char msg[LP_ERRSTR];
    double per_lead_default;

    private_start_or_skip(r);
    raw = raw_connect(r->url);
    store = new_store_at(r->url);
    assert_non_null(raw);
    assert_non_null(store);
    /* Redis's default listpack limits (128 entries, 64-byte values): the check says so, and the
     * buckets are plain hash tables. */
    assert_int_equal(lp_store_redis_listpack_check(store, 0, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "hash-max-listpack-value 64"));
    m0 = used_memory(raw);
    fill(store, N, 0, "d");
    per_lead_default = (double)(used_memory(raw) - m0) / N;
    /* The recommended limits: every bucket stays a listpack. */
    freeReplyObject(redisCommand(raw, "CONFIG SET hash-max-ziplist-entries %d",
                                 LP_STORE_REDIS_LISTPACK_ENTRIES));
    freeReplyObject(
        redisCommand(raw, "CONFIG SET hash-max-ziplist-value %d", LP_STORE_REDIS_LISTPACK_VALUE));
    assert_int_equal(lp_store_redis_listpack_check(store, 0, msg, sizeof(msg)), 1);
    lp_store_destroy(store);
    store = new_store_at(r->url);
    assert_non_null(store);
    m0 = used_memory(raw);
    fill(store, N, 0, "m");
    m1 = used_memory(raw);
    fill(store, N, 1, "t");
    m2 = used_memory(raw);
    per_lead = (double)(m1 - m0) / N;
    per_lead_timer = (double)(m2 - m1) / N;
    {
        char key[128], prefix[64];
        snprintf(key, sizeof(key), "%s:{0}:leads:7", store_prefix(prefix, sizeof(prefix)));
        redisReply *enc = redisCommand(raw, "OBJECT ENCODING %s", key);
        assert_non_null(enc);
        assert_string_equal(enc->str, "listpack");
        freeReplyObject(enc);
    }
    printf("redis memory: %.1f bytes per lead (100-byte state, 15-character id, %d leads, %d "
           "lead buckets per partition); %.1f bytes per lead with its timer; %.1f bytes per "
           "lead with Redis's default listpack limits\n",
           per_lead, N, LP_STORE_REDIS_LEAD_BUCKETS, per_lead_timer, per_lead_default);
    /* The layout's target (docs/redis-layout.md). */
    assert_true(per_lead > 0 && per_lead <= 150.0);
    lp_store_destroy(store);
    redisFree(raw);
}

/* Every lead of partition p through the store (load) and by hand: each in the bucket
 * FNV-1a(id) % buckets, the count stored, no other bucket key, the old hash a marker string. */
static void check_buckets(redisContext *raw, lp_store_t *store, int32_t p, int n, uint32_t buckets,
                          char ids[][16], const char *prefix) {
    char key[128];
    const char *idp[1];
    lp_store_loaded_t loaded;
    long long total = 0;

    snprintf(key, sizeof(key), "%s:{%d}:buckets", prefix, (int)p);
    redisReply *reply = redisCommand(raw, "GET %s", key);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(strtol(reply->str, NULL, 10), buckets);
    freeReplyObject(reply);
    snprintf(key, sizeof(key), "%s:{%d}:leads", prefix, (int)p);
    reply = redisCommand(raw, "TYPE %s", key);
    assert_string_equal(reply->str, "string");
    freeReplyObject(reply);
    for (int i = 0; i < n; i++) {
        idp[0] = ids[i];
        assert_int_equal(lp_store_load(store, p, 1, idp, &loaded), LP_OK);
        assert_non_null(loaded.data[0]);
        assert_int_equal(loaded.len[0], strlen(ids[i]) + 1);
        assert_memory_equal(loaded.data[0] + 1, ids[i], strlen(ids[i]));
        snprintf(key, sizeof(key), "%s:{%d}:leads:%u", prefix, (int)p,
                 lp_redis_lead_bucket(ids[i], strlen(ids[i]), buckets));
        reply = redisCommand(raw, "HEXISTS %s %s", key, ids[i]);
        assert_int_equal(reply->integer, 1);
        freeReplyObject(reply);
    }
    char match[128], cursor[32] = "0";
    snprintf(match, sizeof(match), "%s:{%d}:leads:*", prefix, (int)p);
    do {
        reply = redisCommand(raw, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
        for (size_t k = 0; k < reply->element[1]->elements; k++) {
            const char *name = reply->element[1]->element[k]->str;
            assert_true(strtoul(strrchr(name, ':') + 1, NULL, 10) < buckets);
            total += raw_int(raw, "HLEN %s", name);
        }
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
    assert_int_equal(total, n);
    /* The scan (inspect --all, repartition) walks every bucket. */
    uint64_t cur = 0;
    int scanned = 0;
    do {
        lp_store_scan_t page;
        assert_int_equal(lp_store_scan(store, p, &cur, 100, &page), LP_OK);
        scanned += (int)page.n;
    } while (cur != 0);
    assert_int_equal(scanned, n);
}

/* A partition written by an older version (one hash), then the bucket count changed twice, one
 * move interrupted: each fence moves the leads, none is lost, and the older layout is refused
 * to older workers (WRONGTYPE on the marker). */
static void test_rebucket(void **state) {
    enum { N = 3000 };
    lp_store_t *store = *state;
    redisContext *raw = raw_connect(redis_url);
    static char ids[N][16];
    char prefix[64], key[128];
    int64_t epoch;
    const int32_t p = 9;

    assert_non_null(raw);
    store_prefix(prefix, sizeof(prefix));
    snprintf(key, sizeof(key), "%s:{%d}:leads", prefix, (int)p);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "old-%05d", i);
        /* value = one byte then the id: checkable after every move */
        redisAppendCommand(raw, "HSET %s %s x%s", key, ids[i], ids[i]);
    }
    for (int i = 0; i < N; i++) {
        redisReply *reply;
        assert_int_equal(redisGetReply(raw, (void **)&reply), REDIS_OK);
        freeReplyObject(reply);
    }
    /* A tool's store reads the older layout as it is (no fence, nothing moved). */
    const char *one[] = {ids[17]};
    lp_store_loaded_t loaded;
    assert_int_equal(lp_store_load(store, p, 1, one, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], "xold-00017", 10);

    assert_int_equal(lp_store_redis_set_lead_buckets(store, 16), LP_OK);
    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    check_buckets(raw, store, p, N, 16, ids, prefix);
    redisReply *reply = redisCommand(raw, "HMGET %s x", key);
    assert_int_equal(reply->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(reply->str, "WRONGTYPE"));
    freeReplyObject(reply);

    assert_int_equal(lp_store_redis_set_lead_buckets(store, 64), LP_OK);
    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    check_buckets(raw, store, p, N, 64, ids, prefix);

    /* A move from 64 to 8 buckets interrupted after the first 20 buckets (as a worker killed
     * in the middle leaves it); the next owner wants 32: it finishes 64 -> 8, then 8 -> 32. */
    snprintf(key, sizeof(key), "%s:{%d}:buckets", prefix, (int)p);
    freeReplyObject(redisCommand(raw, "SET %s 64>8", key));
    for (int i = 0; i < N; i++) {
        uint32_t from = lp_redis_lead_bucket(ids[i], strlen(ids[i]), 64);
        uint32_t to = lp_redis_lead_bucket(ids[i], strlen(ids[i]), 8);
        if (from < 20 && from != to) {
            char src[128], dst[128];
            snprintf(src, sizeof(src), "%s:{%d}:leads:%u", prefix, (int)p, from);
            snprintf(dst, sizeof(dst), "%s:{%d}:leads:%u", prefix, (int)p, to);
            freeReplyObject(redisCommand(raw, "HSET %s %s x%s", dst, ids[i], ids[i]));
            freeReplyObject(redisCommand(raw, "HDEL %s %s", src, ids[i]));
        }
    }
    char err[LP_ERRSTR];
    lp_store_t *other = lp_store_redis_new(redis_url, prefix, 2000, err, sizeof(err));
    assert_non_null(other);
    /* Readers refuse a partition in the middle of a move. */
    assert_int_equal(lp_store_load(other, p, 1, one, &loaded), LP_ERR);
    assert_non_null(strstr(other->errstr, "being moved from 64 to 8"));
    lp_store_destroy(other);
    assert_int_equal(lp_store_redis_set_lead_buckets(store, 32), LP_OK);
    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    check_buckets(raw, store, p, N, 32, ids, prefix);

    /* A writer fenced out meanwhile cannot write into the moved layout. */
    lp_store_lead_t lead = {ids[0], (const uint8_t *)"y", 1};
    lp_store_batch_t b = {.partition = p, .epoch = epoch - 1, .nleads = 1, .leads = &lead};
    assert_int_equal(lp_store_commit(store, &b), LP_STORE_FENCED);
    redisFree(raw);
}

/* Batches of 1000 leads as the engine sends them: load (misses), then commit with timers, the
 * offsets and a few outbox entries. */
static void test_bench_commit(void **state) {
    enum { BATCH = 1000, ROUNDS = 50 };
    lp_store_t *store = *state;
    static lp_store_lead_t leads[BATCH];
    static lp_store_timer_t timers[BATCH];
    static char ids[BATCH][32];
    static const char *idp[BATCH];
    lp_store_outbox_t outbox[10];
    lp_store_offset_t offs[] = {{"engagement.events", 0, -1}};
    uint8_t data[100];
    lp_store_loaded_t loaded;
    uint64_t rt0 = store->round_trips;
    double t0;
    double secs;
    int64_t epoch;
    int round;
    size_t i;

    memset(data, 'b', sizeof(data));
    for (i = 0; i < 10; i++) {
        outbox[i] = out_entry(0, "bench", data, sizeof(data), "0123456789abcdef", "");
    }
    assert_int_equal(lp_store_fence(store, 0, &epoch), LP_OK);
    rt0 = store->round_trips;
    t0 = now_s();
    for (round = 0; round < ROUNDS; round++) {
        lp_store_batch_t batch = {.partition = 0,
                                  .epoch = epoch,
                                  .nleads = BATCH,
                                  .leads = leads,
                                  .ntimers = BATCH,
                                  .timers = timers,
                                  .noffsets = 1,
                                  .offsets = offs,
                                  .noutbox = 10,
                                  .outbox = outbox};

        for (i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof(ids[i]), "bench-%d-%zu", round, i);
            idp[i] = ids[i];
            leads[i] = (lp_store_lead_t){ids[i], data, sizeof(data)};
            timers[i] = (lp_store_timer_t){ids[i], 1700000000000LL + (int64_t)i};
        }
        offs[0].expected = round == 0 ? -1 : round * BATCH;
        offs[0].next_offset = (round + 1) * BATCH;
        assert_int_equal(lp_store_load(store, 0, BATCH, idp, &loaded), LP_OK);
        assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    }
    secs = now_s() - t0;
    printf("redis bench: %d batches of %d leads: %.0f commits/s (%.0f leads/s incl. load), "
           "%.2f round trips per batch (load + commit)\n",
           ROUNDS, BATCH, ROUNDS / secs, ROUNDS * BATCH / secs,
           (double)(store->round_trips - rt0) / ROUNDS);
    assert_int_equal(store->round_trips - rt0, 2 * ROUNDS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        STORE_SUITE_TESTS,
        cmocka_unit_test_setup_teardown(test_script_flush_reloads, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_writes_nothing, suite_setup,
                                        suite_teardown),
        cmocka_unit_test_setup_teardown(test_key_layout, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_idempotent, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_big_batch, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_rebucket, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_restart, private_setup, private_teardown),
        cmocka_unit_test_setup_teardown(test_memory_per_lead, private_setup, private_teardown),
        cmocka_unit_test_setup_teardown(test_bench_commit, suite_setup, suite_teardown),
    };

    redis_url = getenv("LP_REDIS_URL");
    if (redis_url == NULL || redis_url[0] == '\0') {
        if (getenv("LP_IT_SKIP") != NULL && strcmp(getenv("LP_IT_SKIP"), "1") == 0) {
            printf("itest_store_redis: skipped (LP_IT_SKIP=1 and no LP_REDIS_URL)\n");
            return 0;
        }
        fprintf(stderr, "itest_store_redis: set LP_REDIS_URL=redis://127.0.0.1:<port> to a "
                        "running redis-server (or LP_IT_SKIP=1 to skip)\n");
        return 1;
    }
    /* A server killed under us must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    suite_new_store = new_redis_store;
    return cmocka_run_group_tests_name("store_redis", tests, NULL, NULL);
}
