/* The worker configuration table: every key of `leadpulse run`, its type, default, bounds,
 * environment variable and description. The loader (config_load.c), the dump and the reference
 * in docs/configuration.md (config_doc.c) are all driven by this one table. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_table.h"
#include "leadpulse/engine.h"
#include "leadpulse/registry.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "int fields are stored as int32_t");
_Static_assert(sizeof(lp_framing_t) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(lp_format_t) == sizeof(int), "enum fields are stored as int");

static const char *const input_formats[] = {"avro", "json", NULL};
static const char *const framings[] = {"confluent", "single_object", "raw", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const off_on[] = {"off", "on", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const false_true[] = {"false", "true", NULL};
static const char *const subject_strategies[] = {"topic", "record", NULL};
static const char *const redis_modes[] = {"standalone", "cluster", NULL};

/* privacy.handoff_fields: names of LP_HANDOFF_* bits, "all" or "none". */
static int check_handoff_fields(lp_config_t *config, const char *value, char *msg, size_t size) {
    static const char *const names[] = {"email",   "company", "region", "country",
                                        "segment", "persona", "title",  "owner"};
    unsigned mask = 0;
    if (strcmp(value, "all") == 0 || strcmp(value, "none") == 0) {
        config->handoff_fields_mask = value[0] == 'a' ? LP_HANDOFF_ALL : 0;
        return LP_OK;
    }
    for (const char *p = value; *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *name = p;
        while (len > 0 && *name == ' ') {
            name++;
            len--;
        }
        while (len > 0 && name[len - 1] == ' ') {
            len--;
        }
        int found = -1;
        for (int i = 0; i < 8; i++) {
            if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0) {
                found = i;
            }
        }
        if (found < 0) {
            snprintf(msg, size,
                     "\"%.*s\" is not a hand-off field (email, company, region, country, "
                     "segment, persona, title, owner; or all, none)",
                     (int)len, name);
            return LP_ERR;
        }
        mask |= 1u << found;
        p += strcspn(p, ",");
        if (*p == ',') {
            p++;
        }
    }
    config->handoff_fields_mask = mask;
    return LP_OK;
}

/* privacy.suppression_key: "" or 32 hex digits (128 bits). */
static int check_suppression_key(lp_config_t *config, const char *value, char *msg, size_t size) {
    static const uint8_t builtin[16] = {0x6c, 0x65, 0x61, 0x64, 0x70, 0x75, 0x6c, 0x73,
                                        0x65, 0x2d, 0x73, 0x75, 0x70, 0x70, 0x72, 0x73};
    if (value[0] == '\0') {
        memcpy(config->suppression_key_bytes, builtin, sizeof(builtin));
        return LP_OK;
    }
    if (strlen(value) != 32) {
        snprintf(msg, size, "must be 32 hex digits (128 bits), got %zu characters", strlen(value));
        return LP_ERR;
    }
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)value[2 * i]) || !isxdigit((unsigned char)value[2 * i + 1]) ||
            sscanf(value + 2 * i, "%2x", &v) != 1) {
            snprintf(msg, size, "must be 32 hex digits (128 bits)");
            return LP_ERR;
        }
        config->suppression_key_bytes[i] = (uint8_t)v;
    }
    return LP_OK;
}

/* "" or 1..8 comma-separated http(s):// base URLs. */
static int check_registry_url(lp_config_t *config, const char *value, char *msg, size_t size) {
    int n = 0;
    (void)config;
    for (const char *p = value; *p != '\0';) {
        size_t len = strcspn(p, ",");
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        if (len == 0) {
            snprintf(msg, size, "an empty URL in the list \"%s\"", value);
            return LP_ERR;
        }
        if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
            snprintf(msg, size,
                     "\"%.*s\" is not an http:// or https:// URL (several URLs: comma-separated)",
                     (int)len, p);
            return LP_ERR;
        }
        if (++n > LP_REGISTRY_URLS_MAX) {
            snprintf(msg, size, "at most %d URLs", LP_REGISTRY_URLS_MAX);
            return LP_ERR;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return LP_OK;
}

/* Kafka's own rule for topic names: 1..249 of [a-zA-Z0-9._-]. */
static int check_topic(lp_config_t *config, const char *value, char *msg, size_t size) {
    (void)config;
    for (const char *p = value; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
            snprintf(msg, size,
                     "\"%s\" is not a valid topic name; use letters, digits, '.', '_' "
                     "and '-'",
                     value);
            return LP_ERR;
        }
    }
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0) {
        snprintf(msg, size, "\"%s\" is not a valid topic name", value);
        return LP_ERR;
    }
    return LP_OK;
}

/* The prefix goes in front of the {partition} hash tag: braces would break the slot routing. */
static int check_prefix(lp_config_t *config, const char *value, char *msg, size_t size) {
    (void)config;
    for (const char *p = value; *p; p++) {
        if (!isgraph((unsigned char)*p) || *p == '{' || *p == '}') {
            snprintf(msg, size,
                     "must not contain spaces, control characters or braces (the "
                     "partition hash tag {p} follows it), got \"%s\"",
                     value);
            return LP_ERR;
        }
    }
    return LP_OK;
}

static int parse_port(const char *s, int *port) {
    char *end = NULL;
    long v;

    if (!isdigit((unsigned char)s[0])) {
        return LP_ERR;
    }
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535) {
        return LP_ERR;
    }
    *port = (int)v;
    return LP_OK;
}

/* "host:port", "[v6]:port"; port 0 asks the kernel for a free one (tests). */
static int check_listen(lp_config_t *config, const char *value, char *msg, size_t size) {
    const char *colon = strrchr(value, ':');
    int port = 0;

    (void)config;
    if (value[0] == '\0') {
        return LP_OK;
    }
    if (!colon || colon == value || parse_port(colon + 1, &port) != LP_OK) {
        snprintf(msg, size,
                 "must be host:port (port 0..65535), e.g. 127.0.0.1:9464, or \"\" to "
                 "turn the endpoint off; got \"%s\"",
                 value);
        return LP_ERR;
    }
    return LP_OK;
}

/* redis://[[user]:password@]host[:port][/db] -> the parts in config. */
static int check_one_redis_url(lp_config_t *config, const char *value, char *msg, size_t size) {
    static const char scheme[] = "redis://";
    const char *p, *at, *slash, *host_end, *port_colon = NULL;
    char port_buf[8];
    size_t n;

    config->redis_user[0] = config->redis_password[0] = '\0';
    config->redis_port = 6379;
    config->redis_db = 0;
    if (strncmp(value, "rediss://", 9) == 0) {
        snprintf(msg, size,
                 "TLS (rediss://) is not supported by hiredis 0.14; put a TLS proxy "
                 "such as stunnel in front of Redis and use redis://");
        return LP_ERR;
    }
    if (strncmp(value, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(msg, size, "must look like redis://[:password@]host:port[/db], got \"%s\"", value);
        return LP_ERR;
    }
    p = value + sizeof(scheme) - 1;
    slash = strchr(p, '/');
    if (!slash) {
        slash = p + strlen(p);
    }
    /* the password may itself contain '@': the last one before the path separates it */
    at = NULL;
    for (const char *q = p; q < slash; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(msg, size, "credentials must be :password@ or user:password@");
            return LP_ERR;
        }
        if ((size_t)(colon - p) >= sizeof(config->redis_user) ||
            (size_t)(at - colon - 1) >= sizeof(config->redis_password)) {
            snprintf(msg, size, "user or password too long");
            return LP_ERR;
        }
        memcpy(config->redis_user, p, (size_t)(colon - p));
        config->redis_user[colon - p] = '\0';
        memcpy(config->redis_password, colon + 1, (size_t)(at - colon - 1));
        config->redis_password[at - colon - 1] = '\0';
        p = at + 1;
    }
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(slash - p));
        if (!host_end) {
            snprintf(msg, size, "unterminated [IPv6] host");
            return LP_ERR;
        }
        port_colon = host_end + 1 < slash && host_end[1] == ':' ? host_end + 1 : NULL;
        p++;
    } else {
        port_colon = memchr(p, ':', (size_t)(slash - p));
        host_end = port_colon ? port_colon : slash;
    }
    n = (size_t)(host_end - p);
    if (n == 0 || n >= sizeof(config->redis_host)) {
        snprintf(msg, size, "needs a host, e.g. redis://127.0.0.1:6379");
        return LP_ERR;
    }
    memcpy(config->redis_host, p, n);
    config->redis_host[n] = '\0';
    if (port_colon) {
        n = (size_t)(slash - port_colon - 1);
        if (n == 0 || n >= sizeof(port_buf)) {
            snprintf(msg, size, "port must be 1..65535");
            return LP_ERR;
        }
        memcpy(port_buf, port_colon + 1, n);
        port_buf[n] = '\0';
        if (parse_port(port_buf, &config->redis_port) != LP_OK || config->redis_port == 0) {
            snprintf(msg, size, "port must be 1..65535, got \"%s\"", port_buf);
            return LP_ERR;
        }
    }
    if (*slash == '/' && slash[1] != '\0') {
        char *end = NULL;
        long db = strtol(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end != '\0' || db < 0 || db > 65535) {
            snprintf(msg, size, "database must be a number, e.g. redis://host:6379/0");
            return LP_ERR;
        }
        config->redis_db = (int)db;
    }
    return LP_OK;
}

/* One URL, or (redis.mode: cluster) a comma-separated list of seed nodes; the parts in config
 * are the first URL's, redis_nurls counts them and redis_db is the largest database named. */
static int check_redis_url(lp_config_t *config, const char *value, char *msg, size_t size) {
    char host[sizeof(config->redis_host)] = "";
    char user[sizeof(config->redis_user)] = "";
    char password[sizeof(config->redis_password)] = "";
    int port = 0, max_db = 0;

    config->redis_nurls = 0;
    for (const char *p = value;;) {
        size_t len = strcspn(p, ",");
        char one[LP_CONFIG_STR_MAX + 1];

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            snprintf(msg, size, "an empty URL in the list (several URLs: comma-separated)");
            return LP_ERR;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (check_one_redis_url(config, one, msg, size) != LP_OK) {
            if (config->redis_nurls > 0) {
                char why[LP_ERRSTR];
                snprintf(why, sizeof(why), "%s", msg);
                snprintf(msg, size, "URL %d of the list: %s", config->redis_nurls + 1, why);
            }
            return LP_ERR;
        }
        if (config->redis_db > max_db) {
            max_db = config->redis_db;
        }
        if (config->redis_nurls++ == 0) {
            memcpy(host, config->redis_host, sizeof(host));
            memcpy(user, config->redis_user, sizeof(user));
            memcpy(password, config->redis_password, sizeof(password));
            port = config->redis_port;
        }
        p += strcspn(p, ",");
        if (*p != ',') {
            break;
        }
        p++;
    }
    memcpy(config->redis_host, host, sizeof(host));
    memcpy(config->redis_user, user, sizeof(user));
    memcpy(config->redis_password, password, sizeof(password));
    config->redis_port = port;
    config->redis_db = max_db;
    return LP_OK;
}

#define F(field) offsetof(lp_config_t, field), sizeof(((lp_config_t *)0)->field)
#define STR(key, field, def, env, flags, check, desc)                                              \
    { key, LP_CT_STR, F(field), def, 0, 0, 0, 0, NULL, env, flags, check, desc }
#define INT(key, field, def, lo, hi, env, desc)                                                    \
    { key, LP_CT_INT, F(field), def, lo, hi, 0, 0, NULL, env, 0, NULL, desc }
#define MS(key, field, def, lo, hi, env, desc)                                                     \
    { key, LP_CT_MS, F(field), def, lo, hi, 0, 0, NULL, env, 0, NULL, desc }
#define ENUM(key, field, def, names, env, desc)                                                    \
    { key, LP_CT_ENUM, F(field), def, 0, 0, 0, 0, names, env, 0, NULL, desc }

#define DAY_MS 86400000LL

const lp_config_entry_t lp_config_table[] = {
    STR("kafka.brokers", brokers, "localhost:9092", "LEADPULSE_KAFKA_BROKERS", 0, NULL,
        "Kafka bootstrap servers (librdkafka `bootstrap.servers`), comma-separated host:port."),
    STR("kafka.group_id", group_id, "leadpulse", "LEADPULSE_KAFKA_GROUP_ID", 0, NULL,
        "Consumer group of the workers. All workers of one deployment share it."),
    STR("topics.engagement", topic_in[LP_EV_ENGAGEMENT], "engagement.events",
        "LEADPULSE_TOPICS_ENGAGEMENT", 0, check_topic,
        "Input: engagement events (EngagementEvent), keyed by lead id."),
    STR("topics.profiles", topic_in[LP_EV_PROFILE], "lead.profiles", "LEADPULSE_TOPICS_PROFILES", 0,
        check_topic,
        "Input: profile updates (LeadProfileUpdated), co-partitioned with engagement."),
    STR("topics.feedback", topic_in[LP_EV_FEEDBACK], "sales.feedback", "LEADPULSE_TOPICS_FEEDBACK",
        0, check_topic, "Input: sales feedback (SalesFeedback), co-partitioned with engagement."),
    STR("topics.mql", topic_mql, "leads.mql", "LEADPULSE_TOPICS_MQL", 0, check_topic,
        "Output: LeadQualified events."),
    STR("topics.stale", topic_stale, "leads.stale", "LEADPULSE_TOPICS_STALE", 0, check_topic,
        "Output: LeadStale events (SLA breach, inactivity, cooling)."),
    STR("topics.erased", topic_erased, "leads.erased", "LEADPULSE_TOPICS_ERASED", 0, check_topic,
        "Output: LeadErased events (a lead was erased on request; docs/privacy.md)."),
    STR("topics.members", topic_members, "leadpulse.members", "LEADPULSE_TOPICS_MEMBERS", 0,
        check_topic,
        "Internal, with `accounts` in the rules: member records from the lead partitions to the "
        "account partitions (stage 2), keyed by account. Create it with as many partitions as "
        "the input topics (docs/architecture.md, \"Accounts: the second stage\"); compaction "
        "off, retention at least a day."),
    STR("topics.mqa", topic_mqa, "leads.mqa", "LEADPULSE_TOPICS_MQA", 0, check_topic,
        "Output, with `accounts` in the rules: AccountQualified events, keyed by account key."),
    STR("topics.account_stale", topic_account_stale, "leads.account_stale",
        "LEADPULSE_TOPICS_ACCOUNT_STALE", 0, check_topic,
        "Output, with `accounts` in the rules: AccountStale events, keyed by account key."),
    STR("topics.dlq", topic_dlq, "leadpulse.dlq", "LEADPULSE_TOPICS_DLQ", 0, check_topic,
        "Output: dead letters (the original bytes, with the reason in headers)."),
    ENUM("format.engagement", input_format[LP_EV_ENGAGEMENT], "avro", input_formats,
         "LEADPULSE_FORMAT_ENGAGEMENT", "Encoding of the engagement topic."),
    ENUM("format.profiles", input_format[LP_EV_PROFILE], "avro", input_formats,
         "LEADPULSE_FORMAT_PROFILES", "Encoding of the profiles topic."),
    ENUM("format.feedback", input_format[LP_EV_FEEDBACK], "avro", input_formats,
         "LEADPULSE_FORMAT_FEEDBACK", "Encoding of the feedback topic."),
    ENUM("format.output_framing", output_framing, "confluent", framings,
         "LEADPULSE_FORMAT_OUTPUT_FRAMING",
         "Framing of the Avro records the worker writes: Confluent (magic byte + schema id), "
         "Avro single-object (fingerprint) or raw."),
    INT("schema_id.engagement", schema_ids[LP_SCHEMA_ENGAGEMENT], "1", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_ENGAGEMENT", "Schema Registry id of EngagementEvent."),
    INT("schema_id.profile", schema_ids[LP_SCHEMA_PROFILE], "2", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_PROFILE", "Schema Registry id of LeadProfileUpdated."),
    INT("schema_id.feedback", schema_ids[LP_SCHEMA_FEEDBACK], "3", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_FEEDBACK", "Schema Registry id of SalesFeedback."),
    INT("schema_id.qualified", schema_ids[LP_SCHEMA_QUALIFIED], "4", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_QUALIFIED", "Schema Registry id of LeadQualified (written)."),
    INT("schema_id.stale", schema_ids[LP_SCHEMA_STALE], "5", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_STALE", "Schema Registry id of LeadStale (written)."),
    INT("schema_id.erased", schema_ids[LP_SCHEMA_ERASED], "6", 1, INT32_MAX,
        "LEADPULSE_SCHEMA_ID_ERASED", "Schema Registry id of LeadErased (written)."),
    STR("schema_registry.url", registry_url, "", "LEADPULSE_SCHEMA_REGISTRY_URL", LP_CF_EMPTY_OK,
        check_registry_url,
        "Schema Registry base URL(s), comma-separated for failover (Confluent's API, e.g. "
        "`http://registry:8081`, or Apicurio's `.../apis/ccompat/v7`). Set: output schemas are "
        "registered (or looked up) at start and records are framed with the registry's ids; input "
        "records are read by the ids the registry gives (an evolved writer schema is resolved to "
        "leadpulse's; `schema_id.*` are then not used). \"\" = no registry: the fixed "
        "`schema_id.*`."),
    STR("schema_registry.username", registry_user, "", "LEADPULSE_SCHEMA_REGISTRY_USERNAME",
        LP_CF_EMPTY_OK, NULL, "HTTP basic auth user (Confluent Cloud: the API key); \"\" = none."),
    STR("schema_registry.password", registry_password, "", "LEADPULSE_SCHEMA_REGISTRY_PASSWORD",
        LP_CF_EMPTY_OK | LP_CF_SECRET, NULL,
        "HTTP basic auth password (API secret). Set it from the environment (a Secret), not the "
        "file."),
    STR("schema_registry.ca_file", registry_ca_file, "", "LEADPULSE_SCHEMA_REGISTRY_CA_FILE",
        LP_CF_EMPTY_OK, NULL,
        "PEM CA bundle that verifies an https:// registry, instead of the system's; \"\" = the "
        "system's."),
    MS("schema_registry.timeout_ms", registry_timeout_ms, "5000", 100, 600000,
       "LEADPULSE_SCHEMA_REGISTRY_TIMEOUT_MS",
       "Per request (connect and answer) to one registry URL; the next URL is tried after it."),
    ENUM("schema_registry.auto_register", registry_auto_register, "true", false_true,
         "LEADPULSE_SCHEMA_REGISTRY_AUTO_REGISTER",
         "true: register the output schemas at start (a registry that refuses one as incompatible "
         "stops the start); false: only look them up (they must be registered already, e.g. by a "
         "CI pipeline; a missing one stops the start)."),
    ENUM("schema_registry.subject_strategy", registry_subject_strategy, "topic", subject_strategies,
         "LEADPULSE_SCHEMA_REGISTRY_SUBJECT_STRATEGY",
         "Subject of each output schema: topic = `<topic>-value` (Confluent's "
         "TopicNameStrategy, the default of its serializers); record = the record's full name, "
         "e.g. `io.leadpulse.LeadQualified` (RecordNameStrategy)."),
    ENUM("redis.mode", redis_cluster, "standalone", redis_modes, "LEADPULSE_REDIS_MODE",
         "standalone: one Redis server (or a primary behind a stable endpoint). cluster: Redis "
         "Cluster; `redis.url` lists seed nodes, each partition's commands go to the master of "
         "its slot (docs/redis-layout.md, Redis Cluster)."),
    STR("redis.url", redis_url, "redis://127.0.0.1:6379", "LEADPULSE_REDIS_URL", LP_CF_SECRET,
        check_redis_url,
        "Redis server: `redis://[[user]:password@]host[:port][/db]`. With `redis.mode: cluster`, "
        "comma-separated seed nodes `redis://[[user]:password@]host:port,redis://host:port,...` "
        "(any live node will do; the first URL's credentials are used for every node; no /db: "
        "a cluster has database 0 only; escape a comma in a password as %2C). The password is "
        "masked in dumps; prefer the environment variable to keep it out of files."),
    STR("redis.prefix", redis_prefix, "lp", "LEADPULSE_REDIS_PREFIX", 0, check_prefix,
        "Prefix of every Redis key (`<prefix>:{<partition>}:...`)."),
    MS("redis.timeout_ms", redis_timeout_ms, "2000", 1, 600000, "LEADPULSE_REDIS_TIMEOUT_MS",
       "Connect and command timeout."),
    INT("redis.lead_buckets", redis_lead_buckets, "256", 1, 1048576, "LEADPULSE_REDIS_LEAD_BUCKETS",
        "Hashes each partition's leads are spread over (`<prefix>:{<partition>}:leads:<b>`), so "
        "that Redis keeps each in its compact listpack encoding: aim at about 100 leads per "
        "bucket (leads per partition / 100), with Redis's `hash-max-listpack-entries 512` and "
        "`hash-max-listpack-value 1024` (docs/redis-layout.md, Lead buckets). Every worker must "
        "use the same value. A partition stored with another count (or by a version before lead "
        "buckets) has its leads moved when a worker takes it."),
    STR("rules.path", rules_path, "config/rules.yaml", "LEADPULSE_RULES_PATH", 0, NULL,
        "Scoring rules file (docs/rules.md), relative to the working directory."),
    MS("rules.check_ms", rules_check_ms, "5000", 0, 3600000, "LEADPULSE_RULES_CHECK_MS",
       "How often the worker checks whether the rules file changed (its inode, size or "
       "modification time, following symlinks: a Kubernetes ConfigMap update swaps a symlink) and "
       "reloads it, as on SIGHUP. 0 = reload only on SIGHUP."),
    INT("batch.max_events", batch_max_events, "5000", 1, 1000000, "LEADPULSE_BATCH_MAX_EVENTS",
        "Most events applied in one batch (one atomic commit per partition). Also bounds the "
        "input held: a topic-partition is paused past four batches, resumed at two."),
    MS("batch.max_wait_ms", batch_max_wait_ms, "20", 0, 60000, "LEADPULSE_BATCH_MAX_WAIT_MS",
       "Longest wait to fill a batch before applying it."),
    INT("cache.max_leads", cache_max_leads, "200000", 1, 100000000, "LEADPULSE_CACHE_MAX_LEADS",
        "Leads kept in memory; a miss loads from Redis. Bounds the worker's memory."),
    MS("merge.grace_ms", merge_grace_ms, "20", 0, 60000, "LEADPULSE_MERGE_GRACE_MS",
       "The three input topics are applied merged by record timestamp. While one of them has "
       "nothing buffered, a record is held until an end probe (ListOffsets, one at a time, at "
       "most every grace/8, 2-25 ms, while records are held) sent this long after the record "
       "was appended finds that topic at the worker's position, so a record with an older "
       "timestamp still on its way on that topic is applied first. Assumes a record sent "
       "before another reaches the brokers at most this much later. A live record waits this "
       "long after its arrival plus one probe; a backlog is released this long after one "
       "probe. 0 = no hold and no probes (lowest latency, order across topics then depends on "
       "arrival)."),
    MS("timers.interval_ms", timers_interval_ms, "100", 10, 3600000, "LEADPULSE_TIMERS_INTERVAL_MS",
       "How often due SLA and inactivity timers are fired. Short passes often keep the records "
       "that arrive meanwhile from waiting behind a long one (1000 before: p99 at 20k events/s "
       "55 ms instead of 38, docs/benchmarks.md); a pass with nothing due is one `ZRANGEBYSCORE` "
       "per owned partition."),
    INT("timers.batch", timers_batch, "1000", 1, 1000000, "LEADPULSE_TIMERS_BATCH",
        "Most timers fired per partition and round."),
    INT("outbox.batch", outbox_batch, "1000", 1, 1000000, "LEADPULSE_OUTBOX_BATCH",
        "Most outbox entries produced per partition and round."),
    MS("shutdown.timeout_ms", shutdown_timeout_ms, "10000", 0, 600000,
       "LEADPULSE_SHUTDOWN_TIMEOUT_MS",
       "On SIGTERM: how long to finish the current batch and deliver the outbox."),
    STR("http.listen", http_listen, "127.0.0.1:9464", "LEADPULSE_HTTP_LISTEN", LP_CF_EMPTY_OK,
        check_listen,
        "HTTP endpoint (/metrics, /healthz, /readyz, /leads/<id>), host:port, on its own thread; "
        "\"\" turns it off. Keep it on 127.0.0.1 unless a metrics scraper or probe needs more."),
    ENUM("http.leads", http_leads, "off", off_on, "LEADPULSE_HTTP_LEADS",
         "on: serve GET /leads/<lead id> (the lead's stored state, with its email and company) "
         "from a read-only Redis connection of its own. Off by default: it shows personal data."),
    STR("http.token", http_token, "", "LEADPULSE_HTTP_TOKEN", LP_CF_EMPTY_OK | LP_CF_SECRET, NULL,
        "Bearer token /leads requires (Authorization: Bearer <token>); \"\" = none. Set it from "
        "the environment (a Secret), not the file."),
    MS("http.health_max_age_ms", http_health_max_age_ms, "30000", 1000, 3600000,
       "LEADPULSE_HTTP_HEALTH_MAX_AGE_MS",
       "/healthz answers 503 when the worker loop has not been alive for this long (it beats on "
       "every pass and while it waits out a Redis or Kafka outage)."),
    ENUM("log.level", log_level, "info", log_levels, "LEADPULSE_LOG_LEVEL", "Log verbosity."),
    ENUM("log.format", log_format, "text", log_formats, "LEADPULSE_LOG_FORMAT",
         "text: one line per entry (time, level, [component], message); json: one JSON object per "
         "line with ts, level, component, msg and, where they apply, partition, topic, offset "
         "(the record a line is about) and lead_id. Record contents are never logged."),
    MS("max_future_skew_ms", max_future_skew_ms, "86400000", 0, 365 * DAY_MS,
       "LEADPULSE_MAX_FUTURE_SKEW_MS",
       "Events stamped further than this in the future are dead-lettered (a wrong clock or unit "
       "would otherwise decay every other score of the lead to nothing)."),
    STR("privacy.handoff_fields", handoff_fields, "region,country,segment,persona,owner",
        "LEADPULSE_PRIVACY_HANDOFF_FIELDS", 0, check_handoff_fields,
        "Profile fields copied into LeadQualified and LeadStale, comma-separated, from email, "
        "company, region, country, segment, persona, title, owner; `all` or `none`. The others "
        "are written as null. The default is what routing a lead to a sales team needs, without "
        "the fields that identify the person (email, title) or their employer (company)."),
    MS("privacy.suppression_ttl_ms", suppression_ttl_ms, "0", 0, 100LL * 365 * DAY_MS,
       "LEADPULSE_PRIVACY_SUPPRESSION_TTL_MS",
       "How long an erased lead stays suppressed, in event time: its events dated before the "
       "erasure's time plus this are dropped (counted, not dead-lettered), later ones start it "
       "afresh. 0 = until `leadpulse unsuppress` lifts it. Durations such as `730d` work."),
    STR("privacy.suppression_key", suppression_key, "", "LEADPULSE_PRIVACY_SUPPRESSION_KEY",
        LP_CF_EMPTY_OK | LP_CF_SECRET, check_suppression_key,
        "32 hex digits: the key of the keyed hash (SipHash-2-4) that names suppression entries "
        "instead of the lead id. Set it from a Secret; every worker of a deployment needs the same "
        "key, and changing it forgets the existing entries. \"\" = a built-in key: entries then "
        "hold no lead id, but one could test a guessed id against them."),
    {"clock.offset_ms", LP_CT_INT, F(clock_offset_ms), "0", -3650 * DAY_MS, 3650 * DAY_MS, 0, 0,
     NULL, "LEADPULSE_CLOCK_OFFSET_MS", LP_CF_TEST_ONLY, NULL,
     "TESTS ONLY: shifts the worker's wall clock (timers) by this many ms."},
    {"clock.scale", LP_CT_DOUBLE, F(clock_scale), "1", 0, 0, 0.001, 1000000.0, NULL,
     "LEADPULSE_CLOCK_SCALE", LP_CF_TEST_ONLY, NULL,
     "TESTS ONLY: the worker's wall clock runs this many times faster than real time."},
};

const size_t lp_config_table_len = sizeof(lp_config_table) / sizeof(lp_config_table[0]);

_Static_assert(sizeof(lp_config_table) / sizeof(lp_config_table[0]) <= LP_CONFIG_KEYS_MAX,
               "raise LP_CONFIG_KEYS_MAX");

/* Properties the worker sets itself; a user value would break an invariant. */
const char *const lp_config_kafka_reserved[][2] = {
    {"bootstrap.servers", "use kafka.brokers"},
    {"metadata.broker.list", "use kafka.brokers"},
    {"group.id", "use kafka.group_id"},
    {"enable.auto.offset.store", "offsets are stored only after the batch is committed to Redis"},
    {"enable.idempotence", "effectively-once output needs the idempotent producer"},
    {"partition.assignment.strategy",
     "co-partitioning needs the range assignor, so one worker owns a lead on every topic"},
    {NULL, NULL},
};

void lp_config_format(const lp_config_t *config, const lp_config_entry_t *entry, char *buf,
                      size_t size) {
    const char *field = (const char *)config + entry->offset;
    int64_t v = 0;
    int iv = 0;
    int32_t i32 = 0;
    double d = 0;

    switch (entry->type) {
    case LP_CT_STR:
        snprintf(buf, size, "%s", field);
        break;
    case LP_CT_INT:
    case LP_CT_MS:
        if (entry->size == sizeof(int64_t)) {
            memcpy(&v, field, sizeof(v));
        } else {
            memcpy(&i32, field, sizeof(i32));
            v = i32;
        }
        snprintf(buf, size, "%" PRId64, v);
        break;
    case LP_CT_DOUBLE:
        memcpy(&d, field, sizeof(d));
        snprintf(buf, size, "%g", d);
        break;
    case LP_CT_ENUM:
        memcpy(&iv, field, sizeof(iv));
        snprintf(buf, size, "%s", entry->names[iv]);
        break;
    }
}
