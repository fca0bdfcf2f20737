/* The byte primitives of leadpulse's own binary formats (the lead state, core/lead_format.h; the
 * account state, account_state_codec.c; the member records of stage 2, member_wire.c): LEB128
 * varints (signed ones zigzag), times relative to a reference (wrapping arithmetic, so any pair
 * of int64 values round-trips), doubles as 8 bytes little-endian, numbers (a whole number below
 * 1e15 as a zigzag varint << 1, else the byte 1 and 8 bytes), strings as a varint length and
 * their bytes. Not a public contract.
 *
 * The writer never writes past its buffer: it sets `overflow` and stops. The reader trusts
 * nothing and fails (LP_ERR) at the end of its bytes; with `canonical` set it also refuses what
 * the writer would not have written (a varint with a redundant trailing zero group, a whole
 * number below 1e15 written as 8 bytes), for formats whose bytes must be one per value. */
#ifndef LEADPULSE_CORE_BYTE_CODEC_H
#define LEADPULSE_CORE_BYTE_CODEC_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "leadpulse/common.h"

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *buf;
    size_t size, pos;
    bool overflow;
} writer_t;

static inline void put_bytes(writer_t *w, const void *data, size_t len) {
    if (w->overflow || len > w->size - w->pos) {
        w->overflow = true;
        return;
    }
    if (len > 0) {
        memcpy(w->buf + w->pos, data, len);
    }
    w->pos += len;
}

static inline void put_u8(writer_t *w, uint8_t v) {
    put_bytes(w, &v, 1);
}

static inline void put_uvarint(writer_t *w, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    put_bytes(w, tmp, n);
}

static inline uint64_t zigzag64(int64_t v) {
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static inline int64_t unzigzag64(uint64_t u) {
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

static inline void put_svarint(writer_t *w, int64_t v) {
    put_uvarint(w, zigzag64(v));
}

/* t relative to ref, wrapping: exact for every pair of int64 values. */
static inline void put_time(writer_t *w, int64_t t, int64_t ref) {
    put_svarint(w, (int64_t)((uint64_t)t - (uint64_t)ref));
}

static inline void put_u32le(writer_t *w, uint32_t v) {
    uint8_t tmp[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(w, tmp, 4);
}

static inline void put_u64le(writer_t *w, uint64_t v) {
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = (uint8_t)(v >> (8 * i));
    }
    put_bytes(w, tmp, 8);
}

static inline void put_f64(writer_t *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_u64le(w, bits);
}

/* Whole numbers (most points are) as a varint, others as 8 bytes: tag bit 0. */
static inline void put_num(writer_t *w, double v) {
    if (v == trunc(v) && fabs(v) < 1e15) {
        put_uvarint(w, zigzag64((int64_t)v) << 1);
    } else {
        put_u8(w, 1);
        put_f64(w, v);
    }
}

/* A string of at most max bytes (longer ones are cut). */
static inline void put_str(writer_t *w, const char *s, size_t max) {
    size_t n = strnlen(s, max);
    put_uvarint(w, n);
    put_bytes(w, s, n);
}

/* ---- reader ------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    bool canonical; /* refuse non-canonical varints and numbers */
} reader_t;

static inline int get_bytes(reader_t *r, void *out, size_t n) {
    if (n > r->len - r->pos) {
        return LP_ERR;
    }
    if (n > 0) {
        memcpy(out, r->buf + r->pos, n);
    }
    r->pos += n;
    return LP_OK;
}

static inline int get_u8(reader_t *r, uint8_t *v) {
    return get_bytes(r, v, 1);
}

static inline int get_uvarint(reader_t *r, uint64_t *v) {
    uint64_t out = 0;
    for (int i = 0; i < 10; i++) {
        uint8_t b;
        if (get_u8(r, &b) != LP_OK) {
            return LP_ERR;
        }
        if (i == 9 && b > 1) {
            return LP_ERR; /* more than 64 bits */
        }
        if (r->canonical && i > 0 && b == 0) {
            return LP_ERR; /* a redundant trailing zero group */
        }
        out |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = out;
            return LP_OK;
        }
    }
    return LP_ERR;
}

static inline int get_svarint(reader_t *r, int64_t *v) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK) {
        return LP_ERR;
    }
    *v = unzigzag64(u);
    return LP_OK;
}

static inline int get_u32(reader_t *r, uint32_t *v) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK || u > UINT32_MAX) {
        return LP_ERR;
    }
    *v = (uint32_t)u;
    return LP_OK;
}

static inline int get_count(reader_t *r, int32_t *v, uint64_t max) {
    uint64_t u;
    if (get_uvarint(r, &u) != LP_OK || u > max) {
        return LP_ERR;
    }
    *v = (int32_t)u;
    return LP_OK;
}

static inline int get_time(reader_t *r, int64_t ref, int64_t *t) {
    int64_t d;
    if (get_svarint(r, &d) != LP_OK) {
        return LP_ERR;
    }
    *t = (int64_t)((uint64_t)ref + (uint64_t)d);
    return LP_OK;
}

static inline int get_f64(reader_t *r, double *v) {
    uint8_t tmp[8];
    uint64_t bits = 0;
    if (get_bytes(r, tmp, 8) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)tmp[i] << (8 * i);
    }
    memcpy(v, &bits, sizeof(*v));
    return isfinite(*v) ? LP_OK : LP_ERR;
}

static inline int get_num(reader_t *r, double *v) {
    uint64_t tag;
    if (get_uvarint(r, &tag) != LP_OK) {
        return LP_ERR;
    }
    if (tag == 1) {
        if (get_f64(r, v) != LP_OK) {
            return LP_ERR;
        }
        /* Canonical: a whole number below 1e15 is written as a varint. */
        return r->canonical && *v == trunc(*v) && fabs(*v) < 1e15 ? LP_ERR : LP_OK;
    }
    if ((tag & 1) != 0) {
        return LP_ERR;
    }
    *v = (double)unzigzag64(tag >> 1);
    return r->canonical && !(fabs(*v) < 1e15) ? LP_ERR : LP_OK;
}

/* A string of at most max bytes, without NULs, into dst (size max + 1). */
static inline int get_str(reader_t *r, char *dst, size_t max) {
    uint64_t len;
    if (get_uvarint(r, &len) != LP_OK || len > max || get_bytes(r, dst, (size_t)len) != LP_OK) {
        return LP_ERR;
    }
    if (memchr(dst, '\0', (size_t)len) != NULL) {
        return LP_ERR;
    }
    dst[len] = '\0';
    return LP_OK;
}

#endif
