/* Hand-offs as the engine writes them to the outbox, with the in-memory store:
 * - privacy.handoff_fields (opts.handoff_fields): LeadQualified and LeadStale carry exactly the
 *   profile fields whose LP_HANDOFF_* bit is set; the others are null, in JSON and in Avro. The
 *   default keeps region, country, segment, persona and owner and drops email, company, title;
 *   the scorer's own state keeps the whole profile;
 * - LeadErased goes to LP_OUT_ERASED with header event_type=LeadErased (and the model headers),
 *   is counted in stats.erased, and decodes to an erasure carrying no profile.
 *
 * Each case: a profile update with every routing field set, three demo requests of 40 at q-2s,
 * q-1s, q (MQL 100 under RULES: LeadQualified at q), then the clock at q + 48 h (the SLA breach:
 * LeadStale). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/engine.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

#define H_MS (3600LL * 1000)
#define Q_MS 1772409600000LL /* 2026-03-02T00:00:00Z: the qualification time */
#define ENG "engagement.events"
#define PROF "lead.profiles"
#define LEAD "lead-7"
#define MAX_OUT 32

static const char RULES[] = "model: {id: handoff-unit, version: \"2\"}\n"
                            "score: {half_life: 10d, mql: 100, warm: 40, rearm: 60}\n"
                            "activities: {demo_request: 40}\n"
                            "sla: {accept_within: 48h, reminder_every: 24h, max_reminders: 1}\n";

static const char *const topics[2] = {ENG, PROF};

/* The eight profile fields a hand-off carries, their bits and the values the test sends. */
static const struct {
    unsigned bit;
    const char *name;
    const char *value;
} FIELDS[] = {
    {LP_HANDOFF_EMAIL, "email", "ana@example.com"}, {LP_HANDOFF_COMPANY, "company", "Acme GmbH"},
    {LP_HANDOFF_REGION, "region", "emea"},          {LP_HANDOFF_COUNTRY, "country", "DE"},
    {LP_HANDOFF_SEGMENT, "segment", "enterprise"},  {LP_HANDOFF_PERSONA, "persona", "it_buyer"},
    {LP_HANDOFF_TITLE, "title", "Head of IT"},      {LP_HANDOFF_OWNER, "owner", "rep@example.com"},
};
#define NFIELDS (sizeof(FIELDS) / sizeof(FIELDS[0]))

static const char *field_of(const lp_profile_update_t *p, size_t i) {
    const char *const v[NFIELDS] = {p->email,   p->company, p->region, p->country,
                                    p->segment, p->persona, p->title,  p->owner};
    return v[i];
}

typedef struct {
    lp_rules_t *rules;
    lp_avro_codec_t *codec;
    lp_store_t *store;
    lp_engine_t *engine;
    lp_format_t format;
    int64_t offset[2];
    /* the outbox as last read */
    size_t nout;
    int kind[MAX_OUT];
    char meta[MAX_OUT][512];
    lp_fact_t fact[MAX_OUT];
} fx_t;

static lp_rules_t *rules;
static lp_avro_codec_t *codec;

static int setup(void **state) {
    const int32_t ids[LP_SCHEMA__COUNT] = {101, 102, 103, 201, 202, 203};
    char err[LP_ERRSTR] = "";
    (void)state;
    rules = lp_rules_load_buffer("handoff.yaml", RULES, strlen(RULES), err, sizeof(err));
    codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
    if (rules == NULL || codec == NULL) {
        print_error("setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lp_avro_codec_destroy(codec);
    lp_rules_destroy(rules);
    return 0;
}

static void fx_open(fx_t *fx, lp_format_t format, unsigned handoff_fields) {
    const lp_engine_opts_t opts = {.out_format = format,
                                   .out_framing = LP_FRAMING_CONFLUENT,
                                   .cache_max_leads = 16,
                                   .timer_batch = 100,
                                   .handoff_fields = handoff_fields};
    char err[LP_ERRSTR] = "";
    int64_t offsets[2];
    memset(fx, 0, sizeof(*fx));
    fx->format = format;
    fx->store = lp_store_mem_new();
    assert_non_null(fx->store);
    fx->engine = lp_engine_new(&opts, rules, fx->store, codec, err, sizeof(err));
    if (fx->engine == NULL) {
        print_error("engine: %s\n", err);
    }
    assert_non_null(fx->engine);
    assert_int_equal(lp_engine_assign(fx->engine, 0, 2, topics, offsets), LP_OK);
}

static void fx_close(fx_t *fx) {
    lp_engine_destroy(fx->engine);
    lp_store_destroy(fx->store);
}

/* Processes one record of the engagement (t = 0) or profiles (t = 1) topic as one batch; a NULL
 * json is a tombstone (an erasure request at ts). */
static void send(fx_t *fx, int t, const char *json, int64_t ts) {
    lp_engine_msg_t msg = {.topic = topics[t],
                           .kind = t == 0 ? LP_EV_ENGAGEMENT : LP_EV_PROFILE,
                           .format = LP_FORMAT_JSON,
                           .partition = 0,
                           .offset = fx->offset[t]++,
                           .key = (const uint8_t *)LEAD,
                           .key_len = strlen(LEAD),
                           .value = (const uint8_t *)json,
                           .value_len = json != NULL ? strlen(json) : 0,
                           .timestamp_ms = ts,
                           .op = json != NULL ? LP_OP_APPLY : LP_OP_ERASE};
    int rc = lp_engine_process(fx->engine, 0, &msg, 1, Q_MS);
    if (rc != LP_OK) {
        print_error("process: %s\n", lp_engine_errstr(fx->engine));
    }
    assert_int_equal(rc, LP_OK);
}

/* A full profile, then the lead qualifies at q, then its SLA breaches at q + 48 h. */
static void qualify_and_breach(fx_t *fx) {
    char json[1024];
    size_t n = (size_t)snprintf(json, sizeof(json),
                                "{\"event_id\":\"p1\",\"lead_id\":\"" LEAD "\",\"ts\":%lld,"
                                "\"seniority\":\"director\",\"industry\":\"software\","
                                "\"company_size\":500",
                                (long long)(Q_MS - 60000));
    for (size_t i = 0; i < NFIELDS; i++) {
        n += (size_t)snprintf(json + n, sizeof(json) - n, ",\"%s\":\"%s\"", FIELDS[i].name,
                              FIELDS[i].value);
    }
    snprintf(json + n, sizeof(json) - n, "}");
    send(fx, 1, json, Q_MS - 60000);
    for (int i = 2; i >= 0; i--) {
        snprintf(json, sizeof(json),
                 "{\"event_id\":\"d%d\",\"lead_id\":\"" LEAD "\",\"ts\":%lld,"
                 "\"type\":\"demo_request\"}",
                 i, (long long)(Q_MS - i * 1000));
        send(fx, 0, json, Q_MS - i * 1000);
    }
    size_t fired = 0;
    assert_int_equal(lp_engine_fire_timers(fx->engine, 0, Q_MS + 48 * H_MS, &fired), LP_OK);
    assert_int_equal(fired, 1);
}

/* Reads the outbox of partition 0 and decodes every hand-off in it. */
static void read_outbox(fx_t *fx) {
    lp_store_outbox_list_t list = {0};
    char err[LP_ERRSTR];
    assert_int_equal(lp_store_outbox_read(fx->store, 0, MAX_OUT, &list), LP_OK);
    assert_true(list.n < MAX_OUT);
    fx->nout = list.n;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        int rc;
        fx->kind[i] = e->kind;
        snprintf(fx->meta[i], sizeof(fx->meta[i]), "%.*s", (int)e->meta_len, e->meta);
        if (e->kind == LP_OUT_DLQ) {
            continue;
        }
        if (fx->format == LP_FORMAT_JSON) {
            rc = lp_json_decode_fact((const char *)e->value, e->value_len, &fx->fact[i], err,
                                     sizeof(err));
        } else {
            rc = lp_avro_decode_fact(codec, e->value, e->value_len, &fx->fact[i], err, sizeof(err));
        }
        if (rc != LP_OK) {
            print_error("outbox entry %zu: %s\n", i, err);
        }
        assert_int_equal(rc, LP_OK);
        assert_string_equal(fx->fact[i].event_id, e->event_id);
    }
}

/* The index of the only outbox entry of kind, with the given event_type header. */
static size_t only(const fx_t *fx, int kind, const char *event_type) {
    size_t found = MAX_OUT;
    char header[64];
    snprintf(header, sizeof(header), "event_type=%s\n", event_type);
    for (size_t i = 0; i < fx->nout; i++) {
        if (fx->kind[i] == kind) {
            assert_int_equal(found, MAX_OUT);
            found = i;
        }
    }
    assert_true(found < MAX_OUT);
    assert_non_null(strstr(fx->meta[found], header));
    assert_non_null(strstr(fx->meta[found], "model_id=handoff-unit\n"));
    assert_non_null(strstr(fx->meta[found], "model_version=2\n"));
    return found;
}

/* The hand-off holds exactly the fields of mask. */
static void expect_fields(const lp_fact_t *fact, unsigned mask) {
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *got = field_of(&fact->profile, i);
        const char *want = (mask & FIELDS[i].bit) != 0 ? FIELDS[i].value : "";
        if (strcmp(got, want) != 0) {
            print_error("mask 0x%02x, %s: got \"%s\", want \"%s\"\n", mask, FIELDS[i].name, got,
                        want);
            fail();
        }
    }
    /* The schemas carry no other profile field. */
    assert_string_equal(fact->profile.seniority, "");
    assert_string_equal(fact->profile.industry, "");
}

static void check_mask(lp_format_t format, unsigned mask) {
    fx_t fx;
    lp_lead_t lead;
    fx_open(&fx, format, mask);
    qualify_and_breach(&fx);
    read_outbox(&fx);
    assert_int_equal(fx.nout, 2);
    size_t q = only(&fx, LP_OUT_QUALIFIED, "LeadQualified");
    size_t s = only(&fx, LP_OUT_STALE, "LeadStale");
    assert_int_equal(fx.fact[q].kind, LP_FACT_QUALIFIED);
    assert_int_equal(fx.fact[s].kind, LP_FACT_STALE);
    assert_int_equal(fx.fact[s].stale_reason, LP_STALE_SLA_BREACHED);
    expect_fields(&fx.fact[q], mask);
    expect_fields(&fx.fact[s], mask);
    /* Only the hand-offs are trimmed: the lead keeps its whole profile for scoring and routing. */
    assert_int_equal(lp_engine_get_lead(fx.engine, 0, LEAD, &lead), 1);
    for (size_t i = 0; i < NFIELDS; i++) {
        assert_string_equal(field_of(&lead.profile, i), FIELDS[i].value);
    }
    const lp_engine_stats_t *st = lp_engine_stats(fx.engine);
    assert_int_equal(st->qualified, 1);
    assert_int_equal(st->stale[LP_STALE_SLA_BREACHED], 1);
    assert_int_equal(st->erased, 0);
    fx_close(&fx);
}

static void test_default_mask(void **state) {
    (void)state;
    /* The default is the routing fields: nothing that names the person or the employer. */
    assert_int_equal(LP_HANDOFF_DEFAULT, LP_HANDOFF_REGION | LP_HANDOFF_COUNTRY |
                                             LP_HANDOFF_SEGMENT | LP_HANDOFF_PERSONA |
                                             LP_HANDOFF_OWNER);
    check_mask(LP_FORMAT_JSON, LP_HANDOFF_DEFAULT);
    check_mask(LP_FORMAT_AVRO, LP_HANDOFF_DEFAULT);
}

static void test_all_and_none(void **state) {
    (void)state;
    check_mask(LP_FORMAT_JSON, LP_HANDOFF_ALL);
    check_mask(LP_FORMAT_AVRO, LP_HANDOFF_ALL);
    check_mask(LP_FORMAT_JSON, 0);
    check_mask(LP_FORMAT_AVRO, 0);
}

/* Each field on its own, and each field left out: the bits map to the right fields. */
static void test_each_field(void **state) {
    (void)state;
    for (size_t i = 0; i < NFIELDS; i++) {
        check_mask(LP_FORMAT_JSON, FIELDS[i].bit);
        check_mask(LP_FORMAT_AVRO, FIELDS[i].bit);
        check_mask(LP_FORMAT_JSON, LP_HANDOFF_ALL & ~FIELDS[i].bit);
        check_mask(LP_FORMAT_AVRO, LP_HANDOFF_ALL & ~FIELDS[i].bit);
    }
}

/* An erasure request: one LeadErased on LP_OUT_ERASED, counted, with nothing of the profile. */
static void test_erased_handoff(void **state) {
    (void)state;
    for (int f = 0; f < 2; f++) {
        fx_t fx;
        fx_open(&fx, f == 0 ? LP_FORMAT_JSON : LP_FORMAT_AVRO, LP_HANDOFF_ALL);
        qualify_and_breach(&fx);
        send(&fx, 1, NULL, Q_MS + 72 * H_MS);
        read_outbox(&fx);
        size_t e = only(&fx, LP_OUT_ERASED, "LeadErased");
        const lp_fact_t *fact = &fx.fact[e];
        assert_int_equal(fact->kind, LP_FACT_ERASED);
        assert_string_equal(fact->lead_id, LEAD);
        assert_int_equal(fact->ts_ms, Q_MS + 72 * H_MS);
        assert_true(fact->had_state);
        assert_int_equal(fact->suppressed_until_ms, 0);            /* no TTL: until lifted */
        assert_int_equal(strlen(fact->event_id), LP_EVENT_ID_HEX); /* = the outbox's event_id */
        expect_fields(fact, 0);
        assert_string_equal(fact->model_id, ""); /* headers only */
        char ts_header[64];
        snprintf(ts_header, sizeof(ts_header), "event_ts=%lld\n", (long long)(Q_MS + 72 * H_MS));
        assert_non_null(strstr(fx.meta[e], ts_header));
        assert_int_equal(lp_engine_stats(fx.engine)->erased, 1);
        fx_close(&fx);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_mask),
        cmocka_unit_test(test_all_and_none),
        cmocka_unit_test(test_each_field),
        cmocka_unit_test(test_erased_handoff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
