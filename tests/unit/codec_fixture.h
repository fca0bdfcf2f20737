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
            fix_fill(p->account_id, LP_ID_MAX, 'a');
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

/* Account hand-offs. Variant 0: no member at all (members_total 0, nothing covered). Variant 1:
 * the limits: 50 members listed of 10000, strings at their length limits (multi-byte UTF-8,
 * quotes, backslashes, control characters), the largest qualification, an AccountStale with
 * three unmet role groups, null and present last_activity. Variant 2: a small realistic account
 * (three members, one of them not engaged). Members are in hand-off order. */
static inline void fix_account_fact(lp_account_fact_t *f, lp_account_fact_kind_t kind,
                                    int variant) {
    static const lp_stage_t stages[] = {LP_STAGE_MQL, LP_STAGE_WARM, LP_STAGE_SQL,
                                        LP_STAGE_CLOSED_LOST, LP_STAGE_SUSPECT};

    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->stale_reason = kind == LP_ACCOUNT_FACT_STALE && variant != 1
                          ? LP_ACCOUNT_STALE_SLA_BREACHED
                          : LP_ACCOUNT_STALE_COMMITTEE_QUIET;
    memcpy(f->event_id, "fedcba9876543210fedcba987654321a", LP_EVENT_ID_HEX + 1);
    f->event_id[LP_EVENT_ID_HEX - 1] = (char)('0' + variant);
    snprintf(f->account, sizeof(f->account), "domain:acme-%d.example", variant);
    f->ts_ms = 1795600800000LL + variant;
    f->qualified_at_ms = kind == LP_ACCOUNT_FACT_STALE ? f->ts_ms - 7 * 86400000LL : f->ts_ms;
    snprintf(f->model_id, sizeof(f->model_id), "default");
    snprintf(f->model_version, sizeof(f->model_version), "2026-11-01.3");
    f->qualification = 1;
    if (variant == 0) {
        return;
    }
    if (variant == 2) {
        f->score = 161.5;
        f->members_total = 3;
        f->engaged_members = 2;
        f->roles_covered = (1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_INFLUENCER);
        f->qualification = 2;
        if (kind == LP_ACCOUNT_FACT_STALE) {
            f->nroles_missing = 1;
            f->roles_missing[0] = (1u << LP_ROLE_APPROVER) | (1u << LP_ROLE_DECISION_MAKER);
            f->roles_covered = 1u << LP_ROLE_INFLUENCER;
        }
        f->nmembers = 3;
        snprintf(f->members[0].lead_id, LP_ID_MAX + 1, "L-7");
        f->members[0].role = LP_ROLE_DECISION_MAKER;
        f->members[0].score = 104.73125;
        f->members[0].counted = 60;
        f->members[0].engaged = true;
        f->members[0].fit_grade = 'A';
        f->members[0].stage = LP_STAGE_MQL;
        f->members[0].last_activity_ms = 1795600800000LL;
        snprintf(f->members[1].lead_id, LP_ID_MAX + 1, "L-9");
        f->members[1].role = LP_ROLE_INFLUENCER;
        f->members[1].score = 41.5;
        f->members[1].counted = 41.5;
        f->members[1].engaged = true;
        f->members[1].fit_grade = 'B';
        f->members[1].stage = LP_STAGE_WARM;
        f->members[1].last_activity_ms = 1795590000000LL;
        snprintf(f->members[2].lead_id, LP_ID_MAX + 1, "L-12");
        f->members[2].role = LP_ROLE_USER;
        f->members[2].score = 0;
        f->members[2].counted = 0;
        f->members[2].fit_grade = 'D';
        f->members[2].stage = LP_STAGE_SUSPECT;
        return;
    }
    fix_fill(f->account, LP_ACCOUNT_KEY_MAX, 'd');
    memcpy(f->account, "domain:caf\xc3\xa9.", 13);
    fix_fill(f->model_id, LP_NAME_MAX, 'm');
    fix_fill(f->model_version, LP_NAME_MAX, 'v');
    f->score = 1234.5678901234567;
    f->members_total = 10000;
    f->engaged_members = 37;
    f->members_untracked = 123;
    f->qualification = 2147483647u;
    f->roles_covered = (1u << LP_ROLE__COUNT) - 1;
    if (kind == LP_ACCOUNT_FACT_STALE) {
        f->roles_covered = (1u << LP_ROLE_USER) | (1u << LP_ROLE_BLOCKER);
        f->nroles_missing = 3;
        f->roles_missing[0] = (1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_APPROVER);
        f->roles_missing[1] = 1u << LP_ROLE_INFLUENCER;
        f->roles_missing[2] = (1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_APPROVER) |
                              (1u << LP_ROLE_INFLUENCER) | (1u << LP_ROLE_RECOMMENDER);
    }
    f->nmembers = LP_ACCOUNT_FACT_MEMBERS;
    for (int i = 0; i < LP_ACCOUNT_FACT_MEMBERS; i++) {
        lp_account_member_t *m = &f->members[i];
        snprintf(m->lead_id, sizeof(m->lead_id), "lead-\xc3\xa9-%02d", i);
        m->role = (lp_role_t)(i % LP_ROLE__COUNT);
        m->engaged = i < 37;
        m->score = (m->engaged ? 500.0 : 9.75) - i * 0.125;
        m->counted = m->score < 60 ? m->score : 60;
        m->fit_grade = (char)('A' + i % 4);
        m->stage = (uint8_t)stages[i % 5];
        m->last_activity_ms = i % 2 == 0 ? 1795600000000LL - i : 0;
    }
    fix_fill(f->members[1].lead_id, LP_ID_MAX, 'x');
    memcpy(f->members[1].lead_id, "\"q\"\\\n\x01\xf0\x9f\x98\x80", 10);
    f->members[49].score = -3.5; /* a negative score counts as itself */
    f->members[49].counted = -3.5;
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
