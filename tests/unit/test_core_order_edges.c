/* Edge semantics that docs/rules.md ("How a lead is scored", "Time and arrival order") states,
 * pinned one by one: boundaries, late events, the floor, feedback and profile order, timers at
 * exactly their deadline, the cap horizon, de-duplication past its window. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core_fixture.h"

static void assert_close(double got, double want) {
    double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
    if (fabs(got - want) > tol) {
        fail_msg("got %.17g, want %.17g", got, want);
    }
}

static int act_index(const lp_rules_t *rules, const char *name) {
    for (int i = 0; i < rules->nactivities; i++) {
        if (strcmp(rules->activities[i].name, name) == 0) {
            return i;
        }
    }
    fail_msg("no activity %s", name);
    return -1;
}

static lp_apply_result_t apply(lp_lead_t *lead, const lp_rules_t *rules, lp_event_t ev,
                               lp_facts_t *facts) {
    return lp_score_apply(lead, &ev, rules, facts);
}

/* An email_open/email_click is machine activity when 0 <= seconds_since_send < click_within:
 * exactly click_within seconds is human, and an unknown time (-1) is human. */
static void test_click_within_boundary(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules); /* click_within 10 s, email_open 1 point */
    const int64_t secs[] = {9, 10, -1, 0};
    const double want[] = {0, 1, 1, 0};
    for (int i = 0; i < 4; i++) {
        lp_lead_init(&lead, &rules, "L");
        lp_event_t ev = fx_engagement("L", "email_open", T0);
        ev.u.engagement.seconds_since_send = secs[i];
        apply(&lead, &rules, ev, &facts);
        assert_close(lead.score, want[i]);
        assert_int_equal(lead.last_activity_ms, want[i] > 0 ? T0 : 0);
    }
}

/* Machine activity counts toward no cap: with a cap of 3, three flagged downloads and three
 * human ones in one window all leave room for the human ones. */
static void test_machine_events_use_no_cap(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 0;
    lp_lead_init(&lead, &rules, "L");
    for (int i = 0; i < 3; i++) {
        lp_event_t ev = fx_engagement("L", "content_download", T0 + i);
        ev.u.engagement.machine = true;
        apply(&lead, &rules, ev, &facts);
    }
    for (int i = 0; i < 4; i++) {
        apply(&lead, &rules, fx_engagement("L", "content_download", T0 + 10 + i), &facts);
    }
    assert_close(lead.score, 3 * 8); /* the fourth human download is over the cap */
}

/* 0-point and negative events do not move the inactivity clock unless their activity has
 * `engagement: true`; an over-cap event with positive points does. */
static void test_zero_point_events_and_the_clock(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    fx_activity(&rules, "careers_visit", 0);
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "careers_visit", T0), &facts);
    apply(&lead, &rules, fx_engagement("L", "unsubscribe", T0 + 1), &facts);
    assert_int_equal(lead.last_activity_ms, 0);
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    rules.activities[act_index(&rules, "careers_visit")].is_engagement = true;
    apply(&lead, &rules, fx_engagement("L", "careers_visit", T0 + 2), &facts);
    assert_int_equal(lead.last_activity_ms, T0 + 2);
    for (int i = 0; i < 4; i++) { /* the fourth is over the cap of 3, still activity */
        apply(&lead, &rules, fx_engagement("L", "content_download", T0 + 10 + i), &facts);
    }
    assert_int_equal(lead.last_activity_ms, T0 + 13);
}

/* A warm lead whose score decays below `warm` with no event is still warm at its inactivity
 * deadline: it goes stale (inactive) then, with the score at the deadline. */
static void test_inactive_after_decay_below_warm(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules); /* warm 20, half-life 1 day */
    rules.inactivity_ms = 10 * DAY_MS;
    rules.inactive_stage = LP_STAGE_RESPONDER;
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "form_submit", T0), &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_false(lp_score_advance(&lead, &rules, T0 + 10 * DAY_MS - 1, &facts));
    assert_true(lp_score_advance(&lead, &rules, T0 + 10 * DAY_MS, &facts));
    assert_int_equal(facts.n, 1);
    assert_int_equal(facts.fact[0].stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(facts.fact[0].ts_ms, T0 + 10 * DAY_MS);
    assert_close(facts.fact[0].score, 25.0 / 1024);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
}

/* An MQL never accepted cools (LeadStale cooled, back to warm as its score is still >= warm),
 * and later goes inactive (LeadStale inactive) like any warm lead. */
static void test_cooled_mql_then_inactive(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules); /* mql 50, rearm 30, warm 20 */
    rules.inactivity_ms = 10 * DAY_MS;
    rules.inactive_stage = LP_STAGE_RESPONDER;
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "demo_request", T0), &facts);
    apply(&lead, &rules, fx_engagement("L", "form_submit", T0), &facts);
    assert_int_equal(facts.n, 1);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    facts.n = 0;
    assert_true(lp_score_advance(&lead, &rules, T0 + 11 * DAY_MS, &facts));
    assert_int_equal(facts.n, 2);
    assert_int_equal(facts.fact[0].kind, LP_FACT_STALE);
    assert_int_equal(facts.fact[0].stale_reason, LP_STALE_COOLED);
    assert_int_equal(facts.fact[0].stage, LP_STAGE_WARM);
    /* 65 * 2^-x = 30 at x = log2(65/30) days, the next whole ms */
    assert_int_equal(facts.fact[0].ts_ms, T0 + (int64_t)ceil(DAY_MS * log2(65.0 / 30)));
    assert_int_equal(facts.fact[1].stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(facts.fact[1].ts_ms, T0 + 10 * DAY_MS);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_true(lead.armed);
}

/* Every rejection reason recycles (stage recycled, armed, reason kept); none disqualifies by
 * itself; a rejection while a disqualify rule matches leaves the lead disqualified. */
static void test_rejection_reasons_recycle(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    for (int r = LP_REJ_NONE; r < LP_REJ__COUNT; r++) {
        for (int outcome = LP_FB_REJECTED; outcome <= LP_FB_RECYCLED; outcome++) {
            lp_lead_init(&lead, &rules, "L");
            facts.n = 0;
            apply(&lead, &rules, fx_engagement("L", "demo_request", T0), &facts);
            apply(&lead, &rules, fx_engagement("L", "form_submit", T0 + 1), &facts);
            assert_int_equal(lead.stage, LP_STAGE_MQL);
            apply(&lead, &rules,
                  fx_feedback("L", (lp_feedback_outcome_t)outcome, (lp_reject_reason_t)r, T0 + 2),
                  &facts);
            assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
            assert_int_equal(lead.reject_reason, r);
            assert_true(lead.armed);
            assert_close(lead.score, 0); /* recycle: reset */
        }
    }
    lp_lead_init(&lead, &rules, "L");
    lp_event_t p = fx_profile("L", T0);
    snprintf(p.u.profile.title, sizeof(p.u.profile.title), "Student");
    apply(&lead, &rules, p, &facts);
    apply(&lead, &rules, fx_feedback("L", LP_FB_REJECTED, LP_REJ_BAD_DATA, T0 + 1), &facts);
    assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
}

/* A timer due exactly at an event's time fires before the event; lp_score_advance(now) fires
 * what is due at or before now. */
static void test_timer_due_exactly_at_event_time(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, copy;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = 2 * HOUR_MS;
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "demo_request", T0), &facts);
    apply(&lead, &rules, fx_engagement("L", "form_submit", T0), &facts);
    assert_int_equal(lead.sla_deadline_ms, T0 + 2 * HOUR_MS);
    copy = lead;
    facts.n = 0;
    assert_false(lp_score_advance(&copy, &rules, T0 + 2 * HOUR_MS - 1, &facts));
    assert_true(lp_score_advance(&copy, &rules, T0 + 2 * HOUR_MS, &facts));
    assert_int_equal(facts.n, 1);
    facts.n = 0;
    lp_event_t ev = fx_feedback("L", LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 2 * HOUR_MS);
    apply(&lead, &rules, ev, &facts);
    /* the breach came first: accepted at its deadline is still a breach */
    assert_int_equal(facts.n, 1);
    assert_int_equal(facts.fact[0].stale_reason, LP_STALE_SLA_BREACHED);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
}

/* The example with the default model's content_download (8 points, 5 per day, 30-day
 * half-life): a download on 3 March, then one stamped 2 March: 8 + 8 * 2^(-1/30); five on
 * day 2, a late one on day 1, a sixth on day 2: 40 + 8 * 2^(-1/30). */
static void test_late_event_in_its_own_window(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    const int64_t mar3 = 1772532000000LL, mar2 = 1772445600000LL; /* 10:00Z */
    fx_rules(&rules);
    rules.half_life_ms = 30.0 * DAY_MS;
    lp_activity_rule_t *dl = &rules.activities[act_index(&rules, "content_download")];
    dl->cap_count = 5;
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "content_download", mar3), &facts);
    apply(&lead, &rules, fx_engagement("L", "content_download", mar2), &facts);
    assert_close(lead.score, 8 + 8 * exp2(-1.0 / 30));
    assert_close(lead.score, 15.817279747473968);

    lp_lead_init(&lead, &rules, "L");
    for (int i = 0; i < 5; i++) {
        apply(&lead, &rules, fx_engagement("L", "content_download", mar3), &facts);
    }
    apply(&lead, &rules, fx_engagement("L", "content_download", mar2), &facts);
    apply(&lead, &rules, fx_engagement("L", "content_download", mar3), &facts);
    assert_close(lead.score, 40 + 8 * exp2(-1.0 / 30));
}

/* Counts are kept for the newest window and the LP_CAP_PAST (15) before it: a late event 15
 * windows back counts, one 16 back scores 0 (as over the cap) and leaves the clock alone. */
static void test_cap_horizon(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 0;
    int64_t day0 = (T0 / DAY_MS + 1) * DAY_MS;
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "content_download", day0 + 20 * DAY_MS), &facts);
    apply(&lead, &rules, fx_engagement("L", "content_download", day0 + 5 * DAY_MS), &facts);
    assert_close(lead.score, 16);
    apply(&lead, &rules, fx_engagement("L", "content_download", day0 + 4 * DAY_MS), &facts);
    assert_close(lead.score, 16);
    assert_int_equal(lead.last_activity_ms, day0 + 20 * DAY_MS);
    assert_int_equal(lead.cap_past[act_index(&rules, "content_download")][14], 1);
}

/* The floor applies to the score shown, not on the way: -20 then +25 is 5, not 25. */
static void test_floor_commutes(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    lp_fact_t fact;
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "unsubscribe", T0), &facts);
    assert_close(lp_lead_score_at(&lead, &rules, T0), 0);
    apply(&lead, &rules, fx_engagement("L", "form_submit", T0), &facts);
    assert_close(lp_lead_score_at(&lead, &rules, T0), 5);
    lp_lead_explain(&lead, &rules, T0, &fact);
    assert_int_equal(fact.ntop, 2);
    assert_true(fact.top[0].points + fact.top[1].points + fact.other == fact.score);
    assert_true(fact.other == 0);
}

/* Feedback is ordered by its own time: an older rejection arriving after an acceptance leaves
 * the lead SQL (still counted, still resetting the score); an older won arriving after a lost
 * leaves it lost. */
static void test_feedback_order(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L");
    apply(&lead, &rules, fx_engagement("L", "form_submit", T0), &facts);
    apply(&lead, &rules, fx_feedback("L", LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 2), &facts);
    apply(&lead, &rules, fx_feedback("L", LP_FB_REJECTED, LP_REJ_TIMING, T0 + 1), &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    assert_int_equal(lead.reject_count, 1);
    assert_int_equal(lead.reject_reason, LP_REJ_TIMING);
    assert_close(lead.score, 0);

    apply(&lead, &rules, fx_feedback("L", LP_FB_LOST, LP_REJ_NONE, T0 + 10), &facts);
    apply(&lead, &rules, fx_feedback("L", LP_FB_WON, LP_REJ_NONE, T0 + 5), &facts);
    assert_int_equal(lead.stage, LP_STAGE_CLOSED_LOST);
    apply(&lead, &rules, fx_feedback("L", LP_FB_WON, LP_REJ_NONE, T0 + 11), &facts);
    assert_int_equal(lead.stage, LP_STAGE_CLOSED_WON);
    /* dated after the close: ignored */
    apply(&lead, &rules, fx_feedback("L", LP_FB_REJECTED, LP_REJ_OTHER, T0 + 12), &facts);
    assert_int_equal(lead.reject_count, 1);
}

/* Each profile field keeps the value with the latest time: an older update fills only what no
 * newer one set. */
static void test_profile_fields_by_time(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L");
    lp_event_t a = fx_profile("L", T0 + 2);
    snprintf(a.u.profile.title, sizeof(a.u.profile.title), "VP Sales");
    lp_event_t b = fx_profile("L", T0 + 1);
    snprintf(b.u.profile.title, sizeof(b.u.profile.title), "Engineer");
    snprintf(b.u.profile.industry, sizeof(b.u.profile.industry), "software");
    b.u.profile.company_size = 500;
    apply(&lead, &rules, a, &facts);
    apply(&lead, &rules, b, &facts);
    assert_string_equal(lead.profile.title, "VP Sales");
    assert_string_equal(lead.profile.industry, "software");
    assert_int_equal(lead.profile.company_size, 500);
    assert_int_equal(lead.fit_grade, 'A'); /* vp 20 + size 10 */
}

/* A late engagement dated before the latest recycle gets what the recycle left of it: nothing
 * with reset, its points times the factor with scale. */
static void test_late_event_before_a_recycle(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 0;
    for (int mode = 0; mode < 2; mode++) {
        rules.recycle_mode = mode == 0 ? LP_RECYCLE_RESET : LP_RECYCLE_SCALE;
        lp_lead_init(&lead, &rules, "L");
        apply(&lead, &rules, fx_engagement("L", "demo_request", T0 + 10), &facts);
        apply(&lead, &rules, fx_feedback("L", LP_FB_RECYCLED, LP_REJ_TIMING, T0 + 20), &facts);
        apply(&lead, &rules, fx_engagement("L", "form_submit", T0 + 15), &facts);
        apply(&lead, &rules, fx_engagement("L", "webinar_attend", T0 + 25), &facts);
        assert_close(lead.score, mode == 0 ? 15 : 40 * 0.5 + 25 * 0.5 + 15);
    }
}

/* A redelivery is ignored while fewer than dedup_window other events were applied since. */
static void test_dedup_window_edge(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.dedup_window = 2;
    rules.half_life_ms = 0;
    lp_lead_init(&lead, &rules, "L");
    lp_event_t e1 = fx_engagement("L", "webinar_attend", T0);
    apply(&lead, &rules, e1, &facts);
    apply(&lead, &rules, fx_engagement("L", "email_open", T0 + 1), &facts);
    assert_true(apply(&lead, &rules, e1, &facts).duplicate); /* one other event since */
    apply(&lead, &rules, fx_engagement("L", "email_open", T0 + 2), &facts);
    assert_false(apply(&lead, &rules, e1, &facts).duplicate); /* two: forgotten */
    assert_close(lead.score, 15 + 1 + 1 + 15);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_click_within_boundary),
        cmocka_unit_test(test_machine_events_use_no_cap),
        cmocka_unit_test(test_zero_point_events_and_the_clock),
        cmocka_unit_test(test_inactive_after_decay_below_warm),
        cmocka_unit_test(test_cooled_mql_then_inactive),
        cmocka_unit_test(test_rejection_reasons_recycle),
        cmocka_unit_test(test_timer_due_exactly_at_event_time),
        cmocka_unit_test(test_late_event_in_its_own_window),
        cmocka_unit_test(test_cap_horizon),
        cmocka_unit_test(test_floor_commutes),
        cmocka_unit_test(test_feedback_order),
        cmocka_unit_test(test_profile_fields_by_time),
        cmocka_unit_test(test_late_event_before_a_recycle),
        cmocka_unit_test(test_dedup_window_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
