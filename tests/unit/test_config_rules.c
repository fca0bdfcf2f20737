/* The rules loader: the shipped default model, every kind of error (file, line, key, text),
 * durations, duplicates and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/config.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

static const char *source_dir(void) {
    const char *dir = getenv("LP_SOURCE_DIR");
    return dir && *dir ? dir : LP_SOURCE_DIR;
}

static lp_rules_t *load_str(const char *yaml, char *err, size_t size) {
    return lp_rules_load_buffer("t.yaml", yaml, strlen(yaml), err, size);
}

/* Loads yaml, expects failure, and checks that the message starts with `prefix`
 * ("t.yaml:<line>: <key>: ...") and contains `part`. */
static void expect_error(const char *yaml, const char *prefix, const char *part) {
    char err[LP_ERRSTR] = "";
    lp_rules_t *rules = load_str(yaml, err, sizeof(err));

    if (rules || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, part)) {
        print_error("yaml:\n%s\nwant prefix \"%s\" and \"%s\"\ngot \"%s\" (rules %p)\n", yaml,
                    prefix, part, err, (void *)rules);
        lp_rules_destroy(rules);
        fail();
    }
}

static const char *HEAD = "model: {id: m, version: \"1\"}\n"
                          "score: {half_life: 30d, mql: 100}\n";

/* HEAD (2 lines) + body: keeps error line numbers easy to read. */
static void expect_error_after_head(const char *body, const char *prefix, const char *part) {
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", HEAD, body);
    expect_error(yaml, prefix, part);
}

static void test_default_rules_file(void **state) {
    char path[1024], err[LP_ERRSTR] = "";
    lp_rules_t *rules;
    const lp_activity_rule_t *a;
    int i;

    (void)state;
    snprintf(path, sizeof(path), "%s/config/rules.yaml", source_dir());
    rules = lp_rules_load(path, err, sizeof(err));
    if (!rules) {
        print_error("%s\n", err);
    }
    assert_non_null(rules);
    assert_string_equal(rules->source, path);
    assert_string_equal(rules->model_id, "b2b-default");
    assert_string_equal(rules->model_version, "2026.1");
    assert_true(rules->half_life_ms == 30.0 * DAY_MS);
    assert_true(rules->floor == 0 && rules->warm_threshold == 40);
    assert_true(rules->mql_threshold == 100 && rules->rearm_level == 60);
    assert_int_equal(rules->min_fit_grade, 'C');
    assert_int_equal(rules->nactivities, 11);

    static const char *const builtin[] = {
        "email_open",       "email_click", "content_download", "webinar_registered",
        "webinar_attended", "qr_scan",     "web_visit",        "form_fill",
        "demo_request",     "unsubscribe", "email_bounce"};
    for (size_t k = 0; k < sizeof(builtin) / sizeof(builtin[0]); k++) {
        assert_true(lp_rules_activity_index(rules, builtin[k]) >= 0);
    }
    assert_int_equal(lp_rules_activity_index(rules, "page_view"), -1);
    assert_int_equal(lp_rules_activity_index(rules, "Demo_Request"), -1);
    assert_int_equal(lp_rules_activity_index(NULL, "demo_request"), -1);

    a = &rules->activities[lp_rules_activity_index(rules, "demo_request")];
    assert_true(a->points == 40 && a->is_engagement && a->cap_count == 0);
    a = &rules->activities[lp_rules_activity_index(rules, "form_fill")];
    assert_true(a->points == 20);
    a = &rules->activities[lp_rules_activity_index(rules, "webinar_attended")];
    assert_true(a->points == 15);
    a = &rules->activities[lp_rules_activity_index(rules, "email_open")];
    assert_true(a->points == 1);
    assert_int_equal(a->cap_count, 3);
    assert_int_equal(a->cap_window_ms, DAY_MS);
    a = &rules->activities[lp_rules_activity_index(rules, "web_visit")];
    assert_int_equal(a->ncond, 3);
    assert_string_equal(a->cond[0].url_prefix, "/pricing");
    assert_true(a->cond[0].points == 10);
    assert_string_equal(a->cond[0].asset_id, "");
    a = &rules->activities[lp_rules_activity_index(rules, "unsubscribe")];
    assert_true(a->points == -20 && !a->is_engagement);
    a = &rules->activities[lp_rules_activity_index(rules, "email_bounce")];
    assert_true(a->points == -15 && !a->is_engagement);

    assert_true(rules->honor_machine_flag);
    assert_int_equal(rules->machine_click_within_s, 10);

    assert_int_equal(rules->nfit, 7);
    for (i = 0; i < rules->nfit && rules->fit[i].field != LP_FIELD_COMPANY_SIZE; i++) {
    }
    assert_true(i < rules->nfit);
    assert_int_equal(rules->fit[i].op, LP_MATCH_RANGE);
    assert_int_equal(rules->fit[i].min, 200);
    assert_int_equal(rules->fit[i].max, 5000);
    assert_int_equal(rules->fit[i + 1].min, 5001);
    assert_true(rules->fit[i + 1].max == INT64_MAX);
    assert_true(rules->grade_a == 60 && rules->grade_b == 40 && rules->grade_c == 20);

    assert_int_equal(rules->ndq, 3);
    assert_string_equal(rules->dq[0].reason, "competitor");
    assert_int_equal(rules->dq[0].field, LP_FIELD_EMAIL_DOMAIN);
    assert_int_equal(rules->dq[1].op, LP_MATCH_SUFFIX);
    assert_string_equal(rules->dq[1].values[0], "@example.com");
    assert_string_equal(rules->dq[2].reason, "student");
    assert_int_equal(rules->dq[2].field, LP_FIELD_TITLE);
    assert_int_equal(rules->dq[2].op, LP_MATCH_CONTAINS);

    assert_int_equal(rules->sla_ms, 48 * HOUR_MS);
    assert_int_equal(rules->sla_reminder_ms, 24 * HOUR_MS);
    assert_int_equal(rules->sla_max_reminders, 2);
    assert_int_equal(rules->inactivity_ms, 30 * DAY_MS);
    assert_int_equal(rules->inactive_stage, LP_STAGE_RESPONDER);
    assert_int_equal(rules->recycle_mode, LP_RECYCLE_RESET);
    assert_int_equal(rules->dedup_window, 16);
    lp_rules_destroy(rules);
}

static void test_minimal_defaults(void **state) {
    char path[1024], err[LP_ERRSTR] = "";
    lp_rules_t *rules;

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/unit/data/rules/minimal.yaml", source_dir());
    rules = lp_rules_load(path, err, sizeof(err));
    assert_non_null(rules);
    assert_string_equal(rules->model_version, "1");
    assert_true(rules->half_life_ms == 7.0 * DAY_MS);
    assert_true(rules->floor == 0);
    assert_true(rules->warm_threshold == 20 && rules->rearm_level == 30); /* 40% / 60% of mql */
    assert_int_equal(rules->min_fit_grade, 'D');
    assert_int_equal(rules->nactivities, 1);
    assert_true(rules->activities[0].points == 10 && rules->activities[0].is_engagement);
    assert_true(rules->honor_machine_flag);
    assert_int_equal(rules->machine_click_within_s, 0);
    assert_int_equal(rules->nfit + rules->ndq, 0);
    assert_int_equal(rules->sla_ms + rules->sla_reminder_ms + rules->inactivity_ms, 0);
    assert_int_equal(rules->inactive_stage, LP_STAGE_RESPONDER);
    assert_int_equal(rules->recycle_mode, LP_RECYCLE_RESET);
    assert_int_equal(rules->dedup_window, 16);
    lp_rules_destroy(rules);
}

static void test_file_errors_name_the_file(void **state) {
    char path[1024], want[1200], err[LP_ERRSTR] = "";

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/unit/data/rules/bad_rearm.yaml", source_dir());
    assert_null(lp_rules_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s:9: score.rearm: must be below score.mql (100); lower it or raise score.mql", path);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/tests/unit/data/rules/bad_typo.yaml", source_dir());
    assert_null(lp_rules_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s:8: activities.email_open.cap.windwo: unknown key; did you mean `window`?", path);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/tests/unit/data/rules/no-such-file.yaml", source_dir());
    assert_null(lp_rules_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "no-such-file.yaml: cannot open"));
}

static void test_missing_required(void **state) {
    (void)state;
    expect_error("score: {half_life: 30d, mql: 100}\nactivities: {a: 1}\n",
                 "t.yaml:1: model:", "missing");
    expect_error("model:\n  version: 1\nscore: {half_life: 30d, mql: 100}\nactivities: {a: 1}\n",
                 "t.yaml:1: model.id: missing", "b2b-default");
    expect_error("model: {id: m}\nscore: {half_life: 30d, mql: 100}\nactivities: {a: 1}\n",
                 "t.yaml:1: model.version: missing", "version");
    expect_error("model: {id: m, version: 1}\nactivities: {a: 1}\n", "t.yaml:1: score: missing",
                 "half_life");
    expect_error("model: {id: m, version: 1}\nscore:\n  mql: 100\nactivities: {a: 1}\n",
                 "t.yaml:2: score.half_life: missing", "30d");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 1d\nactivities: {a: 1}\n",
                 "t.yaml:2: score.mql: missing", "threshold");
    expect_error_after_head("", "t.yaml:1: activities: missing", "at least one");
    expect_error_after_head("activities: {}\n", "t.yaml:3: activities: is empty", "at least one");
    expect_error_after_head("activities:\n  a:\n    cap: {count: 1, window: 1d}\n",
                            "t.yaml:4: activities.a.points: missing", "points");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    cap: {count: 2}\n",
                            "t.yaml:6: activities.a.cap.window: missing", "window: 1d");
    expect_error("", "t.yaml:1: (top level): the file is empty", "rules.yaml");
}

static void test_unknown_keys(void **state) {
    (void)state;
    expect_error("model: {id: m, version: 1}\nscroe: {half_life: 30d, mql: 100}\n",
                 "t.yaml:2: scroe: unknown key; did you mean `score`?", "");
    expect_error_after_head("activities:\n  a:\n    pionts: 1\n",
                            "t.yaml:5: activities.a.pionts: unknown key; did you mean `points`?",
                            "");
    expect_error_after_head("activities: {a: 1}\nbananas: 3\n", "t.yaml:4: bananas: unknown key",
                            "docs/rules.md");
    expect_error_after_head("activities: {a: 1}\nfit:\n  rules:\n    - field: titel\n"
                            "      in: [cto]\n      points: 5\n",
                            "t.yaml:6: fit.rules[0].field: unknown field \"titel\"",
                            "did you mean `title`?");
    /* a disqualify rule has a reason, not points */
    expect_error_after_head("activities: {a: 1}\ndisqualify:\n  - field: title\n"
                            "    in: [cto]\n    points: 5\n",
                            "t.yaml:7: disqualify[0].points: unknown key", "");
}

static void test_wrong_types(void **state) {
    (void)state;
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: lots\n",
                 "t.yaml:4: score.mql: must be a number, got \"lots\"", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: .nan\n",
                 "t.yaml:4: score.mql: must be a number", "");
    expect_error("model: [m, 1]\n", "t.yaml:1: model: must be a mapping", "got a list");
    expect_error_after_head("activities: [a, b]\n", "t.yaml:3: activities: must be a mapping",
                            "got a list");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    engagement: maybe\n",
                            "t.yaml:6: activities.a.engagement: must be true or false", "maybe");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    cap: {count: 2.5, window: 1d}\n",
                            "t.yaml:6: activities.a.cap.count: must be a whole number", "");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    when: {url_prefix: /x}\n",
                            "t.yaml:6: activities.a.when: must be a list", "");
    expect_error_after_head("activities: {a: 1}\nfit:\n  rules:\n    - field: title\n"
                            "      range: [1, 10]\n      points: 5\n",
                            "t.yaml:7: fit.rules[0].range: range only applies to company_size", "");
    expect_error_after_head("activities: {a: 1}\nfit:\n  rules:\n    - field: company_size\n"
                            "      in: [\"100\"]\n      points: 5\n",
                            "t.yaml:7: fit.rules[0].in: company_size is a number", "range");
    expect_error_after_head("activities: {a: 1}\nfit:\n  rules:\n    - field: company_size\n"
                            "      range: [500, 100]\n      points: 5\n",
                            "t.yaml:7: fit.rules[0].range: max (100) is below min (500)", "");
    expect_error_after_head("activities: {a: 1}\nfit:\n  rules:\n    - field: title\n"
                            "      in: [cto]\n      contains: [chief]\n      points: 5\n",
                            "t.yaml:8: fit.rules[0]: has both `in` and `contains`", "");
    expect_error_after_head("activities: {a: 1}\ninactivity: {after: 30d, move_to: mql}\n",
                            "t.yaml:4: inactivity.move_to: must be suspect, responder or recycled",
                            "mql");
    /* An inactive lead is not warm: the core could not keep it there. */
    expect_error_after_head("activities: {a: 1}\ninactivity: {after: 30d, move_to: warm}\n",
                            "t.yaml:4: inactivity.move_to: must be suspect, responder or recycled",
                            "warm");
    {
        char err[LP_ERRSTR] = "";
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "%sactivities: {a: 1}\ninactivity: {after: 30d, move_to: "
                 "recycled}\n",
                 HEAD);
        lp_rules_t *rules = load_str(yaml, err, sizeof(err));
        assert_non_null(rules);
        assert_int_equal(rules->inactive_stage, LP_STAGE_RECYCLED);
        lp_rules_destroy(rules);
    }
    expect_error_after_head("activities: {a: 1}\nrecycle: {score: halve}\n",
                            "t.yaml:4: recycle.score: must be reset, keep or scale", "halve");
    expect_error_after_head("activities: {a: 1}\nrecycle:\n  score: scale\n",
                            "t.yaml:4: recycle.factor: missing", "0.5");
    expect_error_after_head("activities: {a: 1}\nrecycle:\n  score: keep\n  factor: 0.5\n",
                            "t.yaml:6: recycle.factor: only applies with `score: scale`", "");
    expect_error_after_head("activities: {a: 1}\nrecycle: {score: scale, factor: 1.5}\n",
                            "t.yaml:4: recycle.factor: must be between 0 and 1", "");
}

static void test_value_rules(void **state) {
    (void)state;
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  rearm: 120\nactivities: {a: 1}\n",
                 "t.yaml:5: score.rearm: must be below score.mql (100); lower it or raise "
                 "score.mql",
                 "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  warm: 101\nactivities: {a: 1}\n",
                 "t.yaml:5: score.warm: must not be above score.mql (100)", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  floor: 70\nactivities: {a: 1}\n",
                 "t.yaml:2: score.rearm: 60 (the default, 60% of score.mql) must be above "
                 "score.floor (70)",
                 "set score.rearm higher");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  floor: 45\n  rearm: 50\nactivities: {a: 1}\n",
                 "t.yaml:2: score.warm: 40 (the default, 40% of score.mql) must be above "
                 "score.floor (45)",
                 "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  floor: 20\n  rearm: 15\nactivities: {a: 1}\n",
                 "t.yaml:6: score.rearm: 15 must be above score.floor (20)", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 0\n  mql: 100\n",
                 "t.yaml:3: score.half_life: must be longer than 0", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: -3d\n  mql: 100\n",
                 "t.yaml:3: score.half_life: must not be negative, got \"-3d\"", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30\n  mql: 100\n",
                 "t.yaml:3: score.half_life: needs a unit", "30d");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  min_fit_grade: E\n",
                 "t.yaml:5: score.min_fit_grade: must be one of A, B, C, D", "");
    expect_error("model: {id: m, version: 1}\nscore:\n  half_life: 30d\n  mql: 100\n"
                 "  min_fit_grade: B\nactivities: {a: 1}\n",
                 "t.yaml:5: score.min_fit_grade: is B but there are no fit rules", "");
    expect_error_after_head("activities: {a: 1}\nfit:\n  grades:\n    A: 50\n    B: 50\n"
                            "    C: 10\n",
                            "t.yaml:7: fit.grades.B: must be below fit.grades.A (50)", "A > B > C");
    expect_error_after_head("activities: {a: 1}\nfit:\n  grades: {A: 50, B: 40, C: 45}\n",
                            "t.yaml:5: fit.grades.C: must be below fit.grades.B (40)", "");
    expect_error_after_head("activities: {a: 1}\nmachine: {click_within: 500ms}\n",
                            "t.yaml:4: machine.click_within: must be whole seconds", "");
    expect_error_after_head("activities: {a: 1}\nsla:\n  reminder_every: 24h\n"
                            "  max_reminders: 2\n",
                            "t.yaml:5: sla.reminder_every: needs sla.accept_within", "");
    expect_error_after_head("activities: {a: 1}\nsla:\n  accept_within: 48h\n"
                            "  max_reminders: 2\n",
                            "t.yaml:6: sla.max_reminders: needs sla.reminder_every", "");
    expect_error_after_head("activities: {a: 1}\ndedup_window: 0\n",
                            "t.yaml:4: dedup_window: must be between 1 and 64, got 0", "");
    expect_error_after_head("activities: {a: 1}\ndedup_window: 65\n",
                            "t.yaml:4: dedup_window: must be between 1 and 64, got 65", "");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    when:\n      - points: 5\n",
                            "t.yaml:7: activities.a.when[0]: needs at least one of url_prefix", "");
    expect_error_after_head("activities: {a: 1}\ndisqualify:\n  - field: email\n"
                            "    suffix: [\"\"]\n    reason: test\n",
                            "t.yaml:6: disqualify[0].suffix[0]: is empty", "every lead");
    expect_error_after_head("activities: {a: 1}\ndisqualify:\n  - field: email\n"
                            "    suffix: \"@x.com\"\n",
                            "t.yaml:5: disqualify[0].reason: missing", "competitor");
}

static void test_yaml_level_errors(void **state) {
    (void)state;
    expect_error_after_head("activities:\n  a: [1\n", "t.yaml:", "fix the YAML syntax");
    expect_error("model: &m {id: m, version: 1}\nother: *m\n",
                 "t.yaml:2: (yaml): aliases (*name) are not supported", "");
    expect_error("model: {id: m, version: 1}\n---\nmodel: {id: m, version: 2}\n",
                 "t.yaml:2: (yaml): more than one YAML document", "");
    expect_error("model: {id: m, version: 1}\nscore: {half_life: 30d, mql: 100}\n"
                 "score: {half_life: 30d, mql: 90}\n",
                 "t.yaml:3: score: duplicate key (first at line 2)", "");
}

static void test_duplicates(void **state) {
    (void)state;
    expect_error_after_head("activities:\n  form_fill: 20\n  demo_request: 40\n  form_fill: 10\n",
                            "t.yaml:6: activities.form_fill: activity defined twice (first at "
                            "line 4)",
                            "");
    expect_error_after_head("activities:\n  a:\n    points: 1\n    points: 2\n",
                            "t.yaml:6: activities.a.points: duplicate key (first at line 5)", "");
}

static void test_durations(void **state) {
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {{"30d", 30 * DAY_MS},
              {"12h", 12 * HOUR_MS},
              {"90s", 90000},
              {"500ms", 500},
              {"15m", 900000},
              {"1h30m", 5400000},
              {"2w", 14 * DAY_MS},
              {"0", 0},
              {"off", 0},
              {"1d12h", 36 * HOUR_MS},
              {"0s", 0},
              {"106751991167d", 106751991167LL * DAY_MS}};
    static const struct {
        const char *in;
        const char *why;
    } bad[] = {{"-5m", "negative"},
               {"5", "needs a unit"},
               {"5x", "unknown unit"},
               {"", "duration"},
               {"d", "duration"},
               {"5 m", "unknown unit"},
               {"1.5h", "unknown unit"},
               {"106751991168d", "too long"},
               {"99999999999999999999ms", "too long"},
               {"1h-5m", "duration"}};
    int64_t ms = -1;
    const char *why = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = -1;
        assert_int_equal(lp_config_parse_duration(ok[i].in, &ms, &why), LP_OK);
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (lp_config_parse_duration(bad[i].in, &ms, &why) != LP_ERR || !why ||
            !strstr(why, bad[i].why)) {
            print_error("\"%s\": want error with \"%s\", got \"%s\"\n", bad[i].in, bad[i].why,
                        why ? why : "(accepted)");
            fail();
        }
    }
    assert_int_equal(lp_config_parse_duration("5", &ms, NULL), LP_ERR);
}

/* Writes HEAD + `activities:` with n activities, each with `cond` conditions. */
static void make_activities(char *buf, size_t size, int n, int cond) {
    size_t off = (size_t)snprintf(buf, size, "%sactivities:\n", HEAD);
    for (int i = 0; i < n; i++) {
        off += (size_t)snprintf(buf + off, size - off, "  act_%d:\n    points: %d\n", i, i + 1);
        if (cond > 0) {
            off += (size_t)snprintf(buf + off, size - off, "    when:\n");
        }
        for (int c = 0; c < cond; c++) {
            off += (size_t)snprintf(buf + off, size - off,
                                    "      - {asset_id: \"asset-%d\", points: %d}\n", c, c);
        }
    }
}

static void test_limits(void **state) {
    char *yaml = malloc(65536), err[LP_ERRSTR] = "", want[64];
    char name[LP_NAME_MAX + 2];
    lp_rules_t *rules;

    (void)state;
    assert_non_null(yaml);
    make_activities(yaml, 65536, LP_MAX_ACTIVITIES, 0);
    rules = load_str(yaml, err, sizeof(err));
    assert_non_null(rules);
    assert_int_equal(rules->nactivities, LP_MAX_ACTIVITIES);
    assert_int_equal(lp_rules_activity_index(rules, "act_31"), 31);
    assert_true(rules->activities[31].points == 32);
    lp_rules_destroy(rules);
    make_activities(yaml, 65536, LP_MAX_ACTIVITIES + 1, 0);
    /* HEAD is 2 lines, `activities:` line 3, each activity 2 lines: the 33rd starts at 3+64+1 */
    snprintf(want, sizeof(want), "t.yaml:%d: activities.act_32: too many", 3 + 2 * 32 + 1);
    expect_error(yaml, want, "at most 32");

    make_activities(yaml, 65536, 1, LP_MAX_CONDITIONS);
    rules = load_str(yaml, err, sizeof(err));
    assert_non_null(rules);
    assert_int_equal(rules->activities[0].ncond, LP_MAX_CONDITIONS);
    assert_string_equal(rules->activities[0].cond[7].asset_id, "asset-7");
    lp_rules_destroy(rules);
    make_activities(yaml, 65536, 1, LP_MAX_CONDITIONS + 1);
    expect_error(yaml, "t.yaml:15: activities.act_0.when[8]: too many conditions", "at most 8");

    /* names: LP_NAME_MAX fits, one more does not */
    memset(name, 'x', sizeof(name));
    name[LP_NAME_MAX] = '\0';
    snprintf(yaml, 65536,
             "model: {id: %s, version: 1}\nscore: {half_life: 1d, mql: 9}\n"
             "activities: {%s: 1}\n",
             name, name);
    rules = load_str(yaml, err, sizeof(err));
    assert_non_null(rules);
    assert_int_equal(lp_rules_activity_index(rules, name), 0);
    lp_rules_destroy(rules);
    name[LP_NAME_MAX] = 'x';
    name[LP_NAME_MAX + 1] = '\0';
    snprintf(yaml, 65536, "model: {id: %s, version: 1}\n", name);
    expect_error(yaml, "t.yaml:1: model.id: is 33 characters long; at most 32", "");
    snprintf(yaml, 65536, "%sactivities: {%s: 1}\n", HEAD, name);
    expect_error(yaml, "t.yaml:3: activities.", "at most 32 are allowed");

    /* match values: 16 per rule */
    snprintf(yaml, 65536,
             "%sactivities: {a: 1}\nfit:\n  rules:\n    - field: region\n"
             "      in: [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, "
             "r14, r15, r16]\n      points: 1\n",
             HEAD);
    expect_error(yaml, "t.yaml:7: fit.rules[0].in[16]: too many values", "at most 16");
    free(yaml);
}

static void test_shorthand_and_flags(void **state) {
    char err[LP_ERRSTR] = "";
    lp_rules_t *rules;

    (void)state;
    rules = load_str("model: {id: m, version: 1}\n"
                     "score: {half_life: 12h, mql: 10, warm: 4, rearm: 2, floor: -5}\n"
                     "activities:\n"
                     "  custom_signal: 3\n"
                     "  spam_report: {points: -4}\n"
                     "  nudge: {points: 0, engagement: true}\n"
                     "  pageview:\n"
                     "    points: 1\n"
                     "    engagement: false\n"
                     "    when:\n"
                     "      - {campaign_id: spring, url_prefix: /p, points: 2}\n"
                     "machine: {honor_flag: false, click_within: 1m}\n"
                     "recycle: {score: scale, factor: 0.25}\n"
                     "inactivity: {after: 2w, move_to: suspect}\n",
                     err, sizeof(err));
    if (!rules) {
        print_error("%s\n", err);
    }
    assert_non_null(rules);
    assert_true(rules->half_life_ms == 12.0 * HOUR_MS);
    assert_true(rules->floor == -5 && rules->warm_threshold == 4 && rules->rearm_level == 2);
    assert_true(rules->activities[0].points == 3 && rules->activities[0].is_engagement);
    assert_true(rules->activities[1].points == -4 && !rules->activities[1].is_engagement);
    assert_true(rules->activities[2].is_engagement);
    assert_false(rules->activities[3].is_engagement);
    assert_string_equal(rules->activities[3].cond[0].campaign_id, "spring");
    assert_string_equal(rules->activities[3].cond[0].url_prefix, "/p");
    assert_false(rules->honor_machine_flag);
    assert_int_equal(rules->machine_click_within_s, 60);
    assert_int_equal(rules->recycle_mode, LP_RECYCLE_SCALE);
    assert_true(rules->recycle_scale == 0.25);
    assert_int_equal(rules->inactivity_ms, 14 * DAY_MS);
    assert_int_equal(rules->inactive_stage, LP_STAGE_SUSPECT);
    lp_rules_destroy(rules);
    lp_rules_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_rules_file),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_file_errors_name_the_file),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_value_rules),
        cmocka_unit_test(test_yaml_level_errors),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_shorthand_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
