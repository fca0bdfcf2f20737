/* leadpulse: stage 2 of account qualification over the store (docs/architecture.md "Accounts:
 * the second stage"): the worker's account partitions. Account partition q of the members topic
 * is store partition LP_ACCOUNT_PARTITION_BASE + q (hash tag {a<q>}), with the machinery of the
 * lead partitions: an epoch fences it, and each step commits atomically the accounts it changed
 * (under their keys, with their next stale deadline as the timer), the account hand-offs (outbox),
 * and where the partition stands:
 *  - the members topic's offset: the oldest record not applied yet (a restart reads again from
 *    there; what was applied since is recognised below), or past everything read;
 *  - "@applied": the number of records applied so far (increases with every step that applies
 *    one, so a retried commit whose reply was lost is recognised: LP_STORE_DUPLICATE);
 *  - the last applied record, stored under the key "@applied" (account keys start with "id:" or
 *    "domain:"): records ordered at or before it are re-read copies.
 * Records are ordered and released exactly as leadpulse/account_stage.h does in memory; an
 * account that lost its last member is stored as a one-byte tombstone (0x00) until it gets a
 * member again. */
#ifndef LEADPULSE_ACCOUNT_ENGINE_H
#define LEADPULSE_ACCOUNT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/account_state.h"
#include "leadpulse/codec.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

#define LP_ACCOUNT_APPLIED_KEY "@applied"
/* The stored offset under which an account partition records the members topic's partition count
 * its accounts are placed by (lp_acct_engine_set_partitions). */
#define LP_ACCOUNT_PARTITIONS_OFFSET "@partitions"

/* The stored value of an account that lost its last member (until it gets one again). */
#define LP_ACCOUNT_TOMBSTONE 0x00
static inline bool lp_account_is_tombstone(const uint8_t *data, size_t len) {
    return len == 1 && data[0] == LP_ACCOUNT_TOMBSTONE;
}

typedef struct {
    lp_format_t out_format; /* of the account hand-offs: Avro (with out_framing) or JSON */
    lp_framing_t out_framing;
    const char *members_topic; /* the name its offset is stored under */
    size_t step_records;       /* records applied per step at most (0: 1000) */
    size_t step_timers;        /* accounts whose timers fire per step at most (0: 1000) */
} lp_acct_engine_opts_t;

typedef struct {
    uint64_t records;   /* member records and leaves taken (copies included) */
    uint64_t marks;     /* marks taken */
    uint64_t malformed; /* values of the members topic that do not decode: skipped */
    uint64_t applied;   /* records applied */
    uint64_t copies;    /* records ordered at or before the last applied one: re-read after a
                           restart or re-sent (dropped) */
    uint64_t qualified; /* AccountQualified hand-offs */
    uint64_t stale;     /* AccountStale hand-offs */
    uint64_t steps;     /* commits */
    uint64_t commit_failures;
    uint64_t fenced;
    uint64_t moved;
    uint64_t corrupt; /* stored accounts that did not decode (replaced by an empty one) */
} lp_acct_engine_stats_t;

typedef struct lp_acct_engine lp_acct_engine_t;

/* rules, store and codec are borrowed (codec may be NULL for JSON output). NULL with a reason. */
lp_acct_engine_t *lp_acct_engine_new(const lp_acct_engine_opts_t *opts, const lp_rules_t *rules,
                                     lp_store_t *store, lp_avro_codec_t *codec, char *errstr,
                                     size_t errstr_size);
void lp_acct_engine_destroy(lp_acct_engine_t *e);
void lp_acct_engine_set_rules(lp_acct_engine_t *e, const lp_rules_t *rules);

/* The members topic's partition count (0: not checked). Accounts are placed by crc32 of their
 * key modulo it, so account partitions written under another count hold accounts where stage 1
 * no longer sends their records: each account partition records the count it was written with
 * (stored offset "@partitions", written when it is first taken), and `leadpulse repartition
 * --accounts` moves the accounts and records the new count. */
void lp_acct_engine_set_partitions(lp_acct_engine_t *e, int32_t partitions);

/* Whether account partitions 0..partitions-1 recorded partitions (or nothing yet): LP_OK;
 * LP_ERR with the first that disagrees and what to do in errstr; LP_ACCT_UNCHECKED with the
 * store's error in errstr when it could not be read (each partition is checked again when it is
 * taken). */
#define LP_ACCT_UNCHECKED 1
int lp_acct_engine_check_partitions(lp_acct_engine_t *e, int32_t partitions, char *errstr,
                                    size_t errstr_size);

/* Takes account partition q (0..LP_PARTITIONS_MAX-1): fences it, reads where it stands and sets
 * *offset to where the members topic must be read from (-1: its beginning). LP_OK or LP_ERR
 * (also when the partition recorded another partition count than lp_acct_engine_set_partitions
 * gave). */
int lp_acct_engine_assign(lp_acct_engine_t *e, int32_t q, int64_t *offset);
/* Gives q up (its buffered records are dropped: the next owner reads them again). */
void lp_acct_engine_revoke(lp_acct_engine_t *e, int32_t q);
bool lp_acct_engine_owns(const lp_acct_engine_t *e, int32_t q);
int64_t lp_acct_engine_epoch(const lp_acct_engine_t *e, int32_t q);

/* Takes one record of partition q of the members topic (value, its offset). LP_OK, or LP_ERR
 * when the value does not decode (why says so; the record is skipped and counted) or there is
 * no memory. */
int lp_acct_engine_add(lp_acct_engine_t *e, int32_t q, const uint8_t *value, size_t len,
                       int64_t offset, char *why, size_t why_size);

/* Whether a step of q would apply something (a record ordered before the watermark, or timers
 * the watermark may have passed since the last step). */
bool lp_acct_engine_ready(const lp_acct_engine_t *e, int32_t q);

/* One step of q: applies up to step_records records the watermark allows and fires the stale
 * timers due, then commits. *applied: the records applied. LP_OK (also when there was nothing to
 * do), LP_ERR (nothing changed: retry later), LP_STORE_FENCED (q lost: revoked) or
 * LP_STORE_MOVED (the store lost writes: q revoked; assign it again and read the members topic
 * from the offset it gives). */
int lp_acct_engine_step(lp_acct_engine_t *e, int32_t q, size_t *applied);

/* The watermark of q (INT64_MIN until every source sent a mark). */
int64_t lp_acct_engine_watermark(const lp_acct_engine_t *e, int32_t q);

const lp_acct_engine_stats_t *lp_acct_engine_stats(const lp_acct_engine_t *e);

/* Records of q waiting for the watermark (0 when not owned). */
uint64_t lp_acct_engine_buffered(const lp_acct_engine_t *e, int32_t q);
const char *lp_acct_engine_errstr(const lp_acct_engine_t *e);

/* Loads one stored account (for `inspect` and tests): 1 found, 0 none, LP_ERR. */
int lp_acct_engine_get(lp_acct_engine_t *e, int32_t q, const char *key, lp_account_state_t *out);

#endif
