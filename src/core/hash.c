/* The project's one 64-bit hash (leadpulse/hash.h) and the deterministic output event ids. */
#include <string.h>

#include "core/core_internal.h"

#define M1 0x87c37b91114253d5ULL
#define M2 0x4cf5ad432745937fULL

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

/* murmur3's 64-bit finalizer: every input bit affects every output bit. */
static inline uint64_t fmix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Explicit little-endian loads keep hashes (and so emitted ids) equal on every host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint64_t load64le(const uint8_t *p) {
    uint64_t k;
    memcpy(&k, p, sizeof(k));
    return k;
}

static inline uint64_t load32le(const uint8_t *p) {
    uint32_t k;
    memcpy(&k, p, sizeof(k));
    return k;
}

/* The last n (0..7) bytes of a len-byte input as a little-endian integer; they start at p.
 * Every event id ends in such a tail, and a variable-length memcpy costs more than the rest of
 * the hash: two fixed-size loads that overlap (or stay inside the input) assemble it instead. */
static inline uint64_t load_tail(size_t len, const uint8_t *p, size_t n) {
    if (n == 0) {
        return 0;
    }
    if (len >= 8) {
        /* The 8 bytes ending with the input: the tail is their top n bytes. */
        return load64le(p + n - 8) >> (64 - 8 * n);
    }
    if (n >= 4) {
        /* Bytes 0..3 and n-4..n-1; the overlap has the same bytes on both sides of the OR. */
        return load32le(p) | load32le(p + n - 4) << (8 * (n - 4));
    }
    /* 1..3 bytes: first, middle and last (some are the same byte). */
    return (uint64_t)p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
           (uint64_t)p[n - 1] << (8 * (n - 1));
}
#else
static inline uint64_t load64le(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline uint64_t load_tail(size_t len, const uint8_t *p, size_t n) {
    uint64_t k = 0;
    (void)len;
    for (size_t i = 0; i < n; i++) {
        k |= (uint64_t)p[i] << (8 * i);
    }
    return k;
}
#endif

uint64_t lp_hash64(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = fmix64(seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL));
    size_t rest = len;

    while (rest >= 8) {
        uint64_t k = load64le(p);
        k *= M1;
        k = rotl64(k, 31);
        k *= M2;
        h ^= k;
        h = rotl64(h, 27) * 5 + 0x52dce729;
        p += 8;
        rest -= 8;
    }
    uint64_t k = load_tail(len, p, rest);
    k *= M2;
    k = rotl64(k, 33);
    k *= M1;
    h ^= k;
    return fmix64(h ^ (uint64_t)len);
}

/* Appends s at pos of a buffer that holds cap characters, like snprintf: what does not fit is
 * cut, and the returned position counts it anyway. */
static size_t id_put_str(char *buf, size_t cap, size_t pos, const char *s) {
    for (; *s != '\0'; s++, pos++) {
        if (pos < cap) {
            buf[pos] = *s;
        }
    }
    return pos;
}

static size_t id_put_u32(char *buf, size_t cap, size_t pos, uint32_t v) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        char c = digits[--n];
        if (pos < cap) {
            buf[pos] = c;
        }
        pos++;
    }
    return pos;
}

void lp_event_id_derive(char out[LP_EVENT_ID_HEX + 1], const char *lead_id, const char *kind,
                        uint32_t seq1, uint32_t seq2) {
    char buf[LP_ID_MAX + 2 * LP_NAME_MAX + 64];
    const size_t cap = sizeof(buf) - 1;
    /* "%s\x1f%s\x1f%u\x1f%u" as snprintf would write it, cut to the buffer alike: an id is
     * derived for every fact, and snprintf's format parsing cost more than the two hashes. */
    size_t pos = id_put_str(buf, cap, 0, lead_id != NULL ? lead_id : "");
    pos = id_put_str(buf, cap, pos, "\x1f");
    pos = id_put_str(buf, cap, pos, kind != NULL ? kind : "");
    pos = id_put_str(buf, cap, pos, "\x1f");
    pos = id_put_u32(buf, cap, pos, seq1);
    pos = id_put_str(buf, cap, pos, "\x1f");
    pos = id_put_u32(buf, cap, pos, seq2);
    lp_core_event_id_of(buf, pos < cap ? pos : cap, out);
}

void lp_core_event_id_of(const char *text, size_t len, char out[LP_EVENT_ID_HEX + 1]) {
    static const char hex[] = "0123456789abcdef";
    /* Two hashes with unrelated seeds give the 128 bits. */
    uint64_t half[2] = {lp_hash64(text, len, LP_CORE_SEED_ID_HI),
                        lp_hash64(text, len, LP_CORE_SEED_ID_LO)};

    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 16; i++) {
            out[h * 16 + i] = hex[(half[h] >> (60 - 4 * i)) & 0xf];
        }
    }
    out[LP_EVENT_ID_HEX] = '\0';
}
