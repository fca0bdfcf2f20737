/* The worker's cross-topic merge, pure: which buffered records of a partition's three input
 * topics make its next batch, and the release rule for records held by the grace hold. No
 * librdkafka call, no clock: the worker takes a snapshot (positions, watermark states, probe
 * answers, the time) and applies the result, so every rule is unit-tested case by case
 * (tests/unit/test_io_merge.c; docs/architecture.md items 6 and 8). */
#ifndef LP_IO_MERGE_H
#define LP_IO_MERGE_H

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
    int64_t end[LP_END_RING][LP_EV__COUNT];
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
                      const lp_part_ends_t *ends, const int64_t next[LP_EV__COUNT], int grace_ms,
                      int64_t rel[LP_EV__COUNT], bool caught[LP_EV__COUNT]);

/* What a topic with nothing buffered may still hold, from its watermarks (worker.c topic_state):
 * caught up (nothing older can come), behind (records to fetch) or unknown (not fetched yet,
 * watermarks not trusted after an outage, an assignment or a resume). */
typedef enum { LP_TOPIC_CAUGHT_UP, LP_TOPIC_BEHIND, LP_TOPIC_UNKNOWN } lp_topic_state_t;

/* A buffered input record, copied out of librdkafka's buffers (the merge reads ts, offset, at). */
typedef struct {
    int64_t offset;
    int64_t ts;     /* record timestamp (ms; 0 if none) */
    int64_t at;     /* arrival (monotonic ms) */
    uint8_t *key;   /* NULL if the record has none */
    uint8_t *value; /* NULL for a tombstone; key and value share one allocation */
    size_t key_len, value_len;
    uint8_t op; /* a tombstone's request (lp_event_op_t from its leadpulse.op header) */
} lp_rec_t;

/* Fail-safe only: how long the merge waits for a topic that is behind or whose position is
 * unknown while Kafka answers (it waits as long as Kafka is unreachable). */
#define LP_MERGE_MAX_WAIT_MS 60000
/* Records of its topic past a held one from which an end probe is worth asking. */
#define LP_MERGE_PROBE_BACKLOG 1000

/* The snapshot of one partition the merge decides on. Topics are indexed by lp_event_kind_t. */
typedef struct {
    const lp_rec_t *q[LP_EV__COUNT]; /* buffered records of each topic, oldest first */
    size_t nq[LP_EV__COUNT];
    lp_topic_state_t state[LP_EV__COUNT]; /* of each topic, for when it has nothing buffered */
    int64_t hi[LP_EV__COUNT];             /* high watermark, -1 unknown (whether to probe) */
    const size_t *limit;                  /* a retried batch: exactly these; no waits or holds */
    size_t max;                           /* records at most */
    int64_t now;                          /* monotonic ms */
    int grace_ms;                         /* merge.grace_ms */
    bool kafka_unsettled;                 /* Kafka was unreachable lately: no fail-safe clock */
    bool probed;                          /* lp_merge_release answered: rel and caught hold */
    int64_t rel[LP_EV__COUNT];
    bool caught[LP_EV__COUNT];
} lp_merge_in_t;

/* What the partition remembers of a wait between merges (in and out). */
typedef struct {
    int64_t waiting_since_ms; /* the current wait began (0: not waiting) */
    bool gave_up_reported;    /* this wait's give-up was reported */
} lp_merge_wait_t;

typedef struct {
    size_t n;                  /* records chosen; seq[i] is the topic of the i-th */
    size_t take[LP_EV__COUNT]; /* of each topic */
    bool waited;               /* it stopped to wait for a topic with nothing buffered */
    int wait_topic;            /* the topic last waited for, and its state */
    lp_topic_state_t wait_state;
    bool gave_up;          /* the wait passed LP_MERGE_MAX_WAIT_MS now: report it (once) */
    int64_t ended_wait_ms; /* a wait that ended with this merge lasted this long (0: none) */
    bool want_probe;       /* a record is held that an end probe may release */
    size_t early;          /* records an end probe released from the grace hold */
} lp_merge_out_t;

/* Merges the snapshot's records by timestamp (ties: profiles, engagement, feedback), as Kafka
 * Streams does, into seq (room for in->max). It stops before a record while a topic with nothing
 * buffered may still hold older ones (behind or unknown; given up after LP_MERGE_MAX_WAIT_MS
 * while Kafka answers), and while a record is younger than grace_ms and another topic is empty
 * (a record sent just before on that topic may be on its way), unless an end probe released it. */
void lp_merge_select(const lp_merge_in_t *in, lp_merge_wait_t *wait, lp_merge_out_t *out, int *seq);

#endif
