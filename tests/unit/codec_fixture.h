/* Sample events and facts for the codec tests: variant 0 leaves every optional field absent,
 * variant 1 fills every field (multi-byte UTF-8, strings at their length limits). */
#ifndef LP_CODEC_FIXTURE_H
#define LP_CODEC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadpulse/codec.h"

#define FIX_SCHEMA_IDS                                                                             \
    { 101, 102, 103, 201, 202, 203 }

static inline void fix_fill(char *dst, size_t n, char c) {
    memset(dst, c, n);
    dst[n] = '\0';
}

static inline void fix_event(lp_event_t *ev, lp_event_kind_t kind, int variant) {
    lp_event_init(ev, kind);
    snprintf(ev->event_id, sizeof(ev->event_id), "evt-%d-%d", (int)kind, variant);
    snprintf(ev->lead_id, sizeof(ev->lead_id), "lead-\xc3\xa9t\xc3\xa9-%d", variant);
    ev->ts_ms = 1795600800123LL + variant;
    if (kind == LP_EV_ENGAGEMENT) {
        snprintf(ev->u.engagement.type, sizeof(ev->u.engagement.type), "web_visit");
        if (variant == 1) {
            fix_fill(ev->u.engagement.url, LP_URL_MAX, 'u');
            memcpy(ev->u.engagement.url, "/pricing?q=\xe2\x82\xac", 14);
            snprintf(ev->u.engagement.asset_id, sizeof(ev->u.engagement.asset_id), "wp-42");
            fix_fill(ev->u.engagement.campaign_id, LP_ID_MAX, 'c');
            ev->u.engagement.machine = true;
            ev->u.engagement.seconds_since_send = 3;
        }
    } else if (kind == LP_EV_PROFILE) {
        if (variant == 1) {
            lp_profile_update_t *p = &ev->u.profile;
            snprintf(p->email, sizeof(p->email), "ana@example.com");
            fix_fill(p->title, LP_STR_MAX, 't');
            snprintf(p->seniority, sizeof(p->seniority), "vp");
            snprintf(p->industry, sizeof(p->industry), "software");
            snprintf(p->company, sizeof(p->company), "Caf\xc3\xa9 \xf0\x9f\x98\x80 GmbH");
            p->company_size = 5000000000LL;
            snprintf(p->country, sizeof(p->country), "DE");
            snprintf(p->region, sizeof(p->region), "emea");
            snprintf(p->persona, sizeof(p->persona), "it_buyer");
            fix_fill(p->segment, LP_NAME_MAX, 's');
            snprintf(p->owner, sizeof(p->owner), "rep@example.com");
        }
    } else {
        ev->u.feedback.outcome = variant == 1 ? LP_FB_REJECTED : LP_FB_ACCEPTED;
        ev->u.feedback.reason = variant == 1 ? LP_REJ_NOT_DECISION_MAKER : LP_REJ_NONE;
        if (variant == 1) {
            snprintf(ev->u.feedback.owner, sizeof(ev->u.feedback.owner), "rep-7");
        }
    }
}

static inline void fix_fact(lp_fact_t *f, lp_fact_kind_t kind, int variant) {
    memset(f, 0, sizeof(*f));
    f->profile.company_size = -1;
    f->kind = kind;
    memcpy(f->event_id, "0123456789abcdef0123456789abcde0", LP_EVENT_ID_HEX + 1);
    f->event_id[LP_EVENT_ID_HEX - 1] = (char)('0' + variant);
    snprintf(f->lead_id, sizeof(f->lead_id), "lead-%d", variant);
    f->ts_ms = 1795600800000LL + variant;
    if (kind == LP_FACT_ERASED) {
        /* Only what LeadErased carries: variant 0 held no state and is suppressed until lifted,
         * variant 1 held state and is suppressed for two years (a lead id at its length limit). */
        if (variant == 1) {
            fix_fill(f->lead_id, LP_ID_MAX, 'l');
            memcpy(f->lead_id, "lead-\xc3\xa9", 7);
            f->had_state = true;
            f->suppressed_until_ms = f->ts_ms + 730LL * 86400000LL;
        }
        return;
    }
    f->score = variant == 1 ? 87.25000000000001 : 0.1;
    f->fit_grade = variant == 1 ? 'D' : 'A';
    f->stage = variant == 1 ? LP_STAGE_CLOSED_LOST : LP_STAGE_MQL;
    snprintf(f->model_id, sizeof(f->model_id), "default");
    snprintf(f->model_version, sizeof(f->model_version), "2026-11-01.3");
    f->mql_seq = variant == 1 ? 2147483647u : 1;
    if (variant == 1) {
        f->ntop = LP_TOP_N;
        for (int i = 0; i < LP_TOP_N; i++) {
            snprintf(f->top[i].activity, sizeof(f->top[i].activity), "activity_%d", i);
            f->top[i].points = 40.0 / (i + 3) - (i == 4 ? 30.0 : 0.0);
        }
        f->other = -1e-300;
        f->sla_deadline_ms = f->ts_ms + 86400000LL;
        snprintf(f->profile.email, sizeof(f->profile.email), "ana@example.com");
        snprintf(f->profile.company, sizeof(f->profile.company), "Caf\xc3\xa9 \"Quoted\"\\");
        snprintf(f->profile.region, sizeof(f->profile.region), "emea");
        snprintf(f->profile.country, sizeof(f->profile.country), "DE");
        snprintf(f->profile.segment, sizeof(f->profile.segment), "enterprise");
        snprintf(f->profile.persona, sizeof(f->profile.persona), "it_buyer");
        fix_fill(f->profile.title, LP_STR_MAX, 'T');
        snprintf(f->profile.owner, sizeof(f->profile.owner), "rep\n7");
    }
    if (kind == LP_FACT_QUALIFIED) {
        f->mql_at_ms = f->ts_ms;
        f->last_reject_reason = variant == 1 ? LP_REJ_TIMING : LP_REJ_NONE;
    } else {
        f->stale_reason = variant == 1 ? LP_STALE_COOLED : LP_STALE_SLA_BREACHED;
        f->reminder = variant == 1 ? 3 : 0;
        f->mql_at_ms = variant == 1 ? f->ts_ms - 5000 : 0;
    }
}

/* Whole-struct comparison (both sides start from zeroed memory); prints both on mismatch. */
static inline int fix_event_equal(const lp_event_t *a, const lp_event_t *b) {
    char ja[4096], jb[4096];

    if (memcmp(a, b, sizeof(*a)) == 0) {
        return 1;
    }
    lp_json_encode_event(a, ja, sizeof(ja));
    lp_json_encode_event(b, jb, sizeof(jb));
    fprintf(stderr, "events differ:\n  %s\n  %s\n", ja, jb);
    return 0;
}

static inline int fix_fact_equal(const lp_fact_t *a, const lp_fact_t *b) {
    char ja[4096], jb[4096];

    if (memcmp(a, b, sizeof(*a)) == 0) {
        return 1;
    }
    lp_json_encode_fact(a, ja, sizeof(ja));
    lp_json_encode_fact(b, jb, sizeof(jb));
    fprintf(stderr, "facts differ:\n  %s\n  %s\n", ja, jb);
    return 0;
}

static inline lp_avro_codec_t *fix_codec(void) {
    const int32_t ids[LP_SCHEMA__COUNT] = FIX_SCHEMA_IDS;
    char err[LP_ERRSTR] = "";
    lp_avro_codec_t *codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));

    if (codec == NULL) {
        fprintf(stderr, "lp_avro_codec_new: %s\n", err);
        abort();
    }
    return codec;
}

#endif
