/* Field-by-field equality of two leads, for the codec tests (doubles compared by their bytes,
 * so a NaN that round-trips compares equal). Include after <cmocka.h>. */
#ifndef LP_TEST_LEAD_ASSERT_H
#define LP_TEST_LEAD_ASSERT_H

#include "leadpulse/score.h"

static void assert_leads_equal(const lp_lead_t *a, const lp_lead_t *b, int nact) {
    assert_string_equal(a->lead_id, b->lead_id);
    assert_memory_equal(&a->score, &b->score, sizeof(a->score));
    assert_int_equal(a->ref_ms, b->ref_ms);
    assert_int_equal(a->last_activity_ms, b->last_activity_ms);
    assert_int_equal(a->stage, b->stage);
    assert_int_equal(a->fit_grade, b->fit_grade);
    assert_memory_equal(&a->fit_points, &b->fit_points, sizeof(a->fit_points));
    assert_int_equal(a->armed, b->armed);
    assert_string_equal(a->dq_reason, b->dq_reason);
    assert_int_equal(a->mql_seq, b->mql_seq);
    assert_int_equal(a->stale_seq, b->stale_seq);
    assert_int_equal(a->mql_at_ms, b->mql_at_ms);
    assert_int_equal(a->sla_deadline_ms, b->sla_deadline_ms);
    assert_int_equal(a->sla_reminders, b->sla_reminders);
    assert_int_equal(a->sla_breached, b->sla_breached);
    assert_int_equal(a->cooled_deadline_ms, b->cooled_deadline_ms);
    assert_int_equal(a->inactive_deadline_ms, b->inactive_deadline_ms);
    assert_int_equal(a->reject_reason, b->reject_reason);
    assert_int_equal(a->reject_count, b->reject_count);
    assert_memory_equal(&a->profile, &b->profile, sizeof(a->profile));
    for (int i = 0; i < nact; i++) {
        assert_memory_equal(&a->act[i].points, &b->act[i].points, sizeof(double));
        assert_int_equal(a->act[i].cap_window, b->act[i].cap_window);
        assert_int_equal(a->act[i].cap_count, b->act[i].cap_count);
        assert_memory_equal(a->cap_past[i], b->cap_past[i], sizeof(a->cap_past[i]));
    }
    assert_int_equal(a->feedback_ms, b->feedback_ms);
    assert_int_equal(a->recycled_at_ms, b->recycled_at_ms);
    assert_int_equal(a->account_id_ms, b->account_id_ms);
    assert_int_equal(a->accepted_ms, b->accepted_ms);
    assert_true(a->member_seq == b->member_seq);
    assert_memory_equal(a->profile_ms, b->profile_ms, sizeof(a->profile_ms));
    assert_int_equal(a->nseen, b->nseen);
    assert_int_equal(a->seen_pos, b->seen_pos);
    assert_memory_equal(a->seen, b->seen, sizeof(a->seen[0]) * (size_t)a->nseen);
}

#endif
