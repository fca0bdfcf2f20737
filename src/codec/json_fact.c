/* JSON form of LeadQualified / LeadStale / LeadErased: the Avro schema's fields in schema order
 * plus "kind". Times are integer ms (null when absent), enums lowercase, the fit grade a capital
 * letter. */
#include <string.h>

#include "codec/json_internal.h"

static const char *const routing_keys[] = {"email",   "company", "region", "country",
                                           "segment", "persona", "title",  "owner"};
#define NROUTING 8

static char *routing_field(lp_profile_update_t *p, int i, size_t *size) {
    char *const dst[NROUTING] = {p->email,   p->company, p->region, p->country,
                                 p->segment, p->persona, p->title,  p->owner};
    const size_t sizes[NROUTING] = {sizeof(p->email),   sizeof(p->company), sizeof(p->region),
                                    sizeof(p->country), sizeof(p->segment), sizeof(p->persona),
                                    sizeof(p->title),   sizeof(p->owner)};
    *size = sizes[i];
    return dst[i];
}

static void wr_symbol(lp_json_wr_t *wr, const char *symbol) {
    char lower[LP_NAME_MAX + 1];

    lp_codec_lower(symbol, lower, sizeof(lower));
    lp_json_str(wr, lower, sizeof(lower));
}

static void wr_opt_ts(lp_json_wr_t *wr, int64_t ts_ms) {
    if (ts_ms == 0) {
        lp_json_raw(wr, "null");
    } else {
        lp_json_i64(wr, ts_ms);
    }
}

/* LeadErased: the ids, the time and the suppression; no other personal data. */
static size_t encode_erased(const lp_fact_t *fact, char *buf, size_t size) {
    lp_json_wr_t wr = {.buf = buf, .size = size};

    lp_json_raw(&wr, "{\"kind\":\"erased\"");
    lp_json_key(&wr, "event_id", false);
    lp_json_str(&wr, fact->event_id, sizeof(fact->event_id));
    lp_json_key(&wr, "lead_id", false);
    lp_json_str(&wr, fact->lead_id, sizeof(fact->lead_id));
    lp_json_key(&wr, "ts", false);
    lp_json_i64(&wr, fact->ts_ms);
    lp_json_key(&wr, "had_state", false);
    lp_json_raw(&wr, fact->had_state ? "true" : "false");
    lp_json_key(&wr, "suppressed_until", false);
    wr_opt_ts(&wr, fact->suppressed_until_ms);
    lp_json_raw(&wr, "}");
    return lp_json_finish(&wr);
}

size_t lp_json_encode_fact(const lp_fact_t *fact, char *buf, size_t size) {
    lp_json_wr_t wr = {.buf = buf, .size = size};
    const lp_profile_update_t *p = &fact->profile;
    char grade[2] = {fact->fit_grade, '\0'};
    bool stale = fact->kind == LP_FACT_STALE;

    if (fact->kind == LP_FACT_ERASED) {
        return encode_erased(fact, buf, size);
    }
    if ((fact->kind != LP_FACT_QUALIFIED && !stale) || fact->stage >= LP_STAGE__COUNT ||
        fact->fit_grade < 'A' || fact->fit_grade > 'D' || fact->ntop < 0 || fact->ntop > LP_TOP_N ||
        (stale && (unsigned)fact->stale_reason >= LP_CODEC_STALE_COUNT) ||
        fact->last_reject_reason >= LP_REJ__COUNT) {
        return 0;
    }
    lp_json_raw(&wr, stale ? "{\"kind\":\"stale\"" : "{\"kind\":\"qualified\"");
    lp_json_key(&wr, "event_id", false);
    lp_json_str(&wr, fact->event_id, sizeof(fact->event_id));
    lp_json_key(&wr, "lead_id", false);
    lp_json_str(&wr, fact->lead_id, sizeof(fact->lead_id));
    lp_json_key(&wr, "ts", false);
    lp_json_i64(&wr, fact->ts_ms);
    if (stale) {
        lp_json_key(&wr, "reason", false);
        wr_symbol(&wr, lp_codec_stale_symbols[fact->stale_reason]);
        lp_json_key(&wr, "reminder", false);
        lp_json_i64(&wr, fact->reminder);
    }
    lp_json_key(&wr, "score", false);
    lp_json_dbl(&wr, fact->score);
    lp_json_key(&wr, "fit_grade", false);
    lp_json_str(&wr, grade, sizeof(grade));
    lp_json_key(&wr, "stage", false);
    wr_symbol(&wr, lp_codec_stage_symbols[fact->stage]);
    lp_json_key(&wr, "reasons", false);
    lp_json_raw(&wr, "[");
    for (int i = 0; i < fact->ntop; i++) {
        lp_json_raw(&wr, i > 0 ? ",{" : "{");
        lp_json_key(&wr, "activity", true);
        lp_json_str(&wr, fact->top[i].activity, sizeof(fact->top[i].activity));
        lp_json_key(&wr, "points", false);
        lp_json_dbl(&wr, fact->top[i].points);
        lp_json_raw(&wr, "}");
    }
    lp_json_raw(&wr, "]");
    lp_json_key(&wr, "other_points", false);
    lp_json_dbl(&wr, fact->other);
    lp_json_key(&wr, "model_id", false);
    lp_json_str(&wr, fact->model_id, sizeof(fact->model_id));
    lp_json_key(&wr, "model_version", false);
    lp_json_str(&wr, fact->model_version, sizeof(fact->model_version));
    lp_json_key(&wr, "qualification", false);
    lp_json_i64(&wr, fact->mql_seq);
    if (stale) {
        lp_json_key(&wr, "qualified_at", false);
        wr_opt_ts(&wr, fact->mql_at_ms);
    }
    lp_json_key(&wr, "sla_deadline", false);
    wr_opt_ts(&wr, fact->sla_deadline_ms);
    if (!stale) {
        lp_json_key(&wr, "last_reject_reason", false);
        if (fact->last_reject_reason == LP_REJ_NONE) {
            lp_json_raw(&wr, "null");
        } else {
            lp_json_str(&wr, lp_reject_reason_name(fact->last_reject_reason), LP_NAME_MAX + 1);
        }
    }
    for (int i = 0; i < NROUTING; i++) {
        size_t fsize;
        const char *s = routing_field((lp_profile_update_t *)p, i, &fsize);
        lp_json_key(&wr, routing_keys[i], false);
        lp_json_opt_str(&wr, s, fsize);
    }
    lp_json_raw(&wr, "}");
    return lp_json_finish(&wr);
}

/* ---- decoding ---- */

static int rd_symbol(lp_json_rd_t *rd, const char *const *symbols, int n, int *out) {
    char name[LP_NAME_MAX + 1];
    size_t start = rd->pos;

    if (lp_json_string(rd, name, sizeof(name)) != LP_OK) {
        return LP_ERR;
    }
    *out = lp_codec_symbol_find(symbols, n, name);
    if (*out < 0) {
        rd->pos = start;
        return lp_json_fail(rd, "unknown value \"%s\"", name);
    }
    return LP_OK;
}

static int rd_reasons(lp_json_rd_t *rd, lp_fact_t *fact) {
    int index = 0;
    bool done = false;

    if (lp_json_array_begin(rd) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        int member = 0;
        bool got_activity = false;
        bool got_points = false;
        char key[LP_JSON_KEY_MAX + 1];
        lp_contribution_t *c;

        if (lp_json_array_next(rd, &index, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            return LP_OK;
        }
        if (fact->ntop >= LP_TOP_N) {
            return lp_json_fail(rd, "more than %d reasons", LP_TOP_N);
        }
        c = &fact->top[fact->ntop++];
        if (lp_json_object_begin(rd) != LP_OK) {
            return LP_ERR;
        }
        for (;;) {
            if (lp_json_object_next(rd, &member, key, &done) != LP_OK) {
                return LP_ERR;
            }
            if (done) {
                break;
            }
            if (strcmp(key, "activity") == 0 && !got_activity) {
                got_activity = true;
                if (lp_json_string(rd, c->activity, sizeof(c->activity)) != LP_OK) {
                    return LP_ERR;
                }
            } else if (strcmp(key, "points") == 0 && !got_points) {
                got_points = true;
                if (lp_json_double(rd, &c->points) != LP_OK) {
                    return LP_ERR;
                }
            } else if (lp_json_skip(rd) != LP_OK) {
                return LP_ERR;
            }
        }
        if (!got_activity || !got_points) {
            return lp_json_fail(rd, "reason without activity or points");
        }
    }
}

static int rd_opt_time(lp_json_rd_t *rd, int64_t *out) {
    int null = lp_json_null(rd);

    if (null != 0) {
        *out = 0;
        return null == 1 ? LP_OK : LP_ERR;
    }
    return lp_json_time(rd, out);
}

enum {
    F_KIND,
    F_EVENT_ID,
    F_LEAD_ID,
    F_TS,
    F_REASON,
    F_REMINDER,
    F_SCORE,
    F_GRADE,
    F_STAGE,
    F_REASONS,
    F_OTHER,
    F_MODEL_ID,
    F_MODEL_VERSION,
    F_QUALIFICATION,
    F_QUALIFIED_AT,
    F_SLA_DEADLINE,
    F_LAST_REJECT,
    F_HAD_STATE,
    F_SUPPRESSED_UNTIL,
    F_ROUTING,
    F__COUNT = F_ROUTING + NROUTING
};

static const char *const fact_keys[F_ROUTING] = {"kind",
                                                 "event_id",
                                                 "lead_id",
                                                 "ts",
                                                 "reason",
                                                 "reminder",
                                                 "score",
                                                 "fit_grade",
                                                 "stage",
                                                 "reasons",
                                                 "other_points",
                                                 "model_id",
                                                 "model_version",
                                                 "qualification",
                                                 "qualified_at",
                                                 "sla_deadline",
                                                 "last_reject_reason",
                                                 "had_state",
                                                 "suppressed_until"};

static int rd_fact_member(lp_json_rd_t *rd, lp_fact_t *fact, int f, int *kind) {
    static const char *const kinds[] = {"qualified", "stale", "erased"};
    static const char *const grades[] = {"A", "B", "C", "D"};
    int64_t v;
    int sym;
    size_t size;

    if (f >= F_ROUTING) {
        char *dst = routing_field(&fact->profile, f - F_ROUTING, &size);
        int null = lp_json_null(rd);
        return null == 1 ? LP_OK : null < 0 ? LP_ERR : lp_json_string(rd, dst, size);
    }
    switch (f) {
    case F_KIND:
        return rd_symbol(rd, kinds, 3, kind);
    case F_EVENT_ID:
        return lp_json_string(rd, fact->event_id, sizeof(fact->event_id));
    case F_LEAD_ID:
        return lp_json_string(rd, fact->lead_id, sizeof(fact->lead_id));
    case F_TS:
        return lp_json_time(rd, &fact->ts_ms);
    case F_REASON:
        if (rd_symbol(rd, lp_codec_stale_symbols, LP_CODEC_STALE_COUNT, &sym) != LP_OK) {
            return LP_ERR;
        }
        fact->stale_reason = (lp_stale_reason_t)sym;
        return LP_OK;
    case F_REMINDER:
        if (lp_json_int(rd, 0, INT32_MAX, &v) != LP_OK) {
            return LP_ERR;
        }
        fact->reminder = (int32_t)v;
        return LP_OK;
    case F_SCORE:
        return lp_json_double(rd, &fact->score);
    case F_GRADE:
        if (rd_symbol(rd, grades, 4, &sym) != LP_OK) {
            return LP_ERR;
        }
        fact->fit_grade = (char)('A' + sym);
        return LP_OK;
    case F_STAGE:
        if (rd_symbol(rd, lp_codec_stage_symbols, LP_STAGE__COUNT, &sym) != LP_OK) {
            return LP_ERR;
        }
        fact->stage = (uint8_t)sym;
        return LP_OK;
    case F_REASONS:
        return rd_reasons(rd, fact);
    case F_OTHER:
        return lp_json_double(rd, &fact->other);
    case F_MODEL_ID:
        return lp_json_string(rd, fact->model_id, sizeof(fact->model_id));
    case F_MODEL_VERSION:
        return lp_json_string(rd, fact->model_version, sizeof(fact->model_version));
    case F_QUALIFICATION:
        if (lp_json_int(rd, 0, INT32_MAX, &v) != LP_OK) {
            return LP_ERR;
        }
        fact->mql_seq = (uint32_t)v;
        return LP_OK;
    case F_QUALIFIED_AT:
        return rd_opt_time(rd, &fact->mql_at_ms);
    case F_SLA_DEADLINE:
        return rd_opt_time(rd, &fact->sla_deadline_ms);
    case F_HAD_STATE:
        return lp_json_bool(rd, &fact->had_state);
    case F_SUPPRESSED_UNTIL:
        return rd_opt_time(rd, &fact->suppressed_until_ms);
    default: {
        int null = lp_json_null(rd);
        if (null != 0) {
            fact->last_reject_reason = LP_REJ_NONE;
            return null == 1 ? LP_OK : LP_ERR;
        }
        if (rd_symbol(rd,
                      (const char *const[]){"none", "no_budget", "not_decision_maker", "bad_data",
                                            "competitor", "timing", "other"},
                      LP_REJ__COUNT, &sym) != LP_OK) {
            return LP_ERR;
        }
        fact->last_reject_reason = (uint8_t)sym;
        return LP_OK;
    }
    }
}

/* An erasure has event_id, lead_id, ts and had_state (suppressed_until may be left out: null),
 * and none of the other kinds' fields: it must not carry personal data. */
static int check_erased_keys(const bool seen[F__COUNT], lp_fact_t *fact, char *errstr,
                             size_t errstr_size) {
    for (int f = F_KIND; f < F__COUNT; f++) {
        bool required = f <= F_TS || f == F_HAD_STATE;
        bool allowed = required || f == F_SUPPRESSED_UNTIL;
        const char *name = f < F_ROUTING ? fact_keys[f] : routing_keys[f - F_ROUTING];
        if (!seen[f] && required) {
            return lp_codec_err(errstr, errstr_size, "missing key \"%s\"", name);
        }
        if (seen[f] && !allowed) {
            return lp_codec_err(errstr, errstr_size, "key \"%s\" is not a LeadErased field", name);
        }
    }
    fact->kind = LP_FACT_ERASED;
    return LP_OK;
}

int lp_json_decode_fact(const char *buf, size_t len, lp_fact_t *fact, char *errstr,
                        size_t errstr_size) {
    lp_json_rd_t rd = {
        .buf = buf, .len = len, .key = "", .errstr = errstr, .errstr_size = errstr_size};
    bool seen[F__COUNT] = {false};
    char key[LP_JSON_KEY_MAX + 1];
    bool done = false;
    int index = 0;
    int kind = -1;

    memset(fact, 0, sizeof(*fact));
    fact->profile.company_size = -1;
    if (lp_json_object_begin(&rd) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        int f = -1;
        rd.key = "";
        if (lp_json_object_next(&rd, &index, key, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        rd.key = key;
        for (int i = 0; i < F__COUNT && f < 0; i++) {
            const char *name = i < F_ROUTING ? fact_keys[i] : routing_keys[i - F_ROUTING];
            if (strcmp(key, name) == 0) {
                f = i;
            }
        }
        if (f < 0) {
            if (lp_json_skip(&rd) != LP_OK) {
                return LP_ERR;
            }
            continue;
        }
        if (seen[f]) {
            return lp_json_fail(&rd, "duplicate key");
        }
        seen[f] = true;
        if (rd_fact_member(&rd, fact, f, &kind) != LP_OK) {
            return LP_ERR;
        }
    }
    if (lp_json_end(&rd) != LP_OK) {
        return LP_ERR;
    }
    if (!seen[F_KIND]) {
        return lp_codec_err(errstr, errstr_size, "missing key \"kind\"");
    }
    if (kind == 2) {
        return check_erased_keys(seen, fact, errstr, errstr_size);
    }
    for (int f = F_KIND; f < F__COUNT; f++) {
        bool stale_only = f == F_REASON || f == F_REMINDER;
        bool required = f <= F_QUALIFICATION && (!stale_only || kind == 1);
        if (!seen[f] && required) {
            return lp_codec_err(errstr, errstr_size, "missing key \"%s\"", fact_keys[f]);
        }
        if (seen[f] && (f == F_HAD_STATE || f == F_SUPPRESSED_UNTIL)) {
            return lp_codec_err(errstr, errstr_size, "key \"%s\" is a LeadErased field, not of %s",
                                fact_keys[f], kind == 1 ? "LeadStale" : "LeadQualified");
        }
    }
    fact->kind = kind == 1 ? LP_FACT_STALE : LP_FACT_QUALIFIED;
    if (fact->kind == LP_FACT_QUALIFIED) {
        fact->mql_at_ms = fact->ts_ms;
    }
    return LP_OK;
}
