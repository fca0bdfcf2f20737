/* leadpulse repartition: moves the leads' stored state after partitions were added to the input
 * topics (docs/architecture.md, "Changing the partition count"; the work is lp_repartition in
 * src/engine/repartition.c). This file adds the Kafka side: the input topics have the new count
 * and every record of the old partitions is applied (stored offsets at the end). */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "leadpulse/account_engine.h"
#include "leadpulse/config.h"
#include "leadpulse/member_wire.h"
#include "leadpulse/repartition.h"
#include "leadpulse/store.h"

static void usage(FILE *out) {
    fputs("usage: leadpulse repartition [--config FILE] --from N --to M\n"
          "                             [--partitioner crc32|murmur2] [--dry-run]\n"
          "                             [--skip-kafka-check]\n"
          "       leadpulse repartition --accounts [--config FILE] --from N --to M\n"
          "                             [--dry-run] [--skip-kafka-check]\n\n"
          "After partitions were added to the three input topics (N -> M), moves each lead\n"
          "whose partition changed, with its timer, to its new partition in Redis, copies\n"
          "the suppression entries of erased leads to every partition, then deletes the\n"
          "moved leads from their old partitions. Runbook: docs/architecture.md, \"Changing\n"
          "the partition count\": stop the producers, let the workers apply everything and\n"
          "empty their outboxes, stop the workers, add the partitions, run this, start the\n"
          "workers, then the producers.\n\n"
          "  --partitioner  how the producers pick a partition from the lead id (the key):\n"
          "                 crc32 (default): librdkafka's default (consistent_random), what\n"
          "                 `leadpulse produce` uses; murmur2: the Java client's default\n"
          "  --dry-run      check and print the moves (old -> new partition: leads), change\n"
          "                 nothing\n"
          "  --skip-kafka-check  do not ask the brokers whether the input topics have M\n"
          "                 partitions and every record of partitions 0..N-1 is applied\n\n"
          "  --accounts     the members topic grew instead (topics.members, N -> M): move\n"
          "                 each account whose partition (crc32 of its key) changed, with\n"
          "                 its timer, and record M in every account partition (workers\n"
          "                 refuse to start while the two disagree)\n\n"
          "It refuses (exit 1, nothing changed) when an old partition's outbox is not empty,\n"
          "input is not applied, or a lead is stored where the partitioner does not put it.\n"
          "It fences partitions 0..M-1 first. Safe to run again after a failure: a re-run\n"
          "finishes the work and then moves nothing.\n",
          out);
}

/* A consumer without a group (assign only, nothing committed), for reading a members topic
 * partition's tail. NULL with errstr. */
static rd_kafka_t *tail_consumer(const lp_config_t *config, char *errstr, size_t size) {
    static const char *const set[] = {
        "group.id", "leadpulse-repartition-check", "enable.auto.commit",
        "false",    "enable.auto.offset.store",    "false",
        NULL};
    char err[512];
    rd_kafka_conf_t *conf = lp_cli_kafka_conf(config, set, "enable.", errstr, size);
    if (conf == NULL) {
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, size, "%s", err);
    }
    return rk;
}

static int count_member(void *ctx, const lp_member_msg_t *m) {
    if (m->type != LP_MW_MARK) {
        (*(int64_t *)ctx)++;
    }
    return LP_OK;
}

/* The member records and leaves (not marks) in [from, end) of the members topic's partition p:
 * what stage 2 has not applied when its stored offset is below the end (the marks a partition
 * reads after its last step are not committed until its next one). -1 when unreadable.
 * *consumer is created at the first call and reused (assigned each partition in turn). */
static int64_t unapplied_members(const lp_config_t *config, rd_kafka_t **consumer, int32_t p,
                                 int64_t from, int64_t end) {
    char errstr[LP_ERRSTR];
    if (*consumer == NULL && (*consumer = tail_consumer(config, errstr, sizeof(errstr))) == NULL) {
        fprintf(stderr, "leadpulse repartition: kafka: %s\n", errstr);
        return -1;
    }
    rd_kafka_t *rk = *consumer;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, config->topic_members, p)->offset = from;
    int64_t members = 0, next = from;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    for (int idle = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && next < end && idle < 30;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (m == NULL) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            char why[128];
            if (m->offset >= from && m->offset < end &&
                lp_member_value_foreach(m->payload, m->len, count_member, &members, why,
                                        sizeof(why)) != LP_OK) {
                members++; /* not a mark: stage 2 skipped it (malformed), count it */
            }
            next = m->offset + 1;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            err = m->err;
        }
        rd_kafka_message_destroy(m);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || next < end) {
        fprintf(stderr,
                "leadpulse repartition: %s [%" PRId32 "]: read offsets %" PRId64 "..%" PRId64
                ": %s\n",
                config->topic_members, p, from, end,
                err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(err) : "timed out");
        members = -1;
    }
    return members;
}

/* The input topics (with accounts: the members topic) have `to` partitions and the stored
 * offsets of partitions 0..from-1 are at their ends (accounts: only marks follow them).
 * Problems are printed; the count of them is returned (-1: brokers unusable). */
static int kafka_check(const lp_config_t *config, lp_store_t *store, int32_t from, int32_t to,
                       bool accounts) {
    char errstr[LP_ERRSTR];
    uint64_t failed = 0;
    int problems = 0;
    rd_kafka_t *consumer = NULL; /* accounts: reads partitions' tails */
    rd_kafka_t *rk = lp_cli_producer(config, &failed, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "leadpulse repartition: kafka: %s\n", errstr);
        return -1;
    }
    for (int k = 0; k < (accounts ? 1 : LP_EV__COUNT) && problems >= 0; k++) {
        const char *topic = accounts ? config->topic_members : config->topic_in[k];
        int32_t base = accounts ? LP_ACCOUNT_PARTITION_BASE : 0;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
            rkt != NULL ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__FAIL;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err) {
            err = md->topics[0].err;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "leadpulse repartition: topic %s: metadata: %s\n", topic,
                    rd_kafka_err2str(err));
            problems = -1;
        } else if (md->topics[0].partition_cnt != to) {
            fprintf(stderr,
                    "leadpulse repartition: topic %s has %d partitions, not %" PRId32 "%s\n", topic,
                    md->topics[0].partition_cnt, to,
                    md->topics[0].partition_cnt < to
                        ? ": add them first (kafka-topics.sh --alter --partitions M)"
                        : "");
            problems++;
        }
        if (md != NULL) {
            rd_kafka_metadata_destroy(md);
        }
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
        for (int32_t p = 0; p < from && problems >= 0; p++) {
            int64_t lo = 0, hi = 0, stored = -1;
            err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "leadpulse repartition: %s [%" PRId32 "]: end offset: %s\n", topic,
                        p, rd_kafka_err2str(err));
                problems = -1;
            } else if (lp_store_get_offset(store, base + p, topic, &stored) != LP_OK) {
                fprintf(stderr, "leadpulse repartition: partition %" PRId32 ": %s\n", p,
                        store->errstr);
                problems = -1;
            } else if (accounts && (stored < 0 ? hi > lo : stored < hi)) {
                int64_t n = unapplied_members(config, &consumer, p, stored < 0 ? lo : stored, hi);
                if (n < 0) {
                    problems = -1;
                } else if (n > 0) {
                    fprintf(stderr,
                            "leadpulse repartition: account partition %" PRId32 ": %" PRId64
                            " member records of %s not applied (stored next offset %" PRId64
                            ", end %" PRId64 "): stop the producers and run the workers until "
                            "they applied everything (accounts.lateness after the last event)\n",
                            p, n, topic, stored, hi);
                    problems++;
                }
            } else if (stored < 0 ? hi > lo : stored < hi) {
                fprintf(stderr,
                        "leadpulse repartition: partition %" PRId32 " of %s: %" PRId64
                        " records not applied (stored next offset %" PRId64 ", end %" PRId64
                        "): stop the producers and run the workers until "
                        "they applied everything\n",
                        p, topic, stored < 0 ? hi - lo : hi - stored, stored, hi);
                problems++;
            }
        }
    }
    if (consumer != NULL) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    rd_kafka_destroy(rk);
    return problems;
}

int lp_cmd_repartition(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"partitioner", required_argument, NULL, 'P'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"skip-kafka-check", no_argument, NULL, 'K'},
                                         {"accounts", no_argument, NULL, 'A'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = getenv("LEADPULSE_CONFIG");
    lp_repartition_opts_t o = {.partitioner = LP_PARTITIONER_CRC32};
    bool skip_kafka = false, partitioner_given = false;
    char errstr[LP_ERRSTR];
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:f:t:P:nKAh", opts, NULL)) != -1) {
        if (c == 'c') {
            config_path = optarg;
        } else if (c == 'f') {
            o.from = atoi(optarg);
        } else if (c == 't') {
            o.to = atoi(optarg);
        } else if (c == 'P') {
            if (lp_partitioner_parse(optarg, &o.partitioner) != 0) {
                fprintf(stderr, "leadpulse repartition: --partitioner %s: crc32 or murmur2\n",
                        optarg);
                return 2;
            }
            partitioner_given = true;
        } else if (c == 'A') {
            o.accounts = true;
        } else if (c == 'n') {
            o.dry_run = true;
        } else if (c == 'K') {
            skip_kafka = true;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (o.from < 1 || o.to <= o.from || o.to > LP_PARTITIONS_MAX || optind != argc) {
        fprintf(stderr,
                "leadpulse repartition: give --from N --to M with 1 <= N < M <= %d (the count "
                "only grows) and nothing else\n",
                LP_PARTITIONS_MAX);
        return 2;
    }
    if (o.accounts && partitioner_given) {
        fprintf(stderr, "leadpulse repartition: --accounts places accounts by crc32 of their key "
                        "(as stage 1 does): no --partitioner\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* hiredis writes to sockets the server may have closed */
    lp_config_t *config = lp_config_load(config_path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse repartition: %s\n", errstr);
        return 1;
    }
    int status = 1;
    lp_store_t *store = NULL;
    lp_repartition_result_t res = {0};
    lp_rules_t *rules = lp_rules_load(config->rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        fprintf(stderr, "leadpulse repartition: %s\n", errstr);
        goto done;
    }
    store = lp_store_redis_open(config->redis_cluster, config->redis_url, config->redis_prefix,
                                config->redis_timeout_ms, errstr, sizeof(errstr));
    if (store == NULL) {
        fprintf(stderr, "leadpulse repartition: redis: %s\n", errstr);
        goto done;
    }
    lp_store_redis_set_lead_buckets(store, config->redis_lead_buckets);
    if (!skip_kafka) {
        int problems = kafka_check(config, store, o.from, o.to, o.accounts);
        if (problems < 0 || (problems > 0 && !o.dry_run)) {
            fprintf(stderr, "leadpulse repartition: nothing changed\n");
            goto done;
        }
    }
    const char *what = o.accounts ? "accounts" : "leads";
    int rc = lp_repartition(store, rules, &o, &res, errstr, sizeof(errstr));
    if (rc != LP_OK) {
        fprintf(stderr, "leadpulse repartition: %s\n", errstr);
        if (!o.dry_run && res.epochs_bumped > 0) {
            fprintf(stderr,
                    "leadpulse repartition: stopped part-way (%" PRIu64 " %s copied, %" PRIu64
                    " deleted): fix the cause and run the "
                    "same command again to finish\n",
                    res.leads_moved, what, res.leads_deleted);
        }
        goto done;
    }
    for (int32_t p = 0; p < o.from; p++) {
        for (int32_t q = 0; q < o.to; q++) {
            uint64_t n = res.moves[(size_t)p * (size_t)o.to + (size_t)q];
            if (n > 0) {
                printf("%" PRId32 " -> %" PRId32 ": %" PRIu64 " %s\n", p, q, n, what);
            }
        }
    }
    fflush(stdout);
    if (res.unreadable > 0) {
        fprintf(stderr,
                "leadpulse repartition: warning: %" PRIu64
                " moved %s are unreadable%s%s: copied as they are, without a timer\n",
                res.unreadable, what, o.accounts ? "" : " with rules ",
                o.accounts ? "" : config->rules_path);
    }
    if (o.dry_run) {
        fprintf(stderr,
                "repartition (dry run): %" PRIu64 " %s would move of %" PRIu64 " (from %" PRId32
                " to %" PRId32 " partitions); nothing changed\n",
                res.leads_moved, what, res.leads_total, o.from, o.to);
    } else if (o.accounts) {
        fprintf(stderr,
                "repartition: %" PRIu64 " accounts moved of %" PRIu64 " (from %" PRId32
                " to %" PRId32 " partitions of %s), %" PRIu64 " tombstones deleted, %" PRIu64
                " epochs bumped\n",
                res.leads_moved, res.leads_total, o.from, o.to, config->topic_members,
                res.tombstones, res.epochs_bumped);
    } else {
        fprintf(stderr,
                "repartition: %" PRIu64 " leads moved of %" PRIu64 " (from %" PRId32 " to %" PRId32
                " partitions), %" PRIu64 " suppression entries copied, %" PRIu64 " epochs bumped\n",
                res.leads_moved, res.leads_total, o.from, o.to, res.suppress_copied,
                res.epochs_bumped);
    }
    status = 0;
done:
    lp_repartition_result_free(&res);
    lp_store_destroy(store);
    lp_rules_destroy(rules);
    lp_config_destroy(config);
    return status;
}
