/* leadpulse: the records of the members topic, from stage 1 (lead partitions) to stage 2 (account
 * partitions): docs/architecture.md "Accounts: the second stage" and docs/rules.md "Order of
 * member records". Three kinds, each the value of one Kafka record:
 *  - a member record (the lead's member view after an applied event) and a leave, keyed by the
 *    account key (so the partitioner sends an account's records to one stage-2 partition);
 *  - a mark: "every later record of stage-1 partition `source` has an order time >= st_ms",
 *    sent to every partition of the topic (empty key).
 * A member record or leave is ordered in stage 2 by (st_ms, account, lead_id, seq, leave after
 * member) — lp_member_msg_cmp — and applied once the marks of all `sources` partitions passed
 * its st_ms. The encoding is leadpulse's own (versioned, canonical; member_wire.c). */
#ifndef LEADPULSE_MEMBER_WIRE_H
#define LEADPULSE_MEMBER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "leadpulse/account_state.h"

typedef enum {
    LP_MW_MEMBER = 0, /* rec.leave false */
    LP_MW_LEAVE = 1,  /* rec.leave true */
    LP_MW_MARK = 2,
} lp_mw_type_t;

typedef struct {
    lp_mw_type_t type;
    int32_t source;  /* the stage-1 partition that sent it, 0..sources-1 */
    int32_t sources; /* the stage-1 partition count when it was sent, 1..LP_PARTITIONS_MAX */
    int64_t st_ms;   /* member/leave: its order time (>= rec.event_ms); mark: the watermark */
    lp_member_record_t rec; /* member/leave only (rec.leave matches the type) */
    int64_t offset;         /* where the reader found it (not encoded; -1 unknown) */
} lp_member_msg_t;

/* Bytes an encoded message takes at most. */
#define LP_MEMBER_WIRE_MAX (2 + 3 * 10 + 2 * (10 + LP_ACCOUNT_KEY_MAX) + 9 * 10)

/* Encodes m into buf; returns the bytes written, or 0 when buf is too small or m is invalid (as
 * lp_member_msg_decode would refuse it). */
size_t lp_member_msg_encode(const lp_member_msg_t *m, uint8_t *buf, size_t size);

/* Decodes one record value into *m. Trusts nothing: version, type, every length, enum, range
 * and time (>= 0; st_ms >= event_ms), the account key's form ("id:" or "domain:" and at least
 * one byte), a non-empty lead id, canonical varints, and no trailing bytes. LP_OK, or LP_ERR with
 * the reason in why (NUL-terminated, may be cut) and *m unspecified. */
int lp_member_msg_decode(lp_member_msg_t *m, const uint8_t *buf, size_t len, char *why,
                         size_t why_size);

/* A bundle: the member records and leaves of one stage-1 batch for one partition of the members
 * topic, in the order they were sent, as one Kafka record (fewer outbox entries and records than
 * one per event): u8 1 | u8 3 | count (varint, >= 1) | count x (length (varint) | an encoded
 * member record or leave). A bundle holds at most LP_MEMBER_BUNDLE_BYTES of records (a batch
 * sends several when it has more). Marks are never bundled. */
#define LP_MW_BUNDLE 3
#define LP_MEMBER_BUNDLE_BYTES (256 * 1024)

/* A bundle being built: the encoded records, each a varint length and its bytes. Zeroed to
 * start; lp_member_bundle_free releases it. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint32_t n;
} lp_member_bundle_t;

/* Appends a member record or leave (not a mark). LP_OK, or LP_ERR (invalid, no memory). */
int lp_member_bundle_add(lp_member_bundle_t *b, const lp_member_msg_t *m);
/* Bytes the finished bundle takes at most. */
size_t lp_member_bundle_bound(const lp_member_bundle_t *b);
/* Writes the bundle (header and records) into out; returns its length, 0 if it does not fit or
 * is empty. */
size_t lp_member_bundle_finish(const lp_member_bundle_t *b, uint8_t *out, size_t size);
/* Empties the bundle (keeps its memory); lp_member_bundle_free releases it. */
void lp_member_bundle_reset(lp_member_bundle_t *b);
void lp_member_bundle_free(lp_member_bundle_t *b);

/* Calls fn for each message of a record value (a single message, or each of a bundle's, in
 * order). LP_OK; LP_ERR when the value (or a message of the bundle) does not decode, with the
 * reason in why, or when fn returns LP_ERR (then why is fn's). Messages of a bundle before a bad
 * one have been passed to fn. */
int lp_member_value_foreach(const uint8_t *buf, size_t len,
                            int (*fn)(void *ctx, const lp_member_msg_t *m), void *ctx, char *why,
                            size_t why_size);

/* The stage-2 order of two member records or leaves: st_ms, then account, lead_id (strcmp),
 * seq, then a member record before a leave. 0 only for the same record (a re-sent copy). */
int lp_member_msg_cmp(const lp_member_msg_t *a, const lp_member_msg_t *b);

#endif
