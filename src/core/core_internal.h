/* leadpulse core: helpers shared by the files of the scoring core. Not a public contract. */
#ifndef LEADPULSE_CORE_INTERNAL_H
#define LEADPULSE_CORE_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/event.h"
#include "leadpulse/hash.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"

/* Seeds of the 64-bit hash: event-id de-duplication and the two halves of emitted ids. */
#define LP_CORE_SEED_DEDUP 0x6c656164u /* "lead" */
#define LP_CORE_SEED_ID_HI 0x9ae16a3b2f90404fULL
#define LP_CORE_SEED_ID_LO 0xc3a5c85c97cb3127ULL

/* An emitted event id: 32 lowercase hex characters (+ NUL), lp_hash64 of text[0..len) with
 * LP_CORE_SEED_ID_HI, then with LP_CORE_SEED_ID_LO. lp_event_id_derive and lp_account_event_id
 * hash their joined parts with it. */
void lp_core_event_id_of(const char *text, size_t len, char out[LP_EVENT_ID_HEX + 1]);

/* Index of the activity rule named `type` (exact match), or -1. Pure: no lookup tables. `type`
 * is a whole char[LP_NAME_MAX + 1] array (an event's type): all of it may be read. */
int lp_core_activity_index(const lp_rules_t *rules, const char *type);

/* Indexes of field_ms (lp_lead_t.profile_ms), one per profile field. */
enum {
    LP_PF_EMAIL,
    LP_PF_TITLE,
    LP_PF_SENIORITY,
    LP_PF_INDUSTRY,
    LP_PF_COMPANY,
    LP_PF_COMPANY_SIZE,
    LP_PF_COUNTRY,
    LP_PF_REGION,
    LP_PF_PERSONA,
    LP_PF_SEGMENT,
    LP_PF_OWNER,
    LP_PF__COUNT
};

/* Profile updates at event time t: each non-empty string and company_size >= 0 replaces the
 * field's value when t is later than the value's time (field_ms), or equal and the new value is
 * greater; so the profile is the same in any arrival order. */
void lp_core_profile_merge(lp_profile_update_t *profile, int64_t field_ms[LP_PROFILE_FIELDS],
                           const lp_profile_update_t *update, int64_t t);

/* The same for the owner a sales feedback names. */
/* account_id, merged as the other profile fields (the value with the latest time wins). */
void lp_core_account_id_merge(lp_profile_update_t *profile, int64_t *field_ms,
                              const char *account_id, int64_t t);
void lp_core_owner_merge(lp_profile_update_t *profile, int64_t field_ms[LP_PROFILE_FIELDS],
                         const char *owner, int64_t t);

/* E (the unclamped score) times the decay factor f: the contributions times f (tiny ones
 * flushed to 0) summed in explanation order (largest first, ties by name; the first LP_TOP_N, then
 * the rest): lp_lead_explain's reasons and other_points add up to it exactly. */
double lp_core_total(const lp_lead_t *lead, const lp_rules_t *rules, double f);

/* Sum of the points of the fit rules the profile matches. */
double lp_core_fit_points(const lp_rules_t *rules, const lp_profile_update_t *profile);

/* 'A' if points >= grade_a, 'B' >= grade_b, 'C' >= grade_c, else 'D'. */
char lp_core_fit_grade(const lp_rules_t *rules, double points);

/* First disqualify rule the profile matches, or NULL. */
const lp_match_rule_t *lp_core_dq_match(const lp_rules_t *rules,
                                        const lp_profile_update_t *profile);

/* First accounts.roles rule the profile matches, or NULL. */
const lp_match_rule_t *lp_core_role_match(const lp_rules_t *rules,
                                          const lp_profile_update_t *profile);

/* ---- small helpers shared by score.c, timers.c and facts.c (inline: they sit on the hot path) */

/* later - earlier for later > earlier, without signed overflow. */
static inline double lp_core_span_ms(int64_t later, int64_t earlier) {
    return (double)((uint64_t)later - (uint64_t)earlier);
}

/* Decay factor from `earlier` to `later`: 2^-((later - earlier) / half_life), 1 if not later. */
static inline double lp_core_decay(const lp_rules_t *rules, int64_t later, int64_t earlier) {
    if (later <= earlier || !(rules->half_life_ms > 0)) {
        return 1.0;
    }
    return exp2(-lp_core_span_ms(later, earlier) / rules->half_life_ms);
}

/* a + b for times, saturating: decoded state and event times are input, never trusted. */
static inline int64_t lp_core_time_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return b > 0 ? INT64_MAX : INT64_MIN;
    }
    return r;
}

/* Decayed values below this are zero: keeps the arithmetic off subnormals (slow on x86) and
 * cannot move a score by anything a threshold could notice. */
#define LP_CORE_TINY 1e-12
_Static_assert(LP_PF__COUNT == LP_PROFILE_FIELDS, "one time per profile field");

static inline double lp_core_flush_tiny(double v) {
    return fabs(v) < LP_CORE_TINY ? 0.0 : v;
}

static inline double lp_core_clamp_floor(const lp_rules_t *rules, double score) {
    score = lp_core_flush_tiny(score);
    return score < rules->floor ? rules->floor : score;
}

static inline int lp_core_nactivities(const lp_rules_t *rules) {
    int n = rules->nactivities;
    return n < 0 ? 0 : n > LP_MAX_ACTIVITIES ? LP_MAX_ACTIVITIES : n;
}

/* Room for one more fact while keeping `reserve` slots free. */
static inline bool lp_core_facts_room(const lp_facts_t *facts, int reserve) {
    return facts != NULL && facts->n >= 0 && facts->n + reserve < LP_FACTS_MAX;
}

/* Engaged and not past the inactivity window at time t. */
static inline bool lp_core_is_active(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t) {
    if (lead->last_activity_ms == 0) {
        return false;
    }
    return rules->inactivity_ms <= 0 ||
           lp_core_time_add(lead->last_activity_ms, rules->inactivity_ms) > t;
}

/* Whether any timer is due at now: the check every event makes, kept to a few instructions. */
static inline bool lp_core_any_due(const lp_lead_t *lead, int64_t now) {
    return (lead->sla_deadline_ms != 0 && lead->sla_deadline_ms <= now) |
           (lead->cooled_deadline_ms != 0 && lead->cooled_deadline_ms <= now) |
           (lead->inactive_deadline_ms != 0 && lead->inactive_deadline_ms <= now);
}

static inline void lp_core_cancel_handoff(lp_lead_t *lead) {
    lead->sla_deadline_ms = 0;
    lead->sla_reminders = 0;
    lead->sla_breached = false;
    lead->cooled_deadline_ms = 0;
}

/* ---- facts.c */

/* Appends a fact filled from the lead at time t (score, explanation, profile, model), or returns
 * NULL when the buffer is full. The caller sets the event id and the kind-specific fields. */
lp_fact_t *lp_core_emit(lp_facts_t *facts, const lp_lead_t *lead, const lp_rules_t *rules,
                        lp_fact_kind_t kind, int64_t t);

/* Appends a LeadStale fact with its deterministic id ("stale:<reason>", stale_seq, reminder). */
lp_fact_t *lp_core_emit_stale(lp_facts_t *facts, const lp_lead_t *lead, const lp_rules_t *rules,
                              lp_stale_reason_t reason, int64_t t, int32_t reminder);

/* ---- timers.c */

/* Recomputes the inactivity and cooling deadlines from the stage, score and last activity, and
 * drops the SLA timer of a lead that is no longer MQL. */
void lp_core_update_timers(lp_lead_t *lead, const lp_rules_t *rules);

/* Fires every deadline <= now in time order, keeping `reserve` fact slots free. */
bool lp_core_fire_timers(lp_lead_t *lead, const lp_rules_t *rules, int64_t now, lp_facts_t *facts,
                         int reserve);

/* The de-duplication ring keeps 48 bits of each event id's hash (docs/rules.md, dedup_window;
 * lead format 4 stores 6 bytes each, older values are cut to 48 bits when read). */
#define LP_SEEN_MASK ((UINT64_C(1) << 48) - 1)

#endif
