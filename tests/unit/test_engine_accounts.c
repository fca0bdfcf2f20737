/* Stage 1 and the order of stage 2 (docs/rules.md "Account score and MQA" and "Order of member
 * records"; src/engine/members.c, src/engine/account_stage.c):
 *
 * - the member records the engine sends: a record per applied event of a lead in an account,
 *   none for duplicates, a leave and a join when a profile update moves the lead, a leave when it
 *   is erased, per-lead sequence numbers, the order time max(P, ref) and the progress P;
 * - the property that makes account hand-offs reproducible: random histories (leads in a dozen
 *   accounts, profile moves, erasures, late events) scored as `replay` does (one engine
 *   partition standing for N sources) and as N worker partitions do (each partition's records
 *   in random batches, the partitions interleaved at random, the members topic's M partitions
 *   consumed in random chunks with copies of records re-sent, released at random moments) give
 *   exactly the same account hand-offs.
 *
 * The seed is printed on failure; LP_ACCOUNTS_SEED=N reruns one. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/account_engine.h"
#include "leadpulse/account_stage.h"
#include "leadpulse/codec.h"
#include "leadpulse/engine.h"
#include "leadpulse/hash.h"
#include "leadpulse/member_wire.h"
#include "leadpulse/rules.h"
#include "leadpulse/store.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
#define T0 1772409600000LL /* 2026-03-02T00:00:00Z */
#define LATENESS_MS HOUR_MS

static const char RULES[] =
    "model: {id: accounts-prop, version: \"1\"}\n"
    "score: {half_life: 7d, floor: 0, warm: 20, mql: 60, rearm: 30}\n"
    "activities:\n"
    "  demo_request: 40\n"
    "  form_fill: 20\n"
    "  web_visit: 3\n"
    "  email_click: 2\n"
    "  unsubscribe: {points: -20, engagement: false}\n"
    "fit:\n"
    "  rules:\n"
    "    - {field: seniority, in: [c_level, vp, director], points: 30}\n"
    "  grades: {A: 30, B: 20, C: 10}\n"
    "sla: {accept_within: 48h}\n"
    "accounts:\n"
    "  roles:\n"
    "    - {role: decision_maker, field: seniority, in: [c_level, vp]}\n"
    "    - {role: influencer, field: seniority, in: [director, manager]}\n"
    "  member_cap: 50\n"
    "  engaged_score: 10\n"
    "  role_points: {decision_maker: 20, influencer: 10}\n"
    "  mqa: {score: 90, engaged_members: 2, required_roles: [[decision_maker, influencer]],\n"
    "        rearm: 40}\n"
    "  stale: {quiet_after: 5d, accept_within: 3d}\n"
    "  max_members: 6\n"
    "  lateness: 1h\n";

static uint64_t rng;

static uint64_t next_u64(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int below(int n) {
    return (int)(next_u64() % (uint64_t)n);
}

static lp_rules_t *load_rules(void) {
    char err[LP_ERRSTR] = "";
    lp_rules_t *rules =
        lp_rules_load_buffer("accounts.yaml", RULES, strlen(RULES), err, sizeof(err));
    if (rules == NULL) {
        fail_msg("rules: %s", err);
    }
    return rules;
}

/* ---- events ------------------------------------------------------------------------------ */

static int nevents_made;

static void ev_engagement(lp_event_t *ev, const char *lead, int64_t ts, const char *type) {
    lp_event_init(ev, LP_EV_ENGAGEMENT);
    snprintf(ev->event_id, sizeof(ev->event_id), "e-%d", nevents_made++);
    snprintf(ev->lead_id, sizeof(ev->lead_id), "%s", lead);
    ev->ts_ms = ts;
    snprintf(ev->u.engagement.type, sizeof(ev->u.engagement.type), "%s", type);
}

static void ev_profile(lp_event_t *ev, const char *lead, int64_t ts, const char *email,
                       const char *account_id, const char *seniority) {
    lp_event_init(ev, LP_EV_PROFILE);
    snprintf(ev->event_id, sizeof(ev->event_id), "p-%d", nevents_made++);
    snprintf(ev->lead_id, sizeof(ev->lead_id), "%s", lead);
    ev->ts_ms = ts;
    if (email != NULL) {
        snprintf(ev->u.profile.email, sizeof(ev->u.profile.email), "%s", email);
    }
    if (account_id != NULL) {
        snprintf(ev->u.profile.account_id, sizeof(ev->u.profile.account_id), "%s", account_id);
    }
    if (seniority != NULL) {
        snprintf(ev->u.profile.seniority, sizeof(ev->u.profile.seniority), "%s", seniority);
    }
}

static void ev_feedback(lp_event_t *ev, const char *lead, int64_t ts, lp_feedback_outcome_t o) {
    lp_event_init(ev, LP_EV_FEEDBACK);
    snprintf(ev->event_id, sizeof(ev->event_id), "f-%d", nevents_made++);
    snprintf(ev->lead_id, sizeof(ev->lead_id), "%s", lead);
    ev->ts_ms = ts;
    ev->u.feedback.outcome = o;
}

static void ev_erase(lp_event_t *ev, const char *lead, int64_t ts) {
    lp_event_init(ev, LP_EV_PROFILE);
    ev->op = LP_OP_ERASE;
    snprintf(ev->event_id, sizeof(ev->event_id), "x-%d", nevents_made++);
    snprintf(ev->lead_id, sizeof(ev->lead_id), "%s", lead);
    ev->ts_ms = ts;
}

/* ---- running engines --------------------------------------------------------------------- */

static lp_engine_t *new_engine(const lp_rules_t *rules, lp_store_t *store, int32_t sources,
                               int32_t source_count) {
    const lp_engine_opts_t opts = {.out_format = LP_FORMAT_JSON,
                                   .cache_max_leads = 1024,
                                   .timer_batch = 100,
                                   .handoff_fields = LP_HANDOFF_ALL,
                                   .accounts = true,
                                   .member_sources = sources,
                                   .member_partitioner = LP_PARTITIONER_CRC32,
                                   .member_source_count = source_count};
    char err[LP_ERRSTR] = "";
    lp_engine_t *engine = lp_engine_new(&opts, rules, store, NULL, err, sizeof(err));
    if (engine == NULL) {
        fail_msg("engine: %s", err);
    }
    return engine;
}

static void process(lp_engine_t *engine, int32_t partition, const lp_event_t *evs, size_t n,
                    int64_t *offset) {
    lp_engine_msg_t msgs[64];
    assert_true(n <= 64);
    for (size_t j = 0; j < n; j++) {
        msgs[j] = (lp_engine_msg_t){.topic = "events",
                                    .kind = evs[j].kind,
                                    .format = LP_FORMAT_JSON,
                                    .partition = partition,
                                    .offset = (*offset)++,
                                    .value = (const uint8_t *)"{}",
                                    .value_len = 2,
                                    .any_kind = true,
                                    .op = evs[j].op,
                                    .decoded = &evs[j]};
    }
    assert_int_equal(lp_engine_process(engine, partition, msgs, n, 0), LP_OK);
}

typedef struct {
    lp_member_msg_t **out;
    size_t *cap, n;
    int32_t targets; /* > 1: every record of a bundle maps to its members_partition */
    int32_t target;
} drain_ctx_t;

static int take_msg(void *ctx, const lp_member_msg_t *m) {
    drain_ctx_t *c = ctx;
    if (c->n == *c->cap) {
        *c->cap = *c->cap ? *c->cap * 2 : 256;
        *c->out = realloc(*c->out, *c->cap * sizeof(**c->out));
        assert_non_null(*c->out);
    }
    if (c->targets > 1 && m->type != LP_MW_MARK) {
        const char *k = m->rec.account;
        assert_int_equal(lp_partition_of(LP_PARTITIONER_CRC32, k, strlen(k), c->targets),
                         c->target);
    }
    (*c->out)[c->n++] = *m;
    return LP_OK;
}

static void find_target(void *ctx, const char *name, size_t name_len, const char *value,
                        size_t value_len) {
    if (name_len == 17 && memcmp(name, "members_partition", 17) == 0 && value_len < 16) {
        char tmp[16];
        memcpy(tmp, value, value_len);
        tmp[value_len] = '\0';
        *(int32_t *)ctx = (int32_t)strtol(tmp, NULL, 10);
    }
}

/* The partition's outbox: member records (bundles) and marks decoded into out, in order (other
 * kinds skipped); with targets > 1, each bundle's records must map to the partition it names. */
static size_t drain_members_to(lp_store_t *store, lp_engine_t *engine, int32_t partition,
                               lp_member_msg_t **out, size_t *cap, size_t n, int32_t targets) {
    drain_ctx_t c = {out, cap, n, targets, 0};
    for (;;) {
        lp_store_outbox_list_t list = {0};
        const char *ids[512];
        assert_int_equal(lp_store_outbox_read(store, partition, 512, &list), LP_OK);
        if (list.n == 0) {
            return c.n;
        }
        for (size_t i = 0; i < list.n; i++) {
            const lp_store_outbox_t *e = &list.entries[i];
            ids[i] = e->id;
            if (e->kind != LP_OUT_MEMBER && e->kind != LP_OUT_MARK) {
                continue;
            }
            char why[128] = "";
            size_t before = c.n;
            c.target = -1;
            if (e->kind == LP_OUT_MEMBER) {
                lp_engine_meta_foreach(e->meta, e->meta_len, find_target, &c.target);
                assert_true(c.target >= 0);
            }
            if (lp_member_value_foreach(e->value, e->value_len, take_msg, &c, why, sizeof(why)) !=
                LP_OK) {
                fail_msg("decode: %s", why);
            }
            assert_true(c.n > before);
            assert_int_equal((*out)[before].type == LP_MW_MARK, e->kind == LP_OUT_MARK);
        }
        assert_int_equal(
            lp_store_outbox_ack(store, partition, lp_engine_epoch(engine, partition), list.n, ids),
            LP_OK);
    }
}

static size_t drain_members(lp_store_t *store, lp_engine_t *engine, int32_t partition,
                            lp_member_msg_t **out, size_t *cap, size_t n) {
    return drain_members_to(store, engine, partition, out, cap, n, 1);
}

/* ---- stage 1, case by case --------------------------------------------------------------- */

typedef struct {
    lp_rules_t *rules;
    lp_store_t *store;
    lp_engine_t *engine;
    int64_t offset;
    lp_member_msg_t *msgs;
    size_t cap, n;
} one_t;

static void one_setup(one_t *o) {
    memset(o, 0, sizeof(*o));
    o->rules = load_rules();
    o->store = lp_store_mem_new();
    o->engine = new_engine(o->rules, o->store, 1, 0);
    const char *topics[1] = {"events"};
    int64_t offs[1];
    assert_int_equal(lp_engine_assign(o->engine, 0, 1, topics, offs), LP_OK);
}

static void one_teardown(one_t *o) {
    lp_engine_destroy(o->engine);
    lp_store_destroy(o->store);
    lp_rules_destroy(o->rules);
    free(o->msgs);
}

/* Applies events one batch and returns the member messages it sent. */
static size_t one_run(one_t *o, const lp_event_t *evs, size_t n) {
    process(o->engine, 0, evs, n, &o->offset);
    o->n = 0;
    o->n = drain_members(o->store, o->engine, 0, &o->msgs, &o->cap, 0);
    return o->n;
}

static void test_member_records(void **state) {
    (void)state;
    one_t o;
    one_setup(&o);
    lp_event_t ev[4];

    /* a lead in no account sends nothing */
    ev_engagement(&ev[0], "L1", T0, "demo_request");
    assert_int_equal(one_run(&o, ev, 1), 0);
    /* its profile puts it in domain:acme.com: one member record (seq 1) and a mark */
    ev_profile(&ev[0], "L1", T0 + 1000, "jo@Acme.com", NULL, "vp");
    assert_int_equal(one_run(&o, ev, 1), 2);
    lp_member_msg_t *m = &o.msgs[0];
    assert_int_equal(m->type, LP_MW_MEMBER);
    assert_string_equal(m->rec.account, "domain:acme.com");
    assert_string_equal(m->rec.lead_id, "L1");
    assert_true(m->rec.seq == 1);
    assert_true(m->rec.event_ms == T0 + 1000);
    assert_true(m->st_ms == T0 + 1000);
    assert_true(m->rec.e > 39.99 && m->rec.e <= 40); /* 40 at T0, E at ref: a second later */
    assert_true(m->rec.ref_ms == T0 + 1000 || m->rec.ref_ms == T0);
    assert_int_equal(m->rec.role, LP_ROLE_DECISION_MAKER);
    assert_int_equal(m->rec.fit_grade, 'A');
    assert_true(m->rec.last_activity_ms == T0);
    assert_int_equal(o.msgs[1].type, LP_MW_MARK);
    assert_true(o.msgs[1].st_ms == T0 + 1000 - LATENESS_MS);
    assert_int_equal(o.msgs[1].source, 0);
    assert_int_equal(o.msgs[1].sources, 1);
    /* a duplicate sends nothing; a new event sends seq 2 */
    lp_event_t dup = ev[0];
    assert_int_equal(one_run(&o, &dup, 1), 0);
    ev_engagement(&ev[0], "L1", T0 + 2000, "web_visit");
    assert_int_equal(one_run(&o, ev, 1), 2);
    assert_true(o.msgs[0].rec.seq == 2 && o.msgs[0].rec.e > 42.99 && o.msgs[0].rec.e <= 43);
    /* an account id moves it: a leave of the old account, a join of the new, one number */
    ev_profile(&ev[0], "L1", T0 + 3000, NULL, " ACME-7 ", NULL);
    assert_int_equal(one_run(&o, ev, 1), 3);
    assert_int_equal(o.msgs[0].type, LP_MW_LEAVE);
    assert_string_equal(o.msgs[0].rec.account, "domain:acme.com");
    assert_int_equal(o.msgs[1].type, LP_MW_MEMBER);
    assert_string_equal(o.msgs[1].rec.account, "id:ACME-7");
    assert_true(o.msgs[0].rec.seq == 3 && o.msgs[1].rec.seq == 3);
    /* an accepted feedback is carried */
    ev_feedback(&ev[0], "L1", T0 + 4000, LP_FB_ACCEPTED);
    assert_int_equal(one_run(&o, ev, 1), 2);
    assert_true(o.msgs[0].rec.accepted_ms == T0 + 4000);
    /* a late event (2 h behind the partition's latest): ordered at the lead's ref, and the
     * progress is not moved back */
    ev_engagement(&ev[0], "L1", T0 - 2 * HOUR_MS, "email_click");
    assert_int_equal(one_run(&o, ev, 1), 1);
    assert_true(o.msgs[0].rec.event_ms == T0 - 2 * HOUR_MS);
    assert_true(o.msgs[0].st_ms == T0 + 4000);
    /* another lead's late event, behind the progress: ordered at the progress (late) */
    ev_profile(&ev[0], "L2", T0 - 3 * HOUR_MS, "al@acme.com", NULL, "director");
    assert_int_equal(one_run(&o, ev, 1), 1);
    assert_true(o.msgs[0].st_ms == T0 + 4000 - LATENESS_MS);
    assert_true(lp_engine_stats(o.engine)->member_late >= 1);
    /* an erasure: a leave with the next number, at the erased lead's latest time */
    ev_erase(&ev[0], "L1", T0 + 5000);
    assert_int_equal(one_run(&o, ev, 1), 2);
    assert_int_equal(o.msgs[0].type, LP_MW_LEAVE);
    assert_string_equal(o.msgs[0].rec.account, "id:ACME-7");
    assert_true(o.msgs[0].rec.seq == 6); /* after 5 records */
    assert_true(o.msgs[0].st_ms == T0 + 5000);
    /* free mail: no account */
    ev_profile(&ev[0], "L3", T0 + 6000, "x@gmail.com", NULL, NULL);
    assert_int_equal(one_run(&o, ev, 1), 0);
    one_teardown(&o);
}

/* The worker's partitions store their progress with their commits, a new owner continues from
 * it (and states it again in a mark), and the clock moves an idle partition's progress. */
static void test_progress_stored_and_clock(void **state) {
    (void)state;
    lp_rules_t *rules = load_rules();
    lp_store_t *store = lp_store_mem_new();
    lp_engine_t *engine = new_engine(rules, store, 0, 2);
    const char *topics[1] = {"events"};
    int64_t offs[1], offset = 0, stored = -1;
    lp_member_msg_t *msgs = NULL;
    size_t cap = 0, n;
    bool marked = false;
    lp_event_t ev[2];

    assert_int_equal(lp_engine_assign(engine, 1, 1, topics, offs), LP_OK);
    ev_profile(&ev[0], "L1", T0, "a@acme.com", NULL, "vp");
    ev_engagement(&ev[1], "L1", T0 + 10 * HOUR_MS, "web_visit");
    process(engine, 1, ev, 2, &offset);
    n = drain_members(store, engine, 1, &msgs, &cap, 0);
    assert_int_equal(n, 3); /* two records, one mark */
    assert_int_equal(msgs[0].source, 1);
    assert_int_equal(msgs[2].type, LP_MW_MARK);
    assert_int_equal(msgs[2].sources, 2);
    assert_true(msgs[2].st_ms == T0 + 10 * HOUR_MS - LATENESS_MS);
    assert_int_equal(lp_store_get_offset(store, 1, "@progress", &stored), LP_OK);
    assert_true(stored == T0 + 10 * HOUR_MS - LATENESS_MS);

    /* a new owner: an old event is ordered at the stored progress, and a mark is sent again */
    lp_engine_destroy(engine);
    engine = new_engine(rules, store, 0, 2);
    assert_int_equal(lp_engine_assign(engine, 1, 1, topics, offs), LP_OK);
    ev_engagement(&ev[0], "L2", T0, "web_visit");
    ev_profile(&ev[1], "L2", T0 + 1, "b@acme.com", NULL, NULL);
    process(engine, 1, ev, 2, &offset);
    n = drain_members(store, engine, 1, &msgs, &cap, 0);
    assert_int_equal(n, 1); /* the progress did not move: no mark */
    assert_true(msgs[0].st_ms == T0 + 10 * HOUR_MS - LATENESS_MS);
    /* restated on request (the worker does so now and then) */
    assert_int_equal(lp_engine_member_tick(engine, 1, T0, true, &marked), LP_OK);
    assert_true(marked);
    n = drain_members(store, engine, 1, &msgs, &cap, 0);
    assert_int_equal(n, 1);
    assert_int_equal(msgs[0].type, LP_MW_MARK);
    assert_true(msgs[0].st_ms == T0 + 10 * HOUR_MS - LATENESS_MS);

    /* the clock: an hour and a half later the progress moves to clock - lateness, once */
    int64_t now = T0 + 12 * HOUR_MS;
    assert_int_equal(lp_engine_member_tick(engine, 1, now, false, &marked), LP_OK);
    assert_true(marked);
    n = drain_members(store, engine, 1, &msgs, &cap, 0);
    assert_int_equal(n, 1);
    assert_true(msgs[0].st_ms == now - LATENESS_MS);
    assert_int_equal(lp_engine_member_tick(engine, 1, now + 500, false, &marked), LP_OK);
    assert_false(marked); /* less than a second later */
    assert_int_equal(lp_engine_member_tick(engine, 1, now + 1000, false, &marked), LP_OK);
    assert_true(marked);
    assert_int_equal(lp_store_get_offset(store, 1, "@progress", &stored), LP_OK);
    assert_true(stored == now + 1000 - LATENESS_MS);
    /* a clock behind the progress changes nothing */
    assert_int_equal(lp_engine_member_tick(engine, 1, T0, false, &marked), LP_OK);
    assert_false(marked);
    free(msgs);
    lp_engine_destroy(engine);
    lp_store_destroy(store);
    lp_rules_destroy(rules);
}

/* ---- the property ------------------------------------------------------------------------ */

#define NLEADS 90
#define NACC 12
#define MAXEV 6000

typedef struct {
    lp_event_t *ev;
    int n;
} history_t;

static void make_history(history_t *h) {
    static const char *const types[] = {"demo_request", "form_fill", "web_visit", "email_click",
                                        "unsubscribe"};
    static const char *const sen[] = {"c_level", "vp", "director", "manager", "individual"};
    h->ev = calloc(MAXEV, sizeof(*h->ev));
    assert_non_null(h->ev);
    h->n = 0;
    int64_t t = T0;
    while (h->n < 1500 + below(1500)) {
        t += 1 + below(40) * 60000; /* up to 40 minutes between events */
        char lead[16];
        int k = below(NLEADS);
        snprintf(lead, sizeof(lead), "lead-%03d", k);
        int64_t ts = t;
        if (below(10) == 0) {
            ts -= below(6) * HOUR_MS / 2; /* late: up to 2.5 h, some beyond lateness */
        }
        lp_event_t *ev = &h->ev[h->n++];
        int r = below(100);
        if (r < 8) {
            char email[64];
            int acc = (k + below(3)) % NACC; /* mostly a lead's own account, sometimes moves */
            if (below(8) == 0) {
                snprintf(email, sizeof(email), "p%d@gmail.com", k);
            } else {
                snprintf(email, sizeof(email), "p%d@acct%02d.example", k, acc);
            }
            char id[16];
            snprintf(id, sizeof(id), "ACC-%d", acc % 4);
            ev_profile(ev, lead, ts, email, below(10) == 0 ? id : NULL, sen[below(5)]);
        } else if (r < 11) {
            ev_feedback(ev, lead, ts, below(2) ? LP_FB_ACCEPTED : LP_FB_RECYCLED);
        } else if (r < 12) {
            ev_erase(ev, lead, ts);
        } else {
            ev_engagement(ev, lead, ts, types[below(5)]);
        }
        if (below(30) == 0 && h->n < MAXEV) {
            h->ev[h->n] = *ev; /* a redelivered duplicate */
            h->n++;
        }
    }
}

static int emit_json(void *ctx, const lp_account_fact_t *fact) {
    char ***list = ctx;
    static char buf[LP_JSON_ACCOUNT_FACT_MAX];
    size_t n = lp_json_encode_account_fact(fact, buf, sizeof(buf));
    assert_true(n > 0);
    size_t count = 0;
    while ((*list)[count] != NULL) {
        count++;
    }
    *list = realloc(*list, (count + 2) * sizeof(char *));
    (*list)[count] = strndup(buf, n);
    (*list)[count + 1] = NULL;
    return LP_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t count_of(char **list) {
    size_t n = 0;
    while (list[n] != NULL) {
        n++;
    }
    return n;
}

static void free_list(char **list) {
    for (size_t i = 0; list[i] != NULL; i++) {
        free(list[i]);
    }
    free(list);
}

static int64_t max_ts(const history_t *h) {
    int64_t m = 0;
    for (int i = 0; i < h->n; i++) {
        m = h->ev[i].ts_ms > m ? h->ev[i].ts_ms : m;
    }
    return m;
}

/* `replay`: one engine partition standing for n sources, the history in order, stage 2 released
 * after each batch and at the end. */
static char **run_replay(const lp_rules_t *rules, const history_t *h, int32_t nsrc) {
    lp_store_t *store = lp_store_mem_new();
    lp_engine_t *engine = new_engine(rules, store, nsrc, 0);
    lp_acct_stage_t *stage = lp_acct_stage_new(rules);
    const char *topics[1] = {"events"};
    int64_t offs[1], offset = 0;
    char **out = calloc(1, sizeof(char *));
    lp_member_msg_t *msgs = NULL;
    size_t cap = 0;
    assert_int_equal(lp_engine_assign(engine, 0, 1, topics, offs), LP_OK);
    for (int i = 0; i < h->n; i += 50) {
        size_t n = (size_t)(h->n - i < 50 ? h->n - i : 50);
        process(engine, 0, &h->ev[i], n, &offset);
        size_t got = drain_members(store, engine, 0, &msgs, &cap, 0);
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(lp_acct_stage_add(stage, &msgs[k]), LP_OK);
        }
        assert_int_equal(
            lp_acct_stage_release(stage, lp_acct_stage_watermark(stage), emit_json, &out), LP_OK);
    }
    int64_t end = max_ts(h) - LATENESS_MS, w = lp_acct_stage_watermark(stage);
    assert_int_equal(lp_acct_stage_release(stage, w > end ? w : end, emit_json, &out), LP_OK);
    free(msgs);
    lp_acct_stage_free(stage);
    lp_engine_destroy(engine);
    lp_store_destroy(store);
    return out;
}

#define NSTAGE 3

/* Workers: nsrc engine partitions (each lead in its crc32 partition), random batches of random
 * partitions; the members topic's NSTAGE partitions get each record by its account key and
 * every mark, plus re-sent copies; each stage-2 partition takes its records in random chunks and
 * releases at random moments. */
static void stored_drain(lp_store_t *store, lp_acct_engine_t *ae, int q, char ***out) {
    for (;;) {
        lp_store_outbox_list_t list = {0};
        const char *ids[256];
        assert_int_equal(lp_store_outbox_read(store, LP_ACCOUNT_PARTITION_BASE + q, 256, &list),
                         LP_OK);
        if (list.n == 0) {
            return;
        }
        for (size_t i = 0; i < list.n; i++) {
            const lp_store_outbox_t *e = &list.entries[i];
            ids[i] = e->id;
            assert_true(e->kind == LP_OUT_ACCOUNT_QUALIFIED || e->kind == LP_OUT_ACCOUNT_STALE);
            size_t count = count_of(*out);
            *out = realloc(*out, (count + 2) * sizeof(char *));
            (*out)[count] = strndup((const char *)e->value, e->value_len);
            (*out)[count + 1] = NULL;
        }
        int64_t epoch = lp_acct_engine_epoch(ae, q);
        assert_int_equal(
            lp_store_outbox_ack(store, LP_ACCOUNT_PARTITION_BASE + q, epoch, list.n, ids), LP_OK);
    }
}

/* One record of the members topic into a stored stage-2 partition, as the worker reads it. */
static void stored_feed(lp_acct_engine_t *ae, int q, const lp_member_msg_t *m, int64_t offset) {
    uint8_t buf[LP_MEMBER_WIRE_MAX];
    char why[128];
    size_t len = lp_member_msg_encode(m, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(lp_acct_engine_add(ae, q, buf, len, offset, why, sizeof(why)), LP_OK);
}

/* The end: every source's clock mark at `end` (past the topic's last offset). */
static void stored_feed_end(lp_acct_engine_t *ae, int q, int32_t nsrc, int64_t end, size_t offset) {
    for (int32_t src = 0; src < nsrc; src++) {
        lp_member_msg_t mark = {.type = LP_MW_MARK, .source = src, .sources = nsrc, .st_ms = end};
        stored_feed(ae, q, &mark, (int64_t)offset);
    }
}

/* A stored stage-2 partition: steps while it is ready; now and then it restarts (revoked and
 * assigned again: the records are read again from the offset it stored). */
static bool stored_steps(lp_store_t *store, lp_acct_engine_t *ae, int q, size_t *tpos,
                         char ***out) {
    while (lp_acct_engine_ready(ae, q)) {
        size_t applied = 0;
        assert_int_equal(lp_acct_engine_step(ae, q, &applied), LP_OK);
        if (below(4) == 0) {
            stored_drain(store, ae, q, out);
        }
        if (below(25) == 0) {
            int64_t off = -1;
            lp_acct_engine_revoke(ae, q);
            assert_int_equal(lp_acct_engine_assign(ae, q, &off), LP_OK);
            *tpos = off < 0 ? 0 : (size_t)off;
            return true;
        }
    }
    return false;
}

static char **run_workers(const lp_rules_t *rules, const history_t *h, int32_t nsrc, bool stored) {
    lp_store_t *store = lp_store_mem_new();
    lp_engine_t *engine = new_engine(rules, store, 0, nsrc);
    assert_int_equal(lp_engine_set_member_targets(engine, NSTAGE), LP_OK);
    const char *topics[1] = {"events"};
    int64_t offs[1];
    char **out = calloc(1, sizeof(char *));
    /* per source: its events in history order */
    lp_event_t **part = calloc((size_t)nsrc, sizeof(*part));
    int *plen = calloc((size_t)nsrc, sizeof(int)), *ppos = calloc((size_t)nsrc, sizeof(int));
    int64_t *poff = calloc((size_t)nsrc, sizeof(int64_t));
    for (int32_t p = 0; p < nsrc; p++) {
        part[p] = calloc((size_t)h->n, sizeof(lp_event_t));
        assert_int_equal(lp_engine_assign(engine, p, 1, topics, offs), LP_OK);
    }
    for (int i = 0; i < h->n; i++) {
        const char *id = h->ev[i].lead_id;
        int32_t p = lp_partition_of(LP_PARTITIONER_CRC32, id, strlen(id), nsrc);
        part[p][plen[p]++] = h->ev[i];
    }
    /* the members topic */
    lp_member_msg_t *topic[NSTAGE] = {0};
    size_t tlen[NSTAGE] = {0}, tcap[NSTAGE] = {0}, tpos[NSTAGE] = {0};
    lp_acct_stage_t *stage[NSTAGE];
    lp_acct_engine_t *ae = NULL;
    if (stored) {
        char err[LP_ERRSTR] = "";
        lp_acct_engine_opts_t ao = {.out_format = LP_FORMAT_JSON,
                                    .members_topic = "leads.members",
                                    .step_records = 1 + (size_t)below(30),
                                    .step_timers = 1 + (size_t)below(5)};
        ae = lp_acct_engine_new(&ao, rules, store, NULL, err, sizeof(err));
        if (ae == NULL) {
            fail_msg("account engine: %s", err);
        }
    }
    for (int q = 0; q < NSTAGE; q++) {
        stage[q] = lp_acct_stage_new(rules);
        if (stored) {
            int64_t off;
            assert_int_equal(lp_acct_engine_assign(ae, q, &off), LP_OK);
            assert_true(off == -1);
        }
    }
    lp_member_msg_t *msgs = NULL;
    size_t cap = 0;
    for (;;) {
        int32_t left = 0;
        for (int32_t p = 0; p < nsrc; p++) {
            left += ppos[p] < plen[p];
        }
        bool topic_left = false;
        for (int q = 0; q < NSTAGE; q++) {
            topic_left |= tpos[q] < tlen[q];
        }
        if (left == 0 && !topic_left) {
            break;
        }
        if (left > 0 && (below(2) == 0 || !topic_left)) {
            int32_t p;
            do {
                p = below(nsrc);
            } while (ppos[p] >= plen[p]);
            size_t n = 1 + (size_t)below(40);
            if (n > (size_t)(plen[p] - ppos[p])) {
                n = (size_t)(plen[p] - ppos[p]);
            }
            process(engine, p, &part[p][ppos[p]], n, &poff[p]);
            ppos[p] += (int)n;
            size_t got = drain_members_to(store, engine, p, &msgs, &cap, 0, NSTAGE);
            for (size_t k = 0; k < got; k++) {
                for (int q = 0; q < NSTAGE; q++) {
                    const char *key = msgs[k].rec.account;
                    if (msgs[k].type != LP_MW_MARK &&
                        lp_partition_of(LP_PARTITIONER_CRC32, key, strlen(key), NSTAGE) != q) {
                        continue;
                    }
                    int copies = below(20) == 0 ? 2 : 1; /* an outbox re-sent after a crash */
                    for (int c = 0; c < copies; c++) {
                        if (tlen[q] == tcap[q]) {
                            tcap[q] = tcap[q] ? tcap[q] * 2 : 256;
                            topic[q] = realloc(topic[q], tcap[q] * sizeof(*topic[q]));
                        }
                        topic[q][tlen[q]++] = msgs[k];
                    }
                }
            }
        } else {
            int q;
            do {
                q = below(NSTAGE);
            } while (tpos[q] >= tlen[q]);
            size_t n = 1 + (size_t)below(60);
            for (size_t k = 0; k < n && tpos[q] < tlen[q]; k++) {
                if (stored) {
                    stored_feed(ae, q, &topic[q][tpos[q]], (int64_t)tpos[q]);
                    tpos[q]++;
                    continue;
                }
                assert_int_equal(lp_acct_stage_add(stage[q], &topic[q][tpos[q]++]), LP_OK);
            }
            if (stored) {
                if (below(3) == 0) {
                    stored_steps(store, ae, q, &tpos[q], &out);
                }
            } else if (below(3) == 0) {
                assert_int_equal(lp_acct_stage_release(stage[q], lp_acct_stage_watermark(stage[q]),
                                                       emit_json, &out),
                                 LP_OK);
            }
        }
    }
    int64_t end = max_ts(h) - LATENESS_MS;
    if (stored) {
        /* the end: every source's clock mark, read after everything else (again after each
         * restart, with the rest of the topic from where the partition stood) */
        for (int q = 0; q < NSTAGE; q++) {
            stored_feed_end(ae, q, nsrc, end, tlen[q]);
            while (stored_steps(store, ae, q, &tpos[q], &out)) {
                while (tpos[q] < tlen[q]) {
                    stored_feed(ae, q, &topic[q][tpos[q]], (int64_t)tpos[q]);
                    tpos[q]++;
                }
                stored_feed_end(ae, q, nsrc, end, tlen[q]);
            }
            stored_drain(store, ae, q, &out);
            lp_acct_stage_free(stage[q]);
            free(topic[q]);
        }
        lp_acct_engine_destroy(ae);
    }
    for (int q = 0; q < NSTAGE && !stored; q++) {
        int64_t w = lp_acct_stage_watermark(stage[q]);
        assert_int_equal(lp_acct_stage_release(stage[q], w > end ? w : end, emit_json, &out),
                         LP_OK);
        assert_int_equal(lp_acct_stage_stats(stage[q])->late, 0);
        lp_acct_stage_free(stage[q]);
        free(topic[q]);
    }
    for (int32_t p = 0; p < nsrc; p++) {
        free(part[p]);
    }
    free(part);
    free(plen);
    free(ppos);
    free(poff);
    free(msgs);
    lp_engine_destroy(engine);
    lp_store_destroy(store);
    return out;
}

static void test_any_interleaving(void **state) {
    (void)state;
    lp_rules_t *rules = load_rules();
    const char *env = getenv("LP_ACCOUNTS_SEED");
    uint64_t base = env != NULL ? strtoull(env, NULL, 10) : 20261205;
    int runs = env != NULL ? 1 : 6;
    size_t total = 0, qualified = 0;
    for (int r = 0; r < runs; r++) {
        uint64_t seed = base + (uint64_t)r;
        rng = seed;
        history_t h;
        make_history(&h);
        int32_t nsrc = 1 + below(5);
        char **ref = run_replay(rules, &h, nsrc);
        size_t nref = count_of(ref);
        qsort(ref, nref, sizeof(char *), cmp_str);
        for (int k = 0; k < 3; k++) {
            char **got = run_workers(rules, &h, nsrc, k == 2);
            size_t ngot = count_of(got);
            qsort(got, ngot, sizeof(char *), cmp_str);
            for (size_t i = 0; i < nref && i < ngot; i++) {
                if (strcmp(ref[i], got[i]) != 0) {
                    fail_msg("seed %" PRIu64 " (%d sources, %s): hand-off %zu differs:\n replay "
                             "%s\n workers %s",
                             seed, nsrc, k == 2 ? "stored" : "memory", i, ref[i], got[i]);
                }
            }
            if (nref != ngot) {
                fail_msg("seed %" PRIu64 ": %zu hand-offs in replay, %zu by workers", seed, nref,
                         ngot);
            }
            free_list(got);
        }
        total += nref;
        for (size_t i = 0; i < nref; i++) {
            qualified += strstr(ref[i], "\"account_qualified\"") != NULL;
        }
        free_list(ref);
        free(h.ev);
    }
    /* the histories must exercise the model: qualifications and stale accounts happen */
    print_message("%zu account hand-offs (%zu MQAs) over %d histories\n", total, qualified, runs);
    assert_true(qualified >= (size_t)runs);
    assert_true(total > qualified);
    lp_rules_destroy(rules);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_records),
        cmocka_unit_test(test_progress_stored_and_clock),
        cmocka_unit_test(test_any_interleaving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
