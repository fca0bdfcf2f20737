/* The worker loop: poll, group by partition, apply through the engine (one atomic commit per
 * partition batch), produce the outbox with the idempotent producer, fire timers, store offsets.
 *
 * Co-partitioning: partition p of every input topic belongs to engine partition p (its Redis
 * keys carry {p}). The worker owns p only while it holds p of ALL input topics; the default
 * assignor is therefore `range`, the built-in assignor that keeps equal partition numbers of
 * co-partitioned topics on one member (cooperative-sticky does not). */
#include <sys/stat.h>

#include "io/worker_internal.h"

/* A partition's batch from lp_engine_begin to lp_engine_finish. */
typedef struct {
    int32_t p;
    lp_engine_batch_t *b;
    lp_engine_msg_t *msgs;
    size_t n;
    size_t take[LP_EV__COUNT];
    int64_t sent_ns;   /* when its commit went to the store */
    int64_t oldest_at; /* arrival (monotonic ms) of its earliest-arrived record */
} flight_t;

static int batch_done(lp_worker_t *worker, flight_t *f, int rc, int64_t now);

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

static void store_kafka_offsets(lp_worker_t *worker, const lp_engine_msg_t *msgs, size_t n) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(LP_EV__COUNT);
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

/* Chooses the next batch of partition p (io/merge.h: lp_merge_select, pure): a snapshot of
 * the partition in, the records to take out; the logs, metrics and probe requests here. */
static size_t merge_select(lp_worker_t *worker, int32_t p, size_t max, size_t take[LP_EV__COUNT],
                           const size_t *limit, int64_t now, lp_engine_msg_t *out,
                           int64_t *oldest_at) {
    part_t *part = &worker->parts[p];
    lp_merge_in_t in = {.limit = limit,
                        .max = max,
                        .now = now,
                        .grace_ms = worker->opts.merge_grace_ms,
                        .kafka_unsettled = now < worker->unsettled_until_ms};
    for (int t = 0; t < LP_EV__COUNT; t++) {
        int64_t lo = -1, hi = -1;
        in.q[t] = part->q[t] + part->qhead[t];
        in.nq[t] = part->qlen[t] - part->qhead[t];
        /* For when the merge has taken every buffered record of t: what may still come. */
        in.state[t] = limit == NULL ? lp_wk_topic_state(worker, p, t) : LP_TOPIC_CAUGHT_UP;
        in.hi[t] = rd_kafka_get_watermark_offsets(worker->consumer, worker->opts.in_topics[t], p,
                                                  &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR
                       ? hi
                       : -1;
    }
    lp_probe_view_t probes[LP_END_RING];
    if (in.grace_ms > 0 && limit == NULL) {
        lp_wk_positions(worker, p, in.next);
        in.nprobes = lp_merge_probes(worker->end_probes, worker->end_seq, &part->ends, probes);
        in.probes = probes;
    }
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
        lp_log_context(p, worker->opts.in_topics[t], part->expect[t]);
        LP_LOG(LP_LOG_ERROR, "worker",
               "partition %" PRId32 ": gave up waiting %" PRId64
               " ms for %s (%s, next offset %" PRId64
               "): records may be applied out of timestamp order",
               p, now - part->waiting_since_ms, worker->opts.in_topics[t],
               res.wait_state == LP_TOPIC_BEHIND ? "behind" : "position unknown", part->expect[t]);
        lp_log_context(p, NULL, -1);
    }
    if (res.ended_wait_ms > 100) {
        LP_LOG(LP_LOG_DEBUG, "worker",
               "partition %" PRId32 ": merge waited %" PRId64 " ms, last for %s (%s)", p,
               res.ended_wait_ms, worker->opts.in_topics[part->wait_topic],
               part->wait_state == LP_TOPIC_BEHIND ? "behind" : "position unknown");
    }
    worker->ends_wanted = worker->ends_wanted || res.want_probe;
    worker->early_releases += res.early;
    size_t at[LP_EV__COUNT] = {0};
    *oldest_at = now;
    for (size_t i = 0; i < res.n; i++) {
        int t = seq[i];
        const lp_rec_t *r = &in.q[t][at[t]++];
        *oldest_at = r->at < *oldest_at ? r->at : *oldest_at;
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
            .timestamp_ms = r->ts,
            .op = (lp_event_op_t)r->op,
        };
    }
    memcpy(take, res.take, sizeof(size_t) * LP_EV__COUNT);
    return res.n;
}

/* Room for two batches of records: one in flight, one being built. */
static int ensure_msgs(lp_worker_t *worker) {
    size_t need = 2 * lp_wk_batch_max(worker);
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
    f->n = merge_select(worker, p, lp_wk_batch_max(worker), f->take,
                        part->retry_pending ? part->retry_take : NULL, now, msgs, &f->oldest_at);
    if (f->n == 0) {
        return false;
    }
    int rc = lp_engine_begin(worker->engine, p, msgs, f->n, lp_wk_wall_ms(), &f->b);
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
        lp_status_set(worker->opts.status, LP_READY_REGISTRY, true);
        store_kafka_offsets(worker, f->msgs, f->n);
        lp_histogram_observe(&worker->batch_wait_seconds,
                             (double)(lp_wk_mono_ms() - f->oldest_at) * 1e-3);
        lp_wk_part_consume(part, f->take);
        part->backoff_ms = 0;
        part->outbox_dirty = true;
        return LP_OK;
    }
    if (rc == LP_STORE_MOVED) {
        LP_LOG(LP_LOG_WARN, "worker", "%s", lp_engine_errstr(worker->engine));
        worker->lost_writes++;
        lp_wk_retake_partition(worker, p, "the store lost writes");
        return LP_OK;
    }
    if (rc == LP_STORE_FENCED) {
        LP_LOG(LP_LOG_WARN, "worker", "%s; dropping its uncommitted records",
               lp_engine_errstr(worker->engine));
        lp_wk_part_drop_pending(part);
        part->owned = false;
        part->fenced_at_ms = now;
        return LP_OK;
    }
    /* A record of a schema id new to the worker and no registry to ask (nothing was applied,
     * nothing is dead-lettered), or store trouble: keep the records and retry with backoff. No
     * pause: the records in hand are bounded by lp_wk_backlog_check, and the merge must not trust
     * watermarks of a paused partition. */
    bool schema = rc == LP_ENGINE_SCHEMA_WAIT;
    memcpy(part->retry_take, f->take, sizeof(part->retry_take));
    part->retry_pending = true;
    if (schema) {
        worker->schema_waits++;
    } else {
        worker->store_errors++;
    }
    lp_status_set(worker->opts.status, schema ? LP_READY_REGISTRY : LP_READY_STORE, false);
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
        bool begun =
            batch_begin(worker, p, now, worker->msgs + (size_t)cur * lp_wk_batch_max(worker), f);
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

/* Asks for a reload (as SIGHUP does) when the rules file is another file than last time: another
 * inode (an editor's rename, a ConfigMap's symlink swap), size or modification time. A missing
 * file is not a change: the reload would fail, and the current rules stay. */
static void rules_file_check(lp_worker_t *worker, int64_t now) {
    if (worker->opts.rules_check_ms <= 0 || worker->opts.rules_path == NULL ||
        now < worker->next_rules_check_ms) {
        return;
    }
    worker->next_rules_check_ms = now + worker->opts.rules_check_ms;
    struct stat st;
    if (stat(worker->opts.rules_path, &st) != 0) {
        return;
    }
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    bool same = worker->rules_file.dev == (uint64_t)st.st_dev &&
                worker->rules_file.ino == (uint64_t)st.st_ino &&
                worker->rules_file.size == (int64_t)st.st_size &&
                worker->rules_file.mtime_ns == mtime_ns;
    if (worker->rules_file.known && !same && worker->opts.reload != NULL) {
        LP_LOG(LP_LOG_INFO, "worker", "rules file %s changed: reloading", worker->opts.rules_path);
        *worker->opts.reload = 1;
    }
    worker->rules_file.known = true;
    worker->rules_file.dev = (uint64_t)st.st_dev;
    worker->rules_file.ino = (uint64_t)st.st_ino;
    worker->rules_file.size = (int64_t)st.st_size;
    worker->rules_file.mtime_ns = mtime_ns;
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
    if (worker->opts.accounts != NULL) {
        lp_acct_engine_set_rules(worker->opts.accounts, rules);
    }
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
        for (int t = 0; t < LP_EV__COUNT && caught_up; t++) {
            caught_up = lp_wk_topic_caught_up(worker, p, t);
        }
        if (!caught_up) {
            continue;
        }
        lp_wk_acct_tick(worker, p, now);
        int64_t until = now;
        size_t fired = 0;
        do {
            int rc = lp_engine_fire_timers(worker->engine, p, until, &fired);
            if (rc == LP_STORE_MOVED) {
                worker->lost_writes++;
                lp_wk_retake_partition(worker, p, "the store lost writes");
                break;
            }
            if (rc == LP_STORE_FENCED) {
                part->owned = false;
                part->fenced_at_ms = lp_wk_mono_ms();
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
    if (lp_wk_mono_ms() >= worker->acct_restate_ms) {
        worker->acct_restate_ms = lp_wk_mono_ms() + ACCT_RESTATE_EVERY_MS;
    }
}

/* Phase 1: gather what is there now. Block only when there is nothing to do (up to
 * batch.max_wait_ms), or briefly while records are held (their grace, or a wait for another
 * topic): batches grow with the load, and a light load is not held back to fill them. Takes
 * everything librdkafka has in hand: its queue is one FIFO for every partition, and the merge of
 * one partition may need records behind many of another's; and librdkafka 2.0.2 stops fetching
 * for about a second once that queue holds queued.min.messages (librdkafka#2879). What we hold is
 * bounded by lp_wk_backlog_check's pauses instead. */
static void gather_input(lp_worker_t *worker) {
    int wait_ms = worker->opts.batch_max_wait_ms > 0 ? worker->opts.batch_max_wait_ms : 20;
    size_t got = 0;
    size_t held = worker->round_active ? 1 : 0; /* output in flight: come back soon */
    size_t owned = 0;
    for (int32_t p = 0; p < worker->max_part; p++) {
        held += worker->parts[p].npending;
        owned += worker->parts[p].owned;
    }
    size_t gather = lp_wk_held_max(worker) * (owned > 0 ? owned * LP_EV__COUNT : 1);
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
                worker->unsettled_until_ms = lp_wk_mono_ms() + UNSETTLED_MS;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        lp_wk_add_pending(worker, m);
        got++;
    }
}

/* Phase 2: a batch of every partition with records (partitions in retry wait for their
 * backoff; nothing is applied while output delivery fails: the records wait, bounded by
 * lp_wk_backlog_check's pauses). */
static void apply_input(lp_worker_t *worker, int64_t now) {
    process_partitions(worker, now);
    lp_wk_acct_steps(worker);
    for (int32_t p = 0; p < worker->max_part; p++) {
        if (worker->parts[p].owned) {
            lp_wk_backlog_check(worker, p);
        }
    }
}

/* Phase 3: deliver the outboxes, one round in flight; while delivery fails, input is held
 * (backpressure). */
static void deliver_output(lp_worker_t *worker, int64_t now) {
    int out_rc = LP_OK;
    bool out_done = false;
    if (worker->round_active) {
        rd_kafka_poll(worker->producer, 0);
        if (lp_wk_outbox_round_delivered(worker) || now >= worker->round_deadline_ms) {
            out_rc = lp_wk_outbox_round_finish(worker);
            out_done = true;
        }
    }
    if (!worker->round_active && out_rc == LP_OK &&
        (!worker->outbox_blocked || now >= worker->outbox_retry_ms)) {
        out_rc = lp_wk_outbox_round_start(worker);
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
}

/* Phase 4: timers at most once per interval; partitions lost to a stale epoch that Kafka still
 * gives us, taken back; fetches that stalled in the client, restarted. */
static void housekeeping(lp_worker_t *worker, int64_t now) {
    if (now >= worker->next_timers_ms) {
        fire_timers(worker);
        worker->next_timers_ms =
            now + (worker->opts.timers_interval_ms > 0 ? worker->opts.timers_interval_ms : 100);
    }
    for (int32_t p = 0; p < worker->max_part; p++) {
        part_t *part = &worker->parts[p];
        if (!part->owned && part->fenced_at_ms > 0 && now - part->fenced_at_ms > REFENCE_AFTER_MS &&
            part->assigned[0] && part->assigned[1] && part->assigned[2]) {
            lp_wk_retake_partition(worker, p, "re-fenced: Kafka still assigns it to us");
        }
    }
    if (now >= worker->next_stall_check_ms) {
        lp_wk_stall_check(worker, now);
        worker->next_stall_check_ms = now + 1000;
    }
    rules_file_check(worker, now);
}

/* Shutdown: finish the batch, drain the outbox, commit, leave the group. */
static int shut_down(lp_worker_t *worker) {
    int rc = LP_OK;
    LP_LOG(LP_LOG_INFO, "worker", "stopping: finishing the batch and draining the outbox");
    int64_t deadline = lp_wk_mono_ms() + worker->opts.shutdown_timeout_ms;
    for (int32_t p = 0; p < worker->max_part; p++) {
        if (worker->parts[p].npending > 0 && lp_wk_mono_ms() < deadline) {
            process_partition(worker, p, lp_wk_mono_ms());
        }
    }
    int left = (int)(deadline - lp_wk_mono_ms());
    if (left > 0 && lp_wk_drain_outbox(worker, left) != LP_OK) {
        rc = LP_ERR;
    }
    rd_kafka_commit(worker->consumer, NULL, 0);
    rd_kafka_consumer_close(worker->consumer);
    rd_kafka_flush(worker->producer, 1000);
    return rc;
}

/* The loop, as a list of phases (the shape of redis' aeMain); each phase's time goes to
 * leadpulse_loop_seconds_total{phase}. */
int lp_worker_run(lp_worker_t *worker) {
    while (!*worker->opts.stop) {
        reload_if_asked(worker);
        if (worker->opts.tick != NULL) {
            worker->opts.tick(worker->opts.tick_ctx);
        }
        lp_wk_publish_status(worker);
        phase_end(worker, PH_OTHER);
        gather_input(worker);
        phase_end(worker, PH_POLL);
        int64_t now = lp_wk_mono_ms();
        lp_wk_ends_tick(worker, now);
        apply_input(worker, now);
        /* A probe the merge asked for goes out now, not a loop later. */
        lp_wk_ends_tick(worker, lp_wk_mono_ms());
        phase_end(worker, PH_OTHER);
        deliver_output(worker, now);
        phase_end(worker, PH_OUTPUT);
        housekeeping(worker, now);
    }
    return shut_down(worker);
}
