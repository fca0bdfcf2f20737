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

/* One answered end probe as seen by one partition: when it was sent and answered (monotonic ms)
 * and the end offset it found for each input topic (-1: no answer for that topic). */
typedef struct {
    int64_t send_ms, recv_ms;
    int64_t end[LP_EV__COUNT];
} lp_probe_view_t;

/* The answered probes of the ring that cover the partition, newest first, into out (room for
 * LP_END_RING); returns how many. */
size_t lp_merge_probes(const lp_end_probe_t ring[LP_END_RING], uint64_t last_seq,
                       const lp_part_ends_t *ends, lp_probe_view_t out[LP_END_RING]);

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
    const lp_probe_view_t *probes;        /* end probes covering the partition, newest first */
    size_t nprobes;
    int64_t next[LP_EV__COUNT]; /* our position per topic (next offset to fetch; -1 unknown) */
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
    size_t early;          /* records released before grace_ms had passed since their arrival */
} lp_merge_out_t;

/* Merges the snapshot's records by timestamp (ties: profiles, engagement, feedback), as Kafka
 * Streams does, into seq (room for in->max). It stops before a record while a topic with nothing
 * buffered may still hold older ones (behind or unknown; given up after LP_MERGE_MAX_WAIT_MS
 * while Kafka answers), and holds a record while another topic has nothing buffered until an
 * end probe shows that no older record of that topic can still come (the grace hold).
 *
 * The grace hold rests on merge.grace_ms's assumption: a record sent to one topic before a
 * record r of another reaches the brokers no later than grace_ms after r was appended. r was
 * appended before it arrived (r->at), and before the answer of any probe whose end for its topic
 * is past r's offset. A probe sent grace_ms or more after that counts every record sent before
 * r on any topic: if it found each topic that has nothing buffered at or below our position
 * (end <= next), nothing older than r can come from it, and r is released. The position of a
 * topic is only ever proven by such a probe, never by the consumer's cached watermarks (which
 * are as old as the last fetch of that topic-partition, and a topic-partition the client has
 * stopped fetching keeps a stale one). A record due (its grace passed) and not yet released is a
 * wait for that topic, under the same fail-safe. */
void lp_merge_select(const lp_merge_in_t *in, lp_merge_wait_t *wait, lp_merge_out_t *out, int *seq);

#endif
