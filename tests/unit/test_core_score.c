/* Scoring arithmetic: decay, late events, caps, negative points and the floor, machine activity,
 * duplicates, explanations, and order independence. */
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

static void test_decay_exact(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");

    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    assert_close(lead.score, 25);
    /* one half-life later: 25 / 2 + 2 */
    fx_engage(&lead, &rules, "page_view", T0 + DAY_MS, &facts);
    assert_close(lead.score, 14.5);
    assert_int_equal(lead.ref_ms, T0 + DAY_MS);
    /* two more half-lives, read lazily */
    assert_close(lp_lead_score_at(&lead, &rules, T0 + 3 * DAY_MS), 14.5 / 4);
    /* half a half-life: times 2^-0.5 */
    assert_close(lp_lead_score_at(&lead, &rules, T0 + DAY_MS + DAY_MS / 2), 14.5 / sqrt(2.0));
    /* earlier than ref: the score at ref, not extrapolated backwards */
    assert_close(lp_lead_score_at(&lead, &rules, T0), 14.5);
    /* contributions decay with the score */
    lp_fact_t fact;
    lp_lead_explain(&lead, &rules, T0 + 3 * DAY_MS, &fact);
    assert_int_equal(fact.ntop, 2);
    assert_string_equal(fact.top[0].activity, "form_submit");
    assert_close(fact.top[0].points, 25.0 / 8);
    assert_close(fact.top[1].points, 2.0 / 4);
    assert_int_equal(facts.n, 0);
}

static void test_late_event(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");

    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    fx_engage(&lead, &rules, "page_view", T0 + 2 * DAY_MS, &facts);
    /* arrives last, happened in between: adds 15 decayed by the one day to ref */
    fx_engage(&lead, &rules, "webinar_attend", T0 + DAY_MS, &facts);
    assert_int_equal(lead.ref_ms, T0 + 2 * DAY_MS);
    assert_close(lead.score, 25.0 / 4 + 2 + 15.0 / 2);

    lp_lead_t other;
    lp_lead_init(&other, &rules, "L2");
    fx_engage(&other, &rules, "form_submit", T0, &facts);
    fx_engage(&other, &rules, "webinar_attend", T0 + DAY_MS, &facts);
    fx_engage(&other, &rules, "page_view", T0 + 2 * DAY_MS, &facts);
    assert_close(other.score, lead.score);
}

static void test_conditions_override_points(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 1e18; /* no visible decay */
    lp_lead_init(&lead, &rules, "L1");

    lp_event_t ev = fx_engagement("L1", "page_view", T0);
    snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "https://acme.io/pricing?x=1");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 10);
    ev = fx_engagement("L1", "page_view", T0 + 1);
    snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "/pricing/enterprise");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 20);
    ev = fx_engagement("L1", "page_view", T0 + 2);
    snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "/blog/pricing");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 22);
}

static void test_cap_windows(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 1e18;
    rules.inactivity_ms = 10 * DAY_MS;
    lp_lead_init(&lead, &rules, "L1");
    int64_t day = (T0 / DAY_MS + 1) * DAY_MS; /* start of a window */

    for (int i = 0; i < 5; i++) {
        fx_engage(&lead, &rules, "content_download", day + i * HOUR_MS, &facts);
    }
    assert_close(lead.score, 24); /* 3 of 5 counted */
    /* over-cap events still count as activity */
    assert_int_equal(lead.last_activity_ms, day + 4 * HOUR_MS);
    /* next window counts again */
    fx_engage(&lead, &rules, "content_download", day + DAY_MS, &facts);
    assert_close(lead.score, 32);
    /* a late event for the previous window is over the cap */
    fx_engage(&lead, &rules, "content_download", day + 10 * HOUR_MS, &facts);
    assert_close(lead.score, 32);
    /* other activities have no cap */
    for (int i = 0; i < 5; i++) {
        fx_engage(&lead, &rules, "email_click", day + DAY_MS + i, &facts);
    }
    assert_close(lead.score, 47);
}

static void test_negative_points_and_floor(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    lp_fact_t fact;
    fx_rules(&rules);
    rules.half_life_ms = 1e18;
    lp_lead_init(&lead, &rules, "L1");

    /* E, the sum of decayed points, is kept below the floor; the score shown is max(floor, E) */
    fx_engage(&lead, &rules, "unsubscribe", T0, &facts);
    assert_close(lead.score, -20);
    assert_close(lp_lead_score_at(&lead, &rules, T0), 0);
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT); /* negative activity is not engagement */
    fx_engage(&lead, &rules, "form_submit", T0 + 1, &facts);
    assert_close(lp_lead_score_at(&lead, &rules, T0 + 1), 5); /* -20 + 25: the floor commutes */
    assert_int_equal(lead.stage, LP_STAGE_RESPONDER);
    fx_engage(&lead, &rules, "unsubscribe", T0 + 2, &facts);
    assert_close(lead.score, -15);
    fx_engage(&lead, &rules, "unsubscribe", T0 + 3, &facts);
    assert_close(lead.score, -35);
    assert_close(lp_lead_score_at(&lead, &rules, T0 + 3), 0);
    /* the explanation adds up to the score shown: other_points takes the reasons to the floor */
    lp_lead_explain(&lead, &rules, T0 + 3, &fact);
    double sum = 0;
    for (int i = 0; i < fact.ntop; i++) {
        sum += fact.top[i].points;
    }
    sum += fact.other;
    assert_true(sum == fact.score);
    assert_true(fact.score == 0);
    assert_close(fact.other, 35);
    assert_string_equal(fact.top[0].activity, "form_submit");
    assert_close(fact.top[1].points, -60);

    /* the same events in another order: the same E (a clamp on the way would give 0 + 25 - 40) */
    lp_lead_t other;
    lp_lead_init(&other, &rules, "L1");
    fx_engage(&other, &rules, "form_submit", T0 + 1, &facts);
    fx_engage(&other, &rules, "unsubscribe", T0 + 3, &facts);
    fx_engage(&other, &rules, "unsubscribe", T0 + 2, &facts);
    fx_engage(&other, &rules, "unsubscribe", T0, &facts);
    assert_close(other.score, lead.score);

    /* a negative floor lets the score go below zero, down to the floor */
    rules.floor = -30;
    lp_lead_init(&lead, &rules, "L2");
    assert_close(lead.score, 0);
    fx_engage(&lead, &rules, "unsubscribe", T0, &facts);
    assert_close(lp_lead_score_at(&lead, &rules, T0), -20);
    fx_engage(&lead, &rules, "unsubscribe", T0 + 1, &facts);
    assert_close(lead.score, -40);
    assert_close(lp_lead_score_at(&lead, &rules, T0 + 1), -30);
    assert_int_equal(facts.n, 0);
}

static void test_machine_activity(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");

    lp_event_t ev = fx_engagement("L1", "form_submit", T0);
    ev.u.engagement.machine = true;
    lp_apply_result_t res = lp_score_apply(&lead, &ev, &rules, &facts);
    assert_int_equal(res.outcome, LP_APPLIED);
    assert_close(lead.score, 0);
    assert_int_equal(lead.stage, LP_STAGE_SUSPECT);
    assert_int_equal(lead.last_activity_ms, 0);
    /* still de-duplicated */
    res = lp_score_apply(&lead, &ev, &rules, &facts);
    assert_true(res.duplicate);

    /* a scanner clicking 3 s after the send scores nothing; a person 30 s after does */
    ev = fx_engagement("L1", "email_click", T0 + 1);
    ev.u.engagement.seconds_since_send = 3;
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 0);
    ev = fx_engagement("L1", "email_click", T0 + 1);
    ev.u.engagement.seconds_since_send = 30;
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 3);
    /* the time rule only concerns email opens and clicks */
    ev = fx_engagement("L1", "page_view", T0 + 1);
    ev.u.engagement.seconds_since_send = 1;
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 5);

    /* without honor_machine_flag the producer's flag is ignored */
    rules.honor_machine_flag = false;
    ev = fx_engagement("L1", "email_open", T0 + 1);
    ev.u.engagement.machine = true;
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.score, 6);
}

static void test_duplicates(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, before;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.dedup_window = 4;
    lp_lead_init(&lead, &rules, "L1");

    lp_event_t ev = fx_engagement("L1", "form_submit", T0);
    assert_false(lp_score_apply(&lead, &ev, &rules, &facts).duplicate);
    before = lead;
    lp_apply_result_t res = lp_score_apply(&lead, &ev, &rules, &facts);
    assert_true(res.duplicate);
    assert_false(res.changed);
    assert_int_equal(res.outcome, LP_APPLIED);
    assert_memory_equal(&lead, &before, sizeof(lead));

    lp_event_t prof = fx_profile("L1", T0 + 1);
    snprintf(prof.u.profile.title, sizeof(prof.u.profile.title), "VP Sales");
    assert_false(lp_score_apply(&lead, &prof, &rules, &facts).duplicate);
    assert_true(lp_score_apply(&lead, &prof, &rules, &facts).duplicate);
    lp_event_t fb = fx_feedback("L1", LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 2);
    assert_false(lp_score_apply(&lead, &fb, &rules, &facts).duplicate);
    assert_true(lp_score_apply(&lead, &fb, &rules, &facts).duplicate);

    /* the ring remembers dedup_window ids: the oldest falls out */
    for (int i = 0; i < 4; i++) {
        fx_engage(&lead, &rules, "email_open", T0 + 10 + i, &facts);
    }
    assert_false(lp_score_apply(&lead, &ev, &rules, &facts).duplicate);
}

static void test_unknown_activity_dead_letters(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, before;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "L1");
    before = lead;
    lp_apply_result_t res = fx_engage(&lead, &rules, "carrier_pigeon", T0, &facts);
    assert_int_equal(res.outcome, LP_DEAD_LETTER);
    assert_string_equal(res.reason, "unknown activity type");
    assert_false(res.changed);
    assert_memory_equal(&lead, &before, sizeof(lead));

    lp_event_t fb = fx_feedback("L1", (lp_feedback_outcome_t)42, LP_REJ_NONE, T0);
    assert_int_equal(lp_score_apply(&lead, &fb, &rules, &facts).outcome, LP_DEAD_LETTER);
}

static void test_explanation_order_and_sum(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    lp_fact_t fact;
    fx_rules(&rules);
    rules.mql_threshold = 1000;
    lp_lead_init(&lead, &rules, "L1");

    /* two activities tie at 3 points (email_click x1, email_open x3): ties go by name */
    const char *types[] = {"email_open",  "email_open",  "email_open",
                           "email_click", "form_submit", "webinar_attend",
                           "page_view",   "unsubscribe", "content_download"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        fx_engage(&lead, &rules, types[i], T0, &facts);
    }
    lp_lead_explain(&lead, &rules, T0 + DAY_MS / 3, &fact);
    assert_int_equal(fact.ntop, LP_TOP_N);
    const char *want[] = {"form_submit", "webinar_attend", "content_download", "email_click",
                          "email_open"};
    for (int i = 0; i < LP_TOP_N; i++) {
        assert_string_equal(fact.top[i].activity, want[i]);
    }
    double f = exp2(-1.0 / 3);
    assert_close(fact.top[0].points, 25 * f);
    assert_close(fact.top[3].points, 3 * f);
    assert_close(fact.top[4].points, 3 * f);
    /* other = page_view 2 + unsubscribe -20, decayed; and the listed parts add up to the score */
    assert_close(fact.other, -18 * f);
    assert_close(fact.score, lp_lead_score_at(&lead, &rules, T0 + DAY_MS / 3));
    double listed = 0;
    for (int i = 0; i < fact.ntop; i++) {
        listed += fact.top[i].points;
    }
    assert_true(fact.other == fact.score - listed);
}

/* The same events in any order give the same scores (no caps, nothing hits the floor). */
static void test_shuffled_order_same_scores(void **state) {
    (void)state;
    enum { NLEADS = 20, NEVENTS = 400, ROUNDS = 12 };
    static const char *types[] = {"page_view",   "email_open",     "email_click",
                                  "form_submit", "webinar_attend", "demo_request"};
    lp_rules_t rules;
    static lp_event_t events[NEVENTS];
    static lp_lead_t leads[NLEADS];
    double want[NLEADS];
    unsigned seed = 12345;
    fx_rules(&rules);
    rules.half_life_ms = 3.0 * DAY_MS;
    rules.sla_ms = HOUR_MS;
    rules.inactivity_ms = 0;

    for (int i = 0; i < NEVENTS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "L%d", rand_r(&seed) % NLEADS);
        events[i] = fx_engagement(id, types[rand_r(&seed) % 6],
                                  T0 + (int64_t)(rand_r(&seed) % (30 * 24)) * HOUR_MS +
                                      rand_r(&seed) % 1000);
    }
    for (int round = 0; round <= ROUNDS; round++) {
        if (round > 0) { /* Fisher-Yates with a fixed seed */
            for (int i = NEVENTS - 1; i > 0; i--) {
                int j = rand_r(&seed) % (i + 1);
                lp_event_t tmp = events[i];
                events[i] = events[j];
                events[j] = tmp;
            }
        }
        for (int l = 0; l < NLEADS; l++) {
            char id[16];
            snprintf(id, sizeof(id), "L%d", l);
            lp_lead_init(&leads[l], &rules, id);
        }
        for (int i = 0; i < NEVENTS; i++) {
            lp_facts_t facts = {0};
            int l = atoi(events[i].lead_id + 1);
            assert_int_equal(lp_score_apply(&leads[l], &events[i], &rules, &facts).outcome,
                             LP_APPLIED);
        }
        for (int l = 0; l < NLEADS; l++) {
            if (round == 0) {
                want[l] = leads[l].score;
                assert_true(want[l] > 0);
            } else {
                assert_close(leads[l].score, want[l]);
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_exact),
        cmocka_unit_test(test_late_event),
        cmocka_unit_test(test_conditions_override_points),
        cmocka_unit_test(test_cap_windows),
        cmocka_unit_test(test_negative_points_and_floor),
        cmocka_unit_test(test_machine_activity),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unknown_activity_dead_letters),
        cmocka_unit_test(test_explanation_order_and_sum),
        cmocka_unit_test(test_shuffled_order_same_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
