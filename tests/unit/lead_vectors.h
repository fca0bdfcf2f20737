/* Leads built field by field (no scoring), for the stored-format test vectors: the v1 blobs in
 * test_core_codec_v1.c were produced from exactly these leads by the format-1 encoder, so a
 * decoder that reads them back must give these leads again. Do not change a lead here without
 * regenerating the vectors with a format-1 encoder. */
#ifndef LEADPULSE_TEST_LEAD_VECTORS_H
#define LEADPULSE_TEST_LEAD_VECTORS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"
#include "core_fixture.h"

#define LV_COUNT 5

static inline void lv_fill(char *dst, size_t size, char c, size_t n) {
    n = n < size - 1 ? n : size - 1;
    memset(dst, c, n);
    dst[n] = '\0';
}

/* Lead i of the vectors, for the rules of fx_rules(). */
static inline void lv_lead(lp_lead_t *lead, const lp_rules_t *rules, int i) {
    lp_profile_update_t *p = &lead->profile;
    switch (i) {
    case 0: /* fresh */
        lp_lead_init(lead, rules, "lead-000001");
        break;
    case 1: /* typical: profile, two activities, a few seen ids */
        lp_lead_init(lead, rules, "lead-036138");
        lead->score = 41.37109375;
        lead->ref_ms = T0 + 5 * HOUR_MS + 123;
        lead->last_activity_ms = T0 + 5 * HOUR_MS + 123;
        lead->stage = LP_STAGE_WARM;
        lead->fit_points = 45;
        lead->fit_grade = 'B';
        lead->act[2].points = 3.25;
        lead->act[6].points = 38.12109375;
        lead->act[6].cap_window = (T0 + 5 * HOUR_MS) / DAY_MS;
        lead->act[6].cap_count = 2;
        lead->nseen = 3;
        lead->seen_pos = 3;
        lead->seen[0] = 0x0123456789abcdefULL & LP_SEEN_MASK;
        lead->seen[1] = 0xfedcba9876543210ULL & LP_SEEN_MASK;
        lead->seen[2] = 42;
        snprintf(p->email, sizeof(p->email), "dmitri.fischer@openlogic.example");
        snprintf(p->title, sizeof(p->title), "Director of Engineering");
        snprintf(p->seniority, sizeof(p->seniority), "director");
        snprintf(p->industry, sizeof(p->industry), "software");
        snprintf(p->company, sizeof(p->company), "Openlogic Analytics");
        p->company_size = 400;
        snprintf(p->country, sizeof(p->country), "DE");
        snprintf(p->region, sizeof(p->region), "emea");
        snprintf(p->persona, sizeof(p->persona), "it_buyer");
        snprintf(p->segment, sizeof(p->segment), "mid_market");
        snprintf(p->owner, sizeof(p->owner), "ae-04@sales.leadpulse.example");
        break;
    case 2: /* qualified, SLA breached with reminders, rejected once, disqualify reason */
        lp_lead_init(lead, rules, "L-7");
        lead->score = 104.73125;
        lead->ref_ms = T0 + 3 * DAY_MS;
        lead->last_activity_ms = T0 + 2 * DAY_MS;
        lead->sla_deadline_ms = T0 + 5 * DAY_MS;
        lead->cooled_deadline_ms = T0 + 9 * DAY_MS + 17;
        lead->inactive_deadline_ms = T0 + 30 * DAY_MS;
        lead->mql_at_ms = T0 + 3 * DAY_MS - 1;
        lead->fit_points = -2.5;
        lead->mql_seq = 3;
        lead->stale_seq = 7;
        lead->reject_count = 2;
        lead->sla_reminders = 2;
        lead->stage = LP_STAGE_MQL;
        lead->fit_grade = 'D';
        lead->armed = false;
        lead->sla_breached = true;
        lead->reject_reason = LP_REJ_TIMING;
        snprintf(lead->dq_reason, sizeof(lead->dq_reason), "student");
        snprintf(p->email, sizeof(p->email), "ana@example.com");
        snprintf(p->company, sizeof(p->company), "Example GmbH");
        snprintf(p->title, sizeof(p->title), "Graduate Student");
        for (int k = 0; k < rules->nactivities; k++) {
            lead->act[k].points = k - 3.5;
            lead->act[k].cap_window = k * 1000;
            lead->act[k].cap_count = k;
        }
        lead->nseen = 5;
        lead->seen_pos = 1;
        for (int k = 0; k < 5; k++) {
            lead->seen[k] = (0x9e3779b97f4a7c15ULL * (uint64_t)(k + 1)) & LP_SEEN_MASK;
        }
        break;
    case 3: /* the largest values: full ring, longest strings, extreme times and counts */
        lp_lead_init(lead, rules, "");
        lv_fill(lead->lead_id, sizeof(lead->lead_id), 'z', LP_ID_MAX);
        lead->score = 1.7976931348623157e308; /* DBL_MAX (a score is >= the floor) */
        lead->ref_ms = INT64_MIN;
        lead->last_activity_ms = INT64_MAX;
        lead->sla_deadline_ms = INT64_MAX;
        lead->cooled_deadline_ms = 1;
        lead->inactive_deadline_ms = INT64_MIN + 1;
        lead->mql_at_ms = -1;
        lead->fit_points = 1e300;
        lead->mql_seq = UINT32_MAX;
        lead->stale_seq = UINT32_MAX;
        lead->reject_count = UINT32_MAX;
        lead->sla_reminders = INT32_MAX;
        lead->stage = LP_STAGE_CLOSED_LOST;
        lead->fit_grade = 'A';
        lead->reject_reason = LP_REJ__COUNT - 1;
        lv_fill(lead->dq_reason, sizeof(lead->dq_reason), 'q', LP_NAME_MAX);
        lv_fill(p->email, sizeof(p->email), 'e', LP_STR_MAX);
        lv_fill(p->title, sizeof(p->title), '~', LP_STR_MAX);
        lv_fill(p->seniority, sizeof(p->seniority), 's', LP_NAME_MAX);
        lv_fill(p->industry, sizeof(p->industry), 'I', LP_NAME_MAX);
        lv_fill(p->company, sizeof(p->company), '\x7f', LP_STR_MAX);
        p->company_size = INT64_MAX;
        lv_fill(p->country, sizeof(p->country), 'C', LP_NAME_MAX);
        lv_fill(p->region, sizeof(p->region), '\x01', LP_NAME_MAX);
        lv_fill(p->persona, sizeof(p->persona), 'p', LP_NAME_MAX);
        lv_fill(p->segment, sizeof(p->segment), '\xff', LP_NAME_MAX);
        lv_fill(p->owner, sizeof(p->owner), 'o', LP_STR_MAX);
        for (int k = 0; k < rules->nactivities; k++) {
            lead->act[k].points = k % 2 ? 4.9e-324 : -1e308;
            lead->act[k].cap_window = k % 2 ? INT64_MAX : INT64_MIN;
            lead->act[k].cap_count = INT32_MAX;
        }
        lead->nseen = LP_DEDUP_MAX;
        lead->seen_pos = LP_DEDUP_MAX - 1;
        for (int k = 0; k < LP_DEDUP_MAX; k++) {
            lead->seen[k] = (UINT64_MAX - (uint64_t)k) & LP_SEEN_MASK;
        }
        break;
    default: /* non-ASCII profile, zero company size, a recycled lead */
        lp_lead_init(lead, rules, "b\xc3\xa9la-\xe6\x9d\x8e");
        lead->ref_ms = 1;
        lead->stage = LP_STAGE_RECYCLED;
        lead->score = 0.5;
        lead->act[0].points = 0.5;
        snprintf(p->email, sizeof(p->email), "j\xc3\xb6rg.m\xc3\xbcller@beispiel.example");
        snprintf(p->company, sizeof(p->company),
                 "\xe6\x9d\xb1\xe4\xba\xac\xe9\x9b\xbb\xe6\xb0\x97");
        snprintf(p->country, sizeof(p->country), "JP");
        snprintf(p->segment, sizeof(p->segment), "smb");
        p->company_size = 0;
        break;
    }
}

#endif
