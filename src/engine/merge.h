/* The merge's release rule for records held by the grace hold (internal to the worker; pure, so
 * it is unit-tested without Kafka). See ends_release in worker.c for where the inputs come from. */
#ifndef LP_ENGINE_MERGE_H
#define LP_ENGINE_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/worker.h"

#define LP_END_RING 8 /* end probes remembered */

/* One answered end probe (ListOffsets of every owned input topic-partition): monotonic ms
 * before the request and after the reply. Slot seq % LP_END_RING; seq 0: empty. */
typedef struct {
    uint64_t seq;
    int64_t send_ms, recv_ms;
} lp_end_probe_t;

/* What the probes of the ring said of one partition: end offset per topic (-1: no answer),
 * valid for a slot while seq[slot] equals that probe's seq (a probe may not cover it). */
typedef struct {
    int64_t end[LP_END_RING][LP_IN_TOPICS];
    uint64_t seq[LP_END_RING];
} lp_part_ends_t;

/* The rule rests on the grace hold's assumption (merge.grace_ms): a record sent to one topic
 * before a record of another reaches the brokers no later than grace_ms after it.
 * Probe k, answered at r_k, says every record below its end e_k[t] was appended before r_k. A
 * later probe m, sent at s_m >= r_k + grace_ms, counts every record of any topic sent before
 * those. So a topic u with nothing buffered whose end e_m[u] is at or below our position next[u]
 * holds nothing older than the records of t below e_k[t]: they need no hold for u.
 * Sets rel[t] (records of t at offsets below it may be released; 0: none) from the newest such k
 * and caught[u] from the newest probe m; next[u] < 0 (position unknown) is never caught.
 * Returns false when no probe covers the partition (rel and caught then say nothing). */
bool lp_merge_release(const lp_end_probe_t ring[LP_END_RING], uint64_t last_seq,
                      const lp_part_ends_t *ends, const int64_t next[LP_IN_TOPICS], int grace_ms,
                      int64_t rel[LP_IN_TOPICS], bool caught[LP_IN_TOPICS]);

#endif
