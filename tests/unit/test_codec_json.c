/* JSON lines: event decode/encode, fact encode/decode, strictness and every error reason. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec_fixture.h"

static int decode(const char *text, lp_event_t *ev, char *err) {
    return lp_json_decode_event(text, strlen(text), ev, err, LP_ERRSTR);
}

static void expect_error(const char *text, const char *reason) {
    lp_event_t ev;
    char err[LP_ERRSTR] = "";

    if (decode(text, &ev, err) != LP_ERR) {
        fail_msg("accepted: %s", text);
    }
    if (strstr(err, reason) == NULL) {
        fail_msg("for %s: expected \"%s\" in \"%s\"", text, reason, err);
    }
}

static void test_event_roundtrip(void **state) {
    char buf[4096];
    char err[LP_ERRSTR];
    (void)state;

    for (int kind = 0; kind < 3; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_event_t in, out;
            size_t n;
            fix_event(&in, (lp_event_kind_t)kind, variant);
            n = lp_json_encode_event(&in, buf, sizeof(buf));
            assert_true(n > 0);
            assert_int_equal(strlen(buf), n);
            assert_int_equal(lp_json_decode_event(buf, n, &out, err, sizeof(err)), LP_OK);
            assert_true(fix_event_equal(&in, &out));
            for (size_t size = 0; size <= n; size++) {
                assert_int_equal(lp_json_encode_event(&in, buf, size), 0);
            }
        }
    }
}

static void test_event_encode_shape(void **state) {
    lp_event_t ev;
    char buf[1024];
    (void)state;

    fix_event(&ev, LP_EV_FEEDBACK, 0);
    snprintf(ev.u.feedback.owner, sizeof(ev.u.feedback.owner), "a\"b\\c\x01");
    assert_true(lp_json_encode_event(&ev, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "{\"kind\":\"feedback\",\"event_id\":\"evt-2-0\",\"lead_id\":"
                             "\"lead-\xc3\xa9t\xc3\xa9-0\",\"ts\":1795600800123,\"outcome\":"
                             "\"accepted\",\"reason\":\"none\",\"owner\":\"a\\\"b\\\\c\\u0001\"}");
}

static void test_event_decode_forms(void **state) {
    lp_event_t ev;
    char err[LP_ERRSTR];
    (void)state;

    /* kind inferred from "type"; RFC 3339 with Z; unknown keys (also nested) ignored. */
    assert_int_equal(
        decode(" {\"lead_id\":\"l1\",\"event_id\":\"e1\",\"ts\":\"2026-11-25T10:00:00Z\","
               "\"type\":\"email_click\",\"extra\":{\"a\":[1,2,{\"b\":null}]},"
               "\"machine\":true,\"seconds_since_send\":4}\n",
               &ev, err),
        LP_OK);
    assert_int_equal(ev.kind, LP_EV_ENGAGEMENT);
    assert_true(ev.ts_ms == 1795600800000LL);
    assert_string_equal(ev.u.engagement.type, "email_click");
    assert_true(ev.u.engagement.machine);
    assert_true(ev.u.engagement.seconds_since_send == 4);
    assert_string_equal(ev.u.engagement.url, "");

    /* Millis and a negative offset: 10:00:00.250-02:30 is 12:30:00.250Z. */
    assert_int_equal(
        decode("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25T10:00:00.250-02:30\","
               "\"type\":\"x\"}",
               &ev, err),
        LP_OK);
    assert_true(ev.ts_ms == 1795600800000LL + 2 * 3600000 + 30 * 60000 + 250);
    /* Leap day, fraction of 1 and 9 digits, lowercase t/z. */
    assert_int_equal(
        decode("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2024-02-29t00:00:00.5z\","
               "\"type\":\"x\"}",
               &ev, err),
        LP_OK);
    assert_true(ev.ts_ms == 1709164800500LL);
    assert_int_equal(
        decode(
            "{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"1970-01-01T00:00:00.123456789+00:00\","
            "\"type\":\"x\"}",
            &ev, err),
        LP_OK);
    assert_true(ev.ts_ms == 123);

    /* Feedback inferred from "outcome"; names in either case; owner is the feedback's. */
    assert_int_equal(
        decode("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":5,\"outcome\":\"RECYCLED\","
               "\"reason\":\"no_budget\",\"owner\":\"o\"}",
               &ev, err),
        LP_OK);
    assert_int_equal(ev.kind, LP_EV_FEEDBACK);
    assert_int_equal(ev.u.feedback.outcome, LP_FB_RECYCLED);
    assert_int_equal(ev.u.feedback.reason, LP_REJ_NO_BUDGET);
    assert_string_equal(ev.u.feedback.owner, "o");

    /* Profile by default; nulls mean absent; escapes decode to UTF-8 (incl. a surrogate pair). */
    assert_int_equal(
        decode("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":0,\"company\":\"Caf\\u00e9 "
               "\\ud83d\\ude00\\n\\/\",\"company_size\":null,\"email\":null,\"title\":\"\"}",
               &ev, err),
        LP_OK);
    assert_int_equal(ev.kind, LP_EV_PROFILE);
    assert_string_equal(ev.u.profile.company, "Caf\xc3\xa9 \xf0\x9f\x98\x80\n/");
    assert_true(ev.u.profile.company_size == -1);
    assert_string_equal(ev.u.profile.email, "");

    /* Explicit kind wins over inference; keys of other kinds are ignored. */
    assert_int_equal(decode("{\"kind\":\"profile\",\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":0,"
                            "\"type\":\"x\",\"region\":\"emea\"}",
                            &ev, err),
                     LP_OK);
    assert_int_equal(ev.kind, LP_EV_PROFILE);
    assert_string_equal(ev.u.profile.region, "emea");

    /* Nesting of exactly 8 levels is fine. */
    assert_int_equal(
        decode("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":0,\"x\":[[[[[[[1]]]]]]]}", &ev, err),
        LP_OK);
}

static void test_event_decode_errors(void **state) {
    (void)state;
#define HEAD "\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":0"
    expect_error("{\"event_id\":\"e\",\"ts\":0,\"type\":\"x\"}", "missing key \"lead_id\"");
    expect_error("{\"lead_id\":\"l\",\"ts\":0}", "missing key \"event_id\"");
    expect_error("{\"lead_id\":\"l\",\"event_id\":\"e\"}", "missing key \"ts\"");
    expect_error("{\"kind\":\"engagement\"," HEAD "}", "missing key \"type\"");
    expect_error("{\"kind\":\"feedback\"," HEAD "}", "missing key \"outcome\"");
    expect_error("{\"lead_id\":\"\",\"event_id\":\"e\",\"ts\":0}", "lead_id is empty");
    expect_error("{\"lead_id\":\"l\",\"event_id\":\"\",\"ts\":0}", "event_id is empty");
    expect_error("{\"lead_id\":null,\"event_id\":\"e\",\"ts\":0}",
                 "key \"lead_id\": null is not allowed");
    expect_error("{\"lead_id\":5,\"event_id\":\"e\",\"ts\":0}",
                 "key \"lead_id\": expected a string");
    expect_error("{" HEAD ",\"type\":\"Page View\"}", "not an activity name");
    expect_error("{" HEAD ",\"type\":7}", "key \"type\": expected a string");
    expect_error("{" HEAD ",\"type\":\"x\",\"machine\":1}",
                 "key \"machine\": expected true or false");
    expect_error("{" HEAD ",\"type\":\"x\",\"seconds_since_send\":1.5}",
                 "key \"seconds_since_send\": expected an integer");
    expect_error("{" HEAD ",\"company_size\":-3}", "key \"company_size\": integer out of range");
    expect_error("{" HEAD ",\"company_size\":\"10\"}", "key \"company_size\": expected an integer");
    expect_error("{" HEAD ",\"outcome\":\"maybe\"}", "key \"outcome\": unknown value \"maybe\"");
    expect_error("{" HEAD ",\"outcome\":\"won\",\"reason\":\"bored\"}",
                 "key \"reason\": unknown value");
    expect_error("{\"kind\":\"click\"," HEAD "}", "key \"kind\": unknown value \"click\"");
    /* Times. */
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":-1}",
                 "key \"ts\": integer out of range");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":253402300800000}",
                 "key \"ts\": integer out of range");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":99999999999999999999}",
                 "integer out of range");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":1e3}", "expected an integer");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-02-29T00:00:00Z\"}",
                 "no such date");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25 10:00:00Z\"}",
                 "not an RFC 3339 time");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25T10:00:00\"}",
                 "Z or an offset");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25T24:00:00Z\"}",
                 "no such time of day");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25T10:00:00.Z\"}",
                 "fraction");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"1969-12-31T23:59:59Z\"}",
                 "before 1970");
    expect_error("{\"event_id\":\"e\",\"lead_id\":\"l\",\"ts\":\"2026-11-25T10:00:00+25:00\"}",
                 "bad UTC offset");
    /* Numbers. */
    expect_error("{" HEAD ",\"company_size\":01}", "leading zero");
    expect_error("{" HEAD ",\"company_size\":NaN}", "key \"company_size\": expected a number");
    expect_error("{" HEAD ",\"x\":Infinity}", "expected a number");
    expect_error("{" HEAD ",\"x\":-}", "expected a number");
    expect_error("{" HEAD ",\"x\":1.}", "digit expected after '.'");
    expect_error("{" HEAD ",\"x\":1e}", "digit expected in exponent");
    /* Strings. */
    expect_error("{" HEAD ",\"url\":\"a\\x\"}", "key \"url\": bad escape \\x");
    expect_error("{" HEAD ",\"url\":\"\\u12G4\"}", "bad \\u escape");
    expect_error("{" HEAD ",\"url\":\"\\ud800\"}", "lone high surrogate");
    expect_error("{" HEAD ",\"url\":\"\\udc00\"}", "lone low surrogate");
    expect_error("{" HEAD ",\"url\":\"\\u0000\"}", "NUL character");
    expect_error("{" HEAD ",\"url\":\"a\tb\"}", "control character in string");
    expect_error("{" HEAD ",\"url\":\"\xc3\x28\"}", "invalid UTF-8 in string");
    expect_error("{" HEAD ",\"url\":\"\xed\xa0\x80\"}", "invalid UTF-8 in string");
    expect_error("{" HEAD ",\"url\":\"\xe2\x82\"}", "invalid UTF-8 in string");
    expect_error("{" HEAD ",\"x\":\"\xff\"}", "invalid UTF-8 in string");
    expect_error("{" HEAD ",\"url\":\"abc", "unterminated string");
    /* Length limits: rejected, not truncated. */
    {
        char text[512];
        char id[70];
        memset(id, 'a', 65);
        id[65] = '\0';
        snprintf(text, sizeof(text), "{\"event_id\":\"e\",\"lead_id\":\"%s\",\"ts\":0}", id);
        expect_error(text, "key \"lead_id\": string of 65 bytes exceeds the limit of 64");
        id[64] = '\0';
        snprintf(text, sizeof(text), "{\"event_id\":\"e\",\"lead_id\":\"%s\",\"ts\":0}", id);
        lp_event_t ev;
        char err[LP_ERRSTR];
        assert_int_equal(decode(text, &ev, err), LP_OK);
    }
    /* Structure. */
    expect_error("", "expected an object");
    expect_error("[]", "expected an object");
    expect_error("{" HEAD ",}", "expected a key string");
    expect_error("{" HEAD " \"type\":\"x\"}", "expected ',' or '}'");
    expect_error("{" HEAD ",\"type\" \"x\"}", "expected ':'");
    expect_error("{" HEAD ",\"x\":[1,]}", "expected a number");
    expect_error("{" HEAD ",\"x\":[1 2]}", "expected ',' or ']'");
    expect_error("{" HEAD ",\"x\":tru}", "expected true or false");
    expect_error("{" HEAD ",\"x\":nul}", "invalid literal");
    expect_error("{" HEAD "} {}", "trailing characters after the object");
    expect_error("{" HEAD, "unexpected end of input");
    expect_error("{" HEAD ",\"ts\":1}", "key \"ts\": duplicate key");
    expect_error("{" HEAD ",\"url\":\"a\",\"url\":\"b\"}", "key \"url\": duplicate key");
    expect_error("{" HEAD ",\"x\":[[[[[[[[1]]]]]]]]}", "nesting deeper than 8");
    expect_error("{" HEAD ",\"x\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}}",
                 "nesting deeper than 8");
#undef HEAD
}

static void test_fact_encode_stable_and_roundtrip(void **state) {
    char a[8192], b[8192];
    char err[LP_ERRSTR];
    (void)state;

    for (int kind = LP_FACT_QUALIFIED; kind <= LP_FACT_ERASED; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_fact_t in, copy, out;
            size_t n;
            fix_fact(&in, (lp_fact_kind_t)kind, variant);
            copy = in;
            n = lp_json_encode_fact(&in, a, sizeof(a));
            assert_true(n > 0);
            assert_int_equal(lp_json_encode_fact(&copy, b, sizeof(b)), n);
            assert_memory_equal(a, b, n);
            assert_int_equal(lp_json_decode_fact(a, n, &out, err, sizeof(err)), LP_OK);
            assert_true(fix_fact_equal(&in, &out));
            for (size_t size = 0; size <= n; size++) {
                assert_int_equal(lp_json_encode_fact(&in, b, size), 0);
            }
        }
    }
}

static void test_fact_encode_shape(void **state) {
    lp_fact_t f;
    char buf[4096];
    (void)state;

    fix_fact(&f, LP_FACT_STALE, 0);
    assert_true(lp_json_encode_fact(&f, buf, sizeof(buf)) > 0);
    assert_string_equal(buf,
                        "{\"kind\":\"stale\",\"event_id\":\"0123456789abcdef0123456789abcde0\","
                        "\"lead_id\":\"lead-0\",\"ts\":1795600800000,\"reason\":\"sla_breached\","
                        "\"reminder\":0,\"score\":0.1,\"fit_grade\":\"A\",\"stage\":\"mql\","
                        "\"reasons\":[],\"other_points\":0,\"model_id\":\"default\","
                        "\"model_version\":\"2026-11-01.3\",\"qualification\":1,"
                        "\"qualified_at\":null,\"sla_deadline\":null,\"email\":null,"
                        "\"company\":null,\"region\":null,\"country\":null,\"segment\":null,"
                        "\"persona\":null,\"title\":null,\"owner\":null}");
    /* Shortest round-trip doubles; non-finite numbers cannot be JSON and print null. */
    f.score = 1.0 / 3.0;
    f.other = NAN;
    f.ntop = 1;
    snprintf(f.top[0].activity, sizeof(f.top[0].activity), "web_visit");
    f.top[0].points = 1e21;
    assert_true(lp_json_encode_fact(&f, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"score\":0.3333333333333333,"));
    assert_non_null(strstr(buf, "\"reasons\":[{\"activity\":\"web_visit\",\"points\":1e+21}]"));
    assert_non_null(strstr(buf, "\"other_points\":null,"));
    f.fit_grade = 'Z';
    assert_int_equal(lp_json_encode_fact(&f, buf, sizeof(buf)), 0);
}

/* LeadErased: the schema's fields only, in schema order; nothing of the profile or the score. */
static void test_erased_shape_and_errors(void **state) {
    lp_fact_t f, out;
    char buf[4096];
    char err[LP_ERRSTR];
    (void)state;

    fix_fact(&f, LP_FACT_ERASED, 0);
    snprintf(f.model_id, sizeof(f.model_id), "default"); /* for headers only: not written */
    snprintf(f.profile.email, sizeof(f.profile.email), "ana@example.com");
    assert_true(lp_json_encode_fact(&f, buf, sizeof(buf)) > 0);
    assert_string_equal(buf,
                        "{\"kind\":\"erased\",\"event_id\":\"0123456789abcdef0123456789abcde0\","
                        "\"lead_id\":\"lead-0\",\"ts\":1795600800000,\"had_state\":false,"
                        "\"suppressed_until\":null}");
    f.had_state = true;
    f.suppressed_until_ms = 1858672800000LL;
    assert_true(lp_json_encode_fact(&f, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"had_state\":true,\"suppressed_until\":1858672800000}"));
    assert_int_equal(lp_json_decode_fact(buf, strlen(buf), &out, err, sizeof(err)), LP_OK);
    assert_int_equal(out.kind, LP_FACT_ERASED);
    assert_true(out.had_state);
    assert_int_equal(out.suppressed_until_ms, 1858672800000LL);
    assert_string_equal(out.profile.email, "");

    /* suppressed_until may be left out (null); RFC 3339 times are read as for the other kinds. */
    const char *lean = "{\"ts\":\"2026-11-25T10:00:00Z\",\"kind\":\"ERASED\",\"lead_id\":\"l1\","
                       "\"event_id\":\"e1\",\"had_state\":false}";
    assert_int_equal(lp_json_decode_fact(lean, strlen(lean), &out, err, sizeof(err)), LP_OK);
    assert_int_equal(out.kind, LP_FACT_ERASED);
    assert_int_equal(out.ts_ms, 1795600800000LL);
    assert_int_equal(out.suppressed_until_ms, 0);

    const char *no_flag = "{\"kind\":\"erased\",\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1}";
    assert_int_equal(lp_json_decode_fact(no_flag, strlen(no_flag), &out, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "missing key \"had_state\"");
    /* Personal data or another kind's fields have no place in an erasure. */
    const char *with_email = "{\"kind\":\"erased\",\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,"
                             "\"had_state\":true,\"email\":\"ana@example.com\"}";
    assert_int_equal(lp_json_decode_fact(with_email, strlen(with_email), &out, err, sizeof(err)),
                     LP_ERR);
    assert_string_equal(err, "key \"email\" is not a LeadErased field");
    const char *with_score = "{\"kind\":\"erased\",\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,"
                             "\"had_state\":true,\"score\":3}";
    assert_int_equal(lp_json_decode_fact(with_score, strlen(with_score), &out, err, sizeof(err)),
                     LP_ERR);
    assert_string_equal(err, "key \"score\" is not a LeadErased field");
    const char *bad_flag = "{\"kind\":\"erased\",\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,"
                           "\"had_state\":1}";
    assert_int_equal(lp_json_decode_fact(bad_flag, strlen(bad_flag), &out, err, sizeof(err)),
                     LP_ERR);
    assert_non_null(strstr(err, "had_state"));
    /* ... and the erasure's fields none in the other kinds. */
    fix_fact(&f, LP_FACT_STALE, 0);
    size_t n = lp_json_encode_fact(&f, buf, sizeof(buf));
    assert_true(n > 0);
    memcpy(buf + n - 1, ",\"had_state\":true}", 18);
    assert_int_equal(lp_json_decode_fact(buf, n + 17, &out, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "key \"had_state\" is a LeadErased field, not of LeadStale");
}

static void test_fact_decode_errors(void **state) {
    lp_fact_t f;
    char buf[4096];
    char err[LP_ERRSTR];
    char *p;
    (void)state;

    fix_fact(&f, LP_FACT_QUALIFIED, 1);
    assert_true(lp_json_encode_fact(&f, buf, sizeof(buf)) > 0);
    /* Uppercase symbols are accepted. */
    p = strstr(buf, "\"closed_lost\"");
    assert_non_null(p);
    memcpy(p, "\"CLOSED_LOST\"", 13);
    assert_int_equal(lp_json_decode_fact(buf, strlen(buf), &f, err, sizeof(err)), LP_OK);
    assert_int_equal(f.stage, LP_STAGE_CLOSED_LOST);
    memcpy(p, "\"CLOSED_LOSX\"", 13);
    assert_int_equal(lp_json_decode_fact(buf, strlen(buf), &f, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "key \"stage\": unknown value \"CLOSED_LOSX\""));
    assert_int_equal(lp_json_decode_fact("{\"kind\":\"qualified\"}", 20, &f, err, sizeof(err)),
                     LP_ERR);
    assert_string_equal(err, "missing key \"event_id\"");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_roundtrip),
        cmocka_unit_test(test_event_encode_shape),
        cmocka_unit_test(test_event_decode_forms),
        cmocka_unit_test(test_event_decode_errors),
        cmocka_unit_test(test_fact_encode_stable_and_roundtrip),
        cmocka_unit_test(test_fact_encode_shape),
        cmocka_unit_test(test_fact_decode_errors),
        cmocka_unit_test(test_erased_shape_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
