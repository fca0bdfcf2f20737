/* leadpulse: account-level qualification, the pure parts (docs/rules.md "accounts"): which
 * account a lead belongs to, the role a member plays in it, and the account hand-offs
 * (AccountQualified / AccountStale, docs/schemas.md "Account hand-offs") as the codec encodes
 * them. The account evaluation (score, MQA, stale) is leadpulse/account_state.h. */
#ifndef LEADPULSE_ACCOUNT_H
#define LEADPULSE_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/common.h"
#include "leadpulse/event.h"
#include "leadpulse/rules.h"

/* Longest account key, without the NUL: "domain:" and the domain of an email of at most
 * LP_STR_MAX bytes ("id:" and an account id of at most LP_ID_MAX bytes is shorter). */
#define LP_ACCOUNT_KEY_MAX (7 + LP_STR_MAX - 1)

/* The account key of a lead, written into buf (size bytes) and returned; NULL when the lead is in
 * no account. `account_id` and `email` may be NULL (unknown).
 * - "id:<account_id>" when account_id, trimmed of white space, is 1..LP_ID_MAX bytes (a longer
 *   one counts as absent);
 * - else "domain:<domain>": the part of the email (trimmed) after its last '@', lower-cased,
 *   trailing dots removed; none when it is empty, holds a space or control character, or is free
 *   mail (rules->accounts.free_mail: the same domain, case-insensitive, or a subdomain of it);
 * - else NULL. Also NULL when accounts are off, or the key does not fit in buf (a buf of
 *   LP_ACCOUNT_KEY_MAX + 1 bytes holds every key of a profile's email). */
const char *lp_account_of(const lp_rules_t *rules, const char *account_id, const char *email,
                          char *buf, size_t size);

/* Whether `domain` (as written: any case, no trailing dot) is free mail under the rules. */
bool lp_account_free_mail(const lp_rules_t *rules, const char *domain);

/* A member's role: that of the first accounts.roles rule its profile matches (the matcher of the
 * fit and disqualify rules), else accounts.default_role; LP_ROLE_USER when accounts are off. */
lp_role_t lp_account_role(const lp_rules_t *rules, const lp_profile_update_t *profile);

/* "decision_maker", "approver", "influencer", "recommender", "user", "blocker"; NULL when out of
 * range. */
const char *lp_role_name(lp_role_t role);

/* ---- Account hand-offs: AccountQualified and AccountStale (schemas/Account*.avsc) ---- */

#define LP_ACCOUNT_FACT_MEMBERS 50 /* members a hand-off lists at most */

typedef enum {
    LP_ACCOUNT_FACT_QUALIFIED = 0, /* AccountQualified: the account became an MQA */
    LP_ACCOUNT_FACT_STALE = 1,     /* AccountStale */
} lp_account_fact_kind_t;

/* AccountStaleReason, in schema symbol order. */
typedef enum {
    LP_ACCOUNT_STALE_SLA_BREACHED = 0,    /* account_sla_breached */
    LP_ACCOUNT_STALE_COMMITTEE_QUIET = 1, /* committee_quiet */
    LP_ACCOUNT_STALE__COUNT
} lp_account_stale_reason_t;

/* One listed member (AccountMember). */
typedef struct {
    char lead_id[LP_ID_MAX + 1];
    lp_role_t role;
    double score;             /* the lead's score at the hand-off's ts */
    double counted;           /* min(score, accounts.member_cap) */
    bool engaged;             /* score >= accounts.engaged_score */
    char fit_grade;           /* 'A'..'D' */
    uint8_t stage;            /* lp_stage_t */
    int64_t last_activity_ms; /* 0 = none (null) */
} lp_account_member_t;

/* An account hand-off. Self-contained, like lp_fact_t: the encoders read nothing else. */
typedef struct {
    lp_account_fact_kind_t kind;
    lp_account_stale_reason_t stale_reason; /* LP_ACCOUNT_FACT_STALE only */
    char event_id[LP_EVENT_ID_HEX + 1];     /* lp_account_event_id() */
    char account[LP_ACCOUNT_KEY_MAX + 1];   /* "id:..." or "domain:..." (lp_account_of) */
    int64_t ts_ms;                          /* evaluation time T, or the timer's deadline */
    double score;                           /* account score S at ts_ms */
    int32_t engaged_members;                /* all engaged members, listed or not */
    int32_t members_total;                  /* tracked members */
    int32_t members_untracked;              /* leads of the account beyond max_members */
    unsigned roles_covered;                 /* mask of 1u << lp_role_t */
    /* Unmet accounts.mqa.required_roles groups, in rules order, each a mask of 1u << lp_role_t
     * (as lp_account_rules_t.required); written as sentences (lp_account_missing_sentence).
     * Always 0 in AccountQualified. */
    int nroles_missing;
    unsigned roles_missing[LP_MAX_ROLE_GROUPS];
    char model_id[LP_NAME_MAX + 1];
    char model_version[LP_NAME_MAX + 1];
    uint32_t qualification;  /* 1 for the account's first qualification, n for the n-th */
    int64_t qualified_at_ms; /* when that qualification happened (AccountQualified: ts_ms) */
    /* min(members_total, LP_ACCOUNT_FACT_MEMBERS) members, in lp_account_member_cmp order */
    int nmembers;
    lp_account_member_t members[LP_ACCOUNT_FACT_MEMBERS];
} lp_account_fact_t;

/* The order of a hand-off's members: engaged before not engaged, then score descending, then
 * lead_id ascending (byte order, strcmp). Negative, 0 or positive as for qsort. */
int lp_account_member_cmp(const lp_account_member_t *a, const lp_account_member_t *b);

/* Sorts members into that order (qsort; n >= 0). */
void lp_account_members_sort(lp_account_member_t *members, int n);

/* Longest sentence of roles_missing, with the NUL: six roles. */
#define LP_ACCOUNT_MISSING_MAX 96

/* The roles_missing sentence of one unmet role group (a non-empty mask of 1u << lp_role_t):
 * "no " + the group's role names in alphabetical order, joined with ", " but for the last two,
 * joined with " or ", + " engaged yet":
 *   {influencer} -> "no influencer engaged yet"
 *   {decision_maker, approver} -> "no approver or decision_maker engaged yet"
 *   {decision_maker, approver, influencer} -> "no approver, decision_maker or influencer engaged
 *   yet"
 * Written into buf (NUL-terminated); returns its length, or 0 when the mask is empty or holds no
 * role, or the sentence does not fit (LP_ACCOUNT_MISSING_MAX always suffices). */
size_t lp_account_missing_sentence(unsigned group, char *buf, size_t size);

/* "account_sla_breached", "committee_quiet"; NULL when out of range. */
const char *lp_account_stale_reason_name(lp_account_stale_reason_t reason);

/* The event id of an account hand-off, 32 lowercase hex characters + NUL: the 128 bits of two
 * lp_hash64 (seeds as for lead hand-off ids, lp_event_id_derive) of the text
 *   <account> 0x1F <kind> 0x1F <qualification> 0x1F <qualified_at_ms>
 * with kind "account-qualified", "account-stale:account_sla_breached" or
 * "account-stale:committee_quiet" and the numbers in decimal; the first hash gives the first 16
 * characters. An account qualifies at most once per qualification number and each stale reason
 * fires at most once per qualification, so the id names one hand-off; the time keeps the ids of an
 * account that was forgotten (it lost its last member) and counts its qualifications from 1 again
 * apart from those of its earlier life. reason is ignored for LP_ACCOUNT_FACT_QUALIFIED. */
void lp_account_event_id(char out[LP_EVENT_ID_HEX + 1], const char *account,
                         lp_account_fact_kind_t kind, lp_account_stale_reason_t reason,
                         uint32_t qualification, int64_t qualified_at_ms);

#endif
