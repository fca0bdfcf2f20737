/* leadpulse: wire formats. Decoders never trust input: every length, enum and size is checked,
 * and a failure returns LP_ERR with a human-readable reason, never aborts. */
#ifndef LEADPULSE_CODEC_H
#define LEADPULSE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "leadpulse/event.h"
#include "leadpulse/score.h"

/* ---- JSON lines (replay input and output, JSON-configured topics) ----
 * Input object: {"kind":"engagement"|"profile"|"feedback", "event_id":..., "lead_id":...,
 *   "ts": <ms since epoch> or "2026-11-25T10:00:00Z", ...fields named as in the Avro schemas}.
 * If "kind" is absent it is inferred: "type" -> engagement, "outcome" -> feedback, else profile. */
int lp_json_decode_event(const char *buf, size_t len, lp_event_t *event, char *errstr,
                         size_t errstr_size);

/* Writes the fact as one JSON object (no newline) into buf. Returns the length, or 0 if it does
 * not fit. Numbers are printed so that equal facts give equal bytes. */
size_t lp_json_encode_fact(const lp_fact_t *fact, char *buf, size_t size);

/* ---- Avro ---- */
typedef enum {
    LP_FRAMING_CONFLUENT = 0, /* magic 0x00 + 4-byte big-endian schema id + Avro binary */
    LP_FRAMING_SINGLE_OBJECT, /* C3 01 + 8-byte little-endian CRC-64-AVRO fingerprint + binary */
    LP_FRAMING_RAW,           /* bare Avro binary (schema known from configuration) */
} lp_framing_t;

typedef enum {
    LP_SCHEMA_ENGAGEMENT = 0,
    LP_SCHEMA_PROFILE,
    LP_SCHEMA_FEEDBACK,
    LP_SCHEMA_QUALIFIED,
    LP_SCHEMA_STALE,
    LP_SCHEMA__COUNT
} lp_schema_kind_t;

typedef struct lp_avro_codec lp_avro_codec_t;

/* Loads the schemas from dir (the files in schemas/), computes their fingerprints.
 * schema_ids[k] is the Schema Registry id used for Confluent framing of schema kind k
 * (inputs: accepted ids; outputs: the id written). Caller frees with lp_avro_codec_destroy(). */
lp_avro_codec_t *lp_avro_codec_new(const char *schema_dir, const int32_t schema_ids[LP_SCHEMA__COUNT],
                                   char *errstr, size_t errstr_size);
void lp_avro_codec_destroy(lp_avro_codec_t *codec);

/* Decodes one input record. The framing is detected per record (Confluent or single-object);
 * `expected` says which schema a raw record (no framing) carries, or -1 to reject raw input.
 * On error returns LP_ERR and a reason such as "unknown schema id 42", "truncated record". */
int lp_avro_decode_event(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                         lp_event_t *event, char *errstr, size_t errstr_size);

/* Encodes an input event (producers, tests, bench). Returns bytes written or 0 if too small. */
size_t lp_avro_encode_event(lp_avro_codec_t *codec, const lp_event_t *event, lp_framing_t framing,
                            uint8_t *buf, size_t size);

/* Encodes a fact as LeadQualified / LeadStale. Returns bytes written or 0 if too small. */
size_t lp_avro_encode_fact(lp_avro_codec_t *codec, const lp_fact_t *fact, lp_framing_t framing,
                           uint8_t *buf, size_t size);

/* Decodes an output record back into a fact (consumers, tests). */
int lp_avro_decode_fact(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, lp_fact_t *fact,
                        char *errstr, size_t errstr_size);

/* CRC-64-AVRO (Rabin) fingerprint of a canonical schema text. */
uint64_t lp_avro_fingerprint64(const char *canonical, size_t len);

#endif
