/* The Schema Registry client (leadpulse/registry.h) against the stack's real registry
 * (LP_SCHEMA_REGISTRY_URL: Apicurio's Confluent API): register and find again, look up, the
 * schema of an id, failover past a dead URL, an unreachable registry, 404s, and a change the
 * subject's BACKWARD compatibility refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "leadpulse/common.h"
#include "leadpulse/registry.h"

static char *read_schema(const char *name) {
    char path[1024];
    const char *src = getenv("LP_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/schemas/%s", src != NULL ? src : ".", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* s without the white space outside JSON strings. */
static char *squeeze(const char *s) {
    char *out = malloc(strlen(s) + 1);
    size_t n = 0;
    int in_str = 0;
    for (; *s != '\0'; s++) {
        if (in_str) {
            out[n++] = *s;
            if (*s == '\\' && s[1] != '\0') {
                out[n++] = *++s;
            } else if (*s == '"') {
                in_str = 0;
            }
        } else if (*s == '"') {
            in_str = 1;
            out[n++] = *s;
        } else if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r') {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return out;
}

static lp_registry_t *client(const char *urls) {
    char err[LP_ERRSTR];
    lp_registry_opts_t o = {.urls = urls, .timeout_ms = 3000};
    lp_registry_t *reg = lp_registry_new(&o, err, sizeof(err));
    if (reg == NULL) {
        fail_msg("lp_registry_new(%s): %s", urls, err);
    }
    return reg;
}

static void register_lookup_and_fetch(void **state) {
    (void)state;
    const char *url = lp_it_env("LP_SCHEMA_REGISTRY_URL");
    char subject[256], err[LP_ERRSTR];
    snprintf(subject, sizeof(subject), "%s-value", lp_it_unique("itreg"));
    char *schema = read_schema("LeadQualified.avsc");
    lp_registry_t *reg = client(url);
    int32_t id = -1, again = -1, found = -1;

    assert_int_equal(lp_registry_lookup(reg, subject, schema, &found, err, sizeof(err)),
                     LP_REGISTRY_NOT_FOUND);
    int rc = lp_registry_register(reg, subject, schema, &id, err, sizeof(err));
    if (rc != LP_OK) {
        fail_msg("register: %s", err);
    }
    assert_true(id >= 0);
    /* A second client: the registry finds the same schema under the subject (same id). */
    lp_registry_t *other = client(url);
    assert_int_equal(lp_registry_register(other, subject, schema, &again, err, sizeof(err)), LP_OK);
    assert_int_equal(again, id);
    assert_int_equal(lp_registry_lookup(other, subject, schema, &found, err, sizeof(err)), LP_OK);
    assert_int_equal(found, id);

    const char *text = NULL;
    assert_int_equal(lp_registry_schema(other, id, &text, err, sizeof(err)), LP_OK);
    char *got = squeeze(text);
    assert_non_null(strstr(got, "\"name\":\"LeadQualified\""));
    assert_non_null(strstr(got, "\"name\":\"other_points\""));
    const char *cached = NULL;
    assert_int_equal(lp_registry_schema(other, id, &cached, err, sizeof(err)), LP_OK);
    assert_ptr_equal(cached, text); /* from the cache */
    assert_int_equal(lp_registry_schema(other, 999999999, &text, err, sizeof(err)),
                     LP_REGISTRY_NOT_FOUND);
    assert_non_null(strstr(err, "404"));
    /* asked again within a minute: answered from memory, no request */
    assert_int_equal(lp_registry_schema(other, 999999999, &text, err, sizeof(err)),
                     LP_REGISTRY_NOT_FOUND);
    assert_non_null(strstr(err, "not found in the registry (asked"));
    fprintf(stderr, "itest_registry: %s registered as id %d under %s\n", "LeadQualified", (int)id,
            subject);
    free(got);
    free(schema);
    lp_registry_destroy(other);
    lp_registry_destroy(reg);
}

static void failover_and_unreachable(void **state) {
    (void)state;
    const char *url = lp_it_env("LP_SCHEMA_REGISTRY_URL");
    char urls[1024], subject[256], err[LP_ERRSTR];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:1/apis/ccompat/v7, %s/", url);
    snprintf(subject, sizeof(subject), "%s-value", lp_it_unique("itregfo"));
    char *schema = read_schema("LeadStale.avsc");
    lp_registry_t *reg = client(urls);
    int32_t id = -1;
    int rc = lp_registry_register(reg, subject, schema, &id, err, sizeof(err));
    if (rc != LP_OK) {
        fail_msg("register past a dead URL: %s", err);
    }
    assert_true(strncmp(lp_registry_current_url(reg), url, strlen(url) - 0) == 0);
    /* Asked again: answered by the URL that answered last, or the cache. */
    int32_t again = -1;
    assert_int_equal(lp_registry_register(reg, subject, schema, &again, err, sizeof(err)), LP_OK);
    assert_int_equal(again, id);
    lp_registry_destroy(reg);

    lp_registry_t *dead = client("http://127.0.0.1:1,http://127.0.0.1:2");
    assert_int_equal(lp_registry_register(dead, subject, schema, &id, err, sizeof(err)), LP_ERR);
    assert_non_null(strstr(err, "unreachable"));
    assert_non_null(strstr(err, "2 URLs"));
    lp_registry_destroy(dead);
    free(schema);

    char bad[LP_ERRSTR];
    lp_registry_opts_t o = {.urls = "ftp://example.net"};
    assert_null(lp_registry_new(&o, bad, sizeof(bad)));
    assert_non_null(strstr(bad, "not an http"));
}

static void backward_refuses_a_required_field(void **state) {
    (void)state;
    const char *url = lp_it_env("LP_SCHEMA_REGISTRY_URL");
    char subject[256], err[LP_ERRSTR];
    snprintf(subject, sizeof(subject), "%s-value", lp_it_unique("itregcompat"));
    const char *v1 = "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"leadpulse.test\","
                     "\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}";
    const char *v2 = "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"leadpulse.test\","
                     "\"fields\":[{\"name\":\"a\",\"type\":\"string\"},"
                     "{\"name\":\"b\",\"type\":[\"null\",\"long\"],\"default\":null}]}";
    const char *bad = "{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"leadpulse.test\","
                      "\"fields\":[{\"name\":\"a\",\"type\":\"string\"},"
                      "{\"name\":\"c\",\"type\":\"long\"}]}";
    lp_registry_t *reg = client(url);
    int32_t id1 = -1, id2 = -1, id3 = -1;
    assert_int_equal(lp_registry_register(reg, subject, v1, &id1, err, sizeof(err)), LP_OK);
    int rc = lp_registry_set_compatibility(reg, subject, "BACKWARD", err, sizeof(err));
    if (rc != LP_OK) {
        fail_msg("set compatibility: %s", err);
    }
    assert_int_equal(lp_registry_register(reg, subject, v2, &id2, err, sizeof(err)), LP_OK);
    assert_true(id2 != id1);
    assert_int_equal(lp_registry_register(reg, subject, bad, &id3, err, sizeof(err)),
                     LP_REGISTRY_REFUSED);
    assert_non_null(strstr(err, "409"));
    assert_non_null(strstr(err, subject));
    fprintf(stderr, "itest_registry: refused as expected: %.300s\n", err);
    lp_registry_destroy(reg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(register_lookup_and_fetch),
        cmocka_unit_test(failover_and_unreachable),
        cmocka_unit_test(backward_refuses_a_required_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
