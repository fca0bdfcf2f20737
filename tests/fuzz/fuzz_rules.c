/* lp_rules_load_buffer over arbitrary bytes (YAML rules files are operator input). Properties:
 * no crash, leak or UB; a rejection gives a reason; an accepted model keeps the documented
 * invariants of lp_rules_t, and the scoring core, driven with it through every activity, a
 * profile update, sales feedback and its timers, produces lead state that the store encoding
 * round-trips. */
#include <math.h>

#include "fuzz_util.h"
#include "leadpulse/account.h"
#include "leadpulse/score.h"

/* The `accounts:` section: counts, bounds and the relations the loader checks. */
static void check_accounts(const lp_rules_t *rules) {
    const lp_account_rules_t *acc = &rules->accounts;

    if (!acc->enabled) {
        return;
    }
    if (acc->nroles < 0 || acc->nroles > LP_MAX_ROLE_RULES || acc->nfree_mail < 0 ||
        acc->nfree_mail > LP_MAX_FREE_MAIL || acc->nrequired < 0 ||
        acc->nrequired > LP_MAX_ROLE_GROUPS || (unsigned)acc->default_role >= LP_ROLE__COUNT) {
        fuzz_fail("accounts: counts out of range");
    }
    if (!(acc->mqa_score > 0) || !(acc->mqa_rearm < acc->mqa_score) || !(acc->member_cap > 0) ||
        !(acc->engaged_score >= 0) || acc->max_members < 1 ||
        acc->max_members > LP_ACCOUNT_MEMBERS_MAX || acc->mqa_engaged_members < 1 ||
        acc->mqa_engaged_members > acc->max_members || acc->quiet_after_ms < 0 ||
        acc->accept_within_ms < 0) {
        fuzz_fail("accounts: values out of range");
    }
    if (acc->mqa_min_fit != 0 && (acc->mqa_min_fit < 'A' || acc->mqa_min_fit > 'D')) {
        fuzz_fail("accounts: min_fit %d", acc->mqa_min_fit);
    }
    for (int i = 0; i < acc->nroles; i++) {
        if ((unsigned)acc->roles[i].role >= LP_ROLE__COUNT ||
            (unsigned)acc->roles[i].field >= LP_FIELD__COUNT || acc->roles[i].nvalues < 0 ||
            acc->roles[i].nvalues > LP_MAX_MATCH_VALUES) {
            fuzz_fail("accounts: role rule %d out of range", i);
        }
    }
    for (int g = 0; g < acc->nrequired; g++) {
        if (acc->required[g] == 0 || acc->required[g] >= (1u << LP_ROLE__COUNT)) {
            fuzz_fail("accounts: required_roles[%d] mask %#x", g, acc->required[g]);
        }
    }
    for (int i = 0; i < acc->nfree_mail; i++) {
        FUZZ_CHECK_STR(acc->free_mail[i]);
        if (!lp_account_free_mail(rules, acc->free_mail[i])) {
            fuzz_fail("accounts: %s is not free mail", acc->free_mail[i]);
        }
    }
}

/* A member's account key and role for the lead's profile: never longer than the buffer. */
static void check_account_of(const lp_rules_t *rules, const lp_profile_update_t *profile) {
    char key[LP_ACCOUNT_KEY_MAX + 1];
    const char *k = lp_account_of(rules, profile->company, profile->email, key, sizeof(key));

    if (k != NULL && (k != key || strlen(key) > LP_ACCOUNT_KEY_MAX)) {
        fuzz_fail("account key");
    }
    if ((unsigned)lp_account_role(rules, profile) >= LP_ROLE__COUNT) {
        fuzz_fail("account role");
    }
}

static void check_rules(const lp_rules_t *rules) {
    if (!(rules->half_life_ms > 0) || !isfinite(rules->half_life_ms)) {
        fuzz_fail("half_life_ms %g", rules->half_life_ms);
    }
    if (!(rules->rearm_level < rules->mql_threshold)) {
        fuzz_fail("rearm %g not below mql %g", rules->rearm_level, rules->mql_threshold);
    }
    if (rules->min_fit_grade < 'A' || rules->min_fit_grade > 'D') {
        fuzz_fail("min_fit_grade %d", rules->min_fit_grade);
    }
    if (rules->nactivities < 0 || rules->nactivities > LP_MAX_ACTIVITIES || rules->nfit < 0 ||
        rules->nfit > LP_MAX_FIT_RULES || rules->ndq < 0 || rules->ndq > LP_MAX_DQ_RULES) {
        fuzz_fail("counts out of range");
    }
    if (rules->dedup_window < 1 || rules->dedup_window > LP_DEDUP_MAX) {
        fuzz_fail("dedup_window %d", rules->dedup_window);
    }
    check_accounts(rules);
    FUZZ_CHECK_STR(rules->model_id);
    FUZZ_CHECK_STR(rules->model_version);
    for (int i = 0; i < rules->nactivities; i++) {
        const lp_activity_rule_t *act = &rules->activities[i];
        FUZZ_CHECK_STR(act->name);
        if (act->ncond < 0 || act->ncond > LP_MAX_CONDITIONS || act->cap_count < 0 ||
            (act->cap_count > 0 && act->cap_window_ms <= 0)) {
            fuzz_fail("activity %s: conditions or cap out of range", act->name);
        }
        if (lp_rules_activity_index(rules, act->name) != i) {
            fuzz_fail("activity %s defined twice", act->name);
        }
    }
    for (int i = 0; i < rules->nfit + rules->ndq; i++) {
        const lp_match_rule_t *m = i < rules->nfit ? &rules->fit[i] : &rules->dq[i - rules->nfit];
        if ((unsigned)m->field >= LP_FIELD__COUNT || m->nvalues < 0 ||
            m->nvalues > LP_MAX_MATCH_VALUES) {
            fuzz_fail("match rule %d out of range", i);
        }
    }
}

static void check_lead(const lp_lead_t *lead, const lp_rules_t *rules) {
    static uint8_t buf[LP_LEAD_ENCODED_MAX];
    static lp_lead_t back;
    size_t n = lp_lead_encode(lead, rules, buf, sizeof(buf));

    if (n == 0) {
        fuzz_fail("lead state does not encode");
    }
    if (lp_lead_decode(&back, rules, buf, n) != LP_OK) {
        fuzz_fail("lead state written by the core does not decode (score %g, fit %g)", lead->score,
                  lead->fit_points);
    }
}

static void apply(lp_lead_t *lead, const lp_rules_t *rules, const lp_event_t *ev) {
    static lp_facts_t facts;
    lp_apply_result_t res;

    facts.n = 0;
    res = lp_score_apply(lead, ev, rules, &facts);
    if (res.outcome != LP_APPLIED && res.outcome != LP_DEAD_LETTER) {
        fuzz_fail("outcome %d", (int)res.outcome);
    }
    if (facts.n < 0 || facts.n > LP_FACTS_MAX) {
        fuzz_fail("%d facts", facts.n);
    }
    check_lead(lead, rules);
}

static void drive_core(const lp_rules_t *rules) {
    static lp_lead_t lead;
    static lp_event_t ev;
    static lp_facts_t facts;
    int64_t ts = 1795600800000LL;

    lp_lead_init(&lead, rules, "lead-fuzz");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < rules->nactivities; i++) {
            lp_event_init(&ev, LP_EV_ENGAGEMENT);
            snprintf(ev.event_id, sizeof(ev.event_id), "e%d-%d", round, i);
            snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-fuzz");
            ev.ts_ms = ts += 60000;
            memcpy(ev.u.engagement.type, rules->activities[i].name, sizeof(ev.u.engagement.type));
            if (rules->activities[i].ncond > 0) {
                memcpy(ev.u.engagement.url, rules->activities[i].cond[0].url_prefix,
                       sizeof(ev.u.engagement.url));
            }
            ev.u.engagement.seconds_since_send = round;
            apply(&lead, rules, &ev);
        }
        lp_event_init(&ev, LP_EV_PROFILE);
        snprintf(ev.event_id, sizeof(ev.event_id), "p%d", round);
        snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-fuzz");
        ev.ts_ms = ts += 1000;
        snprintf(ev.u.profile.email, sizeof(ev.u.profile.email), "vp@example.com");
        snprintf(ev.u.profile.title, sizeof(ev.u.profile.title), "VP Engineering");
        ev.u.profile.company_size = round == 0 ? 5 : 5000;
        apply(&lead, rules, &ev);
        check_account_of(rules, &lead.profile);
        lp_event_init(&ev, LP_EV_FEEDBACK);
        snprintf(ev.event_id, sizeof(ev.event_id), "f%d", round);
        snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-fuzz");
        ev.ts_ms = ts += 1000;
        ev.u.feedback.outcome = round == 0 ? LP_FB_RECYCLED : LP_FB_ACCEPTED;
        ev.u.feedback.reason = round == 0 ? LP_REJ_TIMING : LP_REJ_NONE;
        apply(&lead, rules, &ev);
        /* Fire every timer up to a year later. */
        for (int k = 0; k < 16 && lp_lead_next_due(&lead) != 0 &&
                        lp_lead_next_due(&lead) < ts + 365LL * 86400000;
             k++) {
            facts.n = 0;
            lp_score_advance(&lead, rules, lp_lead_next_due(&lead), &facts);
            check_lead(&lead, rules);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[LP_ERRSTR];
    lp_rules_t *rules;

    memset(err, 0, sizeof(err));
    rules = lp_rules_load_buffer("fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (rules == NULL) {
        fuzz_check_reason("lp_rules_load_buffer", err, sizeof(err));
        return 0;
    }
    check_rules(rules);
    drive_core(rules);
    lp_rules_destroy(rules);
    return 0;
}
