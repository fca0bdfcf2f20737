/* leadpulse Redis store on a real Redis Cluster (deploy/local/stack with LP_STACK_REDIS_CLUSTER=1:
 * 3 masters, 3 replicas): the shared store suite through the cluster router, then what only a
 * cluster does: partitions on every master, a slot migrated under the store (MOVED), a slot half
 * migrated (ASK for reads, TRYAGAIN for the commit until the migration ends, then MOVED), script
 * caches flushed on every node (NOSCRIPT per node), and a manual failover (the old master answers
 * MOVED, the map is refreshed, nothing is lost).
 *
 * LP_REDIS_CLUSTER_URL=redis://127.0.0.1:<port>,... names the cluster (LP_IT_SKIP=1 skips the test
 * when it is unset). Every test uses its own key prefix; slots are moved back where they were. */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../unit/test_store_suite.h"
#include "store/redis_internal.h"

static const char *cluster_url;
static int prefix_seq;
static char cur_prefix[64];

static lp_store_t *new_cluster_store(void) {
    char err[LP_ERRSTR];
    lp_store_t *store;

    snprintf(cur_prefix, sizeof(cur_prefix), "lpcl%d.%d", (int)getpid(), ++prefix_seq);
    store = lp_store_redis_cluster_new(cluster_url, cur_prefix, 2000, err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "itest_store_cluster: %s\n", err);
    }
    return store;
}

/* ---- cluster administration through plain hiredis connections ---- */

typedef struct {
    char id[48];
    char host[256];
    int port;
    int master; /* 1 master, 0 replica */
    char master_id[48];
} node_t;

static redisContext *connect_node(const char *host, int port) {
    struct timeval tv = {5, 0};
    redisContext *ctx = redisConnectWithTimeout(host, port, tv);

    assert_non_null(ctx);
    assert_int_equal(ctx->err, 0);
    redisSetTimeout(ctx, tv);
    return ctx;
}

static redisReply *cmd(redisContext *ctx, const char *fmt, ...) {
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    assert_non_null(reply);
    return reply;
}

static void cmd_ok(redisContext *ctx, const char *fmt, ...) {
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    assert_non_null(reply);
    if (reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "itest_store_cluster: %s -> %s\n", fmt, reply->str);
    }
    assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
}

/* The first seed's host and port. */
static void seed(char *host, size_t size, int *port) {
    lp_store_redis_url_t u;
    char err[LP_ERRSTR], one[256];
    size_t len = strcspn(cluster_url, ",");

    assert_true(len < sizeof(one));
    memcpy(one, cluster_url, len);
    one[len] = '\0';
    assert_int_equal(lp_store_redis_url_parse(one, &u, err, sizeof(err)), LP_OK);
    snprintf(host, size, "%s", u.host);
    *port = u.port;
}

/* CLUSTER NODES of the first seed: the live nodes. Returns the count. */
static int cluster_nodes(node_t *nodes, int max) {
    char host[256];
    int port, n = 0;

    seed(host, sizeof(host), &port);
    redisContext *ctx = connect_node(host, port);
    redisReply *r = cmd(ctx, "CLUSTER NODES");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (char *line = strtok(r->str, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
        node_t *x = &nodes[n];
        char addr[128], flags[128], master[48];

        if (sscanf(line, "%47s %127s %127s %47s", x->id, addr, flags, master) != 4 ||
            strstr(flags, "fail") != NULL || strstr(flags, "noaddr") != NULL) {
            continue;
        }
        char *colon = strrchr(addr, ':');
        assert_non_null(colon);
        *colon = '\0';
        snprintf(x->host, sizeof(x->host), "%s", addr);
        x->port = atoi(colon + 1); /* "port@busport" */
        x->master = strstr(flags, "master") != NULL;
        snprintf(x->master_id, sizeof(x->master_id), "%s", master);
        n++;
    }
    freeReplyObject(r);
    redisFree(ctx);
    return n;
}

/* The master owning slot, per CLUSTER SLOTS of the first seed. */
static node_t slot_owner(int slot) {
    node_t nodes[32], out;
    char host[256];
    int port, n = cluster_nodes(nodes, 32);

    memset(&out, 0, sizeof(out));
    seed(host, sizeof(host), &port);
    redisContext *ctx = connect_node(host, port);
    redisReply *r = cmd(ctx, "CLUSTER SLOTS");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *range = r->element[i];
        if (slot >= range->element[0]->integer && slot <= range->element[1]->integer) {
            int p = (int)range->element[2]->element[1]->integer;
            for (int k = 0; k < n; k++) {
                if (nodes[k].port == p) {
                    out = nodes[k];
                }
            }
        }
    }
    freeReplyObject(r);
    redisFree(ctx);
    assert_true(out.port > 0);
    return out;
}

/* Another master than not. */
static node_t other_master(const node_t * not ) {
    node_t nodes[32];
    int n = cluster_nodes(nodes, 32);

    for (int i = 0; i < n; i++) {
        if (nodes[i].master && strcmp(nodes[i].id, not ->id) != 0) {
            return nodes[i];
        }
    }
    fail_msg("no second master");
    return nodes[0];
}

static void wait_cluster_ok(void) {
    node_t nodes[32];
    int n = cluster_nodes(nodes, 32);

    for (int tries = 0; tries < 400; tries++) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            redisContext *ctx = connect_node(nodes[i].host, nodes[i].port);
            redisReply *r = cmd(ctx, "CLUSTER INFO");
            ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") != NULL;
            freeReplyObject(r);
            /* A replica counts once its link to the master is up (synced): the next test, or
             * the next test program, may kill that master. */
            r = cmd(ctx, "INFO replication");
            if (ok && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:slave") != NULL) {
                ok = strstr(r->str, "master_link_status:up") != NULL;
            }
            freeReplyObject(r);
            redisFree(ctx);
        }
        if (ok) {
            return;
        }
        usleep(50000);
    }
    fail_msg("cluster_state did not become ok");
}

/* The first half of a migration: IMPORTING on dst, MIGRATING on src. */
static void migration_begin(int slot, const node_t *src, const node_t *dst) {
    redisContext *d = connect_node(dst->host, dst->port);
    redisContext *s = connect_node(src->host, src->port);

    cmd_ok(d, "CLUSTER SETSLOT %d IMPORTING %s", slot, src->id);
    cmd_ok(s, "CLUSTER SETSLOT %d MIGRATING %s", slot, dst->id);
    redisFree(d);
    redisFree(s);
}

/* Moves up to max keys of slot from src to dst (MIGRATE); returns how many moved. */
static int migrate_keys(int slot, const node_t *src, const node_t *dst, int max) {
    redisContext *s = connect_node(src->host, src->port);
    redisReply *keys = cmd(s, "CLUSTER GETKEYSINSLOT %d %d", slot, max);
    int moved = 0;

    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < keys->elements; i++) {
        cmd_ok(s, "MIGRATE %s %d %b 0 5000", dst->host, dst->port, keys->element[i]->str,
               keys->element[i]->len);
        moved++;
    }
    freeReplyObject(keys);
    redisFree(s);
    return moved;
}

/* The end of a migration: every master learns that dst owns slot. */
static void migration_end(int slot, const node_t *dst) {
    node_t nodes[32];
    int n = cluster_nodes(nodes, 32);

    /* Target first, then the source, then the others (the order the Redis manual gives). */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if (!nodes[i].master || (pass == 0) != (strcmp(nodes[i].id, dst->id) == 0)) {
                continue;
            }
            redisContext *c = connect_node(nodes[i].host, nodes[i].port);
            cmd_ok(c, "CLUSTER SETSLOT %d NODE %s", slot, dst->id);
            redisFree(c);
        }
    }
    wait_cluster_ok();
}

static void migrate_slot(int slot, const node_t *src, const node_t *dst) {
    migration_begin(slot, src, dst);
    while (migrate_keys(slot, src, dst, 100) > 0) {
    }
    migration_end(slot, dst);
}

/* Deletes the keys of the current test's prefix on every master (SCAN is per node). */
static int cluster_teardown(void **state) {
    node_t nodes[32];
    char match[80];
    int n = cluster_nodes(nodes, 32);

    suite_teardown(state);
    snprintf(match, sizeof(match), "%s:*", cur_prefix);
    for (int i = 0; i < n; i++) {
        if (!nodes[i].master) {
            continue;
        }
        redisContext *c = connect_node(nodes[i].host, nodes[i].port);
        char cursor[32] = "0";
        do {
            redisReply *r = cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
            assert_int_equal(r->type, REDIS_REPLY_ARRAY);
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t k = 0; k < r->element[1]->elements; k++) {
                redisReply *key = r->element[1]->element[k];
                freeReplyObject(cmd(c, "DEL %b", key->str, key->len));
            }
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
        redisFree(c);
    }
    return 0;
}

/* ---- the tests ---- */

static void put(lp_store_t *store, int32_t p, int64_t epoch, const char *id, const char *data,
                const char *topic, int64_t expected, int64_t next) {
    lp_store_lead_t lead = {id, (const uint8_t *)data, strlen(data)};
    lp_store_offset_t off = {topic, next, expected};
    lp_store_batch_t b = {.partition = p,
                          .epoch = epoch,
                          .nleads = 1,
                          .leads = &lead,
                          .noffsets = topic != NULL,
                          .offsets = &off};

    int rc = lp_store_commit(store, &b);
    if (rc != LP_OK) {
        fprintf(stderr, "itest_store_cluster: commit p%d: %s\n", (int)p, store->errstr);
    }
    assert_int_equal(rc, LP_OK);
}

static void expect_lead(lp_store_t *store, int32_t p, const char *id, const char *data) {
    const char *ids[] = {id};
    lp_store_loaded_t out;

    assert_int_equal(lp_store_load(store, p, 1, ids, &out), LP_OK);
    assert_int_equal(out.n, 1);
    assert_non_null(out.data[0]);
    assert_memory_equal(out.data[0], data, strlen(data));
}

/* 48 partitions land on every master; each is written and read through its own node, with one
 * round trip per call (no redirections once the map is known). */
static void test_partitions_on_every_master(void **state) {
    lp_store_t *store = *state;
    int used[65536] = {0};
    int masters = 0;

    for (int32_t p = 0; p < 48; p++) {
        int64_t epoch;
        char id[32];
        assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
        snprintf(id, sizeof(id), "lead-%d", (int)p);
        put(store, p, epoch, id, id, NULL, 0, 0);
        node_t owner = slot_owner(lp_redis_partition_slot(p));
        masters += used[owner.port]++ == 0;
    }
    assert_int_equal(masters, 3);
    uint64_t rt0 = store->round_trips;
    for (int32_t p = 0; p < 48; p++) {
        char id[32];
        snprintf(id, sizeof(id), "lead-%d", (int)p);
        expect_lead(store, p, id, id);
    }
    assert_int_equal(store->round_trips - rt0, 48);
    assert_int_equal(store->redirects, 0);
}

/* The slot of partition 5 moves to another master between two commits: the commit is sent to
 * the old owner, answered MOVED, followed, applied once; the data moved with the slot. */
static void test_slot_moved(void **state) {
    lp_store_t *store = *state;
    const int32_t p = 5;
    int slot = lp_redis_partition_slot(p);
    int64_t epoch;

    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    put(store, p, epoch, "a", "v1", "t", -1, 10);
    node_t src = slot_owner(slot), dst = other_master(&src);
    migrate_slot(slot, &src, &dst);
    uint64_t r0 = store->redirects, m0 = store->slot_refreshes;
    put(store, p, epoch, "b", "v2", "t", 10, 20);
    assert_true(store->redirects > r0);
    expect_lead(store, p, "a", "v1");
    expect_lead(store, p, "b", "v2");
    int64_t off;
    assert_int_equal(lp_store_get_offset(store, p, "t", &off), LP_OK);
    assert_int_equal(off, 20);
    assert_true(store->slot_refreshes > m0);
    assert_int_equal(slot_owner(slot).port, dst.port);
    /* And back, so the cluster is as it was. */
    migrate_slot(slot, &dst, &src);
    put(store, p, epoch, "c", "v3", "t", 20, 30);
    expect_lead(store, p, "c", "v3");
}

/* A slot half migrated: the lead bucket of "a" has moved, the rest has not. The load script
 * runs where its declared keys are and reaches the bucket from inside: Redis refuses that access
 * to a key that has left instead of reading it as missing; the commit (declared keys missing on
 * both sides) is refused with TRYAGAIN. Both LP_ERR, nothing written, retried by the engine;
 * once the migration ends both apply via MOVED. */
static void test_slot_half_migrated(void **state) {
    lp_store_t *store = *state;
    const int32_t p = 7;
    int slot = lp_redis_partition_slot(p);
    int64_t epoch;
    char key[128];

    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    put(store, p, epoch, "a", "v1", "t", -1, 10);
    node_t src = slot_owner(slot), dst = other_master(&src);
    migration_begin(slot, &src, &dst);
    snprintf(key, sizeof(key), "%s:{%d}:leads:%u", cur_prefix, (int)p,
             lp_redis_lead_bucket("a", 1, LP_STORE_REDIS_LEAD_BUCKETS));
    redisContext *s = connect_node(src.host, src.port);
    cmd_ok(s, "MIGRATE %s %d %s 0 5000", dst.host, dst.port, key);
    redisFree(s);

    const char *ids[] = {"a"};
    lp_store_loaded_t out;
    assert_int_equal(lp_store_load(store, p, 1, ids, &out), LP_ERR);
    assert_non_null(strstr(store->errstr, "non local key"));

    lp_store_lead_t lead = {"b", (const uint8_t *)"v2", 2};
    lp_store_offset_t off = {"t", 20, 10};
    lp_store_batch_t b = {.partition = p,
                          .epoch = epoch,
                          .nleads = 1,
                          .leads = &lead,
                          .noffsets = 1,
                          .offsets = &off};
    assert_int_equal(lp_store_commit(store, &b), LP_ERR);
    assert_non_null(strstr(store->errstr, "TRYAGAIN"));
    uint64_t r0 = store->redirects;

    while (migrate_keys(slot, &src, &dst, 100) > 0) {
    }
    migration_end(slot, &dst);
    assert_int_equal(lp_store_commit(store, &b), LP_OK);
    assert_true(store->redirects > r0);
    expect_lead(store, p, "a", "v1");
    expect_lead(store, p, "b", "v2");
    /* The commit ran once: a retry of the same batch is a duplicate. */
    assert_int_equal(lp_store_commit(store, &b), LP_STORE_DUPLICATE);
    migrate_slot(slot, &dst, &src);
}

/* SCRIPT FLUSH on every node: each node answers NOSCRIPT once and gets the script again. */
static void test_noscript_per_node(void **state) {
    lp_store_t *store = *state;
    node_t nodes[32];
    int n = cluster_nodes(nodes, 32);
    int64_t epochs[12];

    for (int32_t p = 0; p < 12; p++) {
        assert_int_equal(lp_store_fence(store, p, &epochs[p]), LP_OK);
        put(store, p, epochs[p], "x", "1", "t", -1, 1);
    }
    for (int i = 0; i < n; i++) {
        redisContext *c = connect_node(nodes[i].host, nodes[i].port);
        cmd_ok(c, "SCRIPT FLUSH");
        redisFree(c);
    }
    for (int32_t p = 0; p < 12; p++) {
        put(store, p, epochs[p], "x", "2", "t", 1, 2);
        expect_lead(store, p, "x", "2");
    }
}

/* A manual failover (CLUSTER FAILOVER on a replica): the old master turns replica and answers
 * MOVED; the store follows, refreshes its map, and the data written before is all there. */
static void test_manual_failover(void **state) {
    lp_store_t *store = *state;
    const int32_t p = 3;
    int slot = lp_redis_partition_slot(p);
    node_t nodes[32];
    int64_t epoch;

    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    put(store, p, epoch, "a", "v1", "t", -1, 10);
    node_t master = slot_owner(slot);
    int n = cluster_nodes(nodes, 32);
    node_t *replica = NULL;
    for (int i = 0; i < n; i++) {
        if (!nodes[i].master && strcmp(nodes[i].master_id, master.id) == 0) {
            replica = &nodes[i];
        }
    }
    if (replica == NULL) {
        skip(); /* a cluster without replicas */
    }
    redisContext *c = connect_node(replica->host, replica->port);
    /* The replica must have the write before it takes over (a graceful failover waits too). */
    cmd_ok(c, "CLUSTER FAILOVER");
    redisFree(c);
    for (int tries = 0; tries < 200 && slot_owner(slot).port != replica->port; tries++) {
        usleep(50000);
    }
    assert_int_equal(slot_owner(slot).port, replica->port);
    wait_cluster_ok();
    uint64_t r0 = store->redirects;
    put(store, p, epoch, "b", "v2", "t", 10, 20);
    expect_lead(store, p, "a", "v1");
    expect_lead(store, p, "b", "v2");
    assert_true(store->redirects > r0);
    /* Give the slot back to the old master. */
    c = connect_node(master.host, master.port);
    for (int tries = 0; tries < 100; tries++) {
        redisReply *r = cmd(c, "CLUSTER FAILOVER");
        int ok = r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (ok) {
            break;
        }
        usleep(100000); /* it may still be syncing as a replica */
    }
    redisFree(c);
    for (int tries = 0; tries < 200 && slot_owner(slot).port != master.port; tries++) {
        usleep(50000);
    }
    wait_cluster_ok();
}

/* Seeds: a dead first seed is skipped; a standalone server is refused with what to configure. */
static void test_seeds(void **state) {
    char err[LP_ERRSTR], urls[1024];

    (void)state;
    snprintf(urls, sizeof(urls), "redis://127.0.0.1:1,%s", cluster_url);
    lp_store_t *store = lp_store_redis_cluster_new(urls, "lpclseed", 2000, err, sizeof(err));
    assert_non_null(store);
    int64_t epoch;
    assert_int_equal(lp_store_fence(store, 0, &epoch), LP_OK);
    lp_store_destroy(store);
    node_t owner = slot_owner(lp_redis_partition_slot(0));
    redisContext *c = connect_node(owner.host, owner.port);
    freeReplyObject(cmd(c, "DEL lpclseed:{0}:epoch"));
    redisFree(c);
    assert_null(
        lp_store_redis_cluster_new("redis://127.0.0.1:1", "lpclseed", 500, err, sizeof(err)));
    assert_non_null(strstr(err, "no node answered CLUSTER SLOTS"));
    const char *standalone = getenv("LP_REDIS_URL");
    if (standalone != NULL && standalone[0] != '\0') {
        assert_null(lp_store_redis_cluster_new(standalone, "lpclseed", 2000, err, sizeof(err)));
        assert_non_null(strstr(err, "redis.mode: standalone"));
    }
}

/* The shared suite's tests clean up after themselves too. */
#define suite_teardown cluster_teardown

int main(void) {
    const struct CMUnitTest tests[] = {
        STORE_SUITE_TESTS,
        cmocka_unit_test_setup_teardown(test_partitions_on_every_master, suite_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_slot_moved, suite_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_slot_half_migrated, suite_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_noscript_per_node, suite_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_manual_failover, suite_setup, cluster_teardown),
        cmocka_unit_test(test_seeds),
    };

    cluster_url = getenv("LP_REDIS_CLUSTER_URL");
    if (cluster_url == NULL || cluster_url[0] == '\0') {
        if (getenv("LP_IT_SKIP") != NULL && strcmp(getenv("LP_IT_SKIP"), "1") == 0) {
            printf("itest_store_cluster: skipped (LP_IT_SKIP=1 and no LP_REDIS_CLUSTER_URL)\n");
            return 0;
        }
        fprintf(stderr, "itest_store_cluster: set LP_REDIS_CLUSTER_URL=redis://127.0.0.1:<port>,"
                        "... to a running Redis Cluster (deploy/local/stack with "
                        "LP_STACK_REDIS_CLUSTER=1), or LP_IT_SKIP=1 to skip\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    suite_new_store = new_cluster_store;
    return cmocka_run_group_tests_name("store_cluster", tests, NULL, NULL);
}
