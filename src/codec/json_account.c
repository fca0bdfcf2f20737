/* JSON form of AccountQualified / AccountStale: "kind" and the Avro schema's fields in schema
 * order, written as lp_json_encode_fact writes lead hand-offs (times integer ms, null when
 * absent; the member stage lowercase; the fit grade its capital letter; doubles shortest
 * round-trip, non-finite as null). */
#include "codec/json_internal.h"

#define STR(wr, s) lp_json_str((wr), (s), sizeof(s))

static void wr_member(lp_json_wr_t *wr, const lp_account_member_t *m, bool first) {
    const char grade[2] = {m->fit_grade, '\0'};
    char stage[LP_NAME_MAX + 1];

    lp_json_raw(wr, first ? "{" : ",{");
    lp_json_key(wr, "lead_id", true);
    STR(wr, m->lead_id);
    lp_json_key(wr, "role", false);
    lp_json_str(wr, lp_role_name(m->role), LP_NAME_MAX + 1);
    lp_json_key(wr, "score", false);
    lp_json_dbl(wr, m->score);
    lp_json_key(wr, "counted", false);
    lp_json_dbl(wr, m->counted);
    lp_json_key(wr, "engaged", false);
    lp_json_raw(wr, m->engaged ? "true" : "false");
    lp_json_key(wr, "fit_grade", false);
    STR(wr, grade);
    lp_json_key(wr, "stage", false);
    lp_codec_lower(lp_codec_stage_symbols[m->stage], stage, sizeof(stage));
    STR(wr, stage);
    lp_json_key(wr, "last_activity", false);
    if (m->last_activity_ms == 0) {
        lp_json_raw(wr, "null");
    } else {
        lp_json_i64(wr, m->last_activity_ms);
    }
    lp_json_raw(wr, "}");
}

size_t lp_json_encode_account_fact(const lp_account_fact_t *fact, char *buf, size_t size) {
    lp_json_wr_t wr = {.buf = buf, .size = size};
    bool stale = fact->kind == LP_ACCOUNT_FACT_STALE;
    bool first = true;

    if (lp_codec_account_fact_invalid(fact) != NULL) {
        return 0;
    }
    lp_json_raw(&wr, stale ? "{\"kind\":\"account_stale\"" : "{\"kind\":\"account_qualified\"");
    lp_json_key(&wr, "event_id", false);
    STR(&wr, fact->event_id);
    lp_json_key(&wr, "account", false);
    STR(&wr, fact->account);
    lp_json_key(&wr, "ts", false);
    lp_json_i64(&wr, fact->ts_ms);
    if (stale) {
        lp_json_key(&wr, "reason", false);
        lp_json_str(&wr, lp_account_stale_reason_name(fact->stale_reason), LP_NAME_MAX + 1);
    }
    lp_json_key(&wr, "score", false);
    lp_json_dbl(&wr, fact->score);
    lp_json_key(&wr, "engaged_members", false);
    lp_json_i64(&wr, fact->engaged_members);
    lp_json_key(&wr, "members_total", false);
    lp_json_i64(&wr, fact->members_total);
    lp_json_key(&wr, "members_untracked", false);
    lp_json_i64(&wr, fact->members_untracked);
    lp_json_key(&wr, "roles_covered", false);
    lp_json_raw(&wr, "[");
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (fact->roles_covered & (1u << r)) {
            lp_json_raw(&wr, first ? "" : ",");
            lp_json_str(&wr, lp_role_name((lp_role_t)r), LP_NAME_MAX + 1);
            first = false;
        }
    }
    lp_json_raw(&wr, "]");
    lp_json_key(&wr, "roles_missing", false);
    lp_json_raw(&wr, "[");
    for (int i = 0; i < fact->nroles_missing; i++) {
        char sentence[LP_ACCOUNT_MISSING_MAX];
        lp_account_missing_sentence(fact->roles_missing[i], sentence, sizeof(sentence));
        lp_json_raw(&wr, i > 0 ? "," : "");
        STR(&wr, sentence);
    }
    lp_json_raw(&wr, "]");
    lp_json_key(&wr, "members", false);
    lp_json_raw(&wr, "[");
    for (int i = 0; i < fact->nmembers; i++) {
        wr_member(&wr, &fact->members[i], i == 0);
    }
    lp_json_raw(&wr, "]");
    lp_json_key(&wr, "model_id", false);
    STR(&wr, fact->model_id);
    lp_json_key(&wr, "model_version", false);
    STR(&wr, fact->model_version);
    lp_json_key(&wr, "qualification", false);
    lp_json_i64(&wr, fact->qualification);
    if (stale) {
        lp_json_key(&wr, "qualified_at", false);
        lp_json_i64(&wr, fact->qualified_at_ms);
    }
    lp_json_raw(&wr, "}");
    return lp_json_finish(&wr);
}

static void wr_time(lp_json_wr_t *wr, const char *key, int64_t ms) {
    lp_json_key(wr, key, false);
    if (ms == 0) {
        lp_json_raw(wr, "null");
    } else {
        lp_json_i64(wr, ms);
    }
}

size_t lp_json_encode_account_state(const lp_account_state_t *a, const lp_rules_t *rules, char *buf,
                                    size_t size) {
    lp_json_wr_t wr = {.buf = buf, .size = size};
    lp_account_eval_t ev;
    char stage[LP_NAME_MAX + 1];

    lp_account_evaluate(a, rules, a->t_ms, &ev);
    lp_json_raw(&wr, "{");
    lp_json_key(&wr, "account", true);
    STR(&wr, a->account);
    lp_json_key(&wr, "t", false);
    lp_json_i64(&wr, a->t_ms);
    lp_json_key(&wr, "score", false);
    lp_json_dbl(&wr, ev.score);
    lp_json_key(&wr, "engaged_members", false);
    lp_json_i64(&wr, ev.engaged);
    lp_json_key(&wr, "roles_covered", false);
    lp_json_raw(&wr, "[");
    bool first = true;
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (ev.covered & (1u << r)) {
            if (!first) {
                lp_json_raw(&wr, ",");
            }
            lp_json_str(&wr, lp_role_name((lp_role_t)r), LP_NAME_MAX + 1);
            first = false;
        }
    }
    lp_json_raw(&wr, "]");
    lp_json_key(&wr, "armed", false);
    lp_json_raw(&wr, a->armed ? "true" : "false");
    lp_json_key(&wr, "qualification", false);
    lp_json_i64(&wr, a->qualification);
    wr_time(&wr, "qualified_at", a->qualified_at_ms);
    lp_json_key(&wr, "accepted", false);
    lp_json_raw(&wr, a->accepted ? "true" : "false");
    lp_json_key(&wr, "rejected", false);
    lp_json_raw(&wr, a->rejected ? "true" : "false");
    wr_time(&wr, "sla_deadline", a->sla_deadline_ms);
    wr_time(&wr, "quiet_deadline", a->quiet_deadline_ms);
    lp_json_key(&wr, "members_total", false);
    lp_json_i64(&wr, a->nmembers);
    lp_json_key(&wr, "members_untracked", false);
    lp_json_i64(&wr, lp_account_members_untracked(a));
    lp_json_key(&wr, "members", false);
    lp_json_raw(&wr, "[");
    for (int32_t i = 0; i < a->nmembers; i++) {
        const lp_member_view_t *m = &a->members[i];
        const char grade[2] = {m->fit_grade, '\0'};
        double score = lp_account_member_score(m, rules, a->t_ms);
        lp_json_raw(&wr, i == 0 ? "{" : ",{");
        lp_json_key(&wr, "lead_id", true);
        STR(&wr, m->lead_id);
        lp_json_key(&wr, "seq", false);
        lp_json_i64(&wr, (int64_t)m->seq);
        lp_json_key(&wr, "role", false);
        lp_json_str(&wr, lp_role_name((lp_role_t)m->role), LP_NAME_MAX + 1);
        lp_json_key(&wr, "score", false);
        lp_json_dbl(&wr, score);
        lp_json_key(&wr, "engaged", false);
        lp_json_raw(&wr, score >= rules->accounts.engaged_score ? "true" : "false");
        lp_json_key(&wr, "fit_grade", false);
        STR(&wr, grade);
        lp_json_key(&wr, "stage", false);
        lp_codec_lower(lp_codec_stage_symbols[m->stage < LP_STAGE__COUNT ? m->stage : 0], stage,
                       sizeof(stage));
        STR(&wr, stage);
        lp_json_key(&wr, "ref", false);
        lp_json_i64(&wr, m->ref_ms);
        wr_time(&wr, "last_activity", m->last_activity_ms);
        wr_time(&wr, "accepted", m->accepted_ms);
        wr_time(&wr, "rejected", m->rejected_ms);
        lp_json_raw(&wr, "}");
    }
    lp_json_raw(&wr, "]}");
    return lp_json_finish(&wr);
}
