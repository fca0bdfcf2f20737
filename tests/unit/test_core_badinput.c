/* Stored lead state is input too: regressions found by tests/fuzz/fuzz_lead_state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core_fixture.h"

/* A capped activity with points but no cap window yet (state written before the rules gave the
 * activity a cap) is written without the cap fields. Decoding used to give it the window of
 * ref_ms instead of 0, so decode(encode(x)) != x (crash-lead-cap-window-without-cap). */
static void test_activity_without_cap_window_round_trips(void **state) {
    static lp_rules_t rules;
    static lp_lead_t lead, back;
    uint8_t buf[LP_LEAD_ENCODED_MAX];
    size_t n;
    (void)state;

    fx_rules(&rules);
    int idx = -1;
    for (int i = 0; i < rules.nactivities; i++) {
        if (rules.activities[i].cap_window_ms > 0) {
            idx = i;
        }
    }
    assert_true(idx >= 0);
    lp_lead_init(&lead, &rules, "lead-1");
    lead.ref_ms = T0; /* many cap windows after the epoch */
    lead.act[idx].points = 10.125;
    lead.score = 10.125;
    n = lp_lead_encode(&lead, &rules, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(lp_lead_decode(&back, &rules, buf, n), LP_OK);
    assert_int_equal(back.act[idx].cap_window, 0);
    assert_int_equal(back.act[idx].cap_count, 0);
    assert_true(back.act[idx].points == 10.125);

    /* A window with no events counted keeps its index. */
    lead.act[idx].cap_window = T0 / rules.activities[idx].cap_window_ms - 3;
    n = lp_lead_encode(&lead, &rules, buf, sizeof(buf));
    assert_int_equal(lp_lead_decode(&back, &rules, buf, n), LP_OK);
    assert_int_equal(back.act[idx].cap_window, lead.act[idx].cap_window);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activity_without_cap_window_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
