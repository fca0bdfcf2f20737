/* EngagementEvent, LeadProfileUpdated and SalesFeedback: hand-written Avro binary in schema field
 * order (see the schemas/ directory; avro_schema.c refuses schema files this code does not match).
 */
#include <string.h>

#include "codec/avro_internal.h"

static int rd_opt_count(lp_avro_rd_t *rd, const char *field, int64_t *out) {
    size_t start;
    bool present;

    rd->field = field;
    start = rd->pos;
    if (lp_avro_rd_opt_long(rd, out, &present) != LP_OK) {
        return LP_ERR;
    }
    if (!present) {
        *out = -1;
    } else if (*out < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size, "%s %lld is negative at byte %zu", field,
                            (long long)*out, start);
    }
    return LP_OK;
}

#define RD_STR(rd, name, dst) ((rd)->field = (name), lp_avro_rd_string((rd), (dst), sizeof(dst)))
#define RD_OPT(rd, name, dst)                                                                      \
    ((rd)->field = (name), lp_avro_rd_opt_string((rd), (dst), sizeof(dst)))

static int decode_engagement(lp_avro_rd_t *rd, lp_engagement_t *e) {
    if (RD_STR(rd, "type", e->type) != LP_OK || RD_OPT(rd, "url", e->url) != LP_OK ||
        RD_OPT(rd, "asset_id", e->asset_id) != LP_OK ||
        RD_OPT(rd, "campaign_id", e->campaign_id) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "machine";
    if (lp_avro_rd_bool(rd, &e->machine) != LP_OK) {
        return LP_ERR;
    }
    return rd_opt_count(rd, "seconds_since_send", &e->seconds_since_send);
}

static int decode_profile(lp_avro_rd_t *rd, lp_profile_update_t *p) {
    if (RD_OPT(rd, "email", p->email) != LP_OK || RD_OPT(rd, "title", p->title) != LP_OK ||
        RD_OPT(rd, "seniority", p->seniority) != LP_OK ||
        RD_OPT(rd, "industry", p->industry) != LP_OK ||
        RD_OPT(rd, "company", p->company) != LP_OK ||
        rd_opt_count(rd, "company_size", &p->company_size) != LP_OK ||
        RD_OPT(rd, "country", p->country) != LP_OK || RD_OPT(rd, "region", p->region) != LP_OK ||
        RD_OPT(rd, "persona", p->persona) != LP_OK || RD_OPT(rd, "segment", p->segment) != LP_OK ||
        RD_OPT(rd, "owner", p->owner) != LP_OK) {
        return LP_ERR;
    }
    /* account_id, the last field, came with a later version of the schema: a record written
     * with the version before ends here (the record is the whole value, so nothing after it can
     * be mistaken for the field). */
    if (!rd->previous_profile && rd->pos < rd->len &&
        RD_OPT(rd, "account_id", p->account_id) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

static int decode_feedback(lp_avro_rd_t *rd, lp_feedback_t *f) {
    int v;

    rd->field = "outcome";
    if (lp_avro_rd_enum(rd, LP_FB__COUNT, &v) != LP_OK) {
        return LP_ERR;
    }
    f->outcome = (lp_feedback_outcome_t)v;
    rd->field = "reason";
    if (lp_avro_rd_enum(rd, LP_REJ__COUNT, &v) != LP_OK) {
        return LP_ERR;
    }
    f->reason = (lp_reject_reason_t)v;
    return RD_OPT(rd, "owner", f->owner);
}

/* Shared by the framed decoder (inlined there: the hot path) and by resolution. */
static inline int decode_body(lp_avro_codec_t *codec, lp_avro_rd_t *rd, int kind,
                              lp_event_t *event) {
    int rc;

    /* The schema kinds of inputs are numbered like the event kinds. The event starts as
     * lp_event_init() leaves it, copied from the codec's blank of that kind with a size the
     * compiler cannot see: GCC expands lp_event_init's memset of the 872-byte event into
     * `rep stosq`, which took ~90 of the ~250 ns of a decode on the AMD EPYC bench machine;
     * libc's memcpy (vector stores) takes a few ns. */
    volatile size_t blank_size = sizeof(*event);
    memcpy(event, &codec->blank[kind], blank_size);
    if (lp_avro_rd_header(rd, event->event_id, event->lead_id, &event->ts_ms) != LP_OK) {
        return LP_ERR;
    }
    switch (kind) {
    case LP_SCHEMA_ENGAGEMENT:
        rc = decode_engagement(rd, &event->u.engagement);
        break;
    case LP_SCHEMA_PROFILE:
        rc = decode_profile(rd, &event->u.profile);
        break;
    default:
        rc = decode_feedback(rd, &event->u.feedback);
        break;
    }
    if (rc != LP_OK || lp_avro_rd_end(rd) != LP_OK) {
        return LP_ERR;
    }
    return lp_codec_check_event(event, rd->errstr, rd->errstr_size);
}

int lp_avro_decode_body(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, size_t body,
                        int kind, lp_event_t *event, char *errstr, size_t errstr_size) {
    lp_avro_rd_t rd = {
        .buf = buf, .len = len, .pos = body, .errstr = errstr, .errstr_size = errstr_size};

    rd.previous_profile =
        kind == LP_SCHEMA_PROFILE && body == 10 && lp_avro_previous_profile(buf, len);
    return decode_body(codec, &rd, kind, event);
}

int lp_avro_decode_event(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                         lp_event_t *event, char *errstr, size_t errstr_size) {
    lp_avro_rd_t rd = {.buf = buf, .len = len, .errstr = errstr, .errstr_size = errstr_size};
    int kind = 0;
    int rc;

    rc = lp_avro_unframe(codec, buf, len, expected, LP_SCHEMA_ENGAGEMENT, LP_SCHEMA_FEEDBACK, &kind,
                         &rd.pos, errstr, errstr_size);
    if (rc != LP_OK) {
        /* Ids learnt at run time, unknown ids, bad framing: off the hot path. */
        return lp_avro_decode_slow(codec, rc, buf, len, expected, kind, event, errstr, errstr_size);
    }
    rd.previous_profile =
        kind == LP_SCHEMA_PROFILE && rd.pos == 10 && lp_avro_previous_profile(buf, len);
    return decode_body(codec, &rd, kind, event);
}

#define WR_STR(wr, s) lp_avro_wr_string((wr), (s), sizeof(s))
#define WR_OPT(wr, s) lp_avro_wr_opt_string((wr), (s), sizeof(s))

static void wr_opt_count(lp_avro_wr_t *wr, int64_t v) {
    if (v < 0) {
        lp_avro_wr_long(wr, 0);
        return;
    }
    lp_avro_wr_long(wr, 1);
    lp_avro_wr_long(wr, v);
}

size_t lp_avro_encode_event(lp_avro_codec_t *codec, const lp_event_t *event, lp_framing_t framing,
                            uint8_t *buf, size_t size) {
    lp_avro_wr_t wr = {.buf = buf, .size = size};

    if ((unsigned)event->kind > LP_EV_FEEDBACK) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr), "unknown event kind %d",
                     (int)event->kind);
        return 0;
    }
    if (event->kind == LP_EV_FEEDBACK && ((unsigned)event->u.feedback.outcome >= LP_FB__COUNT ||
                                          (unsigned)event->u.feedback.reason >= LP_REJ__COUNT)) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr),
                     "feedback outcome or reason out of range");
        return 0;
    }
    if (lp_avro_wr_frame(codec, &wr, framing, (int)event->kind) != LP_OK) {
        return 0;
    }
    WR_STR(&wr, event->event_id);
    WR_STR(&wr, event->lead_id);
    lp_avro_wr_long(&wr, event->ts_ms);
    if (event->kind == LP_EV_ENGAGEMENT) {
        const lp_engagement_t *e = &event->u.engagement;
        WR_STR(&wr, e->type);
        WR_OPT(&wr, e->url);
        WR_OPT(&wr, e->asset_id);
        WR_OPT(&wr, e->campaign_id);
        lp_avro_wr_bool(&wr, e->machine);
        wr_opt_count(&wr, e->seconds_since_send);
    } else if (event->kind == LP_EV_PROFILE) {
        const lp_profile_update_t *p = &event->u.profile;
        WR_OPT(&wr, p->email);
        WR_OPT(&wr, p->title);
        WR_OPT(&wr, p->seniority);
        WR_OPT(&wr, p->industry);
        WR_OPT(&wr, p->company);
        wr_opt_count(&wr, p->company_size);
        WR_OPT(&wr, p->country);
        WR_OPT(&wr, p->region);
        WR_OPT(&wr, p->persona);
        WR_OPT(&wr, p->segment);
        WR_OPT(&wr, p->owner);
        WR_OPT(&wr, p->account_id);
    } else {
        const lp_feedback_t *f = &event->u.feedback;
        lp_avro_wr_long(&wr, f->outcome);
        lp_avro_wr_long(&wr, f->reason);
        WR_OPT(&wr, f->owner);
    }
    return lp_avro_wr_finish(codec, &wr);
}
