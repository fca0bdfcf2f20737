/* leadpulse codec internals: shared by the Avro and JSON codecs, not a public contract. */
#ifndef LP_CODEC_INTERNAL_H
#define LP_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/codec.h"

/* Event time bounds accepted from producers: the epoch to 9999-12-31T23:59:59.999Z. Anything
 * outside is a producer bug (seconds for milliseconds, microseconds, garbage), not a real time. */
#define LP_CODEC_TS_MIN 0LL
#define LP_CODEC_TS_MAX 253402300799999LL

/* printf into errstr, never overflowing; returns LP_ERR so callers can `return lp_codec_err(...)`.
 */
int lp_codec_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and no NUL byte: a C string must hold
 * the whole value. Returns the offset of the first bad byte, or len if the text is valid. */
size_t lp_codec_utf8_check(const uint8_t *s, size_t len);

/* lp_codec_utf8_check and memcpy in one pass: copies the len bytes of s into dst (room for len
 * bytes; the caller adds the NUL) if they are valid, and returns len; otherwise returns the
 * offset of the first bad byte, as lp_codec_utf8_check, and dst holds unspecified bytes. */
size_t lp_codec_text_copy(char *dst, const uint8_t *s, size_t len);

/* Activity names: [a-z0-9_]+. */
bool lp_codec_name_valid(const char *name);

/* Checks what both decoders guarantee about an event beyond types and lengths: non-empty ids,
 * the activity name pattern, the time range, no negative counts. */
int lp_codec_check_event(const lp_event_t *event, char *errstr, size_t errstr_size);

/* Symbol tables of the schemas' enums, in schema order (uppercase, as in the .avsc files). */
extern const char *const lp_codec_stage_symbols[LP_STAGE__COUNT];
#define LP_CODEC_STALE_COUNT 3
extern const char *const lp_codec_stale_symbols[LP_CODEC_STALE_COUNT];

/* Case-insensitive lookup of a symbol in a table; returns its index or -1. */
int lp_codec_symbol_find(const char *const *symbols, int n, const char *name);

/* Writes the lowercase form of a symbol into out (size >= LP_NAME_MAX + 1). */
void lp_codec_lower(const char *symbol, char *out, size_t out_size);

/* Why an account hand-off cannot be encoded (a static string), or NULL: the checks the Avro and
 * JSON encoders share (lp_avro_encode_account_fact lists them). */
const char *lp_codec_account_fact_invalid(const lp_account_fact_t *fact);

/* Record name (without namespace) of each schema kind, as in the .avsc files. */
extern const char *const lp_codec_schema_names[LP_SCHEMA__ALL];

#endif
