/* The reader of the lead format (core/lead_format.h): versions 1 to 4; trusts nothing. */
#include "core/lead_format.h"

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

/* width: bytes per entry (8 before version 4, 6 from it); entries are cut to 48 bits. */
static int decode_seen(reader_t *r, lp_lead_t *lead, int width) {
    if (get_count(r, &lead->nseen, LP_DEDUP_MAX) != LP_OK || lead->nseen == 0 ||
        get_count(r, &lead->seen_pos, LP_DEDUP_MAX) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < lead->nseen; i++) {
        uint8_t tmp[8];
        if (get_bytes(r, tmp, (size_t)width) != LP_OK) {
            return LP_ERR;
        }
        lead->seen[i] = 0;
        for (int k = 0; k < width; k++) {
            lead->seen[i] |= (uint64_t)tmp[k] << (8 * k);
        }
        lead->seen[i] &= LP_SEEN_MASK;
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
    if ((f & F_SEEN) && decode_seen(r, lead, 8) != LP_OK) {
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
    return (mask & P_SIZE_BIT) ? get_company_size(r, profile) : LP_OK;
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
/* Version 5's section: account_id with its time, accepted_ms, member_seq. */
static int decode_v5(reader_t *r, lp_lead_t *lead, int64_t ref) {
    uint64_t f;
    if (get_uvarint(r, &f) != LP_OK || f == 0 || (f & ~(uint64_t)V5__ALL) != 0) {
        return LP_ERR;
    }
    if (f & V5_ACCOUNT_ID) {
        if (get_str(r, lead->profile.account_id, LP_ID_MAX) != LP_OK ||
            lead->profile.account_id[0] == '\0' ||
            get_time(r, ref, &lead->account_id_ms) != LP_OK || lead->account_id_ms < 0) {
            return LP_ERR;
        }
    }
    if ((f & V5_ACCEPTED) &&
        (get_time(r, ref, &lead->accepted_ms) != LP_OK || lead->accepted_ms <= 0)) {
        return LP_ERR;
    }
    if ((f & V5_MEMBER_SEQ) &&
        (get_uvarint(r, &lead->member_seq) != LP_OK || lead->member_seq == 0)) {
        return LP_ERR;
    }
    return LP_OK;
}

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
    if ((f & G_SEEN) && decode_seen(r, lead, version >= LEAD_FORMAT_V4 ? 6 : 8) != LP_OK) {
        return LP_ERR;
    }
    if (version >= LEAD_FORMAT_V5 && decode_v5(r, lead, ref) != LP_OK) {
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
    case LEAD_FORMAT_V4:
    case LEAD_FORMAT_V5:
        return decode_v2(r, lead, rules, key, version);
    default:
        return LP_ERR;
    }
}

static int decode_lead(lp_lead_t *lead, const lp_rules_t *rules, const char *key,
                       const uint8_t *buf, size_t len) {
    lp_lead_t tmp;
    reader_t r = {buf, len, 0, false};

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
