/* lp_avro_decode_fact / lp_avro_decode_fact_as over arbitrary bytes (LeadQualified, LeadStale,
 * LeadErased: what a downstream consumer of leads.mql / leads.stale / leads.erased reads).
 * Properties: no crash or UB; a failure gives a reason; an accepted fact is in range and
 * re-encodes to the same fact; an accepted erasure holds nothing but its own fields. */
#include "fuzz_util.h"

static void check_fact(const lp_fact_t *fact) {
    FUZZ_CHECK_STR(fact->event_id);
    FUZZ_CHECK_STR(fact->lead_id);
    FUZZ_CHECK_STR(fact->model_id);
    FUZZ_CHECK_STR(fact->model_version);
    FUZZ_CHECK_STR(fact->profile.title);
    if (fact->kind == LP_FACT_ERASED) {
        lp_fact_t only;
        memset(&only, 0, sizeof(only));
        only.profile.company_size = -1;
        only.kind = LP_FACT_ERASED;
        memcpy(only.event_id, fact->event_id, sizeof(only.event_id));
        memcpy(only.lead_id, fact->lead_id, sizeof(only.lead_id));
        only.ts_ms = fact->ts_ms;
        only.had_state = fact->had_state;
        only.suppressed_until_ms = fact->suppressed_until_ms;
        if (fact->event_id[0] == '\0' || memcmp(&only, fact, sizeof(only)) != 0) {
            fuzz_fail("an erasure holds more than event_id, lead_id, ts, had_state and "
                      "suppressed_until");
        }
        return;
    }
    if (fact->kind != LP_FACT_QUALIFIED && fact->kind != LP_FACT_STALE) {
        fuzz_fail("kind %d", (int)fact->kind);
    }
    if (fact->fit_grade < 'A' || fact->fit_grade > 'D' || fact->stage >= LP_STAGE__COUNT) {
        fuzz_fail("grade or stage out of range");
    }
    if (fact->ntop < 0 || fact->ntop > LP_TOP_N) {
        fuzz_fail("ntop %d", fact->ntop);
    }
    for (int i = 0; i < fact->ntop; i++) {
        FUZZ_CHECK_STR(fact->top[i].activity);
    }
}

static void roundtrip(lp_avro_codec_t *codec, const lp_fact_t *fact) {
    static const lp_framing_t framings[] = {LP_FRAMING_CONFLUENT, LP_FRAMING_SINGLE_OBJECT,
                                            LP_FRAMING_RAW};
    int kind = LP_SCHEMA_QUALIFIED + (int)fact->kind;
    uint8_t buf[8192];

    for (size_t i = 0; i < sizeof(framings) / sizeof(framings[0]); i++) {
        lp_fact_t back;
        char err[LP_ERRSTR] = "";
        size_t n = lp_avro_encode_fact(codec, fact, framings[i], buf, sizeof(buf));
        if (n == 0) {
            fuzz_fail("decoded fact does not encode (framing %d): %s", (int)framings[i],
                      lp_avro_codec_errstr(codec));
        }
        memset(&back, 0, sizeof(back));
        if (lp_avro_decode_fact_as(codec, buf, n, kind, &back, err, sizeof(err)) != LP_OK) {
            fuzz_fail("re-encoded fact does not decode (framing %d): %s", (int)framings[i], err);
        }
        if (memcmp(&back, fact, sizeof(back)) != 0) {
            fuzz_fail("round trip changed the fact (framing %d)", (int)framings[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int expected[] = {-1, LP_SCHEMA_QUALIFIED, LP_SCHEMA_STALE, LP_SCHEMA_ERASED};
    lp_avro_codec_t *codec = fuzz_codec();

    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        lp_fact_t fact;
        char err[LP_ERRSTR];
        int rc;

        memset(&fact, 0, sizeof(fact));
        memset(err, 0, sizeof(err));
        rc = i == 0
                 ? lp_avro_decode_fact(codec, data, size, &fact, err, sizeof(err))
                 : lp_avro_decode_fact_as(codec, data, size, expected[i], &fact, err, sizeof(err));
        if (rc == LP_OK) {
            check_fact(&fact);
            roundtrip(codec, &fact);
        } else if (rc == LP_ERR) {
            fuzz_check_reason("lp_avro_decode_fact", err, sizeof(err));
        } else {
            fuzz_fail("return value %d", rc);
        }
    }
    return 0;
}
