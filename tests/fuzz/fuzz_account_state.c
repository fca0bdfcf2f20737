/* lp_account_decode over arbitrary bytes: the account state stage 2 keeps in Redis is input too.
 * Properties: no crash or UB; an accepted state is within its limits and re-encodes to exactly
 * the bytes it came from (the format is canonical); and the account model, fed that state with
 * member records and the clock, keeps producing states that round-trip. */
#include "fuzz_util.h"
#include "leadpulse/account_state.h"
#include "leadpulse/score.h"

/* A model with accounts (config/rules.yaml has none): timers, roles, groups, a small
 * max_members so that leads go untracked. */
static const char *const ACCOUNT_RULES = "model: {id: fuzz, version: \"1\"}\n"
                                         "score: {half_life: 1d, mql: 100, floor: -20}\n"
                                         "activities: {a: 1}\n"
                                         "accounts:\n"
                                         "  member_cap: 60\n"
                                         "  role_points: {decision_maker: 20, blocker: -5}\n"
                                         "  mqa:\n"
                                         "    score: 50\n"
                                         "    engaged_members: 1\n"
                                         "    required_roles: [[decision_maker, user]]\n"
                                         "    rearm: 20\n"
                                         "  stale: {quiet_after: 2d, accept_within: 1d}\n"
                                         "  max_members: 3\n";

static const lp_rules_t *account_rules(void) {
    static lp_rules_t *rules;
    if (rules == NULL) {
        char err[LP_ERRSTR] = "";
        rules = lp_rules_load_buffer("fuzz-accounts.yaml", ACCOUNT_RULES, strlen(ACCOUNT_RULES),
                                     err, sizeof(err));
        if (rules == NULL) {
            fuzz_fail("accounts rules: %s", err);
        }
    }
    return rules;
}

/* The state round-trips: encodes, decodes, encodes to the same bytes. */
static void roundtrip(const lp_account_state_t *a, const char *when) {
    static lp_account_state_t back;
    size_t bound = lp_account_encode_bound(a), n, n2;
    uint8_t *buf, *buf2;

    if (a->nmembers == 0) {
        return; /* forgotten: nothing to store */
    }
    buf = malloc(bound);
    buf2 = malloc(bound);
    if (buf == NULL || buf2 == NULL) {
        fuzz_fail("out of memory");
    }
    n = lp_account_encode(a, buf, bound);
    if (n == 0) {
        fuzz_fail("%s: account does not encode", when);
    }
    lp_account_init(&back);
    if (lp_account_decode(&back, buf, n) != LP_OK) {
        fuzz_fail("%s: re-encoded account does not decode", when);
    }
    n2 = lp_account_encode(&back, buf2, bound);
    if (n2 != n || memcmp(buf, buf2, n) != 0) {
        fuzz_fail("%s: encode/decode changed the account", when);
    }
    lp_account_free(&back);
    free(buf);
    free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const lp_rules_t *rules = account_rules();
    static lp_account_state_t a;
    static lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
    static lp_member_record_t r;
    size_t nfacts, n;
    uint8_t *again;

    lp_account_init(&a);
    if (lp_account_decode(&a, data, size) != LP_OK) {
        if (a.nmembers != 0 || a.members != NULL) {
            fuzz_fail("a refused input changed the account");
        }
        return 0;
    }
    FUZZ_CHECK_STR(a.account);
    if (a.nmembers < 1 || a.nmembers > LP_ACCOUNT_MEMBERS_MAX || a.nuntracked < 0 ||
        a.nuntracked > LP_ACCOUNT_UNTRACKED_MAX || a.t_ms < 0) {
        fuzz_fail("decoded account out of range");
    }
    for (int32_t i = 0; i < a.nmembers; i++) {
        FUZZ_CHECK_STR(a.members[i].lead_id);
        if (a.members[i].fit_grade < 'A' || a.members[i].fit_grade > 'D' ||
            a.members[i].stage >= LP_STAGE__COUNT || a.members[i].role >= LP_ROLE__COUNT ||
            (i > 0 && strcmp(a.members[i - 1].lead_id, a.members[i].lead_id) >= 0)) {
            fuzz_fail("decoded member %d out of range", (int)i);
        }
    }
    again = malloc(lp_account_encode_bound(&a));
    if (again == NULL) {
        fuzz_fail("out of memory");
    }
    n = lp_account_encode(&a, again, lp_account_encode_bound(&a));
    if (n != size || memcmp(again, data, size) != 0) {
        fuzz_fail("accepted bytes that do not re-encode to themselves");
    }
    free(again);

    /* Stage 2 then applies records to the stored state: a member's update, a new lead, the
     * first member leaving; and fires its timers by the clock. (Event times a day past T: a
     * state whose T is that near the end of time is left there.) */
    if (a.t_ms > INT64_MAX - 86400000) {
        lp_account_free(&a);
        return 0;
    }
    memset(&r, 0, sizeof(r));
    memcpy(r.account, a.account, sizeof(r.account));
    memcpy(r.lead_id, a.members[0].lead_id, sizeof(r.lead_id));
    r.seq = a.members[0].seq + 1;
    r.e = 75.5;
    r.ref_ms = r.event_ms = a.t_ms + 3600000;
    r.role = LP_ROLE_DECISION_MAKER;
    r.fit_grade = 'B';
    r.stage = LP_STAGE_WARM;
    r.last_activity_ms = r.event_ms;
    if (r.seq != 0 && lp_account_apply(&a, rules, &r, facts, 3, &nfacts) == LP_ERR) {
        fuzz_fail("a valid record was refused");
    }
    roundtrip(&a, "after an update");
    snprintf(r.lead_id, sizeof(r.lead_id), "fuzz-new-lead");
    r.seq = 1;
    r.event_ms += 1000;
    if (lp_account_apply(&a, rules, &r, facts, 3, &nfacts) == LP_ERR) {
        fuzz_fail("a valid new lead was refused");
    }
    roundtrip(&a, "after a join");
    for (int k = 0; k < 4 && lp_account_next_deadline(&a) != 0; k++) {
        lp_account_fire_timers(&a, rules, lp_account_next_deadline(&a), facts, 1, &nfacts);
        roundtrip(&a, "after a timer");
    }
    if (a.nmembers > 0) {
        memcpy(r.lead_id, a.members[0].lead_id, sizeof(r.lead_id));
        r.seq = a.members[0].seq + 1;
        r.leave = true;
        if (r.seq != 0 && lp_account_apply(&a, rules, &r, facts, 3, &nfacts) == LP_ERR) {
            fuzz_fail("a valid leave was refused");
        }
        roundtrip(&a, "after a leave");
    }
    lp_account_free(&a);
    return 0;
}
