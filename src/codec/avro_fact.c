/* LeadQualified, LeadStale and LeadErased: hand-written Avro binary in schema field order. */
#include <string.h>

#include "codec/avro_internal.h"

#define WR_STR(wr, s) lp_avro_wr_string((wr), (s), sizeof(s))
#define WR_OPT(wr, s) lp_avro_wr_opt_string((wr), (s), sizeof(s))

static void wr_opt_ts(lp_avro_wr_t *wr, int64_t ts_ms) {
    if (ts_ms == 0) {
        lp_avro_wr_long(wr, 0);
        return;
    }
    lp_avro_wr_long(wr, 1);
    lp_avro_wr_long(wr, ts_ms);
}

static void wr_explanation(lp_avro_wr_t *wr, const lp_fact_t *fact) {
    lp_avro_wr_double(wr, fact->score);
    lp_avro_wr_long(wr, fact->fit_grade - 'A');
    lp_avro_wr_long(wr, fact->stage);
    if (fact->ntop > 0) {
        lp_avro_wr_long(wr, fact->ntop);
        for (int i = 0; i < fact->ntop; i++) {
            WR_STR(wr, fact->top[i].activity);
            lp_avro_wr_double(wr, fact->top[i].points);
        }
    }
    lp_avro_wr_long(wr, 0);
    lp_avro_wr_double(wr, fact->other);
    WR_STR(wr, fact->model_id);
    WR_STR(wr, fact->model_version);
    lp_avro_wr_long(wr, (int64_t)fact->mql_seq);
}

static void wr_routing(lp_avro_wr_t *wr, const lp_profile_update_t *p) {
    WR_OPT(wr, p->email);
    WR_OPT(wr, p->company);
    WR_OPT(wr, p->region);
    WR_OPT(wr, p->country);
    WR_OPT(wr, p->segment);
    WR_OPT(wr, p->persona);
    WR_OPT(wr, p->title);
    WR_OPT(wr, p->owner);
}

static int check_fact(lp_avro_codec_t *codec, const lp_fact_t *fact) {
    const char *why = NULL;

    if (fact->kind != LP_FACT_QUALIFIED && fact->kind != LP_FACT_STALE &&
        fact->kind != LP_FACT_ERASED) {
        why = "unknown fact kind";
    } else if (fact->event_id[0] == '\0') {
        why = "event_id is empty";
    } else if (fact->kind == LP_FACT_ERASED) {
        /* LeadErased carries the ids, the time and the suppression only: nothing else to check. */
    } else if (fact->fit_grade < 'A' || fact->fit_grade > 'D') {
        why = "fit_grade is not A-D";
    } else if (fact->stage >= LP_STAGE__COUNT) {
        why = "stage out of range";
    } else if (fact->ntop < 0 || fact->ntop > LP_TOP_N) {
        why = "ntop out of range";
    } else if (fact->mql_seq > INT32_MAX) {
        why = "qualification does not fit an Avro int";
    } else if (fact->kind == LP_FACT_STALE &&
               (unsigned)fact->stale_reason >= LP_CODEC_STALE_COUNT) {
        why = "stale reason out of range";
    } else if (fact->kind == LP_FACT_QUALIFIED && fact->last_reject_reason >= LP_REJ__COUNT) {
        why = "last_reject_reason out of range";
    }
    if (why != NULL) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr), "fact %s: %s", fact->event_id, why);
        return LP_ERR;
    }
    return LP_OK;
}

size_t lp_avro_encode_fact(lp_avro_codec_t *codec, const lp_fact_t *fact, lp_framing_t framing,
                           uint8_t *buf, size_t size) {
    lp_avro_wr_t wr = {.buf = buf, .size = size};
    int kind = fact->kind == LP_FACT_STALE    ? LP_SCHEMA_STALE
               : fact->kind == LP_FACT_ERASED ? LP_SCHEMA_ERASED
                                              : LP_SCHEMA_QUALIFIED;

    if (check_fact(codec, fact) != LP_OK || lp_avro_wr_frame(codec, &wr, framing, kind) != LP_OK) {
        return 0;
    }
    WR_STR(&wr, fact->event_id);
    WR_STR(&wr, fact->lead_id);
    lp_avro_wr_long(&wr, fact->ts_ms);
    if (kind == LP_SCHEMA_ERASED) {
        /* No explanation, no profile: an erasure carries no personal data but the lead id. */
        lp_avro_wr_bool(&wr, fact->had_state);
        wr_opt_ts(&wr, fact->suppressed_until_ms);
        return lp_avro_wr_finish(codec, &wr);
    }
    if (kind == LP_SCHEMA_QUALIFIED) {
        wr_explanation(&wr, fact);
        wr_opt_ts(&wr, fact->sla_deadline_ms);
        if (fact->last_reject_reason == LP_REJ_NONE) {
            lp_avro_wr_long(&wr, 0);
        } else {
            lp_avro_wr_long(&wr, 1);
            lp_avro_wr_long(&wr, fact->last_reject_reason);
        }
    } else {
        lp_avro_wr_long(&wr, fact->stale_reason);
        lp_avro_wr_long(&wr, fact->reminder);
        wr_explanation(&wr, fact);
        wr_opt_ts(&wr, fact->mql_at_ms);
        wr_opt_ts(&wr, fact->sla_deadline_ms);
    }
    wr_routing(&wr, &fact->profile);
    return lp_avro_wr_finish(codec, &wr);
}

/* ---- decoding ---- */

static int rd_reasons(lp_avro_rd_t *rd, lp_fact_t *fact) {
    fact->ntop = 0;
    for (;;) {
        size_t start = rd->pos;
        int64_t count;
        int64_t block_bytes = -1;
        size_t items_start;

        rd->field = "reasons";
        if (lp_avro_rd_long(rd, &count) != LP_OK) {
            return LP_ERR;
        }
        if (count == 0) {
            return LP_OK;
        }
        if (count < 0) {
            /* A negative count is followed by the block's size in bytes (lets readers skip). */
            if (count == INT64_MIN) {
                return lp_codec_err(rd->errstr, rd->errstr_size,
                                    "array block count out of range at byte %zu (field reasons)",
                                    start);
            }
            count = -count;
            if (lp_avro_rd_long(rd, &block_bytes) != LP_OK) {
                return LP_ERR;
            }
            if (block_bytes < 0 || (uint64_t)block_bytes > rd->len - rd->pos) {
                return lp_codec_err(rd->errstr, rd->errstr_size,
                                    "array block size %lld at byte %zu does not fit the record "
                                    "(field reasons)",
                                    (long long)block_bytes, start);
            }
        }
        if (count > LP_TOP_N - fact->ntop) {
            return lp_codec_err(rd->errstr, rd->errstr_size,
                                "more than %d reasons at byte %zu (field reasons)", LP_TOP_N,
                                start);
        }
        items_start = rd->pos;
        for (int64_t i = 0; i < count; i++) {
            lp_contribution_t *c = &fact->top[fact->ntop];
            rd->field = "reasons.activity";
            if (lp_avro_rd_string(rd, c->activity, sizeof(c->activity)) != LP_OK) {
                return LP_ERR;
            }
            rd->field = "reasons.points";
            if (lp_avro_rd_double(rd, &c->points) != LP_OK) {
                return LP_ERR;
            }
            fact->ntop++;
        }
        if (block_bytes >= 0 && rd->pos - items_start != (size_t)block_bytes) {
            return lp_codec_err(rd->errstr, rd->errstr_size,
                                "array block at byte %zu declares %lld bytes but holds %zu "
                                "(field reasons)",
                                start, (long long)block_bytes, rd->pos - items_start);
        }
    }
}

static int rd_opt_ts(lp_avro_rd_t *rd, const char *field, int64_t *out) {
    bool present;

    rd->field = field;
    if (lp_avro_rd_opt_long(rd, out, &present) != LP_OK) {
        return LP_ERR;
    }
    if (!present) {
        *out = 0;
    }
    return LP_OK;
}

static int rd_explanation(lp_avro_rd_t *rd, lp_fact_t *fact) {
    int v;
    int32_t seq;

    rd->field = "score";
    if (lp_avro_rd_double(rd, &fact->score) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "fit_grade";
    if (lp_avro_rd_enum(rd, 4, &v) != LP_OK) {
        return LP_ERR;
    }
    fact->fit_grade = (char)('A' + v);
    rd->field = "stage";
    if (lp_avro_rd_enum(rd, LP_STAGE__COUNT, &v) != LP_OK) {
        return LP_ERR;
    }
    fact->stage = (uint8_t)v;
    if (rd_reasons(rd, fact) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "other_points";
    if (lp_avro_rd_double(rd, &fact->other) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "model_id";
    if (lp_avro_rd_string(rd, fact->model_id, sizeof(fact->model_id)) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "model_version";
    if (lp_avro_rd_string(rd, fact->model_version, sizeof(fact->model_version)) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "qualification";
    if (lp_avro_rd_int(rd, &seq) != LP_OK) {
        return LP_ERR;
    }
    if (seq < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size, "qualification %d is negative", seq);
    }
    fact->mql_seq = (uint32_t)seq;
    return LP_OK;
}

static int rd_routing(lp_avro_rd_t *rd, lp_profile_update_t *p) {
    static const char *const names[] = {"email",   "company", "region", "country",
                                        "segment", "persona", "title",  "owner"};
    char *const dst[] = {p->email,   p->company, p->region, p->country,
                         p->segment, p->persona, p->title,  p->owner};
    const size_t sizes[] = {sizeof(p->email),   sizeof(p->company), sizeof(p->region),
                            sizeof(p->country), sizeof(p->segment), sizeof(p->persona),
                            sizeof(p->title),   sizeof(p->owner)};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rd->field = names[i];
        if (lp_avro_rd_opt_string(rd, dst[i], sizes[i]) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

int lp_avro_decode_fact_as(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                           lp_fact_t *fact, char *errstr, size_t errstr_size) {
    lp_avro_rd_t rd = {.buf = buf, .len = len, .errstr = errstr, .errstr_size = errstr_size};
    int kind;
    int v;

    if (lp_avro_unframe(codec, buf, len, expected, LP_SCHEMA_QUALIFIED, LP_SCHEMA_ERASED, &kind,
                        &rd.pos, errstr, errstr_size) != LP_OK) {
        return LP_ERR;
    }
    memset(fact, 0, sizeof(*fact));
    fact->profile.company_size = -1;
    fact->kind = kind == LP_SCHEMA_STALE    ? LP_FACT_STALE
                 : kind == LP_SCHEMA_ERASED ? LP_FACT_ERASED
                                            : LP_FACT_QUALIFIED;
    rd.field = "event_id";
    if (lp_avro_rd_string(&rd, fact->event_id, sizeof(fact->event_id)) != LP_OK) {
        return LP_ERR;
    }
    /* Emitted ids are never empty, and raw framing detection relies on it (an empty event_id
     * would make the record start with 0x00, the Confluent magic byte). */
    if (fact->event_id[0] == '\0') {
        return lp_codec_err(errstr, errstr_size, "event_id is empty");
    }
    rd.field = "lead_id";
    if (lp_avro_rd_string(&rd, fact->lead_id, sizeof(fact->lead_id)) != LP_OK) {
        return LP_ERR;
    }
    rd.field = "ts";
    if (lp_avro_rd_long(&rd, &fact->ts_ms) != LP_OK) {
        return LP_ERR;
    }
    if (fact->kind == LP_FACT_ERASED) {
        rd.field = "had_state";
        if (lp_avro_rd_bool(&rd, &fact->had_state) != LP_OK ||
            rd_opt_ts(&rd, "suppressed_until", &fact->suppressed_until_ms) != LP_OK) {
            return LP_ERR;
        }
        return lp_avro_rd_end(&rd);
    }
    if (fact->kind == LP_FACT_QUALIFIED) {
        if (rd_explanation(&rd, fact) != LP_OK ||
            rd_opt_ts(&rd, "sla_deadline", &fact->sla_deadline_ms) != LP_OK) {
            return LP_ERR;
        }
        rd.field = "last_reject_reason";
        if (lp_avro_rd_union(&rd, 2, &v) != LP_OK) {
            return LP_ERR;
        }
        if (v == 1) {
            if (lp_avro_rd_enum(&rd, LP_REJ__COUNT, &v) != LP_OK) {
                return LP_ERR;
            }
            fact->last_reject_reason = (uint8_t)v;
        }
        fact->mql_at_ms = fact->ts_ms;
    } else {
        rd.field = "reason";
        if (lp_avro_rd_enum(&rd, LP_CODEC_STALE_COUNT, &v) != LP_OK) {
            return LP_ERR;
        }
        fact->stale_reason = (lp_stale_reason_t)v;
        rd.field = "reminder";
        if (lp_avro_rd_int(&rd, &fact->reminder) != LP_OK || rd_explanation(&rd, fact) != LP_OK ||
            rd_opt_ts(&rd, "qualified_at", &fact->mql_at_ms) != LP_OK ||
            rd_opt_ts(&rd, "sla_deadline", &fact->sla_deadline_ms) != LP_OK) {
            return LP_ERR;
        }
    }
    if (rd_routing(&rd, &fact->profile) != LP_OK || lp_avro_rd_end(&rd) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

int lp_avro_decode_fact(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, lp_fact_t *fact,
                        char *errstr, size_t errstr_size) {
    return lp_avro_decode_fact_as(codec, buf, len, -1, fact, errstr, errstr_size);
}
