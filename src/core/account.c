/* Account-level qualification, the pure parts: the account a lead maps to (account id, else its
 * email's company domain) and a member's role. No allocation: keys are written into the caller's
 * buffer. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/core_internal.h"
#include "leadpulse/account.h"

static const char *const role_names[LP_ROLE__COUNT] = {"decision_maker", "approver", "influencer",
                                                       "recommender",    "user",     "blocker"};

const char *lp_role_name(lp_role_t role) {
    return (unsigned)role < LP_ROLE__COUNT ? role_names[role] : NULL;
}

/* s without leading and trailing white space: *len bytes from the returned pointer. */
static const char *trim(const char *s, size_t *len) {
    size_t n;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        n--;
    }
    *len = n;
    return s;
}

/* Whether domain[0..len) is `listed` or a subdomain of it (case-insensitive). */
static bool domain_is(const char *domain, size_t len, const char *listed) {
    size_t n = strlen(listed);

    if (n == 0 || n > len) {
        return false;
    }
    if (strncasecmp(domain + len - n, listed, n) != 0) {
        return false;
    }
    return n == len || domain[len - n - 1] == '.';
}

static bool free_mail(const lp_account_rules_t *acc, const char *domain, size_t len) {
    int n = acc->nfree_mail < LP_MAX_FREE_MAIL ? acc->nfree_mail : LP_MAX_FREE_MAIL;

    for (int i = 0; i < n; i++) {
        if (domain_is(domain, len, acc->free_mail[i])) {
            return true;
        }
    }
    return false;
}

bool lp_account_free_mail(const lp_rules_t *rules, const char *domain) {
    return rules && domain && free_mail(&rules->accounts, domain, strlen(domain));
}

/* The company domain of an email: after the last '@', trailing dots removed; NULL when there is
 * none (no '@', empty, a space or control character in it). */
static const char *email_domain(const char *email, size_t *len) {
    size_t n;
    const char *s = trim(email, &n);
    const char *at = NULL;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '@') {
            at = s + i;
        }
    }
    if (!at) {
        return NULL;
    }
    n -= (size_t)(at + 1 - s);
    while (n > 0 && at[n] == '.') {
        n--;
    }
    for (size_t i = 1; i <= n; i++) {
        if ((unsigned char)at[i] <= ' ' || at[i] == 0x7f) {
            return NULL; /* bytes of UTF-8 (internationalized) domains are kept */
        }
    }
    *len = n;
    return n > 0 ? at + 1 : NULL;
}

const char *lp_account_of(const lp_rules_t *rules, const char *account_id, const char *email,
                          char *buf, size_t size) {
    const char *s;
    size_t n = 0;

    if (!rules || !rules->accounts.enabled || !buf || size == 0) {
        return NULL;
    }
    if (account_id && (s = trim(account_id, &n)) && n > 0 && n <= LP_ID_MAX) {
        if (3 + n >= size) {
            return NULL;
        }
        snprintf(buf, size, "id:%.*s", (int)n, s);
        return buf;
    }
    if (!email || !(s = email_domain(email, &n)) || free_mail(&rules->accounts, s, n)) {
        return NULL;
    }
    if (7 + n >= size) {
        return NULL;
    }
    memcpy(buf, "domain:", 7);
    for (size_t i = 0; i < n; i++) {
        buf[7 + i] = (char)tolower((unsigned char)s[i]);
    }
    buf[7 + n] = '\0';
    return buf;
}

lp_role_t lp_account_role(const lp_rules_t *rules, const lp_profile_update_t *profile) {
    const lp_match_rule_t *m;

    if (!rules->accounts.enabled) {
        return LP_ROLE_USER;
    }
    m = lp_core_role_match(rules, profile);
    return m ? m->role : rules->accounts.default_role;
}
