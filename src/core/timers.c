/* Hand-off timers: SLA breach and reminders, cooling (closed form), inactivity. Deadlines live on
 * the lead; the worker keeps lp_lead_next_due() in its timer set and calls lp_score_advance(). */
#include <math.h>

#include "core/core_internal.h"

/* The moment an MQL's decayed score falls below rearm_level, in closed form:
 * score * 2^-((t - ref) / h) = rearm  <=>  t = ref + h * log2(score / rearm). 0 = never. */
static int64_t cooling_deadline(const lp_lead_t *lead, const lp_rules_t *rules) {
    double rearm = rules->rearm_level;
    double lowest = rules->floor > 0 ? rules->floor : 0.0;

    if (lead->score < rearm) {
        return lead->ref_ms; /* already below (negative points): cool now */
    }
    if (!(rules->half_life_ms > 0) || rearm <= lowest) {
        return 0; /* decay never takes the score below a level at or under its limit */
    }
    double dt = ceil(rules->half_life_ms * log2(lead->score / rearm));
    if (!(dt < 9e18)) {
        return 0;
    }
    return lp_core_time_add(lead->ref_ms, (int64_t)dt);
}

void lp_core_update_timers(lp_lead_t *lead, const lp_rules_t *rules) {
    bool watched = lead->stage == LP_STAGE_WARM || lead->stage == LP_STAGE_MQL;
    if (rules->inactivity_ms > 0 && watched && lead->last_activity_ms != 0) {
        lead->inactive_deadline_ms = lp_core_time_add(lead->last_activity_ms, rules->inactivity_ms);
    } else {
        lead->inactive_deadline_ms = 0;
    }
    lead->cooled_deadline_ms = lead->stage == LP_STAGE_MQL ? cooling_deadline(lead, rules) : 0;
    if (lead->stage != LP_STAGE_MQL) {
        lead->sla_deadline_ms = 0;
        lead->sla_reminders = 0;
        lead->sla_breached = false;
    }
}

static void fire_sla(lp_lead_t *lead, const lp_rules_t *rules, int64_t due, lp_facts_t *facts) {
    int32_t reminder = 0;
    if (!lead->sla_breached) {
        lead->sla_breached = true;
        lead->sla_reminders = 0;
        lead->stale_seq++;
    } else if (lead->sla_reminders < INT32_MAX) {
        reminder = ++lead->sla_reminders;
    }
    if (rules->sla_reminder_ms > 0 && lead->sla_reminders < rules->sla_max_reminders) {
        lead->sla_deadline_ms = lp_core_time_add(due, rules->sla_reminder_ms);
    } else {
        lead->sla_deadline_ms = 0;
    }
    lp_core_emit_stale(facts, lead, rules, LP_STALE_SLA_BREACHED, due, reminder);
}

static void fire_cooled(lp_lead_t *lead, const lp_rules_t *rules, int64_t due, lp_facts_t *facts) {
    double score = lp_lead_score_at(lead, rules, due);
    lead->stale_seq++;
    lead->armed = true;
    lead->stage = score >= rules->warm_threshold && lp_core_is_active(lead, rules, due)
                      ? LP_STAGE_WARM
                      : LP_STAGE_RESPONDER;
    lp_core_cancel_handoff(lead);
    lp_core_update_timers(lead, rules);
    lp_core_emit_stale(facts, lead, rules, LP_STALE_COOLED, due, 0);
}

static uint8_t inactive_target(const lp_rules_t *rules) {
    int stage = rules->inactive_stage;
    /* Only stages a lead leaves by engaging again; anything else would re-fire at once. */
    if (stage == LP_STAGE_SUSPECT || stage == LP_STAGE_RESPONDER || stage == LP_STAGE_RECYCLED) {
        return (uint8_t)stage;
    }
    return LP_STAGE_RECYCLED;
}

static void fire_inactive(lp_lead_t *lead, const lp_rules_t *rules, int64_t due,
                          lp_facts_t *facts) {
    lead->stale_seq++;
    lead->armed = true;
    lead->stage = inactive_target(rules);
    lp_core_cancel_handoff(lead);
    lead->inactive_deadline_ms = 0;
    lp_core_emit_stale(facts, lead, rules, LP_STALE_INACTIVE, due, 0);
}

int64_t lp_lead_next_due(const lp_lead_t *lead) {
    int64_t due[3] = {lead->sla_deadline_ms, lead->cooled_deadline_ms, lead->inactive_deadline_ms};
    int64_t next = 0;
    for (int i = 0; i < 3; i++) {
        if (due[i] != 0 && (next == 0 || due[i] < next)) {
            next = due[i];
        }
    }
    return next;
}

/* Fires every deadline <= now in time order (ties: SLA, cooling, inactivity), keeping `reserve`
 * fact slots free. Returns true if any fired. */
bool lp_core_fire_timers(lp_lead_t *lead, const lp_rules_t *rules, int64_t now, lp_facts_t *facts,
                         int reserve) {
    bool fired = false;
    while (lp_core_facts_room(facts, reserve)) {
        int64_t due[3] = {lead->sla_deadline_ms, lead->cooled_deadline_ms,
                          lead->inactive_deadline_ms};
        int which = -1;
        for (int i = 0; i < 3; i++) {
            if (due[i] != 0 && due[i] <= now && (which < 0 || due[i] < due[which])) {
                which = i;
            }
        }
        if (which < 0) {
            break;
        }
        /* Timers only run for the stages that own them; a stray one is dropped silently. */
        bool mql = lead->stage == LP_STAGE_MQL;
        if (which == 0) {
            if (mql) {
                fire_sla(lead, rules, due[0], facts);
            } else {
                lead->sla_deadline_ms = 0;
            }
        } else if (which == 1) {
            if (mql) {
                fire_cooled(lead, rules, due[1], facts);
            } else {
                lead->cooled_deadline_ms = 0;
            }
        } else if (mql || lead->stage == LP_STAGE_WARM) {
            fire_inactive(lead, rules, due[2], facts);
        } else {
            lead->inactive_deadline_ms = 0;
        }
        fired = true;
    }
    return fired;
}

bool lp_score_advance(lp_lead_t *lead, const lp_rules_t *rules, int64_t now_ms, lp_facts_t *facts) {
    return lp_core_any_due(lead, now_ms) && lp_core_fire_timers(lead, rules, now_ms, facts, 0);
}
