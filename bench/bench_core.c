/* bench_core: throughput of the scoring core alone (lp_score_apply on one core, no store, no I/O).
 *
 * usage: bench_core [events (default 10000000)] [leads (default 1000000)] [zipf s (default 1.1)]
 *
 * Generates the events first (Zipf-distributed over the leads, a mix of activity types like the
 * default model's, 1% machine-flagged, 2% late by up to an hour, event time spread over 30 days),
 * keeps the leads in an array indexed by lead number, then times two passes over the same events:
 *   baseline: build each lp_event_t and touch its lead (what any caller pays anyway);
 *   apply:    the same, plus lp_score_apply.
 * It prints both rates and the core's own rate, (apply - baseline) time per event. Times are the
 * thread's CPU time. It also prints the 1-minute load average before and after the timed passes:
 * CPU time leaves out the time other processes hold the core, not the cache lines and TLB entries
 * they evict, so a figure taken on a busy machine is not comparable with one from a quiet one.
 * Build it in Release: cmake -DCMAKE_BUILD_TYPE=Release. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "leadpulse/score.h"

#define DAY_MS (86400LL * 1000)
#define START_MS 1767225600000LL /* 2026-01-01 */

typedef struct {
    uint32_t lead;
    uint8_t type;
    uint8_t flags; /* FLAG_* */
    int64_t ts_ms;
} bench_event_t;

enum { FLAG_MACHINE = 1, FLAG_PRICING = 2 };

typedef struct {
    const char *name;
    double points;
    int cap_count;
    double weight; /* share of the generated events */
} bench_activity_t;

/* The default model's activities (config/rules.yaml), with a plausible traffic mix. */
static const bench_activity_t activities[] = {
    {"web_visit", 1, 10, 0.38},         {"email_open", 1, 3, 0.22},
    {"email_click", 3, 5, 0.14},        {"content_download", 8, 5, 0.07},
    {"webinar_registered", 5, 0, 0.04}, {"webinar_attended", 15, 0, 0.03},
    {"form_fill", 20, 3, 0.04},         {"qr_scan", 5, 2, 0.02},
    {"demo_request", 40, 0, 0.02},      {"unsubscribe", -20, 0, 0.02},
    {"email_bounce", -15, 0, 0.02},
};
#define NACT ((int)(sizeof(activities) / sizeof(activities[0])))

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(void) {
    return (double)(rng_next() >> 11) * 0x1.0p-53;
}

/* CPU time of this thread: the figures stay meaningful on a shared, busy machine (wall time
 * would count the time other processes hold the core). The wall-clock rate is printed too. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The 1-minute load average, or -1 where /proc/loadavg cannot be read. */
static double load_average(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1) {
            load = -1;
        }
        fclose(f);
    }
    return load;
}

static void build_rules(lp_rules_t *rules) {
    memset(rules, 0, sizeof(*rules));
    snprintf(rules->model_id, sizeof(rules->model_id), "b2b-default");
    snprintf(rules->model_version, sizeof(rules->model_version), "bench");
    rules->half_life_ms = 30.0 * DAY_MS;
    rules->warm_threshold = 40;
    rules->mql_threshold = 100;
    rules->rearm_level = 60;
    rules->min_fit_grade = 'D'; /* no profiles in this stream: let leads qualify */
    for (int i = 0; i < NACT; i++) {
        lp_activity_rule_t *a = &rules->activities[rules->nactivities++];
        snprintf(a->name, sizeof(a->name), "%s", activities[i].name);
        a->points = activities[i].points;
        a->is_engagement = a->points > 0;
        a->cap_count = activities[i].cap_count;
        a->cap_window_ms = DAY_MS;
    }
    lp_activity_rule_t *web = &rules->activities[0];
    snprintf(web->cond[0].url_prefix, sizeof(web->cond[0].url_prefix), "/pricing");
    web->cond[0].points = 10;
    snprintf(web->cond[1].url_prefix, sizeof(web->cond[1].url_prefix), "/demo");
    web->cond[1].points = 8;
    web->ncond = 2;
    rules->honor_machine_flag = true;
    rules->machine_click_within_s = 10;
    rules->grade_a = 60;
    rules->grade_b = 40;
    rules->grade_c = 20;
    rules->sla_ms = 2 * DAY_MS;
    rules->sla_reminder_ms = DAY_MS;
    rules->sla_max_reminders = 2;
    rules->inactivity_ms = 30 * DAY_MS;
    rules->inactive_stage = LP_STAGE_RESPONDER;
    rules->recycle_mode = LP_RECYCLE_RESET;
    rules->dedup_window = 16;
}

/* Zipf(s) over n ranks by inverse CDF with a guide table: O(1) expected per sample. */
typedef struct {
    double *cdf;
    uint32_t *guide;
    uint32_t n;
} zipf_t;

static int zipf_init(zipf_t *z, uint32_t n, double s) {
    double sum = 0;
    z->n = n;
    z->cdf = malloc(sizeof(double) * n);
    z->guide = malloc(sizeof(uint32_t) * (n + 1));
    if (z->cdf == NULL || z->guide == NULL) {
        return -1;
    }
    for (uint32_t k = 0; k < n; k++) {
        sum += pow((double)(k + 1), -s);
        z->cdf[k] = sum;
    }
    for (uint32_t k = 0; k < n; k++) {
        z->cdf[k] /= sum;
    }
    uint32_t k = 0;
    for (uint32_t j = 0; j <= n; j++) {
        while (k < n - 1 && z->cdf[k] < (double)j / n) {
            k++;
        }
        z->guide[j] = k;
    }
    return 0;
}

static uint32_t zipf_sample(const zipf_t *z) {
    double u = rng_unit();
    uint32_t k = z->guide[(uint32_t)(u * z->n)];
    while (k < z->n - 1 && z->cdf[k] < u) {
        k++;
    }
    return k;
}

/* "e" + decimal sequence number: cheap, unique event ids. */
static void format_id(char *out, uint64_t seq) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq != 0);
    *out++ = 'e';
    while (n > 0) {
        *out++ = tmp[--n];
    }
    *out = '\0';
}

static void fill_event(lp_event_t *event, const bench_event_t *src, uint64_t seq) {
    const char *name = activities[src->type].name;
    memcpy(event->u.engagement.type, name, strlen(name) + 1);
    if (src->flags & FLAG_PRICING) {
        memcpy(event->u.engagement.url, "/pricing/plans", 15);
    } else {
        event->u.engagement.url[0] = '\0';
    }
    event->u.engagement.machine = (src->flags & FLAG_MACHINE) != 0;
    event->ts_ms = src->ts_ms;
    format_id(event->event_id, seq);
}

int main(int argc, char **argv) {
    uint64_t nevents = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000ULL;
    uint32_t nleads = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000000u;
    double s = argc > 3 ? strtod(argv[3], NULL) : 1.1;
    lp_rules_t rules;
    zipf_t zipf = {NULL, NULL, 0};
    double cum[NACT];
    int rc = 1;

    if (nevents == 0 || nleads == 0) {
        fprintf(stderr, "usage: bench_core [events] [leads] [zipf s]\n");
        return 2;
    }
    build_rules(&rules);
    bench_event_t *events = malloc(sizeof(*events) * nevents);
    uint32_t *perm = malloc(sizeof(*perm) * nleads);
    /* The lead array is large (about 2 GB for 1M leads): back it with huge pages where the
     * kernel allows, so the figure measures the core rather than page-table walks. */
    size_t leads_size = sizeof(lp_lead_t) * nleads;
    lp_lead_t *leads =
        mmap(NULL, leads_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (leads == MAP_FAILED) {
        leads = NULL;
    } else if (getenv("BENCH_NO_HUGEPAGES") == NULL) {
        (void)madvise(leads, leads_size, MADV_HUGEPAGE);
    }
    lp_facts_t *facts = malloc(sizeof(*facts));
    lp_event_t *event = malloc(sizeof(*event));
    if (events == NULL || perm == NULL || leads == NULL || facts == NULL || event == NULL ||
        zipf_init(&zipf, nleads, s) != 0) {
        fprintf(stderr, "bench_core: out of memory\n");
        goto out;
    }

    /* 1. generate */
    double t = now_s();
    for (uint32_t i = 0; i < nleads; i++) { /* hot leads spread over the array, not adjacent */
        perm[i] = i;
    }
    for (uint32_t i = nleads - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rng_next() % (i + 1));
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    double acc = 0;
    for (int a = 0; a < NACT; a++) {
        acc += activities[a].weight;
        cum[a] = acc;
    }
    double span = 30.0 * DAY_MS;
    for (uint64_t i = 0; i < nevents; i++) {
        bench_event_t *ev = &events[i];
        double u = rng_unit() * acc;
        int a = 0;
        while (a < NACT - 1 && cum[a] < u) {
            a++;
        }
        ev->lead = perm[zipf_sample(&zipf)];
        ev->type = (uint8_t)a;
        ev->flags = 0;
        uint64_t r = rng_next();
        if (r % 100 == 0) {
            ev->flags |= FLAG_MACHINE;
        }
        if (a == 0 && (r >> 8) % 10 == 0) {
            ev->flags |= FLAG_PRICING;
        }
        ev->ts_ms = START_MS + (int64_t)(span * (double)i / (double)nevents);
        if ((r >> 16) % 50 == 0) { /* late by up to an hour */
            ev->ts_ms -= (int64_t)((r >> 24) % 3600000);
        }
    }
    double t_gen = now_s() - t;

    for (uint32_t i = 0; i < nleads; i++) {
        char id[24];
        snprintf(id, sizeof(id), "lead-%07" PRIu32, i);
        lp_lead_init(&leads[i], &rules, id);
    }
    lp_event_init(event, LP_EV_ENGAGEMENT);
    snprintf(event->lead_id, sizeof(event->lead_id), "lead");

    /* 2. baseline: everything but the apply */
    double load_before = load_average();
    double sink = 0;
    t = now_s();
    for (uint64_t i = 0; i < nevents; i++) {
        fill_event(event, &events[i], i);
        sink += leads[events[i].lead].score + (double)event->event_id[1];
    }
    double t_base = now_s() - t;

    /* 3. apply */
    uint64_t nfacts[LP_FACT_ERASED + 1] = {0}, dups = 0, dead = 0; /* by lp_fact_kind_t */
    double wall = wall_s();
    t = now_s();
    for (uint64_t i = 0; i < nevents; i++) {
        fill_event(event, &events[i], i);
        facts->n = 0;
        lp_apply_result_t res = lp_score_apply(&leads[events[i].lead], event, &rules, facts);
        dups += res.duplicate;
        dead += res.outcome == LP_DEAD_LETTER;
        for (int f = 0; f < facts->n; f++) {
            nfacts[facts->fact[f].kind]++;
        }
    }
    double t_apply = now_s() - t;
    wall = wall_s() - wall;
    double load_after = load_average();

    uint64_t stage_count[LP_STAGE__COUNT] = {0};
    for (uint32_t i = 0; i < nleads; i++) {
        stage_count[leads[i].stage]++;
    }
    double core = t_apply - t_base;
    printf("bench_core: %" PRIu64 " events, %" PRIu32
           " leads, zipf s=%.2f, sizeof(lp_lead_t)=%zu\n",
           nevents, nleads, s, sizeof(lp_lead_t));
    printf("  generate            %8.3f s  %12.0f events/s\n", t_gen, (double)nevents / t_gen);
    printf("  baseline (no apply) %8.3f s  %12.0f events/s\n", t_base, (double)nevents / t_base);
    printf("  apply               %8.3f s  %12.0f events/s\n", t_apply, (double)nevents / t_apply);
    printf("  core alone          %8.3f s  %12.0f events/s  (%.1f ns/event)\n", core,
           core > 0 ? (double)nevents / core : 0.0, core * 1e9 / (double)nevents);
    printf("  ratio apply/baseline %.2f   (CPU time; apply took %.3f s wall, %.0f events/s)\n",
           t_apply / t_base, wall, (double)nevents / wall);
    printf("  load average (1 min) %.2f before, %.2f after the timed passes\n", load_before,
           load_after);
    printf("  facts: %" PRIu64 " qualified, %" PRIu64 " stale; duplicates %" PRIu64
           ", dead letters %" PRIu64 "\n",
           nfacts[LP_FACT_QUALIFIED], nfacts[LP_FACT_STALE], dups, dead);
    printf("  stages:");
    for (int i = 0; i < LP_STAGE__COUNT; i++) {
        printf(" %s=%" PRIu64, lp_stage_name((lp_stage_t)i), stage_count[i]);
    }
    printf("\n  (checksum %g)\n", sink);
    rc = 0;
out:
    free(events);
    free(perm);
    if (leads != NULL) {
        munmap(leads, leads_size);
    }
    free(facts);
    free(event);
    free(zipf.cdf);
    free(zipf.guide);
    return rc;
}
