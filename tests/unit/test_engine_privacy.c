/* Erasure on request and suppression through the engine, as the worker calls it, with the
 * in-memory store (docs/privacy.md):
 * - a tombstone on the profiles topic erases the lead: state, timer and undelivered outputs gone,
 *   one LeadErased (had_state, suppressed_until) per request, whatever the batches;
 * - later and late events of an erased lead are dropped and counted, not dead-lettered, and do
 *   not re-create it; the suppression survives a new engine (it is stored) and names no lead id;
 * - privacy.suppression_ttl_ms ends it in event time; `unsuppress` lifts it;
 * - tombstones that are not requests are dead letters with a reason;
 * - a property: random streams with erasure and unsuppress requests at random places give the
 *   same stored state, the same suppression counts and the same outbox (nothing delivered:
 *   every output of an erased lead before its erasure is gone) one record per batch and cut
 *   into random batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/engine.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

#define H_MS (3600LL * 1000)
#define D_MS (24 * H_MS)
#define T0 1772409600000LL /* 2026-03-02T00:00:00Z */
#define ENG "engagement.events"
#define PROF "lead.profiles"
#define MAX_OUT 256
#define MAX_BATCH 64

static const char RULES[] = "model: {id: privacy-unit, version: \"1\"}\n"
                            "score: {half_life: 10d, mql: 100, warm: 40, rearm: 60}\n"
                            "activities: {demo_request: 40, web_visit: 1}\n"
                            "sla: {accept_within: 48h, reminder_every: 24h, max_reminders: 1}\n"
                            "inactivity: {after: 30d, move_to: responder}\n";

static const char *const topics[2] = {ENG, PROF};

typedef struct {
    lp_rules_t *rules;
    lp_store_t *store;
    lp_engine_t *engine;
    int64_t offset[2];
    int64_t ttl_ms;
    uint8_t key[16];
    /* records of the batch being built */
    lp_engine_msg_t msgs[MAX_BATCH];
    char json[MAX_BATCH][256];
    char keys[MAX_BATCH][64];
    size_t n;
    /* the outbox as last read */
    size_t nout;
    int kind[MAX_OUT];
    char okey[MAX_OUT][72];
    char value[MAX_OUT][1024];
} fx_t;

static lp_engine_t *new_engine(fx_t *fx) {
    lp_engine_opts_t opts = {.out_format = LP_FORMAT_JSON,
                             .cache_max_leads = 16,
                             .timer_batch = 100,
                             .handoff_fields = LP_HANDOFF_ALL,
                             .suppression_ttl_ms = fx->ttl_ms};
    memcpy(opts.suppression_key, fx->key, sizeof(fx->key));
    char err[LP_ERRSTR] = "";
    lp_engine_t *engine = lp_engine_new(&opts, fx->rules, fx->store, NULL, err, sizeof(err));
    if (engine == NULL) {
        print_error("engine: %s\n", err);
    }
    assert_non_null(engine);
    int64_t offsets[2];
    assert_int_equal(lp_engine_assign(engine, 0, 2, topics, offsets), LP_OK);
    fx->offset[0] = offsets[0] < 0 ? 0 : offsets[0];
    fx->offset[1] = offsets[1] < 0 ? 0 : offsets[1];
    return engine;
}

static fx_t *fx_new(int64_t ttl_ms) {
    fx_t *fx = calloc(1, sizeof(*fx)); /* large: the outbox copies */
    char err[LP_ERRSTR] = "";
    assert_non_null(fx);
    fx->ttl_ms = ttl_ms;
    for (int i = 0; i < 16; i++) {
        fx->key[i] = (uint8_t)(0xa0 + i);
    }
    fx->rules = lp_rules_load_buffer("privacy.yaml", RULES, strlen(RULES), err, sizeof(err));
    fx->store = lp_store_mem_new();
    assert_non_null(fx->rules);
    assert_non_null(fx->store);
    fx->engine = new_engine(fx);
    return fx;
}

static void fx_free(fx_t *fx) {
    lp_engine_destroy(fx->engine);
    lp_store_destroy(fx->store);
    lp_rules_destroy(fx->rules);
    free(fx);
}

/* Adds an engagement record to the batch being built. */
static void add_engage(fx_t *fx, const char *lead, const char *type, int64_t ts) {
    size_t i = fx->n++;
    assert_true(i < MAX_BATCH);
    snprintf(fx->json[i], sizeof(fx->json[i]),
             "{\"event_id\":\"%s-%s-%lld\",\"lead_id\":\"%s\",\"ts\":%lld,\"type\":\"%s\"}", lead,
             type, (long long)ts, lead, (long long)ts, type);
    snprintf(fx->keys[i], sizeof(fx->keys[i]), "%s", lead);
    fx->msgs[i] = (lp_engine_msg_t){.topic = ENG,
                                    .kind = LP_EV_ENGAGEMENT,
                                    .format = LP_FORMAT_JSON,
                                    .offset = fx->offset[0]++,
                                    .key = (const uint8_t *)fx->keys[i],
                                    .key_len = strlen(lead),
                                    .value = (const uint8_t *)fx->json[i],
                                    .value_len = strlen(fx->json[i]),
                                    .timestamp_ms = ts};
}

/* Adds a tombstone (key NULL when lead is NULL) on topic t (1: profiles) to the batch. */
static void add_tombstone(fx_t *fx, int t, const char *lead, int64_t ts, lp_event_op_t op) {
    size_t i = fx->n++;
    assert_true(i < MAX_BATCH);
    snprintf(fx->keys[i], sizeof(fx->keys[i]), "%s", lead != NULL ? lead : "");
    fx->msgs[i] = (lp_engine_msg_t){.topic = topics[t],
                                    .kind = t == 1 ? LP_EV_PROFILE : LP_EV_ENGAGEMENT,
                                    .format = LP_FORMAT_AVRO,
                                    .offset = fx->offset[t]++,
                                    .key = lead != NULL ? (const uint8_t *)fx->keys[i] : NULL,
                                    .key_len = lead != NULL ? strlen(lead) : 0,
                                    .value = NULL,
                                    .timestamp_ms = ts,
                                    .op = op};
}

static void flush(fx_t *fx) {
    if (fx->n == 0) {
        return;
    }
    int rc = lp_engine_process(fx->engine, 0, fx->msgs, fx->n, T0 + 400 * D_MS);
    if (rc != LP_OK) {
        print_error("process: %s\n", lp_engine_errstr(fx->engine));
    }
    assert_int_equal(rc, LP_OK);
    fx->n = 0;
}

static void engage(fx_t *fx, const char *lead, const char *type, int64_t ts) {
    add_engage(fx, lead, type, ts);
    flush(fx);
}

static void request(fx_t *fx, const char *lead, int64_t ts, lp_event_op_t op) {
    add_tombstone(fx, 1, lead, ts, op);
    flush(fx);
}

static void qualify(fx_t *fx, const char *lead, int64_t q) {
    for (int i = 2; i >= 0; i--) {
        add_engage(fx, lead, "demo_request", q - i * 1000);
    }
}

static void read_outbox(fx_t *fx) {
    lp_store_outbox_list_t list = {0};
    assert_int_equal(lp_store_outbox_read(fx->store, 0, MAX_OUT, &list), LP_OK);
    assert_true(list.n < MAX_OUT);
    fx->nout = list.n;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        fx->kind[i] = e->kind;
        snprintf(fx->okey[i], sizeof(fx->okey[i]), "%.*s", (int)e->key_len, e->key);
        snprintf(fx->value[i], sizeof(fx->value[i]), "%.*s", (int)e->value_len,
                 (const char *)e->value);
    }
}

static size_t outputs(fx_t *fx, int kind, const char *lead) {
    size_t n = 0;
    read_outbox(fx);
    for (size_t i = 0; i < fx->nout; i++) {
        n += (kind < 0 || fx->kind[i] == kind) && (lead == NULL || strcmp(fx->okey[i], lead) == 0);
    }
    return n;
}

static const char *erased_value(fx_t *fx, const char *lead, int nth) {
    read_outbox(fx);
    for (size_t i = 0; i < fx->nout; i++) {
        if (fx->kind[i] == LP_OUT_ERASED && strcmp(fx->okey[i], lead) == 0 && nth-- == 0) {
            return fx->value[i];
        }
    }
    return NULL;
}

static void ack_all(fx_t *fx) {
    lp_store_outbox_list_t list = {0};
    const char *ids[MAX_OUT];
    assert_int_equal(lp_store_outbox_read(fx->store, 0, MAX_OUT, &list), LP_OK);
    for (size_t i = 0; i < list.n; i++) {
        ids[i] = list.entries[i].id;
    }
    assert_int_equal(lp_store_outbox_ack(fx->store, 0, lp_engine_epoch(fx->engine, 0), list.n, ids),
                     LP_OK);
}

static int stored(fx_t *fx, const char *lead) {
    lp_lead_t l;
    int rc = lp_engine_get_lead(fx->engine, 0, lead, &l);
    assert_true(rc == 0 || rc == 1);
    return rc;
}

static size_t timers_of(fx_t *fx, const char *lead) {
    size_t n = 0, match = 0;
    const char **ids = NULL;
    assert_int_equal(lp_store_due(fx->store, 0, INT64_MAX / 2, 100, &n, &ids), LP_OK);
    for (size_t i = 0; i < n; i++) {
        match += strcmp(ids[i], lead) == 0;
    }
    return match;
}

static void expect_has(const char *value, const char *part) {
    if (value == NULL || strstr(value, part) == NULL) {
        print_error("%s\n  has no %s\n", value != NULL ? value : "(none)", part);
        fail();
    }
}

/* An erasure deletes state, timer and undelivered outputs of the lead, emits one LeadErased. */
static void test_erase_deletes_state_timer_and_outputs(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    qualify(fx, "L1", T0);
    add_engage(fx, "L2", "web_visit", T0);
    flush(fx);
    assert_int_equal(outputs(fx, LP_OUT_QUALIFIED, "L1"), 1);
    assert_int_equal(timers_of(fx, "L1"), 1);
    assert_int_equal(stored(fx, "L1"), 1);

    request(fx, "L1", T0 + H_MS, LP_OP_ERASE);
    assert_int_equal(stored(fx, "L1"), 0);
    assert_int_equal(timers_of(fx, "L1"), 0);
    assert_int_equal(outputs(fx, LP_OUT_QUALIFIED, "L1"), 0); /* undelivered: gone */
    assert_int_equal(outputs(fx, LP_OUT_ERASED, "L1"), 1);
    const char *v = erased_value(fx, "L1", 0);
    expect_has(v, "\"lead_id\":\"L1\"");
    expect_has(v, "\"had_state\":true");
    expect_has(v, "\"suppressed_until\":null");
    assert_null(strstr(v, "demo_request")); /* no personal data but the lead id */
    assert_int_equal(stored(fx, "L2"), 1);  /* others untouched */

    /* timers fire nothing for the erased lead */
    size_t fired = 0;
    assert_int_equal(lp_engine_fire_timers(fx->engine, 0, T0 + 100 * D_MS, &fired), LP_OK);
    assert_int_equal(outputs(fx, LP_OUT_STALE, "L1"), 0);
    fx_free(fx);
}

/* Outputs already delivered stay delivered; LeadErased follows them. A second request gives a
 * second LeadErased with had_state false. */
static void test_delivered_outputs_and_repeated_requests(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    qualify(fx, "L1", T0);
    flush(fx);
    ack_all(fx); /* delivered */
    request(fx, "L1", T0 + H_MS, LP_OP_ERASE);
    request(fx, "L1", T0 + 2 * H_MS, LP_OP_ERASE);
    assert_int_equal(outputs(fx, LP_OUT_ERASED, "L1"), 2);
    expect_has(erased_value(fx, "L1", 0), "\"had_state\":true");
    expect_has(erased_value(fx, "L1", 1), "\"had_state\":false");
    /* a lead never seen: erased all the same (the request is honoured), had_state false */
    request(fx, "never-seen", T0, LP_OP_ERASE);
    expect_has(erased_value(fx, "never-seen", 0), "\"had_state\":false");
    fx_free(fx);
}

/* Later and late events of an erased lead are dropped and counted; nothing is re-created. The
 * suppression is stored: a new engine (a restart, another worker) keeps it. */
static void test_suppression_drops_and_survives_restart(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    qualify(fx, "L1", T0);
    flush(fx);
    request(fx, "L1", T0 + H_MS, LP_OP_ERASE);
    uint64_t before = lp_engine_stats(fx->engine)->suppressed;
    engage(fx, "L1", "demo_request", T0 + 2 * H_MS); /* later */
    engage(fx, "L1", "demo_request", T0 - D_MS);     /* late: dated before the erasure */
    assert_int_equal(lp_engine_stats(fx->engine)->suppressed - before, 2);
    assert_int_equal(lp_engine_stats(fx->engine)->dead_letters, 0);
    assert_int_equal(stored(fx, "L1"), 0);

    lp_engine_destroy(fx->engine);
    fx->engine = new_engine(fx);
    qualify(fx, "L1", T0 + 3 * H_MS);
    flush(fx);
    assert_int_equal(stored(fx, "L1"), 0);
    assert_int_equal(lp_engine_stats(fx->engine)->suppressed, 3);
    assert_int_equal(outputs(fx, LP_OUT_QUALIFIED, "L1"), 0);

    /* the stored entry names the keyed hash, not the lead id */
    size_t n = 0;
    const lp_store_suppress_t *e = NULL;
    assert_int_equal(fx->store->ops->suppressed(fx->store, 0, &n, &e), LP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(e[0].hash), 32);
    assert_null(strstr(e[0].hash, "L1"));
    assert_int_equal(e[0].until_ms, 0);
    char first[33];
    memcpy(first, e[0].hash, sizeof(first));

    /* another key names it differently */
    fx_t *other = fx_new(0);
    other->key[0] ^= 1;
    lp_engine_destroy(other->engine);
    other->engine = new_engine(other);
    request(other, "L1", T0, LP_OP_ERASE);
    assert_int_equal(other->store->ops->suppressed(other->store, 0, &n, &e), LP_OK);
    assert_int_equal(n, 1);
    assert_string_not_equal(e[0].hash, first);
    fx_free(other);
    fx_free(fx);
}

/* Unsuppress lifts it: the lead's next events start it afresh. */
static void test_unsuppress(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    qualify(fx, "L1", T0);
    flush(fx);
    request(fx, "L1", T0 + H_MS, LP_OP_ERASE);
    request(fx, "L1", T0 + 2 * H_MS, LP_OP_UNSUPPRESS);
    assert_int_equal(lp_engine_stats(fx->engine)->unsuppressed, 1);
    engage(fx, "L1", "web_visit", T0 + 3 * H_MS);
    assert_int_equal(stored(fx, "L1"), 1);
    lp_lead_t l;
    assert_int_equal(lp_engine_get_lead(fx->engine, 0, "L1", &l), 1);
    assert_int_equal(l.mql_seq, 0); /* afresh: the erased history is gone */
    size_t n = 99;
    const lp_store_suppress_t *e = NULL;
    assert_int_equal(fx->store->ops->suppressed(fx->store, 0, &n, &e), LP_OK);
    assert_int_equal(n, 0);
    /* unsuppress of a lead that is not suppressed changes nothing */
    request(fx, "L2", T0, LP_OP_UNSUPPRESS);
    assert_int_equal(lp_engine_stats(fx->engine)->unsuppressed, 1);
    fx_free(fx);
}

/* privacy.suppression_ttl_ms: in event time from the erasure; an event at or past the end
 * starts the lead afresh and ends the entry. */
static void test_suppression_ttl(void **state) {
    (void)state;
    fx_t *fx = fx_new(30 * D_MS);
    qualify(fx, "L1", T0);
    flush(fx);
    request(fx, "L1", T0 + H_MS, LP_OP_ERASE);
    char until[64];
    snprintf(until, sizeof(until), "\"suppressed_until\":%lld", (long long)(T0 + H_MS + 30 * D_MS));
    expect_has(erased_value(fx, "L1", 0), until);
    engage(fx, "L1", "web_visit", T0 + H_MS + 30 * D_MS - 1);
    assert_int_equal(stored(fx, "L1"), 0);
    engage(fx, "L1", "web_visit", T0 + H_MS + 30 * D_MS);
    assert_int_equal(stored(fx, "L1"), 1);
    engage(fx, "L1", "web_visit", T0); /* the entry is gone: a late event counts again */
    assert_int_equal(lp_engine_stats(fx->engine)->suppressed, 1);
    fx_free(fx);
}

/* Within one batch: the lead's outputs before the erasure are dropped with it, events after it
 * are suppressed, and the LeadErased stays. */
static void test_erase_inside_a_batch(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    qualify(fx, "L1", T0);
    add_tombstone(fx, 1, "L1", T0 + 1000, LP_OP_ERASE);
    add_engage(fx, "L1", "demo_request", T0 + 2000);
    add_engage(fx, "L2", "demo_request", T0 + 2000);
    flush(fx);
    assert_int_equal(outputs(fx, LP_OUT_QUALIFIED, "L1"), 0);
    assert_int_equal(outputs(fx, LP_OUT_ERASED, "L1"), 1);
    expect_has(erased_value(fx, "L1", 0), "\"had_state\":true");
    assert_int_equal(stored(fx, "L1"), 0);
    assert_int_equal(timers_of(fx, "L1"), 0);
    assert_int_equal(stored(fx, "L2"), 1);
    assert_int_equal(lp_engine_stats(fx->engine)->suppressed, 1);
    fx_free(fx);
}

/* Tombstones that are not erasure requests are dead letters with a reason. */
static void test_tombstone_reasons(void **state) {
    (void)state;
    fx_t *fx = fx_new(0);
    static const struct {
        int topic;
        const char *lead;
        int64_t ts;
        lp_event_op_t op;
        const char *reason;
    } cases[] = {
        {0, "L1", T0, LP_OP_ERASE, "an erasure request goes to the profiles topic"},
        {1, NULL, T0, LP_OP_ERASE, "tombstone without a key"},
        {1, "L1", 0, LP_OP_ERASE, "tombstone without a timestamp"},
        {1, "L1", T0, LP_OP_INVALID, "unknown leadpulse.op header"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        add_tombstone(fx, cases[i].topic, cases[i].lead, cases[i].ts, cases[i].op);
    }
    flush(fx);
    lp_store_outbox_list_t list = {0};
    assert_int_equal(lp_store_outbox_read(fx->store, 0, MAX_OUT, &list), LP_OK);
    assert_int_equal(list.n, sizeof(cases) / sizeof(cases[0]));
    for (size_t i = 0; i < list.n; i++) {
        assert_int_equal(list.entries[i].kind, LP_OUT_DLQ);
        char meta[1024];
        snprintf(meta, sizeof(meta), "%.*s", (int)list.entries[i].meta_len, list.entries[i].meta);
        expect_has(meta, cases[i].reason);
    }
    assert_int_equal(stored(fx, "L1"), 0);
    fx_free(fx);
}

/* Property: see the top of the file. LP_PRIVACY_SEED=<n> reruns one seed. */
typedef struct {
    int kind; /* 0 engage, 1 erase, 2 unsuppress */
    int lead;
    int64_t ts;
    const char *type;
} rec_t;

static void run_stream(fx_t *fx, const rec_t *recs, size_t n, unsigned *seed) {
    char lead[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(lead, sizeof(lead), "P%d", recs[i].lead);
        if (recs[i].kind == 0) {
            add_engage(fx, lead, recs[i].type, recs[i].ts);
        } else {
            add_tombstone(fx, 1, lead, recs[i].ts,
                          recs[i].kind == 1 ? LP_OP_ERASE : LP_OP_UNSUPPRESS);
        }
        if (seed == NULL || rand_r(seed) % 4 == 0 || fx->n == MAX_BATCH) {
            flush(fx);
        }
    }
    flush(fx);
}

static void test_property_any_batching(void **state) {
    (void)state;
    const char *seed_env = getenv("LP_PRIVACY_SEED");
    unsigned seed0 = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : 20261204u;
    for (int round = 0; round < 60; round++) {
        unsigned seed = seed0 + (unsigned)round;
        rec_t recs[120];
        size_t n = 40 + rand_r(&seed) % 80;
        int64_t ts = T0;
        for (size_t i = 0; i < n; i++) {
            int r = (int)(rand_r(&seed) % 20);
            ts += (int64_t)(rand_r(&seed) % (6 * H_MS));
            recs[i] =
                (rec_t){r < 2   ? 1
                        : r < 3 ? 2
                                : 0,
                        (int)(rand_r(&seed) % 5), ts, r % 2 == 0 ? "demo_request" : "web_visit"};
        }
        fx_t *a = fx_new(round % 2 == 0 ? 0 : 2 * D_MS);
        fx_t *b = fx_new(round % 2 == 0 ? 0 : 2 * D_MS);
        run_stream(a, recs, n, NULL);
        unsigned bseed = seed;
        run_stream(b, recs, n, &bseed);
        read_outbox(a);
        read_outbox(b);
        bool same = a->nout == b->nout;
        for (size_t i = 0; same && i < a->nout; i++) {
            same = a->kind[i] == b->kind[i] && strcmp(a->okey[i], b->okey[i]) == 0 &&
                   strcmp(a->value[i], b->value[i]) == 0;
        }
        if (!same) {
            print_error("seed %u: outboxes differ (%zu vs %zu entries)\n", seed0 + (unsigned)round,
                        a->nout, b->nout);
            fail();
        }
        for (int l = 0; l < 5; l++) {
            char lead[16];
            snprintf(lead, sizeof(lead), "P%d", l);
            lp_lead_t la, lb;
            int ra = lp_engine_get_lead(a->engine, 0, lead, &la);
            int rb = lp_engine_get_lead(b->engine, 0, lead, &lb);
            if (ra != rb || (ra == 1 && (la.mql_seq != lb.mql_seq || la.stage != lb.stage))) {
                print_error("seed %u lead %s: one record per batch %d, random batches %d\n",
                            seed0 + (unsigned)round, lead, ra, rb);
                fail();
            }
        }
        assert_int_equal(lp_engine_stats(a->engine)->suppressed,
                         lp_engine_stats(b->engine)->suppressed);
        fx_free(a);
        fx_free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_erase_deletes_state_timer_and_outputs),
        cmocka_unit_test(test_delivered_outputs_and_repeated_requests),
        cmocka_unit_test(test_suppression_drops_and_survives_restart),
        cmocka_unit_test(test_unsuppress),
        cmocka_unit_test(test_suppression_ttl),
        cmocka_unit_test(test_erase_inside_a_batch),
        cmocka_unit_test(test_tombstone_reasons),
        cmocka_unit_test(test_property_any_batching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
