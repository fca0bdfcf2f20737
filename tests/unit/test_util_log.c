/* The log writer (util/log.c): the JSON form with its context fields and their escaping, and
 * the rate limit of lines that bad input can repeat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "leadpulse/common.h"

/* What one LP_LOG call writes to stderr. */
static char *capture(void (*emit)(void)) {
    static char buf[8192];
    char path[] = "/tmp/lp-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    emit();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void emit_with_context(void) {
    lp_log_context(7, "engagement.events", 1234);
    lp_log_lead("lead-\"q\"\n1");
    LP_LOG(LP_LOG_WARN, "engine", "a \"quoted\" message\twith a tab");
    lp_log_lead(NULL);
    lp_log_context(-1, NULL, -1);
}

static void emit_plain(void) {
    LP_LOG(LP_LOG_INFO, "run", "started");
}

static void json_line_has_the_context_fields_escaped(void **state) {
    (void)state;
    lp_log_json = 1;
    const char *line = capture(emit_with_context);
    assert_non_null(strstr(line, "\"level\":\"warn\",\"component\":\"engine\""));
    assert_non_null(strstr(line, "\"msg\":\"a \\\"quoted\\\" message\\u0009with a tab\""));
    assert_non_null(
        strstr(line, "\"partition\":7,\"topic\":\"engagement.events\",\"offset\":1234"));
    assert_non_null(strstr(line, "\"lead_id\":\"lead-\\\"q\\\"\\u000a1\""));
    assert_int_equal(strchr(line, '\n') - line, strlen(line) - 1); /* one line */
    /* Cleared context: no fields. */
    line = capture(emit_plain);
    assert_null(strstr(line, "partition"));
    assert_null(strstr(line, "lead_id"));
    assert_non_null(strstr(line, "\"msg\":\"started\"}"));
    lp_log_json = 0;
    line = capture(emit_with_context);
    assert_non_null(strstr(line, "WARN  [engine] a \"quoted\" message"));
}

static void limit_lets_per_sec_through_and_counts_the_rest(void **state) {
    (void)state;
    lp_log_limit_t lim = {0};
    uint64_t held = 99;
    int passed = 0;
    for (int i = 0; i < 25; i++) {
        passed += lp_log_limit(&lim, 10, &held);
    }
    /* Within one second 10 pass; a second boundary inside the loop lets at most 10 more. */
    assert_true(passed >= 10 && passed <= 20);
    if (passed == 10) {
        assert_int_equal(lim.held, 15);
    }
    /* The next line let through reports what was held back, and resets the count. */
    lim.sec = -1; /* a new second */
    uint64_t before = lim.held;
    assert_true(lp_log_limit(&lim, 10, &held));
    assert_int_equal(held, before);
    assert_int_equal(lim.held, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_has_the_context_fields_escaped),
        cmocka_unit_test(limit_lets_per_sec_through_and_counts_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
