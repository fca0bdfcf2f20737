/* leadpulse cluster-place: spreads the partitions' hash slots evenly over the masters of a Redis
 * Cluster (docs/scaling.md, "How partitions map to slots"). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "leadpulse/config.h"
#include "leadpulse/store.h"

int lp_cmd_cluster_place(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = getenv("LEADPULSE_CONFIG");
    int partitions = 0, dry_run = 0, c;
    char errstr[LP_ERRSTR];

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:p:nh", opts, NULL)) != -1) {
        if (c == 'c') {
            config_path = optarg;
        } else if (c == 'p') {
            partitions = atoi(optarg);
        } else if (c == 'n') {
            dry_run = 1;
        } else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: leadpulse cluster-place [--config FILE] --partitions N [--dry-run]\n\n"
                    "Redis Cluster (redis.mode: cluster): moves the hash slots of partitions\n"
                    "0..N-1 (N = the input topics' partition count) so that every master holds\n"
                    "an even share, with the fewest moves, by Redis's slot migration protocol.\n"
                    "Safe while workers run: a partition pauses while its slot moves. Run it\n"
                    "after creating the cluster and after adding or removing masters.\n"
                    "--dry-run prints the plan only.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (partitions < 1 || partitions > LP_PARTITIONS_MAX || optind != argc) {
        fprintf(stderr, "leadpulse cluster-place: give --partitions N (1..%d) and nothing else\n",
                LP_PARTITIONS_MAX);
        return 2;
    }
    lp_config_t *config = lp_config_load(config_path, errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse cluster-place: %s\n", errstr);
        return 1;
    }
    if (!config->redis_cluster) {
        fprintf(stderr, "leadpulse cluster-place: redis.mode is standalone; this is for a Redis "
                        "Cluster (redis.mode: cluster)\n");
        lp_config_destroy(config);
        return 1;
    }
    int moves = lp_store_redis_cluster_place(config->redis_url, config->redis_timeout_ms,
                                             partitions, dry_run, stdout, errstr, sizeof(errstr));
    lp_config_destroy(config);
    if (moves < 0) {
        fprintf(stderr, "leadpulse cluster-place: %s\n", errstr);
        return 1;
    }
    fprintf(stderr, "cluster-place: %d of %d partitions %s\n", moves, partitions,
            dry_run ? "would move" : "moved");
    return 0;
}
