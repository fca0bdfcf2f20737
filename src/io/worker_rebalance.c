/* Rebalances: taking a partition (fencing it in the store and starting from the offsets Redis
 * holds), giving it back, and taking it again when the store lost writes. */
#include "io/worker_internal.h"

/* Fences p in the store and reads its offsets, retrying while the store is down (the rebalance
 * must not complete with a guessed position). */
static int take_partition(lp_worker_t *worker, int32_t p, int64_t offsets[LP_EV__COUNT]) {
    int backoff = BACKOFF_MIN_MS;
    lp_log_context(p, NULL, -1);
    while (!*worker->opts.stop) {
        if (lp_engine_assign(worker->engine, p, LP_EV__COUNT, worker->opts.in_topics, offsets) ==
            LP_OK) {
            lp_status_set(worker->opts.status, LP_READY_STORE, true);
            lp_log_context(-1, NULL, -1);
            return LP_OK;
        }
        worker->store_errors++;
        lp_status_set(worker->opts.status, LP_READY_STORE, false);
        LP_LOG(LP_LOG_WARN, "worker", "taking partition %" PRId32 ": %s; retrying in %d ms", p,
               lp_engine_errstr(worker->engine), backoff);
        lp_status_wait(worker->opts.status, backoff, worker->opts.stop);
        lp_wk_publish_status(worker);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    lp_log_context(-1, NULL, -1);
    return LP_ERR;
}

/* The books of a partition just taken (fenced, offsets read from the store): owned, its outbox
 * to deliver (what a previous owner left behind), fetch positions expected at offsets, cached
 * watermarks distrusted until the fetcher delivers or an end probe answers (lp_wk_topic_state). */
static void part_taken(part_t *part, const int64_t offsets[LP_EV__COUNT]) {
    int64_t now = lp_wk_mono_ms();
    part->owned = true;
    part->outbox_dirty = true;
    part->backoff_ms = 0;
    part->retry_pending = false;
    part->fenced_at_ms = 0;
    memset(part->seen, 0, sizeof(part->seen));
    for (int t = 0; t < LP_EV__COUNT; t++) {
        part->settle_from_ms[t] = now;
        part->rx_at[t] = now;
        part->probe_at[t] = 0;
        part->expect[t] = offsets[t];
    }
}

void lp_wk_on_assign(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    /* Mark what Kafka gave us, then take ownership of every partition held on all topics. */
    for (int i = 0; i < list->cnt; i++) {
        int t = lp_wk_topic_index(worker, list->elems[i].topic);
        part_t *part = lp_wk_part_get(worker, list->elems[i].partition);
        if (t >= 0 && part != NULL) {
            part->assigned[t] = true;
        }
    }
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        bool all = true;
        for (int t = 0; t < LP_EV__COUNT; t++) {
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
        int64_t offsets[LP_EV__COUNT];
        if (take_partition(worker, p, offsets) != LP_OK) {
            continue;
        }
        part_taken(part, offsets);
        for (int t = 0; t < LP_EV__COUNT; t++) {
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
void lp_wk_retake_partition(lp_worker_t *worker, int32_t p, const char *why) {
    part_t *part = &worker->parts[p];
    int64_t offsets[LP_EV__COUNT];
    lp_wk_part_drop_pending(part);
    part->owned = false;
    if (take_partition(worker, p, offsets) != LP_OK) {
        return;
    }
    part_taken(part, offsets);
    for (int t = 0; t < LP_EV__COUNT; t++) {
        if (part->tpaused[t]) {
            /* Resume before the seek, so the seek is the last word on where to fetch. */
            lp_wk_topic_pause(worker, p, t, false);
        }
        lp_wk_tp_seek(worker, p, t, offsets[t]);
    }
    LP_LOG(LP_LOG_WARN, "worker",
           "partition %" PRId32 ": %s; resumed from its stored offsets %" PRId64 "/%" PRId64
           "/%" PRId64,
           p, why, offsets[0], offsets[1], offsets[2]);
}

static void on_revoke(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    for (int i = 0; i < list->cnt; i++) {
        int t = lp_wk_topic_index(worker, list->elems[i].topic);
        int32_t p = list->elems[i].partition;
        part_t *part = lp_wk_part_get(worker, p);
        if (t < 0 || part == NULL) {
            continue;
        }
        part->assigned[t] = false;
        if (part->owned) {
            /* Work not committed is dropped: the next owner resumes from the stored offsets. */
            lp_wk_part_drop_pending(part);
            lp_engine_revoke(worker->engine, p);
            part->owned = false;
            LP_LOG(LP_LOG_INFO, "worker", "partition %" PRId32 " revoked", p);
        }
        if (part->tpaused[t]) {
            /* librdkafka keeps an application pause across unassign/assign: resume it now, or
             * the next assignment of it would never fetch. Only what we paused: in 2.0.2 a
             * resume of a partition that is not paused restarts its fetch from a stale
             * position (librdkafka#4686). */
            lp_wk_tp_pause(worker, p, t, false);
        }
        part->tpaused[t] = false;
        part->expect[t] = -1;
    }
}

void lp_wk_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *partitions, void *opaque) {
    lp_worker_t *worker = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    worker->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        lp_status_set(worker->opts.status, LP_READY_ASSIGNED, true);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        lp_wk_on_assign(worker, partitions);
        lp_wk_acct_on_assign(worker, partitions);
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
        lp_wk_acct_on_revoke(worker, partitions);
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
