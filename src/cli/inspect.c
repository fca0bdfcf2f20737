/* leadpulse inspect: prints the stored state of a lead (or of every lead, --all), or of an
 * account (--account KEY, or every account, --accounts), as JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/http.h"
#include "leadpulse/account_engine.h"
#include "leadpulse/codec.h"
#include "leadpulse/config.h"
#include "leadpulse/engine.h"

/* --all: every lead of partitions 0..partitions-1, one JSON line each (HSCAN, read-only). */
static int inspect_all(lp_store_t *store, const lp_rules_t *rules, lp_lead_t *lead,
                       int partitions) {
    uint64_t total = 0;
    char buf[16384];
    for (int p = 0; p < partitions; p++) {
        uint64_t cursor = 0;
        do {
            lp_store_scan_t page = {0};
            if (lp_store_scan(store, p, &cursor, 500, &page) != LP_OK) {
                fprintf(stderr, "leadpulse inspect: %s\n", store->errstr);
                return LP_ERR;
            }
            for (size_t i = 0; i < page.n; i++) {
                if (lp_lead_decode_keyed(lead, rules, page.ids[i], page.data[i], page.len[i]) !=
                    LP_OK) {
                    fprintf(stderr,
                            "leadpulse inspect: partition %d: stored state of %s is "
                            "unreadable\n",
                            p, page.ids[i]);
                    return LP_ERR;
                }
                size_t len = lp_http_lead_json(lead, rules, buf, sizeof(buf));
                if (len < 2) {
                    fprintf(stderr, "leadpulse inspect: %s: state too large to print\n",
                            page.ids[i]);
                    return LP_ERR;
                }
                printf("{\"partition\":%d,%.*s\n", p, (int)len - 1, buf + 1);
                total++;
            }
        } while (cursor != 0);
    }
    fprintf(stderr, "inspect: %llu leads in partitions 0..%d\n", (unsigned long long)total,
            partitions - 1);
    return LP_OK;
}

/* One stored account as a JSON line ({"partition": q, ...} when with_partition). A tombstone
 * (a forgotten account) prints nothing and counts as absent. LP_OK, 1 absent, LP_ERR. */
static int print_account(const lp_rules_t *rules, const char *key, const uint8_t *data, size_t len,
                         int q, bool with_partition) {
    if (lp_account_is_tombstone(data, len)) {
        return 1;
    }
    lp_account_state_t a;
    lp_account_init(&a);
    if (lp_account_decode(&a, data, len) != LP_OK) {
        fprintf(stderr,
                "leadpulse inspect: account partition %d: stored state of %s is unreadable\n", q,
                key);
        return LP_ERR;
    }
    int rc = LP_ERR;
    for (size_t size = 65536; size <= ((size_t)1 << 30); size *= 2) {
        char *buf = malloc(size);
        if (buf == NULL) {
            break;
        }
        size_t n = lp_json_encode_account_state(&a, rules, buf, size);
        if (n > 0) {
            if (with_partition) {
                printf("{\"partition\":%d,%.*s\n", q, (int)n - 1, buf + 1);
            } else {
                printf("%.*s\n", (int)n, buf);
            }
            rc = LP_OK;
        }
        free(buf);
        if (n > 0) {
            break;
        }
    }
    lp_account_free(&a);
    return rc;
}

/* --account KEY: its account partition is unknown here (crc32 of the key modulo the members
 * topic's count): partitions 0..partitions-1 are tried. --accounts: every account of them. */
static int inspect_accounts(lp_store_t *store, const lp_rules_t *rules, const char *key,
                            int partitions) {
    uint64_t total = 0;
    for (int q = 0; q < partitions; q++) {
        int32_t sp = LP_ACCOUNT_PARTITION_BASE + q;
        if (key != NULL) {
            lp_store_loaded_t loaded = {0};
            if (store->ops->load(store, sp, 1, &key, &loaded) != LP_OK) {
                fprintf(stderr, "leadpulse inspect: %s\n", store->errstr);
                return LP_ERR;
            }
            int rc = loaded.n == 1 && loaded.data[0] != NULL
                         ? print_account(rules, key, loaded.data[0], loaded.len[0], q, false)
                         : 1;
            lp_store_loaded_clear(&loaded);
            if (rc != 1) {
                return rc;
            }
            continue;
        }
        uint64_t cursor = 0;
        do {
            lp_store_scan_t page = {0};
            if (lp_store_scan(store, sp, &cursor, 200, &page) != LP_OK) {
                fprintf(stderr, "leadpulse inspect: %s\n", store->errstr);
                return LP_ERR;
            }
            for (size_t i = 0; i < page.n; i++) {
                if (strcmp(page.ids[i], LP_ACCOUNT_APPLIED_KEY) == 0) {
                    continue;
                }
                int rc = print_account(rules, page.ids[i], page.data[i], page.len[i], q, true);
                if (rc == LP_ERR) {
                    return LP_ERR;
                }
                total += rc == LP_OK;
            }
        } while (cursor != 0);
    }
    if (key != NULL) {
        fprintf(stderr, "leadpulse inspect: account %s not found in account partitions 0..%d\n",
                key, partitions - 1);
        return 1;
    }
    fprintf(stderr, "inspect: %llu accounts in account partitions 0..%d\n",
            (unsigned long long)total, partitions - 1);
    return LP_OK;
}

int lp_cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"account", required_argument, NULL, 'A'},
                                         {"accounts", no_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = getenv("LEADPULSE_CONFIG");
    int partitions = 256, c, status = 1;
    bool all = false, accounts = false;
    const char *account = NULL;
    char errstr[LP_ERRSTR];
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:p:aA:Sh", opts, NULL)) != -1) {
        if (c == 'a') {
            all = true;
        } else if (c == 'A') {
            account = optarg;
        } else if (c == 'S') {
            accounts = true;
        } else if (c == 'c') {
            config_path = optarg;
        } else if (c == 'p') {
            partitions = atoi(optarg);
        } else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: leadpulse inspect [--config FILE] [--partitions N] LEAD_ID\n"
                    "       leadpulse inspect [--config FILE] [--partitions N] --all\n"
                    "       leadpulse inspect [--config FILE] [--partitions N] --account KEY\n"
                    "       leadpulse inspect [--config FILE] [--partitions N] --accounts\n\n"
                    "Looks the lead up in Redis (partitions 0..N-1, default 256) and prints its\n"
                    "state as JSON; --all prints every lead of those partitions, one JSON line\n"
                    "each (with its partition). --account prints the account with this key\n"
                    "(id:<account_id> or domain:<domain>) from account partitions 0..N-1: its\n"
                    "score and engaged members at its time T, roles covered, qualification,\n"
                    "timers and every member; --accounts every account, one line each.\n"
                    "Read-only: it does not fence or change anything.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (partitions < 1) {
        fprintf(stderr, "leadpulse inspect: --partitions must be at least 1\n");
        return 2;
    }
    if ((account != NULL || accounts) && (all || optind < argc || (account != NULL && accounts))) {
        fprintf(stderr, "leadpulse inspect: --account KEY or --accounts, alone\n");
        return 2;
    }
    if (account != NULL && strlen(account) > LP_ACCOUNT_KEY_MAX) {
        fprintf(stderr, "leadpulse inspect: an account key has at most %d bytes\n",
                LP_ACCOUNT_KEY_MAX);
        return 2;
    }
    if (!all && account == NULL && !accounts &&
        (optind >= argc || strlen(argv[optind]) > LP_ID_MAX)) {
        fprintf(stderr, "leadpulse inspect: give one lead id (at most %d bytes)\n", LP_ID_MAX);
        return 2;
    }
    const char *lead_id = all || account != NULL || accounts ? NULL : argv[optind];
    lp_config_t *config = lp_config_load(config_path, errstr, sizeof(errstr));
    lp_rules_t *rules = NULL;
    lp_store_t *store = NULL;
    lp_lead_t *lead = malloc(sizeof(*lead));
    if (config == NULL) {
        fprintf(stderr, "leadpulse inspect: %s\n", errstr);
        free(lead);
        return 1;
    }
    rules = lp_rules_load(config->rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        fprintf(stderr, "leadpulse inspect: %s\n", errstr);
        goto done;
    }
    store = lp_store_redis_open(config->redis_cluster, config->redis_url, config->redis_prefix,
                                config->redis_timeout_ms, errstr, sizeof(errstr));
    if (store == NULL || lead == NULL) {
        fprintf(stderr, "leadpulse inspect: redis: %s\n", errstr);
        goto done;
    }
    if (all) {
        status = inspect_all(store, rules, lead, partitions) == LP_OK ? 0 : 1;
        goto done;
    }
    if (account != NULL || accounts) {
        if (!rules->accounts.enabled) {
            fprintf(stderr, "leadpulse inspect: the rules (%s) have no `accounts`\n",
                    config->rules_path);
            goto done;
        }
        status = inspect_accounts(store, rules, account, partitions) == LP_OK ? 0 : 1;
        goto done;
    }
    for (int p = 0; p < partitions; p++) {
        lp_store_loaded_t loaded = {0};
        const char *ids[1] = {lead_id};
        if (store->ops->load(store, p, 1, ids, &loaded) != LP_OK) {
            fprintf(stderr, "leadpulse inspect: %s\n", store->errstr);
            goto done;
        }
        if (loaded.n == 1 && loaded.data[0] != NULL) {
            char buf[16384];
            if (lp_lead_decode_keyed(lead, rules, lead_id, loaded.data[0], loaded.len[0]) !=
                LP_OK) {
                fprintf(stderr, "leadpulse inspect: stored state of %s is unreadable\n", lead_id);
                goto done;
            }
            size_t len = lp_http_lead_json(lead, rules, buf, sizeof(buf));
            printf("%.*s\n", (int)len, buf);
            status = 0;
            goto done;
        }
    }
    fprintf(stderr, "leadpulse inspect: lead %s not found in partitions 0..%d\n", lead_id,
            partitions - 1);
done:
    free(lead);
    lp_store_destroy(store);
    lp_rules_destroy(rules);
    lp_config_destroy(config);
    return status;
}
