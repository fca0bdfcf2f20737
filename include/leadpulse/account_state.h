/* leadpulse: the account model of stage 2 (docs/rules.md "accounts"), pure: no I/O, no clock, no
 * globals. Stage 1 sends, for every event applied to a lead that maps to an account, a member
 * record keyed by the account (docs/architecture.md, "Accounts: the second stage"); stage 2
 * keeps one lp_account_state_t per account and applies the records in the order it is given
 * (the order is decided elsewhere). lp_account_apply and lp_account_fire_timers return the
 * account hand-offs (lp_account_fact_t, account.h) to emit.
 *
 * Semantics (docs/rules.md, "Account score and MQA", "Stale accounts", "Members beyond
 * max_members", is the reference; this is a summary):
 * - A record is ignored (nothing changes) when its seq is not greater than the seq of the lead's
 *   member, or of the lead's remembered untracked entry. A lead that leaves is forgotten: its
 *   next record joins it again whatever its seq.
 * - A record of a lead that is not tracked and does not become a member (the account is full)
 *   changes only the untracked figure: no time, no timer, no evaluation.
 * - A record of a member (update, leave) or of a lead that joins: T becomes max(T, event_ms);
 *   the stale timers due at or before the new T fire first, in time order (SLA before quiet at
 *   equal times), with the member table as it was before the record (scores at the deadline);
 *   then the member joins, is updated or leaves; then, unless the account lost its last member
 *   (it is forgotten: empty as lp_account_init leaves it, its arrays kept for reuse; the caller
 *   deletes what it stored), the account is evaluated at T:
 *   an armed account meeting the MQA condition qualifies; a disarmed one with S < mqa.rearm
 *   re-arms (its timers cancelled).
 * - A member's score at time t: max(floor, e * 2^-((max(t, ref) - ref) / h)).
 * - Cost: a record costs O(log members) in an account of LP_ACCOUNT_INDEX_MIN (48) members or
 *   more (src/core/account_index.h: engaged members, roles and fit kept exactly per member as T
 *   moves, the score as one decaying sum with an error bound; the plain O(members) sum only when
 *   the score is within that bound of the threshold), O(members) below; a join or leave
 *   O(members) (the sorted arrays move); a hand-off O(members) (it lists them). */
#ifndef LEADPULSE_ACCOUNT_STATE_H
#define LEADPULSE_ACCOUNT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/account.h"
#include "leadpulse/common.h"
#include "leadpulse/rules.h"

/* Untracked leads an account remembers by id (docs/rules.md, "Members beyond max_members"):
 * members_untracked is exact while the account never had to forget one; from the first one it
 * could not remember until the account is forgotten, it reads this figure ("this many or more"). */
#define LP_ACCOUNT_UNTRACKED_MAX 1000

#define LP_ACCOUNT_APPLY_FACTS 3 /* facts one lp_account_apply emits at most: SLA, quiet, MQA */
#define LP_ACCOUNT_TIMER_FACTS 2 /* facts one lp_account_fire_timers emits at most */

/* lp_account_apply / lp_account_fire_timers: nothing changed (an ignored record, no timer due):
 * the account need not be written. LP_OK: the account changed. */
#define LP_ACCOUNT_UNCHANGED 1

/* What stage 1 sends for one event applied to a lead (its member view after the event). */
typedef struct {
    char account[LP_ACCOUNT_KEY_MAX + 1]; /* "id:..." or "domain:..." (lp_account_of) */
    char lead_id[LP_ID_MAX + 1];          /* non-empty */
    uint64_t seq;                         /* per lead, increasing with the lead's events */
    bool leave;               /* the lead left this account (its profile maps elsewhere or nowhere)
                                 or was erased; the fields below but event_ms are then unused */
    double e;                 /* the lead's E (unclamped) after the event, at ref_ms; finite */
    int64_t ref_ms;           /* the lead's ref after the event (its latest event time); >= 0 */
    lp_role_t role;           /* lp_account_role of its current profile */
    char fit_grade;           /* 'A'..'D' */
    uint8_t stage;            /* lp_stage_t after the event */
    int64_t last_activity_ms; /* the lead's last activity, 0 = none; >= 0 */
    int64_t accepted_ms;      /* time of the lead's latest `accepted` feedback, 0 = none; >= 0 */
    int64_t rejected_ms;      /* time of its latest `rejected`/`recycled` feedback, 0 = none */
    int64_t event_ms;         /* the event's time; >= 0 */
} lp_member_record_t;

/* A tracked member: the latest record applied for it. */
typedef struct {
    char lead_id[LP_ID_MAX + 1];
    uint64_t seq;
    double e;
    int64_t ref_ms;
    int64_t last_activity_ms; /* 0 = none */
    int64_t accepted_ms;      /* 0 = none */
    int64_t rejected_ms;      /* 0 = none */
    uint8_t role;             /* lp_role_t */
    char fit_grade;           /* 'A'..'D' */
    uint8_t stage;            /* lp_stage_t */
} lp_member_view_t;

/* A remembered lead that maps to the account but is not tracked. */
typedef struct {
    char lead_id[LP_ID_MAX + 1];
    uint64_t seq; /* of its latest record */
} lp_untracked_t;

/* One account. Zeroed by lp_account_init (empty: no key, no members); owns its two arrays
 * (lp_account_free). An empty account is never stored. */
typedef struct {
    char account[LP_ACCOUNT_KEY_MAX + 1]; /* "" while empty */
    int64_t t_ms;                         /* T: the latest event_ms applied to a member */
    int32_t nmembers, members_cap;
    lp_member_view_t *members; /* sorted by lead_id (strcmp), at most max_members joined */
    int32_t nuntracked, untracked_cap;
    lp_untracked_t *untracked; /* sorted by lead_id, at most LP_ACCOUNT_UNTRACKED_MAX, none a
                                  member */
    bool untracked_saturated;  /* an untracked lead could not be remembered (sticky) */
    bool armed;                /* may qualify; false while qualified */
    bool accepted;             /* sales accepted the current qualification */
    bool rejected;             /* sales rejected it (no stale timers; qualifies again only once
                                  re-armed) */
    uint32_t qualification;    /* qualifications so far (the current one's number) */
    int64_t qualified_at_ms;   /* the current qualification's time (0 while armed) */
    int64_t sla_deadline_ms;   /* account_sla_breached timer, 0 = none */
    int64_t quiet_deadline_ms; /* committee_quiet timer, 0 = none */
    /* Not stored: the evaluation index of a large account (built when needed, freed with the
     * account), and a switch for tests that compare with the plain evaluation. */
    struct lp_account_index *index;
    bool plain_eval;
} lp_account_state_t;

/* An empty account (no allocation). */
void lp_account_init(lp_account_state_t *a);

/* Frees the arrays and leaves the account empty (lp_account_init). */
void lp_account_free(lp_account_state_t *a);

/* The members_untracked figure: the remembered untracked leads, or LP_ACCOUNT_UNTRACKED_MAX once
 * saturated. */
int32_t lp_account_members_untracked(const lp_account_state_t *a);

/* The member with this lead id, or NULL. */
const lp_member_view_t *lp_account_member(const lp_account_state_t *a, const char *lead_id);

/* A member's score at t: max(floor, e * 2^-((max(t, ref) - ref) / half_life)). */
double lp_account_member_score(const lp_member_view_t *m, const lp_rules_t *rules, int64_t t);

/* The account at time t as a hand-off would describe it: its score S, engaged members, roles
 * covered (1u << lp_role_t) and the best fit grade of an engaged member (0 = none); the plain
 * evaluation (every member). For tools (`leadpulse inspect --account`). */
typedef struct {
    double score;
    int32_t engaged;
    unsigned covered;
    char best_engaged;
} lp_account_eval_t;
void lp_account_evaluate(const lp_account_state_t *a, const lp_rules_t *rules, int64_t t,
                         lp_account_eval_t *out);

/* Applies one member record (see the top of this file). Facts go to facts[0..*nfacts), in the
 * order they happened. Returns LP_OK (the account changed), LP_ACCOUNT_UNCHANGED (the record was
 * ignored, or changed nothing), or LP_ERR with the account untouched and *nfacts 0: a NULL
 * argument, accounts off, rules max_members out of 1..LP_ACCOUNT_MEMBERS_MAX, max_facts below
 * LP_ACCOUNT_APPLY_FACTS, an invalid record (key not "id:"/"domain:", empty lead id, role, grade
 * or stage out of range, e not finite, a negative time), a record of another account than a
 * non-empty one's, or no memory. */
int lp_account_apply(lp_account_state_t *a, const lp_rules_t *rules, const lp_member_record_t *r,
                     lp_account_fact_t *facts, size_t max_facts, size_t *nfacts);

/* Fires the timers due at or before now_ms (the worker's clock), in time order, while there is
 * room in facts (those that find none stay due). T does not move and nothing is evaluated.
 * Returns LP_OK (something fired), LP_ACCOUNT_UNCHANGED, or LP_ERR (a NULL argument, accounts
 * off). */
int lp_account_fire_timers(lp_account_state_t *a, const lp_rules_t *rules, int64_t now_ms,
                           lp_account_fact_t *facts, size_t max_facts, size_t *nfacts);

/* The earliest pending timer, 0 if none. */
int64_t lp_account_next_deadline(const lp_account_state_t *a);

/* ---- Stored form (versioned, compact; src/core/account_state_codec.c describes it) ---- */

/* Bytes lp_account_encode needs at most for this account. */
size_t lp_account_encode_bound(const lp_account_state_t *a);

/* Writes the account into buf; returns the bytes written, or 0 when buf is too small or the
 * account is empty (an empty account is forgotten, never stored). Canonical: equal accounts
 * give equal bytes. */
size_t lp_account_encode(const lp_account_state_t *a, uint8_t *buf, size_t size);

/* Reads an account written by lp_account_encode into *a (initialised: lp_account_init or an
 * account in use, whose arrays are replaced). Trusts nothing: every length, count, enum, order
 * and invariant is checked, and trailing bytes are an error. Returns LP_OK, or LP_ERR with *a
 * untouched. */
int lp_account_decode(lp_account_state_t *a, const uint8_t *buf, size_t len);

#endif
