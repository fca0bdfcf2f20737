/* leadpulse CLI commands (src/main.c dispatches to them). */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "leadpulse/account_stage.h"
#include "leadpulse/config.h"
#include "leadpulse/engine.h"
#include "leadpulse/registry.h"

int lp_cmd_replay(int argc, char **argv);
int lp_cmd_check_config(int argc, char **argv);
int lp_cmd_run(int argc, char **argv);
int lp_cmd_inspect(int argc, char **argv);
int lp_cmd_produce(int argc, char **argv);
int lp_cmd_health(int argc, char **argv);
int lp_cmd_erase(int argc, char **argv);
int lp_cmd_cluster_place(int argc, char **argv);
int lp_cmd_unsuppress(int argc, char **argv);
int lp_cmd_repartition(int argc, char **argv);

/* Parses "1764064800000" (ms) or "2026-11-25T10:00:00Z" / "...T10:00:00.123Z". LP_OK or LP_ERR. */
int lp_cli_parse_time(const char *s, int64_t *ms);

/* The Schema Registry client of config (schema_registry.*). NULL with errstr when unusable. */
lp_registry_t *lp_cli_registry_new(const lp_config_t *config, char *errstr, size_t size);

/* The codec with the registry's ids for the schema kinds in the bit mask kinds (1 << kind):
 * each registered (schema_registry.auto_register) or looked up under its subject; ids of the
 * others are -1; unknown input ids are fetched from reg. NULL with *rc LP_ERR when no registry
 * answered, another rc when a retry would not help (errstr says why). */
lp_avro_codec_t *lp_cli_registry_codec(const lp_config_t *config, lp_registry_t *reg,
                                       unsigned kinds, int32_t ids[LP_SCHEMA__COUNT], int *rc,
                                       char *errstr, size_t size);

/* A client configuration for config's brokers: bootstrap.servers, then the name/value pairs of
 * set (NULL-terminated, may be NULL), then the kafka.* pass-through but group.*,
 * partition.assignment.strategy, auto.offset.reset and names starting with skip_prefix (may be
 * NULL). NULL with errstr. */
rd_kafka_conf_t *lp_cli_kafka_conf(const lp_config_t *config, const char *const *set,
                                   const char *skip_prefix, char *errstr, size_t size);

/* An idempotent producer to config's brokers (kafka.* pass-through applied); each failed
 * delivery increments *failed. NULL with errstr. */
rd_kafka_t *lp_cli_producer(const lp_config_t *config, uint64_t *failed, char *errstr, size_t size);

/* Queues an erasure (op LP_OP_ERASE) or unsuppress request for lead_id: a tombstone keyed by it
 * on the profiles topic, timestamped ts_ms, header leadpulse.op (docs/privacy.md). */
int lp_cli_send_request(rd_kafka_t *rk, const lp_config_t *config, const char *lead_id,
                        int64_t ts_ms, lp_event_op_t op);

/* replay_accounts.c: `replay`'s stage 2. A value of the engine's members outbox (a mark, a
 * record or a bundle) into the ordering stage; the records the watermark (or at_least, when
 * later) releases applied and their hand-offs printed to out; the summary line. stage NULL:
 * accounts off (take fails, the others do nothing). LP_OK or LP_ERR (said on stderr). */
int lp_replay_accounts_take(lp_acct_stage_t *stage, const uint8_t *value, size_t len);
int lp_replay_accounts_release(lp_acct_stage_t *stage, int64_t at_least, FILE *out);
void lp_replay_accounts_summary(const lp_acct_stage_t *stage, const lp_engine_stats_t *st,
                                FILE *out);

#endif
