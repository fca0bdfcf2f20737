/* leadpulse erase / unsuppress: send erasure requests (docs/privacy.md). Each is a tombstone
 * keyed by the lead id on the profiles topic, so it takes the same path as every input: applied
 * exactly once, in order with the lead's other records, under the worker's guarantees. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static void usage(FILE *out, const char *cmd) {
    bool erase = strcmp(cmd, "erase") == 0;
    fprintf(out,
            "usage: leadpulse %s [--config FILE] [--at TIME] LEAD_ID... (or - : ids on stdin, one "
            "per line)\n\n",
            cmd);
    if (erase) {
        fputs("Asks the workers to erase each lead: its state, timers and undelivered outputs\n"
              "are deleted, a LeadErased hand-off tells downstream systems, and its later\n"
              "events are dropped while it is suppressed (privacy.suppression_ttl_ms).\n",
              out);
    } else {
        fputs("Lifts the suppression of erased leads that opted in again: their events dated\n"
              "after the request start them afresh.\n",
              out);
    }
    fputs("The request is a tombstone keyed by the lead id on the profiles topic, with header\n"
          "leadpulse.op; its time (the record timestamp) is now, or --at TIME (ms since the\n"
          "epoch or 2026-11-25T10:00:00Z). Exit status 0 once the brokers acknowledged every\n"
          "request.\n",
          out);
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One lead id: 1..64 bytes. LP_OK, or LP_ERR with a message. */
static int check_id(const char *cmd, const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > LP_ID_MAX) {
        fprintf(stderr, "leadpulse %s: a lead id has 1..%d bytes, got %zu\n", cmd, LP_ID_MAX, n);
        return LP_ERR;
    }
    return LP_OK;
}

static int requests(int argc, char **argv, const char *cmd, lp_event_op_t op) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"at", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = getenv("LEADPULSE_CONFIG");
    int64_t at = 0;
    int c;
    char errstr[LP_ERRSTR];
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:a:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'a') {
            if (lp_cli_parse_time(optarg, &at) != LP_OK || at <= 0) {
                fprintf(stderr,
                        "leadpulse %s: --at %s: expected ms since the epoch or "
                        "YYYY-MM-DDTHH:MM:SS[.mmm]Z\n",
                        cmd, optarg);
                return 2;
            }
        } else {
            usage(c == 'h' ? stdout : stderr, cmd);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        usage(stderr, cmd);
        return 2;
    }
    lp_config_t *config = lp_config_load(path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse %s: %s\n", cmd, errstr);
        return 1;
    }
    uint64_t failed = 0, sent = 0, bad = 0;
    int status = 1;
    char *line = NULL;
    size_t cap = 0;
    rd_kafka_t *rk = lp_cli_producer(config, &failed, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "leadpulse %s: %s\n", cmd, errstr);
        goto done;
    }
    for (int i = optind; i < argc; i++) {
        bool from_stdin = strcmp(argv[i], "-") == 0;
        ssize_t len = 0;
        for (;;) {
            const char *id = argv[i];
            if (from_stdin) {
                if ((len = getline(&line, &cap, stdin)) < 0) {
                    break;
                }
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
                    line[--len] = '\0';
                }
                if (len == 0) {
                    continue;
                }
                id = line;
            }
            if (check_id(cmd, id) != LP_OK) {
                bad++;
            } else if (lp_cli_send_request(rk, config, id, at > 0 ? at : wall_ms(), op) != LP_OK) {
                failed++;
            } else {
                sent++;
            }
            rd_kafka_poll(rk, 0);
            if (!from_stdin) {
                break;
            }
        }
    }
    rd_kafka_flush(rk, 30000);
    /* Counts only: lead ids are personal data and stay out of the output. */
    fprintf(stderr,
            "%s: %" PRIu64 " requests sent to %s, %" PRIu64 " failed, %" PRIu64 " bad ids\n", cmd,
            sent, config->topic_in[LP_EV_PROFILE], failed, bad);
    status = failed == 0 && bad == 0 && rd_kafka_outq_len(rk) == 0 ? 0 : 1;
done:
    free(line);
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    lp_config_destroy(config);
    return status;
}

int lp_cmd_erase(int argc, char **argv) {
    return requests(argc, argv, "erase", LP_OP_ERASE);
}

int lp_cmd_unsuppress(int argc, char **argv) {
    return requests(argc, argv, "unsuppress", LP_OP_UNSUPPRESS);
}
