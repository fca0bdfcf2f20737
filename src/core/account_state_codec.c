/* The stored form of an account (lp_account_encode / lp_account_decode), in the conventions of
 * the lead format (core/byte_codec.h): integers are LEB128 varints (signed ones zigzag), times
 * relative to T (wrapping arithmetic, so any value round-trips), numbers as in the lead format
 * (a whole number below 1e15 as a zigzag varint << 1, else the byte 1 and 8 bytes little-endian),
 * strings as a varint length and their bytes.
 *
 * Version 1:
 *   u8 1 | flags (F_*) | account key | T (svarint) | qualification (varint)
 *   | [!armed] qualified_at | [F_SLA] sla deadline | [F_QUIET] quiet deadline   (times - T)
 *   | nmembers (1..LP_ACCOUNT_MEMBERS_MAX) | per member, in lead id order:
 *       lead id | seq | e (number) | ref - T | bits: stage | (grade - 'A') << 4 | role << 6
 *       | has last activity << 9 | has acceptance << 10 | has rejection << 11
 *       | [last activity - T] | [accepted - T] | [rejected - T]
 *   | nuntracked (0..LP_ACCOUNT_UNTRACKED_MAX) | per untracked lead, in id order: lead id | seq
 * The writer is canonical (one encoding per account). The reader trusts nothing: lengths, enums,
 * strictly ascending ids, no lead both member and untracked, non-negative times, the invariants
 * of the qualification state (armed: no qualification time, no timer, not accepted; a timer is
 * later than T; accepted: no SLA timer), and no trailing bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/byte_codec.h"
#include "leadpulse/account_state.h"
#include "leadpulse/score.h"

#define ACCOUNT_FORMAT_V1 1

enum {
    F_ARMED = 1u << 0,
    F_ACCEPTED = 1u << 1,
    F_SATURATED = 1u << 2,
    F_SLA = 1u << 3,
    F_QUIET = 1u << 4,
    F_REJECTED = 1u << 5,
    F__ALL = (1u << 6) - 1
};

enum { M_LAST = 1u << 9, M_ACCEPTED = 1u << 10, M_REJECTED = 1u << 11, M__ALL = (1u << 12) - 1 };

/* Bytes of a member at least (a 1-byte id and one byte per other field), of an untracked lead. */
#define MEMBER_MIN_BYTES 6
#define UNTRACKED_MIN_BYTES 3

size_t lp_account_encode_bound(const lp_account_state_t *a) {
    /* header: version, flags, key (length + bytes), T, qualification, three times */
    size_t header = 1 + 10 + 10 + LP_ACCOUNT_KEY_MAX + 10 + 10 + 3 * 10 + 2 * 10;
    size_t member = 10 + LP_ID_MAX + 10 + 9 + 10 + 10 + 10 + 10;
    size_t untracked = 10 + LP_ID_MAX + 10;
    return header + (size_t)(a->nmembers > 0 ? a->nmembers : 0) * member +
           (size_t)(a->nuntracked > 0 ? a->nuntracked : 0) * untracked;
}

size_t lp_account_encode(const lp_account_state_t *a, uint8_t *buf, size_t size) {
    writer_t w = {buf, size, 0, buf == NULL};
    int64_t t = a->t_ms;
    unsigned f = 0;

    if (a->nmembers <= 0 || a->members == NULL) {
        return 0;
    }
    f |= a->armed ? F_ARMED : 0;
    f |= a->accepted ? F_ACCEPTED : 0;
    f |= a->untracked_saturated ? F_SATURATED : 0;
    f |= a->sla_deadline_ms != 0 ? F_SLA : 0;
    f |= a->quiet_deadline_ms != 0 ? F_QUIET : 0;
    f |= a->rejected ? F_REJECTED : 0;
    put_bytes(&w, (const uint8_t[]){ACCOUNT_FORMAT_V1}, 1);
    put_uvarint(&w, f);
    put_str(&w, a->account, LP_ACCOUNT_KEY_MAX);
    put_uvarint(&w, zigzag64(t));
    put_uvarint(&w, a->qualification);
    if (!a->armed) {
        put_time(&w, a->qualified_at_ms, t);
    }
    if (f & F_SLA) {
        put_time(&w, a->sla_deadline_ms, t);
    }
    if (f & F_QUIET) {
        put_time(&w, a->quiet_deadline_ms, t);
    }
    put_uvarint(&w, (uint64_t)a->nmembers);
    for (int32_t i = 0; i < a->nmembers; i++) {
        const lp_member_view_t *m = &a->members[i];
        /* Out-of-range enums (the model never makes one) are written as bits the reader
         * refuses rather than as another valid value. */
        uint64_t bits = (uint64_t)m->stage | (uint64_t)(uint8_t)(m->fit_grade - 'A') << 4 |
                        (uint64_t)m->role << 6;
        if (m->stage >= LP_STAGE__COUNT || m->fit_grade < 'A' || m->fit_grade > 'D' ||
            m->role >= LP_ROLE__COUNT) {
            bits = UINT64_MAX;
        }
        bits |= m->last_activity_ms != 0 ? M_LAST : 0;
        bits |= m->accepted_ms != 0 ? M_ACCEPTED : 0;
        bits |= m->rejected_ms != 0 ? M_REJECTED : 0;
        put_str(&w, m->lead_id, LP_ID_MAX);
        put_uvarint(&w, m->seq);
        put_num(&w, m->e);
        put_time(&w, m->ref_ms, t);
        put_uvarint(&w, bits);
        if (m->last_activity_ms != 0) {
            put_time(&w, m->last_activity_ms, t);
        }
        if (m->accepted_ms != 0) {
            put_time(&w, m->accepted_ms, t);
        }
        if (m->rejected_ms != 0) {
            put_time(&w, m->rejected_ms, t);
        }
    }
    put_uvarint(&w, (uint64_t)(a->nuntracked > 0 ? a->nuntracked : 0));
    for (int32_t i = 0; i < a->nuntracked; i++) {
        put_str(&w, a->untracked[i].lead_id, LP_ID_MAX);
        put_uvarint(&w, a->untracked[i].seq);
    }
    return w.overflow ? 0 : w.pos;
}

/* A non-empty string of at most max bytes, without NULs (ids and keys are never empty). */
static int get_id(reader_t *r, char *dst, size_t max) {
    return get_str(r, dst, max) == LP_OK && dst[0] != '\0' ? LP_OK : LP_ERR;
}

static bool key_ok(const char *key) {
    size_t n = strlen(key);
    return (n > 3 && strncmp(key, "id:", 3) == 0) || (n > 7 && strncmp(key, "domain:", 7) == 0);
}

static int decode_member(reader_t *r, lp_member_view_t *m, int64_t t) {
    uint64_t bits;

    memset(m, 0, sizeof(*m));
    if (get_id(r, m->lead_id, LP_ID_MAX) != LP_OK || get_uvarint(r, &m->seq) != LP_OK ||
        get_num(r, &m->e) != LP_OK || get_time(r, t, &m->ref_ms) != LP_OK || m->ref_ms < 0 ||
        get_uvarint(r, &bits) != LP_OK || (bits & ~(uint64_t)M__ALL) != 0) {
        return LP_ERR;
    }
    m->stage = (uint8_t)(bits & 0xf);
    m->fit_grade = (char)('A' + ((bits >> 4) & 3));
    m->role = (uint8_t)((bits >> 6) & 7);
    if (m->stage >= LP_STAGE__COUNT || m->role >= LP_ROLE__COUNT) {
        return LP_ERR;
    }
    if ((bits & M_LAST) &&
        (get_time(r, t, &m->last_activity_ms) != LP_OK || m->last_activity_ms <= 0)) {
        return LP_ERR;
    }
    if ((bits & M_ACCEPTED) && (get_time(r, t, &m->accepted_ms) != LP_OK || m->accepted_ms <= 0)) {
        return LP_ERR;
    }
    if ((bits & M_REJECTED) && (get_time(r, t, &m->rejected_ms) != LP_OK || m->rejected_ms <= 0)) {
        return LP_ERR;
    }
    return LP_OK;
}

static int decode(reader_t *r, lp_account_state_t *a) {
    uint8_t version;
    uint64_t f, q, n;
    int64_t t;

    if (get_bytes(r, &version, 1) != LP_OK || version != ACCOUNT_FORMAT_V1 ||
        get_uvarint(r, &f) != LP_OK || (f & ~(uint64_t)F__ALL) != 0 ||
        get_id(r, a->account, LP_ACCOUNT_KEY_MAX) != LP_OK || !key_ok(a->account) ||
        get_uvarint(r, &n) != LP_OK || get_uvarint(r, &q) != LP_OK || q > UINT32_MAX) {
        return LP_ERR;
    }
    a->t_ms = t = unzigzag64(n);
    a->qualification = (uint32_t)q;
    a->armed = (f & F_ARMED) != 0;
    a->accepted = (f & F_ACCEPTED) != 0;
    a->rejected = (f & F_REJECTED) != 0;
    a->untracked_saturated = (f & F_SATURATED) != 0;
    if (t < 0) {
        return LP_ERR;
    }
    /* Armed: no qualification in progress. Disarmed: qualified at or before T; a timer is later
     * than T (those due by T fired); an accepted qualification has no SLA timer. */
    /* Rejected: neither accepted nor a timer. */
    if (a->armed ? (f & (F_ACCEPTED | F_SLA | F_QUIET | F_REJECTED)) != 0
                 : (q == 0 || ((f & F_ACCEPTED) && (f & F_SLA)) ||
                    ((f & F_REJECTED) && (f & (F_ACCEPTED | F_SLA | F_QUIET))))) {
        return LP_ERR;
    }
    if (!a->armed && (get_time(r, t, &a->qualified_at_ms) != LP_OK || a->qualified_at_ms < 0 ||
                      a->qualified_at_ms > t)) {
        return LP_ERR;
    }
    if ((f & F_SLA) && (get_time(r, t, &a->sla_deadline_ms) != LP_OK || a->sla_deadline_ms <= t)) {
        return LP_ERR;
    }
    if ((f & F_QUIET) &&
        (get_time(r, t, &a->quiet_deadline_ms) != LP_OK || a->quiet_deadline_ms <= t)) {
        return LP_ERR;
    }

    if (get_uvarint(r, &n) != LP_OK || n == 0 || n > LP_ACCOUNT_MEMBERS_MAX ||
        n > (r->len - r->pos) / MEMBER_MIN_BYTES) {
        return LP_ERR;
    }
    a->members = malloc((size_t)n * sizeof(lp_member_view_t));
    if (a->members == NULL) {
        return LP_ERR;
    }
    a->members_cap = (int32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        lp_member_view_t *m = &a->members[i];
        if (decode_member(r, m, t) != LP_OK ||
            (i > 0 && strcmp(a->members[i - 1].lead_id, m->lead_id) >= 0)) {
            return LP_ERR;
        }
        a->nmembers++;
    }

    if (get_uvarint(r, &n) != LP_OK || n > LP_ACCOUNT_UNTRACKED_MAX ||
        n > (r->len - r->pos) / UNTRACKED_MIN_BYTES) {
        return LP_ERR;
    }
    if (n > 0) {
        a->untracked = malloc((size_t)n * sizeof(lp_untracked_t));
        if (a->untracked == NULL) {
            return LP_ERR;
        }
        a->untracked_cap = (int32_t)n;
    }
    for (uint64_t i = 0; i < n; i++) {
        lp_untracked_t *u = &a->untracked[i];
        memset(u, 0, sizeof(*u));
        if (get_id(r, u->lead_id, LP_ID_MAX) != LP_OK || get_uvarint(r, &u->seq) != LP_OK ||
            (i > 0 && strcmp(a->untracked[i - 1].lead_id, u->lead_id) >= 0) ||
            lp_account_member(a, u->lead_id) != NULL) {
            return LP_ERR;
        }
        a->nuntracked++;
    }
    return r->pos == r->len ? LP_OK : LP_ERR;
}

int lp_account_decode(lp_account_state_t *a, const uint8_t *buf, size_t len) {
    reader_t r = {buf, len, 0, true};
    lp_account_state_t tmp;

    if (a == NULL || (buf == NULL && len > 0)) {
        return LP_ERR;
    }
    lp_account_init(&tmp);
    if (decode(&r, &tmp) != LP_OK) {
        lp_account_free(&tmp);
        return LP_ERR;
    }
    lp_account_free(a);
    *a = tmp;
    return LP_OK;
}
