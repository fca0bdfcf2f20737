/* lp_lead_decode over arbitrary bytes: the lead state stored in Redis is input too (a corrupted
 * value, a value written by another version, a key overwritten by hand). Properties: no crash or
 * UB; an accepted state re-encodes and decodes to the same lead; and the scoring core, fed that
 * state with an event and its timers, keeps producing state the store can decode. */
#include "fuzz_util.h"
#include "leadpulse/score.h"

/* Equal as values, field by field: struct padding is not part of the state (the decoder copies
 * activity structs by assignment), and doubles compare by ==, so 0.0 equals -0.0 ("absent"). */
#define SAME(f) (a->f == b->f)
#define SAME_STR(f) (strcmp(a->f, b->f) == 0)
static int lead_equal(const lp_lead_t *a, const lp_lead_t *b) {
    if (!SAME_STR(lead_id) || !SAME(score) || !SAME(ref_ms) || !SAME(last_activity_ms) ||
        !SAME(stage) || !SAME(fit_grade) || !SAME(fit_points) || !SAME(armed) ||
        !SAME_STR(dq_reason) || !SAME(mql_seq) || !SAME(stale_seq) || !SAME(mql_at_ms) ||
        !SAME(sla_deadline_ms) || !SAME(sla_reminders) || !SAME(sla_breached) ||
        !SAME(cooled_deadline_ms) || !SAME(inactive_deadline_ms) || !SAME(reject_reason) ||
        !SAME(reject_count) || !SAME(nseen) || !SAME(seen_pos) || !SAME(feedback_ms) ||
        !SAME(recycled_at_ms) || !SAME(account_id_ms) || !SAME(accepted_ms) || !SAME(member_seq)) {
        return 0;
    }
    if (!SAME_STR(profile.email) || !SAME_STR(profile.title) || !SAME_STR(profile.seniority) ||
        !SAME_STR(profile.industry) || !SAME_STR(profile.company) || !SAME(profile.company_size) ||
        !SAME_STR(profile.country) || !SAME_STR(profile.region) || !SAME_STR(profile.persona) ||
        !SAME_STR(profile.segment) || !SAME_STR(profile.owner) || !SAME_STR(profile.account_id)) {
        return 0;
    }
    for (int i = 0; i < LP_MAX_ACTIVITIES; i++) {
        if (!SAME(act[i].points) || !SAME(act[i].cap_window) || !SAME(act[i].cap_count)) {
            return 0;
        }
        for (int k = 0; k < LP_CAP_PAST; k++) {
            if (!SAME(cap_past[i][k])) {
                return 0;
            }
        }
    }
    for (int i = 0; i < LP_PROFILE_FIELDS; i++) {
        if (!SAME(profile_ms[i])) {
            return 0;
        }
    }
    for (int i = 0; i < a->nseen && i < LP_DEDUP_MAX; i++) {
        if (!SAME(seen[i])) {
            return 0;
        }
    }
    return 1;
}
#undef SAME
#undef SAME_STR

static void roundtrip(const lp_lead_t *lead, const lp_rules_t *rules, const char *when) {
    static uint8_t buf[LP_LEAD_ENCODED_MAX];
    static lp_lead_t back;
    size_t n = lp_lead_encode(lead, rules, buf, sizeof(buf));

    if (n == 0) {
        fuzz_fail("%s: lead does not encode", when);
    }
    memset(&back, 0, sizeof(back));
    if (lp_lead_decode(&back, rules, buf, n) != LP_OK) {
        fuzz_fail("%s: re-encoded lead does not decode", when);
    }
    if (!lead_equal(&back, lead)) {
        fuzz_fail("%s: encode/decode changed the lead", when);
    }
    /* The keyed form (what the worker stores) round-trips with its key (a store key is never
     * empty; the unkeyed form allows an empty id). */
    if (lead->lead_id[0] == '\0') {
        return;
    }
    n = lp_lead_encode_keyed(lead, rules, buf, sizeof(buf));
    memset(&back, 0, sizeof(back));
    if (n == 0 || lp_lead_decode_keyed(&back, rules, lead->lead_id, buf, n) != LP_OK ||
        !lead_equal(&back, lead)) {
        fuzz_fail("%s: keyed encode/decode changed the lead", when);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const lp_rules_t *rules = fuzz_default_rules();
    static lp_lead_t lead;
    static lp_event_t ev;
    static lp_facts_t facts;
    lp_apply_result_t res;

    memset(&lead, 0, sizeof(lead));
    /* Stored values are keyed (the worker's) or not (older ones, tools): both readers. */
    if (lp_lead_decode_keyed(&lead, rules, "lead-fuzz", data, size) != LP_OK) {
        return 0;
    }
    FUZZ_CHECK_STR(lead.lead_id);
    FUZZ_CHECK_STR(lead.dq_reason);
    FUZZ_CHECK_STR(lead.profile.owner);
    if (lead.stage >= LP_STAGE__COUNT || lead.fit_grade < 'A' || lead.fit_grade > 'D' ||
        lead.nseen < 0 || lead.nseen > LP_DEDUP_MAX || lead.seen_pos < 0 ||
        lead.seen_pos > LP_DEDUP_MAX ||
        lp_lead_score_at(&lead, rules, lead.ref_ms) < rules->floor) {
        fuzz_fail("decoded lead out of range");
    }
    roundtrip(&lead, rules, "decoded state");

    /* The worker then applies an event to the stored state and fires its timers. */
    lp_event_init(&ev, LP_EV_ENGAGEMENT);
    snprintf(ev.event_id, sizeof(ev.event_id), "fuzz-1");
    memcpy(ev.lead_id, lead.lead_id, sizeof(ev.lead_id));
    if (ev.lead_id[0] == '\0') {
        snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-fuzz");
    }
    ev.ts_ms = 1795600800000LL;
    snprintf(ev.u.engagement.type, sizeof(ev.u.engagement.type), "demo_request");
    facts.n = 0;
    res = lp_score_apply(&lead, &ev, rules, &facts);
    if (res.outcome != LP_APPLIED && res.outcome != LP_DEAD_LETTER) {
        fuzz_fail("outcome %d", (int)res.outcome);
    }
    roundtrip(&lead, rules, "after an event");
    for (int k = 0; k < 8 && lp_lead_next_due(&lead) != 0; k++) {
        facts.n = 0;
        lp_score_advance(&lead, rules, lp_lead_next_due(&lead), &facts);
        roundtrip(&lead, rules, "after a timer");
    }
    return 0;
}
