/* The worker's metrics, from one table: /metrics (Prometheus text format 0.0.4, HELP and TYPE
 * for every family) and docs/metrics.md are both made from LP_METRICS, and a unit test keeps
 * the docs in step. Pure: renders into a buffer, no I/O. */
#ifndef LEADPULSE_IO_METRICS_H
#define LEADPULSE_IO_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { LP_MT_COUNTER, LP_MT_GAUGE, LP_MT_HISTOGRAM } lp_metric_type_t;

/* X(id, name, type, label, unit, help): label is the one label of the family ("" if none). */
#define LP_METRICS(X)                                                                              \
    X(BUILD_INFO, "leadpulse_build_info", GAUGE, "version", "",                                    \
      "Always 1; the version label is the running leadpulse release.")                             \
    X(RULES_INFO, "leadpulse_rules_info", GAUGE, "model", "",                                      \
      "Always 1; the model label is the scoring model in use, as model_id/model_version.")         \
    X(RULES_RELOADS, "leadpulse_rules_reloads_total", COUNTER, "result", "",                       \
      "Rules reloads (SIGHUP, or the rules file changed: rules.check_ms), by result (ok: the new " \
      "rules are in use; failed: the "                                                             \
      "file was refused and the old rules stay).")                                                 \
    X(RULES_LAST_RELOAD_OK, "leadpulse_rules_last_reload_success", GAUGE, "", "",                  \
      "1 if the last rules reload succeeded or there was none, 0 if it failed.")                   \
    X(EVENTS, "leadpulse_events_total", COUNTER, "", "",                                           \
      "Input records processed: applied, duplicate or dead-lettered.")                             \
    X(APPLIED, "leadpulse_events_applied_total", COUNTER, "", "",                                  \
      "Input events applied to a lead.")                                                           \
    X(DUPLICATES, "leadpulse_events_duplicate_total", COUNTER, "", "",                             \
      "Redelivered events ignored (their event id was among the lead's remembered ids).")          \
    X(DEAD_LETTERS, "leadpulse_dead_letters_total", COUNTER, "", "",                               \
      "Input records sent to the dead-letter topic with their reason.")                            \
    X(QUALIFIED, "leadpulse_qualified_total", COUNTER, "", "", "LeadQualified hand-offs emitted.") \
    X(STALE, "leadpulse_stale_total", COUNTER, "reason", "",                                       \
      "LeadStale hand-offs emitted, by reason (sla_breached, inactive, cooled).")                  \
    X(ERASED, "leadpulse_erased_total", COUNTER, "", "",                                           \
      "Leads erased on request (LeadErased hand-offs committed).")                                 \
    X(REJECTIONS, "leadpulse_rejections_total", COUNTER, "reason", "",                             \
      "Sales rejections and recycles applied, by reason code.")                                    \
    X(BATCHES, "leadpulse_batches_total", COUNTER, "", "",                                         \
      "Partition batches committed to the store.")                                                 \
    X(COMMIT_FAILURES, "leadpulse_commit_failures_total", COUNTER, "", "",                         \
      "Batch commits that failed and were retried.")                                               \
    X(FENCED, "leadpulse_fenced_total", COUNTER, "", "",                                           \
      "Commits and outbox deletes refused because another worker took the partition (zombie).")    \
    X(CACHE_HITS, "leadpulse_cache_hits_total", COUNTER, "", "",                                   \
      "Leads found in the worker's lead cache.")                                                   \
    X(CACHE_MISSES, "leadpulse_cache_misses_total", COUNTER, "", "",                               \
      "Leads loaded from the store.")                                                              \
    X(TIMERS_FIRED, "leadpulse_timers_fired_total", COUNTER, "", "",                               \
      "Lead timers (SLA, cooling, inactivity) fired by the worker's clock.")                       \
    X(PRODUCED, "leadpulse_produced_total", COUNTER, "", "",                                       \
      "Output records (hand-offs and dead letters) delivered to Kafka.")                           \
    X(DELIVERY_FAILURES, "leadpulse_delivery_failures_total", COUNTER, "", "",                     \
      "Output records Kafka did not accept; they stay in the outbox and are sent again.")          \
    X(STORE_ERRORS, "leadpulse_store_errors_total", COUNTER, "", "",                               \
      "Store (Redis) calls that failed: commits, outbox reads and deletes, retried with backoff.") \
    X(SUPPRESSED_EVENTS, "leadpulse_suppressed_events_total", COUNTER, "", "",                     \
      "Events dropped because their lead was erased and is suppressed (docs/privacy.md); never "   \
      "dead-lettered.")                                                                            \
    X(UNSUPPRESSED, "leadpulse_unsuppressed_total", COUNTER, "", "",                               \
      "Suppressions of erased leads lifted by `leadpulse unsuppress` requests.")                   \
    X(SCHEMA_WAITS, "leadpulse_schema_registry_waits_total", COUNTER, "", "",                      \
      "Batches held back because a record carried a schema id new to the worker and no Schema "    \
      "Registry answered; retried with backoff, nothing dead-lettered. Alert on a steady rise.")   \
    X(STORE_ROUND_TRIPS, "leadpulse_store_round_trips_total", COUNTER, "", "",                     \
      "Store (Redis) round trips.")                                                                \
    X(REDIS_REDIRECTS, "leadpulse_redis_redirects_total", COUNTER, "", "",                         \
      "Redis Cluster MOVED and ASK replies followed (redis.mode: cluster). A burst during a "      \
      "resharding or failover is normal; a steady rate means the slot map keeps going stale.")     \
    X(REDIS_SLOT_MAP_REFRESHES, "leadpulse_redis_slot_map_refreshes_total", COUNTER, "", "",       \
      "Redis Cluster slot maps fetched (CLUSTER SLOTS): at start, after MOVED, CLUSTERDOWN or a "  \
      "node that stopped answering.")                                                              \
    X(STORE_LOST_WRITES, "leadpulse_store_lost_writes_total", COUNTER, "", "",                     \
      "Partitions taken again from the store because it came back behind what it had "             \
      "acknowledged (a Redis crash or failover lost writes). Alert on any increase.")              \
    X(REBALANCES, "leadpulse_rebalances_total", COUNTER, "", "",                                   \
      "Consumer group rebalances seen by this worker.")                                            \
    X(MERGE_WAIT_TIMEOUTS, "leadpulse_merge_wait_timeouts_total", COUNTER, "", "",                 \
      "Times the input merge gave up waiting for a topic after 60 s while Kafka answered: "        \
      "records may have been applied out of order. Alert on any increase.")                        \
    X(FETCH_RESTARTS, "leadpulse_fetch_restarts_total", COUNTER, "", "",                           \
      "Topic-partitions whose fetch had stalled in the Kafka client and was restarted.")           \
    X(INPUT_PAUSES, "leadpulse_input_pauses_total", COUNTER, "", "",                               \
      "Topic-partitions paused because too many of their records were held.")                      \
    X(END_PROBES, "leadpulse_end_probes_total", COUNTER, "", "",                                   \
      "End-offset requests the merge sent while it held records.")                                 \
    X(END_PROBE_ERRORS, "leadpulse_end_probe_errors_total", COUNTER, "", "",                       \
      "End-offset requests that failed (records held by the merge wait for the next answer).")     \
    X(BATCH_WAIT_SECONDS, "leadpulse_batch_wait_seconds", HISTOGRAM, "", "seconds",                \
      "From the arrival in the worker of a batch's earliest-arrived record to the batch's "        \
      "commit: the merge's hold and waits, the loop's turn, apply and the store's commit "         \
      "(retries included). With the hand-off latency, it tells the worker's part from the rest.")  \
    X(END_PROBE_SECONDS, "leadpulse_end_probe_seconds", HISTOGRAM, "", "seconds",                  \
      "How long the brokers took to answer an end probe (a held record waits for one).")           \
    X(MERGE_EARLY_RELEASES, "leadpulse_merge_early_releases_total", COUNTER, "", "",               \
      "Records an end probe released from the merge's grace hold before their grace from "         \
      "arrival had passed (a backlog).")                                                           \
    X(ACCOUNT_MEMBER_RECORDS, "leadpulse_account_member_records_total", COUNTER, "", "",           \
      "Accounts, stage 1: member records and leaves sent to the members topic (one per applied "   \
      "event of a lead in an account, two when it moves).")                                        \
    X(ACCOUNT_MEMBER_LATE, "leadpulse_account_member_records_late_total", COUNTER, "", "",         \
      "Accounts, stage 1: member records ordered at their partition's progress, not their lead's " \
      "time (the event was more than accounts.lateness behind; docs/rules.md).")                   \
    X(ACCOUNT_RECORDS_APPLIED, "leadpulse_account_records_applied_total", COUNTER, "", "",         \
      "Accounts, stage 2: member records applied to accounts (re-read copies not counted).")       \
    X(ACCOUNT_QUALIFIED, "leadpulse_account_qualified_total", COUNTER, "", "",                     \
      "Accounts, stage 2: AccountQualified hand-offs committed.")                                  \
    X(ACCOUNT_STALE, "leadpulse_account_stale_total", COUNTER, "", "",                             \
      "Accounts, stage 2: AccountStale hand-offs committed.")                                      \
    X(ACCOUNT_MALFORMED, "leadpulse_account_records_malformed_total", COUNTER, "", "",             \
      "Accounts, stage 2: members topic records that did not decode (skipped, logged).")           \
    X(ACCOUNT_BUFFERED, "leadpulse_account_buffered_records", GAUGE, "", "records",                \
      "Accounts, stage 2: member records held until every lead partition's mark passes them "      \
      "(about accounts.lateness of the stream).")                                                  \
    X(ACCOUNT_WATERMARK_LAG, "leadpulse_account_watermark_lag_seconds", GAUGE, "", "seconds",      \
      "Accounts, stage 2: the worker's clock minus the lowest watermark of its account "           \
      "partitions (0 without one). Grows when a lead partition sends no mark (not owned, stuck): " \
      "account hand-offs wait for it.")                                                            \
    X(CONSUMER_LAG, "leadpulse_consumer_lag_records", GAUGE, "topic,partition", "records",         \
      "Records of an owned input topic-partition not applied yet: its high watermark (as last "    \
      "fetched) minus the next offset to apply. Alert when it keeps growing.")                     \
    X(STORED_OFFSET, "leadpulse_stored_offset", GAUGE, "topic,partition", "",                      \
      "Next offset to apply of an owned input topic-partition (what Redis holds once committed).") \
    X(PARTITIONS_OWNED, "leadpulse_partitions_owned", GAUGE, "", "",                               \
      "Input partitions this worker owns.")                                                        \
    X(LOOP_SECONDS, "leadpulse_loop_seconds_total", COUNTER, "phase", "seconds",                   \
      "Time of the main loop by phase (poll: waiting for records, load, apply, commit: waiting "   \
      "for Redis, output, other).")                                                                \
    X(BATCH_APPLY_SECONDS, "leadpulse_batch_apply_seconds", HISTOGRAM, "", "seconds",              \
      "Time to apply one partition batch to its leads (engine, no I/O).")                          \
    X(COMMIT_SECONDS, "leadpulse_store_commit_seconds", HISTOGRAM, "", "seconds",                  \
      "Time from sending a batch's atomic commit to the store to its reply.")                      \
    X(HANDOFF_LATENCY, "leadpulse_handoff_latency_seconds", HISTOGRAM, "", "seconds",              \
      "From a hand-off's event time (the timestamp of the record that triggered it, or its "       \
      "timer's deadline) to the broker's acknowledgement of the hand-off record.")                 \
    X(RSS_BYTES, "leadpulse_process_resident_memory_bytes", GAUGE, "", "bytes",                    \
      "Resident memory of the worker process.")

#define LP_METRIC_ID(id, name, type, label, unit, help) LP_M_##id,
typedef enum { LP_METRICS(LP_METRIC_ID) LP_M__COUNT } lp_metric_id_t;
#undef LP_METRIC_ID

typedef struct {
    const char *name;
    lp_metric_type_t type;
    const char *label; /* "" when the family has no label */
    const char *unit;
    const char *help;
} lp_metric_def_t;

extern const lp_metric_def_t lp_metric_defs[LP_M__COUNT];

/* A histogram with fixed bucket bounds (seconds, LP_HIST_BUCKETS of them, +Inf implied). */
#define LP_HIST_BUCKETS 18
extern const double lp_hist_bounds[LP_HIST_BUCKETS];
typedef struct {
    uint64_t bucket[LP_HIST_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t count;
    double sum;
} lp_histogram_t;

void lp_histogram_observe(lp_histogram_t *h, double v);

/* Rendering: lp_metrics_render walks the table in order, writes each family's HELP and TYPE and
 * asks `collect` for its samples, which it writes with lp_metrics_sample / lp_metrics_hist. */
typedef struct lp_metrics_out lp_metrics_out_t;
typedef void (*lp_metrics_collect_fn)(void *ctx, lp_metric_id_t id, lp_metrics_out_t *out);

/* Returns the length written (the text is cut at a line when buf is too small; NUL-terminated). */
size_t lp_metrics_render(char *buf, size_t size, lp_metrics_collect_fn collect, void *ctx);
void lp_metrics_sample(lp_metrics_out_t *out, lp_metric_id_t id, const char *label_value,
                       double value);
/* A sample of a family with two labels ("a,b" in the table). */
void lp_metrics_sample2(lp_metrics_out_t *out, lp_metric_id_t id, const char *value_a,
                        const char *value_b, double value);
void lp_metrics_hist(lp_metrics_out_t *out, lp_metric_id_t id, const lp_histogram_t *h);

/* docs/metrics.md: the reference table, made from LP_METRICS. */
void lp_metrics_doc_markdown(FILE *out);

#endif
