/* The members topic's records (include/leadpulse/member_wire.h), in the primitives of
 * core/byte_codec.h. Version 1:
 *   u8 1 | u8 type | source (varint) | sources (varint) | st (svarint)
 *   member and leave: account key | lead id | seq (varint) | event time - st
 *   member only:      E (number) | ref - st | u8 role | u8 fit grade | u8 stage
 *                     | flags (varint: 1 last activity, 2 acceptance, 4 rejection)
 *                     | [last - st] | [accepted - st] | [rejected - st]
 * Strings are a varint length and their bytes. The writer is canonical; the reader refuses
 * anything else. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/byte_codec.h"
#include "leadpulse/member_wire.h"
#include "leadpulse/score.h"

#define MEMBER_WIRE_V1 1

enum { MF_LAST = 1u, MF_ACCEPTED = 2u, MF_REJECTED = 4u, MF__ALL = 7u };

static int key_ok(const char *key) {
    size_t n = strlen(key);
    return (n > 3 && strncmp(key, "id:", 3) == 0) || (n > 7 && strncmp(key, "domain:", 7) == 0);
}

/* Why m cannot be written or read, or NULL. */
static const char *invalid(const lp_member_msg_t *m) {
    if (m->sources < 1 || m->sources > LP_PARTITIONS_MAX) {
        return "source partition count out of range";
    }
    if (m->source < 0 || m->source >= m->sources) {
        return "source partition out of range";
    }
    if (m->st_ms < 0) {
        return "negative order time";
    }
    if (m->type == LP_MW_MARK) {
        return NULL;
    }
    if (m->type != LP_MW_MEMBER && m->type != LP_MW_LEAVE) {
        return "unknown record type";
    }
    const lp_member_record_t *r = &m->rec;
    if (r->leave != (m->type == LP_MW_LEAVE)) {
        return "leave flag does not match the type";
    }
    if (!key_ok(r->account)) {
        return "account key is not id:<id> or domain:<domain>";
    }
    if (r->lead_id[0] == '\0') {
        return "empty lead id";
    }
    if (r->event_ms < 0 || r->event_ms > m->st_ms) {
        return "event time negative or after the order time";
    }
    if (r->leave) {
        return NULL;
    }
    if (!isfinite(r->e)) {
        return "score not finite";
    }
    if (r->ref_ms < 0 || r->last_activity_ms < 0 || r->accepted_ms < 0 || r->rejected_ms < 0) {
        return "negative time";
    }
    if ((unsigned)r->role >= LP_ROLE__COUNT) {
        return "role out of range";
    }
    if (r->fit_grade < 'A' || r->fit_grade > 'D') {
        return "fit grade out of range";
    }
    if (r->stage >= LP_STAGE__COUNT) {
        return "stage out of range";
    }
    return NULL;
}

size_t lp_member_msg_encode(const lp_member_msg_t *m, uint8_t *buf, size_t size) {
    if (m == NULL || buf == NULL || invalid(m) != NULL) {
        return 0;
    }
    writer_t w = {buf, size, 0, false};
    const int64_t st = m->st_ms;
    put_u8(&w, MEMBER_WIRE_V1);
    put_u8(&w, (uint8_t)m->type);
    put_uvarint(&w, (uint64_t)m->source);
    put_uvarint(&w, (uint64_t)m->sources);
    put_svarint(&w, st);
    if (m->type != LP_MW_MARK) {
        const lp_member_record_t *r = &m->rec;
        put_str(&w, r->account, LP_ACCOUNT_KEY_MAX);
        put_str(&w, r->lead_id, LP_ID_MAX);
        put_uvarint(&w, r->seq);
        put_time(&w, r->event_ms, st);
        if (m->type == LP_MW_MEMBER) {
            unsigned flags = (r->last_activity_ms > 0 ? MF_LAST : 0u) |
                             (r->accepted_ms > 0 ? MF_ACCEPTED : 0u) |
                             (r->rejected_ms > 0 ? MF_REJECTED : 0u);
            put_num(&w, r->e);
            put_time(&w, r->ref_ms, st);
            put_u8(&w, (uint8_t)r->role);
            put_u8(&w, (uint8_t)r->fit_grade);
            put_u8(&w, r->stage);
            put_uvarint(&w, flags);
            if (flags & MF_LAST) {
                put_time(&w, r->last_activity_ms, st);
            }
            if (flags & MF_ACCEPTED) {
                put_time(&w, r->accepted_ms, st);
            }
            if (flags & MF_REJECTED) {
                put_time(&w, r->rejected_ms, st);
            }
        }
    }
    return w.overflow ? 0 : w.pos;
}

static int fail(char *why, size_t why_size, const char *reason) {
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "members record: %s", reason);
    }
    return LP_ERR;
}

int lp_member_msg_decode(lp_member_msg_t *m, const uint8_t *buf, size_t len, char *why,
                         size_t why_size) {
    reader_t r = {buf, len, 0, true};
    uint8_t version, type;
    uint64_t source, sources;
    if (m == NULL || buf == NULL) {
        return fail(why, why_size, "no value");
    }
    memset(m, 0, sizeof(*m));
    m->offset = -1;
    if (get_u8(&r, &version) != LP_OK) {
        return fail(why, why_size, "empty value");
    }
    if (version != MEMBER_WIRE_V1) {
        return fail(why, why_size, "unknown version");
    }
    if (get_u8(&r, &type) != LP_OK || get_uvarint(&r, &source) != LP_OK ||
        get_uvarint(&r, &sources) != LP_OK || get_svarint(&r, &m->st_ms) != LP_OK) {
        return fail(why, why_size, "truncated header");
    }
    if (type > LP_MW_MARK) {
        return fail(why, why_size, "unknown record type");
    }
    if (source >= LP_PARTITIONS_MAX || sources > LP_PARTITIONS_MAX) {
        return fail(why, why_size, "source partition out of range");
    }
    m->type = (lp_mw_type_t)type;
    m->source = (int32_t)source;
    m->sources = (int32_t)sources;
    if (m->type != LP_MW_MARK) {
        lp_member_record_t *rec = &m->rec;
        const int64_t st = m->st_ms;
        rec->leave = m->type == LP_MW_LEAVE;
        if (get_str(&r, rec->account, LP_ACCOUNT_KEY_MAX) != LP_OK ||
            get_str(&r, rec->lead_id, LP_ID_MAX) != LP_OK || get_uvarint(&r, &rec->seq) != LP_OK ||
            get_time(&r, st, &rec->event_ms) != LP_OK) {
            return fail(why, why_size, "truncated or malformed record");
        }
        if (m->type == LP_MW_MEMBER) {
            uint8_t role, grade, stage;
            uint64_t flags;
            if (get_num(&r, &rec->e) != LP_OK || get_time(&r, st, &rec->ref_ms) != LP_OK ||
                get_u8(&r, &role) != LP_OK || get_u8(&r, &grade) != LP_OK ||
                get_u8(&r, &stage) != LP_OK || get_uvarint(&r, &flags) != LP_OK ||
                (flags & ~(uint64_t)MF__ALL) != 0) {
                return fail(why, why_size, "truncated or malformed member view");
            }
            rec->role = (lp_role_t)role;
            rec->fit_grade = (char)grade;
            rec->stage = stage;
            if (((flags & MF_LAST) && (get_time(&r, st, &rec->last_activity_ms) != LP_OK ||
                                       rec->last_activity_ms <= 0)) ||
                ((flags & MF_ACCEPTED) &&
                 (get_time(&r, st, &rec->accepted_ms) != LP_OK || rec->accepted_ms <= 0)) ||
                ((flags & MF_REJECTED) &&
                 (get_time(&r, st, &rec->rejected_ms) != LP_OK || rec->rejected_ms <= 0))) {
                return fail(why, why_size, "malformed activity or acceptance time");
            }
        }
    }
    if (r.pos != r.len) {
        return fail(why, why_size, "trailing bytes");
    }
    const char *bad = invalid(m);
    if (bad != NULL) {
        return fail(why, why_size, bad);
    }
    return LP_OK;
}

int lp_member_bundle_add(lp_member_bundle_t *b, const lp_member_msg_t *m) {
    uint8_t buf[LP_MEMBER_WIRE_MAX];
    size_t n = m->type == LP_MW_MARK ? 0 : lp_member_msg_encode(m, buf, sizeof(buf));
    if (n == 0) {
        return LP_ERR;
    }
    if (b->len + n + 10 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 10) {
            cap *= 2;
        }
        uint8_t *grown = realloc(b->buf, cap);
        if (grown == NULL) {
            return LP_ERR;
        }
        b->buf = grown;
        b->cap = cap;
    }
    writer_t w = {b->buf, b->cap, b->len, false};
    put_uvarint(&w, n);
    put_bytes(&w, buf, n);
    b->len = w.pos;
    b->n++;
    return LP_OK;
}

size_t lp_member_bundle_bound(const lp_member_bundle_t *b) {
    return 2 + 10 + b->len;
}

size_t lp_member_bundle_finish(const lp_member_bundle_t *b, uint8_t *out, size_t size) {
    if (b->n == 0) {
        return 0;
    }
    writer_t w = {out, size, 0, false};
    put_u8(&w, MEMBER_WIRE_V1);
    put_u8(&w, LP_MW_BUNDLE);
    put_uvarint(&w, b->n);
    put_bytes(&w, b->buf, b->len);
    return w.overflow ? 0 : w.pos;
}

void lp_member_bundle_reset(lp_member_bundle_t *b) {
    b->len = 0;
    b->n = 0;
}

void lp_member_bundle_free(lp_member_bundle_t *b) {
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

int lp_member_value_foreach(const uint8_t *buf, size_t len,
                            int (*fn)(void *ctx, const lp_member_msg_t *m), void *ctx, char *why,
                            size_t why_size) {
    lp_member_msg_t m;
    if (buf == NULL || len < 2 || buf[0] != MEMBER_WIRE_V1 || buf[1] != LP_MW_BUNDLE) {
        if (lp_member_msg_decode(&m, buf, len, why, why_size) != LP_OK) {
            return LP_ERR;
        }
        return fn(ctx, &m);
    }
    reader_t r = {buf, len, 2, true};
    uint64_t count, n;
    if (get_uvarint(&r, &count) != LP_OK || count == 0) {
        return fail(why, why_size, "bundle without records");
    }
    for (uint64_t i = 0; i < count; i++) {
        if (get_uvarint(&r, &n) != LP_OK || n > r.len - r.pos) {
            return fail(why, why_size, "truncated bundle");
        }
        if (lp_member_msg_decode(&m, r.buf + r.pos, (size_t)n, why, why_size) != LP_OK) {
            return LP_ERR;
        }
        if (m.type == LP_MW_MARK) {
            return fail(why, why_size, "a mark in a bundle");
        }
        r.pos += (size_t)n;
        if (fn(ctx, &m) != LP_OK) {
            return LP_ERR;
        }
    }
    if (r.pos != r.len) {
        return fail(why, why_size, "trailing bytes after the bundle");
    }
    return LP_OK;
}

int lp_member_msg_cmp(const lp_member_msg_t *a, const lp_member_msg_t *b) {
    if (a->st_ms != b->st_ms) {
        return a->st_ms < b->st_ms ? -1 : 1;
    }
    int c = strcmp(a->rec.account, b->rec.account);
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    c = strcmp(a->rec.lead_id, b->rec.lead_id);
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    if (a->rec.seq != b->rec.seq) {
        return a->rec.seq < b->rec.seq ? -1 : 1;
    }
    return (int)a->rec.leave - (int)b->rec.leave;
}
