/* The `accounts:` section (optional): free-mail domains, members' roles (profile rules whose extra
 * key is `role`), the account score, MQA, stale timers and the member limit. Loaded and validated
 * here; the account evaluation arrives with the stage-2 worker. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/rules_internal.h"
#include "leadpulse/account.h"

#define ROLE_LIST "decision_maker, approver, influencer, recommender, user, blocker"
_Static_assert(LP_ROLE__COUNT == 6, "ROLE_LIST names every role, in lp_role_t order");

/* accounts.free_mail_domains when the key is absent (docs/rules.md lists the same). */
static const char *const default_free_mail[] = {
    "gmail.com",  "googlemail.com", "yahoo.com", "hotmail.com",    "outlook.com", "live.com",
    "icloud.com", "aol.com",        "proton.me", "protonmail.com", "gmx.com",     "gmx.de",
    "web.de",     "mail.ru",        "yandex.ru", "qq.com",         "163.com",     NULL};

/* Lines of the keys checked against each other once the section is read. */
typedef struct {
    int mqa, rearm, engaged, min_fit;
    int group[LP_MAX_ROLE_GROUPS];
    bool engaged_given;
} account_lines_t;

int lp_rules_parse_role(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_role_t *out) {
    const char *s = lp_yaml_scalar(node);

    for (int r = 0; s && r < LP_ROLE__COUNT; r++) {
        if (strcmp(s, lp_role_name((lp_role_t)r)) == 0) {
            *out = (lp_role_t)r;
            return LP_OK;
        }
    }
    if (!s) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be a role (one of " ROLE_LIST "), got %s",
                           lp_yaml_kind_name(node));
    }
    return lp_yaml_err(y, lp_yaml_line(node), path, "unknown role \"%s\" (one of " ROLE_LIST ")",
                       s);
}

/* The items of a list, or of a single scalar written without brackets (`one` holds it). */
static int list_items(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *what,
                      yaml_node_item_t one[1], yaml_node_item_t **start, yaml_node_item_t **top) {
    if (node->type == YAML_SCALAR_NODE && !lp_yaml_is_null(node)) {
        one[0] = (int)(node - y->doc.nodes.start) + 1;
        *start = one;
        *top = one + 1;
        return LP_OK;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "must be a list of %s, got %s", what,
                           lp_yaml_kind_name(node));
    }
    *start = node->data.sequence.items.start;
    *top = node->data.sequence.items.top;
    return LP_OK;
}

/* A free-mail domain as it follows the '@': no '@', spaces or dots at either end. */
static int check_domain(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *d) {
    size_t n = strlen(d);

    if (n == 0) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "is empty; remove it");
    }
    for (const char *p = d; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '@') {
            return lp_yaml_err(y, lp_yaml_line(node), path,
                               "\"%s\" is not a domain; write the part after the @, e.g. gmail.com",
                               d);
        }
    }
    if (d[0] == '.' || d[n - 1] == '.') {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "\"%s\" starts or ends with a dot; write e.g. yahoo.com (its "
                           "subdomains are free mail too)",
                           d);
    }
    return LP_OK;
}

static int parse_free_mail(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc) {
    char sub[LP_YAML_PATH_MAX];
    yaml_node_item_t one[1];
    yaml_node_item_t *start = NULL, *top = NULL;

    if (list_items(y, node, "accounts.free_mail_domains", "domains", one, &start, &top) != LP_OK) {
        return LP_ERR;
    }
    acc->nfree_mail = 0; /* [] = no free-mail domains */
    for (yaml_node_item_t *it = start; it < top; it++) {
        yaml_node_t *v = lp_yaml_node(y, *it);
        char *d = acc->free_mail[acc->nfree_mail];

        lp_yaml_path(sub, sizeof(sub), "accounts.free_mail_domains[%d]", acc->nfree_mail);
        if (acc->nfree_mail == LP_MAX_FREE_MAIL) {
            return lp_yaml_err(y, lp_yaml_line(v), sub, "too many domains (at most %d)",
                               LP_MAX_FREE_MAIL);
        }
        if (lp_yaml_str(y, v, sub, d, sizeof(acc->free_mail[0])) != LP_OK ||
            check_domain(y, v, sub, d) != LP_OK) {
            return LP_ERR;
        }
        acc->nfree_mail++;
    }
    return LP_OK;
}

static int parse_role_points(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc) {
    char sub[LP_YAML_PATH_MAX];

    if (lp_yaml_check_map(y, node, "accounts.role_points", NULL) != LP_OK) {
        return LP_ERR;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = lp_yaml_node(y, p->key);
        lp_role_t role = LP_ROLE_USER;

        lp_yaml_path(sub, sizeof(sub), "accounts.role_points.%s", lp_yaml_scalar(key));
        if (lp_rules_parse_role(y, key, sub, &role) != LP_OK ||
            lp_yaml_double(y, lp_yaml_node(y, p->value), sub, &acc->role_points[role]) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* One group of accounts.mqa.required_roles: a role, or a list of 1..6 different roles. */
static int parse_group(lp_yaml_t *y, yaml_node_t *node, const char *path, unsigned *mask) {
    char sub[LP_YAML_PATH_MAX];
    yaml_node_item_t one[1];
    yaml_node_item_t *start = NULL, *top = NULL;
    int i = 0;

    if (list_items(y, node, path, "roles", one, &start, &top) != LP_OK) {
        return LP_ERR;
    }
    if (start == top) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "is empty; list at least one role, or remove the group");
    }
    *mask = 0;
    for (yaml_node_item_t *it = start; it < top; it++, i++) {
        yaml_node_t *v = lp_yaml_node(y, *it);
        lp_role_t role = LP_ROLE_USER;

        if (start == one) {
            lp_yaml_path(sub, sizeof(sub), "%s", path);
        } else {
            lp_yaml_path(sub, sizeof(sub), "%s[%d]", path, i);
        }
        if (lp_rules_parse_role(y, v, sub, &role) != LP_OK) {
            return LP_ERR;
        }
        if (*mask & (1u << role)) {
            return lp_yaml_err(y, lp_yaml_line(v), sub, "%s is already in this group; remove it",
                               lp_role_name(role));
        }
        *mask |= 1u << role;
    }
    return LP_OK;
}

static int parse_required(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc,
                          account_lines_t *al) {
    char sub[LP_YAML_PATH_MAX];

    if (node->type != YAML_SEQUENCE_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), "accounts.mqa.required_roles",
                           "must be a list of role groups, e.g. [[decision_maker, approver], "
                           "[influencer]], got %s",
                           lp_yaml_kind_name(node));
    }
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *g = lp_yaml_node(y, *it);

        lp_yaml_path(sub, sizeof(sub), "accounts.mqa.required_roles[%d]", acc->nrequired);
        if (acc->nrequired == LP_MAX_ROLE_GROUPS) {
            return lp_yaml_err(y, lp_yaml_line(g), sub, "too many groups (at most %d); merge some",
                               LP_MAX_ROLE_GROUPS);
        }
        if (parse_group(y, g, sub, &acc->required[acc->nrequired]) != LP_OK) {
            return LP_ERR;
        }
        al->group[acc->nrequired++] = lp_yaml_line(g);
    }
    return LP_OK;
}

/* A number above 0 (gt0) or at least 0. */
static int parse_positive(lp_yaml_t *y, yaml_node_t *node, const char *path, bool gt0,
                          double *out) {
    if (lp_yaml_double(y, node, path, out) != LP_OK) {
        return LP_ERR;
    }
    if (gt0 ? !(*out > 0) : !(*out >= 0)) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "must be %s 0, got %g",
                           gt0 ? "above" : "at least", *out);
    }
    return LP_OK;
}

static int parse_mqa(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc,
                     account_lines_t *al) {
    static const char *const keys[] = {"score",   "engaged_members", "required_roles",
                                       "min_fit", "rearm",           NULL};
    yaml_node_t *v;
    int64_t n = 0;
    int line = al->mqa;

    if (lp_yaml_get(y, node, "rearm_below", &line)) {
        return lp_yaml_err(y, line, "accounts.mqa.rearm_below",
                           "unknown key; the key is `rearm`, as score.rearm for leads");
    }
    if (lp_yaml_check_map(y, node, "accounts.mqa", keys) != LP_OK) {
        return LP_ERR;
    }
    if (!(v = lp_yaml_get(y, node, "score", NULL))) {
        return lp_yaml_err(y, al->mqa, "accounts.mqa.score",
                           "missing; set the account score that qualifies, e.g. `score: 150`");
    }
    if (parse_positive(y, v, "accounts.mqa.score", true, &acc->mqa_score) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "engaged_members", &al->engaged))) {
        al->engaged_given = true;
        if (lp_yaml_int(y, v, "accounts.mqa.engaged_members", 1, 1000, &n) != LP_OK) {
            return LP_ERR;
        }
        acc->mqa_engaged_members = (int)n;
    }
    if ((v = lp_yaml_get(y, node, "required_roles", NULL)) &&
        parse_required(y, v, acc, al) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "min_fit", &al->min_fit)) &&
        lp_rules_parse_grade(y, v, "accounts.mqa.min_fit", &acc->mqa_min_fit) != LP_OK) {
        return LP_ERR;
    }
    /* as score.rearm: 60% of the threshold unless given */
    acc->mqa_rearm = 0.6 * acc->mqa_score;
    if ((v = lp_yaml_get(y, node, "rearm", &al->rearm)) &&
        lp_yaml_double(y, v, "accounts.mqa.rearm", &acc->mqa_rearm) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

static int parse_stale(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc) {
    static const char *const keys[] = {"quiet_after", "accept_within", NULL};
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, "accounts.stale", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "quiet_after", NULL)) &&
        lp_yaml_duration(y, v, "accounts.stale.quiet_after", &acc->quiet_after_ms) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "accept_within", NULL)) &&
        lp_yaml_duration(y, v, "accounts.stale.accept_within", &acc->accept_within_ms) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

/* Whether some member could have `role`: a rule gives it, or it is the default. */
static bool role_possible(const lp_account_rules_t *acc, lp_role_t role) {
    if (acc->default_role == role) {
        return true;
    }
    for (int i = 0; i < acc->nroles; i++) {
        if (acc->roles[i].role == role) {
            return true;
        }
    }
    return false;
}

/* What no single key shows: settings under which no account could ever qualify. */
static int check_accounts(lp_yaml_t *y, const lp_rules_t *rules, const account_lines_t *al) {
    const lp_account_rules_t *acc = &rules->accounts;
    char sub[LP_YAML_PATH_MAX];

    if (acc->mqa_rearm >= acc->mqa_score) {
        return lp_yaml_err(y, al->rearm, "accounts.mqa.rearm",
                           "must be below accounts.mqa.score (%g); lower it or raise the score",
                           acc->mqa_score);
    }
    if (acc->mqa_engaged_members > acc->max_members) {
        return lp_yaml_err(y, al->engaged, "accounts.mqa.engaged_members",
                           "%d%s is above accounts.max_members (%d), so no account could "
                           "qualify; lower it or raise max_members",
                           acc->mqa_engaged_members, al->engaged_given ? "" : " (the default)",
                           acc->max_members);
    }
    if (acc->mqa_min_fit != 0 && acc->mqa_min_fit != 'D' && rules->nfit == 0) {
        return lp_yaml_err(y, al->min_fit, "accounts.mqa.min_fit",
                           "is %c but there are no fit rules, so every member grades D and no "
                           "account could qualify; add fit.rules or remove min_fit",
                           acc->mqa_min_fit);
    }
    for (int g = 0; g < acc->nrequired; g++) {
        bool any = false;
        for (int r = 0; r < LP_ROLE__COUNT && !any; r++) {
            any = (acc->required[g] & (1u << r)) && role_possible(acc, (lp_role_t)r);
        }
        if (!any) {
            lp_yaml_path(sub, sizeof(sub), "accounts.mqa.required_roles[%d]", g);
            return lp_yaml_err(y, al->group[g], sub,
                               "no member can have any of these roles: no accounts.roles rule "
                               "gives one and accounts.default_role is %s; add a rule or change "
                               "the group",
                               lp_role_name(acc->default_role));
        }
    }
    return LP_OK;
}

static void set_account_defaults(lp_account_rules_t *acc) {
    memset(acc, 0, sizeof(*acc));
    acc->enabled = true;
    for (int i = 0; default_free_mail[i]; i++) {
        snprintf(acc->free_mail[i], sizeof(acc->free_mail[i]), "%s", default_free_mail[i]);
        acc->nfree_mail = i + 1;
    }
    acc->default_role = LP_ROLE_USER;
    acc->member_cap = 100;
    acc->engaged_score = 10;
    acc->mqa_engaged_members = 2;
    acc->max_members = 10000;
    acc->lateness_ms = 60000;
}

/* The keys of `accounts:` but mqa and stale, in the order of the docs. */
static int parse_member_keys(lp_yaml_t *y, yaml_node_t *node, lp_account_rules_t *acc) {
    yaml_node_t *v;
    int64_t n = 0;

    if ((v = lp_yaml_get(y, node, "free_mail_domains", NULL)) &&
        parse_free_mail(y, v, acc) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "roles", NULL)) &&
        lp_rules_parse_rule_list(y, v, "accounts.roles", LP_RULE_ROLE, acc->roles,
                                 LP_MAX_ROLE_RULES, &acc->nroles) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "default_role", NULL)) &&
        lp_rules_parse_role(y, v, "accounts.default_role", &acc->default_role) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "member_cap", NULL)) &&
        parse_positive(y, v, "accounts.member_cap", true, &acc->member_cap) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "engaged_score", NULL)) &&
        parse_positive(y, v, "accounts.engaged_score", false, &acc->engaged_score) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "role_points", NULL)) && parse_role_points(y, v, acc) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "max_members", NULL))) {
        if (lp_yaml_int(y, v, "accounts.max_members", 1, LP_ACCOUNT_MEMBERS_MAX, &n) != LP_OK) {
            return LP_ERR;
        }
        acc->max_members = (int)n;
    }
    if ((v = lp_yaml_get(y, node, "lateness", NULL))) {
        if (lp_yaml_duration(y, v, "accounts.lateness", &acc->lateness_ms) != LP_OK) {
            return LP_ERR;
        }
        if (acc->lateness_ms > LP_ACCOUNT_LATENESS_MAX_MS) {
            return lp_yaml_err(y, lp_yaml_line(v), "accounts.lateness",
                               "%" PRId64 " ms is above 7d: account hand-offs would wait that long",
                               acc->lateness_ms);
        }
    }
    return LP_OK;
}

int lp_rules_parse_accounts(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules) {
    static const char *const keys[] = {"free_mail_domains",
                                       "roles",
                                       "default_role",
                                       "member_cap",
                                       "engaged_score",
                                       "role_points",
                                       "mqa",
                                       "stale",
                                       "max_members",
                                       "lateness",
                                       NULL};
    lp_account_rules_t *acc = &rules->accounts;
    account_lines_t al = {0};
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, "accounts", keys) != LP_OK) {
        return LP_ERR;
    }
    set_account_defaults(acc);
    if (parse_member_keys(y, node, acc) != LP_OK) {
        return LP_ERR;
    }
    if (!(v = lp_yaml_get(y, node, "mqa", &al.mqa))) {
        return lp_yaml_err(y, line, "accounts.mqa",
                           "missing; say when an account qualifies, at least `mqa: {score: 150}`");
    }
    al.rearm = al.engaged = al.min_fit = al.mqa;
    if (parse_mqa(y, v, acc, &al) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "stale", NULL)) && parse_stale(y, v, acc) != LP_OK) {
        return LP_ERR;
    }
    return check_accounts(y, rules, &al);
}
