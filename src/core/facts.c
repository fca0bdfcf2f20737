/* Facts and explanations: what a LeadQualified / LeadStale carries, and the enum names. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/core_internal.h"

static const char *const stage_names[LP_STAGE__COUNT] = {
    "suspect",  "responder",    "warm",       "mql",        "sql",
    "recycled", "disqualified", "closed_won", "closed_lost"};
static const char *const stale_names[] = {"sla_breached", "inactive", "cooled"};

typedef struct {
    double points;
    int idx;
} ranked_t;

/* Explanation order: larger points first; equal points by activity name. */
static bool ranks_before(const lp_rules_t *rules, const ranked_t *a, const ranked_t *b) {
    if (a->points != b->points) {
        return a->points > b->points;
    }
    return strcmp(rules->activities[a->idx].name, rules->activities[b->idx].name) < 0;
}

/* The lead's non-zero contributions times f, in explanation order; returns how many. A lead has
 * few activities with points, so insertion sort is the cheap choice. */
static int rank(const lp_lead_t *lead, const lp_rules_t *rules, double f,
                ranked_t out[LP_MAX_ACTIVITIES]) {
    int n = lp_core_nactivities(rules);
    int k = 0;
    for (int i = 0; i < n; i++) {
        double points = lead->act[i].points;
        if (points == 0.0) {
            continue;
        }
        ranked_t c = {f == 1.0 ? points : lp_core_flush_tiny(points * f), i};
        if (c.points == 0.0) {
            continue;
        }
        int pos = k++;
        while (pos > 0 && ranks_before(rules, &c, &out[pos - 1])) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos] = c;
    }
    return k;
}

/* (c[0] + ... + c[top-1]) + (c[top] + ... + c[n-1]), each sum from left to right: what a
 * consumer adding a hand-off's reasons and then other_points gets. */
static double ranked_sum(const ranked_t *c, int n, double *listed, double *rest) {
    int top = n < LP_TOP_N ? n : LP_TOP_N;
    double a = 0.0, b = 0.0;
    for (int i = 0; i < top; i++) {
        a += c[i].points;
    }
    for (int i = top; i < n; i++) {
        b += c[i].points;
    }
    *listed = a;
    *rest = b;
    return a + b;
}

double lp_core_total(const lp_lead_t *lead, const lp_rules_t *rules, double f) {
    ranked_t c[LP_MAX_ACTIVITIES];
    double listed, rest;
    return ranked_sum(c, rank(lead, rules, f, c), &listed, &rest);
}

void lp_lead_explain(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t_ms,
                     lp_fact_t *fact) {
    ranked_t c[LP_MAX_ACTIVITIES];
    double listed, rest;
    int n = rank(lead, rules, lp_core_decay(rules, t_ms, lead->ref_ms), c);
    double total = ranked_sum(c, n, &listed, &rest);

    fact->ntop = n < LP_TOP_N ? n : LP_TOP_N;
    for (int i = 0; i < fact->ntop; i++) {
        fact->top[i].points = c[i].points;
        memcpy(fact->top[i].activity, rules->activities[c[i].idx].name, LP_NAME_MAX + 1);
        fact->top[i].activity[LP_NAME_MAX] = '\0';
    }
    if (lp_core_flush_tiny(total) >= rules->floor) {
        fact->score = lp_core_flush_tiny(total);
        fact->other = fact->score == total ? rest : fact->score - listed;
        return;
    }
    /* The floor applies: other_points is what takes the listed points to it. Rounding can leave
     * listed + (floor - listed) an ulp away from the floor; step other until the sum is exact. */
    fact->score = rules->floor;
    fact->other = rules->floor - listed;
    for (int i = 0; i < 4 && listed + fact->other != rules->floor; i++) {
        fact->other =
            nextafter(fact->other, listed + fact->other < rules->floor ? INFINITY : -INFINITY);
    }
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
