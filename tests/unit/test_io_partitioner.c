/* The producers' key partitioners (src/core/partition.c): CRC-32 and Kafka's murmur2 pinned by
 * published test vectors, and both partition functions checked against librdkafka's own
 * (rd_kafka_msg_partitioner_consistent_random, librdkafka's default for keyed records and what
 * `leadpulse produce` uses, and rd_kafka_msg_partitioner_murmur2, the Java client's default) on
 * random keys and partition counts. In the io module's tests because that layer links
 * librdkafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "leadpulse/hash.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The standard check values of CRC-32 (zlib, IEEE 802.3). */
static void test_crc32_vectors(void **state) {
    (void)state;
    assert_int_equal(lp_crc32("", 0), 0);
    assert_int_equal(lp_crc32("a", 1), 0xE8B7BE43u);
    assert_int_equal(lp_crc32("123456789", 9), 0xCBF43926u);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(lp_crc32(fox, strlen(fox)), 0x414FA339u);
}

/* Kafka's UtilsTest.testMurmur2 (signed Java ints) and librdkafka's rdmurmur2.c unit test. */
static void test_murmur2_vectors(void **state) {
    (void)state;
    static const struct {
        const char *key;
        int32_t want;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
        {"kafka", (int32_t)0xd067cf64u},
        {"giberish123456789", (int32_t)0x8f552b0cu},
        {"1234", (int32_t)0x9fc97b14u},
        {"234", (int32_t)0xe7c009cau},
        {"34", (int32_t)0x873930dau},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = lp_murmur2(cases[i].key, strlen(cases[i].key));
        if ((int32_t)got != cases[i].want) {
            fail_msg("murmur2(%s) = %d, want %d", cases[i].key, (int32_t)got, cases[i].want);
        }
    }
    /* toPositive(murmur2("foobar")) % 50 = 1357151166 % 50. */
    assert_int_equal(lp_partition_of(LP_PARTITIONER_MURMUR2, "foobar", 6, 50), 16);
}

/* Random keys (lead-id-like and arbitrary bytes, 1..80 bytes) and counts 1..300: our partition
 * equals librdkafka's for both partitioners. */
static void test_against_librdkafka(void **state) {
    (void)state;
    char key[96];
    for (int i = 0; i < 200000; i++) {
        size_t len = 1 + next_rand() % 80;
        bool text = i % 2 == 0;
        for (size_t j = 0; j < len; j++) {
            uint64_t r = next_rand();
            key[j] = text ? "abcdefghijklmnopqrstuvwxyz0123456789-_"[r % 38] : (char)(r & 0xff);
        }
        if (text) {
            len = (size_t)snprintf(key, sizeof(key), "lead-%06d", (int)(next_rand() % 1000000));
        }
        int32_t count = 1 + (int32_t)(next_rand() % 300);
        int32_t want_crc =
            rd_kafka_msg_partitioner_consistent_random(NULL, key, len, count, NULL, NULL);
        int32_t want_mm = rd_kafka_msg_partitioner_murmur2(NULL, key, len, count, NULL, NULL);
        assert_int_equal(lp_partition_of(LP_PARTITIONER_CRC32, key, len, count), want_crc);
        assert_int_equal(lp_partition_of(LP_PARTITIONER_MURMUR2, key, len, count), want_mm);
    }
}

static void test_parse(void **state) {
    (void)state;
    lp_partitioner_t p = LP_PARTITIONER_MURMUR2;
    assert_int_equal(lp_partitioner_parse("crc32", &p), 0);
    assert_int_equal(p, LP_PARTITIONER_CRC32);
    assert_int_equal(lp_partitioner_parse("murmur2", &p), 0);
    assert_int_equal(p, LP_PARTITIONER_MURMUR2);
    assert_int_equal(lp_partitioner_parse("fnv1a", &p), -1);
    assert_string_equal(lp_partitioner_name(LP_PARTITIONER_CRC32), "crc32");
    assert_int_equal(lp_partition_of(LP_PARTITIONER_CRC32, "x", 1, 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_vectors),
        cmocka_unit_test(test_murmur2_vectors),
        cmocka_unit_test(test_against_librdkafka),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
