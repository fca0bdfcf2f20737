/* The worker's input: records copied out of librdkafka into per-topic-partition queues, what a
 * topic with nothing buffered may still hold (topic_state), the bound on what is held (pause and
 * resume), and restarting a fetch that stalled in the client. */
#include "io/worker_internal.h"

/* What a tombstone asks (docs/privacy.md): header leadpulse.op "erase" (or none) erases the
 * lead, "unsuppress" lifts its suppression; another value is LP_OP_INVALID (dead-lettered). */
static uint8_t tombstone_op(rd_kafka_message_t *m) {
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "leadpulse.op", &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return LP_OP_ERASE;
    }
    if (v != NULL && len == 5 && memcmp(v, "erase", 5) == 0) {
        return LP_OP_ERASE;
    }
    if (v != NULL && len == 10 && memcmp(v, "unsuppress", 10) == 0) {
        return LP_OP_UNSUPPRESS;
    }
    return LP_OP_INVALID;
}

part_t *lp_wk_part_get(lp_worker_t *worker, int32_t p) {
    if (p < 0 || p >= LP_PARTITIONS_MAX) {
        return NULL;
    }
    if (p + 1 > worker->max_part) {
        worker->max_part = p + 1;
    }
    return &worker->parts[p];
}

size_t lp_wk_batch_max(const lp_worker_t *worker) {
    return worker->opts.batch_max_events ? worker->opts.batch_max_events : 5000;
}

size_t lp_wk_held_max(const lp_worker_t *worker) {
    size_t four = 4 * lp_wk_batch_max(worker);
    return four > HELD_MIN ? four : HELD_MIN;
}

/* librdkafka's pause or resume of topic t of p, nothing else. */
void lp_wk_tp_pause(lp_worker_t *worker, int32_t p, int t, bool pause) {
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
void lp_wk_tp_seek(lp_worker_t *worker, int32_t p, int t, int64_t offset) {
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
 * seeks: fewer of them, fewer chances; see also lp_wk_stall_check). */
void lp_wk_topic_pause(lp_worker_t *worker, int32_t p, int t, bool pause) {
    part_t *part = &worker->parts[p];
    lp_wk_tp_pause(worker, p, t, pause);
    part->tpaused[t] = pause;
    worker->input_pauses += pause;
    if (!pause) {
        part->settle_from_ms[t] = lp_wk_mono_ms();
        part->seen[t] = false;
        part->rx_at[t] = lp_wk_mono_ms();
    }
}

/* Bounded memory: a topic-partition whose held records exceed lp_wk_held_max (four batches, at
 * least 10,000) is paused after the pass until it is down to half; librdkafka then stops fetching
 * it. Half lasts longer than the fetch after the resume takes (at ~30,000 records/s per partition,
 * 300 ms: one fetch.wait.max.ms and a fetch), and the gap makes pauses rare. Only that topic: the
 * merge may be waiting for records of the others. */
/* Not at once in lp_wk_add_pending, mid-gather: librdkafka 2.0.2 does not fetch again the
 * records still queued when a topic-partition is paused mid-poll (docs/librdkafka-pitfalls.md). */
void lp_wk_backlog_check(lp_worker_t *worker, int32_t p) {
    part_t *part = &worker->parts[p];
    size_t bound = lp_wk_held_max(worker);
    for (int t = 0; t < LP_EV__COUNT; t++) {
        size_t held = part->qlen[t] - part->qhead[t];
        if (!part->tpaused[t] && held > bound) {
            lp_wk_topic_pause(worker, p, t, true);
        } else if (part->tpaused[t] && held <= bound / 2) {
            lp_wk_topic_pause(worker, p, t, false);
        }
    }
}

static void rec_free(lp_rec_t *r) {
    free(r->key != NULL ? r->key : r->value);
    r->key = r->value = NULL;
}

void lp_wk_part_drop_pending(part_t *part) {
    for (int t = 0; t < LP_EV__COUNT; t++) {
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

/* Whether topic t of partition p has more records to fetch, from the high watermark the consumer
 * last saw. A partition without a stored offset starts at the beginning (see lp_wk_on_assign), so
 * its position before the first record is the low watermark. */
lp_topic_state_t lp_wk_topic_state(lp_worker_t *worker, int32_t p, int t) {
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
     * unreachable, "nothing more to fetch" may just mean "nothing fetched yet". An
     * end-of-partition event is no such proof: one from before the assignment can still be in
     * the queue (taken as one, it made a rebalanced worker apply feedback before activities). */
    int64_t now = lp_wk_mono_ms();
    if (now < worker->unsettled_until_ms || part->tpaused[t]) {
        return next < hi ? LP_TOPIC_BEHIND : LP_TOPIC_UNKNOWN;
    }
    if (!part->seen[t]) {
        /* Nothing of t fetched since it was assigned, resumed or restarted: its cached watermark
         * may be left from an earlier assignment (librdkafka keeps it), and equal our position
         * while the broker holds more: another owner applied exactly what this worker once
         * fetched. Trusting it after a settling time (2 s, before) made a worker whose fetch of
         * a feedback partition started late apply that partition's later activities first (the
         * fencing itest: a LeadStale that replay does not emit). Only the broker says: an end
         * probe sent since then. Until it answers, the position is unknown. */
        int64_t end = -1;
        if (lp_wk_ends_since(worker, p, t, part->settle_from_ms[t], &end)) {
            return next >= (end > hi ? end : hi) ? LP_TOPIC_CAUGHT_UP : LP_TOPIC_BEHIND;
        }
        worker->ends_wanted = true;
        return next < hi ? LP_TOPIC_BEHIND : LP_TOPIC_UNKNOWN;
    }
    return next >= hi ? LP_TOPIC_CAUGHT_UP : LP_TOPIC_BEHIND;
}

bool lp_wk_topic_caught_up(lp_worker_t *worker, int32_t p, int t) {
    return lp_wk_topic_state(worker, p, t) == LP_TOPIC_CAUGHT_UP;
}

void lp_wk_part_consume(part_t *part, const size_t take[LP_EV__COUNT]) {
    for (int t = 0; t < LP_EV__COUNT; t++) {
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

void lp_wk_add_pending(lp_worker_t *worker, rd_kafka_message_t *m) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (lp_wk_acct_topic(worker, topic)) {
        lp_wk_acct_add(worker, m); /* stage 2: into its account partition's ordering buffer */
        return;
    }
    int t = lp_wk_topic_index(worker, topic);
    part_t *part = lp_wk_part_get(worker, m->partition);
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
    int64_t now = lp_wk_mono_ms();
    *r = (lp_rec_t){
        .offset = m->offset,
        .ts = ts < 0 ? 0 : ts,
        .at = now,
        .key = m->key != NULL ? buf : NULL,
        .value = m->payload != NULL ? buf + klen : NULL,
        .key_len = klen,
        .value_len = vlen,
        .op = m->payload == NULL ? tombstone_op(m) : LP_OP_APPLY,
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
    lp_wk_tp_pause(worker, p, t, false);
    lp_wk_tp_seek(worker, p, t, part->expect[t]);
    worker->fetch_restarts++;
    LP_LOG(LP_LOG_WARN, "worker",
           "%s [%" PRId32 "]: no record for %" PRId64 " ms though the broker holds offsets up to "
           "%" PRId64 " (next %" PRId64 "): fetch restarted",
           topic, p, now - part->rx_at[t], hi, part->expect[t]);
    part->rx_at[t] = now;
    part->seen[t] = false;
    part->settle_from_ms[t] = now;
}

void lp_wk_stall_check(lp_worker_t *worker, int64_t now) {
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
        for (int t = 0; t < LP_EV__COUNT; t++) {
            busy_at = part->rx_at[t] > busy_at ? part->rx_at[t] : busy_at;
        }
        bool busy = now - busy_at < STALL_MS;
        for (int t = 0; t < LP_EV__COUNT && part->owned; t++) {
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
