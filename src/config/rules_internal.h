/* leadpulse config layer, internal: the sections of the rules loader, split along the file's
 * sections (rules.c: the whole file and the scalar sections; rules_activities.c; rules_match.c;
 * rules_accounts.c). */
#ifndef LP_CONFIG_RULES_INTERNAL_H
#define LP_CONFIG_RULES_INTERNAL_H

#include "config/yaml_util.h"
#include "leadpulse/rules.h"

/* `activities:` mapping of name -> spec. */
int lp_rules_parse_activities(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules);
/* `fit:` mapping with `rules:` and `grades:`. */
int lp_rules_parse_fit(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules);
/* `disqualify:` list of rules. */
int lp_rules_parse_disqualify(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules);
/* `accounts:` (optional); `line` is the line of its key. Needs fit parsed (accounts.mqa.min_fit).
 */
int lp_rules_parse_accounts(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules);

/* What a profile rule gives when it matches: its key besides `field` and the operator. */
typedef enum {
    LP_RULE_FIT = 0, /* `points` */
    LP_RULE_DQ,      /* `reason` */
    LP_RULE_ROLE,    /* `role` (accounts.roles) */
} lp_rule_kind_t;

/* A list of at most `max` profile rules of one kind into rules[*n...], at `path`. */
int lp_rules_parse_rule_list(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_rule_kind_t kind,
                             lp_match_rule_t *rules, int max, int *n);
/* One of the role names (decision_maker, approver, ...). */
int lp_rules_parse_role(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_role_t *out);
/* A fit grade A..D (case-insensitive), into 'A'..'D'. */
int lp_rules_parse_grade(lp_yaml_t *y, yaml_node_t *node, const char *path, char *out);

/* A non-empty name of printable characters without spaces (activity names, reasons). */
int lp_rules_check_name(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *name);

#endif
