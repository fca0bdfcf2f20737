/* leadpulse: stage 2 of account qualification in memory (docs/architecture.md "Accounts: the
 * second stage", docs/rules.md "Order of member records"): the members topic's records of one
 * or more stage-2 partitions go in (lp_acct_stage_add), in any interleaving of their sources;
 * the account hand-offs come out in a deterministic order that depends only on the records and
 * the marks, not on how the sources were interleaved:
 *  - the watermark W is the minimum over the sources 0..sources-1 of the latest mark of each
 *    (none until every source has sent one);
 *  - lp_acct_stage_release applies the buffered records with st_ms < W in lp_member_msg_cmp order;
 *    before each, the record's account fires its timers due at or before the record's st_ms; after
 *    them, every account fires its timers due at or before W (accounts in (deadline, key) order);
 *  - a copy of a record already buffered or applied is dropped; a record ordered before the last
 *    one applied (which a stage 1 keeping its marks never sends) is dropped and counted as late.
 * Used by `leadpulse replay`; the worker's stage 2 keeps the same order with Redis state. */
#ifndef LEADPULSE_ACCOUNT_STAGE_H
#define LEADPULSE_ACCOUNT_STAGE_H

#include <stdint.h>

#include "leadpulse/account_state.h"
#include "leadpulse/member_wire.h"
#include "leadpulse/rules.h"

typedef struct {
    uint64_t records;   /* member records and leaves taken (copies included) */
    uint64_t marks;     /* marks taken */
    uint64_t applied;   /* records applied to an account (ignored by it or not) */
    uint64_t copies;    /* re-sent copies dropped */
    uint64_t late;      /* records ordered before the last applied one: dropped */
    uint64_t qualified; /* AccountQualified hand-offs */
    uint64_t stale;     /* AccountStale hand-offs */
    uint64_t accounts;  /* accounts that have members now */
    uint64_t buffered;  /* records waiting for the watermark */
} lp_acct_stage_stats_t;

typedef struct lp_acct_stage lp_acct_stage_t;

/* Receives each account hand-off, in order. A non-OK return stops the release (LP_ERR). */
typedef int (*lp_acct_emit_fn)(void *ctx, const lp_account_fact_t *fact);

/* rules are borrowed (accounts must be on). NULL on no memory. */
lp_acct_stage_t *lp_acct_stage_new(const lp_rules_t *rules);
void lp_acct_stage_free(lp_acct_stage_t *s);

/* Takes one decoded message of the members topic. LP_OK or LP_ERR (no memory). */
int lp_acct_stage_add(lp_acct_stage_t *s, const lp_member_msg_t *m);

/* The watermark now: INT64_MIN until every source sent a mark. */
int64_t lp_acct_stage_watermark(const lp_acct_stage_t *s);

/* Applies what the watermark w allows (see the top of this file); w is normally
 * lp_acct_stage_watermark. LP_OK, or LP_ERR (an account refused a record — a bug —, no memory,
 * or emit failed). */
int lp_acct_stage_release(lp_acct_stage_t *s, int64_t w, lp_acct_emit_fn emit, void *ctx);

const lp_acct_stage_stats_t *lp_acct_stage_stats(const lp_acct_stage_t *s);

/* ---- The ordering buffer alone, for a stage 2 that keeps its accounts elsewhere (the worker's
 * Redis store): lp_acct_stage_add as above, then: */

/* Takes out the next record to apply under watermark w (st_ms < w), skipping copies: 1 with *m
 * set (it becomes the last applied), 0 when none is due. */
int lp_acct_stage_pop(lp_acct_stage_t *s, int64_t w, lp_member_msg_t *m);

/* Undoes pops whose application failed: the records go back into the buffer and the last
 * applied record becomes prev (NULL: none). */
int lp_acct_stage_unpop(lp_acct_stage_t *s, const lp_member_msg_t *msgs, size_t n,
                        const lp_member_msg_t *prev);

/* The last applied record (for a stage 2 that restarts: records ordered at or before it are
 * dropped as copies). */
void lp_acct_stage_set_last(lp_acct_stage_t *s, const lp_member_msg_t *last);
const lp_member_msg_t *lp_acct_stage_last(const lp_acct_stage_t *s);

/* The smallest `offset` of the buffered records (where a restart must read again from), or
 * INT64_MAX when none is buffered. */
int64_t lp_acct_stage_low_offset(const lp_acct_stage_t *s);

/* The earliest order time among the buffered records, INT64_MAX when none. */
int64_t lp_acct_stage_next_st(const lp_acct_stage_t *s);

/* The account with this key, or NULL (for tests and state dumps). */
const lp_account_state_t *lp_acct_stage_account(const lp_acct_stage_t *s, const char *key);

#endif
