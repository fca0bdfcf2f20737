/* Schema resolution over arbitrary inputs: lp_avro_codec_add_schema over any schema JSON, then
 * lp_avro_decode_event over any record body carrying that schema id. Input layout: a 2-byte
 * big-endian length n, n bytes of schema JSON, then the record body (what follows the Confluent
 * header). Properties: no crash or UB, bounded time and memory; adding fails with a reason (the
 * id then unreadable) or leaves the id readable; a decode failure gives a reason; an accepted
 * event is well-formed, and encoded with our schema it decodes to the same event. */
#include "fuzz_util.h"

#define FUZZ_ID 9000 /* reused by every input: each add replaces the last */

static void check_added(lp_avro_codec_t *codec, int rc, const char *err, size_t err_size) {
    lp_avro_id_state_t state = lp_avro_codec_id_state(codec, FUZZ_ID, NULL);

    if (rc != LP_OK) {
        fuzz_check_reason("lp_avro_codec_add_schema", err, err_size);
        if (state != LP_AVRO_ID_UNREADABLE) {
            fuzz_fail("a schema that failed left the id in state %d", (int)state);
        }
    } else if (state != LP_AVRO_ID_DIRECT && state != LP_AVRO_ID_RESOLVED) {
        fuzz_fail("a schema that was added left the id in state %d", (int)state);
    }
}

static void check_decoded(lp_avro_codec_t *codec, const lp_event_t *ev) {
    uint8_t buf[4096];
    lp_event_t back;
    char err[LP_ERRSTR] = "";
    size_t n;

    fuzz_check_event(ev);
    n = lp_avro_encode_event(codec, ev, LP_FRAMING_RAW, buf, sizeof(buf));
    if (n == 0) {
        fuzz_fail("resolved event does not encode: %s", lp_avro_codec_errstr(codec));
    }
    memset(&back, 0, sizeof(back));
    if (lp_avro_decode_event(codec, buf, n, (int)ev->kind, &back, err, sizeof(err)) != LP_OK) {
        fuzz_fail("resolved event, re-encoded, does not decode: %s", err);
    }
    if (memcmp(&back, ev, sizeof(back)) != 0) {
        fuzz_fail("resolved event changed when re-encoded with our schema");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp_avro_codec_t *codec = fuzz_codec();
    char err[LP_ERRSTR];
    lp_event_t ev;
    size_t n;
    char *json;
    uint8_t *record;
    int rc;

    if (size < 2) {
        return 0;
    }
    n = (size_t)data[0] << 8 | data[1];
    n = n < size - 2 ? n : size - 2;
    /* Buffers of exactly the input's size, so that ASan sees a read past either end. */
    json = malloc(n > 0 ? n : 1);
    record = malloc(5 + size - 2 - n);
    if (json == NULL || record == NULL) {
        fuzz_fail("out of memory");
    }
    memcpy(json, data + 2, n);
    memset(err, 0, sizeof(err));
    rc = lp_avro_codec_add_schema(codec, FUZZ_ID, json, n, err, sizeof(err));
    check_added(codec, rc, err, sizeof(err));

    record[0] = 0;
    record[1] = (uint8_t)(FUZZ_ID >> 24);
    record[2] = (uint8_t)(FUZZ_ID >> 16);
    record[3] = (uint8_t)(FUZZ_ID >> 8);
    record[4] = (uint8_t)FUZZ_ID;
    memcpy(record + 5, data + 2 + n, size - 2 - n);
    memset(&ev, 0, sizeof(ev));
    memset(err, 0, sizeof(err));
    rc = lp_avro_decode_event(codec, record, 5 + size - 2 - n, -1, &ev, err, sizeof(err));
    if (rc == LP_OK) {
        check_decoded(codec, &ev);
    } else if (rc != LP_ERR) {
        fuzz_fail("return value %d", rc);
    } else {
        fuzz_check_reason("lp_avro_decode_event", err, sizeof(err));
    }
    free(json);
    free(record);
    return 0;
}
