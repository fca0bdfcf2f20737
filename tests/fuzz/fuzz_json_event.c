/* lp_json_decode_event over arbitrary bytes (the replay tool's input, JSON-configured topics).
 * Properties: no crash or UB, no read past len (the input is not NUL-terminated); a failure
 * gives a reason; an accepted event is well-formed, survives lp_json_encode_event and decodes to
 * the same event, and is representable in Avro (both input formats accept the same events).
 * An erasure or unsuppress line has no Avro form: on Kafka it is a tombstone keyed by the lead id
 * with the request in a header, so it carries nothing but the lead id and the time. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp_event_t ev, back;
    char err[LP_ERRSTR];
    char json[8192];
    uint8_t avro[4096];
    size_t n;

    memset(&ev, 0, sizeof(ev));
    memset(err, 0, sizeof(err));
    if (lp_json_decode_event((const char *)data, size, &ev, err, sizeof(err)) != LP_OK) {
        fuzz_check_reason("lp_json_decode_event", err, sizeof(err));
        return 0;
    }
    fuzz_check_event(&ev);

    n = lp_json_encode_event(&ev, json, sizeof(json));
    if (n == 0) {
        fuzz_fail("decoded event does not encode as JSON");
    }
    memset(&back, 0, sizeof(back));
    if (lp_json_decode_event(json, n, &back, err, sizeof(err)) != LP_OK) {
        fuzz_fail("re-encoded JSON does not decode: %s\n  %.*s", err, (int)n, json);
    }
    if (memcmp(&back, &ev, sizeof(ev)) != 0) {
        fuzz_fail("JSON round trip changed the event:\n  %.*s", (int)n, json);
    }

    if (ev.op != LP_OP_APPLY) {
        if (ev.kind != LP_EV_PROFILE || ev.lead_id[0] == '\0') {
            fuzz_fail("a request line decoded to kind %d, lead id '%s'", (int)ev.kind, ev.lead_id);
        }
        return 0;
    }
    n = lp_avro_encode_event(fuzz_codec(), &ev, LP_FRAMING_RAW, avro, sizeof(avro));
    if (n == 0) {
        fuzz_fail("event accepted from JSON is not representable in Avro: %s",
                  lp_avro_codec_errstr(fuzz_codec()));
    }
    memset(&back, 0, sizeof(back));
    if (lp_avro_decode_event(fuzz_codec(), avro, n, (int)ev.kind, &back, err, sizeof(err)) !=
        LP_OK) {
        fuzz_fail("event accepted from JSON is rejected from Avro: %s", err);
    }
    if (memcmp(&back, &ev, sizeof(ev)) != 0) {
        fuzz_fail("JSON -> Avro -> event changed the event");
    }
    return 0;
}
