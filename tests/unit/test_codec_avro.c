/* Avro binary codec: canonical forms and fingerprints, round trips, framing, every decoder error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

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

/* ---- fingerprints and canonical forms ---- */

/* The Avro specification's test vectors (share/test/data/schema-tests.txt), as signed longs. */
static const struct {
    const char *input;
    const char *canonical;
    int64_t fingerprint;
} spec_vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"boolean\"}", "\"boolean\"", -6970731678124411036LL},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"{\"type\":\"string\"}", "\"string\"", -8142146995180207161LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":true},"
     "{\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],"
     "\"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\", "
     "\"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     -1759257747318642341LL},
};

static void test_spec_vectors(void **state) {
    char out[1024];
    char err[LP_ERRSTR];
    (void)state;

    for (size_t i = 0; i < sizeof(spec_vectors) / sizeof(spec_vectors[0]); i++) {
        const char *in = spec_vectors[i].input;
        assert_int_equal(lp_avro_canonical_form(in, strlen(in), out, sizeof(out), err, sizeof(err)),
                         LP_OK);
        assert_string_equal(out, spec_vectors[i].canonical);
        assert_true(lp_avro_fingerprint64(out, strlen(out)) ==
                    (uint64_t)spec_vectors[i].fingerprint);
    }
    /* The empty-input fingerprint is the algorithm's EMPTY constant. */
    assert_true(lp_avro_fingerprint64("", 0) == 0xc15d213aa4d7a795ULL);
    /* A too-small output buffer is an error, not a truncated form. */
    assert_int_equal(lp_avro_canonical_form("\"string\"", 8, out, 5, err, sizeof(err)), LP_ERR);
}

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 65536);
    assert_non_null(fp);
    *len = fread(buf, 1, 65535, fp);
    fclose(fp);
    return buf;
}

/* Reference values computed by fastavro (tests/unit/data/codec/make_reference.py). */
static void test_schemas_match_reference(void **state) {
    static const char *names[LP_SCHEMA__ALL] = {
        "EngagementEvent", "LeadProfileUpdated", "SalesFeedback",    "LeadQualified",
        "LeadStale",       "LeadErased",         "AccountQualified", "AccountStale"};
    char path[1024];
    size_t len;
    char *fps;
    (void)state;

    snprintf(path, sizeof(path), "%s/tests/unit/data/codec/fingerprints.txt", LP_SOURCE_DIR);
    fps = slurp(path, &len);
    for (int k = 0; k < LP_SCHEMA__ALL; k++) {
        char *ref;
        char line[256];
        char hdr[32];
        uint8_t buf[1024];
        lp_event_t ev;
        lp_fact_t fact;
        lp_account_fact_t account;
        size_t n;

        snprintf(path, sizeof(path), "%s/tests/unit/data/codec/%s.pcf", LP_SOURCE_DIR, names[k]);
        ref = slurp(path, &len);
        assert_string_equal(lp_avro_codec_canonical(codec, (lp_schema_kind_t)k), ref);
        free(ref);
        snprintf(line, sizeof(line), "%s %016llx c301", names[k],
                 (unsigned long long)lp_avro_codec_fingerprint(codec, (lp_schema_kind_t)k));
        assert_non_null(strstr(fps, line));
        /* The single-object header as written matches the reference bytes. */
        if (k <= LP_SCHEMA_FEEDBACK) {
            fix_event(&ev, (lp_event_kind_t)k, 0);
            n = lp_avro_encode_event(codec, &ev, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));
        } else if (k >= LP_SCHEMA_ACCOUNT_QUALIFIED) {
            fix_account_fact(&account, (lp_account_fact_kind_t)(k - LP_SCHEMA_ACCOUNT_QUALIFIED),
                             2);
            n = lp_avro_encode_account_fact(codec, &account, LP_FRAMING_SINGLE_OBJECT, buf,
                                            sizeof(buf));
        } else {
            fix_fact(&fact, (lp_fact_kind_t)(k - LP_SCHEMA_QUALIFIED), 0);
            n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));
        }
        assert_true(n > 10);
        for (int i = 0; i < 10; i++) {
            snprintf(hdr + 2 * i, sizeof(hdr) - 2 * (size_t)i, "%02x", buf[i]);
        }
        snprintf(line, sizeof(line), "%s %016llx %s\n", names[k],
                 (unsigned long long)lp_avro_codec_fingerprint(codec, (lp_schema_kind_t)k), hdr);
        assert_non_null(strstr(fps, line));
    }
    free(fps);
}

/* ---- round trips ---- */

static const lp_framing_t framings[] = {LP_FRAMING_CONFLUENT, LP_FRAMING_SINGLE_OBJECT,
                                        LP_FRAMING_RAW};

static void test_event_roundtrip(void **state) {
    uint8_t buf[2048];
    char err[LP_ERRSTR];
    (void)state;

    for (int kind = 0; kind < 3; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            for (size_t f = 0; f < 3; f++) {
                lp_event_t in, out;
                size_t n;
                fix_event(&in, (lp_event_kind_t)kind, variant);
                n = lp_avro_encode_event(codec, &in, framings[f], buf, sizeof(buf));
                assert_true(n > 0);
                err[0] = '\0';
                assert_int_equal(lp_avro_decode_event(codec, buf, n,
                                                      framings[f] == LP_FRAMING_RAW ? kind : -1,
                                                      &out, err, sizeof(err)),
                                 LP_OK);
                assert_true(fix_event_equal(&in, &out));
                if (framings[f] == LP_FRAMING_CONFLUENT) {
                    const uint8_t hdr[5] = {0, 0, 0, 0, (uint8_t)(101 + kind)};
                    assert_memory_equal(buf, hdr, 5);
                }
                /* Every shorter buffer fails cleanly and never writes past its size. */
                for (size_t size = 0; size < n; size++) {
                    uint8_t small[2048];
                    memset(small, 0xAB, sizeof(small));
                    assert_int_equal(lp_avro_encode_event(codec, &in, framings[f], small, size), 0);
                    assert_int_equal(small[size], 0xAB);
                    assert_non_null(strstr(lp_avro_codec_errstr(codec), "buffer too small"));
                }
            }
        }
    }
}

static void test_fact_roundtrip(void **state) {
    uint8_t buf[4096];
    char err[LP_ERRSTR];
    (void)state;

    for (int kind = LP_FACT_QUALIFIED; kind <= LP_FACT_ERASED; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            for (size_t f = 0; f < 3; f++) {
                lp_fact_t in, out;
                size_t n;
                int expected = LP_SCHEMA_QUALIFIED + kind;
                fix_fact(&in, (lp_fact_kind_t)kind, variant);
                n = lp_avro_encode_fact(codec, &in, framings[f], buf, sizeof(buf));
                assert_true(n > 0);
                if (framings[f] == LP_FRAMING_RAW) {
                    assert_int_equal(lp_avro_decode_fact(codec, buf, n, &out, err, sizeof(err)),
                                     LP_ERR);
                    assert_non_null(strstr(err, "unframed record"));
                }
                assert_int_equal(lp_avro_decode_fact_as(
                                     codec, buf, n, framings[f] == LP_FRAMING_RAW ? expected : -1,
                                     &out, err, sizeof(err)),
                                 LP_OK);
                assert_true(fix_fact_equal(&in, &out));
                for (size_t size = 0; size < n; size++) {
                    assert_int_equal(lp_avro_encode_fact(codec, &in, framings[f], buf, size), 0);
                }
            }
        }
    }
}

static void test_encode_rejects_values_outside_schema(void **state) {
    uint8_t buf[4096];
    lp_fact_t fact;
    lp_event_t ev;
    (void)state;

    fix_fact(&fact, LP_FACT_QUALIFIED, 1);
    fact.fit_grade = 'E';
    assert_int_equal(lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
    assert_non_null(strstr(lp_avro_codec_errstr(codec), "fit_grade"));
    fix_fact(&fact, LP_FACT_STALE, 1);
    fact.stage = LP_STAGE__COUNT;
    assert_int_equal(lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
    assert_non_null(strstr(lp_avro_codec_errstr(codec), "stage"));
    fix_fact(&fact, LP_FACT_QUALIFIED, 1);
    fact.mql_seq = 2147483648u;
    assert_int_equal(lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
    fix_event(&ev, LP_EV_FEEDBACK, 1);
    ev.u.feedback.outcome = LP_FB__COUNT;
    assert_int_equal(lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
}

/* Without a configured id, Confluent framing is refused on both sides. */
static void test_no_ids(void **state) {
    char err[LP_ERRSTR];
    lp_avro_codec_t *bare = lp_avro_codec_new(LP_SCHEMA_DIR, NULL, err, sizeof(err));
    uint8_t buf[512];
    lp_event_t ev, out;
    size_t n;
    (void)state;

    assert_non_null(bare);
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    assert_int_equal(lp_avro_encode_event(bare, &ev, LP_FRAMING_CONFLUENT, buf, sizeof(buf)), 0);
    assert_non_null(strstr(lp_avro_codec_errstr(bare), "no schema id"));
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    assert_int_equal(lp_avro_decode_event(bare, buf, n, -1, &out, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "unknown schema id 101");
    lp_avro_codec_destroy(bare);
    lp_avro_codec_destroy(NULL);
}

/* A producer still on the schema version before LeadProfileUpdated.account_id: its single-object
 * records carry that version's fingerprint (41e7dcab3fa6e35c) and end before account_id. They
 * decode as profiles without an account; a body that goes on past the old fields is refused (the
 * old version has nothing there), and the fingerprint names no other kind. */
static void test_profile_previous_fingerprint(void **state) {
    uint8_t cur[1024], old[1024];
    lp_event_t ev, out;
    char err[LP_ERRSTR];
    (void)state;

    fix_event(&ev, LP_EV_PROFILE, 3);
    memset(ev.u.profile.account_id, 0, sizeof(ev.u.profile.account_id));
    size_t n = lp_avro_encode_event(codec, &ev, LP_FRAMING_SINGLE_OBJECT, cur, sizeof(cur));
    assert_true(n > 11);
    assert_int_equal(cur[n - 1], 0); /* account_id null: one byte, the last */
    memcpy(old, cur, n - 1);
    for (int i = 0; i < 8; i++) {
        old[2 + i] = (uint8_t)(0x41e7dcab3fa6e35cULL >> (8 * i));
    }
    assert_int_equal(lp_avro_decode_event(codec, old, n - 1, -1, &out, err, sizeof(err)), LP_OK);
    assert_int_equal(out.kind, LP_EV_PROFILE);
    assert_string_equal(out.lead_id, ev.lead_id);
    assert_memory_equal(&out.u.profile, &ev.u.profile, sizeof(ev.u.profile));
    /* with the old fingerprint, the new version's body (account_id present) is one byte too long */
    memcpy(old + 10, cur + 10, n - 10);
    assert_int_equal(lp_avro_decode_event(codec, old, n, -1, &out, err, sizeof(err)), LP_ERR);
    /* the current fingerprint still reads both */
    assert_int_equal(lp_avro_decode_event(codec, cur, n, -1, &out, err, sizeof(err)), LP_OK);
    assert_int_equal(lp_avro_decode_event(codec, cur, n - 1, -1, &out, err, sizeof(err)), LP_OK);
    /* an engagement framed with the old profile fingerprint is a profile that does not decode */
    fix_event(&ev, LP_EV_ENGAGEMENT, 1);
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_SINGLE_OBJECT, cur, sizeof(cur));
    memcpy(cur + 2, old + 2, 8);
    assert_int_equal(lp_avro_decode_event(codec, cur, n, -1, &out, err, sizeof(err)), LP_ERR);
    /* hand-offs never take it */
    const uint8_t fact[] = {0xC3, 0x01, 0x5c, 0xe3, 0xa6, 0x3f, 0xab,
                            0xdc, 0xe7, 0x41, 4,    'e',  '1'};
    lp_fact_t f;
    assert_int_equal(lp_avro_decode_fact(codec, fact, sizeof(fact), &f, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "unknown fingerprint 41e7dcab3fa6e35c"));
}

/* ---- decoder errors, each with its reason ---- */

static void expect_event_error(const uint8_t *buf, size_t len, int expected, const char *reason) {
    lp_event_t ev;
    char err[LP_ERRSTR] = "";

    assert_int_equal(lp_avro_decode_event(codec, buf, len, expected, &ev, err, sizeof(err)),
                     LP_ERR);
    if (strstr(err, reason) == NULL) {
        fail_msg("expected \"%s\" in \"%s\"", reason, err);
    }
}

static void test_decode_errors(void **state) {
    /* raw EngagementEvent: "e1", "l1", ts 0, type "x", url = string of 10 bytes with 3 present */
    const uint8_t trunc[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 2, 20, 'a', 'b', 'c'};
    const uint8_t neg_len[] = {0, 0, 0, 0, 101, 9, 'e'};
    const uint8_t unknown_id[] = {0, 0, 0, 0, 42, 4, 'e', '1'};
    const uint8_t output_id[] = {0, 0, 0, 0, 201, 4, 'e', '1'};
    const uint8_t short_confluent[] = {0, 0, 0};
    const uint8_t unknown_fp[] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 4, 'e', '1'};
    const uint8_t short_so[] = {0xC3, 0x01, 1, 2};
    /* raw SalesFeedback with outcome index 9 */
    const uint8_t bad_enum[] = {4, 'e', '1', 4, 'l', '1', 0, 18, 0, 0};
    const uint8_t bad_reason[] = {4, 'e', '1', 4, 'l', '1', 0, 0, 14, 0};
    const uint8_t bad_union[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 4};
    const uint8_t bad_bool[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 2, 0};
    const uint8_t neg_sss[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 2, 9};
    const uint8_t ok_eng[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t trailing[] = {4, 'e', '1', 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 0, 7};
    const uint8_t empty_lead[] = {4, 'e', '1', 0, 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t empty_event[] = {0, 0, 0, 0, 101, 0, 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t bad_type[] = {4, 'e', '1', 4, 'l', '1', 0, 4, 'X', '-', 0, 0, 0, 0, 0};
    const uint8_t bad_utf8[] = {4, 'e', '1', 4, 0xC3, 0x28, 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t nul_str[] = {4, 'e', 0, 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t surrogate[] = {6, 0xED, 0xA0, 0x80, 4, 'l', '1', 0, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t long_varint[] = {4,    'e',  '1',  4,    'l',  '1',  0xFF, 0xFF,
                                   0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    const uint8_t neg_ts[] = {4, 'e', '1', 4, 'l', '1', 1, 2, 'x', 0, 0, 0, 0, 0};
    const uint8_t huge_ts[] = {4,    'e',  '1',  4,    'l', '1', 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                               0xFF, 0xFF, 0xFF, 0x01, 2,   'x', 0,    0,    0,    0,    0};
    uint8_t long_lead[80] = {4, 'e', '1', 130, 1}; /* lead_id of 65 bytes */
    lp_event_t ev;
    char err[LP_ERRSTR];
    (void)state;

    expect_event_error(trunc, sizeof(trunc), LP_SCHEMA_ENGAGEMENT,
                       "truncated record at byte 11 (field url)");
    expect_event_error(neg_len, sizeof(neg_len), -1, "string length -5 at byte 5 (field event_id)");
    expect_event_error(unknown_id, sizeof(unknown_id), -1, "unknown schema id 42");
    expect_event_error(output_id, sizeof(output_id), -1, "schema id 201 is LeadQualified");
    expect_event_error(short_confluent, sizeof(short_confluent), -1, "truncated record");
    expect_event_error(unknown_fp, sizeof(unknown_fp), -1, "unknown fingerprint 0807060504030201");
    expect_event_error(short_so, sizeof(short_so), -1, "truncated record");
    expect_event_error(bad_enum, sizeof(bad_enum), LP_SCHEMA_FEEDBACK,
                       "enum index 9 out of range for outcome");
    expect_event_error(bad_reason, sizeof(bad_reason), LP_SCHEMA_FEEDBACK,
                       "enum index 7 out of range for reason");
    expect_event_error(bad_union, sizeof(bad_union), LP_SCHEMA_ENGAGEMENT,
                       "union index 2 out of range for url");
    expect_event_error(bad_bool, sizeof(bad_bool), LP_SCHEMA_ENGAGEMENT,
                       "boolean byte 2 at byte 12 (field machine)");
    expect_event_error(neg_sss, sizeof(neg_sss), LP_SCHEMA_ENGAGEMENT,
                       "seconds_since_send -5 is negative");
    assert_int_equal(lp_avro_decode_event(codec, ok_eng, sizeof(ok_eng), LP_SCHEMA_ENGAGEMENT, &ev,
                                          err, sizeof(err)),
                     LP_OK);
    expect_event_error(ok_eng, sizeof(ok_eng), -1, "unframed record");
    expect_event_error(trailing, sizeof(trailing), LP_SCHEMA_ENGAGEMENT, "trailing bytes");
    expect_event_error(empty_lead, sizeof(empty_lead), LP_SCHEMA_ENGAGEMENT, "lead_id is empty");
    expect_event_error(empty_event, sizeof(empty_event), -1, "event_id is empty");
    expect_event_error(bad_type, sizeof(bad_type), LP_SCHEMA_ENGAGEMENT,
                       "type \"X-\" is not an activity name");
    expect_event_error(bad_utf8, sizeof(bad_utf8), LP_SCHEMA_ENGAGEMENT,
                       "invalid UTF-8 in string at byte 4 (field lead_id)");
    expect_event_error(nul_str, sizeof(nul_str), LP_SCHEMA_ENGAGEMENT,
                       "NUL character in string at byte 2 (field event_id)");
    expect_event_error(surrogate, sizeof(surrogate), LP_SCHEMA_ENGAGEMENT, "invalid UTF-8");
    expect_event_error(long_varint, sizeof(long_varint), LP_SCHEMA_ENGAGEMENT,
                       "varint longer than 64 bits at byte 6 (field ts)");
    expect_event_error(neg_ts, sizeof(neg_ts), LP_SCHEMA_ENGAGEMENT, "ts -1 out of range");
    expect_event_error(huge_ts, sizeof(huge_ts), LP_SCHEMA_ENGAGEMENT,
                       "ts 9223372036854775807 out of range");
    memset(long_lead + 5, 'x', 65);
    expect_event_error(long_lead, 5 + 65, LP_SCHEMA_ENGAGEMENT,
                       "string of 65 bytes at byte 3 exceeds the limit of 64 (field lead_id)");
    expect_event_error(long_lead, 0, LP_SCHEMA_ENGAGEMENT, "empty record");
}

/* Arrays: negative block counts carry a byte size; several blocks; limits. */
static void test_fact_reason_blocks(void **state) {
    lp_fact_t in, out;
    uint8_t std[4096], alt[4096];
    char err[LP_ERRSTR];
    size_t n, head, tail, m;
    (void)state;

    fix_fact(&in, LP_FACT_QUALIFIED, 1);
    n = lp_avro_encode_fact(codec, &in, LP_FRAMING_RAW, std, sizeof(std));
    assert_true(n > 0);
    /* Locate the array: after event_id (1+32), lead_id (1+6), ts (6), score (8), grade, stage. */
    head = 33 + 7 + 6 + 8 + 1 + 1;
    assert_int_equal(std[head], 10); /* block count 5, zig-zag */
    /* Each item: activity "activity_N" (1+10 bytes) + double (8). */
    tail = head + 1 + 5 * 19;
    assert_int_equal(std[tail], 0);
    /* Rewrite as two blocks: -2 items with byte size 38, then 3 items, then 0. */
    memcpy(alt, std, head);
    m = head;
    alt[m++] = 3;  /* -2 */
    alt[m++] = 76; /* 38 bytes */
    memcpy(alt + m, std + head + 1, 2 * 19);
    m += 2 * 19;
    alt[m++] = 6; /* 3 */
    memcpy(alt + m, std + head + 1 + 2 * 19, 3 * 19);
    m += 3 * 19;
    memcpy(alt + m, std + tail, n - tail);
    m += n - tail;
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, m, LP_SCHEMA_QUALIFIED, &out, err, sizeof(err)), LP_OK);
    assert_true(fix_fact_equal(&in, &out));
    /* A wrong block size is named. */
    alt[head + 1] = 78;
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, m, LP_SCHEMA_QUALIFIED, &out, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "declares 39 bytes but holds 38"));
    alt[head + 1] = 1; /* -1 bytes */
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, m, LP_SCHEMA_QUALIFIED, &out, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "array block size -1"));
    /* Six items in total are more than LP_TOP_N. */
    memcpy(alt, std, n);
    alt[head] = 12;
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, n, LP_SCHEMA_QUALIFIED, &out, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "more than 5 reasons"));
    /* Enum index of fit_grade out of range. */
    memcpy(alt, std, n);
    alt[head - 2] = 8;
    assert_int_equal(
        lp_avro_decode_fact_as(codec, alt, n, LP_SCHEMA_QUALIFIED, &out, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "enum index 4 out of range for fit_grade"));
}

/* LeadErased byte for byte: event_id, lead_id, ts, had_state, suppressed_until (a union). */
static void test_erased_wire(void **state) {
    /* raw: "e1", "l1", ts 1000 (zig-zag 2000 = d0 0f), true, branch 1 + 5000 (90 4e) */
    const uint8_t raw[] = {4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 1, 2, 0x90, 0x4e};
    const uint8_t null_until[] = {4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 0, 0};
    const uint8_t bad_bool[] = {4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 2, 0};
    const uint8_t bad_union[] = {4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 0, 4};
    const uint8_t trailing[] = {4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 0, 0, 0};
    const uint8_t erased_id[] = {0, 0, 0, 0, 203, 4, 'e', '1', 4, 'l', '1', 0xd0, 0x0f, 0, 0};
    lp_fact_t in, out;
    lp_event_t ev;
    uint8_t buf[256];
    char err[LP_ERRSTR];
    size_t n;
    (void)state;

    memset(&in, 0, sizeof(in));
    in.profile.company_size = -1;
    in.kind = LP_FACT_ERASED;
    snprintf(in.event_id, sizeof(in.event_id), "e1");
    snprintf(in.lead_id, sizeof(in.lead_id), "l1");
    in.ts_ms = 1000;
    in.had_state = true;
    in.suppressed_until_ms = 5000;
    /* Only the schema's fields are written: a profile or an explanation in the fact is not. */
    snprintf(in.profile.email, sizeof(in.profile.email), "ana@example.com");
    snprintf(in.model_id, sizeof(in.model_id), "default");
    in.score = 99;
    n = lp_avro_encode_fact(codec, &in, LP_FRAMING_RAW, buf, sizeof(buf));
    assert_int_equal(n, sizeof(raw));
    assert_memory_equal(buf, raw, sizeof(raw));
    assert_int_equal(
        lp_avro_decode_fact_as(codec, raw, sizeof(raw), LP_SCHEMA_ERASED, &out, err, sizeof(err)),
        LP_OK);
    assert_int_equal(out.kind, LP_FACT_ERASED);
    assert_string_equal(out.event_id, "e1");
    assert_string_equal(out.lead_id, "l1");
    assert_int_equal(out.ts_ms, 1000);
    assert_true(out.had_state);
    assert_int_equal(out.suppressed_until_ms, 5000);
    assert_string_equal(out.profile.email, "");
    assert_string_equal(out.model_id, "");
    assert_true(out.score == 0);

    assert_int_equal(lp_avro_decode_fact_as(codec, null_until, sizeof(null_until), LP_SCHEMA_ERASED,
                                            &out, err, sizeof(err)),
                     LP_OK);
    assert_false(out.had_state);
    assert_int_equal(out.suppressed_until_ms, 0);
    /* Confluent id 203 (configured for LeadErased) is recognised without `expected`. */
    assert_int_equal(
        lp_avro_decode_fact(codec, erased_id, sizeof(erased_id), &out, err, sizeof(err)), LP_OK);
    assert_int_equal(out.kind, LP_FACT_ERASED);
    n = lp_avro_encode_fact(codec, &out, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    assert_int_equal(n, sizeof(erased_id));
    assert_memory_equal(buf, erased_id, sizeof(erased_id));

    assert_int_equal(lp_avro_decode_fact_as(codec, bad_bool, sizeof(bad_bool), LP_SCHEMA_ERASED,
                                            &out, err, sizeof(err)),
                     LP_ERR);
    assert_non_null(strstr(err, "boolean byte 2 at byte 8 (field had_state)"));
    assert_int_equal(lp_avro_decode_fact_as(codec, bad_union, sizeof(bad_union), LP_SCHEMA_ERASED,
                                            &out, err, sizeof(err)),
                     LP_ERR);
    assert_non_null(strstr(err, "suppressed_until"));
    assert_int_equal(lp_avro_decode_fact_as(codec, trailing, sizeof(trailing), LP_SCHEMA_ERASED,
                                            &out, err, sizeof(err)),
                     LP_ERR);
    assert_non_null(strstr(err, "trailing bytes"));
    for (size_t len = 0; len < sizeof(raw); len++) {
        assert_int_equal(
            lp_avro_decode_fact_as(codec, raw, len, LP_SCHEMA_ERASED, &out, err, sizeof(err)),
            LP_ERR);
    }
    /* An erasure is an output: the input decoder refuses its id. */
    assert_int_equal(
        lp_avro_decode_event(codec, erased_id, sizeof(erased_id), -1, &ev, err, sizeof(err)),
        LP_ERR);
    assert_non_null(strstr(err, "schema id 203 is LeadErased, not expected here"));
    /* An empty event_id is refused on both sides (raw framing detection relies on it). */
    in.event_id[0] = '\0';
    assert_int_equal(lp_avro_encode_fact(codec, &in, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
    assert_non_null(strstr(lp_avro_codec_errstr(codec), "event_id is empty"));
}

/* ---- schema loading ---- */

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_codec_new_errors(void **state) {
    const char *names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback",
                           "LeadQualified",   "LeadStale",          "LeadErased"};
    char dir[] = "/tmp/lp_codec_schemas_XXXXXX";
    char path[512], src[512];
    char err[LP_ERRSTR];
    const int32_t dup[LP_SCHEMA__COUNT] = {1, 2, 3, 4, 5, 1};
    size_t len;
    (void)state;

    assert_null(lp_avro_codec_new("/nonexistent/schemas", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/schemas/EngagementEvent.avsc"));
    assert_null(lp_avro_codec_new(LP_SCHEMA_DIR, dup, err, sizeof(err)));
    assert_non_null(strstr(err, "schema id 1 configured for both EngagementEvent and LeadErased"));

    assert_non_null(mkdtemp(dir));
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        char *text;
        snprintf(src, sizeof(src), "%s/%s.avsc", LP_SCHEMA_DIR, names[k]);
        text = slurp(src, &len);
        snprintf(path, sizeof(path), "%s/%s.avsc", dir, names[k]);
        write_text(path, text);
        free(text);
    }
    /* Docs and defaults do not matter: a copy with other docs loads. */
    snprintf(path, sizeof(path), "%s/SalesFeedback.avsc", dir);
    write_text(path,
               "{\"type\":\"record\",\"name\":\"SalesFeedback\",\"namespace\":\"io.leadpulse\","
               "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"lead_id\","
               "\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"outcome\","
               "\"type\":{\"type\":\"enum\",\"name\":\"FeedbackOutcome\",\"symbols\":[\"ACCEPTED\","
               "\"REJECTED\",\"RECYCLED\",\"WON\",\"LOST\"]}},{\"name\":\"reason\",\"type\":{"
               "\"type\":\"enum\",\"name\":\"RejectReason\",\"symbols\":[\"NONE\",\"NO_BUDGET\","
               "\"NOT_DECISION_MAKER\",\"BAD_DATA\",\"COMPETITOR\",\"TIMING\",\"OTHER\"]}},"
               "{\"name\":\"owner\",\"type\":[\"null\",\"string\"]}]}");
    lp_avro_codec_t *ok = lp_avro_codec_new(dir, NULL, err, sizeof(err));
    assert_non_null(ok);
    lp_avro_codec_destroy(ok);
    /* An added enum symbol changes the binary meaning: refused with the file named. */
    write_text(path,
               "{\"type\":\"record\",\"name\":\"SalesFeedback\",\"namespace\":\"io.leadpulse\","
               "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"lead_id\","
               "\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"outcome\","
               "\"type\":{\"type\":\"enum\",\"name\":\"FeedbackOutcome\",\"symbols\":[\"ACCEPTED\","
               "\"REJECTED\",\"RECYCLED\",\"WON\",\"LOST\",\"NURTURE\"]}},{\"name\":\"reason\","
               "\"type\":{\"type\":\"enum\",\"name\":\"RejectReason\",\"symbols\":[\"NONE\","
               "\"NO_BUDGET\",\"NOT_DECISION_MAKER\",\"BAD_DATA\",\"COMPETITOR\",\"TIMING\","
               "\"OTHER\"]}},{\"name\":\"owner\",\"type\":[\"null\",\"string\"]}]}");
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "SalesFeedback.avsc: fields, types or symbols differ"));
    write_text(path, "{\"type\":\"record\",\"name\":\"Other\",\"fields\":[]}");
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "expected a record named SalesFeedback"));
    write_text(path, "{not json");
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "not a valid Avro schema"));
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        snprintf(path, sizeof(path), "%s/%s.avsc", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vectors),
        cmocka_unit_test(test_schemas_match_reference),
        cmocka_unit_test(test_event_roundtrip),
        cmocka_unit_test(test_fact_roundtrip),
        cmocka_unit_test(test_encode_rejects_values_outside_schema),
        cmocka_unit_test(test_no_ids),
        cmocka_unit_test(test_profile_previous_fingerprint),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_fact_reason_blocks),
        cmocka_unit_test(test_erased_wire),
        cmocka_unit_test(test_codec_new_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
