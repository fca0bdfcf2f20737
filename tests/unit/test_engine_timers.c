/* Issue 5 through the engine, as the worker calls it, with the in-memory store: the timer entry
 * is written in the lead's own commit; a due timer fires once (not again at the same clock, not
 * after a crash that followed its commit) and only through the partition's current owner;
 * acceptance cancels the SLA; cooling and inactivity fire in time order and move the lead back
 * to nurture; feedback for a lead never seen creates it, counts the rejection by reason, and the
 * reason is echoed when the lead qualifies again.
 *
 * Timeline of one qualified lead under RULES (half-life 10 d, MQL 100, re-arm 60, warm 40):
 * three demo requests of 40 at q-2s, q-1s, q give 120 - (tiny decay) >= 100 at q: MQL.
 *   q + 48 h  SLA breached (reminder 0)         q + 72 h  reminder 1 (max_reminders 1)
 *   q + ~10 d cooled: 120 * 2^-(dt / 10 d) = 60 at dt ~= 10 d: back to warm (60 >= 40)
 *   q + 30 d  inactive (30 d after the last demo request): back to responder */
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
#define D_MS (24 * H_MS)
#define Q_MS 1772409600000LL /* 2026-03-02T00:00:00Z: the qualification time */
#define ENG "engagement.events"
#define FB "sales.feedback"
#define MAX_OUT 32

static const char RULES[] = "model: {id: timers-unit, version: \"3\"}\n"
                            "score: {half_life: 10d, mql: 100, warm: 40, rearm: 60}\n"
                            "activities: {demo_request: 40, web_visit: 1}\n"
                            "sla: {accept_within: 48h, reminder_every: 24h, max_reminders: 1}\n"
                            "inactivity: {after: 30d, move_to: responder}\n"
                            "recycle: {score: reset}\n";

typedef struct {
    lp_rules_t *rules;
    lp_store_t *store;
    lp_engine_t *engine;
    int64_t offset[2]; /* next offset of ENG, FB */
    /* The outbox as last read (not acknowledged: entries stay until ack_all). */
    size_t nout;
    int kind[MAX_OUT];
    char event_id[MAX_OUT][64];
    char value[MAX_OUT][1024];
} fx_t;

static const char *const topics[2] = {ENG, FB};

static lp_engine_t *new_engine(fx_t *fx) {
    const lp_engine_opts_t opts = {.out_format = LP_FORMAT_JSON,
                                   .out_framing = LP_FRAMING_CONFLUENT,
                                   .max_future_skew_ms = 0,
                                   .cache_max_leads = 16,
                                   .timer_batch = 100,
                                   .handoff_fields = LP_HANDOFF_ALL};
    char err[LP_ERRSTR] = "";
    lp_engine_t *engine = lp_engine_new(&opts, fx->rules, fx->store, NULL, err, sizeof(err));
    if (engine == NULL) {
        print_error("engine: %s\n", err);
    }
    assert_non_null(engine);
    return engine;
}

static void assign(lp_engine_t *engine) {
    int64_t offsets[2];
    assert_int_equal(lp_engine_assign(engine, 0, 2, topics, offsets), LP_OK);
}

static int setup(void **state) {
    static fx_t fx;
    char err[LP_ERRSTR] = "";
    memset(&fx, 0, sizeof(fx));
    fx.rules = lp_rules_load_buffer("timers.yaml", RULES, strlen(RULES), err, sizeof(err));
    fx.store = lp_store_mem_new();
    if (fx.rules == NULL || fx.store == NULL) {
        print_error("setup: %s\n", err);
        return -1;
    }
    fx.engine = new_engine(&fx);
    assign(fx.engine);
    *state = &fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    lp_engine_destroy(fx->engine);
    lp_store_destroy(fx->store);
    lp_rules_destroy(fx->rules);
    return 0;
}

/* Processes one JSON record of the engagement (fb = false) or feedback topic as one batch. */
static void send(fx_t *fx, bool fb, const char *lead_id, const char *json) {
    lp_engine_msg_t msg = {.topic = topics[fb],
                           .kind = fb ? LP_EV_FEEDBACK : LP_EV_ENGAGEMENT,
                           .format = LP_FORMAT_JSON,
                           .partition = 0,
                           .offset = fx->offset[fb]++,
                           .key = (const uint8_t *)lead_id,
                           .key_len = strlen(lead_id),
                           .value = (const uint8_t *)json,
                           .value_len = strlen(json)};
    int rc = lp_engine_process(fx->engine, 0, &msg, 1, Q_MS);
    if (rc != LP_OK) {
        print_error("process: %s\n", lp_engine_errstr(fx->engine));
    }
    assert_int_equal(rc, LP_OK);
}

static void engage(fx_t *fx, const char *lead_id, const char *type, int64_t ts) {
    char json[256];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"%s-%s-%lld\",\"lead_id\":\"%s\",\"ts\":%lld,\"type\":\"%s\"}",
             lead_id, type, (long long)ts, lead_id, (long long)ts, type);
    send(fx, false, lead_id, json);
}

static void feedback(fx_t *fx, const char *lead_id, const char *outcome, const char *reason,
                     int64_t ts) {
    char json[256];
    snprintf(
        json, sizeof(json),
        "{\"event_id\":\"fb-%s-%lld\",\"lead_id\":\"%s\",\"ts\":%lld,\"outcome\":\"%s\"%s%s%s}",
        lead_id, (long long)ts, lead_id, (long long)ts, outcome,
        reason != NULL ? ",\"reason\":\"" : "", reason != NULL ? reason : "",
        reason != NULL ? "\"" : "");
    send(fx, true, lead_id, json);
}

/* Three demo requests ending at q: the lead qualifies at q. */
static void qualify(fx_t *fx, const char *lead_id, int64_t q) {
    for (int i = 2; i >= 0; i--) {
        engage(fx, lead_id, "demo_request", q - i * 1000);
    }
}

/* Reads the whole outbox of partition 0 into fx (without acknowledging it). */
static void read_outbox(fx_t *fx) {
    lp_store_outbox_list_t list = {0};
    assert_int_equal(lp_store_outbox_read(fx->store, 0, MAX_OUT, &list), LP_OK);
    assert_true(list.n < MAX_OUT);
    fx->nout = list.n;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        fx->kind[i] = e->kind;
        snprintf(fx->event_id[i], sizeof(fx->event_id[i]), "%s", e->event_id);
        snprintf(fx->value[i], sizeof(fx->value[i]), "%.*s", (int)e->value_len,
                 (const char *)e->value);
    }
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

static size_t fire(lp_engine_t *engine, int64_t now, int want_rc) {
    size_t fired = 99;
    int rc = lp_engine_fire_timers(engine, 0, now, &fired);
    if (rc != want_rc) {
        print_error("fire_timers at %lld: rc %d (%s), want %d\n", (long long)now, rc,
                    lp_engine_errstr(engine), want_rc);
    }
    assert_int_equal(rc, want_rc);
    return fired;
}

/* Lead ids with a timer due at or before now, in the store. */
static size_t due(fx_t *fx, int64_t now, const char *lead_id) {
    size_t n = 0, match = 0;
    const char **ids = NULL;
    assert_int_equal(lp_store_due(fx->store, 0, now, 100, &n, &ids), LP_OK);
    for (size_t i = 0; i < n; i++) {
        match += lead_id == NULL || strcmp(ids[i], lead_id) == 0;
    }
    return match;
}

static void expect_has(const char *value, const char *part) {
    if (strstr(value, part) == NULL) {
        print_error("%s\n  has no %s\n", value, part);
        fail();
    }
}

static lp_lead_t stored(fx_t *fx, const char *lead_id) {
    lp_lead_t lead;
    assert_int_equal(lp_engine_get_lead(fx->engine, 0, lead_id, &lead), 1);
    return lead;
}

/* The commit that qualifies the lead also writes its SLA deadline into the partition's timers
 * and the next input offset: nothing is due before the deadline, the lead is due at it. */
static void test_timer_committed_with_the_lead(void **state) {
    fx_t *fx = *state;
    int64_t next = -1;
    qualify(fx, "lead-a", Q_MS);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    assert_int_equal(fx->kind[0], LP_OUT_QUALIFIED);
    expect_has(fx->value[0], "\"sla_deadline\":1772582400000"); /* q + 48 h */
    assert_int_equal(due(fx, Q_MS + 48 * H_MS - 1, NULL), 0);
    assert_int_equal(due(fx, Q_MS + 48 * H_MS, "lead-a"), 1);
    assert_int_equal(lp_store_get_offset(fx->store, 0, ENG, &next), LP_OK);
    assert_int_equal(next, fx->offset[0]);
}

/* At the deadline, once: not a millisecond early, not again at the same clock; the reminder
 * follows a day later, then the SLA is done. */
static void test_sla_fires_once_then_reminder(void **state) {
    fx_t *fx = *state;
    char want_id[LP_EVENT_ID_HEX + 1];
    qualify(fx, "lead-a", Q_MS);
    ack_all(fx);

    assert_int_equal(fire(fx->engine, Q_MS + 48 * H_MS - 1, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 0);
    assert_int_equal(fire(fx->engine, Q_MS + 48 * H_MS, LP_OK), 1);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    assert_int_equal(fx->kind[0], LP_OUT_STALE);
    expect_has(fx->value[0], "\"reason\":\"sla_breached\"");
    expect_has(fx->value[0], "\"reminder\":0");
    expect_has(fx->value[0], "\"ts\":1772582400000");
    lp_event_id_derive(want_id, "lead-a", "stale:sla_breached", 1, 0);
    assert_string_equal(fx->event_id[0], want_id);

    /* The same clock again (the worker's next tick): nothing is due, nothing fires. */
    assert_int_equal(due(fx, Q_MS + 48 * H_MS, NULL), 0);
    assert_int_equal(fire(fx->engine, Q_MS + 48 * H_MS, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    ack_all(fx);

    assert_int_equal(fire(fx->engine, Q_MS + 72 * H_MS, LP_OK), 1);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    expect_has(fx->value[0], "\"reminder\":1");
    assert_int_equal(lp_engine_stats(fx->engine)->stale[LP_STALE_SLA_BREACHED], 2);
    assert_int_equal(lp_engine_stats(fx->engine)->timers_fired, 2);
    /* max_reminders 1: the next timer is the cooling one, days away */
    assert_int_equal(due(fx, Q_MS + 9 * D_MS, NULL), 0);
}

/* Accepted before the deadline: SQL, no timer left in the store, nothing ever fires. */
static void test_acceptance_cancels_sla(void **state) {
    fx_t *fx = *state;
    qualify(fx, "lead-b", Q_MS);
    feedback(fx, "lead-b", "accepted", NULL, Q_MS + H_MS);
    ack_all(fx);
    assert_int_equal(due(fx, Q_MS + 365 * D_MS, NULL), 0);
    assert_int_equal(fire(fx->engine, Q_MS + 365 * D_MS, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 0);
    assert_int_equal(stored(fx, "lead-b").stage, LP_STAGE_SQL);
    assert_int_equal(lp_engine_stats(fx->engine)->stale[LP_STALE_SLA_BREACHED], 0);
}

/* One late tick fires every deadline of the lead in time order, at its own time: breach,
 * reminder, cooled (back to warm), inactive (back to responder, as move_to says). */
static void test_all_timers_in_order_back_to_nurture(void **state) {
    fx_t *fx = *state;
    static const char *const want[] = {"\"reason\":\"sla_breached\"", "\"reason\":\"sla_breached\"",
                                       "\"reason\":\"cooled\"", "\"reason\":\"inactive\""};
    static const char *const stage[] = {"\"stage\":\"mql\"", "\"stage\":\"mql\"",
                                        "\"stage\":\"warm\"", "\"stage\":\"responder\""};
    qualify(fx, "lead-c", Q_MS);
    ack_all(fx);
    assert_int_equal(fire(fx->engine, Q_MS + 40 * D_MS, LP_OK), 1);
    read_outbox(fx);
    assert_int_equal(fx->nout, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fx->kind[i], LP_OUT_STALE);
        expect_has(fx->value[i], want[i]);
        expect_has(fx->value[i], stage[i]);
    }
    expect_has(fx->value[3], "\"ts\":1775001600000"); /* q + 30 d */
    lp_lead_t lead = stored(fx, "lead-c");
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_true(lead.armed);
    assert_int_equal(due(fx, INT64_MAX, NULL), 0);
}

/* Only the owner fires: an engine that was never assigned the partition is refused before it
 * touches the store, and after a rebalance the old owner's commit is fenced. The timer fires
 * once, through the new owner. */
static void test_only_the_owner_fires(void **state) {
    fx_t *fx = *state;
    int64_t now = Q_MS + 48 * H_MS;
    qualify(fx, "lead-d", Q_MS);
    ack_all(fx);

    lp_engine_t *other = new_engine(fx);
    assert_false(lp_engine_owns(other, 0));
    fire(other, now, LP_STORE_FENCED);
    read_outbox(fx);
    assert_int_equal(fx->nout, 0);
    assert_int_equal(due(fx, now, "lead-d"), 1);

    assign(other); /* the rebalance: a new epoch; fx->engine is now a zombie */
    fire(fx->engine, now, LP_STORE_FENCED);
    read_outbox(fx);
    assert_int_equal(fx->nout, 0);
    assert_int_equal(due(fx, now, "lead-d"), 1);

    assert_int_equal(fire(other, now, LP_OK), 1);
    fire(fx->engine, now, LP_STORE_FENCED);
    assert_int_equal(fire(other, now, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    expect_has(fx->value[0], "\"reason\":\"sla_breached\"");
    assert_int_equal(lp_engine_stats(fx->engine)->timers_fired, 0);
    lp_engine_destroy(other);
}

/* A crash after the firing commit, before delivery: the restarted owner finds the hand-off in
 * the outbox (to send, same id) and the timer gone, so it does not fire it again. */
static void test_restart_after_firing_commit(void **state) {
    fx_t *fx = *state;
    int64_t now = Q_MS + 48 * H_MS;
    qualify(fx, "lead-e", Q_MS);
    ack_all(fx);
    assert_int_equal(fire(fx->engine, now, LP_OK), 1);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    char id[64];
    snprintf(id, sizeof(id), "%s", fx->event_id[0]);

    lp_engine_destroy(fx->engine); /* the crash: nothing acknowledged */
    fx->engine = new_engine(fx);
    assign(fx->engine);
    assert_int_equal(fire(fx->engine, now, LP_OK), 0);
    assert_int_equal(fire(fx->engine, now + 1000, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    assert_string_equal(fx->event_id[0], id);
}

/* Feedback first: the lead is created (not dropped), recycled with its reason, counted by
 * reason; when it qualifies later the reason is echoed. Closed leads never hand off again. */
static void test_feedback_for_unseen_lead(void **state) {
    fx_t *fx = *state;
    const lp_engine_stats_t *st = lp_engine_stats(fx->engine);
    uint64_t created = st->leads_created;
    feedback(fx, "lead-new", "rejected", "bad_data", Q_MS - D_MS);
    assert_int_equal(st->leads_created, created + 1);
    assert_int_equal(st->rejected_by_reason[LP_REJ_BAD_DATA], 1);
    assert_int_equal(st->dead_letters, 0);
    lp_lead_t lead = stored(fx, "lead-new");
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    assert_int_equal(lead.reject_reason, LP_REJ_BAD_DATA);
    assert_int_equal(lead.reject_count, 1);

    qualify(fx, "lead-new", Q_MS);
    read_outbox(fx);
    assert_int_equal(fx->nout, 1);
    assert_int_equal(fx->kind[0], LP_OUT_QUALIFIED);
    expect_has(fx->value[0], "\"last_reject_reason\":\"bad_data\"");
    ack_all(fx);

    feedback(fx, "lead-new", "rejected", "no_budget", Q_MS + H_MS);
    assert_int_equal(st->rejected_by_reason[LP_REJ_NO_BUDGET], 1);
    feedback(fx, "lead-new", "lost", NULL, Q_MS + 2 * H_MS);
    assert_int_equal(stored(fx, "lead-new").stage, LP_STAGE_CLOSED_LOST);
    /* A closed lead ignores a rejection: not counted either. */
    feedback(fx, "lead-new", "rejected", "no_budget", Q_MS + 2 * H_MS + 1);
    assert_int_equal(st->rejected_by_reason[LP_REJ_NO_BUDGET], 1);
    assert_int_equal(stored(fx, "lead-new").reject_count, 2);
    qualify(fx, "lead-new", Q_MS + 3 * D_MS);
    assert_int_equal(fire(fx->engine, Q_MS + 400 * D_MS, LP_OK), 0);
    read_outbox(fx);
    assert_int_equal(fx->nout, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer_committed_with_the_lead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_fires_once_then_reminder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acceptance_cancels_sla, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_timers_in_order_back_to_nurture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_the_owner_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_firing_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback_for_unseen_lead, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
