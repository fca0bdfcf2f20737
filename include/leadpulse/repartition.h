/* leadpulse: moving the stored state of leads after the input topics grew from `from` to `to`
 * partitions (src/engine/repartition.c; `leadpulse repartition`, docs/architecture.md "Changing
 * the partition count"). Works on any store with `scan` (Redis, Redis Cluster, in-memory). */
#ifndef LEADPULSE_REPARTITION_H
#define LEADPULSE_REPARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/hash.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

typedef struct {
    int32_t from;                 /* the old partition count (>= 1) */
    int32_t to;                   /* the new one (> from, <= LP_PARTITIONS_MAX) */
    lp_partitioner_t partitioner; /* leads only: accounts are placed by crc32 of their key */
    /* Move accounts instead of leads: the members topic grew from `from` to `to` partitions.
     * Account partition p is store partition LP_ACCOUNT_PARTITION_BASE + p; an account's
     * partition is crc32 of its key modulo the count (what stage 1 produces to). The last
     * applied record of each partition stays where it is, tombstones of forgotten accounts are
     * deleted rather than copied, there are no suppression entries, and at the end every
     * account partition 0..to-1 records `to` (LP_ACCOUNT_PARTITIONS_OFFSET), which workers
     * compare with the members topic at start. */
    bool accounts;
    bool dry_run; /* plan and check only: nothing is written, no epoch bumped */
    size_t page;  /* leads per scan page and per commit (0: 500) */
} lp_repartition_opts_t;

/* With opts.accounts, the fields named leads count accounts. */
typedef struct {
    uint64_t leads_total;     /* leads of the old partitions that hash there with `from` */
    uint64_t leads_moved;     /* leads copied to their new partition (dry run: to copy) */
    uint64_t timers_moved;    /* of which with a timer (their due time copied with them) */
    uint64_t leads_deleted;   /* moved leads deleted from their old partition */
    uint64_t suppress_copied; /* suppression entries written to partitions that lacked them */
    uint64_t epochs_bumped;   /* partitions fenced (0..to-1; 0 in a dry run) */
    uint64_t tombstones;      /* accounts: tombstones deleted from their old partition */
    uint64_t unreadable;      /* leads whose state the rules could not decode: copied as they
                                 are, without a timer */
    uint64_t *moves;          /* moves[p * to + q]: leads of old partition p whose new partition
                                 is q != p (from the planning scan); free with
                                 lp_repartition_result_free */
} lp_repartition_result_t;

/* Moves every lead of partitions 0..from-1 whose partition with `to` partitions differs (the
 * partitioner of its id modulo `to`) to that partition, with its timer (the due time is
 * lp_lead_next_due of its decoded state, which is what workers store), copies every suppression
 * entry of the old partitions to each partition 0..to-1 that lacks it, and only then deletes the
 * moved leads from their old partitions. Before writing anything it fences partitions 0..to-1
 * (the copies and deletes are written at those epochs: a writer that fences one of them again
 * makes this fail) and checks that every old partition's outbox is empty and that every lead of
 * an old partition hashes there with `from` partitions (or, moved there by an earlier run, with
 * `to`): otherwise the partitioner or `from` is wrong. Stored offsets are not touched.
 * Idempotent: running it again after a failure at any point converges to the same state (copies
 * write the same bytes, deletes remove only leads whose copy exists). LP_OK, or LP_ERR with a
 * reason in errstr; *res is filled in either case (free it with lp_repartition_result_free). */
int lp_repartition(lp_store_t *store, const lp_rules_t *rules, const lp_repartition_opts_t *opts,
                   lp_repartition_result_t *res, char *errstr, size_t errstr_size);

void lp_repartition_result_free(lp_repartition_result_t *res);

#endif
