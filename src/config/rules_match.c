/* Profile rules: `fit:` (points and grade thresholds), `disqualify:` and `accounts.roles`. All use
 * the same matcher: a field and exactly one of in / contains / suffix / range. */
#include <stdio.h>
#include <string.h>

#include "config/rules_internal.h"

static const char *const field_names[LP_FIELD__COUNT + 1] = {
    "email",        "email_domain", "title",  "seniority", "industry", "company",
    "company_size", "country",      "region", "persona",   "segment",  NULL};

static const char *const op_names[] = {"in", "contains", "suffix", "range", NULL};

static int parse_values(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_match_rule_t *rule) {
    char sub[LP_YAML_PATH_MAX];
    yaml_node_item_t one[1];
    yaml_node_item_t *start, *top;

    if (node->type == YAML_SCALAR_NODE) {
        /* a single value may be written without brackets */
        one[0] = (int)(node - y->doc.nodes.start) + 1;
        start = one;
        top = one + 1;
    } else if (node->type == YAML_SEQUENCE_NODE) {
        start = node->data.sequence.items.start;
        top = node->data.sequence.items.top;
    } else {
        return lp_yaml_err(y, lp_yaml_line(node), path, "must be a list of strings, got %s",
                           lp_yaml_kind_name(node));
    }
    if (start == top) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "is empty; list at least one value");
    }
    for (yaml_node_item_t *it = start; it < top; it++) {
        yaml_node_t *v = lp_yaml_node(y, *it);

        lp_yaml_path(sub, sizeof(sub), "%s[%d]", path, rule->nvalues);
        if (rule->nvalues == LP_MAX_MATCH_VALUES) {
            return lp_yaml_err(y, lp_yaml_line(v), sub,
                               "too many values (at most %d per rule); split the rule",
                               LP_MAX_MATCH_VALUES);
        }
        if (lp_yaml_str(y, v, sub, rule->values[rule->nvalues], sizeof(rule->values[0])) != LP_OK) {
            return LP_ERR;
        }
        if (rule->values[rule->nvalues][0] == '\0') {
            return lp_yaml_err(y, lp_yaml_line(v), sub,
                               "is empty, which would match every lead; remove it");
        }
        rule->nvalues++;
    }
    return LP_OK;
}

static int parse_range(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_match_rule_t *rule) {
    static const char *const keys[] = {"min", "max", NULL};
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *lo = NULL, *hi = NULL;

    if (node->type == YAML_SEQUENCE_NODE &&
        node->data.sequence.items.top - node->data.sequence.items.start == 2) {
        lo = lp_yaml_node(y, node->data.sequence.items.start[0]);
        hi = lp_yaml_node(y, node->data.sequence.items.start[1]);
    } else if (node->type == YAML_MAPPING_NODE) {
        if (lp_yaml_check_map(y, node, path, keys) != LP_OK) {
            return LP_ERR;
        }
        lo = lp_yaml_get(y, node, "min", NULL);
        hi = lp_yaml_get(y, node, "max", NULL);
    } else {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be [min, max] or {min: N, max: N} (max ~ = no upper bound)");
    }
    rule->min = 0;
    rule->max = INT64_MAX;
    lp_yaml_path(sub, sizeof(sub), "%s.min", path);
    if (lo && !lp_yaml_is_null(lo) && lp_yaml_int(y, lo, sub, 0, INT64_MAX, &rule->min) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.max", path);
    if (hi && !lp_yaml_is_null(hi) && lp_yaml_int(y, hi, sub, 0, INT64_MAX, &rule->max) != LP_OK) {
        return LP_ERR;
    }
    if (rule->max < rule->min) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "max (%lld) is below min (%lld); swap them",
                           (long long)rule->max, (long long)rule->min);
    }
    return LP_OK;
}

/* A rule's key besides its match: `points` (fit), `reason` (disqualify), `role` (accounts). */
static int parse_rule_extra(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_rule_kind_t kind,
                            lp_match_rule_t *rule) {
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *v;

    if (kind == LP_RULE_FIT) {
        lp_yaml_path(sub, sizeof(sub), "%s.points", path);
        if (!(v = lp_yaml_get(y, node, "points", NULL))) {
            return lp_yaml_err(y, lp_yaml_line(node), sub,
                               "missing; say how many fit points a match adds");
        }
        return lp_yaml_double(y, v, sub, &rule->points);
    }
    if (kind == LP_RULE_ROLE) {
        lp_yaml_path(sub, sizeof(sub), "%s.role", path);
        if (!(v = lp_yaml_get(y, node, "role", NULL))) {
            return lp_yaml_err(y, lp_yaml_line(node), sub,
                               "missing; name the role a match gives, e.g. decision_maker");
        }
        return lp_rules_parse_role(y, v, sub, &rule->role);
    }
    lp_yaml_path(sub, sizeof(sub), "%s.reason", path);
    if (!(v = lp_yaml_get(y, node, "reason", NULL))) {
        return lp_yaml_err(y, lp_yaml_line(node), sub,
                           "missing; name the reason sales will see, e.g. competitor");
    }
    if (lp_yaml_str(y, v, sub, rule->reason, sizeof(rule->reason)) != LP_OK) {
        return LP_ERR;
    }
    return lp_rules_check_name(y, v, sub, rule->reason);
}

/* A rule: `field`, one operator, and the key of its kind (parse_rule_extra). */
static int parse_rule(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_rule_kind_t kind,
                      lp_match_rule_t *rule) {
    static const char *const fit_keys[] = {"field", "in",     "contains", "suffix",
                                           "range", "points", NULL};
    static const char *const dq_keys[] = {"field", "in",     "contains", "suffix",
                                          "range", "reason", NULL};
    static const char *const role_keys[] = {"field", "in",   "contains", "suffix",
                                            "range", "role", NULL};
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *v, *opv = NULL;
    const char *f;
    int field = 0, op = -1;

    if (lp_yaml_check_map(y, node, path,
                          kind == LP_RULE_FIT  ? fit_keys
                          : kind == LP_RULE_DQ ? dq_keys
                                               : role_keys) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.field", path);
    if (!(v = lp_yaml_get(y, node, "field", NULL))) {
        return lp_yaml_err(y, lp_yaml_line(node), sub,
                           "missing; one of email, email_domain, title, seniority, industry, "
                           "company, company_size, country, region, persona, segment");
    }
    f = lp_yaml_scalar(v);
    for (; f && field_names[field] && strcmp(f, field_names[field]) != 0; field++) {
    }
    if (!f || !field_names[field]) {
        const char *hint = f ? lp_suggest(f, field_names) : NULL;
        return lp_yaml_err(y, lp_yaml_line(v), sub, "unknown field \"%s\"%s%s%s",
                           f ? f : lp_yaml_kind_name(v), hint ? "; did you mean `" : "",
                           hint ? hint : "", hint ? "`?" : "");
    }
    rule->field = (lp_field_t)field;
    for (int i = 0; op_names[i]; i++) {
        yaml_node_t *o = lp_yaml_get(y, node, op_names[i], NULL);
        if (o && opv) {
            return lp_yaml_err(y, lp_yaml_line(o), path,
                               "has both `%s` and `%s`; use one operator per rule", op_names[op],
                               op_names[i]);
        }
        if (o) {
            opv = o;
            op = i;
        }
    }
    if (!opv) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "needs one of in, contains, suffix, range");
    }
    rule->op = (lp_match_op_t)op;
    lp_yaml_path(sub, sizeof(sub), "%s.%s", path, op_names[op]);
    if ((rule->op == LP_MATCH_RANGE) != (rule->field == LP_FIELD_COMPANY_SIZE)) {
        return lp_yaml_err(y, lp_yaml_line(opv), sub,
                           rule->op == LP_MATCH_RANGE
                               ? "range only applies to company_size; use in/contains/suffix"
                               : "company_size is a number; use `range: [min, max]`");
    }
    if ((rule->op == LP_MATCH_RANGE ? parse_range(y, opv, sub, rule)
                                    : parse_values(y, opv, sub, rule)) != LP_OK) {
        return LP_ERR;
    }
    return parse_rule_extra(y, node, path, kind, rule);
}

int lp_rules_parse_rule_list(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_rule_kind_t kind,
                             lp_match_rule_t *rules, int max, int *n) {
    char sub[LP_YAML_PATH_MAX];

    if (node->type != YAML_SEQUENCE_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be a list of rules (`- field: ...`), got %s",
                           lp_yaml_kind_name(node));
    }
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *r = lp_yaml_node(y, *it);

        lp_yaml_path(sub, sizeof(sub), "%s[%d]", path, *n);
        if (*n == max) {
            return lp_yaml_err(y, lp_yaml_line(r), sub, "too many rules (at most %d); merge some",
                               max);
        }
        if (parse_rule(y, r, sub, kind, &rules[*n]) != LP_OK) {
            return LP_ERR;
        }
        (*n)++;
    }
    return LP_OK;
}

static int parse_grades(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules) {
    static const char *const keys[] = {"A", "B", "C", NULL};
    double *slot[3] = {&rules->grade_a, &rules->grade_b, &rules->grade_c};
    int line[3];
    char sub[32];
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, "fit.grades", keys) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < 3; i++) {
        line[i] = lp_yaml_line(node);
        lp_yaml_path(sub, sizeof(sub), "fit.grades.%s", keys[i]);
        if ((v = lp_yaml_get(y, node, keys[i], &line[i])) &&
            lp_yaml_double(y, v, sub, slot[i]) != LP_OK) {
            return LP_ERR;
        }
    }
    for (int i = 1; i < 3; i++) {
        if (*slot[i] >= *slot[i - 1]) {
            lp_yaml_path(sub, sizeof(sub), "fit.grades.%s", keys[i]);
            return lp_yaml_err(y, line[i], sub,
                               "must be below fit.grades.%s (%g): thresholds descend A > B > C",
                               keys[i - 1], *slot[i - 1]);
        }
    }
    return LP_OK;
}

int lp_rules_parse_fit(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules) {
    static const char *const keys[] = {"rules", "grades", NULL};
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, "fit", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "rules", NULL)) &&
        lp_rules_parse_rule_list(y, v, "fit.rules", LP_RULE_FIT, rules->fit, LP_MAX_FIT_RULES,
                                 &rules->nfit) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "grades", NULL)) && parse_grades(y, v, rules) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

int lp_rules_parse_disqualify(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules) {
    return lp_rules_parse_rule_list(y, node, "disqualify", LP_RULE_DQ, rules->dq, LP_MAX_DQ_RULES,
                                    &rules->ndq);
}
