/* leadpulse run / check-config: the worker as platform teams deploy it. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/http.h"
#include "io/status.h"
#include "leadpulse/account_engine.h"
#include "leadpulse/config.h"
#include "leadpulse/registry.h"
#include "leadpulse/worker.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void on_hup(int sig) {
    (void)sig;
    reload_flag = 1;
}

typedef struct {
    const char *rules_path;
    const lp_rules_t *current;
} rules_ctx_t;

static const lp_rules_t *reload_rules(void *ctx) {
    rules_ctx_t *rc = ctx;
    char errstr[LP_ERRSTR];
    lp_rules_t *rules = lp_rules_load(rc->rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        LP_LOG(LP_LOG_ERROR, "run", "rules reload: %s", errstr);
        return NULL;
    }
    /* The engine no longer uses the old rules once the worker swapped them in. */
    const lp_rules_t *old = rc->current;
    rc->current = rules;
    lp_rules_destroy((lp_rules_t *)old);
    return rules;
}

/* Connects to Redis, retrying with backoff (1 s, doubling to 30 s) until it answers or a stop
 * signal arrives: a worker started before Redis, or during an outage, waits alive (/healthz 200)
 * and not ready (/readyz: redis unreachable) instead of exiting. NULL when stopped. */
static lp_store_t *wait_for_redis(const lp_config_t *config, lp_status_t *status) {
    char errstr[LP_ERRSTR];
    int backoff_ms = 1000;
    for (int attempt = 1;; attempt++) {
        lp_store_t *store =
            lp_store_redis_open(config->redis_cluster, config->redis_url, config->redis_prefix,
                                config->redis_timeout_ms, errstr, sizeof(errstr));
        lp_status_set(status, LP_READY_STORE, store != NULL);
        if (store != NULL) {
            char msg[LP_ERRSTR];
            if (attempt > 1) {
                LP_LOG(LP_LOG_INFO, "run", "redis: connected (attempt %d)", attempt);
            }
            lp_store_redis_set_lead_buckets(store, config->redis_lead_buckets);
            /* Checked once, on the node of partition 0: a hint, not a requirement. */
            if (lp_store_redis_listpack_check(store, 0, msg, sizeof(msg)) != 1) {
                LP_LOG(LP_LOG_WARN, "run", "redis: %s", msg);
            }
            return store;
        }
        LP_LOG(LP_LOG_ERROR, "run", "redis: %s; retrying in %d s", errstr, backoff_ms / 1000);
        lp_status_wait(status, backoff_ms, &stop_flag);
        if (stop_flag) {
            return NULL;
        }
        backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
    }
}

static const char *config_path_from_args(int argc, char **argv, const char *cmd, bool *help) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = getenv("LEADPULSE_CONFIG");
    int c;
    optind = 1;
    *help = false;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else {
            *help = true;
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: leadpulse %s [--config FILE]\n\n"
                    "FILE (or $LEADPULSE_CONFIG) is the YAML configuration; every key can be\n"
                    "overridden by a LEADPULSE_* environment variable (docs/configuration.md).\n",
                    cmd);
        }
    }
    return path;
}

static const char *schema_dir(void) {
    const char *dir = getenv("LEADPULSE_SCHEMAS_DIR");
    return dir != NULL ? dir : LP_SCHEMA_DIR;
}

/* The schema files checked; with a registry, no id yet (lp_cli_registry_codec gives them). */
static lp_avro_codec_t *open_codec(const lp_config_t *config, char *errstr, size_t size) {
    return lp_avro_codec_new(schema_dir(), config->registry_url[0] ? NULL : config->schema_ids,
                             errstr, size);
}

lp_registry_t *lp_cli_registry_new(const lp_config_t *config, char *errstr, size_t size) {
    lp_registry_opts_t ropts = {
        .urls = config->registry_url,
        .username = config->registry_user,
        .password = config->registry_password,
        .ca_file = config->registry_ca_file,
        .timeout_ms = config->registry_timeout_ms,
    };
    return lp_registry_new(&ropts, errstr, size);
}

lp_avro_codec_t *lp_cli_registry_codec(const lp_config_t *config, lp_registry_t *reg,
                                       unsigned kinds, int32_t ids[LP_SCHEMA__COUNT], int *rc,
                                       char *errstr, size_t size) {
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        ids[k] = -1;
    }
    const char *topics[LP_SCHEMA__COUNT] = {config->topic_in[LP_EV_ENGAGEMENT],
                                            config->topic_in[LP_EV_PROFILE],
                                            config->topic_in[LP_EV_FEEDBACK],
                                            config->topic_mql,
                                            config->topic_stale,
                                            config->topic_erased};
    lp_registry_schemas_t s = {
        .schema_dir = schema_dir(),
        .strategy = config->registry_subject_strategy,
        .auto_register = config->registry_auto_register != 0,
    };
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        s.topics[k] = (kinds & (1u << k)) ? topics[k] : NULL;
    }
    *rc = lp_registry_schema_ids(reg, &s, ids, errstr, size);
    if (*rc != LP_OK) {
        return NULL;
    }
    lp_avro_codec_t *codec = lp_avro_codec_new(schema_dir(), ids, errstr, size);
    if (codec == NULL) {
        *rc = LP_REGISTRY_REFUSED;
        return NULL;
    }
    lp_avro_codec_set_fetch(codec, lp_registry_fetch, reg);
    return codec;
}

/* The Confluent schema ids of AccountQualified and AccountStale (Confluent framing only): with
 * a registry, registered (or found) under their subjects; without one, LP_ACCOUNT_QUALIFIED_ID
 * and LP_ACCOUNT_STALE_ID, the ids `handoff-consumer --accounts` expects by default. */
#define LP_ACCOUNT_QUALIFIED_ID 7
#define LP_ACCOUNT_STALE_ID 8
static int account_schema_ids(const lp_config_t *config, lp_registry_t *reg, lp_avro_codec_t *codec,
                              char *errstr, size_t size) {
    static const lp_schema_kind_t kinds[2] = {LP_SCHEMA_ACCOUNT_QUALIFIED, LP_SCHEMA_ACCOUNT_STALE};
    if (config->output_framing != LP_FRAMING_CONFLUENT) {
        return LP_OK;
    }
    for (int i = 0; i < 2; i++) {
        int32_t id = i == 0 ? LP_ACCOUNT_QUALIFIED_ID : LP_ACCOUNT_STALE_ID;
        if (reg != NULL) {
            char subject[512], path[1024];
            lp_registry_subject(config->registry_subject_strategy,
                                i == 0 ? config->topic_mqa : config->topic_account_stale, kinds[i],
                                subject, sizeof(subject));
            snprintf(path, sizeof(path), "%s/%s.avsc", schema_dir(),
                     i == 0 ? "AccountQualified" : "AccountStale");
            char *text = lp_registry_read_schema(path, errstr, size);
            if (text == NULL) {
                return LP_ERR;
            }
            int rc = lp_registry_register(reg, subject, text, &id, errstr, size);
            free(text);
            if (rc != LP_OK) {
                return LP_ERR;
            }
            LP_LOG(LP_LOG_INFO, "run", "schema registry: subject %s: schema id %d", subject,
                   (int)id);
        }
        if (lp_avro_codec_set_schema_id(codec, kinds[i], id, errstr, size) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* With a registry: the codec with the output schemas' ids from it, retrying with backoff (1 s,
 * doubling to 30 s) while no registry answers, alive and not ready, as for Redis. A registry that
 * refuses a schema ends the start. NULL when stopped or refused (*refused says which). */
static lp_avro_codec_t *wait_for_registry(const lp_config_t *config, lp_registry_t *reg,
                                          lp_status_t *status, bool *refused) {
    char errstr[LP_ERRSTR];
    int backoff_ms = 1000;
    unsigned kinds =
        config->output_framing == LP_FRAMING_CONFLUENT
            ? (1u << LP_SCHEMA_QUALIFIED) | (1u << LP_SCHEMA_STALE) | (1u << LP_SCHEMA_ERASED)
            : 0;
    *refused = false;
    for (;;) {
        int rc;
        int32_t ids[LP_SCHEMA__COUNT];
        lp_avro_codec_t *codec =
            lp_cli_registry_codec(config, reg, kinds, ids, &rc, errstr, sizeof(errstr));
        if (codec != NULL) {
            char subject[512];
            lp_status_set(status, LP_READY_REGISTRY, true);
            for (int k = LP_SCHEMA_QUALIFIED; kinds != 0 && k <= LP_SCHEMA_ERASED; k++) {
                lp_registry_subject(config->registry_subject_strategy,
                                    k == LP_SCHEMA_QUALIFIED ? config->topic_mql
                                    : k == LP_SCHEMA_STALE   ? config->topic_stale
                                                             : config->topic_erased,
                                    (lp_schema_kind_t)k, subject, sizeof(subject));
                LP_LOG(LP_LOG_INFO, "run", "schema registry %s: subject %s: schema id %d",
                       lp_registry_current_url(reg), subject, (int)ids[k]);
            }
            return codec;
        }
        lp_status_set(status, LP_READY_REGISTRY, false);
        if (rc != LP_ERR) {
            LP_LOG(LP_LOG_ERROR, "run", "%s", errstr);
            *refused = true;
            return NULL;
        }
        LP_LOG(LP_LOG_ERROR, "run", "%s; retrying in %d s", errstr, backoff_ms / 1000);
        lp_status_wait(status, backoff_ms, &stop_flag);
        if (stop_flag) {
            return NULL;
        }
        backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
    }
}

int lp_cmd_check_config(int argc, char **argv) {
    bool help;
    char errstr[LP_ERRSTR];
    const char *path = config_path_from_args(argc, argv, "check-config", &help);
    if (help) {
        return 0;
    }
    lp_config_t *config = lp_config_load(path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse check-config: %s\n", errstr);
        return 1;
    }
    lp_rules_t *rules = lp_rules_load(config->rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        fprintf(stderr, "leadpulse check-config: %s\n", errstr);
        lp_config_destroy(config);
        return 1;
    }
    lp_avro_codec_t *codec = open_codec(config, errstr, sizeof(errstr));
    if (codec == NULL) {
        fprintf(stderr, "leadpulse check-config: schemas: %s\n", errstr);
        lp_rules_destroy(rules);
        lp_config_destroy(config);
        return 1;
    }
    lp_config_dump(config, stdout);
    printf("# rules: %s (model %s version %s, %d activities%s)\n", config->rules_path,
           rules->model_id, rules->model_version, rules->nactivities,
           rules->accounts.enabled ? "; accounts: valid" : "");
    lp_avro_codec_destroy(codec);
    lp_rules_destroy(rules);
    lp_config_destroy(config);
    return 0;
}

int lp_cmd_run(int argc, char **argv) {
    bool help;
    char errstr[LP_ERRSTR];
    int status = 1;
    lp_rules_t *rules = NULL;
    lp_avro_codec_t *codec = NULL;
    lp_registry_t *registry = NULL;
    lp_store_t *store = NULL;
    lp_engine_t *engine = NULL;
    lp_worker_t *worker = NULL;
    lp_http_t *http = NULL;
    lp_status_t *wstatus = NULL;
    lp_acct_engine_t *accounts = NULL;
    const char **props = NULL;
    rules_ctx_t rctx = {0};

    const char *path = config_path_from_args(argc, argv, "run", &help);
    if (help) {
        return 0;
    }
    lp_config_t *config = lp_config_load(path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse run: %s\n", errstr);
        return 1;
    }
    lp_log_level = config->log_level;
    lp_log_json = config->log_format == 1;
    rules = lp_rules_load(config->rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        LP_LOG(LP_LOG_ERROR, "run", "%s", errstr);
        goto done;
    }
    codec = open_codec(config, errstr, sizeof(errstr));
    if (codec == NULL) {
        LP_LOG(LP_LOG_ERROR, "run", "schemas: %s", errstr);
        goto done;
    }
    wstatus = lp_status_new();
    if (wstatus == NULL) {
        goto done;
    }
    if (config->http_listen[0] != '\0') {
        lp_http_opts_t hopts = {
            .listen = config->http_listen,
            .health_max_age_ms = config->http_health_max_age_ms,
            .leads = config->http_leads != 0,
            .token = config->http_token,
            .redis_url = config->redis_url,
            .redis_cluster = config->redis_cluster,
            .redis_prefix = config->redis_prefix,
            .redis_timeout_ms = config->redis_timeout_ms,
            .rules_path = config->rules_path,
        };
        http = lp_http_start(&hopts, wstatus, errstr, sizeof(errstr));
        if (http == NULL) {
            LP_LOG(LP_LOG_ERROR, "run", "http.listen %s: %s", config->http_listen, errstr);
            goto done;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    lp_status_set(wstatus, LP_READY_OUTBOX, true); /* until the worker finds otherwise */
    lp_status_set(wstatus, LP_READY_REGISTRY, true);
    store = wait_for_redis(config, wstatus);
    if (store == NULL) {
        status = stop_flag ? 0 : 1;
        goto done;
    }
    if (config->registry_url[0] != '\0') {
        bool refused;
        registry = lp_cli_registry_new(config, errstr, sizeof(errstr));
        if (registry == NULL) {
            LP_LOG(LP_LOG_ERROR, "run", "schema_registry: %s", errstr);
            goto done;
        }
        lp_avro_codec_destroy(codec);
        codec = wait_for_registry(config, registry, wstatus, &refused);
        if (codec == NULL) {
            status = stop_flag && !refused ? 0 : 1;
            goto done;
        }
    }
    lp_engine_opts_t eopts = {
        .out_format = LP_FORMAT_AVRO,
        .out_framing = config->output_framing,
        .max_future_skew_ms = config->max_future_skew_ms,
        .cache_max_leads = (size_t)config->cache_max_leads,
        .timer_batch = (size_t)config->timers_batch,
        .log_dead_letters = true,
        .handoff_fields = config->handoff_fields_mask,
        .suppression_ttl_ms = config->suppression_ttl_ms,
        .accounts = rules->accounts.enabled,
    };
    memcpy(eopts.suppression_key, config->suppression_key_bytes, sizeof(eopts.suppression_key));
    engine = lp_engine_new(&eopts, rules, store, codec, errstr, sizeof(errstr));
    if (engine == NULL) {
        LP_LOG(LP_LOG_ERROR, "run", "%s", errstr);
        goto done;
    }
    if (rules->accounts.enabled) {
        /* Stage 2 (docs/architecture.md "Accounts: the second stage"): the account hand-offs'
         * schema ids, then the account engine. */
        if (account_schema_ids(config, registry, codec, errstr, sizeof(errstr)) != LP_OK) {
            LP_LOG(LP_LOG_ERROR, "run", "account hand-offs: %s", errstr);
            goto done;
        }
        lp_acct_engine_opts_t aopts = {
            .out_format = LP_FORMAT_AVRO,
            .out_framing = config->output_framing,
            .members_topic = config->topic_members,
        };
        accounts = lp_acct_engine_new(&aopts, rules, store, codec, errstr, sizeof(errstr));
        if (accounts == NULL) {
            LP_LOG(LP_LOG_ERROR, "run", "accounts: %s", errstr);
            goto done;
        }
    }
    props = calloc(config->nkafka * 2 + 1, sizeof(char *));
    if (props == NULL) {
        goto done;
    }
    for (size_t i = 0; i < config->nkafka; i++) {
        props[2 * i] = config->kafka[i].name;
        props[2 * i + 1] = config->kafka[i].value;
    }
    rctx.rules_path = config->rules_path;
    rctx.current = rules;
    lp_worker_opts_t wopts = {
        .brokers = config->brokers,
        .group_id = config->group_id,
        .in_topics = {config->topic_in[LP_EV_ENGAGEMENT], config->topic_in[LP_EV_PROFILE],
                      config->topic_in[LP_EV_FEEDBACK]},
        .in_format = {config->input_format[0], config->input_format[1], config->input_format[2]},
        .out_topics = {[LP_OUT_QUALIFIED] = config->topic_mql,
                       [LP_OUT_STALE] = config->topic_stale,
                       [LP_OUT_DLQ] = config->topic_dlq,
                       [LP_OUT_ERASED] = config->topic_erased,
                       [LP_OUT_MEMBER] = config->topic_members,
                       [LP_OUT_MARK] = config->topic_members,
                       [LP_OUT_ACCOUNT_QUALIFIED] = config->topic_mqa,
                       [LP_OUT_ACCOUNT_STALE] = config->topic_account_stale},
        .accounts = accounts,
        .nkafka_props = config->nkafka,
        .kafka_props = props,
        .batch_max_events = (size_t)config->batch_max_events,
        .batch_max_wait_ms = config->batch_max_wait_ms,
        .merge_grace_ms = config->merge_grace_ms,
        .timers_interval_ms = config->timers_interval_ms,
        .rules_path = config->rules_path,
        .rules_check_ms = config->rules_check_ms,
        .outbox_batch = (size_t)config->outbox_batch,
        .shutdown_timeout_ms = config->shutdown_timeout_ms,
        .clock_offset_ms = config->clock_offset_ms,
        .clock_scale = config->clock_scale,
        .stop = &stop_flag,
        .reload = &reload_flag,
        .reload_rules = reload_rules,
        .ctx = &rctx,
    };
    wopts.status = wstatus;
    worker = lp_worker_new(&wopts, engine, store, errstr, sizeof(errstr));
    if (worker == NULL) {
        LP_LOG(LP_LOG_ERROR, "run", "kafka: %s", errstr);
        goto done;
    }
    LP_LOG(LP_LOG_INFO, "run", "leadpulse %s: model %s version %s, group %s, brokers %s",
           LP_VERSION, rules->model_id, rules->model_version, config->group_id, config->brokers);
    status = lp_worker_run(worker) == LP_OK ? 0 : 1;
    LP_LOG(LP_LOG_INFO, "run", "stopped");
done:
    lp_http_stop(http);
    lp_worker_destroy(worker);
    lp_status_destroy(wstatus);
    lp_acct_engine_destroy(accounts);
    lp_engine_destroy(engine);
    lp_store_destroy(store);
    lp_avro_codec_destroy(codec);
    lp_registry_destroy(registry);
    lp_rules_destroy((lp_rules_t *)rctx.current != NULL ? (lp_rules_t *)rctx.current : rules);
    free(props);
    lp_config_destroy(config);
    return status;
}
