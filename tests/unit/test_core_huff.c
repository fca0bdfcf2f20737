/* lp_huff_decode_n (the table-driven decoder of the stored strings) against the symbol-by-symbol
 * decoder it replaces: same symbols, same bit position, same refusal of a truncated stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/lead_strings.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random bytes decode as a stream of random codes of every length, long ones included. */
static void test_decode_n_matches_decode(void **state) {
    (void)state;
    const lp_huff_t *huff = lp_huff_get();
    uint8_t buf[64];
    char want[512], got[512];
    for (int round = 0; round < 20000; round++) {
        size_t len = next_rand() % sizeof(buf);
        size_t start = len > 0 ? next_rand() % (8 * len) : 0;
        for (size_t i = 0; i < len; i++) {
            /* bytes of ones make the long (14 and 15 bit) codes */
            buf[i] = round % 3 == 0 ? (uint8_t)(0xf0 | next_rand()) : (uint8_t)next_rand();
        }
        lp_bitreader_t ref = {buf, len, start};
        size_t n = 0, end = start; /* end: bit position after the n symbols */
        while (n < sizeof(want)) {
            int sym = lp_huff_decode(huff, &ref);
            if (sym < 0) {
                break;
            }
            want[n++] = (char)sym;
            end = ref.bitpos;
        }
        /* every prefix of the symbols decodes, ending where the reference ended after it */
        size_t k = n == 0 ? 0 : 1 + next_rand() % n;
        lp_bitreader_t br = {buf, len, start};
        assert_int_equal(lp_huff_decode_n(huff, &br, got, k), 0);
        assert_memory_equal(got, want, k);
        if (k == n && n < sizeof(want)) {
            assert_int_equal(br.bitpos, end);
            /* one symbol more than the buffer holds */
            lp_bitreader_t more = {buf, len, start};
            assert_int_equal(lp_huff_decode_n(huff, &more, got, n + 1), -1);
        }
    }
}

/* The text of the stored strings: a string coded by hand decodes back exactly. */
static void test_decode_n_text(void **state) {
    (void)state;
    const lp_huff_t *huff = lp_huff_get();
    const char *text = "dmitri.fischer@openlogic.example Director of Engineering \x01\xff\xc3\xb6";
    size_t len = strlen(text);
    uint8_t buf[128] = {0};
    size_t bit = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        for (int b = huff->len[c] - 1; b >= 0; b--, bit++) {
            buf[bit / 8] |= (uint8_t)(((huff->code[c] >> b) & 1) << (7 - bit % 8));
        }
    }
    char got[128];
    lp_bitreader_t br = {buf, (bit + 7) / 8, 0};
    assert_int_equal(lp_huff_decode_n(huff, &br, got, len), 0);
    assert_memory_equal(got, text, len);
    assert_int_equal(br.bitpos, bit);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_n_matches_decode),
        cmocka_unit_test(test_decode_n_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
