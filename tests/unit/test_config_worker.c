/* The worker configuration: defaults, file and environment overrides, kafka pass-through,
 * rejection of unknown keys, bounds, masking, and the generated reference being in sync. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config_table.h" /* the table itself: every key is checked below */
#include "leadpulse/config.h"

extern char **environ;

static const char *source_dir(void) {
    const char *dir = getenv("LP_SOURCE_DIR");
    return dir && *dir ? dir : LP_SOURCE_DIR;
}

/* Each test starts from an environment without LEADPULSE_* variables. */
static int clear_env(void **state) {
    char name[256];
    bool again = true;

    (void)state;
    while (again) {
        again = false;
        for (char **ep = environ; *ep; ep++) {
            const char *eq = strchr(*ep, '=');
            size_t len = eq ? (size_t)(eq - *ep) : strlen(*ep);
            if (strncmp(*ep, "LEADPULSE_", 10) == 0 && len < sizeof(name)) {
                memcpy(name, *ep, len);
                name[len] = '\0';
                unsetenv(name); /* changes environ: rescan */
                again = true;
                break;
            }
        }
    }
    return 0;
}

static lp_config_t *load_str(const char *yaml, char *err, size_t size) {
    return lp_config_load_buffer("t.yaml", yaml, strlen(yaml), err, size);
}

static void expect_error(const char *yaml, const char *want_prefix) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config = load_str(yaml, err, sizeof(err));

    if (config || strncmp(err, want_prefix, strlen(want_prefix)) != 0) {
        print_error("yaml:\n%s\nwant \"%s...\"\ngot  \"%s\"\n", yaml, want_prefix, err);
        lp_config_destroy(config);
        fail();
    }
}

static int entry_index(const char *name) {
    for (size_t i = 0; i < lp_config_table_len; i++) {
        if (strcmp(lp_config_table[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static char *dump(const lp_config_t *config) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    lp_config_dump(config, out);
    fclose(out);
    return text;
}

static void test_defaults(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config = lp_config_load(NULL, err, sizeof(err));

    (void)state;
    assert_non_null(config);
    assert_string_equal(config->source, "");
    assert_string_equal(config->brokers, "localhost:9092");
    assert_string_equal(config->group_id, "leadpulse");
    assert_string_equal(config->topic_in[LP_EV_ENGAGEMENT], "engagement.events");
    assert_string_equal(config->topic_in[LP_EV_PROFILE], "lead.profiles");
    assert_string_equal(config->topic_in[LP_EV_FEEDBACK], "sales.feedback");
    assert_string_equal(config->topic_mql, "leads.mql");
    assert_string_equal(config->topic_stale, "leads.stale");
    assert_string_equal(config->topic_erased, "leads.erased");
    assert_string_equal(config->topic_dlq, "leadpulse.dlq");
    for (int i = 0; i < LP_EV__COUNT; i++) {
        assert_int_equal(config->input_format[i], LP_FORMAT_AVRO);
    }
    assert_int_equal(config->output_framing, LP_FRAMING_CONFLUENT);
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        assert_int_equal(config->schema_ids[k], k + 1);
    }
    assert_string_equal(config->redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(config->redis_host, "127.0.0.1");
    assert_int_equal(config->redis_port, 6379);
    assert_int_equal(config->redis_db, 0);
    assert_string_equal(config->redis_password, "");
    assert_string_equal(config->redis_prefix, "lp");
    assert_int_equal(config->redis_timeout_ms, 2000);
    assert_string_equal(config->rules_path, "config/rules.yaml");
    assert_int_equal(config->batch_max_events, 5000);
    assert_int_equal(config->batch_max_wait_ms, 20);
    assert_int_equal(config->cache_max_leads, 200000);
    assert_int_equal(config->timers_interval_ms, 100);
    assert_int_equal(config->timers_batch, 1000);
    assert_int_equal(config->outbox_batch, 1000);
    assert_int_equal(config->shutdown_timeout_ms, 10000);
    assert_string_equal(config->http_listen, "127.0.0.1:9464");
    assert_int_equal(config->log_level, LP_LOG_INFO);
    assert_int_equal(config->max_future_skew_ms, 86400000);
    assert_int_equal(config->clock_offset_ms, 0);
    assert_true(config->clock_scale == 1.0);
    assert_int_equal(config->nkafka, 0);
    for (size_t i = 0; i < lp_config_table_len; i++) {
        assert_int_equal(config->origin[i], LP_SRC_DEFAULT);
    }
    lp_config_destroy(config);
    lp_config_destroy(NULL);
}

static void test_table_is_consistent(void **state) {
    char want[128];

    (void)state;
    for (size_t i = 0; i < lp_config_table_len; i++) {
        const lp_config_entry_t *e = &lp_config_table[i];
        size_t n = (size_t)snprintf(want, sizeof(want), "LEADPULSE_%s", e->name);
        for (size_t k = 10; k < n; k++) {
            want[k] = want[k] == '.' ? '_' : (char)toupper((unsigned char)want[k]);
        }
        assert_string_equal(e->env, want);
        assert_true(strlen(e->desc) > 10);
        assert_null(strchr(e->desc, '|')); /* would break the Markdown table */
        assert_int_equal(entry_index(e->name), (int)i);
    }
}

static void test_yaml_overrides(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config;

    (void)state;
    config = load_str("kafka:\n"
                      "  brokers: b1:9092,b2:9092\n"
                      "  security.protocol: SASL_SSL\n"
                      "  sasl:\n"
                      "    mechanism: PLAIN\n"
                      "    username: lp\n"
                      "  socket.keepalive.enable: true\n"
                      "topics: {engagement: eng, dlq: my.dlq}\n"
                      "format:\n"
                      "  profiles: json\n"
                      "  output_framing: single_object\n"
                      "schema_id: {stale: 42}\n"
                      "redis: {url: \"redis://cache.internal:6380/3\", prefix: lp-test}\n"
                      "batch: {max_events: 100, max_wait_ms: 5s}\n"
                      "http: {listen: \"\"}\n"
                      "log: {level: debug}\n"
                      "max_future_skew_ms: 2h\n",
                      err, sizeof(err));
    if (!config) {
        print_error("%s\n", err);
    }
    assert_non_null(config);
    assert_string_equal(config->source, "t.yaml");
    assert_string_equal(config->brokers, "b1:9092,b2:9092");
    assert_string_equal(config->topic_in[LP_EV_ENGAGEMENT], "eng");
    assert_string_equal(config->topic_in[LP_EV_PROFILE], "lead.profiles");
    assert_string_equal(config->topic_dlq, "my.dlq");
    assert_int_equal(config->input_format[LP_EV_PROFILE], LP_FORMAT_JSON);
    assert_int_equal(config->input_format[LP_EV_ENGAGEMENT], LP_FORMAT_AVRO);
    assert_int_equal(config->output_framing, LP_FRAMING_SINGLE_OBJECT);
    assert_int_equal(config->schema_ids[LP_SCHEMA_STALE], 42);
    assert_int_equal(config->schema_ids[LP_SCHEMA_QUALIFIED], 4);
    assert_string_equal(config->redis_host, "cache.internal");
    assert_int_equal(config->redis_port, 6380);
    assert_int_equal(config->redis_db, 3);
    assert_string_equal(config->redis_prefix, "lp-test");
    assert_int_equal(config->batch_max_events, 100);
    assert_int_equal(config->batch_max_wait_ms, 5000);
    assert_string_equal(config->http_listen, "");
    assert_int_equal(config->log_level, LP_LOG_DEBUG);
    assert_int_equal(config->max_future_skew_ms, 2 * 3600000);
    assert_int_equal(config->origin[entry_index("batch.max_events")], LP_SRC_FILE);
    assert_int_equal(config->origin[entry_index("cache.max_leads")], LP_SRC_DEFAULT);

    /* pass-through: in file order, nested keys joined with dots, table keys not included */
    assert_int_equal(config->nkafka, 4);
    assert_string_equal(config->kafka[0].name, "security.protocol");
    assert_string_equal(config->kafka[0].value, "SASL_SSL");
    assert_string_equal(config->kafka[1].name, "sasl.mechanism");
    assert_string_equal(config->kafka[2].name, "sasl.username");
    assert_string_equal(config->kafka[3].name, "socket.keepalive.enable");
    assert_string_equal(lp_config_kafka_get(config, "sasl.username"), "lp");
    assert_null(lp_config_kafka_get(config, "brokers"));
    lp_config_destroy(config);

    /* an empty file means all defaults */
    config = load_str("# nothing but a comment\n", err, sizeof(err));
    assert_non_null(config);
    assert_int_equal(config->batch_max_events, 5000);
    lp_config_destroy(config);
}

static void test_env_overrides(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config;

    (void)state;
    setenv("LEADPULSE_BATCH_MAX_EVENTS", "77", 1);
    setenv("LEADPULSE_KAFKA_BROKERS", "envbroker:9092", 1);
    setenv("LEADPULSE_REDIS_URL", "redis://:pw@10.0.0.5", 1);
    setenv("LEADPULSE_FORMAT_FEEDBACK", "json", 1);
    setenv("LEADPULSE_TIMERS_INTERVAL_MS", "2s", 1);
    setenv("LEADPULSE_KAFKA_SASL_USERNAME", "from-env", 1);
    setenv("LEADPULSE_KAFKA_SASL_PASSWORD", "hunter2", 1);
    config = load_str("batch: {max_events: 100, max_wait_ms: 7}\n"
                      "kafka:\n  sasl.username: from-file\n  client.id: lp-1\n",
                      err, sizeof(err));
    if (!config) {
        print_error("%s\n", err);
    }
    assert_non_null(config);
    assert_int_equal(config->batch_max_events, 77);         /* env beats file */
    assert_int_equal(config->batch_max_wait_ms, 7);         /* file beats default */
    assert_string_equal(config->brokers, "envbroker:9092"); /* a table key, not pass-through */
    assert_string_equal(config->redis_host, "10.0.0.5");
    assert_int_equal(config->redis_port, 6379);
    assert_string_equal(config->redis_password, "pw");
    assert_int_equal(config->input_format[LP_EV_FEEDBACK], LP_FORMAT_JSON);
    assert_int_equal(config->timers_interval_ms, 2000);
    assert_int_equal(config->origin[entry_index("batch.max_events")], LP_SRC_ENV);
    assert_int_equal(config->origin[entry_index("batch.max_wait_ms")], LP_SRC_FILE);
    /* env replaces the file's value in place, and adds new properties after the file's */
    assert_int_equal(config->nkafka, 3);
    assert_string_equal(config->kafka[0].name, "sasl.username");
    assert_string_equal(config->kafka[0].value, "from-env");
    assert_string_equal(config->kafka[1].name, "client.id");
    assert_string_equal(config->kafka[2].name, "sasl.password");
    assert_string_equal(config->kafka[2].value, "hunter2");
    assert_null(lp_config_kafka_get(config, "brokers"));
    lp_config_destroy(config);

    /* defaults-only load applies the environment too */
    config = lp_config_load(NULL, err, sizeof(err));
    assert_non_null(config);
    assert_int_equal(config->batch_max_events, 77);
    lp_config_destroy(config);

    setenv("LEADPULSE_BATCH_MAX_EVENTS", "0", 1);
    config = lp_config_load(NULL, err, sizeof(err));
    assert_null(config);
    assert_string_equal(err, "env LEADPULSE_BATCH_MAX_EVENTS: batch.max_events: must be between "
                             "1 and 1000000, got 0");
    unsetenv("LEADPULSE_BATCH_MAX_EVENTS");

    setenv("LEADPULSE_BATCH_MAX_EVENT", "10", 1);
    assert_null(lp_config_load(NULL, err, sizeof(err)));
    assert_string_equal(err, "env LEADPULSE_BATCH_MAX_EVENT: unknown configuration variable; did "
                             "you mean LEADPULSE_BATCH_MAX_EVENTS?; see docs/configuration.md");
    unsetenv("LEADPULSE_BATCH_MAX_EVENT");

    /* variables of other components are not ours to judge */
    setenv("LEADPULSE_SCHEMAS_DIR", "/tmp", 1);
    setenv("LEADPULSE_CONFIG", "/etc/leadpulse.yaml", 1);
    config = lp_config_load(NULL, err, sizeof(err));
    assert_non_null(config);
    lp_config_destroy(config);

    setenv("LEADPULSE_KAFKA_ENABLE_IDEMPOTENCE", "false", 1);
    assert_null(lp_config_load(NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "env LEADPULSE_KAFKA_ENABLE_IDEMPOTENCE: kafka.enable.idempotence: "
                                "is set by the worker itself"));
}

static void test_unknown_keys(void **state) {
    (void)state;
    expect_error("kafka: {brokers: x}\nbatch:\n  max_event: 10\n",
                 "t.yaml:3: batch.max_event: unknown key; did you mean `batch.max_events`?");
    expect_error("log: {level: info}\nbogus: 1\n",
                 "t.yaml:2: bogus: unknown key; see docs/configuration.md");
    expect_error("topics:\n  engagment: x\n",
                 "t.yaml:2: topics.engagment: unknown key; did you mean `topics.engagement`?");
    expect_error("batch: 5\n", "t.yaml:1: batch: is a section: must be a mapping");
    expect_error("batch:\n  max_events: [1, 2]\n",
                 "t.yaml:2: batch.max_events: must be a single value, got a list");
    expect_error("batch:\n  max_events: 1\n  max_events: 2\n",
                 "t.yaml:3: batch.max_events: duplicate key (first at line 2)");
    expect_error("kafka:\n  sasl.mechanisms: [PLAIN]\n",
                 "t.yaml:2: kafka.sasl.mechanisms: librdkafka properties take a single value");
    expect_error("kafka:\n  group.id: other\n",
                 "t.yaml:2: kafka.group.id: is set by the worker itself (use kafka.group_id)");
    expect_error("kafka:\n  bootstrap.servers: other:9092\n",
                 "t.yaml:2: kafka.bootstrap.servers: is set by the worker itself (use "
                 "kafka.brokers)");
    expect_error("- a\n- b\n", "t.yaml:1: (top level): must be a mapping");
    expect_error("log: {level: [x\n", "t.yaml:");
}

static void test_bounds_and_types(void **state) {
    (void)state;
    expect_error("\nbatch: {max_events: 0}\n",
                 "t.yaml:2: batch.max_events: must be between 1 and 1000000, got 0");
    expect_error("batch: {max_events: 1000001}\n",
                 "t.yaml:1: batch.max_events: must be between 1 and 1000000, got 1000001");
    expect_error("batch: {max_events: ten}\n",
                 "t.yaml:1: batch.max_events: must be a whole number, got \"ten\"");
    expect_error("batch: {max_events: 10s}\n", "t.yaml:1: batch.max_events: must be a whole "
                                               "number");
    expect_error("batch: {max_wait_ms: 2m}\n",
                 "t.yaml:1: batch.max_wait_ms: must be between 0 and 60000 ms, got 120000");
    expect_error("shutdown: {timeout_ms: -5}\n",
                 "t.yaml:1: shutdown.timeout_ms: must be between 0 and 600000 ms, got -5");
    expect_error("schema_id: {engagement: 0}\n",
                 "t.yaml:1: schema_id.engagement: must be between 1 and 2147483647");
    expect_error("format: {engagement: xml}\n",
                 "t.yaml:1: format.engagement: must be one of avro, json, got \"xml\"");
    expect_error("format: {output_framing: confluen}\n",
                 "t.yaml:1: format.output_framing: must be one of confluent, single_object, raw, "
                 "got \"confluen\"; did you mean confluent?");
    expect_error("log: {level: verbose}\n", "t.yaml:1: log.level: must be one of error, warn, "
                                            "info, debug");
    expect_error("kafka: {brokers: \"\"}\n", "t.yaml:1: kafka.brokers: must not be empty");
    expect_error("topics: {mql: \"leads mql\"}\n",
                 "t.yaml:1: topics.mql: \"leads mql\" is not a valid topic name");
    expect_error("topics:\n  stale: engagement.events\n",
                 "t.yaml:2: topics.stale: \"engagement.events\" is also topics.engagement; every "
                 "input and output topic must be distinct");
    expect_error("redis: {url: \"localhost:6379\"}\n",
                 "t.yaml:1: redis.url: must look like redis://");
    expect_error("redis: {url: \"rediss://h:6379\"}\n",
                 "t.yaml:1: redis.url: TLS (rediss://) is not supported");
    expect_error("redis: {url: \"redis://h:99999\"}\n", "t.yaml:1: redis.url: port must be");
    expect_error("redis: {url: \"redis://h:6379/x\"}\n", "t.yaml:1: redis.url: database must");
    expect_error("redis: {prefix: \"lp{x}\"}\n", "t.yaml:1: redis.prefix: must not contain");
    /* Redis Cluster: seed lists need the mode, and a cluster has database 0 only. */
    expect_error("redis: {url: \"redis://a:7000,redis://b:7001\"}\n",
                 "t.yaml:1: redis.url: several URLs are Redis Cluster seed nodes: set "
                 "redis.mode: cluster");
    expect_error("redis:\n  mode: cluster\n  url: \"redis://a:7000,redis://b:7001/3\"\n",
                 "t.yaml:3: redis.url: names a database (/N); a Redis Cluster has database 0 "
                 "only");
    expect_error("redis: {mode: cluster, url: \"redis://a:7000,,redis://b:1\"}\n",
                 "t.yaml:1: redis.url: an empty URL in the list");
    expect_error("redis: {mode: cluster, url: \"redis://a:7000, b:7001\"}\n",
                 "t.yaml:1: redis.url: URL 2 of the list: must look like redis://");
    expect_error("redis: {mode: sharded}\n",
                 "t.yaml:1: redis.mode: must be one of standalone, cluster");
    expect_error("http: {listen: localhost}\n", "t.yaml:1: http.listen: must be host:port");
    expect_error("http: {listen: \"h:70000\"}\n", "t.yaml:1: http.listen: must be host:port");

    char *big = malloc(LP_CONFIG_STR_MAX + 64);
    assert_non_null(big);
    memset(big, 'a', LP_CONFIG_STR_MAX + 64);
    memcpy(big, "rules: {path: ", 14);
    memcpy(big + 14 + LP_CONFIG_STR_MAX + 1, "}\n", 3);
    expect_error(big, "t.yaml:1: rules.path: is 1025 characters long; at most 1024");
    free(big);
}

static void test_redis_url_parts(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config;

    (void)state;
    config = load_str("redis: {url: \"redis://app:p@ss:w@rd@[::1]:7000/12\"}\n", err, sizeof(err));
    if (!config) {
        print_error("%s\n", err);
    }
    assert_non_null(config);
    assert_string_equal(config->redis_user, "app");
    assert_string_equal(config->redis_password, "p@ss:w@rd");
    assert_string_equal(config->redis_host, "::1");
    assert_int_equal(config->redis_port, 7000);
    assert_int_equal(config->redis_db, 12);
    assert_int_equal(config->redis_cluster, 0);
    assert_int_equal(config->redis_nurls, 1);
    lp_config_destroy(config);

    /* A cluster's seeds: the parts are the first URL's (its credentials serve every node). */
    config = load_str("redis:\n  mode: cluster\n"
                      "  url: \"redis://u:pw@10.0.0.1:7000, redis://10.0.0.2:7001,redis://h3\"\n",
                      err, sizeof(err));
    if (!config) {
        print_error("%s\n", err);
    }
    assert_non_null(config);
    assert_int_equal(config->redis_cluster, 1);
    assert_int_equal(config->redis_nurls, 3);
    assert_string_equal(config->redis_host, "10.0.0.1");
    assert_int_equal(config->redis_port, 7000);
    assert_string_equal(config->redis_user, "u");
    assert_string_equal(config->redis_password, "pw");
    assert_int_equal(config->redis_db, 0);
    lp_config_destroy(config);
}

static void test_test_clock_gate(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config;

    (void)state;
    expect_error("log: {level: info}\nclock:\n  scale: 3600\n",
                 "t.yaml:3: clock.scale: is for tests only (it makes timers fire early) and is "
                 "refused unless LEADPULSE_ALLOW_TEST_CLOCK=1");
    /* the defaults, written out, are fine */
    config = load_str("clock: {scale: 1, offset_ms: 0}\n", err, sizeof(err));
    assert_non_null(config);
    lp_config_destroy(config);
    setenv("LEADPULSE_CLOCK_OFFSET_MS", "-1000", 1);
    assert_null(lp_config_load(NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "env LEADPULSE_CLOCK_OFFSET_MS: clock.offset_ms: is for tests"));

    setenv("LEADPULSE_ALLOW_TEST_CLOCK", "1", 1);
    config = load_str("clock:\n  scale: 3600\n", err, sizeof(err));
    assert_non_null(config);
    assert_true(config->clock_scale == 3600.0);
    assert_int_equal(config->clock_offset_ms, -1000);
    lp_config_destroy(config);
    expect_error("clock: {scale: 0}\n", "t.yaml:1: clock.scale: must be between 0.001 and 1e+06");
}

static void test_masking(void **state) {
    char err[LP_ERRSTR] = "";
    lp_config_t *config;
    char *text;

    (void)state;
    setenv("LEADPULSE_KAFKA_SASL_PASSWORD", "hunter2", 1);
    config = load_str("redis: {url: \"redis://:s3cret@cache:6380/2\"}\n"
                      "kafka:\n  sasl.username: lp\n  ssl.key.password: k3y\n"
                      "  sasl.oauthbearer.client.secret: 0auth\n",
                      err, sizeof(err));
    assert_non_null(config);
    assert_string_equal(config->redis_password, "s3cret");
    text = dump(config);
    assert_non_null(strstr(text, "# leadpulse configuration (file t.yaml)\n"));
    assert_non_null(strstr(text, "\nredis.url = redis://:***@cache:6380/2  # file\n"));
    assert_non_null(strstr(text, "\nkafka.sasl.username = lp\n"));
    assert_non_null(strstr(text, "\nkafka.ssl.key.password = ***\n"));
    assert_non_null(strstr(text, "\nkafka.sasl.password = ***\n"));
    assert_non_null(strstr(text, "\nbatch.max_events = 5000  # default\n"));
    assert_non_null(strstr(text, "\nhttp.listen = 127.0.0.1:9464  # default\n"));
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "k3y"));
    assert_null(strstr(text, "0auth"));
    /* every key is in the dump */
    for (size_t i = 0; i < lp_config_table_len; i++) {
        char want[128];
        snprintf(want, sizeof(want), "\n%s = ", lp_config_table[i].name);
        assert_non_null(strstr(text, want));
    }
    free(text);
    lp_config_destroy(config);

    setenv("LEADPULSE_REDIS_URL", "redis://admin:topsecret@h", 1);
    config = lp_config_load(NULL, err, sizeof(err));
    assert_non_null(config);
    text = dump(config);
    assert_non_null(strstr(text, "redis.url = redis://admin:***@h  # LEADPULSE_REDIS_URL\n"));
    assert_null(strstr(text, "topsecret"));
    free(text);
    lp_config_destroy(config);
}

static char *read_all(const char *path) {
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (!fp) {
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    return buf;
}

static void test_doc_in_sync(void **state) {
    char path[1024], *committed, *generated = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&generated, &len);

    (void)state;
    assert_non_null(out);
    lp_config_doc_markdown(out);
    fclose(out);
    for (size_t i = 0; i < lp_config_table_len; i++) {
        assert_non_null(strstr(generated, lp_config_table[i].env));
    }
    snprintf(path, sizeof(path), "%s/docs/configuration.md", source_dir());
    committed = read_all(path);
    if (!committed || strcmp(committed, generated) != 0) {
        const char *bin = getenv("LP_BINARY_DIR");
        char fresh[1024];
        FILE *fp;
        snprintf(fresh, sizeof(fresh), "%s/configuration.md", bin && *bin ? bin : ".");
        fp = fopen(fresh, "wb");
        if (fp) {
            fputs(generated, fp);
            fclose(fp);
        }
        print_error("%s is out of date with the table in src/config/config.c;\n"
                    "regenerated text written: cp %s %s\n",
                    path, fresh, path);
        free(committed);
        free(generated);
        fail();
    }
    free(committed);
    free(generated);
}

/* The commented example loads, and documents every key with its environment variable. */
static void test_example_config(void **state) {
    char path[1024], err[LP_ERRSTR] = "", *text;
    lp_config_t *config, *defaults;

    (void)state;
    snprintf(path, sizeof(path), "%s/config/leadpulse.yaml", source_dir());
    config = lp_config_load(path, err, sizeof(err));
    if (!config) {
        print_error("%s\n", err);
    }
    assert_non_null(config);
    defaults = lp_config_load(NULL, err, sizeof(err));
    assert_non_null(defaults);
    text = read_all(path);
    assert_non_null(text);
    for (size_t i = 0; i < lp_config_table_len; i++) {
        char a[LP_CONFIG_STR_MAX + 64], b[LP_CONFIG_STR_MAX + 64];
        if (!strstr(text, lp_config_table[i].env)) {
            print_error("config/leadpulse.yaml does not mention %s\n", lp_config_table[i].env);
            fail();
        }
        /* the example shows the defaults */
        lp_config_format(config, &lp_config_table[i], a, sizeof(a));
        lp_config_format(defaults, &lp_config_table[i], b, sizeof(b));
        assert_string_equal(a, b);
    }
    free(text);
    lp_config_destroy(defaults);
    lp_config_destroy(config);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_table_is_consistent, clear_env),
        cmocka_unit_test_setup(test_yaml_overrides, clear_env),
        cmocka_unit_test_setup(test_env_overrides, clear_env),
        cmocka_unit_test_setup(test_unknown_keys, clear_env),
        cmocka_unit_test_setup(test_bounds_and_types, clear_env),
        cmocka_unit_test_setup(test_redis_url_parts, clear_env),
        cmocka_unit_test_setup(test_test_clock_gate, clear_env),
        cmocka_unit_test_setup(test_masking, clear_env),
        cmocka_unit_test_setup(test_doc_in_sync, clear_env),
        cmocka_unit_test_setup(test_example_config, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
