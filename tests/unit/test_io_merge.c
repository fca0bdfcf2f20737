/* The worker's merge, pure (io/merge.h): the probes a partition sees, the selection of a batch
 * and its grace hold (which end probes release a held record), case by case, including the
 * incidents of docs/architecture.md items 6 and 8, and a property: whatever the probes and
 * fetches do, no record is released while a record sent before it on another topic may still
 * come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "io/merge.h"

#define GRACE 20

typedef struct {
    lp_end_probe_t ring[LP_END_RING];
    uint64_t last;
    lp_part_ends_t ends;
} probes_t;

/* Records probe number last+1, sent at send_ms and answered 2 ms later, with these ends for the
 * partition (covered = false: the probe did not include it). */
static void probe(probes_t *pr, int64_t send_ms, bool covered, int64_t e0, int64_t e1, int64_t e2) {
    uint64_t seq = ++pr->last;
    size_t slot = seq % LP_END_RING;
    pr->ring[slot] = (lp_end_probe_t){.seq = seq, .send_ms = send_ms, .recv_ms = send_ms + 2};
    if (covered) {
        pr->ends.seq[slot] = seq;
        pr->ends.end[slot][0] = e0;
        pr->ends.end[slot][1] = e1;
        pr->ends.end[slot][2] = e2;
    }
}

static void test_probes_newest_first_covering_only(void **state) {
    (void)state;
    probes_t pr = {0};
    lp_probe_view_t v[LP_END_RING];
    assert_int_equal(lp_merge_probes(pr.ring, pr.last, &pr.ends, v), 0);
    probe(&pr, 100, true, 5000, 40, 0);
    probe(&pr, 110, false, 0, 0, 0); /* partition not owned at that time */
    probe(&pr, 120, true, 5100, -1, 0);
    assert_int_equal(lp_merge_probes(pr.ring, pr.last, &pr.ends, v), 2);
    assert_int_equal(v[0].send_ms, 120);
    assert_int_equal(v[0].recv_ms, 122);
    assert_int_equal(v[0].end[0], 5100);
    assert_int_equal(v[0].end[1], -1);
    assert_int_equal(v[1].send_ms, 100);
    assert_int_equal(v[1].end[0], 5000);
    /* The ring forgets: only the last LP_END_RING probes are seen. */
    for (int i = 0; i < 2 * LP_END_RING; i++) {
        probe(&pr, 200 + i, true, 6000 + i, 40, 0);
    }
    assert_int_equal(lp_merge_probes(pr.ring, pr.last, &pr.ends, v), LP_END_RING);
    assert_int_equal(v[0].send_ms, 200 + 2 * LP_END_RING - 1);
    assert_int_equal(v[LP_END_RING - 1].send_ms, 200 + LP_END_RING);
}

/* ---- lp_merge_select ---------------------------------------------------------------------- */

enum { ENG = LP_EV_ENGAGEMENT, PRO = LP_EV_PROFILE, FB = LP_EV_FEEDBACK };

typedef struct {
    lp_rec_t rec[LP_EV__COUNT][16];
    lp_probe_view_t probes[LP_END_RING];
    size_t nprobes_set;
    lp_merge_in_t in;
    lp_merge_wait_t wait;
    lp_merge_out_t out;
    int seq[64];
} mfx_t;

/* Adds an end probe sent at send_ms (answered 1 ms later) that found these ends, as the newest. */
static void mfx_probe(mfx_t *m, int64_t send_ms, int64_t e0, int64_t e1, int64_t e2) {
    memmove(m->probes + 1, m->probes, sizeof(m->probes[0]) * (LP_END_RING - 1));
    m->probes[0] =
        (lp_probe_view_t){.send_ms = send_ms, .recv_ms = send_ms + 1, .end = {e0, e1, e2}};
    m->nprobes_set += m->nprobes_set < LP_END_RING ? 1 : 0;
    m->in.nprobes = m->nprobes_set;
}

/* A snapshot at now = 10,000 ms with every topic caught up, grace 20 ms, nothing buffered, our
 * position 100 in every topic and one end probe, sent 1 ms ago, that found every topic there. */
static void mfx_init(mfx_t *m) {
    memset(m, 0, sizeof(*m));
    for (int t = 0; t < LP_EV__COUNT; t++) {
        m->in.q[t] = m->rec[t];
        m->in.state[t] = LP_TOPIC_CAUGHT_UP;
        m->in.hi[t] = -1;
        m->in.next[t] = 100;
    }
    m->in.max = 64;
    m->in.now = 10000;
    m->in.grace_ms = GRACE;
    m->in.probes = m->probes;
    m->nprobes_set = 0;
    mfx_probe(m, m->in.now - 1, 100, 100, 100);
}

/* Buffers a record of topic t with timestamp ts at offset off, arrived `age` ms before now. */
static void rec(mfx_t *m, int t, int64_t ts, int64_t off, int64_t age) {
    m->rec[t][m->in.nq[t]++] = (lp_rec_t){.offset = off, .ts = ts, .at = m->in.now - age};
}

static void run(mfx_t *m) {
    lp_merge_select(&m->in, &m->wait, &m->out, m->seq);
}

/* By timestamp; equal timestamps: profiles, then engagement, then feedback. */
static void test_select_orders_by_time_then_topic(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, 100);
    rec(&m, ENG, 7, 1, 100);
    rec(&m, PRO, 5, 0, 100);
    rec(&m, FB, 5, 0, 100);
    rec(&m, FB, 6, 1, 100);
    run(&m);
    const int want[] = {PRO, ENG, FB, FB, ENG};
    assert_int_equal(m.out.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m.seq[i], want[i]);
    }
    assert_false(m.out.waited);
    m.in.max = 2;
    run(&m);
    assert_int_equal(m.out.n, 2);
}

/* A topic with nothing buffered that is behind, or whose position is unknown (nothing fetched
 * yet, watermarks distrusted after an outage, an assignment or a resume), stops the merge: the
 * chaos test saw a broker restart apply engagement before older sales feedback when an earlier
 * version gave up after 2 s. */
static void test_select_waits_for_behind_or_unknown(void **state) {
    (void)state;
    for (int st = LP_TOPIC_BEHIND; st <= LP_TOPIC_UNKNOWN; st++) {
        mfx_t m;
        mfx_init(&m);
        rec(&m, ENG, 5, 0, 100);
        m.in.state[FB] = (lp_topic_state_t)st;
        run(&m);
        assert_int_equal(m.out.n, 0);
        assert_true(m.out.waited);
        assert_int_equal(m.out.wait_topic, FB);
        assert_int_equal(m.wait.waiting_since_ms, 10000);
        assert_false(m.out.gave_up);
    }
}

/* A topic drained by this very merge that is behind stops it there: its next records may be
 * older than the other topics' remaining ones. */
static void test_select_stops_where_a_drained_topic_is_behind(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, FB, 3, 0, 100);
    rec(&m, ENG, 5, 0, 100);
    rec(&m, ENG, 9, 1, 100);
    m.in.state[FB] = LP_TOPIC_BEHIND;
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_int_equal(m.seq[0], FB);
    assert_true(m.out.waited);
}

/* The fail-safe: after LP_MERGE_MAX_WAIT_MS while Kafka answers, the merge goes on and says so
 * once; while Kafka is unreachable the clock does not run. */
static void test_select_gives_up_once_while_kafka_answers(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, 100);
    m.in.state[FB] = LP_TOPIC_BEHIND;
    m.wait.waiting_since_ms = m.in.now - LP_MERGE_MAX_WAIT_MS - 1;
    m.in.kafka_unsettled = true;
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_int_equal(m.wait.waiting_since_ms, m.in.now); /* restarted: Kafka was away */
    m.wait.waiting_since_ms = m.in.now - LP_MERGE_MAX_WAIT_MS - 1;
    m.in.kafka_unsettled = false;
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_true(m.out.gave_up);
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_false(m.out.gave_up); /* reported once per wait */
}

/* The grace hold: while another topic has nothing buffered, a record waits until a probe sent
 * grace_ms or more after its arrival found that topic at our position. */
static void test_select_grace_hold(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, GRACE - 1);
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_false(m.out.waited);     /* within its grace: a hold is no wait for a topic */
    assert_false(m.out.want_probe); /* a live record gains nothing from a probe yet */
    /* Its grace has passed, but the newest probe was sent before that: it waits for one, and
     * asks for it. */
    mfx_init(&m);
    rec(&m, ENG, 5, 0, GRACE);
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_true(m.out.want_probe);
    assert_true(m.out.waited);
    assert_int_equal(m.out.wait_state, LP_TOPIC_UNKNOWN);
    mfx_probe(&m, m.in.now, 100, 100, 100);
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_int_equal(m.out.early, 0);
    /* An older record goes with the probe sent after its grace. */
    mfx_init(&m);
    rec(&m, ENG, 5, 0, GRACE + 1);
    run(&m);
    assert_int_equal(m.out.n, 1);
    /* every topic has records: no hold */
    mfx_init(&m);
    rec(&m, ENG, 5, 0, 0);
    rec(&m, PRO, 6, 0, 0);
    rec(&m, FB, 7, 0, 0);
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_int_equal(m.seq[0], ENG);
    /* grace 0: no hold, no probe needed */
    mfx_init(&m);
    m.in.grace_ms = 0;
    m.in.nprobes = 0;
    rec(&m, ENG, 5, 0, 0);
    run(&m);
    assert_int_equal(m.out.n, 1);
}

/* The incident behind this rule (test_worker_cluster, once in ~20 CI runs): the consumer's
 * cached watermark said feedback was caught up while sales feedback sent 44 ms after an
 * engagement was applied before it; the engagement's topic-partition had not been fetched for
 * longer than the grace. Only a probe proves a position: one that found records still to fetch
 * on the empty topic keeps the record waiting (behind) until they are fetched. */
static void test_select_cached_watermark_is_no_proof(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    m.in.nprobes = m.nprobes_set = 0;
    rec(&m, FB, 50, 7, 500); /* arrived long ago; engagement says "caught up" by its cache */
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_true(m.out.want_probe);
    mfx_probe(&m, m.in.now - 1, 104, 100, 100); /* engagement holds 4 records we lack */
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_true(m.out.waited);
    assert_int_equal(m.out.wait_topic, ENG);
    assert_int_equal(m.out.wait_state, LP_TOPIC_BEHIND);
    /* They arrive (an older engagement among them goes first); a grace after, all go. */
    rec(&m, ENG, 40, 100, 30);
    rec(&m, ENG, 60, 101, 30);
    rec(&m, ENG, 61, 102, 30);
    rec(&m, ENG, 62, 103, 30);
    m.in.next[ENG] = 104;
    run(&m);
    const int want[] = {ENG, FB, ENG, ENG, ENG};
    assert_int_equal(m.out.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m.seq[i], want[i]);
    }
    /* A failed answer (-1) or an unknown position (-1) proves nothing. */
    mfx_init(&m);
    m.in.nprobes = m.nprobes_set = 0;
    rec(&m, FB, 50, 7, 500);
    mfx_probe(&m, m.in.now, -1, 100, 100);
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_int_equal(m.out.wait_state, LP_TOPIC_UNKNOWN);
    mfx_probe(&m, m.in.now, 100, 100, 100);
    m.in.next[PRO] = -1;
    run(&m);
    assert_int_equal(m.out.n, 0);
    m.in.next[PRO] = 100;
    run(&m);
    assert_int_equal(m.out.n, 1);
}

/* A backlog: a record that arrived just now but that a probe found appended (its offset below
 * that probe's end) is released a grace after that probe's answer, and counted as early; a
 * held record with a backlog of LP_MERGE_PROBE_BACKLOG behind it asks for a probe before its
 * grace has passed. */
static void test_select_probe_release(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    m.in.nprobes = m.nprobes_set = 0;
    rec(&m, ENG, 5, 100, 0);
    rec(&m, ENG, 6, 101, 0);
    m.in.next[ENG] = 102;
    m.in.hi[ENG] = 100 + LP_MERGE_PROBE_BACKLOG;
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_true(m.out.want_probe);
    assert_false(m.out.waited);
    m.in.hi[ENG] = 100 + LP_MERGE_PROBE_BACKLOG - 1;
    run(&m);
    assert_false(m.out.want_probe); /* a live stream gains nothing from early probes */
    /* Probe k (sent 9,970, answered 9,971) found engagement's end at 101: offset 100 was
     * appended by 9,971. Probe m, sent at 9,991 = 9,971 + grace, found the others at our
     * position: 100 goes, 101 waits for its own grace. */
    mfx_probe(&m, m.in.now - 30, 101, 100, 100);
    mfx_probe(&m, m.in.now - 10, 101, 100, 100);
    run(&m);
    assert_int_equal(m.out.n, 0); /* sent 9,990: 1 ms too soon */
    mfx_probe(&m, m.in.now - 9, 102, 100, 100);
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_int_equal(m.out.early, 1);
    /* Every empty topic must be found at our position. */
    mfx_probe(&m, m.in.now - 8, 102, 100, 101);
    m.in.probes = m.probes;
    m.in.nprobes = 1;
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_int_equal(m.out.wait_topic, -1); /* not due yet: a hold, not a wait */
}

/* A record held past its grace because no probe releases it is a wait for that topic: given
 * up (and reported) after LP_MERGE_MAX_WAIT_MS while Kafka answers, like any other. */
static void test_select_due_hold_fail_safe(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    m.in.nprobes = m.nprobes_set = 0;
    rec(&m, ENG, 5, 0, 100);
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_int_equal(m.wait.waiting_since_ms, m.in.now);
    m.wait.waiting_since_ms = m.in.now - LP_MERGE_MAX_WAIT_MS - 1;
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_true(m.out.gave_up);
}

/* The property: records of three topics appended over time, each arriving some time after its
 * append (at most the grace, as the rule assumes), fetched per topic with arbitrary stalls (a
 * topic-partition the client stops fetching), probes at arbitrary times, the cached watermark
 * always claiming "caught up". Whatever happens, the merge never applies a record r while a
 * topic with nothing buffered still has a record to fetch that was appended before r, and it
 * applies every record in the end. */
static uint64_t rnd_state;
static uint32_t rnd(void) {
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rnd_state >> 33);
}

static void test_select_property_no_overtaking(void **state) {
    (void)state;
    enum { N = 60 };
    for (int round = 0; round < 300; round++) {
        rnd_state = 0x9e3779b97f4a7c15ULL + (uint64_t)round;
        /* appended[t][i]: append time; arrival later by up to GRACE/2 network + stalls */
        int64_t app[LP_EV__COUNT][N];
        int n[LP_EV__COUNT];
        for (int t = 0; t < LP_EV__COUNT; t++) {
            n[t] = 1 + (int)(rnd() % N);
            int64_t at = 0;
            for (int i = 0; i < n[t]; i++) {
                at += 1 + rnd() % 40;
                app[t][i] = at;
            }
        }
        lp_rec_t recs[LP_EV__COUNT][N];
        size_t fetched[LP_EV__COUNT] = {0}, head[LP_EV__COUNT] = {0};
        int64_t stall_until[LP_EV__COUNT] = {0};
        lp_probe_view_t probes[LP_END_RING];
        size_t nprobes = 0;
        lp_merge_wait_t wait = {0};
        int seq[3 * N];
        size_t applied = 0, total = (size_t)(n[0] + n[1] + n[2]);
        for (int64_t now = 0; now < 20000 && applied < total; now++) {
            for (int t = 0; t < LP_EV__COUNT; t++) {
                if (now >= stall_until[t] && rnd() % 200 == 0) {
                    stall_until[t] = now + rnd() % 300; /* the client stops fetching t */
                }
                /* a record arrives within GRACE/2 of its append, unless t's fetch stalls */
                while ((int)fetched[t] < n[t] && now >= stall_until[t] &&
                       now >= app[t][fetched[t]] + (int64_t)(rnd() % (GRACE / 2))) {
                    recs[t][fetched[t]] = (lp_rec_t){.offset = (int64_t)fetched[t],
                                                     .ts = app[t][fetched[t]] * 7 % 1000,
                                                     .at = now};
                    fetched[t]++;
                }
            }
            if (rnd() % 5 == 0) {
                /* a probe sent now: every record appended by now counted */
                memmove(probes + 1, probes, sizeof(probes[0]) * (LP_END_RING - 1));
                lp_probe_view_t *pv = &probes[0];
                pv->send_ms = now;
                pv->recv_ms = now + 1 + rnd() % 3;
                for (int t = 0; t < LP_EV__COUNT; t++) {
                    int64_t e = 0;
                    while (e < n[t] && app[t][e] <= now) {
                        e++;
                    }
                    pv->end[t] = rnd() % 50 == 0 ? -1 : e;
                }
                nprobes += nprobes < LP_END_RING ? 1 : 0;
                /* answered later: only probes answered by now are seen */
            }
            lp_probe_view_t seen[LP_END_RING];
            size_t nseen = 0;
            for (size_t j = 0; j < nprobes; j++) {
                if (probes[j].recv_ms <= now) {
                    seen[nseen++] = probes[j];
                }
            }
            lp_merge_in_t in = {
                .max = 3 * N, .now = now, .grace_ms = GRACE, .probes = seen, .nprobes = nseen};
            for (int t = 0; t < LP_EV__COUNT; t++) {
                in.q[t] = recs[t] + head[t];
                in.nq[t] = fetched[t] - head[t];
                in.state[t] = LP_TOPIC_CAUGHT_UP; /* the cache claims so, even when stalled */
                in.hi[t] = -1;
                in.next[t] = (int64_t)fetched[t];
            }
            lp_merge_out_t out;
            lp_merge_select(&in, &wait, &out, seq);
            size_t at[LP_EV__COUNT] = {0};
            for (size_t i = 0; i < out.n; i++) {
                int t = seq[i];
                size_t idx = head[t] + at[t]++;
                /* no topic with nothing buffered still has a record to fetch that was
                 * appended before this one (a topic with records buffered is merged by
                 * timestamp: that is the merge's order, not the hold's) */
                for (int u = 0; u < LP_EV__COUNT; u++) {
                    if (u != t && head[u] + at[u] == fetched[u] && (int)fetched[u] < n[u]) {
                        assert_true(app[u][fetched[u]] >= app[t][idx]);
                    }
                }
                applied++;
            }
            for (int t = 0; t < LP_EV__COUNT; t++) {
                head[t] += out.take[t];
            }
            assert_false(out.gave_up);
        }
        assert_int_equal(applied, total);
    }
}

/* A retried batch takes exactly what it took before: no waits, no holds. */
static void test_select_retry_limit(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, 0);
    rec(&m, ENG, 6, 1, 0);
    rec(&m, PRO, 7, 0, 0);
    m.in.state[FB] = LP_TOPIC_UNKNOWN;
    const size_t limit[LP_EV__COUNT] = {[ENG] = 2, [PRO] = 0, [FB] = 0};
    m.in.limit = limit;
    run(&m);
    assert_int_equal(m.out.n, 2);
    assert_int_equal(m.out.take[ENG], 2);
    assert_int_equal(m.out.take[PRO], 0);
    assert_false(m.out.waited);
}

/* A wait that ends reports how long it lasted, and forgets it. */
static void test_select_wait_ends(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, 100);
    m.wait.waiting_since_ms = m.in.now - 500;
    m.wait.gave_up_reported = true;
    run(&m);
    assert_int_equal(m.out.n, 1);
    assert_int_equal(m.out.ended_wait_ms, 500);
    assert_int_equal(m.wait.waiting_since_ms, 0);
    assert_false(m.wait.gave_up_reported);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_newest_first_covering_only),
        cmocka_unit_test(test_select_orders_by_time_then_topic),
        cmocka_unit_test(test_select_waits_for_behind_or_unknown),
        cmocka_unit_test(test_select_stops_where_a_drained_topic_is_behind),
        cmocka_unit_test(test_select_gives_up_once_while_kafka_answers),
        cmocka_unit_test(test_select_grace_hold),
        cmocka_unit_test(test_select_cached_watermark_is_no_proof),
        cmocka_unit_test(test_select_probe_release),
        cmocka_unit_test(test_select_due_hold_fail_safe),
        cmocka_unit_test(test_select_property_no_overtaking),
        cmocka_unit_test(test_select_retry_limit),
        cmocka_unit_test(test_select_wait_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
