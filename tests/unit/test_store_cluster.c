/* leadpulse Redis store, cluster mode: the pure routing parts (no server needed). Expected slots
 * are CLUSTER KEYSLOT answers of redis-server 7.0 for the same keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/redis_internal.h"

static int slot_of(const char *key) {
    return lp_redis_key_slot(key, strlen(key));
}

static void test_crc16_and_slots(void **state) {
    (void)state;
    /* The XModem check value. */
    assert_int_equal(lp_redis_crc16("123456789", 9), 0x31C3);
    assert_int_equal(slot_of("123456789"), 12739);
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("hello"), 866);
    assert_int_equal(slot_of(""), 0);
    /* Hash tags: the first '{' and the next '}', if something is between them. */
    assert_int_equal(slot_of("{user1000}.following"), 3443);
    assert_int_equal(slot_of("foo{}{bar}"), 8363);
    assert_int_equal(slot_of("foo{{bar}}zap"), 4015);
    assert_int_equal(slot_of("foo{bar}{zap}"), 5061);
    assert_int_equal(slot_of("{"), 4092);
    assert_int_equal(slot_of("}"), 12090);
    assert_int_equal(slot_of("a{b"), 13340);
    /* A partition's keys share its slot. */
    assert_int_equal(slot_of("lp:{0}:leads"), 13907);
    assert_int_equal(lp_redis_partition_slot(0), 13907);
    assert_int_equal(slot_of("lp:{11}:outbox"), 4310);
    assert_int_equal(lp_redis_partition_slot(11), 4310);
    for (int32_t p = 0; p < 512; p++) {
        char a[64], b[64];
        snprintf(a, sizeof(a), "lp:{%d}:leads", (int)p);
        snprintf(b, sizeof(b), "other-prefix:{%d}:outbox", (int)p);
        assert_int_equal(slot_of(a), lp_redis_partition_slot(p));
        assert_int_equal(slot_of(b), lp_redis_partition_slot(p));
    }
}

/* Partitions spread over the slots: with 3 equal masters, 12 partitions are not all on one. */
static void test_partitions_spread(void **state) {
    int on[3] = {0, 0, 0};

    (void)state;
    for (int32_t p = 0; p < 12; p++) {
        on[lp_redis_partition_slot(p) * 3 / LP_REDIS_SLOTS]++;
    }
    assert_true(on[0] > 0 && on[1] > 0 && on[2] > 0);
}

/* Lead buckets: FNV-1a (32 bits) of the id, pinned by the published vectors (tools outside C,
 * such as the tests' Python helpers, compute the same), and an even spread. */
static void test_lead_buckets(void **state) {
    (void)state;
    assert_int_equal(lp_redis_lead_bucket("", 0, 0xffffffffu), 0x811c9dc5u % 0xffffffffu);
    assert_int_equal(lp_redis_lead_bucket("a", 1, 0xffffffffu), 0xe40c292cu);
    assert_int_equal(lp_redis_lead_bucket("foobar", 6, 0xffffffffu), 0xbf9cf968u);
    assert_int_equal(lp_redis_lead_bucket("a", 1, 256), 0x2c);
    assert_int_equal(lp_redis_lead_bucket("foobar", 6, 1), 0);
    assert_int_equal(lp_redis_lead_bucket("foobar", 6, 0), 0);

    enum { N = 256, LEADS = 256 * 100 };
    static int count[N];
    char id[32];
    for (int i = 0; i < LEADS; i++) {
        int len = snprintf(id, sizeof(id), "lead-%07d", i * 7919);
        count[lp_redis_lead_bucket(id, (size_t)len, N)]++;
    }
    for (int b = 0; b < N; b++) {
        /* Poisson(100): 60..140 holds every bucket but with probability about 1e-4. */
        assert_in_range(count[b], 60, 140);
    }
}

static void test_redirects(void **state) {
    lp_redis_redirect_t r;
    const char *s;

    (void)state;
    s = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(lp_redis_parse_redirect(s, strlen(s), &r), 1);
    assert_int_equal(r.ask, 0);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);

    s = "ASK 16383 redis-2.internal:7002";
    assert_int_equal(lp_redis_parse_redirect(s, strlen(s), &r), 1);
    assert_int_equal(r.ask, 1);
    assert_int_equal(r.slot, 16383);
    assert_string_equal(r.host, "redis-2.internal");
    assert_int_equal(r.port, 7002);

    s = "MOVED 0 ::1:7000"; /* IPv6: the last colon ends the address */
    assert_int_equal(lp_redis_parse_redirect(s, strlen(s), &r), 1);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7000);

    s = "MOVED 12 [fe80::1]:7000";
    assert_int_equal(lp_redis_parse_redirect(s, strlen(s), &r), 1);
    assert_string_equal(r.host, "fe80::1");

    /* Not redirections: the commit script's own refusals and other errors stay errors. */
    static const char *const not [] = {
        "LOSTWRITES stored offsets are not where the writer believes",
        "MOVED stored offsets are not where the writer believes",
        "FENCED partition epoch is 3, writer has 2",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MOVED 16384 127.0.0.1:7000",
        "MOVED 12 127.0.0.1:0",
        "MOVED 12 127.0.0.1:65536",
        "MOVED 12 127.0.0.1",
        "MOVED 12 :7000",
        "MOVED  12 h:1",
        "MOVED -1 h:1",
        "ASK 12",
        "MOVED",
        "",
    };
    for (size_t i = 0; i < sizeof(not ) / sizeof(not [0]); i++) {
        assert_int_equal(lp_redis_parse_redirect(not [i], strlen(not [i]), &r), 0);
    }
    /* Only len bytes are read. */
    s = "MOVED 3999 127.0.0.1:63819999";
    assert_int_equal(lp_redis_parse_redirect(s, strlen(s) - 4, &r), 1);
    assert_int_equal(r.port, 6381);
}

/* ---- CLUSTER SLOTS replies built by hand ---- */

static redisReply *mk(int type) {
    redisReply *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *mk_int(long long v) {
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *mk_str(const char *s) {
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *mk_arr(size_t n, ...) {
    va_list ap;
    redisReply *r = mk(REDIS_REPLY_ARRAY);

    r->elements = n;
    r->element = calloc(n, sizeof(*r->element));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        r->element[i] = va_arg(ap, redisReply *);
    }
    va_end(ap);
    return r;
}

static void free_reply(redisReply *r) {
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            free_reply(r->element[i]);
        }
        free(r->element);
    }
    free(r->str);
    free(r);
}

typedef struct {
    int n;
    int first[8], last[8], port[8];
    char host[8][LP_REDIS_HOST_MAX];
    int fail_at; /* fn fails on this call (-1: never) */
} ranges_t;

static int collect(void *arg, int first, int last, const char *host, int port) {
    ranges_t *r = arg;

    if (r->n == r->fail_at || r->n == 8) {
        return LP_ERR;
    }
    r->first[r->n] = first;
    r->last[r->n] = last;
    r->port[r->n] = port;
    snprintf(r->host[r->n], sizeof(r->host[0]), "%s", host);
    r->n++;
    return LP_OK;
}

static void test_cluster_slots(void **state) {
    char err[LP_ERRSTR];
    ranges_t got = {.fail_at = -1};

    (void)state;
    /* Three masters with one replica each, as redis-server 7 answers (node ids, then the
     * replicas); the third master's host is empty: "the node you asked". */
    redisReply *reply =
        mk_arr(3,
               mk_arr(4, mk_int(0), mk_int(5460),
                      mk_arr(3, mk_str("127.0.0.1"), mk_int(7000), mk_str("e7d1eecce10fd6bb")),
                      mk_arr(3, mk_str("127.0.0.1"), mk_int(7004), mk_str("a1b2"))),
               mk_arr(4, mk_int(5461), mk_int(10922),
                      mk_arr(3, mk_str("127.0.0.1"), mk_int(7001), mk_str("c3d4")),
                      mk_arr(3, mk_str("127.0.0.1"), mk_int(7005), mk_str("e5f6"))),
               mk_arr(3, mk_int(10923), mk_int(16383), mk_arr(2, mk_str(""), mk_int(7002))));
    assert_int_equal(lp_redis_parse_slots(reply, "10.0.0.9", collect, &got, err, sizeof(err)),
                     LP_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.first[0], 0);
    assert_int_equal(got.last[0], 5460);
    assert_int_equal(got.port[0], 7000);
    assert_string_equal(got.host[0], "127.0.0.1");
    assert_int_equal(got.first[1], 5461);
    assert_int_equal(got.port[1], 7001);
    assert_int_equal(got.last[2], 16383);
    assert_string_equal(got.host[2], "10.0.0.9");
    assert_int_equal(got.port[2], 7002);

    /* fn's refusal is the parse's failure. */
    ranges_t fail = {.fail_at = 1};
    assert_int_equal(lp_redis_parse_slots(reply, "h", collect, &fail, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "too many nodes"));
    free_reply(reply);

    /* Malformed replies are refused with a reason, never read out of bounds. */
    redisReply *bad[] = {
        mk_int(3),
        mk_arr(1, mk_int(1)),
        mk_arr(1, mk_arr(2, mk_int(0), mk_int(10))),
        mk_arr(1, mk_arr(3, mk_int(10), mk_int(5), mk_arr(2, mk_str("h"), mk_int(1)))),
        mk_arr(1, mk_arr(3, mk_int(0), mk_int(16384), mk_arr(2, mk_str("h"), mk_int(1)))),
        mk_arr(1, mk_arr(3, mk_int(-1), mk_int(5), mk_arr(2, mk_str("h"), mk_int(1)))),
        mk_arr(1, mk_arr(3, mk_int(0), mk_int(5), mk_arr(2, mk_str("h"), mk_int(0)))),
        mk_arr(1, mk_arr(3, mk_int(0), mk_int(5), mk_arr(1, mk_str("h")))),
        mk_arr(1, mk_arr(3, mk_int(0), mk_int(5), mk_arr(2, mk_int(1), mk_int(7000)))),
        mk_arr(1, mk_arr(3, mk_str("0"), mk_int(5), mk_arr(2, mk_str("h"), mk_int(7000)))),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ranges_t r = {.fail_at = -1};
        err[0] = '\0';
        assert_int_equal(lp_redis_parse_slots(bad[i], "h", collect, &r, err, sizeof(err)), LP_ERR);
        assert_true(err[0] != '\0');
        free_reply(bad[i]);
    }

    /* A standalone Redis: the refusal says what to configure. */
    redisReply *off = mk(REDIS_REPLY_ERROR);
    off->str = strdup("ERR This instance has cluster support disabled");
    off->len = strlen(off->str);
    assert_int_equal(lp_redis_parse_slots(off, "h", collect, &got, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "redis.mode: standalone"));
    free_reply(off);
}

/* Seed URL lists are checked before anything connects. */
static void test_cluster_new_refuses(void **state) {
    char err[LP_ERRSTR];

    (void)state;
    assert_null(lp_store_redis_cluster_new("", "lp", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "no seed URL"));
    assert_null(
        lp_store_redis_cluster_new("redis://127.0.0.1:7000/2", "lp", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "database 0 only"));
    assert_null(lp_store_redis_cluster_new("redis://a:1,http://b:2", "lp", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "redis://"));
    assert_null(lp_store_redis_cluster_new("redis://a:1", "l{p}", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "prefix"));
}

/* CLUSTER NODES as redis-server 7 writes it: masters (myself or not), replicas, a failed master,
 * a slot being migrated. */
static void test_cluster_nodes(void **state) {
    char text[] =
        "6c5f9133 127.0.0.1:60743@35181 master - 0 1796396252091 50 connected 5461-5648 "
        "5650-10922\n"
        "20dc783b 127.0.0.1:53555@56141 master - 0 1796396252091 56 connected 247 4310 "
        "10923-16383 [5649->-6c5f9133]\n"
        "26e3abcf 127.0.0.1:42359@52555 myself,slave bddb116f 0 1796396252000 55 connected\n"
        "9999aaaa 127.0.0.1:42000@52000 master,fail - 0 1796396252000 12 disconnected\n"
        "bddb116f 10.1.2.3:50661@50209,redis-2.internal myself,master - 0 0 55 connected 0-246 "
        "248-4309 4311-5460 5649\n";
    lp_redis_master_t m[8];
    int16_t *owner = malloc(LP_REDIS_SLOTS * sizeof(*owner));
    char err[LP_ERRSTR];

    (void)state;
    assert_non_null(owner);
    assert_int_equal(lp_redis_parse_nodes(text, m, 8, owner, err, sizeof(err)), 3);
    assert_string_equal(m[0].id, "6c5f9133");
    assert_string_equal(m[0].host, "127.0.0.1");
    assert_int_equal(m[0].port, 60743);
    assert_int_equal(m[2].port, 50661);
    assert_string_equal(m[2].host, "10.1.2.3");
    assert_int_equal(owner[0], 2);
    assert_int_equal(owner[247], 1);
    assert_int_equal(owner[248], 2);
    assert_int_equal(owner[4310], 1);
    assert_int_equal(owner[5649], 2);
    assert_int_equal(owner[5650], 0);
    assert_int_equal(owner[16383], 1);
    char bad[] = "x 127.0.0.1:1@2 master - 0 0 1 connected 9-3\n";
    assert_int_equal(lp_redis_parse_nodes(bad, m, 8, owner, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad slot range"));
    char none[] = "x 127.0.0.1:1@2 slave y 0 0 1 connected\n";
    assert_int_equal(lp_redis_parse_nodes(none, m, 8, owner, err, sizeof(err)), -1);
    free(owner);
}

/* The plan: every master ends with floor or ceil(P/M), partitions already in place stay, and the
 * number of moves is the least possible (the surplus above the quotas, the masters holding most
 * keeping the rounded-up ones, plus unowned partitions). Random layouts, seeded. */
static void test_place_plan(void **state) {
    unsigned seed = 42;
    int cur[200], target[200];

    (void)state;
    for (int round = 0; round < 2000; round++) {
        int nm = 1 + (int)(rand_r(&seed) % 9);
        int32_t np = 1 + (int32_t)(rand_r(&seed) % 200);
        int count[10] = {0}, after[10] = {0}, sorted[10];
        int skew = (int)(rand_r(&seed) % 3);
        int unowned = 0;
        for (int32_t p = 0; p < np; p++) {
            int r = (int)(rand_r(&seed) % 100);
            cur[p] = r < 2 ? -1 : (skew == 0 ? r % nm : (r % (nm + skew)) % nm);
            if (cur[p] < 0) {
                unowned++;
            } else {
                count[cur[p]]++;
            }
        }
        int moves = lp_redis_place_plan(cur, np, nm, target);
        /* least moves: masters sorted by count, the first P%M get the ceiling */
        memcpy(sorted, count, sizeof(sorted));
        for (int i = 1; i < nm; i++) {
            for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
                int t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        }
        int least = unowned;
        for (int i = 0; i < nm; i++) {
            int q = (int)(np / nm) + (i < (int)(np % nm));
            least += sorted[i] > q ? sorted[i] - q : 0;
        }
        assert_int_equal(moves, least);
        int changed = 0;
        for (int32_t p = 0; p < np; p++) {
            assert_true(target[p] >= 0 && target[p] < nm);
            after[target[p]]++;
            changed += target[p] != cur[p];
        }
        assert_int_equal(changed, moves);
        for (int i = 0; i < nm; i++) {
            assert_true(after[i] == np / nm || after[i] == np / nm + 1);
        }
    }
    /* Already even: nothing moves. */
    int even[6] = {0, 1, 2, 0, 1, 2};
    assert_int_equal(lp_redis_place_plan(even, 6, 3, target), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_and_slots),     cmocka_unit_test(test_partitions_spread),
        cmocka_unit_test(test_redirects),           cmocka_unit_test(test_cluster_slots),
        cmocka_unit_test(test_cluster_new_refuses), cmocka_unit_test(test_cluster_nodes),
        cmocka_unit_test(test_place_plan),          cmocka_unit_test(test_lead_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
