/* The merge's release rule (engine/merge.h): which held records end probes release, and when a
 * topic with nothing buffered counts as caught up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/merge.h"

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
    const int64_t next[LP_IN_TOPICS] = {n0, n1, n2};
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_probe_releases_nothing),
        cmocka_unit_test(test_one_probe_catches_up_but_releases_nothing),
        cmocka_unit_test(test_backlog_released_once_a_later_probe_confirms),
        cmocka_unit_test(test_unknown_position_or_failed_answer_is_not_caught_up),
        cmocka_unit_test(test_probe_missing_the_partition_is_skipped),
        cmocka_unit_test(test_ring_forgets_old_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
