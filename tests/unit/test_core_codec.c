/* Lead encoding (round trip, size, activities by name, hostile input), deterministic ids and the
 * enum names. */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core_fixture.h"
#include "lead_assert.h"

/* A lead with a bit of everything: profile, activities, caps, timers, a rejection, seen ids. */
static void busy_lead(lp_lead_t *lead, const lp_rules_t *rules) {
    lp_facts_t facts = {0};
    lp_lead_init(lead, rules, "lead-000123");
    lp_event_t ev = fx_profile(lead->lead_id, T0);
    snprintf(ev.u.profile.email, sizeof(ev.u.profile.email), "ann@acme.io");
    snprintf(ev.u.profile.title, sizeof(ev.u.profile.title), "VP Eng");
    snprintf(ev.u.profile.company, sizeof(ev.u.profile.company), "Acme");
    ev.u.profile.company_size = 250;
    lp_score_apply(lead, &ev, rules, &facts);
    fx_engage(lead, rules, "form_submit", T0 + HOUR_MS, &facts);
    fx_engage(lead, rules, "content_download", T0 + 2 * HOUR_MS, &facts);
    fx_engage(lead, rules, "demo_request", T0 + 3 * HOUR_MS, &facts);
    assert_int_equal(lead->stage, LP_STAGE_MQL);
}

/* Keyed values leave the id to the key they are stored under. */
static void test_keyed(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, back;
    uint8_t buf[LP_LEAD_ENCODED_MAX], plain[LP_LEAD_ENCODED_MAX], again[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    busy_lead(&lead, &rules);

    size_t len = lp_lead_encode_keyed(&lead, &rules, buf, sizeof(buf));
    size_t plen = lp_lead_encode(&lead, &rules, plain, sizeof(plain));
    assert_true(len > 0 && plen > 0);
    assert_true(len < plen); /* the id's bytes are gone */
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, lead.lead_id, buf, len), LP_OK);
    assert_leads_equal(&lead, &back, rules.nactivities);
    assert_int_equal(lp_lead_encode_keyed(&back, &rules, again, sizeof(again)), len);
    assert_memory_equal(buf, again, len);

    /* the id comes from the key */
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, "lead-other", buf, len), LP_OK);
    assert_string_equal(back.lead_id, "lead-other");
    /* without a key, or with an empty one, a keyed value is refused */
    assert_int_equal(lp_lead_decode(&back, &rules, buf, len), LP_ERR);
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, "", buf, len), LP_ERR);
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, NULL, buf, len), LP_ERR);
    /* an unkeyed value (written before) keeps its own id */
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, "lead-other", plain, plen), LP_OK);
    assert_leads_equal(&lead, &back, rules.nactivities);
    /* truncated keyed values are refused, not overrun */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(lp_lead_decode_keyed(&back, &rules, lead.lead_id, buf, n), LP_ERR);
    }
}

static void test_round_trip(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, back;
    lp_facts_t facts = {0};
    uint8_t buf[LP_LEAD_ENCODED_MAX], again[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    rules.sla_ms = DAY_MS;
    rules.sla_reminder_ms = HOUR_MS;
    rules.sla_max_reminders = 3;
    rules.inactivity_ms = 5 * DAY_MS;

    busy_lead(&lead, &rules);
    lp_score_advance(&lead, &rules, T0 + 3 * HOUR_MS + DAY_MS + HOUR_MS, &facts);
    assert_int_equal(facts.n, 2); /* breach + first reminder: sla fields are set */
    lp_event_t fb = fx_feedback(lead.lead_id, LP_FB_REJECTED, LP_REJ_TIMING, T0 - 1);
    lp_lead_t rejected = lead;
    lp_score_apply(&rejected, &fb, &rules, &facts);

    const lp_lead_t *cases[] = {&lead, &rejected};
    for (int c = 0; c < 2; c++) {
        size_t len = lp_lead_encode(cases[c], &rules, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(lp_lead_decode(&back, &rules, buf, len), LP_OK);
        assert_leads_equal(cases[c], &back, rules.nactivities);
        /* canonical: encoding the decoded lead gives the same bytes */
        assert_int_equal(lp_lead_encode(&back, &rules, again, sizeof(again)), len);
        assert_memory_equal(buf, again, len);
        /* a buffer one byte short is refused, not overrun */
        assert_int_equal(lp_lead_encode(cases[c], &rules, again, len - 1), 0);
    }

    /* a fresh lead is tiny */
    lp_lead_init(&lead, &rules, "lead-1");
    size_t len = lp_lead_encode(&lead, &rules, buf, sizeof(buf));
    assert_true(len <= 12);
    assert_int_equal(lp_lead_decode(&back, &rules, buf, len), LP_OK);
    assert_leads_equal(&lead, &back, rules.nactivities);
}

/* Format 5: account_id (with its time), the latest acceptance and the member sequence take
 * space only when set; a lead without them is written as format 4, byte for byte. */
static void test_format5(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, back;
    lp_facts_t facts = {0};
    uint8_t v4[LP_LEAD_ENCODED_MAX], buf[LP_LEAD_ENCODED_MAX], again[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    busy_lead(&lead, &rules);
    size_t len4 = lp_lead_encode_keyed(&lead, &rules, v4, sizeof(v4));
    assert_true(len4 > 0);
    assert_int_equal(v4[0], 4);

    /* an account id through a profile update, an acceptance, a member sequence */
    lp_event_t ev = fx_profile(lead.lead_id, T0 + 4 * HOUR_MS);
    snprintf(ev.u.profile.account_id, sizeof(ev.u.profile.account_id), "ACME-7");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_string_equal(lead.profile.account_id, "ACME-7");
    assert_true(lead.account_id_ms == T0 + 4 * HOUR_MS);
    /* an older value does not replace it; a later one does */
    ev = fx_profile(lead.lead_id, T0 + 3 * HOUR_MS);
    snprintf(ev.u.profile.account_id, sizeof(ev.u.profile.account_id), "OLD");
    lp_score_apply(&lead, &ev, &rules, &facts);
    assert_string_equal(lead.profile.account_id, "ACME-7");
    lp_event_t fb = fx_feedback(lead.lead_id, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + 5 * HOUR_MS);
    lp_score_apply(&lead, &fb, &rules, &facts);
    assert_true(lead.accepted_ms == T0 + 5 * HOUR_MS);
    /* a late acceptance does not lower it */
    fb = fx_feedback(lead.lead_id, LP_FB_ACCEPTED, LP_REJ_NONE, T0 + HOUR_MS);
    lp_score_apply(&lead, &fb, &rules, &facts);
    assert_true(lead.accepted_ms == T0 + 5 * HOUR_MS);
    lead.member_seq = 123456789012ULL;

    for (int keyed = 0; keyed < 2; keyed++) {
        size_t len = keyed ? lp_lead_encode_keyed(&lead, &rules, buf, sizeof(buf))
                           : lp_lead_encode(&lead, &rules, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(buf[0], 5);
        assert_int_equal(keyed ? lp_lead_decode_keyed(&back, &rules, lead.lead_id, buf, len)
                               : lp_lead_decode(&back, &rules, buf, len),
                         LP_OK);
        assert_leads_equal(&lead, &back, rules.nactivities);
        assert_string_equal(back.profile.account_id, "ACME-7");
        size_t again_len = keyed ? lp_lead_encode_keyed(&back, &rules, again, sizeof(again))
                                 : lp_lead_encode(&back, &rules, again, sizeof(again));
        assert_int_equal(again_len, len);
        assert_memory_equal(buf, again, len);
        for (size_t n = 0; n < len; n++) {
            int rc = keyed ? lp_lead_decode_keyed(&back, &rules, lead.lead_id, buf, n)
                           : lp_lead_decode(&back, &rules, buf, n);
            assert_int_equal(rc, LP_ERR);
        }
    }
    /* a format-4 value still decodes, with the new values unset */
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, lead.lead_id, v4, len4), LP_OK);
    assert_string_equal(back.profile.account_id, "");
    assert_true(back.accepted_ms == 0 && back.member_seq == 0 && back.account_id_ms == 0);
    /* format 5 with no flag set is refused: only format 4 may say "none" */
    uint8_t odd[LP_LEAD_ENCODED_MAX];
    memcpy(odd, v4, len4);
    odd[0] = 5;
    assert_int_equal(lp_lead_decode_keyed(&back, &rules, lead.lead_id, odd, len4), LP_ERR);
}

static void test_typical_size(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead;
    uint8_t buf[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    busy_lead(&lead, &rules);
    size_t len = lp_lead_encode(&lead, &rules, buf, sizeof(buf));
    print_message("typical lead (3 activities, 4 profile fields, 4 seen ids): %zu bytes\n", len);
    assert_true(len <= 140); /* 150 in format 1 */
    /* of which the de-duplication ring is 6 bytes per remembered id (format 4) */
    lead.nseen = 0;
    size_t bare = lp_lead_encode(&lead, &rules, buf, sizeof(buf));
    print_message("the same without remembered ids: %zu bytes\n", bare);
    assert_int_equal(len - bare, 2 + 4 * 6);
    assert_true(bare <= 105);
}

/* Activities are stored by name: reordering the rules keeps each activity's state, and an
 * activity the new rules no longer have is dropped. */
static void test_activities_by_name(void **state) {
    (void)state;
    lp_rules_t rules, reordered;
    lp_lead_t lead, back;
    uint8_t buf[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    busy_lead(&lead, &rules);
    size_t len = lp_lead_encode(&lead, &rules, buf, sizeof(buf));

    reordered = rules;
    for (int i = 0; i < rules.nactivities; i++) {
        reordered.activities[i] = rules.activities[rules.nactivities - 1 - i];
    }
    reordered.nactivities--; /* drops page_view, the first one of the old order */
    assert_int_equal(lp_lead_decode(&back, &reordered, buf, len), LP_OK);
    for (int i = 0; i < reordered.nactivities; i++) {
        int old = rules.nactivities - 1 - i;
        assert_string_equal(reordered.activities[i].name, rules.activities[old].name);
        assert_true(back.act[i].points == lead.act[old].points);
        assert_int_equal(back.act[i].cap_count, lead.act[old].cap_count);
    }
    assert_true(back.score == lead.score);

    /* unknown names are dropped */
    reordered.nactivities = 1;
    assert_int_equal(lp_lead_decode(&back, &reordered, buf, len), LP_OK);
    assert_string_equal(reordered.activities[0].name, "demo_request");
    assert_true(back.act[0].points == lead.act[7].points);
    assert_true(back.act[1].points == 0);
}

static void test_truncated_and_garbage(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t lead, back, untouched;
    uint8_t buf[LP_LEAD_ENCODED_MAX], bad[LP_LEAD_ENCODED_MAX + 16];
    unsigned seed = 99;
    fx_rules(&rules);
    busy_lead(&lead, &rules);
    size_t len = lp_lead_encode(&lead, &rules, buf, sizeof(buf));

    /* every proper prefix is an error, and leaves the output alone */
    memset(&untouched, 0x5a, sizeof(untouched));
    for (size_t n = 0; n < len; n++) {
        back = untouched;
        assert_int_equal(lp_lead_decode(&back, &rules, buf, n), LP_ERR);
        assert_memory_equal(&back, &untouched, sizeof(back));
    }
    /* trailing bytes */
    memcpy(bad, buf, len);
    bad[len] = 0;
    assert_int_equal(lp_lead_decode(&back, &rules, bad, len + 1), LP_ERR);
    /* an unknown version (1 to 4 are known) */
    bad[0] = 5;
    assert_int_equal(lp_lead_decode(&back, &rules, bad, len), LP_ERR);
    bad[0] = 0;
    assert_int_equal(lp_lead_decode(&back, &rules, bad, len), LP_ERR);
    /* an overlong varint */
    uint8_t varint[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(lp_lead_decode(&back, &rules, varint, sizeof(varint)), LP_ERR);
    /* a length past the end */
    uint8_t longstr[] = {1, 0, 0x7f, 'a'};
    assert_int_equal(lp_lead_decode(&back, &rules, longstr, sizeof(longstr)), LP_ERR);
    /* a NUL inside a string */
    uint8_t nul[] = {1, 0, 2, 'a', 0, 'A'};
    assert_int_equal(lp_lead_decode(&back, &rules, nul, sizeof(nul)), LP_ERR);
    uint8_t ok[] = {1, 0, 2, 'a', 'b', 'A'};
    assert_int_equal(lp_lead_decode(&back, &rules, ok, sizeof(ok)), LP_OK);
    assert_string_equal(back.lead_id, "ab");
    /* a bad grade and a stage out of range */
    uint8_t grade[] = {1, 0, 2, 'a', 'b', 'E'};
    assert_int_equal(lp_lead_decode(&back, &rules, grade, sizeof(grade)), LP_ERR);
    uint8_t stage[] = {1, 8, 2, 'a', 'b', LP_STAGE__COUNT, 'A'};
    assert_int_equal(lp_lead_decode(&back, &rules, stage, sizeof(stage)), LP_ERR);
    /* NaN score */
    uint8_t nan[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 'A'};
    assert_int_equal(lp_lead_decode(&back, &rules, nan, sizeof(nan)), LP_ERR);

    /* random mutations of a valid encoding, and random bytes: never crash (ASan/UBSan build),
     * and whatever decodes re-encodes */
    int decoded = 0;
    for (int trial = 0; trial < 20000; trial++) {
        size_t n = len;
        memcpy(bad, buf, len);
        if (trial % 4 == 0) {
            n = (size_t)(rand_r(&seed) % 200);
            for (size_t i = 0; i < n; i++) {
                bad[i] = (uint8_t)rand_r(&seed);
            }
            bad[0] = (uint8_t)(1 + trial % 8 / 4); /* version 1 or 2 */
        } else {
            int flips = 1 + rand_r(&seed) % 4;
            for (int k = 0; k < flips; k++) {
                bad[rand_r(&seed) % len] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
            }
        }
        if (lp_lead_decode(&back, &rules, bad, n) == LP_OK) {
            uint8_t re[LP_LEAD_ENCODED_MAX];
            decoded++;
            assert_true(back.stage < LP_STAGE__COUNT);
            assert_true(back.nseen >= 0 && back.nseen <= LP_DEDUP_MAX);
            assert_true(lp_lead_encode(&back, &rules, re, sizeof(re)) > 0);
        }
    }
    print_message("mutations that still decoded: %d of 20000\n", decoded);
}

static void test_decoded_lead_keeps_scoring(void **state) {
    (void)state;
    lp_rules_t rules;
    lp_lead_t a, b;
    lp_facts_t fa = {0}, fb = {0};
    uint8_t buf[LP_LEAD_ENCODED_MAX];
    fx_rules(&rules);
    rules.sla_ms = DAY_MS;
    busy_lead(&a, &rules);
    size_t len = lp_lead_encode(&a, &rules, buf, sizeof(buf));
    assert_int_equal(lp_lead_decode(&b, &rules, buf, len), LP_OK);
    /* the same continuation on the original and the stored copy: same facts, same state */
    lp_event_t ev = fx_engagement(a.lead_id, "email_click", T0 + 3 * DAY_MS);
    lp_score_apply(&a, &ev, &rules, &fa);
    lp_score_apply(&b, &ev, &rules, &fb);
    assert_int_equal(fa.n, fb.n);
    assert_true(fa.n >= 1);
    for (int i = 0; i < fa.n; i++) {
        assert_string_equal(fa.fact[i].event_id, fb.fact[i].event_id);
        assert_true(fa.fact[i].score == fb.fact[i].score);
    }
    /* the seen ring survived: the old event ids are still duplicates */
    lp_event_t dup = fx_engagement(a.lead_id, "email_click", T0 + 3 * DAY_MS);
    snprintf(dup.event_id, sizeof(dup.event_id), "%s", ev.event_id);
    assert_true(lp_score_apply(&b, &dup, &rules, &fb).duplicate);
}

static void test_event_ids(void **state) {
    (void)state;
    char a[LP_EVENT_ID_HEX + 1], b[LP_EVENT_ID_HEX + 1];
    lp_event_id_derive(a, "lead-1", "qualified", 1, 0);
    lp_event_id_derive(b, "lead-1", "qualified", 1, 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), LP_EVENT_ID_HEX);
    for (int i = 0; i < LP_EVENT_ID_HEX; i++) {
        assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    }
    const struct {
        const char *lead, *kind;
        uint32_t s1, s2;
    } other[] = {
        {"lead-1", "qualified", 2, 0},     {"lead-1", "qualified", 1, 1},
        {"lead-2", "qualified", 1, 0},     {"lead-1", "stale:cooled", 1, 0},
        {"lead-1\x1fqualified", "", 1, 0}, {"lead-11", "qualified", 0, 0},
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        lp_event_id_derive(b, other[i].lead, other[i].kind, other[i].s1, other[i].s2);
        assert_string_not_equal(a, b);
        /* both halves differ: they are independent hashes */
        assert_memory_not_equal(a, b, 16);
        assert_memory_not_equal(a + 16, b + 16, 16);
    }
    /* the halves of one id are not copies of each other */
    assert_memory_not_equal(a, a + 16, 16);

    /* facts carry the derived ids */
    lp_rules_t rules;
    lp_lead_t lead;
    lp_facts_t facts = {0};
    fx_rules(&rules);
    lp_lead_init(&lead, &rules, "lead-1");
    fx_engage(&lead, &rules, "demo_request", T0, &facts);
    fx_engage(&lead, &rules, "demo_request", T0, &facts);
    assert_int_equal(facts.n, 1);
    assert_string_equal(facts.fact[0].event_id, a);
    lp_score_advance(&lead, &rules, T0 + 30 * DAY_MS, &facts);
    assert_int_equal(facts.n, 2);
    lp_event_id_derive(b, "lead-1", "stale:cooled", 1, 0);
    assert_string_equal(facts.fact[1].event_id, b);
}

/* Emitted ids must never change between releases or hosts: a replay after an upgrade has to
 * re-send the same ids so consumers can de-duplicate. These values pin the id function. */
static void test_event_ids_stable(void **state) {
    (void)state;
    char id[LP_EVENT_ID_HEX + 1];
    lp_event_id_derive(id, "lead-1", "qualified", 1, 0);
    assert_string_equal(id, "106f23a6aa32c2c734792fa6862413e8");
    lp_event_id_derive(id, "L-42", "stale:sla_breached", 3, 2);
    assert_string_equal(id, "f8761cca0e78d97f72ddb27bc7dc853e");
}

static int cmp_id(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

static void test_many_ids_distinct(void **state) {
    (void)state;
    enum { N = 20000 };
    static char ids[N][LP_EVENT_ID_HEX + 1];
    for (int i = 0; i < N; i++) {
        char lead[16];
        snprintf(lead, sizeof(lead), "L%d", i / 4);
        lp_event_id_derive(ids[i], lead, "qualified", (uint32_t)(i % 4), 0);
    }
    qsort(ids, N, sizeof(ids[0]), cmp_id);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(ids[i - 1], ids[i]);
    }
}

static void test_names(void **state) {
    (void)state;
    const char *want[] = {"suspect",  "responder",    "warm",       "mql",        "sql",
                          "recycled", "disqualified", "closed_won", "closed_lost"};
    for (int i = 0; i < LP_STAGE__COUNT; i++) {
        assert_string_equal(lp_stage_name((lp_stage_t)i), want[i]);
        assert_int_equal(lp_stage_parse(want[i]), i);
    }
    assert_int_equal(lp_stage_parse("MQL"), LP_STAGE_MQL);
    assert_int_equal(lp_stage_parse("lead"), -1);
    assert_null(lp_stage_name(LP_STAGE__COUNT));
    assert_string_equal(lp_stale_reason_name(LP_STALE_SLA_BREACHED), "sla_breached");
    assert_string_equal(lp_stale_reason_name(LP_STALE_INACTIVE), "inactive");
    assert_string_equal(lp_stale_reason_name(LP_STALE_COOLED), "cooled");
    assert_null(lp_stale_reason_name((lp_stale_reason_t)3));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_format5),
        cmocka_unit_test(test_typical_size),
        cmocka_unit_test(test_keyed),
        cmocka_unit_test(test_activities_by_name),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_decoded_lead_keeps_scoring),
        cmocka_unit_test(test_event_ids),
        cmocka_unit_test(test_event_ids_stable),
        cmocka_unit_test(test_many_ids_distinct),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
