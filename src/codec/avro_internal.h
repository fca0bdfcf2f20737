/* Avro codec internals: the codec object and the binary reader/writer primitives. */
#ifndef LP_AVRO_INTERNAL_H
#define LP_AVRO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec_internal.h"
#include "leadpulse/codec.h"

#define LP_AVRO_CANONICAL_MAX 8192

/* Schema ids learnt at run time and their resolution programs (avro_resolve.c). */
typedef struct lp_avro_resolver lp_avro_resolver_t;

/* Every array is indexed by lp_schema_kind_t, the account kinds included (their entries stay -1,
 * 0 and NULL when their files were not in the schema folder). */
struct lp_avro_codec {
    int32_t ids[LP_SCHEMA__ALL];     /* Confluent schema ids, -1 = none */
    uint64_t fp[LP_SCHEMA__ALL];     /* CRC-64-AVRO of the canonical forms */
    char *canonical[LP_SCHEMA__ALL]; /* Parsing Canonical Forms */
    char errstr[LP_ERRSTR];          /* why the last encode failed */
    /* lp_event_init() of each input kind, copied into every decoded event (see avro_event.c). */
    lp_event_t blank[LP_SCHEMA_FEEDBACK + 1];
    /* The schema files as read: resolution needs the defaults and aliases that the canonical
     * form drops. */
    char *text[LP_SCHEMA__ALL];
    size_t text_len[LP_SCHEMA__ALL];
    lp_avro_resolver_t *resolver; /* NULL until the first lp_avro_codec_add_schema */
    lp_avro_fetch_fn fetch;       /* NULL: unknown ids are errors */
    void *fetch_ctx;
};

/* Binary reader over one record. Every read names the field in its error. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    const char *field;
    char *errstr;
    size_t errstr_size;
    bool previous_profile; /* a LeadProfileUpdated of the schema version before account_id */
} lp_avro_rd_t;

/* Any varint, with the errors (truncated, longer than 64 bits). */
int lp_avro_rd_long_any(lp_avro_rd_t *rd, int64_t *out);

/* Most varints of a record are one byte (string lengths below 64, union branches, enums, flags):
 * decoded here without a call; the others go to lp_avro_rd_long_any. */
static inline int lp_avro_rd_long(lp_avro_rd_t *rd, int64_t *out) {
    if (rd->pos < rd->len && rd->buf[rd->pos] < 0x80) {
        uint8_t b = rd->buf[rd->pos++];
        *out = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        return LP_OK;
    }
    return lp_avro_rd_long_any(rd, out);
}

int lp_avro_rd_int(lp_avro_rd_t *rd, int32_t *out);
int lp_avro_rd_bool(lp_avro_rd_t *rd, bool *out);
int lp_avro_rd_double(lp_avro_rd_t *rd, double *out);
/* A string into dst (dst_size includes the NUL); too long, invalid UTF-8 or NUL -> LP_ERR. */
int lp_avro_rd_string(lp_avro_rd_t *rd, char *dst, size_t dst_size);
/* ["null", string]: null leaves dst "". */
int lp_avro_rd_opt_string(lp_avro_rd_t *rd, char *dst, size_t dst_size);
/* ["null", long]: null gives *present false. */
int lp_avro_rd_opt_long(lp_avro_rd_t *rd, int64_t *out, bool *present);
int lp_avro_rd_union(lp_avro_rd_t *rd, int nbranches, int *out);
int lp_avro_rd_enum(lp_avro_rd_t *rd, int nsymbols, int *out);
/* event_id, lead_id, ts: the first three fields of every schema. */
int lp_avro_rd_header(lp_avro_rd_t *rd, char *event_id, char *lead_id, int64_t *ts_ms);
int lp_avro_rd_end(lp_avro_rd_t *rd);

/* Binary writer: an overflow is remembered and reported by lp_avro_wr_finish. */
typedef struct {
    uint8_t *buf;
    size_t size;
    size_t pos;
    bool overflow;
} lp_avro_wr_t;

void lp_avro_wr_long(lp_avro_wr_t *wr, int64_t v);
void lp_avro_wr_bool(lp_avro_wr_t *wr, bool v);
void lp_avro_wr_double(lp_avro_wr_t *wr, double v);
void lp_avro_wr_bytes(lp_avro_wr_t *wr, const void *data, size_t len);
/* len bytes as they are (fixed, float). */
void lp_avro_wr_raw(lp_avro_wr_t *wr, const void *data, size_t len);
/* A C string held in a char array of array_size bytes (never reads past it). */
void lp_avro_wr_string(lp_avro_wr_t *wr, const char *s, size_t array_size);
/* ["null", string]: "" is written as null. */
void lp_avro_wr_opt_string(lp_avro_wr_t *wr, const char *s, size_t array_size);

/* Writes the framing header of schema `kind`; LP_ERR (codec->errstr set) if it cannot. */
int lp_avro_wr_frame(lp_avro_codec_t *codec, lp_avro_wr_t *wr, lp_framing_t framing, int kind);
size_t lp_avro_wr_finish(lp_avro_codec_t *codec, lp_avro_wr_t *wr);

/* Detects the framing of buf and the schema kind it carries, among kinds [first, last].
 * *body is the offset of the Avro binary. Besides LP_OK and LP_ERR: LP_AVRO_UNKNOWN_ID (errstr
 * "unknown schema id N") and, for an added id read through resolution, LP_AVRO_UNFRAME_RESOLVE
 * with *kind and *body set. */
#define LP_AVRO_UNFRAME_RESOLVE 1
/* lp_avro_unframe also takes single-object records framed with the fingerprint of the previous
 * LeadProfileUpdated (before its last field, account_id, was added): kind LP_SCHEMA_PROFILE;
 * lp_avro_previous_profile tells them apart (their body must end before account_id). */
#define LP_AVRO_PROFILE_PREVIOUS_FP 0x41e7dcab3fa6e35cULL
bool lp_avro_previous_profile(const uint8_t *buf, size_t len);
int lp_avro_unframe(const lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                    int first, int last, int *kind, size_t *body, char *errstr, size_t errstr_size);

/* Decodes the Avro binary of an input record of `kind` (what follows the framing) into event:
 * the fast decoder with every check of lp_avro_decode_event. */
int lp_avro_decode_body(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, size_t body,
                        int kind, lp_event_t *event, char *errstr, size_t errstr_size);

/* ---- Schema ids added at run time (avro_resolve.c) ---- */

/* How an added id is read: LP_OK (directly as *kind), LP_AVRO_UNFRAME_RESOLVE (through
 * resolution, as *kind), LP_ERR (unreadable: errstr "schema id N: why") or LP_AVRO_UNKNOWN_ID
 * (not added). */
int lp_avro_resolver_find(const lp_avro_resolver_t *resolver, int32_t id, int *kind, char *errstr,
                          size_t errstr_size);

/* lp_avro_decode_event after lp_avro_unframe answered other than LP_OK (rc): decodes through
 * resolution, or fetches the schema of an unknown id and decodes again. */
int lp_avro_decode_slow(lp_avro_codec_t *codec, int rc, const uint8_t *buf, size_t len,
                        int expected, int kind, lp_event_t *event, char *errstr,
                        size_t errstr_size);

void lp_avro_resolver_free(lp_avro_resolver_t *resolver);

#endif
