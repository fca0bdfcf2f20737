/* The record-level rows of docs/bad-inputs.md: what the engine does with each bad record a topic
 * can carry (dead letter and its reason header, duplicate, applied), through lp_engine_process
 * with the in-memory store and the default rules, exactly as the worker calls it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/codec.h"
#include "leadpulse/engine.h"
#include "leadpulse/store.h"

#define NOW_MS 1795600800000LL /* wall clock of the tests: 2026-11-25T...Z */
#define DAY_MS 86400000LL
#define TOPIC "engagement.events"

typedef struct {
    lp_rules_t *rules;
    lp_store_t *store;
    lp_avro_codec_t *codec;
    lp_engine_t *engine;
    char reason[600]; /* reason header of the last dead letter of the last run, "" if none */
    size_t dead_letters;
} fx_t;

static int setup(void **state) {
    static fx_t fx;
    const int32_t ids[LP_SCHEMA__COUNT] = {101, 102, 103, 201, 202, 203};
    const lp_engine_opts_t opts = {.out_format = LP_FORMAT_JSON,
                                   .out_framing = LP_FRAMING_CONFLUENT,
                                   .max_future_skew_ms = DAY_MS, /* the configuration default */
                                   .cache_max_leads = 0,
                                   .timer_batch = 100,
                                   .handoff_fields = LP_HANDOFF_ALL};
    const char *topics[1] = {TOPIC};
    char err[LP_ERRSTR] = "";
    int64_t offset;

    memset(&fx, 0, sizeof(fx));
    fx.rules = lp_rules_load(LP_SOURCE_DIR "/config/rules.yaml", err, sizeof(err));
    fx.codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
    fx.store = lp_store_mem_new();
    if (fx.rules == NULL || fx.codec == NULL || fx.store == NULL) {
        print_error("setup: %s\n", err);
        return -1;
    }
    fx.engine = lp_engine_new(&opts, fx.rules, fx.store, fx.codec, err, sizeof(err));
    if (fx.engine == NULL || lp_engine_assign(fx.engine, 0, 1, topics, &offset) != LP_OK) {
        print_error("engine: %s\n", err);
        return -1;
    }
    *state = &fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    lp_engine_destroy(fx->engine);
    lp_store_destroy(fx->store);
    lp_avro_codec_destroy(fx->codec);
    lp_rules_destroy(fx->rules);
    return 0;
}

static lp_engine_msg_t msg_of(const char *key, const void *value, size_t len, int64_t offset) {
    lp_engine_msg_t msg = {.topic = TOPIC,
                           .kind = LP_EV_ENGAGEMENT,
                           .format = LP_FORMAT_JSON,
                           .partition = 0,
                           .offset = offset,
                           .key = (const uint8_t *)key,
                           .key_len = key != NULL ? strlen(key) : 0,
                           .value = value,
                           .value_len = len};
    return msg;
}

/* Processes msgs as one batch; collects the dead letters it produced and acknowledges the whole
 * outbox, so each call starts from an empty one. */
static void run(fx_t *fx, lp_engine_msg_t *msgs, size_t n) {
    lp_store_outbox_list_t list = {0};
    const char *ids[64];

    int rc_ = lp_engine_process(fx->engine, 0, msgs, n, NOW_MS);
    if (rc_ != LP_OK) {
        print_error("engine: %s\n", lp_engine_errstr(fx->engine));
    }
    assert_int_equal(rc_, LP_OK);
    assert_int_equal(lp_store_outbox_read(fx->store, 0, 64, &list), LP_OK);
    fx->reason[0] = '\0';
    fx->dead_letters = 0;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        ids[i] = e->id;
        if (e->kind == LP_OUT_DLQ) {
            const char *r = strstr(e->meta, "reason=");
            const char *end = r != NULL ? strchr(r, '\n') : NULL;
            assert_non_null(end);
            snprintf(fx->reason, sizeof(fx->reason), "%.*s", (int)(end - r - 7), r + 7);
            fx->dead_letters++;
        }
    }
    assert_int_equal(lp_store_outbox_ack(fx->store, 0, 1, list.n, ids), LP_OK);
}

static void expect_dead_letter(fx_t *fx, lp_engine_msg_t msg, const char *reason_part) {
    run(fx, &msg, 1);
    if (fx->dead_letters != 1 || strstr(fx->reason, reason_part) == NULL) {
        print_error("want one dead letter with \"%s\", got %zu: \"%s\"\n", reason_part,
                    fx->dead_letters, fx->reason);
        fail();
    }
}

static void expect_applied(fx_t *fx, lp_engine_msg_t msg) {
    uint64_t applied = lp_engine_stats(fx->engine)->applied;
    run(fx, &msg, 1);
    if (fx->dead_letters != 0) {
        print_error("unexpected dead letter: %s\n", fx->reason);
        fail();
    }
    assert_int_equal(lp_engine_stats(fx->engine)->applied, applied + 1);
}

static double score_of(fx_t *fx, const char *lead_id) {
    lp_lead_t lead;
    assert_int_equal(lp_engine_get_lead(fx->engine, 0, lead_id, &lead), 1);
    return lead.score;
}

#define JSON_EV(id, lead, ts, type)                                                                \
    "{\"event_id\":\"" id "\",\"lead_id\":\"" lead "\",\"ts\":" ts ",\"type\":\"" type "\"}"
#define NOW_S "1795600800000"

static void test_tombstone_and_empty_value(void **state) {
    fx_t *fx = *state;
    /* A tombstone on an input topic other than profiles is no erasure request (docs/privacy.md;
     * tests/unit/test_engine_privacy.c covers those). */
    expect_dead_letter(fx, msg_of("lead-1", NULL, 0, 1),
                       "an erasure request goes to the profiles topic");
    expect_dead_letter(fx, msg_of("lead-1", "", 0, 2), "empty record value");
}

static void test_key_must_match_lead_id(void **state) {
    fx_t *fx = *state;
    const char *v = JSON_EV("k1", "lead-1", NOW_S, "web_visit");
    expect_dead_letter(fx, msg_of("lead-2", v, strlen(v), 3),
                       "record key does not match lead_id lead-1");
    /* A key that is a prefix of the lead id is another key. */
    expect_dead_letter(fx, msg_of("lead-", v, strlen(v), 4), "record key does not match");
}

/* No key / an empty key is not checked: the record is applied to its lead_id's state. */
static void test_empty_key_is_applied(void **state) {
    fx_t *fx = *state;
    const char *v = JSON_EV("k2", "lead-k", NOW_S, "web_visit");
    const char *w = JSON_EV("k3", "lead-k", NOW_S, "web_visit");
    expect_applied(fx, msg_of("", v, strlen(v), 5));
    expect_applied(fx, msg_of(NULL, w, strlen(w), 6));
}

static void test_duplicates_are_ignored(void **state) {
    fx_t *fx = *state;
    const char *v = JSON_EV("dup-1", "lead-d", NOW_S, "demo_request");
    lp_engine_msg_t twice[2] = {msg_of("lead-d", v, strlen(v), 7),
                                msg_of("lead-d", v, strlen(v), 8)};
    uint64_t dups = lp_engine_stats(fx->engine)->duplicates;
    double once;

    run(fx, twice, 2); /* in one batch */
    assert_int_equal(fx->dead_letters, 0);
    assert_int_equal(lp_engine_stats(fx->engine)->duplicates, dups + 1);
    once = score_of(fx, "lead-d");
    assert_true(once > 0.0);
    run(fx, twice, 1); /* in a later batch (a redelivery after a crash) */
    assert_int_equal(lp_engine_stats(fx->engine)->duplicates, dups + 2);
    assert_true(score_of(fx, "lead-d") == once);
}

static void test_timestamps(void **state) {
    fx_t *fx = *state;
    char v[256];

    snprintf(v, sizeof(v), JSON_EV("t0", "lead-t", "0", "web_visit"));
    expect_dead_letter(fx, msg_of("lead-t", v, strlen(v), 9),
                       "timestamp 0 is not after the Unix epoch");
    snprintf(v, sizeof(v), JSON_EV("t1", "lead-t", "%lld", "web_visit"), NOW_MS + 2 * DAY_MS);
    expect_dead_letter(fx, msg_of("lead-t", v, strlen(v), 10),
                       "ms in the future (limit max_future_skew_ms=86400000)");
    /* Within the skew: applied. */
    snprintf(v, sizeof(v), JSON_EV("t2", "lead-t", "%lld", "web_visit"), NOW_MS + DAY_MS / 2);
    expect_applied(fx, msg_of("lead-t", v, strlen(v), 11));
    /* Seconds instead of milliseconds (1970) and the year 9999: decoder range, then the checks. */
    snprintf(v, sizeof(v), JSON_EV("t3", "lead-t", "253402300800000", "web_visit"));
    expect_dead_letter(fx, msg_of("lead-t", v, strlen(v), 12), "integer out of range");
    snprintf(v, sizeof(v), JSON_EV("t4", "lead-t", "-5", "web_visit"));
    expect_dead_letter(fx, msg_of("lead-t", v, strlen(v), 13), "integer out of range");
}

/* A late event (older than the lead's latest) is applied with the points it has decayed to by
 * the lead's reference time: one half-life late adds half its points, decades late adds nothing.
 * The score never moves backwards in time. */
static void test_event_far_in_the_past_is_applied(void **state) {
    fx_t *fx = *state;
    const double half_life_ms = fx->rules->half_life_ms;
    char v[256];
    double before;

    snprintf(v, sizeof(v), JSON_EV("p1", "lead-p", NOW_S, "web_visit"));
    expect_applied(fx, msg_of("lead-p", v, strlen(v), 14));
    before = score_of(fx, "lead-p");
    snprintf(v, sizeof(v), JSON_EV("p2", "lead-p", "%lld", "demo_request"),
             NOW_MS - (long long)half_life_ms);
    expect_applied(fx, msg_of("lead-p", v, strlen(v), 15));
    assert_float_equal(score_of(fx, "lead-p"), before + 40.0 / 2, 1e-9);
    before = score_of(fx, "lead-p");
    snprintf(v, sizeof(v), JSON_EV("p3", "lead-p", "1000", "demo_request"));
    expect_applied(fx, msg_of("lead-p", v, strlen(v), 16));
    assert_float_equal(score_of(fx, "lead-p"), before, 1e-9);
}

static void test_unknown_activity_and_wrong_topic(void **state) {
    fx_t *fx = *state;
    const char *v = JSON_EV("u1", "lead-u", NOW_S, "page_view");
    const char *prof =
        "{\"event_id\":\"u2\",\"lead_id\":\"lead-u\",\"ts\":" NOW_S ",\"title\":\"CTO\"}";
    expect_dead_letter(fx, msg_of("lead-u", v, strlen(v), 17), "unknown activity type");
    expect_dead_letter(fx, msg_of("lead-u", prof, strlen(prof), 18),
                       "record is a profile event but topic " TOPIC " carries engagement events");
}

static void test_undecodable_records(void **state) {
    fx_t *fx = *state;
    const char bad_utf8[] =
        "{\"event_id\":\"b1\",\"lead_id\":\"lead-\xff\",\"ts\":1,\"type\":\"x\"}";
    const char nan_size[] = "{\"event_id\":\"b2\",\"lead_id\":\"l\",\"ts\":1,\"company_size\":NaN}";
    const char neg_size[] = "{\"event_id\":\"b3\",\"lead_id\":\"l\",\"ts\":1,\"company_size\":-1}";
    const char empty_lead[] = "{\"event_id\":\"b4\",\"lead_id\":\"\",\"ts\":1,\"type\":\"x\"}";
    const uint8_t avro_unknown_id[] = {0, 0, 0, 0, 42, 4, 'e', '1'};
    const uint8_t avro_raw[] = {4, 'e', '1', 4, 'l', '1', 2, 2, 'x', 0, 0, 0, 0, 0};
    lp_engine_msg_t m;

    expect_dead_letter(fx, msg_of(NULL, bad_utf8, strlen(bad_utf8), 19), "invalid UTF-8 in string");
    expect_dead_letter(fx, msg_of(NULL, nan_size, strlen(nan_size), 20), "expected a number");
    expect_dead_letter(fx, msg_of(NULL, neg_size, strlen(neg_size), 21), "integer out of range");
    expect_dead_letter(fx, msg_of(NULL, empty_lead, strlen(empty_lead), 22), "lead_id is empty");
    m = msg_of(NULL, avro_unknown_id, sizeof(avro_unknown_id), 23);
    m.format = LP_FORMAT_AVRO;
    expect_dead_letter(fx, m, "unknown schema id 42");
    /* The worker accepts framed Avro only: a bare record has no schema to read it with. */
    m = msg_of(NULL, avro_raw, sizeof(avro_raw), 24);
    m.format = LP_FORMAT_AVRO;
    expect_dead_letter(fx, m, "unframed record (first byte 0x04)");
}

/* Stored state that does not decode (corrupted, or written by another format version): the lead
 * restarts from scratch, counted in corrupt_state, and the partition keeps going. */
static void test_corrupt_stored_state(void **state) {
    fx_t *fx = *state;
    const uint8_t garbage[] = {0x09, 0xFF, 0xFF, 0xFF};
    const lp_store_lead_t lead = {.lead_id = "lead-c", .data = garbage, .len = sizeof(garbage)};
    const char *v = JSON_EV("c1", "lead-c", NOW_S, "web_visit");
    const char *topics[1] = {TOPIC};
    uint64_t corrupt = lp_engine_stats(fx->engine)->corrupt_state;
    int64_t epoch = 0, offset;

    /* Write the garbage as its own owner would, then let the engine take the partition over. */
    assert_int_equal(lp_store_fence(fx->store, 1, &epoch), LP_OK);
    lp_store_batch_t batch = {.partition = 1, .epoch = epoch, .nleads = 1, .leads = &lead};
    assert_int_equal(lp_store_commit(fx->store, &batch), LP_OK);
    assert_int_equal(lp_engine_assign(fx->engine, 1, 1, topics, &offset), LP_OK);

    lp_engine_msg_t m = msg_of("lead-c", v, strlen(v), 2);
    m.partition = 1;
    assert_int_equal(lp_engine_process(fx->engine, 1, &m, 1, NOW_MS), LP_OK);
    assert_int_equal(lp_engine_stats(fx->engine)->corrupt_state, corrupt + 1);
    lp_lead_t got;
    assert_int_equal(lp_engine_get_lead(fx->engine, 1, "lead-c", &got), 1);
    assert_true(got.score > 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tombstone_and_empty_value),
        cmocka_unit_test(test_key_must_match_lead_id),
        cmocka_unit_test(test_empty_key_is_applied),
        cmocka_unit_test(test_duplicates_are_ignored),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_event_far_in_the_past_is_applied),
        cmocka_unit_test(test_unknown_activity_and_wrong_topic),
        cmocka_unit_test(test_undecodable_records),
        cmocka_unit_test(test_corrupt_stored_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
