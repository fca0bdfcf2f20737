/* Bounded JSON writer: stable bytes for equal values (fixed key order is the caller's part). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json_internal.h"

static void put(lp_json_wr_t *wr, const char *s, size_t n) {
    if (wr->overflow || wr->size - wr->pos < n) {
        wr->overflow = true;
        return;
    }
    memcpy(wr->buf + wr->pos, s, n);
    wr->pos += n;
}

void lp_json_raw(lp_json_wr_t *wr, const char *s) {
    put(wr, s, strlen(s));
}

void lp_json_key(lp_json_wr_t *wr, const char *key, bool first) {
    if (!first) {
        put(wr, ",", 1);
    }
    put(wr, "\"", 1);
    lp_json_raw(wr, key);
    put(wr, "\":", 2);
}

void lp_json_str(lp_json_wr_t *wr, const char *s, size_t array_size) {
    size_t n = strnlen(s, array_size);
    size_t run = 0;

    put(wr, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        put(wr, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            put(wr, "\\\"", 2);
            break;
        case '\\':
            put(wr, "\\\\", 2);
            break;
        case '\n':
            put(wr, "\\n", 2);
            break;
        case '\r':
            put(wr, "\\r", 2);
            break;
        case '\t':
            put(wr, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(wr, esc, 6);
            break;
        }
    }
    put(wr, s + run, n - run);
    put(wr, "\"", 1);
}

void lp_json_opt_str(lp_json_wr_t *wr, const char *s, size_t array_size) {
    if (s[0] == '\0') {
        put(wr, "null", 4);
        return;
    }
    lp_json_str(wr, s, array_size);
}

void lp_json_i64(lp_json_wr_t *wr, int64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

    put(wr, tmp, (size_t)n);
}

size_t lp_json_format_double(char buf[LP_JSON_DOUBLE_MAX], double v) {
    int n = 0;
    if (!isfinite(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, LP_JSON_DOUBLE_MAX, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    return (size_t)n;
}

void lp_json_dbl(lp_json_wr_t *wr, double v) {
    char tmp[LP_JSON_DOUBLE_MAX];
    size_t n = lp_json_format_double(tmp, v);
    put(wr, tmp, n);
}

size_t lp_json_finish(lp_json_wr_t *wr) {
    /* Room for the NUL too, so that buf is always a C string. */
    if (wr->overflow || wr->pos >= wr->size) {
        return 0;
    }
    wr->buf[wr->pos] = '\0';
    return wr->pos;
}
