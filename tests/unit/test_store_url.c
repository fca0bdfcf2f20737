/* leadpulse Redis store: parsing redis:// urls (no server needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_internal.h"

static void test_url_forms(void **state) {
    lp_store_redis_url_t u;
    char err[LP_ERRSTR];

    (void)state;
    assert_int_equal(lp_store_redis_url_parse("redis://127.0.0.1:6390", &u, err, sizeof(err)),
                     LP_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");

    assert_int_equal(lp_store_redis_url_parse("redis://redis.local", &u, err, sizeof(err)), LP_OK);
    assert_string_equal(u.host, "redis.local");
    assert_int_equal(u.port, 6379);

    assert_int_equal(lp_store_redis_url_parse("redis://:s3cret@h:1/5", &u, err, sizeof(err)),
                     LP_OK);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 5);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");

    /* ACL user, escaped characters, a raw '@' inside the password, trailing slash. */
    assert_int_equal(
        lp_store_redis_url_parse("redis://worker:p%40ss%3Aw@rd@h:6379/", &u, err, sizeof(err)),
        LP_OK);
    assert_string_equal(u.user, "worker");
    assert_string_equal(u.password, "p@ss:w@rd");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 0);

    assert_int_equal(lp_store_redis_url_parse("redis://[::1]:7000/2", &u, err, sizeof(err)), LP_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
}

static void test_url_rejects(void **state) {
    static const char *const bad[] = {
        "http://h:1",      "redis://",        "redis://:pw@",   "redis://h:0",
        "redis://h:65536", "redis://h:12x",   "redis://h:1/db", "redis://[::1",
        "redis://u:%zz@h", "redis://u:%00@h", "rediss://h:1",   "redis://h:/1",
    };
    lp_store_redis_url_t u;
    char err[LP_ERRSTR];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (lp_store_redis_url_parse(bad[i], &u, err, sizeof(err)) != LP_ERR) {
            fail_msg("accepted bad url %s", bad[i]);
        }
        assert_true(err[0] != '\0');
    }
    /* A refused url never shows its password in the message. */
    assert_int_equal(lp_store_redis_url_parse("redis://u:sup%zzersecret@h:1", &u, err, sizeof(err)),
                     LP_ERR);
    assert_null(strstr(err, "secret"));
    assert_int_equal(lp_store_redis_url_parse(NULL, &u, err, sizeof(err)), LP_ERR);
}

/* Constructor argument checks happen before any connection attempt. */
static void test_redis_new_rejects(void **state) {
    char err[LP_ERRSTR];

    (void)state;
    assert_null(lp_store_redis_new("redis://127.0.0.1:1", "a{b", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "prefix"));
    assert_null(lp_store_redis_new("redis://127.0.0.1:1", "lp", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "timeout"));
    assert_null(lp_store_redis_new("nope", "lp", 100, err, sizeof(err)));
    assert_non_null(strstr(err, "redis://"));
    /* Port 1 on loopback: nothing listens, the connect fails cleanly with a reason. */
    assert_null(lp_store_redis_new("redis://127.0.0.1:1", "lp", 200, err, sizeof(err)));
    assert_non_null(strstr(err, "127.0.0.1:1"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_url_rejects),
        cmocka_unit_test(test_redis_new_rejects),
    };

    return cmocka_run_group_tests_name("store_url", tests, NULL, NULL);
}
