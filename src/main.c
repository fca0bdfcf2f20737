/* leadpulse <command>: run, replay, inspect, check-config, produce, health, erase,
 * unsuppress, cluster-place, repartition. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "leadpulse %s — lead scoring and hand-off stream processor\n\n"
            "usage: leadpulse <command> [options]\n\n"
            "commands:\n"
            "  replay        score a file of events in memory and print the hand-offs\n"
            "  run           the worker: Kafka in, Redis state, hand-offs out\n"
            "  inspect       show the stored state of a lead\n"
            "  check-config  validate a configuration file and a rules file\n"
            "  produce       send a JSON-lines event file to the input topics (Avro)\n"
            "  health        ask a running worker's /healthz or /readyz (exit 0 if 200)\n"
            "  erase         ask the workers to erase leads (GDPR Art. 17; docs/privacy.md)\n"
            "  unsuppress    lift the suppression of erased leads that opted in again\n"
            "  cluster-place spread the partitions' slots evenly over a Redis Cluster's masters\n"
            "  repartition   move the leads' state after input partitions were added\n\n"
            "'leadpulse <command> --help' describes each command.\n",
            LP_VERSION);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"replay", lp_cmd_replay},
        {"run", lp_cmd_run},
        {"inspect", lp_cmd_inspect},
        {"check-config", lp_cmd_check_config},
        {"produce", lp_cmd_produce},
        {"health", lp_cmd_health},
        {"erase", lp_cmd_erase},
        {"unsuppress", lp_cmd_unsuppress},
        {"cluster-place", lp_cmd_cluster_place},
        {"repartition", lp_cmd_repartition},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("leadpulse %s\n", LP_VERSION);
        printf("librdkafka %s\n", rd_kafka_version_str());
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "leadpulse: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
