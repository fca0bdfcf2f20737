/* The metrics table: every family rendered with HELP and TYPE in table order, samples and
 * histograms in the Prometheus text format (checked by `promtool check metrics` when the
 * prometheus package is installed: scripts/setup installs it), names unique and well formed,
 * and docs/metrics.md in step with the table. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/metrics.h"

static void collect_one_each(void *ctx, lp_metric_id_t id, lp_metrics_out_t *out) {
    const lp_histogram_t *h = ctx;
    const lp_metric_def_t *d = &lp_metric_defs[id];
    if (d->type == LP_MT_HISTOGRAM) {
        lp_metrics_hist(out, id, h);
    } else if (strchr(d->label, ',') != NULL) {
        lp_metrics_sample2(out, id, "engagement.events", "3", 7);
        lp_metrics_sample2(out, id, "lead.profiles", "11", 0);
    } else if (d->label[0] != '\0') {
        lp_metrics_sample(out, id, "a \"quoted\\ value\nx", 1.5);
        lp_metrics_sample(out, id, "b", 2);
    } else {
        lp_metrics_sample(out, id, NULL, 12345678901.0);
    }
}

static char *render(size_t size, size_t *len) {
    static lp_histogram_t h;
    memset(&h, 0, sizeof(h));
    lp_histogram_observe(&h, 0.00005);
    lp_histogram_observe(&h, 0.003);
    lp_histogram_observe(&h, 0.003);
    lp_histogram_observe(&h, 99);
    char *buf = malloc(size);
    assert_non_null(buf);
    *len = lp_metrics_render(buf, size, collect_one_each, &h);
    return buf;
}

static void test_table_well_formed(void **state) {
    (void)state;
    for (int i = 0; i < LP_M__COUNT; i++) {
        const lp_metric_def_t *d = &lp_metric_defs[i];
        assert_true(strncmp(d->name, "leadpulse_", 10) == 0);
        for (const char *c = d->name; *c; c++) {
            assert_true(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_');
        }
        size_t n = strlen(d->name);
        bool total = n > 6 && strcmp(d->name + n - 6, "_total") == 0;
        assert_true((d->type == LP_MT_COUNTER) == total); /* counters, and only they, _total */
        assert_true(strlen(d->help) > 10 && strchr(d->help, '\n') == NULL);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(d->name, lp_metric_defs[j].name);
        }
    }
}

static void test_render(void **state) {
    (void)state;
    size_t len;
    char *text = render(1 << 20, &len);
    assert_int_equal(len, strlen(text));
    /* every family: HELP, then TYPE, in table order */
    const char *at = text;
    for (int i = 0; i < LP_M__COUNT; i++) {
        char help[160];
        snprintf(help, sizeof(help), "# HELP %s ", lp_metric_defs[i].name);
        const char *h = strstr(at, help);
        assert_non_null(h);
        at = h + 1;
    }
    assert_non_null(strstr(text, "leadpulse_events_total 12345678901\n"));
    assert_non_null(strstr(
        text, "leadpulse_consumer_lag_records{topic=\"engagement.events\",partition=\"3\"} 7\n"));
    assert_non_null(
        strstr(text, "leadpulse_stale_total{reason=\"a \\\"quoted\\\\ value\\nx\"} 1.5\n"));
    assert_non_null(strstr(text, "leadpulse_batch_apply_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "leadpulse_batch_apply_seconds_bucket{le=\"0.005\"} 3\n"));
    assert_non_null(strstr(text, "leadpulse_batch_apply_seconds_bucket{le=\"2.5\"} 3\n"));
    assert_non_null(strstr(text, "leadpulse_batch_apply_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "leadpulse_batch_apply_seconds_count 4\n"));
    free(text);

    /* a short buffer ends at a whole line */
    char *cut = render(300, &len);
    assert_true(len > 0 && len < 300);
    assert_int_equal(cut[len - 1], '\n');
    free(cut);
}

static void test_promtool(void **state) {
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool not installed (Debian's prometheus package): not checked\n");
        skip();
    }
    size_t len;
    char *text = render(1 << 20, &len);
    char path[] = "/tmp/lp-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    free(text);
    assert_int_equal(rc, 0);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

static void test_doc_in_sync(void **state) {
    (void)state;
    char *generated = NULL, path[1024];
    size_t len = 0;
    FILE *out = open_memstream(&generated, &len);
    assert_non_null(out);
    lp_metrics_doc_markdown(out);
    fclose(out);
    const char *src = getenv("LP_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/docs/metrics.md", src != NULL ? src : ".");
    char *committed = read_all(path);
    if (committed == NULL || strcmp(committed, generated) != 0) {
        const char *bin = getenv("LP_BINARY_DIR");
        char fresh[1024];
        snprintf(fresh, sizeof(fresh), "%s/metrics.md", bin != NULL && *bin ? bin : ".");
        FILE *fp = fopen(fresh, "wb");
        if (fp != NULL) {
            fputs(generated, fp);
            fclose(fp);
        }
        print_error("%s is out of date with LP_METRICS in src/io/metrics.h;\n"
                    "regenerated text written: cp %s %s\n",
                    path, fresh, path);
        free(committed);
        free(generated);
        fail();
    }
    free(committed);
    free(generated);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_well_formed),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_promtool),
        cmocka_unit_test(test_doc_in_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
