/* Fuzz-ish robustness of the decoders (run it under -DLP_SANITIZE=ON): every truncation of valid
 * records is rejected with a reason, single-byte mutations and random bytes never crash, and
 * whatever a mutation lets through re-encodes to the same event. Deterministic (fixed seed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec_fixture.h"

static lp_avro_codec_t *codec;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

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

/* Decodes with every decoder that applies; returns LP_OK if the event decoder accepted it. */
static int decode_all(const uint8_t *buf, size_t len, int expected, lp_event_t *ev) {
    char err[LP_ERRSTR];
    lp_fact_t fact;
    int rc;

    memset(err, 'x', sizeof(err));
    rc = lp_avro_decode_event(codec, buf, len, expected, ev, err, sizeof(err));
    if (rc != LP_OK) {
        assert_int_equal(rc, LP_ERR);
        assert_true(memchr(err, '\0', sizeof(err)) != NULL);
        assert_true(err[0] != '\0');
    }
    /* expected 0, 1, 2 read raw facts as LeadQualified, LeadStale, LeadErased */
    (void)lp_avro_decode_fact_as(codec, buf, len,
                                 expected < 0 ? -1 : LP_SCHEMA_QUALIFIED + expected, &fact, err,
                                 sizeof(err));
    (void)lp_json_decode_event((const char *)buf, len, ev, err, sizeof(err));
    (void)lp_json_decode_fact((const char *)buf, len, &fact, err, sizeof(err));
    return rc;
}

/* An accepted record re-encodes and decodes to the same event (no half-validated state). */
static void check_accepted(const lp_event_t *ev) {
    uint8_t buf[2048];
    lp_event_t again;
    char err[LP_ERRSTR];
    size_t n = lp_avro_encode_event(codec, ev, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));

    assert_true(n > 0);
    assert_int_equal(lp_avro_decode_event(codec, buf, n, -1, &again, err, sizeof(err)), LP_OK);
    assert_true(fix_event_equal(ev, &again));
}

static void test_avro_truncations_and_mutations(void **state) {
    static const lp_framing_t framings[] = {LP_FRAMING_CONFLUENT, LP_FRAMING_SINGLE_OBJECT,
                                            LP_FRAMING_RAW};
    uint8_t buf[2048], mut[2048];
    char err[LP_ERRSTR];
    long accepted = 0;
    (void)state;

    for (int kind = 0; kind < 3; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            for (int f = 0; f < 3; f++) {
                lp_event_t in, out;
                size_t n;
                int expected = framings[f] == LP_FRAMING_RAW ? kind : -1;
                fix_event(&in, (lp_event_kind_t)kind, variant);
                n = lp_avro_encode_event(codec, &in, framings[f], buf, sizeof(buf));
                assert_true(n > 0);
                for (size_t len = 0; len < n; len++) {
                    /* Copy so that ASan sees reads past the prefix. */
                    uint8_t *prefix = malloc(len + 1);
                    memcpy(prefix, buf, len);
                    int rc =
                        lp_avro_decode_event(codec, prefix, len, expected, &out, err, sizeof(err));
                    /* A profile without its last field (account_id: a null is one byte, a
                     * string the union branch, its zigzag length and its bytes) is a record of
                     * the schema's previous version, which decodes with account_id null. */
                    size_t aid = strlen(in.u.profile.account_id);
                    size_t tail = aid == 0 ? 1 : 1 + (2 * aid < 128 ? 1 : 2) + aid;
                    if (kind == LP_EV_PROFILE && len == n - tail) {
                        assert_int_equal(rc, LP_OK);
                        lp_profile_update_t want = in.u.profile;
                        memset(want.account_id, 0, sizeof(want.account_id));
                        assert_memory_equal(&want, &out.u.profile, sizeof(want));
                    } else {
                        assert_int_equal(rc, LP_ERR);
                    }
                    free(prefix);
                }
                for (size_t pos = 0; pos < n; pos++) {
                    static const uint8_t values[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xC3, 0xFF};
                    for (size_t v = 0; v < sizeof(values); v++) {
                        memcpy(mut, buf, n);
                        mut[pos] = values[v];
                        if (decode_all(mut, n, expected, &out) == LP_OK) {
                            check_accepted(&out);
                            accepted++;
                        }
                    }
                }
            }
        }
    }
    /* Mutations inside string payloads stay valid: the loop really exercised acceptance too. */
    assert_true(accepted > 100);
}

static void test_fact_truncations(void **state) {
    uint8_t buf[4096];
    char err[LP_ERRSTR];
    (void)state;

    for (int kind = LP_FACT_QUALIFIED; kind <= LP_FACT_ERASED; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_fact_t in, out;
            size_t n;
            fix_fact(&in, (lp_fact_kind_t)kind, variant);
            n = lp_avro_encode_fact(codec, &in, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));
            for (size_t len = 0; len < n; len++) {
                uint8_t *prefix = malloc(len + 1);
                memcpy(prefix, buf, len);
                assert_int_equal(lp_avro_decode_fact(codec, prefix, len, &out, err, sizeof(err)),
                                 LP_ERR);
                free(prefix);
            }
            n = lp_json_encode_fact(&in, (char *)buf, sizeof(buf));
            for (size_t len = 0; len < n; len++) {
                char *prefix = malloc(len + 1);
                memcpy(prefix, buf, len);
                assert_int_equal(lp_json_decode_fact(prefix, len, &out, err, sizeof(err)), LP_ERR);
                free(prefix);
            }
        }
    }
}

static void test_random_bytes(void **state) {
    uint8_t buf[512];
    lp_event_t ev;
    (void)state;

    for (int iter = 0; iter < 100000; iter++) {
        size_t len = next_rand() % sizeof(buf);
        uint8_t *copy;
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)next_rand();
        }
        /* Give a third of the inputs a valid framing header so the body decoders run. */
        if (len >= 10 && iter % 3 == 1) {
            const int32_t id = 101 + (int32_t)(next_rand() % 5);
            buf[0] = 0;
            buf[1] = buf[2] = buf[3] = 0;
            buf[4] = (uint8_t)id;
        } else if (len >= 10 && iter % 3 == 2) {
            uint64_t fp = lp_avro_codec_fingerprint(
                codec, (lp_schema_kind_t)(next_rand() % LP_SCHEMA__COUNT));
            buf[0] = 0xC3;
            buf[1] = 0x01;
            for (int i = 0; i < 8; i++) {
                buf[2 + i] = (uint8_t)(fp >> (8 * i));
            }
        }
        copy = malloc(len + 1);
        memcpy(copy, buf, len);
        if (decode_all(copy, len, (int)(next_rand() % 4) - 1, &ev) == LP_OK) {
            check_accepted(&ev);
        }
        free(copy);
    }
}

static void test_json_truncations_and_mutations(void **state) {
    char buf[4096], mut[4096];
    char err[LP_ERRSTR];
    long accepted = 0;
    (void)state;

    for (int kind = 0; kind < 3; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_event_t in, out;
            size_t n;
            fix_event(&in, (lp_event_kind_t)kind, variant);
            n = lp_json_encode_event(&in, buf, sizeof(buf));
            assert_true(n > 0);
            for (size_t len = 0; len < n; len++) {
                char *prefix = malloc(len + 1);
                memcpy(prefix, buf, len);
                assert_int_equal(lp_json_decode_event(prefix, len, &out, err, sizeof(err)), LP_ERR);
                assert_true(err[0] != '\0');
                free(prefix);
            }
            for (size_t pos = 0; pos < n; pos++) {
                static const char values[] = {'"', '\\', '{', '}', '[',    ']', ',',
                                              ':', '0',  'a', ' ', '\x80', '\0'};
                for (size_t v = 0; v < sizeof(values); v++) {
                    memcpy(mut, buf, n);
                    mut[pos] = values[v];
                    if (lp_json_decode_event(mut, n, &out, err, sizeof(err)) == LP_OK) {
                        check_accepted(&out);
                        accepted++;
                    }
                }
            }
        }
    }
    assert_true(accepted > 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_truncations_and_mutations),
        cmocka_unit_test(test_fact_truncations),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_json_truncations_and_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
