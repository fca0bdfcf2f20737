/* AccountQualified and AccountStale: hand-written Avro binary in schema field order (the schema
 * files' fingerprints are checked at load, avro_schema.c). Encoding only: leadpulse reads no
 * account hand-off. */
#include <string.h>

#include "codec/avro_internal.h"

#define WR_STR(wr, s) lp_avro_wr_string((wr), (s), sizeof(s))

/* Why the account hand-off cannot be encoded, or NULL. Shared with the JSON encoder: both refuse
 * the same facts. */
const char *lp_codec_account_fact_invalid(const lp_account_fact_t *fact) {
    const unsigned all_roles = (1u << LP_ROLE__COUNT) - 1;
    int32_t listed;

    if (fact->kind != LP_ACCOUNT_FACT_QUALIFIED && fact->kind != LP_ACCOUNT_FACT_STALE) {
        return "unknown account fact kind";
    }
    if (fact->kind == LP_ACCOUNT_FACT_STALE &&
        (unsigned)fact->stale_reason >= LP_ACCOUNT_STALE__COUNT) {
        return "stale reason out of range";
    }
    if (fact->event_id[0] == '\0') {
        return "event_id is empty";
    }
    if (strncmp(fact->account, "id:", 3) != 0 && strncmp(fact->account, "domain:", 7) != 0) {
        return "account is not an account key (id:... or domain:...)";
    }
    if (fact->members_total < 0 || fact->members_untracked < 0 || fact->engaged_members < 0) {
        return "a member count is negative";
    }
    if (fact->engaged_members > fact->members_total) {
        return "engaged_members exceeds members_total";
    }
    listed = fact->members_total < LP_ACCOUNT_FACT_MEMBERS ? fact->members_total
                                                           : LP_ACCOUNT_FACT_MEMBERS;
    if (fact->nmembers != listed) {
        return "nmembers is not min(members_total, 50)";
    }
    if (fact->qualification < 1 || fact->qualification > INT32_MAX) {
        return "qualification is not 1..2147483647";
    }
    if ((fact->roles_covered & ~all_roles) != 0) {
        return "roles_covered holds an unknown role";
    }
    if (fact->nroles_missing < 0 || fact->nroles_missing > LP_MAX_ROLE_GROUPS) {
        return "nroles_missing out of range";
    }
    if (fact->kind == LP_ACCOUNT_FACT_QUALIFIED && fact->nroles_missing != 0) {
        return "roles_missing in an AccountQualified (an MQA covers every required group)";
    }
    for (int i = 0; i < fact->nroles_missing; i++) {
        if (fact->roles_missing[i] == 0 || (fact->roles_missing[i] & ~all_roles) != 0) {
            return "a roles_missing group is empty or holds an unknown role";
        }
    }
    for (int i = 0; i < fact->nmembers; i++) {
        const lp_account_member_t *m = &fact->members[i];
        if (m->lead_id[0] == '\0') {
            return "a member's lead_id is empty";
        }
        if ((unsigned)m->role >= LP_ROLE__COUNT) {
            return "a member's role is out of range";
        }
        if (m->fit_grade < 'A' || m->fit_grade > 'D') {
            return "a member's fit_grade is not A-D";
        }
        if (m->stage >= LP_STAGE__COUNT) {
            return "a member's stage is out of range";
        }
        if (m->last_activity_ms < 0) {
            return "a member's last_activity is negative";
        }
    }
    return NULL;
}

static void wr_member(lp_avro_wr_t *wr, const lp_account_member_t *m) {
    const char grade[2] = {m->fit_grade, '\0'};

    WR_STR(wr, m->lead_id);
    lp_avro_wr_long(wr, m->role);
    lp_avro_wr_double(wr, m->score);
    lp_avro_wr_double(wr, m->counted);
    lp_avro_wr_bool(wr, m->engaged);
    WR_STR(wr, grade);
    lp_avro_wr_string(wr, lp_codec_stage_symbols[m->stage], LP_NAME_MAX + 1);
    if (m->last_activity_ms == 0) {
        lp_avro_wr_long(wr, 0);
    } else {
        lp_avro_wr_long(wr, 1);
        lp_avro_wr_long(wr, m->last_activity_ms);
    }
}

size_t lp_avro_encode_account_fact(lp_avro_codec_t *codec, const lp_account_fact_t *fact,
                                   lp_framing_t framing, uint8_t *buf, size_t size) {
    lp_avro_wr_t wr = {.buf = buf, .size = size};
    int kind =
        fact->kind == LP_ACCOUNT_FACT_STALE ? LP_SCHEMA_ACCOUNT_STALE : LP_SCHEMA_ACCOUNT_QUALIFIED;
    const char *why = lp_codec_account_fact_invalid(fact);
    int ncovered = 0;

    if (why != NULL) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr), "account fact %s: %s", fact->event_id,
                     why);
        return 0;
    }
    if (codec->canonical[kind] == NULL) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr),
                     "%s.avsc was not in the schema folder: account hand-offs cannot be encoded",
                     lp_codec_schema_names[kind]);
        return 0;
    }
    if (lp_avro_wr_frame(codec, &wr, framing, kind) != LP_OK) {
        return 0;
    }
    WR_STR(&wr, fact->event_id);
    WR_STR(&wr, fact->account);
    lp_avro_wr_long(&wr, fact->ts_ms);
    if (kind == LP_SCHEMA_ACCOUNT_STALE) {
        lp_avro_wr_long(&wr, fact->stale_reason);
    }
    lp_avro_wr_double(&wr, fact->score);
    lp_avro_wr_long(&wr, fact->engaged_members);
    lp_avro_wr_long(&wr, fact->members_total);
    lp_avro_wr_long(&wr, fact->members_untracked);
    /* Arrays: one block with a positive count (none when empty), then the 0 that ends them. */
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        ncovered += (fact->roles_covered >> r) & 1u;
    }
    if (ncovered > 0) {
        lp_avro_wr_long(&wr, ncovered);
        for (int r = 0; r < LP_ROLE__COUNT; r++) {
            if (fact->roles_covered & (1u << r)) {
                lp_avro_wr_long(&wr, r);
            }
        }
    }
    lp_avro_wr_long(&wr, 0);
    if (fact->nroles_missing > 0) {
        lp_avro_wr_long(&wr, fact->nroles_missing);
        for (int i = 0; i < fact->nroles_missing; i++) {
            char sentence[LP_ACCOUNT_MISSING_MAX];
            lp_account_missing_sentence(fact->roles_missing[i], sentence, sizeof(sentence));
            WR_STR(&wr, sentence);
        }
    }
    lp_avro_wr_long(&wr, 0);
    if (fact->nmembers > 0) {
        lp_avro_wr_long(&wr, fact->nmembers);
        for (int i = 0; i < fact->nmembers; i++) {
            wr_member(&wr, &fact->members[i]);
        }
    }
    lp_avro_wr_long(&wr, 0);
    WR_STR(&wr, fact->model_id);
    WR_STR(&wr, fact->model_version);
    lp_avro_wr_long(&wr, (int64_t)fact->qualification);
    if (kind == LP_SCHEMA_ACCOUNT_STALE) {
        lp_avro_wr_long(&wr, fact->qualified_at_ms);
    }
    return lp_avro_wr_finish(codec, &wr);
}
