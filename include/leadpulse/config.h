/* leadpulse: the worker's configuration (`leadpulse run`), from a YAML file and LEADPULSE_* env
 * vars.
 *
 * One table in src/config/config.c describes every key (name, type, default, bounds, env var,
 * description); the loader, the environment overrides, lp_config_dump() and the reference in
 * docs/configuration.md (lp_config_doc_markdown()) all come from it. Precedence: built-in default,
 * then the file, then the environment. Keys under `kafka:` that are not in the table, and env vars
 * LEADPULSE_KAFKA_<PROPERTY> (dots as underscores, upper case), are passed to librdkafka unchanged.
 */
#ifndef LEADPULSE_CONFIG_H
#define LEADPULSE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "leadpulse/codec.h" /* lp_framing_t, lp_schema_kind_t */
#include "leadpulse/common.h"

#define LP_CONFIG_STR_MAX 1024  /* broker lists, paths, URLs */
#define LP_CONFIG_TOPIC_MAX 249 /* Kafka's own limit on topic names */
#define LP_CONFIG_KEYS_MAX 64   /* table size bound (checked at compile time) */

/* A librdkafka property, passed through unchanged. */
typedef struct {
    char *name;
    char *value;
} lp_config_kv_t;

/* Where a key's effective value came from (lp_config_dump shows it). */
typedef enum { LP_SRC_DEFAULT = 0, LP_SRC_FILE, LP_SRC_ENV } lp_config_source_t;

typedef struct {
    char source[256]; /* file loaded, "" for defaults only */

    /* kafka */
    char brokers[LP_CONFIG_STR_MAX + 1]; /* bootstrap.servers */
    char group_id[LP_CONFIG_TOPIC_MAX + 1];
    char topic_in[LP_EV__COUNT][LP_CONFIG_TOPIC_MAX + 1]; /* by lp_event_kind_t */
    char topic_mql[LP_CONFIG_TOPIC_MAX + 1];
    char topic_stale[LP_CONFIG_TOPIC_MAX + 1];
    char topic_dlq[LP_CONFIG_TOPIC_MAX + 1];
    char topic_erased[LP_CONFIG_TOPIC_MAX + 1];
    char topic_members[LP_CONFIG_TOPIC_MAX + 1];       /* stage 1 -> stage 2 (accounts) */
    char topic_mqa[LP_CONFIG_TOPIC_MAX + 1];           /* AccountQualified */
    char topic_account_stale[LP_CONFIG_TOPIC_MAX + 1]; /* AccountStale */
    lp_format_t input_format[LP_EV__COUNT];
    lp_framing_t output_framing;
    int32_t schema_ids[LP_SCHEMA__COUNT]; /* Schema Registry ids, by lp_schema_kind_t */

    /* schema registry: "" = none (fixed schema_ids) */
    char registry_url[LP_CONFIG_STR_MAX + 1]; /* comma-separated base URLs */
    char registry_user[256];
    char registry_password[256];
    char registry_ca_file[LP_CONFIG_STR_MAX + 1];
    int registry_timeout_ms;
    int registry_auto_register;    /* 0 false, 1 true */
    int registry_subject_strategy; /* 0 topic (<topic>-value), 1 record (full name) */

    /* redis: the URL (list) as given, and the first URL's parts */
    int redis_cluster; /* redis.mode: 0 standalone, 1 cluster */
    int redis_nurls;   /* URLs in redis_url (several: cluster seed nodes) */
    char redis_url[LP_CONFIG_STR_MAX + 1];
    char redis_host[256];
    int redis_port;
    char redis_user[128];     /* "" = none (Redis 6 ACL user) */
    char redis_password[256]; /* "" = no AUTH */
    int redis_db;             /* the largest database any URL names */
    char redis_prefix[64];
    int redis_timeout_ms;
    int redis_lead_buckets; /* lead buckets per partition (docs/redis-layout.md) */

    char rules_path[LP_CONFIG_STR_MAX + 1];

    int batch_max_events;
    int batch_max_wait_ms;
    int merge_grace_ms; /* hold records while a topic is idle */
    int cache_max_leads;
    int timers_interval_ms;
    int rules_check_ms;
    int timers_batch;
    int outbox_batch;
    int shutdown_timeout_ms;
    char http_listen[256];          /* "host:port"; "" = no HTTP endpoint */
    int http_leads;                 /* 1: serve /leads/<id> */
    char http_token[256];           /* bearer token /leads requires; "" = none */
    int64_t http_health_max_age_ms; /* /healthz fails when the loop is stuck longer */
    int log_level;
    int log_format; /* 0 text, 1 json */ /* lp_log_level_t */
    int64_t max_future_skew_ms;          /* events further ahead are dead-lettered */

    /* privacy (docs/privacy.md) */
    char handoff_fields[256];     /* as given: comma-separated names, "all" or "none" */
    unsigned handoff_fields_mask; /* LP_HANDOFF_* bits of handoff_fields */
    int64_t suppression_ttl_ms;   /* 0 = until lifted */
    char suppression_key[64];     /* 32 hex digits; "" = the built-in key */
    uint8_t suppression_key_bytes[16];

    /* TESTS ONLY (refused unless LEADPULSE_ALLOW_TEST_CLOCK=1): the worker's wall clock is
     * start + offset_ms + scale * elapsed, so tests can fire day-long SLA timers in seconds. */
    int64_t clock_offset_ms;
    double clock_scale;

    /* librdkafka pass-through, in file order, then environment order (an env var replaces a file
     * entry of the same name in place). */
    size_t nkafka;
    lp_config_kv_t *kafka;

    lp_config_source_t origin[LP_CONFIG_KEYS_MAX]; /* per table entry */
} lp_config_t;

/* Loads path (NULL = built-in defaults only), then applies LEADPULSE_* environment overrides and
 * validates everything. On error returns NULL and writes "file:line: key: message" (or
 * "env VAR: key: message") into errstr. The caller owns the result: lp_config_destroy(). */
lp_config_t *lp_config_load(const char *path, char *errstr, size_t errstr_size);
/* Same, from a buffer; `name` is used in messages. */
lp_config_t *lp_config_load_buffer(const char *name, const char *buf, size_t len, char *errstr,
                                   size_t errstr_size);
void lp_config_destroy(lp_config_t *config);

/* Value of a pass-through librdkafka property, or NULL. The pointer lives as long as config. */
const char *lp_config_kafka_get(const lp_config_t *config, const char *name);

/* Prints the effective configuration, one `key = value  # origin` line per key, then the kafka
 * pass-through. Passwords (redis.url, *password*, *secret* properties) are masked. */
void lp_config_dump(const lp_config_t *config, FILE *out);

/* Prints the configuration reference in Markdown (docs/configuration.md is this output). */
void lp_config_doc_markdown(FILE *out);

/* Parses a duration such as "30d", "12h", "15m", "90s", "500ms" or "1h30m" ("0"/"off" = 0).
 * Returns LP_OK, or LP_ERR with *why (may be NULL) set to a static explanation. */
int lp_config_parse_duration(const char *s, int64_t *out_ms, const char **why);

#endif
