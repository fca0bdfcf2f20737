/* Validation shared by the Avro and JSON decoders, and the enum symbol tables. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec/codec_internal.h"

const char *const lp_codec_stage_symbols[LP_STAGE__COUNT] = {
    "SUSPECT",  "RESPONDER",    "WARM",       "MQL",        "SQL",
    "RECYCLED", "DISQUALIFIED", "CLOSED_WON", "CLOSED_LOST"};
const char *const lp_codec_stale_symbols[LP_CODEC_STALE_COUNT] = {"SLA_BREACHED", "INACTIVE",
                                                                  "COOLED"};
const char *const lp_codec_schema_names[LP_SCHEMA__ALL] = {
    "EngagementEvent", "LeadProfileUpdated", "SalesFeedback",    "LeadQualified",
    "LeadStale",       "LeadErased",         "AccountQualified", "AccountStale"};

int lp_codec_err(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;

    if (errstr != NULL && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return LP_ERR;
}

/* Whether none of the 8 bytes of v has its high bit set or is NUL (the common, ASCII case). A
 * borrow out of a NUL byte can flag the bytes above it too: a false alarm sends the caller to the
 * exact byte loop, never a wrong answer. */
static inline bool ascii_word(uint64_t v) {
    return ((v | (v - 0x0101010101010101ULL)) & 0x8080808080808080ULL) == 0;
}

static inline bool ascii8(const uint8_t *s) {
    uint64_t v;
    memcpy(&v, s, sizeof(v));
    return ascii_word(v);
}

size_t lp_codec_utf8_check(const uint8_t *s, size_t len) {
    size_t i = 0;

    while (i < len) {
        uint8_t c;
        /* Most strings are ASCII: skip them 8 bytes at a time, the loop below finds the exact
         * position of anything else. Callgrind put this function at 6% of the worker. */
        while (len - i >= 8 && ascii8(s + i)) {
            i += 8;
        }
        if (i == len) {
            break;
        }
        c = s[i];
        size_t need;
        uint32_t cp;
        uint32_t min;

        if (c == 0) {
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i; /* continuation byte, overlong lead (C0/C1) or > U+10FFFF lead */
        }
        if (len - i <= need) {
            return i;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return i;
        }
        i += need + 1;
    }
    return len;
}

size_t lp_codec_text_copy(char *dst, const uint8_t *s, size_t len) {
    size_t bad;
    uint64_t v;

    /* Decoded strings are short ASCII (ids, activity names, URLs): words of 8 bytes are checked
     * and stored together, and the tail is the last 8 bytes again (overlapping), so no string of
     * 8 bytes or more takes the byte loop. Anything else goes to the exact validator. */
    if (len >= 8) {
        size_t i = 0;
        for (; len - i >= 8; i += 8) {
            memcpy(&v, s + i, sizeof(v));
            if (!ascii_word(v)) {
                goto exact;
            }
            memcpy(dst + i, &v, sizeof(v));
        }
        if (i < len) {
            memcpy(&v, s + len - 8, sizeof(v));
            if (!ascii_word(v)) {
                goto exact;
            }
            memcpy(dst + len - 8, &v, sizeof(v));
        }
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0 || s[i] >= 0x80) {
            goto exact;
        }
        dst[i] = (char)s[i];
    }
    return len;
exact:
    bad = lp_codec_utf8_check(s, len);
    if (bad == len) {
        memcpy(dst, s, len);
    }
    return bad;
}

bool lp_codec_name_valid(const char *name) {
    if (name[0] == '\0') {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return false;
        }
    }
    return true;
}

int lp_codec_check_event(const lp_event_t *event, char *errstr, size_t errstr_size) {
    if (event->event_id[0] == '\0') {
        return lp_codec_err(errstr, errstr_size, "event_id is empty");
    }
    if (event->lead_id[0] == '\0') {
        return lp_codec_err(errstr, errstr_size, "lead_id is empty");
    }
    if (event->ts_ms < LP_CODEC_TS_MIN || event->ts_ms > LP_CODEC_TS_MAX) {
        return lp_codec_err(errstr, errstr_size,
                            "ts %lld out of range (milliseconds since 1970, before year 10000)",
                            (long long)event->ts_ms);
    }
    switch (event->kind) {
    case LP_EV_ENGAGEMENT:
        if (!lp_codec_name_valid(event->u.engagement.type)) {
            return lp_codec_err(errstr, errstr_size,
                                "type \"%s\" is not an activity name ([a-z0-9_]+)",
                                event->u.engagement.type);
        }
        if (event->u.engagement.seconds_since_send < -1) {
            return lp_codec_err(errstr, errstr_size, "seconds_since_send %lld is negative",
                                (long long)event->u.engagement.seconds_since_send);
        }
        break;
    case LP_EV_PROFILE:
        if (event->u.profile.company_size < -1) {
            return lp_codec_err(errstr, errstr_size, "company_size %lld is negative",
                                (long long)event->u.profile.company_size);
        }
        break;
    case LP_EV_FEEDBACK:
        if ((unsigned)event->u.feedback.outcome >= LP_FB__COUNT ||
            (unsigned)event->u.feedback.reason >= LP_REJ__COUNT) {
            return lp_codec_err(errstr, errstr_size, "outcome or reason out of range");
        }
        break;
    default:
        return lp_codec_err(errstr, errstr_size, "unknown event kind %d", (int)event->kind);
    }
    return LP_OK;
}

int lp_codec_symbol_find(const char *const *symbols, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        if (strcasecmp(symbols[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

void lp_codec_lower(const char *symbol, char *out, size_t out_size) {
    size_t i = 0;

    for (; symbol[i] != '\0' && i + 1 < out_size; i++) {
        out[i] = (char)tolower((unsigned char)symbol[i]);
    }
    out[i] = '\0';
}
