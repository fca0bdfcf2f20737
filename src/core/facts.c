/* Facts and explanations: what a LeadQualified / LeadStale carries, and the enum names. */
#include <string.h>
#include <strings.h>

#include "core/core_internal.h"

static const char *const stage_names[LP_STAGE__COUNT] = {
    "suspect",  "responder",    "warm",       "mql",        "sql",
    "recycled", "disqualified", "closed_won", "closed_lost"};
static const char *const stale_names[] = {"sla_breached", "inactive", "cooled"};

static bool ranks_before(const lp_contribution_t *a, const lp_contribution_t *b) {
    if (a->points != b->points) {
        return a->points > b->points;
    }
    return strcmp(a->activity, b->activity) < 0;
}

void lp_lead_explain(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t_ms,
                     lp_fact_t *fact) {
    double f = lp_core_decay(rules, t_ms, lead->ref_ms);
    int n = lp_core_nactivities(rules);
    double listed = 0.0;

    fact->ntop = 0;
    for (int i = 0; i < n; i++) {
        lp_contribution_t c;
        double points = lp_core_flush_tiny(lead->act[i].points * f);
        if (points == 0.0) {
            continue;
        }
        c.points = points;
        memcpy(c.activity, rules->activities[i].name, sizeof(c.activity));
        c.activity[LP_NAME_MAX] = '\0';
        /* insertion into the sorted top list */
        int pos = fact->ntop;
        while (pos > 0 && ranks_before(&c, &fact->top[pos - 1])) {
            pos--;
        }
        if (pos >= LP_TOP_N) {
            continue;
        }
        int last = fact->ntop < LP_TOP_N ? fact->ntop : LP_TOP_N - 1;
        memmove(&fact->top[pos + 1], &fact->top[pos], (size_t)(last - pos) * sizeof(c));
        fact->top[pos] = c;
        if (fact->ntop < LP_TOP_N) {
            fact->ntop++;
        }
    }
    fact->score = lp_lead_score_at(lead, rules, t_ms);
    for (int i = 0; i < fact->ntop; i++) {
        listed += fact->top[i].points;
    }
    /* The remainder (smaller activities, the floor) is whatever makes the listed sum add up. */
    fact->other = fact->score - listed;
}

lp_fact_t *lp_core_emit(lp_facts_t *facts, const lp_lead_t *lead, const lp_rules_t *rules,
                        lp_fact_kind_t kind, int64_t t) {
    if (facts == NULL || facts->n < 0 || facts->n >= LP_FACTS_MAX) {
        return NULL;
    }
    lp_fact_t *fact = &facts->fact[facts->n++];
    memset(fact, 0, sizeof(*fact));
    fact->kind = kind;
    memcpy(fact->lead_id, lead->lead_id, sizeof(fact->lead_id));
    fact->ts_ms = t;
    fact->fit_grade = lead->fit_grade;
    fact->stage = lead->stage;
    lp_lead_explain(lead, rules, t, fact);
    memcpy(fact->model_id, rules->model_id, sizeof(fact->model_id));
    fact->model_id[LP_NAME_MAX] = '\0';
    memcpy(fact->model_version, rules->model_version, sizeof(fact->model_version));
    fact->model_version[LP_NAME_MAX] = '\0';
    fact->mql_seq = lead->mql_seq;
    fact->mql_at_ms = lead->mql_at_ms;
    fact->sla_deadline_ms = lead->mql_at_ms != 0 && rules->sla_ms > 0
                                ? lp_core_time_add(lead->mql_at_ms, rules->sla_ms)
                                : 0;
    fact->last_reject_reason = lead->reject_reason;
    fact->profile = lead->profile;
    return fact;
}

lp_fact_t *lp_core_emit_stale(lp_facts_t *facts, const lp_lead_t *lead, const lp_rules_t *rules,
                              lp_stale_reason_t reason, int64_t t, int32_t reminder) {
    char kind[LP_NAME_MAX + 8];
    lp_fact_t *fact = lp_core_emit(facts, lead, rules, LP_FACT_STALE, t);
    fact->stale_reason = reason;
    fact->reminder = reminder;
    strcpy(kind, "stale:");
    strcat(kind, stale_names[reason]);
    lp_event_id_derive(fact->event_id, lead->lead_id, kind, lead->stale_seq, (uint32_t)reminder);
    return fact;
}

const char *lp_stage_name(lp_stage_t stage) {
    return (unsigned)stage < LP_STAGE__COUNT ? stage_names[stage] : NULL;
}

int lp_stage_parse(const char *name) {
    for (int i = 0; i < LP_STAGE__COUNT; i++) {
        if (name != NULL && strcasecmp(name, stage_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *lp_stale_reason_name(lp_stale_reason_t reason) {
    return (unsigned)reason < sizeof(stale_names) / sizeof(stale_names[0]) ? stale_names[reason]
                                                                           : NULL;
}
