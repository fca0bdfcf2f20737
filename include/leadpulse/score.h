/* leadpulse: the pure scoring core. state + event + rules -> new state + emitted facts.
 * No I/O, no clock, no globals: time comes in as arguments (event time, or the timer clock).
 *
 * Semantics (the decisions a rules author or a consumer can observe; docs/rules.md, "Time and
 * arrival order", is the reference):
 * - Score: max(floor, E), where E = the sum over counted events of points * 2^-((ref - t) / h),
 *   ref = the latest event time applied (ref_ms). E is kept unclamped (`score` holds E; read
 *   the displayed score with lp_lead_score_at), so negative points and the floor commute: the
 *   same events in any arrival order give the same E (to rounding), recycles aside.
 * - Contributions: act[i].points is activity i's part of E at ref_ms; E is their sum taken in
 *   explanation order (largest first, ties by name: top LP_TOP_N, then the rest), so a
 *   hand-off's reasons plus other_points add up to its score exactly.
 * - Points: the first matching condition overrides an activity's points. A url_prefix matches the
 *   URL as sent or its path ("https://host/pricing" matches "/pricing"); url, asset and campaign
 *   comparisons are exact (case-sensitive). Profile rules (fit, disqualify) are case-insensitive;
 *   an unknown (empty) field matches no rule.
 * - Caps: at most cap_count events with non-zero points count per tumbling window of the event's
 *   own time (index = floor(t / cap_window_ms); cap_window_ms <= 0 = one window forever). Counts
 *   are kept for the activity's newest window and the LP_CAP_PAST windows before it; an event in
 *   an older window scores 0, as over the cap. Over-cap events score 0 but still count as
 *   activity. Within a window, the first cap_count events applied are the ones that count.
 * - Recycles: a rejection/recycle resets (or scales) E as it is when applied; a late engagement
 *   older than the latest recycle (recycled_at_ms) gets 0 points (reset) or points * factor.
 * - Machine activity (producer flag when honor_machine_flag; email_open/email_click with
 *   0 <= seconds_since_send < machine_click_within_s) scores nothing, counts toward no cap, is
 *   not activity, and is still de-duplicated.
 * - Activity (for the inactivity clock and for leaving suspect/recycled): an event whose matched
 *   points are > 0, or of an activity with is_engagement. last_activity_ms is the latest such time.
 * - Stages: suspect and recycled leads move only on activity; responder/warm follow the score at
 *   every engagement event (warm = score >= warm_threshold and not past the inactivity window).
 *   MQL needs stage warm, armed, score >= mql_threshold, fit grade <= min_fit_grade and no
 *   disqualify match; a profile update can qualify a warm lead. The MQL time is ref_ms.
 *   Re-arm: the score at ref_ms below rearm_level (an MQL re-arms through its cooling timer).
 *   Hand-offs are decided when an event is applied, from the state after it.
 * - Profile: per field, the value with the latest event time wins (profile_ms); equal times: the
 *   greater value. Feedback owners are the `owner` field.
 * - Disqualify: evaluated on every profile update; a match makes an open-funnel lead (not SQL or
 *   closed) DISQUALIFIED and cancels its hand-off timers; when no rule matches any more the stage
 *   is recomputed from engagement and score (and the lead may qualify at once).
 * - Feedback: accepted -> SQL (timers cancelled); rejected/recycled -> RECYCLED (or DISQUALIFIED
 *   while a disqualify rule matches), score per recycle_mode, armed; won/lost -> closed, terminal
 *   (later accepted/rejected/recycled are ignored; won and lost may correct each other). A
 *   feedback older than the latest applied one (feedback_ms) changes no stage: the later
 *   decision stands (its recycle still resets the score).
 * - Timers fire in time order (ties: SLA, cooling, inactivity) at their deadline, with the score
 *   at the deadline. SLA: one breach (reminder 0) then reminders 1..sla_max_reminders every
 *   sla_reminder_ms, while still MQL. Cooling: at ref + ceil(h * log2(score / rearm_level)), an
 *   MQL goes back to warm/responder, armed; negative points that take an MQL below the re-arm
 *   level cool it at that event. Inactivity: warm/MQL leads, at last_activity_ms + inactivity_ms,
 *   move to inactive_stage (suspect, responder or recycled; anything else means recycled), armed,
 *   SLA and cooling cancelled.
 * - Facts: at most LP_FACTS_MAX per call; timers that find no room stay due and fire on the next
 *   call, and a qualification that finds no room waits for the lead's next event (nothing is
 *   lost). lp_score_apply keeps two slots free for the event itself after firing timers.
 * - De-duplication: the last dedup_window event ids (64-bit hashes) applied to the lead;
 *   dedup_window <= 0 turns it off. */
#ifndef LEADPULSE_SCORE_H
#define LEADPULSE_SCORE_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/common.h"
#include "leadpulse/event.h"
#include "leadpulse/rules.h"

typedef enum {
    LP_STAGE_SUSPECT = 0,
    LP_STAGE_RESPONDER = 1,
    LP_STAGE_WARM = 2,
    LP_STAGE_MQL = 3,
    LP_STAGE_SQL = 4,
    LP_STAGE_RECYCLED = 5,
    LP_STAGE_DISQUALIFIED = 6,
    LP_STAGE_CLOSED_WON = 7,
    LP_STAGE_CLOSED_LOST = 8,
    LP_STAGE__COUNT
} lp_stage_t;

typedef enum {
    LP_STALE_SLA_BREACHED = 0, /* MQL not accepted by sales within the SLA */
    LP_STALE_INACTIVE = 1,     /* warm/MQL lead with no engagement for the inactivity window */
    LP_STALE_COOLED = 2,       /* MQL whose decayed score fell below the re-arm level */
} lp_stale_reason_t;

/* Per-activity state of one lead. */
/* Cap windows remembered before an activity's newest one: late events up to this many windows
 * back are counted in their own window. */
#define LP_CAP_PAST 15
#define LP_CAP_COUNT_MAX 65535 /* cap.count limit: past windows' counts are 16-bit */

/* Profile fields with their own update time, in lp_profile_update_t order. */
#define LP_PROFILE_FIELDS 11

typedef struct {
    double points;      /* contribution at lead->ref_ms (decays with the score) */
    int64_t cap_window; /* index of the current cap window (ts / cap_window_ms) */
    int32_t cap_count;  /* events counted in that window */
} lp_lead_activity_t;

/* The state of one lead. Serialized with lp_lead_encode(); only what is set takes space.
 * Field order is for the cache, not for reading: what every event reads or writes comes first and
 * together (the scalars in one 64-byte block, then the de-duplication ring, whose slots in use
 * are its first ones, then the per-activity state), what only qualifications, profile updates
 * and feedback touch comes last. */
typedef struct {
    double score;                 /* E at ref_ms, unclamped: lp_lead_score_at() adds the floor */
    int64_t ref_ms;               /* reference time of score and contributions (max event time) */
    int64_t last_activity_ms;     /* last engagement that counts for inactivity; 0 = none */
    int64_t sla_deadline_ms;      /* 0 = no SLA timer */
    int64_t cooled_deadline_ms;   /* 0 = no cooling timer */
    int64_t inactive_deadline_ms; /* 0 = no inactivity timer */
    int32_t sla_reminders;        /* reminders sent for the current qualification */
    uint8_t stage;                /* lp_stage_t */
    char fit_grade;               /* 'A'..'D', recomputed from the profile */
    bool armed;                   /* may emit an MQL when the threshold is crossed */
    bool sla_breached;            /* the SLA breach of the current qualification was emitted */
    int nseen;                    /* de-duplication ring of event-id hashes */
    int seen_pos;
    uint64_t seen[LP_DEDUP_MAX];
    lp_lead_activity_t act[LP_MAX_ACTIVITIES]; /* indexed like rules->activities */
    int64_t mql_at_ms;                         /* time of the current qualification, 0 = none */
    double fit_points;
    uint32_t mql_seq;   /* qualifications so far (feeds the MQL event id) */
    uint32_t stale_seq; /* stale events so far (feeds the stale event id) */
    uint32_t reject_count;
    uint8_t reject_reason; /* lp_reject_reason_t of the last rejection */
    char lead_id[LP_ID_MAX + 1];
    /* Reason of the disqualify rule the current profile matches, "" if none. The stage is
     * DISQUALIFIED while it is set, unless sales already took the lead (SQL, closed). */
    char dq_reason[LP_NAME_MAX + 1];
    lp_profile_update_t profile;           /* current profile (company_size -1 = unknown) */
    int64_t feedback_ms;                   /* time of the latest applied sales feedback, 0 = none */
    int64_t recycled_at_ms;                /* time of the latest rejection/recycle, 0 = none */
    int64_t profile_ms[LP_PROFILE_FIELDS]; /* event time of each profile field's value */
    /* cap_past[i][k]: events counted in window act[i].cap_window - 1 - k */
    uint16_t cap_past[LP_MAX_ACTIVITIES][LP_CAP_PAST];
    /* Account qualification (lead format 5; each takes space only when set): */
    int64_t account_id_ms; /* event time of profile.account_id, 0 = none */
    int64_t accepted_ms;   /* time of the latest applied `accepted` feedback, 0 = none */
    uint64_t member_seq;   /* member records sent for the lead (stage 1, engine) */
} lp_lead_t;

typedef enum { LP_FACT_QUALIFIED = 0, LP_FACT_STALE = 1, LP_FACT_ERASED = 2 } lp_fact_kind_t;

typedef struct {
    char activity[LP_NAME_MAX + 1];
    double points; /* current (decayed) points */
} lp_contribution_t;

/* An emitted hand-off: LeadQualified or LeadStale. Self-contained (copies what a router needs).
 * LeadErased (LP_FACT_ERASED) uses event_id, lead_id, ts_ms (the erasure request's time),
 * had_state and suppressed_until_ms only, and carries no other personal data. */
typedef struct {
    lp_fact_kind_t kind;
    lp_stale_reason_t stale_reason;     /* LP_FACT_STALE only */
    char event_id[LP_EVENT_ID_HEX + 1]; /* deterministic: lead id, kind, per-lead sequence */
    char lead_id[LP_ID_MAX + 1];
    int64_t ts_ms; /* when it happened (event time or timer time) */
    double score;  /* decayed score at ts_ms */
    char fit_grade;
    uint8_t stage; /* stage after the transition */
    int ntop;
    lp_contribution_t top[LP_TOP_N]; /* largest contributions first (ties: by name) */
    double other;                    /* score = (top[0] + ... + top[ntop-1]) + other, exactly;
                                        0 when top lists every contribution and no floor */
    char model_id[LP_NAME_MAX + 1];
    char model_version[LP_NAME_MAX + 1];
    uint32_t mql_seq;
    int64_t mql_at_ms;
    int64_t sla_deadline_ms;     /* 0 if none */
    int32_t reminder;            /* 0 for the first SLA breach, n for the n-th reminder */
    uint8_t last_reject_reason;  /* echoed when a recycled lead qualifies again */
    lp_profile_update_t profile; /* email, company, region, segment, persona, owner, ... */
    bool had_state;              /* LP_FACT_ERASED: leadpulse held state of the lead */
    int64_t suppressed_until_ms; /* LP_FACT_ERASED: events dated before this are dropped; 0 =
                                    until lifted (leadpulse unsuppress) */
} lp_fact_t;

#define LP_FACTS_MAX 8 /* facts one apply/advance call can emit at most */

typedef struct {
    int n;
    lp_fact_t fact[LP_FACTS_MAX];
} lp_facts_t;

/* Result of applying one event. */
typedef struct {
    lp_outcome_t outcome; /* LP_APPLIED or LP_DEAD_LETTER */
    bool duplicate;       /* ignored: the event id was already applied */
    bool changed;         /* lead state changed (must be written) */
    const char *reason;   /* dead-letter reason (static string) */
} lp_apply_result_t;

/* A fresh lead (suspect, no score, grade from an empty profile). */
void lp_lead_init(lp_lead_t *lead, const lp_rules_t *rules, const char *lead_id);

/* Applies one event to the lead. Fires first the lead's timers due at or before the event time
 * (event-time semantics, so replay and the worker agree), then the event. Appends facts. */
lp_apply_result_t lp_score_apply(lp_lead_t *lead, const lp_event_t *event, const lp_rules_t *rules,
                                 lp_facts_t *facts);

/* Why lp_score_apply would refuse the event (a static string), or NULL if it would apply it. */
const char *lp_score_check(const lp_event_t *event, const lp_rules_t *rules);

/* Fires the lead's timers due at or before now_ms (SLA breach and reminders, cooling, inactivity).
 * Returns true if the lead changed. */
bool lp_score_advance(lp_lead_t *lead, const lp_rules_t *rules, int64_t now_ms, lp_facts_t *facts);

/* Earliest pending timer of the lead, or 0 if none. */
int64_t lp_lead_next_due(const lp_lead_t *lead);

/* The score at time t_ms: max(floor, E decayed to t_ms), E summed in explanation order
 * (t_ms <= ref_ms gives the score at ref_ms). */
double lp_lead_score_at(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t_ms);

/* Fills the explanation (top contributions and remainder) for the lead at time t_ms. */
void lp_lead_explain(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t_ms, lp_fact_t *fact);

/* Compact binary form for the store. lp_lead_encode returns the bytes written, or 0 if buf is too
 * small (LP_LEAD_ENCODED_MAX always suffices). lp_lead_decode validates everything and returns
 * LP_ERR on malformed input. */
#define LP_LEAD_ENCODED_MAX 8192
size_t lp_lead_encode(const lp_lead_t *lead, const lp_rules_t *rules, uint8_t *buf, size_t size);
int lp_lead_decode(lp_lead_t *lead, const lp_rules_t *rules, const uint8_t *buf, size_t len);
/* The same without the lead id in the bytes, for a store that keeps the value under the id (the
 * Redis leads hash, the engine's cache): about 10 bytes less per lead. A keyed value decodes
 * only with its id (lp_lead_decode refuses it); lp_lead_decode_keyed also reads unkeyed values
 * (their own id is kept). */
size_t lp_lead_encode_keyed(const lp_lead_t *lead, const lp_rules_t *rules, uint8_t *buf,
                            size_t size);
int lp_lead_decode_keyed(lp_lead_t *lead, const lp_rules_t *rules, const char *lead_id,
                         const uint8_t *buf, size_t len);

/* Deterministic 128-bit id, as 32 lowercase hex chars + NUL, from the parts joined with '\x1f'. */
void lp_event_id_derive(char out[LP_EVENT_ID_HEX + 1], const char *lead_id, const char *kind,
                        uint32_t seq1, uint32_t seq2);

const char *lp_stage_name(lp_stage_t stage);
int lp_stage_parse(const char *name);
const char *lp_stale_reason_name(lp_stale_reason_t reason);

#endif
