/* What the issue-3/5 audit found untested in the core: asset and campaign conditions (and the
 * first-match rule), fit rules on the other profile fields, the `keep` recycle mode, and that
 * every emitted fact (not only lp_lead_explain) carries the explanation, the model and the
 * routing fields a CRM needs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core_fixture.h"

static void assert_close(double got, double want) {
    double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
    if (fabs(got - want) > tol) {
        fail_msg("got %.17g, want %.17g", got, want);
    }
}

static lp_condition_t *add_cond(lp_activity_rule_t *act, const char *url, const char *asset,
                                const char *campaign, double points) {
    lp_condition_t *c = &act->cond[act->ncond++];
    snprintf(c->url_prefix, sizeof(c->url_prefix), "%s", url);
    snprintf(c->asset_id, sizeof(c->asset_id), "%s", asset);
    snprintf(c->campaign_id, sizeof(c->campaign_id), "%s", campaign);
    c->points = points;
    return c;
}

/* Points a fresh lead gets for one content_download with these fields. */
static double points_for(const lp_rules_t *rules, const char *url, const char *asset,
                         const char *campaign) {
    lp_lead_t lead;
    lp_facts_t facts = {0};
    lp_lead_init(&lead, rules, "L1");
    lp_event_t ev = fx_engagement("L1", "content_download", T0);
    snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "%s", url);
    snprintf(ev.u.engagement.asset_id, sizeof(ev.u.engagement.asset_id), "%s", asset);
    snprintf(ev.u.engagement.campaign_id, sizeof(ev.u.engagement.campaign_id), "%s", campaign);
    assert_int_equal(lp_score_apply(&lead, &ev, rules, &facts).outcome, LP_APPLIED);
    return lead.score;
}

static void test_asset_and_campaign_conditions(void **state) {
    (void)state;
    lp_rules_t rules;
    fx_rules(&rules);
    rules.half_life_ms = 1e18;
    lp_activity_rule_t *dl = NULL; /* default 8 points, cap 3 a day */
    for (int i = 0; i < rules.nactivities; i++) {
        if (strcmp(rules.activities[i].name, "content_download") == 0) {
            dl = &rules.activities[i];
        }
    }
    assert_non_null(dl);
    add_cond(dl, "", "wp-pricing", "", 20);
    add_cond(dl, "/lp", "", "spring", 12); /* both fields must match */
    add_cond(dl, "", "", "spring", 6);

    assert_close(points_for(&rules, "", "wp-pricing", ""), 20);
    assert_close(points_for(&rules, "", "wp-other", ""), 8);
    assert_close(points_for(&rules, "https://acme.io/lp/x", "", "spring"), 12);
    assert_close(points_for(&rules, "/blog/x", "", "spring"), 6);
    assert_close(points_for(&rules, "", "", "Spring"), 8);        /* exact, case-sensitive */
    assert_close(points_for(&rules, "", "wp-pricing-v2", ""), 8); /* equality, not a prefix */
    assert_close(points_for(&rules, "/lp", "wp-pricing", "spring"), 20); /* first match wins */
}

/* Fit rules on every text field of the profile; the grade follows the current profile. */
static void test_fit_on_profile_fields(void **state) {
    (void)state;
    static const struct {
        lp_field_t field;
        const char *value;
    } rule[] = {{LP_FIELD_SENIORITY, "vp"}, {LP_FIELD_INDUSTRY, "saas"}, {LP_FIELD_COUNTRY, "de"},
                {LP_FIELD_REGION, "emea"},  {LP_FIELD_PERSONA, "buyer"}, {LP_FIELD_SEGMENT, "mid"},
                {LP_FIELD_COMPANY, "acme"}};
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.nfit = 0;
    for (size_t i = 0; i < sizeof(rule) / sizeof(rule[0]); i++) {
        fx_match(&rules.fit[rules.nfit++], rule[i].field, LP_MATCH_IN, rule[i].value, 5, NULL);
    }
    rules.grade_a = 35;
    rules.grade_b = 20;
    rules.grade_c = 5;
    lp_lead_init(&lead, &rules, "L1");

    lp_event_t ev = fx_profile("L1", T0);
    snprintf(ev.u.profile.seniority, sizeof(ev.u.profile.seniority), "VP");
    snprintf(ev.u.profile.industry, sizeof(ev.u.profile.industry), "SaaS");
    snprintf(ev.u.profile.country, sizeof(ev.u.profile.country), "DE");
    snprintf(ev.u.profile.region, sizeof(ev.u.profile.region), "emea");
    snprintf(ev.u.profile.persona, sizeof(ev.u.profile.persona), "Buyer");
    snprintf(ev.u.profile.segment, sizeof(ev.u.profile.segment), "mid");
    snprintf(ev.u.profile.company, sizeof(ev.u.profile.company), "ACME");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.fit_points, 35);
    assert_int_equal(lead.fit_grade, 'A');

    /* Two fields change: recomputed from the merged profile (not added to or kept). */
    ev = fx_profile("L1", T0 + 1);
    snprintf(ev.u.profile.persona, sizeof(ev.u.profile.persona), "champion");
    snprintf(ev.u.profile.region, sizeof(ev.u.profile.region), "apac");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_close(lead.fit_points, 25);
    assert_int_equal(lead.fit_grade, 'B');
    assert_string_equal(lead.profile.industry, "SaaS"); /* untouched fields kept */
}

static void test_recycle_keep(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.half_life_ms = 1e18;
    rules.recycle_mode = LP_RECYCLE_KEEP;
    lp_lead_init(&lead, &rules, "L1");
    fx_engage(&lead, &rules, "form_submit", T0, &facts);
    fx_engage(&lead, &rules, "demo_request", T0, &facts);
    assert_int_equal(lead.stage, LP_STAGE_MQL);
    facts.n = 0;

    lp_event_t fb = fx_feedback("L1", LP_FB_RECYCLED, LP_REJ_NOT_DECISION_MAKER, T0 + 1);
    lp_score_apply(&lead, &fb, &rules, &facts);
    assert_int_equal(lead.stage, LP_STAGE_RECYCLED);
    assert_close(lead.score, 65); /* kept */
    assert_true(lead.armed);
    assert_int_equal(facts.n, 0);
    /* Still above the threshold: the next activity qualifies it again, echoing the reason. */
    fx_engage(&lead, &rules, "email_open", T0 + 2, &facts);
    assert_int_equal(facts.n, 1);
    assert_int_equal(facts.fact[0].kind, LP_FACT_QUALIFIED);
    assert_int_equal(facts.fact[0].mql_seq, 2);
    assert_int_equal(facts.fact[0].last_reject_reason, LP_REJ_NOT_DECISION_MAKER);
}

/* The explanation of an emitted fact: the top contributions at the fact's time, the remainder,
 * and the whole adds up to the fact's score. */
static void assert_explained(const lp_fact_t *fact, const lp_lead_t *lead,
                             const lp_rules_t *rules) {
    lp_fact_t want;
    lp_lead_explain(lead, rules, fact->ts_ms, &want);
    assert_close(fact->score, want.score);
    assert_int_equal(fact->ntop, want.ntop);
    double sum = fact->other;
    for (int i = 0; i < fact->ntop; i++) {
        assert_string_equal(fact->top[i].activity, want.top[i].activity);
        assert_close(fact->top[i].points, want.top[i].points);
        sum += fact->top[i].points;
    }
    assert_true(sum == fact->score);
    assert_string_equal(fact->model_id, "b2b-test");
    assert_string_equal(fact->model_version, "7");
}

static void test_facts_carry_explanation_and_routing(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    rules.sla_ms = 12 * HOUR_MS;
    lp_lead_init(&lead, &rules, "L1");

    lp_event_t ev = fx_profile("L1", T0);
    lp_profile_update_t *p = &ev.u.profile;
    snprintf(p->email, sizeof(p->email), "ann@acme.io");
    snprintf(p->title, sizeof(p->title), "VP Sales");
    snprintf(p->company, sizeof(p->company), "Acme");
    snprintf(p->region, sizeof(p->region), "emea");
    snprintf(p->country, sizeof(p->country), "de");
    snprintf(p->segment, sizeof(p->segment), "mid_market");
    snprintf(p->persona, sizeof(p->persona), "economic_buyer");
    snprintf(p->owner, sizeof(p->owner), "sdr-3");
    p->company_size = 300;
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_int_equal(lead.fit_grade, 'A');

    const char *types[] = {"email_open", "email_click",      "webinar_attend", "page_view",
                           "email_open", "content_download", "form_submit"};
    for (int i = 0; i < 7; i++) {
        fx_engage(&lead, &rules, types[i], T0 + i * HOUR_MS, &facts);
    }
    assert_int_equal(facts.n, 1);
    lp_fact_t qualified = facts.fact[0]; /* a copy: the slot is reused below */
    lp_fact_t *q = &qualified;
    assert_int_equal(q->kind, LP_FACT_QUALIFIED);
    assert_int_equal(q->ts_ms, T0 + 6 * HOUR_MS);
    assert_int_equal(q->fit_grade, 'A');
    assert_int_equal(q->sla_deadline_ms, T0 + 18 * HOUR_MS);
    assert_int_equal(q->ntop, LP_TOP_N);
    assert_string_equal(q->top[0].activity, "form_submit");
    assert_true(q->other != 0); /* 6 activities, 5 listed: the remainder is real */
    assert_explained(q, &lead, &rules);
    assert_string_equal(q->profile.email, "ann@acme.io");
    assert_string_equal(q->profile.company, "Acme");
    assert_string_equal(q->profile.region, "emea");
    assert_string_equal(q->profile.country, "de");
    assert_string_equal(q->profile.segment, "mid_market");
    assert_string_equal(q->profile.persona, "economic_buyer");
    assert_string_equal(q->profile.title, "VP Sales");
    assert_string_equal(q->profile.owner, "sdr-3");

    /* The SLA breach: explained at its deadline (decayed), with the feedback's owner. */
    facts.n = 0;
    lp_event_t fb = fx_feedback("L1", LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 24 * HOUR_MS);
    snprintf(fb.u.feedback.owner, sizeof(fb.u.feedback.owner), "ae-9");
    lp_lead_t before = lead;
    lp_score_apply(&lead, &fb, &rules, &facts);
    assert_int_equal(facts.n, 1);
    lp_fact_t *s = &facts.fact[0];
    assert_int_equal(s->kind, LP_FACT_STALE);
    assert_int_equal(s->stale_reason, LP_STALE_SLA_BREACHED);
    assert_int_equal(s->ts_ms, T0 + 18 * HOUR_MS);
    assert_close(s->score, lp_lead_score_at(&before, &rules, T0 + 18 * HOUR_MS));
    assert_close(s->top[0].points, q->top[0].points * exp2(-0.5)); /* 12 h = half a half-life */
    assert_explained(s, &before, &rules);
    assert_int_equal(s->mql_at_ms, T0 + 6 * HOUR_MS);
    assert_string_equal(s->profile.owner, "sdr-3"); /* the breach came before the feedback */
    assert_string_equal(lead.profile.owner, "ae-9");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asset_and_campaign_conditions),
        cmocka_unit_test(test_fit_on_profile_fields),
        cmocka_unit_test(test_recycle_keep),
        cmocka_unit_test(test_facts_carry_explanation_and_routing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
