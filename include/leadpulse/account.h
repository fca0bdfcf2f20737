/* leadpulse: account-level qualification, the pure parts (docs/rules.md "accounts"): which
 * account a lead belongs to and the role a member plays in it. The account evaluation (score, MQA,
 * stale) arrives with the stage-2 worker. */
#ifndef LEADPULSE_ACCOUNT_H
#define LEADPULSE_ACCOUNT_H

#include <stddef.h>

#include "leadpulse/event.h"
#include "leadpulse/rules.h"

/* Longest account key, without the NUL: "domain:" and the domain of an email of at most
 * LP_STR_MAX bytes ("id:" and an account id of at most LP_ID_MAX bytes is shorter). */
#define LP_ACCOUNT_KEY_MAX (7 + LP_STR_MAX - 1)

/* The account key of a lead, written into buf (size bytes) and returned; NULL when the lead is in
 * no account. `account_id` and `email` may be NULL (unknown).
 * - "id:<account_id>" when account_id, trimmed of white space, is 1..LP_ID_MAX bytes (a longer
 *   one counts as absent);
 * - else "domain:<domain>": the part of the email (trimmed) after its last '@', lower-cased,
 *   trailing dots removed; none when it is empty, holds a space or control character, or is free
 *   mail (rules->accounts.free_mail: the same domain, case-insensitive, or a subdomain of it);
 * - else NULL. Also NULL when accounts are off, or the key does not fit in buf (a buf of
 *   LP_ACCOUNT_KEY_MAX + 1 bytes holds every key of a profile's email). */
const char *lp_account_of(const lp_rules_t *rules, const char *account_id, const char *email,
                          char *buf, size_t size);

/* Whether `domain` (as written: any case, no trailing dot) is free mail under the rules. */
bool lp_account_free_mail(const lp_rules_t *rules, const char *domain);

/* A member's role: that of the first accounts.roles rule its profile matches (the matcher of the
 * fit and disqualify rules), else accounts.default_role; LP_ROLE_USER when accounts are off. */
lp_role_t lp_account_role(const lp_rules_t *rules, const lp_profile_update_t *profile);

/* "decision_maker", "approver", "influencer", "recommender", "user", "blocker"; NULL when out of
 * range. */
const char *lp_role_name(lp_role_t role);

#endif
