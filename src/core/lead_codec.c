/* Compact binary form of a lead for the store.
 *
 * Common to both versions: integers are LEB128 varints (signed ones zigzag), times are stored
 * relative to ref_ms (wrapping arithmetic, so any value round-trips), doubles as 8 bytes
 * little-endian. Activities are stored by name, as a 32-bit hash of the name (4 bytes instead of
 * up to 33): a rules reload that reorders or removes activities keeps the state of the others,
 * and entries whose name the rules no longer have (or that two rule names share) are dropped.
 * Cap windows are stored relative to the window of ref_ms, so a changed cap_window_ms restarts
 * the count instead of leaving the lead "in the future".
 *
 * Version 1 (read only): a version byte, a varint of presence flags (F_*), the lead id, then the
 * fields whose flag is set, strings as a length and their bytes.
 *
 * Version 2 (written): the same fields, with what most leads have made smaller (the profile was
 * two thirds of a version-1 lead):
 *   u8 2 | flags (G_*, the common ones in the first 7 bits) | ref_ms | u8 stage << 2 | grade - 'A'
 *   | header of the lead id | the flagged scalars, in version 1's order (dq_reason as a string
 *   header) | profile: field mask, a string header per present field, company_size
 *   | activities and seen ids as in version 1 | the string payload.
 * A string header is a varint len << 2 | mode: raw (len bytes of 8 bits), Huffman (len bytes, in
 * the static code of lead_strings.c) or table (len is an index in the field's table of
 * well-known values, no payload). The payload is one bit stream (most significant bit first) of
 * the raw and Huffman strings in header order, zero-padded to the end of the last byte. The
 * writer picks table, else the shorter of Huffman and raw, so encoding is canonical.
 *
 * Version 3 (written): version 2 without the score when it is the sum of the contributions (the
 * reader sums them up: G_SCORE absent no longer means 0), and with the times that make the state
 * independent of arrival order: the profile section ends with the fields' update times (a varint
 * header: 1 when every field with a value has one and the same time, else the mask of fields with a
 * time << 2 | all-the-same
 * << 1; then the first time relative to ref_ms and, unless all are the same, each further one
 * relative to the first), G_FBTIME adds feedback_ms and recycled_at_ms,
 * and an activity entry's A_PAST adds the counts of its past cap windows (a varint mask of the
 * non-zero ones, bit k = LP_CAP_PAST window k, then a varint count each). Version 2 is read
 * as version 3 without them.
 *
 * The decoder trusts nothing: every length, enum and count is checked against the buffer and the
 * struct, and trailing bytes are an error. */
#include <math.h>
#include <string.h>

#include "core/core_internal.h"
#include "core/lead_strings.h"

#define LEAD_FORMAT_V1 1
#define LEAD_FORMAT_V2 2
#define LEAD_FORMAT_V3 3

/* Presence flags of version 1. */
enum {
    F_SCORE = 1u << 0,
    F_REF = 1u << 1,
    F_LAST = 1u << 2,
    F_STAGE = 1u << 3,
    F_FITP = 1u << 4,
    F_ARMED = 1u << 5,
    F_ACTS = 1u << 6,
    F_PROFILE = 1u << 7,
    F_SEEN = 1u << 8,
    F_MQLSEQ = 1u << 9,
    F_MQLAT = 1u << 10,
    F_COOL = 1u << 11,
    F_INACT = 1u << 12,
    F_SLA = 1u << 13,
    F_BREACHED = 1u << 14,
    F_DQ = 1u << 15,
    F_STALESEQ = 1u << 16,
    F_SLAREM = 1u << 17,
    F_REJ = 1u << 18,
    F__ALL = (1u << 19) - 1
};

/* Presence flags of version 2: the ones most leads have fit the varint's first byte. ref_ms,
 * stage and grade are always written; G_DISARMED because most leads are armed. */
enum {
    G_SEEN = 1u << 0,
    G_PROFILE = 1u << 1,
    G_FITP = 1u << 2,
    G_LAST = 1u << 3,
    G_ACTS = 1u << 4,
    G_SCORE = 1u << 5,
    G_DISARMED = 1u << 6,
    G_MQLSEQ = 1u << 7,
    G_MQLAT = 1u << 8,
    G_COOL = 1u << 9,
    G_INACT = 1u << 10,
    G_SLA = 1u << 11,
    G_BREACHED = 1u << 12,
    G_DQ = 1u << 13,
    G_STALESEQ = 1u << 14,
    G_SLAREM = 1u << 15,
    G_REJ = 1u << 16,
    G_KEYED = 1u << 17,  /* the lead id is not in the value: it is the key it is stored under */
    G_FBTIME = 1u << 18, /* version 3: feedback_ms and recycled_at_ms */
    G__ALL = (1u << 19) - 1
};

enum { S_RAW = 0, S_HUFF = 1, S_TABLE = 2 }; /* string modes of version 2 */

#define MAX_STRINGS 12 /* lead id, dq_reason, ten profile fields */

enum { A_POINTS = 1, A_CAP = 2, A_PAST = 4, A__ALL = 7 };

#define MAX_ENCODED_ACTS 1024 /* more entries than any rules file can name: malformed */

static uint32_t name_hash(const char *name) {
    return (uint32_t)lp_hash64(name, strnlen(name, LP_NAME_MAX), 0x6e616d65u /* "name" */);
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The cap window index of ref_ms for an activity (0 when the cap has no window). */
static int64_t ref_window(const lp_activity_rule_t *rule, int64_t ref) {
    return rule->cap_window_ms > 0 ? floor_div(ref, rule->cap_window_ms) : 0;
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *buf;
    size_t size, pos;
    bool overflow;
} writer_t;

static void put_bytes(writer_t *w, const void *data, size_t len) {
    if (w->overflow || len > w->size - w->pos) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->pos, data, len);
    w->pos += len;
}

static void put_u8(writer_t *w, uint8_t v) {
    put_bytes(w, &v, 1);
}

static void put_uvarint(writer_t *w, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    put_bytes(w, tmp, n);
}

static void put_svarint(writer_t *w, int64_t v) {
    put_uvarint(w, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

/* t relative to ref, wrapping: exact for every pair of int64 values. */
static void put_time(writer_t *w, int64_t t, int64_t ref) {
    put_svarint(w, (int64_t)((uint64_t)t - (uint64_t)ref));
}

static void put_u32le(writer_t *w, uint32_t v) {
    uint8_t tmp[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(w, tmp, 4);
}

static void put_u64le(writer_t *w, uint64_t v) {
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = (uint8_t)(v >> (8 * i));
    }
    put_bytes(w, tmp, 8);
}

static void put_f64(writer_t *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_u64le(w, bits);
}

/* Whole numbers (fit points usually are) as a varint, others as 8 bytes: tag bit 0. */
static void put_num(writer_t *w, double v) {
    if (v == trunc(v) && fabs(v) < 1e15) {
        int64_t i = (int64_t)v;
        put_uvarint(w, (((uint64_t)i << 1) ^ (i < 0 ? UINT64_MAX : 0)) << 1);
    } else {
        put_u8(w, 1);
        put_f64(w, v);
    }
}

/* ---- reader ------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
} reader_t;

static int get_bytes(reader_t *r, void *out, size_t n) {
    if (n > r->len - r->pos) {
        return LP_ERR;
    }
    memcpy(out, r->buf + r->pos, n);
    r->pos += n;
    return LP_OK;
}

static int get_u8(reader_t *r, uint8_t *v) {
    return get_bytes(r, v, 1);
}

static int get_uvarint(reader_t *r, uint64_t *v) {
    uint64_t out = 0;
    for (int i = 0; i < 10; i++) {
        uint8_t b;
        if (get_u8(r, &b) != LP_OK) {
            return LP_ERR;
        }
        if (i == 9 && b > 1) {
            return LP_ERR; /* more than 64 bits */
        }
        out |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = out;
            return LP_OK;
        }
    }
    return LP_ERR;
}

static int get_svarint(reader_t *r, int64_t *v) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK) {
        return LP_ERR;
    }
    *v = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return LP_OK;
}

static int get_u32(reader_t *r, uint32_t *v) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK || u > UINT32_MAX) {
        return LP_ERR;
    }
    *v = (uint32_t)u;
    return LP_OK;
}

static int get_count(reader_t *r, int32_t *v, uint64_t max) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK || u > max) {
        return LP_ERR;
    }
    *v = (int32_t)u;
    return LP_OK;
}

static int get_time(reader_t *r, int64_t ref, int64_t *t) {
    int64_t d;
    if (get_svarint(r, &d) != LP_OK) {
        return LP_ERR;
    }
    *t = (int64_t)((uint64_t)ref + (uint64_t)d);
    return LP_OK;
}

static int get_f64(reader_t *r, double *v) {
    uint8_t tmp[8];
    uint64_t bits = 0;
    if (get_bytes(r, tmp, 8) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)tmp[i] << (8 * i);
    }
    memcpy(v, &bits, sizeof(*v));
    return isfinite(*v) ? LP_OK : LP_ERR;
}

static int get_num(reader_t *r, double *v) {
    uint64_t tag;
    if (get_uvarint(r, &tag) != LP_OK) {
        return LP_ERR;
    }
    if (tag == 1) {
        return get_f64(r, v);
    }
    if ((tag & 1) != 0) {
        return LP_ERR;
    }
    uint64_t zz = tag >> 1;
    *v = (double)(int64_t)((zz >> 1) ^ (0 - (zz & 1)));
    return LP_OK;
}

/* A string of at most max bytes, without NULs, into dst (size max + 1). */
static int get_str(reader_t *r, char *dst, size_t max) {
    uint64_t len;
    if (get_uvarint(r, &len) != LP_OK || len > max || get_bytes(r, dst, (size_t)len) != LP_OK) {
        return LP_ERR;
    }
    if (memchr(dst, '\0', (size_t)len) != NULL) {
        return LP_ERR;
    }
    dst[len] = '\0';
    return LP_OK;
}

/* ---- profile ----------------------------------------------------------------------------- */

typedef struct {
    size_t offset, max;
    lp_strtab_t tab; /* well-known values (version 2) */
} pfield_t;

#define PF(name, max, tab)                                                                         \
    { offsetof(lp_profile_update_t, name), max, tab }
static const pfield_t profile_fields[] = {
    PF(email, LP_STR_MAX, LP_STRTAB_NONE),           PF(title, LP_STR_MAX, LP_STRTAB_NONE),
    PF(seniority, LP_NAME_MAX, LP_STRTAB_SENIORITY), PF(industry, LP_NAME_MAX, LP_STRTAB_INDUSTRY),
    PF(company, LP_STR_MAX, LP_STRTAB_NONE),         PF(country, LP_NAME_MAX, LP_STRTAB_NONE),
    PF(region, LP_NAME_MAX, LP_STRTAB_REGION),       PF(persona, LP_NAME_MAX, LP_STRTAB_NONE),
    PF(segment, LP_NAME_MAX, LP_STRTAB_SEGMENT),     PF(owner, LP_STR_MAX, LP_STRTAB_NONE),
};
#undef PF
#define NPFIELDS (sizeof(profile_fields) / sizeof(profile_fields[0]))
#define P_SIZE_BIT (1u << NPFIELDS)

static uint32_t profile_mask(const lp_profile_update_t *profile) {
    uint32_t mask = 0;
    for (size_t i = 0; i < NPFIELDS; i++) {
        if (((const char *)profile + profile_fields[i].offset)[0] != '\0') {
            mask |= 1u << i;
        }
    }
    if (profile->company_size >= 0) {
        mask |= P_SIZE_BIT;
    }
    return mask;
}

static int get_profile(reader_t *r, lp_profile_update_t *profile) {
    uint64_t mask;
    if (get_uvarint(r, &mask) != LP_OK || mask == 0 || (mask & ~(uint64_t)(P_SIZE_BIT * 2 - 1))) {
        return LP_ERR;
    }
    for (size_t i = 0; i < NPFIELDS; i++) {
        if (mask & (1u << i)) {
            char *s = (char *)profile + profile_fields[i].offset;
            if (get_str(r, s, profile_fields[i].max) != LP_OK || s[0] == '\0') {
                return LP_ERR;
            }
        }
    }
    if (mask & P_SIZE_BIT) {
        uint64_t size;
        if (get_uvarint(r, &size) != LP_OK || size > INT64_MAX) {
            return LP_ERR;
        }
        profile->company_size = (int64_t)size;
    }
    return LP_OK;
}

/* ---- lead -------------------------------------------------------------------------------- */

static int nacts(const lp_rules_t *rules) {
    int n = rules->nactivities;
    return n < 0 ? 0 : n > LP_MAX_ACTIVITIES ? LP_MAX_ACTIVITIES : n;
}

static uint32_t past_mask(const uint16_t past[LP_CAP_PAST]) {
    uint32_t mask = 0;
    for (int k = 0; k < LP_CAP_PAST; k++) {
        mask |= past[k] != 0 ? 1u << k : 0;
    }
    return mask;
}

static bool act_present(const lp_lead_t *lead, int i) {
    const lp_lead_activity_t *act = &lead->act[i];
    return act->points != 0.0 || act->cap_count != 0 || act->cap_window != 0 ||
           past_mask(lead->cap_past[i]) != 0;
}

/* ---- version 2 writer ---------------------------------------------------------------------- */

/* Strings whose bytes go to the payload, in header order. */
typedef struct {
    const lp_huff_t *huff;
    int n;
    size_t bits; /* of the payload */
    struct {
        const char *s;
        size_t len;
        int mode;
    } str[MAX_STRINGS];
} strings_t;

/* Writes the header of string s (max bytes at most) and queues its payload. */
static void put_string(writer_t *w, strings_t *strs, const char *s, size_t max, lp_strtab_t tab) {
    size_t len = strnlen(s, max);
    int idx = tab != LP_STRTAB_NONE ? lp_strtab_find(tab, s, len) : -1;
    if (idx >= 0) {
        put_uvarint(w, (uint64_t)idx << 2 | S_TABLE);
        return;
    }
    size_t bits = lp_huff_bits(strs->huff, s, len);
    int mode = bits < 8 * len ? S_HUFF : S_RAW;
    put_uvarint(w, (uint64_t)len << 2 | (uint64_t)mode);
    strs->bits += mode == S_HUFF ? bits : 8 * len;
    strs->str[strs->n].s = s;
    strs->str[strs->n].len = len;
    strs->str[strs->n].mode = mode;
    strs->n++;
}

/* Bits go through a 64-bit accumulator (right-aligned, fewer than 32 pending between codes) and
 * out 32 at a time, straight into the buffer: its room for the whole payload is checked once. */
static void put_payload(writer_t *w, const strings_t *strs) {
    size_t nbytes = (strs->bits + 7) / 8;
    if (w->overflow || nbytes > w->size - w->pos) {
        w->overflow = true;
        return;
    }
    const uint16_t *codes = strs->huff->code;
    const uint8_t *lens = strs->huff->len;
    uint8_t *out = w->buf + w->pos;
    uint64_t acc = 0;
    unsigned nacc = 0;
    for (int i = 0; i < strs->n; i++) {
        const uint8_t *s = (const uint8_t *)strs->str[i].s;
        size_t len = strs->str[i].len;
        bool huff = strs->str[i].mode == S_HUFF;
        for (size_t k = 0; k < len; k++) {
            unsigned bits = huff ? lens[s[k]] : 8;
            acc = acc << bits | (huff ? codes[s[k]] : s[k]);
            nacc += bits;
            if (nacc >= 32) {
                nacc -= 32;
                uint32_t v = (uint32_t)(acc >> nacc);
                out[0] = (uint8_t)(v >> 24);
                out[1] = (uint8_t)(v >> 16);
                out[2] = (uint8_t)(v >> 8);
                out[3] = (uint8_t)v;
                out += 4;
            }
        }
    }
    while (nacc >= 8) {
        nacc -= 8;
        *out++ = (uint8_t)(acc >> nacc);
    }
    if (nacc > 0) {
        *out++ = (uint8_t)(acc << (8 - nacc));
    }
    w->pos += nbytes;
}

/* The profile fields that have a value, as bits of the LP_PF_* indexes (profile_ms's order). */
static uint32_t present_fields(const lp_profile_update_t *p) {
    const char *const text[LP_PROFILE_FIELDS] = {p->email,   p->title,   p->seniority, p->industry,
                                                 p->company, NULL,       p->country,   p->region,
                                                 p->persona, p->segment, p->owner};
    uint32_t mask = 0;
    for (int i = 0; i < LP_PROFILE_FIELDS; i++) {
        bool set = i == LP_PF_COMPANY_SIZE ? p->company_size >= 0 : text[i][0] != '\0';
        mask |= set ? 1u << i : 0;
    }
    return mask;
}

/* The profile fields' update times. Header 1: every field with a value has one time, which
 * follows (the usual case: one byte of header); else mask << 2 | same << 1 (0: no times), then
 * the first time relative to ref and, unless all are the same, the others relative to it. */
static void put_profile_times(writer_t *w, const lp_profile_update_t *profile,
                              const int64_t ms[LP_PROFILE_FIELDS], int64_t ref) {
    uint32_t mask = 0;
    int first = -1;
    bool same = true;
    for (int i = 0; i < LP_PROFILE_FIELDS; i++) {
        if (ms[i] == 0) {
            continue;
        }
        mask |= 1u << i;
        if (first < 0) {
            first = i;
        } else if (ms[i] != ms[first]) {
            same = false;
        }
    }
    if (same && first >= 0 && mask == present_fields(profile)) {
        put_uvarint(w, 1);
    } else {
        put_uvarint(w, (uint64_t)mask << 2 | (same ? 2 : 0));
    }
    if (first < 0) {
        return;
    }
    put_time(w, ms[first], ref);
    for (int i = first + 1; i < LP_PROFILE_FIELDS && !same; i++) {
        if (mask & (1u << i)) {
            put_time(w, ms[i], ms[first]);
        }
    }
}

static uint32_t lead_flags(const lp_lead_t *lead, const lp_rules_t *rules) {
    uint32_t f = 0;
    int n = nacts(rules);
    /* Format 3 leaves out a score that is the sum of the contributions (always, for a lead the
     * core made): the decoder sums them up again (lp_core_total), which is 9 bytes less. */
    f |= !(lead->score == lp_core_total(lead, rules, 1.0)) ? G_SCORE : 0;
    f |= lead->last_activity_ms != 0 ? G_LAST : 0;
    f |= lead->fit_points != 0.0 ? G_FITP : 0;
    f |= lead->armed ? 0 : G_DISARMED;
    f |= lead->sla_breached ? G_BREACHED : 0;
    f |= lead->dq_reason[0] != '\0' ? G_DQ : 0;
    f |= lead->mql_seq != 0 ? G_MQLSEQ : 0;
    f |= lead->stale_seq != 0 ? G_STALESEQ : 0;
    f |= lead->mql_at_ms != 0 ? G_MQLAT : 0;
    f |= lead->sla_deadline_ms != 0 ? G_SLA : 0;
    f |= lead->sla_reminders != 0 ? G_SLAREM : 0;
    f |= lead->cooled_deadline_ms != 0 ? G_COOL : 0;
    f |= lead->inactive_deadline_ms != 0 ? G_INACT : 0;
    f |= lead->reject_reason != 0 || lead->reject_count != 0 ? G_REJ : 0;
    f |= profile_mask(&lead->profile) != 0 ? G_PROFILE : 0;
    for (int i = 0; i < n; i++) {
        if (act_present(lead, i)) {
            f |= G_ACTS;
            break;
        }
    }
    f |= lead->nseen > 0 ? G_SEEN : 0;
    f |= lead->feedback_ms != 0 || lead->recycled_at_ms != 0 ? G_FBTIME : 0;
    return f;
}

static size_t encode_v2(const lp_lead_t *lead, const lp_rules_t *rules, bool keyed, uint8_t *buf,
                        size_t size) {
    writer_t w = {buf, size, 0, false};
    strings_t strs = {lp_huff_get(), 0, 0, {{NULL, 0, 0}}};
    uint32_t f = lead_flags(lead, rules) | (keyed ? G_KEYED : 0);
    int64_t ref = lead->ref_ms;
    int n = nacts(rules);
    /* An out-of-range stage or grade (the core never makes one) is written as a byte the
     * decoder refuses, as version 1 did, rather than as another valid value. */
    uint8_t grade = (uint8_t)(lead->fit_grade - 'A');
    bool valid = grade < 4 && lead->stage < LP_STAGE__COUNT;

    put_u8(&w, LEAD_FORMAT_V3);
    put_uvarint(&w, f);
    put_svarint(&w, ref);
    put_u8(&w, valid ? (uint8_t)(lead->stage << 2 | grade) : 0xff);
    if (!keyed) {
        put_string(&w, &strs, lead->lead_id, LP_ID_MAX, LP_STRTAB_NONE);
    }
    if (f & G_SCORE) {
        put_f64(&w, lead->score);
    }
    if (f & G_LAST) {
        put_time(&w, lead->last_activity_ms, ref);
    }
    if (f & G_FITP) {
        put_num(&w, lead->fit_points);
    }
    if (f & G_DQ) {
        put_string(&w, &strs, lead->dq_reason, LP_NAME_MAX, LP_STRTAB_NONE);
    }
    if (f & G_MQLSEQ) {
        put_uvarint(&w, lead->mql_seq);
    }
    if (f & G_STALESEQ) {
        put_uvarint(&w, lead->stale_seq);
    }
    if (f & G_MQLAT) {
        put_time(&w, lead->mql_at_ms, ref);
    }
    if (f & G_SLA) {
        put_time(&w, lead->sla_deadline_ms, ref);
    }
    if (f & G_SLAREM) {
        put_uvarint(&w, (uint32_t)lead->sla_reminders);
    }
    if (f & G_COOL) {
        put_time(&w, lead->cooled_deadline_ms, ref);
    }
    if (f & G_INACT) {
        put_time(&w, lead->inactive_deadline_ms, ref);
    }
    if (f & G_REJ) {
        put_u8(&w, lead->reject_reason);
        put_uvarint(&w, lead->reject_count);
    }
    if (f & G_PROFILE) {
        const lp_profile_update_t *profile = &lead->profile;
        uint32_t mask = profile_mask(profile);
        put_uvarint(&w, mask);
        for (size_t i = 0; i < NPFIELDS; i++) {
            if (mask & (1u << i)) {
                const char *s = (const char *)profile + profile_fields[i].offset;
                put_string(&w, &strs, s, profile_fields[i].max, profile_fields[i].tab);
            }
        }
        if (mask & P_SIZE_BIT) {
            put_uvarint(&w, (uint64_t)profile->company_size);
        }
        put_profile_times(&w, &lead->profile, lead->profile_ms, ref);
    }
    if (f & G_FBTIME) {
        put_time(&w, lead->feedback_ms, ref);
        put_time(&w, lead->recycled_at_ms, ref);
    }
    if (f & G_ACTS) {
        int count = 0;
        for (int i = 0; i < n; i++) {
            count += act_present(lead, i) ? 1 : 0;
        }
        put_uvarint(&w, (uint64_t)count);
        for (int i = 0; i < n; i++) {
            const lp_lead_activity_t *act = &lead->act[i];
            if (!act_present(lead, i)) {
                continue;
            }
            uint32_t pmask = past_mask(lead->cap_past[i]);
            uint8_t af = (act->points != 0.0 ? A_POINTS : 0) |
                         (act->cap_count != 0 || act->cap_window != 0 || pmask != 0 ? A_CAP : 0) |
                         (pmask != 0 ? A_PAST : 0);
            put_u32le(&w, name_hash(rules->activities[i].name));
            put_u8(&w, af);
            if (af & A_POINTS) {
                put_f64(&w, act->points);
            }
            if (af & A_CAP) {
                int64_t base = ref_window(&rules->activities[i], ref);
                put_svarint(&w, (int64_t)((uint64_t)base - (uint64_t)act->cap_window));
                put_uvarint(&w, (uint32_t)act->cap_count);
            }
            if (af & A_PAST) {
                put_uvarint(&w, pmask);
                for (int k = 0; k < LP_CAP_PAST; k++) {
                    if (pmask & (1u << k)) {
                        put_uvarint(&w, lead->cap_past[i][k]);
                    }
                }
            }
        }
    }
    if (f & G_SEEN) {
        int nseen = lead->nseen > LP_DEDUP_MAX ? LP_DEDUP_MAX : lead->nseen;
        put_uvarint(&w, (uint64_t)nseen);
        put_uvarint(&w, (uint64_t)(lead->seen_pos < 0 ? 0 : lead->seen_pos));
        for (int i = 0; i < nseen; i++) {
            put_u64le(&w, lead->seen[i]);
        }
    }
    put_payload(&w, &strs);
    return w.overflow ? 0 : w.pos;
}

size_t lp_lead_encode(const lp_lead_t *lead, const lp_rules_t *rules, uint8_t *buf, size_t size) {
    return encode_v2(lead, rules, false, buf, size);
}

size_t lp_lead_encode_keyed(const lp_lead_t *lead, const lp_rules_t *rules, uint8_t *buf,
                            size_t size) {
    return encode_v2(lead, rules, true, buf, size);
}

/* ---- readers ----------------------------------------------------------------------------- */

static int decode_acts(reader_t *r, lp_lead_t *lead, const lp_rules_t *rules) {
    uint32_t hashes[LP_MAX_ACTIVITIES];
    uint64_t count;
    uint64_t taken = 0; /* rule indexes already filled: an activity twice is malformed */
    int n = nacts(rules);

    if (get_uvarint(r, &count) != LP_OK || count == 0 || count > MAX_ENCODED_ACTS) {
        return LP_ERR;
    }
    for (int i = 0; i < n; i++) {
        hashes[i] = name_hash(rules->activities[i].name);
    }
    for (uint64_t k = 0; k < count; k++) {
        uint8_t tmp[4], af;
        int64_t delta = 0;
        lp_lead_activity_t act = {0.0, 0, 0};
        if (get_bytes(r, tmp, 4) != LP_OK || get_u8(r, &af) != LP_OK || af == 0 ||
            (af & ~A__ALL) != 0) {
            return LP_ERR;
        }
        uint32_t h = (uint32_t)tmp[0] | (uint32_t)tmp[1] << 8 | (uint32_t)tmp[2] << 16 |
                     (uint32_t)tmp[3] << 24;
        if ((af & A_POINTS) && get_f64(r, &act.points) != LP_OK) {
            return LP_ERR;
        }
        if (af & A_CAP) {
            if (get_svarint(r, &delta) != LP_OK ||
                get_count(r, &act.cap_count, INT32_MAX) != LP_OK) {
                return LP_ERR;
            }
        }
        uint16_t past[LP_CAP_PAST] = {0};
        if (af & A_PAST) {
            uint64_t pmask;
            if (!(af & A_CAP) || get_uvarint(r, &pmask) != LP_OK || pmask == 0 ||
                pmask >= 1u << LP_CAP_PAST) {
                return LP_ERR;
            }
            for (int k = 0; k < LP_CAP_PAST; k++) {
                int32_t count;
                if (!(pmask & (1u << k))) {
                    continue;
                }
                if (get_count(r, &count, LP_CAP_COUNT_MAX) != LP_OK || count == 0) {
                    return LP_ERR;
                }
                past[k] = (uint16_t)count;
            }
        }
        int idx = -1;
        for (int i = 0; i < n; i++) {
            if (hashes[i] == h) {
                idx = idx < 0 ? i : n; /* n: two rule names share the hash */
            }
        }
        if (idx < 0 || idx >= n) {
            continue; /* the rules no longer have this activity (or cannot tell which) */
        }
        if (taken & (1ull << idx)) {
            return LP_ERR;
        }
        taken |= 1ull << idx;
        /* Without A_CAP the writer had no window (0): keep it 0, so decode(encode(x)) == x. */
        if (af & A_CAP) {
            int64_t base = ref_window(&rules->activities[idx], lead->ref_ms);
            act.cap_window = (int64_t)((uint64_t)base - (uint64_t)delta);
        }
        lead->act[idx] = act;
        memcpy(lead->cap_past[idx], past, sizeof(past));
    }
    return LP_OK;
}

static int decode_seen(reader_t *r, lp_lead_t *lead) {
    if (get_count(r, &lead->nseen, LP_DEDUP_MAX) != LP_OK || lead->nseen == 0 ||
        get_count(r, &lead->seen_pos, LP_DEDUP_MAX) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < lead->nseen; i++) {
        uint8_t tmp[8];
        if (get_bytes(r, tmp, 8) != LP_OK) {
            return LP_ERR;
        }
        lead->seen[i] = 0;
        for (int k = 0; k < 8; k++) {
            lead->seen[i] |= (uint64_t)tmp[k] << (8 * k);
        }
    }
    return LP_OK;
}

/* The lifecycle fields (sequence numbers, deadlines, rejection), stored in this order by both
 * versions; which are present is a bit set of L_* (each version maps its own flags to it). */
enum {
    L_MQLSEQ = 1u << 0,
    L_STALESEQ = 1u << 1,
    L_MQLAT = 1u << 2,
    L_SLA = 1u << 3,
    L_SLAREM = 1u << 4,
    L_COOL = 1u << 5,
    L_INACT = 1u << 6,
    L_REJ = 1u << 7,
    L__COUNT = 8
};
static const uint32_t v1_lifecycle[L__COUNT] = {F_MQLSEQ, F_STALESEQ, F_MQLAT, F_SLA,
                                                F_SLAREM, F_COOL,     F_INACT, F_REJ};
static const uint32_t v2_lifecycle[L__COUNT] = {G_MQLSEQ, G_STALESEQ, G_MQLAT, G_SLA,
                                                G_SLAREM, G_COOL,     G_INACT, G_REJ};

static unsigned lifecycle_bits(uint64_t f, const uint32_t flags[L__COUNT]) {
    unsigned l = 0;
    for (int i = 0; i < L__COUNT; i++) {
        l |= (f & flags[i]) ? 1u << i : 0;
    }
    return l;
}

static int decode_lifecycle(reader_t *r, lp_lead_t *lead, int64_t ref, unsigned l) {
    if (((l & L_MQLSEQ) && get_u32(r, &lead->mql_seq) != LP_OK) ||
        ((l & L_STALESEQ) && get_u32(r, &lead->stale_seq) != LP_OK) ||
        ((l & L_MQLAT) && get_time(r, ref, &lead->mql_at_ms) != LP_OK) ||
        ((l & L_SLA) && get_time(r, ref, &lead->sla_deadline_ms) != LP_OK) ||
        ((l & L_SLAREM) && get_count(r, &lead->sla_reminders, INT32_MAX) != LP_OK) ||
        ((l & L_COOL) && get_time(r, ref, &lead->cooled_deadline_ms) != LP_OK) ||
        ((l & L_INACT) && get_time(r, ref, &lead->inactive_deadline_ms) != LP_OK)) {
        return LP_ERR;
    }
    if ((l & L_REJ) &&
        (get_u8(r, &lead->reject_reason) != LP_OK || lead->reject_reason >= LP_REJ__COUNT ||
         get_u32(r, &lead->reject_count) != LP_OK)) {
        return LP_ERR;
    }
    return LP_OK;
}

/* Version 1, after the version byte. */
static int decode_v1(reader_t *r, lp_lead_t *lead, const lp_rules_t *rules) {
    uint64_t f;
    uint8_t b;
    int64_t ref = 0;

    if (get_uvarint(r, &f) != LP_OK || (f & ~(uint64_t)F__ALL) != 0) {
        return LP_ERR;
    }
    if (get_str(r, lead->lead_id, LP_ID_MAX) != LP_OK) {
        return LP_ERR;
    }
    if ((f & F_SCORE) && get_f64(r, &lead->score) != LP_OK) {
        return LP_ERR;
    }
    if ((f & F_REF) && get_svarint(r, &ref) != LP_OK) {
        return LP_ERR;
    }
    lead->ref_ms = ref;
    if ((f & F_LAST) && get_time(r, ref, &lead->last_activity_ms) != LP_OK) {
        return LP_ERR;
    }
    if (f & F_STAGE) {
        if (get_u8(r, &lead->stage) != LP_OK || lead->stage >= LP_STAGE__COUNT) {
            return LP_ERR;
        }
    }
    if (get_u8(r, &b) != LP_OK || b < 'A' || b > 'D') {
        return LP_ERR;
    }
    lead->fit_grade = (char)b;
    if ((f & F_FITP) && get_num(r, &lead->fit_points) != LP_OK) {
        return LP_ERR;
    }
    lead->armed = (f & F_ARMED) != 0;
    lead->sla_breached = (f & F_BREACHED) != 0;
    if ((f & F_DQ) && get_str(r, lead->dq_reason, LP_NAME_MAX) != LP_OK) {
        return LP_ERR;
    }
    if (decode_lifecycle(r, lead, ref, lifecycle_bits(f, v1_lifecycle)) != LP_OK) {
        return LP_ERR;
    }
    if ((f & F_PROFILE) && get_profile(r, &lead->profile) != LP_OK) {
        return LP_ERR;
    }
    if ((f & F_ACTS) && decode_acts(r, lead, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((f & F_SEEN) && decode_seen(r, lead) != LP_OK) {
        return LP_ERR;
    }
    return r->pos == r->len ? LP_OK : LP_ERR;
}

/* Strings of version 2 whose bytes are in the payload. */
typedef struct {
    int n;
    struct {
        char *dst;
        size_t len;
        int mode;
    } str[MAX_STRINGS];
} pending_t;

/* A string header: a table value is copied now, raw and Huffman strings wait for the payload.
 * nonempty: the writer never writes an empty one (a profile field, dq_reason). */
static int get_string(reader_t *r, pending_t *pend, char *dst, size_t max, lp_strtab_t tab,
                      bool nonempty) {
    uint64_t h;
    if (get_uvarint(r, &h) != LP_OK) {
        return LP_ERR;
    }
    uint64_t len = h >> 2;
    int mode = (int)(h & 3);
    if (mode == S_TABLE) {
        const char *value = lp_strtab_get(tab, len);
        if (value == NULL || strlen(value) > max) {
            return LP_ERR;
        }
        memcpy(dst, value, strlen(value) + 1);
        return LP_OK;
    }
    if ((mode != S_RAW && mode != S_HUFF) || len > max || (nonempty && len == 0) ||
        pend->n >= MAX_STRINGS) {
        return LP_ERR;
    }
    pend->str[pend->n].dst = dst;
    pend->str[pend->n].len = (size_t)len;
    pend->str[pend->n].mode = mode;
    pend->n++;
    return LP_OK;
}

/* The payload: the pending strings, then zero bits to the end of the buffer. */
static int get_payload(reader_t *r, const pending_t *pend) {
    const lp_huff_t *huff = lp_huff_get();
    lp_bitreader_t br = {r->buf + r->pos, r->len - r->pos, 0};
    for (int i = 0; i < pend->n; i++) {
        char *dst = pend->str[i].dst;
        if (pend->str[i].mode == S_HUFF) {
            if (lp_huff_decode_n(huff, &br, dst, pend->str[i].len) != 0 ||
                strnlen(dst, pend->str[i].len) != pend->str[i].len) {
                return LP_ERR; /* truncated, or a NUL */
            }
            dst[pend->str[i].len] = '\0';
            continue;
        }
        for (size_t k = 0; k < pend->str[i].len; k++) {
            int sym = 0;
            if (br.bitpos + 8 <= br.len * 8) {
                size_t byte = br.bitpos >> 3;
                unsigned shift = (unsigned)(br.bitpos & 7);
                unsigned window = (unsigned)br.buf[byte] << 8;
                if (byte + 1 < br.len) {
                    window |= br.buf[byte + 1];
                }
                sym = (int)((window >> (8 - shift)) & 0xff);
                br.bitpos += 8;
            } else {
                sym = -1;
            }
            if (sym <= 0) {
                return LP_ERR; /* truncated, or a NUL */
            }
            dst[k] = (char)sym;
        }
        dst[pend->str[i].len] = '\0';
    }
    /* Canonical end: the padding of the last byte is zero and no byte follows. */
    size_t used = (br.bitpos + 7) / 8;
    if (used != br.len) {
        return LP_ERR;
    }
    if ((br.bitpos & 7) != 0 && (br.buf[used - 1] & (0xffu >> (br.bitpos & 7))) != 0) {
        return LP_ERR;
    }
    r->pos = r->len;
    return LP_OK;
}

static int decode_profile_v2(reader_t *r, pending_t *pend, lp_profile_update_t *profile) {
    uint64_t mask;
    if (get_uvarint(r, &mask) != LP_OK || mask == 0 || (mask & ~(uint64_t)(P_SIZE_BIT * 2 - 1))) {
        return LP_ERR;
    }
    for (size_t i = 0; i < NPFIELDS; i++) {
        if (mask & (1u << i)) {
            char *s = (char *)profile + profile_fields[i].offset;
            if (get_string(r, pend, s, profile_fields[i].max, profile_fields[i].tab, true) !=
                LP_OK) {
                return LP_ERR;
            }
        }
    }
    if (mask & P_SIZE_BIT) {
        uint64_t size;
        if (get_uvarint(r, &size) != LP_OK || size > INT64_MAX) {
            return LP_ERR;
        }
        profile->company_size = (int64_t)size;
    }
    return LP_OK;
}

/* Version 2, after the version byte. key: the id a keyed value is stored under (NULL: none). */
/* Reads the profile times. Header 1 (one time for every field with a value) leaves the time in
 * *all: which fields have a value is known only once the string payload is read. */
static int decode_profile_times(reader_t *r, int64_t ms[LP_PROFILE_FIELDS], int64_t ref,
                                int64_t *all) {
    uint64_t h;
    int first = -1;
    *all = 0;
    if (get_uvarint(r, &h) != LP_OK || (h != 1 && (h & 1) != 0) ||
        (h >> 2) >= 1u << LP_PROFILE_FIELDS) {
        return LP_ERR;
    }
    if (h == 1) {
        return get_time(r, ref, all) != LP_OK || *all == 0 ? LP_ERR : LP_OK;
    }
    uint32_t mask = (uint32_t)(h >> 2);
    bool same = (h & 2) != 0;
    for (int i = 0; i < LP_PROFILE_FIELDS; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        if (first < 0) {
            first = i;
            if (get_time(r, ref, &ms[i]) != LP_OK || ms[i] == 0) {
                return LP_ERR;
            }
        } else if (same) {
            ms[i] = ms[first];
        } else if (get_time(r, ms[first], &ms[i]) != LP_OK || ms[i] == 0) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* Versions 2 and 3, after the version byte. */
static int decode_v2(reader_t *r, lp_lead_t *lead, const lp_rules_t *rules, const char *key,
                     int version) {
    pending_t pend = {0};
    uint64_t f;
    uint8_t b;
    int64_t ref;

    if (get_uvarint(r, &f) != LP_OK || (f & ~(uint64_t)G__ALL) != 0 ||
        get_svarint(r, &ref) != LP_OK || get_u8(r, &b) != LP_OK) {
        return LP_ERR;
    }
    lead->ref_ms = ref;
    lead->stage = b >> 2;
    lead->fit_grade = (char)('A' + (b & 3));
    if (lead->stage >= LP_STAGE__COUNT) {
        return LP_ERR;
    }
    if (f & G_KEYED) {
        size_t klen = key != NULL ? strnlen(key, LP_ID_MAX + 1) : 0;
        if (klen == 0 || klen > LP_ID_MAX) {
            return LP_ERR; /* a keyed value is only readable with its key */
        }
        memcpy(lead->lead_id, key, klen + 1);
    } else if (get_string(r, &pend, lead->lead_id, LP_ID_MAX, LP_STRTAB_NONE, false) != LP_OK) {
        return LP_ERR;
    }
    if ((f & G_SCORE) && get_f64(r, &lead->score) != LP_OK) {
        return LP_ERR;
    }
    if ((f & G_LAST) && get_time(r, ref, &lead->last_activity_ms) != LP_OK) {
        return LP_ERR;
    }
    if ((f & G_FITP) && get_num(r, &lead->fit_points) != LP_OK) {
        return LP_ERR;
    }
    lead->armed = (f & G_DISARMED) == 0;
    lead->sla_breached = (f & G_BREACHED) != 0;
    if ((f & G_DQ) &&
        get_string(r, &pend, lead->dq_reason, LP_NAME_MAX, LP_STRTAB_NONE, true) != LP_OK) {
        return LP_ERR;
    }
    if (decode_lifecycle(r, lead, ref, lifecycle_bits(f, v2_lifecycle)) != LP_OK) {
        return LP_ERR;
    }
    if ((f & G_PROFILE) && decode_profile_v2(r, &pend, &lead->profile) != LP_OK) {
        return LP_ERR;
    }
    int64_t all_ms = 0;
    if (version >= LEAD_FORMAT_V3 && (f & G_PROFILE) &&
        decode_profile_times(r, lead->profile_ms, ref, &all_ms) != LP_OK) {
        return LP_ERR;
    }
    if (f & G_FBTIME) {
        if (version < LEAD_FORMAT_V3 || get_time(r, ref, &lead->feedback_ms) != LP_OK ||
            get_time(r, ref, &lead->recycled_at_ms) != LP_OK) {
            return LP_ERR;
        }
    }
    if ((f & G_ACTS) && decode_acts(r, lead, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((f & G_SEEN) && decode_seen(r, lead) != LP_OK) {
        return LP_ERR;
    }
    if (version >= LEAD_FORMAT_V3 && !(f & G_SCORE)) {
        lead->score = lp_core_total(lead, rules, 1.0);
    }
    if (get_payload(r, &pend) != LP_OK) {
        return LP_ERR;
    }
    if (all_ms != 0) {
        uint32_t mask = present_fields(&lead->profile);
        if (mask == 0) {
            return LP_ERR;
        }
        for (int i = 0; i < LP_PROFILE_FIELDS; i++) {
            lead->profile_ms[i] = mask & (1u << i) ? all_ms : 0;
        }
    }
    return LP_OK;
}

static int decode_body(reader_t *r, lp_lead_t *lead, const lp_rules_t *rules, const char *key) {
    uint8_t version;
    if (get_u8(r, &version) != LP_OK) {
        return LP_ERR;
    }
    switch (version) {
    case LEAD_FORMAT_V1:
        return decode_v1(r, lead, rules);
    case LEAD_FORMAT_V2:
    case LEAD_FORMAT_V3:
        return decode_v2(r, lead, rules, key, version);
    default:
        return LP_ERR;
    }
}

static int decode_lead(lp_lead_t *lead, const lp_rules_t *rules, const char *key,
                       const uint8_t *buf, size_t len) {
    lp_lead_t tmp;
    reader_t r = {buf, len, 0};

    if (buf == NULL && len != 0) {
        return LP_ERR;
    }
    memset(&tmp, 0, sizeof(tmp));
    tmp.profile.company_size = -1;
    tmp.stage = LP_STAGE_SUSPECT;
    if (decode_body(&r, &tmp, rules, key) != LP_OK) {
        return LP_ERR;
    }
    *lead = tmp;
    return LP_OK;
}

int lp_lead_decode(lp_lead_t *lead, const lp_rules_t *rules, const uint8_t *buf, size_t len) {
    return decode_lead(lead, rules, NULL, buf, len);
}

int lp_lead_decode_keyed(lp_lead_t *lead, const lp_rules_t *rules, const char *lead_id,
                         const uint8_t *buf, size_t len) {
    return decode_lead(lead, rules, lead_id, buf, len);
}
