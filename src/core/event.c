#include <string.h>
#include <strings.h>

#include "leadpulse/event.h"

static const char *const feedback_names[LP_FB__COUNT] = {"accepted", "rejected", "recycled", "won",
                                                         "lost"};
static const char *const reject_names[LP_REJ__COUNT] = {
    "none", "no_budget", "not_decision_maker", "bad_data", "competitor", "timing", "other"};

void lp_event_init(lp_event_t *event, lp_event_kind_t kind) {
    memset(event, 0, sizeof(*event));
    event->kind = kind;
    if (kind == LP_EV_ENGAGEMENT) {
        event->u.engagement.seconds_since_send = -1;
    } else if (kind == LP_EV_PROFILE) {
        event->u.profile.company_size = -1;
    }
}

const char *lp_feedback_outcome_name(lp_feedback_outcome_t outcome) {
    return (unsigned)outcome < LP_FB__COUNT ? feedback_names[outcome] : NULL;
}

int lp_feedback_outcome_parse(const char *name) {
    for (int i = 0; i < LP_FB__COUNT; i++) {
        if (strcasecmp(name, feedback_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *lp_reject_reason_name(lp_reject_reason_t reason) {
    return (unsigned)reason < LP_REJ__COUNT ? reject_names[reason] : NULL;
}

int lp_reject_reason_parse(const char *name) {
    for (int i = 0; i < LP_REJ__COUNT; i++) {
        if (strcasecmp(name, reject_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}
