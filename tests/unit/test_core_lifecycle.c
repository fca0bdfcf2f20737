/* Lifecycle: fit gating, disqualification, MQL hysteresis and re-arming, sales feedback, and the
 * hand-off timers (SLA breach and reminders, cooling, inactivity). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core_fixture.h"

static lp_fact_t *only_fact(lp_facts_t *facts, lp_fact_kind_t kind) {
    assert_int_equal(facts->n, 1);
    assert_int_equal(facts->fact[0].kind, kind);
    return &facts->fact[0];
}

static lp_apply_result_t profile(lp_lead_t *lead, const lp_rules_t *rules, int64_t ts,
                                 const char *email, const char *title, int64_t size,
                                 lp_facts_t *facts) {
    lp_event_t ev = fx_profile(lead->lead_id, ts);
    snprintf(ev.u.profile.email, sizeof(ev.u.profile.email), "%s", email);
    snprintf(ev.u.profile.title, sizeof(ev.u.profile.title), "%s", title);
    ev.u.profile.company_size = size;
    return lp_score_apply(lead, &ev, rules, facts);
}

static void feedback(lp_lead_t *lead, const lp_rules_t *rules, lp_feedback_outcome_t outcome,
                     lp_reject_reason_t reason, int64_t ts, lp_facts_t *facts) {
    lp_event_t ev = fx_feedback(lead->lead_id, outcome, reason, ts);
    assert_int_equal(lp_score_apply(lead, &ev, rules, facts).outcome, LP_APPLIED);
}

/* Takes a fresh lead to MQL at time ts with 65 points (form 25 + demo 40). */
static void qualify(lp_lead_t *lead, const lp_rules_t *rules, int64_t ts, lp_facts_t *facts) {
    fx_engage(lead, rules, "form_submit", ts, facts);
    assert_int_equal(lead->stage, LP_STAGE_WARM);
    fx_engage(lead, rules, "demo_request", ts, facts);
    assert_int_equal(lead->stage, LP_STAGE_MQL);
}

static void test_stages_and_single_mql(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    assert_int_equal(lead.fit_grade, 'D');

    fx_engage(&lead, &rules, "email_open", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_int_equal(facts.n, 0);
    fx_engage(&lead, &rules, "form_submit", T0 + 1, &facts);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_QUALIFIED);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    assert_int_equal(fact->stage, LP_STAGE_MQL);
    assert_int_equal(fact->ts_ms, T0 + 1);
    assert_int_equal(fact->mql_seq, 1);
    assert_int_equal(fact->mql_at_ms, T0 + 1);
    assert_string_equal(fact->lead_id, "L1");
    assert_string_equal(fact->model_id, "b2b-test");
    assert_string_equal(fact->model_version, "7");
    assert_true(fact->score >= 50);
    assert_false(lead.armed);

    /* hysteresis: more engagement while qualified emits nothing */
    facts.n = 0;
    fx_engage(&lead, &rules, "demo_request", T0 + 2, &facts);
    fx_engage(&lead, &rules, "demo_request", T0 + 3, &facts);
    assert_int_equal(facts.n, 0);
    assert_int_equal(lead.mql_seq, 1);
}

static void test_fit_gate_and_recompute(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.min_fit_grade = 'B';
    lp_lead_init(&lead, &rules, "L1");

    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    fx_engage(&lead, &rules, "demo_request", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM); /* grade D holds it back */
    assert_int_equal(facts.n, 0);

    /* size alone: 10 points, grade C: still gated */
    profile(&lead, &rules, T0 + HOUR_MS, "", "", 500, &facts);
    assert_int_equal(lead.fit_grade, 'C');
    assert_int_equal(facts.n, 0);
    /* the title makes it A: the profile update itself qualifies the lead */
    profile(&lead, &rules, T0 + 2 * HOUR_MS, "", "VP Engineering", -1, &facts);
    assert_int_equal(lead.fit_grade, 'A');
    assert_true(lead.fit_points == 30);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_QUALIFIED);
    assert_int_equal(fact->ts_ms, T0 + 2 * HOUR_MS);
    assert_int_equal(fact->fit_grade, 'A');
    assert_string_equal(fact->profile.title, "VP Engineering");
    assert_int_equal(fact->profile.company_size, 500);

    /* recomputed, not accumulated: the same kind of title twice is still 20 */
    profile(&lead, &rules, T0 + 3 * HOUR_MS, "", "VP Sales", -1, &facts);
    profile(&lead, &rules, T0 + 4 * HOUR_MS, "", "vp marketing", -1, &facts);
    assert_true(lead.fit_points == 30);
    /* a title without the keyword drops the points; email domain is matched lowercased */
    profile(&lead, &rules, T0 + 5 * HOUR_MS, "Ann@GMail.COM", "Engineer", -1, &facts);
    assert_true(lead.fit_points == -5);
    assert_int_equal(lead.fit_grade, 'D');
    assert_int_equal(facts.n, 1);
}

static void test_disqualification(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");

    profile(&lead, &rules, T0, "spy@Sales.Competitor.com", "", -1, &facts);
    assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
    assert_string_equal(lead.dq_reason, "competitor");
    fx_engage(&lead, &rules, "demo_request", T0 + 1, &facts);
    fx_engage(&lead, &rules, "demo_request", T0 + 2, &facts);
    assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
    assert_int_equal(facts.n, 0);
    assert_true(lead.score > 50);

    /* the match cleared: the stage is recomputed, and the hot lead qualifies at once */
    profile(&lead, &rules, T0 + 3, "ann@acme.io", "", -1, &facts);
    assert_string_equal(lead.dq_reason, "");
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    only_fact(&facts, LP_FACT_QUALIFIED);

    /* disqualifying an MQL cancels its hand-off timers */
    rules.sla_ms = HOUR_MS;
    lp_lead_init(&lead, &rules, "L2");
    facts.n = 0;
    qualify(&lead, &rules, T0, &facts);
    assert_int_equal(lead.sla_deadline_ms, T0 + HOUR_MS);
    profile(&lead, &rules, T0 + 1, "", "Student", -1, &facts);
    assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
    assert_string_equal(lead.dq_reason, "student");
    assert_int_equal(lp_lead_next_due(&lead), 0);
}

static void test_rearm_by_cooling(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);

    /* closed form: 65 * 2^-(dt/h) = 30  <=>  dt = h * log2(65/30) */
    int64_t want = T0 + (int64_t)ceil((double)DAY_MS * log2(65.0 / 30.0));
    assert_int_equal(lead.cooled_deadline_ms, want);
    assert_int_equal(lp_lead_next_due(&lead), want);
    facts.n = 0;
    assert_false(lp_score_advance(&lead, &rules, want - 1, &facts));
    assert_int_equal(facts.n, 0);
    assert_true(lp_score_advance(&lead, &rules, want + 5 * DAY_MS, &facts));
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_COOLED);
    assert_int_equal(fact->ts_ms, want);
    assert_true(fact->score <= 30 && fact->score > 29.999);
    /* about 30 points: back to warm (re-arm level 30 is above the warm threshold 20) */
    assert_int_equal(fact->stage, LP_STAGE_WARM);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_true(lead.armed);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* re-armed: crossing the threshold again qualifies again */
    facts.n = 0;
    fx_engage(&lead, &rules, "demo_request", want + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    fact = only_fact(&facts, LP_FACT_QUALIFIED);
    assert_int_equal(fact->mql_seq, 2);
}

static void test_cooling_moves_with_activity_and_negative_points(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);
    int64_t first = lead.cooled_deadline_ms;
    fx_engage(&lead, &rules, "form_submit", T0 + HOUR_MS, &facts);
    assert_true(lead.cooled_deadline_ms > first);
    double s = lead.score;
    assert_int_equal(lead.cooled_deadline_ms,
                     T0 + HOUR_MS + (int64_t)ceil((double)DAY_MS * log2(s / 30.0)));

    /* unsubscribes take it below the re-arm level now: cooled at once, at the event time */
    facts.n = 0;
    fx_engage(&lead, &rules, "unsubscribe", T0 + 2 * HOUR_MS, &facts);
    fx_engage(&lead, &rules, "unsubscribe", T0 + 2 * HOUR_MS, &facts);
    fx_engage(&lead, &rules, "unsubscribe", T0 + 2 * HOUR_MS, &facts);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_COOLED);
    assert_int_equal(fact->ts_ms, T0 + 2 * HOUR_MS);
    assert_true(lead.armed);
    assert_true(lead.stage != LP_STAGE_MQL);
}

static void test_sla_breach_once_and_reminders(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = 4 * HOUR_MS;
    rules.sla_reminder_ms = HOUR_MS;
    rules.sla_max_reminders = 2;
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);
    assert_int_equal(facts.fact[0].sla_deadline_ms, T0 + 4 * HOUR_MS);
    assert_int_equal(lp_lead_next_due(&lead), T0 + 4 * HOUR_MS);

    facts.n = 0;
    assert_false(lp_score_advance(&lead, &rules, T0 + 4 * HOUR_MS - 1, &facts));
    assert_true(lp_score_advance(&lead, &rules, T0 + 4 * HOUR_MS, &facts));
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_SLA_BREACHED);
    assert_int_equal(fact->reminder, 0);
    assert_int_equal(fact->ts_ms, T0 + 4 * HOUR_MS);
    assert_int_equal(fact->stage, LP_STAGE_MQL);
    char first_id[LP_EVENT_ID_HEX + 1];
    memcpy(first_id, fact->event_id, sizeof(first_id));
    /* once: the same time again fires nothing */
    facts.n = 0;
    assert_false(lp_score_advance(&lead, &rules, T0 + 4 * HOUR_MS, &facts));
    assert_int_equal(facts.n, 0);

    /* both reminders fire in order when the clock jumps past them, then no more */
    assert_true(lp_score_advance(&lead, &rules, T0 + 10 * HOUR_MS, &facts));
    assert_int_equal(facts.n, 2);
    assert_int_equal(facts.fact[0].reminder, 1);
    assert_int_equal(facts.fact[0].ts_ms, T0 + 5 * HOUR_MS);
    assert_int_equal(facts.fact[1].reminder, 2);
    assert_int_equal(facts.fact[1].ts_ms, T0 + 6 * HOUR_MS);
    assert_string_not_equal(facts.fact[0].event_id, first_id);
    assert_string_not_equal(facts.fact[0].event_id, facts.fact[1].event_id);
    facts.n = 0;
    assert_false(lp_score_advance(&lead, &rules, T0 + 20 * HOUR_MS, &facts));
    assert_int_equal(lead.sla_deadline_ms, 0);
}

static void test_sla_never_after_acceptance(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = 4 * HOUR_MS;
    rules.inactivity_ms = 7 * DAY_MS;
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);
    facts.n = 0;
    feedback(&lead, &rules, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    assert_int_equal(lp_lead_next_due(&lead), 0);
    assert_false(lp_score_advance(&lead, &rules, T0 + 30 * DAY_MS, &facts));
    /* SQL never qualifies again, whatever the score */
    fx_engage(&lead, &rules, "demo_request", T0 + 31 * DAY_MS, &facts);
    fx_engage(&lead, &rules, "demo_request", T0 + 31 * DAY_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    assert_int_equal(facts.n, 0);

    /* an event after the deadline fires the breach first, at the deadline (event time) */
    lp_lead_init(&lead, &rules, "L2");
    qualify(&lead, &rules, T0, &facts);
    facts.n = 0;
    feedback(&lead, &rules, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 5 * HOUR_MS, &facts);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_SLA_BREACHED);
    assert_int_equal(fact->ts_ms, T0 + 4 * HOUR_MS);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
}

static void test_inactivity(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.inactivity_ms = 3 * DAY_MS;
    rules.inactive_stage = LP_STAGE_RECYCLED;
    rules.half_life_ms = 30.0 * DAY_MS; /* keep the score above the re-arm level */
    rules.sla_ms = 5 * DAY_MS;
    lp_lead_init(&lead, &rules, "L1");

    /* a warm lead: the clock runs from its last engagement */
    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 3 * DAY_MS);
    fx_engage(&lead, &rules, "demo_request", T0 + DAY_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 4 * DAY_MS);
    /* negative activity is not engagement, and a late engagement does not move it backwards */
    fx_engage(&lead, &rules, "unsubscribe", T0 + 2 * DAY_MS, &facts);
    fx_engage(&lead, &rules, "email_open", T0 + DAY_MS / 2, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 4 * DAY_MS);
    assert_int_equal(lead.sla_deadline_ms, T0 + 6 * DAY_MS);
    facts.n = 0;

    /* the inactivity deadline comes before the SLA: stale INACTIVE, SLA cancelled */
    assert_true(lp_score_advance(&lead, &rules, T0 + 20 * DAY_MS, &facts));
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(fact->ts_ms, T0 + 4 * DAY_MS);
    assert_int_equal(fact->stage, LP_STAGE_RECYCLED);
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    assert_true(lead.armed);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* suspects and responders are not watched */
    lp_lead_init(&lead, &rules, "L2");
    fx_engage(&lead, &rules, "email_open", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_int_equal(lp_lead_next_due(&lead), 0);
}

static void test_recycle_and_requalify(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = DAY_MS;
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);
    facts.n = 0;

    feedback(&lead, &rules, LP_FB_REJECTED, LP_REJ_NO_BUDGET, T0 + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    assert_int_equal(lead.reject_reason, LP_REJ_NO_BUDGET);
    assert_int_equal(lead.reject_count, 1);
    assert_true(lead.score == 0);
    assert_true(lead.armed);
    assert_int_equal(lp_lead_next_due(&lead), 0);
    assert_int_equal(facts.n, 0);

    /* engagement moves it back through responder and warm, then it qualifies again */
    fx_engage(&lead, &rules, "email_open", T0 + 2 * HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    fx_engage(&lead, &rules, "form_submit", T0 + 2 * HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    fx_engage(&lead, &rules, "demo_request", T0 + 2 * HOUR_MS, &facts);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_QUALIFIED);
    assert_int_equal(fact->mql_seq, 2);
    assert_int_equal(fact->last_reject_reason, LP_REJ_NO_BUDGET);
    assert_int_equal(fact->sla_deadline_ms, T0 + 2 * HOUR_MS + DAY_MS);

    /* scale mode keeps a fraction of the score and of every contribution */
    rules.recycle_mode = LP_RECYCLE_SCALE;
    rules.recycle_scale = 0.5;
    double before = lead.score;
    feedback(&lead, &rules, LP_FB_RECYCLED, LP_REJ_TIMING, T0 + 2 * HOUR_MS, &facts);
    assert_true(fabs(lead.score - before / 2) < 1e-9);
    assert_int_equal(lead.reject_count, 2);
    lp_fact_t expl;
    lp_lead_explain(&lead, &rules, lead.ref_ms, &expl);
    assert_true(fabs(expl.other) < 1e-9);
}

static void test_won_lost_never_again(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = HOUR_MS;
    rules.inactivity_ms = DAY_MS;
    for (int outcome = LP_FB_WON; outcome <= LP_FB_LOST; outcome++) {
        lp_lead_init(&lead, &rules, "L1");
        qualify(&lead, &rules, T0, &facts);
        facts.n = 0;
        feedback(&lead, &rules, (lp_feedback_outcome_t)outcome, LP_REJ_NONE, T0 + 1, &facts);
        uint8_t closed = outcome == LP_FB_WON ? LP_STAGE_CLOSED_WON : LP_STAGE_CLOSED_LOST;
        assert_int_equal(lead.stage, closed);
        assert_int_equal(lp_lead_next_due(&lead), 0);
        /* recycling, engagement, profile changes, time: nothing hands it off again */
        feedback(&lead, &rules, LP_FB_RECYCLED, LP_REJ_TIMING, T0 + 2, &facts);
        for (int i = 0; i < 3; i++) {
            fx_engage(&lead, &rules, "demo_request", T0 + 40 * DAY_MS + i, &facts);
        }
        profile(&lead, &rules, T0 + 41 * DAY_MS, "a@b.io", "VP", 1000, &facts);
        assert_false(lp_score_advance(&lead, &rules, T0 + 400 * DAY_MS, &facts));
        assert_int_equal(lead.stage, closed);
        assert_int_equal(facts.n, 0);
        assert_true(lead.score > 50); /* it still scores, it just never hands off */
    }
}

/* More due timers than one call can report: nothing is lost, the rest fires on the next call. */
static void test_fact_buffer_full(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 1e15; /* no cooling in this window */
    rules.sla_ms = HOUR_MS;
    rules.sla_reminder_ms = 60 * 1000;
    rules.sla_max_reminders = 20;
    lp_lead_init(&lead, &rules, "L1");
    qualify(&lead, &rules, T0, &facts);

    /* an event long after: timers fire first but leave two slots for the event, which needs
     * none here, so the timers take them after it */
    facts.n = 0;
    fx_engage(&lead, &rules, "email_open", T0 + DAY_MS, &facts);
    assert_int_equal(facts.n, LP_FACTS_MAX);
    for (int i = 0; i < facts.n; i++) {
        assert_int_equal(facts.fact[i].reminder, i);
    }
    int seen = facts.n;
    int32_t last = facts.fact[facts.n - 1].reminder;
    while (lp_lead_next_due(&lead) <= T0 + DAY_MS) { /* cooling stays pending, far away */
        facts.n = 0;
        assert_true(lp_score_advance(&lead, &rules, T0 + DAY_MS, &facts));
        assert_true(facts.n > 0 && facts.n <= LP_FACTS_MAX);
        for (int i = 0; i < facts.n; i++) {
            assert_int_equal(facts.fact[i].reminder, ++last); /* in order, none skipped */
        }
        seen += facts.n;
    }
    assert_int_equal(seen, 1 + 20);
    assert_int_equal(last, 20);
}

static void test_feedback_creates_lead(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "new-lead");
    feedback(&lead, &rules, LP_FB_ACCEPTED, LP_REJ_NONE, T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    assert_int_equal(facts.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stages_and_single_mql),
        cmocka_unit_test(test_fit_gate_and_recompute),
        cmocka_unit_test(test_disqualification),
        cmocka_unit_test(test_rearm_by_cooling),
        cmocka_unit_test(test_cooling_moves_with_activity_and_negative_points),
        cmocka_unit_test(test_sla_breach_once_and_reminders),
        cmocka_unit_test(test_sla_never_after_acceptance),
        cmocka_unit_test(test_inactivity),
        cmocka_unit_test(test_recycle_and_requalify),
        cmocka_unit_test(test_won_lost_never_again),
        cmocka_unit_test(test_fact_buffer_full),
        cmocka_unit_test(test_feedback_creates_lead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
