/* The worker's metrics (the table in io/metrics.h) and what it publishes for other threads
 * (io/status.h): heartbeat, readiness, the metrics text. */
#include "io/worker_internal.h"

const char *const lp_wk_phase_names[PH__COUNT] = {"poll",   "load",   "apply",
                                                  "commit", "output", "other"};

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
static uint64_t acct_buffered(const lp_worker_t *worker) {
    uint64_t n = 0;
    for (int32_t q = 0; worker->opts.accounts != NULL && q < worker->members_parts; q++) {
        n += lp_acct_engine_buffered(worker->opts.accounts, q);
    }
    return n;
}

static double acct_watermark_lag(const lp_worker_t *worker) {
    int64_t low = INT64_MAX;
    for (int32_t q = 0; worker->opts.accounts != NULL && q < worker->members_parts; q++) {
        if (lp_acct_engine_owns(worker->opts.accounts, q)) {
            int64_t w = lp_acct_engine_watermark(worker->opts.accounts, q);
            low = w < low ? w : low;
        }
    }
    if (low == INT64_MAX || low == INT64_MIN) {
        return 0;
    }
    double lag = (double)(lp_worker_now_ms(worker) - low) * 1e-3;
    return lag > 0 ? lag : 0;
}

static void collect(void *ctx, lp_metric_id_t id, lp_metrics_out_t *out) {
    const lp_worker_t *worker = ctx;
    const lp_engine_stats_t *st = lp_engine_stats(worker->engine);
    const lp_acct_engine_stats_t *ast =
        worker->opts.accounts != NULL ? lp_acct_engine_stats(worker->opts.accounts) : NULL;
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
            lp_metrics_sample(out, id, lp_wk_phase_names[ph], (double)worker->phase_ns[ph] * 1e-9);
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
    case LP_M_END_PROBE_SECONDS:
        lp_metrics_hist(out, id, &worker->end_probe_seconds);
        return;
    case LP_M_BATCH_WAIT_SECONDS:
        lp_metrics_hist(out, id, &worker->batch_wait_seconds);
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
    case LP_M_ERASED:
        v = (double)st->erased;
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
    case LP_M_SUPPRESSED_EVENTS:
        v = (double)st->suppressed;
        break;
    case LP_M_ACCOUNT_MEMBER_RECORDS:
        v = (double)st->member_records;
        break;
    case LP_M_ACCOUNT_MEMBER_LATE:
        v = (double)st->member_late;
        break;
    case LP_M_ACCOUNT_RECORDS_APPLIED:
        v = ast != NULL ? (double)ast->applied : 0;
        break;
    case LP_M_ACCOUNT_QUALIFIED:
        v = ast != NULL ? (double)ast->qualified : 0;
        break;
    case LP_M_ACCOUNT_STALE:
        v = ast != NULL ? (double)ast->stale : 0;
        break;
    case LP_M_ACCOUNT_MALFORMED:
        v = (double)worker->acct_malformed;
        break;
    case LP_M_ACCOUNT_BUFFERED:
        v = (double)acct_buffered(worker);
        break;
    case LP_M_ACCOUNT_WATERMARK_LAG:
        v = acct_watermark_lag(worker);
        break;
    case LP_M_UNSUPPRESSED:
        v = (double)st->unsuppressed;
        break;
    case LP_M_SCHEMA_WAITS:
        v = (double)worker->schema_waits;
        break;
    case LP_M_STORE_ROUND_TRIPS:
        v = (double)worker->store->round_trips;
        break;
    case LP_M_REDIS_REDIRECTS:
        v = (double)worker->store->redirects;
        break;
    case LP_M_REDIS_SLOT_MAP_REFRESHES:
        v = (double)worker->store->slot_refreshes;
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
            for (int t = 0; t < LP_EV__COUNT && part->owned; t++) {
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
void lp_wk_publish_status(lp_worker_t *worker) {
    lp_status_t *status = worker->opts.status;
    if (status == NULL) {
        return;
    }
    lp_status_beat(status);
    int64_t now = lp_wk_mono_ms();
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
