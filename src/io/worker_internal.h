/* The worker's insides, shared by its files (not a public contract): the loop (worker.c), the
 * Kafka client configuration and helper threads (worker_kafka.c), input queues and pause/resume
 * (worker_input.c), rebalances (worker_rebalance.c), outbox rounds (worker_outbox.c) and the
 * metrics and published status (worker_metrics.c). Functions shared between them are lp_wk_*. */
#ifndef LP_IO_WORKER_INTERNAL_H
#define LP_IO_WORKER_INTERNAL_H
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "leadpulse/worker.h"

#include "io/merge.h"
#include "io/metrics.h"
#include "io/status.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STATUS_EVERY_MS 250 /* metrics published for /metrics at most this often */
#define STATUS_BUF (128 * 1024)
#define REFENCE_AFTER_MS 30000
/* After a Kafka error, distrust cached watermarks this long: producers reconnect after a broker
 * outage too and deliver their backlog partition by partition, so a topic-partition whose
 * records are still in a producer's hands looks caught up (docs/architecture.md, item 8). */
#define UNSETTLED_MS 15000
#define HELD_POLL_MS 2      /* poll wait while records are held back by the merge */
#define STALL_MS 5000       /* no record of a topic-partition this long: ask the broker... */
#define STALL_IDLE_MS 30000 /* ...or this long while its whole partition is idle */

/* Where the main loop's time goes (leadpulse_loop_seconds_total{phase}): what to look at when
 * a worker falls behind. */
typedef enum {
    PH_POLL = 0, /* waiting for and taking records from librdkafka */
    PH_LOAD,     /* merging, decoding, loading leads the cache lacks (a store round trip) */
    PH_APPLY,    /* scoring and encoding the commit */
    PH_COMMIT,   /* sending a commit and waiting for what the store did not finish meanwhile */
    PH_OUTPUT,   /* producing the outbox, acknowledging deliveries */
    PH_OTHER,    /* timers, rebalances, stall checks, bookkeeping */
    PH__COUNT
} phase_t;

extern const char *const lp_wk_phase_names[PH__COUNT];

typedef struct {
    bool assigned[LP_EV__COUNT];    /* Kafka gave us p of each input topic */
    bool owned;                     /* fenced in the store: we may write */
    bool tpaused[LP_EV__COUNT];     /* one topic paused because we hold too many of its records */
    int64_t rx_at[LP_EV__COUNT];    /* last record or end-of-partition seen (monotonic ms) */
    int64_t probe_at[LP_EV__COUNT]; /* last stall probe (broker watermark query) */
    bool wait_logged;               /* the merge's give-up of this wait was logged */
    int wait_topic;                 /* what the merge last waited for (debug log) */
    lp_topic_state_t wait_state;
    int64_t fenced_at_ms; /* lost the epoch while still assigned */
    int64_t retry_at_ms;  /* next retry of pending records */
    int backoff_ms;
    int64_t expect[LP_EV__COUNT]; /* next offset expected per input topic (-1 unknown) */
    /* Polled, not yet applied (kept across a failed commit): one queue per input topic, merged
     * by record timestamp when applied. */
    size_t npending;
    lp_rec_t *q[LP_EV__COUNT];
    size_t qhead[LP_EV__COUNT], qlen[LP_EV__COUNT], qcap[LP_EV__COUNT];
    int64_t waiting_since_ms; /* merge waits for a topic that may still have older records */
    bool seen[LP_EV__COUNT];  /* a record since assignment or resume */
    /* Per topic: when it was last assigned, resumed or restarted (monotonic ms). Until the
     * fetcher delivers a record of it, its cached watermark may be older than that (librdkafka
     * keeps a partition's watermarks across assignments), and only an end probe sent since
     * says whether it is caught up (lp_wk_topic_state). Per topic, not per partition: a topic
     * paused and resumed again and again (bounded buffering) must not keep its partition's
     * other topics "unknown" (fencing itest, batch.max_events=10). */
    int64_t settle_from_ms[LP_EV__COUNT];
    size_t retry_take[LP_EV__COUNT]; /* a failed batch is retried exactly as it was chosen */
    bool retry_pending;
    bool outbox_dirty;
    lp_part_ends_t ends; /* what the end probes of the ring said of p */
} part_t;

typedef struct {
    bool done;
    rd_kafka_resp_err_t err;
    int32_t partition; /* the store's: a lead partition, or LP_ACCOUNT_PARTITION_BASE + q */
    int fanout;        /* a mark's first delivery: it and the fanout - 1 after it are one entry */
    char id[64];       /* outbox entry id, acknowledged once delivered */
    int64_t event_ts;  /* the hand-off's event time (0: a dead letter) */
} delivery_t;

/* A helper thread of the worker: it waits on cv for work that the loop hands it under mu. */
typedef struct {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    rd_kafka_t *rk;
} helper_t;

/* Asks the broker for one topic-partition's watermarks off the main loop: a ListOffsets request
 * waits behind the outstanding fetch on the broker connection (up to fetch.wait.max.ms). */
typedef struct {
    helper_t h;
    bool asked, answered; /* the one request slot: asked -> answered -> taken */
    char topic[256];
    int32_t p;
    int t;
    int64_t expect; /* our position when asked */
    int64_t lo, hi;
    rd_kafka_resp_err_t err;
} prober_t;

/* Asks the brokers for the end offsets of every owned input topic-partition (one ListOffsets
 * request per broker), off the main loop, for the merge's grace hold (io/merge.h). */
typedef struct {
    helper_t h;
    rd_kafka_topic_partition_list_t *ask;    /* handed to the thread; NULL: nothing asked */
    rd_kafka_topic_partition_list_t *answer; /* handed back; NULL: nothing answered */
    bool busy;                               /* asked and not yet taken back */
    int64_t send_ms, recv_ms;                /* monotonic: before the request, after the reply */
    int64_t rtt_ns;                          /* the reply's wait, in ns */
} ends_prober_t;

struct lp_worker {
    lp_worker_opts_t opts;
    lp_engine_t *engine;
    lp_store_t *store;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_topic_t *out_rkt[LP_OUT__COUNT]; /* held so their metadata is fetched at start */
    part_t *parts;
    int32_t max_part; /* highest partition index seen + 1 */
    lp_engine_msg_t *msgs;
    size_t cap_msgs;
    int *merge_seq;         /* the topic of each record the merge chose (cap_msgs) */
    delivery_t *deliveries; /* the output round in flight (see lp_wk_outbox_round_start) */
    const char **ack_ids;
    size_t cap_deliveries;
    size_t round_n;
    bool round_active;
    int64_t round_deadline_ms;
    int64_t next_timers_ms;
    bool outbox_blocked; /* the last delivery failed: input paused until it works */
    int64_t outbox_retry_ms;
    uint64_t produced, delivery_failures, store_errors, rebalances, lost_writes;
    uint64_t schema_waits; /* batches held back: a new schema id and no registry answered */
    uint64_t reloads_ok, reloads_failed;
    bool last_reload_failed;
    int64_t next_rules_check_ms;
    struct {
        bool known;
        uint64_t dev, ino;
        int64_t size, mtime_ns;
    } rules_file;           /* the rules file as last seen */
    int64_t status_next_ms; /* next metrics publication */
    char *status_buf;
    lp_histogram_t apply_seconds, commit_seconds, handoff_latency, end_probe_seconds;
    lp_histogram_t batch_wait_seconds;
    int64_t start_wall_ms;
    int64_t unsettled_until_ms; /* after a Kafka error: do not trust cached watermarks yet */
    uint64_t merge_timeouts;    /* merges that stopped waiting for a topic (order at risk) */
    uint64_t fetch_restarts;    /* topic-partitions whose fetch had stalled and was restarted */
    uint64_t ack_fenced;        /* outbox deletes refused for a stale epoch */
    uint64_t input_pauses;      /* topic-partitions paused: too many records held */
    int64_t next_stall_check_ms;
    prober_t prober;
    ends_prober_t ends;
    lp_end_probe_t end_probes[LP_END_RING]; /* the last answers, slot seq % LP_END_RING */
    uint64_t end_seq;                       /* probes answered */
    bool ends_wanted;                       /* a record is held that an end probe may release */
    int64_t ends_next_ms;                   /* earliest time for the next end probe */
    uint64_t end_probes_total, end_probe_errors, early_releases;
    int64_t phase_ns[PH__COUNT];
    int64_t phase_at_ns; /* start of the current phase */
    /* Accounts (worker_accounts.c; opts.accounts != NULL) */
    int32_t members_parts;   /* partitions of the members topic */
    int32_t input_parts;     /* partitions of the input topics (the marks' source count) */
    bool *acct_dirty;        /* per account partition: its outbox may hold entries */
    bool *acct_assigned;     /* per account partition: Kafka gave it to us */
    int64_t acct_restate_ms; /* next time every caught-up lead partition restates its mark */
    uint64_t acct_malformed; /* members records that did not decode */
    uint64_t acct_steps_failed;
    lp_log_limit_t acct_log;
};

/* Most records held per topic-partition before it is paused (see backlog_check): four batches,
 * and never fewer than HELD_MIN (with tiny batches, a bound of a few records paused and resumed
 * a topic-partition on every fetch: the batch-1 baseline fell from 1,750 to 96 events/s). */
#define HELD_MIN 10000
#define ACCT_RESTATE_EVERY_MS                                                                      \
    5000 /* every lead partition restates its accounts mark this often                             \
          */

/* worker.c */
int64_t lp_wk_wall_ms(void);
int64_t lp_wk_mono_ms(void);

/* worker_kafka.c */
void *lp_wk_prober_main(void *arg);
int lp_wk_helper_start(helper_t *h, rd_kafka_t *rk, void *(*main_fn)(void *), void *arg);
bool lp_wk_helper_stop(helper_t *h);
void *lp_wk_ends_main(void *arg);
void lp_wk_ends_stop(ends_prober_t *ep);
int lp_wk_topic_index(const lp_worker_t *worker, const char *topic);
rd_kafka_conf_t *lp_wk_base_conf(const lp_worker_opts_t *opts, char *errstr, size_t size);
int lp_wk_apply_props(rd_kafka_conf_t *conf, const lp_worker_opts_t *opts, bool consumer,
                      char *errstr, size_t size);
void lp_wk_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
void lp_wk_consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);
void lp_wk_ends_tick(lp_worker_t *worker, int64_t now);
void lp_wk_positions(lp_worker_t *worker, int32_t p, int64_t next[LP_EV__COUNT]);
bool lp_wk_ends_since(const lp_worker_t *worker, int32_t p, int t, int64_t since_ms, int64_t *end);

/* worker_input.c */
part_t *lp_wk_part_get(lp_worker_t *worker, int32_t p);
size_t lp_wk_batch_max(const lp_worker_t *worker);
size_t lp_wk_held_max(const lp_worker_t *worker);
void lp_wk_tp_pause(lp_worker_t *worker, int32_t p, int t, bool pause);
void lp_wk_tp_seek(lp_worker_t *worker, int32_t p, int t, int64_t offset);
void lp_wk_topic_pause(lp_worker_t *worker, int32_t p, int t, bool pause);
void lp_wk_backlog_check(lp_worker_t *worker, int32_t p);
void lp_wk_part_drop_pending(part_t *part);
lp_topic_state_t lp_wk_topic_state(lp_worker_t *worker, int32_t p, int t);
bool lp_wk_topic_caught_up(lp_worker_t *worker, int32_t p, int t);
void lp_wk_part_consume(part_t *part, const size_t take[LP_EV__COUNT]);
void lp_wk_add_pending(lp_worker_t *worker, rd_kafka_message_t *m);
void lp_wk_stall_check(lp_worker_t *worker, int64_t now);

/* worker_rebalance.c */
void lp_wk_on_assign(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list);
void lp_wk_retake_partition(lp_worker_t *worker, int32_t p, const char *why);
void lp_wk_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *partitions, void *opaque);

/* worker_outbox.c */
int lp_wk_outbox_round_start(lp_worker_t *worker);
bool lp_wk_outbox_round_delivered(const lp_worker_t *worker);
int lp_wk_outbox_round_finish(lp_worker_t *worker);
int lp_wk_drain_outbox(lp_worker_t *worker, int timeout_ms);

/* worker_accounts.c */
int lp_wk_acct_setup(lp_worker_t *worker, char *errstr, size_t size);
bool lp_wk_acct_topic(const lp_worker_t *worker, const char *topic);
void lp_wk_acct_on_assign(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list);
void lp_wk_acct_on_revoke(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list);
void lp_wk_acct_add(lp_worker_t *worker, rd_kafka_message_t *m);
void lp_wk_acct_steps(lp_worker_t *worker);
void lp_wk_acct_tick(lp_worker_t *worker, int32_t p, int64_t now);

/* worker_metrics.c */
void lp_wk_publish_status(lp_worker_t *worker);

#endif
