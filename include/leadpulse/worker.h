/* leadpulse: the worker loop (`leadpulse run`). Kafka in, engine, outbox out, timers. */
#ifndef LEADPULSE_WORKER_H
#define LEADPULSE_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "leadpulse/account_engine.h"
#include "leadpulse/engine.h"

typedef struct {
    const char *brokers;
    const char *group_id;
    const char *in_topics[LP_EV__COUNT]; /* indexed by lp_event_kind_t */
    lp_format_t in_format[LP_EV__COUNT];
    /* indexed by lp_out_kind_t; LP_OUT_MEMBER and LP_OUT_MARK name the members topic, which is
     * also consumed (stage 2). The account kinds (4..7) only with `accounts` (NULL otherwise). */
    const char *out_topics[LP_OUT__COUNT];
    /* Stage 2 (borrowed; NULL: accounts off): the account partitions of the members topic. */
    lp_acct_engine_t *accounts;
    size_t nkafka_props;            /* librdkafka properties passed through */
    const char *const *kafka_props; /* name0, value0, name1, value1, ... */
    size_t batch_max_events;
    int batch_max_wait_ms;
    int merge_grace_ms; /* see merge.grace_ms in docs/configuration.md */
    int timers_interval_ms;
    size_t outbox_batch;
    int shutdown_timeout_ms;
    int64_t clock_offset_ms; /* tests only: timer clock = wall * scale + offset */
    double clock_scale;
    size_t max_pending_outbox;     /* pause input when this many records await delivery */
    volatile sig_atomic_t *stop;   /* set by SIGTERM/SIGINT */
    volatile sig_atomic_t *reload; /* set by SIGHUP */
    /* Called on SIGHUP; returns new rules (the worker swaps them in and hands the old ones back to
     * free_rules) or NULL to keep the old ones. */
    const lp_rules_t *(*reload_rules)(void *ctx);
    const char *rules_path; /* watched for changes every rules_check_ms (0: SIGHUP only) */
    int rules_check_ms;
    void (*free_rules)(void *ctx, const lp_rules_t *rules);
    void *ctx;
    void (*tick)(void *tick_ctx); /* called once per loop iteration */
    void *tick_ctx;
    /* Where the loop publishes its heartbeat, readiness and metrics for other threads (io/status.h;
     * borrowed, may be NULL). */
    struct lp_status *status;
} lp_worker_opts_t;

typedef struct lp_worker lp_worker_t;

/* Creates the consumer and producer. engine and store are borrowed. NULL with a reason. */
lp_worker_t *lp_worker_new(const lp_worker_opts_t *opts, lp_engine_t *engine, lp_store_t *store,
                           char *errstr, size_t errstr_size);
/* Runs until *opts->stop is set; then finishes the batch, drains the outbox, commits and leaves
 * the group. Returns LP_OK on a clean shutdown. */
int lp_worker_run(lp_worker_t *worker);
void lp_worker_destroy(lp_worker_t *worker);

/* Sets the per-iteration callback (after creation, since it may need the worker). */
void lp_worker_set_tick(lp_worker_t *worker, void (*tick)(void *), void *ctx);

/* Timer clock in ms (wall clock, with the test-only offset and scale applied). */
int64_t lp_worker_now_ms(const lp_worker_t *worker);

/* For the metrics endpoint: writes Prometheus text into buf; returns its length. */
size_t lp_worker_metrics(const lp_worker_t *worker, char *buf, size_t size);

#endif
