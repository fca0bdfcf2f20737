/* Strings of the stored lead (format 2): a static Huffman code for text, and per-field tables of
 * well-known enumeration values. Internal to the lead format (src/core/lead_format.h,
 * lead_encode.c, lead_decode.c) and its unit tests. */
#ifndef LEADPULSE_CORE_LEAD_STRINGS_H
#define LEADPULSE_CORE_LEAD_STRINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_HUFF_MAXLEN 15 /* longest code, in bits */

/* Tables of well-known values (exact, case-sensitive). Append-only: an index, once written to a
 * store, must keep naming the same value forever. */
typedef enum {
    LP_STRTAB_NONE = 0,
    LP_STRTAB_SENIORITY,
    LP_STRTAB_INDUSTRY,
    LP_STRTAB_REGION,
    LP_STRTAB_SEGMENT,
    LP_STRTAB__COUNT
} lp_strtab_t;

/* Index of s (len bytes) in table tab, or -1. */
int lp_strtab_find(lp_strtab_t tab, const char *s, size_t len);
/* Value at index idx of table tab, or NULL when out of range. Static storage. */
const char *lp_strtab_get(lp_strtab_t tab, uint64_t idx);

/* The code, built once (thread-safe). code[sym] holds len[sym] bits, most significant first. */
typedef struct {
    uint16_t code[256];
    uint8_t len[256];
    uint16_t count[LP_HUFF_MAXLEN + 1]; /* codes of each length */
    uint8_t sorted[256];                /* symbols by (length, value) */
    uint16_t fast[1024];                /* next 10 bits -> symbol | length << 8; 0 = longer */
    uint32_t pair[4096];                /* next 12 bits -> up to two symbols (lead_strings.c) */
} lp_huff_t;

const lp_huff_t *lp_huff_get(void);

/* Bits that s (len bytes) takes in the Huffman code. */
size_t lp_huff_bits(const lp_huff_t *huff, const char *s, size_t len);

/* A reader of bits, most significant bit of each byte first. */
typedef struct {
    const uint8_t *buf;
    size_t len;    /* bytes */
    size_t bitpos; /* next bit to read */
} lp_bitreader_t;

/* Decodes one symbol; returns -1 at the end of the buffer (an incomplete code). */
int lp_huff_decode(const lp_huff_t *huff, lp_bitreader_t *br);

/* Decodes n symbols into dst (the same as n calls of lp_huff_decode, faster); returns 0, or -1
 * when the buffer ends inside them (br is then left anywhere). dst is not terminated. */
int lp_huff_decode_n(const lp_huff_t *huff, lp_bitreader_t *br, char *dst, size_t n);

#endif
