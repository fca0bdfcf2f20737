/* Output delivery in rounds: the outboxes of the owned partitions are produced with the
 * idempotent producer and deleted once the broker confirmed them. */
#include "io/worker_internal.h"

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

/* The store partition's flag "its outbox may hold entries" (a lead or an account partition). */
static bool *dirty_flag(lp_worker_t *worker, int32_t sp) {
    return sp >= LP_ACCOUNT_PARTITION_BASE ? &worker->acct_dirty[sp - LP_ACCOUNT_PARTITION_BASE]
                                           : &worker->parts[sp].outbox_dirty;
}

static bool sp_owned(const lp_worker_t *worker, int32_t sp) {
    return sp >= LP_ACCOUNT_PARTITION_BASE
               ? lp_acct_engine_owns(worker->opts.accounts, sp - LP_ACCOUNT_PARTITION_BASE)
               : worker->parts[sp].owned;
}

static int64_t sp_epoch(const lp_worker_t *worker, int32_t sp) {
    return sp >= LP_ACCOUNT_PARTITION_BASE
               ? lp_acct_engine_epoch(worker->opts.accounts, sp - LP_ACCOUNT_PARTITION_BASE)
               : lp_engine_epoch(worker->engine, sp);
}

static void find_partition(void *ctx, const char *name, size_t name_len, const char *value,
                           size_t value_len) {
    int32_t *p = ctx;
    if (name_len == 17 && memcmp(name, "members_partition", 17) == 0 && value_len > 0 &&
        value_len < 8) {
        char tmp[8];
        memcpy(tmp, value, value_len);
        tmp[value_len] = '\0';
        *p = (int32_t)strtol(tmp, NULL, 10);
    }
}

/* The members-topic partition a bundle of member records names (RD_KAFKA_PARTITION_UA: none,
 * by key). */
static int32_t meta_partition(const lp_store_outbox_t *e) {
    int32_t p = RD_KAFKA_PARTITION_UA;
    lp_engine_meta_foreach(e->meta, e->meta_len, find_partition, &p);
    return p;
}

/* Produces one record of an outbox entry (to partition `partition`, or by key when
 * RD_KAFKA_PARTITION_UA) with delivery slot d. */
static void produce_one(lp_worker_t *worker, const lp_store_outbox_t *e, delivery_t *d,
                        int32_t partition) {
    hdr_ctx_t h = {rd_kafka_headers_new(6), 0};
    if (e->event_id != NULL && e->event_id[0] != '\0') {
        rd_kafka_header_add(h.hdrs, "event_id", -1, e->event_id, -1);
    }
    lp_engine_meta_foreach(e->meta, e->meta_len, add_header, &h);
    d->event_ts = h.event_ts;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        worker->producer, RD_KAFKA_V_TOPIC(worker->opts.out_topics[e->kind]),
        RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(e->key, e->key_len),
        RD_KAFKA_V_VALUE((void *)e->value, e->value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h.hdrs), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h.hdrs);
        d->done = true;
        d->err = err;
    }
}

/* Reads one store partition's outbox (a lead partition, or an account partition) and produces
 * it; deliveries go to worker->deliveries from *n on (capacity reserved by the caller: a mark
 * takes one per partition of the members topic). */
static int outbox_send(lp_worker_t *worker, int32_t sp, size_t *n) {
    lp_store_outbox_list_t list = {0};
    if (worker->store->ops->outbox_read(worker->store, sp, worker->opts.outbox_batch, &list) !=
        LP_OK) {
        worker->store_errors++;
        lp_status_set(worker->opts.status, LP_READY_STORE, false);
        LP_LOG(LP_LOG_WARN, "worker", "outbox of store partition %" PRId32 ": %s", sp,
               worker->store->errstr);
        return LP_ERR;
    }
    /* Fewer than asked: this read saw all of it (a later commit sets the flag again). */
    *dirty_flag(worker, sp) = list.n >= worker->opts.outbox_batch;
    for (size_t i = 0; i < list.n; i++) {
        const lp_store_outbox_t *e = &list.entries[i];
        bool known = e->kind >= 0 && e->kind < LP_OUT__COUNT &&
                     worker->opts.out_topics[e->kind] != NULL &&
                     (e->kind < LP_OUT_MEMBER || worker->opts.accounts != NULL);
        int copies = known && e->kind == LP_OUT_MARK ? worker->members_parts : 1;
        for (int c = 0; c < copies; c++) {
            delivery_t *d = &worker->deliveries[(*n)++];
            d->done = false;
            d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
            d->partition = sp;
            d->fanout = c == 0 ? copies : 0;
            snprintf(d->id, sizeof(d->id), "%s", e->id);
            if (!known) {
                /* Unknown kind (written by another leadpulse version, or accounts turned off):
                 * no topic to send it to; acknowledged (dropped), and said so. */
                LP_LOG(LP_LOG_WARN, "worker",
                       "outbox of store partition %" PRId32
                       ": entry %s has output kind %d, which has no topic; dropped",
                       sp, e->id, e->kind);
                d->done = true;
                continue;
            }
            /* A mark goes to every partition of the members topic, a bundle of member records
             * to the one its header names; the rest by key. */
            int32_t part = e->kind == LP_OUT_MARK     ? c
                           : e->kind == LP_OUT_MEMBER ? meta_partition(e)
                                                      : RD_KAFKA_PARTITION_UA;
            produce_one(worker, e, d, part);
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
int lp_wk_outbox_round_start(lp_worker_t *worker) {
    size_t want = 0;
    /* A mark takes one delivery per partition of the members topic. */
    size_t per =
        worker->opts.outbox_batch * (size_t)(worker->members_parts > 1 ? worker->members_parts : 1);
    for (int32_t p = 0; p < worker->max_part; p++) {
        if (worker->parts[p].owned && worker->parts[p].outbox_dirty) {
            want += per;
        }
    }
    for (int32_t q = 0; q < worker->members_parts; q++) {
        if (worker->acct_dirty[q] && lp_acct_engine_owns(worker->opts.accounts, q)) {
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
    for (int32_t q = 0; q < worker->members_parts; q++) {
        if (worker->acct_dirty[q] && lp_acct_engine_owns(worker->opts.accounts, q) &&
            outbox_send(worker, LP_ACCOUNT_PARTITION_BASE + q, &worker->round_n) != LP_OK) {
            rc = LP_ERR;
        }
    }
    worker->round_active = worker->round_n > 0;
    worker->round_deadline_ms = lp_wk_mono_ms() + 5000;
    return rc;
}

bool lp_wk_outbox_round_delivered(const lp_worker_t *worker) {
    for (size_t i = 0; i < worker->round_n; i++) {
        if (!worker->deliveries[i].done) {
            return false;
        }
    }
    return true;
}

int lp_wk_outbox_round_finish(lp_worker_t *worker) {
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
            if (d->fanout > 1) {
                /* a mark: acknowledged once every partition of the members topic has it */
                bool all = true;
                for (int c = 0; c < d->fanout && j + (size_t)c < n; c++) {
                    const delivery_t *x = &worker->deliveries[j + (size_t)c];
                    all &= x->done && x->err == RD_KAFKA_RESP_ERR_NO_ERROR;
                }
                if (all) {
                    ids[nack++] = d->id;
                } else {
                    part_failed = true;
                }
                j += (size_t)d->fanout - 1;
                continue;
            }
            if (d->done && d->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ids[nack++] = d->id;
                if (d->event_ts > 0) {
                    lp_histogram_observe(&worker->handoff_latency,
                                         (double)(lp_wk_wall_ms() - d->event_ts) * 1e-3);
                }
            } else {
                part_failed = true;
            }
        }
        i = j;
        if (!sp_owned(worker, p)) {
            continue;
        }
        worker->produced += nack;
        int ack = nack > 0 ? worker->store->ops->outbox_ack(worker->store, p, sp_epoch(worker, p),
                                                            nack, ids)
                           : LP_OK;
        if (ack == LP_STORE_FENCED && p >= LP_ACCOUNT_PARTITION_BASE) {
            LP_LOG(LP_LOG_WARN, "worker",
                   "account partition %" PRId32 ": epoch is stale (another worker owns it)",
                   p - LP_ACCOUNT_PARTITION_BASE);
            worker->ack_fenced++;
            lp_acct_engine_revoke(worker->opts.accounts, p - LP_ACCOUNT_PARTITION_BASE);
            continue;
        }
        if (ack == LP_STORE_FENCED) {
            /* Another worker owns p now (we were a zombie): its records are theirs. */
            part_t *part = &worker->parts[p];
            LP_LOG(LP_LOG_WARN, "worker",
                   "partition %" PRId32 ": epoch is stale (another worker owns it; outbox "
                   "delete refused); dropping its uncommitted records",
                   p);
            worker->ack_fenced++;
            lp_wk_part_drop_pending(part);
            part->owned = false;
            part->fenced_at_ms = lp_wk_mono_ms();
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
            *dirty_flag(worker, p) = true;
        }
    }
    worker->round_active = false;
    worker->round_n = 0;
    return rc;
}

/* Synchronous delivery of every outbox (shutdown): rounds until nothing is left or time is up. */
int lp_wk_drain_outbox(lp_worker_t *worker, int timeout_ms) {
    int64_t deadline = lp_wk_mono_ms() + timeout_ms;
    for (;;) {
        if (!worker->round_active && lp_wk_outbox_round_start(worker) != LP_OK) {
            return LP_ERR;
        }
        if (!worker->round_active) {
            return LP_OK;
        }
        int left = (int)(deadline - lp_wk_mono_ms());
        rd_kafka_flush(worker->producer, left > 0 ? left : 0);
        if (lp_wk_outbox_round_finish(worker) != LP_OK) {
            return LP_ERR;
        }
        if (lp_wk_mono_ms() >= deadline) {
            return LP_ERR;
        }
    }
}
