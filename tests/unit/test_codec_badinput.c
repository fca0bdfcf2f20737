/* Decoder rows of docs/bad-inputs.md not already pinned by test_codec_avro.c / test_codec_json.c:
 * lengths claiming far more than the record holds, array block counts at the extremes, UTF-8
 * edge cases, the limits of the accepted time range, negative counts in profiles, and
 * non-finite doubles in output records. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec_fixture.h"

static lp_avro_codec_t *codec;

static int setup(void **state) {
    (void)state;
    codec = fix_codec();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lp_avro_codec_destroy(codec);
    return 0;
}

static void expect_event_error(const uint8_t *buf, size_t len, int expected, const char *part) {
    lp_event_t ev;
    char err[LP_ERRSTR] = "";

    if (lp_avro_decode_event(codec, buf, len, expected, &ev, err, sizeof(err)) != LP_ERR ||
        strstr(err, part) == NULL) {
        print_error("want an error with \"%s\", got \"%s\"\n", part, err);
        fail();
    }
}

/* Appends the zig-zag varint of v. */
static size_t put_long(uint8_t *buf, size_t pos, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        buf[pos++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    buf[pos++] = (uint8_t)z;
    return pos;
}

/* A raw EngagementEvent: event_id "e1", lead_id `lead` (len bytes), ts, type "x", no options. */
static size_t raw_engagement(uint8_t *buf, const char *lead, size_t len, int64_t ts) {
    size_t pos = 0;
    pos = put_long(buf, pos, 2);
    buf[pos++] = 'e';
    buf[pos++] = '1';
    pos = put_long(buf, pos, (int64_t)len);
    memcpy(buf + pos, lead, len);
    pos += len;
    pos = put_long(buf, pos, ts);
    pos = put_long(buf, pos, 1);
    buf[pos++] = 'x';
    memset(buf + pos, 0, 5); /* url, asset_id, campaign_id null; machine false; sss null */
    return pos + 5;
}

/* A length field claiming up to 2^63 - 1 bytes is a truncated record: nothing is allocated or
 * read past the end (the check is against the bytes left, before any copy). */
static void test_huge_lengths(void **state) {
    static const int64_t lengths[] = {1LL << 31, 1LL << 62, INT64_MAX, 65};
    uint8_t buf[64];
    (void)state;

    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        char want[64];
        size_t n = put_long(buf, 0, lengths[i]);
        memcpy(buf + n, "e1", 2);
        snprintf(want, sizeof(want), "truncated record at byte %zu (field event_id)", n);
        expect_event_error(buf, n + 2, LP_SCHEMA_ENGAGEMENT, want);
    }
    /* Ten continuation bytes: not a 64-bit value. */
    memset(buf, 0xFF, 10);
    buf[10] = 0x01;
    expect_event_error(buf, 11, LP_SCHEMA_ENGAGEMENT, "varint longer than 64 bits at byte 0");
}

static void test_reason_block_counts(void **state) {
    lp_fact_t fact;
    uint8_t std[4096], alt[4096];
    char err[LP_ERRSTR];
    size_t n, head, m;
    (void)state;

    fix_fact(&fact, LP_FACT_QUALIFIED, 0);
    n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, std, sizeof(std));
    assert_true(n > 0);
    /* event_id (1+32), lead_id (1+6), ts (6), score (8), grade, stage: then the reasons array,
     * empty here (a single 0). */
    head = 33 + 7 + 6 + 8 + 1 + 1;
    assert_int_equal(std[head], 0);
    static const int64_t counts[] = {1LL << 40, INT64_MAX, INT64_MIN, -(1LL << 40)};
    static const char *const want[] = {"more than 5 reasons", "more than 5 reasons",
                                       "array block count out of range", "does not fit the record"};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        memcpy(alt, std, head);
        m = put_long(alt, head, counts[i]);
        if (counts[i] < 0 && counts[i] != INT64_MIN) {
            m = put_long(alt, m, 1LL << 40); /* block byte size */
        }
        memcpy(alt + m, std + head + 1, n - head - 1);
        m += n - head - 1;
        assert_int_equal(
            lp_avro_decode_fact_as(codec, alt, m, LP_SCHEMA_QUALIFIED, &fact, err, sizeof(err)),
            LP_ERR);
        if (strstr(err, want[i]) == NULL) {
            print_error("count %lld: want \"%s\", got \"%s\"\n", (long long)counts[i], want[i],
                        err);
            fail();
        }
    }
}

/* Overlong forms, code points past U+10FFFF, surrogates and stray continuation bytes are all
 * rejected, with the byte offset. Valid 4-byte sequences are kept as they are. */
static void test_utf8_edges(void **state) {
    static const char *const bad[] = {"\xC0\xAF",     "\xE0\x80\xAF", "\xF4\x90\x80\x80",
                                      "\xED\xBF\xBF", "\x80",         "\xF8\x88\x80\x80\x80",
                                      "a\xC3"};
    uint8_t buf[256];
    lp_event_t ev;
    char err[LP_ERRSTR];
    size_t n;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = raw_engagement(buf, bad[i], strlen(bad[i]), 1);
        expect_event_error(buf, n, LP_SCHEMA_ENGAGEMENT, "invalid UTF-8 in string at byte");
    }
    n = raw_engagement(buf, "\xF0\x9F\x98\x80", 4, 1);
    assert_int_equal(
        lp_avro_decode_event(codec, buf, n, LP_SCHEMA_ENGAGEMENT, &ev, err, sizeof(err)), LP_OK);
    assert_string_equal(ev.lead_id, "\xF0\x9F\x98\x80");
}

/* The decoders accept the epoch to the end of year 9999; ts 0 passes the decoder (the engine
 * dead-letters it), and a time in seconds (1970) is a valid, very late, event time. */
static void test_time_range(void **state) {
    static const struct {
        int64_t ts;
        int ok;
    } cases[] = {{0, 1},  {1795600800, 1}, {253402300799999LL, 1}, {253402300800000LL, 0},
                 {-1, 0}, {INT64_MIN, 0}};
    uint8_t buf[64];
    lp_event_t ev;
    char err[LP_ERRSTR];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = raw_engagement(buf, "l1", 2, cases[i].ts);
        int rc = lp_avro_decode_event(codec, buf, n, LP_SCHEMA_ENGAGEMENT, &ev, err, sizeof(err));
        assert_int_equal(rc, cases[i].ok ? LP_OK : LP_ERR);
        if (cases[i].ok) {
            assert_int_equal(ev.ts_ms, cases[i].ts);
        } else {
            assert_non_null(strstr(err, "out of range (milliseconds since 1970"));
        }
    }
}

static void test_negative_company_size(void **state) {
    lp_event_t ev;
    uint8_t buf[512];
    size_t n;
    (void)state;

    fix_event(&ev, LP_EV_PROFILE, 0);
    ev.u.profile.company_size = 12;
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, buf, sizeof(buf));
    assert_true(n > 0);
    /* company_size (branch 1 = 0x02, then 12 = 24) is followed by six null options. */
    assert_int_equal(buf[n - 8], 2);
    assert_int_equal(buf[n - 7], 24);
    buf[n - 7] = 1; /* -1 */
    expect_event_error(buf, n, LP_SCHEMA_PROFILE, "company_size -1 is negative");
    /* JSON: the same value is out of range. */
    {
        const char *json = "{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":1,\"company_size\":-1}";
        char err[LP_ERRSTR] = "";
        assert_int_equal(lp_json_decode_event(json, strlen(json), &ev, err, sizeof(err)), LP_ERR);
        assert_non_null(strstr(err, "company_size"));
    }
}

/* NaN and infinities in a LeadQualified record (leadpulse never writes them) are decoded as
 * given; the JSON form writes them as null, which lp_json_decode_fact then refuses. */
static void test_non_finite_doubles_in_facts(void **state) {
    lp_fact_t fact, out;
    uint8_t buf[4096];
    char json[4096];
    char err[LP_ERRSTR] = "";
    size_t n, j;
    (void)state;

    fix_fact(&fact, LP_FACT_QUALIFIED, 0);
    fact.score = NAN;
    fact.other = -INFINITY;
    n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(lp_avro_decode_fact(codec, buf, n, &out, err, sizeof(err)), LP_OK);
    assert_true(isnan(out.score));
    assert_true(isinf(out.other) && out.other < 0);
    j = lp_json_encode_fact(&out, json, sizeof(json));
    assert_true(j > 0);
    assert_non_null(strstr(json, "\"score\":null"));
    assert_int_equal(lp_json_decode_fact(json, j, &out, err, sizeof(err)), LP_ERR);
}

/* Found by fuzz_avro_fact (corpus: crash-fact-empty-event-id-raw): a raw LeadQualified whose
 * empty event_id length was written as the two-byte varint 80 00 decoded, and its re-encoding
 * (first byte 0x00) then read as a Confluent header. Facts with an empty event_id are now refused
 * both ways: emitted ids are never empty and raw framing detection relies on it. */
static void test_fact_with_empty_event_id(void **state) {
    lp_fact_t fact;
    uint8_t buf[4096], alt[4096];
    char err[LP_ERRSTR] = "";
    size_t n;
    (void)state;

    fix_fact(&fact, LP_FACT_QUALIFIED, 0);
    n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, buf, sizeof(buf));
    assert_true(n > 33);
    alt[0] = 0x80; /* length 0, non-minimal */
    alt[1] = 0x00;
    memcpy(alt + 2, buf + 33, n - 33);
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, n - 31, LP_SCHEMA_QUALIFIED, &fact, err, sizeof(err)),
        LP_ERR);
    assert_string_equal(err, "event_id is empty");
    fix_fact(&fact, LP_FACT_STALE, 1);
    fact.event_id[0] = '\0';
    assert_int_equal(lp_avro_encode_fact(codec, &fact, LP_FRAMING_CONFLUENT, buf, sizeof(buf)), 0);
    assert_non_null(strstr(lp_avro_codec_errstr(codec), "event_id is empty"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_reason_block_counts),
        cmocka_unit_test(test_utf8_edges),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_negative_company_size),
        cmocka_unit_test(test_non_finite_doubles_in_facts),
        cmocka_unit_test(test_fact_with_empty_event_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
