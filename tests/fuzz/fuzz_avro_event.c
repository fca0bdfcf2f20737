/* lp_avro_decode_event over arbitrary bytes: Confluent-framed, single-object and raw records of
 * each input schema. Properties: no crash or UB; a failure gives a reason; an accepted event is
 * well-formed, and encoding it in every framing decodes to the same event. */
#include "fuzz_util.h"

static void roundtrip(lp_avro_codec_t *codec, const lp_event_t *ev) {
    static const lp_framing_t framings[] = {LP_FRAMING_CONFLUENT, LP_FRAMING_SINGLE_OBJECT,
                                            LP_FRAMING_RAW};
    uint8_t buf[4096];

    for (size_t i = 0; i < sizeof(framings) / sizeof(framings[0]); i++) {
        lp_event_t back;
        char err[LP_ERRSTR] = "";
        size_t n = lp_avro_encode_event(codec, ev, framings[i], buf, sizeof(buf));
        if (n == 0) {
            fuzz_fail("decoded event does not encode (framing %d): %s", (int)framings[i],
                      lp_avro_codec_errstr(codec));
        }
        memset(&back, 0, sizeof(back));
        if (lp_avro_decode_event(codec, buf, n, (int)ev->kind, &back, err, sizeof(err)) != LP_OK) {
            fuzz_fail("re-encoded event does not decode (framing %d): %s", (int)framings[i], err);
        }
        if (memcmp(&back, ev, sizeof(back)) != 0) {
            fuzz_fail("round trip changed the event (framing %d)", (int)framings[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp_avro_codec_t *codec = fuzz_codec();
    lp_event_t framed;
    int framed_rc = LP_ERR;

    memset(&framed, 0, sizeof(framed));
    /* expected -1: framed records only; 0..2: a raw record of that schema is accepted too. */
    for (int expected = -1; expected <= LP_SCHEMA_FEEDBACK; expected++) {
        lp_event_t ev;
        char err[LP_ERRSTR];
        int rc;

        memset(&ev, 0, sizeof(ev));
        memset(err, 0, sizeof(err));
        rc = lp_avro_decode_event(codec, data, size, expected, &ev, err, sizeof(err));
        if (rc != LP_OK) {
            if (rc != LP_ERR) {
                fuzz_fail("return value %d", rc);
            }
            fuzz_check_reason("lp_avro_decode_event", err, sizeof(err));
            if (expected >= 0 && framed_rc == LP_OK) {
                fuzz_fail("a framed record decoded without `expected` but not with it: %s", err);
            }
        } else {
            fuzz_check_event(&ev);
            roundtrip(codec, &ev);
            /* Framing detection does not depend on `expected`. */
            if (expected >= 0 && framed_rc == LP_OK && memcmp(&ev, &framed, sizeof(ev)) != 0) {
                fuzz_fail("`expected` %d changed a framed record's decoding", expected);
            }
        }
        if (expected == -1) {
            framed = ev;
            framed_rc = rc;
        }
    }
    return 0;
}
