/* leadpulse: wire formats. Decoders never trust input: every length, enum and size is checked,
 * and a failure returns LP_ERR with a human-readable reason, never aborts. */
#ifndef LEADPULSE_CODEC_H
#define LEADPULSE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "leadpulse/account.h"
#include "leadpulse/account_state.h"
#include "leadpulse/event.h"
#include "leadpulse/score.h"

/* ---- JSON lines (replay input and output, JSON-configured topics) ----
 * Input object: {"kind":"engagement"|"profile"|"feedback", "event_id":..., "lead_id":...,
 *   "ts": <ms since epoch> or "2026-11-25T10:00:00Z", ...fields named as in the Avro schemas}.
 * If "kind" is absent it is inferred: "type" -> engagement, "outcome" -> feedback, else profile. */
/* The shortest of %.15g/%.16g/%.17g that reads back as exactly v ("null" if not finite), as
 * every JSON output of leadpulse writes doubles. Returns the length written. */
#define LP_JSON_DOUBLE_MAX 40
size_t lp_json_format_double(char buf[LP_JSON_DOUBLE_MAX], double v);

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
    LP_SCHEMA_ERASED,
    LP_SCHEMA__COUNT, /* the kinds of the configured schema ids (schema_ids[], schema_id.*) */
    /* The account hand-offs (AccountQualified, AccountStale): loaded and checked by
     * lp_avro_codec_new when their files are present, encoded by lp_avro_encode_account_fact.
     * Not in the schema_ids[] table above (the worker writes no account hand-off yet): their
     * Confluent ids are set with lp_avro_codec_set_schema_id. */
    LP_SCHEMA_ACCOUNT_QUALIFIED = LP_SCHEMA__COUNT,
    LP_SCHEMA_ACCOUNT_STALE,
    LP_SCHEMA__ALL
} lp_schema_kind_t;

typedef struct lp_avro_codec lp_avro_codec_t;

/* Loads the schemas from dir (the files in schemas/), computes their fingerprints.
 * schema_ids[k] is the Schema Registry id used for Confluent framing of schema kind k
 * (inputs: accepted ids; outputs: the id written); an id < 0, or schema_ids NULL, means none.
 * Fails if a schema file's canonical form differs from the one the hand-written codec implements.
 * AccountQualified.avsc and AccountStale.avsc are checked alike when dir has them; without them
 * the codec loads, and cannot encode account hand-offs. Caller frees with
 * lp_avro_codec_destroy(). */
lp_avro_codec_t *lp_avro_codec_new(const char *schema_dir,
                                   const int32_t schema_ids[LP_SCHEMA__COUNT], char *errstr,
                                   size_t errstr_size);
void lp_avro_codec_destroy(lp_avro_codec_t *codec);

/* Decodes one input record. The framing is detected per record (Confluent or single-object);
 * `expected` says which schema a raw record (no framing) carries, or -1 to reject raw input.
 * On error returns LP_ERR and a reason such as "unknown schema id 42", "truncated record", or
 * LP_AVRO_RETRY when the record's schema id is not known yet and the fetch function (see
 * lp_avro_codec_set_fetch) could not ask the registry now. */
int lp_avro_decode_event(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                         lp_event_t *event, char *errstr, size_t errstr_size);

/* Encodes an input event (producers, tests, bench). Returns bytes written or 0 if too small or a
 * value is outside the schema (see lp_avro_codec_errstr). */
size_t lp_avro_encode_event(lp_avro_codec_t *codec, const lp_event_t *event, lp_framing_t framing,
                            uint8_t *buf, size_t size);

/* Encodes a fact as LeadQualified / LeadStale / LeadErased (by fact->kind). Returns bytes written
 * or 0 if too small or a value is outside the schema (see lp_avro_codec_errstr). */
size_t lp_avro_encode_fact(lp_avro_codec_t *codec, const lp_fact_t *fact, lp_framing_t framing,
                           uint8_t *buf, size_t size);

/* ---- Account hand-offs (docs/schemas.md "Account hand-offs") ---- */

/* Bytes an encoded account hand-off takes at most, framing included (Avro), and with the NUL
 * (JSON, every string escaped at its worst). */
#define LP_AVRO_ACCOUNT_FACT_MAX 8192
#define LP_JSON_ACCOUNT_FACT_MAX 32768

/* Sets the Confluent schema id written for kind LP_SCHEMA_ACCOUNT_QUALIFIED or
 * LP_SCHEMA_ACCOUNT_STALE (id < 0: none, the default: Confluent framing is then refused). LP_ERR
 * with errstr for another kind, or an id the codec knows for another schema (configured or
 * added). */
int lp_avro_codec_set_schema_id(lp_avro_codec_t *codec, lp_schema_kind_t kind, int32_t id,
                                char *errstr, size_t errstr_size);

/* Encodes an account hand-off as AccountQualified / AccountStale (by fact->kind), Avro binary in
 * the schema's field order after the framing (Confluent: the id set above; single-object: the
 * schema file's fingerprint). Returns bytes written, or 0 if buf is too small, the schema file
 * was not loaded, or a value is outside the schema or the format's rules (see
 * lp_avro_codec_errstr): an empty event_id, an account key not "id:..." / "domain:...", counts
 * below 0, engaged_members above members_total, nmembers other than min(members_total,
 * LP_ACCOUNT_FACT_MEMBERS), qualification outside 1..INT32_MAX, roles_missing in an
 * AccountQualified, an empty or unknown role group, an unknown role, grade, stage, reason or kind,
 * a member without lead_id or with a negative last_activity. The order of members is the
 * caller's (lp_account_members_sort). */
size_t lp_avro_encode_account_fact(lp_avro_codec_t *codec, const lp_account_fact_t *fact,
                                   lp_framing_t framing, uint8_t *buf, size_t size);

/* The same hand-off as one JSON object (no newline), as lp_json_encode_fact writes lead
 * hand-offs: "kind" ("account_qualified" or "account_stale") then the schema's fields in schema
 * order; times integer ms (null when absent), the member stage lowercase, the fit grade its
 * capital letter, doubles shortest round-trip. Returns the length, or 0 if it does not fit or a
 * value is refused as by lp_avro_encode_account_fact. */
size_t lp_json_encode_account_fact(const lp_account_fact_t *fact, char *buf, size_t size);

/* A stored account as JSON, for `leadpulse inspect --account` (docs/operations: README
 * "Inspecting an account"): {"account", "t" (its time T), "score" (S at T), "engaged_members",
 * "roles_covered" (names), "armed", "qualification", "qualified_at", "accepted", "rejected",
 * "sla_deadline", "quiet_deadline" (times: integer ms, null when none), "members_total",
 * "members_untracked", "members": [{"lead_id", "seq", "role", "score" (at T), "engaged",
 * "fit_grade", "stage", "ref", "last_activity", "accepted", "rejected"}] (every member, by lead
 * id)}. Returns the length, or 0 when it does not fit. */
size_t lp_json_encode_account_state(const lp_account_state_t *a, const lp_rules_t *rules, char *buf,
                                    size_t size);

/* Decodes an output record back into a fact (consumers, tests). */
int lp_avro_decode_fact(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, lp_fact_t *fact,
                        char *errstr, size_t errstr_size);

/* CRC-64-AVRO (Rabin) fingerprint of a canonical schema text. */
uint64_t lp_avro_fingerprint64(const char *canonical, size_t len);

/* ---- Additions (codec layer) ---- */

/* Why the last lp_avro_encode_* call on this codec returned 0: "buffer too small (...)" or a
 * value outside the schema ("fit_grade 'X' is not A-D"). Owned by the codec. */
const char *lp_avro_codec_errstr(const lp_avro_codec_t *codec);

/* Parsing Canonical Form of the loaded schema of `kind` (owned by the codec, valid until destroy)
 * and its CRC-64-AVRO fingerprint (the value; single-object framing writes it little-endian).
 * Any kind below LP_SCHEMA__ALL; NULL and 0 for an account kind whose file was not there. */
const char *lp_avro_codec_canonical(const lp_avro_codec_t *codec, lp_schema_kind_t kind);
uint64_t lp_avro_codec_fingerprint(const lp_avro_codec_t *codec, lp_schema_kind_t kind);

/* Parsing Canonical Form (Avro spec) of any schema JSON text, NUL-terminated into out.
 * Returns LP_OK, or LP_ERR if the schema does not parse or out is too small. */
int lp_avro_canonical_form(const char *json, size_t len, char *out, size_t out_size, char *errstr,
                           size_t errstr_size);

/* Decodes a LeadQualified / LeadStale / LeadErased record into a fact; like lp_avro_decode_fact
 * but accepts a raw (unframed) record when expected is LP_SCHEMA_QUALIFIED, LP_SCHEMA_STALE or
 * LP_SCHEMA_ERASED (-1: framed only). */
int lp_avro_decode_fact_as(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                           lp_fact_t *fact, char *errstr, size_t errstr_size);

/* Writes an input event as one JSON object (no newline) in the lp_json_decode_event format, every
 * schema field present (null when absent). Returns the length, or 0 if it does not fit. */
size_t lp_json_encode_event(const lp_event_t *event, char *buf, size_t size);

/* Parses the output of lp_json_encode_fact back into a fact (consumers, tests). */
int lp_json_decode_fact(const char *buf, size_t len, lp_fact_t *fact, char *errstr,
                        size_t errstr_size);

/* ---- Schema ids learned at run time (a Schema Registry) ---- */

/* lp_avro_decode_event outcome: the record's schema id is unknown and cannot be learned now (the
 * fetch function answered LP_ERR: no registry reachable). Retry later; do not dead-letter. */
#define LP_AVRO_RETRY (-4)
/* Fetch function outcome: no such id anywhere (the record is dead-lettered). */
#define LP_AVRO_UNKNOWN_ID (-3)

/* Teaches the codec a Confluent schema id: the writer schema's JSON text (as a registry serves
 * it). Returns LP_OK when records with that id can be read (fast path if its canonical form
 * equals one of our input schemas', else through resolution), LP_ERR when not (errstr says why;
 * the id is then remembered as unreadable and records carrying it fail with "schema id N: <why>").
 * At most 1024 ids. */
int lp_avro_codec_add_schema(lp_avro_codec_t *codec, int32_t id, const char *schema_json,
                             size_t len, char *errstr, size_t errstr_size);

/* Called by lp_avro_decode_event for a Confluent id it does not know: sets *schema_json
 * (NUL-terminated, valid during the call) and returns LP_OK, or returns LP_AVRO_UNKNOWN_ID (no
 * such id anywhere: the record is dead-lettered "unknown schema id N") or LP_ERR (could not ask
 * now: decode returns LP_AVRO_RETRY with errstr). */
typedef int (*lp_avro_fetch_fn)(void *ctx, int32_t id, const char **schema_json, char *errstr,
                                size_t errstr_size);
void lp_avro_codec_set_fetch(lp_avro_codec_t *codec, lp_avro_fetch_fn fn, void *ctx);

/* ---- Schema evolution: Confluent ids of writer schemas other than ours ----
 * A record written with another version of an input schema is read by Avro schema resolution
 * (specification 1.11): fields matched by name or by the reader field's aliases, writer-only
 * fields skipped, reader-only fields given their default, promotions (int to long, float or
 * double, long to float or double, float to double, string to bytes and back), unions and enums
 * resolved by branch and symbol. The event is the one the record would give had it been written
 * with our schema. Single-threaded, like the rest of the codec. */

/* What a fetch function (below) returns for an id no registry has. */
#define LP_AVRO_UNKNOWN_ID (-3)
/* Outcome of lp_avro_decode_event for a record whose schema id the codec does not know yet and
 * cannot learn now (the fetch function answered LP_ERR: registry unreachable): retry later, do
 * not dead-letter. */
#define LP_AVRO_RETRY (-4)

/* Most schema ids a codec learns (lp_avro_codec_add_schema fails beyond). */
#define LP_AVRO_ADDED_IDS_MAX 1024

/* Teaches the codec a Confluent schema id: the writer schema's JSON text (as a registry serves
 * it; the codec copies what it needs). Returns LP_OK when records with that id can be read
 * (directly if its Parsing Canonical Form equals one of our input schemas', else through
 * resolution), LP_ERR when not: errstr says why, and unless the codec could not store the id
 * (too many ids, out of memory, an id configured for another schema) the id is remembered as
 * unreadable: records carrying it fail with "schema id N: <why>". Adding a known id again
 * replaces what the codec knew. */
int lp_avro_codec_add_schema(lp_avro_codec_t *codec, int32_t id, const char *schema_json,
                             size_t len, char *errstr, size_t errstr_size);

/* Called by lp_avro_decode_event for a Confluent id it does not know: sets *schema_json
 * (NUL-terminated, valid during the call) and returns LP_OK, or returns LP_AVRO_UNKNOWN_ID (no
 * such id anywhere: the record fails "unknown schema id N"; not remembered, so the next record
 * with that id asks again) or LP_ERR with errstr (could not ask now: the decode returns
 * LP_AVRO_RETRY). A fetched schema is added with lp_avro_codec_add_schema, so an unreadable
 * one is not fetched again. */
typedef int (*lp_avro_fetch_fn)(void *ctx, int32_t id, const char **schema_json, char *errstr,
                                size_t errstr_size);
/* fn NULL: unknown ids fail as "unknown schema id N" (the default). */
void lp_avro_codec_set_fetch(lp_avro_codec_t *codec, lp_avro_fetch_fn fn, void *ctx);

/* How records carrying a Confluent schema id are read (metrics, logs, tests). */
typedef enum {
    LP_AVRO_ID_UNKNOWN = 0, /* neither configured nor added */
    LP_AVRO_ID_DIRECT,      /* our schema (configured, or added with the same canonical form) */
    LP_AVRO_ID_RESOLVED,    /* another schema of *kind: through resolution */
    LP_AVRO_ID_UNREADABLE,  /* added, but it does not resolve: its records fail */
} lp_avro_id_state_t;
/* kind may be NULL; it is set for DIRECT and RESOLVED. */
lp_avro_id_state_t lp_avro_codec_id_state(const lp_avro_codec_t *codec, int32_t id,
                                          lp_schema_kind_t *kind);

/* ---- Avro object container files (replay input) ----
 * The file's writer schema must be EngagementEvent, LeadProfileUpdated or SalesFeedback (matched by
 * record name; fields are read by name, so added fields are ignored) or a union of them. */
typedef struct lp_avro_file lp_avro_file_t;

/* Opens path. Caller closes with lp_avro_file_close(). NULL and errstr on failure. */
lp_avro_file_t *lp_avro_file_open(const char *path, char *errstr, size_t errstr_size);

/* Reads the next record into event: returns 1 (an event), 0 (end of file) or LP_ERR with errstr
 * naming the record number ("record 17: lead_id is empty"). After a bad record that the file
 * reader could still frame, the next call continues with the following record; after a block
 * it cannot read (a cut or damaged file), that one LP_ERR is the last word and the next call
 * returns 0. */
int lp_avro_file_next(lp_avro_file_t *file, lp_event_t *event, char *errstr, size_t errstr_size);
void lp_avro_file_close(lp_avro_file_t *file);

#endif
