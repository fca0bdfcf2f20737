/* Avro binary primitives (zig-zag varints, length-checked strings, unions, enums) and framing.
 * Offsets in error messages count from the first byte of the buffer handed to the decoder. */
#include <stdio.h>
#include <string.h>

#include "codec/avro_internal.h"

static int rd_fail(lp_avro_rd_t *rd, size_t at, const char *what) {
    return lp_codec_err(rd->errstr, rd->errstr_size, "%s at byte %zu (field %s)", what, at,
                        rd->field);
}

static int rd_truncated(lp_avro_rd_t *rd, size_t at) {
    return lp_codec_err(rd->errstr, rd->errstr_size, "truncated record at byte %zu (field %s)", at,
                        rd->field);
}

int lp_avro_rd_long_any(lp_avro_rd_t *rd, int64_t *out) {
    size_t start = rd->pos;
    uint64_t v = 0;

    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (rd->pos >= rd->len) {
            return rd_truncated(rd, start);
        }
        b = rd->buf[rd->pos++];
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && (b & 0xFE) != 0) {
            return rd_fail(rd, start, "varint longer than 64 bits");
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return LP_OK;
        }
    }
    return rd_fail(rd, start, "varint longer than 64 bits");
}

int lp_avro_rd_int(lp_avro_rd_t *rd, int32_t *out) {
    size_t start = rd->pos;
    int64_t v = 0;

    if (lp_avro_rd_long(rd, &v) != LP_OK) {
        return LP_ERR;
    }
    if (v < INT32_MIN || v > INT32_MAX) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "int %lld out of range at byte %zu (field %s)", (long long)v, start,
                            rd->field);
    }
    *out = (int32_t)v;
    return LP_OK;
}

int lp_avro_rd_bool(lp_avro_rd_t *rd, bool *out) {
    if (rd->pos >= rd->len) {
        return rd_truncated(rd, rd->pos);
    }
    if (rd->buf[rd->pos] > 1) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "boolean byte %u at byte %zu (field %s), expected 0 or 1",
                            rd->buf[rd->pos], rd->pos, rd->field);
    }
    *out = rd->buf[rd->pos++] == 1;
    return LP_OK;
}

int lp_avro_rd_double(lp_avro_rd_t *rd, double *out) {
    uint64_t bits = 0;

    if (rd->len - rd->pos < 8) {
        return rd_truncated(rd, rd->pos);
    }
    for (int i = 7; i >= 0; i--) {
        bits = (bits << 8) | rd->buf[rd->pos + (size_t)i];
    }
    memcpy(out, &bits, sizeof(*out));
    rd->pos += 8;
    return LP_OK;
}

int lp_avro_rd_string(lp_avro_rd_t *rd, char *dst, size_t dst_size) {
    size_t start = rd->pos;
    int64_t n;
    size_t bad;

    if (lp_avro_rd_long(rd, &n) != LP_OK) {
        return LP_ERR;
    }
    if (n < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "string length %lld at byte %zu (field %s)", (long long)n, start,
                            rd->field);
    }
    if ((uint64_t)n > rd->len - rd->pos) {
        return rd_truncated(rd, rd->pos);
    }
    if ((uint64_t)n >= dst_size) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "string of %lld bytes at byte %zu exceeds the limit of %zu (field %s)",
                            (long long)n, start, dst_size - 1, rd->field);
    }
    bad = lp_codec_text_copy(dst, rd->buf + rd->pos, (size_t)n);
    if (bad != (size_t)n) {
        /* Back to what the decoders start from (zeros), as if nothing had been copied. */
        memset(dst, 0, (size_t)n);
        return lp_codec_err(rd->errstr, rd->errstr_size, "%s at byte %zu (field %s)",
                            rd->buf[rd->pos + bad] == 0 ? "NUL character in string"
                                                        : "invalid UTF-8 in string",
                            rd->pos + bad, rd->field);
    }
    dst[n] = '\0';
    rd->pos += (size_t)n;
    return LP_OK;
}

int lp_avro_rd_union(lp_avro_rd_t *rd, int nbranches, int *out) {
    size_t start = rd->pos;
    int64_t v = 0;

    if (lp_avro_rd_long(rd, &v) != LP_OK) {
        return LP_ERR;
    }
    if (v < 0 || v >= nbranches) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "union index %lld out of range for %s at byte %zu", (long long)v,
                            rd->field, start);
    }
    *out = (int)v;
    return LP_OK;
}

int lp_avro_rd_enum(lp_avro_rd_t *rd, int nsymbols, int *out) {
    size_t start = rd->pos;
    int64_t v = 0;

    if (lp_avro_rd_long(rd, &v) != LP_OK) {
        return LP_ERR;
    }
    if (v < 0 || v >= nsymbols) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "enum index %lld out of range for %s at byte %zu", (long long)v,
                            rd->field, start);
    }
    *out = (int)v;
    return LP_OK;
}

int lp_avro_rd_opt_string(lp_avro_rd_t *rd, char *dst, size_t dst_size) {
    int branch = 0;

    dst[0] = '\0';
    if (lp_avro_rd_union(rd, 2, &branch) != LP_OK) {
        return LP_ERR;
    }
    return branch == 0 ? LP_OK : lp_avro_rd_string(rd, dst, dst_size);
}

int lp_avro_rd_opt_long(lp_avro_rd_t *rd, int64_t *out, bool *present) {
    int branch = 0;

    *present = false;
    if (lp_avro_rd_union(rd, 2, &branch) != LP_OK) {
        return LP_ERR;
    }
    if (branch == 0) {
        return LP_OK;
    }
    *present = true;
    return lp_avro_rd_long(rd, out);
}

int lp_avro_rd_header(lp_avro_rd_t *rd, char *event_id, char *lead_id, int64_t *ts_ms) {
    rd->field = "event_id";
    if (lp_avro_rd_string(rd, event_id, LP_ID_MAX + 1) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "lead_id";
    if (lp_avro_rd_string(rd, lead_id, LP_ID_MAX + 1) != LP_OK) {
        return LP_ERR;
    }
    rd->field = "ts";
    return lp_avro_rd_long(rd, ts_ms);
}

int lp_avro_rd_end(lp_avro_rd_t *rd) {
    if (rd->pos != rd->len) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "trailing bytes: %zu after the record at byte %zu", rd->len - rd->pos,
                            rd->pos);
    }
    return LP_OK;
}

/* ---- writer ---- */

static void wr_put(lp_avro_wr_t *wr, const void *data, size_t len) {
    if (wr->overflow || wr->size - wr->pos < len) {
        wr->overflow = true;
        return;
    }
    memcpy(wr->buf + wr->pos, data, len);
    wr->pos += len;
}

void lp_avro_wr_raw(lp_avro_wr_t *wr, const void *data, size_t len) {
    if (len > 0) {
        wr_put(wr, data, len);
    }
}

void lp_avro_wr_long(lp_avro_wr_t *wr, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t tmp[10];
    size_t n = 0;

    while (z >= 0x80) {
        tmp[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    tmp[n++] = (uint8_t)z;
    wr_put(wr, tmp, n);
}

void lp_avro_wr_bool(lp_avro_wr_t *wr, bool v) {
    uint8_t b = v ? 1 : 0;
    wr_put(wr, &b, 1);
}

void lp_avro_wr_double(lp_avro_wr_t *wr, double v) {
    uint64_t bits;
    uint8_t tmp[8];

    memcpy(&bits, &v, sizeof(bits));
    for (int i = 0; i < 8; i++) {
        tmp[i] = (uint8_t)(bits >> (8 * i));
    }
    wr_put(wr, tmp, 8);
}

void lp_avro_wr_bytes(lp_avro_wr_t *wr, const void *data, size_t len) {
    lp_avro_wr_long(wr, (int64_t)len);
    wr_put(wr, data, len);
}

void lp_avro_wr_string(lp_avro_wr_t *wr, const char *s, size_t array_size) {
    lp_avro_wr_bytes(wr, s, strnlen(s, array_size));
}

void lp_avro_wr_opt_string(lp_avro_wr_t *wr, const char *s, size_t array_size) {
    if (s[0] == '\0') {
        lp_avro_wr_long(wr, 0);
        return;
    }
    lp_avro_wr_long(wr, 1);
    lp_avro_wr_string(wr, s, array_size);
}

int lp_avro_wr_frame(lp_avro_codec_t *codec, lp_avro_wr_t *wr, lp_framing_t framing, int kind) {
    uint8_t hdr[10];

    switch (framing) {
    case LP_FRAMING_CONFLUENT:
        if (codec->ids[kind] < 0) {
            lp_codec_err(codec->errstr, sizeof(codec->errstr),
                         "no schema id configured for %s (Confluent framing)",
                         lp_codec_schema_names[kind]);
            return LP_ERR;
        }
        hdr[0] = 0;
        for (int i = 0; i < 4; i++) {
            hdr[1 + i] = (uint8_t)((uint32_t)codec->ids[kind] >> (24 - 8 * i));
        }
        wr_put(wr, hdr, 5);
        return LP_OK;
    case LP_FRAMING_SINGLE_OBJECT:
        hdr[0] = 0xC3;
        hdr[1] = 0x01;
        for (int i = 0; i < 8; i++) {
            hdr[2 + i] = (uint8_t)(codec->fp[kind] >> (8 * i));
        }
        wr_put(wr, hdr, 10);
        return LP_OK;
    case LP_FRAMING_RAW:
        return LP_OK;
    }
    lp_codec_err(codec->errstr, sizeof(codec->errstr), "unknown framing %d", (int)framing);
    return LP_ERR;
}

size_t lp_avro_wr_finish(lp_avro_codec_t *codec, lp_avro_wr_t *wr) {
    if (wr->overflow) {
        lp_codec_err(codec->errstr, sizeof(codec->errstr), "buffer too small (%zu bytes)",
                     wr->size);
        return 0;
    }
    codec->errstr[0] = '\0';
    return wr->pos;
}

/* A Confluent id of schema kind k: rc (LP_OK or LP_AVRO_UNFRAME_RESOLVE) if k is expected. */
static int confluent_kind(int32_t id, int k, int rc, int first, int last, int *kind, size_t *body,
                          char *errstr, size_t errstr_size) {
    if (k < first || k > last) {
        return lp_codec_err(errstr, errstr_size, "schema id %d is %s, not expected here", (int)id,
                            lp_codec_schema_names[k]);
    }
    *kind = k;
    *body = 5;
    return rc;
}

/* After the configured ids: the ones learnt at run time. */
static int unframe_added(const lp_avro_codec_t *codec, int32_t id, int first, int last, int *kind,
                         size_t *body, char *errstr, size_t errstr_size) {
    int k = 0;
    int rc = LP_AVRO_UNKNOWN_ID;

    if (codec->resolver != NULL) {
        rc = lp_avro_resolver_find(codec->resolver, id, &k, errstr, errstr_size);
    }
    if (rc == LP_AVRO_UNKNOWN_ID) {
        lp_codec_err(errstr, errstr_size, "unknown schema id %d", (int)id);
        return LP_AVRO_UNKNOWN_ID;
    }
    if (rc == LP_ERR) {
        return LP_ERR;
    }
    return confluent_kind(id, k, rc, first, last, kind, body, errstr, errstr_size);
}

bool lp_avro_previous_profile(const uint8_t *buf, size_t len) {
    uint64_t fp = 0;
    if (len < 10 || buf[0] != 0xC3 || buf[1] != 0x01) {
        return false;
    }
    for (int i = 7; i >= 0; i--) {
        fp = (fp << 8) | buf[2 + i];
    }
    return fp == LP_AVRO_PROFILE_PREVIOUS_FP;
}

int lp_avro_unframe(const lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                    int first, int last, int *kind, size_t *body, char *errstr,
                    size_t errstr_size) {
    if (len == 0) {
        return lp_codec_err(errstr, errstr_size, "empty record");
    }
    if (buf[0] == 0x00) {
        int32_t id;
        if (len < 5) {
            return lp_codec_err(errstr, errstr_size,
                                "truncated record at byte %zu (Confluent header)", len);
        }
        id = (int32_t)(((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) |
                       ((uint32_t)buf[3] << 8) | buf[4]);
        for (int k = 0; k < LP_SCHEMA__ALL; k++) {
            if (codec->ids[k] >= 0 && codec->ids[k] == id) {
                return confluent_kind(id, k, LP_OK, first, last, kind, body, errstr, errstr_size);
            }
        }
        return unframe_added(codec, id, first, last, kind, body, errstr, errstr_size);
    }
    if (buf[0] == 0xC3 && len >= 2 && buf[1] == 0x01) {
        uint64_t fp = 0;
        if (len < 10) {
            return lp_codec_err(errstr, errstr_size,
                                "truncated record at byte %zu (single-object header)", len);
        }
        for (int i = 7; i >= 0; i--) {
            fp = (fp << 8) | buf[2 + i];
        }
        for (int k = first; k <= last; k++) {
            if (codec->fp[k] == fp) {
                *kind = k;
                *body = 10;
                return LP_OK;
            }
        }
        if (fp == LP_AVRO_PROFILE_PREVIOUS_FP && codec->fp[LP_SCHEMA_PROFILE] != 0 &&
            first <= LP_SCHEMA_PROFILE && LP_SCHEMA_PROFILE <= last) {
            *kind = LP_SCHEMA_PROFILE;
            *body = 10;
            return LP_OK;
        }
        return lp_codec_err(errstr, errstr_size, "unknown fingerprint %016llx",
                            (unsigned long long)fp);
    }
    /* Raw records of our schemas start with a non-empty event_id, whose length varint can be
     * neither 0x00 nor C3 01 (which decodes as -98): framing detection is unambiguous. */
    if (expected >= first && expected <= last) {
        *kind = expected;
        *body = 0;
        return LP_OK;
    }
    return lp_codec_err(errstr, errstr_size,
                        "unframed record (first byte 0x%02x): expected Confluent (0x00) or "
                        "single-object (C3 01) framing",
                        buf[0]);
}
