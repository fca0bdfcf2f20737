/* leadpulse: decoded input events. Plain structs with fixed buffers: no allocation per event. */
#ifndef LEADPULSE_EVENT_H
#define LEADPULSE_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/common.h"

typedef enum {
    LP_EV_ENGAGEMENT = 0, /* EngagementEvent */
    LP_EV_PROFILE = 1,    /* LeadProfileUpdated */
    LP_EV_FEEDBACK = 2,   /* SalesFeedback */
} lp_event_kind_t;
/* One input topic per kind (arrays of inputs are indexed by lp_event_kind_t), co-partitioned and
 * keyed by lead id. A #define, not an enumerator, so that switches on the kind stay exhaustive. */
#define LP_EV__COUNT 3
_Static_assert(LP_EV_FEEDBACK + 1 == LP_EV__COUNT, "LP_EV__COUNT counts lp_event_kind_t");

typedef enum {
    LP_FB_ACCEPTED = 0,
    LP_FB_REJECTED = 1,
    LP_FB_RECYCLED = 2,
    LP_FB_WON = 3,
    LP_FB_LOST = 4,
    LP_FB__COUNT
} lp_feedback_outcome_t;

typedef enum {
    LP_REJ_NONE = 0,
    LP_REJ_NO_BUDGET = 1,
    LP_REJ_NOT_DECISION_MAKER = 2,
    LP_REJ_BAD_DATA = 3,
    LP_REJ_COMPETITOR = 4,
    LP_REJ_TIMING = 5,
    LP_REJ_OTHER = 6,
    LP_REJ__COUNT
} lp_reject_reason_t;

/* Engagement: an activity of a lead. `type` is the activity name; the rules file maps it to points
 * (unknown types are dead-lettered by the scorer). */
typedef struct {
    char type[LP_NAME_MAX + 1];
    char url[LP_URL_MAX + 1];        /* "" if none */
    char asset_id[LP_ID_MAX + 1];    /* "" if none */
    char campaign_id[LP_ID_MAX + 1]; /* "" if none */
    bool machine;                    /* producer flagged this as machine activity */
    int64_t seconds_since_send; /* for email events: seconds since the email was sent, -1 unknown */
} lp_engagement_t;

/* Profile update: each field is optional; "" / -1 means "not in this update, keep the old value".
 */
typedef struct {
    char email[LP_STR_MAX + 1];
    char title[LP_STR_MAX + 1];
    char seniority[LP_NAME_MAX + 1];
    char industry[LP_NAME_MAX + 1];
    char company[LP_STR_MAX + 1];
    int64_t company_size; /* employees, -1 unknown */
    char country[LP_NAME_MAX + 1];
    char region[LP_NAME_MAX + 1];
    char persona[LP_NAME_MAX + 1];
    char segment[LP_NAME_MAX + 1];
    char owner[LP_STR_MAX + 1];
    /* The account (company) id in the CRM; groups leads into accounts (docs/rules.md,
     * accounts). Kept with its own time (lp_lead_t.account_id_ms), outside profile_ms. */
    char account_id[LP_ID_MAX + 1];
} lp_profile_update_t;

typedef struct {
    lp_feedback_outcome_t outcome;
    lp_reject_reason_t reason;  /* for rejected/recycled; LP_REJ_NONE otherwise */
    char owner[LP_STR_MAX + 1]; /* sales owner, "" if not given */
} lp_feedback_t;

/* What a record asks of its lead: scoring (every event), or, for a tombstone on the profiles
 * topic (a null value keyed by lead id), erasure of the person, or the end of their suppression
 * (docs/privacy.md). */
typedef enum {
    LP_OP_APPLY = 0,      /* an event: score it */
    LP_OP_ERASE = 1,      /* erase the lead, suppress its later events, emit LeadErased */
    LP_OP_UNSUPPRESS = 2, /* lift the suppression of an erased lead (it opted in again) */
    LP_OP_INVALID = 3,    /* a tombstone asking for something else: dead-lettered */
} lp_event_op_t;

typedef struct {
    lp_event_kind_t kind;
    lp_event_op_t op;             /* LP_OP_APPLY but for erasure requests (kind profile) */
    char event_id[LP_ID_MAX + 1]; /* producer's id, used for de-duplication; never empty */
    char lead_id[LP_ID_MAX + 1];  /* never empty */
    int64_t ts_ms;                /* event time, ms since the Unix epoch (UTC) */
    union {
        lp_engagement_t engagement;
        lp_profile_update_t profile;
        lp_feedback_t feedback;
    } u;
} lp_event_t;

/* Resets an event to "all fields absent" of the given kind. */
void lp_event_init(lp_event_t *event, lp_event_kind_t kind);

/* Names <-> enums. Return NULL / -1 for unknown values. */
const char *lp_feedback_outcome_name(lp_feedback_outcome_t outcome);
int lp_feedback_outcome_parse(const char *name);
const char *lp_reject_reason_name(lp_reject_reason_t reason);
int lp_reject_reason_parse(const char *name);

#endif
