/* The per-event look-ups of the core against the plain code they replace: lp_hash64 (tail
 * assembled from overlapping loads) against a byte-by-byte reference, and the activity look-up
 * (names compared eight bytes at a time) against strcmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core_internal.h"
#include "leadpulse/hash.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The hash as first written: every load byte by byte. Stored de-duplication ids and emitted
 * event ids depend on its exact values. */
static uint64_t ref_rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static uint64_t ref_fmix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t ref_hash64(const uint8_t *p, size_t len, uint64_t seed) {
    uint64_t h = ref_fmix(seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL));
    size_t rest = len;
    uint64_t k;
    while (rest >= 8) {
        k = 0;
        for (int i = 0; i < 8; i++) {
            k |= (uint64_t)p[i] << (8 * i);
        }
        k *= 0x87c37b91114253d5ULL;
        k = ref_rotl(k, 31);
        k *= 0x4cf5ad432745937fULL;
        h ^= k;
        h = ref_rotl(h, 27) * 5 + 0x52dce729;
        p += 8;
        rest -= 8;
    }
    k = 0;
    for (size_t i = 0; i < rest; i++) {
        k |= (uint64_t)p[i] << (8 * i);
    }
    k *= 0x4cf5ad432745937fULL;
    k = ref_rotl(k, 33);
    k *= 0x87c37b91114253d5ULL;
    h ^= k;
    return ref_fmix(h ^ (uint64_t)len);
}

/* Every length up to a few blocks, at every alignment, in a buffer of exactly that size (so the
 * sanitizer build sees any read past the end). */
static void test_hash_matches_reference(void **state) {
    (void)state;
    for (size_t len = 0; len <= 80; len++) {
        for (size_t align = 0; align < 8; align++) {
            for (int round = 0; round < 8; round++) {
                uint8_t *block = malloc(align + len + 1);
                assert_non_null(block);
                uint8_t *p = block + align;
                for (size_t i = 0; i < len; i++) {
                    p[i] = (uint8_t)next_rand();
                }
                uint64_t seed = round == 0 ? LP_CORE_SEED_DEDUP : next_rand();
                uint8_t *exact = malloc(len > 0 ? len : 1);
                assert_non_null(exact);
                memcpy(exact, p, len);
                assert_true(lp_hash64(p, len, seed) == ref_hash64(p, len, seed));
                assert_true(lp_hash64(exact, len, seed) == ref_hash64(p, len, seed));
                free(exact);
                free(block);
            }
        }
    }
}

/* Values of the hash before the tail was assembled from overlapping loads (computed by that
 * code): a change would orphan every stored de-duplication ring and change emitted ids. */
static void test_hash_pinned_values(void **state) {
    (void)state;
    static const struct {
        const char *id;
        uint64_t hash;
    } pinned[] = {
        {"", 0x7fdb80f3377fe79cULL},
        {"e", 0x1c8fb4de071a0db9ULL},
        {"e1", 0xf32df0e7b358504eULL},
        {"e12", 0xcbce7d7c85af35d9ULL},
        {"e123", 0x55d137620a6fd715ULL},
        {"e1234", 0xfd109ddc5af70f34ULL},
        {"e12345", 0x14e821beb96c013eULL},
        {"e123456", 0x85bb7493a3ea9a35ULL},
        {"e1234567", 0x11a8c6942d2aa07dULL},
        {"e12345678", 0x8a81b9ba1d2f7f75ULL},
        {"0b6f4a2e-6b0c-4b8e-9f1e-3c2d1a0f9e8d", 0x4da999822950e2dcULL},
    };
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
        const char *id = pinned[i].id;
        assert_true(lp_hash64(id, strlen(id), LP_CORE_SEED_DEDUP) == pinned[i].hash);
    }
    /* Ids that differ only inside the tail must not collide through its assembly. */
    assert_true(lp_hash64("e1234567", 8, 1) != lp_hash64("e1234576", 8, 1));
    assert_true(lp_hash64("abc", 3, 1) != lp_hash64("acb", 3, 1));
    assert_true(lp_hash64("abcde", 5, 1) != lp_hash64("abdce", 5, 1));
}

static void random_name(char *out, size_t len);

/* lp_event_id_derive as first written: snprintf of the parts, cut to its 192-byte buffer. */
static void ref_event_id(char out[LP_EVENT_ID_HEX + 1], const char *lead_id, const char *kind,
                         uint32_t seq1, uint32_t seq2) {
    char buf[LP_ID_MAX + 2 * LP_NAME_MAX + 64];
    int n = snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%u\x1f%u", lead_id, kind, (unsigned)seq1,
                     (unsigned)seq2);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    uint64_t half[2] = {ref_hash64((const uint8_t *)buf, len, LP_CORE_SEED_ID_HI),
                        ref_hash64((const uint8_t *)buf, len, LP_CORE_SEED_ID_LO)};
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 16; i++) {
            out[h * 16 + i] = "0123456789abcdef"[(half[h] >> (60 - 4 * i)) & 0xf];
        }
    }
    out[LP_EVENT_ID_HEX] = '\0';
}

/* Emitted ids without snprintf: the same bytes for every length of lead id and kind (up to past
 * the 192-byte buffer, where both cut the input) and for the extreme sequence numbers. */
/* SipHash-2-4-128: the reference's vectors_sip128 (key 00..0f, message 00..len-1). */
static void test_siphash128_reference_vectors(void **state) {
    (void)state;
    static const struct {
        size_t len;
        uint8_t want[16];
    } v[] = {
        {0,
         {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02,
          0x93}},
        {1,
         {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc,
          0x45}},
        {2,
         {0x81, 0x77, 0x22, 0x8d, 0xa4, 0xa4, 0x5d, 0xc7, 0xfc, 0xa3, 0x8b, 0xde, 0xf6, 0x0a, 0xff,
          0xe4}},
        {3,
         {0x9c, 0x70, 0xb6, 0x0c, 0x52, 0x67, 0xa9, 0x4e, 0x5f, 0x33, 0xb6, 0xb0, 0x29, 0x85, 0xed,
          0x51}},
        {4,
         {0xf8, 0x81, 0x64, 0xc1, 0x2d, 0x9c, 0x8f, 0xaf, 0x7d, 0x0f, 0x6e, 0x7c, 0x7b, 0xcd, 0x55,
          0x79}},
        {5,
         {0x13, 0x68, 0x87, 0x59, 0x80, 0x77, 0x6f, 0x88, 0x54, 0x52, 0x7a, 0x07, 0x69, 0x0e, 0x96,
          0x27}},
        {15,
         {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3,
          0xd9}},
    };
    uint8_t key[16], msg[16], out[16];
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)i;
        msg[i] = (uint8_t)i;
    }
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        lp_siphash128(key, msg, v[i].len, out);
        assert_memory_equal(out, v[i].want, 16);
    }
    /* a different key gives a different value */
    key[0] ^= 1;
    lp_siphash128(key, msg, 0, out);
    assert_memory_not_equal(out, v[0].want, 16);
}

static void test_event_id_matches_snprintf(void **state) {
    (void)state;
    static const uint32_t seqs[] = {0, 1, 9, 10, 99, 100, 4294967295u, 1000000000u};
    char lead_id[300], kind[300], want[LP_EVENT_ID_HEX + 1], got[LP_EVENT_ID_HEX + 1];
    for (int round = 0; round < 3000; round++) {
        size_t llen = round < 256 ? (size_t)round : next_rand() % 260;
        size_t klen = next_rand() % 40 == 0 ? next_rand() % 260 : next_rand() % 24;
        random_name(lead_id, llen);
        random_name(kind, klen);
        uint32_t s1 = round % 3 == 0 ? seqs[next_rand() % 8] : (uint32_t)next_rand();
        uint32_t s2 = round % 5 == 0 ? seqs[next_rand() % 8] : (uint32_t)(next_rand() % 7);
        ref_event_id(want, lead_id, kind, s1, s2);
        lp_event_id_derive(got, lead_id, kind, s1, s2);
        assert_string_equal(got, want);
    }
    ref_event_id(want, "", "", 0, 0);
    lp_event_id_derive(got, NULL, NULL, 0, 0);
    assert_string_equal(got, want);
}

static int ref_index(const lp_rules_t *rules, const char *type) {
    for (int i = 0; i < rules->nactivities; i++) {
        if (strcmp(rules->activities[i].name, type) == 0) {
            return i;
        }
    }
    return -1;
}

/* A name of len characters from a tiny alphabet, so names share long prefixes. */
static void random_name(char *out, size_t len) {
    for (size_t i = 0; i < len; i++) {
        out[i] = "ab_"[next_rand() % 3];
    }
    out[len] = '\0';
}

/* Names of every length (0..LP_NAME_MAX, prefixes of one another, equal for 8, 16 or 24 bytes
 * then different), looked up from an event buffer whose bytes after the terminator are garbage,
 * as in a reused event whose previous type was longer. */
static void test_activity_index_matches_strcmp(void **state) {
    (void)state;
    lp_rules_t *rules = calloc(1, sizeof(*rules));
    assert_non_null(rules);
    for (int round = 0; round < 2000; round++) {
        memset(rules->activities, 0, sizeof(rules->activities));
        rules->nactivities = 1 + (int)(next_rand() % LP_MAX_ACTIVITIES);
        for (int i = 0; i < rules->nactivities; i++) {
            random_name(rules->activities[i].name, next_rand() % (LP_NAME_MAX + 1));
        }
        for (int probe = 0; probe < 64; probe++) {
            char type[LP_NAME_MAX + 1];
            for (size_t i = 0; i < sizeof(type); i++) {
                type[i] = (char)(next_rand() % 3 == 0 ? 0 : "ab_x"[next_rand() % 4]);
            }
            const char *pick = rules->activities[next_rand() % (unsigned)rules->nactivities].name;
            size_t len = strlen(pick);
            switch (next_rand() % 4) {
            case 0: /* an existing name */
                memcpy(type, pick, len + 1);
                break;
            case 1: /* a prefix of one */
                len = len > 0 ? next_rand() % len : 0;
                memcpy(type, pick, len);
                type[len] = '\0';
                break;
            case 2: /* one with a character changed */
                memcpy(type, pick, len + 1);
                if (len > 0) {
                    type[next_rand() % len] = 'x';
                }
                break;
            default: /* one with a character appended */
                if (len < LP_NAME_MAX) {
                    memcpy(type, pick, len);
                    type[len] = 'b';
                    type[len + 1] = '\0';
                } else {
                    memcpy(type, pick, len + 1);
                }
                break;
            }
            int want = ref_index(rules, type);
            assert_int_equal(lp_core_activity_index(rules, type), want);
        }
    }
    free(rules);
}

static void test_activity_index_edges(void **state) {
    (void)state;
    lp_rules_t *rules = calloc(1, sizeof(*rules));
    assert_non_null(rules);
    const char *names[] = {"web_visit",
                           "web_visi",
                           "web_visits",
                           "webinar_attended",
                           "webinar_attendee",
                           "",
                           "abcdefghabcdefghabcdefghabcdefgh"};
    int n = (int)(sizeof(names) / sizeof(names[0]));
    for (int i = 0; i < n; i++) {
        memcpy(rules->activities[i].name, names[i], strlen(names[i]) + 1);
    }
    rules->nactivities = n;
    for (int i = 0; i < n; i++) {
        char type[LP_NAME_MAX + 1];
        memset(type, 'z', sizeof(type));
        memcpy(type, names[i], strlen(names[i]) + 1);
        assert_int_equal(lp_core_activity_index(rules, type), i);
    }
    char type[LP_NAME_MAX + 1];
    memset(type, 0, sizeof(type));
    memcpy(type, "web_vis", 7);
    assert_int_equal(lp_core_activity_index(rules, type), -1);
    memcpy(type, "abcdefghabcdefghabcdefghabcdefgX", LP_NAME_MAX);
    assert_int_equal(lp_core_activity_index(rules, type), -1);
    memset(type, 0, sizeof(type));
    memcpy(type, "web_visit", 9);
    rules->nactivities = 0;
    assert_int_equal(lp_core_activity_index(rules, type), -1);
    free(rules);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_matches_reference),
        cmocka_unit_test(test_hash_pinned_values),
        cmocka_unit_test(test_siphash128_reference_vectors),
        cmocka_unit_test(test_event_id_matches_snprintf),
        cmocka_unit_test(test_activity_index_matches_strcmp),
        cmocka_unit_test(test_activity_index_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
