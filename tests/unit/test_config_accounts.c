/* The `accounts:` section of the rules file: a full section, the defaults, the commented-out
 * example of config/rules.yaml, every refusal (file, line, key, text), the limits; and the pure
 * functions over it: a lead's account key (lp_account_of) and a member's role (lp_account_role). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/account.h"
#include "leadpulse/rules.h"

#define DAY_MS 86400000LL

static const char *source_dir(void) {
    const char *dir = getenv("LP_SOURCE_DIR");
    return dir && *dir ? dir : LP_SOURCE_DIR;
}

static lp_rules_t *load_str(const char *yaml, char *err, size_t size) {
    return lp_rules_load_buffer("t.yaml", yaml, strlen(yaml), err, size);
}

/* HEAD (3 lines) + body. */
static const char *HEAD = "model: {id: m, version: \"1\"}\n"
                          "score: {half_life: 30d, mql: 100}\n"
                          "activities: {a: 1}\n";

static lp_rules_t *load_body(const char *body) {
    char yaml[16384], err[LP_ERRSTR] = "";
    lp_rules_t *rules;

    snprintf(yaml, sizeof(yaml), "%s%s", HEAD, body);
    rules = load_str(yaml, err, sizeof(err));
    if (!rules) {
        print_error("refused: %s\nyaml:\n%s\n", err, yaml);
        fail();
    }
    return rules;
}

/* HEAD + body must be refused with a message that starts with `prefix` ("t.yaml:<line>: <key>:
 * ...") and contains `part`. */
static void expect_error(const char *body, const char *prefix, const char *part) {
    char yaml[16384], err[LP_ERRSTR] = "";
    lp_rules_t *rules;

    snprintf(yaml, sizeof(yaml), "%s%s", HEAD, body);
    rules = load_str(yaml, err, sizeof(err));
    if (rules || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, part)) {
        print_error("want prefix \"%s\" and \"%s\"\ngot \"%s\" (rules %p)\nyaml:\n%s\n", prefix,
                    part, err, (void *)rules, yaml);
        lp_rules_destroy(rules);
        fail();
    }
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_absent_section_is_off(void **state) {
    char path[1024], err[LP_ERRSTR] = "", key[LP_ACCOUNT_KEY_MAX + 1];
    lp_profile_update_t profile = {.company_size = -1};
    lp_rules_t *rules;

    (void)state;
    snprintf(path, sizeof(path), "%s/config/rules.yaml", source_dir());
    rules = lp_rules_load(path, err, sizeof(err));
    assert_non_null(rules);
    assert_false(rules->accounts.enabled);
    assert_int_equal(rules->accounts.nroles + rules->accounts.nfree_mail, 0);
    assert_null(lp_account_of(rules, "ACME-1", "jo@acme.com", key, sizeof(key)));
    snprintf(profile.seniority, sizeof(profile.seniority), "vp");
    assert_int_equal(lp_account_role(rules, &profile), LP_ROLE_USER);
    lp_rules_destroy(rules);
}

static const char *FULL =
    "accounts:\n"
    "  free_mail_domains: [gmail.com, googlemail.com, yahoo.com, hotmail.com, outlook.com, "
    "live.com, icloud.com, aol.com, proton.me, protonmail.com, gmx.com, gmx.de, web.de, mail.ru, "
    "yandex.ru, qq.com, 163.com, Example-Mail.org]\n"
    "  roles:\n"
    "    - {role: decision_maker, field: seniority, in: [c_level, vp]}\n"
    "    - {role: approver, field: title, contains: [cfo, procurement, purchasing]}\n"
    "    - {role: blocker, field: title, contains: [security, compliance, legal]}\n"
    "    - {role: influencer, field: seniority, in: [director, manager]}\n"
    "    - {role: recommender, field: title, contains: [architect, engineer, analyst]}\n"
    "  default_role: user\n"
    "  member_cap: 60\n"
    "  engaged_score: 10\n"
    "  role_points: {decision_maker: 20, approver: 15, influencer: 10, blocker: -5}\n"
    "  mqa:\n"
    "    score: 150\n"
    "    engaged_members: 3\n"
    "    required_roles: [[decision_maker, approver], [influencer]]\n"
    "    min_fit: b\n"
    "    rearm: 100\n"
    "  stale:\n"
    "    quiet_after: 30d\n"
    "    accept_within: 7d\n"
    "  max_members: 5000\n"
    "fit:\n"
    "  rules:\n"
    "    - {field: seniority, in: [vp], points: 30}\n";

static void test_full_section(void **state) {
    lp_rules_t *rules = load_body(FULL);
    const lp_account_rules_t *acc = &rules->accounts;

    (void)state;
    assert_true(acc->enabled);
    assert_int_equal(acc->nfree_mail, 18);
    assert_string_equal(acc->free_mail[0], "gmail.com");
    assert_string_equal(acc->free_mail[17], "Example-Mail.org");
    assert_int_equal(acc->nroles, 5);
    assert_int_equal(acc->roles[0].role, LP_ROLE_DECISION_MAKER);
    assert_int_equal(acc->roles[0].field, LP_FIELD_SENIORITY);
    assert_int_equal(acc->roles[0].op, LP_MATCH_IN);
    assert_int_equal(acc->roles[0].nvalues, 2);
    assert_string_equal(acc->roles[0].values[1], "vp");
    assert_int_equal(acc->roles[1].role, LP_ROLE_APPROVER);
    assert_int_equal(acc->roles[1].op, LP_MATCH_CONTAINS);
    assert_string_equal(acc->roles[1].values[2], "purchasing");
    assert_int_equal(acc->roles[2].role, LP_ROLE_BLOCKER);
    assert_int_equal(acc->roles[3].role, LP_ROLE_INFLUENCER);
    assert_int_equal(acc->roles[4].role, LP_ROLE_RECOMMENDER);
    assert_int_equal(acc->default_role, LP_ROLE_USER);
    assert_true(acc->member_cap == 60 && acc->engaged_score == 10);
    assert_true(acc->role_points[LP_ROLE_DECISION_MAKER] == 20);
    assert_true(acc->role_points[LP_ROLE_APPROVER] == 15);
    assert_true(acc->role_points[LP_ROLE_INFLUENCER] == 10);
    assert_true(acc->role_points[LP_ROLE_BLOCKER] == -5);
    assert_true(acc->role_points[LP_ROLE_USER] == 0 && acc->role_points[LP_ROLE_RECOMMENDER] == 0);
    assert_true(acc->mqa_score == 150);
    assert_int_equal(acc->mqa_engaged_members, 3);
    assert_int_equal(acc->nrequired, 2);
    assert_int_equal(acc->required[0], (1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_APPROVER));
    assert_int_equal(acc->required[1], 1u << LP_ROLE_INFLUENCER);
    assert_int_equal(acc->mqa_min_fit, 'B');
    assert_true(acc->mqa_rearm == 100);
    assert_int_equal(acc->quiet_after_ms, 30 * DAY_MS);
    assert_int_equal(acc->accept_within_ms, 7 * DAY_MS);
    assert_int_equal(acc->max_members, 5000);
    /* lead scoring is untouched */
    assert_true(rules->mql_threshold == 100 && rules->rearm_level == 60);
    assert_int_equal(rules->nfit, 1);
    lp_rules_destroy(rules);
}

static void test_defaults(void **state) {
    static const char *const free_mail[] = {
        "gmail.com",  "googlemail.com", "yahoo.com", "hotmail.com",    "outlook.com", "live.com",
        "icloud.com", "aol.com",        "proton.me", "protonmail.com", "gmx.com",     "gmx.de",
        "web.de",     "mail.ru",        "yandex.ru", "qq.com",         "163.com"};
    lp_rules_t *rules = load_body("accounts:\n  mqa: {score: 150}\n");
    const lp_account_rules_t *acc = &rules->accounts;
    size_t n = sizeof(free_mail) / sizeof(free_mail[0]);

    (void)state;
    assert_true(acc->enabled);
    assert_int_equal(acc->nfree_mail, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(acc->free_mail[i], free_mail[i]);
    }
    assert_int_equal(acc->nroles, 0);
    assert_int_equal(acc->default_role, LP_ROLE_USER);
    assert_true(acc->member_cap == 100 && acc->engaged_score == 10);
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        assert_true(acc->role_points[r] == 0);
    }
    assert_true(acc->mqa_score == 150);
    assert_int_equal(acc->mqa_engaged_members, 2);
    assert_int_equal(acc->nrequired, 0);
    assert_int_equal(acc->mqa_min_fit, 0);
    assert_true(acc->mqa_rearm == 90); /* 60% of mqa.score, as score.rearm */
    assert_int_equal(acc->quiet_after_ms + acc->accept_within_ms, 0);
    assert_int_equal(acc->max_members, 10000);
    lp_rules_destroy(rules);

    /* [] = no free-mail domains; a single domain and a single-role group without brackets; an
     * empty required_roles; `off` durations; min_fit D needs no fit rules */
    rules = load_body("accounts:\n"
                      "  free_mail_domains: []\n"
                      "  roles: []\n"
                      "  default_role: influencer\n"
                      "  engaged_score: 0\n"
                      "  mqa: {score: 0.5, engaged_members: 1, required_roles: [], min_fit: D}\n"
                      "  stale: {quiet_after: off, accept_within: 0}\n");
    assert_int_equal(rules->accounts.nfree_mail, 0);
    assert_int_equal(rules->accounts.default_role, LP_ROLE_INFLUENCER);
    assert_true(rules->accounts.engaged_score == 0);
    assert_int_equal(rules->accounts.mqa_engaged_members, 1);
    assert_int_equal(rules->accounts.nrequired, 0);
    assert_int_equal(rules->accounts.mqa_min_fit, 'D');
    assert_true(rules->accounts.mqa_rearm == 0.3);
    lp_rules_destroy(rules);
    rules = load_body("accounts:\n"
                      "  free_mail_domains: corp-mail.example\n"
                      "  mqa:\n"
                      "    score: 10\n"
                      "    rearm: -5\n"
                      "    required_roles: [user, [user, blocker]]\n");
    assert_int_equal(rules->accounts.nfree_mail, 1);
    assert_string_equal(rules->accounts.free_mail[0], "corp-mail.example");
    assert_true(rules->accounts.mqa_rearm == -5);
    assert_int_equal(rules->accounts.nrequired, 2);
    assert_int_equal(rules->accounts.required[0], 1u << LP_ROLE_USER);
    assert_int_equal(rules->accounts.required[1], (1u << LP_ROLE_USER) | (1u << LP_ROLE_BLOCKER));
    lp_rules_destroy(rules);
}

/* The commented-out example at the end of config/rules.yaml, with its "# " removed, loads. */
static void test_shipped_example(void **state) {
    char path[1024], err[LP_ERRSTR] = "";
    char *text, *block, *yaml, *out;
    lp_rules_t *rules;

    (void)state;
    snprintf(path, sizeof(path), "%s/config/rules.yaml", source_dir());
    text = read_file(path);
    block = strstr(text, "\n# accounts:\n");
    assert_non_null(block);
    yaml = malloc(2 * strlen(text) + 1);
    assert_non_null(yaml);
    out = yaml + sprintf(yaml, "%s", text);
    for (const char *line = block + 1; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) + 1 : strlen(line);
        assert_true(strncmp(line, "# ", 2) == 0);
        memcpy(out, line + 2, n - 2);
        out += n - 2;
        line += n;
    }
    *out = '\0';
    rules = lp_rules_load_buffer("rules.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (!rules) {
        print_error("%s\n", err);
    }
    assert_non_null(rules);
    assert_true(rules->accounts.enabled);
    assert_int_equal(rules->accounts.nroles, 5);
    assert_int_equal(rules->accounts.nfree_mail, 17);
    assert_true(rules->accounts.mqa_score == 150 && rules->accounts.mqa_rearm == 100);
    assert_int_equal(rules->accounts.mqa_min_fit, 'B');
    lp_rules_destroy(rules);
    free(yaml);
    free(text);
}

static void test_error_names_file_line_key(void **state) {
    char path[1024], want[1400], err[LP_ERRSTR] = "";

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/unit/data/rules/bad_accounts.yaml", source_dir());
    assert_null(lp_rules_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s:18: accounts.mqa.required_roles[1][0]: unknown role \"aprover\" (one of "
             "decision_maker, approver, influencer, recommender, user, blocker)",
             path);
    assert_string_equal(err, want);
}

static void test_refusals(void **state) {
    (void)state;
    /* the section and its required keys */
    expect_error("accounts:\n  member_cap: 60\n",
                 "t.yaml:4: accounts.mqa: missing; say when an account qualifies", "score: 150");
    expect_error("accounts:\n  mqa:\n    engaged_members: 3\n",
                 "t.yaml:5: accounts.mqa.score: missing", "");
    expect_error("accounts: [mqa]\n", "t.yaml:4: accounts: must be a mapping", "");
    /* unknown keys */
    expect_error("accounts:\n  mqa: {score: 1}\n  member_caps: 5\n",
                 "t.yaml:6: accounts.member_caps: unknown key; did you mean `member_cap`?", "");
    expect_error("accounts:\n  mqa: {score: 1, quorum: 2}\n",
                 "t.yaml:5: accounts.mqa.quorum: unknown key", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    rearm_below: 100\n",
                 "t.yaml:7: accounts.mqa.rearm_below: unknown key; the key is `rearm`", "");
    expect_error("accounts:\n  mqa: {score: 1}\n  stale: {quiet: 30d}\n",
                 "t.yaml:6: accounts.stale.quiet: unknown key", "");
    /* roles */
    expect_error("accounts:\n  roles:\n    - {role: boss, field: title, in: [ceo]}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].role: unknown role \"boss\" (one of decision_maker, "
                 "approver, influencer, recommender, user, blocker)",
                 "");
    expect_error("accounts:\n  roles:\n    - {field: title, in: [ceo]}\n  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].role: missing", "decision_maker");
    expect_error("accounts:\n  roles:\n    - {role: user, field: title, equals: [ceo]}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].equals: unknown key", "");
    expect_error("accounts:\n  roles:\n    - {role: user, field: title}\n  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0]: needs one of in, contains, suffix, range", "");
    expect_error("accounts:\n  roles:\n    - role: user\n      field: title\n      in: [a]\n"
                 "      contains: [b]\n  mqa: {score: 1}\n",
                 "t.yaml:9: accounts.roles[0]: has both `in` and `contains`", "");
    expect_error("accounts:\n  roles:\n    - {role: user, field: titel, in: [a]}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].field: unknown field \"titel\"",
                 "did you mean `title`?");
    expect_error("accounts:\n  roles:\n    - {role: user, field: title, range: [1, 5]}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].range: range only applies to company_size", "");
    expect_error("accounts:\n  roles:\n    - {role: user, field: title, in: [\"\"]}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].in[0]: is empty", "");
    expect_error("accounts:\n  roles:\n    - {role: user, field: title, in: [a], points: 3}\n"
                 "  mqa: {score: 1}\n",
                 "t.yaml:6: accounts.roles[0].points: unknown key", "");
    expect_error("accounts:\n  roles: {role: user}\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.roles: must be a list of rules", "");
    expect_error("accounts:\n  default_role: owner\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.default_role: unknown role \"owner\"", "");
    expect_error("accounts:\n  default_role: [user]\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.default_role: must be a role", "got a list");
    expect_error("accounts:\n  role_points: {aprover: 15}\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.role_points.aprover: unknown role \"aprover\"", "");
    expect_error("accounts:\n  role_points:\n    user: 1\n    user: 2\n  mqa: {score: 1}\n",
                 "t.yaml:7: accounts.role_points.user: duplicate key (first at line 6)", "");
    expect_error("accounts:\n  role_points: {user: lots}\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.role_points.user: must be a number", "");
    /* numbers */
    expect_error("accounts:\n  member_cap: 0\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.member_cap: must be above 0, got 0", "");
    expect_error("accounts:\n  engaged_score: -1\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.engaged_score: must be at least 0, got -1", "");
    expect_error("accounts:\n  mqa: {score: -150}\n",
                 "t.yaml:5: accounts.mqa.score: must be above 0, got -150", "");
    expect_error("accounts:\n  mqa: {score: .nan}\n",
                 "t.yaml:5: accounts.mqa.score: must be a number", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    engaged_members: 0\n",
                 "t.yaml:7: accounts.mqa.engaged_members: must be between 1 and 1000, got 0", "");
    expect_error("accounts:\n  mqa: {score: 150, engaged_members: 2.5}\n",
                 "t.yaml:5: accounts.mqa.engaged_members: must be a whole number", "");
    expect_error("accounts:\n  max_members: 0\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.max_members: must be between 1 and 100000, got 0", "");
    expect_error("accounts:\n  max_members: 100001\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.max_members: must be between 1 and 100000, got 100001", "");
    /* how keys relate */
    expect_error("accounts:\n  mqa:\n    score: 150\n    rearm: 150\n",
                 "t.yaml:7: accounts.mqa.rearm: must be below accounts.mqa.score (150); lower it "
                 "or raise the score",
                 "");
    expect_error("accounts:\n  max_members: 2\n  mqa:\n    score: 150\n    engaged_members: 3\n",
                 "t.yaml:8: accounts.mqa.engaged_members: 3 is above accounts.max_members (2)", "");
    expect_error("accounts:\n  max_members: 1\n  mqa: {score: 150}\n",
                 "t.yaml:6: accounts.mqa.engaged_members: 2 (the default) is above "
                 "accounts.max_members (1)",
                 "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    min_fit: B\n",
                 "t.yaml:7: accounts.mqa.min_fit: is B but there are no fit rules", "");
    expect_error("accounts:\n  mqa: {score: 150, min_fit: E}\n",
                 "t.yaml:5: accounts.mqa.min_fit: must be one of A, B, C, D", "");
    /* required_roles */
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: [[user], [approver]]\n",
                 "t.yaml:7: accounts.mqa.required_roles[1]: no member can have any of these roles",
                 "default_role is user");
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: [[user, aprover]]\n",
                 "t.yaml:7: accounts.mqa.required_roles[0][1]: unknown role \"aprover\"", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: [[user, user]]\n",
                 "t.yaml:7: accounts.mqa.required_roles[0][1]: user is already in this group", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: [[user], []]\n",
                 "t.yaml:7: accounts.mqa.required_roles[1]: is empty", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: user\n",
                 "t.yaml:7: accounts.mqa.required_roles: must be a list of role groups", "");
    expect_error("accounts:\n  mqa:\n    score: 150\n    required_roles: [{user: 1}]\n",
                 "t.yaml:7: accounts.mqa.required_roles[0]: must be a list of roles", "");
    /* durations */
    expect_error("accounts:\n  mqa: {score: 1}\n  stale:\n    quiet_after: 30\n",
                 "t.yaml:7: accounts.stale.quiet_after: needs a unit", "30d");
    expect_error("accounts:\n  mqa: {score: 1}\n  stale:\n    accept_within: -7d\n",
                 "t.yaml:7: accounts.stale.accept_within: must not be negative", "");
    /* free-mail domains */
    expect_error("accounts:\n  free_mail_domains: [gmail.com, \"@yahoo.com\"]\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.free_mail_domains[1]: \"@yahoo.com\" is not a domain", "");
    expect_error("accounts:\n  free_mail_domains: [\"\"]\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.free_mail_domains[0]: is empty", "");
    expect_error("accounts:\n  free_mail_domains: [\"mail com\"]\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.free_mail_domains[0]: \"mail com\" is not a domain", "");
    expect_error(
        "accounts:\n  free_mail_domains: [.yahoo.com]\n  mqa: {score: 1}\n",
        "t.yaml:5: accounts.free_mail_domains[0]: \".yahoo.com\" starts or ends with a dot", "");
    expect_error("accounts:\n  free_mail_domains: {gmail: com}\n  mqa: {score: 1}\n",
                 "t.yaml:5: accounts.free_mail_domains: must be a list of domains", "");
}

static void test_limits(void **state) {
    char *body = malloc(65536);
    size_t off;
    lp_rules_t *rules;

    (void)state;
    assert_non_null(body);
    /* 16 role rules, then 17 */
    off = (size_t)snprintf(body, 65536, "accounts:\n  mqa: {score: 1}\n  roles:\n");
    for (int i = 0; i < LP_MAX_ROLE_RULES; i++) {
        off += (size_t)snprintf(body + off, 65536 - off,
                                "    - {role: recommender, field: title, in: [t%d]}\n", i);
    }
    rules = load_body(body);
    assert_int_equal(rules->accounts.nroles, LP_MAX_ROLE_RULES);
    assert_string_equal(rules->accounts.roles[15].values[0], "t15");
    lp_rules_destroy(rules);
    snprintf(body + off, 65536 - off, "    - {role: recommender, field: title, in: [t16]}\n");
    expect_error(body, "t.yaml:23: accounts.roles[16]: too many rules (at most 16)", "");

    /* 6 groups, then 7 */
    rules = load_body("accounts:\n  mqa:\n    score: 1\n"
                      "    required_roles: [user, user, user, user, user, user]\n");
    assert_int_equal(rules->accounts.nrequired, LP_MAX_ROLE_GROUPS);
    lp_rules_destroy(rules);
    expect_error("accounts:\n  mqa:\n    score: 1\n"
                 "    required_roles: [user, user, user, user, user, user, user]\n",
                 "t.yaml:7: accounts.mqa.required_roles[6]: too many groups (at most 6)", "");
    /* a group of all six roles (with the rules that give them) */
    rules = load_body("accounts:\n  roles:\n"
                      "    - {role: decision_maker, field: seniority, in: [a]}\n"
                      "    - {role: approver, field: seniority, in: [b]}\n"
                      "    - {role: influencer, field: seniority, in: [c]}\n"
                      "    - {role: recommender, field: seniority, in: [d]}\n"
                      "    - {role: blocker, field: seniority, in: [e]}\n"
                      "  mqa:\n    score: 1\n    required_roles:\n"
                      "      - [decision_maker, approver, influencer, recommender, user, "
                      "blocker]\n");
    assert_int_equal(rules->accounts.required[0], (1u << LP_ROLE__COUNT) - 1);
    lp_rules_destroy(rules);

    /* 128 free-mail domains, then 129; a domain of 128 characters, then 129 */
    off = (size_t)snprintf(body, 65536, "accounts:\n  mqa: {score: 1}\n  free_mail_domains:\n");
    for (int i = 0; i < LP_MAX_FREE_MAIL; i++) {
        off += (size_t)snprintf(body + off, 65536 - off, "    - m%d.example\n", i);
    }
    rules = load_body(body);
    assert_int_equal(rules->accounts.nfree_mail, LP_MAX_FREE_MAIL);
    assert_string_equal(rules->accounts.free_mail[127], "m127.example");
    lp_rules_destroy(rules);
    snprintf(body + off, 65536 - off, "    - m128.example\n");
    expect_error(body,
                 "t.yaml:135: accounts.free_mail_domains[128]: too many domains (at most 128)", "");
    {
        char name[LP_STR_MAX + 2];
        memset(name, 'd', sizeof(name));
        name[LP_STR_MAX] = '\0';
        snprintf(body, 65536, "accounts:\n  mqa: {score: 1}\n  free_mail_domains: [%s]\n", name);
        rules = load_body(body);
        assert_int_equal(strlen(rules->accounts.free_mail[0]), LP_STR_MAX);
        lp_rules_destroy(rules);
        name[LP_STR_MAX] = 'd';
        name[LP_STR_MAX + 1] = '\0';
        snprintf(body, 65536, "accounts:\n  mqa: {score: 1}\n  free_mail_domains: [%s]\n", name);
        expect_error(body, "t.yaml:6: accounts.free_mail_domains[0]: is 129 characters long", "");
    }
    /* max_members and engaged_members at their bounds */
    rules =
        load_body("accounts:\n  max_members: 100000\n  mqa: {score: 1, engaged_members: 1000}\n");
    assert_int_equal(rules->accounts.max_members, LP_ACCOUNT_MEMBERS_MAX);
    assert_int_equal(rules->accounts.mqa_engaged_members, 1000);
    lp_rules_destroy(rules);
    rules = load_body("accounts:\n  max_members: 1\n  mqa: {score: 1, engaged_members: 1}\n");
    assert_int_equal(rules->accounts.max_members, 1);
    lp_rules_destroy(rules);
    free(body);
}

/* Rules with accounts on and the default free-mail list plus `corp.example`. */
static lp_rules_t *account_rules(void) {
    return load_body("accounts:\n"
                     "  free_mail_domains: [gmail.com, yahoo.com, Corp.Example]\n"
                     "  mqa: {score: 1}\n");
}

static void expect_account(const lp_rules_t *rules, const char *id, const char *email,
                           const char *want) {
    char key[LP_ACCOUNT_KEY_MAX + 1];
    const char *got = lp_account_of(rules, id, email, key, sizeof(key));

    if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0) {
        print_error("account_id %s%s%s, email %s%s%s: want %s, got %s\n", id ? "\"" : "",
                    id ? id : "(none)", id ? "\"" : "", email ? "\"" : "", email ? email : "(none)",
                    email ? "\"" : "", want ? want : "none", got ? got : "none");
        fail();
    }
    if (got != NULL) {
        assert_ptr_equal(got, key);
    }
}

static void test_account_of(void **state) {
    lp_rules_t *rules = account_rules();
    char id64[LP_ID_MAX + 1], id65[LP_ID_MAX + 2], want[LP_ID_MAX + 8];

    (void)state;
    /* an account id wins, trimmed, bytes and case kept */
    expect_account(rules, "ACME-7", "jo@acme.com", "id:ACME-7");
    expect_account(rules, " \tACME 7\r\n", NULL, "id:ACME 7");
    expect_account(rules, "ACME-7", "jo@gmail.com", "id:ACME-7");
    /* empty or blank: the email decides */
    expect_account(rules, "", "jo@acme.com", "domain:acme.com");
    expect_account(rules, "   ", "jo@acme.com", "domain:acme.com");
    expect_account(rules, NULL, "jo@acme.com", "domain:acme.com");
    /* 64 bytes fit; 65 count as absent */
    memset(id64, 'a', LP_ID_MAX);
    id64[LP_ID_MAX] = '\0';
    snprintf(want, sizeof(want), "id:%s", id64);
    expect_account(rules, id64, "jo@acme.com", want);
    memset(id65, 'a', LP_ID_MAX + 1);
    id65[LP_ID_MAX + 1] = '\0';
    expect_account(rules, id65, "jo@acme.com", "domain:acme.com");
    expect_account(rules, id65, NULL, NULL);
    /* the domain: after the last '@', lower-cased, trailing dots removed, email trimmed */
    expect_account(rules, NULL, "Jo.Smith@Sales.ACME.com", "domain:sales.acme.com");
    expect_account(rules, NULL, "jo@acme.com.", "domain:acme.com");
    expect_account(rules, NULL, "jo@acme.com...", "domain:acme.com");
    expect_account(rules, NULL, "  jo@acme.com \n", "domain:acme.com");
    expect_account(rules, NULL, "\"a@b\"@acme.io", "domain:acme.io");
    expect_account(rules, NULL, "@acme.io", "domain:acme.io");
    expect_account(rules, NULL, "jo@m\xc3\xbcnchen.DE", "domain:m\xc3\xbcnchen.de");
    /* no account: no '@', empty domain, a space or control byte in it */
    expect_account(rules, NULL, "jo", NULL);
    expect_account(rules, NULL, "jo.acme.com", NULL);
    expect_account(rules, NULL, "jo@", NULL);
    expect_account(rules, NULL, "jo@.", NULL);
    expect_account(rules, NULL, "jo@...", NULL);
    expect_account(rules, NULL, "jo@ac me.com", NULL);
    expect_account(rules, NULL, "jo@acme\x01.com", NULL);
    expect_account(rules, NULL, "", NULL);
    expect_account(rules, NULL, NULL, NULL);
    expect_account(rules, "", "", NULL);
    /* free mail: the same domain in any case, or a subdomain; not a look-alike */
    expect_account(rules, NULL, "jo@gmail.com", NULL);
    expect_account(rules, NULL, "jo@GMail.COM", NULL);
    expect_account(rules, NULL, "jo@gmail.com.", NULL);
    expect_account(rules, NULL, "jo@mail.yahoo.com", NULL);
    expect_account(rules, NULL, "jo@a.b.yahoo.com", NULL);
    expect_account(rules, NULL, "jo@corp.example", NULL);
    expect_account(rules, NULL, "jo@eu.CORP.example", NULL);
    expect_account(rules, NULL, "jo@notyahoo.com", "domain:notyahoo.com");
    expect_account(rules, NULL, "jo@yahoo.com.au", "domain:yahoo.com.au");
    expect_account(rules, NULL, "jo@gmail.co", "domain:gmail.co");
    expect_account(rules, NULL, "jo@hotmail.com", "domain:hotmail.com"); /* not in this list */
    assert_true(lp_account_free_mail(rules, "MAIL.Yahoo.com"));
    assert_false(lp_account_free_mail(rules, "xyahoo.com"));
    assert_false(lp_account_free_mail(rules, "com"));
    assert_false(lp_account_free_mail(rules, ""));
    assert_false(lp_account_free_mail(NULL, "gmail.com"));
    lp_rules_destroy(rules);

    /* the default list; [] = no free mail */
    rules = load_body("accounts:\n  mqa: {score: 1}\n");
    expect_account(rules, NULL, "jo@hotmail.com", NULL);
    expect_account(rules, NULL, "jo@163.com", NULL);
    expect_account(rules, NULL, "jo@mx.proton.me", NULL);
    lp_rules_destroy(rules);
    rules = load_body("accounts:\n  mqa: {score: 1}\n  free_mail_domains: []\n");
    expect_account(rules, NULL, "jo@gmail.com", "domain:gmail.com");
    lp_rules_destroy(rules);
}

static void test_account_of_buffer(void **state) {
    lp_rules_t *rules = account_rules();
    char email[LP_STR_MAX + 1], key[LP_ACCOUNT_KEY_MAX + 1], small[16];

    (void)state;
    /* the longest domain of a profile email fits LP_ACCOUNT_KEY_MAX */
    memset(email, 'x', LP_STR_MAX);
    email[0] = '@';
    email[LP_STR_MAX] = '\0';
    assert_ptr_equal(lp_account_of(rules, NULL, email, key, sizeof(key)), key);
    assert_int_equal(strlen(key), LP_ACCOUNT_KEY_MAX);
    assert_int_equal(strncmp(key, "domain:xxx", 10), 0);
    /* too small a buffer: none, never a cut key */
    assert_null(lp_account_of(rules, NULL, email, key, sizeof(key) - 1));
    assert_null(lp_account_of(rules, NULL, "jo@acme-industries.com", small, sizeof(small)));
    assert_ptr_equal(lp_account_of(rules, NULL, "jo@acme.co", small, sizeof(small)), small);
    assert_string_equal(small, "domain:acme.co");
    assert_null(lp_account_of(rules, "ACME-INDUSTRIES", NULL, small, sizeof(small)));
    assert_ptr_equal(lp_account_of(rules, "ACME-INDUSTR", NULL, small, sizeof(small)), small);
    assert_string_equal(small, "id:ACME-INDUSTR");
    assert_null(lp_account_of(rules, "ACME-INDUSTRY", NULL, small, sizeof(small)));
    assert_null(lp_account_of(rules, "a", NULL, key, 0));
    assert_null(lp_account_of(rules, "a", NULL, NULL, 8));
    assert_null(lp_account_of(NULL, "a", NULL, key, sizeof(key)));
    lp_rules_destroy(rules);
}

static lp_profile_update_t profile_of(const char *seniority, const char *title) {
    lp_profile_update_t p;

    memset(&p, 0, sizeof(p));
    p.company_size = -1;
    snprintf(p.seniority, sizeof(p.seniority), "%s", seniority);
    snprintf(p.title, sizeof(p.title), "%s", title);
    return p;
}

static void test_role_of(void **state) {
    lp_rules_t *rules = load_body(FULL);
    static const struct {
        const char *seniority, *title;
        lp_role_t role;
    } cases[] = {
        {"vp", "VP Security", LP_ROLE_DECISION_MAKER}, /* first match wins */
        {"C_LEVEL", "", LP_ROLE_DECISION_MAKER},       /* case-insensitive */
        {"director", "CFO", LP_ROLE_APPROVER},         /* rule 2 before rule 4 */
        {"", "Head of Procurement", LP_ROLE_APPROVER},
        {"manager", "Chief Compliance Officer", LP_ROLE_BLOCKER},
        {"director", "", LP_ROLE_INFLUENCER},
        {"", "Solutions Architect", LP_ROLE_RECOMMENDER},
        {"", "", LP_ROLE_USER},              /* unknown fields match nothing */
        {"intern", "Student", LP_ROLE_USER}, /* default_role */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lp_profile_update_t p = profile_of(cases[i].seniority, cases[i].title);
        lp_role_t got = lp_account_role(rules, &p);
        if (got != cases[i].role) {
            print_error("seniority \"%s\", title \"%s\": want %s, got %s\n", cases[i].seniority,
                        cases[i].title, lp_role_name(cases[i].role), lp_role_name(got));
            fail();
        }
    }
    lp_rules_destroy(rules);

    /* another default role; a rule on company_size (range) and on the email domain */
    rules = load_body("accounts:\n"
                      "  default_role: blocker\n"
                      "  roles:\n"
                      "    - {role: approver, field: company_size, range: [1, 10]}\n"
                      "    - {role: influencer, field: email_domain, suffix: [.edu]}\n"
                      "  mqa: {score: 1}\n");
    {
        lp_profile_update_t p = profile_of("", "");
        assert_int_equal(lp_account_role(rules, &p), LP_ROLE_BLOCKER);
        p.company_size = 10;
        assert_int_equal(lp_account_role(rules, &p), LP_ROLE_APPROVER);
        p.company_size = 11;
        snprintf(p.email, sizeof(p.email), "jo@MIT.EDU");
        assert_int_equal(lp_account_role(rules, &p), LP_ROLE_INFLUENCER);
    }
    lp_rules_destroy(rules);

    assert_string_equal(lp_role_name(LP_ROLE_DECISION_MAKER), "decision_maker");
    assert_string_equal(lp_role_name(LP_ROLE_APPROVER), "approver");
    assert_string_equal(lp_role_name(LP_ROLE_INFLUENCER), "influencer");
    assert_string_equal(lp_role_name(LP_ROLE_RECOMMENDER), "recommender");
    assert_string_equal(lp_role_name(LP_ROLE_USER), "user");
    assert_string_equal(lp_role_name(LP_ROLE_BLOCKER), "blocker");
    assert_null(lp_role_name(LP_ROLE__COUNT));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_section_is_off),
        cmocka_unit_test(test_full_section),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_example),
        cmocka_unit_test(test_error_names_file_line_key),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_account_of),
        cmocka_unit_test(test_account_of_buffer),
        cmocka_unit_test(test_role_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
