/* The worker's construction (Kafka clients, queues, helper threads) and teardown, and its
 * clocks. */
#include "io/worker_internal.h"

int64_t lp_wk_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lp_wk_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tests only: start + offset + scale * elapsed, so a day of SLA can pass in seconds. */
int64_t lp_worker_now_ms(const lp_worker_t *worker) {
    int64_t now = lp_wk_wall_ms();
    double scale = worker->opts.clock_scale > 0 ? worker->opts.clock_scale : 1.0;
    return worker->start_wall_ms + worker->opts.clock_offset_ms +
           (int64_t)(scale * (double)(now - worker->start_wall_ms));
}

lp_worker_t *lp_worker_new(const lp_worker_opts_t *opts, lp_engine_t *engine, lp_store_t *store,
                           char *errstr, size_t errstr_size) {
    /* Every output kind needs its topic: the outbox holds entries of each (an entry whose topic
     * were missing could be neither sent nor dropped). */
    for (int k = 0; k < LP_OUT__COUNT; k++) {
        bool needed = k < LP_OUT_MEMBER || opts->accounts != NULL;
        if (needed && (opts->out_topics[k] == NULL || opts->out_topics[k][0] == '\0')) {
            snprintf(errstr, errstr_size, "no output topic for output kind %d", k);
            return NULL;
        }
    }
    lp_worker_t *worker = calloc(1, sizeof(*worker));
    rd_kafka_conf_t *conf = NULL;
    if (worker == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    worker->opts = *opts;
    worker->start_wall_ms = lp_wk_wall_ms();
    worker->engine = engine;
    worker->store = store;
    worker->parts = calloc(LP_PARTITIONS_MAX, sizeof(part_t));
    if (worker->parts == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    for (int32_t p = 0; p < LP_PARTITIONS_MAX; p++) {
        for (int t = 0; t < LP_EV__COUNT; t++) {
            worker->parts[p].expect[t] = -1;
        }
    }

    /* Consumer: offsets are stored by us after each commit to Redis, and auto-committed to Kafka
     * only for lag monitoring. */
    conf = lp_wk_base_conf(opts, errstr, errstr_size);
    if (conf == NULL || rd_kafka_conf_set(conf, "group.id", opts->group_id, errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size) ||
        /* One fetch at a time per broker: a long poll of caught-up partitions (500 ms by
         * default) delayed the first fetch of a resumed one as long. */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", errstr, errstr_size) ||
        lp_wk_apply_props(conf, opts, true, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rd_kafka_conf_set_opaque(conf, worker);
    rd_kafka_conf_set_rebalance_cb(conf, lp_wk_rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, lp_wk_consumer_error_cb);
    worker->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (worker->consumer == NULL) {
        goto err;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(worker->consumer);
    if (lp_wk_helper_start(&worker->prober.h, worker->consumer, lp_wk_prober_main,
                           &worker->prober) != LP_OK) {
        snprintf(errstr, errstr_size, "cannot start the watermark prober thread");
        goto err;
    }
    if (lp_wk_helper_start(&worker->ends.h, worker->consumer, lp_wk_ends_main, &worker->ends) !=
        LP_OK) {
        snprintf(errstr, errstr_size, "cannot start the end prober thread");
        goto err;
    }

    /* Producer: idempotent (no duplicates or reordering from its own retries). No linger: an
     * outbox round is produced in one go already, and lingering only delayed every hand-off
     * (2 ms before; docs/benchmarks.md). */
    conf = lp_wk_base_conf(opts, errstr, errstr_size);
    if (conf == NULL ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "linger.ms", "0", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, errstr_size) ||
        lp_wk_apply_props(conf, opts, false, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, lp_wk_dr_cb);
    worker->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (worker->producer == NULL) {
        goto err;
    }
    conf = NULL;
    /* Known topics get their metadata (and the idempotent producer its id) now, not on the
     * first hand-off, which would otherwise wait about a second. */
    for (int k = 0; k < LP_OUT__COUNT; k++) {
        if (k < LP_OUT_MEMBER || opts->accounts != NULL) {
            worker->out_rkt[k] = rd_kafka_topic_new(worker->producer, opts->out_topics[k], NULL);
        }
    }
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(worker->producer, 0, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
    }

    if (lp_wk_acct_setup(worker, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(LP_EV__COUNT + 1);
    for (int t = 0; t < LP_EV__COUNT; t++) {
        rd_kafka_topic_partition_list_add(subs, opts->in_topics[t], RD_KAFKA_PARTITION_UA);
    }
    if (opts->accounts != NULL) {
        /* stage 2: the members topic, in the same group (docs/architecture.md) */
        rd_kafka_topic_partition_list_add(subs, opts->out_topics[LP_OUT_MEMBER],
                                          RD_KAFKA_PARTITION_UA);
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
            lp_wk_part_drop_pending(&worker->parts[p]);
            for (int t = 0; t < LP_EV__COUNT; t++) {
                free(worker->parts[p].q[t]);
            }
        }
    }
    lp_wk_helper_stop(&worker->prober.h);
    lp_wk_ends_stop(&worker->ends);
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
    free(worker->acct_dirty);
    free(worker->acct_assigned);
    free(worker);
}
