/* Metrics from one table: rendering in the Prometheus text format and the docs' reference. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "io/metrics.h"

#define LP_METRIC_DEF(id, name, type, label, unit, help) {name, LP_MT_##type, label, unit, help},
const lp_metric_def_t lp_metric_defs[LP_M__COUNT] = {LP_METRICS(LP_METRIC_DEF)};
#undef LP_METRIC_DEF

const double lp_hist_bounds[LP_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                1,      2.5,     5,      10,    30,     60};

void lp_histogram_observe(lp_histogram_t *h, double v) {
    int i = 0;
    while (i < LP_HIST_BUCKETS && v > lp_hist_bounds[i]) {
        i++;
    }
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

struct lp_metrics_out {
    char *buf;
    size_t size, len;
    bool full;
};

/* Appends a whole line or nothing, so a short buffer never ends in half a sample. */
static void line(lp_metrics_out_t *out, const char *fmt, ...) {
    if (out->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->buf + out->len, out->size - out->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= out->size - out->len) {
        out->buf[out->len] = '\0';
        out->full = true;
        return;
    }
    out->len += (size_t)n;
}

static const char *type_name(lp_metric_type_t type) {
    return type == LP_MT_COUNTER ? "counter" : type == LP_MT_GAUGE ? "gauge" : "histogram";
}

/* A double as Prometheus writes it: integers without a fraction, others with 17 digits. */
static void number(char out[40], double v) {
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 40, "%.0f", v);
    } else {
        snprintf(out, 40, "%.17g", v);
    }
}

/* A label value with \, " and newlines escaped. */
static void label_value(char *out, size_t size, const char *v) {
    size_t j = 0;
    for (; *v != '\0' && j + 3 < size; v++) {
        if (*v == '\\' || *v == '"') {
            out[j++] = '\\';
            out[j++] = *v;
        } else if (*v == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *v;
        }
    }
    out[j] = '\0';
}

void lp_metrics_sample(lp_metrics_out_t *out, lp_metric_id_t id, const char *value_of_label,
                       double value) {
    const lp_metric_def_t *d = &lp_metric_defs[id];
    char num[40], lv[256];
    if (strchr(d->label, ',') != NULL) {
        lp_metrics_sample2(out, id, value_of_label, "", value); /* a second label left empty */
        return;
    }
    number(num, value);
    if (d->label[0] != '\0' && value_of_label != NULL) {
        label_value(lv, sizeof(lv), value_of_label);
        line(out, "%s{%s=\"%s\"} %s\n", d->name, d->label, lv, num);
    } else {
        line(out, "%s %s\n", d->name, num);
    }
}

void lp_metrics_sample2(lp_metrics_out_t *out, lp_metric_id_t id, const char *value_a,
                        const char *value_b, double value) {
    const lp_metric_def_t *d = &lp_metric_defs[id];
    const char *comma = strchr(d->label, ',');
    char num[40], a[256], b[256];
    if (comma == NULL) {
        lp_metrics_sample(out, id, value_a, value);
        return;
    }
    number(num, value);
    label_value(a, sizeof(a), value_a);
    label_value(b, sizeof(b), value_b);
    line(out, "%s{%.*s=\"%s\",%s=\"%s\"} %s\n", d->name, (int)(comma - d->label), d->label, a,
         comma + 1, b, num);
}

void lp_metrics_hist(lp_metrics_out_t *out, lp_metric_id_t id, const lp_histogram_t *h) {
    const char *name = lp_metric_defs[id].name;
    char num[40];
    uint64_t cumulative = 0;
    for (int i = 0; i < LP_HIST_BUCKETS; i++) {
        cumulative += h->bucket[i];
        snprintf(num, sizeof(num), "%g", lp_hist_bounds[i]);
        line(out, "%s_bucket{le=\"%s\"} %llu\n", name, num, (unsigned long long)cumulative);
    }
    line(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    number(num, h->sum);
    line(out, "%s_sum %s\n", name, num);
    line(out, "%s_count %llu\n", name, (unsigned long long)h->count);
}

size_t lp_metrics_render(char *buf, size_t size, lp_metrics_collect_fn collect, void *ctx) {
    lp_metrics_out_t out = {buf, size, 0, size == 0};
    if (size == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (int id = 0; id < LP_M__COUNT; id++) {
        const lp_metric_def_t *d = &lp_metric_defs[id];
        line(&out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name, type_name(d->type));
        collect(ctx, (lp_metric_id_t)id, &out);
    }
    return out.len;
}

void lp_metrics_doc_markdown(FILE *out) {
    fputs("# Metrics reference\n\n"
          "Generated from the metrics table in `src/io/metrics.h` (`LP_METRICS`); a unit test\n"
          "(`tests/unit/test_io_metrics.c`) fails when this file and the table differ, and\n"
          "checks the output with `promtool check metrics`. The worker serves them on\n"
          "`/metrics` (`http.listen`) in the Prometheus text format, each family with its\n"
          "`# HELP` and `# TYPE`. Histograms have the buckets (seconds) 0.0001, 0.00025, 0.0005,\n"
          "0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 and "
          "+Inf.\n\n"
          "| metric | type | label | unit | meaning |\n"
          "|---|---|---|---|---|\n",
          out);
    for (int id = 0; id < LP_M__COUNT; id++) {
        const lp_metric_def_t *d = &lp_metric_defs[id];
        fprintf(out, "| `%s` | %s | %s | %s | %s |\n", d->name, type_name(d->type),
                d->label[0] ? d->label : "", d->unit, d->help);
    }
}
