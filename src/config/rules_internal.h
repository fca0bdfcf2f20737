/* leadpulse config layer, internal: the sections of the rules loader, split along the file's
 * sections (rules.c: the whole file and the scalar sections; rules_activities.c; rules_match.c). */
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

/* A non-empty name of printable characters without spaces (activity names, reasons). */
int lp_rules_check_name(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *name);

#endif
