/* Strings of the stored lead (format 2). The profile is most of a stored lead (two thirds of the
 * bytes in format 1), and its strings are short text: emails, names, titles, enum-like values.
 *
 * - A static, canonical Huffman code over bytes. The code lengths below come from a fixed model
 *   of such text (English letter frequencies; '.', '@', '-', '_', space and digits as in emails,
 *   ids and names; capitals rarer; other ASCII, control and non-ASCII bytes rare). Lowercase
 *   text takes about 4.5 bits a byte. Any byte has a code (at most 15 bits), so every string
 *   can be coded; the writer keeps a string raw when the code would make it longer.
 * - Tables of well-known values of enum-like profile fields, stored as their index.
 * Both are part of the stored format: the lengths must never change, the tables only grow. */
#include "core/lead_strings.h"

#include <pthread.h>
#include <string.h>

/* Code length of every byte value (generated once from the model above; sums to a complete
 * code: the sum of 2^-len is exactly 1). */
static const uint8_t huff_len[256] = {
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 14, 14, 14, 14, 14, 14, 5,  12, 11, 11, 11, 11, 11, 10, 11, 11, 11, 10, 9,  8,  6,  10,
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  11, 11, 11, 11, 11, 11, 7,  9,  9,  9,  9,  9,  9,  9,
    9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  11, 11, 11, 11, 7,
    11, 4,  7,  6,  5,  3,  6,  6,  5,  4,  9,  7,  5,  6,  4,  4,  6,  10, 5,  4,  4,  6,  7,  6,
    9,  6,  10, 11, 11, 11, 11, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
};

#define FAST_BITS 10 /* codes up to this long decode with one table look-up */

/* An entry of huff.pair: the first symbol and its length, and when a second whole code follows
 * in the 12 bits, that symbol and the length of both. 0: the first code is longer than 12 bits. */
#define PAIR_BITS 12
#define PAIR_ONE (1u << 24)
#define PAIR_TWO (1u << 25)

static lp_huff_t huff; /* derived from huff_len once, then read only */
static pthread_once_t huff_once = PTHREAD_ONCE_INIT;

/* Canonical decoding of the code at the top of win, of which avail bits are real (the rest are
 * zeros): the symbol | length << 8, or -1 when the code needs more than avail bits. */
static int decode_slow(const lp_huff_t *h, uint64_t win, size_t avail) {
    uint32_t code = 0, first = 0, index = 0;
    for (int len = 1; len <= LP_HUFF_MAXLEN && (size_t)len <= avail; len++) {
        code |= (uint32_t)(win >> (64 - len)) & 1;
        uint32_t count = h->count[len];
        if (code - first < count) {
            return h->sorted[index + (code - first)] | len << 8;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

static void huff_build(void) {
    uint32_t next[LP_HUFF_MAXLEN + 2] = {0};
    int k = 0;
    memcpy(huff.len, huff_len, sizeof(huff.len));
    for (int s = 0; s < 256; s++) {
        huff.count[huff_len[s]]++;
    }
    for (int len = 1; len <= LP_HUFF_MAXLEN; len++) {
        next[len + 1] = (next[len] + huff.count[len]) << 1;
        for (int s = 0; s < 256; s++) {
            if (huff_len[s] == len) {
                huff.sorted[k++] = (uint8_t)s;
            }
        }
    }
    for (int s = 0; s < 256; s++) {
        int len = huff_len[s];
        huff.code[s] = (uint16_t)next[len]++;
        if (len <= FAST_BITS) {
            uint32_t first = (uint32_t)huff.code[s] << (FAST_BITS - len);
            for (uint32_t i = 0; i < (1u << (FAST_BITS - len)); i++) {
                huff.fast[first + i] = (uint16_t)(s | len << 8);
            }
        }
    }
    for (uint32_t i = 0; i < (1u << PAIR_BITS); i++) {
        uint64_t win = (uint64_t)i << (64 - PAIR_BITS);
        int e1 = decode_slow(&huff, win, PAIR_BITS);
        if (e1 < 0) {
            continue;
        }
        uint32_t len1 = (uint32_t)e1 >> 8;
        uint32_t entry = (uint32_t)(e1 & 0xff) | len1 << 16 | PAIR_ONE;
        int e2 = decode_slow(&huff, win << len1, PAIR_BITS - len1);
        if (e2 >= 0) {
            entry |= (uint32_t)(e2 & 0xff) << 8 | (len1 + ((uint32_t)e2 >> 8)) << 20 | PAIR_TWO;
        }
        huff.pair[i] = entry;
    }
}

const lp_huff_t *lp_huff_get(void) {
    (void)pthread_once(&huff_once, huff_build);
    return &huff;
}

size_t lp_huff_bits(const lp_huff_t *h, const char *s, size_t len) {
    size_t bits = 0;
    for (size_t i = 0; i < len; i++) {
        bits += h->len[(uint8_t)s[i]];
    }
    return bits;
}

static int get_bit(lp_bitreader_t *br) {
    if (br->bitpos >= br->len * 8) {
        return -1;
    }
    int bit = (br->buf[br->bitpos >> 3] >> (7 - (br->bitpos & 7))) & 1;
    br->bitpos++;
    return bit;
}

int lp_huff_decode(const lp_huff_t *h, lp_bitreader_t *br) {
    /* Fast path: the next FAST_BITS bits, when all are in the buffer. */
    if (br->bitpos + FAST_BITS <= br->len * 8) {
        size_t byte = br->bitpos >> 3;
        unsigned shift = (unsigned)(br->bitpos & 7);
        uint32_t window = (uint32_t)br->buf[byte] << 16;
        if (byte + 1 < br->len) {
            window |= (uint32_t)br->buf[byte + 1] << 8;
        }
        if (byte + 2 < br->len) {
            window |= br->buf[byte + 2];
        }
        uint16_t e = h->fast[(window >> (24 - FAST_BITS - shift)) & ((1u << FAST_BITS) - 1)];
        if (e != 0) {
            br->bitpos += e >> 8;
            return e & 0xff;
        }
    }
    /* Canonical decoding, one bit at a time (puff.c's method). */
    uint32_t code = 0, first = 0, index = 0;
    for (int len = 1; len <= LP_HUFF_MAXLEN; len++) {
        int bit = get_bit(br);
        if (bit < 0) {
            return -1;
        }
        code |= (uint32_t)bit;
        uint32_t count = h->count[len];
        if (code - first < count) {
            return h->sorted[index + (code - first)];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1; /* not reached: the code is complete */
}

int lp_huff_decode_n(const lp_huff_t *h, lp_bitreader_t *br, char *dst, size_t n) {
    const uint8_t *buf = br->buf;
    size_t pos = br->bitpos;
    size_t k = 0;
    /* A window of the next 64 bits, refilled from memory whenever fewer than a longest code are
     * left in it: most symbols then cost one table look-up and a shift. */
    while (k < n) {
        size_t byte = pos >> 3;
        uint64_t win = 0;
        size_t avail;
        bool tail = byte + 8 > br->len; /* the window holds the rest of the buffer */
        if (!tail) {
            for (int i = 0; i < 8; i++) {
                win = win << 8 | buf[byte + i]; /* compilers make this one load and a bswap */
            }
            avail = 64;
        } else {
            if (byte >= br->len) {
                return -1;
            }
            for (size_t i = byte; i < br->len; i++) {
                win |= (uint64_t)buf[i] << (56 - 8 * (i - byte));
            }
            avail = 8 * (br->len - byte);
        }
        win <<= pos & 7;
        avail -= pos & 7;
        while (k < n && (avail >= LP_HUFF_MAXLEN || tail)) {
            uint32_t e = h->pair[win >> (64 - PAIR_BITS)];
            unsigned len;
            if ((e & PAIR_TWO) && k + 1 < n && ((e >> 20) & 0xf) <= avail) {
                dst[k] = (char)(e & 0xff);
                dst[k + 1] = (char)((e >> 8) & 0xff);
                k += 2;
                len = (e >> 20) & 0xf;
            } else if ((e & PAIR_ONE) && ((e >> 16) & 0xf) <= avail) {
                dst[k++] = (char)(e & 0xff);
                len = (e >> 16) & 0xf;
            } else {
                int s = decode_slow(h, win, avail);
                if (s < 0) {
                    return -1;
                }
                dst[k++] = (char)(s & 0xff);
                len = (unsigned)s >> 8;
            }
            win <<= len;
            avail -= len;
            pos += len;
        }
    }
    br->bitpos = pos;
    return 0;
}

/* ---- tables ------------------------------------------------------------------------------ */

static const char *const seniority_values[] = {
    "c_level", "vp",      "director", "manager", "individual", "senior", "entry",
    "owner",   "partner", "cxo",      "head",    "training",   "unpaid",
};
static const char *const industry_values[] = {
    "software",
    "saas",
    "fintech",
    "financial_services",
    "healthcare",
    "manufacturing",
    "retail",
    "logistics",
    "energy",
    "education",
    "government",
    "media",
    "telecommunications",
    "insurance",
    "banking",
    "consulting",
    "real_estate",
    "construction",
    "hospitality",
    "transportation",
    "automotive",
    "pharmaceuticals",
    "biotechnology",
    "nonprofit",
    "legal",
    "agriculture",
    "ecommerce",
    "technology",
    "utilities",
    "aerospace",
    "defense",
    "entertainment",
    "professional_services",
    "public_sector",
    "higher_education",
    "marketing",
    "internet",
    "hardware",
    "semiconductors",
    "chemicals",
    "mining",
    "oil_and_gas",
    "travel",
    "gaming",
    "security",
    "staffing",
    "food_and_beverage",
};
static const char *const region_values[] = {
    "emea",        "na",      "latam", "apac",   "amer",          "americas",      "europe",
    "asia",        "mea",     "anz",   "global", "north_america", "south_america", "africa",
    "middle_east", "oceania", "eu",    "uk",     "dach",          "nordics",       "benelux",
};
static const char *const segment_values[] = {
    "smb",     "mid_market",    "enterprise", "strategic", "commercial", "midmarket",
    "startup", "public_sector", "small",      "medium",    "large",      "corporate",
};

#define NVALUES(a) (sizeof(a) / sizeof(a[0]))

static const char *const *table_of(lp_strtab_t tab, size_t *n) {
    switch (tab) {
    case LP_STRTAB_SENIORITY:
        *n = NVALUES(seniority_values);
        return seniority_values;
    case LP_STRTAB_INDUSTRY:
        *n = NVALUES(industry_values);
        return industry_values;
    case LP_STRTAB_REGION:
        *n = NVALUES(region_values);
        return region_values;
    case LP_STRTAB_SEGMENT:
        *n = NVALUES(segment_values);
        return segment_values;
    default:
        *n = 0;
        return NULL;
    }
}

int lp_strtab_find(lp_strtab_t tab, const char *s, size_t len) {
    size_t n;
    const char *const *values = table_of(tab, &n);
    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (values[i][0] == s[0] && strncmp(values[i], s, len) == 0 && values[i][len] == '\0') {
            return (int)i;
        }
    }
    return -1;
}

const char *lp_strtab_get(lp_strtab_t tab, uint64_t idx) {
    size_t n;
    const char *const *values = table_of(tab, &n);
    return idx < n ? values[idx] : NULL;
}
