/* leadpulse: the scoring model ("rules"), loaded from a versioned YAML file (config/rules.yaml). */
#ifndef LEADPULSE_RULES_H
#define LEADPULSE_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/common.h"

#define LP_MAX_CONDITIONS 8 /* conditional point overrides per activity */
#define LP_MAX_FIT_RULES 32
#define LP_MAX_DQ_RULES 16
#define LP_MAX_MATCH_VALUES 16 /* values in one `in:` / `contains:` list */

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

typedef struct {
    lp_field_t field;
    lp_match_op_t op;
    int nvalues;
    char values[LP_MAX_MATCH_VALUES][LP_STR_MAX + 1];
    int64_t min, max;             /* for LP_MATCH_RANGE; max = INT64_MAX when open */
    double points;                /* fit rules: points added when matched */
    char reason[LP_NAME_MAX + 1]; /* disqualify rules: reason name, e.g. "competitor" */
} lp_match_rule_t;

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
