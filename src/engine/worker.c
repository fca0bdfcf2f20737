/* The worker loop: poll, group by partition, apply through the engine (one atomic commit per
 * partition batch), produce the outbox with the idempotent producer, fire timers, store offsets.
 *
 * Co-partitioning: partition p of every input topic belongs to engine partition p (its Redis
 * keys carry {p}). The worker owns p only while it holds p of ALL input topics; the default
 * assignor is therefore `range`, the built-in assignor that keeps equal partition numbers of
 * co-partitioned topics on one member (cooperative-sticky does not). */
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

#include "engine/merge.h"
#include "io/metrics.h"
#include "io/status.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STATUS_EVERY_MS 250 /* metrics published for /metrics at most this often */
#define STATUS_BUF (128 * 1024)
#define REFENCE_AFTER_MS 30000
/* After a Kafka error, distrust cached watermarks this long: producers reconnect after a broker
 * outage too, and deliver their backlog partition by partition; a topic-partition whose records
 * are still in a producer's hands looks caught up. 5 s was too short in the chaos test (a
 * partition's feedback applied before its activities after the broker restart). */
#define UNSETTLED_MS 15000
/* After an assignment or a resume, cached watermarks are trusted once the fetcher delivered a
 * record of the topic, or after this (an idle topic delivers none). */
#define RESUME_SETTLE_MS 2000
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

static const char *const phase_names[PH__COUNT] = {"poll",   "load",   "apply",
                                                   "commit", "output", "other"};

typedef struct {
    bool assigned[LP_IN_TOPICS];    /* Kafka gave us p of each input topic */
    bool owned;                     /* fenced in the store: we may write */
    bool tpaused[LP_IN_TOPICS];     /* one topic paused because we hold too many of its records */
    int64_t rx_at[LP_IN_TOPICS];    /* last record or end-of-partition seen (monotonic ms) */
    int64_t probe_at[LP_IN_TOPICS]; /* last stall probe (broker watermark query) */
    bool wait_logged;               /* the merge's give-up of this wait was logged */
    int wait_topic;                 /* what the merge last waited for (debug log) */
    lp_topic_state_t wait_state;
    int64_t fenced_at_ms; /* lost the epoch while still assigned */
    int64_t retry_at_ms;  /* next retry of pending records */
    int backoff_ms;
    int64_t expect[LP_IN_TOPICS]; /* next offset expected per input topic (-1 unknown) */
    /* Polled, not yet applied (kept across a failed commit): one queue per input topic, merged
     * by record timestamp when applied. */
    size_t npending;
    lp_rec_t *q[LP_IN_TOPICS];
    size_t qhead[LP_IN_TOPICS], qlen[LP_IN_TOPICS], qcap[LP_IN_TOPICS];
    int64_t waiting_since_ms; /* merge waits for a topic that may still have older records */
    bool seen[LP_IN_TOPICS];  /* a record since assignment or resume */
    /* Per topic: just resumed, restarted or assigned, its cached watermark may be old. Per
     * topic, not per partition: a topic paused and resumed again and again (bounded buffering)
     * kept its partition's other topics "unknown" 2 s after every resume, and a partition
     * crawled at one batch per 2 s (fencing itest, batch.max_events=10). */
    int64_t unsettled_until_ms[LP_IN_TOPICS];
    size_t retry_take[LP_IN_TOPICS]; /* a failed batch is retried exactly as it was chosen */
    bool retry_pending;
    bool outbox_dirty;
    lp_part_ends_t ends; /* what the end probes of the ring said of p */
} part_t;

typedef struct {
    bool done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    char id[64];      /* outbox entry id, acknowledged once delivered */
    int64_t event_ts; /* the hand-off's event time (0: a dead letter) */
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
 * request per broker), off the main loop, for the merge's grace hold (see ends_release). */
typedef struct {
    helper_t h;
    rd_kafka_topic_partition_list_t *ask;    /* handed to the thread; NULL: nothing asked */
    rd_kafka_topic_partition_list_t *answer; /* handed back; NULL: nothing answered */
    bool busy;                               /* asked and not yet taken back */
    int64_t send_ms, recv_ms;                /* monotonic: before the request, after the reply */
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
    delivery_t *deliveries; /* the output round in flight (see outbox_round_start) */
    const char **ack_ids;
    size_t cap_deliveries;
    size_t round_n;
    bool round_active;
    int64_t round_deadline_ms;
    int64_t next_timers_ms;
    bool outbox_blocked; /* the last delivery failed: input paused until it works */
    int64_t outbox_retry_ms;
    uint64_t produced, delivery_failures, store_errors, rebalances, lost_writes;
    uint64_t reloads_ok, reloads_failed;
    bool last_reload_failed;
    int64_t status_next_ms; /* next metrics publication */
    char *status_buf;
    lp_histogram_t apply_seconds, commit_seconds, handoff_latency;
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
};

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Ends the current phase of the loop: its time goes to ph. Returns that time (ns). */
static int64_t phase_end(lp_worker_t *worker, phase_t ph) {
    int64_t now = mono_ns();
    int64_t spent = worker->phase_at_ns > 0 ? now - worker->phase_at_ns : 0;
    worker->phase_ns[ph] += spent;
    worker->phase_at_ns = now;
    return spent;
}

/* Tests only: start + offset + scale * elapsed, so a day of SLA can pass in seconds. */
int64_t lp_worker_now_ms(const lp_worker_t *worker) {
    int64_t now = wall_ms();
    double scale = worker->opts.clock_scale > 0 ? worker->opts.clock_scale : 1.0;
    return worker->start_wall_ms + worker->opts.clock_offset_ms +
           (int64_t)(scale * (double)(now - worker->start_wall_ms));
}

static void *prober_main(void *arg) {
    prober_t *pr = arg;
    pthread_mutex_lock(&pr->h.mu);
    while (!pr->h.stop) {
        if (!pr->asked || pr->answered) {
            pthread_cond_wait(&pr->h.cv, &pr->h.mu);
            continue;
        }
        char topic[sizeof(pr->topic)];
        int32_t p = pr->p;
        memcpy(topic, pr->topic, sizeof(topic));
        pthread_mutex_unlock(&pr->h.mu);
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(pr->h.rk, topic, p, &lo, &hi, 5000);
        pthread_mutex_lock(&pr->h.mu);
        pr->lo = lo;
        pr->hi = hi;
        pr->err = err;
        pr->answered = true;
    }
    pthread_mutex_unlock(&pr->h.mu);
    return NULL;
}

static int helper_start(helper_t *h, rd_kafka_t *rk, void *(*main_fn)(void *), void *arg) {
    h->rk = rk;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        return LP_ERR;
    }
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        return LP_ERR;
    }
    if (pthread_create(&h->thread, NULL, main_fn, arg) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        return LP_ERR;
    }
    h->started = true;
    return LP_OK;
}

/* Returns false if it was not running. */
static bool helper_stop(helper_t *h) {
    if (!h->started) {
        return false;
    }
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    h->started = false;
    return true;
}

static void *ends_main(void *arg) {
    ends_prober_t *ep = arg;
    pthread_mutex_lock(&ep->h.mu);
    while (!ep->h.stop) {
        if (ep->ask == NULL) {
            pthread_cond_wait(&ep->h.cv, &ep->h.mu);
            continue;
        }
        rd_kafka_topic_partition_list_t *list = ep->ask;
        ep->ask = NULL;
        pthread_mutex_unlock(&ep->h.mu);
        /* The "timestamp" -1 asks for each partition's end (RD_KAFKA_OFFSET_END): the high
         * watermark, or the last stable offset under read_committed, as the consumer fetches. */
        int64_t send_ms = mono_ms();
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(ep->h.rk, list, 2000);
        int64_t recv_ms = mono_ms();
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < list->cnt; i++) {
                list->elems[i].err = err;
            }
        }
        pthread_mutex_lock(&ep->h.mu);
        ep->send_ms = send_ms;
        ep->recv_ms = recv_ms;
        ep->answer = list;
    }
    pthread_mutex_unlock(&ep->h.mu);
    return NULL;
}

static void ends_stop(ends_prober_t *ep) {
    if (!helper_stop(&ep->h)) {
        return;
    }
    if (ep->ask != NULL) {
        rd_kafka_topic_partition_list_destroy(ep->ask);
    }
    if (ep->answer != NULL) {
        rd_kafka_topic_partition_list_destroy(ep->answer);
    }
}

static int topic_index(const lp_worker_t *worker, const char *topic) {
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        if (strcmp(worker->opts.in_topics[t], topic) == 0) {
            return t;
        }
    }
    return -1;
}

static void rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    lp_log_level_t lvl = level <= 3   ? LP_LOG_ERROR
                         : level <= 4 ? LP_LOG_WARN
                         : level <= 6 ? LP_LOG_INFO
                                      : LP_LOG_DEBUG;
    LP_LOG(lvl, "kafka", "%s: %s", fac, buf);
}

static rd_kafka_conf_t *base_conf(const lp_worker_opts_t *opts, char *errstr, size_t size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", opts->brokers, errstr, size) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, rdkafka_log);
    return conf;
}

/* Pass-through properties; those that belong to the other client type are ignored by it. */
static int apply_props(rd_kafka_conf_t *conf, const lp_worker_opts_t *opts, bool consumer,
                       char *errstr, size_t size) {
    static const char *consumer_only[] = {"group.",
                                          "session.timeout.ms",
                                          "max.poll.interval.ms",
                                          "auto.offset.reset",
                                          "partition.assignment.strategy",
                                          "fetch.",
                                          "enable.auto.commit",
                                          "auto.commit.interval.ms",
                                          "isolation.level",
                                          NULL};
    static const char *producer_only[] = {"linger.ms",
                                          "acks",
                                          "compression.",
                                          "batch.",
                                          "queue.buffering.",
                                          "message.timeout.ms",
                                          "enable.idempotence",
                                          "retries",
                                          NULL};
    for (size_t i = 0; i + 1 < opts->nkafka_props * 2; i += 2) {
        const char *name = opts->kafka_props[i];
        const char *value = opts->kafka_props[i + 1];
        const char **skip = consumer ? producer_only : consumer_only;
        bool skipped = false;
        for (size_t k = 0; skip[k] != NULL; k++) {
            if (strncmp(name, skip[k], strlen(skip[k])) == 0) {
                skipped = true;
            }
        }
        if (skipped) {
            continue;
        }
        char err[256];
        if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, size, "kafka.%s: %s", name, err);
            return LP_ERR;
        }
    }
    return LP_OK;
}

static part_t *part_get(lp_worker_t *worker, int32_t p) {
    if (p < 0 || p >= LP_PARTITIONS_MAX) {
        return NULL;
    }
    if (p + 1 > worker->max_part) {
        worker->max_part = p + 1;
    }
    return &worker->parts[p];
}

static size_t batch_max(const lp_worker_t *worker) {
    return worker->opts.batch_max_events ? worker->opts.batch_max_events : 5000;
}

/* Most records held per topic-partition before it is paused (see backlog_check): four batches,
 * and never fewer than HELD_MIN (with tiny batches, a bound of a few records paused and resumed
 * a topic-partition on every fetch: the batch-1 baseline fell from 1,750 to 96 events/s). */
#define HELD_MIN 10000
static size_t held_max(const lp_worker_t *worker) {
    size_t four = 4 * batch_max(worker);
    return four > HELD_MIN ? four : HELD_MIN;
}

/* librdkafka's pause or resume of topic t of p, nothing else. */
static void tp_pause(lp_worker_t *worker, int32_t p, int t, bool pause) {
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, worker->opts.in_topics[t], p);
    if (pause) {
        rd_kafka_pause_partitions(worker->consumer, one);
    } else {
        rd_kafka_resume_partitions(worker->consumer, one);
    }
    rd_kafka_topic_partition_list_destroy(one);
}

/* Moves the fetch of topic t of p to offset (< 0: the beginning); async
 * (docs/librdkafka-pitfalls.md). */
static void tp_seek(lp_worker_t *worker, int32_t p, int t, int64_t offset) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(worker->consumer, worker->opts.in_topics[t], NULL);
    if (rkt == NULL) {
        return;
    }
    rd_kafka_resp_err_t err =
        rd_kafka_seek(rkt, p, offset >= 0 ? offset : RD_KAFKA_OFFSET_BEGINNING, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LP_LOG(LP_LOG_ERROR, "worker", "seek %s [%" PRId32 "]: %s", worker->opts.in_topics[t], p,
               rd_kafka_err2str(err));
    }
    rd_kafka_topic_destroy(rkt);
}

/* The only pause leadpulse uses (librdkafka 2.0.2's pause/resume races with rebalances and
 * seeks: fewer of them, fewer chances; see also stall_check). */
static void topic_pause(lp_worker_t *worker, int32_t p, int t, bool pause) {
    part_t *part = &worker->parts[p];
    tp_pause(worker, p, t, pause);
    part->tpaused[t] = pause;
    worker->input_pauses += pause;
    if (!pause) {
        part->unsettled_until_ms[t] = mono_ms() + RESUME_SETTLE_MS;
        part->seen[t] = false;
        part->rx_at[t] = mono_ms();
    }
}

/* Bounded memory: a topic-partition whose held records exceed held_max (four batches, at least
 * 10,000) is paused after the pass until it is down to half; librdkafka then stops
 * fetching it. Half lasts longer than the fetch after the resume takes (at ~30,000 records/s per
 * partition, 300 ms: one fetch.wait.max.ms and a fetch), and the gap makes pauses rare. Only
 * that topic: the merge may be waiting for records of the others. */
/* Not at once in add_pending, mid-gather: in librdkafka 2.0.2 the records of the
 * topic-partition still queued then were not fetched again after the resume (the chaos test
 * lost events: 16-46 leads differed from the replay in 3 of 4 runs; 0 in 2 runs since). */
static void backlog_check(lp_worker_t *worker, int32_t p) {
    part_t *part = &worker->parts[p];
    size_t bound = held_max(worker);
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        size_t held = part->qlen[t] - part->qhead[t];
        if (!part->tpaused[t] && held > bound) {
            topic_pause(worker, p, t, true);
        } else if (part->tpaused[t] && held <= bound / 2) {
            topic_pause(worker, p, t, false);
        }
    }
}

static void rec_free(lp_rec_t *r) {
    free(r->key != NULL ? r->key : r->value);
    r->key = r->value = NULL;
}

static void part_drop_pending(part_t *part) {
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        for (size_t i = part->qhead[t]; i < part->qlen[t]; i++) {
            rec_free(&part->q[t][i]);
        }
        part->qhead[t] = part->qlen[t] = 0;
    }
    part->npending = 0;
    part->waiting_since_ms = 0;
    part->wait_logged = false;
    part->retry_pending = false;
}

/* Fences p in the store and reads its offsets, retrying while the store is down (the rebalance
 * must not complete with a guessed position). */
static void publish_status(lp_worker_t *worker);

static int take_partition(lp_worker_t *worker, int32_t p, int64_t offsets[LP_IN_TOPICS]) {
    int backoff = BACKOFF_MIN_MS;
    lp_log_context(p, NULL, -1);
    while (!*worker->opts.stop) {
        if (lp_engine_assign(worker->engine, p, LP_IN_TOPICS, worker->opts.in_topics, offsets) ==
            LP_OK) {
            lp_status_set(worker->opts.status, LP_READY_STORE, true);
            lp_log_context(-1, NULL, -1);
            return LP_OK;
        }
        worker->store_errors++;
        lp_status_set(worker->opts.status, LP_READY_STORE, false);
        LP_LOG(LP_LOG_WARN, "worker", "taking partition %" PRId32 ": %s; retrying in %d ms", p,
               lp_engine_errstr(worker->engine), backoff);
        /* The loop is alive while it waits for the store: /healthz must not restart it. */
        for (int slept = 0; slept < backoff && !*worker->opts.stop; slept += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            lp_status_beat(worker->opts.status);
            nanosleep(&ts, NULL);
        }
        publish_status(worker);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    lp_log_context(-1, NULL, -1);
    return LP_ERR;
}

static void on_assign(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    /* Mark what Kafka gave us, then take ownership of every partition held on all topics. */
    for (int i = 0; i < list->cnt; i++) {
        int t = topic_index(worker, list->elems[i].topic);
        part_t *part = part_get(worker, list->elems[i].partition);
        if (t >= 0 && part != NULL) {
            part->assigned[t] = true;
        }
    }
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        bool all = true;
        for (int t = 0; t < LP_IN_TOPICS; t++) {
            all &= part->assigned[t];
        }
        bool any = part->assigned[0] || part->assigned[1] || part->assigned[2];
        if (any && !all) {
            LP_LOG(LP_LOG_ERROR, "worker",
                   "partition %" PRId32 " is assigned for only some input topics; the input "
                   "topics must be co-partitioned and use the range assignor",
                   p);
        }
        if (!all || part->owned) {
            continue;
        }
        int64_t offsets[LP_IN_TOPICS];
        if (take_partition(worker, p, offsets) != LP_OK) {
            continue;
        }
        part->owned = true;
        part->outbox_dirty = true; /* deliver what a previous owner left behind */
        memset(part->seen, 0, sizeof(part->seen));
        for (int t = 0; t < LP_IN_TOPICS; t++) {
            part->unsettled_until_ms[t] = mono_ms() + RESUME_SETTLE_MS;
        }
        part->retry_pending = false;
        part->fenced_at_ms = 0;
        for (int t = 0; t < LP_IN_TOPICS; t++) {
            part->rx_at[t] = mono_ms();
            part->probe_at[t] = 0;
            part->expect[t] = offsets[t];
            for (int i = 0; i < list->cnt; i++) {
                if (list->elems[i].partition == p &&
                    strcmp(list->elems[i].topic, worker->opts.in_topics[t]) == 0) {
                    /* Redis is the source of truth for progress: no stored offset means no
                     * state, which is built from the beginning of the topic. */
                    list->elems[i].offset =
                        offsets[t] >= 0 ? offsets[t] : RD_KAFKA_OFFSET_BEGINNING;
                }
            }
        }
        LP_LOG(LP_LOG_INFO, "worker",
               "partition %" PRId32 " assigned (offsets %" PRId64 "/%" PRId64 "/%" PRId64 ")", p,
               offsets[0], offsets[1], offsets[2]);
    }
}

/* Takes p again from what the store holds: fence, read its offsets, forget the records in hand
 * and move the consumer back there (an async rd_kafka_seek: 2.0.2's seek_partitions has a broken
 * timeout, docs/librdkafka-pitfalls.md). Used when the store lost writes (LP_STORE_MOVED: e.g.
 * Redis crashed with AOF everysec and came back behind what it acknowledged) and when a partition
 * lost to a stale epoch is still assigned to us (records polled meanwhile were dropped: the
 * consumer is past them). */
static void retake_partition(lp_worker_t *worker, int32_t p, const char *why) {
    part_t *part = &worker->parts[p];
    int64_t offsets[LP_IN_TOPICS];
    part_drop_pending(part);
    part->owned = false;
    if (take_partition(worker, p, offsets) != LP_OK) {
        return;
    }
    part->owned = true;
    part->outbox_dirty = true;
    part->backoff_ms = 0;
    memset(part->seen, 0, sizeof(part->seen));
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        part->unsettled_until_ms[t] = mono_ms() + RESUME_SETTLE_MS;
    }
    part->retry_pending = false;
    part->fenced_at_ms = 0;
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        if (part->tpaused[t]) {
            /* Resume before the seek, so the seek is the last word on where to fetch. */
            topic_pause(worker, p, t, false);
        }
        part->expect[t] = offsets[t];
        part->rx_at[t] = mono_ms();
        part->probe_at[t] = 0;
        tp_seek(worker, p, t, offsets[t]);
    }
    LP_LOG(LP_LOG_WARN, "worker",
           "partition %" PRId32 ": %s; resumed from its stored offsets %" PRId64 "/%" PRId64
           "/%" PRId64,
           p, why, offsets[0], offsets[1], offsets[2]);
}

static void on_revoke(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    for (int i = 0; i < list->cnt; i++) {
        int t = topic_index(worker, list->elems[i].topic);
        int32_t p = list->elems[i].partition;
        part_t *part = part_get(worker, p);
        if (t < 0 || part == NULL) {
            continue;
        }
        part->assigned[t] = false;
        if (part->owned) {
            /* Work not committed is dropped: the next owner resumes from the stored offsets. */
            part_drop_pending(part);
            lp_engine_revoke(worker->engine, p);
            part->owned = false;
            LP_LOG(LP_LOG_INFO, "worker", "partition %" PRId32 " revoked", p);
        }
        if (part->tpaused[t]) {
            /* librdkafka keeps an application pause across unassign/assign: resume it now, or
             * the next assignment of it would never fetch. Only what we paused: in 2.0.2 a
             * resume of a partition that is not paused restarts its fetch from a stale
             * position (librdkafka#4686). */
            tp_pause(worker, p, t, false);
        }
        part->tpaused[t] = false;
        part->expect[t] = -1;
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque) {
    lp_worker_t *worker = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    worker->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        lp_status_set(worker->opts.status, LP_READY_ASSIGNED, true);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(worker, partitions);
        if (cooperative) {
            rd_kafka_error_t *error = rd_kafka_incremental_assign(rk, partitions);
            if (error != NULL) {
                LP_LOG(LP_LOG_ERROR, "worker", "incremental assign: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }
        } else {
            rd_kafka_assign(rk, partitions);
        }
    } else {
        on_revoke(worker, partitions);
        if (cooperative) {
            rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, partitions);
            if (error != NULL) {
                rd_kafka_error_destroy(error);
            }
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    (void)opaque;
    delivery_t *d = msg->_private;
    if (d != NULL) {
        d->done = true;
        d->err = msg->err;
    }
}

/* Broker trouble (all brokers down, transport errors): cached watermarks go stale. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    lp_worker_t *worker = opaque;
    (void)rk;
    worker->unsettled_until_ms = mono_ms() + UNSETTLED_MS;
    LP_LOG(LP_LOG_WARN, "worker", "kafka: %s (%s)", reason, rd_kafka_err2name(err));
}

lp_worker_t *lp_worker_new(const lp_worker_opts_t *opts, lp_engine_t *engine, lp_store_t *store,
                           char *errstr, size_t errstr_size) {
    lp_worker_t *worker = calloc(1, sizeof(*worker));
    rd_kafka_conf_t *conf = NULL;
    if (worker == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    worker->opts = *opts;
    worker->start_wall_ms = wall_ms();
    worker->engine = engine;
    worker->store = store;
    worker->parts = calloc(LP_PARTITIONS_MAX, sizeof(part_t));
    if (worker->parts == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    for (int32_t p = 0; p < LP_PARTITIONS_MAX; p++) {
        for (int t = 0; t < LP_IN_TOPICS; t++) {
            worker->parts[p].expect[t] = -1;
        }
    }

    /* Consumer: offsets are stored by us after each commit to Redis, and auto-committed to Kafka
     * only for lag monitoring. */
    conf = base_conf(opts, errstr, errstr_size);
    if (conf == NULL || rd_kafka_conf_set(conf, "group.id", opts->group_id, errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size) ||
        /* One fetch at a time per broker: a long poll of caught-up partitions (500 ms by
         * default) delayed the first fetch of a resumed one as long. */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", errstr, errstr_size) ||
        apply_props(conf, opts, true, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rd_kafka_conf_set_opaque(conf, worker);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    worker->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (worker->consumer == NULL) {
        goto err;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(worker->consumer);
    if (helper_start(&worker->prober.h, worker->consumer, prober_main, &worker->prober) != LP_OK) {
        snprintf(errstr, errstr_size, "cannot start the watermark prober thread");
        goto err;
    }
    if (helper_start(&worker->ends.h, worker->consumer, ends_main, &worker->ends) != LP_OK) {
        snprintf(errstr, errstr_size, "cannot start the end prober thread");
        goto err;
    }

    /* Producer: idempotent (no duplicates or reordering from its own retries). */
    conf = base_conf(opts, errstr, errstr_size);
    if (conf == NULL ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "linger.ms", "2", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, errstr_size) ||
        apply_props(conf, opts, false, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    worker->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (worker->producer == NULL) {
        goto err;
    }
    conf = NULL;
    /* Known topics get their metadata (and the idempotent producer its id) now, not on the
     * first hand-off, which would otherwise wait about a second. */
    for (int k = 0; k < LP_OUT__COUNT; k++) {
        worker->out_rkt[k] = rd_kafka_topic_new(worker->producer, opts->out_topics[k], NULL);
    }
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(worker->producer, 0, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
    }

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(LP_IN_TOPICS);
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        rd_kafka_topic_partition_list_add(subs, opts->in_topics[t], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t err = rd_kafka_subscribe(worker->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        goto err;
    }
    return worker;
err:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    lp_worker_destroy(worker);
    return NULL;
}

void lp_worker_set_tick(lp_worker_t *worker, void (*tick)(void *), void *ctx) {
    worker->opts.tick = tick;
    worker->opts.tick_ctx = ctx;
}

void lp_worker_destroy(lp_worker_t *worker) {
    if (worker == NULL) {
        return;
    }
    if (worker->parts != NULL) {
        for (int32_t p = 0; p < LP_PARTITIONS_MAX; p++) {
            part_drop_pending(&worker->parts[p]);
            for (int t = 0; t < LP_IN_TOPICS; t++) {
                free(worker->parts[p].q[t]);
            }
        }
    }
    helper_stop(&worker->prober.h);
    ends_stop(&worker->ends);
    if (worker->consumer != NULL) {
        rd_kafka_destroy(worker->consumer);
    }
    for (int k = 0; k < LP_OUT__COUNT; k++) {
        if (worker->out_rkt[k] != NULL) {
            rd_kafka_topic_destroy(worker->out_rkt[k]);
        }
    }
    if (worker->producer != NULL) {
        rd_kafka_destroy(worker->producer);
    }
    free(worker->parts);
    free(worker->msgs);
    free(worker->status_buf);
    free(worker->merge_seq);
    free(worker->deliveries);
    free(worker->ack_ids);
    free(worker);
}

/* ---- outbox ---- */

typedef struct {
    rd_kafka_headers_t *hdrs;
    int64_t event_ts; /* the hand-off's event time, from its event_ts header (0: none) */
} hdr_ctx_t;

static void add_header(void *ctx, const char *name, size_t name_len, const char *value,
                       size_t value_len) {
    hdr_ctx_t *h = ctx;
    rd_kafka_header_add(h->hdrs, name, (ssize_t)name_len, value, (ssize_t)value_len);
    if (name_len == 8 && memcmp(name, "event_ts", 8) == 0) {
        char tmp[24];
        size_t n = value_len < sizeof(tmp) - 1 ? value_len : sizeof(tmp) - 1;
        memcpy(tmp, value, n);
        tmp[n] = '\0';
        h->event_ts = strtoll(tmp, NULL, 10);
    }
}

/* Produces the partition's outbox and deletes what the broker confirmed. LP_OK when the outbox
 * is empty afterwards. */
/* Reads one partition's outbox and produces it; deliveries go to worker->deliveries from *n on
 * (capacity reserved by the caller). */
static int outbox_send(lp_worker_t *worker, int32_t p, size_t *n) {
    part_t *part = &worker->parts[p];
    lp_store_outbox_list_t list = {0};
    if (worker->store->ops->outbox_read(worker->store, p, worker->opts.outbox_batch, &list) !=
        LP_OK) {
        worker->store_errors++;
        lp_status_set(worker->opts.status, LP_READY_STORE, false);
        LP_LOG(LP_LOG_WARN, "worker", "outbox of partition %" PRId32 ": %s", p,
               worker->store->errstr);
        return LP_ERR;
    }
    /* Fewer than asked: this read saw all of it (a later commit sets the flag again). */
    part->outbox_dirty = list.n >= worker->opts.outbox_batch;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        delivery_t *d = &worker->deliveries[(*n)++];
        d->done = false;
        d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        d->partition = p;
        snprintf(d->id, sizeof(d->id), "%s", e->id);
        if (e->kind < 0 || e->kind >= LP_OUT__COUNT) {
            d->done = true; /* unknown kind: nothing to send; acknowledged (dropped) */
            continue;
        }
        hdr_ctx_t h = {rd_kafka_headers_new(6), 0};
        if (e->event_id != NULL && e->event_id[0] != '\0') {
            rd_kafka_header_add(h.hdrs, "event_id", -1, e->event_id, -1);
        }
        lp_engine_meta_foreach(e->meta, e->meta_len, add_header, &h);
        d->event_ts = h.event_ts;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            worker->producer, RD_KAFKA_V_TOPIC(worker->opts.out_topics[e->kind]),
            RD_KAFKA_V_KEY(e->key, e->key_len), RD_KAFKA_V_VALUE((void *)e->value, e->value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h.hdrs),
            RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(h.hdrs);
            d->done = true;
            d->err = err;
        }
    }
    return LP_OK;
}

/* Output delivery in rounds: a round reads the outbox of every owned partition with new
 * entries and produces them; it ends when every record of it is delivered (or failed), and
 * then deletes what was delivered, per partition. The main loop keeps one round in flight
 * without waiting for it (the broker's acknowledgement costs a round trip; the loop serves
 * input meanwhile); shutdown drains synchronously. Entries whose delivery failed stay in the
 * outbox and are sent again. */
static int outbox_round_start(lp_worker_t *worker) {
    size_t want = 0;
    for (int32_t p = 0; p < worker->max_part; p++) {
        if (worker->parts[p].owned && worker->parts[p].outbox_dirty) {
            want += worker->opts.outbox_batch;
        }
    }
    worker->round_n = 0;
    if (want == 0) {
        return LP_OK;
    }
    if (want > worker->cap_deliveries) {
        free(worker->deliveries);
        free(worker->ack_ids);
        worker->deliveries = calloc(want, sizeof(delivery_t));
        worker->ack_ids = calloc(want, sizeof(*worker->ack_ids));
        worker->cap_deliveries = worker->deliveries && worker->ack_ids ? want : 0;
        if (worker->cap_deliveries == 0) {
            return LP_ERR;
        }
    }
    int rc = LP_OK;
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        if (part->owned && part->outbox_dirty &&
            outbox_send(worker, p, &worker->round_n) != LP_OK) {
            rc = LP_ERR;
        }
    }
    worker->round_active = worker->round_n > 0;
    worker->round_deadline_ms = mono_ms() + 5000;
    return rc;
}

static bool outbox_round_delivered(const lp_worker_t *worker) {
    for (size_t i = 0; i < worker->round_n; i++) {
        if (!worker->deliveries[i].done) {
            return false;
        }
    }
    return true;
}

static int outbox_round_finish(lp_worker_t *worker) {
    int rc = LP_OK;
    size_t n = worker->round_n;
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        delivery_t *d = &worker->deliveries[i];
        if (!d->done || d->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            failed = true;
            if (d->done) {
                LP_LOG(LP_LOG_WARN, "worker", "delivery from partition %" PRId32 " failed: %s",
                       d->partition, rd_kafka_err2str(d->err));
            }
        }
    }
    if (failed) {
        /* Anything still in flight must not point at our array: wait it out. */
        rd_kafka_purge(worker->producer, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_flush(worker->producer, 12000);
        worker->delivery_failures++;
        rc = LP_ERR;
    }
    /* Acknowledge per partition, in the order read; a partition with a failure keeps its flag
     * so its outbox is read again. A partition lost meanwhile is left to its new owner. */
    for (size_t i = 0; i < n;) {
        int32_t p = worker->deliveries[i].partition;
        const char **ids = worker->ack_ids;
        size_t nack = 0, j = i;
        bool part_failed = false;
        for (; j < n && worker->deliveries[j].partition == p; j++) {
            delivery_t *d = &worker->deliveries[j];
            if (d->done && d->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ids[nack++] = d->id;
                if (d->event_ts > 0) {
                    lp_histogram_observe(&worker->handoff_latency,
                                         (double)(wall_ms() - d->event_ts) * 1e-3);
                }
            } else {
                part_failed = true;
            }
        }
        i = j;
        if (!worker->parts[p].owned) {
            continue;
        }
        worker->produced += nack;
        int ack = nack > 0 ? worker->store->ops->outbox_ack(
                                 worker->store, p, lp_engine_epoch(worker->engine, p), nack, ids)
                           : LP_OK;
        if (ack == LP_STORE_FENCED) {
            /* Another worker owns p now (we were a zombie): its records are theirs. */
            part_t *part = &worker->parts[p];
            LP_LOG(LP_LOG_WARN, "worker",
                   "partition %" PRId32 ": epoch is stale (another worker owns it; outbox "
                   "delete refused); dropping its uncommitted records",
                   p);
            worker->ack_fenced++;
            part_drop_pending(part);
            part->owned = false;
            part->fenced_at_ms = mono_ms();
            continue;
        }
        if (ack != LP_OK) {
            /* Delivered but not deleted: sent again later (same event ids). */
            worker->store_errors++;
            lp_status_set(worker->opts.status, LP_READY_STORE, false);
            part_failed = true;
            rc = LP_ERR;
        }
        if (part_failed) {
            worker->parts[p].outbox_dirty = true;
        }
    }
    worker->round_active = false;
    worker->round_n = 0;
    return rc;
}

/* Synchronous delivery of every outbox (shutdown): rounds until nothing is left or time is up. */
static int drain_outbox(lp_worker_t *worker, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (!worker->round_active && outbox_round_start(worker) != LP_OK) {
            return LP_ERR;
        }
        if (!worker->round_active) {
            return LP_OK;
        }
        int left = (int)(deadline - mono_ms());
        rd_kafka_flush(worker->producer, left > 0 ? left : 0);
        if (outbox_round_finish(worker) != LP_OK) {
            return LP_ERR;
        }
        if (mono_ms() >= deadline) {
            return LP_ERR;
        }
    }
}

/* ---- the loop ---- */

static void store_kafka_offsets(lp_worker_t *worker, const lp_engine_msg_t *msgs, size_t n) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(LP_IN_TOPICS);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, msgs[i].topic, msgs[i].partition);
        if (tp == NULL) {
            tp = rd_kafka_topic_partition_list_add(list, msgs[i].topic, msgs[i].partition);
        }
        tp->offset = msgs[i].offset + 1;
    }
    /* Lag monitoring only: a failure here (e.g. mid-rebalance) loses nothing. */
    rd_kafka_offsets_store(worker->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

/* Whether topic t of partition p has more records to fetch, from the high watermark the consumer
 * last saw. A partition without a stored offset starts at the beginning (see on_assign), so its
 * position before the first record is the low watermark. */
static lp_topic_state_t topic_state(lp_worker_t *worker, int32_t p, int t) {
    int64_t lo = -1, hi = -1;
    part_t *part = &worker->parts[p];
    if (rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0 || lo < 0) {
        return LP_TOPIC_UNKNOWN; /* nothing fetched yet: the first fetch response tells */
    }
    int64_t next = part->expect[t] >= 0 ? part->expect[t] : lo;
    if (next > hi) {
        /* Below our own position: left from an earlier assignment, not fetched since. */
        return LP_TOPIC_UNKNOWN;
    }
    /* Cached watermarks are only as fresh as the last fetch: while the brokers were recently
     * unreachable, or after an assignment or a resume until the fetcher delivered a record
     * (or a settling time passed), "nothing more to fetch" may just mean "nothing fetched
     * yet". An end-of-partition event is no such proof: one from before the assignment can
     * still be in the queue (taken as one, it made a rebalanced worker apply feedback before
     * activities). */
    int64_t now = mono_ms();
    if (now < worker->unsettled_until_ms || (!part->seen[t] && now < part->unsettled_until_ms[t]) ||
        part->tpaused[t]) {
        return next < hi ? LP_TOPIC_BEHIND : LP_TOPIC_UNKNOWN;
    }
    return next >= hi ? LP_TOPIC_CAUGHT_UP : LP_TOPIC_BEHIND;
}

static bool topic_caught_up(lp_worker_t *worker, int32_t p, int t) {
    return topic_state(worker, p, t) == LP_TOPIC_CAUGHT_UP;
}

/* Takes the end prober's answer into the ring and, while the merge holds records that an
 * answer may release, asks again (every merge.grace_ms / 4, 2 to 50 ms). */
static void ends_tick(lp_worker_t *worker, int64_t now) {
    ends_prober_t *ep = &worker->ends;
    if (!ep->h.started) {
        return;
    }
    pthread_mutex_lock(&ep->h.mu);
    rd_kafka_topic_partition_list_t *answer = ep->answer;
    int64_t send_ms = ep->send_ms, recv_ms = ep->recv_ms;
    if (answer != NULL) {
        ep->answer = NULL;
        ep->busy = false;
    }
    bool busy = ep->busy;
    pthread_mutex_unlock(&ep->h.mu);
    if (answer != NULL) {
        uint64_t seq = ++worker->end_seq;
        size_t slot = seq % LP_END_RING;
        worker->end_probes[slot] =
            (lp_end_probe_t){.seq = seq, .send_ms = send_ms, .recv_ms = recv_ms};
        worker->end_probes_total++;
        bool failed = false;
        for (int i = 0; i < answer->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &answer->elems[i];
            int t = topic_index(worker, e->topic);
            if (t < 0 || e->partition < 0 || e->partition >= worker->max_part) {
                continue;
            }
            lp_part_ends_t *ends = &worker->parts[e->partition].ends;
            if (ends->seq[slot] != seq) {
                ends->seq[slot] = seq;
                for (int u = 0; u < LP_IN_TOPICS; u++) {
                    ends->end[slot][u] = -1;
                }
            }
            bool ok = e->err == RD_KAFKA_RESP_ERR_NO_ERROR && e->offset >= 0;
            ends->end[slot][t] = ok ? e->offset : -1;
            failed = failed || !ok;
        }
        worker->end_probe_errors += failed;
        rd_kafka_topic_partition_list_destroy(answer);
    }
    if (!worker->ends_wanted || busy || now < worker->ends_next_ms) {
        return;
    }
    worker->ends_wanted = false;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(LP_IN_TOPICS * 8);
    for (int32_t p = 0; p < worker->max_part; p++) {
        for (int t = 0; t < LP_IN_TOPICS && worker->parts[p].owned; t++) {
            rd_kafka_topic_partition_list_add(list, worker->opts.in_topics[t], p)->offset =
                RD_KAFKA_OFFSET_END;
        }
    }
    if (list->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    pthread_mutex_lock(&ep->h.mu);
    ep->ask = list;
    ep->busy = true;
    pthread_cond_signal(&ep->h.cv);
    pthread_mutex_unlock(&ep->h.mu);
    int every = worker->opts.merge_grace_ms / 4;
    worker->ends_next_ms = now + (every < 2 ? 2 : every > 50 ? 50 : every);
}

/* The grace hold below, made exact for a backlog (lp_merge_release, engine/merge.h): records
 * appended grace before a later end probe found the partition's empty topics at our position
 * need no hold. A record that arrived within grace of its append (a live stream) gains nothing;
 * this releases backlogs, which the hold paced at one fetch per grace. */
static bool ends_release(lp_worker_t *worker, int32_t p, int64_t rel[LP_IN_TOPICS],
                         bool caught[LP_IN_TOPICS]) {
    part_t *part = &worker->parts[p];
    int64_t next[LP_IN_TOPICS];
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        next[t] = part->expect[t];
        if (next[t] < 0) {
            /* Nothing fetched since the assignment, which started at the beginning. */
            int64_t lo = -1, hi = -1;
            if (rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p, &lo,
                                               &hi) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                next[t] = lo;
            }
        }
    }
    return lp_merge_release(worker->end_probes, worker->end_seq, &part->ends, next,
                            worker->opts.merge_grace_ms, rel, caught);
}

/* Chooses the next batch of partition p (engine/merge.h: lp_merge_select, pure): a snapshot of
 * the partition in, the records to take out; the logs, metrics and probe requests here. */
static size_t merge_select(lp_worker_t *worker, int32_t p, size_t max, size_t take[LP_IN_TOPICS],
                           const size_t *limit, int64_t now, lp_engine_msg_t *out) {
    part_t *part = &worker->parts[p];
    lp_merge_in_t in = {.limit = limit,
                        .max = max,
                        .now = now,
                        .grace_ms = worker->opts.merge_grace_ms,
                        .kafka_unsettled = now < worker->unsettled_until_ms};
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        int64_t lo = -1, hi = -1;
        in.q[t] = part->q[t] + part->qhead[t];
        in.nq[t] = part->qlen[t] - part->qhead[t];
        /* For when the merge has taken every buffered record of t: what may still come. */
        in.state[t] = limit == NULL ? topic_state(worker, p, t) : LP_TOPIC_CAUGHT_UP;
        in.hi[t] = rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p,
                                                  &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR
                       ? hi
                       : -1;
    }
    in.probed = in.grace_ms > 0 && limit == NULL && ends_release(worker, p, in.rel, in.caught);
    lp_merge_wait_t wait = {part->waiting_since_ms, part->wait_logged};
    lp_merge_out_t res;
    int *seq = worker->merge_seq;
    lp_merge_select(&in, &wait, &res, seq);
    part->waiting_since_ms = wait.waiting_since_ms;
    part->wait_logged = wait.gave_up_reported;
    if (res.waited) {
        part->wait_topic = res.wait_topic;
        part->wait_state = res.wait_state;
    }
    if (res.gave_up) {
        int t = res.wait_topic;
        worker->merge_timeouts++;
        LP_LOG(LP_LOG_ERROR, "worker",
               "partition %" PRId32 ": gave up waiting %" PRId64
               " ms for %s (%s, next offset %" PRId64
               "): records may be applied out of timestamp order",
               p, now - part->waiting_since_ms, worker->opts.in_topics[t],
               res.wait_state == LP_TOPIC_BEHIND ? "behind" : "position unknown", part->expect[t]);
    }
    if (res.ended_wait_ms > 100) {
        LP_LOG(LP_LOG_DEBUG, "worker",
               "partition %" PRId32 ": merge waited %" PRId64 " ms, last for %s (%s)", p,
               res.ended_wait_ms, worker->opts.in_topics[part->wait_topic],
               part->wait_state == LP_TOPIC_BEHIND ? "behind" : "position unknown");
    }
    worker->ends_wanted = worker->ends_wanted || res.want_probe;
    worker->early_releases += res.early;
    size_t at[LP_IN_TOPICS] = {0};
    for (size_t i = 0; i < res.n; i++) {
        int t = seq[i];
        const lp_rec_t *r = &in.q[t][at[t]++];
        out[i] = (lp_engine_msg_t){
            .topic = worker->opts.in_topics[t],
            .kind = (lp_event_kind_t)t,
            .format = worker->opts.in_format[t],
            .partition = p,
            .offset = r->offset,
            .key = r->key,
            .key_len = r->key_len,
            .value = r->value,
            .value_len = r->value_len,
        };
    }
    memcpy(take, res.take, sizeof(size_t) * LP_IN_TOPICS);
    return res.n;
}

static void part_consume(part_t *part, const size_t take[LP_IN_TOPICS]) {
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        for (size_t i = 0; i < take[t]; i++) {
            rec_free(&part->q[t][part->qhead[t] + i]);
        }
        part->qhead[t] += take[t];
        part->npending -= take[t];
        if (part->qhead[t] == part->qlen[t]) {
            part->qhead[t] = part->qlen[t] = 0;
        }
    }
}

/* A partition's batch from lp_engine_begin to lp_engine_finish. */
typedef struct {
    int32_t p;
    lp_engine_batch_t *b;
    lp_engine_msg_t *msgs;
    size_t n;
    size_t take[LP_IN_TOPICS];
    int64_t sent_ns; /* when its commit went to the store */
} flight_t;

/* Room for two batches of records: one in flight, one being built. */
static int ensure_msgs(lp_worker_t *worker) {
    size_t need = 2 * batch_max(worker);
    if (need > worker->cap_msgs) {
        free(worker->msgs);
        free(worker->merge_seq);
        worker->msgs = calloc(need, sizeof(lp_engine_msg_t));
        worker->merge_seq = calloc(need, sizeof(int));
        worker->cap_msgs = worker->msgs && worker->merge_seq ? need : 0;
        if (worker->cap_msgs == 0) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

static int batch_done(lp_worker_t *worker, flight_t *f, int rc, int64_t now);

/* Chooses partition p's next batch (into msgs) and begins it: decoded, leads loaded. Returns
 * true when there is a batch to apply; a failure to begin is dealt with here. */
static bool batch_begin(lp_worker_t *worker, int32_t p, int64_t now, lp_engine_msg_t *msgs,
                        flight_t *f) {
    part_t *part = &worker->parts[p];
    if (part->npending == 0 || !part->owned) {
        return false;
    }
    /* A batch that failed is retried as it was chosen: while the partition was paused its
     * watermarks went stale, so a new merge could not be trusted. */
    f->p = p;
    f->b = NULL;
    f->msgs = msgs;
    f->n = merge_select(worker, p, batch_max(worker), f->take,
                        part->retry_pending ? part->retry_take : NULL, now, msgs);
    if (f->n == 0) {
        return false;
    }
    int rc = lp_engine_begin(worker->engine, p, msgs, f->n, wall_ms(), &f->b);
    if (rc != LP_OK) {
        batch_done(worker, f, rc, now);
        return false;
    }
    return true;
}

/* What the outcome of a batch means for its partition. */
static int batch_done(lp_worker_t *worker, flight_t *f, int rc, int64_t now) {
    int32_t p = f->p;
    part_t *part = &worker->parts[p];
    part->retry_pending = false;
    if (rc == LP_OK) {
        lp_status_set(worker->opts.status, LP_READY_STORE, true);
        store_kafka_offsets(worker, f->msgs, f->n);
        part_consume(part, f->take);
        part->backoff_ms = 0;
        part->outbox_dirty = true;
        return LP_OK;
    }
    if (rc == LP_STORE_MOVED) {
        LP_LOG(LP_LOG_WARN, "worker", "%s", lp_engine_errstr(worker->engine));
        worker->lost_writes++;
        retake_partition(worker, p, "the store lost writes");
        return LP_OK;
    }
    if (rc == LP_STORE_FENCED) {
        LP_LOG(LP_LOG_WARN, "worker", "%s; dropping its uncommitted records",
               lp_engine_errstr(worker->engine));
        part_drop_pending(part);
        part->owned = false;
        part->fenced_at_ms = now;
        return LP_OK;
    }
    /* Store trouble: keep the records and retry with backoff. No pause: the records in hand are
     * bounded by backlog_check, and the merge must not trust watermarks of a paused partition. */
    memcpy(part->retry_take, f->take, sizeof(part->retry_take));
    part->retry_pending = true;
    worker->store_errors++;
    lp_status_set(worker->opts.status, LP_READY_STORE, false);
    part->backoff_ms = part->backoff_ms == 0                   ? BACKOFF_MIN_MS
                       : part->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                               : part->backoff_ms * 2;
    part->retry_at_ms = now + part->backoff_ms;
    LP_LOG(LP_LOG_WARN, "worker", "%s; partition %" PRId32 ": retry in %d ms",
           lp_engine_errstr(worker->engine), p, part->backoff_ms);
    return LP_ERR;
}

/* One batch of partition p, waiting for its commit (shutdown). */
static int process_partition(lp_worker_t *worker, int32_t p, int64_t now) {
    flight_t f;
    if (ensure_msgs(worker) != LP_OK) {
        return LP_ERR;
    }
    if (!batch_begin(worker, p, now, worker->msgs, &f)) {
        return LP_OK;
    }
    int rc = lp_engine_apply(worker->engine, f.b, f.msgs);
    if (rc == LP_OK) {
        lp_engine_send(worker->engine, f.b);
        rc = lp_engine_finish(worker->engine, f.b);
    }
    return batch_done(worker, &f, rc, now);
}

/* Step 2 of the loop: a batch of every partition with records, pipelined: partition q's batch is
 * applied while Redis commits partition p's (begin q, send p, apply q, finish p). Loads go out
 * before the commit they would otherwise wait behind. */
static void process_partitions(lp_worker_t *worker, int64_t now) {
    flight_t fl[2];
    flight_t *prev = NULL;
    int cur = 0;
    if (ensure_msgs(worker) != LP_OK) {
        return;
    }
    for (int32_t p = 0; p < worker->max_part && !worker->outbox_blocked; p++) {
        part_t *part = &worker->parts[p];
        if (part->npending == 0 || (part->retry_at_ms > now && part->backoff_ms > 0)) {
            continue;
        }
        flight_t *f = &fl[cur];
        lp_log_context(p, NULL, -1);
        phase_end(worker, PH_OTHER);
        bool begun = batch_begin(worker, p, now, worker->msgs + (size_t)cur * batch_max(worker), f);
        phase_end(worker, PH_LOAD);
        if (!begun) {
            continue;
        }
        if (prev != NULL) {
            lp_engine_send(worker->engine, prev->b);
            prev->sent_ns = mono_ns();
            phase_end(worker, PH_COMMIT);
        }
        int rc = lp_engine_apply(worker->engine, f->b, f->msgs);
        lp_histogram_observe(&worker->apply_seconds, (double)phase_end(worker, PH_APPLY) * 1e-9);
        if (prev != NULL) {
            int prc = lp_engine_finish(worker->engine, prev->b);
            phase_end(worker, PH_COMMIT);
            lp_histogram_observe(&worker->commit_seconds,
                                 (double)(mono_ns() - prev->sent_ns) * 1e-9);
            batch_done(worker, prev, prc, now);
            prev = NULL;
        }
        if (rc != LP_OK) {
            batch_done(worker, f, rc, now);
            continue;
        }
        prev = f;
        cur ^= 1;
    }
    if (prev != NULL) {
        phase_end(worker, PH_OTHER);
        lp_log_context(prev->p, NULL, -1);
        lp_engine_send(worker->engine, prev->b);
        int prc = lp_engine_finish(worker->engine, prev->b);
        lp_histogram_observe(&worker->commit_seconds, (double)phase_end(worker, PH_COMMIT) * 1e-9);
        batch_done(worker, prev, prc, now);
    }
    lp_log_context(-1, NULL, -1);
}

static void add_pending(lp_worker_t *worker, rd_kafka_message_t *m) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    int t = topic_index(worker, topic);
    part_t *part = part_get(worker, m->partition);
    if (t < 0 || part == NULL || !part->owned) {
        rd_kafka_message_destroy(m);
        return;
    }
    /* A record we already hold or applied (re-fetched after a pause): skip it. */
    if (part->expect[t] >= 0 && m->offset < part->expect[t]) {
        rd_kafka_message_destroy(m);
        return;
    }
    if (part->qlen[t] == part->qcap[t]) {
        if (part->qhead[t] > 0) {
            memmove(part->q[t], part->q[t] + part->qhead[t],
                    (part->qlen[t] - part->qhead[t]) * sizeof(*part->q[t]));
            part->qlen[t] -= part->qhead[t];
            part->qhead[t] = 0;
        }
        if (part->qlen[t] == part->qcap[t]) {
            size_t cap = part->qcap[t] ? part->qcap[t] * 2 : 256;
            lp_rec_t *q = realloc(part->q[t], cap * sizeof(*q));
            if (q == NULL) {
                /* Can't hold it: forget it; it is read again from the stored offset after a
                 * restart (the offset does not move past it). */
                rd_kafka_message_destroy(m);
                return;
            }
            part->q[t] = q;
            part->qcap[t] = cap;
        }
    }
    lp_rec_t *r = &part->q[t][part->qlen[t]];
    size_t klen = m->key != NULL ? m->key_len : 0, vlen = m->payload != NULL ? m->len : 0;
    uint8_t *buf = NULL;
    if (m->key != NULL || m->payload != NULL) {
        buf = malloc(klen + vlen + 1);
        if (buf == NULL) {
            rd_kafka_message_destroy(m);
            return;
        }
        memcpy(buf, m->key != NULL ? m->key : "", klen);
        memcpy(buf + klen, m->payload != NULL ? m->payload : "", vlen);
    }
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    int64_t now = mono_ms();
    *r = (lp_rec_t){
        .offset = m->offset,
        .ts = ts < 0 ? 0 : ts,
        .at = now,
        .key = m->key != NULL ? buf : NULL,
        .value = m->payload != NULL ? buf + klen : NULL,
        .key_len = klen,
        .value_len = vlen,
    };
    part->qlen[t]++;
    part->expect[t] = r->offset + 1;
    part->seen[t] = true;
    part->rx_at[t] = now;
    part->npending++;
    rd_kafka_message_destroy(m);
}

/* librdkafka 2.0.2 can leave a topic-partition unfetched after its pause/resume raced with a
 * rebalance or a seek (librdkafka#5591, #4686): no record arrives, its cached watermarks go
 * stale, and the merge would take it for caught up. A topic-partition silent for STALL_MS while
 * its partition is busy (another topic delivered records meanwhile), or for STALL_IDLE_MS, is
 * checked against the broker (one blocking query per check, at most one check per call); when
 * the broker holds records past our position, its fetch is restarted there (resume, then seek:
 * the seek is the last word). */
/* Restarts the fetch of topic t of p at our position (resume, then seek: the seek is the last
 * word on where to fetch; in 2.0.2 a resume of a partition that is not paused restarts it from
 * a stale position, which the seek then overrides). */
static void fetch_restart(lp_worker_t *worker, int32_t p, int t, int64_t hi, int64_t now) {
    part_t *part = &worker->parts[p];
    const char *topic = worker->opts.in_topics[t];
    tp_pause(worker, p, t, false);
    tp_seek(worker, p, t, part->expect[t]);
    worker->fetch_restarts++;
    LP_LOG(LP_LOG_WARN, "worker",
           "%s [%" PRId32 "]: no record for %" PRId64 " ms though the broker holds offsets up to "
           "%" PRId64 " (next %" PRId64 "): fetch restarted",
           topic, p, now - part->rx_at[t], hi, part->expect[t]);
    part->rx_at[t] = now;
    part->seen[t] = false;
    part->unsettled_until_ms[t] = now + RESUME_SETTLE_MS;
}

static void stall_check(lp_worker_t *worker, int64_t now) {
    prober_t *pr = &worker->prober;
    if (!pr->h.started) {
        return;
    }
    pthread_mutex_lock(&pr->h.mu);
    bool asked = pr->asked, answered = pr->answered;
    int32_t ap = pr->p;
    int at = pr->t;
    int64_t aexpect = pr->expect, lo = pr->lo, hi = pr->hi;
    rd_kafka_resp_err_t err = pr->err;
    if (answered) {
        pr->asked = pr->answered = false;
    }
    pthread_mutex_unlock(&pr->h.mu);
    if (asked && !answered) {
        return; /* one question at a time */
    }
    if (answered && err == RD_KAFKA_RESP_ERR_NO_ERROR && ap < worker->max_part) {
        part_t *part = &worker->parts[ap];
        int64_t next = part->expect[at] >= 0 ? part->expect[at] : lo;
        /* Still silent at the same position, and the broker has more: the fetch is stuck. */
        if (part->owned && !part->tpaused[at] && part->expect[at] == aexpect &&
            now - part->rx_at[at] >= STALL_MS && next < hi) {
            fetch_restart(worker, ap, at, hi, now);
        }
    }
    if (now < worker->unsettled_until_ms) {
        return; /* Kafka trouble: no fetch works now, and none is stuck for it */
    }
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        int64_t busy_at = 0;
        for (int t = 0; t < LP_IN_TOPICS; t++) {
            busy_at = part->rx_at[t] > busy_at ? part->rx_at[t] : busy_at;
        }
        bool busy = now - busy_at < STALL_MS;
        for (int t = 0; t < LP_IN_TOPICS && part->owned; t++) {
            if (part->tpaused[t] || now - part->rx_at[t] < STALL_MS ||
                now - part->probe_at[t] < (busy ? STALL_MS : STALL_IDLE_MS)) {
                continue;
            }
            part->probe_at[t] = now;
            pthread_mutex_lock(&pr->h.mu);
            snprintf(pr->topic, sizeof(pr->topic), "%s", worker->opts.in_topics[t]);
            pr->p = p;
            pr->t = t;
            pr->expect = part->expect[t];
            pr->asked = true;
            pr->answered = false;
            pthread_cond_signal(&pr->h.cv);
            pthread_mutex_unlock(&pr->h.mu);
            return;
        }
    }
}

static void reload_if_asked(lp_worker_t *worker) {
    if (worker->opts.reload == NULL || !*worker->opts.reload) {
        return;
    }
    *worker->opts.reload = 0;
    if (worker->opts.reload_rules == NULL) {
        return;
    }
    const lp_rules_t *rules = worker->opts.reload_rules(worker->opts.ctx);
    if (rules == NULL) {
        worker->reloads_failed++;
        worker->last_reload_failed = true;
        LP_LOG(LP_LOG_ERROR, "worker", "rules reload failed; keeping the current rules");
        return;
    }
    worker->reloads_ok++;
    worker->last_reload_failed = false;
    lp_status_rules_changed(worker->opts.status);
    lp_engine_set_rules(worker->engine, rules);
    /* Cached leads are encoded by activity name, so they stay valid across a reload. */
    LP_LOG(LP_LOG_INFO, "worker", "rules reloaded: model %s version %s", rules->model_id,
           rules->model_version);
}

static void fire_timers(lp_worker_t *worker) {
    int64_t now = lp_worker_now_ms(worker);
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        if (!part->owned) {
            continue;
        }
        /* Timers fire by the clock only once the partition has caught up with its input. While
         * a backlog is applied, a lead's timers fire in event time as its own later events arrive
         * (lp_score_apply), so no stale alert is raised for a lead whose next activity or
         * acceptance is still in the backlog, or still on its way from a producer. */
        bool caught_up = part->npending == 0;
        for (int t = 0; t < LP_IN_TOPICS && caught_up; t++) {
            caught_up = topic_caught_up(worker, p, t);
        }
        if (!caught_up) {
            continue;
        }
        int64_t until = now;
        size_t fired = 0;
        do {
            int rc = lp_engine_fire_timers(worker->engine, p, until, &fired);
            if (rc == LP_STORE_MOVED) {
                worker->lost_writes++;
                retake_partition(worker, p, "the store lost writes");
                break;
            }
            if (rc == LP_STORE_FENCED) {
                part->owned = false;
                part->fenced_at_ms = mono_ms();
                break;
            }
            if (rc != LP_OK) {
                worker->store_errors++;
                lp_status_set(worker->opts.status, LP_READY_STORE, false);
                LP_LOG(LP_LOG_WARN, "worker", "timers: %s", lp_engine_errstr(worker->engine));
                break;
            }
            if (fired > 0) {
                part->outbox_dirty = true;
            }
        } while (fired > 0 && !*worker->opts.stop);
    }
}

int lp_worker_run(lp_worker_t *worker) {
    int wait_ms = worker->opts.batch_max_wait_ms > 0 ? worker->opts.batch_max_wait_ms : 20;
    int rc = LP_OK;

    while (!*worker->opts.stop) {
        reload_if_asked(worker);
        if (worker->opts.tick != NULL) {
            worker->opts.tick(worker->opts.tick_ctx);
        }
        size_t got = 0;
        /* 1. gather what is there now (a batch at most). Block only when there is nothing to
         * do (up to batch.max_wait_ms), or briefly while records are held (their grace, or a
         * wait for another topic): batches grow with the load, and a light load is not held
         * back to fill them. */
        size_t held = worker->round_active ? 1 : 0; /* output in flight: come back soon */
        size_t owned = 0;
        for (int32_t p = 0; p < worker->max_part; p++) {
            held += worker->parts[p].npending;
            owned += worker->parts[p].owned;
        }
        /* Everything librdkafka has in hand: its queue is one FIFO for every partition, and the
         * merge of one partition may need records that sit behind many of another's (taking a
         * batch per pass, partitions waited hundreds of ms for records already fetched). Also,
         * librdkafka 2.0.2 stops fetching for about a second once its queue (all partitions
         * together: they forward to one) holds queued.min.messages (100,000 by default;
         * librdkafka#2879, 2.1 made it fetch.queue.backoff.ms): a queue drained on every pass
         * stays below it. What we hold is bounded by backlog_check's pauses instead. */
        size_t gather = held_max(worker) * (owned > 0 ? owned * LP_IN_TOPICS : 1);
        publish_status(worker);
        phase_end(worker, PH_OTHER);
        while (got < gather && !*worker->opts.stop) {
            int timeout = got > 0    ? 0
                          : held > 0 ? (wait_ms < HELD_POLL_MS ? wait_ms : HELD_POLL_MS)
                                     : wait_ms;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(worker->consumer, timeout);
            if (m == NULL) {
                break;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    LP_LOG(LP_LOG_WARN, "worker", "consume: %s", rd_kafka_message_errstr(m));
                    worker->unsettled_until_ms = mono_ms() + UNSETTLED_MS;
                }
                rd_kafka_message_destroy(m);
                continue;
            }
            add_pending(worker, m);
            got++;
        }
        phase_end(worker, PH_POLL);
        int64_t now = mono_ms();
        ends_tick(worker, now);
        /* 2. apply per partition (partitions in retry wait for their backoff; nothing is
         * applied while output delivery fails: the records wait, bounded by backlog_check) */
        process_partitions(worker, now);
        for (int32_t p = 0; p < worker->max_part; p++) {
            if (worker->parts[p].owned) {
                backlog_check(worker, p);
            }
        }
        /* 3. deliver the outboxes, one round in flight; while delivery fails, input is held
         * (backpressure) */
        phase_end(worker, PH_OTHER);
        int out_rc = LP_OK;
        bool out_done = false;
        if (worker->round_active) {
            rd_kafka_poll(worker->producer, 0);
            if (outbox_round_delivered(worker) || now >= worker->round_deadline_ms) {
                out_rc = outbox_round_finish(worker);
                out_done = true;
            }
        }
        if (!worker->round_active && out_rc == LP_OK &&
            (!worker->outbox_blocked || now >= worker->outbox_retry_ms)) {
            out_rc = outbox_round_start(worker);
            out_done = out_done || out_rc != LP_OK || !worker->round_active;
            rd_kafka_poll(worker->producer, 0);
        }
        if (out_done) {
            bool ok = out_rc == LP_OK;
            if (!ok && !worker->outbox_blocked) {
                LP_LOG(LP_LOG_WARN, "worker", "output delivery failing: input held");
            }
            worker->outbox_blocked = !ok;
            worker->outbox_retry_ms = now + (ok ? 0 : BACKOFF_MAX_MS / 5);
        }
        phase_end(worker, PH_OUTPUT);
        /* 4. timers, at most once per interval */
        if (now >= worker->next_timers_ms) {
            fire_timers(worker);
            worker->next_timers_ms =
                now +
                (worker->opts.timers_interval_ms > 0 ? worker->opts.timers_interval_ms : 1000);
        }
        /* 5. a partition we lost to a stale epoch but Kafka still gives us: take it back */
        for (int32_t p = 0; p < worker->max_part; p++) {
            part_t *part = &worker->parts[p];
            if (!part->owned && part->fenced_at_ms > 0 &&
                now - part->fenced_at_ms > REFENCE_AFTER_MS && part->assigned[0] &&
                part->assigned[1] && part->assigned[2]) {
                retake_partition(worker, p, "re-fenced: Kafka still assigns it to us");
            }
        }
        /* 6. fetches that stalled */
        if (now >= worker->next_stall_check_ms) {
            stall_check(worker, now);
            worker->next_stall_check_ms = now + 1000;
        }
    }

    /* Shutdown: finish the batch, drain the outbox, commit, leave the group. */
    LP_LOG(LP_LOG_INFO, "worker", "stopping: finishing the batch and draining the outbox");
    int64_t deadline = mono_ms() + worker->opts.shutdown_timeout_ms;
    for (int32_t p = 0; p < worker->max_part; p++) {
        if (worker->parts[p].npending > 0 && mono_ms() < deadline) {
            process_partition(worker, p, mono_ms());
        }
    }
    int left = (int)(deadline - mono_ms());
    if (left > 0 && drain_outbox(worker, left) != LP_OK) {
        rc = LP_ERR;
    }
    rd_kafka_commit(worker->consumer, NULL, 0);
    rd_kafka_consumer_close(worker->consumer);
    rd_kafka_flush(worker->producer, 1000);
    return rc;
}

/* Resident memory of this process, from /proc/self/statm (0 if unreadable). */
static double rss_bytes(void) {
    unsigned long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    int got = fscanf(f, "%lu %lu", &pages, &resident);
    fclose(f);
    return got == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0;
}

/* The samples of each family of the metrics table (io/metrics.h). */
static void collect(void *ctx, lp_metric_id_t id, lp_metrics_out_t *out) {
    const lp_worker_t *worker = ctx;
    const lp_engine_stats_t *st = lp_engine_stats(worker->engine);
    char model[2 * LP_NAME_MAX + 2];
    double v = 0;
    switch (id) {
    case LP_M_BUILD_INFO:
        lp_metrics_sample(out, id, LP_VERSION, 1);
        return;
    case LP_M_RULES_INFO: {
        const lp_rules_t *rules = lp_engine_rules(worker->engine);
        snprintf(model, sizeof(model), "%s/%s", rules->model_id, rules->model_version);
        lp_metrics_sample(out, id, model, 1);
        return;
    }
    case LP_M_RULES_RELOADS:
        lp_metrics_sample(out, id, "ok", (double)worker->reloads_ok);
        lp_metrics_sample(out, id, "failed", (double)worker->reloads_failed);
        return;
    case LP_M_STALE:
        for (int r = 0; r < 3; r++) {
            lp_metrics_sample(out, id, lp_stale_reason_name((lp_stale_reason_t)r),
                              (double)st->stale[r]);
        }
        return;
    case LP_M_REJECTIONS:
        for (int r = 1; r < LP_REJ__COUNT; r++) {
            lp_metrics_sample(out, id, lp_reject_reason_name((lp_reject_reason_t)r),
                              (double)st->rejected_by_reason[r]);
        }
        return;
    case LP_M_LOOP_SECONDS:
        for (int ph = 0; ph < PH__COUNT; ph++) {
            lp_metrics_sample(out, id, phase_names[ph], (double)worker->phase_ns[ph] * 1e-9);
        }
        return;
    case LP_M_BATCH_APPLY_SECONDS:
        lp_metrics_hist(out, id, &worker->apply_seconds);
        return;
    case LP_M_COMMIT_SECONDS:
        lp_metrics_hist(out, id, &worker->commit_seconds);
        return;
    case LP_M_HANDOFF_LATENCY:
        lp_metrics_hist(out, id, &worker->handoff_latency);
        return;
    case LP_M_RULES_LAST_RELOAD_OK:
        v = worker->last_reload_failed ? 0 : 1;
        break;
    case LP_M_EVENTS:
        v = (double)st->events;
        break;
    case LP_M_APPLIED:
        v = (double)st->applied;
        break;
    case LP_M_DUPLICATES:
        v = (double)st->duplicates;
        break;
    case LP_M_DEAD_LETTERS:
        v = (double)st->dead_letters;
        break;
    case LP_M_QUALIFIED:
        v = (double)st->qualified;
        break;
    case LP_M_BATCHES:
        v = (double)st->batches;
        break;
    case LP_M_COMMIT_FAILURES:
        v = (double)st->commit_failures;
        break;
    case LP_M_FENCED:
        v = (double)(st->fenced + worker->ack_fenced);
        break;
    case LP_M_CACHE_HITS:
        v = (double)st->cache_hits;
        break;
    case LP_M_CACHE_MISSES:
        v = (double)st->cache_misses;
        break;
    case LP_M_TIMERS_FIRED:
        v = (double)st->timers_fired;
        break;
    case LP_M_PRODUCED:
        v = (double)worker->produced;
        break;
    case LP_M_DELIVERY_FAILURES:
        v = (double)worker->delivery_failures;
        break;
    case LP_M_STORE_ERRORS:
        v = (double)worker->store_errors;
        break;
    case LP_M_STORE_ROUND_TRIPS:
        v = (double)worker->store->round_trips;
        break;
    case LP_M_STORE_LOST_WRITES:
        v = (double)worker->lost_writes;
        break;
    case LP_M_REBALANCES:
        v = (double)worker->rebalances;
        break;
    case LP_M_MERGE_WAIT_TIMEOUTS:
        v = (double)worker->merge_timeouts;
        break;
    case LP_M_FETCH_RESTARTS:
        v = (double)worker->fetch_restarts;
        break;
    case LP_M_INPUT_PAUSES:
        v = (double)worker->input_pauses;
        break;
    case LP_M_END_PROBES:
        v = (double)worker->end_probes_total;
        break;
    case LP_M_END_PROBE_ERRORS:
        v = (double)worker->end_probe_errors;
        break;
    case LP_M_MERGE_EARLY_RELEASES:
        v = (double)worker->early_releases;
        break;
    case LP_M_CONSUMER_LAG:
    case LP_M_STORED_OFFSET:
        for (int32_t p = 0; p < worker->max_part; p++) {
            const part_t *part = &worker->parts[p];
            char pn[16];
            snprintf(pn, sizeof(pn), "%" PRId32, p);
            for (int t = 0; t < LP_IN_TOPICS && part->owned; t++) {
                int64_t lo = -1, hi = -1, next = part->expect[t];
                if (rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p,
                                                   &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    hi = -1;
                }
                if (part->qhead[t] < part->qlen[t]) {
                    next = part->q[t][part->qhead[t]].offset; /* fetched, not applied yet */
                }
                next = next >= 0 ? next : lo;
                if (id == LP_M_STORED_OFFSET && next >= 0) {
                    lp_metrics_sample2(out, id, worker->opts.in_topics[t], pn, (double)next);
                } else if (id == LP_M_CONSUMER_LAG && hi >= 0 && next >= 0) {
                    lp_metrics_sample2(out, id, worker->opts.in_topics[t], pn,
                                       (double)(hi > next ? hi - next : 0));
                }
            }
        }
        return;
    case LP_M_PARTITIONS_OWNED:
        for (int32_t p = 0; p < worker->max_part; p++) {
            v += worker->parts[p].owned ? 1 : 0;
        }
        break;
    case LP_M_RSS_BYTES:
        v = rss_bytes();
        break;
    case LP_M__COUNT:
        return;
    }
    lp_metrics_sample(out, id, NULL, v);
}

size_t lp_worker_metrics(const lp_worker_t *worker, char *buf, size_t size) {
    return lp_metrics_render(buf, size, collect, (void *)worker);
}

/* What other threads read (io/status.h): heartbeat, readiness, partitions, the metrics text.
 * Rendering the metrics takes microseconds; done at most every STATUS_EVERY_MS. */
static void publish_status(lp_worker_t *worker) {
    lp_status_t *status = worker->opts.status;
    if (status == NULL) {
        return;
    }
    lp_status_beat(status);
    int64_t now = mono_ms();
    if (now < worker->status_next_ms) {
        return;
    }
    worker->status_next_ms = now + STATUS_EVERY_MS;
    lp_status_set(status, LP_READY_OUTBOX, !worker->outbox_blocked);
    lp_status_set_partitions(status, worker->max_part);
    if (worker->status_buf == NULL) {
        worker->status_buf = malloc(STATUS_BUF);
    }
    if (worker->status_buf != NULL) {
        size_t len = lp_worker_metrics(worker, worker->status_buf, STATUS_BUF);
        lp_status_publish(status, worker->status_buf, len);
    }
}
