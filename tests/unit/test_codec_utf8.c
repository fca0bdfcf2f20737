/* lp_codec_utf8_check: the 8-bytes-at-a-time ASCII path must give exactly the answer of a plain
 * byte-by-byte validator, at every offset and length (NULs, multi-byte sequences, truncated
 * sequences, surrogates and overlong forms straddling the 8-byte blocks). lp_codec_text_copy (its
 * one-pass copy, with overlapping tail words) must give the same answers, copy exactly the input
 * when it is valid and never write past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec_internal.h"

/* The reference: index of the first byte that starts no valid, NUL-free UTF-8 sequence. */
static size_t ref_check(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t need;
        uint32_t cp, min;
        if (c == 0) {
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= need) {
            return i;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return i;
        }
        i += need + 1;
    }
    return len;
}

/* lp_codec_text_copy against the reference, into a destination with guard bytes after len. */
static void check_copy(const uint8_t *s, size_t len) {
    uint8_t dst[256];
    size_t want = ref_check(s, len);
    assert_true(len + 16 <= sizeof(dst));
    memset(dst, 0xA5, sizeof(dst));
    assert_int_equal(lp_codec_text_copy((char *)dst, s, len), want);
    if (want == len) {
        assert_memory_equal(dst, s, len);
    }
    for (size_t i = len; i < sizeof(dst); i++) {
        assert_int_equal(dst[i], 0xA5);
    }
}

static void test_ascii(void **state) {
    (void)state;
    const char *s = "lead-000123@clearworks.example/pricing?utm=1";
    size_t len = strlen(s);
    for (size_t n = 0; n <= len; n++) {
        assert_int_equal(lp_codec_utf8_check((const uint8_t *)s, n), n);
        check_copy((const uint8_t *)s, n);
    }
}

/* One odd byte at every position of an ASCII run: found exactly where it is. */
static void test_odd_byte_everywhere(void **state) {
    (void)state;
    static const uint8_t odd[] = {0x00, 0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF, 0x7F, 0x01};
    uint8_t buf[40];
    for (size_t k = 0; k < sizeof(odd); k++) {
        for (size_t at = 0; at < sizeof(buf); at++) {
            memset(buf, 'a', sizeof(buf));
            buf[at] = odd[k];
            size_t want = (odd[k] == 0x7F || odd[k] == 0x01) ? sizeof(buf) : at;
            assert_int_equal(lp_codec_utf8_check(buf, sizeof(buf)), want);
            assert_int_equal(lp_codec_utf8_check(buf, sizeof(buf)), ref_check(buf, sizeof(buf)));
            /* Every length that holds the odd byte: short strings (byte loop), whole words,
             * and tails that overlap the last word. */
            for (size_t len = at + 1; len <= sizeof(buf); len++) {
                check_copy(buf, len);
                assert_int_equal(lp_codec_text_copy((char[64]){0}, buf, len),
                                 (odd[k] == 0x7F || odd[k] == 0x01) ? len : at);
            }
        }
    }
}

/* Random mixes of ASCII, NUL, valid and broken multi-byte sequences. */
static void test_random_against_reference(void **state) {
    (void)state;
    static const char *pieces[] = {"a",
                                   "Zz",
                                   "0123456789",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\xed\xa0\x80" /* surrogate */,
                                   "\xc0\xaf" /* overlong */,
                                   "\xe0\x80\xaf",
                                   "\xf4\x90\x80\x80",
                                   "\xc3",
                                   "\xe2\x82",
                                   "\x80",
                                   ""};
    uint8_t buf[80]; /* 64 + the longest piece */
    srand(7);
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 0;
        while (len < 64) {
            int r = rand() % 40;
            const char *p = r < 14 ? pieces[r] : r < 38 ? "ab" : "\0";
            size_t n = r < 38 ? strlen(p) : 1;
            memcpy(buf + len, p, n);
            len += n;
            if (rand() % 16 == 0) {
                break;
            }
        }
        for (size_t off = 0; off < 3 && off <= len; off++) {
            assert_int_equal(lp_codec_utf8_check(buf + off, len - off),
                             ref_check(buf + off, len - off));
            check_copy(buf + off, len - off);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_odd_byte_everywhere),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
