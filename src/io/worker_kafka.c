/* The worker's Kafka clients: their configuration, the librdkafka log and delivery callbacks,
 * and the helper threads that ask the brokers for watermarks (stall probes) and end offsets
 * (end probes) without blocking the loop. */
#include "io/worker_internal.h"

void *lp_wk_prober_main(void *arg) {
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

int lp_wk_helper_start(helper_t *h, rd_kafka_t *rk, void *(*main_fn)(void *), void *arg) {
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
bool lp_wk_helper_stop(helper_t *h) {
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

void *lp_wk_ends_main(void *arg) {
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
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t send_ms = lp_wk_mono_ms();
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(ep->h.rk, list, 2000);
        int64_t recv_ms = lp_wk_mono_ms();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < list->cnt; i++) {
                list->elems[i].err = err;
            }
        }
        pthread_mutex_lock(&ep->h.mu);
        ep->send_ms = send_ms;
        ep->recv_ms = recv_ms;
        ep->rtt_ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        ep->answer = list;
    }
    pthread_mutex_unlock(&ep->h.mu);
    return NULL;
}

void lp_wk_ends_stop(ends_prober_t *ep) {
    if (!lp_wk_helper_stop(&ep->h)) {
        return;
    }
    if (ep->ask != NULL) {
        rd_kafka_topic_partition_list_destroy(ep->ask);
    }
    if (ep->answer != NULL) {
        rd_kafka_topic_partition_list_destroy(ep->answer);
    }
}

int lp_wk_topic_index(const lp_worker_t *worker, const char *topic) {
    for (int t = 0; t < LP_EV__COUNT; t++) {
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

rd_kafka_conf_t *lp_wk_base_conf(const lp_worker_opts_t *opts, char *errstr, size_t size) {
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
int lp_wk_apply_props(rd_kafka_conf_t *conf, const lp_worker_opts_t *opts, bool consumer,
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

void lp_wk_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    (void)opaque;
    delivery_t *d = msg->_private;
    if (d != NULL) {
        d->done = true;
        d->err = msg->err;
    }
}

/* Broker trouble (all brokers down, transport errors): cached watermarks go stale. */
void lp_wk_consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    lp_worker_t *worker = opaque;
    (void)rk;
    worker->unsettled_until_ms = lp_wk_mono_ms() + UNSETTLED_MS;
    LP_LOG(LP_LOG_WARN, "worker", "kafka: %s (%s)", reason, rd_kafka_err2name(err));
}

/* Takes the end prober's answer into the ring and, while the merge holds records that an
 * answer may release, asks again (at most every merge.grace_ms / 8, 2 to 25 ms, one at a time). */
void lp_wk_ends_tick(lp_worker_t *worker, int64_t now) {
    ends_prober_t *ep = &worker->ends;
    if (!ep->h.started) {
        return;
    }
    pthread_mutex_lock(&ep->h.mu);
    rd_kafka_topic_partition_list_t *answer = ep->answer;
    int64_t send_ms = ep->send_ms, recv_ms = ep->recv_ms, rtt_ns = ep->rtt_ns;
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
        lp_histogram_observe(&worker->end_probe_seconds, (double)rtt_ns * 1e-9);
        bool failed = false;
        for (int i = 0; i < answer->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &answer->elems[i];
            int t = lp_wk_topic_index(worker, e->topic);
            if (t < 0 || e->partition < 0 || e->partition >= worker->max_part) {
                continue;
            }
            lp_part_ends_t *ends = &worker->parts[e->partition].ends;
            if (ends->seq[slot] != seq) {
                ends->seq[slot] = seq;
                for (int u = 0; u < LP_EV__COUNT; u++) {
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
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(LP_EV__COUNT * 8);
    for (int32_t p = 0; p < worker->max_part; p++) {
        for (int t = 0; t < LP_EV__COUNT && worker->parts[p].owned; t++) {
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
    int every = worker->opts.merge_grace_ms / 8;
    worker->ends_next_ms = now + (every < 2 ? 2 : every > 25 ? 25 : every);
}

/* The end of topic t of p from the newest end probe that covers p and was sent at or after
 * since_ms (the probes of the ring are in send order). False when there is none. */
bool lp_wk_ends_since(const lp_worker_t *worker, int32_t p, int t, int64_t since_ms, int64_t *end) {
    const lp_part_ends_t *ends = &worker->parts[p].ends;
    for (uint64_t i = 0; i < LP_END_RING && i < worker->end_seq; i++) {
        uint64_t seq = worker->end_seq - i;
        size_t slot = seq % LP_END_RING;
        const lp_end_probe_t *probe = &worker->end_probes[slot];
        if (probe->seq != seq || probe->send_ms < since_ms) {
            return false;
        }
        if (ends->seq[slot] == seq && ends->end[slot][t] >= 0) {
            *end = ends->end[slot][t];
            return true;
        }
    }
    return false;
}

/* Our position in each input topic of p, for the merge's grace hold (io/merge.h): the offset
 * after the last record fetched, or the low watermark while nothing was fetched since the
 * assignment (which started at the beginning); -1 when unknown. */
void lp_wk_positions(lp_worker_t *worker, int32_t p, int64_t next[LP_EV__COUNT]) {
    part_t *part = &worker->parts[p];
    for (int t = 0; t < LP_EV__COUNT; t++) {
        next[t] = part->expect[t];
        if (next[t] < 0) {
            int64_t lo = -1, hi = -1;
            if (rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p, &lo,
                                               &hi) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                next[t] = lo;
            }
        }
    }
}
