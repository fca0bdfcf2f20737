/* The `activities:` section: points per activity type, conditional points, caps. */
#include <stdio.h>
#include <string.h>

#include "config/rules_internal.h"
#include "leadpulse/score.h"

static int parse_condition(lp_yaml_t *y, yaml_node_t *node, const char *path,
                           lp_condition_t *cond) {
    static const char *const keys[] = {"url_prefix", "asset_id", "campaign_id", "points", NULL};
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, path, keys) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.url_prefix", path);
    if ((v = lp_yaml_get(y, node, "url_prefix", NULL)) &&
        lp_yaml_str(y, v, sub, cond->url_prefix, sizeof(cond->url_prefix)) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.asset_id", path);
    if ((v = lp_yaml_get(y, node, "asset_id", NULL)) &&
        lp_yaml_str(y, v, sub, cond->asset_id, sizeof(cond->asset_id)) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.campaign_id", path);
    if ((v = lp_yaml_get(y, node, "campaign_id", NULL)) &&
        lp_yaml_str(y, v, sub, cond->campaign_id, sizeof(cond->campaign_id)) != LP_OK) {
        return LP_ERR;
    }
    if (!cond->url_prefix[0] && !cond->asset_id[0] && !cond->campaign_id[0]) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "needs at least one of url_prefix, asset_id, campaign_id (a condition "
                           "without one always matches; use the activity's points instead)");
    }
    lp_yaml_path(sub, sizeof(sub), "%s.points", path);
    if (!(v = lp_yaml_get(y, node, "points", NULL))) {
        return lp_yaml_err(y, lp_yaml_line(node), sub,
                           "missing; say how many points a match is worth");
    }
    return lp_yaml_double(y, v, sub, &cond->points);
}

static int parse_when(lp_yaml_t *y, yaml_node_t *node, const char *path, lp_activity_rule_t *act) {
    char sub[LP_YAML_PATH_MAX];

    if (node->type != YAML_SEQUENCE_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be a list of conditions (`- url_prefix: /pricing` ...), got %s",
                           lp_yaml_kind_name(node));
    }
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *c = lp_yaml_node(y, *it);

        lp_yaml_path(sub, sizeof(sub), "%s[%d]", path, act->ncond);
        if (act->ncond == LP_MAX_CONDITIONS) {
            return lp_yaml_err(y, lp_yaml_line(c), sub,
                               "too many conditions (at most %d per activity); merge some",
                               LP_MAX_CONDITIONS);
        }
        if (parse_condition(y, c, sub, &act->cond[act->ncond]) != LP_OK) {
            return LP_ERR;
        }
        act->ncond++;
    }
    return LP_OK;
}

static int parse_cap(lp_yaml_t *y, yaml_node_t *node, int line, const char *path,
                     lp_activity_rule_t *act) {
    static const char *const keys[] = {"count", "window", NULL};
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *v;
    int64_t n = 0;

    if (lp_yaml_check_map(y, node, path, keys) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.count", path);
    if (!(v = lp_yaml_get(y, node, "count", NULL))) {
        return lp_yaml_err(y, line, sub, "missing; e.g. `cap: {count: 3, window: 1d}`");
    }
    if (lp_yaml_int(y, v, sub, 1, LP_CAP_COUNT_MAX, &n) != LP_OK) {
        return LP_ERR;
    }
    act->cap_count = (int)n;
    lp_yaml_path(sub, sizeof(sub), "%s.window", path);
    if (!(v = lp_yaml_get(y, node, "window", NULL))) {
        return lp_yaml_err(y, line, sub, "missing; e.g. `cap: {count: 3, window: 1d}`");
    }
    if (lp_yaml_duration(y, v, sub, &act->cap_window_ms) != LP_OK) {
        return LP_ERR;
    }
    if (act->cap_window_ms <= 0) {
        return lp_yaml_err(y, lp_yaml_line(v), sub, "must be longer than 0, e.g. 1d");
    }
    return LP_OK;
}

static int parse_activity(lp_yaml_t *y, yaml_node_t *node, int line, const char *path,
                          lp_activity_rule_t *act) {
    static const char *const keys[] = {"points", "when", "cap", "engagement", NULL};
    char sub[LP_YAML_PATH_MAX];
    yaml_node_t *v;
    int cap_line = line;

    /* Shorthand `email_click: 5` for an activity that only has points. */
    if (node->type == YAML_SCALAR_NODE && !lp_yaml_is_null(node)) {
        if (lp_yaml_double(y, node, path, &act->points) != LP_OK) {
            return LP_ERR;
        }
        act->is_engagement = act->points > 0;
        return LP_OK;
    }
    if (lp_yaml_check_map(y, node, path, keys) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.points", path);
    if (!(v = lp_yaml_get(y, node, "points", NULL))) {
        return lp_yaml_err(y, line, sub, "missing; give the activity its points (may be 0)");
    }
    if (lp_yaml_double(y, v, sub, &act->points) != LP_OK) {
        return LP_ERR;
    }
    act->is_engagement = act->points > 0;
    lp_yaml_path(sub, sizeof(sub), "%s.when", path);
    if ((v = lp_yaml_get(y, node, "when", NULL)) && parse_when(y, v, sub, act) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.cap", path);
    if ((v = lp_yaml_get(y, node, "cap", &cap_line)) &&
        parse_cap(y, v, cap_line, sub, act) != LP_OK) {
        return LP_ERR;
    }
    lp_yaml_path(sub, sizeof(sub), "%s.engagement", path);
    if ((v = lp_yaml_get(y, node, "engagement", NULL)) &&
        lp_yaml_bool(y, v, sub, &act->is_engagement) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

int lp_rules_parse_activities(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules) {
    char path[LP_YAML_PATH_MAX];
    int first_line[LP_MAX_ACTIVITIES];

    if (!node) {
        return lp_yaml_err(y, line, "activities",
                           "missing; define at least one activity, e.g. "
                           "`activities: {form_fill: {points: 20}}`");
    }
    if (node->type != YAML_MAPPING_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), "activities",
                           "must be a mapping of activity name -> settings, got %s",
                           lp_yaml_kind_name(node));
    }
    if (node->data.mapping.pairs.top == node->data.mapping.pairs.start) {
        return lp_yaml_err(y, line, "activities",
                           "is empty; define at least one activity, e.g. form_fill: {points: 20}");
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = lp_yaml_node(y, p->key);
        const char *name = lp_yaml_scalar(key);
        lp_activity_rule_t *act;

        if (!name || lp_yaml_is_null(key)) {
            return lp_yaml_err(y, lp_yaml_line(key), "activities",
                               "activity names must be plain names, got %s",
                               lp_yaml_kind_name(key));
        }
        lp_yaml_path(path, sizeof(path), "activities.%s", name);
        if (lp_rules_check_name(y, key, path, name) != LP_OK) {
            return LP_ERR;
        }
        if (strlen(name) > LP_NAME_MAX) {
            return lp_yaml_err(y, lp_yaml_line(key), path,
                               "activity name is %zu characters long; at most %d are allowed",
                               strlen(name), LP_NAME_MAX);
        }
        for (int i = 0; i < rules->nactivities; i++) {
            if (strcmp(rules->activities[i].name, name) == 0) {
                return lp_yaml_err(y, lp_yaml_line(key), path,
                                   "activity defined twice (first at line %d); keep one",
                                   first_line[i]);
            }
        }
        if (rules->nactivities == LP_MAX_ACTIVITIES) {
            return lp_yaml_err(y, lp_yaml_line(key), path,
                               "too many activities (at most %d); remove the ones no producer "
                               "sends",
                               LP_MAX_ACTIVITIES);
        }
        act = &rules->activities[rules->nactivities];
        snprintf(act->name, sizeof(act->name), "%s", name);
        first_line[rules->nactivities] = lp_yaml_line(key);
        if (parse_activity(y, lp_yaml_node(y, p->value), lp_yaml_line(key), path, act) != LP_OK) {
            return LP_ERR;
        }
        rules->nactivities++;
    }
    return LP_OK;
}
