/* Profile side of the core: merging profile updates, fit points and grade, disqualify rules,
 * account roles, and the activity-rule lookup. Pure functions over the rules and the current
 * profile. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/core_internal.h"

/* Whether two names, each in a char[LP_NAME_MAX + 1] array, are the same string. Eight bytes at a
 * time: the lookup runs for every event, and strcmp's call and set-up cost more than the compare.
 * Bytes after a terminator may differ (a reused event buffer keeps a longer old name there);
 * they are masked off, never compared. */
static bool name_equal(const char *a, const char *b) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    size_t off = 0;
    for (; off + 8 <= LP_NAME_MAX + 1; off += 8) {
        uint64_t x, y;
        memcpy(&x, a + off, sizeof(x));
        memcpy(&y, b + off, sizeof(y));
        /* The lowest set bit is the top bit of a's first zero byte (higher bits can be false). */
        uint64_t zero = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
        uint64_t diff = x ^ y;
        if (zero != 0) {
            /* Same string iff no byte differs up to and including a's terminator. */
            return (diff & (zero ^ (zero - 1))) == 0;
        }
        if (diff != 0) {
            return false;
        }
    }
    for (; off <= LP_NAME_MAX; off++) {
        if (a[off] != b[off]) {
            return false;
        }
        if (a[off] == '\0') {
            return true;
        }
    }
    return true;
#else
    return strncmp(a, b, LP_NAME_MAX + 1) == 0;
#endif
}

int lp_core_activity_index(const lp_rules_t *rules, const char *type) {
    int n = rules->nactivities < LP_MAX_ACTIVITIES ? rules->nactivities : LP_MAX_ACTIVITIES;
    /* A linear scan with a first-byte filter beats a hash here: at most 32 short names, and the
     * core keeps no index beside the rules (no globals, rules are const). */
    for (int i = 0; i < n; i++) {
        const char *name = rules->activities[i].name;
        if (name[0] == type[0] && name_equal(name, type)) {
            return i;
        }
    }
    return -1;
}

/* Whether a value stamped `t` replaces the current one stamped `cur_t`: the later time wins;
 * between equal times the greater value (cmp > 0), so the result is the same in any order. */
static bool wins(int64_t t, int64_t cur_t, int cmp) {
    return t > cur_t || (t == cur_t && cmp > 0);
}

static void merge_str(char *dst, size_t dst_size, int64_t *dst_t, const char *src, int64_t t) {
    if (src[0] == '\0') {
        return;
    }
    size_t len = strnlen(src, dst_size - 1);
    if (!wins(t, *dst_t, strncmp(src, dst, dst_size))) {
        return;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    *dst_t = t;
}

void lp_core_profile_merge(lp_profile_update_t *profile, int64_t field_ms[LP_PROFILE_FIELDS],
                           const lp_profile_update_t *update, int64_t t) {
#define MERGE(i, field)                                                                            \
    merge_str(profile->field, sizeof(profile->field), &field_ms[i], update->field, t)
    MERGE(LP_PF_EMAIL, email);
    MERGE(LP_PF_TITLE, title);
    MERGE(LP_PF_SENIORITY, seniority);
    MERGE(LP_PF_INDUSTRY, industry);
    MERGE(LP_PF_COMPANY, company);
    MERGE(LP_PF_COUNTRY, country);
    MERGE(LP_PF_REGION, region);
    MERGE(LP_PF_PERSONA, persona);
    MERGE(LP_PF_SEGMENT, segment);
    MERGE(LP_PF_OWNER, owner);
#undef MERGE
    int64_t size = update->company_size;
    int64_t *size_t_ms = &field_ms[LP_PF_COMPANY_SIZE];
    if (size >= 0 &&
        wins(t, *size_t_ms, (size > profile->company_size) - (size < profile->company_size))) {
        profile->company_size = size;
        *size_t_ms = t;
    }
}

void lp_core_account_id_merge(lp_profile_update_t *profile, int64_t *field_ms,
                              const char *account_id, int64_t t) {
    merge_str(profile->account_id, sizeof(profile->account_id), field_ms, account_id, t);
}

void lp_core_owner_merge(lp_profile_update_t *profile, int64_t field_ms[LP_PROFILE_FIELDS],
                         const char *owner, int64_t t) {
    merge_str(profile->owner, sizeof(profile->owner), &field_ms[LP_PF_OWNER], owner, t);
}

/* The text a rule looks at; "" when the field is unknown. `scratch` holds derived values. */
static const char *field_text(const lp_profile_update_t *profile, lp_field_t field, char *scratch,
                              size_t scratch_size) {
    switch (field) {
    case LP_FIELD_EMAIL:
        return profile->email;
    case LP_FIELD_EMAIL_DOMAIN: {
        const char *at = strrchr(profile->email, '@');
        size_t i = 0;
        if (at == NULL) {
            return "";
        }
        for (at++; *at != '\0' && i + 1 < scratch_size; at++) {
            scratch[i++] = (char)tolower((unsigned char)*at);
        }
        scratch[i] = '\0';
        return scratch;
    }
    case LP_FIELD_TITLE:
        return profile->title;
    case LP_FIELD_SENIORITY:
        return profile->seniority;
    case LP_FIELD_INDUSTRY:
        return profile->industry;
    case LP_FIELD_COMPANY:
        return profile->company;
    case LP_FIELD_COMPANY_SIZE:
        if (profile->company_size < 0) {
            return "";
        }
        snprintf(scratch, scratch_size, "%" PRId64, profile->company_size);
        return scratch;
    case LP_FIELD_COUNTRY:
        return profile->country;
    case LP_FIELD_REGION:
        return profile->region;
    case LP_FIELD_PERSONA:
        return profile->persona;
    case LP_FIELD_SEGMENT:
        return profile->segment;
    default:
        return "";
    }
}

static bool ends_with_ci(const char *text, const char *suffix) {
    size_t tl = strlen(text);
    size_t sl = strlen(suffix);
    return sl <= tl && strcasecmp(text + tl - sl, suffix) == 0;
}

/* Unknown (empty) fields and empty values never match: a rule about titles says nothing about a
 * lead whose title we do not know. */
static bool rule_matches(const lp_match_rule_t *rule, const lp_profile_update_t *profile) {
    char scratch[LP_STR_MAX + 1];
    int nvalues = rule->nvalues < LP_MAX_MATCH_VALUES ? rule->nvalues : LP_MAX_MATCH_VALUES;

    if (rule->op == LP_MATCH_RANGE) {
        return rule->field == LP_FIELD_COMPANY_SIZE && profile->company_size >= 0 &&
               profile->company_size >= rule->min && profile->company_size <= rule->max;
    }
    const char *text = field_text(profile, rule->field, scratch, sizeof(scratch));
    if (text[0] == '\0') {
        return false;
    }
    for (int i = 0; i < nvalues; i++) {
        const char *value = rule->values[i];
        if (value[0] == '\0') {
            continue;
        }
        switch (rule->op) {
        case LP_MATCH_IN:
            if (strcasecmp(text, value) == 0) {
                return true;
            }
            break;
        case LP_MATCH_CONTAINS:
            if (strcasestr(text, value) != NULL) {
                return true;
            }
            break;
        case LP_MATCH_SUFFIX:
            if (ends_with_ci(text, value)) {
                return true;
            }
            break;
        default:
            return false;
        }
    }
    return false;
}

double lp_core_fit_points(const lp_rules_t *rules, const lp_profile_update_t *profile) {
    int n = rules->nfit < LP_MAX_FIT_RULES ? rules->nfit : LP_MAX_FIT_RULES;
    double points = 0.0;
    for (int i = 0; i < n; i++) {
        if (rule_matches(&rules->fit[i], profile)) {
            points += rules->fit[i].points;
        }
    }
    return points;
}

char lp_core_fit_grade(const lp_rules_t *rules, double points) {
    if (points >= rules->grade_a) {
        return 'A';
    }
    if (points >= rules->grade_b) {
        return 'B';
    }
    if (points >= rules->grade_c) {
        return 'C';
    }
    return 'D';
}

const lp_match_rule_t *lp_core_dq_match(const lp_rules_t *rules,
                                        const lp_profile_update_t *profile) {
    int n = rules->ndq < LP_MAX_DQ_RULES ? rules->ndq : LP_MAX_DQ_RULES;
    for (int i = 0; i < n; i++) {
        if (rule_matches(&rules->dq[i], profile)) {
            return &rules->dq[i];
        }
    }
    return NULL;
}

const lp_match_rule_t *lp_core_role_match(const lp_rules_t *rules,
                                          const lp_profile_update_t *profile) {
    int n = rules->accounts.nroles < LP_MAX_ROLE_RULES ? rules->accounts.nroles : LP_MAX_ROLE_RULES;
    for (int i = 0; i < n; i++) {
        if (rule_matches(&rules->accounts.roles[i], profile)) {
            return &rules->accounts.roles[i];
        }
    }
    return NULL;
}
