/* The writer of the lead format (core/lead_format.h): version 3, canonical. */
#include "core/lead_format.h"

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

    unsigned v5 = (lead->profile.account_id[0] != '\0' ? V5_ACCOUNT_ID : 0u) |
                  (lead->accepted_ms != 0 ? V5_ACCEPTED : 0u) |
                  (lead->member_seq != 0 ? V5_MEMBER_SEQ : 0u);
    put_u8(&w, v5 != 0 ? LEAD_FORMAT_V5 : LEAD_FORMAT_V4);
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
            uint8_t b6[6];
            for (int k = 0; k < 6; k++) {
                b6[k] = (uint8_t)(lead->seen[i] >> (8 * k));
            }
            put_bytes(&w, b6, sizeof(b6));
        }
    }
    if (v5 != 0) {
        put_uvarint(&w, v5);
        if (v5 & V5_ACCOUNT_ID) {
            size_t len = strnlen(lead->profile.account_id, LP_ID_MAX);
            put_uvarint(&w, len);
            put_bytes(&w, lead->profile.account_id, len);
            put_time(&w, lead->account_id_ms, ref);
        }
        if (v5 & V5_ACCEPTED) {
            put_time(&w, lead->accepted_ms, ref);
        }
        if (v5 & V5_MEMBER_SEQ) {
            put_uvarint(&w, lead->member_seq);
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
