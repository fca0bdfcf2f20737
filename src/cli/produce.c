/* leadpulse produce: sends a JSON-lines event file to the input topics, encoded as the worker
 * expects (Avro with the configured framing, or JSON), keyed by lead id. For demos, tests and the
 * bench (--rate paces the stream, --now stamps events with the send time). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cli/cli.h"
#include "leadpulse/codec.h"
#include "leadpulse/config.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    (void)rk;
    uint64_t *failed = opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (*failed)++;
        fprintf(stderr, "leadpulse produce: delivery failed: %s\n", rd_kafka_err2str(msg->err));
    }
}

rd_kafka_conf_t *lp_cli_kafka_conf(const lp_config_t *config, const char *const *set,
                                   const char *skip_prefix, char *errstr, size_t size) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", config->brokers, err, sizeof(err))) {
        goto fail;
    }
    for (size_t i = 0; set != NULL && set[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, set[i], set[i + 1], err, sizeof(err))) {
            goto fail;
        }
    }
    for (size_t i = 0; i < config->nkafka; i++) {
        const char *name = config->kafka[i].name;
        if (strncmp(name, "group.", 6) == 0 || strcmp(name, "partition.assignment.strategy") == 0 ||
            strcmp(name, "auto.offset.reset") == 0 ||
            (skip_prefix != NULL && strncmp(name, skip_prefix, strlen(skip_prefix)) == 0)) {
            continue;
        }
        if (rd_kafka_conf_set(conf, name, config->kafka[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            snprintf(errstr, size, "kafka.%.100s: %.300s", name, err);
            return NULL;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    snprintf(errstr, size, "%s", err);
    return NULL;
}

rd_kafka_t *lp_cli_producer(const lp_config_t *config, uint64_t *failed, char *errstr,
                            size_t size) {
    static const char *const set[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    char err[512];
    rd_kafka_conf_t *conf = lp_cli_kafka_conf(config, set, NULL, errstr, size);
    if (conf == NULL) {
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, size, "%s", err);
    }
    return rk;
}

int lp_cli_send_request(rd_kafka_t *rk, const lp_config_t *config, const char *lead_id,
                        int64_t ts_ms, lp_event_op_t op) {
    const char *name = op == LP_OP_UNSUPPRESS ? "unsuppress" : "erase";
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(config->topic_in[LP_EV_PROFILE]),
            RD_KAFKA_V_KEY(lead_id, strlen(lead_id)), RD_KAFKA_V_VALUE(NULL, 0),
            RD_KAFKA_V_HEADER("leadpulse.op", name, (ssize_t)strlen(name)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 50);
            continue;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "leadpulse: %s request for a lead: %s\n", name, rd_kafka_err2str(err));
            return LP_ERR;
        }
        return LP_OK;
    }
}

static void produce_usage(FILE *out) {
    fprintf(out,
            "usage: leadpulse produce [--config FILE] [--json] [--rate N] [--now]\n"
            "                         [--ordered-ms N] [FILE|-]\n\n"
            "Sends each JSON line of FILE to the topic of its kind (engagement, profile,\n"
            "feedback), keyed by lead id, Avro-encoded with the configured framing (--json:\n"
            "as JSON). --rate N paces to N events/s (after a stall, such as a broker outage,\n"
            "it goes on at N events/s: no burst to catch up); --now sets each event's ts to\n"
            "the send time. --ordered-ms N waits, every N ms, until every record sent so far is\n"
            "acknowledged, so records of different topics reach the brokers in the order\n"
            "they were sent (give or take N ms) even across a broker restart. Brokers and\n"
            "topics come from the configuration; with schema_registry.url set, the input\n"
            "schemas are registered under their subjects and records carry the registry's\n"
            "ids (as Confluent's serializers do).\n");
}

int lp_cmd_produce(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"rate", required_argument, NULL, 'r'},
        {"now", no_argument, NULL, 'n'},
        {"ordered-ms", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = getenv("LEADPULSE_CONFIG");
    bool json = false, stamp = false;
    double rate = 0;
    long ordered_ms = 0;
    int c;
    char errstr[LP_ERRSTR];
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:jr:no:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'n':
            stamp = true;
            break;
        case 'o':
            ordered_ms = atol(optarg);
            if (ordered_ms <= 0) {
                fprintf(stderr, "leadpulse produce: --ordered-ms wants a positive number of ms\n");
                return 2;
            }
            break;
        case 'h':
            produce_usage(stdout);
            return 0;
        default:
            produce_usage(stderr);
            return 2;
        }
    }
    const char *input = optind < argc ? argv[optind] : "-";
    lp_config_t *config = lp_config_load(config_path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse produce: %s\n", errstr);
        return 1;
    }
    int status = 1;
    uint64_t failed = 0, sent = 0, bad = 0;
    lp_avro_codec_t *codec = NULL;
    lp_registry_t *registry = NULL;
    rd_kafka_t *rk = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    uint8_t buf[16384];
    const char *dir = getenv("LEADPULSE_SCHEMAS_DIR");

    if (config->registry_url[0] != '\0' && !json) {
        /* The input schemas registered (or looked up) under their subjects, as a producer
         * with Confluent's serializers does; their ids frame the records. */
        int32_t ids[LP_SCHEMA__COUNT];
        int rc;
        registry = lp_cli_registry_new(config, errstr, sizeof(errstr));
        codec = registry == NULL ? NULL
                                 : lp_cli_registry_codec(config, registry, 0x7u, ids, &rc, errstr,
                                                         sizeof(errstr));
    } else {
        codec = lp_avro_codec_new(dir != NULL ? dir : LP_SCHEMA_DIR, config->schema_ids, errstr,
                                  sizeof(errstr));
    }
    if (codec == NULL) {
        fprintf(stderr, "leadpulse produce: schemas: %s\n", errstr);
        goto done;
    }
    rk = lp_cli_producer(config, &failed, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "leadpulse produce: %s\n", errstr);
        goto done;
    }
    /* Warm up before the first record: the input topics' metadata and leader connections, so
     * the first records (stamped with the send time under --now) do not wait for them. */
    for (int k = 0; k < LP_EV__COUNT; k++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, config->topic_in[k], NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rkt != NULL && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
        }
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
    }
    in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
    if (in == NULL) {
        fprintf(stderr, "leadpulse produce: cannot open %s\n", input);
        goto done;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t sync_ms = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    ssize_t len;
    int64_t lineno = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lp_event_t event;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        if (lp_json_decode_event(line, (size_t)len, &event, errstr, sizeof(errstr)) != LP_OK) {
            fprintf(stderr, "line %" PRId64 ": %s\n", lineno, errstr);
            bad++;
            continue;
        }
        if (stamp) {
            event.ts_ms = now_ms();
        }
        if (event.op != LP_OP_APPLY) {
            /* An erasure or unsuppress line: a tombstone on the profiles topic. */
            if (lp_cli_send_request(rk, config, event.lead_id, event.ts_ms, event.op) != LP_OK) {
                failed++;
            }
        } else {
            size_t n;
            if (json) {
                n = lp_json_encode_event(&event, (char *)buf, sizeof(buf));
            } else {
                n = lp_avro_encode_event(codec, &event, config->output_framing, buf, sizeof(buf));
            }
            if (n == 0) {
                fprintf(stderr, "line %" PRId64 ": cannot encode\n", lineno);
                bad++;
                continue;
            }
            const char *topic = config->topic_in[event.kind];
            for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(event.lead_id, strlen(event.lead_id)), RD_KAFKA_V_VALUE(buf, n),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    /* The record timestamp is the event time: the worker merges its input topics by
                     * it. */
                    RD_KAFKA_V_TIMESTAMP(event.ts_ms), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    rd_kafka_poll(rk, 50);
                    continue;
                }
                if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    fprintf(stderr, "line %" PRId64 ": %s\n", lineno, rd_kafka_err2str(err));
                    failed++;
                }
                break;
            }
        }
        sent++;
        rd_kafka_poll(rk, 0);
        if (ordered_ms > 0) {
            /* Cross-topic order: Kafka orders records within a partition only; a broker restart
             * can deliver a queued backlog partition by partition. Bounding what is in flight
             * to N ms of sending bounds that reordering too. */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
            if (now_ms - sync_ms >= ordered_ms) {
                while (rd_kafka_outq_len(rk) > 0) {
                    rd_kafka_flush(rk, 1000);
                }
                sync_ms = now_ms;
            }
        }
        if (rate > 0) {
            /* Pace: the sent-th event is due at t0 + sent / rate. Behind by more than 100 ms (a
             * stall: a broker outage, a flush of --ordered-ms) the schedule moves on instead of
             * bursting to catch up: a burst after an outage is seconds of all three topics at
             * full speed, delivered partition by partition as the broker brings its partitions
             * back, which is the cross-topic disorder --ordered-ms is there to bound. */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double elapsed = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
            double due = (double)sent / rate;
            if (elapsed - due > 0.1) {
                double shift = elapsed - due;
                long sec = (long)shift;
                t0.tv_sec += sec;
                t0.tv_nsec += (long)((shift - (double)sec) * 1e9);
                if (t0.tv_nsec >= 1000000000L) {
                    t0.tv_sec++;
                    t0.tv_nsec -= 1000000000L;
                }
            }
            if (due > elapsed) {
                double wait = due - elapsed;
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
    }
    rd_kafka_flush(rk, 30000);
    fprintf(stderr, "produce: %" PRIu64 " sent, %" PRIu64 " failed, %" PRIu64 " bad lines\n", sent,
            failed, bad);
    status = failed == 0 && rd_kafka_outq_len(rk) == 0 ? 0 : 1;
done:
    free(line);
    if (in != NULL && in != stdin) {
        fclose(in);
    }
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    lp_avro_codec_destroy(codec);
    lp_registry_destroy(registry);
    lp_config_destroy(config);
    return status;
}
