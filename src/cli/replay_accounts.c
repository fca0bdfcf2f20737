/* `leadpulse replay`'s stage 2 of account qualification (docs/rules.md "Order of member
 * records"): the engine's member records and marks, read from its outbox, go into the in-memory
 * ordering stage (leadpulse/account_stage.h); what the watermark releases is printed as JSON
 * lines next to the lead hand-offs. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/cli.h"
#include "leadpulse/codec.h"
#include "leadpulse/member_wire.h"

static int take_one(void *ctx, const lp_member_msg_t *m) {
    return lp_acct_stage_add(ctx, m);
}

int lp_replay_accounts_take(lp_acct_stage_t *stage, const uint8_t *value, size_t len) {
    char why[128] = "out of memory";
    if (stage == NULL ||
        lp_member_value_foreach(value, len, take_one, stage, why, sizeof(why)) != LP_OK) {
        fprintf(stderr, "leadpulse replay: stage 2: %s\n", stage == NULL ? "no stage" : why);
        return LP_ERR;
    }
    return LP_OK;
}

/* Prints an account hand-off as a JSON line. */
static int emit(void *ctx, const lp_account_fact_t *fact) {
    static char buf[LP_JSON_ACCOUNT_FACT_MAX];
    size_t n = lp_json_encode_account_fact(fact, buf, sizeof(buf));
    if (n == 0) {
        fprintf(stderr, "leadpulse replay: cannot encode the hand-off of account %s\n",
                fact->account);
        return LP_ERR;
    }
    fwrite(buf, 1, n, ctx);
    fputc('\n', ctx);
    return LP_OK;
}

int lp_replay_accounts_release(lp_acct_stage_t *stage, int64_t at_least, FILE *out) {
    if (stage == NULL) {
        return LP_OK;
    }
    int64_t w = lp_acct_stage_watermark(stage);
    if (lp_acct_stage_release(stage, w > at_least ? w : at_least, emit, out) != LP_OK) {
        fprintf(stderr, "leadpulse replay: stage 2 failed\n");
        return LP_ERR;
    }
    return LP_OK;
}

void lp_replay_accounts_summary(const lp_acct_stage_t *stage, const lp_engine_stats_t *st,
                                FILE *out) {
    if (stage == NULL) {
        return;
    }
    const lp_acct_stage_stats_t *as = lp_acct_stage_stats(stage);
    fprintf(out,
            "replay: accounts: %" PRIu64 " member records (%" PRIu64 " ordered late), %" PRIu64
            " MQAs, %" PRIu64 " stale, %" PRIu64 " accounts with members, %" PRIu64
            " records after the final watermark not applied\n",
            st->member_records, st->member_late, as->qualified, as->stale, as->accounts,
            as->buffered);
}
