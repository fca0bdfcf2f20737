/* leadpulse replay: the embedded default. Scores a file of events with the in-memory store through
 * the same engine the worker uses, and prints the hand-offs as JSON lines. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "leadpulse/account_stage.h"
#include "leadpulse/codec.h"
#include "leadpulse/engine.h"

#define REPLAY_BATCH 1000
#define REPLAY_TOPIC "replay"

typedef struct {
    char **ids;
    size_t n, cap; /* open addressing over ids; cap is a power of two */
    char **order;  /* in first-seen order, for the state dump */
} id_set_t;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ULL;
    }
    return h;
}

static int id_set_add(id_set_t *set, const char *id) {
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        char **ids = calloc(cap, sizeof(char *));
        char **order = realloc(set->order, cap * sizeof(char *));
        if (ids == NULL || order == NULL) {
            free(ids);
            return LP_ERR;
        }
        set->order = order;
        for (size_t i = 0; i < set->cap; i++) {
            if (set->ids[i] != NULL) {
                size_t j = str_hash(set->ids[i]) & (cap - 1);
                while (ids[j] != NULL) {
                    j = (j + 1) & (cap - 1);
                }
                ids[j] = set->ids[i];
            }
        }
        free(set->ids);
        set->ids = ids;
        set->cap = cap;
    }
    size_t j = str_hash(id) & (set->cap - 1);
    while (set->ids[j] != NULL) {
        if (strcmp(set->ids[j], id) == 0) {
            return LP_OK;
        }
        j = (j + 1) & (set->cap - 1);
    }
    set->ids[j] = strdup(id);
    if (set->ids[j] == NULL) {
        return LP_ERR;
    }
    set->order[set->n++] = set->ids[j];
    return LP_OK;
}

static void id_set_free(id_set_t *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->order[i]);
    }
    free(set->ids);
    free(set->order);
}

typedef struct {
    const lp_rules_t *rules;
    lp_store_t *store;
    lp_engine_t *engine;
    FILE *out;
    uint64_t lines, rejected, qualified, stale, erased, dead_letters;
    int64_t watermark;
    bool strict;
    bool failed;
    /* current batch */
    size_t n;
    lp_engine_msg_t msgs[REPLAY_BATCH];
    lp_event_t events[REPLAY_BATCH];
    char *raw[REPLAY_BATCH];
    size_t raw_len[REPLAY_BATCH];
    id_set_t leads;
    /* stage 2 of account qualification (rules with `accounts`), fed by the engine's outbox */
    lp_acct_stage_t *stage;
} replay_t;

typedef struct {
    const char *reason;
    size_t reason_len;
    int64_t offset;
} dlq_meta_t;

static void dlq_meta_cb(void *ctx, const char *name, size_t name_len, const char *value,
                        size_t value_len) {
    dlq_meta_t *m = ctx;
    if (name_len == 6 && memcmp(name, "reason", 6) == 0) {
        m->reason = value;
        m->reason_len = value_len;
    } else if (name_len == 13 && memcmp(name, "source_offset", 13) == 0) {
        m->offset = strtoll(value, NULL, 10);
    }
}

/* Prints hand-offs (JSON values) and reports dead letters with their line numbers. */
static int drain_outbox(replay_t *r) {
    for (;;) {
        lp_store_outbox_list_t list = {0};
        const char *ids[256];
        if (r->store->ops->outbox_read(r->store, 0, 256, &list) != LP_OK) {
            fprintf(stderr, "leadpulse replay: outbox: %s\n", r->store->errstr);
            return LP_ERR;
        }
        if (list.n == 0) {
            return LP_OK;
        }
        for (size_t i = 0; i < list.n; i++) {
            const lp_store_outbox_t *e = &list.entries[i];
            ids[i] = e->id;
            if (e->kind == LP_OUT_DLQ) {
                dlq_meta_t m = {"rejected", 8, -1};
                lp_engine_meta_foreach(e->meta, e->meta_len, dlq_meta_cb, &m);
                fprintf(stderr, "line %" PRId64 ": %.*s\n", m.offset, (int)m.reason_len, m.reason);
                r->rejected++;
                r->dead_letters++;
                if (r->strict) {
                    r->failed = true;
                }
                continue;
            }
            if (e->kind == LP_OUT_MEMBER || e->kind == LP_OUT_MARK) {
                if (lp_replay_accounts_take(r->stage, e->value, e->value_len) != LP_OK) {
                    return LP_ERR;
                }
                continue;
            }
            fwrite(e->value, 1, e->value_len, r->out);
            fputc('\n', r->out);
            if (e->kind == LP_OUT_QUALIFIED) {
                r->qualified++;
            } else if (e->kind == LP_OUT_ERASED) {
                r->erased++;
            } else {
                r->stale++;
            }
        }
        if (r->store->ops->outbox_ack(r->store, 0, lp_engine_epoch(r->engine, 0), list.n, ids) !=
            LP_OK) {
            fprintf(stderr, "leadpulse replay: outbox: %s\n", r->store->errstr);
            return LP_ERR;
        }
    }
}

static int fire_until(replay_t *r, int64_t until) {
    size_t fired;
    do {
        if (lp_engine_fire_timers(r->engine, 0, until, &fired) != LP_OK) {
            fprintf(stderr, "leadpulse replay: timers: %s\n", lp_engine_errstr(r->engine));
            return LP_ERR;
        }
        if (drain_outbox(r) != LP_OK) {
            return LP_ERR;
        }
    } while (fired > 0);
    return LP_OK;
}

static int flush_batch(replay_t *r) {
    if (r->n == 0) {
        return LP_OK;
    }
    if (lp_engine_process(r->engine, 0, r->msgs, r->n, 0) != LP_OK) {
        fprintf(stderr, "leadpulse replay: %s\n", lp_engine_errstr(r->engine));
        return LP_ERR;
    }
    r->n = 0;
    if (drain_outbox(r) != LP_OK ||
        lp_replay_accounts_release(r->stage, INT64_MIN, r->out) != LP_OK) {
        return LP_ERR;
    }
    /* Time advances with the events: fire every timer the event-time watermark has passed. */
    return fire_until(r, r->watermark);
}

/* A rejected line or record: reported at once, so that reports come in line order (every
 * rejection is found before the event is submitted: lp_engine_check_event). With --strict the
 * reading stops: the lines before it are applied, none after. */
static void reject(replay_t *r, const char *unit, int64_t lineno, const char *why,
                   bool dead_letter) {
    fprintf(stderr, "%s %" PRId64 ": %s\n", unit, lineno, why);
    r->rejected++;
    r->dead_letters += dead_letter ? 1 : 0;
    if (r->strict) {
        r->failed = true;
    }
}

static int add_event(replay_t *r, const lp_event_t *event, int64_t lineno, const char *raw,
                     size_t raw_len);

/* Submits a decoded event, or rejects it when the engine would dead-letter it. */
static int submit(replay_t *r, const lp_event_t *event, const char *unit, int64_t lineno,
                  const char *raw, size_t raw_len) {
    char why[512];
    const char *bad = lp_engine_check_event(r->engine, event, 0, why, sizeof(why));
    if (bad != NULL) {
        reject(r, unit, lineno, bad, true);
        return LP_OK;
    }
    return add_event(r, event, lineno, raw, raw_len);
}

static int add_event(replay_t *r, const lp_event_t *event, int64_t lineno, const char *raw,
                     size_t raw_len) {
    size_t i = r->n;
    r->events[i] = *event;
    free(r->raw[i]);
    r->raw[i] = malloc(raw_len + 1);
    if (r->raw[i] == NULL) {
        return LP_ERR;
    }
    memcpy(r->raw[i], raw, raw_len);
    r->raw[i][raw_len] = '\0';
    r->msgs[i] = (lp_engine_msg_t){
        .topic = REPLAY_TOPIC,
        .kind = event->kind,
        .format = LP_FORMAT_JSON,
        .partition = 0,
        .offset = lineno,
        .key = NULL,
        .value = (const uint8_t *)r->raw[i],
        .value_len = raw_len,
        .any_kind = true,
        .decoded = &r->events[i],
    };
    if (event->ts_ms > r->watermark) {
        r->watermark = event->ts_ms;
    }
    if (id_set_add(&r->leads, event->lead_id) != LP_OK) {
        return LP_ERR;
    }
    if (++r->n == REPLAY_BATCH) {
        return flush_batch(r);
    }
    return LP_OK;
}

static int read_json_lines(replay_t *r, FILE *in) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    char why[512];
    lp_event_t event;
    int rc = LP_OK;

    while (rc == LP_OK && !r->failed && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        r->lines++;
        if (lp_json_decode_event(line, (size_t)len, &event, why, sizeof(why)) != LP_OK) {
            reject(r, "line", lineno, why, false);
            continue;
        }
        rc = submit(r, &event, "line", lineno, line, (size_t)len);
    }
    free(line);
    return rc;
}

static int read_avro_file(replay_t *r, const char *path) {
    char why[512];
    lp_event_t event;
    int64_t record = 0;
    int rc = LP_OK;
    lp_avro_file_t *file = lp_avro_file_open(path, why, sizeof(why));
    if (file == NULL) {
        fprintf(stderr, "leadpulse replay: %s\n", why);
        return LP_ERR;
    }
    for (;;) {
        int got = lp_avro_file_next(file, &event, why, sizeof(why));
        if (got == 0 || rc != LP_OK || r->failed) {
            break;
        }
        record++;
        r->lines++;
        if (got < 0) {
            reject(r, "record", record, why, false);
            continue;
        }
        rc = submit(r, &event, "record", record, "", 0);
    }
    lp_avro_file_close(file);
    return rc;
}

static int dump_state(replay_t *r, const char *path) {
    FILE *f = fopen(path, "w");
    lp_lead_t lead;
    if (f == NULL) {
        perror(path);
        return LP_ERR;
    }
    for (size_t i = 0; i < r->leads.n; i++) {
        int got = lp_engine_get_lead(r->engine, 0, r->leads.order[i], &lead);
        if (got != 1) {
            continue;
        }
        char score[LP_JSON_DOUBLE_MAX], id[LP_ID_MAX * 6 + 1];
        lp_json_format_double(score, lp_lead_score_at(&lead, r->rules, lead.ref_ms));
        lp_json_escape(id, sizeof(id), lead.lead_id);
        fprintf(f,
                "{\"lead_id\":\"%s\",\"score\":%s,\"ref_ms\":%" PRId64
                ",\"stage\":\"%s\",\"fit_grade\":\"%c\",\"qualifications\":%" PRIu32 "}\n",
                id, score, lead.ref_ms, lp_stage_name((lp_stage_t)lead.stage),
                lead.fit_grade ? lead.fit_grade : 'D', lead.mql_seq);
    }
    fclose(f);
    return LP_OK;
}

static void replay_usage(FILE *out) {
    fprintf(
        out,
        "usage: leadpulse replay [--rules FILE] [--until TIME] [--strict] [--state-out FILE]\n"
        "                        [--partitions N] [--partitioner crc32|murmur2] [FILE|-]\n\n"
        "Scores events in memory and writes the hand-offs (LeadQualified, LeadStale, and with\n"
        "`accounts` in the rules AccountQualified, AccountStale) as JSON lines to stdout and a\n"
        "summary to stderr. FILE holds JSON lines or an Avro object container file (detected);\n"
        "'-' or no FILE reads JSON lines from stdin.\n\n"
        "  --rules FILE      scoring model (default: $LEADPULSE_RULES_PATH, else\n"
        "                    config/rules.yaml)\n"
        "  --until TIME      after the input, fire the timers due by TIME (ms since the epoch or\n"
        "                    2026-11-25T10:00:00Z); timers otherwise fire as event time passes\n"
        "  --strict          stop at the first bad line with exit status 1\n"
        "  --state-out FILE  write every lead's final state as JSON lines\n"
        "  --partitions N    the input topics' partition count (default 1): account hand-offs\n"
        "                    order member events by the progress of each lead's partition\n"
        "                    (docs/rules.md \"Order of member records\"); give the worker's\n"
        "                    count to get its account hand-offs exactly\n"
        "  --partitioner P   how producers pick a lead's partition: crc32 (default, as\n"
        "                    `leadpulse produce`) or murmur2 (the Java client's)\n"
        "  --config FILE     the worker configuration whose privacy.* keys apply (hand-off\n"
        "                    fields, suppression; default: $LEADPULSE_CONFIG, else the built-in\n"
        "                    defaults), with LEADPULSE_PRIVACY_* overrides as for the worker\n\n"
        "Lines {\"kind\":\"erasure\",\"lead_id\":...,\"ts\":...} erase a lead as a tombstone on\n"
        "the profiles topic does, {\"kind\":\"unsuppress\",...} lifts its suppression\n"
        "(docs/privacy.md).\n");
}

int lp_cmd_replay(int argc, char **argv) {
    static const struct option opts[] = {
        {"rules", required_argument, NULL, 'r'},
        {"until", required_argument, NULL, 'u'},
        {"strict", no_argument, NULL, 's'},
        {"state-out", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"partitions", required_argument, NULL, 'p'},
        {"partitioner", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = getenv("LEADPULSE_CONFIG");
    lp_config_t *config = NULL;
    const char *env_rules = getenv("LEADPULSE_RULES_PATH");
    const char *rules_path =
        env_rules != NULL && env_rules[0] != '\0' ? env_rules : "config/rules.yaml";
    const char *state_out = NULL;
    int64_t until = 0;
    bool have_until = false;
    bool strict = false;
    int32_t partitions = 1;
    lp_partitioner_t partitioner = LP_PARTITIONER_CRC32;
    char errstr[LP_ERRSTR];
    int c, status = 1;
    replay_t *r = NULL;
    lp_rules_t *rules = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "r:u:so:c:p:P:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            rules_path = optarg;
            break;
        case 'u':
            if (lp_cli_parse_time(optarg, &until) != LP_OK) {
                fprintf(stderr,
                        "leadpulse replay: --until %s: expected ms since the epoch or "
                        "YYYY-MM-DDTHH:MM:SS[.mmm]Z\n",
                        optarg);
                return 2;
            }
            have_until = true;
            break;
        case 's':
            strict = true;
            break;
        case 'p': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || v < 1 || v > LP_PARTITIONS_MAX) {
                fprintf(stderr, "leadpulse replay: --partitions %s: expected 1..%d\n", optarg,
                        LP_PARTITIONS_MAX);
                return 2;
            }
            partitions = (int32_t)v;
            break;
        }
        case 'P':
            if (lp_partitioner_parse(optarg, &partitioner) != 0) {
                fprintf(stderr, "leadpulse replay: --partitioner %s: crc32 or murmur2\n", optarg);
                return 2;
            }
            break;
        case 'o':
            state_out = optarg;
            break;
        case 'h':
            replay_usage(stdout);
            return 0;
        default:
            replay_usage(stderr);
            return 2;
        }
    }
    const char *input = optind < argc ? argv[optind] : "-";

    config = lp_config_load(config_path != NULL && config_path[0] != '\0' ? config_path : NULL,
                            errstr, sizeof(errstr));
    if (config == NULL) {
        fprintf(stderr, "leadpulse replay: %s\n", errstr);
        return 1;
    }
    rules = lp_rules_load(rules_path, errstr, sizeof(errstr));
    if (rules == NULL) {
        fprintf(stderr, "leadpulse replay: %s\n", errstr);
        lp_config_destroy(config);
        return 1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        goto done;
    }
    r->rules = rules;
    r->strict = strict;
    r->out = stdout;
    r->store = lp_store_mem_new();
    lp_engine_opts_t eopts = {
        .out_format = LP_FORMAT_JSON,
        .cache_max_leads = 0,
        .timer_batch = 10000,
        .handoff_fields = config->handoff_fields_mask,
        .suppression_ttl_ms = config->suppression_ttl_ms,
        .accounts = rules->accounts.enabled,
        .member_sources = partitions,
        .member_partitioner = partitioner,
    };
    memcpy(eopts.suppression_key, config->suppression_key_bytes, sizeof(eopts.suppression_key));
    if (r->store == NULL) {
        fprintf(stderr, "leadpulse replay: out of memory\n");
        goto done;
    }
    if (rules->accounts.enabled && (r->stage = lp_acct_stage_new(rules)) == NULL) {
        fprintf(stderr, "leadpulse replay: out of memory\n");
        goto done;
    }
    r->engine = lp_engine_new(&eopts, rules, r->store, NULL, errstr, sizeof(errstr));
    if (r->engine == NULL) {
        fprintf(stderr, "leadpulse replay: %s\n", errstr);
        goto done;
    }
    const char *topics[1] = {REPLAY_TOPIC};
    int64_t offset;
    if (lp_engine_assign(r->engine, 0, 1, topics, &offset) != LP_OK) {
        fprintf(stderr, "leadpulse replay: %s\n", lp_engine_errstr(r->engine));
        goto done;
    }

    int rc;
    if (strcmp(input, "-") == 0) {
        rc = read_json_lines(r, stdin);
    } else {
        FILE *in = fopen(input, "rb");
        char magic[4] = {0};
        if (in == NULL) {
            fprintf(stderr, "leadpulse replay: cannot open %s: %m\n", input);
            goto done;
        }
        size_t got = fread(magic, 1, 4, in);
        if (got == 4 && memcmp(magic, "Obj\x01", 4) == 0) {
            fclose(in);
            rc = read_avro_file(r, input);
        } else {
            rewind(in);
            rc = read_json_lines(r, in);
            fclose(in);
        }
    }
    if (rc == LP_OK) {
        /* With --strict too: the lines before the first bad one are scored and reported. */
        rc = flush_batch(r);
    }
    if (rc == LP_OK && !r->failed && have_until) {
        rc = fire_until(r, until);
    }
    if (rc == LP_OK && !r->failed && r->stage != NULL) {
        /* The end, as a worker whose clock reads --until (else the latest event time) sees it:
         * every partition's progress is at least that clock - lateness. */
        int64_t clock = have_until ? until : r->watermark;
        int64_t lateness = rules->accounts.lateness_ms;
        rc = lp_replay_accounts_release(
            r->stage, clock > INT64_MIN + lateness ? clock - lateness : INT64_MIN, r->out);
    }
    if (rc == LP_OK && state_out != NULL) {
        rc = dump_state(r, state_out);
    }
    fflush(r->out);
    const lp_engine_stats_t *st = lp_engine_stats(r->engine);
    fprintf(stderr,
            "replay: %" PRIu64 " events read, %zu leads, %" PRIu64 " MQLs, %" PRIu64
            " stale (sla_breached %" PRIu64 ", inactive %" PRIu64 ", cooled %" PRIu64 "), %" PRIu64
            " duplicates ignored, %" PRIu64 " rejected lines\n",
            r->lines, r->leads.n, r->qualified, r->stale, st->stale[LP_STALE_SLA_BREACHED],
            st->stale[LP_STALE_INACTIVE], st->stale[LP_STALE_COOLED], st->duplicates, r->rejected);
    if (r->erased > 0 || st->suppressed > 0 || st->unsuppressed > 0) {
        fprintf(stderr,
                "replay: %" PRIu64 " leads erased, %" PRIu64
                " events of suppressed leads dropped, %" PRIu64 " suppressions lifted\n",
                r->erased, st->suppressed, st->unsuppressed);
    }
    lp_replay_accounts_summary(r->stage, st, stderr);
    status = (rc == LP_OK && !r->failed) ? 0 : 1;
done:
    if (r != NULL) {
        lp_engine_destroy(r->engine);
        lp_store_destroy(r->store);
        lp_acct_stage_free(r->stage);
        for (size_t i = 0; i < REPLAY_BATCH; i++) {
            free(r->raw[i]);
        }
        id_set_free(&r->leads);
        free(r);
    }
    lp_rules_destroy(rules);
    lp_config_destroy(config);
    return status;
}
