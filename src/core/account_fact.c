/* Account hand-offs, the pure parts the encoders and the stage-2 evaluation share: the order of
 * the listed members, the roles_missing sentences, the stale reason names and the event ids
 * (docs/schemas.md, "Account hand-offs"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "leadpulse/account.h"

static const char *const stale_reason_names[LP_ACCOUNT_STALE__COUNT] = {"account_sla_breached",
                                                                        "committee_quiet"};

/* The roles in alphabetical order of their names, as roles_missing lists them. */
static const lp_role_t roles_alphabetical[LP_ROLE__COUNT] = {
    LP_ROLE_APPROVER,   LP_ROLE_BLOCKER,     LP_ROLE_DECISION_MAKER,
    LP_ROLE_INFLUENCER, LP_ROLE_RECOMMENDER, LP_ROLE_USER};

const char *lp_account_stale_reason_name(lp_account_stale_reason_t reason) {
    return (unsigned)reason < LP_ACCOUNT_STALE__COUNT ? stale_reason_names[reason] : NULL;
}

int lp_account_member_cmp(const lp_account_member_t *a, const lp_account_member_t *b) {
    if (a->engaged != b->engaged) {
        return a->engaged ? -1 : 1;
    }
    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }
    return strcmp(a->lead_id, b->lead_id);
}

static int member_qsort_cmp(const void *a, const void *b) {
    return lp_account_member_cmp(a, b);
}

void lp_account_members_sort(lp_account_member_t *members, int n) {
    if (n > 1) {
        qsort(members, (size_t)n, sizeof(*members), member_qsort_cmp);
    }
}

size_t lp_account_missing_sentence(unsigned group, char *buf, size_t size) {
    const char *names[LP_ROLE__COUNT];
    int n = 0;
    size_t len = 0;

    for (int i = 0; i < LP_ROLE__COUNT; i++) {
        if (group & (1u << roles_alphabetical[i])) {
            names[n++] = lp_role_name(roles_alphabetical[i]);
        }
    }
    if (n == 0 || size == 0) {
        return 0;
    }
    for (int i = -1; i <= n; i++) {
        const char *part = i < 0 ? "no " : i == n ? " engaged yet" : names[i];
        const char *sep = i <= 0 || i == n ? "" : i == n - 1 ? " or " : ", ";
        size_t sl = strlen(sep), pl = strlen(part);
        if (len + sl + pl >= size) {
            buf[0] = '\0';
            return 0;
        }
        memcpy(buf + len, sep, sl);
        memcpy(buf + len + sl, part, pl);
        len += sl + pl;
    }
    buf[len] = '\0';
    return len;
}

void lp_account_event_id(char out[LP_EVENT_ID_HEX + 1], const char *account,
                         lp_account_fact_kind_t kind, lp_account_stale_reason_t reason,
                         uint32_t qualification, int64_t qualified_at_ms) {
    /* The longest text: a key of LP_ACCOUNT_KEY_MAX bytes, the longest kind, a 10-digit
     * qualification and a 20-character time; nothing is ever cut. */
    char text[LP_ACCOUNT_KEY_MAX + 96];
    const char *name = lp_account_stale_reason_name(reason);
    int n = snprintf(text, sizeof(text), "%.*s\x1f%s%s\x1f%" PRIu32 "\x1f%" PRId64,
                     (int)LP_ACCOUNT_KEY_MAX, account != NULL ? account : "",
                     kind == LP_ACCOUNT_FACT_QUALIFIED ? "account-qualified" : "account-stale:",
                     kind == LP_ACCOUNT_FACT_QUALIFIED || name == NULL ? "" : name, qualification,
                     qualified_at_ms);

    lp_core_event_id_of(text,
                        n < 0                      ? 0
                        : (size_t)n < sizeof(text) ? (size_t)n
                                                   : sizeof(text) - 1,
                        out);
}
