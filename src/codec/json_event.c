/* JSON lines input events: lp_json_decode_event and lp_json_encode_event. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "codec/json_internal.h"

enum { K_ENG = 1, K_PROF = 2, K_FB = 4 };
enum { T_STR, T_OPT_STR, T_BOOL, T_COUNT, T_OUTCOME, T_REASON };

typedef struct {
    const char *name;
    int kind;
    int type;
    size_t off;
    size_t size;
} field_t;

#define ENG(name, type, member)                                                                    \
    { name, K_ENG, type, offsetof(lp_engagement_t, member), sizeof(((lp_engagement_t *)0)->member) }
#define PROF(name, type, member)                                                                   \
    {                                                                                              \
        name, K_PROF, type, offsetof(lp_profile_update_t, member),                                 \
            sizeof(((lp_profile_update_t *)0)->member)                                             \
    }
#define FB(name, type, member)                                                                     \
    { name, K_FB, type, offsetof(lp_feedback_t, member), sizeof(((lp_feedback_t *)0)->member) }

static const field_t fields[] = {
    ENG("type", T_STR, type),
    ENG("url", T_OPT_STR, url),
    ENG("asset_id", T_OPT_STR, asset_id),
    ENG("campaign_id", T_OPT_STR, campaign_id),
    ENG("machine", T_BOOL, machine),
    ENG("seconds_since_send", T_COUNT, seconds_since_send),
    PROF("email", T_OPT_STR, email),
    PROF("title", T_OPT_STR, title),
    PROF("seniority", T_OPT_STR, seniority),
    PROF("industry", T_OPT_STR, industry),
    PROF("company", T_OPT_STR, company),
    PROF("company_size", T_COUNT, company_size),
    PROF("country", T_OPT_STR, country),
    PROF("region", T_OPT_STR, region),
    PROF("persona", T_OPT_STR, persona),
    PROF("segment", T_OPT_STR, segment),
    PROF("owner", T_OPT_STR, owner),
    PROF("account_id", T_OPT_STR, account_id),
    FB("outcome", T_OUTCOME, outcome),
    FB("reason", T_REASON, reason),
    FB("owner", T_OPT_STR, owner),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* What the object said, per kind, until "kind" (which may come last) is known. */
typedef struct {
    lp_event_t common;
    lp_engagement_t eng;
    lp_profile_update_t prof;
    lp_feedback_t fb;
    int kind; /* -1 until "kind" was read */
    bool seen_fields[NFIELDS];
    bool seen_kind, seen_event_id, seen_lead_id, seen_ts;
} scratch_t;

static void *field_base(scratch_t *sc, int kind) {
    return kind == K_ENG ? (void *)&sc->eng : kind == K_PROF ? (void *)&sc->prof : (void *)&sc->fb;
}

static int read_enum(lp_json_rd_t *rd, int (*parse)(const char *), int *out) {
    char name[LP_NAME_MAX + 1];
    size_t start = rd->pos;

    if (lp_json_string(rd, name, sizeof(name)) != LP_OK) {
        return LP_ERR;
    }
    *out = parse(name);
    if (*out < 0) {
        rd->pos = start;
        return lp_json_fail(rd, "unknown value \"%s\"", name);
    }
    return LP_OK;
}

static int read_field(lp_json_rd_t *rd, scratch_t *sc, const field_t *f) {
    char *dst = (char *)field_base(sc, f->kind) + f->off;
    int64_t count;
    int v;

    if (lp_json_peek(rd) == 'n') {
        if (lp_json_null(rd) != 1) {
            return LP_ERR;
        }
        if (f->type == T_STR || f->type == T_OUTCOME || f->type == T_BOOL) {
            return lp_json_fail(rd, "null is not allowed");
        }
        return LP_OK; /* absent: the scratch already holds the "absent" value */
    }
    switch (f->type) {
    case T_STR:
    case T_OPT_STR:
        return lp_json_string(rd, dst, f->size);
    case T_BOOL:
        return lp_json_bool(rd, (bool *)dst);
    case T_COUNT:
        if (lp_json_int(rd, 0, INT64_MAX, &count) != LP_OK) {
            return LP_ERR;
        }
        memcpy(dst, &count, sizeof(count));
        return LP_OK;
    case T_OUTCOME:
        if (read_enum(rd, lp_feedback_outcome_parse, &v) != LP_OK) {
            return LP_ERR;
        }
        sc->fb.outcome = (lp_feedback_outcome_t)v;
        return LP_OK;
    default:
        if (read_enum(rd, lp_reject_reason_parse, &v) != LP_OK) {
            return LP_ERR;
        }
        sc->fb.reason = (lp_reject_reason_t)v;
        return LP_OK;
    }
}

/* Kinds 3 and 4 are requests, not events (docs/privacy.md): "erasure" and "unsuppress" lines
 * carry lead_id, ts and optionally event_id, nothing else. */
#define K_ERASURE 3
#define K_UNSUPPRESS 4

static int parse_kind(const char *name) {
    static const char *const names[] = {"engagement", "profile", "feedback", "erasure",
                                        "unsuppress"};

    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int read_member(lp_json_rd_t *rd, scratch_t *sc, const char *key) {
    bool *seen = NULL;

    if (strcmp(key, "kind") == 0) {
        seen = &sc->seen_kind;
    } else if (strcmp(key, "event_id") == 0) {
        seen = &sc->seen_event_id;
    } else if (strcmp(key, "lead_id") == 0) {
        seen = &sc->seen_lead_id;
    } else if (strcmp(key, "ts") == 0) {
        seen = &sc->seen_ts;
    }
    if (seen != NULL) {
        if (*seen) {
            return lp_json_fail(rd, "duplicate key");
        }
        *seen = true;
        if (seen == &sc->seen_kind) {
            return read_enum(rd, parse_kind, &sc->kind);
        }
        if (lp_json_null(rd) != 0) {
            return lp_json_fail(rd, "null is not allowed");
        }
        if (seen == &sc->seen_ts) {
            return lp_json_time(rd, &sc->common.ts_ms);
        }
        return lp_json_string(rd,
                              seen == &sc->seen_event_id ? sc->common.event_id : sc->common.lead_id,
                              LP_ID_MAX + 1);
    }
    /* "owner" exists in profile and feedback: the first entry (profile) takes it, and the
     * feedback copies it once the kind is known. */
    for (size_t i = 0; i < NFIELDS; i++) {
        if (strcmp(key, fields[i].name) != 0) {
            continue;
        }
        if (sc->seen_fields[i]) {
            return lp_json_fail(rd, "duplicate key");
        }
        sc->seen_fields[i] = true;
        return read_field(rd, sc, &fields[i]);
    }
    return lp_json_skip(rd); /* unknown keys are ignored */
}

/* An erasure or unsuppress line: the request for the lead, at ts. */
static int request(const scratch_t *sc, lp_event_t *event, char *errstr, size_t errstr_size) {
    const char *what = sc->kind == K_ERASURE ? "erasure" : "unsuppress";
    if (!sc->seen_lead_id || !sc->seen_ts) {
        return lp_codec_err(errstr, errstr_size, "missing key \"%s\"",
                            !sc->seen_lead_id ? "lead_id" : "ts");
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        if (sc->seen_fields[i]) {
            return lp_codec_err(errstr, errstr_size,
                                "key \"%s\": an %s line carries only event_id, lead_id and ts",
                                fields[i].name, what);
        }
    }
    lp_event_init(event, LP_EV_PROFILE);
    event->op = sc->kind == K_ERASURE ? LP_OP_ERASE : LP_OP_UNSUPPRESS;
    memcpy(event->lead_id, sc->common.lead_id, sizeof(event->lead_id));
    event->ts_ms = sc->common.ts_ms;
    if (sc->seen_event_id) {
        memcpy(event->event_id, sc->common.event_id, sizeof(event->event_id));
    } else {
        snprintf(event->event_id, sizeof(event->event_id), "%s-%" PRId64, what, event->ts_ms);
    }
    return lp_codec_check_event(event, errstr, errstr_size);
}

int lp_json_decode_event(const char *buf, size_t len, lp_event_t *event, char *errstr,
                         size_t errstr_size) {
    lp_json_rd_t rd = {
        .buf = buf, .len = len, .key = "", .errstr = errstr, .errstr_size = errstr_size};
    scratch_t sc;
    char key[LP_JSON_KEY_MAX + 1];
    bool done = false;
    int index = 0;
    int kind;

    memset(&sc, 0, sizeof(sc));
    sc.kind = -1;
    sc.eng.seconds_since_send = -1;
    sc.prof.company_size = -1;
    sc.fb.reason = LP_REJ_NONE;
    sc.fb.outcome = (lp_feedback_outcome_t)-1;
    if (lp_json_object_begin(&rd) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        rd.key = "";
        if (lp_json_object_next(&rd, &index, key, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        rd.key = key;
        if (read_member(&rd, &sc, key) != LP_OK) {
            return LP_ERR;
        }
    }
    if (lp_json_end(&rd) != LP_OK) {
        return LP_ERR;
    }
    if (sc.kind == K_ERASURE || sc.kind == K_UNSUPPRESS) {
        return request(&sc, event, errstr, errstr_size);
    }
    if (!sc.seen_event_id || !sc.seen_lead_id || !sc.seen_ts) {
        return lp_codec_err(errstr, errstr_size, "missing key \"%s\"",
                            !sc.seen_event_id  ? "event_id"
                            : !sc.seen_lead_id ? "lead_id"
                                               : "ts");
    }
    kind = sc.kind;
    if (kind < 0) {
        kind = sc.seen_fields[0]                            ? LP_EV_ENGAGEMENT
               : sc.fb.outcome != (lp_feedback_outcome_t)-1 ? LP_EV_FEEDBACK
                                                            : LP_EV_PROFILE;
    }
    if (kind == LP_EV_ENGAGEMENT && !sc.seen_fields[0]) {
        return lp_codec_err(errstr, errstr_size, "missing key \"type\"");
    }
    if (kind == LP_EV_FEEDBACK && sc.fb.outcome == (lp_feedback_outcome_t)-1) {
        return lp_codec_err(errstr, errstr_size, "missing key \"outcome\"");
    }
    lp_event_init(event, (lp_event_kind_t)kind);
    memcpy(event->event_id, sc.common.event_id, sizeof(event->event_id));
    memcpy(event->lead_id, sc.common.lead_id, sizeof(event->lead_id));
    event->ts_ms = sc.common.ts_ms;
    if (kind == LP_EV_ENGAGEMENT) {
        event->u.engagement = sc.eng;
    } else if (kind == LP_EV_PROFILE) {
        event->u.profile = sc.prof;
    } else {
        event->u.feedback = sc.fb;
        memcpy(event->u.feedback.owner, sc.prof.owner, sizeof(event->u.feedback.owner));
    }
    return lp_codec_check_event(event, errstr, errstr_size);
}

size_t lp_json_encode_event(const lp_event_t *event, char *buf, size_t size) {
    static const char *const kinds[] = {"engagement", "profile", "feedback"};
    lp_json_wr_t wr = {.buf = buf, .size = size};
    int mask;
    const void *base;

    if ((unsigned)event->kind > LP_EV_FEEDBACK) {
        return 0;
    }
    if (event->op == LP_OP_ERASE || event->op == LP_OP_UNSUPPRESS) {
        lp_json_raw(&wr, event->op == LP_OP_ERASE ? "{\"kind\":\"erasure\""
                                                  : "{\"kind\":\"unsuppress\"");
        lp_json_key(&wr, "event_id", false);
        lp_json_str(&wr, event->event_id, sizeof(event->event_id));
        lp_json_key(&wr, "lead_id", false);
        lp_json_str(&wr, event->lead_id, sizeof(event->lead_id));
        lp_json_key(&wr, "ts", false);
        lp_json_i64(&wr, event->ts_ms);
        lp_json_raw(&wr, "}");
        return lp_json_finish(&wr);
    }
    mask = 1 << event->kind;
    base = &event->u;
    lp_json_raw(&wr, "{");
    lp_json_key(&wr, "kind", true);
    lp_json_raw(&wr, "\"");
    lp_json_raw(&wr, kinds[event->kind]);
    lp_json_raw(&wr, "\"");
    lp_json_key(&wr, "event_id", false);
    lp_json_str(&wr, event->event_id, sizeof(event->event_id));
    lp_json_key(&wr, "lead_id", false);
    lp_json_str(&wr, event->lead_id, sizeof(event->lead_id));
    lp_json_key(&wr, "ts", false);
    lp_json_i64(&wr, event->ts_ms);
    for (size_t i = 0; i < NFIELDS; i++) {
        const field_t *f = &fields[i];
        const char *p = (const char *)base + f->off;
        int64_t count;
        if ((f->kind & mask) == 0) {
            continue;
        }
        lp_json_key(&wr, f->name, false);
        switch (f->type) {
        case T_STR:
            lp_json_str(&wr, p, f->size);
            break;
        case T_OPT_STR:
            lp_json_opt_str(&wr, p, f->size);
            break;
        case T_BOOL:
            lp_json_raw(&wr, *(const bool *)p ? "true" : "false");
            break;
        case T_COUNT:
            memcpy(&count, p, sizeof(count));
            if (count < 0) {
                lp_json_raw(&wr, "null");
            } else {
                lp_json_i64(&wr, count);
            }
            break;
        case T_OUTCOME:
        case T_REASON: {
            const char *name = f->type == T_OUTCOME
                                   ? lp_feedback_outcome_name(event->u.feedback.outcome)
                                   : lp_reject_reason_name(event->u.feedback.reason);
            if (name == NULL) {
                return 0;
            }
            lp_json_str(&wr, name, LP_NAME_MAX + 1);
            break;
        }
        }
    }
    lp_json_raw(&wr, "}");
    return lp_json_finish(&wr);
}
