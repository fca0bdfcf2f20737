/* SipHash-2-4, 128-bit output (Aumasson and Bernstein's reference, siphash.c with outlen 16). */
#include <string.h>

#include "leadpulse/hash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void store64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void sipround(uint64_t v[4]) {
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

void lp_siphash128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16]) {
    const uint8_t *in = data;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v[4] = {0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
                     0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1};
    size_t whole = len - len % 8;
    uint8_t last[8] = {0};

    v[1] ^= 0xee; /* 128-bit output */
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load64(in + i);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }
    memcpy(last, in + whole, len % 8);
    uint64_t b = ((uint64_t)len << 56) | load64(last);
    v[3] ^= b;
    sipround(v);
    sipround(v);
    v[0] ^= b;
    v[2] ^= 0xee;
    for (int i = 0; i < 4; i++) {
        sipround(v);
    }
    store64(out, v[0] ^ v[1] ^ v[2] ^ v[3]);
    v[1] ^= 0xdd;
    for (int i = 0; i < 4; i++) {
        sipround(v);
    }
    store64(out + 8, v[0] ^ v[1] ^ v[2] ^ v[3]);
}
