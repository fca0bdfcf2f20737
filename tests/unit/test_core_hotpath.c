/* The per-event fast paths of lp_score_apply: the de-duplication ring scanned by 32-bit halves
 * (SSE2), the cap window worked out from the event before the lead is read, and a duplicate or
 * dead-lettered event leaving the lead untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core_internal.h"
#include "core_fixture.h"

static uint64_t dedup_hash(const char *event_id) {
    return lp_hash64(event_id, strlen(event_id), LP_CORE_SEED_DEDUP) & LP_SEEN_MASK;
}

/* A ring of n ids, none equal to h, where `near` ones share h's low or high 32 bits. */
static void fill_ring(lp_lead_t *lead, int n, uint64_t h, int near) {
    lead->nseen = n;
    lead->seen_pos = n % LP_DEDUP_MAX;
    for (int i = 0; i < n; i++) {
        uint64_t v = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        if (near == 1) {
            v = (h & 0xffffffffULL) | (~h & 0xffffffff00000000ULL); /* same low half */
        } else if (near == 2) {
            v = (h & 0xffffffff00000000ULL) | (~h & 0xffffffffULL); /* same high half */
        } else if (near == 3) {
            v = i % 2 == 0 ? (h & 0xffffffffULL) | (~h & 0xffffffff00000000ULL)
                           : (h & 0xffffffff00000000ULL) | (~h & 0xffffffffULL);
        }
        lead->seen[i] = v == h ? v ^ 1 : v;
    }
}

/* Every ring length, with h in every slot or in none, next to ids that share half of h's bits:
 * only the exact id is a duplicate. */
static void test_ring_matches_exactly(void **state) {
    (void)state;
    lp_rules_t rules;
    fx_rules(&rules);
    rules.dedup_window = LP_DEDUP_MAX;
    lp_facts_t facts = {0};
    lp_event_t ev = fx_engagement("lead-1", "email_open", T0);
    snprintf(ev.event_id, sizeof(ev.event_id), "ring-probe");
    uint64_t h = dedup_hash(ev.event_id);

    for (int n = 0; n <= LP_DEDUP_MAX; n++) {
        for (int near = 0; near < 4; near++) {
            for (int slot = -1; slot < n; slot++) {
                lp_lead_t lead;
                lp_lead_init(&lead, &rules, "lead-1");
                fill_ring(&lead, n, h, near);
                if (slot >= 0) {
                    lead.seen[slot] = h;
                }
                facts.n = 0;
                lp_apply_result_t res = lp_score_apply(&lead, &ev, &rules, &facts);
                assert_int_equal(res.duplicate, slot >= 0);
                assert_int_equal(res.changed, slot < 0);
            }
        }
    }
}

/* Slots past nseen are not part of the ring, even when they hold the id. */
static void test_ring_ignores_unused_slots(void **state) {
    (void)state;
    lp_rules_t rules;
    fx_rules(&rules);
    lp_facts_t facts = {0};
    lp_event_t ev = fx_engagement("lead-1", "email_open", T0);
    uint64_t h = dedup_hash(ev.event_id);
    for (int n = 0; n < 8; n++) {
        lp_lead_t lead;
        lp_lead_init(&lead, &rules, "lead-1");
        fill_ring(&lead, n, h, 0);
        for (int i = n; i < LP_DEDUP_MAX; i++) {
            lead.seen[i] = h;
        }
        assert_false(lp_score_apply(&lead, &ev, &rules, &facts).duplicate);
    }
}

/* A duplicate, a dead letter and a lead that already holds the id: not one byte of the lead
 * changes, although the event's worth was worked out before the lead was read. */
static void test_rejected_events_leave_lead_alone(void **state) {
    (void)state;
    lp_rules_t rules;
    fx_rules(&rules);
    lp_facts_t facts = {0};
    lp_lead_t lead, before;
    lp_lead_init(&lead, &rules, "lead-1");
    lp_event_t ev = fx_engagement("lead-1", "content_download", T0);
    assert_false(lp_score_apply(&lead, &ev, &rules, &facts).duplicate);
    memcpy(&before, &lead, sizeof(lead));

    ev.ts_ms = T0 + 5 * DAY_MS; /* would decay, open a new cap window and add points */
    facts.n = 0;
    lp_apply_result_t res = lp_score_apply(&lead, &ev, &rules, &facts);
    assert_true(res.duplicate);
    assert_false(res.changed);
    assert_int_equal(facts.n, 0);
    assert_memory_equal(&lead, &before, sizeof(lead));

    lp_event_t bad = fx_engagement("lead-1", "no_such_activity", T0 + DAY_MS);
    res = lp_score_apply(&lead, &bad, &rules, &facts);
    assert_int_equal(res.outcome, LP_DEAD_LETTER);
    assert_memory_equal(&lead, &before, sizeof(lead));
}

static int64_t ref_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Caps on a 7 ms window around 0, where truncating division would put t = -1 and t = 1 in the
 * same window: each window scores cap_count events whatever the arrival order, a late event
 * counts in its own window while that window is one of the LP_CAP_PAST before the newest, and a
 * machine event counts toward no cap. A small model of the rule (score.h) keeps the expected
 * counts per window. */
static void test_cap_windows_around_zero(void **state) {
    (void)state;
    lp_rules_t rules;
    fx_rules(&rules);
    rules.half_life_ms = 0; /* no decay: each scoring event adds exactly its points */
    int idx = 0;
    while (idx < rules.nactivities && strcmp(rules.activities[idx].name, "content_download") != 0) {
        idx++;
    }
    assert_true(idx < rules.nactivities);
    rules.activities[idx].cap_window_ms = 7;
    rules.activities[idx].cap_count = 2;
    double pts = rules.activities[idx].points;

    lp_lead_t lead;
    lp_lead_init(&lead, &rules, "lead-1");
    lp_facts_t facts = {0};
    enum { LOW = -20, HIGH = 60 }; /* window indexes the model can hold */
    int model_count[HIGH - LOW] = {0};
    int64_t newest = 0;
    bool fresh = true;
    int late_counted = 0, too_old = 0;
    double expect = 0;
    const int64_t times[] = {-15, -14, -8,  -7,  -7,  -1,  -20, 0,   1,   6,   6,   7,   13,
                             14,  -3,  21,  22,  23,  100, 99,  98,  96,  95,  -10, 50,  51,
                             300, 301, 302, 199, 198, 197, 196, 195, 194, 193, 192, 191, 192};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t t = times[i];
        lp_event_t ev = fx_engagement("lead-1", "content_download", t);
        ev.u.engagement.machine = i % 5 == 4;
        facts.n = 0;
        assert_int_equal(lp_score_apply(&lead, &ev, &rules, &facts).outcome, LP_APPLIED);
        if (ev.u.engagement.machine) {
            continue;
        }
        int64_t w = ref_floor_div(t, 7);
        assert_true(w >= LOW && w < HIGH);
        bool scores = false;
        if (fresh || w > newest) {
            newest = w;
            fresh = false;
        }
        if (w < newest - LP_CAP_PAST) {
            too_old++;
        } else if (model_count[w - LOW] < 2) {
            model_count[w - LOW]++;
            scores = true;
            late_counted += w < newest ? 1 : 0;
        }
        expect += scores ? pts : 0;
        assert_int_equal(lead.act[idx].cap_window, newest);
        assert_int_equal(lead.act[idx].cap_count, model_count[newest - LOW]);
        for (int k = 0; k < LP_CAP_PAST; k++) {
            int64_t pw = newest - 1 - k;
            int want = pw >= LOW ? model_count[pw - LOW] : 0;
            assert_int_equal(lead.cap_past[idx][k], want);
        }
        if (lead.score != expect) {
            fail_msg("event %zu t=%lld: score %g, want %g", i, (long long)t, lead.score, expect);
        }
    }
    assert_true(expect > 4 * pts);  /* the sequence did score in several windows */
    assert_true(late_counted >= 3); /* late events found room in their own windows */
    assert_true(too_old >= 2);      /* and some were past the windows kept */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_matches_exactly),
        cmocka_unit_test(test_ring_ignores_unused_slots),
        cmocka_unit_test(test_rejected_events_leave_lead_alone),
        cmocka_unit_test(test_cap_windows_around_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
