/* leadpulse: the scoring model ("rules"), loaded from a versioned YAML file (config/rules.yaml). */
#ifndef LEADPULSE_RULES_H
#define LEADPULSE_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/common.h"

#define LP_MAX_CONDITIONS 8 /* conditional point overrides per activity */
#define LP_MAX_FIT_RULES 32
#define LP_MAX_DQ_RULES 16
#define LP_MAX_MATCH_VALUES 16        /* values in one `in:` / `contains:` list */
#define LP_MAX_ROLE_RULES 16          /* accounts.roles */
#define LP_MAX_FREE_MAIL 128          /* accounts.free_mail_domains */
#define LP_MAX_ROLE_GROUPS 6          /* accounts.mqa.required_roles groups (of 1..6 roles) */
#define LP_ACCOUNT_MEMBERS_MAX 100000 /* accounts.max_members */

/* A conditional override of an activity's points: the first matching condition wins. */
typedef struct {
    char url_prefix[LP_URL_MAX + 1]; /* "" = any */
    char asset_id[LP_ID_MAX + 1];    /* "" = any */
    char campaign_id[LP_ID_MAX + 1]; /* "" = any */
    double points;
} lp_condition_t;

typedef struct {
    char name[LP_NAME_MAX + 1]; /* activity type, e.g. "email_click" */
    double points;              /* default points; may be negative */
    int ncond;
    lp_condition_t cond[LP_MAX_CONDITIONS];
    int cap_count;         /* at most this many counted per window; 0 = no cap */
    int64_t cap_window_ms; /* tumbling window aligned to the epoch */
    bool is_engagement;    /* counts as activity for the inactivity clock (default:
                              true when points > 0) */
} lp_activity_rule_t;

/* Profile fields a fit or disqualify rule can look at. */
typedef enum {
    LP_FIELD_EMAIL = 0,
    LP_FIELD_EMAIL_DOMAIN,
    LP_FIELD_TITLE,
    LP_FIELD_SENIORITY,
    LP_FIELD_INDUSTRY,
    LP_FIELD_COMPANY,
    LP_FIELD_COMPANY_SIZE,
    LP_FIELD_COUNTRY,
    LP_FIELD_REGION,
    LP_FIELD_PERSONA,
    LP_FIELD_SEGMENT,
    LP_FIELD__COUNT
} lp_field_t;

typedef enum {
    LP_MATCH_IN = 0,   /* value equals one of values[] (case-insensitive) */
    LP_MATCH_CONTAINS, /* value contains one of values[] (case-insensitive) */
    LP_MATCH_SUFFIX,   /* value ends with one of values[] (case-insensitive) */
    LP_MATCH_RANGE,    /* numeric field within [min, max] (company_size) */
} lp_match_op_t;

/* Buying-committee roles of an account's members (accounts.roles), in the order of the docs. */
typedef enum {
    LP_ROLE_DECISION_MAKER = 0,
    LP_ROLE_APPROVER,
    LP_ROLE_INFLUENCER,
    LP_ROLE_RECOMMENDER,
    LP_ROLE_USER,
    LP_ROLE_BLOCKER,
    LP_ROLE__COUNT
} lp_role_t;

typedef struct {
    lp_field_t field;
    lp_match_op_t op;
    int nvalues;
    char values[LP_MAX_MATCH_VALUES][LP_STR_MAX + 1];
    int64_t min, max;             /* for LP_MATCH_RANGE; max = INT64_MAX when open */
    double points;                /* fit rules: points added when matched */
    char reason[LP_NAME_MAX + 1]; /* disqualify rules: reason name, e.g. "competitor" */
    lp_role_t role;               /* accounts.roles: the role a match gives */
} lp_match_rule_t;

/* The `accounts:` section (docs/rules.md "accounts"): how leads map to accounts, members' roles
 * and when an account qualifies (MQA). Loaded and validated; the account evaluation itself
 * arrives with the stage-2 worker. All zero (enabled false) when the section is absent. */
typedef struct {
    bool enabled; /* the section is present */
    /* email domains that name no company (case-insensitive; a subdomain of one is free mail too) */
    int nfree_mail;
    char free_mail[LP_MAX_FREE_MAIL][LP_STR_MAX + 1];
    int nroles; /* role rules, first match wins; each rule's .role */
    lp_match_rule_t roles[LP_MAX_ROLE_RULES];
    lp_role_t default_role;                /* role of a member no rule matches */
    double member_cap;                     /* a member adds at most this to the account; > 0 */
    double engaged_score;                  /* engaged: member score >= this; >= 0 */
    double role_points[LP_ROLE__COUNT];    /* added once per role an engaged member covers */
    double mqa_score;                      /* MQA threshold; > 0 */
    int mqa_engaged_members;               /* 1..1000, <= max_members */
    int nrequired;                         /* 0..LP_MAX_ROLE_GROUPS */
    unsigned required[LP_MAX_ROLE_GROUPS]; /* each group a mask of 1u << lp_role_t, non-empty */
    char mqa_min_fit;                      /* 'A'..'D', an engaged member this good; 0 = none */
    double mqa_rearm;                      /* re-arm below this; < mqa_score */
    int64_t quiet_after_ms;                /* stale `committee_quiet`; 0 = off */
    int64_t accept_within_ms;              /* stale `account_sla_breached`; 0 = off */
    int max_members;                       /* members tracked per account, 1..100000 */
    int64_t lateness_ms; /* member records ordered by event time up to this late; 0..7 days */
} lp_account_rules_t;

#define LP_ACCOUNT_LATENESS_MAX_MS (7LL * 24 * 3600 * 1000)

typedef enum { LP_RECYCLE_RESET = 0, LP_RECYCLE_KEEP = 1, LP_RECYCLE_SCALE = 2 } lp_recycle_mode_t;

typedef struct {
    char source[256]; /* file the rules came from (for messages) */
    char model_id[LP_NAME_MAX + 1];
    char model_version[LP_NAME_MAX + 1];

    /* engagement score */
    double half_life_ms;   /* exponential decay half-life; > 0 */
    double floor;          /* score never goes below this (default 0) */
    double warm_threshold; /* responder -> warm */
    double mql_threshold;  /* warm -> MQL (with the fit gate) */
    double rearm_level;    /* below this an MQL'd lead may qualify again; < mql */
    char min_fit_grade;    /* 'A'..'D'; 'D' = no gate */

    int nactivities;
    lp_activity_rule_t activities[LP_MAX_ACTIVITIES];

    /* machine activity: scores nothing */
    bool honor_machine_flag;        /* trust the producer's `machine` flag */
    int64_t machine_click_within_s; /* email_open/email_click within N s of send; 0 = off */

    /* fit: points from profile rules, grade from thresholds (A >= grade_a, ...; else D) */
    int nfit;
    lp_match_rule_t fit[LP_MAX_FIT_RULES];
    double grade_a, grade_b, grade_c;

    int ndq;
    lp_match_rule_t dq[LP_MAX_DQ_RULES];

    /* hand-off timers */
    int64_t sla_ms;          /* MQL must be accepted within this; 0 = off */
    int64_t sla_reminder_ms; /* reminders after the first breach; 0 = off */
    int sla_max_reminders;
    int64_t inactivity_ms; /* warm/MQL with no engagement for this -> stale; 0 = off */
    int inactive_stage;    /* lp_stage_t to move an inactive lead to (nurture) */

    /* sales feedback */
    lp_recycle_mode_t recycle_mode;
    double recycle_scale; /* for LP_RECYCLE_SCALE: score *= scale */

    int dedup_window; /* event ids remembered per lead (1..LP_DEDUP_MAX) */

    lp_account_rules_t accounts; /* account-level qualification; accounts.enabled false = off */
} lp_rules_t;

#define LP_DEDUP_MAX 64

/* Loads and validates a rules file. On error returns NULL and writes "file:line: key: message"
 * into errstr. The caller owns the result and frees it with lp_rules_destroy(). */
lp_rules_t *lp_rules_load(const char *path, char *errstr, size_t errstr_size);
/* Same, from a buffer; `name` is used in messages. */
lp_rules_t *lp_rules_load_buffer(const char *name, const char *buf, size_t len, char *errstr,
                                 size_t errstr_size);
void lp_rules_destroy(lp_rules_t *rules);

/* Index of the activity rule named `type`, or -1. */
int lp_rules_activity_index(const lp_rules_t *rules, const char *type);

#endif
