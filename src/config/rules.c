/* The rules loader: the whole file, and its scalar sections (model, score, machine, sla,
 * inactivity, recycle, dedup_window). Activities, profile rules and accounts live in their own
 * files. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/rules_internal.h"
#include "leadpulse/score.h" /* lp_stage_t values for inactivity.move_to */

static const char *const top_keys[] = {"model",   "score",        "activities", "machine",
                                       "fit",     "disqualify",   "sla",        "inactivity",
                                       "recycle", "dedup_window", "accounts",   NULL};

/* Lines of the score keys, for messages about how they relate to each other. */
typedef struct {
    int section, floor, warm, mql, rearm, grade;
    bool warm_given, rearm_given;
} score_lines_t;

int lp_rules_check_name(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *name) {
    if (name[0] == '\0') {
        return lp_yaml_err(y, lp_yaml_line(node), path, "must not be empty");
    }
    for (const char *p = name; *p; p++) {
        if (!isgraph((unsigned char)*p)) {
            return lp_yaml_err(y, lp_yaml_line(node), path,
                               "\"%s\" contains a space or control character; use letters, "
                               "digits and _ only",
                               name);
        }
    }
    return LP_OK;
}

static int parse_model(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules) {
    static const char *const keys[] = {"id", "version", NULL};
    yaml_node_t *v;

    if (!node) {
        return lp_yaml_err(y, line, "model",
                           "missing; add `model: {id: <name>, version: <version>}` so emitted "
                           "events say which model scored them");
    }
    if (lp_yaml_check_map(y, node, "model", keys) != LP_OK) {
        return LP_ERR;
    }
    if (!(v = lp_yaml_get(y, node, "id", NULL))) {
        return lp_yaml_err(y, line, "model.id", "missing; name the model, e.g. `id: b2b-default`");
    }
    if (lp_yaml_str(y, v, "model.id", rules->model_id, sizeof(rules->model_id)) != LP_OK ||
        lp_rules_check_name(y, v, "model.id", rules->model_id) != LP_OK) {
        return LP_ERR;
    }
    if (!(v = lp_yaml_get(y, node, "version", NULL))) {
        return lp_yaml_err(y, line, "model.version",
                           "missing; version the model, e.g. `version: \"2026.1\"`, and bump it "
                           "on every change");
    }
    if (lp_yaml_str(y, v, "model.version", rules->model_version, sizeof(rules->model_version)) !=
            LP_OK ||
        lp_rules_check_name(y, v, "model.version", rules->model_version) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

int lp_rules_parse_grade(lp_yaml_t *y, yaml_node_t *node, const char *path, char *out) {
    const char *g = lp_yaml_scalar(node);

    if (!g || strlen(g) != 1 || toupper((unsigned char)g[0]) < 'A' ||
        toupper((unsigned char)g[0]) > 'D') {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be one of A, B, C, D (D = no fit gate), got \"%s\"",
                           g ? g : lp_yaml_kind_name(node));
    }
    *out = (char)toupper((unsigned char)g[0]);
    return LP_OK;
}

static int opt_double(lp_yaml_t *y, yaml_node_t *map, const char *key, const char *path,
                      double *out, int *line) {
    yaml_node_t *v = lp_yaml_get(y, map, key, line);

    return v ? lp_yaml_double(y, v, path, out) : LP_OK;
}

static int parse_score(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules,
                       score_lines_t *sl) {
    static const char *const keys[] = {"half_life", "floor",         "warm", "mql",
                                       "rearm",     "min_fit_grade", NULL};
    yaml_node_t *v;
    int64_t ms = 0;

    if (!node) {
        return lp_yaml_err(y, line, "score",
                           "missing; add `score: {half_life: 30d, mql: 100}` at least");
    }
    if (lp_yaml_check_map(y, node, "score", keys) != LP_OK) {
        return LP_ERR;
    }
    sl->section = line;
    if (!(v = lp_yaml_get(y, node, "half_life", NULL))) {
        return lp_yaml_err(y, line, "score.half_life",
                           "missing; say how fast engagement fades, e.g. `half_life: 30d`");
    }
    if (lp_yaml_duration(y, v, "score.half_life", &ms) != LP_OK) {
        return LP_ERR;
    }
    if (ms <= 0) {
        return lp_yaml_err(y, lp_yaml_line(v), "score.half_life",
                           "must be longer than 0, e.g. 30d");
    }
    rules->half_life_ms = (double)ms;

    if (!(v = lp_yaml_get(y, node, "mql", &sl->mql))) {
        return lp_yaml_err(y, line, "score.mql",
                           "missing; set the qualification threshold, e.g. `mql: 100`");
    }
    if (lp_yaml_double(y, v, "score.mql", &rules->mql_threshold) != LP_OK) {
        return LP_ERR;
    }
    sl->floor = sl->warm = sl->rearm = sl->grade = line;
    if (opt_double(y, node, "floor", "score.floor", &rules->floor, &sl->floor) != LP_OK) {
        return LP_ERR;
    }
    /* Defaults keep the shape of the documented model (warm 40, rearm 60 for mql 100). */
    rules->warm_threshold = 0.4 * rules->mql_threshold;
    rules->rearm_level = 0.6 * rules->mql_threshold;
    sl->warm_given = lp_yaml_get(y, node, "warm", NULL) != NULL;
    sl->rearm_given = lp_yaml_get(y, node, "rearm", NULL) != NULL;
    if (opt_double(y, node, "warm", "score.warm", &rules->warm_threshold, &sl->warm) != LP_OK ||
        opt_double(y, node, "rearm", "score.rearm", &rules->rearm_level, &sl->rearm) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "min_fit_grade", &sl->grade)) &&
        lp_rules_parse_grade(y, v, "score.min_fit_grade", &rules->min_fit_grade) != LP_OK) {
        return LP_ERR;
    }
    return LP_OK;
}

static int check_score(lp_yaml_t *y, lp_rules_t *rules, const score_lines_t *sl) {
    /* warm and rearm default to a share of mql; say so when the default is what conflicts */
    const char *rearm_note = sl->rearm_given ? "" : " (the default, 60% of score.mql)";
    const char *warm_note = sl->warm_given ? "" : " (the default, 40% of score.mql)";

    if (rules->mql_threshold <= rules->floor) {
        return lp_yaml_err(y, sl->mql, "score.mql",
                           "must be above score.floor (%g); raise it or lower score.floor",
                           rules->floor);
    }
    if (rules->rearm_level >= rules->mql_threshold) {
        return lp_yaml_err(y, sl->rearm, "score.rearm",
                           "must be below score.mql (%g); lower it or raise score.mql",
                           rules->mql_threshold);
    }
    if (rules->rearm_level <= rules->floor) {
        return lp_yaml_err(y, sl->rearm, "score.rearm",
                           "%g%s must be above score.floor (%g), or a qualified lead could never "
                           "re-arm by decay; set score.rearm higher or lower score.floor",
                           rules->rearm_level, rearm_note, rules->floor);
    }
    if (rules->warm_threshold > rules->mql_threshold) {
        return lp_yaml_err(y, sl->warm, "score.warm",
                           "must not be above score.mql (%g); lower it or raise score.mql",
                           rules->mql_threshold);
    }
    if (rules->warm_threshold <= rules->floor) {
        return lp_yaml_err(y, sl->warm, "score.warm",
                           "%g%s must be above score.floor (%g); set score.warm higher or lower "
                           "score.floor",
                           rules->warm_threshold, warm_note, rules->floor);
    }
    if (rules->min_fit_grade != 'D' && rules->nfit == 0) {
        return lp_yaml_err(y, sl->grade, "score.min_fit_grade",
                           "is %c but there are no fit rules, so every lead grades D and none "
                           "could qualify; add fit.rules or set it to D",
                           rules->min_fit_grade);
    }
    return LP_OK;
}

static int parse_machine(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules) {
    static const char *const keys[] = {"honor_flag", "click_within", NULL};
    yaml_node_t *v;
    int64_t ms = 0;

    if (lp_yaml_check_map(y, node, "machine", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "honor_flag", NULL)) &&
        lp_yaml_bool(y, v, "machine.honor_flag", &rules->honor_machine_flag) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "click_within", NULL))) {
        if (lp_yaml_duration(y, v, "machine.click_within", &ms) != LP_OK) {
            return LP_ERR;
        }
        if (ms % 1000 != 0) {
            return lp_yaml_err(y, lp_yaml_line(v), "machine.click_within",
                               "must be whole seconds (the producer reports seconds since send), "
                               "e.g. 10s");
        }
        rules->machine_click_within_s = ms / 1000;
    }
    return LP_OK;
}

static int parse_sla(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules) {
    static const char *const keys[] = {"accept_within", "reminder_every", "max_reminders", NULL};
    yaml_node_t *v;
    int64_t n = 0;

    if (lp_yaml_check_map(y, node, "sla", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "accept_within", NULL)) &&
        lp_yaml_duration(y, v, "sla.accept_within", &rules->sla_ms) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "reminder_every", &line)) &&
        lp_yaml_duration(y, v, "sla.reminder_every", &rules->sla_reminder_ms) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "max_reminders", NULL))) {
        if (lp_yaml_int(y, v, "sla.max_reminders", 0, 100, &n) != LP_OK) {
            return LP_ERR;
        }
        rules->sla_max_reminders = (int)n;
    }
    if (rules->sla_reminder_ms > 0 && rules->sla_ms == 0) {
        return lp_yaml_err(y, line, "sla.reminder_every",
                           "needs sla.accept_within; set it or remove the reminders");
    }
    if (rules->sla_reminder_ms > 0 && rules->sla_max_reminders == 0) {
        return lp_yaml_err(y, line, "sla.reminder_every",
                           "is set but sla.max_reminders is 0; set max_reminders (e.g. 2) or "
                           "remove reminder_every");
    }
    if (rules->sla_max_reminders > 0 && rules->sla_reminder_ms == 0) {
        return lp_yaml_err(y, lp_yaml_line(v), "sla.max_reminders",
                           "needs sla.reminder_every (e.g. 24h)");
    }
    return LP_OK;
}

static int parse_inactivity(lp_yaml_t *y, yaml_node_t *node, lp_rules_t *rules) {
    static const char *const keys[] = {"after", "move_to", NULL};
    static const struct {
        const char *name;
        int stage;
    } stages[] = {{"suspect", LP_STAGE_SUSPECT},
                  {"responder", LP_STAGE_RESPONDER},
                  {"recycled", LP_STAGE_RECYCLED}}; /* stages a lead leaves by engaging again */
    yaml_node_t *v;

    if (lp_yaml_check_map(y, node, "inactivity", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "after", NULL)) &&
        lp_yaml_duration(y, v, "inactivity.after", &rules->inactivity_ms) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "move_to", NULL))) {
        const char *s = lp_yaml_scalar(v);
        size_t i = 0;

        for (; s && i < sizeof(stages) / sizeof(stages[0]); i++) {
            if (strcmp(s, stages[i].name) == 0) {
                break;
            }
        }
        if (!s || i == sizeof(stages) / sizeof(stages[0])) {
            return lp_yaml_err(y, lp_yaml_line(v), "inactivity.move_to",
                               "must be suspect, responder or recycled, got \"%s\"",
                               s ? s : lp_yaml_kind_name(v));
        }
        rules->inactive_stage = stages[i].stage;
    }
    return LP_OK;
}

static int parse_recycle(lp_yaml_t *y, yaml_node_t *node, int line, lp_rules_t *rules) {
    static const char *const keys[] = {"score", "factor", NULL};
    static const char *const modes[] = {"reset", "keep", "scale", NULL};
    yaml_node_t *v, *factor;
    int factor_line = line;

    if (lp_yaml_check_map(y, node, "recycle", keys) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, node, "score", NULL))) {
        const char *s = lp_yaml_scalar(v);
        int i = 0;
        for (; s && modes[i] && strcmp(s, modes[i]) != 0; i++) {
        }
        if (!s || !modes[i]) {
            return lp_yaml_err(y, lp_yaml_line(v), "recycle.score",
                               "must be reset, keep or scale, got \"%s\"",
                               s ? s : lp_yaml_kind_name(v));
        }
        rules->recycle_mode = (lp_recycle_mode_t)i;
    }
    factor = lp_yaml_get(y, node, "factor", &factor_line);
    if (rules->recycle_mode == LP_RECYCLE_SCALE && !factor) {
        return lp_yaml_err(y, line, "recycle.factor",
                           "missing; `score: scale` needs a factor between 0 and 1, e.g. 0.5");
    }
    if (factor && rules->recycle_mode != LP_RECYCLE_SCALE) {
        return lp_yaml_err(y, factor_line, "recycle.factor",
                           "only applies with `score: scale`; remove it or set score: scale");
    }
    if (factor) {
        if (lp_yaml_double(y, factor, "recycle.factor", &rules->recycle_scale) != LP_OK) {
            return LP_ERR;
        }
        if (rules->recycle_scale < 0 || rules->recycle_scale > 1) {
            return lp_yaml_err(y, factor_line, "recycle.factor", "must be between 0 and 1, got %g",
                               rules->recycle_scale);
        }
    }
    return LP_OK;
}

static void set_defaults(lp_rules_t *rules, const char *name) {
    memset(rules, 0, sizeof(*rules));
    snprintf(rules->source, sizeof(rules->source), "%s", name);
    rules->floor = 0;
    rules->min_fit_grade = 'D';
    rules->honor_machine_flag = true;
    rules->grade_a = 60;
    rules->grade_b = 40;
    rules->grade_c = 20;
    rules->inactive_stage = LP_STAGE_RESPONDER;
    rules->recycle_mode = LP_RECYCLE_RESET;
    rules->recycle_scale = 1.0;
    rules->dedup_window = 16;
}

static int parse_root(lp_yaml_t *y, lp_rules_t *rules) {
    yaml_node_t *root = lp_yaml_root(y);
    yaml_node_t *v;
    score_lines_t sl = {0};
    int line = 1;
    int64_t n = 0;

    if (!root || lp_yaml_is_null(root)) {
        return lp_yaml_err(y, 1, "(top level)", "the file is empty; start from config/rules.yaml");
    }
    if (lp_yaml_check_map(y, root, "", top_keys) != LP_OK) {
        return LP_ERR;
    }
    v = lp_yaml_get(y, root, "model", &line);
    if (parse_model(y, v, line, rules) != LP_OK) {
        return LP_ERR;
    }
    line = 1;
    v = lp_yaml_get(y, root, "score", &line);
    if (parse_score(y, v, line, rules, &sl) != LP_OK) {
        return LP_ERR;
    }
    line = 1;
    v = lp_yaml_get(y, root, "activities", &line);
    if (lp_rules_parse_activities(y, v, line, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "machine", NULL)) && parse_machine(y, v, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "fit", NULL)) && lp_rules_parse_fit(y, v, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "disqualify", NULL)) &&
        lp_rules_parse_disqualify(y, v, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "sla", &line)) && parse_sla(y, v, line, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "inactivity", NULL)) && parse_inactivity(y, v, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "recycle", &line)) && parse_recycle(y, v, line, rules) != LP_OK) {
        return LP_ERR;
    }
    if ((v = lp_yaml_get(y, root, "dedup_window", NULL))) {
        if (lp_yaml_int(y, v, "dedup_window", 1, LP_DEDUP_MAX, &n) != LP_OK) {
            return LP_ERR;
        }
        rules->dedup_window = (int)n;
    }
    if ((v = lp_yaml_get(y, root, "accounts", &line)) &&
        lp_rules_parse_accounts(y, v, line, rules) != LP_OK) {
        return LP_ERR;
    }
    return check_score(y, rules, &sl);
}

lp_rules_t *lp_rules_load_buffer(const char *name, const char *buf, size_t len, char *errstr,
                                 size_t errstr_size) {
    lp_yaml_t y;
    lp_rules_t *rules = NULL;

    if (!name) {
        name = "(rules)";
    }
    if (lp_yaml_open(&y, name, buf, len, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    rules = calloc(1, sizeof(*rules));
    if (!rules) {
        lp_yaml_err(&y, 1, "(rules)", "out of memory");
        goto err;
    }
    set_defaults(rules, name);
    if (parse_root(&y, rules) != LP_OK) {
        goto err;
    }
    lp_yaml_close(&y);
    return rules;
err:
    lp_yaml_close(&y);
    lp_rules_destroy(rules);
    return NULL;
}

lp_rules_t *lp_rules_load(const char *path, char *errstr, size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    lp_rules_t *rules;

    if (lp_yaml_read_file(path, &buf, &len, errstr, errstr_size) != LP_OK) {
        return NULL;
    }
    rules = lp_rules_load_buffer(path, buf, len, errstr, errstr_size);
    free(buf);
    return rules;
}

void lp_rules_destroy(lp_rules_t *rules) {
    free(rules);
}

int lp_rules_activity_index(const lp_rules_t *rules, const char *type) {
    if (!rules || !type) {
        return -1;
    }
    for (int i = 0; i < rules->nactivities; i++) {
        if (strcmp(rules->activities[i].name, type) == 0) {
            return i;
        }
    }
    return -1;
}
