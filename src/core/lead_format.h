/* Compact binary form of a lead for the store: the format, and the primitives its writer
 * (lead_encode.c) and reader (lead_decode.c) share. Not a public contract.
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
 * struct, and trailing bytes are an error.
 *
 * Version 4 (written): version 3 with each de-duplication entry in 6 bytes (little-endian) instead
 * of 8: the ring holds 48-bit hashes of event ids (LP_SEEN_MASK). Versions 1 to 3 are read with
 * their entries cut to 48 bits, so a redelivery after an upgrade is still recognised.
 *
 * Version 5 (written when a lead has any of them, else version 4 byte for byte): version 4 with,
 * after the de-duplication entries and before the string payload, the values of account
 * qualification: a varint of flags (V5_*, at least one set) | [account_id as a raw string (1..64
 * bytes) | its time - ref] | [accepted_ms - ref] | [member_seq (varint, > 0)]. */
#ifndef LEADPULSE_CORE_LEAD_FORMAT_H
#define LEADPULSE_CORE_LEAD_FORMAT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/byte_codec.h"
#include "core/core_internal.h"
#include "core/lead_strings.h"

#define LEAD_FORMAT_V1 1
#define LEAD_FORMAT_V2 2
#define LEAD_FORMAT_V3 3
#define LEAD_FORMAT_V4 4
#define LEAD_FORMAT_V5 5

/* Version 5's section (account qualification), before the string payload. */
enum { V5_ACCOUNT_ID = 1u, V5_ACCEPTED = 2u, V5_MEMBER_SEQ = 4u, V5__ALL = 7u };

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

static inline uint32_t name_hash(const char *name) {
    return (uint32_t)lp_hash64(name, strnlen(name, LP_NAME_MAX), 0x6e616d65u /* "name" */);
}

static inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The cap window index of ref_ms for an activity (0 when the cap has no window). */
static inline int64_t ref_window(const lp_activity_rule_t *rule, int64_t ref) {
    return rule->cap_window_ms > 0 ? floor_div(ref, rule->cap_window_ms) : 0;
}

/* The writer and reader (writer_t, reader_t, put_*, get_*) are core/byte_codec.h's: the same
 * primitives as the account state and the members topic's records. */

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

static inline uint32_t profile_mask(const lp_profile_update_t *profile) {
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

/* company_size, a varint (the profile mask's P_SIZE_BIT says it follows). */
static inline int get_company_size(reader_t *r, lp_profile_update_t *profile) {
    uint64_t size;
    if (get_uvarint(r, &size) != LP_OK || size > INT64_MAX) {
        return LP_ERR;
    }
    profile->company_size = (int64_t)size;
    return LP_OK;
}

static inline int get_profile(reader_t *r, lp_profile_update_t *profile) {
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
    return (mask & P_SIZE_BIT) ? get_company_size(r, profile) : LP_OK;
}

/* ---- lead -------------------------------------------------------------------------------- */

static inline int nacts(const lp_rules_t *rules) {
    int n = rules->nactivities;
    return n < 0 ? 0 : n > LP_MAX_ACTIVITIES ? LP_MAX_ACTIVITIES : n;
}

static inline uint32_t past_mask(const uint16_t past[LP_CAP_PAST]) {
    uint32_t mask = 0;
    for (int k = 0; k < LP_CAP_PAST; k++) {
        mask |= past[k] != 0 ? 1u << k : 0;
    }
    return mask;
}

static inline bool act_present(const lp_lead_t *lead, int i) {
    const lp_lead_activity_t *act = &lead->act[i];
    return act->points != 0.0 || act->cap_count != 0 || act->cap_window != 0 ||
           past_mask(lead->cap_past[i]) != 0;
}

/* Mask of the profile fields with a value, by LP_PF_* (the fields that have update times). */
static inline uint32_t present_fields(const lp_profile_update_t *p) {
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

#endif
