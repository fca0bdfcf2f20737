/* `leadpulse repartition` on the in-memory store (src/engine/repartition.c): leads built by the
 * engine on 3 partitions (each in its CRC-32 partition, as librdkafka's default partitioner puts
 * them), repartitioned to 5 and to 6, end with exactly the leads and timers of a store built from
 * the same events on 5 / 6 partitions from the start; suppression entries reach every partition;
 * a second run changes nothing; a run interrupted after any number of its commits and run again
 * ends the same; a non-empty outbox, a wrong partitioner and a shrinking count are refused before
 * anything is written; a dry run writes nothing; a moved lead the rules cannot decode is
 * copied as it is, without a timer. With --accounts (the members topic grew): account
 * partitions built on 3 partitions end, after the move to 5, with exactly the accounts and timers
 * of account partitions built on 5 from the start; each keeps its own last applied record,
 * tombstones are deleted, every partition records the new count, and the account engine refuses
 * a partition whose recorded count differs from the members topic's (before the move) and takes
 * it after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/account_engine.h"
#include "leadpulse/account_state.h"
#include "leadpulse/engine.h"
#include "leadpulse/repartition.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

#define H_MS (3600LL * 1000)
#define D_MS (24 * H_MS)
#define T0 1772409600000LL /* 2026-03-02T00:00:00Z */
#define ENG "engagement.events"
#define NLEADS 240
#define MAXP 8

static const char RULES[] = "model: {id: repartition-unit, version: \"1\"}\n"
                            "score: {half_life: 10d, mql: 100, warm: 40, rearm: 60}\n"
                            "activities: {demo_request: 40, web_visit: 1}\n"
                            "sla: {accept_within: 48h, reminder_every: 24h, max_reminders: 1}\n"
                            "inactivity: {after: 30d, move_to: responder}\n"
                            "recycle: {score: reset}\n";

static lp_rules_t *rules, *acc_rules;

static const char ACC_RULES[] = "model: {id: repartition-accounts, version: \"1\"}\n"
                                "score: {half_life: 10d, mql: 100, warm: 40, rearm: 60}\n"
                                "activities: {demo_request: 40, web_visit: 1}\n"
                                "accounts:\n"
                                "  engaged_score: 10\n"
                                "  mqa: {score: 60, engaged_members: 2}\n"
                                "  stale: {quiet_after: 5d, accept_within: 2d}\n";
#define NACCTS 90
static const char *const topics[1] = {ENG};

static int32_t crc_part(const char *id, int32_t n) {
    return lp_partition_of(LP_PARTITIONER_CRC32, id, strlen(id), n);
}

/* The same events for every store: lead i gets 1 web visit (no timer), 1 demo request (warm:
 * inactivity timer) or 3 (MQL: SLA timer), at times spread over days, so due times differ. */
static lp_store_t *build(int32_t partitions) {
    const lp_engine_opts_t opts = {.out_format = LP_FORMAT_JSON,
                                   .out_framing = LP_FRAMING_CONFLUENT,
                                   .cache_max_leads = 16,
                                   .timer_batch = 100,
                                   .handoff_fields = LP_HANDOFF_ALL};
    char err[LP_ERRSTR] = "";
    lp_store_t *store = lp_store_mem_new();
    assert_non_null(store);
    lp_engine_t *engine = lp_engine_new(&opts, rules, store, NULL, err, sizeof(err));
    if (engine == NULL) {
        fail_msg("engine: %s", err);
    }
    int64_t offset[MAXP] = {0};
    for (int32_t p = 0; p < partitions; p++) {
        int64_t start[1];
        assert_int_equal(lp_engine_assign(engine, p, 1, topics, start), LP_OK);
    }
    for (int i = 0; i < NLEADS; i++) {
        char id[32], json[256];
        snprintf(id, sizeof(id), "lead-%04d", i);
        int32_t p = crc_part(id, partitions);
        int n = i % 3 == 0 ? 3 : 1;
        const char *type = i % 3 == 1 ? "web_visit" : "demo_request";
        for (int k = 0; k < n; k++) {
            int64_t ts = T0 + (int64_t)i * 37 * 60 * 1000 + k * 1000;
            snprintf(json, sizeof(json),
                     "{\"event_id\":\"%s-%d\",\"lead_id\":\"%s\",\"ts\":%lld,\"type\":\"%s\"}", id,
                     k, id, (long long)ts, type);
            lp_engine_msg_t msg = {.topic = ENG,
                                   .kind = LP_EV_ENGAGEMENT,
                                   .format = LP_FORMAT_JSON,
                                   .partition = p,
                                   .offset = offset[p]++,
                                   .key = (const uint8_t *)id,
                                   .key_len = strlen(id),
                                   .value = (const uint8_t *)json,
                                   .value_len = strlen(json)};
            if (lp_engine_process(engine, p, &msg, 1, T0) != LP_OK) {
                fail_msg("process: %s", lp_engine_errstr(engine));
            }
        }
    }
    lp_engine_destroy(engine);
    return store;
}

/* Delivers every outbox entry of partitions 0..n-1 (as the worker would). */
static void drain_outboxes(lp_store_t *store, int32_t n) {
    for (int32_t p = 0; p < n; p++) {
        int64_t epoch;
        assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
        for (;;) {
            lp_store_outbox_list_t list = {0};
            assert_int_equal(lp_store_outbox_read(store, p, 100, &list), LP_OK);
            if (list.n == 0) {
                break;
            }
            char idbuf[100][64];
            const char *ids[100];
            for (size_t i = 0; i < list.n; i++) {
                snprintf(idbuf[i], sizeof(idbuf[i]), "%s", list.entries[i].id);
                ids[i] = idbuf[i];
            }
            assert_int_equal(lp_store_outbox_ack(store, p, epoch, list.n, ids), LP_OK);
        }
    }
}

static void suppress(lp_store_t *store, int32_t p, const char *hash, int64_t until) {
    int64_t epoch;
    lp_store_suppress_t e = {.until_ms = until};
    snprintf(e.hash, sizeof(e.hash), "%s", hash);
    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    lp_store_batch_t b = {.partition = p, .epoch = epoch, .nsuppress = 1, .suppress = &e};
    assert_int_equal(lp_store_commit(store, &b), LP_OK);
}

/* A 3-partition store as the workers leave it: outboxes delivered, two suppression entries. */
static lp_store_t *old_store(void) {
    lp_store_t *store = build(3);
    drain_outboxes(store, 3);
    suppress(store, 0, "0123456789abcdef0123456789abcdef", 0);
    suppress(store, 2, "fedcba9876543210fedcba9876543210", T0 + 5 * D_MS);
    return store;
}

/* "partition<TAB>id<TAB>hex bytes" of every lead, sorted, as one string. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *leads_dump(lp_store_t *store, int32_t partitions) {
    char **lines = calloc(4 * NLEADS, sizeof(*lines));
    size_t n = 0, total = 1;
    for (int32_t p = 0; p < partitions; p++) {
        uint64_t cursor = 0;
        do {
            lp_store_scan_t page = {0};
            assert_int_equal(lp_store_scan(store, p, &cursor, 50, &page), LP_OK);
            for (size_t i = 0; i < page.n; i++) {
                assert_true(n < 4 * NLEADS);
                char *line = malloc(48 + 2 * page.len[i]);
                int k = sprintf(line, "%d\t%s\t", (int)p, page.ids[i]);
                for (size_t j = 0; j < page.len[i]; j++) {
                    k += sprintf(line + k, "%02x", page.data[i][j]);
                }
                total += (size_t)k + 1;
                lines[n++] = line;
            }
        } while (cursor != 0);
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    char *out = malloc(total);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Every timer of every partition, "partition id due", in due order; a timer's exact due time is
 * pinned by asking just before and at it. */
static char *timers_dump(lp_store_t *store, int32_t partitions) {
    size_t cap = 64 * 4 * NLEADS, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (int32_t p = 0; p < partitions; p++) {
        size_t n = 0;
        const char **ids = NULL;
        assert_int_equal(lp_store_due(store, p, INT64_MAX, 10000, &n, &ids), LP_OK);
        char copy[4 * NLEADS][32];
        assert_true(n <= 4 * NLEADS);
        for (size_t i = 0; i < n; i++) {
            snprintf(copy[i], sizeof(copy[i]), "%s", ids[i]);
        }
        /* The due time of the i-th: the least t with at least i+1 timers due at t. */
        for (size_t i = 0; i < n; i++) {
            int64_t lo = 0, hi = INT64_MAX;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                size_t k = 0;
                assert_int_equal(lp_store_due(store, p, mid, 10000, &k, &ids), LP_OK);
                if (k > i) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            len += (size_t)snprintf(out + len, cap - len, "%d %s %lld\n", (int)p, copy[i],
                                    (long long)lo);
        }
    }
    return out;
}

static size_t nsuppressed(lp_store_t *store, int32_t p) {
    size_t n = 0;
    const lp_store_suppress_t *e = NULL;
    assert_int_equal(store->ops->suppressed(store, p, &n, &e), LP_OK);
    return n;
}

static int run(lp_store_t *store, int32_t from, int32_t to, bool dry, lp_repartition_result_t *res,
               char *err) {
    lp_repartition_opts_t o = {
        .from = from, .to = to, .partitioner = LP_PARTITIONER_CRC32, .dry_run = dry, .page = 7};
    return lp_repartition(store, rules, &o, res, err, LP_ERRSTR);
}

static void check_equal_reference(lp_store_t *store, int32_t to) {
    lp_store_t *ref = build(to);
    char *got = leads_dump(store, to), *want = leads_dump(ref, to);
    assert_string_equal(got, want);
    free(got);
    free(want);
    got = timers_dump(store, to);
    want = timers_dump(ref, to);
    assert_true(strlen(want) > 100); /* the test has timers to move */
    assert_string_equal(got, want);
    free(got);
    free(want);
    for (int32_t q = 0; q < to; q++) {
        assert_int_equal(nsuppressed(store, q), 2);
    }
    lp_store_destroy(ref);
}

static void test_grow(int32_t to) {
    char err[LP_ERRSTR];
    lp_repartition_result_t res;
    lp_store_t *store = old_store();

    assert_int_equal(run(store, 3, to, false, &res, err), LP_OK);
    assert_int_equal(res.leads_total, NLEADS);
    uint64_t planned = 0;
    for (int32_t p = 0; p < 3; p++) {
        for (int32_t q = 0; q < to; q++) {
            planned += res.moves[p * to + q];
            if (res.moves[p * to + q] > 0 && to == 6) {
                assert_int_equal(q % 3, p); /* doubling: p goes to p or p + 3 only */
            }
        }
    }
    assert_true(res.leads_moved > NLEADS / 4);
    assert_int_equal(planned, res.leads_moved);
    assert_int_equal(res.leads_deleted, res.leads_moved);
    assert_true(res.timers_moved > 0);
    assert_int_equal(res.epochs_bumped, to);
    assert_int_equal(res.suppress_copied, 2 * to - 2);
    assert_int_equal(res.unreadable, 0);
    lp_repartition_result_free(&res);
    check_equal_reference(store, to);

    /* Again: nothing to move, nothing to copy. */
    assert_int_equal(run(store, 3, to, false, &res, err), LP_OK);
    assert_int_equal(res.leads_moved, 0);
    assert_int_equal(res.suppress_copied, 0);
    assert_int_equal(res.leads_deleted, 0);
    assert_int_equal(res.epochs_bumped, to);
    lp_repartition_result_free(&res);
    check_equal_reference(store, to);
    lp_store_destroy(store);
}

static void test_grow_to_6(void **state) {
    (void)state;
    test_grow(6);
}

static void test_grow_to_5(void **state) {
    (void)state;
    test_grow(5);
}

static void test_dry_run_writes_nothing(void **state) {
    (void)state;
    char err[LP_ERRSTR];
    lp_repartition_result_t res;
    lp_store_t *store = old_store();
    char *before = leads_dump(store, 6);
    assert_int_equal(run(store, 3, 6, true, &res, err), LP_OK);
    assert_true(res.leads_moved > 0);
    assert_int_equal(res.leads_total, NLEADS);
    assert_int_equal(res.epochs_bumped, 0);
    lp_repartition_result_free(&res);
    char *after = leads_dump(store, 6);
    assert_string_equal(before, after);
    int64_t epoch;
    assert_int_equal(lp_store_fence(store, 4, &epoch), LP_OK);
    assert_int_equal(epoch, 1); /* never fenced before */
    free(before);
    free(after);
    lp_store_destroy(store);
}

static void test_refusals(void **state) {
    (void)state;
    char err[LP_ERRSTR];
    lp_repartition_result_t res;
    lp_store_t *store = build(3); /* outboxes still hold the hand-offs */
    char *before = leads_dump(store, 6);
    assert_int_equal(run(store, 3, 6, false, &res, err), LP_ERR);
    assert_non_null(strstr(err, "outbox"));
    assert_non_null(strstr(err, "partition 0"));
    lp_repartition_result_free(&res);
    drain_outboxes(store, 3);

    lp_repartition_opts_t o = {.from = 3, .to = 6, .partitioner = LP_PARTITIONER_MURMUR2};
    assert_int_equal(lp_repartition(store, rules, &o, &res, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "wrong --partitioner"));
    lp_repartition_result_free(&res);
    assert_int_equal(run(store, 4, 6, false, &res, err), LP_ERR); /* wrong --from */
    assert_non_null(strstr(err, "wrong --partitioner or --from"));
    lp_repartition_result_free(&res);
    assert_int_equal(run(store, 3, 2, false, &res, err), LP_ERR);
    assert_int_equal(run(store, 3, 3, false, &res, err), LP_ERR);
    assert_int_equal(run(store, 0, 3, false, &res, err), LP_ERR);
    char *after = leads_dump(store, 6);
    assert_string_equal(before, after);
    int64_t epoch;
    assert_int_equal(lp_store_fence(store, 5, &epoch), LP_OK);
    assert_int_equal(epoch, 1); /* no refused run fenced anything */
    free(before);
    free(after);
    lp_store_destroy(store);
}

/* A moved lead the rules cannot decode is copied as it is, without a timer, and counted. */
static void test_unreadable_copied_as_is(void **state) {
    (void)state;
    char err[LP_ERRSTR], id[32];
    lp_repartition_result_t res;
    lp_store_t *store = old_store();
    int i = 0;
    do {
        snprintf(id, sizeof(id), "junk-%d", i++);
    } while (crc_part(id, 6) == crc_part(id, 3));
    int32_t p = crc_part(id, 3), q = crc_part(id, 6);
    int64_t epoch;
    static const uint8_t junk[] = {0xff, 0xfe, 0x01};
    lp_store_lead_t lead = {id, junk, sizeof(junk)};
    lp_store_timer_t timer = {id, T0};
    assert_int_equal(lp_store_fence(store, p, &epoch), LP_OK);
    lp_store_batch_t b = {.partition = p,
                          .epoch = epoch,
                          .nleads = 1,
                          .leads = &lead,
                          .ntimers = 1,
                          .timers = &timer};
    assert_int_equal(lp_store_commit(store, &b), LP_OK);
    assert_int_equal(run(store, 3, 6, false, &res, err), LP_OK);
    assert_int_equal(res.unreadable, 1);
    lp_repartition_result_free(&res);
    const char *ids[1] = {id};
    lp_store_loaded_t loaded = {0};
    assert_int_equal(lp_store_load(store, q, 1, ids, &loaded), LP_OK);
    assert_non_null(loaded.data[0]);
    assert_memory_equal(loaded.data[0], junk, sizeof(junk));
    assert_int_equal(lp_store_load(store, p, 1, ids, &loaded), LP_OK);
    assert_null(loaded.data[0]);
    size_t n = 0;
    const char **due = NULL;
    assert_int_equal(lp_store_due(store, q, INT64_MAX, 10000, &n, &due), LP_OK);
    for (size_t k = 0; k < n; k++) {
        assert_string_not_equal(due[k], id);
    }
    assert_int_equal(lp_store_due(store, p, INT64_MAX, 10000, &n, &due), LP_OK);
    for (size_t k = 0; k < n; k++) {
        assert_string_not_equal(due[k], id); /* its old timer went with the erase */
    }
    lp_store_destroy(store);
}

/* A store that fails every commit after `budget` of them, as if the process died there. */
typedef struct {
    lp_store_t base;
    lp_store_t *inner;
    long budget;
    long commits;
} crash_store_t;

static lp_store_t *inner(lp_store_t *s) {
    return ((crash_store_t *)s)->inner;
}
static int c_fence(lp_store_t *s, int32_t p, int64_t *e) {
    return lp_store_fence(inner(s), p, e);
}
static int c_commit(lp_store_t *s, const lp_store_batch_t *b) {
    crash_store_t *c = (crash_store_t *)s;
    if (c->budget >= 0 && c->commits >= c->budget) {
        snprintf(s->errstr, sizeof(s->errstr), "crashed");
        return LP_ERR;
    }
    c->commits++;
    return lp_store_commit(c->inner, b);
}
static int c_outbox_read(lp_store_t *s, int32_t p, size_t max, lp_store_outbox_list_t *out) {
    return lp_store_outbox_read(inner(s), p, max, out);
}
static int c_suppressed(lp_store_t *s, int32_t p, size_t *n, const lp_store_suppress_t **e) {
    return inner(s)->ops->suppressed(inner(s), p, n, e);
}
static int c_scan(lp_store_t *s, int32_t p, uint64_t *cursor, size_t count, lp_store_scan_t *out) {
    return lp_store_scan(inner(s), p, cursor, count, out);
}
static void c_destroy(lp_store_t *s) {
    (void)s;
}
static const lp_store_ops_t crash_ops = {.name = "crash",
                                         .fence = c_fence,
                                         .commit = c_commit,
                                         .outbox_read = c_outbox_read,
                                         .suppressed = c_suppressed,
                                         .scan = c_scan,
                                         .destroy = c_destroy};

static void test_interrupted_runs_converge(void **state) {
    (void)state;
    char err[LP_ERRSTR];
    lp_repartition_result_t res;
    crash_store_t c = {.base = {.ops = &crash_ops}, .inner = old_store(), .budget = -1};
    assert_int_equal(run(&c.base, 3, 5, false, &res, err), LP_OK);
    lp_repartition_result_free(&res);
    long commits = c.commits;
    assert_true(commits > 10);
    lp_store_destroy(c.inner);
    for (long k = 0; k < commits; k++) {
        c = (crash_store_t){.base = {.ops = &crash_ops}, .inner = old_store(), .budget = k};
        assert_int_equal(run(&c.base, 3, 5, false, &res, err), LP_ERR);
        assert_non_null(strstr(err, "crashed"));
        lp_repartition_result_free(&res);
        /* A second crash in the re-run, then a clean run. */
        c.budget = c.commits + k / 2;
        (void)run(&c.base, 3, 5, false, &res, err);
        lp_repartition_result_free(&res);
        assert_int_equal(run(c.inner, 3, 5, false, &res, err), LP_OK);
        lp_repartition_result_free(&res);
        check_equal_reference(c.inner, 5);
        lp_store_destroy(c.inner);
    }
}

/* ---- accounts (the members topic grew) ----------------------------------------------------- */

#define AB LP_ACCOUNT_PARTITION_BASE

/* Account i: 1..4 members with scores and times that make some qualify (timers) and others
 * not; the same states whatever the partition count. Every 9th account lost its members: a
 * tombstone (as stage 2 stores a forgotten account). Each partition gets its own last applied
 * record ("@applied", any bytes: never decoded here) and records `partitions`. */
static lp_store_t *build_accounts(int32_t partitions, bool with_extras) {
    lp_store_t *store = lp_store_mem_new();
    assert_non_null(store);
    for (int32_t p = 0; p < partitions; p++) {
        int64_t epoch;
        assert_int_equal(lp_store_fence(store, AB + p, &epoch), LP_OK);
        char key[64], applied[32];
        for (int i = 0; i < NACCTS; i++) {
            snprintf(key, sizeof(key), "domain:company-%03d.example", i);
            if (crc_part(key, partitions) != p) {
                continue;
            }
            uint8_t buf[4096];
            size_t len = 1;
            int64_t due = 0;
            buf[0] = 0x00;
            if (i % 9 != 8) {
                lp_account_state_t a;
                lp_account_init(&a);
                for (int m = 0; m < 1 + i % 4; m++) {
                    lp_member_record_t r;
                    memset(&r, 0, sizeof(r));
                    snprintf(r.account, sizeof(r.account), "%s", key);
                    snprintf(r.lead_id, sizeof(r.lead_id), "lead-%03d-%d", i, m);
                    r.seq = 1;
                    r.e = 20.0 + 7.0 * m + (double)(i % 5);
                    r.ref_ms = r.event_ms = r.last_activity_ms = T0 + (int64_t)i * H_MS + m;
                    r.role = LP_ROLE_USER;
                    r.fit_grade = 'B';
                    lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
                    size_t nf = 0;
                    assert_int_not_equal(
                        lp_account_apply(&a, acc_rules, &r, facts, LP_ACCOUNT_APPLY_FACTS, &nf),
                        LP_ERR);
                }
                len = lp_account_encode(&a, buf, sizeof(buf));
                assert_true(len > 1);
                due = lp_account_next_deadline(&a);
                lp_account_free(&a);
            }
            lp_store_lead_t lead = {key, buf, len};
            lp_store_timer_t timer = {key, due};
            lp_store_batch_t b = {.partition = AB + p,
                                  .epoch = epoch,
                                  .nleads = 1,
                                  .leads = &lead,
                                  .ntimers = due > 0,
                                  .timers = &timer};
            assert_int_equal(lp_store_commit(store, &b), LP_OK);
        }
        if (with_extras) {
            snprintf(applied, sizeof(applied), "last-applied-of-%d", (int)p);
            lp_store_lead_t lead = {LP_ACCOUNT_APPLIED_KEY, (const uint8_t *)applied,
                                    strlen(applied)};
            lp_store_offset_t off = {LP_ACCOUNT_PARTITIONS_OFFSET, partitions, -1};
            lp_store_batch_t b = {.partition = AB + p,
                                  .epoch = epoch,
                                  .nleads = 1,
                                  .leads = &lead,
                                  .noffsets = 1,
                                  .offsets = &off};
            assert_int_equal(lp_store_commit(store, &b), LP_OK);
        }
    }
    return store;
}

/* "partition<TAB>key<TAB>hex" of every stored account (no "@applied", no tombstones unless
 * asked), sorted, then every timer "partition key due". */
static char *accounts_dump(lp_store_t *store, int32_t partitions, bool tombstones) {
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    char **lines = calloc(4 * NACCTS, sizeof(*lines));
    size_t n = 0;
    for (int32_t p = 0; p < partitions; p++) {
        uint64_t cursor = 0;
        do {
            lp_store_scan_t page = {0};
            assert_int_equal(lp_store_scan(store, AB + p, &cursor, 13, &page), LP_OK);
            for (size_t i = 0; i < page.n; i++) {
                if (strcmp(page.ids[i], LP_ACCOUNT_APPLIED_KEY) == 0 ||
                    (!tombstones && page.len[i] == 1 && page.data[i][0] == 0)) {
                    continue;
                }
                char *line = malloc(64 + 2 * page.len[i] + strlen(page.ids[i]));
                int k = sprintf(line, "%d\t%s\t", (int)p, page.ids[i]);
                for (size_t j = 0; j < page.len[i]; j++) {
                    k += sprintf(line + k, "%02x", page.data[i][j]);
                }
                assert_true(n < 4 * NACCTS);
                lines[n++] = line;
            }
        } while (cursor != 0);
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    for (int32_t p = 0; p < partitions; p++) {
        size_t nd = 0;
        const char **ids = NULL;
        assert_int_equal(lp_store_due(store, AB + p, INT64_MAX, 10000, &nd, &ids), LP_OK);
        for (size_t i = 0; i < nd; i++) {
            /* the due time: the stored state's next deadline is what the worker stores */
            len += (size_t)snprintf(out + len, cap - len, "timer %d %s\n", (int)p, ids[i]);
        }
    }
    return out;
}

static int run_accounts(lp_store_t *store, int32_t from, int32_t to, bool dry,
                        lp_repartition_result_t *res, char *err) {
    lp_repartition_opts_t o = {.from = from,
                               .to = to,
                               .partitioner = LP_PARTITIONER_MURMUR2, /* ignored: crc32 */
                               .accounts = true,
                               .dry_run = dry,
                               .page = 7};
    return lp_repartition(store, acc_rules, &o, res, err, LP_ERRSTR);
}

static void test_accounts_grow(void **state) {
    (void)state;
    char err[LP_ERRSTR];
    lp_repartition_result_t res;
    lp_store_t *store = build_accounts(3, true), *ref = build_accounts(5, false);
    char *want = accounts_dump(ref, 5, false);
    assert_non_null(strstr(want, "timer")); /* there are timers to move */

    /* The account engine of a worker that sees 5 partitions refuses partition 0 (and the start
     * check names what to do); one that sees 3 takes it. */
    lp_acct_engine_opts_t ao = {.out_format = LP_FORMAT_JSON, .members_topic = "members"};
    lp_acct_engine_t *ae = lp_acct_engine_new(&ao, acc_rules, store, NULL, err, sizeof(err));
    assert_non_null(ae);
    assert_int_equal(lp_acct_engine_check_partitions(ae, 5, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "repartition --accounts --from 3 --to 5"));
    int64_t offset;
    lp_acct_engine_set_partitions(ae, 5);
    assert_int_equal(lp_acct_engine_assign(ae, 0, &offset), LP_ERR);
    assert_non_null(strstr(lp_acct_engine_errstr(ae), "--from 3 --to 5"));
    assert_int_equal(lp_acct_engine_check_partitions(ae, 3, err, sizeof(err)), LP_OK);

    char *before = accounts_dump(store, 5, true);
    assert_int_equal(run_accounts(store, 3, 5, true, &res, err), LP_OK);
    assert_true(res.leads_moved > 0);
    assert_int_equal(res.epochs_bumped, 0);
    lp_repartition_result_free(&res);
    char *after_dry = accounts_dump(store, 5, true);
    assert_string_equal(before, after_dry);

    assert_int_equal(run_accounts(store, 3, 5, false, &res, err), LP_OK);
    assert_int_equal(res.leads_total, NACCTS);
    assert_true(res.leads_moved > NACCTS / 4);
    assert_true(res.timers_moved > 0);
    assert_true(res.tombstones > 0);
    assert_int_equal(res.unreadable, 0);
    assert_int_equal(res.suppress_copied, 0);
    lp_repartition_result_free(&res);
    char *got = accounts_dump(store, 5, true); /* tombstones included: none may be left moved */
    /* tombstones of accounts that did not move stay; compare without them, then count them */
    char *got_live = accounts_dump(store, 5, false);
    assert_string_equal(got_live, want);
    for (int32_t p = 0; p < 5; p++) {
        /* each old partition keeps its own last applied record; the new ones have none */
        const char *ids[1] = {LP_ACCOUNT_APPLIED_KEY};
        lp_store_loaded_t l = {0};
        assert_int_equal(lp_store_load(store, AB + p, 1, ids, &l), LP_OK);
        if (p < 3) {
            char applied[32];
            snprintf(applied, sizeof(applied), "last-applied-of-%d", (int)p);
            assert_non_null(l.data[0]);
            assert_memory_equal(l.data[0], applied, strlen(applied));
        } else {
            assert_null(l.data[0]);
        }
        lp_store_loaded_clear(&l);
        int64_t count = -1;
        assert_int_equal(lp_store_get_offset(store, AB + p, LP_ACCOUNT_PARTITIONS_OFFSET, &count),
                         LP_OK);
        assert_int_equal(count, 5);
    }
    /* A tombstone whose partition changed is gone (deleted, not copied); the others stay. */
    int ntomb = 0;
    for (int i = 8; i < NACCTS; i += 9) {
        char key[64];
        snprintf(key, sizeof(key), "domain:company-%03d.example", i);
        const char *ids[1] = {key};
        bool moved = crc_part(key, 5) != crc_part(key, 3);
        for (int32_t p = 0; p < 5; p++) {
            lp_store_loaded_t l = {0};
            assert_int_equal(lp_store_load(store, AB + p, 1, ids, &l), LP_OK);
            bool here = l.data[0] != NULL;
            lp_store_loaded_clear(&l);
            assert_true(here == (!moved && p == crc_part(key, 3)));
        }
        ntomb += moved;
    }
    assert_true(ntomb > 0);

    /* Again: nothing moves. The engine takes a partition with 5 now, and refuses with 3 (the
     * old partitions' "@applied" here is not a real record: the new ones are taken). */
    assert_int_equal(run_accounts(store, 3, 5, false, &res, err), LP_OK);
    assert_int_equal(res.leads_moved, 0);
    lp_repartition_result_free(&res);
    char *again = accounts_dump(store, 5, true);
    assert_string_equal(again, got);
    assert_int_equal(lp_acct_engine_check_partitions(ae, 5, err, sizeof(err)), LP_OK);
    assert_int_equal(lp_acct_engine_assign(ae, 3, &offset), LP_OK);
    lp_acct_engine_set_partitions(ae, 3);
    assert_int_equal(lp_acct_engine_assign(ae, 4, &offset), LP_ERR);
    assert_non_null(strstr(lp_acct_engine_errstr(ae), "fewer"));
    lp_acct_engine_destroy(ae);

    /* A wrong --from is refused before anything is written. */
    assert_int_equal(run_accounts(store, 4, 6, false, &res, err), LP_ERR);
    assert_non_null(strstr(err, "wrong --from"));
    lp_repartition_result_free(&res);
    free(want);
    free(before);
    free(after_dry);
    free(got);
    free(got_live);
    free(again);
    lp_store_destroy(store);
    lp_store_destroy(ref);
}

/* A partition that never recorded a count gets the worker's when first taken. */
static void test_accounts_count_recorded_at_take(void **state) {
    (void)state;
    char err[LP_ERRSTR];
    lp_store_t *store = build_accounts(3, false);
    lp_acct_engine_opts_t ao = {.out_format = LP_FORMAT_JSON, .members_topic = "members"};
    lp_acct_engine_t *ae = lp_acct_engine_new(&ao, acc_rules, store, NULL, err, sizeof(err));
    assert_non_null(ae);
    assert_int_equal(lp_acct_engine_check_partitions(ae, 3, err, sizeof(err)), LP_OK);
    lp_acct_engine_set_partitions(ae, 3);
    int64_t offset, count = -1;
    assert_int_equal(lp_acct_engine_assign(ae, 2, &offset), LP_OK);
    assert_int_equal(lp_store_get_offset(store, AB + 2, LP_ACCOUNT_PARTITIONS_OFFSET, &count),
                     LP_OK);
    assert_int_equal(count, 3);
    assert_int_equal(lp_acct_engine_check_partitions(ae, 4, err, sizeof(err)), LP_ERR);
    lp_acct_engine_destroy(ae);
    lp_store_destroy(store);
}

static int setup(void **state) {
    (void)state;
    char err[LP_ERRSTR] = "";
    rules = lp_rules_load_buffer("repartition.yaml", RULES, strlen(RULES), err, sizeof(err));
    if (rules == NULL) {
        print_error("rules: %s\n", err);
        return -1;
    }
    acc_rules = lp_rules_load_buffer("repartition-accounts.yaml", ACC_RULES, strlen(ACC_RULES), err,
                                     sizeof(err));
    if (acc_rules == NULL) {
        print_error("account rules: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lp_rules_destroy(rules);
    lp_rules_destroy(acc_rules);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_to_6),
        cmocka_unit_test(test_grow_to_5),
        cmocka_unit_test(test_dry_run_writes_nothing),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unreadable_copied_as_is),
        cmocka_unit_test(test_interrupted_runs_converge),
        cmocka_unit_test(test_accounts_grow),
        cmocka_unit_test(test_accounts_count_recorded_at_take),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
