/* Shared fixture of the core unit tests: a scoring model built by hand (no YAML loader) and
 * small event builders. Header-only so each test executable stays self-contained. */
#ifndef LEADPULSE_TEST_CORE_FIXTURE_H
#define LEADPULSE_TEST_CORE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "leadpulse/score.h"

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define T0 (1700000000000LL) /* 2023-11-14, an event time well away from 0 */

static inline lp_activity_rule_t *fx_activity(lp_rules_t *rules, const char *name, double points) {
    lp_activity_rule_t *a = &rules->activities[rules->nactivities++];
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->points = points;
    a->is_engagement = points > 0;
    return a;
}

static inline lp_match_rule_t *fx_match(lp_match_rule_t *rule, lp_field_t field, lp_match_op_t op,
                                        const char *value, double points, const char *reason) {
    rule->field = field;
    rule->op = op;
    if (value != NULL) {
        snprintf(rule->values[rule->nvalues++], sizeof(rule->values[0]), "%s", value);
    }
    rule->points = points;
    if (reason != NULL) {
        snprintf(rule->reason, sizeof(rule->reason), "%s", reason);
    }
    return rule;
}

/* The default model of the tests. Half-life 1 day so decay is visible in round numbers. */
static inline void fx_rules(lp_rules_t *rules) {
    memset(rules, 0, sizeof(*rules));
    snprintf(rules->model_id, sizeof(rules->model_id), "b2b-test");
    snprintf(rules->model_version, sizeof(rules->model_version), "7");
    rules->half_life_ms = (double)DAY_MS;
    rules->floor = 0;
    rules->warm_threshold = 20;
    rules->mql_threshold = 50;
    rules->rearm_level = 30;
    rules->min_fit_grade = 'D';

    lp_activity_rule_t *pv = fx_activity(rules, "page_view", 2);
    snprintf(pv->cond[0].url_prefix, sizeof(pv->cond[0].url_prefix), "/pricing");
    pv->cond[0].points = 10;
    pv->ncond = 1;
    fx_activity(rules, "email_open", 1);
    fx_activity(rules, "email_click", 3);
    fx_activity(rules, "form_submit", 25);
    fx_activity(rules, "webinar_attend", 15);
    fx_activity(rules, "unsubscribe", -20);
    lp_activity_rule_t *dl = fx_activity(rules, "content_download", 8);
    dl->cap_count = 3;
    dl->cap_window_ms = DAY_MS;
    fx_activity(rules, "demo_request", 40);

    rules->honor_machine_flag = true;
    rules->machine_click_within_s = 10;

    fx_match(&rules->fit[rules->nfit++], LP_FIELD_TITLE, LP_MATCH_CONTAINS, "vp", 20, NULL);
    lp_match_rule_t *size =
        fx_match(&rules->fit[rules->nfit++], LP_FIELD_COMPANY_SIZE, LP_MATCH_RANGE, NULL, 10, NULL);
    size->min = 200;
    size->max = INT64_MAX;
    fx_match(&rules->fit[rules->nfit++], LP_FIELD_EMAIL_DOMAIN, LP_MATCH_IN, "gmail.com", -15,
             NULL);
    rules->grade_a = 30;
    rules->grade_b = 20;
    rules->grade_c = 10;

    fx_match(&rules->dq[rules->ndq++], LP_FIELD_EMAIL_DOMAIN, LP_MATCH_SUFFIX, "competitor.com", 0,
             "competitor");
    fx_match(&rules->dq[rules->ndq++], LP_FIELD_TITLE, LP_MATCH_CONTAINS, "student", 0, "student");

    rules->sla_ms = 0;
    rules->inactivity_ms = 0;
    rules->inactive_stage = LP_STAGE_RECYCLED;
    rules->recycle_mode = LP_RECYCLE_RESET;
    rules->recycle_scale = 0.5;
    rules->dedup_window = 16;
}

static unsigned fx_event_seq;

static inline lp_event_t fx_engagement(const char *lead_id, const char *type, int64_t ts) {
    lp_event_t event;
    lp_event_init(&event, LP_EV_ENGAGEMENT);
    snprintf(event.event_id, sizeof(event.event_id), "ev-%u", ++fx_event_seq);
    snprintf(event.lead_id, sizeof(event.lead_id), "%s", lead_id);
    snprintf(event.u.engagement.type, sizeof(event.u.engagement.type), "%s", type);
    event.ts_ms = ts;
    return event;
}

static inline lp_event_t fx_profile(const char *lead_id, int64_t ts) {
    lp_event_t event;
    lp_event_init(&event, LP_EV_PROFILE);
    snprintf(event.event_id, sizeof(event.event_id), "ev-%u", ++fx_event_seq);
    snprintf(event.lead_id, sizeof(event.lead_id), "%s", lead_id);
    event.ts_ms = ts;
    return event;
}

static inline lp_event_t fx_feedback(const char *lead_id, lp_feedback_outcome_t outcome,
                                     lp_reject_reason_t reason, int64_t ts) {
    lp_event_t event;
    lp_event_init(&event, LP_EV_FEEDBACK);
    snprintf(event.event_id, sizeof(event.event_id), "ev-%u", ++fx_event_seq);
    snprintf(event.lead_id, sizeof(event.lead_id), "%s", lead_id);
    event.u.feedback.outcome = outcome;
    event.u.feedback.reason = reason;
    event.ts_ms = ts;
    return event;
}

/* Applies an engagement and returns the result; facts are appended to `facts`. */
static inline lp_apply_result_t fx_engage(lp_lead_t *lead, const lp_rules_t *rules,
                                          const char *type, int64_t ts, lp_facts_t *facts) {
    lp_event_t event = fx_engagement(lead->lead_id, type, ts);
    return lp_score_apply(lead, &event, rules, facts);
}

#endif
