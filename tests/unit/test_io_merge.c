/* The worker's merge, pure (io/merge.h): the release rule (which held records end probes
 * release, and when a topic with nothing buffered counts as caught up) and the selection of a
 * batch, case by case, including the incidents of docs/architecture.md items 6 and 8. */
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

static bool release(const probes_t *pr, int64_t n0, int64_t n1, int64_t n2, int64_t rel[3],
                    bool caught[3]) {
    const int64_t next[LP_EV__COUNT] = {n0, n1, n2};
    return lp_merge_release(pr->ring, pr->last, &pr->ends, next, GRACE, rel, caught);
}

static void test_no_probe_releases_nothing(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    assert_false(release(&pr, 0, 0, 0, rel, caught));
    /* A probe that did not cover this partition (assigned later) says nothing of it either. */
    probe(&pr, 100, false, 0, 0, 0);
    assert_false(release(&pr, 0, 0, 0, rel, caught));
}

static void test_one_probe_catches_up_but_releases_nothing(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    probe(&pr, 100, true, 5000, 40, 0);
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    /* Profiles and feedback are at their ends; nothing is released: no probe was answered a
     * grace before another was sent. */
    assert_false(caught[0]);
    assert_true(caught[1]);
    assert_true(caught[2]);
    assert_int_equal(rel[0], 0);
    assert_int_equal(rel[1], 0);
    assert_int_equal(rel[2], 0);
}

static void test_backlog_released_once_a_later_probe_confirms(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    probe(&pr, 100, true, 5000, 40, 0); /* answered at 102 */
    probe(&pr, 110, true, 5000, 40, 0); /* sent 8 ms after: too soon */
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 0);
    probe(&pr, 122, true, 5200, 40, 0); /* sent 20 ms after the first answer */
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 5000); /* the first probe's end: not 5200, appended since */
    assert_int_equal(rel[1], 40);
    assert_true(caught[1]);
    assert_true(caught[2]);
    /* The newest qualifying probe counts: the second one (answered at 112) once a probe is sent
     * at 132 or later. */
    probe(&pr, 131, true, 5300, 40, 0);
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 5000);
    probe(&pr, 132, true, 5300, 40, 0);
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 5000); /* the second probe's end was 5000 as well */
    probe(&pr, 150, true, 5400, 41, 0);
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 5200);
    /* The newest probe saw a profile update we have not fetched: profiles are not caught up
     * (the merge waits for it instead of releasing past it). */
    assert_false(caught[1]);
    assert_true(release(&pr, 10, 41, 0, rel, caught));
    assert_true(caught[1]);
}

static void test_unknown_position_or_failed_answer_is_not_caught_up(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    probe(&pr, 100, true, 5000, -1, 0);
    probe(&pr, 130, true, 5000, -1, 7);
    assert_true(release(&pr, 10, 40, -1, rel, caught));
    assert_false(caught[1]); /* the broker did not answer for profiles */
    assert_false(caught[2]); /* position unknown */
    assert_int_equal(rel[0], 5000);
    assert_int_equal(rel[1], 0);
    /* An empty topic (end 0) is caught up from position 0. */
    assert_true(release(&pr, 10, 40, 7, rel, caught));
    assert_true(caught[2]);
}

static void test_probe_missing_the_partition_is_skipped(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    probe(&pr, 100, true, 5000, 40, 0);
    probe(&pr, 130, false, 0, 0, 0); /* partition not owned at that time */
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    /* m is the first probe (the newest covering p): no earlier one, nothing released. */
    assert_int_equal(rel[0], 0);
    assert_true(caught[1]);
    probe(&pr, 140, true, 6000, 40, 0);
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 5000);
}

static void test_ring_forgets_old_probes(void **state) {
    (void)state;
    probes_t pr = {0};
    int64_t rel[3];
    bool caught[3];
    /* Probes every 5 ms: the qualifying one (answered >= 20 ms before the newest was sent) is
     * 5 probes back, inside the ring. */
    for (int i = 0; i < 3 * LP_END_RING; i++) {
        probe(&pr, 100 + 5 * i, true, 1000 + i, 40, 0);
    }
    assert_true(release(&pr, 10, 40, 0, rel, caught));
    int last = 3 * LP_END_RING - 1;
    assert_int_equal(rel[0], 1000 + last - 5); /* sent at 100+5(last-5), answered 2 ms later */
    /* Probes further apart than the ring reaches: every one older than the ring is forgotten,
     * and the rest are too close together. */
    probes_t far = {0};
    probe(&far, 100, true, 1000, 40, 0);
    for (int i = 0; i < LP_END_RING; i++) {
        probe(&far, 200 + i, true, 2000 + i, 40, 0);
    }
    assert_true(release(&far, 10, 40, 0, rel, caught));
    assert_int_equal(rel[0], 0);
}

/* ---- lp_merge_select ---------------------------------------------------------------------- */

enum { ENG = LP_EV_ENGAGEMENT, PRO = LP_EV_PROFILE, FB = LP_EV_FEEDBACK };

typedef struct {
    lp_rec_t rec[LP_EV__COUNT][16];
    lp_merge_in_t in;
    lp_merge_wait_t wait;
    lp_merge_out_t out;
    int seq[64];
} mfx_t;

/* A snapshot at now = 10,000 ms with every topic caught up, grace 20 ms, nothing buffered. */
static void mfx_init(mfx_t *m) {
    memset(m, 0, sizeof(*m));
    for (int t = 0; t < LP_EV__COUNT; t++) {
        m->in.q[t] = m->rec[t];
        m->in.state[t] = LP_TOPIC_CAUGHT_UP;
        m->in.hi[t] = -1;
    }
    m->in.max = 64;
    m->in.now = 10000;
    m->in.grace_ms = GRACE;
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

/* The grace hold: a record younger than grace_ms waits while another topic has nothing
 * buffered (a record sent just before on it may be on its way); older ones go. */
static void test_select_grace_hold(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 0, GRACE - 1);
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_false(m.out.waited); /* a hold is no wait for a topic */
    mfx_init(&m);
    rec(&m, ENG, 5, 0, GRACE);
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
    /* grace 0: no hold */
    mfx_init(&m);
    m.in.grace_ms = 0;
    rec(&m, ENG, 5, 0, 0);
    run(&m);
    assert_int_equal(m.out.n, 1);
}

/* End probes lift the hold for a backlog (records below rel whose empty topics are caught up),
 * and a held record with a backlog of LP_MERGE_PROBE_BACKLOG behind it asks for a probe. */
static void test_select_probe_release(void **state) {
    (void)state;
    mfx_t m;
    mfx_init(&m);
    rec(&m, ENG, 5, 100, 0);
    rec(&m, ENG, 6, 101, 0);
    m.in.hi[ENG] = 100 + LP_MERGE_PROBE_BACKLOG;
    run(&m);
    assert_int_equal(m.out.n, 0);
    assert_true(m.out.want_probe);
    m.in.hi[ENG] = 100 + LP_MERGE_PROBE_BACKLOG - 1;
    run(&m);
    assert_false(m.out.want_probe); /* a live stream gains nothing from probes */
    m.in.probed = true;
    m.in.rel[ENG] = 101;
    m.in.caught[PRO] = true;
    m.in.caught[FB] = true;
    run(&m);
    assert_int_equal(m.out.n, 1); /* offset 100 released, 101 held */
    assert_int_equal(m.out.early, 1);
    m.in.caught[FB] = false;
    run(&m);
    assert_int_equal(m.out.n, 0); /* every empty topic must be caught up */
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
        cmocka_unit_test(test_no_probe_releases_nothing),
        cmocka_unit_test(test_one_probe_catches_up_but_releases_nothing),
        cmocka_unit_test(test_backlog_released_once_a_later_probe_confirms),
        cmocka_unit_test(test_unknown_position_or_failed_answer_is_not_caught_up),
        cmocka_unit_test(test_probe_missing_the_partition_is_skipped),
        cmocka_unit_test(test_ring_forgets_old_probes),
        cmocka_unit_test(test_select_orders_by_time_then_topic),
        cmocka_unit_test(test_select_waits_for_behind_or_unknown),
        cmocka_unit_test(test_select_stops_where_a_drained_topic_is_behind),
        cmocka_unit_test(test_select_gives_up_once_while_kafka_answers),
        cmocka_unit_test(test_select_grace_hold),
        cmocka_unit_test(test_select_probe_release),
        cmocka_unit_test(test_select_retry_limit),
        cmocka_unit_test(test_select_wait_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
