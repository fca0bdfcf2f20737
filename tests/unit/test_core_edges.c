/* Edge cases of the scoring core pinned as the code behaves today, one rule per test, each
 * stated in one sentence above its test (as docs/rules.md states it): the click_within
 * boundary, machine events and caps, 0-point events and the inactivity clock, inactivity after
 * decaying below warm, a cooled MQL and later inactivity, rejection reasons, timers due exactly
 * at an event or at `now`, late events in an earlier cap window, the cap horizon, the floor,
 * feedback order, profile fields by event time.
 *
 * Most tests use edge_model(): the activities, score, machine, inactivity and recycle sections
 * of config/rules.yaml built by hand (the core tests link lp_core only, not the YAML loader). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core_fixture.h"

#define MIN_MS (60LL * 1000)
#define DAY0 1772409600000LL /* 2026-03-02T00:00:00Z, the start of a 1-day cap window */

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

static lp_activity_rule_t *activity(lp_rules_t *rules, const char *name) {
    return &rules->activities[act_index(rules, name)];
}

static void cap(lp_activity_rule_t *a, int count, int64_t window_ms) {
    a->cap_count = count;
    a->cap_window_ms = window_ms;
}

static void when_url(lp_activity_rule_t *a, const char *url_prefix, double points) {
    lp_condition_t *c = &a->cond[a->ncond++];
    snprintf(c->url_prefix, sizeof(c->url_prefix), "%s", url_prefix);
    c->points = points;
}

/* config/rules.yaml by hand: activities (engagement defaults to points > 0, as the loader
 * does), score, machine, sla, inactivity, recycle, dedup; no fit rules (gate D) and one
 * disqualify rule (title contains "student"). */
static void edge_model(lp_rules_t *rules) {
    memset(rules, 0, sizeof(*rules));
    snprintf(rules->model_id, sizeof(rules->model_id), "b2b-default");
    snprintf(rules->model_version, sizeof(rules->model_version), "2026.1");
    rules->half_life_ms = 30.0 * DAY_MS;
    rules->floor = 0;
    rules->warm_threshold = 40;
    rules->mql_threshold = 100;
    rules->rearm_level = 60;
    rules->min_fit_grade = 'D';

    fx_activity(rules, "demo_request", 40);
    cap(fx_activity(rules, "form_fill", 20), 3, DAY_MS);
    fx_activity(rules, "webinar_registered", 5);
    fx_activity(rules, "webinar_attended", 15);
    cap(fx_activity(rules, "content_download", 8), 5, DAY_MS);
    lp_activity_rule_t *web = fx_activity(rules, "web_visit", 1);
    when_url(web, "/pricing", 10);
    when_url(web, "/demo", 8);
    when_url(web, "/careers", 0);
    cap(web, 10, DAY_MS);
    cap(fx_activity(rules, "email_click", 3), 5, DAY_MS);
    cap(fx_activity(rules, "email_open", 1), 3, DAY_MS);
    cap(fx_activity(rules, "qr_scan", 5), 2, DAY_MS);
    fx_activity(rules, "unsubscribe", -20);
    fx_activity(rules, "email_bounce", -15);

    rules->honor_machine_flag = true;
    rules->machine_click_within_s = 10;

    rules->grade_a = 60;
    rules->grade_b = 40;
    rules->grade_c = 20;
    fx_match(&rules->dq[rules->ndq++], LP_FIELD_TITLE, LP_MATCH_CONTAINS, "student", 0, "student");

    rules->sla_ms = 48 * HOUR_MS;
    rules->sla_reminder_ms = 24 * HOUR_MS;
    rules->sla_max_reminders = 2;
    rules->inactivity_ms = 30 * DAY_MS;
    rules->inactive_stage = LP_STAGE_RESPONDER;
    rules->recycle_mode = LP_RECYCLE_RESET;
    rules->recycle_scale = 0.5;
    rules->dedup_window = 16;
}

static lp_apply_result_t apply(lp_lead_t *lead, const lp_rules_t *rules, lp_event_t ev,
                               lp_facts_t *facts) {
    lp_apply_result_t res = lp_score_apply(lead, &ev, rules, facts);
    assert_int_equal(res.outcome, LP_APPLIED);
    assert_false(res.duplicate);
    return res;
}

static void engage(lp_lead_t *lead, const lp_rules_t *rules, const char *type, int64_t ts,
                   lp_facts_t *facts) {
    apply(lead, rules, fx_engagement(lead->lead_id, type, ts), facts);
}

static void visit(lp_lead_t *lead, const lp_rules_t *rules, const char *url, int64_t ts,
                  lp_facts_t *facts) {
    lp_event_t ev = fx_engagement(lead->lead_id, "web_visit", ts);
    snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "%s", url);
    apply(lead, rules, ev, facts);
}

static void email(lp_lead_t *lead, const lp_rules_t *rules, const char *type, int64_t ts,
                  int64_t seconds_since_send, bool machine, lp_facts_t *facts) {
    lp_event_t ev = fx_engagement(lead->lead_id, type, ts);
    ev.u.engagement.seconds_since_send = seconds_since_send;
    ev.u.engagement.machine = machine;
    apply(lead, rules, ev, facts);
}

static void feedback(lp_lead_t *lead, const lp_rules_t *rules, lp_feedback_outcome_t outcome,
                     lp_reject_reason_t reason, int64_t ts, lp_facts_t *facts) {
    apply(lead, rules, fx_feedback(lead->lead_id, outcome, reason, ts), facts);
}

static void profile(lp_lead_t *lead, const lp_rules_t *rules, int64_t ts, const char *title,
                    const char *industry, int64_t company_size, lp_facts_t *facts) {
    lp_event_t ev = fx_profile(lead->lead_id, ts);
    snprintf(ev.u.profile.title, sizeof(ev.u.profile.title), "%s", title);
    snprintf(ev.u.profile.industry, sizeof(ev.u.profile.industry), "%s", industry);
    ev.u.profile.company_size = company_size;
    apply(lead, rules, ev, facts);
}

/* n demo requests (40 each) at ts; with n >= 3 the edge_model lead qualifies at the third. */
static void demos(lp_lead_t *lead, const lp_rules_t *rules, int n, int64_t ts, lp_facts_t *facts) {
    for (int i = 0; i < n; i++) {
        engage(lead, rules, "demo_request", ts, facts);
    }
}

static lp_fact_t *only_fact(lp_facts_t *facts, lp_fact_kind_t kind) {
    assert_int_equal(facts->n, 1);
    assert_int_equal(facts->fact[0].kind, kind);
    return &facts->fact[0];
}

/* ---- 1 ----------------------------------------------------------------------------------- */

/* An email_open or email_click is machine activity when 0 <= seconds_since_send < click_within:
 * exactly click_within seconds is human, click_within - 1 is machine, -1 (unknown) is human. */
static void test_click_within_boundary(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules); /* click_within 10 s */
    const char *const types[] = {"email_open", "email_click"};
    const double points[] = {1, 3};
    const struct {
        int64_t secs;
        bool machine;
    } cases[] = {{0, true}, {9, true}, {10, false}, {11, false}, {-1, false}};

    for (int t = 0; t < 2; t++) {
        int idx = act_index(&rules, types[t]);
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            lp_lead_init(&lead, &rules, "L");
            email(&lead, &rules, types[t], T0, cases[c].secs, false, &facts);
            if (cases[c].machine) {
                assert_true(lead.score == 0);
                assert_int_equal(lead.last_activity_ms, 0);
                assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
                assert_int_equal(lead.act[idx].cap_count, 0);
            } else {
                assert_true(lead.score == points[t]);
                assert_int_equal(lead.last_activity_ms, T0);
                assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
                assert_int_equal(lead.act[idx].cap_count, 1);
            }
        }
    }
    /* the time rule concerns email opens and clicks only */
    lp_lead_init(&lead, &rules, "L");
    lp_event_t ev = fx_engagement("L", "web_visit", T0);
    ev.u.engagement.seconds_since_send = 0;
    apply(&lead, &rules, ev, &facts);
    assert_true(lead.score == 1);
    assert_int_equal(facts.n, 0);
}

/* ---- 2 ----------------------------------------------------------------------------------- */

/* Machine events count toward no cap: with email_open capped at 2 per day, two machine opens
 * (flagged, or within click_within) then two human opens in the same window both score; a third
 * human open is over the cap. */
static void test_machine_events_use_no_cap(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules);
    activity(&rules, "email_open")->cap_count = 2;
    int idx = act_index(&rules, "email_open");
    const int64_t t = DAY0 + 10 * HOUR_MS;
    lp_lead_init(&lead, &rules, "L");

    email(&lead, &rules, "email_open", t, -1, true, &facts); /* flagged by the producer */
    email(&lead, &rules, "email_open", t, 3, false, &facts); /* 3 s after the send */
    assert_true(lead.score == 0);
    assert_int_equal(lead.act[idx].cap_count, 0);
    assert_int_equal(lead.last_activity_ms, 0);

    email(&lead, &rules, "email_open", t, -1, false, &facts);
    email(&lead, &rules, "email_open", t, 600, false, &facts);
    assert_true(lead.score == 2);
    assert_int_equal(lead.act[idx].cap_count, 2);

    email(&lead, &rules, "email_open", t, 600, false, &facts);
    assert_true(lead.score == 2);
    assert_int_equal(lead.act[idx].cap_count, 2);
    assert_int_equal(lead.last_activity_ms, t);
    assert_int_equal(facts.n, 0);
}

/* ---- 3 ----------------------------------------------------------------------------------- */

/* An event moves last_activity_ms (and takes a suspect to responder) when its worth is > 0 or
 * its activity has `engagement: true`; `engagement` defaults to the activity's own points > 0,
 * so `x: 0` and negative activities never count unless `engagement: true`, while a 0-point
 * `when` override of a positive activity (web_visit /careers) does count unless the activity
 * says `engagement: false`, and a positive worth counts even with `engagement: false`. */
static void test_zero_point_events_and_the_clock(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules);
    fx_activity(&rules, "x", 0);

    /* x: 0 and negative activities: no activity */
    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "x", T0, &facts);
    engage(&lead, &rules, "unsubscribe", T0 + 1, &facts);
    engage(&lead, &rules, "email_bounce", T0 + 2, &facts);
    assert_int_equal(lead.last_activity_ms, 0);
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    assert_close(lead.score, -35);
    /* engagement: true makes them count */
    activity(&rules, "x")->is_engagement = true;
    activity(&rules, "email_bounce")->is_engagement = true;
    engage(&lead, &rules, "x", T0 + 3, &facts);
    assert_int_equal(lead.last_activity_ms, T0 + 3);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    engage(&lead, &rules, "email_bounce", T0 + 4, &facts);
    assert_int_equal(lead.last_activity_ms, T0 + 4);

    /* web_visit (1 point, so engagement defaults to true): a /careers visit worth 0 counts */
    edge_model(&rules);
    lp_lead_init(&lead, &rules, "L");
    visit(&lead, &rules, "https://acme.io/careers/engineer", T0, &facts);
    assert_true(lead.score == 0);
    assert_int_equal(lead.last_activity_ms, T0);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    /* with engagement: false it does not; a visit worth 1 still does */
    activity(&rules, "web_visit")->is_engagement = false;
    lp_lead_init(&lead, &rules, "L");
    visit(&lead, &rules, "/careers", T0, &facts);
    assert_int_equal(lead.last_activity_ms, 0);
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    visit(&lead, &rules, "/blog", T0 + 1, &facts);
    assert_int_equal(lead.last_activity_ms, T0 + 1);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);

    /* the inactivity deadline of a warm lead: x does not push it, a /careers visit does */
    edge_model(&rules);
    fx_activity(&rules, "x", 0);
    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "demo_request", T0, &facts);
    engage(&lead, &rules, "form_fill", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 30 * DAY_MS);
    engage(&lead, &rules, "x", T0 + 10 * DAY_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM); /* 60 * 2^(-1/3) = 47.6 >= 40 */
    assert_int_equal(lead.last_activity_ms, T0);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 30 * DAY_MS);
    visit(&lead, &rules, "/careers", T0 + 11 * DAY_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_int_equal(lead.last_activity_ms, T0 + 11 * DAY_MS);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 41 * DAY_MS);
    assert_int_equal(facts.n, 0);
}

/* ---- 4 ----------------------------------------------------------------------------------- */

/* A lead's stage is recomputed only at its engagement events and timers: a warm lead whose score
 * decays below `warm` with no engagement event (a profile update does not count) is still warm
 * at last_activity + inactivity.after, where it emits LeadStale inactive with the score at that
 * time and moves to move_to, armed; an engagement event before then that leaves it below warm
 * makes it a responder, and no LeadStale follows. */
static void test_inactive_after_decay_below_warm(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules); /* warm 40, half-life 30 d, inactivity 30 d -> responder */
    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "demo_request", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_int_equal(lp_lead_next_due(&lead), T0 + 30 * DAY_MS);

    profile(&lead, &rules, T0 + 5 * DAY_MS, "Engineer", "", -1, &facts);
    assert_true(lead.score < 40);
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_false(lp_score_advance(&lead, &rules, T0 + 30 * DAY_MS - 1, &facts));
    assert_int_equal(lead.stage, LP_STAGE_WARM);
    assert_true(lp_score_advance(&lead, &rules, T0 + 30 * DAY_MS, &facts));
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(fact->ts_ms, T0 + 30 * DAY_MS);
    assert_close(fact->score, 20); /* 40 * 2^-1 */
    assert_int_equal(fact->stage, LP_STAGE_RESPONDER);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_true(lead.armed);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* an email open at day 5: 40 * 2^(-1/6) + 1 = 36.6 < 40, responder, no inactivity timer */
    facts.n = 0;
    lp_lead_init(&lead, &rules, "L2");
    engage(&lead, &rules, "demo_request", T0, &facts);
    engage(&lead, &rules, "email_open", T0 + 5 * DAY_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_int_equal(lp_lead_next_due(&lead), 0);
    assert_false(lp_score_advance(&lead, &rules, T0 + 100 * DAY_MS, &facts));
    assert_int_equal(facts.n, 0);
}

/* ---- 5 ----------------------------------------------------------------------------------- */

/* An MQL never accepted cools at ref + ceil(h * log2(score / rearm)) (LeadStale cooled) to warm
 * when its score there is >= warm and it is still active (last_activity + after > then), else to
 * responder; only if it went back to warm does LeadStale inactive follow at last_activity +
 * after (then move_to); a cooling due exactly at the inactivity deadline fires first and finds
 * the lead inactive (responder, no LeadStale inactive); an inactivity deadline before the
 * cooling fires alone and cancels the cooling. */
static void test_cooled_mql_then_inactive(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules); /* mql 100, rearm 60, warm 40, inactivity 30 d -> responder */
    rules.sla_ms = 0;

    /* 100 points: cools at ~22.1 d to warm (60 >= 40), then inactive at 30 d */
    lp_lead_init(&lead, &rules, "L");
    demos(&lead, &rules, 2, T0, &facts);
    engage(&lead, &rules, "form_fill", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    only_fact(&facts, LP_FACT_QUALIFIED);
    int64_t cooled = T0 + (int64_t)ceil(30.0 * DAY_MS * log2(100.0 / 60));
    assert_int_equal(lead.cooled_deadline_ms, cooled);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 30 * DAY_MS);
    facts.n = 0;
    assert_true(lp_score_advance(&lead, &rules, T0 + 60 * DAY_MS, &facts));
    assert_int_equal(facts.n, 2);
    assert_int_equal(facts.fact[0].kind, LP_FACT_STALE);
    assert_int_equal(facts.fact[0].stale_reason, LP_STALE_COOLED);
    assert_int_equal(facts.fact[0].ts_ms, cooled);
    assert_int_equal(facts.fact[0].stage, LP_STAGE_WARM);
    assert_true(facts.fact[0].score <= 60 && facts.fact[0].score > 59.999);
    assert_int_equal(facts.fact[1].kind, LP_FACT_STALE);
    assert_int_equal(facts.fact[1].stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(facts.fact[1].ts_ms, T0 + 30 * DAY_MS);
    assert_int_equal(facts.fact[1].stage, LP_STAGE_RESPONDER);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_true(lead.armed);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* 120 points: cooling due at exactly T0 + 30 d, the inactivity deadline: cooling first, the
     * lead is no longer active then, so responder, and the inactivity timer is dropped */
    facts.n = 0;
    lp_lead_init(&lead, &rules, "L");
    demos(&lead, &rules, 3, T0, &facts);
    assert_int_equal(lead.cooled_deadline_ms, T0 + 30 * DAY_MS);
    assert_int_equal(lead.inactive_deadline_ms, T0 + 30 * DAY_MS);
    facts.n = 0;
    assert_true(lp_score_advance(&lead, &rules, T0 + 60 * DAY_MS, &facts));
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_COOLED);
    assert_int_equal(fact->stage, LP_STAGE_RESPONDER);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* rearm below warm (30 < 40), inactivity 90 d: cools at 60 d to responder (30 < 40), no
     * LeadStale inactive ever */
    rules.rearm_level = 30;
    rules.inactivity_ms = 90 * DAY_MS;
    facts.n = 0;
    lp_lead_init(&lead, &rules, "L");
    demos(&lead, &rules, 3, T0, &facts);
    facts.n = 0;
    assert_true(lp_score_advance(&lead, &rules, T0 + 365 * DAY_MS, &facts));
    fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_COOLED);
    assert_int_equal(fact->ts_ms, T0 + 60 * DAY_MS);
    assert_int_equal(fact->stage, LP_STAGE_RESPONDER);
    assert_int_equal(lp_lead_next_due(&lead), 0);

    /* 200 points: cooling would be at ~52.1 d, inactivity at 30 d comes first and cancels it */
    edge_model(&rules);
    rules.sla_ms = 0;
    facts.n = 0;
    lp_lead_init(&lead, &rules, "L");
    demos(&lead, &rules, 5, T0, &facts);
    assert_int_equal(lead.cooled_deadline_ms, T0 + (int64_t)ceil(30.0 * DAY_MS * log2(200.0 / 60)));
    facts.n = 0;
    assert_true(lp_score_advance(&lead, &rules, T0 + 365 * DAY_MS, &facts));
    fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(fact->ts_ms, T0 + 30 * DAY_MS);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    assert_int_equal(lp_lead_next_due(&lead), 0);
}

/* ---- 6 ----------------------------------------------------------------------------------- */

/* A rejected or recycled feedback, whatever its reason (competitor and bad_data included), makes
 * the lead RECYCLED, or DISQUALIFIED while a disqualify rule matches its profile: no reason
 * disqualifies by itself; the reason is kept (reject_reason, echoed by the next qualification),
 * the score is reset, and the lead is armed and may qualify again. */
static void test_rejection_reasons(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules);

    for (int r = LP_REJ_NONE; r < LP_REJ__COUNT; r++) {
        for (int outcome = LP_FB_REJECTED; outcome <= LP_FB_RECYCLED; outcome++) {
            facts.n = 0;
            lp_lead_init(&lead, &rules, "L");
            demos(&lead, &rules, 3, T0, &facts);
            assert_int_equal(lead.stage, LP_STAGE_MQL);
            feedback(&lead, &rules, (lp_feedback_outcome_t)outcome, (lp_reject_reason_t)r,
                     T0 + HOUR_MS, &facts);
            assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
            assert_int_equal(lead.reject_reason, r);
            assert_int_equal(lead.reject_count, 1);
            assert_true(lead.score == 0);
            assert_true(lead.armed);
            assert_string_equal(lead.dq_reason, "");
            assert_int_equal(lp_lead_next_due(&lead), 0);
            /* qualifies again, the reason echoed */
            facts.n = 0;
            demos(&lead, &rules, 3, T0 + 2 * HOUR_MS, &facts);
            lp_fact_t *fact = only_fact(&facts, LP_FACT_QUALIFIED);
            assert_int_equal(fact->mql_seq, 2);
            assert_int_equal(fact->last_reject_reason, r);

            /* while a disqualify rule matches: disqualified, reason kept, armed */
            facts.n = 0;
            lp_lead_init(&lead, &rules, "L");
            demos(&lead, &rules, 3, T0, &facts);
            profile(&lead, &rules, T0 + 30 * MIN_MS, "Student", "", -1, &facts);
            assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
            feedback(&lead, &rules, (lp_feedback_outcome_t)outcome, (lp_reject_reason_t)r,
                     T0 + HOUR_MS, &facts);
            assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
            assert_int_equal(lead.reject_reason, r);
            assert_true(lead.score == 0);
            assert_true(lead.armed);
            demos(&lead, &rules, 3, T0 + 2 * HOUR_MS, &facts);
            assert_int_equal(lead.stage, LP_STAGE_DISQUALIFIED);
            assert_int_equal(facts.n, 1);
            /* the match cleared: the stage is recomputed and the armed, hot lead qualifies */
            profile(&lead, &rules, T0 + 3 * HOUR_MS, "VP Sales", "", -1, &facts);
            assert_int_equal(lead.stage, LP_STAGE_MQL);
            assert_int_equal(facts.n, 2);
            assert_int_equal(facts.fact[1].kind, LP_FACT_QUALIFIED);
            assert_int_equal(facts.fact[1].last_reject_reason, r);
        }
    }
}

/* ---- 7 ----------------------------------------------------------------------------------- */

/* A timer fires when due <= the time: an event stamped exactly at a deadline fires that timer
 * before the event is applied (one stamped 1 ms earlier does not), and lp_score_advance(now)
 * fires a timer due at now but not one due at now + 1. */
static void test_timer_due_exactly_at_the_time(void **state) {
    (void)state;
    lp_rules_t rules[3];
    lp_lead_t lead[3];
    const lp_stale_reason_t reason[3] = {LP_STALE_SLA_BREACHED, LP_STALE_COOLED, LP_STALE_INACTIVE};
    for (int i = 0; i < 3; i++) {
        lp_facts_t facts = {0};
        edge_model(&rules[i]);
        rules[i].sla_ms = i == 0 ? 48 * HOUR_MS : 0;
        rules[i].inactivity_ms = i == 2 ? 30 * DAY_MS : 0;
        lp_lead_init(&lead[i], &rules[i], "L");
        /* SLA and cooling: an MQL of 120; inactivity: a warm lead of 40 */
        demos(&lead[i], &rules[i], i == 2 ? 1 : 3, T0, &facts);
    }
    assert_int_equal(lp_lead_next_due(&lead[0]), T0 + 48 * HOUR_MS);
    assert_int_equal(lp_lead_next_due(&lead[1]), T0 + 30 * DAY_MS);
    assert_int_equal(lp_lead_next_due(&lead[2]), T0 + 30 * DAY_MS);

    for (int i = 0; i < 3; i++) {
        int64_t due = lp_lead_next_due(&lead[i]);
        lp_lead_t copy = lead[i];
        lp_facts_t facts = {0};
        /* lp_score_advance */
        assert_false(lp_score_advance(&copy, &rules[i], due - 1, &facts));
        assert_int_equal(facts.n, 0);
        assert_true(lp_score_advance(&copy, &rules[i], due, &facts));
        lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
        assert_int_equal(fact->stale_reason, reason[i]);
        assert_int_equal(fact->ts_ms, due);
        /* an event 1 ms before the deadline fires nothing */
        copy = lead[i];
        facts.n = 0;
        profile(&copy, &rules[i], due - 1, "Engineer", "", -1, &facts);
        assert_int_equal(facts.n, 0);
        assert_int_equal(lp_lead_next_due(&copy), due);
        /* an event exactly at the deadline: the timer first */
        profile(&copy, &rules[i], due, "Engineer", "", -1, &facts);
        fact = only_fact(&facts, LP_FACT_STALE);
        assert_int_equal(fact->stale_reason, reason[i]);
        assert_int_equal(fact->ts_ms, due);
    }

    /* accepted exactly at the SLA deadline: the breach is emitted (while MQL), then SQL */
    lp_facts_t facts = {0};
    feedback(&lead[0], &rules[0], LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 48 * HOUR_MS, &facts);
    lp_fact_t *fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_SLA_BREACHED);
    assert_int_equal(fact->stage, LP_STAGE_MQL);
    assert_int_equal(lead[0].stage, LP_STAGE_SQL);
    /* an engagement exactly at the inactivity deadline: inactive first (responder), then the
     * event: 20 + 1 < 40, responder */
    facts.n = 0;
    engage(&lead[2], &rules[2], "email_open", T0 + 30 * DAY_MS, &facts);
    fact = only_fact(&facts, LP_FACT_STALE);
    assert_int_equal(fact->stale_reason, LP_STALE_INACTIVE);
    assert_int_equal(lead[2].stage, LP_STAGE_RESPONDER);
    assert_int_equal(lead[2].last_activity_ms, T0 + 30 * DAY_MS);
}

/* ---- 8 ----------------------------------------------------------------------------------- */

/* A late event counts in its own cap window while that window has room, with its points decayed
 * to ref: content_download (8 points, 5 per 1d, half-life 30d) at 2026-03-03T10:00Z then one
 * stamped 2026-03-02T10:00Z gives 8 + 8 * 2^(-1/30) = 15.8172797474...; five on day 2, a late
 * one on day 1 and a sixth on day 2 give 40 + 8 * 2^(-1/30) (the sixth is over the cap). */
static void test_late_event_in_an_earlier_window(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    const int64_t mar3 = 1772532000000LL; /* 2026-03-03T10:00:00Z */
    const int64_t mar2 = 1772445600000LL; /* 2026-03-02T10:00:00Z */
    edge_model(&rules);
    int idx = act_index(&rules, "content_download");

    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "content_download", mar3, &facts);
    engage(&lead, &rules, "content_download", mar2, &facts);
    assert_close(lead.score, 8 + 8 * exp2(-1.0 / 30));
    assert_close(lead.score, 15.817279747473968);
    assert_int_equal(lead.ref_ms, mar3);
    assert_int_equal(lead.last_activity_ms, mar3);
    assert_int_equal(lead.act[idx].cap_count, 1);
    assert_int_equal(lead.cap_past[idx][0], 1);

    lp_lead_init(&lead, &rules, "L");
    for (int i = 0; i < 5; i++) {
        engage(&lead, &rules, "content_download", mar3, &facts);
    }
    engage(&lead, &rules, "content_download", mar2, &facts);
    engage(&lead, &rules, "content_download", mar3, &facts);
    assert_close(lead.score, 40 + 8 * exp2(-1.0 / 30));
    assert_close(lead.score, 47.81727974747397);
    assert_int_equal(lead.act[idx].cap_count, 5);
    assert_int_equal(lead.cap_past[idx][0], 1);
    assert_int_equal(facts.n, 0);
}

/* ---- 9 ----------------------------------------------------------------------------------- */

/* An event in a window more than LP_CAP_PAST (15) windows older than its activity's newest
 * window scores 0, as over the cap: E, the contributions and the cap counts are unchanged and
 * last_activity_ms (already later) does not move; it is still activity (points > 0), so it takes
 * a recycled lead back to responder, as any late positive event does. */
static void test_cap_horizon(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, before;
    lp_facts_t facts = {0};
    edge_model(&rules);
    int idx = act_index(&rules, "content_download");
    const int64_t newest = DAY0 + 16 * DAY_MS + 10 * HOUR_MS;

    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "content_download", newest, &facts);
    before = lead;
    lp_apply_result_t res =
        apply(&lead, &rules, fx_engagement("L", "content_download", DAY0 + 10 * HOUR_MS), &facts);
    assert_true(res.changed); /* the de-duplication ring */
    assert_true(lead.score == before.score);
    assert_true(lead.act[idx].points == before.act[idx].points);
    assert_int_equal(lead.ref_ms, newest);
    assert_int_equal(lead.last_activity_ms, newest);
    assert_int_equal(lead.act[idx].cap_count, 1);
    assert_memory_equal(lead.cap_past[idx], before.cap_past[idx], sizeof(lead.cap_past[idx]));
    assert_int_equal(lead.stage, before.stage);
    /* 15 windows back still counts, decayed by 15 days */
    engage(&lead, &rules, "content_download", DAY0 + DAY_MS + 10 * HOUR_MS, &facts);
    assert_close(lead.score, 8 + 8 * exp2(-15.0 / 30));
    assert_int_equal(lead.cap_past[idx][14], 1);

    /* on a recycled lead an event dated before the recycle scores 0 and leaves it recycled: it
     * happened while sales had the lead */
    lp_lead_init(&lead, &rules, "L2");
    engage(&lead, &rules, "content_download", newest, &facts);
    feedback(&lead, &rules, LP_FB_RECYCLED, LP_REJ_TIMING, newest + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    engage(&lead, &rules, "content_download", DAY0 + 10 * HOUR_MS, &facts);
    assert_true(lead.score == 0);
    assert_int_equal(lead.last_activity_ms, newest);
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    assert_int_equal(facts.n, 0);
    /* one dated after the recycle moves it on */
    engage(&lead, &rules, "content_download", newest + 2 * HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
}

/* ---- 10 ---------------------------------------------------------------------------------- */

/* The floor applies to the score shown, not to E on the way: with floor 0, unsubscribe (-20)
 * then form_fill (+20) at the same time gives E = 0 and score 0, not 20, in either order, and
 * the explanation's reasons (form_fill 20, unsubscribe -20) plus other_points (0) add up to the
 * score exactly. */
static void test_floor_keeps_negative_points(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    lp_fact_t fact;
    edge_model(&rules);

    for (int order = 0; order < 2; order++) {
        lp_lead_init(&lead, &rules, "L");
        engage(&lead, &rules, order == 0 ? "unsubscribe" : "form_fill", T0, &facts);
        engage(&lead, &rules, order == 0 ? "form_fill" : "unsubscribe", T0, &facts);
        assert_true(lead.score == 0);
        assert_true(lp_lead_score_at(&lead, &rules, T0) == 0);
        assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
        lp_lead_explain(&lead, &rules, T0, &fact);
        assert_true(fact.score == 0);
        assert_int_equal(fact.ntop, 2);
        assert_string_equal(fact.top[0].activity, "form_fill");
        assert_true(fact.top[0].points == 20);
        assert_string_equal(fact.top[1].activity, "unsubscribe");
        assert_true(fact.top[1].points == -20);
        assert_true(fact.other == 0);
        assert_true(fact.top[0].points + fact.top[1].points + fact.other == fact.score);
    }

    /* a day apart: E = 20 - 20 * 2^(-1/30), not 20 */
    lp_lead_init(&lead, &rules, "L");
    engage(&lead, &rules, "unsubscribe", T0, &facts);
    assert_true(lp_lead_score_at(&lead, &rules, T0) == 0);
    engage(&lead, &rules, "form_fill", T0 + DAY_MS, &facts);
    assert_close(lp_lead_score_at(&lead, &rules, T0 + DAY_MS), 20 - 20 * exp2(-1.0 / 30));
    lp_lead_explain(&lead, &rules, T0 + DAY_MS, &fact);
    assert_true(fact.top[0].points + fact.top[1].points + fact.other == fact.score);
    assert_int_equal(facts.n, 0);
}

/* ---- 11 ---------------------------------------------------------------------------------- */

/* Feedback is ordered by its own time: a rejection dated t1 arriving after an acceptance dated
 * t2 > t1 leaves the lead SQL (the later decision stands) but is counted (reject_count 1, reason
 * kept) and still resets the score (engagements dated before t1 applied later get 0); a won
 * dated t1 arriving after a lost dated t2 leaves it closed_lost; decisions dated after a close
 * are ignored, a rejection dated before it is counted and resets the score, stage closed. */
static void test_feedback_order(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    edge_model(&rules);
    rules.sla_ms = 0;

    lp_lead_init(&lead, &rules, "L");
    demos(&lead, &rules, 3, T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    feedback(&lead, &rules, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 2 * HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    feedback(&lead, &rules, LP_FB_REJECTED, LP_REJ_NO_BUDGET, T0 + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_SQL);
    assert_int_equal(lead.reject_count, 1);
    assert_int_equal(lead.reject_reason, LP_REJ_NO_BUDGET);
    assert_true(lead.score == 0);
    assert_int_equal(lead.feedback_ms, T0 + 2 * HOUR_MS);
    assert_int_equal(lead.recycled_at_ms, T0 + HOUR_MS);
    assert_int_equal(lp_lead_next_due(&lead), 0);
    engage(&lead, &rules, "demo_request", T0 + 30 * MIN_MS, &facts); /* before the rejection */
    assert_true(lead.score == 0);
    engage(&lead, &rules, "demo_request", T0 + 3 * HOUR_MS, &facts);
    assert_true(lead.score == 40);
    assert_int_equal(lead.stage, LP_STAGE_SQL);

    lp_lead_init(&lead, &rules, "L2");
    engage(&lead, &rules, "demo_request", T0, &facts);
    feedback(&lead, &rules, LP_FB_LOST, LP_REJ_NONE, T0 + 2 * HOUR_MS, &facts);
    feedback(&lead, &rules, LP_FB_WON, LP_REJ_NONE, T0 + HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_CLOSED_LOST);
    assert_int_equal(lead.feedback_ms, T0 + 2 * HOUR_MS);
    feedback(&lead, &rules, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 3 * HOUR_MS, &facts);
    feedback(&lead, &rules, LP_FB_REJECTED, LP_REJ_OTHER, T0 + 3 * HOUR_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_CLOSED_LOST);
    assert_int_equal(lead.reject_count, 0);
    assert_close(lead.score, 40 * exp2(-3.0 / 720)); /* 3 h of a 30-day half-life */
    feedback(&lead, &rules, LP_FB_REJECTED, LP_REJ_TIMING, T0 + 90 * MIN_MS, &facts);
    assert_int_equal(lead.stage, LP_STAGE_CLOSED_LOST);
    assert_int_equal(lead.reject_count, 1);
    assert_int_equal(lead.reject_reason, LP_REJ_TIMING);
    assert_true(lead.score == 0);
    assert_int_equal(facts.n, 1); /* the first lead's qualification */
}

/* ---- 12 ---------------------------------------------------------------------------------- */

/* Each profile field keeps the value with the latest event time (equal times: the greater value
 * in byte order): update A (title X) at t2 applied, then update B (title Y, industry Z) at
 * t1 < t2 leaves title X and sets industry Z; fit and disqualification follow the merged
 * profile. */
static void test_profile_fields_by_event_time(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, other;
    lp_facts_t facts = {0};
    fx_rules(&rules); /* fit: title contains vp 20, company_size >= 200 10; A >= 30, B >= 20 */

    lp_lead_init(&lead, &rules, "L");
    profile(&lead, &rules, T0 + 2, "VP Sales", "", -1, &facts);
    assert_int_equal(lead.fit_grade, 'B');
    profile(&lead, &rules, T0 + 1, "Engineer", "software", 500, &facts);
    assert_string_equal(lead.profile.title, "VP Sales");
    assert_string_equal(lead.profile.industry, "software");
    assert_int_equal(lead.profile.company_size, 500);
    assert_int_equal(lead.fit_grade, 'A'); /* vp 20 + size 10 */
    /* the other arrival order: the same profile */
    lp_lead_init(&other, &rules, "L");
    profile(&other, &rules, T0 + 1, "Engineer", "software", 500, &facts);
    profile(&other, &rules, T0 + 2, "VP Sales", "", -1, &facts);
    assert_string_equal(other.profile.title, "VP Sales");
    assert_string_equal(other.profile.industry, "software");
    assert_int_equal(other.profile.company_size, 500);
    assert_memory_equal(other.profile_ms, lead.profile_ms, sizeof(lead.profile_ms));

    /* an older title cannot disqualify through a field a newer update set */
    profile(&lead, &rules, T0, "Student", "", -1, &facts);
    assert_string_equal(lead.profile.title, "VP Sales");
    assert_string_equal(lead.dq_reason, "");
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    /* equal times: the greater value ('V' > 'E') */
    profile(&lead, &rules, T0 + 2, "Engineer", "", -1, &facts);
    assert_string_equal(lead.profile.title, "VP Sales");
    profile(&lead, &rules, T0 + 1, "", "banking", -1, &facts);
    assert_string_equal(lead.profile.industry, "software"); /* 's' > 'b' */
    assert_int_equal(facts.n, 0);
}

/* ---- 13, 14 ------------------------------------------------------------------------------ */

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
        engage(&lead, &rules, "demo_request", T0 + 10, &facts);
        feedback(&lead, &rules, LP_FB_RECYCLED, LP_REJ_TIMING, T0 + 20, &facts);
        engage(&lead, &rules, "form_submit", T0 + 15, &facts);
        engage(&lead, &rules, "webinar_attend", T0 + 25, &facts);
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
    engage(&lead, &rules, "email_open", T0 + 1, &facts);
    assert_true(lp_score_apply(&lead, &e1, &rules, &facts).duplicate); /* one other since */
    engage(&lead, &rules, "email_open", T0 + 2, &facts);
    apply(&lead, &rules, e1, &facts); /* two others since: forgotten, applied again */
    assert_close(lead.score, 15 + 1 + 1 + 15);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_click_within_boundary),
        cmocka_unit_test(test_machine_events_use_no_cap),
        cmocka_unit_test(test_zero_point_events_and_the_clock),
        cmocka_unit_test(test_inactive_after_decay_below_warm),
        cmocka_unit_test(test_cooled_mql_then_inactive),
        cmocka_unit_test(test_rejection_reasons),
        cmocka_unit_test(test_timer_due_exactly_at_the_time),
        cmocka_unit_test(test_late_event_in_an_earlier_window),
        cmocka_unit_test(test_cap_horizon),
        cmocka_unit_test(test_floor_keeps_negative_points),
        cmocka_unit_test(test_feedback_order),
        cmocka_unit_test(test_profile_fields_by_event_time),
        cmocka_unit_test(test_late_event_before_a_recycle),
        cmocka_unit_test(test_dedup_window_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
