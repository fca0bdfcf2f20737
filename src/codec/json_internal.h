/* JSON internals: a strict streaming reader (no DOM, no allocation) and a bounded writer. */
#ifndef LP_JSON_INTERNAL_H
#define LP_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec_internal.h"

#define LP_JSON_MAX_DEPTH 8
#define LP_JSON_KEY_MAX 64

typedef struct {
    const char *buf;
    size_t len;
    size_t pos;
    int depth;
    const char *key; /* key of the value being read, for messages ("" at top level) */
    char *errstr;
    size_t errstr_size;
} lp_json_rd_t;

typedef struct {
    bool is_int;   /* no fraction, no exponent */
    bool overflow; /* is_int but outside int64 */
    int64_t i;
    double d;
} lp_json_num_t;

/* Error "key \"k\": <message> at byte N" (or without the key at top level). */
int lp_json_fail(lp_json_rd_t *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Next non-whitespace character without consuming it, 0 at the end of the input. */
char lp_json_peek(lp_json_rd_t *rd);
/* Reads a string value into dst (dst_size includes the NUL); longer -> error. dst NULL: validate
 * only. */
int lp_json_string(lp_json_rd_t *rd, char *dst, size_t dst_size);
int lp_json_number(lp_json_rd_t *rd, lp_json_num_t *num);
/* Consumes a `null`; returns 1 if there was one, 0 if the value is something else. */
int lp_json_null(lp_json_rd_t *rd);
int lp_json_bool(lp_json_rd_t *rd, bool *out);
/* Skips (and validates) any value. */
int lp_json_skip(lp_json_rd_t *rd);
/* Objects: begin consumes '{'; next reads the next key (too-long keys come back as "") or sets
 * *done at '}'. Arrays: begin consumes '['; next sets *done at ']'. *index starts at 0 and counts
 * the elements (a ',' is required before every element but the first). */
int lp_json_object_begin(lp_json_rd_t *rd);
int lp_json_object_next(lp_json_rd_t *rd, int *index, char key[LP_JSON_KEY_MAX + 1], bool *done);
int lp_json_array_begin(lp_json_rd_t *rd);
int lp_json_array_next(lp_json_rd_t *rd, int *index, bool *done);
/* After the top-level value: only whitespace may follow. */
int lp_json_end(lp_json_rd_t *rd);

/* Integer or double-valued readers with the checks every field needs. */
int lp_json_int(lp_json_rd_t *rd, int64_t min, int64_t max, int64_t *out);
int lp_json_double(lp_json_rd_t *rd, double *out);
/* A time: integer milliseconds or an RFC 3339 string; within LP_CODEC_TS_MIN..MAX. */
int lp_json_time(lp_json_rd_t *rd, int64_t *ts_ms);
/* RFC 3339 text -> ms since the epoch. Returns LP_OK or LP_ERR with a reason in why. */
int lp_json_parse_rfc3339(const char *s, size_t len, int64_t *ts_ms, const char **why);

typedef struct {
    char *buf;
    size_t size;
    size_t pos;
    bool overflow;
} lp_json_wr_t;

void lp_json_raw(lp_json_wr_t *wr, const char *s);
/* ,"key": (no comma before the first key of an object: pass first = true). */
void lp_json_key(lp_json_wr_t *wr, const char *key, bool first);
/* A string from a char array of array_size bytes, escaped. */
void lp_json_str(lp_json_wr_t *wr, const char *s, size_t array_size);
/* "" -> null. */
void lp_json_opt_str(lp_json_wr_t *wr, const char *s, size_t array_size);
void lp_json_i64(lp_json_wr_t *wr, int64_t v);
/* Shortest of %.15g/%.16g/%.17g that reads back exactly; non-finite -> null. */
void lp_json_dbl(lp_json_wr_t *wr, double v);
/* Returns the length written (NUL-terminated if room), or 0 on overflow. */
size_t lp_json_finish(lp_json_wr_t *wr);

#endif
