/* Shared by the harnesses: how a broken property is reported (an abort, which libFuzzer and
 * replay_main both treat as a crash), and the objects every input reuses. */
#ifndef LP_FUZZ_UTIL_H
#define LP_FUZZ_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadpulse/codec.h"
#include "leadpulse/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SCHEMA_IDS                                                                            \
    { 101, 102, 103, 201, 202, 203 }

static void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fuzz_fail(const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    fputs("property violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* A decoder that fails must say why: a non-empty, NUL-terminated reason. */
static inline void fuzz_check_reason(const char *what, const char *errstr, size_t size) {
    if (memchr(errstr, '\0', size) == NULL || errstr[0] == '\0') {
        fuzz_fail("%s failed without a reason", what);
    }
}

/* Each NUL-terminated field of a decoded struct must end inside its array. */
#define FUZZ_CHECK_STR(field)                                                                      \
    do {                                                                                           \
        if (memchr((field), '\0', sizeof(field)) == NULL) {                                        \
            fuzz_fail("%s is not NUL-terminated", #field);                                         \
        }                                                                                          \
    } while (0)

/* What both event decoders promise about an event they accept. */
static inline void fuzz_check_event(const lp_event_t *ev) {
    if ((unsigned)ev->kind > LP_EV_FEEDBACK) {
        fuzz_fail("kind %d", (int)ev->kind);
    }
    FUZZ_CHECK_STR(ev->event_id);
    FUZZ_CHECK_STR(ev->lead_id);
    if (ev->event_id[0] == '\0' || ev->lead_id[0] == '\0') {
        fuzz_fail("accepted an empty event_id or lead_id");
    }
    if (ev->ts_ms < 0) {
        fuzz_fail("accepted ts %lld", (long long)ev->ts_ms);
    }
    if (ev->kind == LP_EV_ENGAGEMENT) {
        FUZZ_CHECK_STR(ev->u.engagement.type);
        FUZZ_CHECK_STR(ev->u.engagement.url);
        FUZZ_CHECK_STR(ev->u.engagement.asset_id);
        FUZZ_CHECK_STR(ev->u.engagement.campaign_id);
        if (ev->u.engagement.seconds_since_send < -1) {
            fuzz_fail("seconds_since_send %lld", (long long)ev->u.engagement.seconds_since_send);
        }
    } else if (ev->kind == LP_EV_PROFILE) {
        FUZZ_CHECK_STR(ev->u.profile.email);
        FUZZ_CHECK_STR(ev->u.profile.owner);
        if (ev->u.profile.company_size < -1) {
            fuzz_fail("company_size %lld", (long long)ev->u.profile.company_size);
        }
    } else if ((unsigned)ev->u.feedback.outcome >= LP_FB__COUNT ||
               (unsigned)ev->u.feedback.reason >= LP_REJ__COUNT) {
        fuzz_fail("feedback enum out of range");
    }
}

/* The codec over the schemas/ files; built once, kept for the whole run. */
static inline lp_avro_codec_t *fuzz_codec(void) {
    static lp_avro_codec_t *codec;
    if (codec == NULL) {
        const int32_t ids[LP_SCHEMA__COUNT] = FUZZ_SCHEMA_IDS;
        char err[LP_ERRSTR] = "";
        codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
        if (codec == NULL) {
            fuzz_fail("lp_avro_codec_new(%s): %s", LP_SCHEMA_DIR, err);
        }
    }
    return codec;
}

/* The default scoring model (config/rules.yaml); loaded once. */
static inline const lp_rules_t *fuzz_default_rules(void) {
    static lp_rules_t *rules;
    if (rules == NULL) {
        char err[LP_ERRSTR] = "";
        rules = lp_rules_load(LP_SOURCE_DIR "/config/rules.yaml", err, sizeof(err));
        if (rules == NULL) {
            fuzz_fail("lp_rules_load: %s", err);
        }
    }
    return rules;
}

#endif
